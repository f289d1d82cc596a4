#include <criterion/criterion.h>
Test(placeholder, util) {
        cr_skip_test("not written yet");
}

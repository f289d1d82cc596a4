#include <criterion/criterion.h>
Test(placeholder, config) {
        cr_skip_test("not written yet");
}

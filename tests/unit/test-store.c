#include <criterion/criterion.h>
Test(placeholder, store) {
        cr_skip_test("not written yet");
}

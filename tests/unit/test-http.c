#include <criterion/criterion.h>
Test(placeholder, http) {
        cr_skip_test("not written yet");
}

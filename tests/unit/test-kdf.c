#include <criterion/criterion.h>
Test(placeholder, kdf) {
        cr_skip_test("not written yet");
}

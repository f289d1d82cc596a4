/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>

#include "util/macro.h"
#include "util/parse.h"
#include "util/random.h"
#include "util/string-table.h"

/* ---- ids and numbers ---- */

Test(id, valid) {
        char s[300];
        cr_assert(id_is_valid("a", 255));
        cr_assert(id_is_valid("!~", 2));
        cr_assert(id_is_valid("urn:dev:ops:0004A3-MNGW-000123", 255));
        cr_assert_not(id_is_valid("", 255));
        cr_assert_not(id_is_valid("a b", 255));
        cr_assert_not(id_is_valid("a\tb", 255));
        cr_assert_not(id_is_valid("a\x7f", 255));
        cr_assert_not(id_is_valid("\xc3\xa9", 255));
        cr_assert_not(id_is_valid("abc", 2));
        memset(s, 'x', 255);
        s[255] = 0;
        cr_assert(id_is_valid(s, 255));
        s[255] = 'x';
        s[256] = 0;
        cr_assert_not(id_is_valid(s, 255));
}

Test(parse_uint, bounds) {
        unsigned long long v = 42;
        cr_assert_eq(parse_uint("0", 0, &v), 0);
        cr_assert_eq(v, 0);
        cr_assert_eq(parse_uint("100", 100, &v), 0);
        cr_assert_eq(v, 100);
        cr_assert_eq(parse_uint("007", 100, &v), 0);
        cr_assert_eq(v, 7);
        v = 42;
        cr_assert_eq(parse_uint("101", 100, &v), -ERANGE);
        cr_assert_eq(parse_uint("7", 5, &v), -ERANGE, "single digit above max");
        cr_assert_eq(parse_uint("1", 0, &v), -ERANGE);
        cr_assert_eq(parse_uint("65536", 65535, &v), -ERANGE);
        cr_assert_eq(v, 42);
        cr_assert_eq(parse_uint("65535", 65535, &v), 0);
        cr_assert_eq(v, 65535);
}

Test(parse_uint, overflow) {
        unsigned long long v = 0;
        cr_assert_eq(parse_uint("18446744073709551615", ULLONG_MAX, &v), 0);
        cr_assert_eq(v, ULLONG_MAX);
        cr_assert_eq(parse_uint("18446744073709551616", ULLONG_MAX, &v), -ERANGE);
        cr_assert_eq(parse_uint("99999999999999999999", ULLONG_MAX, &v), -ERANGE);
        cr_assert_eq(parse_uint("184467440737095516150", ULLONG_MAX, &v), -ERANGE);
}

Test(parse_uint, syntax) {
        static const char *const bad[] = { "", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.0", "1e3" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                unsigned long long v = 42;
                cr_assert_eq(parse_uint(bad[i], 1000, &v), -EINVAL, "'%s' accepted", bad[i]);
                cr_assert_eq(v, 42);
        }
}

/* ---- random ---- */

Test(random, bytes) {
        uint8_t a[32] = {}, b[32] = {}, zero[32] = {};
        cr_assert_eq(random_bytes(a, sizeof a), 0);
        cr_assert_eq(random_bytes(b, sizeof b), 0);
        cr_assert(memcmp(a, zero, 32) != 0 && memcmp(a, b, 32) != 0);
}

/* ---- string tables ---- */

typedef enum colour {
        COLOUR_RED,
        COLOUR_GREEN,
        _COLOUR_MAX,
        _COLOUR_INVALID = -EINVAL,
} colour_t;
static const char *const colour_table[_COLOUR_MAX] = {
        [COLOUR_RED] = "red",
        [COLOUR_GREEN] = "green",
};
const char *colour_to_string(colour_t c);
colour_t colour_from_string(const char *s);
DEFINE_STRING_TABLE(colour, colour_t, colour_table)

Test(string_table, both_ways) {
        cr_assert_str_eq(colour_to_string(COLOUR_GREEN), "green");
        cr_assert_null(colour_to_string(_COLOUR_MAX));
        cr_assert_null(colour_to_string(_COLOUR_INVALID));
        cr_assert_eq(colour_from_string("red"), COLOUR_RED);
        cr_assert_eq(colour_from_string("Red"), _COLOUR_INVALID);
        cr_assert_eq(colour_from_string(""), _COLOUR_INVALID);
        cr_assert_eq(colour_from_string(NULL), _COLOUR_INVALID);
}

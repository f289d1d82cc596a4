/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>

#include "util/macro.h"
#include "util/parse.h"
#include "util/random.h"
#include "util/string-table.h"
#include "util/util.h"

Test(duration, parse_and_format) {
        static const struct {
                const char *in;
                usec_t usec;
                const char *out;
        } ok[] = {
                { "0", 0, "0" },           { "1500", 1500000, "1500ms" }, { "1000ms", 1000000, "1s" },
                { "90s", 90000000, "90s" }, { "5min", 300000000, "5min" },  { "120min", 7200000000ull, "2h" },
                { "24h", 86400000000ull, "24h" }, { "999999h", 999999ull * 3600000000ull, "999999h" },
                { "90d", 90ull * 86400000000ull, "2160h" }, /* printed in hours: dumps stay as they were */
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                usec_t u = 1;
                char out[32];
                cr_assert_eq(duration_parse(ok[i].in, &u), 0, "%s", ok[i].in);
                cr_assert_eq(u, ok[i].usec, "%s", ok[i].in);
                duration_format(u, out);
                cr_assert_str_eq(out, ok[i].out);
        }
        static const char *const bad[] = { "", "s", "1 s", " 1", "1.5s", "-1", "1D", "1sec", "10000000000", "1S", "0x10", "9999999999h", "9999999999d" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                usec_t u = 7;
                cr_assert_lt(duration_parse(bad[i], &u), 0, "%s", bad[i]);
                cr_assert_eq(u, 7, "touched on failure: %s", bad[i]);
        }
}

Test(double, parse_and_format) {
        double d;
        char out[32];
        cr_assert_eq(double_parse("-33.5", &d), 0);
        double_format(d, out);
        cr_assert_str_eq(out, "-33.5");
        cr_assert_eq(double_parse("1e3", &d), 0);
        cr_assert_float_eq(d, 1000, 1e-12);
        static const char *const bad[] = { "", " 1", "nan", "inf", "0x1p3", "1,5", "1e999" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_assert_lt(double_parse(bad[i], &d), 0, "%s", bad[i]);
}

Test(pcr_list, grammar) {
        pcr_list_t l;
        cr_assert_eq(pcr_list_parse("", &l, NULL), 0);
        cr_assert_eq(l.n, 0);
        cr_assert_eq(pcr_list_parse("sha256:0,7", &l, NULL), 0);
        cr_assert_eq(l.n, 1);
        cr_assert_eq(l.sel[0].bank, PCR_BANK_SHA256);
        cr_assert_eq(l.sel[0].mask, 0x81u);
        cr_assert_eq(pcr_list_parse("sha1:23+sha512:0,1,2", &l, NULL), 0);
        cr_assert_eq(l.n, 2);
        cr_assert_eq(l.sel[0].bank, PCR_BANK_SHA1);
        cr_assert_eq(l.sel[0].mask, 1u << 23);
        cr_assert_eq(l.sel[1].bank, PCR_BANK_SHA512);
        cr_assert_eq(l.sel[1].mask, 7u);
        static const char *const bad[] = {
                "sha256",      "sha256:",     "sha256:24",   "sha256:0,",   "sha256:,0", "sha256:0,0",
                "sha256:007",  "md5:0",       "SHA256:0",    "sha256:0+",   "sha256:0+sha256:1",
                "sha256: 0",   "sha256:0;7",  ":0",          "sha256:0+sha1",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *why = NULL;
                cr_assert_eq(pcr_list_parse(bad[i], &l, &why), -EINVAL, "%s", bad[i]);
                cr_assert_not_null(why);
        }
}

Test(paths_and_names, checks) {
        cr_assert_eq(path_check("/etc/msce/kpm.hex", PATH_ABSOLUTE, NULL), 0);
        cr_assert_lt(path_check("etc/kpm", PATH_ABSOLUTE, NULL), 0);
        cr_assert_lt(path_check("/etc/../kpm", PATH_ABSOLUTE, NULL), 0);
        cr_assert_lt(path_check("/etc/..", PATH_ABSOLUTE, NULL), 0);
        cr_assert_eq(path_check("/etc/..a", PATH_ABSOLUTE, NULL), 0);
        cr_assert_eq(path_check("mef.db", 0, NULL), 0);
        cr_assert_lt(path_check("", 0, NULL), 0);
        cr_assert_lt(path_check("a\tb", 0, NULL), 0);
        cr_assert_eq(user_name_check("_cse-1.x", NULL), 0);
        cr_assert_lt(user_name_check("1cse", NULL), 0);
        cr_assert_lt(user_name_check("abcdefghijabcdefghijabcdefghijabc", NULL), 0);
        cr_assert_eq(credential_name_check("", NULL), 0);
        cr_assert_eq(credential_name_check("msce.kpm", NULL), 0);
        cr_assert_lt(credential_name_check("..", NULL), 0);
        cr_assert_lt(credential_name_check("a/b", NULL), 0);
}

Test(https_uri, parts_and_canonical_form) {
        https_uri_t u = {};
        cr_assert_eq(https_uri_parse("HTTPS://MEF.Example:443/msce/", &u, NULL), 0);
        cr_assert_str_eq(u.host, "mef.example");
        cr_assert_str_eq(u.port, "443");
        cr_assert_str_eq(u.base, "/msce");
        cr_assert_str_eq(u.canonical, "https://mef.example/msce");
        https_uri_done(&u);
        cr_assert_eq(https_uri_parse("https://[::1]:8443", &u, NULL), 0);
        cr_assert_str_eq(u.host, "::1");
        cr_assert_str_eq(u.canonical, "https://[::1]:8443");
        https_uri_done(&u);
        static const char *const bad[] = {
                "http://a",   "https://",      "https://a:0", "https://a:65536", "https://u@a",
                "https://a?x", "https://a/../b", "https://[::1", "https://a_b",     "https://a/b c",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                const char *why = NULL;
                cr_assert_eq(https_uri_parse(bad[i], &u, &why), -EINVAL, "%s", bad[i]);
                cr_assert_not_null(why, "%s", bad[i]);
                cr_assert_null(u.host);
        }
}


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

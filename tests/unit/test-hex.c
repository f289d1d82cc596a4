/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>

#include "util/macro.h"
#include "util/base64.h"
#include "util/hex.h"

/* ---- hex ---- */

Test(hex, round_trip) {
        uint8_t in[256], out[256];
        char txt[513];
        size_t n = 0;
        for (size_t i = 0; i < sizeof in; i++)
                in[i] = (uint8_t) i;
        hex_encode(in, sizeof in, txt);
        cr_assert_eq(strlen(txt), 512);
        cr_assert_str_eq(txt + 2 * 0xa5, "a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff");
        cr_assert_eq(hex_decode(txt, out, sizeof out, &n), 0);
        cr_assert_eq(n, sizeof in);
        cr_assert_arr_eq(in, out, sizeof in);
}

Test(hex, empty_and_case) {
        uint8_t out[4];
        char txt[3];
        size_t n = 99;
        hex_encode(NULL, 0, txt);
        cr_assert_str_eq(txt, "");
        cr_assert_eq(hex_decode("", out, sizeof out, &n), 0);
        cr_assert_eq(n, 0);
        cr_assert_eq(hex_decode("DeadBEEF", out, sizeof out, &n), 0);
        cr_assert_eq(n, 4);
        cr_assert(out[0] == 0xde && out[1] == 0xad && out[2] == 0xbe && out[3] == 0xef);
}

Test(hex, bad_input) {
        uint8_t out[4];
        size_t n = 99;
        cr_assert_eq(hex_decode("abc", out, sizeof out, &n), -EINVAL);        /* odd */
        cr_assert_eq(hex_decode("zz", out, sizeof out, &n), -EINVAL);
        cr_assert_eq(hex_decode("0g", out, sizeof out, &n), -EINVAL);
        cr_assert_eq(hex_decode("00 1", out, sizeof out, &n), -EINVAL);
        cr_assert_eq(hex_decode("0x00", out, sizeof out, &n), -EINVAL);
        cr_assert_eq(hex_decode("0011223344", out, sizeof out, &n), -EINVAL); /* too long */
        cr_assert_eq(n, 99, "ret_len touched on failure");
}

/* ---- base64 ---- */

static void b64_check(const char *plain, const char *enc) {
        _cleanup_free_ char *s = NULL;
        uint8_t out[16];
        size_t n = 99;
        cr_assert_eq(b64_encode((const uint8_t *) plain, strlen(plain), &s), 0);
        cr_assert_str_eq(s, enc);
        if (!*enc)
                return;
        cr_assert_eq(b64_decode(enc, strlen(enc), out, sizeof out, &n), 0, "%s", enc);
        cr_assert_eq(n, strlen(plain));
        cr_assert_arr_eq(out, plain, n);
}

Test(b64, rfc4648_vectors) {
        b64_check("", "");
        b64_check("f", "Zg==");
        b64_check("fo", "Zm8=");
        b64_check("foo", "Zm9v");
        b64_check("foob", "Zm9vYg==");
        b64_check("fooba", "Zm9vYmE=");
        b64_check("foobar", "Zm9vYmFy");
}

Test(b64, round_trip_all_lengths) {
        uint8_t in[100], out[100];
        for (size_t i = 0; i < sizeof in; i++)
                in[i] = (uint8_t) (i * 37 + 11);
        for (size_t len = 1; len <= sizeof in; len++) {
                _cleanup_free_ char *s = NULL;
                size_t n = 0;
                cr_assert_eq(b64_encode(in, len, &s), 0);
                cr_assert_eq(strlen(s), (len + 2) / 3 * 4);
                cr_assert_eq(b64_decode(s, strlen(s), out, len, &n), 0, "len %zu", len);
                cr_assert_eq(n, len);
                cr_assert_arr_eq(in, out, len);
        }
}

Test(b64, rejects_whitespace_and_bad_chars) {
        static const char *const bad[] = {
                "",             /* empty */
                "Zm9",          /* not a multiple of 4 */
                "Zm9v\nYmFy",   "Zm9v YmFy", "Zm9vYmFy\n", " Zm9vYmFy", "Zm9v\tYmFy",
                "Zm9v*mFy",     "Zm9v-mFy", "Zm9v_mFy", "Zm9v.mFy",
                "Zm9vYmF\xc3\xa9",
                "Zm9vYg==Zm9v", /* data after padding */
                "Zm=v",         /* padding inside a group */
                "Z===", "====",
        };
        uint8_t out[32];
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                size_t n = 99;
                cr_assert_eq(b64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n), -EINVAL, "'%s' accepted", bad[i]);
                cr_assert_eq(n, 99);
        }
}

Test(b64, output_too_small) {
        uint8_t out[8];
        size_t n = 99;
        memset(out, 0x5a, sizeof out);
        /* 6 bytes: too small by one (decoded size check) and by three (length pre-check) */
        cr_assert_eq(b64_decode("Zm9vYmFy", 8, out, 5, &n), -EMSGSIZE);
        cr_assert_eq(b64_decode("Zm9vYmFy", 8, out, 3, &n), -EMSGSIZE);
        cr_assert_eq(n, 99);
        for (size_t i = 0; i < sizeof out; i++)
                cr_assert_eq(out[i], 0x5a, "out written on failure");
        cr_assert_eq(b64_decode("Zm9vYmFy", 8, out, 6, &n), 0);
        cr_assert_eq(n, 6);
        /* padded: 4 bytes decoded from 8 chars fit in 4 */
        cr_assert_eq(b64_decode("Zm9vYg==", 8, out, 4, &n), 0);
        cr_assert_eq(n, 4);
        cr_assert_eq(b64_decode("Zm9vYg==", 8, out, 3, &n), -EMSGSIZE);
}


/* ---- keys as hex text ---- */

Test(hex, key_parse) {
        uint8_t k[4];
        size_t n = 0;
        cr_assert_eq(hex_key_parse("00112233", 8, 1, 4, k, &n), 0);
        cr_assert_eq(n, 4);
        cr_assert_eq(k[3], 0x33);
        cr_assert_eq(hex_key_parse("AaBb\r\n\n", 7, 2, 4, k, &n), 0, "line ends are ignored");
        cr_assert_eq(n, 2);
        cr_assert_eq(k[0], 0xaa);
        cr_assert_eq(hex_key_parse("\n", 1, 1, 4, k, &n), -ENODATA);
        cr_assert_eq(hex_key_parse("", 0, 1, 4, k, &n), -ENODATA);
        cr_assert_eq(hex_key_parse("aa", 2, 2, 4, k, &n), -EINVAL, "shorter than min");
        cr_assert_eq(hex_key_parse("0011223344", 10, 1, 4, k, &n), -EINVAL, "longer than max");
        cr_assert_eq(hex_key_parse("aa\n bb", 6, 1, 4, k, &n), -EINVAL, "two lines");
        cr_assert_eq(hex_key_parse("aabbc", 5, 1, 4, k, &n), -EINVAL, "odd");
}

Test(hex, key_parse_nul_and_wipe) {
        uint8_t k[4] = { 0x5a, 0x5a, 0x5a, 0x5a };
        size_t n = 77;
        /* a NUL in the text must not end it early: "aabb\0..." is not the key aabb */
        cr_assert_eq(hex_key_parse("aabb\0\0cc", 8, 1, 4, k, &n), -EINVAL);
        cr_assert_eq(n, 77, "ret_len touched on failure");
        cr_assert_eq(k[0], 0, "decoded bytes wiped on failure");
        cr_assert_eq(k[1], 0);
}

Test(hex, digit) {
        cr_assert_eq(hex_digit('0'), 0);
        cr_assert_eq(hex_digit('f'), 15);
        cr_assert_eq(hex_digit('F'), 15);
        cr_assert_eq(hex_digit('g'), -1);
        cr_assert_eq(hex_digit('\0'), -1);
}

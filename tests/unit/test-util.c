/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "util/util.h"

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

/* ---- files ---- */

static char dir[] = "/tmp/test-util.XXXXXX";

static void dir_setup(void) {
        cr_assert_not_null(mkdtemp(dir));
}

static void dir_teardown(void) {
        DIR *d = opendir(dir);
        if (d) {
                struct dirent *e;
                while ((e = readdir(d))) {
                        char p[PATH_MAX];
                        if (e->d_name[0] == '.')
                                continue;
                        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                        unlink(p);
                }
                closedir(d);
        }
        rmdir(dir);
}

static void write_file(const char *name, const void *data, size_t len, mode_t mode, char path[PATH_MAX]) {
        snprintf(path, PATH_MAX, "%s/%s", dir, name);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, data, len), (ssize_t) len);
        cr_assert_eq(fchmod(fd, mode), 0);
}

static unsigned count_entries(void) {
        unsigned n = 0;
        DIR *d = opendir(dir);
        cr_assert_not_null(d);
        struct dirent *e;
        while ((e = readdir(d)))
                if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

TestSuite(files, .init = dir_setup, .fini = dir_teardown);

Test(files, secret_refuses_wide_modes) {
        static const mode_t modes[] = { 0640, 0604, 0644, 0620, 0602, 0610, 0601, 0666 };
        char path[PATH_MAX];
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                secret_t s = { .data = (unsigned char *) "sentinel", .len = 8 };
                write_file("key", "0123456789abcdef", 16, modes[i], path);
                cr_assert_eq(secret_file_read(path, 64, &s), -EPERM, "mode %o accepted", modes[i]);
                cr_assert_eq(s.len, 8, "ret touched on failure");
        }
        _cleanup_secret_ secret_t ok = {};
        write_file("key", "0123456789abcdef", 16, 0400, path);
        cr_assert_eq(secret_file_read(path, 64, &ok), 0);
        cr_assert_eq(ok.len, 16);
}

Test(files, secret_sizes) {
        char path[PATH_MAX];
        static const char data[] = "0123456789abcdef\n"; /* 17 bytes, newline kept */
        secret_t s = {};

        write_file("key", data, 17, 0600, path);
        cr_assert_eq(secret_file_read(path, 16, &s), -EFBIG);
        cr_assert_null(s.data);
        cr_assert_eq(secret_file_read(path, 17, &s), 0);
        cr_assert_eq(s.len, 17);
        cr_assert_arr_eq(s.data, data, 17);
        secret_done(&s);
        cr_assert_null(s.data);
        cr_assert_eq(secret_file_read(path, 4096, &s), 0);
        cr_assert_eq(s.len, 17);
        secret_done(&s);

        write_file("empty", "", 0, 0600, path);
        cr_assert_eq(secret_file_read(path, 16, &s), -ENODATA);

        snprintf(path, sizeof path, "%s/missing", dir);
        cr_assert_eq(secret_file_read(path, 16, &s), -ENOENT);
        cr_assert_eq(secret_file_read(dir, 16, &s), -EBADFD, "a directory is not a secret file");
}

Test(files, secret_binary) {
        char path[PATH_MAX];
        uint8_t data[64];
        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (255 - i * 3);
        data[10] = 0;
        write_file("bin", data, sizeof data, 0600, path);
        _cleanup_secret_ secret_t s = {};
        cr_assert_eq(secret_file_read(path, 64, &s), 0);
        cr_assert_eq(s.len, 64);
        cr_assert_arr_eq(s.data, data, 64);
}

Test(files, read_all) {
        char path[PATH_MAX];
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        write_file("text", "hello\n", 6, 0644, path);
        cr_assert_eq(file_read_all(path, 5, &buf, &n), -EFBIG);
        cr_assert_null(buf);
        cr_assert_eq(file_read_all(path, 6, &buf, &n), 0);
        cr_assert_eq(n, 6);
        cr_assert_str_eq(buf, "hello\n");
}

Test(files, write_atomic) {
        char path[PATH_MAX];
        struct stat st;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;

        snprintf(path, sizeof path, "%s/state", dir);
        cr_assert_eq(file_write_atomic(path, "first", 5, 0640), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0640);
        cr_assert_eq(file_read_all(path, 100, &buf, &n), 0);
        cr_assert_str_eq(buf, "first");
        free(TAKE_PTR(buf));

        /* replace, with another mode */
        cr_assert_eq(file_write_atomic(path, "second!", 7, 0600), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(file_read_all(path, 100, &buf, &n), 0);
        cr_assert_eq(n, 7);
        cr_assert_str_eq(buf, "second!");
        cr_assert_eq(count_entries(), 1, "temporary file left behind");

        /* empty content is a valid write */
        cr_assert_eq(file_write_atomic(path, "", 0, 0600), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_size, 0);
        cr_assert_eq(count_entries(), 1);
}

Test(files, write_atomic_failure_leaves_nothing) {
        char path[PATH_MAX];
        /* rename onto a non-empty directory fails after the temp file was written */
        snprintf(path, sizeof path, "%s/sub", dir);
        cr_assert_eq(mkdir(path, 0700), 0);
        char inner[PATH_MAX];
        snprintf(inner, sizeof inner, "%s/sub/x", dir);
        cr_assert_eq(file_write_atomic(inner, "x", 1, 0600), 0);
        cr_assert_lt(file_write_atomic(path, "data", 4, 0600), 0);
        cr_assert_eq(count_entries(), 1, "temporary file left behind");
        unlink(inner);
        rmdir(path);

        snprintf(path, sizeof path, "%s/missing/state", dir);
        cr_assert_eq(file_write_atomic(path, "data", 4, 0600), -ENOENT);
        cr_assert_eq(count_entries(), 0);
}

/* ---- time ---- */

Test(time, parse_valid) {
        time_t t = 0;
        cr_assert_eq(time_parse_basic("20271127T203000", &t), 0);
        cr_assert_eq(t, 1827347400);
        cr_assert_eq(time_parse_basic("19700101T000000", &t), 0);
        cr_assert_eq(t, 0);
        cr_assert_eq(time_parse_basic("19691231T235959", &t), 0);
        cr_assert_eq(t, -1);
        cr_assert_eq(time_parse_basic("20280229T000000", &t), 0, "leap day");
        cr_assert_eq(t, 1835395200);
        cr_assert_eq(time_parse_basic("99991231T235959", &t), 0);
        cr_assert_eq(t, 253402300799);
        cr_assert_eq(time_parse_basic("20000229T120000", &t), 0, "2000 is a leap year");
}

Test(time, parse_invalid) {
        static const char *const bad[] = {
                "20270230T000000", /* Feb 30 */
                "20270229T000000", /* not a leap year */
                "21000229T000000", /* 2100 is not a leap year */
                "20270431T000000", /* April 31 */
                "20271301T000000", /* month 13 */
                "20270001T000000", /* month 0 */
                "20270100T000000", /* day 0 */
                "20270132T000000", /* day 32 */
                "20270101T240000", /* hour 24 */
                "20270101T126000", /* minute 60 */
                "20270101T120060", /* second 60 would normalise to 12:01:00 */
                "20271231T235960",
                "20270101T12000",  /* 14 chars */
                "20270101T1200000",
                "2027-01-01T12:00",
                "20270101t120000", "20270101 120000", "20270101Z120000",
                "2027O101T120000", /* letter O */
                "20270101T12000a", "+0270101T120000", "-0270101T120000", " 0270101T120000",
                "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                time_t t = 42;
                cr_assert_eq(time_parse_basic(bad[i], &t), -EINVAL, "'%s' accepted", bad[i]);
                cr_assert_eq(t, 42);
        }
}

Test(time, round_trip) {
        static const time_t ts[] = { 0, -1, 1, 59, 951782400, 1827347400, 1835395200, 253402300799, -62167219200 };
        for (size_t i = 0; i < ELEMENTSOF(ts); i++) {
                char s[16];
                time_t t = 42;
                time_format_basic(ts[i], s);
                cr_assert_eq(strlen(s), 15, "%lld -> '%s'", (long long) ts[i], s);
                cr_assert_eq(time_parse_basic(s, &t), 0, "'%s'", s);
                cr_assert_eq(t, ts[i]);
        }
        char s[16];
        time_format_basic(1827347400, s);
        cr_assert_str_eq(s, "20271127T203000");
        time_format_basic(-62167219200, s);
        cr_assert_str_eq(s, "00000101T000000");
}

Test(time, format_out_of_range) {
        char s[16];
        memset(s, 'x', sizeof s);
        time_format_basic(253402300800, s); /* year 10000 */
        cr_assert_str_eq(s, "");
        memset(s, 'x', sizeof s);
        time_format_basic(-62167219201, s); /* year -1 */
        cr_assert_str_eq(s, "");
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

/* ---- misc ---- */

Test(misc, random_and_clock) {
        uint8_t a[32] = {}, b[32] = {}, zero[32] = {};
        cr_assert_eq(random_bytes(a, sizeof a), 0);
        cr_assert_eq(random_bytes(b, sizeof b), 0);
        cr_assert(memcmp(a, zero, 32) != 0 && memcmp(a, b, 32) != 0);
        uint64_t t1 = now_usec();
        usleep(2000);
        uint64_t t2 = now_usec();
        cr_assert_geq(t2 - t1, 2000);
}

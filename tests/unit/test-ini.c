/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/ini-types.h"
#include "util/util.h"

/* A toy configuration with one row of each kind. */
typedef struct toy {
        char *name;
        char *opt;
        unsigned count;
        usec_t wait;
        usec_t ms;
        int colour;
        double x;
} toy_t;

#define F(f) offsetof(toy_t, f)
static const ini_key_t keys[] = {
        { "a", "name", &ini_type_string, F(name), "def", &(const ini_string_t) { ini_check_id, NULL } },
        { "a", "opt", &ini_type_string, F(opt), NULL, &(const ini_string_t) { ini_check_absolute_path, NULL },
          INI_EMPTY_UNSETS },
        { "b", "count", &ini_type_uint, F(count), "3", &(const ini_uint_t) { 1, 10, "" } },
        { "b", "wait", &ini_type_duration, F(wait), "5min",
          &(const ini_duration_t) { 0, 3600000000ull, "out of range (0..1h)", false } },
        { "b", "ms", &ini_type_msec, F(ms), "250", &(const ini_uint_t) { 100, 1000, " ms" } },
        { "a", "colour", &ini_type_enum, F(colour), "red",
          &(const ini_enum_t) { (const char *const[]) { "red", "green", "blue" }, NULL, 3 } },
        { "b", "x", &ini_type_double, F(x), NULL, &(const ini_double_t) { -1, 1, "out of range (-1..1)" },
          INI_EMPTY_UNSETS },
};

static void toy_done(toy_t *t) {
        ini_fields_done(keys, ELEMENTSOF(keys), t);
}

/* Parses text (len bytes) as "t.conf" with flags; returns the result, err gets the error. */
static int parse(const char *text, size_t len, unsigned flags, toy_t *t, char *err, size_t err_size) {
        *t = (toy_t) {};
        ini_t *ini = NULL;
        int r = ini_new(keys, ELEMENTSOF(keys), t, "main.conf", flags, err, err_size, &ini);
        cr_assert_eq(r, 0, "%s", err);
        r = ini_parse_buffer(ini, "t.conf", text, len);
        ini_free(ini);
        return r;
}

static void parse_ok(const char *text, size_t len, unsigned flags, toy_t *t) {
        char err[512] = "";
        cr_assert_eq(parse(text, len, flags, t, err, sizeof err), 0, "%s", err);
}

static void fails(const char *text, unsigned flags, const char *want) {
        char err[512] = "";
        toy_t t;
        cr_assert_eq(parse(text, strlen(text), flags, &t, err, sizeof err), -EINVAL, "accepted: %s", text);
        cr_assert_str_eq(err, want, "for: %s", text);
        toy_done(&t);
}

static char *dump(const toy_t *t) {
        char *out = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&out, &n);
        cr_assert_not_null(f);
        ini_dump(keys, ELEMENTSOF(keys), t, f);
        fclose(f);
        return out;
}

Test(ini, defaults_values_and_dump_round_trip) {
        toy_t t;
        parse_ok("", 0, 0, &t);
        cr_assert_str_eq(t.name, "def");
        cr_assert_null(t.opt);
        cr_assert_eq(t.count, 3);
        cr_assert_eq(t.wait, 300000000u);
        cr_assert_eq(t.ms, 250000u);
        cr_assert_eq(t.colour, 0);
        _cleanup_free_ char *d = dump(&t);
        cr_assert_str_eq(d, "[a]\nname = def\nopt =\ncolour = red\n\n[b]\ncount = 3\nwait = 5min\nms = 250\nx = 0\n");
        toy_done(&t);

        const char text[] = "\xef\xbb\xbf# comment\r\n[b]\r\n; another\ncount: 7 ;inline\nwait = 90s\n"
                            "x = -0.25\n\n[a]\nname = n;1\nopt = /o\ncolour = blue\n";
        parse_ok(text, sizeof text - 1, 0, &t);
        cr_assert_str_eq(t.name, "n;1");
        cr_assert_str_eq(t.opt, "/o");
        cr_assert_eq(t.count, 7);
        cr_assert_eq(t.wait, 90000000u);
        cr_assert_eq(t.colour, 2);
        cr_assert_float_eq(t.x, -0.25, 1e-12);
        _cleanup_free_ char *d1 = dump(&t);
        toy_done(&t);
        parse_ok(d1, strlen(d1), INI_KEYS_ONCE, &t);
        _cleanup_free_ char *d2 = dump(&t);
        cr_assert_str_eq(d1, d2);
        toy_done(&t);
}

Test(ini, empty_values) {
        toy_t t;
        const char text[] = "[a]\nopt = /o\nopt =\n[b]\nx = 1\nx =\n";
        parse_ok(text, sizeof text - 1, 0, &t);
        cr_assert_null(t.opt);
        cr_assert_float_eq(t.x, 0, 1e-12);
        toy_done(&t);
        fails("[a]\nname =\n", 0, "t.conf:2: [a] name: must be 1..255 printable ASCII characters without spaces");
}

Test(ini, line_rules) {
        static const struct {
                const char *text, *want;
                unsigned flags; /* parse flags, 0 but where given */
        } refused[] = {
                { "[a]\nname = x\n  opt = /o\n", "t.conf:3: [a] name: continuation lines are not supported (remove the indentation)" },
                { "[a]\n\nname = x\n\n\tcolour = red\n", "t.conf:5: [a] name: continuation lines are not supported (remove the indentation)" },
                { "[b]\ncount = 1\n  [a]\n", "t.conf:3: [b] count: continuation lines are not supported (remove the indentation)" },
                { "name = x\n", "t.conf:1: name: key outside of any section" },
                { "[c]\n", "t.conf:1: [c]: unknown section" },
                { "[ a ]\n", "t.conf:1: [ a ]: unknown section" },
                { "[a]\nnope = 1\n", "t.conf:2: [a] nope: unknown key" },
                { "[a]\nNAME = 1\n", "t.conf:2: [a] NAME: unknown key" },
                { "[a]\ncount = 1\n", "t.conf:2: [a] count: unknown key" },
                { "[a]\njust words\n", "t.conf:2: syntax error (expected [section] or key = value)" },
                { "[a]\n= x\n", "t.conf:2: syntax error (expected [section] or key = value)" },
                { "[a\n", "t.conf:1: syntax error (expected [section] or key = value)" },
                { "[a] name = x\n", "t.conf:1: [a]: text after the section header" },
                { "[a]\nname = x\nname = y\n", "t.conf:3: [a] name: set twice (first on line 2)", INI_KEYS_ONCE },
                { "[b]\ncount = 0\ncount = 99\n", "t.conf:2: [b] count: expected an integer from 1 to 10" },
                { "[b]\nwait = 2h\n", "t.conf:2: [b] wait: out of range (0..1h)" },
                { "[b]\nwait = soon\n", "t.conf:2: [b] wait: not a duration (milliseconds, or a number with ms, s, min, h or d)" },
                { "[b]\nms = 1s\n", "t.conf:2: [b] ms: expected an integer from 100 to 1000 ms" },
                { "[a]\ncolour = pink\n", "t.conf:2: [a] colour: must be red, green or blue" },
                { "[b]\nx = 2\n", "t.conf:2: [b] x: out of range (-1..1)" },
                /* a value that reads as a comment: refused, not taken as the value nor as empty */
                { "[a]\nname = ;x\n", "t.conf:2: [a] name: a value cannot start with ';' (it reads as a comment: put "
                                       "the comment on a line of its own; an empty value unsets an optional key)" },
                { "[a]\nname =;x\n", "t.conf:2: [a] name: a value cannot start with ';' (it reads as a comment: put "
                                      "the comment on a line of its own; an empty value unsets an optional key)" },
                { "[a]\nopt: \t# later\n", "t.conf:2: [a] opt: a value cannot start with '#' (it reads as a comment: "
                                           "put the comment on a line of its own; an empty value unsets an optional key)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                fails(refused[i].text, refused[i].flags, refused[i].want);

        char err[512] = "";
        toy_t t;
        const char nul[] = "[a]\nname = a\0b\n";
        cr_assert_eq(parse(nul, sizeof nul - 1, 0, &t, err, sizeof err), -EINVAL);
        cr_assert_str_eq(err, "t.conf:2: contains a NUL byte");
        toy_done(&t);

        /* INI_LINE_MAX (2048) characters are fine, one more is not; the line end does not count
         * ("opt = " and a path: the key without a length limit of its own) */
        cr_assert_eq(INI_LINE_MAX, 2048);
        char line[INI_LINE_MAX + 32];
        int n = snprintf(line, sizeof line, "[a]\nopt = /");
        memset(line + n, 'x', INI_LINE_MAX - 7);
        strcpy(line + n + INI_LINE_MAX - 7, "\r\n");
        parse_ok(line, strlen(line), 0, &t);
        cr_assert_eq(strlen(t.opt), INI_LINE_MAX - 6);
        toy_done(&t);
        strcpy(line + n + INI_LINE_MAX - 7, "y\n");
        cr_assert_eq(parse(line, strlen(line), 0, &t, err, sizeof err), -EINVAL);
        snprintf(line, sizeof line, "t.conf:2: line too long (at most %u characters)", INI_LINE_MAX);
        cr_assert_str_eq(err, line);
        toy_done(&t);
}

Test(ini, value_ok) {
        cr_assert(ini_value_ok("id", "urn:dev:ops:gw-1"));
        cr_assert(ini_value_ok("id", "a b"));
        static const char *const bad[] = { NULL, "", " a", "a ", "a;b", "a#b", "a\tb", "a\nb", "a\x7f" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_assert(!ini_value_ok("id", bad[i]), "%zu", i);
        /* "psk_identity = v" at the line limit reads back; one more character does not fit */
        char big[INI_LINE_MAX + 2];
        size_t fits = INI_LINE_MAX - strlen("psk_identity = ");
        cr_assert_eq(ini_value_max("psk_identity"), fits);
        memset(big, 'x', fits);
        big[fits] = 0;
        cr_assert(ini_value_ok("psk_identity", big));
        char line[INI_LINE_MAX + 32];
        snprintf(line, sizeof line, "psk_identity = %s", big);
        cr_assert_eq(strlen(line), INI_LINE_MAX);
        big[fits] = 'x';
        big[fits + 1] = 0;
        cr_assert(!ini_value_ok("psk_identity", big));
}

Test(ini, sections_reopen_keys_last_wins) {
        char err[512] = "";
        toy_t t;
        const char text[] = "[a]\nname = one\n[b]\ncount = 2\n[a]\nname = two\n";
        parse_ok(text, sizeof text - 1, 0, &t);
        cr_assert_str_eq(t.name, "two");
        toy_done(&t);
        cr_assert_eq(parse(text, sizeof text - 1, INI_KEYS_ONCE, &t, err, sizeof err), -EINVAL);
        cr_assert_str_eq(err, "t.conf:6: [a] name: set twice (first on line 2)");
        toy_done(&t);
}

Test(ini, origins_and_key_errors) {
        char err[512] = "";
        toy_t t = {};
        ini_t *ini = NULL;
        cr_assert_eq(ini_new(keys, ELEMENTSOF(keys), &t, "main.conf", 0, err, sizeof err, &ini), 0);
        const char text[] = "[b]\n\ncount = 4\n";
        cr_assert_eq(ini_parse_buffer(ini, "one.conf", text, sizeof text - 1), 0);
        cr_assert(ini_is_set(ini, F(count)));
        cr_assert(!ini_is_set(ini, F(name)));
        cr_assert_eq(ini_key_at(ini, F(wait)), &keys[3]);
        cr_assert_null(ini_key_at(ini, 1));
        cr_assert_eq(ini_fail_key(ini, -EINVAL, F(count), "too %s", "many"), -EINVAL);
        cr_assert_str_eq(err, "one.conf:3: [b] count: too many");
        /* the first error stays, and further input is refused with it */
        cr_assert_eq(ini_fail(ini, -ENOENT, "later"), -EINVAL);
        cr_assert_eq(ini_parse_buffer(ini, "two.conf", "", 0), -EINVAL);
        cr_assert_eq(ini_error(ini), -EINVAL);
        cr_assert_str_eq(err, "one.conf:3: [b] count: too many");
        ini_free(ini);
        toy_done(&t);

        cr_assert_eq(ini_new(keys, ELEMENTSOF(keys), &t, "main.conf", 0, err, sizeof err, &ini), 0);
        ini_fail_key(ini, -EINVAL, F(name), "required");
        cr_assert_str_eq(err, "main.conf: [a] name: required");
        ini_free(ini);
        toy_done(&t);
}

Test(ini, files_and_dropins) {
        char dir[] = "/tmp/test-ini.XXXXXX", path[64], d[80], p[256], err[512];
        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/t.conf", dir);
        snprintf(d, sizeof d, "%s.d", path);
        toy_t t = {};
        ini_t *ini = NULL;

        cr_assert_eq(ini_new(keys, ELEMENTSOF(keys), &t, path, 0, err, sizeof err, &ini), 0);
        cr_assert_eq(ini_parse_file(ini, path), -ENOENT);
        snprintf(p, sizeof p, "%s: cannot open: No such file or directory", path);
        cr_assert_str_eq(err, p);
        ini_free(ini);

        cr_assert_eq(ini_new(keys, ELEMENTSOF(keys), &t, path, 0, err, sizeof err, &ini), 0);
        cr_assert_eq(ini_parse_file(ini, dir), -EINVAL);
        snprintf(p, sizeof p, "%s: not a regular file", dir);
        cr_assert_str_eq(err, p);
        ini_free(ini);

        FILE *f = fopen(path, "we");
        fputs("[a]\nname = main\n[b]\ncount = 1\n", f);
        fclose(f);
        cr_assert_eq(mkdir(d, 0755), 0);
        static const char *const dropins[][2] = {
                { "20-b.conf", "[a]\nname = twenty\n" },
                { "10-a.conf", "[a]\nname = ten\n[b]\ncount = 10\n" },
                { "30-c.conf.off", "[a]\nname = off\n" },
                { ".40-d.conf", "[a]\nname = hidden\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(dropins); i++) {
                snprintf(p, sizeof p, "%s/%s", d, dropins[i][0]);
                f = fopen(p, "we");
                fputs(dropins[i][1], f);
                fclose(f);
        }
        cr_assert_eq(ini_new(keys, ELEMENTSOF(keys), &t, path, 0, err, sizeof err, &ini), 0);
        cr_assert_eq(ini_parse_file(ini, path), 0, "%s", err);
        cr_assert_eq(ini_parse_dropins(ini, path, 8), 0, "%s", err);
        cr_assert_str_eq(t.name, "twenty");
        cr_assert_eq(t.count, 10);
        ini_fail_key(ini, -EINVAL, F(name), "x");
        snprintf(p, sizeof p, "%s/20-b.conf:2: [a] name: x", d);
        cr_assert_str_eq(err, p);
        ini_free(ini);
        toy_done(&t);

        cr_assert_eq(ini_new(keys, ELEMENTSOF(keys), &t, path, 0, err, sizeof err, &ini), 0);
        cr_assert_eq(ini_parse_dropins(ini, path, 1), -E2BIG);
        snprintf(p, sizeof p, "%s: too many drop-in files (at most 1)", d);
        cr_assert_str_eq(err, p);
        ini_free(ini);
        toy_done(&t);

        for (size_t i = 0; i < ELEMENTSOF(dropins); i++) {
                snprintf(p, sizeof p, "%s/%s", d, dropins[i][0]);
                unlink(p);
        }
        rmdir(d);
        unlink(path);
        rmdir(dir);
}

/* ---- unsigned or auto ---- */

typedef struct autos {
        unsigned n;
} autos_t;

static const ini_key_t auto_keys[] = {
        { "s", "n", &ini_type_uint_auto, offsetof(autos_t, n), "auto", &(const ini_uint_t) { 1, 64, "" } },
};

Test(ini, uint_auto) {
        static const struct {
                const char *text;
                int ret;
                unsigned n;
                const char *text_out; /* the dump, or the error */
        } cases[] = {
                { "", 0, 0, "[s]\nn = auto\n" },
                { "[s]\nn = auto\n", 0, 0, "[s]\nn = auto\n" },
                { "[s]\nn = 64\n", 0, 64, "[s]\nn = 64\n" },
                { "[s]\nn = 0\n", -EINVAL, 0, "a.conf:2: [s] n: expected auto or an integer from 1 to 64" },
                { "[s]\nn = 65\n", -EINVAL, 0, "a.conf:2: [s] n: expected auto or an integer from 1 to 64" },
                { "[s]\nn = Auto\n", -EINVAL, 0, "a.conf:2: [s] n: expected auto or an integer from 1 to 64" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                autos_t a = { .n = 99 };
                char err[256] = "";
                ini_t *ini = NULL;
                cr_assert_eq(ini_new(auto_keys, ELEMENTSOF(auto_keys), &a, "a.conf", 0, err, sizeof err, &ini), 0, "%s",
                             err);
                int r = ini_parse_buffer(ini, "a.conf", cases[i].text, strlen(cases[i].text));
                cr_assert_eq(r, cases[i].ret, "%s: %d (%s)", cases[i].text, r, err);
                if (r == 0) {
                        cr_assert_eq(a.n, cases[i].n, "%s", cases[i].text);
                        _cleanup_free_ char *d = NULL;
                        size_t n = 0;
                        FILE *f = open_memstream(&d, &n);
                        cr_assert_not_null(f);
                        ini_dump(auto_keys, ELEMENTSOF(auto_keys), &a, f);
                        fclose(f);
                        cr_assert_str_eq(d, cases[i].text_out);
                } else
                        cr_assert_str_eq(err, cases[i].text_out);
                ini_free(ini);
        }
}

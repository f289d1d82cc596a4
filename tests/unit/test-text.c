/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>

#include "util/macro.h"
#include "util/text.h"

/* in through text_copy() with room for all of it, text_clean() and text_dup(): the same want. */
static void check(const char *in, text_class_t class, const char *want) {
        char out[64];
        cr_assert_str_eq(text_copy(in, class, out, sizeof out), want, "class %d", class);
        cr_assert_eq(strlen(out), strlen(in), "one byte for one byte");
        char s[64];
        snprintf(s, sizeof s, "%s", in);
        cr_assert_str_eq(text_clean(s, class), want, "in place, class %d", class);
        _cleanup_free_ char *d = text_dup(in, class);
        cr_assert_not_null(d);
        cr_assert_str_eq(d, want, "dup, class %d", class);
}

Test(text, ascii) {
        check("plain text, ~all~ of it: 0x20..0x7e", TEXT_ASCII, "plain text, ~all~ of it: 0x20..0x7e");
        check("a\tb\nc\rd\x1b[2Je\x7f", TEXT_ASCII, "a?b?c?d?[2Je?");
        check("\x01\x1f", TEXT_ASCII, "??");
        /* every byte not ASCII is one '?', well-formed UTF-8 or not */
        check("caf\xc3\xa9 \xe2\x82\xac \xff\x80", TEXT_ASCII, "caf?? ??? ??");
        check("\xc2\x9b" "31m", TEXT_ASCII, "??31m");
        check("", TEXT_ASCII, "");
}

Test(text, printable) {
        check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 \xc2\xa0", TEXT_PRINTABLE,
              "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x91 \xc2\xa0");
        check("a\tb\nc\x1b[2Jd\x7f", TEXT_PRINTABLE, "a?b?c?[2Jd?");
        /* C1: U+009B is a CSI to a terminal that takes it, U+0080 and U+009F the ends */
        check("\xc2\x9b" "31m \xc2\x80 \xc2\x9f", TEXT_PRINTABLE, "??31m ?? ??");
        /* not UTF-8: a lone continuation byte, 0xff, overlong, a surrogate, above U+10FFFF, cut short */
        check("\x80|\xff|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82", TEXT_PRINTABLE, "?|?|??|???|????|??");
        /* a sequence broken by a byte that starts the next: the next one is read on its own */
        check("\xe2\x82" "a\xc3\xa9", TEXT_PRINTABLE, "??a\xc3\xa9");
}

Test(text, utf8) {
        /* controls stay, C1 too: for JSON and the store, which take them */
        check("a\tb\nc\x1b[2J\x7f\xc2\x9b", TEXT_UTF8, "a\tb\nc\x1b[2J\x7f\xc2\x9b");
        check("f\xc3\xa1" "brica \xff\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82", TEXT_UTF8,
              "f\xc3\xa1" "brica ???|???|????|??");
        check("\xf4\x8f\xbf\xbf \xef\xbf\xbf", TEXT_UTF8, "\xf4\x8f\xbf\xbf \xef\xbf\xbf"); /* U+10FFFF, U+FFFF */
}

Test(text, cut) {
        char out[8];
        memset(out, 'x', sizeof out);
        cr_assert_str_eq(text_copy("0123456789", TEXT_ASCII, out, sizeof out), "0123456");
        cr_assert_str_eq(text_copy("a\x01" "23456789", TEXT_ASCII, out, 4), "a?2");
        cr_assert_str_eq(text_copy("abc", TEXT_ASCII, out, 1), "");
        /* never inside a character kept: a euro of 3 bytes with 2 left goes whole */
        cr_assert_str_eq(text_copy("abcde\xe2\x82\xac", TEXT_PRINTABLE, out, sizeof out), "abcde");
        cr_assert_str_eq(text_copy("abcd\xe2\x82\xac", TEXT_UTF8, out, sizeof out), "abcd\xe2\x82\xac");
        /* bytes that are not kept are one '?' each, cut like ASCII */
        cr_assert_str_eq(text_copy("abcde\xe2\x82", TEXT_UTF8, out, sizeof out), "abcde??");
        cr_assert_str_eq(text_copy("abcdef\xe2\x82", TEXT_UTF8, out, sizeof out), "abcdef?");
}

Test(text, null_reads_as_empty) {
        char out[4] = "xyz";
        cr_assert_str_eq(text_copy(NULL, TEXT_ASCII, out, sizeof out), "");
        _cleanup_free_ char *d = text_dup(NULL, TEXT_PRINTABLE);
        cr_assert_not_null(d);
        cr_assert_str_eq(d, "");
}

/* SPDX-License-Identifier: MIT */
/* proto/tls-name.c: a certificate's dNSName against the MEF host, RFC 9525 6.3, row by row.
 * tests/integration/test-tls-failures.c runs the same rules through real handshakes. */
#include <criterion/criterion.h>

#include "proto/tls-name.h"

#include <string.h>

typedef struct {
        const char *presented; /* the dNSName */
        const char *host;
        bool want;
} row_t;

static const row_t rows[] = {
        /* exact names, ASCII case folded on both sides */
        { "mef.example.net", "mef.example.net", true },
        { "MEF.Example.NET", "mef.example.net", true },
        { "mef.example.net", "MEF.example.net", true },
        { "localhost", "localhost", true },
        { "mef.example.net", "mef.example.org", false },
        { "mef.example.net", "example.net", false },
        { "example.net", "mef.example.net", false },
        { "mef.example.ne", "mef.example.net", false },
        { "mef.example.net", "mef.example.ne", false },
        /* IDNA A-labels: plain ASCII labels, case folded like any other */
        { "xn--mnchen-3ya.example.net", "xn--mnchen-3ya.example.net", true },
        { "XN--MNCHEN-3YA.example.net", "xn--mnchen-3ya.example.net", true },
        { "xn--mnchen-3ya.example.net", "xn--mnchen-4ya.example.net", false },
        /* a wildcard: the whole left-most label, for exactly one label */
        { "*.example.net", "mef.example.net", true },
        { "*.EXAMPLE.net", "mef.example.net", true },
        { "*.example.net", "xn--mnchen-3ya.example.net", true },
        { "*.b.example.net", "a.b.example.net", true },
        { "*.example.net", "example.net", false },
        { "*.example.net", "a.b.example.net", false },
        { "*.example.net", "mef.example.org", false },
        /* ... with at least two labels to its right */
        { "*.net", "example.net", false },
        { "*.localhost", "mef.localhost", false },
        { "*.test", "mef.test", false },
        /* any other '*' makes the name invalid */
        { "*", "localhost", false },
        { "*", "mef.example.net", false },
        { "**.example.net", "mef.example.net", false },
        { "m*", "mef", false },
        { "m*.example.net", "mef.example.net", false },
        { "*f.example.net", "mef.example.net", false },
        { "m*f.example.net", "mef.example.net", false },
        { "mef*.example.net", "mef.example.net", false },
        { "*.*.net", "mef.example.net", false },
        { "*.*.example.net", "a.b.example.net", false },
        { "mef.*.net", "mef.example.net", false },
        { "mef.example.*", "mef.example.net", false },
        { "*.example.*", "mef.example.net", false },
        { "xn--*.example.net", "xn--mnchen-3ya.example.net", false },
        /* no '*' in the host either: the wildcard is the certificate's only */
        { "*.example.net", "*.example.net", false },
        { "mef.example.net", "*.example.net", false },
        /* empty labels, on either side */
        { "", "mef.example.net", false },
        { "mef.example.net", "", false },
        { ".", ".", false },
        { "mef.example.net.", "mef.example.net.", false },
        { "mef.example.net.", "mef.example.net", false },
        { "mef.example.net", "mef.example.net.", false },
        { "*.example.net.", "mef.example.net.", false },
        { ".mef.example.net", ".mef.example.net", false },
        { "mef..net", "mef..net", false },
        { "*.", "mef.", false },
        { "*..net", "mef..net", false },
        /* bytes outside printable ASCII */
        { "mef example.net", "mef example.net", false },
        { "m\xc3\xbcnchen.example.net", "m\xc3\xbcnchen.example.net", false },
        { "mef.example.net\x7f", "mef.example.net\x7f", false },
};

Test(tls_name, table) {
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                const row_t *r = &rows[i];
                cr_expect_eq(tls_name_match(r->presented, strlen(r->presented), r->host), r->want,
                             "'%s' for host '%s': want %s", r->presented, r->host, r->want ? "match" : "no match");
        }
}

/* The dNSName's length counts, not a NUL in it: "mef.example.net\0.evil.org" is not
 * mef.example.net, nor is a prefix of the bytes given. */
Test(tls_name, length_not_nul) {
        static const char nul[] = "mef.example.net\0.evil.org";
        cr_assert_not(tls_name_match(nul, sizeof nul - 1, "mef.example.net"));
        cr_assert_not(tls_name_match(nul, sizeof nul - 1, "mef.example.net.evil.org"));
        static const char wild[] = "*.example.net\0";
        cr_assert_not(tls_name_match(wild, sizeof wild - 1, "mef.example.net"));
        cr_assert(tls_name_match(wild, sizeof wild - 2, "mef.example.net"));
        cr_assert_not(tls_name_match("mef.example.netx", 15 - 1, "mef.example.net"));
        cr_assert(tls_name_match("mef.example.netx", 15, "mef.example.net"));
}

Test(tls_name, null) {
        cr_assert_not(tls_name_match(NULL, 0, "mef.example.net"));
        cr_assert_not(tls_name_match("mef.example.net", 15, NULL));
}

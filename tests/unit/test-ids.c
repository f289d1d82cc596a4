/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "proto/ids.h"

typedef int (*check_t)(const char *s, const char **ret_why);

static void ok(check_t f, const char *s) {
        const char *why = NULL;
        cr_assert_eq(f(s, &why), 0, "refused: %s (%s)", s, why ?: "");
        cr_assert_null(why);
}

/* Refused, with a reason that contains want. */
static void bad(check_t f, const char *s, const char *want) {
        const char *why = NULL;
        int r = f(s, &why);
        cr_assert(r == -EINVAL || r == -E2BIG, "accepted or wrong error %d: %s", r, s);
        cr_assert_not_null(why, "no reason for %s", s);
        cr_assert(strstr(why, want), "reason for \"%s\" is \"%s\", expected \"%s\"", s, why, want);
        /* never the value itself */
        if (strlen(s) >= 4)
                cr_assert_null(strstr(why, s), "the reason quotes the value: %s", why);
}

/* One value for one check: want "", accepted; otherwise refused with a reason that contains
 * want. Each test below runs the rows of its check. */
struct id_case {
        check_t f;
        const char *s;
        const char *want;
};

static const struct id_case cases[] = {
        { ids_check_cse_id, "/mn-cse-000123", "" },
        { ids_check_cse_id, "/in-cse", "" },
        { ids_check_cse_id, "/A.b_c~d-9", "" },
        { ids_check_cse_id, "/...", "" },
        { ids_check_cse_id, "mn-781", "must start with '/'" },
        { ids_check_cse_id, "/mn-$(id)`id`;reboot", "not a CSE-ID" },
        { ids_check_cse_id, "/in-cse/../../x", "'/' inside" },
        { ids_check_cse_id, "/..", "'.' or '..'" },
        { ids_check_cse_id, "/.", "'.' or '..'" },
        { ids_check_cse_id, "/", "empty segment" },
        { ids_check_cse_id, "/a:b", "not a CSE-ID" },
        { ids_check_cse_id, "/a%41", "not a CSE-ID" },
        /* node_id: by form: URN, OID, plain name */
        { ids_check_node_id, "urn:dev:ops:0004A3-MNGW-000123", "" },
        { ids_check_node_id, "URN:dev:mac:0024befffe804ff1", "" },
        { ids_check_node_id, "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "" },
        { ids_check_node_id, "urn:x:abc", "not a URN" },
        { ids_check_node_id, "urn:-ab:abc", "not a URN" },
        { ids_check_node_id, "urn:dev:", "not a URN" },
        { ids_check_node_id, "urn:dev", "not a URN" },
        { ids_check_node_id, "urn:d_v:x", "not a URN" },
        { ids_check_node_id, "1.2.481.1.1001.1001.010001.001.001.0", "" },
        { ids_check_node_id, "1..2", "not an OID" },
        { ids_check_node_id, "1.2.", "not an OID" },
        { ids_check_node_id, "12", "" }, /* digits only: a plain name, not an OID */
        { ids_check_node_id, "node-1", "" },
        { ids_check_node_id, "n", "" },
        { ids_check_node_id, "gw@site:7", "" },
        { ids_check_node_id, "node 1", "contains a space" },
        { ids_check_node_id, "../../etc/passwd", "contains '/'" },
        { ids_check_node_id, ".x", "must start with a letter or a digit" },
        { ids_check_node_id, "a/../b", "contains '/'" },
        { ids_check_node_id, "/mn", "contains '/'" },
        { ids_check_node_id, "-rf", "must start with a letter or a digit" },
        { ids_check_node_id, "a;reboot", "not an M2M-Node-ID" },
        { ids_check_target_id, "/in-cse", "" },
        { ids_check_target_id, "/in-cse/Cmaf01", "" },
        { ids_check_target_id, "in-cse", "must start with '/'" },
        { ids_check_target_id, "/in-cse/../../x", "'.' or '..'" },
        { ids_check_target_id, "/in-cse/..", "'.' or '..'" },
        { ids_check_target_id, "/a/b/c", "more than two segments" },
        { ids_check_target_id, "/a//b", "empty segment" },
        { ids_check_target_id, "/a/", "empty segment" },
        { ids_check_target_id, "/a?b", "not a target ID" },
        { ids_check_host, "mef.example.net", "" },
        { ids_check_host, "MEF.Example.net", "" },
        { ids_check_host, "localhost", "" },
        { ids_check_host, "127.0.0.1", "" },
        { ids_check_host, "::1", "" },
        { ids_check_host, "fe80::1:2", "" },
        { ids_check_host, "0a.1b", "" },
        { ids_check_host, "a1.b2c", "" },
        { ids_check_host, "1.2.3.999", "not an IPv4 address" },
        { ids_check_host, "1.2.3", "not an IPv4 address" },
        { ids_check_host, "a.1", "not an IPv4 address" },
        { ids_check_host, "-a.example", "starting or ending with '-'" },
        { ids_check_host, "a-.example", "starting or ending with '-'" },
        { ids_check_host, "a..example", "empty label" },
        { ids_check_host, "a.example.", "empty label" },
        { ids_check_host, "a_b.example", "not a host name" },
        { ids_check_host, "[::1]", "IPv6" },
        { ids_check_host, "fe80::1%eth0", "IPv6" },
        { ids_check_host, "1:2:3", "IPv6" },
        { ids_check_ke_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@mef.example.net", "" },
        { ids_check_ke_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@127.0.0.1", "" },
        { ids_check_ke_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@::1", "" },
        { ids_check_ke_id, "a@b", "" },
        { ids_check_ke_id, "3F2A@mef.example.net", "not a KeID (lower-case hex, '@', a host name)" },
        { ids_check_ke_id, "3f2a@MEF.example.net", "part after '@'" },
        { ids_check_ke_id, "3f2a", "not a KeID" },
        { ids_check_ke_id, "@mef", "not a KeID" },
        { ids_check_ke_id, "3f2a@", "part after '@'" },
        { ids_check_ke_id, "3f2a@mef/x", "part after '@'" },
        { ids_check_ke_id, "3f2a@a@b", "part after '@'" },
        { ids_check_ke_id, "3f2a.1@mef", "not a KeID" },
        { ids_check_ke_id, "zz@mef", "not a KeID" },
        { ids_check_ke_id, "../../../../etc/passwd@mef", "not a KeID" },
        { ids_check_kpsa_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601.1@mef.example.net", "" },
        { ids_check_kpsa_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601.999@mef.example.net", "" },
        { ids_check_kpsa_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@mef.example.net", "" },
        { ids_check_kpsa_id, "../../../../etc/passwd@mef", "not a kpsaID (lower-case hex, optional .<n>" },
        { ids_check_kpsa_id, "3f2a.0@mef", "not a kpsaID" },
        { ids_check_kpsa_id, "3f2a.01@mef", "not a kpsaID" },
        { ids_check_kpsa_id, "3f2a.1000@mef", "not a kpsaID" },
        { ids_check_kpsa_id, "3f2a.@mef", "not a kpsaID" },
        { ids_check_kpsa_id, "3f2a.1.2@mef", "not a kpsaID" },
        { ids_check_kpsa_id, "3f2a@mef.example.net.1", "part after '@'" },
        { ids_check_cse_base, "https://in.example.net:8443/~/in-cse/in-name", "" },
        { ids_check_cse_base, "HTTP://in.example.net", "" },
        { ids_check_cse_base, "coap://[fe80::1]:5683/in-cse", "" },
        { ids_check_cse_base, "coaps://10.0.0.1/in-cse", "" },
        { ids_check_cse_base, "mqtt://broker:1883/", "" },
        { ids_check_cse_base, "mqtts://broker/a%2Fb", "" },
        { ids_check_cse_base, "ws://in/a:b@c!$&'()*+,;=", "" },
        { ids_check_cse_base, "wss://in/x", "" },
        { ids_check_cse_base, "in.example.net", "not an absolute URI" },
        { ids_check_cse_base, "ftp://in/x", "not an absolute URI" },
        { ids_check_cse_base, "https:in/x", "not an absolute URI" },
        { ids_check_cse_base, "https://u:p@in.example.net/x", "user information" },
        { ids_check_cse_base, "https://in/x?a=1", "query or fragment" },
        { ids_check_cse_base, "https://in/x#f", "query or fragment" },
        { ids_check_cse_base, "https:///x", "no host" },
        { ids_check_cse_base, "https://in:0/", "invalid port" },
        { ids_check_cse_base, "https://in:65536/", "invalid port" },
        { ids_check_cse_base, "https://in:/", "invalid port" },
        { ids_check_cse_base, "https://in:8x/", "invalid port" },
        { ids_check_cse_base, "https://[fe80::1/", "IPv6" },
        { ids_check_cse_base, "https://[in]/", "IPv6" },
        { ids_check_cse_base, "https://a::1/", "invalid port" },
        { ids_check_cse_base, "https://in_x/", "not a host name" },
        { ids_check_cse_base, "https://in/a/../b", "'.' or '..' path segment" },
        { ids_check_cse_base, "https://in/.", "'.' or '..' path segment" },
        { ids_check_cse_base, "https://in/a%2", "percent-encoding" },
        { ids_check_cse_base, "https://in/a%zz", "percent-encoding" },
        { ids_check_cse_base, "https://in/a\"b", "not allowed in a URI path" },
        { ids_check_cse_base, "https://in/a`id`", "not allowed in a URI path" },
};
static const size_t n_cases = sizeof cases / sizeof cases[0];

/* The rows of cases[] for f. */
static void check_all(check_t f) {
        size_t n = 0;
        for (size_t i = 0; i < n_cases; i++) {
                if (cases[i].f != f)
                        continue;
                if (cases[i].want[0])
                        bad(f, cases[i].s, cases[i].want);
                else
                        ok(f, cases[i].s);
                n++;
        }
        cr_assert_gt(n, 0);
}

static char *repeat(char c, size_t n) {
        static char buf[2048];
        cr_assert_lt(n, sizeof buf);
        memset(buf, c, n);
        buf[n] = 0;
        return buf;
}

/* head, n times 'a' and tail is accepted; one 'a' more is refused */
static void check_length(check_t f, const char *head, size_t n, const char *tail, const char *want) {
        char s[2048];
        cr_assert_lt(strlen(head) + n + 1 + strlen(tail), sizeof s);
        snprintf(s, sizeof s, "%s%s%s", head, repeat('a', n), tail);
        ok(f, s);
        snprintf(s, sizeof s, "%s%s%s", head, repeat('a', n + 1), tail);
        bad(f, s, want);
}

Test(ids, common_rules) {
        check_t all[] = { ids_check_cse_id, ids_check_node_id, ids_check_target_id, ids_check_host,
                          ids_check_ke_id, ids_check_kpsa_id, ids_check_cse_base };
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
                bad(all[i], "", "empty");
                bad(all[i], "a b", "contains a space");
                bad(all[i], "/a\tb", "control character");
                bad(all[i], "/a\nb", "control character");
                bad(all[i], "/a\x7f", "control character");
                bad(all[i], "/\xc3\xa9", "non-ASCII");
                const char *why = NULL;
                cr_assert_eq(all[i](NULL, &why), -EINVAL);
                cr_assert_eq(all[i]("", NULL), -EINVAL); /* why may be NULL */
        }
}

Test(ids, cse_id) {
        check_all(ids_check_cse_id);
        check_length(ids_check_cse_id, "/", 254, "", "too long (max 255)");
}

Test(ids, node_id) {
        check_all(ids_check_node_id);
        check_length(ids_check_node_id, "", 255, "", "too long (max 255)");
}

Test(ids, target_id) {
        check_all(ids_check_target_id);
        bad(ids_check_target_id, repeat('/', 1), "empty segment");
}

Test(ids, host) {
        check_all(ids_check_host);
        /* a KeID's host is a host name in lower case */
        bad(ids_check_ke_id, "0a@MEF.example.net", "lower-case host");
        bad(ids_check_ke_id, "0a@FE80::1", "lower-case host");
        ok(ids_check_ke_id, "0a@fe80::1");
        bad(ids_check_host, repeat('a', 64), "longer than 63");
        char h[300] = "";
        for (int i = 0; i < 4; i++)
                strcat(h, i ? "." : ""), strcat(h, repeat('a', 63));
        cr_assert_eq(strlen(h), 255);
        bad(ids_check_host, h, "too long (max 253)");
        h[253] = 0; /* ends in "a.a": 253 characters */
        h[251] = 'a';
        ok(ids_check_host, h + 2);
}

Test(ids, ke_id) {
        check_all(ids_check_ke_id);
        check_length(ids_check_ke_id, "", 64, "@mef", "not a KeID");
}

Test(ids, kpsa_id) {
        check_all(ids_check_kpsa_id);
}

Test(ids, cse_base) {
        check_all(ids_check_cse_base);
        check_length(ids_check_cse_base, "https://in/", 1024 - strlen("https://in/"), "",
                     "too long (max 1024)");
}

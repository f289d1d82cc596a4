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

static char *repeat(char c, size_t n) {
        static char buf[2048];
        cr_assert_lt(n, sizeof buf);
        memset(buf, c, n);
        buf[n] = 0;
        return buf;
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
        ok(ids_check_cse_id, "/mn-cse-000123");
        ok(ids_check_cse_id, "/in-cse");
        ok(ids_check_cse_id, "/A.b_c~d-9");
        ok(ids_check_cse_id, "/...");
        bad(ids_check_cse_id, "mn-781", "must start with '/'");
        bad(ids_check_cse_id, "/mn-$(id)`id`;reboot", "not a CSE-ID");
        bad(ids_check_cse_id, "/in-cse/../../x", "'/' inside");
        bad(ids_check_cse_id, "/..", "'.' or '..'");
        bad(ids_check_cse_id, "/.", "'.' or '..'");
        bad(ids_check_cse_id, "/", "empty segment");
        bad(ids_check_cse_id, "/a:b", "not a CSE-ID");
        bad(ids_check_cse_id, "/a%41", "not a CSE-ID");
        char id[300] = "/";
        strcat(id, repeat('a', 254));
        ok(ids_check_cse_id, id);
        strcat(id, "a");
        bad(ids_check_cse_id, id, "too long (max 255)");
}

Test(ids, node_id) {
        ok(ids_check_node_id, "urn:dev:ops:0004A3-MNGW-000123");
        ok(ids_check_node_id, "URN:dev:mac:0024befffe804ff1");
        ok(ids_check_node_id, "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66");
        ok(ids_check_node_id, "1.2.481.1.1001.1001.010001.001.001.0");
        ok(ids_check_node_id, "node-1");
        ok(ids_check_node_id, "n");
        ok(ids_check_node_id, "gw@site:7");
        bad(ids_check_node_id, "node 1", "contains a space");
        bad(ids_check_node_id, "../../etc/passwd", "contains '/'");
        bad(ids_check_node_id, ".x", "must start with a letter or a digit");
        bad(ids_check_node_id, "a/../b", "contains '/'");
        bad(ids_check_node_id, "/mn", "contains '/'");
        bad(ids_check_node_id, "-rf", "must start with a letter or a digit");
        bad(ids_check_node_id, "a;reboot", "not an M2M-Node-ID");
        bad(ids_check_node_id, "urn:x:abc", "not a URN");
        bad(ids_check_node_id, "urn:-ab:abc", "not a URN");
        bad(ids_check_node_id, "urn:dev:", "not a URN");
        bad(ids_check_node_id, "urn:dev", "not a URN");
        bad(ids_check_node_id, "urn:d_v:x", "not a URN");
        bad(ids_check_node_id, "1..2", "not an OID");
        bad(ids_check_node_id, "1.2.", "not an OID");
        ok(ids_check_node_id, "12"); /* digits only: a plain name, not an OID */
        ok(ids_check_node_id, repeat('a', 255));
        bad(ids_check_node_id, repeat('a', 256), "too long (max 255)");
}

Test(ids, target_id) {
        ok(ids_check_target_id, "/in-cse");
        ok(ids_check_target_id, "/in-cse/Cmaf01");
        bad(ids_check_target_id, "in-cse", "must start with '/'");
        bad(ids_check_target_id, "/in-cse/../../x", "'.' or '..'");
        bad(ids_check_target_id, "/in-cse/..", "'.' or '..'");
        bad(ids_check_target_id, "/a/b/c", "more than two segments");
        bad(ids_check_target_id, "/a//b", "empty segment");
        bad(ids_check_target_id, "/a/", "empty segment");
        bad(ids_check_target_id, "/a?b", "not a target ID");
        bad(ids_check_target_id, repeat('/', 1), "empty segment");
}

Test(ids, host) {
        ok(ids_check_host, "mef.example.net");
        ok(ids_check_host, "MEF.Example.net");
        ok(ids_check_host, "localhost");
        ok(ids_check_host, "127.0.0.1");
        ok(ids_check_host, "::1");
        ok(ids_check_host, "fe80::1:2");
        ok(ids_check_host, "0a.1b");
        ok(ids_check_host, "a1.b2c");
        bad(ids_check_ke_id, "0a@MEF.example.net", "lower-case host");
        bad(ids_check_ke_id, "0a@FE80::1", "lower-case host");
        ok(ids_check_ke_id, "0a@fe80::1");
        bad(ids_check_host, "1.2.3.999", "not an IPv4 address");
        bad(ids_check_host, "1.2.3", "not an IPv4 address");
        bad(ids_check_host, "a.1", "not an IPv4 address");
        bad(ids_check_host, "-a.example", "starting or ending with '-'");
        bad(ids_check_host, "a-.example", "starting or ending with '-'");
        bad(ids_check_host, "a..example", "empty label");
        bad(ids_check_host, "a.example.", "empty label");
        bad(ids_check_host, "a_b.example", "not a host name");
        bad(ids_check_host, "[::1]", "IPv6");
        bad(ids_check_host, "fe80::1%eth0", "IPv6");
        bad(ids_check_host, "1:2:3", "IPv6");
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
        ok(ids_check_ke_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@mef.example.net");
        ok(ids_check_ke_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@127.0.0.1");
        ok(ids_check_ke_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@::1");
        ok(ids_check_ke_id, "a@b");
        bad(ids_check_ke_id, "3F2A@mef.example.net", "not a KeID (lower-case hex, '@', a host name)");
        bad(ids_check_ke_id, "3f2a@MEF.example.net", "part after '@'");
        bad(ids_check_ke_id, "3f2a", "not a KeID");
        bad(ids_check_ke_id, "@mef", "not a KeID");
        bad(ids_check_ke_id, "3f2a@", "part after '@'");
        bad(ids_check_ke_id, "3f2a@mef/x", "part after '@'");
        bad(ids_check_ke_id, "3f2a@a@b", "part after '@'");
        bad(ids_check_ke_id, "3f2a.1@mef", "not a KeID");
        bad(ids_check_ke_id, "zz@mef", "not a KeID");
        bad(ids_check_ke_id, "../../../../etc/passwd@mef", "not a KeID");
        char k[400];
        snprintf(k, sizeof k, "%s@mef", repeat('a', 64));
        ok(ids_check_ke_id, k);
        snprintf(k, sizeof k, "%s@mef", repeat('a', 65));
        bad(ids_check_ke_id, k, "not a KeID");
}

Test(ids, kpsa_id) {
        ok(ids_check_kpsa_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601.1@mef.example.net");
        ok(ids_check_kpsa_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601.999@mef.example.net");
        ok(ids_check_kpsa_id, "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@mef.example.net");
        bad(ids_check_kpsa_id, "../../../../etc/passwd@mef", "not a kpsaID (lower-case hex, optional .<n>");
        bad(ids_check_kpsa_id, "3f2a.0@mef", "not a kpsaID");
        bad(ids_check_kpsa_id, "3f2a.01@mef", "not a kpsaID");
        bad(ids_check_kpsa_id, "3f2a.1000@mef", "not a kpsaID");
        bad(ids_check_kpsa_id, "3f2a.@mef", "not a kpsaID");
        bad(ids_check_kpsa_id, "3f2a.1.2@mef", "not a kpsaID");
        bad(ids_check_kpsa_id, "3f2a@mef.example.net.1", "part after '@'");
}

Test(ids, cse_base) {
        ok(ids_check_cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        ok(ids_check_cse_base, "HTTP://in.example.net");
        ok(ids_check_cse_base, "coap://[fe80::1]:5683/in-cse");
        ok(ids_check_cse_base, "coaps://10.0.0.1/in-cse");
        ok(ids_check_cse_base, "mqtt://broker:1883/");
        ok(ids_check_cse_base, "mqtts://broker/a%2Fb");
        ok(ids_check_cse_base, "ws://in/a:b@c!$&'()*+,;=");
        ok(ids_check_cse_base, "wss://in/x");
        bad(ids_check_cse_base, "in.example.net", "not an absolute URI");
        bad(ids_check_cse_base, "ftp://in/x", "not an absolute URI");
        bad(ids_check_cse_base, "https:in/x", "not an absolute URI");
        bad(ids_check_cse_base, "https://u:p@in.example.net/x", "user information");
        bad(ids_check_cse_base, "https://in/x?a=1", "query or fragment");
        bad(ids_check_cse_base, "https://in/x#f", "query or fragment");
        bad(ids_check_cse_base, "https:///x", "no host");
        bad(ids_check_cse_base, "https://in:0/", "invalid port");
        bad(ids_check_cse_base, "https://in:65536/", "invalid port");
        bad(ids_check_cse_base, "https://in:/", "invalid port");
        bad(ids_check_cse_base, "https://in:8x/", "invalid port");
        bad(ids_check_cse_base, "https://[fe80::1/", "IPv6");
        bad(ids_check_cse_base, "https://[in]/", "IPv6");
        bad(ids_check_cse_base, "https://a::1/", "invalid port");
        bad(ids_check_cse_base, "https://in_x/", "not a host name");
        bad(ids_check_cse_base, "https://in/a/../b", "'.' or '..' path segment");
        bad(ids_check_cse_base, "https://in/.", "'.' or '..' path segment");
        bad(ids_check_cse_base, "https://in/a%2", "percent-encoding");
        bad(ids_check_cse_base, "https://in/a%zz", "percent-encoding");
        bad(ids_check_cse_base, "https://in/a\"b", "not allowed in a URI path");
        bad(ids_check_cse_base, "https://in/a`id`", "not allowed in a URI path");
        char u[1100] = "https://in/";
        strcat(u, repeat('a', 1024 - strlen(u)));
        ok(ids_check_cse_base, u);
        strcat(u, "a");
        bad(ids_check_cse_base, u, "too long (max 1024)");
}

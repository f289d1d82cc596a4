/* SPDX-License-Identifier: MIT */
/* The unauthenticated pool: bounds in all and per source, and which connection gives way
 * (a source at its bound its own, idle ones before those under way, oldest first, the
 * largest source when all are under way); source keys (IPv4, IPv6 /64, v4-mapped). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>

#include "mef/admission.h"
#include "util/util.h"

/* Entries are added at T and looked at GRACE later (L), past the grace given to connections
 * that have sent nothing yet; Test(admission, grace) looks before. */
#define GRACE 250000u
#define T (1000ull * GRACE)
#define L (T + GRACE)

static source_key_t v4(const char *a) {
        struct sockaddr_storage ss = {};
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(1234);
        cr_assert_eq(inet_pton(AF_INET, a, &in->sin_addr), 1);
        source_key_t k;
        source_key_from_sockaddr(&ss, &k);
        return k;
}

/* a key for one call's use */
static const source_key_t *K(const char *a) {
        static source_key_t k[4];
        static unsigned n;
        k[n % 4] = v4(a);
        return &k[n++ % 4];
}

static source_key_t v6(const char *a) {
        struct sockaddr_storage ss = {};
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
        in6->sin6_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, a, &in6->sin6_addr), 1);
        source_key_t k;
        source_key_from_sockaddr(&ss, &k);
        return k;
}

Test(admission, source_keys) {
        char buf[SOURCE_KEY_STRLEN];
        source_key_t a = v4("192.0.2.7"), b = v6("::ffff:192.0.2.7"), c = v6("2001:db8:1:2:aaaa::1"),
                     d = v6("2001:db8:1:2:bbbb::2"), e = v6("2001:db8:1:3::1");
        cr_assert_str_eq(source_key_format(&a, buf, sizeof buf), "192.0.2.7");
        cr_assert_str_eq(source_key_format(&b, buf, sizeof buf), "192.0.2.7", "v4-mapped is the IPv4 source");
        cr_assert_str_eq(source_key_format(&c, buf, sizeof buf), "2001:db8:1:2::/64");
        cr_assert_eq(memcmp(&c, &d, sizeof c), 0, "one /64, one source");
        cr_assert_neq(memcmp(&c, &e, sizeof c), 0);
        source_key_t u;
        struct sockaddr_storage ss = { .ss_family = AF_UNIX };
        source_key_from_sockaddr(&ss, &u);
        cr_assert_str_eq(source_key_format(&u, buf, sizeof buf), "?");
}

Test(admission, bounds) {
        admission_t *a = NULL;
        cr_assert_eq(admission_new(0, 1, GRACE, &a), -EINVAL);
        cr_assert_eq(admission_new(4, 5, GRACE, &a), -EINVAL);
        cr_assert_eq(admission_new(4, 2, GRACE, &a), 0);
        admission_entry_t e[5] = {};
        source_key_t x = v4("10.0.0.1"), y = v4("10.0.0.2"), z = v4("10.0.0.3");

        cr_assert_null(admission_victim(a, &x, L));
        cr_assert_eq(admission_add(a, &e[0], &x, T), 0);
        cr_assert_eq(admission_add(a, &e[0], &x, T), -EALREADY);
        cr_assert_eq(admission_add(a, &e[1], &x, T), 0);
        /* x is at its bound: its own oldest goes, y still fits */
        cr_assert_eq(admission_victim(a, &x, L), &e[0]);
        cr_assert_eq(admission_add(a, &e[2], &x, L), -ENOBUFS);
        cr_assert_null(admission_victim(a, &y, L));
        cr_assert_eq(admission_add(a, &e[2], &y, T), 0);
        cr_assert_eq(admission_add(a, &e[3], &z, T), 0);
        cr_assert_eq(admission_count(a), 4);
        cr_assert_eq(admission_count_source(a, &x), 2);
        /* full: someone goes even for a new source */
        cr_assert_not_null(admission_victim(a, K("10.0.0.4"), L));
        cr_assert_eq(admission_add(a, &e[4], K("10.0.0.4"), T), -ENOBUFS);

        admission_remove(a, &e[1]);
        admission_remove(a, &e[1]); /* twice: harmless */
        cr_assert(!admission_contains(&e[1]));
        cr_assert_eq(admission_count(a), 3);
        cr_assert_eq(admission_count_source(a, &x), 1);
        for (int i = 0; i < 4; i++)
                admission_remove(a, &e[i]);
        cr_assert_eq(admission_count(a), 0);
        cr_assert_eq(admission_count_source(a, &y), 0);
        /* handshakes under way from one source go over its bound while there is room */
        for (int i = 0; i < 3; i++) {
                cr_assert_null(admission_victim(a, &x, L));
                cr_assert_eq(admission_add(a, &e[i], &x, T), 0);
                admission_mark_active(&e[i]);
        }
        cr_assert_eq(admission_count_source(a, &x), 3);
        cr_assert_eq(admission_add(a, &e[3], &x, T), 0);
        cr_assert_eq(admission_victim(a, &y, L), &e[3], "full: its oldest idle one");
        admission_free(a);
}

/* The order in which connections give way. */
Test(admission, victims) {
        admission_t *a = NULL;
        cr_assert_eq(admission_new(6, 3, GRACE, &a), 0);
        admission_entry_t att[3] = {}, att2[2] = {}, gw = {};
        source_key_t attacker = v4("198.51.100.1"), attacker2 = v4("198.51.100.2"), gateway = v4("192.0.2.1");

        cr_assert_eq(admission_add(a, &att[0], &attacker, T), 0);
        cr_assert_eq(admission_add(a, &gw, &gateway, T), 0);
        cr_assert_eq(admission_add(a, &att[1], &attacker, T), 0);
        cr_assert_eq(admission_add(a, &att[2], &attacker, T), 0);
        cr_assert_eq(admission_add(a, &att2[0], &attacker2, T), 0);
        cr_assert_eq(admission_add(a, &att2[1], &attacker2, T), 0);
        /* full, all idle: the largest source's oldest, never the gateway's, older as it is */
        cr_assert_eq(admission_victim(a, K("203.0.113.9"), L), &att[0]);
        /* within a source, those that have sent nothing go first */
        admission_mark_active(&att[0]);
        cr_assert_eq(admission_victim(a, K("203.0.113.9"), L), &att[1]);
        /* a source at its bound gives up its own, even with the pool not full */
        admission_remove(a, &att2[1]);
        cr_assert_null(admission_victim(a, K("203.0.113.9"), L));
        cr_assert_eq(admission_victim(a, &attacker, L), &att[1]);
        admission_mark_active(&att[1]);
        admission_mark_active(&att[2]);
        /* all under way: over its bound while the pool has room (gateways behind one NAT) */
        cr_assert_null(admission_victim(a, &attacker, L));
        admission_entry_t att3 = {};
        cr_assert_eq(admission_add(a, &att3, &attacker, T), 0);
        cr_assert_eq(admission_count_source(a, &attacker), 4);
        /* now full: the largest source gives up its oldest idle one */
        cr_assert_eq(admission_victim(a, &attacker, L), &att3);
        cr_assert_eq(admission_victim(a, &gateway, L), &att3);
        admission_remove(a, &att3);
        cr_assert_eq(admission_victim(a, &gateway, L), NULL);
        /* a gateway's source at its bound (behind one address with others): its own oldest idle */
        admission_entry_t g2 = {}, g3 = {};
        admission_mark_active(&gw);
        cr_assert_eq(admission_add(a, &g2, &gateway, T), 0);
        cr_assert_eq(admission_add(a, &g3, &gateway, T), -ENOBUFS, "full");
        admission_remove(a, &att[2]);
        cr_assert_eq(admission_add(a, &g3, &gateway, T), 0);
        cr_assert_eq(admission_victim(a, &gateway, L), &g2, "idle before the one under way");
        /* full, sources of 2, 3 and 1: the one of 3 */
        cr_assert_eq(admission_victim(a, K("203.0.113.9"), L), &g2);
        admission_free(a);
}

/* A source over its bound gives up only connections that have been silent for the grace:
 * a ClientHello follows its connect within milliseconds. */
Test(admission, grace) {
        admission_t *a = NULL;
        cr_assert_eq(admission_new(8, 2, GRACE, &a), 0);
        admission_entry_t e[4] = {};
        source_key_t x = v4("10.0.0.1");
        cr_assert_eq(admission_add(a, &e[0], &x, T), 0);
        cr_assert_eq(admission_add(a, &e[1], &x, T + 1000), 0);
        cr_assert_null(admission_victim(a, &x, T + GRACE - 1), "just accepted: over its bound");
        cr_assert_eq(admission_add(a, &e[2], &x, T + GRACE - 1), 0);
        cr_assert_eq(admission_victim(a, &x, T + GRACE), &e[0]);
        cr_assert_eq(admission_add(a, &e[3], &x, T + GRACE), -ENOBUFS);
        admission_mark_active(&e[0]);
        cr_assert_null(admission_victim(a, &x, T + GRACE), "e[1] has had 999 us less");
        cr_assert_eq(admission_victim(a, &x, T + GRACE + 1000), &e[1]);
        admission_free(a);
}

/* Many sources, churn: counts stay exact and slots are reused. */
Test(admission, churn) {
        admission_t *a = NULL;
        cr_assert_eq(admission_new(64, 8, GRACE, &a), 0);
        static admission_entry_t e[64];
        unsigned in = 0;
        for (unsigned round = 0; round < 10000; round++) {
                char ip[32];
                snprintf(ip, sizeof ip, "10.1.%u.%u", (round * 7) % 13, (round * 11) % 17);
                source_key_t k = v4(ip);
                admission_entry_t *v;
                while ((v = admission_victim(a, &k, L))) {
                        admission_remove(a, v);
                        in--;
                }
                admission_entry_t *slot = NULL;
                for (unsigned i = 0; i < 64 && !slot; i++)
                        if (!admission_contains(&e[i]))
                                slot = &e[i];
                cr_assert_not_null(slot);
                cr_assert_eq(admission_add(a, slot, &k, T), 0);
                in++;
                if (round % 3 == 0)
                        admission_mark_active(slot);
                cr_assert_eq(admission_count(a), in);
                cr_assert_leq(in, 64);
        }
        admission_free(a);
}

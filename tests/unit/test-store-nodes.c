/* SPDX-License-Identifier: MIT */
/* The store: nodes, targets, the audit trail, counts, pruning, keyset pages, conflicts (fixture:
 * store-fixture.h). */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>

#include "proto/tls.h"
#include "tests/unit/store-fixture.h"
#include "util/util.h"

/* ---- nodes ---- */

/* The store holds n nodes: those of want, in that order (NULL: any). */
static void nodes_are(mef_store_t *s, size_t n, const char *const *want) {
        store_node_t *list = NULL;
        size_t got = 0;
        cr_assert_eq(store_node_list(s, &list, &got), 0);
        cr_assert_eq(got, n);
        for (size_t i = 0; want && i < n; i++)
                cr_assert_str_eq(list[i].node_id, want[i]);
        free(list);
}

Test(store, node_round_trip) {
        uint8_t kpm[48], got[MSG_KEY_MAX];
        size_t len = 0;
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 1);
        store_node_t n = psk_node("urn:dev:ops:1", "kpm-1");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        store_node_t c = cert_node("urn:dev:ops:2", 'a');
        cr_assert_eq(store_node_add(s, &c, NULL, 0), 0);

        store_node_t r;
        cr_assert_eq(store_node_get(s, "urn:dev:ops:1", &r), 0);
        cr_assert_str_eq(r.node_id, "urn:dev:ops:1");
        cr_assert_str_eq(r.kpm_id, "kpm-1");
        cr_assert_str_eq(r.cert_fp, "");
        cr_assert_str_eq(r.cse_id, "/mn-urn:dev:ops:1");
        cr_assert_str_eq(r.cse_base, n.cse_base);
        cr_assert_eq(r.n_targets, 2);
        cr_assert_str_eq(r.targets[0], "/in-cse");
        cr_assert_str_eq(r.targets[1], "/maf-01");
        cr_assert_eq(r.poll, 3600);
        cr_assert_eq(r.lifetime, 86400);
        cr_assert_eq(r.state, NODE_ACTIVE);
        cr_assert(!r.ltk_transported);
        cr_assert_gt(r.created, 1600000000, "created defaults to now");

        cr_assert_eq(store_node_by_kpm_id(s, "kpm-1", &r, got, &len), 0);
        cr_assert_str_eq(r.node_id, "urn:dev:ops:1");
        cr_assert_eq(len, sizeof kpm);
        cr_assert_arr_eq(got, kpm, sizeof kpm);

        cr_assert_eq(store_node_by_cert(s, c.cert_fp, &r), 0);
        cr_assert_str_eq(r.node_id, "urn:dev:ops:2");
        cr_assert_str_eq(r.kpm_id, "");
        cr_assert_str_eq(r.cert_fp, c.cert_fp);
        cr_assert_eq(r.n_targets, 0);
        cr_assert(r.ltk_transported);

        store_node_t untouched = { .poll = 77 };
        size_t len2 = 5;
        cr_assert_eq(store_node_get(s, "urn:dev:ops:3", &untouched), -ENOENT);
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-2", &untouched, got, &len2), -ENOENT);
        cr_assert_eq(store_node_by_cert(s, "ffff", &untouched), -ENOENT);
        cr_assert_eq(untouched.poll, 77);
        cr_assert_eq(len2, 5);

        nodes_are(s, 2, (const char *const[]) { "urn:dev:ops:1", "urn:dev:ops:2" });

        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", NODE_REENROL), 0);
        cr_assert_eq(store_node_get(s, "urn:dev:ops:1", &r), 0);
        cr_assert_eq(r.state, NODE_REENROL);
        /* a revoked node stays revoked until activated: reenrol would let it enrol again */
        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", NODE_REVOKED), 0);
        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", NODE_REENROL), -EPERM);
        cr_assert_eq(store_node_get(s, "urn:dev:ops:1", &r), 0);
        cr_assert_eq(r.state, NODE_REVOKED);
        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", NODE_ACTIVE), 0);
        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", NODE_REENROL), 0);
        cr_assert_eq(store_node_set_state(s, "nope", NODE_REENROL), -ENOENT);
        cr_assert_eq(store_node_set_state(s, "nope", NODE_REVOKED), -ENOENT);
        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", _NODE_STATE_MAX), -EINVAL);
        store_close(s);
}

Test(store, node_duplicates) {
        uint8_t kpm[16];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 2);
        store_node_t n = psk_node("n1", "kpm-1");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), -EEXIST, "same node ID");
        store_node_t n2 = psk_node("n2", "kpm-1");
        cr_assert_eq(store_node_add(s, &n2, kpm, sizeof kpm), -EEXIST, "same KpmID");
        store_node_t c1 = cert_node("c1", 'b'), c2 = cert_node("c2", 'b');
        cr_assert_eq(store_node_add(s, &c1, NULL, 0), 0);
        cr_assert_eq(store_node_add(s, &c2, NULL, 0), -EEXIST, "same fingerprint");

        /* one TLS identity names one peer, node or target */
        store_target_t t = { .id = "/in-cse", .psk_id = "kpm-1" };
        cr_assert_eq(store_target_add(s, &t, kpm, sizeof kpm), -EEXIST);
        store_target_t tc = { .id = "/in-cse" };
        memcpy(tc.cert_fp, c1.cert_fp, sizeof tc.cert_fp);
        cr_assert_eq(store_target_add(s, &tc, NULL, 0), -EEXIST);
        store_target_t t2 = { .id = "/in-cse", .psk_id = "in-psk" };
        cr_assert_eq(store_target_add(s, &t2, kpm, sizeof kpm), 0);
        store_node_t n3 = psk_node("n3", "in-psk");
        cr_assert_eq(store_node_add(s, &n3, kpm, sizeof kpm), -EEXIST);

        nodes_are(s, 2, NULL);
        store_close(s);
}

Test(store, cse_id_assigned_once) {
        uint8_t kpm[16];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 3);
        store_node_t n1 = psk_node("n1", "kpm-1"), n2 = psk_node("n2", "kpm-2"), c = cert_node("c1", 'c');
        cr_assert_eq(store_node_add(s, &n1, kpm, sizeof kpm), 0);
        snprintf(n2.cse_id, sizeof n2.cse_id, "%s", n1.cse_id);
        cr_assert_eq(store_node_add(s, &n2, kpm, sizeof kpm), -EADDRINUSE, "the CSE-ID of n1");
        snprintf(c.cse_id, sizeof c.cse_id, "%s", n1.cse_id);
        cr_assert_eq(store_node_add(s, &c, NULL, 0), -EADDRINUSE, "the CSE-ID of n1, for a cert node");
        /* which node holds it */
        store_node_t found;
        cr_assert_eq(store_node_by_cse_id(s, "/mn-n1", &found), 0);
        cr_assert_str_eq(found.node_id, "n1");
        cr_assert_eq(store_node_by_cse_id(s, "/mn-n2", &found), -ENOENT);
        /* case matters: CSE-IDs are compared as they are */
        snprintf(n2.cse_id, sizeof n2.cse_id, "/MN-N1");
        cr_assert_eq(store_node_add(s, &n2, kpm, sizeof kpm), 0);
        /* once n1 is gone its CSE-ID is free again */
        cr_assert_eq(store_node_remove(s, "n1"), 0);
        cr_assert_eq(store_node_add(s, &c, NULL, 0), 0);
        store_close(s);
}

Test(store, node_invalid) {
        mef_store_t *s = open_new();
        uint8_t kpm[MSG_KEY_MAX + 1] = { 0 };
        store_node_t n = psk_node("n1", "kpm-1");
        cr_assert_eq(store_node_add(s, &n, kpm, 15), -EINVAL, "short Kpm");
        cr_assert_eq(store_node_add(s, &n, kpm, MSG_KEY_MAX + 1), -EINVAL, "long Kpm");
        cr_assert_eq(store_node_add(s, &n, NULL, 0), -EINVAL, "psk without Kpm");
        store_node_t both = n;
        memset(both.cert_fp, 'a', STORE_FP_LEN);
        cr_assert_eq(store_node_add(s, &both, kpm, 32), -EINVAL, "psk and cert");
        store_node_t c = cert_node("c1", 'A');
        cr_assert_eq(store_node_add(s, &c, NULL, 0), -EINVAL, "uppercase fingerprint");
        c = cert_node("c1", 'a');
        c.cert_fp[10] = 0;
        cr_assert_eq(store_node_add(s, &c, NULL, 0), -EINVAL, "short fingerprint");
        store_node_t bad = n;
        strcpy(bad.node_id, "with space");
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        bad = n;
        bad.poll = STORE_POLL_MIN - 1;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        bad = n;
        bad.lifetime = STORE_LIFETIME_MAX + 1;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        bad = n;
        bad.n_targets = MSG_TARGETS_MAX + 1;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        bad = n;
        bad.targets[1][0] = 0;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL, "empty target");
        bad = n;
        bad.state = _NODE_STATE_MAX;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        /* a KpmID longer than a TLS PSK identity could never authenticate */
        bad = n;
        memset(bad.kpm_id, 'k', TLS_PSK_ID_MAX + 1);
        bad.kpm_id[TLS_PSK_ID_MAX + 1] = 0;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL, "KpmID of TLS_PSK_ID_MAX + 1");
        bad.kpm_id[TLS_PSK_ID_MAX] = 0;
        snprintf(bad.node_id, sizeof bad.node_id, "n-long");
        snprintf(bad.cse_id, sizeof bad.cse_id, "/mn-long");
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), 0, "KpmID of TLS_PSK_ID_MAX");
        /* and the good one still goes in */
        cr_assert_eq(store_node_add(s, &n, kpm, MSG_KEY_MAX), 0);
        store_close(s);
}

/* KpmIDs of 128..255 characters, from stores made before the TLS_PSK_ID_MAX limit (put there
 * behind the store's back: node add refuses them now): how many, and the first by node ID. */
Test(store, long_kpm_ids_found) {
        uint8_t kpm[32];
        mef_store_t *s = open_psk_nodes("abcde", kpm, 7);
        char ids[2][MSG_ID_MAX + 1];
        size_t n = 9;
        uint64_t count = 9;
        cr_assert_eq(store_node_long_kpm_ids(s, ids, ELEMENTSOF(ids), &n, &count), 0);
        cr_assert(n == 0 && count == 0, "%zu %" PRIu64, n, count);
        char sql[512], long_id[MSG_ID_MAX + 1];
        static const char *const which[] = { "e", "b", "d" };
        for (size_t i = 0; i < ELEMENTSOF(which); i++) {
                size_t len = i == 0 ? MSG_ID_MAX : TLS_PSK_ID_MAX + 1;
                memset(long_id, 'k', len);
                long_id[len] = 0;
                long_id[0] = which[i][0]; /* unique */
                snprintf(sql, sizeof sql, "UPDATE nodes SET kpm_id = '%s' WHERE node_id = '%s'", long_id, which[i]);
                sql_exec(sql, NULL, 0);
        }
        /* TLS_PSK_ID_MAX itself is an identity TLS can offer */
        memset(long_id, 'k', TLS_PSK_ID_MAX);
        long_id[TLS_PSK_ID_MAX] = 0;
        snprintf(sql, sizeof sql, "UPDATE nodes SET kpm_id = '%s' WHERE node_id = 'a'", long_id);
        sql_exec(sql, NULL, 0);
        cr_assert_eq(store_node_long_kpm_ids(s, ids, ELEMENTSOF(ids), &n, &count), 0);
        cr_assert_eq(count, 3);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(ids[0], "b");
        cr_assert_str_eq(ids[1], "d");
        /* they stay listed */
        store_node_t e;
        cr_assert_eq(store_node_get(s, "e", &e), 0);
        cr_assert_eq(strlen(e.kpm_id), MSG_ID_MAX);
        cr_assert_eq(store_node_long_kpm_ids(s, NULL, 0, &n, &count), 0);
        cr_assert(n == 0 && count == 3);
        store_close(s);
}

Test(store, remove_cascades_enrolments) {
        /* one active enrolment per node */
        store_enrolment_t e1 = enrolment_as("11@mef", "a", 1000, ENROLMENT_RETIRED), e2 = enrolment("22@mef", "a", 2000),
                          e3 = enrolment("33@mef", "b", 3000);
        mef_store_t *s = open_with("ab", 3, (store_enrolment_t *const[]) { &e1, &e2, &e3, NULL });

        cr_assert_eq(store_node_remove(s, "a"), 0);
        cr_assert_eq(store_node_remove(s, "a"), -ENOENT);
        store_enrolment_t got;
        cr_assert_eq(store_enrolment_get(s, "11@mef", &got, NULL, NULL), -ENOENT);
        cr_assert_eq(store_enrolment_get(s, "22@mef", &got, NULL, NULL), -ENOENT);
        cr_assert_eq(store_enrolment_get(s, "33@mef", &got, NULL, NULL), 0);
        store_enrolment_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_enrolment_list(s, NULL, &list, &n), 0);
        cr_assert_eq(n, 1);
        free(list);
        /* the KpmID is free again */
        uint8_t kpm[32];
        recognisable_key(kpm, sizeof kpm, 3);
        add_psk_nodes(s, "a", kpm, sizeof kpm);
        store_close(s);
}

/* ---- targets ---- */

Test(store, targets) {
        mef_store_t *s = open_new();
        uint8_t psk[24], got[MSG_KEY_MAX];
        size_t len = 0;
        recognisable_key(psk, sizeof psk, 5);
        store_target_t t = { .id = "/in-cse", .psk_id = "in-cse-psk", .created = 1700000000 };
        cr_assert_eq(store_target_add(s, &t, psk, sizeof psk), 0);
        store_target_t c = { .id = "/maf-01" };
        memset(c.cert_fp, 'c', STORE_FP_LEN);
        cr_assert_eq(store_target_add(s, &c, NULL, 0), 0);
        cr_assert_eq(store_target_add(s, &t, psk, sizeof psk), -EEXIST);
        store_target_t bad = { .id = "/x", .psk_id = "p" };
        cr_assert_eq(store_target_add(s, &bad, psk, 8), -EINVAL);
        store_target_t none = { .id = "/x" };
        cr_assert_eq(store_target_add(s, &none, NULL, 0), -EINVAL, "neither psk nor cert");

        store_target_t r;
        cr_assert_eq(store_target_by_psk_id(s, "in-cse-psk", &r, got, &len), 0);
        cr_assert_str_eq(r.id, "/in-cse");
        cr_assert_eq(r.created, 1700000000);
        cr_assert_eq(len, sizeof psk);
        cr_assert_arr_eq(got, psk, sizeof psk);
        cr_assert_eq(store_target_by_cert(s, c.cert_fp, &r), 0);
        cr_assert_str_eq(r.id, "/maf-01");
        cr_assert_str_eq(r.psk_id, "");
        cr_assert_eq(store_target_by_psk_id(s, "nope", &r, got, &len), -ENOENT);

        store_target_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_target_list(s, &list, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(list[0].id, "/in-cse");
        cr_assert_str_eq(list[1].id, "/maf-01");
        free(list);
        cr_assert_eq(store_target_remove(s, "/in-cse"), 0);
        cr_assert_eq(store_target_remove(s, "/in-cse"), -ENOENT);
        cr_assert_eq(store_target_by_psk_id(s, "in-cse-psk", &r, got, &len), -ENOENT);
        store_close(s);
}

/* A handshake's identity in one read (mef/store-peers.c): a node's KpmID, else a target's PSK
 * identity, with its key; a name that is both is the node's, and the target's key is then not
 * even opened. */
Test(store, peer_by_psk_id_reads_node_or_target) {
        uint8_t kpm[32], psk[24], got[MSG_KEY_MAX], blob[256];
        size_t len = 0;
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 21);
        recognisable_key(psk, sizeof psk, 22);
        store_node_t n = psk_node("urn:dev:ops:1", "kpm-1");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        store_target_t t = { .id = "/in-cse", .psk_id = "in-cse-psk" };
        cr_assert_eq(store_target_add(s, &t, psk, sizeof psk), 0);

        store_peer_t p;
        cr_assert_eq(store_peer_by_psk_id(s, "kpm-1", &p, got, &len), 0);
        cr_assert_eq(p.kind, STORE_PEER_NODE);
        cr_assert_str_eq(p.node.node_id, "urn:dev:ops:1");
        cr_assert_str_eq(p.node.cse_id, "/mn-urn:dev:ops:1");
        cr_assert_eq(p.node.n_targets, 2);
        cr_assert_eq(len, sizeof kpm);
        cr_assert_arr_eq(got, kpm, sizeof kpm);

        cr_assert_eq(store_peer_by_psk_id(s, "in-cse-psk", &p, got, &len), 0);
        cr_assert_eq(p.kind, STORE_PEER_TARGET);
        cr_assert_str_eq(p.target.id, "/in-cse");
        cr_assert_str_eq(p.target.psk_id, "in-cse-psk");
        cr_assert_eq(len, sizeof psk);
        cr_assert_arr_eq(got, psk, sizeof psk);

        store_peer_t untouched = { .kind = STORE_PEER_TARGET };
        len = 5;
        cr_assert_eq(store_peer_by_psk_id(s, "nope", &untouched, got, &len), -ENOENT);
        cr_assert_eq(untouched.kind, STORE_PEER_TARGET);
        cr_assert_eq(len, 5);
        /* a ClientHello's identity that no KpmID can be (PostgreSQL refuses the bytes that are
         * not UTF-8: the store's fault, 22021, before): unknown, as any other */
        cr_assert_eq(store_peer_by_psk_id(s, "kpm-\xff", &untouched, got, &len), -ENOENT);
        cr_assert_eq(store_peer_by_psk_id(s, "kpm 1", &untouched, got, &len), -ENOENT);
        cr_assert_eq(untouched.kind, STORE_PEER_TARGET);

        /* data from before the add checks: the target's PSK identity is also the KpmID, and its
         * sealed key is damaged. The node's read wins, and the target's key is not opened. */
        int bl = blob_read("SELECT psk_enc FROM targets WHERE id = '/in-cse'", blob, sizeof blob);
        blob[bl - 1] ^= 0x80;
        sql_exec("UPDATE targets SET psk_id = 'kpm-1', psk_enc = ?1 WHERE id = '/in-cse'", blob, bl);
        cr_assert_eq(store_peer_by_psk_id(s, "kpm-1", &p, got, &len), 0);
        cr_assert_eq(p.kind, STORE_PEER_NODE);
        cr_assert_arr_eq(got, kpm, sizeof kpm);
        sql_exec("UPDATE nodes SET kpm_id = 'kpm-2' WHERE node_id = 'urn:dev:ops:1'", NULL, 0);
        len = 5;
        cr_assert_eq(store_peer_by_psk_id(s, "kpm-1", &p, got, &len), -EBADMSG, "now the target's, damaged");
        cr_assert_eq(len, 5);
        store_close(s);
}

/* ---- audit ---- */

Test(store, audit_trail) {
        mef_store_t *s = open_new();
        cr_assert_eq(store_audit(s, "cli", "node-add", "urn:dev:1", "psk id=kpm-1"), 0);
        cr_assert_eq(store_audit(s, "kpm-1", "enrol", "urn:dev:1", NULL), 0);
        char big[4000];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        big[STORE_AUDIT_DETAIL_MAX - 1] = (char) 0xc3; /* a 2-byte UTF-8 sequence across the cut */
        big[STORE_AUDIT_DETAIL_MAX] = (char) 0xa9;
        cr_assert_eq(store_audit(s, "cli", "status", NULL, big), 0);
        cr_assert_eq(store_audit(s, "", "x", NULL, NULL), -EINVAL);
        cr_assert_eq(store_audit(s, "cli", NULL, NULL, NULL), -EINVAL);

        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(s, 0, &list, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert_str_eq(list[0].action, "status");
        cr_assert_str_eq(list[0].subject, "");
        cr_assert_eq(strlen(list[0].detail), STORE_AUDIT_DETAIL_MAX - 1, "cut before the split sequence");
        cr_assert_str_eq(list[1].actor, "kpm-1");
        cr_assert_str_eq(list[1].action, "enrol");
        cr_assert_str_eq(list[1].detail, "");
        cr_assert_str_eq(list[2].actor, "cli");
        cr_assert_str_eq(list[2].subject, "urn:dev:1");
        cr_assert_str_eq(list[2].detail, "psk id=kpm-1");
        cr_assert_gt(list[0].id, list[1].id);
        cr_assert_gt(list[2].ts, 1600000000);
        free(list);
        cr_assert_eq(store_audit_list(s, 2, &list, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(list[1].action, "enrol");
        free(list);
        store_close(s);
}

/* The metrics gauges: an active enrolment past its exp counts as expired, other states not at all. */
Test(store, counts_active_and_expired) {
        store_enrolment_t live = enrolment("11@mef", "a", 10000), old = enrolment("22@mef", "b", 1000),
                          retired = enrolment_as("33@mef", "c", 10000, ENROLMENT_RETIRED);
        mef_store_t *s = open_with("abc", 5, (store_enrolment_t *const[]) { &live, &old, &retired, NULL });
        store_counts_t n;
        /* old expires at 1000 + 86400, live at 10000 + 86400 */
        cr_assert_eq(store_counts(s, 1000 + 86400, &n), 0);
        cr_assert_eq(n.nodes, 3);
        cr_assert_eq(n.enrolments_active, 1);
        cr_assert_eq(n.enrolments_expired, 1);
        cr_assert_eq(store_counts(s, 0, &n), 0);
        cr_assert_eq(n.enrolments_active, 2);
        cr_assert_eq(n.enrolments_expired, 0);
        cr_assert_eq(store_counts(NULL, 0, &n), -EINVAL);
        store_close(s);
}

/* Status checks are a tally on the node (schema 3), not rows. */
Test(store, node_seen_counts) {
        uint8_t kpm[32];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 7);
        store_node_t a = psk_node("a", "kpm-a"), got;
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_get(s, "a", &got), 0);
        cr_assert_eq(got.status_checks, 0);
        cr_assert_eq(got.last_seen, 0);
        for (int i = 1; i <= 365; i++)
                cr_assert_eq(store_node_seen(s, "a", 1000 + 86400 * i), 0);
        cr_assert_eq(store_node_get(s, "a", &got), 0);
        cr_assert_eq(got.status_checks, 365);
        cr_assert_eq(got.last_seen, 1000 + 86400 * 365);
        cr_assert_eq(store_node_seen(s, "nobody", 1), -ENOENT);
        /* a year of daily polls wrote nothing to the trail */
        assert_audit(s, 0, NULL, NULL);
        store_close(s);
}

/* Retention: old audit rows and spent enrolments go; active ones (expired or not) and those
 * still in their lifetime stay. */
Test(store, prune_by_age) {
        store_enrolment_t old_retired = enrolment_as("11@mef", "a", 100, ENROLMENT_RETIRED),
                          live = enrolment("22@mef", "a", 100),
                          new_revoked = enrolment_as("33@mef", "b", 100000, ENROLMENT_REVOKED);
        /* live: active, expired at 86500 */
        mef_store_t *s = open_with("ab", 8, (store_enrolment_t *const[]) { &old_retired, &live, &new_revoked, NULL });
        for (int i = 0; i < 5; i++)
                cr_assert_eq(store_audit(s, "cli:root", "node-add", "a", "x"), 0);

        store_pruned_t p;
        /* nothing before 0 */
        cr_assert_eq(store_prune(s, 0, &p), 0);
        cr_assert_eq(p.audit, 0);
        cr_assert_eq(p.enrolments, 0);
        /* the audit rows are from now; the retired enrolment expired at 86500 */
        cr_assert_eq(store_prune(s, 100000, &p), 0);
        cr_assert_eq(p.audit, 0);
        cr_assert_eq(p.enrolments, 1);
        store_enrolment_t got;
        cr_assert_eq(store_enrolment_get(s, "11@mef", &got, NULL, NULL), -ENOENT);
        cr_assert_eq(store_enrolment_get(s, "22@mef", &got, NULL, NULL), 0);
        cr_assert_eq(store_enrolment_get(s, "33@mef", &got, NULL, NULL), 0);
        /* everything up to a day ahead: the audit rows go too (but the newest), the revoked one
         * expires at 186400 */
        cr_assert_eq(store_prune(s, (int64_t) time(NULL) + 86400, &p), 0);
        cr_assert_eq(p.audit, 4);
        cr_assert_eq(p.enrolments, 1);
        cr_assert_eq(store_enrolment_get(s, "22@mef", &got, NULL, NULL), 0, "active enrolments are never pruned");
        store_close(s);
}

/* A pass in steps: each deletes at most limit of each kind in its own transaction, adds to the
 * tally, and says whether it reached a limit (more may be left); what is newer stays. */
Test(store, prune_in_steps) {
        store_enrolment_t e1 = enrolment_as("11@mef", "a", 100, ENROLMENT_RETIRED),
                          e2 = enrolment_as("22@mef", "b", 100, ENROLMENT_REVOKED),
                          e3 = enrolment_as("33@mef", "a", 200, ENROLMENT_DEREGISTERED),
                          live = enrolment("44@mef", "b", 100);
        mef_store_t *s = open_with("ab", 8, (store_enrolment_t *const[]) { &e1, &e2, &e3, &live, NULL });
        for (int i = 0; i < 5; i++)
                cr_assert_eq(store_audit(s, "cli:root", "node-add", "a", "x"), 0);
        int64_t before = (int64_t) time(NULL) + 86400;
        store_pruned_t p = {};
        cr_assert_eq(store_prune_some(s, before, 0, &p), -EINVAL);
        cr_assert_eq(store_prune_some(s, before, 2, &p), 1, "a limit reached: more may be left");
        cr_assert_eq(p.audit, 2);
        cr_assert_eq(p.enrolments, 2);
        cr_assert_eq(store_prune_some(s, before, 2, &p), 1);
        cr_assert_eq(p.audit, 4, "added to the tally");
        cr_assert_eq(p.enrolments, 3);
        cr_assert_eq(store_prune_some(s, before, 2, &p), 0, "under both limits: done (the newest row stays)");
        cr_assert_eq(p.audit, 4);
        cr_assert_eq(p.enrolments, 3);
        cr_assert_eq(store_prune_some(s, before, 2, &p), 0);
        cr_assert_eq(p.audit, 4);
        store_enrolment_t got;
        cr_assert_eq(store_enrolment_get(s, "44@mef", &got, NULL, NULL), 0, "active enrolments are never pruned");
        /* newer than the cut-off: stays */
        cr_assert_eq(store_audit(s, "cli:root", "node-add", "b", "x"), 0);
        p = (store_pruned_t) {};
        cr_assert_eq(store_prune_some(s, (int64_t) time(NULL) - 60, 2, &p), 0);
        cr_assert_eq(p.audit, 0);
        assert_audit(s, 2, "b", "a");
        store_close(s);
}

/* Retention never takes the newest audit row: SQLite numbers a new row after the largest id
 * left, and a trail emptied would start again at 1, below the id a follower of
 * "audit --after ID" (GET /admin/v1/audit?after=) last saw. */
Test(store, prune_keeps_the_newest_audit_row) {
        mef_store_t *s = open_new();
        for (int i = 0; i < 3; i++)
                cr_assert_eq(store_audit(s, "cli:root", "node-add", i == 2 ? "newest" : "old", NULL), 0);
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(s, 1, &list, &n), 0);
        cr_assert_eq(n, 1);
        int64_t newest = list[0].id;
        free(list);
        store_pruned_t p;
        cr_assert_eq(store_prune(s, (int64_t) time(NULL) + 86400, &p), 0);
        cr_assert_eq(p.audit, 2, "every row older than keep but the newest");
        assert_audit(s, 1, "newest", "newest");
        cr_assert_eq(store_prune(s, (int64_t) time(NULL) + 86400, &p), 0);
        cr_assert_eq(p.audit, 0, "a pass again leaves it too");
        cr_assert_eq(store_audit(s, "cli:root", "node-add", "next", NULL), 0);
        cr_assert_eq(store_audit_list(s, 1, &list, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(list[0].subject, "next");
        cr_assert_gt(list[0].id, newest, "id %lld after %lld", (long long) list[0].id, (long long) newest);
        free(list);
        store_close(s);
}

/* ---- keyset pages and conflicts (bulk lifecycle) ---- */

Test(store, node_pages_walk_every_row_once) {
        uint8_t kpm[32];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 10);
        char id[32], kid[32];
        for (int i = 0; i < 23; i++) {
                snprintf(id, sizeof id, "n%02d", i);
                snprintf(kid, sizeof kid, "kpm-%02d", i);
                store_node_t n = psk_node(id, kid);
                n.created = 1000 + i;
                if (i % 4 == 0)
                        n.state = NODE_REVOKED;
                cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        }
        store_page_t p = { .limit = 5, .state = -1 };
        char after[MSG_ID_MAX + 1] = "";
        int seen = 0, pages = 0;
        for (;;) {
                store_node_t *list = NULL;
                size_t n = 0;
                p.after = after[0] ? after : NULL;
                cr_assert_eq(store_node_page(s, &p, &list, &n), 0);
                cr_assert_leq(n, 5);
                for (size_t i = 0; i < n; i++) {
                        snprintf(id, sizeof id, "n%02d", seen++);
                        cr_assert_str_eq(list[i].node_id, id, "in order, each once");
                }
                if (n)
                        snprintf(after, sizeof after, "%s", list[n - 1].node_id);
                free(list);
                pages++;
                if (n < 5)
                        break;
        }
        cr_assert_eq(seen, 23);
        cr_assert_eq(pages, 5);

        store_node_t *list = NULL;
        size_t n = 0;
        p = (store_page_t) { .state = NODE_REVOKED };
        cr_assert_eq(store_node_page(s, &p, &list, &n), 0);
        cr_assert_eq(n, 6);
        free(list);
        p = (store_page_t) { .state = -1, .since = 1020 };
        cr_assert_eq(store_node_page(s, &p, &list, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert_str_eq(list[0].node_id, "n20");
        free(list);
        p = (store_page_t) { .state = 99 };
        cr_assert_eq(store_node_page(s, &p, &list, &n), -EINVAL);
        store_close(s);
}

/* The rows of one page of the audit trail, the call asserted. */
static size_t audit_page_rows(mef_store_t *s, const store_page_t *p) {
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_page(s, p, &list, &n), 0);
        free(list);
        return n;
}

Test(store, audit_pages_and_filters) {
        mef_store_t *s = open_new();
        for (int i = 0; i < 12; i++)
                cr_assert_eq(store_audit(s, "cli:root", i % 3 ? "node-add" : "prune", "x", NULL), 0);
        store_page_t p = { .limit = 5, .state = -1 };
        int64_t last = INT64_MAX;
        size_t seen = 0;
        for (;;) {
                store_audit_entry_t *list = NULL;
                size_t n = 0;
                cr_assert_eq(store_audit_page(s, &p, &list, &n), 0);
                for (size_t i = 0; i < n; i++) {
                        cr_assert_lt(list[i].id, last);
                        last = list[i].id;
                        seen++;
                }
                if (n)
                        p.after_id = list[n - 1].id;
                free(list);
                if (n < 5)
                        break;
        }
        cr_assert_eq(seen, 12);
        cr_assert_eq(audit_page_rows(s, &(store_page_t) { .action = "prune" }), 4);
        cr_assert_eq(audit_page_rows(s, &(store_page_t) { .since = (int64_t) time(NULL) + 3600 }), 0);
        store_close(s);
}

Test(store, node_conflict_names_the_field) {
        uint8_t kpm[32];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 13);
        store_node_t a = psk_node("a", "kpm-a"), c = cert_node("c", 'c');
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_add(s, &c, NULL, 0), 0);
        store_target_t t = { .id = "/in-cse", .psk_id = "kpm-t" };
        cr_assert_eq(store_target_add(s, &t, kpm, sizeof kpm), 0);
        const char *field = NULL;
        struct {
                store_node_t n;
                const char *field;
        } cases[] = {
                { psk_node("a", "kpm-other"), "node ID" },
                { psk_node("b", "kpm-a"), "KpmID" },
                { psk_node("b", "kpm-t"), "KpmID" },
                { cert_node("b", 'c'), "certificate" },
        };
        snprintf(cases[0].n.cse_id, sizeof cases[0].n.cse_id, "/mn-free");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = store_node_add(s, &cases[i].n, cases[i].n.kpm_id[0] ? kpm : NULL,
                                       cases[i].n.kpm_id[0] ? sizeof kpm : 0);
                cr_assert(r == -EEXIST || r == -EADDRINUSE, "case %zu: %d", i, r);
                cr_assert_eq(store_node_conflict(s, &cases[i].n, &field), 1, "case %zu", i);
                cr_assert_str_eq(field, cases[i].field, "case %zu", i);
        }
        store_node_t d = psk_node("d", "kpm-d");
        snprintf(d.cse_id, sizeof d.cse_id, "%s", a.cse_id);
        cr_assert_eq(store_node_add(s, &d, kpm, sizeof kpm), -EADDRINUSE);
        cr_assert_eq(store_node_conflict(s, &d, &field), 1);
        cr_assert_str_eq(field, "CSE-ID");
        store_node_t e = psk_node("e", "kpm-e");
        cr_assert_eq(store_node_conflict(s, &e, &field), 0);
        store_close(s);
}

#if HAVE_LIBPQ
/* ---- identities assigned by two instances at once (PostgreSQL) ---- */

typedef struct late_add {
        const store_node_t *node;    /* or */
        const store_target_t *target;
        const uint8_t *key;
        int r;
        bool done;
} late_add_t;

/* On a store of its own (another instance), without a transaction: the add makes its own. */
static void *late_add(void *userdata) {
        late_add_t *l = userdata;
        mef_store_t *s = NULL;
        l->r = open_db(0, &s);
        if (l->r == 0)
                l->r = store_set_busy_timeout(s, 60000); /* the wait below ends it, not this */
        if (l->r == 0)
                l->r = l->node ? store_node_add(s, l->node, l->key, 32) : store_target_add(s, l->target, l->key, 32);
        store_close(s);
        __atomic_store_n(&l->done, true, __ATOMIC_RELEASE);
        return NULL;
}

/* An instance adds a node and has not committed yet; another adds one with the same CSE-ID, and
 * a target with the same PSK identity as its KpmID. Each waits for the first to commit, then
 * sees its node and refuses: one CSE-ID, one identity. (Without the lock both went in.) */
Test(store, pg_identities_assigned_once_across_instances) {
        pg_only();
        uint8_t kpm[32];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 17);
        store_node_t first = psk_node("first", "kpm-shared"), second = psk_node("second", "kpm-second");
        snprintf(second.cse_id, sizeof second.cse_id, "%s", first.cse_id);
        store_target_t t = { .id = "/in-cse-2", .psk_id = "kpm-shared" };
        late_add_t adds[] = { { .node = &second, .key = kpm }, { .target = &t, .key = kpm } };
        const int want[] = { -EADDRINUSE, -EEXIST };

        for (size_t i = 0; i < ELEMENTSOF(adds); i++) {
                cr_assert_eq(store_begin(s), 0);
                cr_assert_eq(store_node_add(s, &first, kpm, sizeof kpm), 0);
                pthread_t th;
                cr_assert_eq(pthread_create(&th, NULL, late_add, &adds[i]), 0);
                pg_wait_lock_waiter(&adds[i].done); /* done: it did not wait (the bug) */
                cr_assert_eq(store_commit(s), 0);
                pthread_join(th, NULL);
                cr_assert_eq(pg_count("SELECT count(*) FROM nodes WHERE cse_id = '/mn-first'"), 1,
                             "two nodes hold one CSE-ID");
                cr_assert_eq(pg_count("SELECT count(*) FROM targets"), 0, "a target has a node's KpmID");
                cr_assert_eq(adds[i].r, want[i], "add %zu: %d", i, adds[i].r);
                cr_assert_eq(store_node_remove(s, "first"), 0);
        }
        /* and without a competitor, both go in */
        cr_assert_eq(store_node_add(s, &second, kpm, sizeof kpm), 0);
        cr_assert_eq(store_target_add(s, &t, kpm, sizeof kpm), 0);
        store_close(s);
}

/* ---- the server's reason for a refusal (PostgreSQL) ---- */

/* What store_error_reason() tells of a statement PostgreSQL refused: its SQLSTATE and primary
 * message, never a value of the row. A check violation's DETAIL ("Failing row contains ...":
 * the sealed Kpm among them) stays out; a data exception's message quotes the value it refused,
 * so only its SQLSTATE is given. A success after it is no longer said to have one. */
Test(store, pg_error_reason_names_the_refusal_not_the_values) {
        pg_only();
        uint8_t kpm[32];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 23);
        cr_assert_null(store_error_reason(s, -EIO));

        sql_exec("ALTER TABLE nodes ADD CONSTRAINT poll_never CHECK (poll < 0)", NULL, 0);
        store_node_t a = psk_node("a", "kpm-a");
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), -EINVAL);
        const store_reason_t *reason = store_error_reason(s, -EINVAL);
        cr_assert_not_null(reason);
        cr_assert(reason->servers, "the server's words");
        const char *why = reason->text;
        cr_assert(strstr(why, "23514: ") == why && strstr(why, "poll_never"), "%s", why);
        cr_assert(!strstr(why, "Failing row") && !strstr(why, "kpm-a"), "the DETAIL: %s", why);
        cr_assert_null(store_error_reason(s, -EIO), "a reason for another error");
        sql_exec("ALTER TABLE nodes DROP CONSTRAINT poll_never", NULL, 0);

        sql_exec("ALTER TABLE nodes ADD CONSTRAINT cse_base_int CHECK (cse_base::int > 0)", NULL, 0);
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), -EINVAL);
        reason = store_error_reason(s, -EINVAL);
        cr_assert_not_null(reason);
        cr_assert(reason->servers, "the server's words");
        why = reason->text;
        cr_assert(strstr(why, "22P02: ") == why, "%s", why);
        cr_assert(!strstr(why, "in.example.net"), "the value refused: %s", why);
        sql_exec("ALTER TABLE nodes DROP CONSTRAINT cse_base_int", NULL, 0);

        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        cr_assert_null(store_error_reason(s, -EINVAL), "the reason of an error before a success");
        store_close(s);
}
#endif

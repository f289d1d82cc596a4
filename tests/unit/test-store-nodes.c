/* SPDX-License-Identifier: MIT */
/* The store: opening and the master key, states, nodes, targets (fixture: store-fixture.h). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "tests/unit/store-fixture.h"
#include "util/util.h"

/* ---- open, master key ---- */

Test(store, create_modes_and_reopen) {
        mef_store_t *s = open_new();
        struct stat st;
        cr_assert_eq(stat(key_path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0400, "master key mode %o", st.st_mode & 07777);
        cr_assert_eq(st.st_size, STORE_MASTER_KEY_LEN);
        char kdir[PATH_MAX];
        snprintf(kdir, sizeof kdir, "%s/keys", dir);
        cr_assert_eq(stat(kdir, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0700);
        if (!pg_uri) {
                cr_assert_eq(stat(db_path, &st), 0);
                cr_assert_eq(st.st_mode & 07777, 0600, "db mode %o", st.st_mode & 07777);
        }
        cr_assert_eq(store_audit(s, "cli", "init", NULL, NULL), 0);
        cr_assert_null(store_close(s));

        /* reopen without create, same key */
        s = NULL;
        cr_assert_eq(open_db(0, &s), 0);
        store_audit_entry_t *a = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(s, 0, &a, &n), 0);
        cr_assert_eq(n, 1);
        free(a);
        store_close(s);
        store_close(NULL);
}

Test(store, missing_without_create) {
        mef_store_t *s = (mef_store_t *) 0x1;
        cr_assert_eq(open_db(0, &s), -ENOENT);
        cr_assert_eq(s, (mef_store_t *) 0x1, "ret touched on failure");
        struct stat st;
        cr_assert_eq(stat(key_path, &st), -1, "nothing created without create");
}

Test(store, wrong_master_key) {
        store_close(open_new());
        /* replace the key with other random bytes */
        cr_assert_eq(chmod(key_path, 0600), 0);
        uint8_t k[STORE_MASTER_KEY_LEN];
        cr_assert_eq(random_bytes(k, sizeof k), 0);
        int fd = open(key_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, k, sizeof k), (ssize_t) sizeof k);
        close(fd);
        cr_assert_eq(chmod(key_path, 0400), 0);
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(0, &s), -EBADMSG);
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), -EBADMSG);
        cr_assert_null(s);
}

Test(store, master_key_group_readable) {
        store_close(open_new());
        cr_assert_eq(chmod(key_path, 0440), 0);
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(0, &s), -EPERM);
        cr_assert_eq(chmod(key_path, 0404), 0);
        cr_assert_eq(open_db(0, &s), -EPERM);
        cr_assert_null(s);
}

Test(store, existing_store_never_gets_a_new_key) {
        store_close(open_new());
        cr_assert_eq(unlink(key_path), 0);
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), -ENOENT);
        struct stat st;
        cr_assert_eq(stat(key_path, &st), -1, "a key that cannot open the store was created");
}

Test(store, master_key_wrong_size) {
        store_close(open_new());
        cr_assert_eq(chmod(key_path, 0600), 0);
        cr_assert_eq(truncate(key_path, 16), 0);
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(0, &s), -EINVAL);
}

/* ---- states ---- */

Test(store, state_strings) {
        static const char *const ns[] = { "active", "reenrol", "revoked" };
        static const char *const es[] = { "active", "retired", "revoked", "deregistered" };
        for (int i = 0; i < _NODE_STATE_MAX; i++) {
                cr_assert_str_eq(node_state_to_string(i), ns[i]);
                cr_assert_eq(node_state_from_string(ns[i]), i);
        }
        for (int i = 0; i < _ENROLMENT_STATE_MAX; i++) {
                cr_assert_str_eq(enrolment_state_to_string(i), es[i]);
                cr_assert_eq(enrolment_state_from_string(es[i]), i);
        }
        cr_assert_null(node_state_to_string(_NODE_STATE_MAX));
        cr_assert_null(node_state_to_string(-1));
        cr_assert_eq(node_state_from_string("Active"), _NODE_STATE_INVALID);
        cr_assert_eq(node_state_from_string(NULL), _NODE_STATE_INVALID);
        cr_assert_eq(enrolment_state_from_string("retired "), _ENROLMENT_STATE_INVALID);
        cr_assert_null(enrolment_state_to_string(_ENROLMENT_STATE_MAX));
}

/* ---- nodes ---- */

Test(store, node_round_trip) {
        mef_store_t *s = open_new();
        uint8_t kpm[48], got[MSG_KEY_MAX];
        size_t len = 0;
        recognisable_key(kpm, sizeof kpm, 1);
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

        store_node_t *list = NULL;
        size_t nl = 0;
        cr_assert_eq(store_node_list(s, &list, &nl), 0);
        cr_assert_eq(nl, 2);
        cr_assert_str_eq(list[0].node_id, "urn:dev:ops:1");
        cr_assert_str_eq(list[1].node_id, "urn:dev:ops:2");
        free(list);

        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", NODE_REENROL), 0);
        cr_assert_eq(store_node_get(s, "urn:dev:ops:1", &r), 0);
        cr_assert_eq(r.state, NODE_REENROL);
        cr_assert_eq(store_node_set_state(s, "nope", NODE_REVOKED), -ENOENT);
        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", _NODE_STATE_MAX), -EINVAL);
        store_close(s);
}

Test(store, node_duplicates) {
        mef_store_t *s = open_new();
        uint8_t kpm[16];
        recognisable_key(kpm, sizeof kpm, 2);
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

        store_node_t *list = NULL;
        size_t nl = 0;
        cr_assert_eq(store_node_list(s, &list, &nl), 0);
        cr_assert_eq(nl, 2);
        free(list);
        store_close(s);
}

Test(store, cse_id_assigned_once) {
        mef_store_t *s = open_new();
        uint8_t kpm[16];
        recognisable_key(kpm, sizeof kpm, 3);
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
        /* and the good one still goes in */
        cr_assert_eq(store_node_add(s, &n, kpm, MSG_KEY_MAX), 0);
        store_close(s);
}

Test(store, remove_cascades_enrolments) {
        store_enrolment_t e1 = enrolment("11@mef", "a", 1000), e2 = enrolment("22@mef", "a", 2000),
                          e3 = enrolment("33@mef", "b", 3000);
        e1.state = ENROLMENT_RETIRED; /* one active enrolment per node */
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


/* SPDX-License-Identifier: MIT */
/* The store: opening and the master key, states, enrolments and their pages, transactions, secrets at rest,
 * schema versions, racing writers (fixture: store-fixture.h). */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "mef/store-internal.h"
#include "tests/unit/store-fixture.h"
#include "util/util.h"

/* ---- open, master key ---- */

Test(store, create_modes_and_reopen) {
        mef_store_t *s = open_new();
        cr_assert(store_created(s), "the first open with create made the store");
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

        /* with create again: found, not made (what init tells) */
        s = NULL;
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), 0);
        cr_assert_not(store_created(s));
        store_close(s);

        /* reopen without create, same key */
        s = NULL;
        cr_assert_eq(open_db(0, &s), 0);
        cr_assert_not(store_created(s));
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

/* Two processes creating the store at once each read "no check value" and write theirs: the
 * second must be refused, not replace the first's (its key) with its own. */
Test(store, check_value_of_another_key_is_not_replaced) {
        mef_store_t *s = open_new();
        uint8_t a[512], now[512], key_a[STORE_MASTER_KEY_LEN], key_b[STORE_MASTER_KEY_LEN];
        int n = blob_read("SELECT value FROM meta WHERE name = 'check'", a, sizeof a);
        cr_assert_gt(n, 0);
        cr_assert_eq(store_master_key_read(key_path, key_a), 0);
        cr_assert_eq(random_bytes(key_b, sizeof key_b), 0);
        /* the creating path with key B, after A's process wrote its value */
        cr_assert_eq(store_key_use(s, key_b), 0);
        cr_assert_eq(store_check_write(s), -EBADMSG);
        cr_assert_eq(blob_read("SELECT value FROM meta WHERE name = 'check'", now, sizeof now), n);
        cr_assert_arr_eq(now, a, (size_t) n, "the first creator's check value was replaced");
        /* with A's key (another process of the same key file got there first): adopted */
        cr_assert_eq(store_key_use(s, key_a), 0);
        cr_assert_eq(store_check_write(s), 0);
        cr_assert_eq(blob_read("SELECT value FROM meta WHERE name = 'check'", now, sizeof now), n);
        cr_assert_arr_eq(now, a, (size_t) n);
        store_close(s);
        s = NULL;
        cr_assert_eq(open_db(0, &s), 0, "A's key still opens the store");
        store_close(s);
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

/* ---- enrolments ---- */

Test(store, enrolments) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke1[32], ke2[64], got[MSG_KEY_MAX];
        size_t len = 0;
        recognisable_key(kpm, sizeof kpm, 6);
        recognisable_key(ke1, sizeof ke1, 7);
        recognisable_key(ke2, sizeof ke2, 8);
        add_psk_nodes(s, "ab", kpm, sizeof kpm);

        store_enrolment_t e1 = enrolment("0001@mef.example", "a", 1000);
        store_enrolment_t e2 = enrolment("0002@mef.example", "a", 2000);
        store_enrolment_t e3 = enrolment("0003@mef.example", "b", 1500);
        e2.ltk_transported = true;
        cr_assert_eq(store_enrolment_add(s, &e1, ke1, sizeof ke1), 0);
        /* at most one active enrolment per node, whoever writes */
        cr_assert_eq(store_enrolment_add(s, &e2, ke2, sizeof ke2), -EEXIST);
        cr_assert_eq(store_enrolment_set_state(s, "0001@mef.example", ENROLMENT_RETIRED), 0);
        cr_assert_eq(store_enrolment_add(s, &e2, ke2, sizeof ke2), 0);
        cr_assert_eq(store_enrolment_add(s, &e3, ke1, sizeof ke1), 0);
        cr_assert_eq(store_enrolment_add(s, &e3, ke1, sizeof ke1), -EEXIST);
        store_enrolment_t orphan = enrolment("0004@mef.example", "nobody", 1);
        cr_assert_eq(store_enrolment_add(s, &orphan, ke1, sizeof ke1), -ENOENT, "unknown node");
        cr_assert_eq(store_enrolment_add(s, &e1, ke1, 8), -EINVAL);

        store_enrolment_t r;
        cr_assert_eq(store_enrolment_get(s, "0002@mef.example", &r, got, &len), 0);
        cr_assert_str_eq(r.node_id, "a");
        cr_assert_eq(r.state, ENROLMENT_ACTIVE);
        cr_assert_eq(r.created, 2000);
        cr_assert_eq(r.exp, 2000 + 86400);
        cr_assert(r.ltk_transported);
        cr_assert_eq(len, sizeof ke2);
        cr_assert_arr_eq(got, ke2, sizeof ke2);
        cr_assert_eq(store_enrolment_get(s, "0002@mef.example", &r, got, NULL), -EINVAL);
        cr_assert_eq(store_enrolment_get(s, "nope", &r, got, &len), -ENOENT);

        /* newest first */
        store_enrolment_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_enrolment_list(s, NULL, &list, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert_str_eq(list[0].ke_id, "0002@mef.example");
        cr_assert_str_eq(list[1].ke_id, "0003@mef.example");
        cr_assert_str_eq(list[2].ke_id, "0001@mef.example");
        free(list);
        cr_assert_eq(store_enrolment_list(s, "a", &list, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(list[0].ke_id, "0002@mef.example");
        cr_assert_str_eq(list[1].ke_id, "0001@mef.example");
        free(list);
        cr_assert_eq(store_enrolment_list(s, "nobody", &list, &n), 0);
        cr_assert_eq(n, 0);
        free(list);

        cr_assert_eq(store_enrolment_set_state(s, "0001@mef.example", ENROLMENT_RETIRED), 0);
        cr_assert_eq(store_enrolment_set_state(s, "nope", ENROLMENT_RETIRED), -ENOENT);
        cr_assert_eq(store_enrolment_set_state(s, "0001@mef.example", _ENROLMENT_STATE_MAX), -EINVAL);
        /* only active ones of that node change */
        cr_assert_eq(store_enrolment_set_state_for_node(s, "a", ENROLMENT_REVOKED), 0);
        cr_assert_eq(store_enrolment_get(s, "0001@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_RETIRED);
        cr_assert_eq(store_enrolment_get(s, "0002@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_REVOKED);
        cr_assert_eq(store_enrolment_get(s, "0003@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_ACTIVE);
        cr_assert_eq(store_enrolment_set_state_for_node(s, "nobody", ENROLMENT_REVOKED), 0);
        /* a gateway's deregistration: of an active enrolment only (one revoked since the MEF read
         * it stays revoked) */
        cr_assert_eq(store_enrolment_deregister(s, "0002@mef.example"), -ENOENT);
        cr_assert_eq(store_enrolment_get(s, "0002@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_REVOKED);
        cr_assert_eq(store_enrolment_deregister(s, "0001@mef.example"), -ENOENT);
        cr_assert_eq(store_enrolment_deregister(s, "nope"), -ENOENT);
        cr_assert_eq(store_enrolment_deregister(s, "0003@mef.example"), 0);
        cr_assert_eq(store_enrolment_get(s, "0003@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_DEREGISTERED);
        cr_assert_eq(store_enrolment_deregister(s, "0003@mef.example"), -ENOENT, "once");
        cr_assert_eq(store_enrolment_set_state(s, "0003@mef.example", ENROLMENT_ACTIVE), 0);
        cr_assert_eq(store_enrolment_set_state(s, "0003@mef.example", ENROLMENT_DEREGISTERED), 0);
        cr_assert_eq(store_enrolment_get(s, "0003@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_DEREGISTERED);
        store_close(s);
}

Test(store, transaction_rollback) {
        uint8_t kpm[32];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 9);
        store_node_t a = psk_node("a", "kpm-a"), b = psk_node("b", "kpm-b");
        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        cr_assert_eq(store_audit(s, "cli", "node-add", "a", NULL), 0);
        store_rollback(s);
        store_node_t r;
        cr_assert_eq(store_node_get(s, "a", &r), -ENOENT);
        assert_audit(s, 0, NULL, NULL);
        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_node_add(s, &b, kpm, sizeof kpm), 0);
        cr_assert_eq(store_commit(s), 0);
        cr_assert_eq(store_node_get(s, "b", &r), 0);
        store_rollback(s); /* outside a transaction: harmless */
        store_close(s);
}

/* ---- secrets at rest ---- */

static bool file_contains(const char *path, const uint8_t *needle, size_t n) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (file_read_all(path, 64u << 20, &buf, &len) < 0)
                return false;
        return len >= n && memmem(buf, len, needle, n) != NULL;
}

static void assert_nowhere(const uint8_t *needle, size_t n, const char *what) {
        static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
        char p[PATH_MAX + 16];
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                snprintf(p, sizeof p, "%s%s", db_path, suffixes[i]);
                cr_assert(!file_contains(p, needle, n), "%s found in %s", what, p);
        }
}

#if HAVE_LIBPQ
/* PostgreSQL: the rows as text, bytea in hex: neither the bytes nor their hex may show. */
static void pg_assert_nowhere(const char *text, const uint8_t *needle, size_t n, const char *what) {
        char hex[2 * 32 + 1];
        cr_assert_leq(n, 32u);
        hex_encode(needle, n, hex);
        cr_assert_null(memmem(text, strlen(text), needle, n), "%s found in the database", what);
        cr_assert_null(strstr(text, hex), "%s found (hex) in the database", what);
}
#endif

Test(store, no_plaintext_keys_in_database) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], psk[32], ke[32];
        memcpy(kpm, "KPM-PLAINTEXT-MUST-NOT-BE-STORED", 32);
        memcpy(psk, "TARGET-PSK-MUST-NOT-BE-STORED!!!", 32);
        memcpy(ke, "ENROLMENT-KEY-MUST-NOT-BE-STORED", 32);
        store_node_t n = psk_node("n", "kpm-n");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        store_target_t t = { .id = "/in-cse", .psk_id = "in-psk" };
        cr_assert_eq(store_target_add(s, &t, psk, sizeof psk), 0);
        store_enrolment_t e = enrolment("abcd@mef", "n", 1000);
        cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);

        if (pg_uri) {
#if HAVE_LIBPQ
                store_close(s);
                _cleanup_free_ char *text = pg_dump_text();
                cr_assert_not_null(strstr(text, "kpm-n"), "the positive control: a KpmID is stored in clear");
                pg_assert_nowhere(text, kpm, 16, "Kpm");
                pg_assert_nowhere(text, psk, 16, "target PSK");
                pg_assert_nowhere(text, ke, 16, "enrolment key");
#endif
                return;
        }
        /* the positive control: the scan does find what is stored in clear */
        uint8_t id[] = "kpm-n";
        char wal[PATH_MAX + 8];
        snprintf(wal, sizeof wal, "%s-wal", db_path);
        cr_assert(file_contains(db_path, id, 5) || file_contains(wal, id, 5), "scan finds nothing at all");

        /* while open (data in the WAL), and after close (checkpointed into the file) */
        for (int pass = 0; pass < 2; pass++) {
                assert_nowhere(kpm, 16, "Kpm");
                assert_nowhere(psk, 16, "target PSK");
                assert_nowhere(ke, 16, "enrolment key");
                if (pass == 0)
                        s = store_close(s);
        }
        cr_assert(file_contains(db_path, id, 5), "checkpointed database lacks the KpmID");
}


Test(store, tampered_ciphertext_is_refused) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32], got[MSG_KEY_MAX], blob[256];
        size_t len = 0;
        recognisable_key(kpm, sizeof kpm, 10);
        recognisable_key(ke, sizeof ke, 11);
        add_psk_nodes(s, "ab", kpm, sizeof kpm);
        /* same ID as node b: only the AAD's table prefix tells their blobs apart */
        store_target_t t = { .id = "b", .psk_id = "in-psk" };
        cr_assert_eq(store_target_add(s, &t, kpm, sizeof kpm), 0);
        store_enrolment_t e = enrolment("abcd@mef", "a", 1000);
        cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);
        store_node_t r;
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-a", &r, got, &len), 0);

        /* one flipped ciphertext bit */
        int n = blob_read("SELECT kpm_enc FROM nodes WHERE node_id = 'a'", blob, sizeof blob);
        cr_assert_eq(n, 12 + 32 + 16, "nonce || ciphertext || tag");
        blob[12 + 5] ^= 0x01;
        sql_exec("UPDATE nodes SET kpm_enc = ?1 WHERE node_id = 'a'", blob, n);
        store_node_t untouched = { .poll = 42 };
        len = 7;
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-a", &untouched, got, &len), -EBADMSG);
        cr_assert_eq(untouched.poll, 42);
        cr_assert_eq(len, 7);

        /* a valid blob moved to another row: the AAD binds it to its node */
        n = blob_read("SELECT kpm_enc FROM nodes WHERE node_id = 'b'", blob, sizeof blob);
        sql_exec("UPDATE nodes SET kpm_enc = ?1 WHERE node_id = 'a'", blob, n);
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-a", &r, got, &len), -EBADMSG);
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-b", &r, got, &len), 0);
        cr_assert_arr_eq(got, kpm, sizeof kpm);
        /* or to another table, even to a row with the same ID */
        sql_exec("UPDATE targets SET psk_enc = ?1", blob, n);
        store_target_t tr;
        cr_assert_eq(store_target_by_psk_id(s, "in-psk", &tr, got, &len), -EBADMSG);

        /* truncated blob, tampered tag */
        n = blob_read("SELECT key_enc FROM enrolments", blob, sizeof blob);
        blob[n - 1] ^= 0x80;
        sql_exec("UPDATE enrolments SET key_enc = ?1", blob, n);
        store_enrolment_t er;
        cr_assert_eq(store_enrolment_get(s, "abcd@mef", &er, got, &len), -EBADMSG);
        cr_assert_eq(store_enrolment_get(s, "abcd@mef", &er, NULL, NULL), 0, "the row itself is fine");
        sql_exec("UPDATE enrolments SET key_enc = ?1", blob, 20);
        cr_assert_eq(store_enrolment_get(s, "abcd@mef", &er, got, &len), -EBADMSG);

        /* the check value too: the store no longer opens */
        store_close(s);
        n = blob_read("SELECT value FROM meta WHERE name = 'check'", blob, sizeof blob);
        blob[0] ^= 1;
        sql_exec("UPDATE meta SET value = ?1 WHERE name = 'check'", blob, n);
        s = NULL;
        cr_assert_eq(open_db(0, &s), -EBADMSG);
}

/* ---- schema versions ---- */

Test(store, schema_newer_is_refused_older_is_migrated) {
        mef_store_t *s = open_new();
        store_close(s);
        s = NULL;
        sql_exec(pg_uri ? "UPDATE msce_schema SET version = 99" : "PRAGMA user_version = 99", NULL, 0);
        cr_assert_eq(open_db(0, &s), -EPROTONOSUPPORT);
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), -EPROTONOSUPPORT);
        cr_assert_eq(open_db(STORE_OPEN_MIGRATE, &s), -EPROTONOSUPPORT);
        cr_assert_null(s);

        /* back to version 1: the one-active-enrolment index is what 2 added, the status tally and
         * the pruning indexes what 3 added, the bulk import and paging indexes 4 */
        sql_exec(pg_uri ? "UPDATE msce_schema SET version = 1" : "PRAGMA user_version = 1", NULL, 0);
        sql_exec("DROP INDEX enrolments_one_active", NULL, 0);
        sql_exec("DROP INDEX audit_ts", NULL, 0);
        sql_exec("DROP INDEX enrolments_exp", NULL, 0);
        sql_exec("DROP INDEX nodes_cse_id", NULL, 0);
        sql_exec("DROP INDEX enrolments_created", NULL, 0);
        sql_exec("ALTER TABLE nodes DROP COLUMN last_seen", NULL, 0);
        sql_exec("ALTER TABLE nodes DROP COLUMN status_checks", NULL, 0);
        cr_assert_eq(open_db(0, &s), -ESTALE);
        cr_assert_null(s);
        cr_assert_eq(open_db(STORE_OPEN_MIGRATE, &s), 0);
        int from = -1, to = -1;
        cr_assert_eq(store_migrate(s, &from, &to), 0);
        cr_assert_eq(from, 1);
        cr_assert_eq(to, STORE_SCHEMA_VERSION);
        cr_assert_eq(store_migrate(s, &from, &to), 0, "again: nothing to do");
        cr_assert_eq(from, STORE_SCHEMA_VERSION);
        store_close(s);
        s = NULL;
        cr_assert_eq(open_db(0, &s), 0);
        store_close(s);
}

/* ---- one active enrolment per node, whoever writes ---- */

#define RACE_ROUNDS 40

typedef struct racer {
        int id;
        int enrolled;
} racer_t;

/* What an enrolment does (mef/handlers-enrol.c): retire the node's active enrolment, add one. */
static void *race_enrol(void *userdata) {
        racer_t *rc = userdata;
        mef_store_t *s = NULL;
        if (open_db(0, &s) < 0)
                return NULL;
        uint8_t ke[32];
        recognisable_key(ke, sizeof ke, (uint8_t) rc->id);
        for (int i = 0; i < RACE_ROUNDS; i++) {
                char ke_id[64];
                snprintf(ke_id, sizeof ke_id, "%d-%d@mef", rc->id, i);
                store_enrolment_t e = enrolment(ke_id, "racy", 1000 + i);
                int r = store_begin(s);
                if (r == 0)
                        r = store_enrolment_set_state_for_node(s, "racy", ENROLMENT_RETIRED);
                if (r == 0)
                        r = store_enrolment_add(s, &e, ke, sizeof ke);
                if (r == 0)
                        r = store_commit(s);
                if (r < 0)
                        store_rollback(s); /* busy: as the server would answer 503 */
                else
                        rc->enrolled++;
        }
        store_close(s);
        return NULL;
}

Test(store, racing_enrolments_leave_one_active) {
        uint8_t kpm[32];
        mef_store_t *s = open_keyed(kpm, sizeof kpm, 12);
        store_node_t n = psk_node("racy", "kpm-racy");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        racer_t racers[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
                racers[i] = (racer_t) { .id = i + 1 };
                cr_assert_eq(pthread_create(&t[i], NULL, race_enrol, &racers[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                total += racers[i].enrolled;
        }
        cr_assert_gt(total, 0, "no enrolment went through");
        store_enrolment_t *list = NULL;
        size_t count = 0, active = 0;
        cr_assert_eq(store_enrolment_list(s, "racy", &list, &count), 0);
        for (size_t i = 0; i < count; i++)
                active += list[i].state == ENROLMENT_ACTIVE;
        free(list);
        cr_assert_eq(count, (size_t) total, "every committed enrolment is stored");
        cr_assert_eq(active, 1u, "%zu active enrolments after %d racing ones", active, total);
        store_close(s);
}

/* An enrolment with its key and its node in one read (mef/store-peers.c: fetchCredentials). */
Test(store, enrolment_with_its_node) {
        uint8_t kpm[32], ke[32], got[MSG_KEY_MAX];
        size_t len = 0;
        recognisable_key(kpm, sizeof kpm, 23);
        recognisable_key(ke, sizeof ke, 24);
        mef_store_t *s = open_new();
        add_psk_nodes(s, "ab", kpm, sizeof kpm);
        store_enrolment_t e1 = enrolment("e1@mef", "b", 1000);
        cr_assert_eq(store_enrolment_add(s, &e1, ke, sizeof ke), 0);
        cr_assert_eq(store_node_set_state(s, "b", NODE_REENROL), 0);

        store_enrolment_t e;
        store_node_t n;
        bool has_node = false;
        cr_assert_eq(store_enrolment_get_with_node(s, "e1@mef", &e, got, &len, &n, &has_node), 0);
        cr_assert_str_eq(e.ke_id, "e1@mef");
        cr_assert_str_eq(e.node_id, "b");
        cr_assert_eq(e.state, ENROLMENT_ACTIVE);
        cr_assert_eq(e.exp, e1.exp);
        cr_assert_eq(len, sizeof ke);
        cr_assert_arr_eq(got, ke, sizeof ke);
        cr_assert(has_node);
        cr_assert_str_eq(n.node_id, "b");
        cr_assert_str_eq(n.kpm_id, "kpm-b");
        cr_assert_eq(n.state, NODE_REENROL);
        cr_assert_eq(n.n_targets, 2);

        store_enrolment_t untouched_e = { .exp = 9 };
        store_node_t untouched_n = { .poll = 9 };
        len = 5;
        cr_assert_eq(store_enrolment_get_with_node(s, "e2@mef", &untouched_e, got, &len, &untouched_n, &has_node),
                     -ENOENT);
        cr_assert_eq(untouched_e.exp, 9);
        cr_assert_eq(untouched_n.poll, 9);
        cr_assert_eq(len, 5);
        store_close(s);
}

/* ---- pages ---- */

/* The rows of one page of all nodes' enrolments, the call asserted. */
static size_t enrolment_page_rows(mef_store_t *s, const store_page_t *p) {
        store_enrolment_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_enrolment_page(s, NULL, p, &list, &n), 0);
        free(list);
        return n;
}

Test(store, enrolment_pages_newest_first) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32];
        recognisable_key(kpm, sizeof kpm, 11);
        recognisable_key(ke, sizeof ke, 12);
        store_node_t a = psk_node("a", "kpm-a");
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        char ke_id[32];
        /* same created twice over: the tie is broken by insertion order */
        for (int i = 0; i < 10; i++) {
                snprintf(ke_id, sizeof ke_id, "%02x@mef", i);
                store_enrolment_t e = enrolment(ke_id, "a", 5000 + i / 2);
                e.state = i == 9 ? ENROLMENT_ACTIVE : ENROLMENT_RETIRED;
                cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);
        }
        store_enrolment_t *all = NULL;
        size_t n_all = 0;
        cr_assert_eq(store_enrolment_list(s, NULL, &all, &n_all), 0);
        cr_assert_eq(n_all, 10);
        store_page_t p = { .limit = 3, .state = -1 };
        char after[MSG_KEID_MAX + 1] = "";
        size_t seen = 0;
        for (;;) {
                store_enrolment_t *list = NULL;
                size_t n = 0;
                p.after = after[0] ? after : NULL;
                cr_assert_eq(store_enrolment_page(s, "a", &p, &list, &n), 0);
                for (size_t i = 0; i < n; i++)
                        cr_assert_str_eq(list[i].ke_id, all[seen++].ke_id, "the order of the full list");
                if (n)
                        snprintf(after, sizeof after, "%s", list[n - 1].ke_id);
                free(list);
                if (n < 3)
                        break;
        }
        cr_assert_eq(seen, 10);
        free(all);

        p = (store_page_t) { .state = ENROLMENT_ACTIVE, .expired = 1, .now = 5004 + 86400 };
        cr_assert_eq(enrolment_page_rows(s, &p), 1, "the active one, past its exp");
        p.expired = -1;
        cr_assert_eq(enrolment_page_rows(s, &p), 0);
        p = (store_page_t) { .state = -1, .after = "ff@mef" };
        store_enrolment_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_enrolment_page(s, NULL, &p, &list, &n), -ENOENT);
        store_close(s);
}

/* A page's cursor whose row was removed before the next page (its node removed here; pruning
 * alike): the next page goes on from its place, without a row skipped or repeated. The cursor
 * was the row's KeID, whose lookup failed (-ENOENT: the CLI's listing of more than 1,000 rows
 * stopped, the admin API answered 400). Rows of two nodes interleaved, created in the same
 * seconds (the tie broken by insertion order), pages of 3; the last row of the first page is
 * b's, and b goes. */
Test(store, enrolment_page_after_a_removed_row) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32];
        recognisable_key(kpm, sizeof kpm, 13);
        recognisable_key(ke, sizeof ke, 14);
        store_node_t a = psk_node("a", "kpm-a"), b = psk_node("b", "kpm-b");
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_add(s, &b, kpm, sizeof kpm), 0);
        for (int i = 0; i < 12; i++) {
                char ke_id[32];
                snprintf(ke_id, sizeof ke_id, "%02x@mef", i);
                store_enrolment_t e = enrolment(ke_id, i % 2 ? "b" : "a", 5000 + i / 4);
                e.state = ENROLMENT_RETIRED;
                cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);
        }
        store_page_t p = { .limit = 3, .state = -1 };
        store_enrolment_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_enrolment_page(s, NULL, &p, &list, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert_str_eq(list[0].ke_id, "0b@mef");
        cr_assert_str_eq(list[2].ke_id, "09@mef", "the page ends on one of b's");
        char after[STORE_ENROLMENT_CURSOR_MAX];
        store_enrolment_cursor(&list[2], after);
        free(list);

        cr_assert_eq(store_node_remove(s, "b"), 0);
        /* what is left after 09, newest first: a's 08, 06, ..., 00 */
        static const char *const rest[] = { "08@mef", "06@mef", "04@mef", "02@mef", "00@mef" };
        size_t seen = 0;
        for (;;) {
                p.after = after;
                cr_assert_eq(store_enrolment_page(s, NULL, &p, &list, &n), 0, "the page after a removed row");
                for (size_t i = 0; i < n; i++) {
                        cr_assert_lt(seen, ELEMENTSOF(rest), "a row too many: %s", list[i].ke_id);
                        cr_assert_str_eq(list[i].ke_id, rest[seen], "row %zu", seen);
                        seen++;
                }
                if (n)
                        store_enrolment_cursor(&list[n - 1], after);
                free(list);
                if (n < p.limit)
                        break;
        }
        cr_assert_eq(seen, ELEMENTSOF(rest), "no row skipped");

        /* a KeID as the cursor still works while it exists, and says when it does not */
        p = (store_page_t) { .limit = 2, .state = -1, .after = "06@mef" };
        cr_assert_eq(store_enrolment_page(s, NULL, &p, &list, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(list[0].ke_id, "04@mef");
        free(list);
        p.after = "09@mef";
        cr_assert_eq(store_enrolment_page(s, NULL, &p, &list, &n), -ENOENT);
        store_close(s);
}

/* SPDX-License-Identifier: MIT */
/* The store's backup functions (mef/store-backup.h) on SQLite: a dump restores into a fresh
 * store with the same key and gives back the same secrets; restore_row refuses rows that do not
 * fit their table and secrets of another key; a rekey through one handle is picked up by another
 * handle on the same store, for reads and for new secrets, and the old key no longer opens it;
 * a rekey that stopped after its commit leaves a store both keys open, and the next finishes it;
 * a key prepared ahead and copied to other hosts lets them follow a rekey made on one; the master
 * key IDs name the key a backup made now wraps, and the other one of a rekey; a rekey counts
 * only the secrets it changed. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "mef/store-backup.h"
#include "mef/store-internal.h"
#include "util/util.h"

static char dir[] = "/tmp/test-store-backup.XXXXXX";
static char path_a[PATH_MAX], path_b[PATH_MAX], key_a[PATH_MAX], key_b[PATH_MAX];

static void setup(void) {
        cr_assert_not_null(mkdtemp(dir));
        snprintf(path_a, sizeof path_a, "%s/a.db", dir);
        snprintf(path_b, sizeof path_b, "%s/b.db", dir);
        snprintf(key_a, sizeof key_a, "%s/a.key", dir);
        snprintf(key_b, sizeof key_b, "%s/b.key", dir);
}

static void teardown(void) {
        const char *names[] = { "a.db", "a.db-wal", "a.db-shm", "b.db", "b.db-wal", "b.db-shm", "a.key", "b.key",
                                "a.key.new", "b.key.new" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/%s", dir, names[i]);
                unlink(p);
        }
        rmdir(dir);
}

TestSuite(store_backup, .init = setup, .fini = teardown);

static const uint8_t kpm[32] = { 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab,
                                 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
                                 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf, 0xc0 };
static const uint8_t ke[32] = { 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8 };

static mef_store_t *open_store(const char *db, const char *key) {
        mef_store_t *s = NULL;
        cr_assert_eq(store_open(db, key, true, &s), 0);
        return s;
}

static void populate(mef_store_t *s) {
        store_node_t n = { .node_id = "urn:dev:ops:sb-1", .kpm_id = "kpm-sb-1", .cse_id = "/mn-sb-1",
                           .cse_base = "https://in.example.net/base", .poll = 3600, .lifetime = 86400,
                           .n_targets = 1, .targets = { "/in-cse" } };
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        store_target_t t = { .id = "/in-cse", .psk_id = "tpsk-sb" };
        cr_assert_eq(store_target_add(s, &t, ke, 16), 0);
        store_enrolment_t e = { .ke_id = "00112233445566778899aabbccddeeff@mef.test", .node_id = "urn:dev:ops:sb-1",
                                .state = ENROLMENT_ACTIVE, .exp = 4102444800 };
        cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);
        cr_assert_eq(store_audit(s, "cli:test", "node-add", "urn:dev:ops:sb-1", NULL), 0);
}

static void assert_secrets(mef_store_t *s) {
        store_node_t n;
        uint8_t k[MSG_KEY_MAX];
        size_t len;
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-sb-1", &n, k, &len), 0);
        cr_assert_eq(len, sizeof kpm);
        cr_assert_arr_eq(k, kpm, sizeof kpm);
        store_enrolment_t e;
        cr_assert_eq(store_enrolment_get(s, "00112233445566778899aabbccddeeff@mef.test", &e, k, &len), 0);
        cr_assert_arr_eq(k, ke, sizeof ke);
        store_target_t t;
        cr_assert_eq(store_target_by_psk_id(s, "tpsk-sb", &t, k, &len), 0);
        cr_assert_eq(len, 16);
}

/* A node with Kpm ke added through writer, read back through reader. */
static void assert_one_seals_other_reads(mef_store_t *writer, mef_store_t *reader) {
        store_node_t n2 = { .node_id = "urn:dev:ops:sb-2", .kpm_id = "kpm-sb-2", .cse_id = "/mn-sb-2",
                            .cse_base = "https://in.example.net/base", .poll = 3600, .lifetime = 86400 };
        cr_assert_eq(store_node_add(writer, &n2, ke, sizeof ke), 0);
        store_node_t got;
        uint8_t k[MSG_KEY_MAX];
        size_t len;
        cr_assert_eq(store_node_by_kpm_id(reader, "kpm-sb-2", &got, k, &len), 0);
        cr_assert_arr_eq(k, ke, sizeof ke);
}

/* A whole rekey of populate()'s three secrets through s, and the key file after it. */
static void assert_rekey_of_3(mef_store_t *s, secret_t *ret_key) {
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(s, &rk), 0);
        cr_assert_eq(rk.resealed, 3);
        cr_assert(rk.took_over && !rk.resumed);
        cr_assert_eq(secret_file_read(key_a, 64, ret_key), 0);
        cr_assert_eq(ret_key->len, 32);
}

/* A rekey through s that finishes one stopped after its commit: it resumes, reseals the
 * secrets still under the old key, removes the pending key file and leaves next in key's file. */
static void assert_rekey_finishes(mef_store_t *s, const char *key, const secret_t *next, uint64_t resealed) {
        char pending[PATH_MAX];
        cr_assert_eq(store_rekey_pending_path(key, pending, sizeof pending), 0);
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(s, &rk), 0);
        cr_assert(rk.resumed);
        cr_assert_eq(rk.resealed, resealed, "the secrets still under the old key: %" PRIu64, rk.resealed);
        cr_assert_eq(access(pending, F_OK), -1);
        _cleanup_secret_ secret_t now = { 0 };
        cr_assert_eq(secret_file_read(key, 64, &now), 0);
        cr_assert_arr_eq(now.data, next->data, 32);
}

typedef struct rows {
        size_t n;
        char *table[64];
        json_t *row[64];
} rows_t;

static int collect(const char *table, json_t *row, void *userdata) {
        rows_t *r = userdata;
        cr_assert_lt(r->n, ELEMENTSOF(r->row));
        r->table[r->n] = strdup(table);
        r->row[r->n++] = json_deep_copy(row);
        return 0;
}

static void rows_free(rows_t *r) {
        for (size_t i = 0; i < r->n; i++) {
                free(r->table[i]);
                json_decref(r->row[i]);
        }
}

static void copy_file(const char *from, const char *to) {
        _cleanup_secret_ secret_t k = { 0 };
        cr_assert_eq(secret_file_read(from, 64, &k), 0);
        int fd = open(to, O_WRONLY | O_CREAT | O_EXCL, 0400);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write_all(fd, k.data, k.len), 0);
        close(fd);
}

static int restore_all(mef_store_t *s, rows_t *r) {
        int ret = store_begin(s);
        for (size_t i = 0; ret == 0 && i < r->n; i++)
                ret = store_restore_row(s, r->table[i], r->row[i]);
        if (ret == 0)
                ret = store_restore_finish(s);
        if (ret == 0)
                return store_commit(s);
        store_rollback(s);
        return ret;
}

Test(store_backup, dump_restores_with_the_same_secrets) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        rows_t r = { 0 };
        cr_assert_eq(store_dump(a, collect, &r, NULL), 0);
        /* nodes, targets, enrolments, 1 audit row, the check value */
        cr_assert_eq(r.n, 5);
        cr_assert_str_eq(r.table[4], "meta");
        for (size_t i = 0; i < r.n; i++) {
                char *t = json_dumps(r.row[i], JSON_COMPACT);
                cr_assert_null(strstr(t, "a1a2a3a4"), "Kpm in the clear: %s", t);
                cr_assert_null(strstr(t, "07070707"), "Ke in the clear: %s", t);
                free(t);
        }

        copy_file(key_a, key_b);
        mef_store_t *b = open_store(path_b, key_b);
        uint64_t in_use;
        cr_assert_eq(store_rows_in_use(b, &in_use), 0);
        cr_assert_eq(in_use, 0);
        cr_assert_eq(restore_all(b, &r), 0);
        assert_secrets(b);
        cr_assert_eq(store_rows_in_use(b, &in_use), 0);
        cr_assert_eq(in_use, 4); /* a node, a target, an enrolment and the audit row */
        /* again: duplicates are refused, the transaction leaves the store as it was */
        cr_assert_lt(restore_all(b, &r), 0);
        cr_assert_eq(store_begin(b), 0);
        cr_assert_eq(store_restore_clear(b), 0);
        cr_assert_eq(store_commit(b), 0);
        cr_assert_eq(restore_all(b, &r), 0);
        assert_secrets(b);
        store_close(b);
        store_close(a);
        rows_free(&r);
}

Test(store_backup, restore_refuses_rows_that_do_not_fit) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        rows_t r = { 0 };
        cr_assert_eq(store_dump(a, collect, &r, NULL), 0);
        mef_store_t *b = open_store(path_b, key_b); /* its own key */
        cr_assert_eq(store_begin(b), 0);
        /* every secret and the check value belong to a's key */
        cr_assert_eq(store_restore_row(b, "nodes", r.row[0]), -EKEYREJECTED);
        cr_assert_eq(store_restore_row(b, "enrolments", r.row[2]), -EKEYREJECTED);
        cr_assert_eq(store_restore_row(b, "meta", r.row[4]), -EKEYREJECTED);
        cr_assert_eq(store_restore_row(b, "nosuch", r.row[0]), -EINVAL);
        cr_assert_eq(store_restore_row(b, "targets", r.row[0]), -EBADMSG);
        json_t *audit = json_deep_copy(r.row[3]);
        json_object_set_new(audit, "ts", json_string("yesterday"));
        cr_assert_eq(store_restore_row(b, "audit", audit), -EBADMSG);
        json_object_set_new(audit, "ts", json_integer(1));
        json_object_set_new(audit, "extra", json_integer(1));
        cr_assert_eq(store_restore_row(b, "audit", audit), -EBADMSG);
        json_object_del(audit, "extra");
        json_object_set_new(audit, "actor", json_null());
        cr_assert_eq(store_restore_row(b, "audit", audit), -EBADMSG);
        json_object_set_new(audit, "actor", json_stringn("a\0b", 3));
        cr_assert_eq(store_restore_row(b, "audit", audit), -EBADMSG);
        json_object_set_new(audit, "actor", json_string("cli:x"));
        cr_assert_eq(store_restore_row(b, "audit", audit), 0);
        json_decref(audit);
        json_t *node = json_deep_copy(r.row[0]);
        json_object_set_new(node, "kpm_enc", json_string("zz"));
        cr_assert_eq(store_restore_row(b, "nodes", node), -EBADMSG);
        json_decref(node);
        store_rollback(b);
        store_close(b);
        store_close(a);
        rows_free(&r);
}

Test(store_backup, rekey_is_picked_up_by_another_handle) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        mef_store_t *serving = open_store(path_a, key_a);
        assert_secrets(serving);
        _cleanup_secret_ secret_t old = { 0 };
        cr_assert_eq(secret_file_read(key_a, 64, &old), 0);

        store_rekey_result_t rk;
        _cleanup_secret_ secret_t now = { 0 };
        assert_rekey_of_3(a, &now);
        cr_assert_neq(memcmp(old.data, now.data, 32), 0);
        struct stat st;
        cr_assert_eq(stat(key_a, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0400);
        char pending[PATH_MAX];
        cr_assert_eq(store_rekey_pending_path(key_a, pending, sizeof pending), 0);
        cr_assert_eq(access(pending, F_OK), -1);

        /* the serving handle still holds the old key: it reads the new one on its own */
        assert_secrets(serving);
        assert_secrets(a);
        /* a secret it seals now is under the new key: the rekeying handle reads it */
        assert_one_seals_other_reads(serving, a);

        /* the old key no longer opens the store */
        int fd = open(key_b, O_WRONLY | O_CREAT | O_EXCL, 0400);
        cr_assert_eq(write_all(fd, old.data, 32), 0);
        close(fd);
        mef_store_t *stale = NULL;
        cr_assert_eq(store_open(path_a, key_b, false, &stale), -EBADMSG);
        /* another rekey of the key file under way: refused, nothing changes */
        int lock = open(key_a, O_RDONLY);
        cr_assert_eq(flock(lock, LOCK_EX), 0);
        cr_assert_eq(store_rekey(a, &rk), -EBUSY);
        cr_assert(!rk.took_over);
        close(lock);
        cr_assert_eq(access(pending, F_OK), -1);
        /* a file a rekey left before its commit opens nothing: replaced, and this rekey runs */
        fd = open(pending, O_WRONLY | O_CREAT | O_EXCL, 0400);
        close(fd);
        cr_assert_eq(store_rekey(a, &rk), 0);
        cr_assert_eq(rk.resealed, 4);
        cr_assert_eq(access(pending, F_OK), -1);
        assert_secrets(serving);
        store_close(serving);
        store_close(a);
}

static void sql(const char *db_path, const char *q) {
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db, q, NULL, NULL, NULL), SQLITE_OK, "%s: %s", q, sqlite3_errmsg(db));
        sqlite3_close(db);
}

/* A dump of s fails on the secret of that table's row id. */
static void assert_dump_stops_at(mef_store_t *s, const char *table, const char *id) {
        rows_t r = { 0 };
        store_dump_stop_t stop = { 0 };
        cr_assert_eq(store_dump(s, collect, &r, &stop), -EBADMSG);
        cr_assert_str_eq(stop.table, table);
        cr_assert_str_eq(stop.id, id);
        rows_free(&r);
}

/* A backup opens each secret on the way: one that no key opens (here a node's sealed Kpm copied
 * into an enrolment: its additional data names another row) stops it, named, instead of going
 * into a backup whose restore would refuse it. */
Test(store_backup, dump_stops_at_a_secret_no_key_opens) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        sql(path_a, "UPDATE enrolments SET key_enc = (SELECT kpm_enc FROM nodes)");
        assert_dump_stops_at(a, "enrolments", "00112233445566778899aabbccddeeff@mef.test");
        store_close(a);
}

/* The dump r (freed) restores into a fresh store b under a copy of key, with populate()'s secrets. */
static void assert_restores_under(rows_t *r, const char *key) {
        copy_file(key, key_b);
        mef_store_t *b = open_store(path_b, key_b);
        cr_assert_eq(restore_all(b, r), 0);
        assert_secrets(b);
        store_close(b);
        rows_free(r);
}

/* populate() and node sb-9, whose sealed Kpm no key opens */
static mef_store_t *populated_with_a_bad_node(void) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        store_node_t bad = { .node_id = "urn:dev:ops:sb-9", .kpm_id = "kpm-sb-9", .cse_id = "/mn-sb-9",
                             .cse_base = "https://in.example.net/base", .poll = 3600, .lifetime = 86400 };
        cr_assert_eq(store_node_add(a, &bad, kpm, sizeof kpm), 0);
        sql(path_a, "UPDATE nodes SET kpm_enc = zeroblob(60) WHERE node_id = 'urn:dev:ops:sb-9'");
        return a;
}

/* a rekey through a that stops at sb-9 after its commit of the new key */
static void rekey_stops_at_the_bad_node(mef_store_t *a) {
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(a, &rk), -EBADMSG);
        cr_assert(rk.took_over);
}

/* A rekey re-encrypts in steps after its commit of the new key. Stopped there (here by a secret
 * that opens under no key), the store opens under both keys: for a handle that had the old one,
 * for one opened since, for a backup (whose dump is under the new key alone); the next rekey
 * finishes it, and then the new key alone opens every secret. */
Test(store_backup, rekey_stopped_after_its_commit_is_finished_by_the_next) {
        mef_store_t *a = populated_with_a_bad_node();
        mef_store_t *serving = open_store(path_a, key_a);
        _cleanup_secret_ secret_t old = { 0 };
        cr_assert_eq(secret_file_read(key_a, 64, &old), 0);
        rekey_stops_at_the_bad_node(a);
        char pending[PATH_MAX];
        cr_assert_eq(store_rekey_pending_path(key_a, pending, sizeof pending), 0);
        _cleanup_secret_ secret_t next = { 0 };
        cr_assert_eq(secret_file_read(pending, 64, &next), 0, "the new key stays at %s", pending);
        _cleanup_secret_ secret_t same = { 0 };
        cr_assert_eq(secret_file_read(key_a, 64, &same), 0);
        cr_assert_arr_eq(same.data, old.data, 32, "the key file is the old key until the rekey finishes");

        assert_secrets(serving);
        mef_store_t *fresh = open_store(path_a, key_a);
        assert_secrets(fresh);
        /* sealed now: under the new key, which the rekeying handle holds */
        assert_one_seals_other_reads(fresh, a);

        /* a backup now: a secret that opens under neither key fails it; without it, every
         * secret of the dump is under the new key, which restores it */
        assert_dump_stops_at(fresh, "nodes", "urn:dev:ops:sb-9");
        sql(path_a, "DELETE FROM nodes WHERE node_id = 'urn:dev:ops:sb-9'");
        rows_t r = { 0 };
        cr_assert_eq(store_dump(fresh, collect, &r, NULL), 0);
        assert_restores_under(&r, pending);

        /* the next rekey finishes this one: the new key is the key file's, and alone opens all */
        assert_rekey_finishes(a, key_a, &next, 3);
        mef_store_t *after = open_store(path_a, key_a);
        assert_secrets(after);
        store_node_t got;
        uint8_t k[MSG_KEY_MAX];
        size_t len;
        cr_assert_eq(store_node_by_kpm_id(after, "kpm-sb-2", &got, k, &len), 0);
        cr_assert_arr_eq(k, ke, sizeof ke);
        assert_secrets(serving);
        store_close(after);
        store_close(fresh);
        store_close(serving);
        store_close(a);
}

static void assert_key_ids(mef_store_t *s, store_rekey_state_t rekey, const char *current, const char *next,
                           const char *previous) {
        store_key_ids_t k;
        cr_assert_eq(store_master_key_ids(s, &k), 0);
        cr_assert_eq(k.rekey, rekey);
        cr_assert_str_eq(k.current, current);
        cr_assert_str_eq(k.next, next);
        cr_assert_str_eq(k.previous, previous);
}

/* What init prints: the ID of the key a backup made now wraps (the one the check value opens,
 * as a handle opened before a rekey sees it too), and the other key of a rekey prepared or
 * under way. */
Test(store_backup, key_ids_name_the_key_a_backup_wraps_through_a_rekey) {
        mef_store_t *a = populated_with_a_bad_node();
        mef_store_t *serving = open_store(path_a, key_a);
        char pending[PATH_MAX], old_id[STORE_MASTER_KEY_ID_HEX], new_id[STORE_MASTER_KEY_ID_HEX];
        cr_assert_eq(store_rekey_pending_path(key_a, pending, sizeof pending), 0);
        cr_assert_eq(store_master_key_file_id(key_a, old_id), 0);
        assert_key_ids(serving, STORE_REKEY_NONE, old_id, "", "");
        /* a key file torn in its writing is no key: a rekey replaces it */
        int fd = open(pending, O_WRONLY | O_CREAT | O_EXCL, 0400);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write_all(fd, "torn", 4), 0);
        close(fd);
        assert_key_ids(serving, STORE_REKEY_NONE, old_id, "", "");
        cr_assert_eq(unlink(pending), 0);

        cr_assert_eq(store_rekey_prepare(key_a), 0);
        cr_assert_eq(store_master_key_file_id(pending, new_id), 0);
        assert_key_ids(serving, STORE_REKEY_PREPARED, old_id, new_id, "");
        rekey_stops_at_the_bad_node(a);
        assert_key_ids(serving, STORE_REKEY_UNDER_WAY, new_id, "", old_id);
        sql(path_a, "DELETE FROM nodes WHERE node_id = 'urn:dev:ops:sb-9'");
        rows_t r = { 0 };
        cr_assert_eq(store_dump(serving, collect, &r, NULL), 0);
        assert_restores_under(&r, pending); /* the backup's key: new_id's */

        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(a, &rk), 0);
        assert_key_ids(serving, STORE_REKEY_NONE, new_id, "", "");
        store_close(serving);
        store_close(a);
}

/* A dump's handle whose next step renames a file once: a rekey's last step landing between
 * the dump's snapshot (its first read, the check value's) and its reading of the key files. */
static const db_ops_t *real_ops;
static db_ops_t hooked_ops;
static const char *rename_from, *rename_to;

static int step_then_rename(db_stmt_t *st) {
        int r = real_ops->step(st);
        if (rename_from)
                cr_assert_eq(rename(rename_from, rename_to), 0);
        rename_from = NULL;
        return r;
}

/* a cached statement keeps the ops it was made with: each one handed out gets the hook's */
static int prepare_hooked(db_t *d, const char *sql, db_stmt_t **ret) {
        int r = real_ops->prepare(d, sql, ret);
        if (r == 0)
                *(const db_ops_t **) *ret = &hooked_ops;
        return r;
}

/* A rekey stopped after its commit leaves secrets under the old key; a dump whose snapshot
 * holds them while the rekey finishes (renames its key over the key file) must still open them:
 * the key file as it was before the snapshot does. It failed naming the row as damaged. */
Test(store_backup, dump_opens_what_a_rekey_finishing_under_its_snapshot_left) {
        mef_store_t *a = populated_with_a_bad_node();
        mef_store_t *d = open_store(path_a, key_a); /* the old key alone */
        rekey_stops_at_the_bad_node(a);
        sql(path_a, "DELETE FROM nodes WHERE node_id = 'urn:dev:ops:sb-9'");

        char pending[PATH_MAX];
        cr_assert_eq(store_rekey_pending_path(key_a, pending, sizeof pending), 0);
        real_ops = d->d->ops;
        hooked_ops = *real_ops;
        hooked_ops.step = step_then_rename;
        hooked_ops.prepare = prepare_hooked;
        d->d->ops = &hooked_ops;
        rename_from = pending;
        rename_to = key_a;
        rows_t r = { 0 };
        store_dump_stop_t stop = { 0 };
        cr_assert_eq(store_dump(d, collect, &r, &stop), 0, "stopped at %s %s", stop.table, stop.id);
        cr_assert_null(rename_from, "the rename ran");
        cr_assert_eq(access(pending, F_OK), -1);

        /* the dump is under the new key, now the key file's */
        assert_restores_under(&r, key_a);
        d->d->ops = real_ops;
        store_close(d);
        store_close(a);
}

/* Several hosts on one store, each with its own copy of the key file: the next key prepared on
 * one and copied to the others first; a rekey on one host takes it, the others open and seal
 * under it at once (their copy at "<key>.new"), and a rekey there only finishes: renames. */
Test(store_backup, rekey_with_a_prepared_key_reaches_every_host) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        copy_file(key_a, key_b);
        mef_store_t *host_b = open_store(path_a, key_b);
        char pending_a[PATH_MAX], pending_b[PATH_MAX];
        cr_assert_eq(store_rekey_pending_path(key_a, pending_a, sizeof pending_a), 0);
        cr_assert_eq(store_rekey_pending_path(key_b, pending_b, sizeof pending_b), 0);

        cr_assert_eq(store_rekey_prepare(key_a), 0);
        cr_assert_eq(store_rekey_prepare(key_a), 1, "a prepared key is kept");
        struct stat st;
        cr_assert_eq(stat(pending_a, &st), 0);
        cr_assert_eq(st.st_mode & 0777, 0400);
        _cleanup_secret_ secret_t next = { 0 };
        cr_assert_eq(secret_file_read(pending_a, 64, &next), 0);
        cr_assert_eq(next.len, 32);
        copy_file(pending_a, pending_b);
        assert_secrets(host_b); /* prepared, not yet the store's */

        _cleanup_secret_ secret_t now = { 0 };
        assert_rekey_of_3(a, &now);
        cr_assert_arr_eq(now.data, next.data, 32, "the rekey took the prepared key");

        assert_secrets(host_b);
        assert_one_seals_other_reads(host_b, a);
        assert_rekey_finishes(host_b, key_b, &next, 0); /* on the other host the rekey only finishes */
        mef_store_t *after = open_store(path_a, key_b);
        assert_secrets(after);
        store_close(after);
        store_close(host_b);
        store_close(a);
}

/* ---- a handle opened while a rekey commits ---- */

/* The rekey (through race_rekeyer) committed right after the open's first read of the check
 * value, through a trace callback on every connection opened meanwhile. */
static mef_store_t *race_rekeyer;

static int rekey_after_a_check_read(unsigned type, void *ctx, void *p, void *x) {
        (void) type, (void) ctx, (void) x;
        const char *q = sqlite3_sql(p);
        mef_store_t *a = race_rekeyer;
        if (a && q && streq(q, "SELECT value FROM meta WHERE name = 'check'")) {
                race_rekeyer = NULL;
                rekey_stops_at_the_bad_node(a);
        }
        return 0;
}

static int trace_connection(sqlite3 *db, char **err, const void *api) {
        (void) err, (void) api;
        sqlite3_trace_v2(db, SQLITE_TRACE_PROFILE, rekey_after_a_check_read, NULL);
        return SQLITE_OK;
}

static mef_store_t *open_racing_a_rekey_by(mef_store_t *a) {
        race_rekeyer = a;
        cr_assert_eq(sqlite3_auto_extension((void (*)(void)) trace_connection), SQLITE_OK);
        mef_store_t *s = open_store(path_a, key_a);
        sqlite3_reset_auto_extension();
        cr_assert_null(race_rekeyer, "the rekey ran during the open");
        return s;
}

/* The open verified the old key against the old check value, then kept the new one (read again):
 * it could neither open what is under the new key nor see the rekey, and sealed under the old
 * key after the rekey finished: secrets no key file opens any more. */
Test(store_backup, open_racing_a_rekey_commit_follows_it) {
        mef_store_t *a = populated_with_a_bad_node();
        mef_store_t *racer = open_racing_a_rekey_by(a);
        store_node_t n3 = { .node_id = "urn:dev:ops:sb-3", .kpm_id = "kpm-sb-3", .cse_id = "/mn-sb-3",
                            .cse_base = "https://in.example.net/base", .poll = 3600, .lifetime = 86400 };
        cr_assert_eq(store_node_add(a, &n3, kpm, sizeof kpm), 0); /* under the new key */
        store_node_t n;
        uint8_t k[MSG_KEY_MAX];
        size_t len;
        cr_assert_eq(store_node_by_kpm_id(racer, "kpm-sb-3", &n, k, &len), 0);

        sql(path_a, "DELETE FROM nodes WHERE node_id = 'urn:dev:ops:sb-9'");
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(a, &rk), 0);
        store_node_t n2 = { .node_id = "urn:dev:ops:sb-2", .kpm_id = "kpm-sb-2", .cse_id = "/mn-sb-2",
                            .cse_base = "https://in.example.net/base", .poll = 3600, .lifetime = 86400 };
        cr_assert_eq(store_node_add(racer, &n2, ke, sizeof ke), 0);
        mef_store_t *fresh = open_store(path_a, key_a);
        cr_assert_eq(store_node_by_kpm_id(fresh, "kpm-sb-2", &n, k, &len), 0, "sealed by the racer after the rekey");
        cr_assert_arr_eq(k, ke, sizeof ke);
        store_close(fresh);
        store_close(racer);
        store_close(a);
}

/* A populated store whose handle runs on hooked_ops, a copy of its own (real_ops) for a test to
 * change. */
static mef_store_t *populated_hooked(void) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        real_ops = a->d->ops;
        hooked_ops = *real_ops;
        a->d->ops = &hooked_ops;
        return a;
}

/* A rekey whose COMMIT of the new check value took, but whose answer was lost, must not remove
 * the new key file: it is then the only copy of the store's key. */
static int commit_then_fail(db_t *d, db_txn_t t) {
        int r = real_ops->txn(d, t);
        return r == 0 && t == DB_TXN_COMMIT ? -ECONNRESET : r;
}

Test(store_backup, rekey_keeps_its_key_when_its_commit_is_unanswered) {
        mef_store_t *a = populated_hooked();
        hooked_ops.txn = commit_then_fail;
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(a, &rk), -ECONNRESET);
        a->d->ops = real_ops;
        cr_assert(rk.commit_unknown);
        cr_assert(!rk.took_over);
        mef_store_t *b = open_store(path_a, key_a); /* through the key kept at <key>.new */
        assert_secrets(b);
        cr_assert_eq(store_rekey(a, &rk), 0, "the next rekey finishes it");
        cr_assert(rk.resumed);
        store_close(b);
        b = open_store(path_a, key_a);
        assert_secrets(b);
        store_close(b);
        store_close(a);
}

/* A rekey whose commit took but whose handle then failed to read the key files (EMFILE, EIO,
 * EACCES; here a directory in its place) must say the new key took over: the check value opens under it alone, and
 * "nothing was changed" would send the operator to remove the only file that holds it. */
static int commit_then_hide_key(db_t *d, db_txn_t t) {
        int r = real_ops->txn(d, t);
        if (r == 0 && t == DB_TXN_COMMIT && rename_from) {
                cr_assert_eq(rename(rename_from, rename_to), 0);
                cr_assert_eq(mkdir(rename_from, 0700), 0);
                rename_from = NULL;
        }
        return r;
}

Test(store_backup, rekey_failing_after_its_commit_says_its_key_took_over) {
        mef_store_t *a = populated_hooked();
        hooked_ops.txn = commit_then_hide_key;
        char aside[PATH_MAX];
        snprintf(aside, sizeof aside, "%s/aside", dir);
        rename_from = key_a;
        rename_to = aside;
        store_rekey_result_t rk;
        int r = store_rekey(a, &rk);
        cr_assert_lt(r, 0, "%d", r);
        a->d->ops = real_ops;
        cr_assert_null(rename_from, "the key file went after the commit");
        cr_assert(rk.took_over);
        cr_assert(!rk.commit_unknown);
        cr_assert_eq(rmdir(key_a), 0);
        cr_assert_eq(rename(aside, key_a), 0);
        mef_store_t *b = open_store(path_a, key_a); /* under both keys */
        assert_secrets(b);
        cr_assert_eq(store_rekey(a, &rk), 0, "the next rekey finishes it");
        cr_assert(rk.resumed);
        cr_assert_eq(rk.resealed, 3);
        store_close(b);
        b = open_store(path_a, key_a);
        assert_secrets(b);
        store_close(b);
        store_close(a);
}

/* A writer that changed a secret between a rekey step's read and its UPDATE (one that sealed
 * under the new key already) wins: the conditional UPDATE changes nothing, and is not counted. */
static int prepare_after_a_writer(db_t *d, const char *sql, db_stmt_t **ret) {
        if (strstr(sql, "UPDATE targets SET psk_enc")) {
                db_stmt_t *st = NULL;
                cr_assert_eq(real_ops->prepare(d, "UPDATE targets SET psk_enc = psk_enc || X'00'", &st), 0);
                cr_assert_eq(real_ops->step(st), 0);
                real_ops->release(st);
        }
        return real_ops->prepare(d, sql, ret);
}

Test(store_backup, rekey_counts_only_the_secrets_it_changed) {
        mef_store_t *a = populated_hooked();
        hooked_ops.prepare = prepare_after_a_writer;
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(a, &rk), 0);
        a->d->ops = real_ops;
        cr_assert_eq(rk.resealed, 2, "the node's and the enrolment's, not the target's: %" PRIu64, rk.resealed);
        store_close(a);
}

/* A handle that meets a secret under a rekey's new key reads the key files again; when the old
 * one fails to read for another reason than being absent (here EISDIR), it must not take the
 * new key alone: the rows still under the old one would open no more through it. */
Test(store_backup, adopt_keeps_the_old_key_when_its_file_fails_to_read) {
        mef_store_t *a = populated_with_a_bad_node();
        mef_store_t *serving = open_store(path_a, key_a); /* the old key alone */
        rekey_stops_at_the_bad_node(a);
        store_node_t n3 = { .node_id = "urn:dev:ops:sb-3", .kpm_id = "kpm-sb-3", .cse_id = "/mn-sb-3",
                            .cse_base = "https://in.example.net/base", .poll = 3600, .lifetime = 86400 };
        cr_assert_eq(store_node_add(a, &n3, kpm, sizeof kpm), 0); /* under the new key */
        char aside[PATH_MAX];
        snprintf(aside, sizeof aside, "%s/aside", dir);
        cr_assert_eq(rename(key_a, aside), 0);
        cr_assert_eq(mkdir(key_a, 0700), 0);
        store_node_t n;
        uint8_t k[MSG_KEY_MAX];
        size_t len;
        cr_assert_lt(store_node_by_kpm_id(serving, "kpm-sb-3", &n, k, &len), 0);
        cr_assert_eq(rmdir(key_a), 0);
        cr_assert_eq(rename(aside, key_a), 0);
        cr_assert_eq(store_node_by_kpm_id(serving, "kpm-sb-3", &n, k, &len), 0);
        store_target_t t;
        cr_assert_eq(store_target_by_psk_id(serving, "tpsk-sb", &t, k, &len), 0, "still under the old key");
        store_close(serving);
        store_close(a);
}

/* A restore takes a secret only as every reader, dump and rekey will: sealed under the right key
 * but of a size no reader opens (keys are MSG_KEY_MIN..MSG_KEY_MAX bytes), sb-1's Kpm is refused. */
static void assert_restore_refuses_a_kpm_of(size_t size) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        rows_t r = { 0 };
        cr_assert_eq(store_dump(a, collect, &r, NULL), 0);
        copy_file(key_a, key_b);
        mef_store_t *b = open_store(path_b, key_b);
        uint8_t pt[100] = { 1 }, blob[NONCE_LEN + sizeof pt + TAG_LEN];
        size_t n;
        cr_assert_eq(store_secret_seal(b, "kpm:urn:dev:ops:sb-1", pt, size, blob, &n), 0);
        char hex[2 * sizeof blob + 1];
        hex_encode(blob, n, hex);
        cr_assert_str_eq(r.table[0], "nodes");
        cr_assert_eq(json_object_set_new(r.row[0], "kpm_enc", json_string(hex)), 0);
        cr_assert_eq(restore_all(b, &r), -EBADMSG, "a Kpm of %zu bytes", size);
        store_close(b);
        store_close(a);
        rows_free(&r);
        cr_assert_eq(unlink(path_a), 0);
        cr_assert_eq(unlink(path_b), 0);
        cr_assert_eq(unlink(key_a), 0);
        cr_assert_eq(unlink(key_b), 0);
}

Test(store_backup, restore_refuses_a_key_of_a_size_no_reader_takes) {
        assert_restore_refuses_a_kpm_of(MSG_KEY_MIN - 1);
        assert_restore_refuses_a_kpm_of(MSG_KEY_MAX + 1);
        assert_restore_refuses_a_kpm_of(100);
}

/* Audit text comes from paths and peers (node import's file name, backup's DIR): bytes that are
 * not UTF-8 go in as '?', so that PostgreSQL takes the row and a backup can write it as JSON;
 * UTF-8 is kept, and a cut never splits a character. */
Test(store_backup, audit_text_is_stored_as_utf8) {
        mef_store_t *a = open_store(path_a, key_a);
        char long_detail[STORE_AUDIT_DETAIL_MAX + 8];
        memset(long_detail, 'x', sizeof long_detail - 1);
        long_detail[sizeof long_detail - 1] = 0;
        memcpy(long_detail + STORE_AUDIT_DETAIL_MAX - 1, "\xc3\xa9", 2); /* an é across the cut */
        cr_assert_eq(store_audit(a, "cli:test", "node-import", "/srv/imp\xe9.csv", "f\xc3\xa1" "brica \xff\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82"), 0);
        cr_assert_eq(store_audit(a, "cli:test", "backup", "-", long_detail), 0);
        _cleanup_free_ store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(a, 10, &list, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_eq(strlen(list[0].detail), STORE_AUDIT_DETAIL_MAX - 1, "cut inside the é: %zu", strlen(list[0].detail));
        cr_assert_str_eq(list[1].subject, "/srv/imp?.csv");
        /* overlong, surrogate, above U+10FFFF, cut short: each byte a '?' */
        cr_assert_str_eq(list[1].detail, "f\xc3\xa1" "brica ???|???|????|??");

        rows_t r = { 0 };
        cr_assert_eq(store_dump(a, collect, &r, NULL), 0);
        rows_free(&r);
        store_close(a);
}

/* A row written before store_audit() made its text UTF-8 does not stop every backup: the dump
 * writes it with '?' for what is not UTF-8. */
Test(store_backup, dump_takes_audit_text_that_is_not_utf8) {
        mef_store_t *a = open_store(path_a, key_a);
        populate(a);
        store_close(a);
        sqlite3 *db;
        cr_assert_eq(sqlite3_open(path_a, &db), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db,
                                  "INSERT INTO audit (ts, actor, action, subject, detail) "
                                  "VALUES (1, 'cli:test', 'node-import', CAST(X'696D70E92E637376' AS TEXT), '1 added')",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
        sqlite3_close(db);
        a = open_store(path_a, key_a);
        rows_t r = { 0 };
        cr_assert_eq(store_dump(a, collect, &r, NULL), 0);
        bool seen = false;
        for (size_t i = 0; i < r.n; i++)
                if (streq(r.table[i], "audit") &&
                    streq(json_string_value(json_object_get(r.row[i], "action")) ?: "", "node-import")) {
                        cr_assert_str_eq(json_string_value(json_object_get(r.row[i], "subject")), "imp?.csv");
                        seen = true;
                }
        cr_assert(seen);
        rows_free(&r);
        store_close(a);
}

/* SPDX-License-Identifier: MIT */
/* The store's dump and restore (mef/store-backup.h) on both engines (store-fixture.h): every
 * column round-trips, null or not; a large table is dumped within the server's bound. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <unistd.h>

#include "mef/store-backup.h"
#include "tests/unit/store-fixture.h"
#include "util/util.h"

#if HAVE_LIBPQ
static int count_row(const char *table, json_t *row, void *userdata) {
        (void) table, (void) row;
        (*(uint64_t *) userdata)++;
        return 0;
}

/* Every exchange with PostgreSQL is bounded (a silent server), by twice the lock timeout: that
 * bound cut a backup's read of a large table (one result, streaming) and a migration's index
 * build over it, so a store with millions of audit rows could neither be backed up nor
 * upgraded. Here 600,000 rows against the smallest bound, 200 ms: both took longer than it. */
Test(store, pg_backup_and_migration_of_a_large_table, .timeout = 180) {
        pg_only();
        mef_store_t *s = open_new();
        sql_exec("INSERT INTO audit (ts, actor, action, subject, detail) SELECT 1700000000 + g, 'peer', 'status', "
                 "'urn:dev:ops:node-' || g, 'a status check, as schema 2 audited them' "
                 "FROM generate_series(1, 600000) g",
                 NULL, 0);
        cr_assert_eq(store_set_busy_timeout(s, 50), 0);
        uint64_t n = 0;
        int r = store_dump(s, count_row, &n, NULL);
        cr_assert_eq(r, 0, "the backup: %d", r);
        cr_assert_geq(n, 600000);

        /* back to schema 2, which had no index on audit(ts) (migration 3 builds it) */
        sql_exec("DROP INDEX audit_ts; DROP INDEX enrolments_exp; DROP INDEX nodes_cse_id; "
                 "DROP INDEX enrolments_created; ALTER TABLE nodes DROP COLUMN last_seen, DROP COLUMN status_checks; "
                 "UPDATE msce_schema SET version = 2",
                 NULL, 0);
        int from = 0, to = 0;
        r = store_migrate(s, &from, &to);
        cr_assert_eq(r, 0, "the migration: %d", r);
        cr_assert_eq(from, 2);
        cr_assert_eq(to, STORE_SCHEMA_VERSION);
        cr_assert_eq(pg_count("SELECT count(*) FROM pg_indexes WHERE indexname = 'audit_ts'"), 1);
        store_close(s);
}
#endif

static int collect_row(const char *table, json_t *row, void *userdata) {
        json_t *pair = json_pack("{s:s, s:O}", "table", table, "row", row);
        return pair && json_array_append_new(userdata, pair) == 0 ? 0 : -ENOMEM;
}

/* Every row of s as store_dump() gives it: [{"table", "row"}...]. */
static json_t *dump_rows(mef_store_t *s) {
        json_t *rows = json_array();
        cr_assert_not_null(rows);
        cr_assert_eq(store_dump(s, collect_row, rows, NULL), 0);
        return rows;
}

/* Whether a row of table in rows has column col as JSON null. */
static bool dump_has_null(json_t *rows, const char *table, const char *col) {
        size_t i;
        json_t *e;
        json_array_foreach (rows, i, e)
                if (streq(json_string_value(json_object_get(e, "table")), table) &&
                    json_is_null(json_object_get(json_object_get(e, "row"), col)))
                        return true;
        return false;
}

/* A dump restores on either engine as it was dumped, each kind of column with and without its
 * NULL: a node and a target by certificate (no secret: NULL bytea), by PSK (no fingerprint),
 * audit rows with and without subject and detail. A restore bound every NULL as text, which
 * PostgreSQL refuses for a bytea column: a backup with a certificate node or target did not
 * restore there ("store.jsonl line 1: Input/output error"). */
Test(store, dump_restores_every_column_null_or_not) {
        uint8_t kpm[32], psk[32], ke[32];
        mef_store_t *s = open_psk_nodes("p", kpm, 90);
        recognisable_key(psk, sizeof psk, 91);
        recognisable_key(ke, sizeof ke, 92);
        store_node_t c = cert_node("c", 'c');
        cr_assert_eq(store_node_add(s, &c, NULL, 0), 0);
        store_target_t tp = { .id = "/in-cse", .psk_id = "tpsk-1" }, tc = { .id = "/maf-01" };
        memset(tc.cert_fp, 'd', STORE_FP_LEN);
        cr_assert_eq(store_target_add(s, &tp, psk, sizeof psk), 0);
        cr_assert_eq(store_target_add(s, &tc, NULL, 0), 0);
        store_enrolment_t e = enrolment("p1@mef", "p", 1000);
        cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);
        cr_assert_eq(store_audit(s, "cli:test", "node-add", "c", "by certificate"), 0);
        cr_assert_eq(store_audit(s, "cli:test", "prune", NULL, NULL), 0);

        json_t *before = dump_rows(s);
        const char *nulls[][2] = { { "nodes", "kpm_id" },   { "nodes", "kpm_enc" },   { "nodes", "cert_fp" },
                                   { "targets", "psk_id" }, { "targets", "psk_enc" }, { "targets", "cert_fp" },
                                   { "audit", "subject" },  { "audit", "detail" } };
        for (size_t i = 0; i < ELEMENTSOF(nulls); i++)
                cr_assert(dump_has_null(before, nulls[i][0], nulls[i][1]), "no NULL %s.%s", nulls[i][0], nulls[i][1]);

        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_restore_clear(s), 0);
        size_t i;
        json_t *row;
        json_array_foreach (before, i, row) {
                const char *table = json_string_value(json_object_get(row, "table"));
                int r = store_restore_row(s, table, json_object_get(row, "row"));
                cr_assert_eq(r, 0, "restore of %s: %s", json_dumps(row, JSON_COMPACT), strerror(-r));
        }
        cr_assert_eq(store_restore_finish(s), 0);
        cr_assert_eq(store_commit(s), 0);

        json_t *after = dump_rows(s);
        cr_assert(json_equal(before, after), "restored: %s", json_dumps(after, JSON_COMPACT));
        store_node_t got;
        cr_assert_eq(store_node_by_cert(s, c.cert_fp, &got), 0);
        cr_assert_str_eq(got.node_id, "c");
        store_target_t t;
        cr_assert_eq(store_target_by_cert(s, tc.cert_fp, &t), 0);
        cr_assert_str_eq(t.id, "/maf-01");
        uint8_t k[MSG_KEY_MAX];
        size_t len;
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-p", &got, k, &len), 0);
        cr_assert_eq(len, sizeof kpm);
        cr_assert_arr_eq(k, kpm, sizeof kpm);
        json_decref(before);
        json_decref(after);
        store_close(s);
}

/* SPDX-License-Identifier: MIT */
/* Schema 5 on a store of schema 4, on both engines (store-fixture.h): the enrolments' state check
 * as comparisons instead of IN (...), every row kept (rowid too), every index, the same meaning. */
#include <criterion/criterion.h>
#include <sqlite3.h>

#include "mef/store-schema.h"
#include "tests/unit/store-fixture.h"
#include "util/util.h"

/* What schema 1 made of enrolments on SQLite (its sqlite_schema text: no ';'), and its check. */
static char *schema1_enrolments(bool check_only) {
        const char *s1 = STORE_SCHEMA_1("TEXT", "INTEGER", "BLOB", "", "INTEGER PRIMARY KEY");
        const char *from = strstr(s1, "CREATE TABLE enrolments (");
        cr_assert_not_null(from);
        const char *to = strchr(from, ';');
        if (check_only) {
                from = strstr(from, "CHECK (state IN (");
                cr_assert_not_null(from);
                to = strstr(from, "))") + 2;
        }
        char *r = strndup(from, (size_t) (to - from));
        cr_assert_not_null(r);
        return r;
}

/* The store's schema: every table's and index's definition (PostgreSQL: columns, constraints). */
static char *schema_text(void) {
        return sql_rows(pg_uri ? "SELECT 'column', table_name, column_name, concat_ws(' ', data_type, collation_name,"
                                 " column_default, is_nullable, is_identity, identity_generation)"
                                 " FROM information_schema.columns WHERE table_schema = current_schema()"
                                 " UNION ALL SELECT 'constraint', conrelid::regclass::text, conname,"
                                 " pg_get_constraintdef(oid) FROM pg_constraint"
                                 " WHERE connamespace = current_schema()::regnamespace"
                                 " UNION ALL SELECT 'index', tablename, indexname, indexdef FROM pg_indexes"
                                 " WHERE schemaname = current_schema() ORDER BY 1, 2, 3"
                               : "SELECT type, tbl_name, name, sql FROM sqlite_schema ORDER BY 1, 2, 3");
}

static char *enrolment_rows(void) {
        return sql_rows(pg_uri ? "SELECT rowid, ke_id, node_id, encode(key_enc, 'hex'), ltk_transported, state, created, exp"
                                 " FROM enrolments ORDER BY rowid"
                               : "SELECT rowid, ke_id, node_id, hex(key_enc), ltk_transported, state, created, exp"
                                 " FROM enrolments ORDER BY rowid");
}

/* Whether SQLite builds an ephemeral table for an INSERT or an UPDATE of enrolments' state. */
static bool ephemeral_in_writes(void) {
        _cleanup_free_ char *ins = sql_rows("EXPLAIN INSERT INTO enrolments (ke_id, node_id, key_enc, state, created, exp)"
                                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
        _cleanup_free_ char *upd = sql_rows("EXPLAIN UPDATE enrolments SET state = ?1 WHERE rowid = ?2");
        return strstr(ins, "|OpenEphemeral|") || strstr(upd, "|OpenEphemeral|");
}

/* Schema 4 as migrations 1-4 left it: the check of schema 1 back (SQLite: its very text, over the
 * same columns and b-trees; PostgreSQL: the constraint under its name). */
static void back_to_schema_4(void) {
        _cleanup_free_ char *table = schema1_enrolments(false), *check = schema1_enrolments(true);
        char *sql = pg_uri ? sqlite3_mprintf("ALTER TABLE enrolments DROP CONSTRAINT enrolments_state_check,"
                                             " ADD CONSTRAINT enrolments_state_check %s;"
                                             "UPDATE msce_schema SET version = 4",
                                             check)
                           : sqlite3_mprintf("PRAGMA writable_schema = ON;"
                                             "UPDATE sqlite_schema SET sql = %Q WHERE type = 'table' AND name = 'enrolments';"
                                             "PRAGMA writable_schema = OFF; PRAGMA user_version = 4",
                                             table);
        cr_assert_not_null(sql);
        cr_assert(sql_ok(sql), "%s", sql);
        sqlite3_free(sql);
        _cleanup_free_ char *def = sql_rows(pg_uri ? "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                                                     " WHERE conname = 'enrolments_state_check'"
                                                   : "SELECT sql FROM sqlite_schema WHERE name = 'enrolments'");
        cr_assert(strstr(def, pg_uri ? "ANY (ARRAY[" : "CHECK (state IN ("), "the schema-4 check: %s", def);
        if (!pg_uri)
                cr_assert(ephemeral_in_writes(), "schema 4: the IN list's ephemeral table");
}

Test(store, schema_5_state_check_keeps_rows_and_indexes) {
        store_enrolment_t e[] = {
                enrolment_as("k1@mef", "a", 100, ENROLMENT_RETIRED), enrolment_as("gone@mef", "a", 150, ENROLMENT_RETIRED),
                enrolment_as("k2@mef", "a", 200, ENROLMENT_REVOKED), enrolment_as("k3@mef", "a", 300, ENROLMENT_DEREGISTERED),
                enrolment("k4@mef", "a", 400),                       enrolment("k5@mef", "b", 400),
        };
        e[2].ltk_transported = true;
        mef_store_t *s = open_with("ab", 7, (store_enrolment_t *const[]) { &e[0], &e[1], &e[2], &e[3], &e[4], &e[5], NULL });
        store_close(s);
        /* a gap in the rowids: a copy that numbered the rows afresh would close it */
        sql_exec("DELETE FROM enrolments WHERE ke_id = 'gone@mef'", NULL, 0);
        _cleanup_free_ char *fresh = schema_text(); /* a new store runs migrations 1 to 5 */
        back_to_schema_4();
        _cleanup_free_ char *rows = enrolment_rows();

        s = NULL;
        cr_assert_eq(open_db(STORE_OPEN_MIGRATE, &s), 0);
        int from = -1, to = -1;
        cr_assert_eq(store_migrate(s, &from, &to), 0);
        cr_assert_eq(from, 4);
        cr_assert_eq(to, STORE_SCHEMA_VERSION);

        _cleanup_free_ char *rows_after = enrolment_rows(), *migrated = schema_text();
        cr_assert_str_eq(rows_after, rows, "every row kept, rowid included");
        cr_assert_str_eq(migrated, fresh, "the schema a new store gets");
        if (pg_uri) {
                _cleanup_free_ char *def = sql_rows("SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                                                    " WHERE conname = 'enrolments_state_check'");
                cr_assert_not(strstr(def, "ANY"), "%s", def);
        } else {
                cr_assert_not(ephemeral_in_writes(), "schema 5: no ephemeral table");
                _cleanup_free_ char *fk = sql_rows("PRAGMA foreign_key_check"), *ic = sql_rows("PRAGMA integrity_check");
                cr_assert_str_eq(fk, "");
                cr_assert_str_eq(ic, "ok\n");
        }

        /* the same meaning: a state of none of the four refused, one active enrolment per node */
        cr_assert_not(sql_ok("UPDATE enrolments SET state = 'bogus' WHERE ke_id = 'k1@mef'"));
        cr_assert_not(sql_ok("UPDATE enrolments SET state = 'active' WHERE ke_id = 'k1@mef'"), "a second active");
        uint8_t ke[32], got[MSG_KEY_MAX];
        recognisable_key(ke, sizeof ke, 8);
        store_enrolment_t again = enrolment("k6@mef", "a", 500);
        cr_assert_neq(store_enrolment_add(s, &again, ke, sizeof ke), 0, "a second active");
        size_t len = 0;
        store_enrolment_t er;
        cr_assert_eq(store_enrolment_get(s, "k2@mef", &er, got, &len), 0);
        cr_assert(er.state == ENROLMENT_REVOKED && er.ltk_transported && len == sizeof ke && !memcmp(got, ke, len));
        cr_assert_eq(store_enrolment_set_state_for_node(s, "a", ENROLMENT_RETIRED), 0);
        cr_assert_eq(store_enrolment_add(s, &again, ke, sizeof ke), 0, "retired, then a new active one");
        store_close(s);
}

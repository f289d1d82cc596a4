/* SPDX-License-Identifier: MIT */
/* What the SQLite engine (mef/store-sqlite.c) spares each call: SQLite's allocation counts, the
 * connection's mutex, the parse of the transaction control. */
#include <criterion/criterion.h>
#include <sqlite3.h>

#include "tests/unit/store-fixture.h"
#include "util/util.h"

static const char *const verbs[] = { "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK", "SAVEPOINT job", "RELEASE job",
                                     "ROLLBACK TO job" };

/* Per verb: how often it ran, and the lowest and highest run count of its statement then. */
static struct {
        int runs;
        int first, last;
} seen[ELEMENTSOF(verbs)];
static int connections, with_mutex;

static int on_statement(unsigned type, void *ctx, void *p, void *x) {
        (void) type, (void) ctx, (void) x;
        const char *q = sqlite3_sql(p);
        int n = sqlite3_stmt_status(p, SQLITE_STMTSTATUS_RUN, 0);
        for (size_t i = 0; q && i < ELEMENTSOF(verbs); i++)
                if (streq(q, verbs[i])) {
                        seen[i].first = seen[i].runs ? MIN(seen[i].first, n) : n;
                        seen[i].last = MAX(seen[i].last, n);
                        seen[i].runs++;
                }
        return 0;
}

/* Run for every connection opened (sqlite3_auto_extension()). */
static int on_connection(sqlite3 *db, char **err, const void *api) {
        (void) err, (void) api;
        connections++;
        with_mutex += sqlite3_db_mutex(db) != NULL;
        sqlite3_trace_v2(db, SQLITE_TRACE_STMT, on_statement, NULL);
        return SQLITE_OK;
}

/* An enrolment of node a as the MEF stores one (mef/handlers-enrol.c). */
static int enrol(mef_store_t *s, const char *ke_id, const uint8_t ke[32]) {
        store_enrolment_t e = enrolment(ke_id, "a", 1000);
        int r = store_begin(s);
        if (r == 0)
                r = store_enrolment_set_state_for_node(s, "a", ENROLMENT_RETIRED);
        if (r == 0)
                r = store_enrolment_add(s, &e, ke, 32);
        if (r == 0)
                r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}

/* Enrolments as a store thread runs them, alone and in batches (committed, given up), one of
 * each way failing. */
static void enrolments(mef_store_t *s, const uint8_t ke[32]) {
        cr_assert_eq(enrol(s, "a0@mef", ke), 0);
        cr_assert_eq(enrol(s, "a1@mef", ke), 0);
        cr_assert_eq(enrol(s, "a0@mef", ke), -EEXIST);
        for (int batch = 0; batch < 2; batch++) {
                cr_assert_eq(store_batch_begin(s), 0);
                for (int i = 0; i < 3; i++) {
                        char id[16];
                        snprintf(id, sizeof id, "b%d-%d@mef", batch, i);
                        cr_assert_eq(enrol(s, i == 1 ? "a0@mef" : id, ke), i == 1 ? -EEXIST : 0, "%s", id);
                }
                cr_assert_eq(store_batch_end(s, batch == 0), 0);
        }
}

/* enrolments() on a store, every connection it opens traced (on_connection()). SQLite is then
 * initialised before the store's first open, too early for its sqlite3_config(): it opens all
 * the same. */
static void enrolments_traced(uint8_t seed) {
        sqlite_only();
        cr_assert_eq(sqlite3_auto_extension((void (*)(void)) on_connection), SQLITE_OK);
        uint8_t ke[32];
        mef_store_t *s = open_psk_nodes("a", ke, seed);
        enrolments(s, ke);
        store_close(s);
        sqlite3_reset_auto_extension();
        cr_assert_gt(connections, 0);
}

/* No connection has a mutex of its own: a store handle has one thread at a time. */
Test(store, sqlite_connections_without_mutex) {
        enrolments_traced(21);
        cr_assert_eq(with_mutex, 0, "%d of %d connections serialized", with_mutex, connections);
}

/* The transaction control of every enrolment is prepared once per connection, not parsed each
 * time. */
Test(store, sqlite_transaction_control_prepared_once) {
        enrolments_traced(22);
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                cr_assert_geq(seen[i].runs, 2, "%s ran %d times", verbs[i], seen[i].runs);
                /* a statement prepared anew each time has never run before */
                cr_assert_geq(seen[i].last - seen[i].first, seen[i].runs - 1, "%s: prepared each time (runs %d..%d)",
                              verbs[i], seen[i].first, seen[i].last);
        }
}

/* SQLite's count of what it allocates is off (a mutex of the process in every allocation and
 * free), when the store is the first to use SQLite in the process. */
Test(store, sqlite_counts_no_allocation) {
        sqlite_only();
        uint8_t ke[32];
        mef_store_t *s = open_psk_nodes("a", ke, 23);
        enrolments(s, ke);
        cr_assert_eq(sqlite3_memory_used(), 0);
        store_close(s);
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* The store of the MEF fuzzers (fuzz-admin.c, fuzz-handlers.c): SQLite in a temporary directory
 * (/dev/shm when writable: no disk syncs), removed at exit, and a second connection of the
 * fuzzer's own that snapshots the seeded tables into an in-memory database "seed", from which
 * the fuzzer puts them back after each input, so that inputs stay independent. */
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "mef/store.h"

static char fuzz_store_dir[PATH_MAX];
static mef_store_t *store;
static sqlite3 *db; /* our own connection: snapshot and reset */

static void fuzz_store_close(void) {
        store = store_close(store);
        sqlite3_close(db);
        fuzz_rm_tree(fuzz_store_dir);
}

static void exec_sql(const char *sql) {
        check(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
}

/* store: a new one in a directory named for the fuzzer. */
static void fuzz_store_open(const char *name) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ?: "/tmp";
        fuzz_path(fuzz_store_dir, "%s/fuzz-%s-XXXXXX", base, name);
        check(mkdtemp(fuzz_store_dir));
        atexit(fuzz_store_close);
        char path[PATH_MAX], mk[PATH_MAX];
        fuzz_path(path, "%s/mef.db", fuzz_store_dir);
        fuzz_path(mk, "%s/master.key", fuzz_store_dir);
        check(store_open(path, mk, true, &store) == 0);
}

/* db, and the snapshot of the seeded store: seed.nodes, seed.targets, seed.enrolments, then
 * what more_sql adds (the audit trail, as each fuzzer needs it). */
static void fuzz_store_snapshot(const char *more_sql) {
        char path[PATH_MAX];
        fuzz_path(path, "%s/mef.db", fuzz_store_dir);
        check(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        exec_sql("PRAGMA synchronous = OFF; ATTACH ':memory:' AS seed;"
                 "CREATE TABLE seed.nodes AS SELECT * FROM main.nodes;"
                 "CREATE TABLE seed.targets AS SELECT * FROM main.targets;"
                 "CREATE TABLE seed.enrolments AS SELECT * FROM main.enrolments;");
        exec_sql(more_sql);
}

/* Puts tables (NULL-terminated, in this order) back from the snapshot, in one transaction. */
static void fuzz_store_restore(const char *const *tables) {
        exec_sql("BEGIN");
        for (; *tables; tables++) {
                char sql[192];
                snprintf(sql, sizeof sql, "DELETE FROM main.%s; INSERT INTO main.%s SELECT * FROM seed.%s;", *tables,
                         *tables, *tables);
                exec_sql(sql);
        }
        exec_sql("COMMIT");
}

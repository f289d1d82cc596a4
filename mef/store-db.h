/* SPDX-License-Identifier: MIT */
#pragma once
/* What mef/store*.c need of a database engine: statements with numbered parameters (?1, ?2...
 * in the SQL text, which every backend accepts), rows, transactions and a schema version. The
 * store's logic (validation, sealing, the queries) is written once against this; the engines
 * are mef/store-sqlite.c and mef/store-pg.c. Not for use outside mef/store*.c. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/store.h"

typedef struct db db_t;
typedef struct db_stmt db_stmt_t;

typedef enum db_dialect {
        DB_SQLITE,
        DB_POSTGRESQL,
} db_dialect_t;

/* The transaction control of mef/store.c, which each engine maps to its own statements. */
typedef enum db_txn {
        DB_TXN_BEGIN, /* SQLite: BEGIN IMMEDIATE, the write lock now, not at the first write;
                       * PostgreSQL: queued, its statements pipelined up to COMMIT */
        DB_TXN_COMMIT,
        DB_TXN_ROLLBACK,
        DB_TXN_SAVEPOINT,   /* a batch's job (SQLite only, store_batch_begin()): "job" */
        DB_TXN_RELEASE,     /* of the job's savepoint */
        DB_TXN_ROLLBACK_TO, /* the job's savepoint, which stays */
        _DB_TXN_MAX,
        _DB_TXN_INVALID = -EINVAL,
} db_txn_t;

typedef struct db_ops {
        db_dialect_t dialect;
        /* sql must be a string literal: its address keys the backend's statement cache. */
        int (*prepare)(db_t *d, const char *sql, db_stmt_t **ret);
        /* Back to the cache (reset, unbound) or freed. NULL is fine. */
        void (*release)(db_stmt_t *st);
        /* v NULL: SQL NULL; len < 0: strlen(v). The values stay the caller's until step. A NULL
         * is typed as well (PostgreSQL takes no text NULL into a bytea column): bind it with the
         * function of the column's type. */
        int (*bind_text)(db_stmt_t *st, int i, const char *v, int len);
        int (*bind_int64)(db_stmt_t *st, int i, int64_t v);
        int (*bind_blob)(db_stmt_t *st, int i, const void *p, size_t n); /* p NULL: SQL NULL */
        /* 1: a row; 0: done; <0: -errno. */
        int (*step)(db_stmt_t *st);
        /* Run st for its effect alone (its rows, if any, unread; changes() says nothing of it):
         * 0 or -errno. Inside a transaction of txn(DB_TXN_BEGIN) PostgreSQL only queues it, and its
         * error comes back from the transaction's next step or its COMMIT instead, the same -errno,
         * the transaction failed as a whole; SQLite runs it at once. */
        int (*step_later)(db_stmt_t *st);
        /* NULL for SQL NULL (*ret_len 0); valid until the next step or release. */
        const char *(*column_text)(db_stmt_t *st, int i, size_t *ret_len);
        int64_t (*column_int64)(db_stmt_t *st, int i);
        const void *(*column_blob)(db_stmt_t *st, int i, size_t *ret_len);
        /* Rows the last INSERT/UPDATE/DELETE of the connection changed. */
        int64_t (*changes)(db_t *d);
        /* Constant SQL without parameters, possibly several statements; not the transaction
         * control of txn(), which the engine does its own way. */
        int (*exec)(db_t *d, const char *sql);
        bool (*in_transaction)(db_t *d);
        /* Transaction control (db_txn_t): 0 or -errno. */
        int (*txn)(db_t *d, db_txn_t t);
        /* Start a transaction that takes the write lock (SQLite) / the migration lock (PG). */
        int (*begin_exclusive)(db_t *d);
        int (*schema_version)(db_t *d, int *ret);    /* 0: an empty database */
        int (*set_schema_version)(db_t *d, int v);   /* inside the migration's transaction */
        int (*set_busy_timeout)(db_t *d, unsigned ms);
        void (*close)(db_t *d);
        /* Schema migrations: migrations[v - 1] takes the schema from v - 1 to v. */
        const char *const *migrations;
        int n_migrations;
} db_ops_t;

/* Every backend's connection and statement start with their ops. */
struct db {
        const db_ops_t *ops;
        /* The reason for the last error, which the engine mapped to reason_r (0: none): the
         * server's, or the engine's own (reason.servers, set where it is written); what
         * store_error_reason() tells. Never a parameter's value. */
        int reason_r;
        store_reason_t reason;
};
#define DB_OPS(st) (*(const db_ops_t *const *) (st))

/* d's reason for the error r (store_error_reason()), or NULL when it has none for r. */
static inline const store_reason_t *db_reason(const db_t *d, int r) {
        return d && r < 0 && d->reason_r == r && d->reason.text[0] ? &d->reason : NULL;
}
/* No reason any more (a statement that goes to the server, a new connection attempt). */
static inline void db_reason_forget(db_t *d) {
        d->reason_r = 0;
        d->reason.text[0] = 0;
        d->reason.servers = false;
}
/* db_reason(d, r) copied into *ret (NULL: nothing), text "" when none: what outlives d's next
 * statement, which forgets it (store_reason_copy()). */
void db_reason_copy(const db_t *d, int r, store_reason_t *ret);

/* What every backend's statement starts with (its struct db_stmt's first member): the ops and
 * what its statement cache keeps of it. */
typedef struct db_stmt_head {
        const db_ops_t *ops; /* first: DB_OPS() */
        const char *key;     /* the caller's SQL text (a literal): the cache key */
        bool cached;
        bool busy; /* handed out: a nested use of the same SQL prepares its own */
} db_stmt_head_t;

/* A backend's statement cache, the n statements of size bytes each at cache: 1 with *ret sql's
 * statement, now busy; 0 when sql has none (a new one may go in the cache); -EBUSY when sql's is
 * handed out already (a nested use: it prepares one of its own, not cached). */
static inline int db_cache_take(void *cache, size_t n, size_t size, const char *sql, db_stmt_t **ret) {
        for (size_t i = 0; i < n; i++) {
                db_stmt_head_t *h = (db_stmt_head_t *) ((char *) cache + i * size);
                if (h->key != sql)
                        continue;
                if (h->busy)
                        return -EBUSY;
                h->busy = true;
                *ret = (db_stmt_t *) h;
                return 1;
        }
        return 0;
}

static inline int db_bind_text(db_stmt_t *st, int i, const char *v, int len) {
        return DB_OPS(st)->bind_text(st, i, v, len);
}
static inline int db_bind_int64(db_stmt_t *st, int i, int64_t v) {
        return DB_OPS(st)->bind_int64(st, i, v);
}
static inline int db_bind_blob(db_stmt_t *st, int i, const void *p, size_t n) {
        return DB_OPS(st)->bind_blob(st, i, p, n);
}
static inline int db_step(db_stmt_t *st) {
        return DB_OPS(st)->step(st);
}
static inline int db_step_later(db_stmt_t *st) {
        return DB_OPS(st)->step_later(st);
}
static inline const char *db_column_text(db_stmt_t *st, int i, size_t *ret_len) {
        return DB_OPS(st)->column_text(st, i, ret_len);
}
static inline const char *db_column_str(db_stmt_t *st, int i) {
        size_t n;
        return DB_OPS(st)->column_text(st, i, &n);
}
static inline int64_t db_column_int64(db_stmt_t *st, int i) {
        return DB_OPS(st)->column_int64(st, i);
}
static inline const void *db_column_blob(db_stmt_t *st, int i, size_t *ret_len) {
        return DB_OPS(st)->column_blob(st, i, ret_len);
}

/* The first column of the first row of sql, 0 when it has no row (a schema version): 0 or -errno. */
static inline int db_query_int(db_t *d, const char *sql, int *ret) {
        db_stmt_t *st;
        int r = d->ops->prepare(d, sql, &st);
        if (r < 0)
                return r;
        r = db_step(st);
        if (r >= 0)
                *ret = r > 0 ? (int) db_column_int64(st, 0) : 0;
        d->ops->release(st);
        return r < 0 ? r : 0;
}

typedef struct store_location store_location_t;

int db_sqlite_open(const char *path, bool create, bool sync_full, db_t **ret);
/* Each engine's migrations (its db_ops_t's), *ret_n of them: for tests/unit/test-store-migrations.c,
 * which pins the released ones. db_pg_migrations() only when built with libpq. */
const char *const *db_sqlite_migrations(int *ret_n);
const char *const *db_pg_migrations(int *ret_n);
/* -EOPNOTSUPP when built without libpq. On failure its reason, when it has one (a connection
 * the server refused, hosts that gave no answer), in reason (may be NULL; text "": none). */
int db_pg_open(const store_location_t *loc, db_t **ret, store_reason_t *reason);

/* SPDX-License-Identifier: MIT */
/* The SQLite engine of the store (mef/store-db.h): one file, WAL mode, prepared statements
 * cached per connection. */
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include "mef/store-db.h"
#include "mef/store-schema.h"
#include "mef/store.h"
#include "util/util.h"

/* Prepared once per connection (the SQL texts are constants, keyed by their address): parsing
 * them again on every call was most of the store's CPU time under load. */
#define STMT_CACHE_MAX 32

typedef struct sqlite_db sqlite_db_t;

struct db_stmt {
        db_stmt_head_t h; /* first: DB_OPS(), db_cache_take() */
        sqlite_db_t *db;
        sqlite3_stmt *st;
};

/* How long a migration waits for the write lock: another process's migration may hold it while
 * it builds an index over a large table (PostgreSQL's engine waits as long, mef/store-pg.c). */
#define MIGRATE_WAIT_MS (3600u * 1000u)

/* The transaction control of mef/store.c (db_txn_t), run around every enrolment (in a batch a
 * SAVEPOINT and a RELEASE each): kept prepared per connection. sqlite3_exec() parsed it again
 * on every call. */
static const char *const lite_txn_sql[_DB_TXN_MAX] = {
        [DB_TXN_BEGIN] = "BEGIN IMMEDIATE",
        [DB_TXN_COMMIT] = "COMMIT",
        [DB_TXN_ROLLBACK] = "ROLLBACK",
        [DB_TXN_SAVEPOINT] = "SAVEPOINT job",
        [DB_TXN_RELEASE] = "RELEASE job",
        [DB_TXN_ROLLBACK_TO] = "ROLLBACK TO job",
};

struct sqlite_db {
        db_t base;
        sqlite3 *db;
        unsigned busy_ms; /* the busy timeout of everything else */
        db_stmt_t cache[STMT_CACHE_MAX];
        size_t n_cache;
        sqlite3_stmt *txn[_DB_TXN_MAX]; /* prepared on first use */
};

/* SQLite result codes (extended codes are on) to -errno, at the edge. */
static int sql_errno(int rc) {
        switch (rc) {
        case SQLITE_OK:
        case SQLITE_ROW:
        case SQLITE_DONE:
                return 0;
        case SQLITE_CONSTRAINT_FOREIGNKEY: /* the row refers to a node that does not exist */
                return -ENOENT;
        case SQLITE_CONSTRAINT_NOTNULL:
        case SQLITE_CONSTRAINT_CHECK:
                return -EINVAL;
        case SQLITE_READONLY_DIRECTORY: /* no -wal and -shm can be made beside it */
                return -EACCES;
        }
        switch (rc & 0xff) {
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_NOTADB: /* another file at [store] path */
        case SQLITE_CORRUPT:
                return -EUCLEAN;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_CANTOPEN:
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_TOOBIG:
                return -E2BIG;
        default:
                return -EIO;
        }
}

static int lite_prepare(db_t *d, const char *sql, db_stmt_t **ret) {
        sqlite_db_t *l = (sqlite_db_t *) d;
        db_stmt_t *slot;
        int r = db_cache_take(l->cache, l->n_cache, sizeof *l->cache, sql, ret);
        if (r > 0)
                return 0;
        bool cache = r == 0 && l->n_cache < STMT_CACHE_MAX;
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v3(l->db, sql, -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, &st, NULL);
        if (rc != SQLITE_OK)
                return sql_errno(rc);
        if (cache) {
                slot = &l->cache[l->n_cache++];
                *slot = (db_stmt_t) { .h = { .ops = d->ops, .key = sql, .cached = true, .busy = true }, .db = l, .st = st };
        } else {
                slot = malloc(sizeof *slot);
                if (!slot) {
                        sqlite3_finalize(st);
                        return -ENOMEM;
                }
                *slot = (db_stmt_t) { .h = { .ops = d->ops, .key = sql }, .db = l, .st = st };
        }
        *ret = slot;
        return 0;
}

static void lite_release(db_stmt_t *st) {
        if (!st)
                return;
        if (st->h.cached) {
                sqlite3_reset(st->st);
                sqlite3_clear_bindings(st->st);
                st->h.busy = false;
        } else {
                sqlite3_finalize(st->st);
                free(st);
        }
}

static int lite_bind_text(db_stmt_t *st, int i, const char *v, int len) {
        if (!v)
                return sql_errno(sqlite3_bind_null(st->st, i));
        return sql_errno(sqlite3_bind_text(st->st, i, v, len, SQLITE_STATIC));
}

static int lite_bind_int64(db_stmt_t *st, int i, int64_t v) {
        return sql_errno(sqlite3_bind_int64(st->st, i, v));
}

static int lite_bind_blob(db_stmt_t *st, int i, const void *p, size_t n) {
        if (n > INT32_MAX)
                return -E2BIG;
        return sql_errno(sqlite3_bind_blob(st->st, i, p, (int) n, SQLITE_STATIC));
}

static int lite_step(db_stmt_t *st) {
        int rc = sqlite3_step(st->st);
        if (rc == SQLITE_ROW)
                return 1;
        return rc == SQLITE_DONE ? 0 : sql_errno(rc);
}

static int lite_step_later(db_stmt_t *st) {
        int r = lite_step(st);
        return r < 0 ? r : 0;
}

static const char *lite_column_text(db_stmt_t *st, int i, size_t *ret_len) {
        const char *v = (const char *) sqlite3_column_text(st->st, i);
        *ret_len = v ? (size_t) sqlite3_column_bytes(st->st, i) : 0;
        return v;
}

static int64_t lite_column_int64(db_stmt_t *st, int i) {
        return sqlite3_column_int64(st->st, i);
}

static const void *lite_column_blob(db_stmt_t *st, int i, size_t *ret_len) {
        if (sqlite3_column_type(st->st, i) != SQLITE_BLOB) {
                *ret_len = 0;
                return NULL;
        }
        const void *p = sqlite3_column_blob(st->st, i);
        *ret_len = p ? (size_t) sqlite3_column_bytes(st->st, i) : 0;
        return p;
}

static int64_t lite_changes(db_t *d) {
        return sqlite3_changes64(((sqlite_db_t *) d)->db);
}

static int lite_txn(db_t *d, db_txn_t t) {
        sqlite_db_t *l = (sqlite_db_t *) d;
        if (t < 0 || t >= _DB_TXN_MAX)
                return -EINVAL;
        int rc = SQLITE_OK;
        if (!l->txn[t])
                rc = sqlite3_prepare_v3(l->db, lite_txn_sql[t], -1, SQLITE_PREPARE_PERSISTENT, &l->txn[t], NULL);
        if (rc == SQLITE_OK) {
                rc = sqlite3_step(l->txn[t]);
                sqlite3_reset(l->txn[t]); /* repeats the step's error, if any */
        }
        return sql_errno(rc);
}

static int lite_exec(db_t *d, const char *sql) {
        return sql_errno(sqlite3_exec(((sqlite_db_t *) d)->db, sql, NULL, NULL, NULL));
}

static bool lite_in_transaction(db_t *d) {
        return !sqlite3_get_autocommit(((sqlite_db_t *) d)->db);
}

/* A migration: the write lock, however long another process's migration holds it, not within
 * the busy timeout of requests; that one again for what follows. */
static int lite_begin_exclusive(db_t *d) {
        sqlite_db_t *l = (sqlite_db_t *) d;
        int r = sql_errno(sqlite3_busy_timeout(l->db, (int) MIGRATE_WAIT_MS));
        if (r == 0)
                r = lite_txn(d, DB_TXN_BEGIN); /* the write lock now, as every transaction's */
        (void) sqlite3_busy_timeout(l->db, (int) l->busy_ms);
        return r;
}

static int lite_schema_version(db_t *d, int *ret) {
        return db_query_int(d, "PRAGMA user_version", ret);
}

static int lite_set_schema_version(db_t *d, int v) {
        char sql[64];
        snprintf(sql, sizeof sql, "PRAGMA user_version = %d", v); /* a number: PRAGMA takes no parameter */
        return lite_exec(d, sql);
}

static int lite_set_busy_timeout(db_t *d, unsigned ms) {
        if (ms > INT32_MAX)
                return -EINVAL;
        int r = sql_errno(sqlite3_busy_timeout(((sqlite_db_t *) d)->db, (int) ms));
        if (r == 0)
                ((sqlite_db_t *) d)->busy_ms = ms;
        return r;
}

static void lite_close(db_t *d) {
        sqlite_db_t *l = (sqlite_db_t *) d;
        if (!l)
                return;
        for (size_t i = 0; i < l->n_cache; i++)
                sqlite3_finalize(l->cache[i].st);
        for (db_txn_t t = 0; t < _DB_TXN_MAX; t++)
                sqlite3_finalize(l->txn[t]);
        if (l->db)
                sqlite3_close_v2(l->db);
        free(l);
}

static const char *const lite_migrations[] = {
        STORE_SCHEMA_1("TEXT", "INTEGER", "BLOB", "", "INTEGER PRIMARY KEY"),
        STORE_SCHEMA_2,
        STORE_SCHEMA_3("INTEGER"),
        STORE_SCHEMA_4("created"),
        STORE_SCHEMA_5_SQLITE,
};

static const db_ops_t lite_ops = {
        .dialect = DB_SQLITE,
        .prepare = lite_prepare,
        .release = lite_release,
        .bind_text = lite_bind_text,
        .bind_int64 = lite_bind_int64,
        .bind_blob = lite_bind_blob,
        .step = lite_step,
        .step_later = lite_step_later,
        .column_text = lite_column_text,
        .column_int64 = lite_column_int64,
        .column_blob = lite_column_blob,
        .changes = lite_changes,
        .exec = lite_exec,
        .in_transaction = lite_in_transaction,
        .txn = lite_txn,
        .begin_exclusive = lite_begin_exclusive,
        .schema_version = lite_schema_version,
        .set_schema_version = lite_set_schema_version,
        .set_busy_timeout = lite_set_busy_timeout,
        .close = lite_close,
        .migrations = lite_migrations,
        .n_migrations = (int) ELEMENTSOF(lite_migrations),
};

const char *const *db_sqlite_migrations(int *ret_n) {
        *ret_n = lite_ops.n_migrations;
        return lite_ops.migrations;
}

static void lite_closep(sqlite_db_t **l) {
        if (*l)
                lite_close(&(*l)->base);
}

static void umask_restore(mode_t *m) {
        umask(*m);
}

static const char *const store_file_suffixes[] = { "", "-wal", "-shm" };

int store_sqlite_loose_file(const char *path, char ret_file[PATH_MAX], mode_t *ret_mode) {
        if (!path)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(store_file_suffixes); i++) {
                char p[PATH_MAX];
                struct stat st;
                if (snprintf(p, sizeof p, "%s%s", path, store_file_suffixes[i]) >= (int) sizeof p)
                        return -ENAMETOOLONG;
                if (stat(p, &st) < 0) {
                        if (errno == ENOENT)
                                continue;
                        return negative_errno();
                }
                if (!(st.st_mode & (S_IRWXG | S_IRWXO)))
                        continue;
                if (ret_file)
                        memcpy(ret_file, p, sizeof p);
                if (ret_mode)
                        *ret_mode = st.st_mode & 07777;
                return 1;
        }
        return 0;
}

int store_sqlite_files_note(const char *path, store_sqlite_files_t *ret) {
        if (!path || !ret)
                return -EINVAL;
        store_sqlite_files_t f = {};
        for (size_t i = 0; i < ELEMENTSOF(store_file_suffixes); i++) {
                char p[PATH_MAX];
                struct stat st;
                if (snprintf(p, sizeof p, "%s%s", path, store_file_suffixes[i]) >= (int) sizeof p)
                        return -ENAMETOOLONG;
                if (stat(p, &st) == 0)
                        f.empty = f.empty || (i == 0 && st.st_size == 0);
                else if (errno == ENOENT)
                        f.absent[i] = true;
                else
                        return negative_errno();
        }
        *ret = f;
        return 0;
}

int store_sqlite_files_undo(const char *path, const store_sqlite_files_t *before) {
        if (!path || !before)
                return -EINVAL;
        if (!before->absent[0] && !before->empty)
                return 0; /* a database with content: not made here */
        int r = 0;
        for (size_t i = 0; i < ELEMENTSOF(store_file_suffixes); i++) {
                char p[PATH_MAX];
                if (snprintf(p, sizeof p, "%s%s", path, store_file_suffixes[i]) >= (int) sizeof p)
                        return -ENAMETOOLONG;
                if ((before->absent[i] ? unlink(p) : i == 0 ? truncate(p, 0) : 0) < 0 && errno != ENOENT && r == 0)
                        r = negative_errno();
        }
        int k = fsync_parent_dir(path);
        return r < 0 ? r : k;
}

/* SQLite counts every allocation (sqlite3_memory_used(), sqlite3_status()) by default, under a
 * mutex of the whole process taken in each sqlite3_malloc() and sqlite3_free(). msce-mef reads no
 * such count (its metrics are its own): off. sqlite3_config() works only before
 * sqlite3_initialize(), which the process's first sqlite3_open_v2() runs, and every SQLite call
 * of msce-mef is on a connection opened here, after this. Where SQLite was used first (a test's
 * own connection) it returns SQLITE_MISUSE and the counts stay on: slower, not wrong. */
static pthread_once_t memstatus_once = PTHREAD_ONCE_INIT;

static void memstatus_off(void) {
        (void) sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int db_sqlite_open(const char *path, bool create, bool sync_full, db_t **ret) {
        if (!path || !ret)
                return -EINVAL;
        pthread_once(&memstatus_once, memstatus_off);
        _cleanup_(lite_closep) sqlite_db_t *l = calloc(1, sizeof *l);
        if (!l)
                return -ENOMEM;
        l->base.ops = &lite_ops;

        struct stat st;
        bool existed = stat(path, &st) == 0;
        if (!existed && (errno != ENOENT || !create))
                return negative_errno();
        /* An empty file is no store: SQLite would take it for a new database and write one into
         * it (WAL mode writes the header), beside a -wal and a -shm, for a command that only
         * reads. Only what creates a store makes one there. */
        if (existed && !create && S_ISREG(st.st_mode) && st.st_size == 0)
                return -ENOENT;
        int r;
        /* The rows hold node metadata and secrets sealed under the master key, the -wal the
         * latest of them; SQLite gives -wal and -shm the database's mode: as ssh with a key,
         * a store that others may read or write is refused, not opened (nor chmodded behind
         * the operator's back). */
        if (existed) {
                r = store_sqlite_loose_file(path, NULL, NULL);
                if (r != 0)
                        return r > 0 ? -EPERM : r;
        }
        if (!existed) {
                r = mkdir_parents(path, 0700);
                if (r < 0)
                        return r;
        }

        /* Nothing this opens (database, -wal, -shm) is for anyone but the owner. */
        _cleanup_(umask_restore) _unused_ mode_t old_umask = umask(0077);

        /* NOMUTEX: none of the connection's mutex around every call. It is one store handle's, and
         * a handle is never used by two threads at once (mef/store.h): its statement cache here
         * and its transaction state have no lock either. In msce-mef the loop's handle is the
         * loop thread's alone, and each store thread's is opened before the thread starts and
         * closed after it is joined (mef/store-queue.c); there are no other threads. */
        int rc = sqlite3_open_v2(path, &l->db,
                                 SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_EXRESCODE |
                                         SQLITE_OPEN_NOMUTEX,
                                 NULL);
        if (rc != SQLITE_OK) {
                if ((rc & 0xff) == SQLITE_CANTOPEN)
                        return access(path, F_OK) < 0 ? -ENOENT : -EACCES;
                return sql_errno(rc);
        }
        if (!existed && chmod(path, 0600) < 0)
                return negative_errno();

        sqlite3_extended_result_codes(l->db, 1);
        r = lite_set_busy_timeout(&l->base, 5000);
        if (r < 0)
                return r;
        /* An enrolment commits about a dozen pages, mostly the same hot ones (the tails of the
         * enrolments and audit tables and their indexes): a checkpoint every 10,000 WAL pages
         * rather than SQLite's 1,000 copies those back and syncs a tenth as often (the WAL file
         * stays up to about 40 MiB). bench-mef-load: 8% less MEF CPU per enrolment.
         * temp_store in memory: a batch runs each job in a SAVEPOINT, whose sub-journal (the
         * pages the job changed, a few dozen KiB) was otherwise a file in /var/tmp, made, written
         * page by page and deleted for every batch: about 6 of the 10 pwrite() per enrolment. */
        r = lite_exec(&l->base, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; "
                                "PRAGMA wal_autocheckpoint = 10000; PRAGMA temp_store = MEMORY;");
        if (r < 0)
                return r;
        /* FULL: the WAL synced at each commit (STORE_OPEN_SYNC_FULL) */
        r = lite_exec(&l->base, sync_full ? "PRAGMA synchronous = FULL;" : "PRAGMA synchronous = NORMAL;");
        if (r < 0)
                return r;
        *ret = &TAKE_PTR(l)->base;
        return 0;
}

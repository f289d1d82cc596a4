/* SPDX-License-Identifier: MIT */
/* The PostgreSQL engine of the store (mef/store-db.h), on libpq. Statements (?N in the SQL
 * becomes $N once, when first prepared) are prepared on the server by name at their first use
 * on a connection when they are in the cache, sent with their SQL otherwise; parameters typed
 * (text, int8, bytea) so that INSERT ... SELECT ?1 ... infers nothing; results come as text
 * (bytea as \x hex). A connection that broke is re-established on the next call outside a
 * transaction, at most once per RECONNECT_USEC, so a database that is gone costs each call
 * little: the caller answers 503 (store_error_is_transient()). Every exchange with the server,
 * connecting included, is bounded (pg_bound_usec()): a server that went silent (its host gone,
 * its processes stopped) costs a call that long, not the TCP timeouts, and the connection is
 * dropped. A transaction of pg_begin() runs in pipeline mode: BEGIN and what step_later() gets
 * are only queued, and go with the next statement whose rows are wanted, or with the COMMIT, in
 * one round trip; an enrolment takes one round trip (and the handshake's node lookup one)
 * instead of about ten. The connection and what goes over it: mef/store-pg-wire.c. */
#include <limits.h>

#include "mef/store-pg-internal.h"
#include "mef/store-schema.h"
#include "mef/store.h"
#include "util/util.h"

/* ?N -> $N outside quotes. */
static char *sql_convert(const char *in, int *ret_n) {
        size_t n = strlen(in);
        char *out = malloc(n + 1);
        if (!out)
                return NULL;
        char quote = 0;
        int max = 0;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                char c = in[i];
                if (quote) {
                        if (c == quote)
                                quote = 0;
                } else if (c == '\'' || c == '"')
                        quote = c;
                else if (c == '?' && i + 1 < n && in[i + 1] >= '0' && in[i + 1] <= '9') {
                        c = '$';
                        int v = 0;
                        for (size_t j = i + 1; j < n && in[j] >= '0' && in[j] <= '9'; j++)
                                v = v * 10 + (in[j] - '0');
                        max = MAX(max, v);
                }
                out[o++] = c;
        }
        out[o] = 0;
        *ret_n = max;
        return out;
}

static void stmt_clear(db_stmt_t *st) {
        sym_PQclear(st->res);
        st->res = NULL;
        st->row = st->n_rows = 0;
        for (int i = 0; i < PARAMS_MAX; i++) {
                if (st->owned[i]) {
                        erase_free(st->owned[i], strlen(st->owned[i]));
                }
                st->owned[i] = NULL;
                st->values[i] = NULL;
                st->lengths[i] = 0;
                st->formats[i] = 0;
                st->types[i] = TEXTOID;
        }
}

static int pg_prepare(db_t *d, const char *sql, db_stmt_t **ret) {
        pg_db_t *p = (pg_db_t *) d;
        db_stmt_t *slot;
        int r = pg_ensure(p);
        if (r < 0)
                return r;
        r = db_cache_take(p->cache, p->n_cache, sizeof *p->cache, sql, ret);
        if (r > 0)
                return 0;
        bool cache = r == 0 && p->n_cache < STMT_CACHE_MAX;
        if (cache)
                slot = &p->cache[p->n_cache];
        else if (!(slot = calloc(1, sizeof *slot)))
                return -ENOMEM;
        *slot = (db_stmt_t) { .h = { .ops = d->ops, .key = sql, .cached = cache, .busy = true }, .db = p };
        slot->sql = sql_convert(sql, &slot->n_params);
        if (!slot->sql || slot->n_params > PARAMS_MAX) {
                r = slot->sql ? -E2BIG : -ENOMEM;
                free(slot->sql);
                if (!cache)
                        free(slot);
                return r;
        }
        stmt_clear(slot);
        if (cache)
                p->n_cache++;
        *ret = slot;
        return 0;
}

static void pg_release(db_stmt_t *st) {
        if (!st)
                return;
        stmt_clear(st);
        if (st->blob)
                erase(st->blob, st->blob_size);
        if (st->h.cached) {
                st->h.busy = false;
                return;
        }
        free(st->blob);
        free(st->sql);
        free(st);
}

static int param_slot(db_stmt_t *st, int i) {
        if (i < 1 || i > st->n_params)
                return -ERANGE;
        free(st->owned[i - 1]);
        st->owned[i - 1] = NULL;
        return i - 1;
}

static int pg_bind_text(db_stmt_t *st, int i, const char *v, int len) {
        int k = param_slot(st, i);
        if (k < 0)
                return k;
        st->types[k] = TEXTOID;
        st->formats[k] = 0;
        st->values[k] = NULL;
        if (!v)
                return 0;
        /* text parameters go NUL-terminated: copy when cut to len */
        st->owned[k] = len < 0 ? strdup(v) : strndup(v, (size_t) len);
        if (!st->owned[k])
                return -ENOMEM;
        st->values[k] = st->owned[k];
        return 0;
}

static int pg_bind_int64(db_stmt_t *st, int i, int64_t v) {
        int k = param_slot(st, i);
        if (k < 0)
                return k;
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long) v);
        st->owned[k] = strdup(buf);
        if (!st->owned[k])
                return -ENOMEM;
        st->types[k] = INT8OID;
        st->formats[k] = 0;
        st->values[k] = st->owned[k];
        return 0;
}

static int pg_bind_blob(db_stmt_t *st, int i, const void *ptr, size_t n) {
        int k = param_slot(st, i);
        if (k < 0)
                return k;
        if (n > INT32_MAX)
                return -E2BIG;
        st->types[k] = BYTEAOID;
        st->formats[k] = 1; /* binary: the bytes as they are */
        st->values[k] = ptr;
        st->lengths[k] = (int) n;
        return 0;
}

/* A statement goes to the server (not one skipped in a failed transaction, whose error stands):
 * the reason of an error before it is no longer the last error's. */
static void pg_reason_forget(pg_db_t *p) {
        db_reason_forget(&p->base);
}

static int pg_step(db_stmt_t *st) {
        pg_db_t *p = st->db;
        if (!st->res) {
                int r = pg_ensure(p);
                if (r < 0)
                        return r;
                if (p->tx_r == 0)
                        pg_reason_forget(p);
                if (p->pipeline) {
                        /* with what was queued before it, in one round trip */
                        r = p->tx_r;
                        if (r == 0)
                                r = pg_send_stmt(p, st);
                        if (r == 0)
                                r = pg_sync(p, &st->res);
                        if (r < 0) {
                                if (p->pipeline && p->tx_r == 0)
                                        p->tx_r = r;
                                return r;
                        }
                } else {
                        r = pg_send_stmt(p, st);
                        if (r < 0)
                                return r;
                        st->res = pg_collect(p, &r);
                        if (!st->res)
                                return r;
                }
                ExecStatusType status = sym_PQresultStatus(st->res);
                if (status == PGRES_COMMAND_OK) {
                        const char *t = sym_PQcmdTuples(st->res);
                        p->changes = t && *t ? strtoll(t, NULL, 10) : 0;
                        st->n_rows = 0;
                } else if (status == PGRES_TUPLES_OK) {
                        st->n_rows = sym_PQntuples(st->res);
                        p->changes = 0;
                } else {
                        r = pg_errno(p, st->res);
                        sym_PQclear(st->res);
                        st->res = NULL;
                        return r;
                }
                st->row = -1;
        }
        if (st->row + 1 >= st->n_rows) {
                st->row = st->n_rows;
                return 0;
        }
        st->row++;
        return 1;
}

/* In a transaction of pg_begin(), queued; its error the transaction's (pg_sync). */
static int pg_step_later(db_stmt_t *st) {
        pg_db_t *p = st->db;
        if (!p->pipeline) {
                int r = pg_step(st);
                return r < 0 ? r : 0;
        }
        int r = p->tx_r;
        if (r == 0) {
                pg_reason_forget(p);
                r = pg_send_stmt(p, st); /* libpq copies the parameters into its buffer */
        }
        if (r == 0 && p->n_sent >= QUEUE_MAX)
                r = pg_sync(p, NULL);
        if (r < 0 && p->pipeline && p->tx_r == 0)
                p->tx_r = r;
        return r;
}

static bool row_ok(db_stmt_t *st, int i) {
        return st->res && st->row >= 0 && st->row < st->n_rows && i >= 0 && i < sym_PQnfields(st->res) &&
               !sym_PQgetisnull(st->res, st->row, i);
}

static const char *pg_column_text(db_stmt_t *st, int i, size_t *ret_len) {
        if (!row_ok(st, i)) {
                *ret_len = 0;
                return NULL;
        }
        *ret_len = (size_t) sym_PQgetlength(st->res, st->row, i);
        return sym_PQgetvalue(st->res, st->row, i);
}

static int64_t pg_column_int64(db_stmt_t *st, int i) {
        if (!row_ok(st, i))
                return 0;
        return strtoll(sym_PQgetvalue(st->res, st->row, i), NULL, 10);
}

static const void *pg_column_blob(db_stmt_t *st, int i, size_t *ret_len) {
        *ret_len = 0;
        if (!row_ok(st, i))
                return NULL;
        const char *v = sym_PQgetvalue(st->res, st->row, i);
        size_t n = (size_t) sym_PQgetlength(st->res, st->row, i);
        if (n < 2 || v[0] != '\\' || v[1] != 'x')
                return NULL; /* bytea_output = hex is the default since 9.0 */
        size_t want = (n - 2) / 2 + 1;
        if (want > st->blob_size) {
                uint8_t *b = malloc(want);
                if (!b)
                        return NULL;
                if (st->blob)
                        erase(st->blob, st->blob_size);
                free(st->blob);
                st->blob = b;
                st->blob_size = want;
        }
        size_t len;
        if (hex_decode(v + 2, st->blob, st->blob_size, &len) < 0)
                return NULL;
        *ret_len = len;
        return st->blob;
}

static int64_t pg_changes(db_t *d) {
        return ((pg_db_t *) d)->changes;
}

/* COMMIT with what was queued, in one round trip. On an error (the transaction's first) the
 * transaction is left aborted, for ROLLBACK. */
static int pg_commit(pg_db_t *p) {
        PGresult *res = NULL;
        int r = p->tx_r;
        if (r == 0)
                r = pg_send(p, "COMMIT", NULL);
        if (p->pipeline) {
                int q = pg_sync(p, &res);
                r = r < 0 ? r : q;
        }
        /* a COMMIT of an aborted transaction is answered "ROLLBACK", not an error */
        if (r == 0 && (!res || !streq(sym_PQcmdStatus(res), "COMMIT")))
                r = -EIO;
        sym_PQclear(res);
        pg_pipeline_leave(p);
        if (r == 0)
                p->tx_lost = false; /* committed before the connection went */
        return r;
}

/* A ROLLBACK without the connection its transaction ran on: the server rolled it back. */
static int pg_rolled_back(pg_db_t *p) {
        p->tx_lost = false;
        return 0;
}

/* sql; t: DB_TXN_COMMIT or DB_TXN_ROLLBACK when it ends the transaction (pg_txn()), else
 * _DB_TXN_INVALID (pg_exec()). */
static int pg_exec_as(pg_db_t *p, const char *sql, db_txn_t t) {
        bool rollback = t == DB_TXN_ROLLBACK, commit = t == DB_TXN_COMMIT;
        if (rollback || commit)
                p->migrating = false; /* the exchange's bound is the usual one again */
        if (p->tx_lost && (commit || rollback)) {
                pg_rolled_back(p);
                return commit ? -ECONNRESET : 0;
        }
        int r = pg_ensure(p);
        if (r < 0)
                return rollback ? pg_rolled_back(p) : r;
        if (!p->pipeline)
                return commit ? pg_run_commit(p) : pg_run(p, sql);
        if (commit)
                return pg_commit(p);
        /* Anything else after what was queued, outside pipeline mode (which takes one statement
         * at a time); ROLLBACK too: after a failed statement the rest of its sync is skipped. */
        r = pg_sync(p, NULL);
        pg_pipeline_leave(p);
        if (!p->conn)
                return rollback ? pg_rolled_back(p) : r < 0 ? r : -ECONNRESET;
        if (r < 0 && !rollback)
                return r;
        return pg_run(p, sql);
}

static int pg_exec(db_t *d, const char *sql) {
        return pg_exec_as((pg_db_t *) d, sql, _DB_TXN_INVALID);
}

static bool pg_in_transaction(db_t *d) {
        pg_db_t *p = (pg_db_t *) d;
        if (p->tx_lost)
                return true; /* until the caller ends it */
        if (!p->conn || p->connecting)
                return false;
        if (p->pipeline)
                return true;
        PGTransactionStatusType t = sym_PQtransactionStatus(p->conn);
        return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* BEGIN queued, and pipeline mode up to the end of the transaction. */
static int pg_begin(pg_db_t *p) {
        int r = pg_ensure(p);
        if (r < 0)
                return r;
        if (p->pipeline || sym_PQtransactionStatus(p->conn) != PQTRANS_IDLE || !sym_PQenterPipelineMode(p->conn))
                return pg_exec(&p->base, "BEGIN"); /* as before: a warning when in a transaction already */
        p->pipeline = true;
        p->tx_r = 0;
        r = pg_send(p, "BEGIN", NULL);
        if (r < 0)
                pg_pipeline_leave(p);
        return r;
}

static int pg_txn(db_t *d, db_txn_t t) {
        pg_db_t *p = (pg_db_t *) d;
        switch (t) {
        case DB_TXN_BEGIN:
                return pg_begin(p);
        case DB_TXN_COMMIT:
                return pg_exec_as(p, "COMMIT", t);
        case DB_TXN_ROLLBACK:
                return pg_exec_as(p, "ROLLBACK", t);
        case DB_TXN_SAVEPOINT:
        case DB_TXN_RELEASE:
        case DB_TXN_ROLLBACK_TO:
                return -EOPNOTSUPP; /* a batch's, which PostgreSQL has none of (store_batch_begin()) */
        default:
                return -EINVAL;
        }
}

/* One migration at a time across every instance: a transaction-scoped advisory lock (the key is
 * "msce" in ASCII). Waited for as long as another instance's migration may take (an index over
 * a large table), within the exchange's bound of a migration (an hour), not the lock timeout of
 * requests; so are the migration's own locks. */
static int pg_begin_exclusive(db_t *d) {
        pg_db_t *p = (pg_db_t *) d;
        int r = pg_exec(d, "BEGIN");
        p->migrating = r == 0;
        if (r == 0)
                r = pg_exec(d, "SET LOCAL lock_timeout = '59min'");
        if (r == 0)
                r = pg_exec(d, "SELECT pg_advisory_xact_lock(1836278629)");
        if (r < 0 && pg_in_transaction(d))
                (void) pg_txn(d, DB_TXN_ROLLBACK);
        p->migrating = r == 0;
        return r;
}

static int pg_schema_version(db_t *d, int *ret) {
        db_stmt_t *st;
        /* no table yet: an empty database */
        int r = pg_prepare(d, "SELECT to_regclass('msce_schema') IS NOT NULL", &st);
        if (r < 0)
                return r;
        r = pg_step(st);
        size_t n;
        const char *v = r > 0 ? pg_column_text(st, 0, &n) : NULL;
        bool exists = v && streq(v, "t");
        pg_release(st);
        if (r < 0)
                return r;
        if (!exists) {
                *ret = 0;
                return 0;
        }
        return db_query_int(d, "SELECT version FROM msce_schema", ret);
}

static int pg_set_schema_version(db_t *d, int v) {
        db_stmt_t *st;
        int r = pg_prepare(d, "UPDATE msce_schema SET version = ?1", &st);
        if (r < 0)
                return r;
        r = pg_bind_int64(st, 1, v);
        if (r == 0)
                r = pg_step(st);
        pg_release(st);
        return r < 0 ? r : 0;
}

static int pg_set_busy_timeout(db_t *d, unsigned ms) {
        pg_db_t *p = (pg_db_t *) d;
        p->lock_timeout_ms = ms;
        return pg_ensure(p) < 0 ? 0 : pg_set_lock_timeout(p); /* else applied on reconnect */
}

static void pg_close(db_t *d) {
        pg_db_t *p = (pg_db_t *) d;
        if (!p)
                return;
        for (size_t i = 0; i < p->n_cache; i++) {
                db_stmt_t *st = &p->cache[i];
                stmt_clear(st);
                if (st->blob)
                        erase(st->blob, st->blob_size);
                free(st->blob);
                free(st->sql);
        }
        if (p->conn)
                sym_PQfinish(p->conn);
        if (p->password) {
                erase_free(p->password, strlen(p->password));
        }
        free(p->conninfo);
        pg_uri_done(&p->uri);
        free(p);
}

/* The same tables as SQLite's (mef/store-schema.h), in PostgreSQL's types; the schema version
 * in a table of its own. */
static const char *const pg_migrations[] = {
        "CREATE TABLE msce_schema (version INTEGER NOT NULL);"
        "INSERT INTO msce_schema VALUES (0);" STORE_SCHEMA_1("TEXT COLLATE \"C\"", "BIGINT", "BYTEA",
                                                             " rowid BIGINT GENERATED ALWAYS AS IDENTITY,",
                                                             "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
        STORE_SCHEMA_2,
        STORE_SCHEMA_3("BIGINT"),
        STORE_SCHEMA_4("created, rowid"),
        STORE_SCHEMA_5_PG,
};

static const db_ops_t pg_ops = {
        .dialect = DB_POSTGRESQL,
        .prepare = pg_prepare,
        .release = pg_release,
        .bind_text = pg_bind_text,
        .bind_int64 = pg_bind_int64,
        .bind_blob = pg_bind_blob,
        .step = pg_step,
        .step_later = pg_step_later,
        .column_text = pg_column_text,
        .column_int64 = pg_column_int64,
        .column_blob = pg_column_blob,
        .changes = pg_changes,
        .exec = pg_exec,
        .in_transaction = pg_in_transaction,
        .txn = pg_txn,
        .begin_exclusive = pg_begin_exclusive,
        .schema_version = pg_schema_version,
        .set_schema_version = pg_set_schema_version,
        .set_busy_timeout = pg_set_busy_timeout,
        .close = pg_close,
        .migrations = pg_migrations,
        .n_migrations = (int) ELEMENTSOF(pg_migrations),
};

const char *const *db_pg_migrations(int *ret_n) {
        *ret_n = pg_ops.n_migrations;
        return pg_ops.migrations;
}

static void pg_closep(pg_db_t **p) {
        if (*p)
                pg_close(&(*p)->base);
}

/* r, with a reason that names the password file (strerror() alone, e.g. a file that msce-mef's
 * user may not read, said nothing of which file); none for -EPERM, a mode group or others may
 * read, which the caller's mef_store_mode_hint() names with the mode and the modes allowed. */
static int pg_password_file_failed(pg_db_t *p, const char *path, int r) {
        if (r == -EPERM)
                return r;
        snprintf(p->base.reason.text, sizeof p->base.reason.text, "password_file %s%s", path,
                 r == -ENODATA ? " is empty" : "");
        p->base.reason_r = r;
        p->base.reason.servers = false;
        return r;
}

/* A password file that was read but cannot be the password: -EINVAL, the reason naming the
 * file and why, never the password. */
static int pg_password_file_bad(pg_db_t *p, const char *path, const char *why) {
        snprintf(p->base.reason.text, sizeof p->base.reason.text, "%s: %s", path, why);
        p->base.reason_r = -EINVAL;
        p->base.reason.servers = false;
        return -EINVAL;
}

/* db_pg_open()'s connection, on p. */
static int pg_open(pg_db_t *p, const store_location_t *loc) {
        int r;
        p->conninfo = strdup(loc->uri);
        if (!p->conninfo)
                return -ENOMEM;
        if (loc->password_file) {
                _cleanup_secret_ secret_t pw = { 0 };
                r = secret_file_read(loc->password_file, 1024, &pw);
                if (r < 0)
                        return pg_password_file_failed(p, loc->password_file, r);
                size_t n = pw.len;
                while (n > 0 && (pw.data[n - 1] == '\n' || pw.data[n - 1] == '\r'))
                        n--;
                if (memchr(pw.data, 0, n))
                        return pg_password_file_bad(p, loc->password_file, "holds a NUL byte");
                /* The password is the file less its line end: a second line would go to the
                 * server as part of it, and fail as a wrong password (28P01) that names no file. */
                if (memchr(pw.data, '\n', n) || memchr(pw.data, '\r', n))
                        return pg_password_file_bad(p, loc->password_file,
                                                    "more than one line (the password is the file's only line)");
                p->password = malloc(n + 1); /* not strndup: the secret has no NUL to stop at */
                if (!p->password)
                        return -ENOMEM;
                memcpy(p->password, pw.data, n);
                p->password[n] = 0;
        }
        /* dbname holds the URI (expand_dbname); what it sets wins over the defaults after it */
        const char *keys[] = { "connect_timeout", "tcp_user_timeout", "application_name", "dbname",
                               p->password ? "password" : NULL, NULL };
        const char *values[] = { CONNECT_TIMEOUT, TCP_USER_TIMEOUT, "msce-mef", loc->uri, p->password, NULL };
        r = pg_connect_first(p, keys, values);
        if (r < 0)
                return r;
        p->last_connect = now_usec();
        p->gen = 1;
        return pg_set_lock_timeout(p);
}

int db_pg_open(const store_location_t *loc, db_t **ret, store_reason_t *reason) {
        if (!loc || !loc->uri || !ret)
                return -EINVAL;
        _cleanup_(pg_closep) pg_db_t *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->base.ops = &pg_ops;
        int r = pg_uri_parse(loc->uri, &p->uri);
        if (r == -ELIBACC && reason) {
                *reason = (store_reason_t) { .text = "" };
                snprintf(reason->text, sizeof reason->text, "%s", store_pg_lib_error());
        }
        if (r < 0)
                return r == -ENOMEM || r == -ELIBACC ? r : -EINVAL;
        p->lock_timeout_ms = 5000;
        r = pg_open(p, loc);
        if (r < 0) {
                db_reason_copy(&p->base, r, reason);
                return r;
        }
        *ret = &TAKE_PTR(p)->base;
        return 0;
}

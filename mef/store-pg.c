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
 * one round trip; an enrolment takes two round trips (and the handshake's node lookup one)
 * instead of about ten. */
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>

#include "mef/store-db.h"
#include "mef/store-schema.h"
#include "mef/store.h"
#include "util/util.h"

#define STMT_CACHE_MAX 32
#define PARAMS_MAX 16
#define RECONNECT_USEC (500u * 1000u)
/* Statements queued in a transaction before their results are read anyway: a bound on what
 * libpq buffers. */
#define QUEUE_MAX 256
#define TEXTOID 25u
#define INT8OID 20u
#define BYTEAOID 17u
/* A database host that went silent must not hold a request for minutes (TCP retransmits). */
#define CONNECT_TIMEOUT "5"
#define TCP_USER_TIMEOUT "5000"

typedef struct pg_db pg_db_t;

struct db_stmt {
        const db_ops_t *ops; /* first: DB_OPS() */
        pg_db_t *db;
        const char *key;      /* the caller's SQL text: the cache key */
        char *sql;            /* with $N */
        int n_params;
        bool cached, busy;
        /* Cached statements are prepared on the server by name, once per connection (gen):
         * parsed and planned once, not at every call. */
        uint64_t prepared_gen;
        Oid prepared_types[PARAMS_MAX];
        Oid types[PARAMS_MAX];
        const char *values[PARAMS_MAX];
        int lengths[PARAMS_MAX];
        int formats[PARAMS_MAX];
        char *owned[PARAMS_MAX]; /* text copies and formatted numbers */
        PGresult *res;
        int row, n_rows;
        uint8_t *blob;        /* the last column_blob, decoded */
        size_t blob_size;
};

struct pg_db {
        db_t base;
        PGconn *conn;
        char *conninfo;       /* the URI */
        char *password;       /* wiped on close */
        bool connecting;      /* conn: a connection attempt under way (PQconnectPoll) */
        PostgresPollingStatusType poll;
        uint64_t connect_started;
        unsigned lock_timeout_ms;
        uint64_t last_connect;
        int64_t changes;
        /* A transaction of pg_begin(): statements queued (pipeline mode), their results read at
         * the next sync; tx_r: the transaction's first error, returned for every later call up
         * to its end (the server has aborted it). */
        bool pipeline;
        int tx_r;
        /* The connection broke in such a transaction: nothing more is sent (a new connection
         * would run the rest outside it) until its COMMIT (failed) or ROLLBACK. */
        bool tx_lost;
        /* Pipeline: the results sent so far, and which of them prepare a statement. */
        int n_sent;
        struct {
                int result;
                db_stmt_t *st;
        } preparing[STMT_CACHE_MAX];
        size_t n_preparing;
        uint64_t gen;         /* the connection's: a new one has no prepared statements */
        db_stmt_t cache[STMT_CACHE_MAX];
        size_t n_cache;
};

/* SQLSTATE (and the connection's state) to -errno, at the edge. */
static int pg_errno(pg_db_t *p, const PGresult *res) {
        if (PQstatus(p->conn) != CONNECTION_OK)
                return -ECONNRESET;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (!state)
                return -EIO;
        if (streq(state, "23505"))
                return -EEXIST;  /* unique_violation */
        if (streq(state, "23503"))
                return -ENOENT;  /* foreign_key_violation: a row for a node that does not exist */
        if (streq(state, "23502") || streq(state, "23514") || streq(state, "22P02"))
                return -EINVAL;  /* not null, check, bad text */
        if (streq(state, "40001") || streq(state, "40P01") || streq(state, "55P03") || streq(state, "57014"))
                return -EBUSY;   /* serialization, deadlock, lock_timeout, statement_timeout */
        if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
                return -ECONNRESET; /* connection exceptions, admin shutdown */
        if (streq(state, "53100"))
                return -ENOSPC;
        if (streq(state, "53200"))
                return -ENOMEM;
        if (streq(state, "42501") || strncmp(state, "28", 2) == 0)
                return -EACCES;
        return -EIO;
}

/* One exchange with the server: twice the lock timeout (a lock wait ends in an error before),
 * at least 200 ms. */
static uint64_t pg_bound_usec(const pg_db_t *p) {
        return MAX(2ull * p->lock_timeout_ms, 200ull) * 1000u;
}

static void pg_drop(pg_db_t *p) {
        PQfinish(p->conn);
        p->conn = NULL;
        p->connecting = false;
        p->tx_lost = p->tx_lost || p->pipeline;
        p->pipeline = false; /* the transaction is gone with the connection */
        p->tx_r = 0;
        p->n_sent = 0;
        p->n_preparing = 0;
}

/* 0 when the socket is ready for events, -ETIMEDOUT at the deadline. */
static int pg_wait(PGconn *c, short events, uint64_t deadline) {
        uint64_t now = now_usec();
        if (now >= deadline)
                return -ETIMEDOUT;
        struct pollfd pfd = { .fd = PQsocket(c), .events = events };
        if (pfd.fd < 0)
                return -ECONNRESET;
        int n = poll(&pfd, 1, (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT_MAX));
        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();
        return n == 0 ? -ETIMEDOUT : 0;
}

/* The next result of what was sent (NULL: no more for this statement), waiting at most until
 * deadline. -ETIMEDOUT or -ECONNRESET when the server did not answer in time or the connection
 * broke: then it is dropped. */
static int pg_next(pg_db_t *p, uint64_t deadline, PGresult **ret) {
        while (PQisBusy(p->conn)) {
                int r = pg_wait(p->conn, POLLIN, deadline);
                if (r == 0 && !PQconsumeInput(p->conn))
                        r = -ECONNRESET;
                if (r < 0) {
                        pg_drop(p);
                        return r == -ETIMEDOUT ? -ETIMEDOUT : -ECONNRESET;
                }
        }
        *ret = PQgetResult(p->conn);
        return 0;
}

/* The results of what was just sent: the first that failed, else the last. NULL with *ret_r
 * when the server did not answer in time or the connection broke (then it is dropped). */
static PGresult *pg_collect(pg_db_t *p, int *ret_r) {
        uint64_t deadline = now_usec() + pg_bound_usec(p);
        PGresult *keep = NULL;
        for (;;) {
                PGresult *res;
                int r = pg_next(p, deadline, &res);
                if (r < 0) {
                        PQclear(keep);
                        *ret_r = r;
                        return NULL;
                }
                if (!res)
                        break;
                if (keep && PQresultStatus(keep) == PGRES_FATAL_ERROR)
                        PQclear(res);
                else {
                        PQclear(keep);
                        keep = res;
                }
        }
        if (!keep)
                *ret_r = -EIO;
        return keep;
}

static int pg_sent(pg_db_t *p) {
        if (p->pipeline)
                p->n_sent++;
        return 0;
}

static int pg_send_failed(pg_db_t *p) {
        int r = pg_errno(p, NULL);
        if (r == -ECONNRESET)
                pg_drop(p);
        return r;
}

/* sql (with $N) and st's parameters (none without st) to the server, not waiting: 0 or -errno. */
static int pg_send(pg_db_t *p, const char *sql, const db_stmt_t *st) {
        if (PQsendQueryParams(p->conn, sql, st ? st->n_params : 0, st ? st->types : NULL, st ? st->values : NULL,
                              st ? st->lengths : NULL, st ? st->formats : NULL, 0))
                return pg_sent(p);
        return pg_send_failed(p);
}

/* st prepared on the server under its name (cached statements only): in a pipeline queued before
 * it, its result checked at the sync; else at once. */
static int pg_prepare_named(pg_db_t *p, db_stmt_t *st, const char *name) {
        if (!PQsendPrepare(p->conn, name, st->sql, st->n_params, st->types))
                return pg_send_failed(p);
        st->prepared_gen = p->gen;
        memcpy(st->prepared_types, st->types, sizeof st->types);
        if (p->pipeline) {
                p->preparing[p->n_preparing].result = p->n_sent;
                p->preparing[p->n_preparing++].st = st;
                return pg_sent(p);
        }
        int r = 0;
        PGresult *res = pg_collect(p, &r);
        if (res && PQresultStatus(res) != PGRES_COMMAND_OK)
                r = pg_errno(p, res);
        PQclear(res);
        if (r < 0)
                st->prepared_gen = 0;
        return r;
}

/* st and its parameters to the server, not waiting: by name when it is (or now gets) prepared
 * with these parameter types, else with its SQL. */
static int pg_send_stmt(pg_db_t *p, db_stmt_t *st) {
        if (!st->cached)
                return pg_send(p, st->sql, st);
        char name[24];
        snprintf(name, sizeof name, "msce%zu", (size_t) (st - p->cache));
        if (st->prepared_gen != p->gen && p->n_preparing < STMT_CACHE_MAX) {
                int r = pg_prepare_named(p, st, name);
                if (r < 0)
                        return r;
        }
        if (st->prepared_gen != p->gen || memcmp(st->prepared_types, st->types, sizeof st->types) != 0)
                return pg_send(p, st->sql, st);
        if (PQsendQueryPrepared(p->conn, name, st->n_params, st->values, st->lengths, st->formats, 0))
                return pg_sent(p);
        return pg_send_failed(p);
}

/* Pipeline mode: a sync point after what was sent, and every result up to it. *ret_last gets
 * the last statement's result when nothing before it failed, else NULL; the first error is
 * the transaction's (tx_r), which the server aborted. 0 or -errno. */
static int pg_sync(pg_db_t *p, PGresult **ret_last) {
        PGresult *last = NULL;
        int r = 0;
        if (!PQpipelineSync(p->conn)) {
                pg_drop(p);
                return -ECONNRESET;
        }
        uint64_t deadline = now_usec() + pg_bound_usec(p);
        for (int n = 0;;) {
                PGresult *res;
                r = pg_next(p, deadline, &res);
                if (r < 0)
                        break;
                if (!res)
                        continue; /* between two statements' results */
                ExecStatusType status = PQresultStatus(res);
                if (status == PGRES_PIPELINE_SYNC) {
                        PQclear(res);
                        break;
                }
                if (status == PGRES_FATAL_ERROR && p->tx_r == 0)
                        p->tx_r = pg_errno(p, res);
                /* a prepare that failed, or did not run after an error before it, made nothing */
                for (size_t i = 0; i < p->n_preparing; i++)
                        if (p->preparing[i].result == n && status != PGRES_COMMAND_OK)
                                p->preparing[i].st->prepared_gen = 0;
                n++;
                PQclear(last);
                last = res;
        }
        p->n_sent = 0;
        p->n_preparing = 0;
        if (r < 0 || p->tx_r < 0) {
                PQclear(last);
                last = NULL;
        }
        if (ret_last)
                *ret_last = last;
        else
                PQclear(last);
        return r < 0 ? r : p->tx_r;
}

/* The end of pipeline mode, once everything sent was read (pg_sync). A failure drops the
 * connection with the transaction (tx_lost). */
static void pg_pipeline_leave(pg_db_t *p) {
        if (p->conn && !PQexitPipelineMode(p->conn))
                pg_drop(p); /* results left unread: not expected after a sync */
        p->pipeline = false;
        p->tx_r = 0;
}

/* Constant SQL, possibly several statements: 0 or -errno. */
static int pg_run(pg_db_t *p, const char *sql) {
        if (!PQsendQuery(p->conn, sql)) {
                int r = pg_errno(p, NULL);
                if (r == -ECONNRESET)
                        pg_drop(p);
                return r;
        }
        int r = 0;
        PGresult *res = pg_collect(p, &r);
        if (!res)
                return r;
        ExecStatusType status = PQresultStatus(res);
        r = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? 0 : pg_errno(p, res);
        PQclear(res);
        return r;
}

static int pg_set_lock_timeout(pg_db_t *p) {
        char sql[64];
        /* a number; SET takes no parameter */
        snprintf(sql, sizeof sql, "SET lock_timeout = %u", p->lock_timeout_ms);
        return pg_run(p, sql);
}

/* Connect without blocking for longer than one bound: an attempt that has not finished by then
 * goes on at the next call, given up after CONNECT_TIMEOUT. */
static int pg_connect(pg_db_t *p) {
        if (!p->connecting) {
                const char *keys[] = { "tcp_user_timeout", "application_name", "dbname",
                                       p->password ? "password" : NULL, NULL };
                const char *values[] = { TCP_USER_TIMEOUT, "msce-mef", p->conninfo, p->password, NULL };
                p->conn = PQconnectStartParams(keys, values, 1);
                if (!p->conn)
                        return -ENOMEM;
                if (PQstatus(p->conn) == CONNECTION_BAD) {
                        pg_drop(p);
                        return -ECONNREFUSED;
                }
                p->connecting = true;
                p->poll = PGRES_POLLING_WRITING;
                p->connect_started = now_usec();
        }
        uint64_t deadline = now_usec() + pg_bound_usec(p);
        for (;;) {
                int r;
                switch (p->poll) {
                case PGRES_POLLING_OK:
                        p->connecting = false;
                        p->gen++; /* its statements are prepared again as they are used */
                        return pg_set_lock_timeout(p) < 0 ? -ECONNREFUSED : 0;
                case PGRES_POLLING_READING:
                        r = pg_wait(p->conn, POLLIN, deadline);
                        break;
                case PGRES_POLLING_WRITING:
                        r = pg_wait(p->conn, POLLOUT, deadline);
                        break;
                default:
                        pg_drop(p);
                        return -ECONNREFUSED;
                }
                if (r == -ETIMEDOUT) {
                        if (now_usec() - p->connect_started >= strtoull(CONNECT_TIMEOUT, NULL, 10) * 1000000u)
                                pg_drop(p); /* start afresh next time */
                        return -ECONNREFUSED;
                }
                if (r < 0) {
                        pg_drop(p);
                        return -ECONNREFUSED;
                }
                p->poll = PQconnectPoll(p->conn);
        }
}

/* The connection, re-established when it broke (not inside a transaction: that one is lost). */
static int pg_ensure(pg_db_t *p) {
        if (p->tx_lost)
                return -ECONNRESET;
        if (p->conn && !p->connecting && PQstatus(p->conn) == CONNECTION_OK)
                return 0;
        if (!p->connecting) {
                pg_drop(p);
                if (p->tx_lost)
                        return -ECONNRESET;
                uint64_t now = now_usec();
                if (p->last_connect != 0 && now - p->last_connect < RECONNECT_USEC)
                        return -ECONNREFUSED;
                p->last_connect = now;
        }
        return pg_connect(p);
}

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
        PQclear(st->res);
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
        db_stmt_t *slot = NULL;
        int r = pg_ensure(p);
        if (r < 0)
                return r;
        for (size_t i = 0; i < p->n_cache; i++)
                if (p->cache[i].key == sql) {
                        slot = &p->cache[i];
                        break;
                }
        if (slot && !slot->busy) {
                slot->busy = true;
                *ret = slot;
                return 0;
        }
        bool cache = !slot && p->n_cache < STMT_CACHE_MAX;
        if (cache)
                slot = &p->cache[p->n_cache];
        else if (!(slot = calloc(1, sizeof *slot)))
                return -ENOMEM;
        *slot = (db_stmt_t) { .ops = d->ops, .db = p, .key = sql, .cached = cache, .busy = true };
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
        if (st->cached) {
                st->busy = false;
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

static int pg_step(db_stmt_t *st) {
        pg_db_t *p = st->db;
        if (!st->res) {
                int r = pg_ensure(p);
                if (r < 0)
                        return r;
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
                ExecStatusType status = PQresultStatus(st->res);
                if (status == PGRES_COMMAND_OK) {
                        const char *t = PQcmdTuples(st->res);
                        p->changes = t && *t ? strtoll(t, NULL, 10) : 0;
                        st->n_rows = 0;
                } else if (status == PGRES_TUPLES_OK) {
                        st->n_rows = PQntuples(st->res);
                        p->changes = 0;
                } else {
                        r = pg_errno(p, st->res);
                        PQclear(st->res);
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
        if (r == 0)
                r = pg_send_stmt(p, st); /* libpq copies the parameters into its buffer */
        if (r == 0 && p->n_sent >= QUEUE_MAX)
                r = pg_sync(p, NULL);
        if (r < 0 && p->pipeline && p->tx_r == 0)
                p->tx_r = r;
        return r;
}

static bool row_ok(db_stmt_t *st, int i) {
        return st->res && st->row >= 0 && st->row < st->n_rows && i >= 0 && i < PQnfields(st->res) &&
               !PQgetisnull(st->res, st->row, i);
}

static const char *pg_column_text(db_stmt_t *st, int i, size_t *ret_len) {
        if (!row_ok(st, i)) {
                *ret_len = 0;
                return NULL;
        }
        *ret_len = (size_t) PQgetlength(st->res, st->row, i);
        return PQgetvalue(st->res, st->row, i);
}

static int64_t pg_column_int64(db_stmt_t *st, int i) {
        if (!row_ok(st, i))
                return 0;
        return strtoll(PQgetvalue(st->res, st->row, i), NULL, 10);
}

static const void *pg_column_blob(db_stmt_t *st, int i, size_t *ret_len) {
        *ret_len = 0;
        if (!row_ok(st, i))
                return NULL;
        const char *v = PQgetvalue(st->res, st->row, i);
        size_t n = (size_t) PQgetlength(st->res, st->row, i);
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
        if (r == 0 && (!res || !streq(PQcmdStatus(res), "COMMIT")))
                r = -EIO;
        PQclear(res);
        pg_pipeline_leave(p);
        if (r == 0)
                p->tx_lost = false; /* committed before the connection went */
        return r;
}

static int pg_exec(db_t *d, const char *sql) {
        pg_db_t *p = (pg_db_t *) d;
        if (p->tx_lost && (streq(sql, "COMMIT") || streq(sql, "ROLLBACK"))) {
                p->tx_lost = false; /* the server rolled it back */
                return streq(sql, "COMMIT") ? -ECONNRESET : 0;
        }
        int r = pg_ensure(p);
        if (r < 0)
                return r;
        if (!p->pipeline)
                return pg_run(p, sql);
        if (streq(sql, "COMMIT"))
                return pg_commit(p);
        /* Anything else after what was queued, outside pipeline mode (which takes one statement
         * at a time); ROLLBACK too: after a failed statement the rest of its sync is skipped. */
        r = pg_sync(p, NULL);
        pg_pipeline_leave(p);
        if (!p->conn)
                return r < 0 ? r : -ECONNRESET;
        if (r < 0 && !streq(sql, "ROLLBACK"))
                return r;
        return pg_run(p, sql);
}

static bool pg_in_transaction(db_t *d) {
        pg_db_t *p = (pg_db_t *) d;
        if (p->tx_lost)
                return true; /* until the caller ends it */
        if (!p->conn || p->connecting)
                return false;
        if (p->pipeline)
                return true;
        PGTransactionStatusType t = PQtransactionStatus(p->conn);
        return t == PQTRANS_INTRANS || t == PQTRANS_INERROR || t == PQTRANS_ACTIVE;
}

/* BEGIN queued, and pipeline mode up to the end of the transaction. */
static int pg_begin(db_t *d) {
        pg_db_t *p = (pg_db_t *) d;
        int r = pg_ensure(p);
        if (r < 0)
                return r;
        if (p->pipeline || PQtransactionStatus(p->conn) != PQTRANS_IDLE || !PQenterPipelineMode(p->conn))
                return pg_exec(d, "BEGIN"); /* as before: a warning when in a transaction already */
        p->pipeline = true;
        p->tx_r = 0;
        r = pg_send(p, "BEGIN", NULL);
        if (r < 0)
                pg_pipeline_leave(p);
        return r;
}

/* One migration at a time across every instance: a transaction-scoped advisory lock (the key is
 * "msce" in ASCII). */
static int pg_begin_exclusive(db_t *d) {
        int r = pg_exec(d, "BEGIN");
        if (r == 0)
                r = pg_exec(d, "SELECT pg_advisory_xact_lock(1836278629)");
        if (r < 0 && pg_in_transaction(d))
                (void) pg_exec(d, "ROLLBACK");
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
        r = pg_prepare(d, "SELECT version FROM msce_schema", &st);
        if (r < 0)
                return r;
        r = pg_step(st);
        if (r >= 0)
                *ret = r > 0 ? (int) pg_column_int64(st, 0) : 0;
        pg_release(st);
        return r < 0 ? r : 0;
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
                PQfinish(p->conn);
        if (p->password) {
                erase_free(p->password, strlen(p->password));
        }
        free(p->conninfo);
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
        .begin = pg_begin,
        .begin_exclusive = pg_begin_exclusive,
        .schema_version = pg_schema_version,
        .set_schema_version = pg_set_schema_version,
        .set_busy_timeout = pg_set_busy_timeout,
        .close = pg_close,
        .migrations = pg_migrations,
        .n_migrations = (int) ELEMENTSOF(pg_migrations),
};

static void pg_closep(pg_db_t **p) {
        if (*p)
                pg_close(&(*p)->base);
}

/* The password belongs in its own file, never in the configuration. */
static int conninfo_check(const char *uri) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(uri, &err);
        if (!opts) {
                PQfreemem(err);
                return -EINVAL;
        }
        int r = 0;
        for (PQconninfoOption *o = opts; o->keyword; o++)
                if (streq(o->keyword, "password") && o->val && *o->val)
                        r = -EINVAL;
        PQconninfoFree(opts);
        return r;
}

int db_pg_open(const store_location_t *loc, db_t **ret) {
        if (!loc || !loc->uri || !ret)
                return -EINVAL;
        int r = conninfo_check(loc->uri);
        if (r < 0)
                return r;
        _cleanup_(pg_closep) pg_db_t *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->base.ops = &pg_ops;
        p->lock_timeout_ms = 5000;
        p->conninfo = strdup(loc->uri);
        if (!p->conninfo)
                return -ENOMEM;
        if (loc->password_file) {
                _cleanup_secret_ secret_t pw = { 0 };
                r = secret_file_read(loc->password_file, 1024, &pw);
                if (r < 0)
                        return r;
                size_t n = pw.len;
                while (n > 0 && (pw.data[n - 1] == '\n' || pw.data[n - 1] == '\r'))
                        n--;
                if (memchr(pw.data, 0, n))
                        return -EINVAL;
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
        p->conn = PQconnectdbParams(keys, values, 1);
        if (!p->conn)
                return -ENOMEM;
        if (PQstatus(p->conn) != CONNECTION_OK) {
                const char *m = PQerrorMessage(p->conn);
                if (m && (strstr(m, "password") || strstr(m, "authentication")))
                        return -EACCES;
                if (m && strstr(m, "does not exist"))
                        return -ENOENT;
                return -ECONNREFUSED;
        }
        p->last_connect = now_usec();
        p->gen = 1;
        r = pg_set_lock_timeout(p);
        if (r < 0)
                return r;
        *ret = &TAKE_PTR(p)->base;
        return 0;
}

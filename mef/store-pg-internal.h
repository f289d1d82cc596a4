/* SPDX-License-Identifier: MIT */
#pragma once
/* The PostgreSQL engine's insides, shared by mef/store-pg.c (statements, transactions, the
 * engine's db_ops_t), mef/store-pg-uri.c (the URI: libpq's parse, the host lists) and
 * mef/store-pg-wire.c (the connection: every exchange with the server bounded, pipeline syncs,
 * reconnecting). */
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "mef/store-db.h"

/* libpq's functions msce-mef calls, through pointers that mef/store-pg-lib.c resolves on
 * first use (sym_PQclear for PQclear, ...): the library is no link-time dependency. */
#define PG_LIB_SONAME "libpq.so.5"
#define PG_SYMS(X)                                                                                      \
        X(PQclear) X(PQcmdStatus) X(PQcmdTuples) X(PQconnectPoll) X(PQconnectStartParams)              \
        X(PQconninfoFree) X(PQconninfoParse) X(PQconsumeInput) X(PQenterPipelineMode) X(PQerrorMessage) \
        X(PQexitPipelineMode) X(PQfinish) X(PQfreemem) X(PQgetResult) X(PQgetisnull) X(PQgetlength)    \
        X(PQgetvalue) X(PQhost) X(PQisBusy) X(PQnfields) X(PQntuples) X(PQpipelineSync) X(PQport)      \
        X(PQresultErrorField) X(PQresultStatus) X(PQsendPrepare) X(PQsendQuery) X(PQsendQueryParams)    \
        X(PQsendQueryPrepared) X(PQsetErrorVerbosity) X(PQsocket) X(PQstatus) X(PQtransactionStatus)
#define PG_SYM_DECLARE(sym) extern typeof(&sym) sym_##sym;
PG_SYMS(PG_SYM_DECLARE)

/* libpq loaded and every symbol above resolved, once per process (thread-safe): 0, or -ELIBACC
 * (store_pg_lib_error() says why) for every call after a failed first. */
int pg_lib_load(void);

#define STMT_CACHE_MAX 32
#define PARAMS_MAX 16
#define RECONNECT_USEC (500u * 1000u)
/* Statements queued in a transaction before their results are read anyway: a bound on what
 * libpq buffers. */
#define QUEUE_MAX 256
#define TEXTOID 25u
#define INT8OID 20u
#define BYTEAOID 17u
/* A database host that went silent must not hold a request for minutes (TCP retransmits):
 * seconds for each host a connection tries, unless the URI's connect_timeout says otherwise
 * (pg_uri_parse()); CONNECT_TIMEOUT, the same as libpq's text. */
#define CONNECT_TIMEOUT_SEC 5
#define PG_STR_(x) #x
#define PG_STR(x) PG_STR_(x)
#define CONNECT_TIMEOUT PG_STR(CONNECT_TIMEOUT_SEC)
#define TCP_USER_TIMEOUT "5000"

typedef struct pg_db pg_db_t;

/* What msce-mef itself takes from the store's URI, besides handing it to libpq. */
typedef struct pg_uri {
        unsigned n_hosts;             /* how many hosts it names (host=a,b, postgresql://a,b/...), at least one */
        unsigned connect_timeout_sec; /* its connect_timeout as libpq reads it, else CONNECT_TIMEOUT_SEC */
        char *lists[3];               /* its host, hostaddr and port lists (pg_uri_host_keys): NULL when absent */
} pg_uri_t;

/* store_pg_uri_check() of uri (libpq's own parse, so that every spelling it takes is seen), and
 * what it says in *ret (to pg_uri_done(); unless NULL). connect_timeout is libpq's: a whole number
 * of seconds (-EDOM otherwise), less than 2 taken as 2; 0 or less (no limit for libpq) or absent:
 * ours, CONNECT_TIMEOUT_SEC, for msce-mef never waits without a limit. A password: -EACCES. */
int pg_uri_parse(const char *uri, pg_uri_t *ret);
void pg_uri_done(pg_uri_t *u);

/* libpq's keywords for a URI's hosts, in pg_uri_t's and pg_uri_hosts_t's order. */
extern const char *const pg_uri_host_keys[3];

/* The URI's host, hostaddr and port lists (pg_uri_host_keys) rotated to begin at its host start
 * (modulo its hosts), the ones before it at the end, for keywords after "dbname" (which then
 * override the URI's): libpq tries a silent host until the application gives up on it (it does not
 * enforce connect_timeout in a non-blocking connect), so msce-mef begins the next attempt at the
 * next host. NULL for a list that stays as it is: absent, start 0, a single host, a single port
 * (every host's), or a count libpq refuses anyway. */
typedef struct pg_uri_hosts {
        char *values[3];
} pg_uri_hosts_t;

/* *ret (to pg_uri_hosts_done()) for u (pg_uri_parse()'s) and start: 0 or -ENOMEM. */
int pg_uri_hosts(const pg_uri_t *u, unsigned start, pg_uri_hosts_t *ret);
void pg_uri_hosts_done(pg_uri_hosts_t *h);

struct db_stmt {
        db_stmt_head_t h; /* first: DB_OPS(), db_cache_take() */
        pg_db_t *db;
        char *sql; /* h.key with $N */
        int n_params;
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
        pg_uri_t uri;         /* the URI's hosts and connect_timeout: pg_connect(), pg_connect_first() */
        unsigned host_next;   /* the URI's host the next connection attempt begins with (pg_uri_hosts()) */
        bool connecting;      /* conn: a connection attempt under way (PQconnectPoll) */
        PostgresPollingStatusType poll;
        uint64_t connect_started;
        unsigned lock_timeout_ms;
        uint64_t last_connect;
        bool last_connected;  /* that attempt connected: a loss since is tried again at once */
        /* The reason the last connection attempt failed with ("" none, or it connected): what
         * pg_ensure() repeats while it does not try again (RECONNECT_USEC). */
        store_reason_t last_refusal;
        int64_t changes;
        /* A transaction of pg_begin(): statements queued (pipeline mode), their results read at
         * the next sync; tx_r: the transaction's first error, returned for every later call up
         * to its end (the server has aborted it). */
        bool pipeline;
        int tx_r;
        /* The connection broke in such a transaction: nothing more is sent (a new connection
         * would run the rest outside it) until its COMMIT (failed) or ROLLBACK. */
        bool tx_lost;
        /* The server refused a write as read-only (a standby, an old primary back as one): the
         * connection is dropped once its transaction ends, and the next may reach the primary. */
        bool read_only;
        /* In pg_begin_exclusive()'s transaction (a schema migration): see pg_bound_usec(). */
        bool migrating;
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

/* SQLSTATE (and the connection's state) to -errno, at the edge; the server's reason with it into
 * base.reason (store_error_reason()). */
int pg_errno(pg_db_t *p, const PGresult *res);

/* The results of what was just sent: the first that failed, else the last. NULL with *ret_r
 * when the server did not answer in time or the connection broke (then it is dropped). */
PGresult *pg_collect(pg_db_t *p, int *ret_r);

/* sql (with $N) and st's parameters (none without st) to the server, not waiting: 0 or -errno. */
int pg_send(pg_db_t *p, const char *sql, const db_stmt_t *st);

/* st and its parameters to the server, not waiting: by name when it is (or now gets) prepared
 * with these parameter types, else with its SQL. */
int pg_send_stmt(pg_db_t *p, db_stmt_t *st);

/* Pipeline mode: a sync point after what was sent, and every result up to it. *ret_last gets
 * the last statement's result when nothing before it failed, else NULL; the first error is
 * the transaction's (tx_r), which the server aborted. 0 or -errno. */
int pg_sync(pg_db_t *p, PGresult **ret_last);

/* The end of pipeline mode, once everything sent was read (pg_sync). A failure drops the
 * connection with the transaction (tx_lost). */
void pg_pipeline_leave(pg_db_t *p);

/* Constant SQL, possibly several statements: 0 or -errno. */
int pg_run(pg_db_t *p, const char *sql);
/* COMMIT outside pipeline mode: -EIO when the transaction was aborted (rolled back instead). */
int pg_run_commit(pg_db_t *p);

/* lock_timeout_ms to the session (at each connection) */
int pg_set_lock_timeout(pg_db_t *p);

/* A connection that failed: the errno of libpq's message m (PQERRORS_VERBOSE), and the server's
 * reason with it when it refused the connection, else libpq's own words ("cannot connect to
 * PostgreSQL: ... failed: Connection refused"). Each connection attempt's failure, the first's
 * and a reconnect's, goes through it. */
int pg_connect_errno(pg_db_t *p, const char *m);

/* The store's first connection (keys and values: PQconnectStartParams()'s, dbname the URI): an
 * attempt beginning at each of the URI's hosts in turn (pg_uri_hosts()), each waited for up to
 * the URI's connect_timeout, until one connects; p->host_next is then where reconnects begin.
 * 0, or -errno with the server's reason for a refusal (pg_connect_errno()), -ECONNREFUSED when
 * no attempt was answered in time (its reason names the hosts that gave no answer). */
int pg_connect_first(pg_db_t *p, const char *const *keys, const char *const *values);

/* The connection, re-established when it broke (not inside a transaction: that one is lost). */
int pg_ensure(pg_db_t *p);

/* SPDX-License-Identifier: MIT */
/* The PostgreSQL engine's connection (mef/store-pg-internal.h): SQLSTATEs to -errno, every
 * exchange with the server bounded (pg_bound_usec()), results collected, pipeline syncs, and
 * the connection re-established without blocking (pg_ensure(), pg_connect()). */
#include <limits.h>
#include <poll.h>
#include <stdarg.h>

#include "mef/store-pg-internal.h"
#include "util/text.h"
#include "util/util.h"

static int pg_state_errno(pg_db_t *p, const char *state) {
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
        if (streq(state, "25006")) {
                p->read_only = true; /* read_only_sql_transaction: a standby; pg_ensure() drops it */
                return -ECONNRESET;
        }
        if (streq(state, "22012"))
                return -ESTALE;  /* division by zero: only the check value's guard (store_key_seal) */
        if (streq(state, "26000") || streq(state, "42P05"))
                return -EPROTO; /* a prepared statement missing or there already: not this
                                 * connection's (a pooler in transaction mode) */
        if (streq(state, "53100"))
                return -ENOSPC;
        if (streq(state, "53200"))
                return -ENOMEM;
        if (streq(state, "42501") || strncmp(state, "28", 2) == 0)
                return -EACCES;
        if (streq(state, "42P01") || streq(state, "42703"))
                return -EPROTONOSUPPORT; /* undefined table, column: not the schema this msce-mef
                                          * knows (dropped, altered, another search_path) */
        return -EIO;
}

/* The reason just written, for r, the server's words or msce-mef's own (servers): what a
 * terminal or the journal should not take becomes '?' (journald keeps a message that is not
 * UTF-8 as a blob, which journalctl does not show). */
static void pg_reason_clean(pg_db_t *p, int r, bool servers) {
        text_clean(p->base.reason.text, TEXT_PRINTABLE);
        p->base.reason_r = r;
        p->base.reason.servers = servers;
}

/* The reason written and cleaned, cut to its room. */
_printf_(4, 5) static void pg_reason_printf(pg_db_t *p, int r, bool servers, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->base.reason.text, sizeof p->base.reason.text, fmt, ap);
        va_end(ap);
        pg_reason_clean(p, r, servers);
}

/* The server's reason for res's error, for store_error_reason(): its SQLSTATE and primary
 * message, which names a table, a column, a constraint or a type, never a bound value; the
 * DETAIL can (a unique violation's key), and is not taken. Data exceptions (class 22) quote the
 * value they refused in the primary message too ("invalid input syntax for type bigint: ..."):
 * their SQLSTATE alone. Control bytes become '?'. */
static void pg_reason_set(pg_db_t *p, const char *state, const char *m, int m_len, int r) {
        if (!m || strncmp(state, "22", 2) == 0) {
                m = "a value the server refused (data exception)";
                m_len = -1;
        }
        pg_reason_printf(p, r, true, "%s: %.*s", state, m_len < 0 ? INT_MAX : m_len, m);
}

static void pg_reason_note(pg_db_t *p, const PGresult *res, const char *state, int r) {
        pg_reason_set(p, state, sym_PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), -1, r);
}

/* -ECONNRESET, its reason msce-mef's own unless it has one (the server's FATAL, pg_errno()): the
 * line of the request it fails says why. */
static int pg_lost(pg_db_t *p) {
        if (p->base.reason_r == -ECONNRESET && p->base.reason.text[0])
                return -ECONNRESET;
        pg_reason_printf(p, -ECONNRESET, false, "connection to PostgreSQL lost");
        return -ECONNRESET;
}

int pg_errno(pg_db_t *p, const PGresult *res) {
        const char *state = res ? sym_PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (sym_PQstatus(p->conn) != CONNECTION_OK && !state)
                return pg_lost(p);
        if (!state)
                return -EIO;
        if (sym_PQstatus(p->conn) != CONNECTION_OK) {
                /* the server's FATAL that ended it (57P01: an administrator's shutdown) */
                pg_reason_note(p, res, state, -ECONNRESET);
                return -ECONNRESET;
        }
        int r = pg_state_errno(p, state);
        pg_reason_note(p, res, state, r);
        return r;
}

/* A SQLSTATE: five digits or capital letters. */
static bool pg_is_state(const char *s) {
        for (int i = 0; i < 5; i++)
                if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'Z')))
                        return false;
        return true;
}

/* The errno of libpq's message m for a connection attempt that failed without the server's
 * SQLSTATE. */
static int pg_libpq_errno(const char *m) {
        if (m && (strstr(m, "password") || strstr(m, "authentication")))
                return -EACCES;
        if (m && strstr(m, "does not exist"))
                return -ENOENT;
        if (m && (strstr(m, "too many c") || strstr(m, "remaining connection slots")))
                return -EUSERS; /* "too many clients/connections": not a server that is down */
        return -ECONNREFUSED;
}

/* The reason of a connection attempt that failed without the server's SQLSTATE (no server
 * there, no password given): libpq's message m, each attempt's line but not the hints under it
 * (a tab first), "; " between - "cannot connect to PostgreSQL: connection to server on socket
 * ... failed: No such file or directory", not a bare strerror(-r). msce-mef's own words. */
static void pg_reason_libpq(pg_db_t *p, const char *m, int r) {
        char *t = p->base.reason.text;
        size_t size = sizeof p->base.reason.text;
        int n = snprintf(t, size, "cannot connect to PostgreSQL");
        const char *sep = ": ";
        for (const char *line = m; line && *line;) {
                const char *end = strchrnul(line, '\n');
                if (end > line && *line != '\t' && (size_t) n < size) {
                        n += snprintf(t + n, size - (size_t) n, "%s%.*s", sep, (int) (end - line), line);
                        sep = "; ";
                }
                line = *end ? end + 1 : NULL;
        }
        if (streq(sep, ": ")) /* libpq said nothing */
                n += snprintf(t + n, size - (size_t) n, ": %s", strerror(-r));
        pg_reason_clean(p, r, false);
}

/* A connection that failed, from libpq's message for it in PQERRORS_VERBOSE: the server's
 * refusal reads "... failed: FATAL:  42501: permission denied for database "msce"\n" (then its
 * DETAIL on a line of its own, not taken), each attempt's on a line of its own; libpq's own
 * failures (no server there, no password given) have no SQLSTATE. The last refusal's SQLSTATE
 * and primary message become the reason of the errno returned: -EACCES for a role refused
 * (authentication, CONNECT privilege, LOGIN), -ENOENT for no such database, -EUSERS for too
 * many connections, else -ECONNREFUSED; without a SQLSTATE, what libpq says tells, and is the
 * reason (pg_reason_libpq()). */
int pg_connect_errno(pg_db_t *p, const char *m) {
        const char *state = NULL, *text = NULL;
        int text_len = 0;
        /* the first ":  " (a severity's) of each line, followed by "XXXXX: " */
        for (const char *line = m; line && *line;) {
                const char *end = strchr(line, '\n'), *sev = strstr(line, ":  ");
                if (sev && (!end || sev < end) && strlen(sev) > 10 && pg_is_state(sev + 3) && sev[8] == ':' &&
                    sev[9] == ' ') {
                        state = sev + 3;
                        text = sev + 10;
                        text_len = (int) (end ? end - text : (ptrdiff_t) strlen(text));
                }
                line = end ? end + 1 : NULL;
        }
        if (!state) {
                int r = pg_libpq_errno(m);
                pg_reason_libpq(p, m, r);
                return r;
        }
        char code[6];
        memcpy(code, state, 5);
        code[5] = 0;
        int r = strncmp(code, "28", 2) == 0 || streq(code, "42501") ? -EACCES
                : streq(code, "3D000")                              ? -ENOENT
                : streq(code, "53300")                              ? -EUSERS
                                                                    : -ECONNREFUSED;
        pg_reason_set(p, code, text, text_len, r);
        return r;
}

/* How long the server may stay silent in an exchange: twice the lock timeout (a lock wait ends
 * in an error before), at least 200 ms; a schema migration's, an hour (an index built over a
 * large table says nothing until it is done). Each byte that comes in starts it again, so a
 * long result (a backup's table) is not cut. */
static uint64_t pg_bound_usec(const pg_db_t *p) {
        if (p->migrating)
                return 3600ull * 1000000u;
        return MAX(2ull * p->lock_timeout_ms, 200ull) * 1000u;
}

/* -ETIMEDOUT: the server stayed silent in an exchange for its bound (pg_bound_usec(); before
 * pg_drop(), which ends a migration's), said on the line of the request it fails as a lost
 * connection is (pg_lost()). */
static int pg_silent(pg_db_t *p) {
        unsigned long long ms = pg_bound_usec(p) / 1000u;
        if (p->migrating)
                pg_reason_printf(p, -ETIMEDOUT, false,
                                 "PostgreSQL did not answer within %llu s (a schema migration's bound)", ms / 1000u);
        else
                pg_reason_printf(p, -ETIMEDOUT, false,
                                 "PostgreSQL did not answer within %llu ms (twice the lock timeout)", ms);
        return -ETIMEDOUT;
}

/* How long one host's connection attempt may take: the URI's connect_timeout. */
static uint64_t pg_connect_usec(const pg_db_t *p) {
        return (uint64_t) p->uri.connect_timeout_sec * 1000000u;
}

static void pg_drop(pg_db_t *p) {
        sym_PQfinish(p->conn);
        p->conn = NULL;
        p->connecting = false;
        p->migrating = false;
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
        struct pollfd pfd = { .fd = sym_PQsocket(c), .events = events };
        if (pfd.fd < 0)
                return -ECONNRESET;
        int n = poll(&pfd, 1, (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT_MAX));
        if (n < 0)
                return errno == EINTR ? 0 : negative_errno();
        return n == 0 ? -ETIMEDOUT : 0;
}

/* The next result of what was sent (NULL: no more for this statement), waiting at most until
 * *deadline, which what comes in moves on. -ETIMEDOUT or -ECONNRESET when the server did not
 * answer in time or the connection broke: then it is dropped. */
static int pg_next(pg_db_t *p, uint64_t *deadline, PGresult **ret) {
        while (sym_PQisBusy(p->conn)) {
                int r = pg_wait(p->conn, POLLIN, *deadline);
                if (r == 0 && !sym_PQconsumeInput(p->conn))
                        r = -ECONNRESET;
                if (r < 0) {
                        if (r == -ETIMEDOUT)
                                pg_silent(p);
                        pg_drop(p);
                        return r == -ETIMEDOUT ? -ETIMEDOUT : pg_lost(p);
                }
                *deadline = now_usec() + pg_bound_usec(p);
        }
        *ret = sym_PQgetResult(p->conn);
        return 0;
}

PGresult *pg_collect(pg_db_t *p, int *ret_r) {
        uint64_t deadline = now_usec() + pg_bound_usec(p);
        PGresult *keep = NULL;
        for (;;) {
                PGresult *res;
                int r = pg_next(p, &deadline, &res);
                if (r < 0) {
                        sym_PQclear(keep);
                        *ret_r = r;
                        return NULL;
                }
                if (!res)
                        break;
                if (keep && sym_PQresultStatus(keep) == PGRES_FATAL_ERROR)
                        sym_PQclear(res);
                else {
                        sym_PQclear(keep);
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

int pg_send(pg_db_t *p, const char *sql, const db_stmt_t *st) {
        if (sym_PQsendQueryParams(p->conn, sql, st ? st->n_params : 0, st ? st->types : NULL, st ? st->values : NULL,
                              st ? st->lengths : NULL, st ? st->formats : NULL, 0))
                return pg_sent(p);
        return pg_send_failed(p);
}

/* st prepared on the server under its name (cached statements only): in a pipeline queued before
 * it, its result checked at the sync; else at once. */
static int pg_prepare_named(pg_db_t *p, db_stmt_t *st, const char *name) {
        if (!sym_PQsendPrepare(p->conn, name, st->sql, st->n_params, st->types))
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
        if (res && sym_PQresultStatus(res) != PGRES_COMMAND_OK)
                r = pg_errno(p, res);
        sym_PQclear(res);
        if (r < 0)
                st->prepared_gen = 0;
        return r;
}

int pg_send_stmt(pg_db_t *p, db_stmt_t *st) {
        if (!st->h.cached)
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
        if (sym_PQsendQueryPrepared(p->conn, name, st->n_params, st->values, st->lengths, st->formats, 0))
                return pg_sent(p);
        return pg_send_failed(p);
}

int pg_sync(pg_db_t *p, PGresult **ret_last) {
        PGresult *last = NULL;
        int r = 0;
        if (!sym_PQpipelineSync(p->conn)) {
                pg_drop(p);
                return pg_lost(p);
        }
        uint64_t deadline = now_usec() + pg_bound_usec(p);
        for (int n = 0;;) {
                PGresult *res;
                r = pg_next(p, &deadline, &res);
                if (r < 0)
                        break;
                if (!res && sym_PQstatus(p->conn) != CONNECTION_OK) {
                        pg_drop(p); /* libpq gave up on it (lost sync): no sync result comes */
                        r = pg_lost(p);
                        break;
                }
                if (!res)
                        continue; /* between two statements' results */
                ExecStatusType status = sym_PQresultStatus(res);
                if (status == PGRES_PIPELINE_SYNC) {
                        sym_PQclear(res);
                        break;
                }
                if (status == PGRES_FATAL_ERROR && p->tx_r == 0)
                        p->tx_r = pg_errno(p, res);
                /* a prepare that failed, or did not run after an error before it, made nothing */
                for (size_t i = 0; i < p->n_preparing; i++)
                        if (p->preparing[i].result == n && status != PGRES_COMMAND_OK)
                                p->preparing[i].st->prepared_gen = 0;
                n++;
                sym_PQclear(last);
                last = res;
        }
        p->n_sent = 0;
        p->n_preparing = 0;
        if (r < 0 || p->tx_r < 0) {
                sym_PQclear(last);
                last = NULL;
        }
        if (ret_last)
                *ret_last = last;
        else
                sym_PQclear(last);
        return r < 0 ? r : p->tx_r;
}

void pg_pipeline_leave(pg_db_t *p) {
        if (p->conn && !sym_PQexitPipelineMode(p->conn))
                pg_drop(p); /* results left unread: not expected after a sync */
        p->pipeline = false;
        p->tx_r = 0;
}

/* want: the command status the last statement must answer, or NULL for any. */
static int pg_run_as(pg_db_t *p, const char *sql, const char *want) {
        if (!sym_PQsendQuery(p->conn, sql)) {
                int r = pg_errno(p, NULL);
                if (r == -ECONNRESET)
                        pg_drop(p);
                return r;
        }
        int r = 0;
        PGresult *res = pg_collect(p, &r);
        if (!res)
                return r;
        ExecStatusType status = sym_PQresultStatus(res);
        r = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK ? 0 : pg_errno(p, res);
        if (r == 0 && want && !streq(sym_PQcmdStatus(res), want))
                r = -EIO;
        sym_PQclear(res);
        return r;
}

int pg_run(pg_db_t *p, const char *sql) {
        return pg_run_as(p, sql, NULL);
}

int pg_run_commit(pg_db_t *p) {
        /* a COMMIT of an aborted transaction is answered "ROLLBACK", not an error */
        return pg_run_as(p, "COMMIT", "COMMIT");
}

int pg_set_lock_timeout(pg_db_t *p) {
        char sql[64];
        /* a number; SET takes no parameter */
        snprintf(sql, sizeof sql, "SET lock_timeout = %u", p->lock_timeout_ms);
        return pg_run(p, sql);
}

/* A connection attempt in p->conn with keys and values (PQconnectStartParams()'s, dbname the
 * URI), its hosts beginning at p->host_next (pg_uri_hosts()), *polled set for
 * pg_connect_step(); the last attempt's reason is no longer one. 0 or -ENOMEM. */
static int pg_connect_start(pg_db_t *p, const char *const *keys, const char *const *values,
                            PostgresPollingStatusType *polled) {
        db_reason_forget(&p->base);
        _cleanup_(pg_uri_hosts_done) pg_uri_hosts_t hosts = { { NULL } };
        int r = pg_uri_hosts(&p->uri, p->host_next, &hosts);
        if (r < 0)
                return r;
        size_t n = 0;
        while (keys[n])
                n++;
        /* the caller's, then the hosts' after dbname: they override the URI's lists */
        size_t size = n + ELEMENTSOF(hosts.values) + 1;
        _cleanup_free_ const char **k = calloc(2 * size, sizeof *k);
        if (!k)
                return -ENOMEM;
        const char **v = k + size;
        memcpy(k, keys, n * sizeof *k);
        memcpy(v, values, n * sizeof *v);
        for (size_t i = 0; i < ELEMENTSOF(hosts.values); i++)
                if (hosts.values[i]) {
                        k[n] = pg_uri_host_keys[i];
                        v[n++] = hosts.values[i];
                }
        k[n] = v[n] = NULL;
        p->conn = sym_PQconnectStartParams(k, v, 1);
        if (!p->conn)
                return -ENOMEM;
        /* the server's refusal with its SQLSTATE in PQerrorMessage(); only while connecting (its
         * notices, printed on stderr, as before) */
        sym_PQsetErrorVerbosity(p->conn, PQERRORS_VERBOSE);
        *polled = sym_PQstatus(p->conn) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
        return 0;
}

/* One step of the connection attempt under way on p->conn (*polled: what PQconnectPoll() said
 * last): 1 once it is made, 0 after a step (again), -ETIMEDOUT at the deadline. When it failed,
 * pg_connect_errno() of libpq's message: the server's refusal as -EACCES, -ENOENT or -EUSERS,
 * else -ECONNREFUSED (also when its socket could not be waited for), with the server's reason.
 * The store's first connection and every reconnect take this step. */
static int pg_connect_step(pg_db_t *p, PostgresPollingStatusType *polled, uint64_t deadline) {
        int r;
        switch (*polled) {
        case PGRES_POLLING_OK:
                sym_PQsetErrorVerbosity(p->conn, PQERRORS_DEFAULT);
                return 1;
        case PGRES_POLLING_READING:
                r = pg_wait(p->conn, POLLIN, deadline);
                break;
        case PGRES_POLLING_WRITING:
                r = pg_wait(p->conn, POLLOUT, deadline);
                break;
        default:
                return pg_connect_errno(p, sym_PQerrorMessage(p->conn));
        }
        if (r < 0)
                return r == -ETIMEDOUT ? r : -ECONNREFUSED;
        *polled = sym_PQconnectPoll(p->conn);
        return 0;
}

/* "HOST port PORT" of the host the attempt under way waits on (libpq's: it passes over those that
 * refuse), after those in list (size bytes, ", " between) unless it is one of them already. */
static void pg_host_note(const PGconn *c, char *list, size_t size) {
        char h[128];
        const char *host = sym_PQhost(c), *port = sym_PQport(c);
        snprintf(h, sizeof h, "%s port %s", host && *host ? host : "?", port && *port ? port : "?");
        size_t n = strlen(h), used = strlen(list);
        for (const char *s = list; (s = strstr(s, h)); s += n)
                if ((s == list || s[-1] == ' ') && (s[n] == 0 || s[n] == ','))
                        return;
        snprintf(list + used, size - used, "%s%s", used ? ", " : "", h);
}

/* The reason of an attempt's -ECONNREFUSED when hosts (pg_host_note()) gave no answer: msce-mef's
 * own (store_said() does not put it as the server's). given_up: after the URI's connect_timeout; else the attempt
 * goes on at the next call. */
static void pg_reason_silent(pg_db_t *p, const char *hosts, bool given_up) {
        pg_reason_printf(p, -ECONNREFUSED, false, "no answer from %s %s %u s (connect_timeout)", hosts,
                         given_up ? "within" : "yet, waiting up to", p->uri.connect_timeout_sec);
}

/* The attempt under way had a host's time without a connection (libpq waits on a silent host
 * for ever): dropped, and the next begins at the host after the one this one began at. */
static void pg_connect_next(pg_db_t *p) {
        pg_drop(p);
        p->host_next = (p->host_next + 1) % MAX(p->uri.n_hosts, 1u);
}

/* Connect without blocking for longer than one bound: an attempt that has not finished by then
 * goes on at the next call, given up after the URI's connect_timeout; the next attempt begins at
 * the next host (pg_connect_next()). Either is -ECONNREFUSED with a reason naming the host that
 * gave no answer (pg_reason_silent()). A refusal is -ECONNREFUSED whatever
 * the server's reason, which goes with it (store_error_reason()): a store that is away, answered
 * 503 and tried again - not -ENOENT or -EACCES, which here would read as a row missing or a
 * statement refused. */
static int pg_connect(pg_db_t *p) {
        if (!p->connecting) {
                const char *keys[] = { "tcp_user_timeout", "application_name", "dbname",
                                       p->password ? "password" : NULL, NULL };
                const char *values[] = { TCP_USER_TIMEOUT, "msce-mef", p->conninfo, p->password, NULL };
                int r = pg_connect_start(p, keys, values, &p->poll);
                if (r < 0)
                        return r;
                p->connecting = true;
                p->connect_started = now_usec();
        }
        /* at most the host's time (the attempt's end) */
        uint64_t deadline = MIN(now_usec() + pg_bound_usec(p), p->connect_started + pg_connect_usec(p));
        for (;;) {
                int r = pg_connect_step(p, &p->poll, deadline);
                if (r == 0)
                        continue;
                if (r > 0) {
                        p->connecting = false;
                        p->gen++; /* its statements are prepared again as they are used */
                        return pg_set_lock_timeout(p) < 0 ? -ECONNREFUSED : 0;
                }
                if (r == -ETIMEDOUT) {
                        char host[128] = "";
                        bool given_up = now_usec() - p->connect_started >= pg_connect_usec(p);
                        pg_host_note(p->conn, host, sizeof host);
                        pg_reason_silent(p, host, given_up);
                        if (given_up)
                                pg_connect_next(p); /* start afresh next time, at the next host */
                        return -ECONNREFUSED;
                }
                pg_drop(p);
                if (p->base.reason_r == r)
                        p->base.reason_r = -ECONNREFUSED;
                return -ECONNREFUSED;
        }
}

int pg_connect_first(pg_db_t *p, const char *const *keys, const char *const *values) {
        /* an attempt beginning at each host in turn, each given a host's time */
        char silent[160] = "";
        for (unsigned i = 0; i < MAX(p->uri.n_hosts, 1u); i++) {
                PostgresPollingStatusType polled;
                int r = pg_connect_start(p, keys, values, &polled);
                if (r < 0)
                        return r;
                uint64_t deadline = now_usec() + pg_connect_usec(p);
                do
                        r = pg_connect_step(p, &polled, deadline);
                while (r == 0);
                if (r > 0)
                        return 0;
                if (r != -ETIMEDOUT)
                        return r; /* refused, by every host */
                pg_host_note(p->conn, silent, sizeof silent);
                pg_connect_next(p);
        }
        pg_reason_silent(p, silent, true);
        return -ECONNREFUSED; /* no answer in time */
}

/* A reconnect not tried, RECONNECT_USEC not being up since the last attempt (ago): that attempt's
 * reason again, saying so ("Connection refused, PostgreSQL said 42501: ... (at the last attempt,
 * 120 ms ago)"), not a bare "Connection refused" beside the real attempt's line. */
static int pg_refused_again(pg_db_t *p, uint64_t ago) {
        const store_reason_t *last = &p->last_refusal;
        unsigned ms = (unsigned) MIN(ago / 1000u, (uint64_t) UINT_MAX);
        store_reason_t *why = &p->base.reason;
        if (last->text[0]) {
                char tail[64];
                int n = snprintf(tail, sizeof tail, " (at the last attempt, %u ms ago)", ms);
                snprintf(why->text, sizeof why->text, "%.*s%s", (int) (sizeof why->text - 1 - (size_t) n), last->text,
                         tail);
        } else /* it had none, or it connected (the connection broke since) */
                snprintf(why->text, sizeof why->text, "not tried again yet, the last attempt was %u ms ago", ms);
        why->servers = last->text[0] && last->servers;
        p->base.reason_r = -ECONNREFUSED;
        return -ECONNREFUSED;
}

/* pg_connect()'s r: the reason a failed attempt had (it may go on at the next call, then it is
 * not the last attempt's yet), none once it connected. */
static int pg_connect_noted(pg_db_t *p, int r) {
        p->last_connected = r == 0;
        if (r == 0)
                p->last_refusal = (store_reason_t) { .text = "" };
        else if (!p->connecting)
                db_reason_copy(&p->base, r, &p->last_refusal);
        return r;
}

/* A connection with nothing in flight and no transaction, whose socket is readable: the server
 * said something unasked, which on msce-mef's connections (no LISTEN) is its end - a FATAL
 * "terminating connection" (a restart, pg_terminate_backend(), idle_session_timeout) and EOF.
 * libpq learns of that only when the connection is next used (PQstatus() stays CONNECTION_OK),
 * which failed that request, however long after the restart. Not read through libpq: its
 * FATAL, unasked, would go to stderr as a notice. */
static bool pg_ended_while_idle(const pg_db_t *p) {
        if (p->pipeline || sym_PQtransactionStatus(p->conn) != PQTRANS_IDLE)
                return false;
        struct pollfd pfd = { .fd = sym_PQsocket(p->conn), .events = POLLIN };
        return pfd.fd >= 0 && poll(&pfd, 1, 0) > 0;
}

int pg_ensure(pg_db_t *p) {
        if (p->tx_lost)
                return -ECONNRESET;
        if (p->read_only && !p->pipeline) {
                p->read_only = false;
                pg_drop(p);
        }
        if (p->conn && !p->connecting && sym_PQstatus(p->conn) == CONNECTION_OK && !pg_ended_while_idle(p))
                return 0;
        if (!p->connecting) {
                pg_drop(p);
                if (p->tx_lost)
                        return -ECONNRESET;
                uint64_t now = now_usec();
                /* RECONNECT_USEC paces failed attempts; a connection that broke after the last
                 * attempt made it (PostgreSQL stopped) is tried again at once, so that its 503
                 * says why (pg_refused_again() would have no reason to repeat). */
                if (p->last_connect != 0 && !p->last_connected && now - p->last_connect < RECONNECT_USEC)
                        return pg_refused_again(p, now - p->last_connect);
                p->last_connect = now;
        }
        return pg_connect_noted(p, pg_connect(p));
}

/* SPDX-License-Identifier: MIT */
/* msce-mef's TLS server: one sd-event loop, non-blocking sockets, one request per connection,
 * a deadline on every connection and a bound on how many are in service at once.
 *
 * Two pools, so that nobody without a credential can keep a gateway from enrolling:
 * - Unauthenticated (mef/admission.h): from accept until the handshake shows a PSK identity or
 *   a client certificate (and for good when it shows neither), at most max_unauthenticated;
 *   a source over max_unauthenticated_per_source gives up those silent for IDLE_GRACE_USEC.
 *   A new connection is never refused for want of room there: an older unauthenticated one
 *   is closed instead (from the source holding the most, one that has sent nothing first).
 *   The first byte must come within first_byte_timeout, the whole handshake within
 *   handshake_timeout.
 * - Authenticated: at most max_connections in service. Up to max_connections/4 + 4 more are
 *   "overflow": once their request has been read (bounded by the same limits and deadlines),
 *   they are answered 503/5000 with Retry-After. Answering after the request rather than right
 *   after the handshake means the client is reading when the answer comes, and we close a
 *   socket with nothing unread in it (no RST eating the 503). With service and overflow full,
 *   the accept source is disabled until a slot frees, so the kernel backlog (listen_backlog)
 *   holds the rest.
 * Every connection has a deadline (handshake, then request + response), so a silent or slow
 * client holds a slot for at most that long. A connection that has been answered (or refused
 * in the handshake) and only lingers for the client to close gives its slot back; at most
 * max_connections linger at once, beyond that one is closed right away.
 * What unauthenticated peers can cause (failed handshakes, timeouts, evictions, 503s) is logged
 * through mef/logbook.h: per source and overall bounded. Exchanges of authenticated peers are
 * logged each. */
#include <arpa/inet.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "keys/kdf.h"
#include "mef/admission.h"
#include "mef/handlers.h"
#include "mef/listen.h"
#include "mef/log.h"
#include "mef/logbook.h"
#include "mef/message-ids.h"
#include "mef/metrics-http.h"
#include "mef/retention.h"
#include "mef/psk-cache.h"
#include "mef/server.h"
#include "mef/store-queue.h"
#include "proto/http.h"
#include "proto/tls.h"
#include "util/util.h"

#define READ_CHUNK 16384u
/* Chunked framing adds size lines and a trailer around the 64 KiB body; a request needing
 * more input than this is refused whatever the parser still expects. */
#define CHUNK_OVERHEAD 16384u
#define INPUT_MAX (HTTP_HEAD_MAX + HTTP_BODY_MAX + CHUNK_OVERHEAD)
#define INPUT_INITIAL 4096u
/* After the answer, read and discard what the client still sends (close_notify, the rest of
 * a refused request) for at most this long, so closing does not reset the connection before
 * the client has read the answer. */
#define LINGER_USEC (1000u * 1000u)
#define LINGER_DRAIN_MAX (64u * 1024u)
#define ACCEPT_BATCH 64
#define ACCEPT_RETRY_USEC (100u * 1000u)
/* Nodes the enrolment rate limit remembers at once (about 300 bytes each at most): past it,
 * the node whose window opened first is forgotten. */
#define ENROL_LIMIT_NODES 16384u
#define TIMER_ACCURACY_USEC (10u * 1000u)
#define LOG_PATH_MAX 96u
#define PAUSE_LOG_USEC (10u * 1000u * 1000u)
#define FD_SPARE 32u /* listen socket, store, event loop, logs */
/* Idle this long after the last connection: give the heap that a burst grew back. */
#define TRIM_USEC (1000u * 1000u)
/* A source over max_unauthenticated_per_source gives up connections that have sent nothing
 * for this long: a gateway's ClientHello follows its connect within milliseconds. */
#define IDLE_GRACE_USEC (250u * 1000u)
#define LOOP_BUSY_TIMEOUT_MS 100u

typedef enum conn_phase {
        CONN_HANDSHAKE,
        CONN_READ,
        CONN_STORE, /* a store thread handles the request: no I/O meanwhile */
        CONN_WRITE,
        CONN_LINGER,
} conn_phase_t;

/* Which count a connection is in. */
typedef enum conn_pool {
        POOL_UNAUTHENTICATED, /* in server.unauth (admission) */
        POOL_SERVING,         /* n_serving */
        POOL_OVERFLOW,        /* n_overflow: answered 503 */
        POOL_LINGER,          /* n_lingering */
} conn_pool_t;

#define IDENTITY_LOG_MAX 64u

typedef struct server server_t;
typedef struct conn conn_t;
typedef struct exchange_job exchange_job_t;

struct conn {
        server_t *server;
        conn_t *prev, *next;
        int fd;
        tls_conn_t *tls;
        sd_event_source *io, *timer;
        conn_phase_t phase;
        conn_pool_t pool;
        admission_entry_t admission;      /* while POOL_UNAUTHENTICATED */
        uint64_t started;                 /* CLOCK_MONOTONIC usec */
        uint64_t deadline;
        char addr[INET6_ADDRSTRLEN + 8];
        source_key_t source;
        char source_name[SOURCE_KEY_STRLEN]; /* what the logbook counts under */
        char identity_tried[IDENTITY_LOG_MAX + 1]; /* last PSK identity looked up, sanitized */
        /* peer, after the handshake */
        const char *psk_identity;         /* owned by tls */
        char cert_fp[STORE_FP_LEN + 1];   /* "" when none */
        uint8_t ekm[KDF_EKM_LEN];
        /* the node the PSK lookup found for this handshake: the handlers need not look it up
         * (and decrypt its Kpm) again */
        store_node_t node;
        bool has_node;
        /* request */
        uint8_t *in;
        size_t in_len, in_size;
        http_parser_t parser;
        /* response: may carry key bytes, wiped as soon as it is sent */
        uint8_t *out;
        size_t out_len, out_pos;
        /* for the exchange log line */
        char method[8];
        char path[LOG_PATH_MAX + 1];
        int status;
        mef_exchange_t exchange;
        char node_id[MSG_ID_MAX + 1];
        char ke_id[MSG_KEID_MAX + 1];
        exchange_job_t *job;              /* while CONN_STORE */
};

/* A request on its way through a store thread. It owns copies of all it needs, so that the
 * connection may go (deadline, eviction, shutdown) while a thread still works on it. */
struct exchange_job {
        store_job_t job;
        conn_t *conn;                     /* NULL once the connection is gone */
        const mef_config_t *cfg;
        http_msg_t msg;
        char *psk_identity;
        char cert_fp[STORE_FP_LEN + 1];
        char addr[INET6_ADDRSTRLEN + 8];
        uint8_t ekm[KDF_EKM_LEN];
        store_node_t node;
        bool has_node;
        mef_metrics_t *metrics;
        ratelimit_t *enrol_limit;         /* thread-safe, shared */
        mef_response_t resp;
};

struct server {
        const mef_config_t *cfg;
        mef_store_t *store;               /* the loop's own: PSK lookups in the handshake */
        store_queue_t *queue;             /* the rest */
        retention_t *retention;           /* NULL: [audit] keep unset */
        mef_metrics_t *metrics;           /* NULL: not counted */
        metrics_http_t *metrics_http;     /* NULL: [metrics] listen unset */
        psk_cache_t *psks;                /* for handshakes while the store is unreachable */
        sd_event *event;
        sd_event_source *accept_source, *accept_retry;
        int listen_fd;
        tls_ctx_t *tls;
        conn_t *conns;
        admission_t *unauth;
        ratelimit_t *enrol_limit; /* NULL: [limits] enrolments_per_node = 0 */
        logbook_t *logbook;
        sd_event_source *logbook_timer;
        sd_event_source *trim_timer;
        unsigned max_serving, max_overflow;
        unsigned n_serving, n_overflow;
        unsigned n_lingering, max_lingering;
        uint64_t first_byte_usec, handshake_usec;
        uint64_t busy_usec; /* a request queued for longer than the store may wait: 503 */
        bool accept_on;
        bool accept_backoff; /* fd exhaustion: wait for accept_retry */
        uint64_t pause_logged, backoff_logged;
};

static void conn_step(conn_t *c);

/* ---- helpers ---- */

/* Peer-supplied text for a log line: printable ASCII, truncated. */
static void sanitize(const char *in, char *out, size_t size) {
        size_t o = 0;
        for (; in && *in && o + 1 < size; in++)
                out[o++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
        out[o] = 0;
}

static const char *peer_name(const conn_t *c, char *buf, size_t size) {
        if (c->psk_identity) {
                char id[64];
                sanitize(c->psk_identity, id, sizeof id);
                snprintf(buf, size, "psk:%s", id);
        } else if (c->cert_fp[0])
                snprintf(buf, size, "cert:%.16s", c->cert_fp);
        else
                snprintf(buf, size, "-");
        return buf;
}

static void addr_format(const struct sockaddr_storage *sa, char *out, size_t size) {
        char host[INET6_ADDRSTRLEN] = "?";
        unsigned port = 0;
        if (sa->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
                port = ntohs(in->sin_port);
                snprintf(out, size, "%s:%u", host, port);
        } else if (sa->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
                port = ntohs(in6->sin6_port);
                snprintf(out, size, "[%s]:%u", host, port);
        } else
                snprintf(out, size, "?");
}

static const char *tls_error_str(int r) {
        switch (r) {
        case -EACCES:
                return "authentication failed (unknown identity, wrong key or certificate)";
        case -ECONNRESET:
        case -EPIPE:
                return "peer went away";
        case -EPROTO:
                return "protocol error";
        default:
                return strerror(-r);
        }
}

/* ---- bounded logging (mef/logbook.h) ---- */

static void logbook_sink(void *userdata, int priority, const char *line) {
        if (priority <= LOG_WARNING)
                log_warning("%s", line);
        else
                log_info("%s", line);
}

static void server_logbook_arm(server_t *s) {
        uint64_t next = logbook_next(s->logbook);
        if (!s->logbook_timer)
                return;
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(s->logbook_timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(s->logbook_timer, MAX(next, 1u));
        (void) sd_event_source_set_enabled(s->logbook_timer, SD_EVENT_ONESHOT);
}

static int on_logbook_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        server_t *s = userdata;
        logbook_stats_t st;
        logbook_flush(s->logbook, now_usec());
        server_logbook_arm(s);
        logbook_get_stats(s->logbook, &st);
        (void) sd_notifyf(0,
                          "STATUS=Serving: %u in service, %u unauthenticated; %llu failures counted in log summaries",
                          s->n_serving, admission_count(s->unauth), (unsigned long long) st.aggregated);
        return 0;
}

/* A line about a connection that anyone reaching the port can cause: "ADDR: what", counted
 * per source, with the PSK identity it tried when there was one. */
_printf_(4, 5) static void conn_note(const conn_t *c, logbook_kind_t kind, int priority, const char *fmt, ...) {
        char what[512];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        server_t *s = c->server;
        logbook_note(s->logbook, now_usec(), c->source_name, kind, c->identity_tried[0] ? c->identity_tried : NULL,
                     priority, "%s: %s", c->addr, what);
        server_logbook_arm(s);
}

/* ---- accept gating ---- */

static bool server_has_slot(const server_t *s) {
        return s->n_serving < s->max_serving || s->n_overflow < s->max_overflow;
}

static void server_update_accept(server_t *s) {
        bool on = server_has_slot(s) && !s->accept_backoff;
        if (on == s->accept_on || !s->accept_source)
                return;
        if (sd_event_source_set_enabled(s->accept_source, on ? SD_EVENT_ON : SD_EVENT_OFF) < 0)
                return;
        s->accept_on = on;
        /* Under sustained overload this flips with every connection: say it every 10 s. */
        uint64_t now = now_usec();
        if (!on && !s->accept_backoff && (s->pause_logged == 0 || now - s->pause_logged >= PAUSE_LOG_USEC)) {
                s->pause_logged = now;
                log_warning("%u connections open (limit %u + %u overflow): not accepting until one closes",
                            s->n_serving + s->n_overflow, s->max_serving, s->max_overflow);
        }
}

static int on_accept_retry(sd_event_source *src, uint64_t usec, void *userdata) {
        server_t *s = userdata;
        s->accept_backoff = false;
        server_update_accept(s);
        return 0;
}

/* ---- connections ---- */

static void conn_pool_leave(conn_t *c) {
        server_t *s = c->server;
        switch (c->pool) {
        case POOL_UNAUTHENTICATED:
                admission_remove(s->unauth, &c->admission);
                break;
        case POOL_SERVING:
                s->n_serving--;
                break;
        case POOL_OVERFLOW:
                s->n_overflow--;
                break;
        case POOL_LINGER:
                s->n_lingering--;
                break;
        }
}

static void conn_free(conn_t *c) {
        if (!c)
                return;
        server_t *s = c->server;

        if (c->prev)
                c->prev->next = c->next;
        else
                s->conns = c->next;
        if (c->next)
                c->next->prev = c->prev;
        conn_pool_leave(c);
        mef_metrics_connections(s->metrics, -1);
        if (c->job)
                c->job->conn = NULL; /* its thread finishes; the job frees itself */

        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        tls_conn_free(c->tls);
        if (c->fd >= 0)
                close(c->fd);
        erase(c->ekm, sizeof c->ekm);
        erase(c->in, c->in_size);
        free(c->in);
        erase(c->out, c->out_len);
        free(c->out);
        free(c);

        server_update_accept(s);
        /* Nothing open: once that has lasted TRIM_USEC, hand freed heap back (a flood of
         * handshakes grows it by megabytes that glibc would keep). */
        if (!s->conns && s->trim_timer && sd_event_source_set_time_relative(s->trim_timer, TRIM_USEC) >= 0)
                (void) sd_event_source_set_enabled(s->trim_timer, SD_EVENT_ONESHOT);
}

static int on_trim_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        server_t *s = userdata;
        if (!s->conns)
                (void) malloc_trim(0);
        return 0;
}

/* Nothing more to send: wait for the client to close, off the slot count, so the next client
 * need not wait for this one's FIN. -ENOBUFS when too many linger already: close now. */
static int conn_enter_linger(conn_t *c) {
        server_t *s = c->server;
        if (s->n_lingering >= s->max_lingering)
                return -ENOBUFS;
        conn_pool_leave(c);
        s->n_lingering++;
        c->pool = POOL_LINGER;
        c->phase = CONN_LINGER;
        server_update_accept(s);
        return 0;
}

static void conn_set_deadline_at(conn_t *c, uint64_t at) {
        c->deadline = at;
        (void) sd_event_source_set_time(c->timer, c->deadline);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void conn_set_deadline(conn_t *c, uint64_t usec_from_now) {
        conn_set_deadline_at(c, now_usec() + usec_from_now);
}

static bool conn_authenticated(const conn_t *c) {
        return c->psk_identity || c->cert_fp[0];
}

/* The exchange's journal entry: a MESSAGE_ID for what an operator looks for. */
static void conn_log_event(const conn_t *c, const char *peer, unsigned long long ms) {
        const char *outcome = "ok", *id = NULL;
        int priority = LOG_INFO;
        if (c->status >= 500) {
                outcome = "failed";
                id = MEF_MESSAGE_FAILED;
                priority = LOG_WARNING;
        } else if (c->status >= 400) {
                outcome = "refused";
                id = MEF_MESSAGE_REFUSED;
        } else if (c->exchange == MEF_EXCHANGE_ENROL) {
                outcome = "enrolled";
                id = MEF_MESSAGE_ENROLLED;
        } else if (c->exchange == MEF_EXCHANGE_FETCH)
                id = MEF_MESSAGE_FETCHED;
        else if (c->exchange == MEF_EXCHANGE_DEREGISTER)
                id = MEF_MESSAGE_DEREGISTERED;
        mef_log_fields_t f = {
                .message_id = id,
                .node_id = c->node_id,
                .ke_id = c->ke_id,
                .identity = peer,
                .peer = c->addr,
                .exchange = mef_exchange_to_string(c->exchange),
                .outcome = outcome,
                .status = c->status,
        };
        log_event(&f, priority, "%s %s %s %s -> %d (%llu ms)", peer, c->addr, c->method[0] ? c->method : "-",
                  c->path[0] ? c->path : "-", c->status, ms);
}

static void conn_log_exchange(const conn_t *c) {
        char peer[96];
        uint64_t usec = now_usec() - c->started;
        unsigned long long ms = usec / 1000u;
        mef_metrics_request(c->server->metrics, c->exchange, c->status, usec);
        /* Exchanges of authenticated peers are each logged (enrolments among them); what the
         * others get (403, 400, 431...) and 503s are counted per source. */
        if (c->status == 503 || !conn_authenticated(c)) {
                conn_note(c, c->status == 503 ? LOGBOOK_OVERLOADED : LOGBOOK_REQUEST_FAILED, LOG_INFO,
                          "%s %s %s -> %d (%llu ms)", peer_name(c, peer, sizeof peer),
                          c->method[0] ? c->method : "-", c->path[0] ? c->path : "-", c->status, ms);
                return;
        }
        conn_log_event(c, peer_name(c, peer, sizeof peer), ms);
}

/* Serialise resp into the output buffer and move on to writing. Consumes resp. */
static int conn_answer(conn_t *c, mef_response_t *resp, const char *request_id) {
        int r = mef_response_format(resp, request_id, &c->out, &c->out_len);
        c->status = resp->status;
        c->exchange = resp->exchange;
        snprintf(c->node_id, sizeof c->node_id, "%s", resp->node_id);
        snprintf(c->ke_id, sizeof c->ke_id, "%s", resp->ke_id);
        mef_response_done(resp);
        if (r < 0) {
                log_warning("%s: cannot format the response: %s", c->addr, strerror(-r));
                return r;
        }
        c->out_pos = 0;
        c->phase = CONN_WRITE;
        return 1;
}

static int conn_answer_error(conn_t *c, int status, int rsc, const char *reason) {
        mef_response_t resp;
        int r = mef_response_error(status, rsc, reason, &resp);
        if (r < 0)
                return r;
        return conn_answer(c, &resp, NULL);
}

static void exchange_job_free(exchange_job_t *j) {
        erase(j->ekm, sizeof j->ekm);
        erase(&j->node, sizeof j->node);
        free(j->psk_identity);
        http_msg_done(&j->msg);
        mef_response_done(&j->resp);
        free(j);
}

/* In a store thread. */
static int exchange_job_run(store_job_t *job, mef_store_t *store) {
        exchange_job_t *j = (exchange_job_t *) job;
        mef_peer_t peer = {
                .psk_identity = j->psk_identity,
                .cert_fp = j->cert_fp[0] ? j->cert_fp : NULL,
                .addr = j->addr,
                .ekm = j->ekm,
                .node = j->has_node ? &j->node : NULL,
                .enrol_limit = j->enrol_limit,
        };
        uint64_t t0 = now_usec();
        int r = mef_handle(j->cfg, store, &peer, &j->msg, &j->resp);
        mef_metrics_store(j->metrics, now_usec() - t0); /* atomic: fine from a store thread */
        erase(j->ekm, sizeof j->ekm);
        return r;
}

/* Back in the loop. */
static void exchange_job_done(store_job_t *job, int r) {
        exchange_job_t *j = (exchange_job_t *) job;
        conn_t *c = j->conn;
        if (!c) {
                exchange_job_free(j);
                return;
        }
        c->job = NULL;
        mef_response_t resp = {};
        if (r >= 0) {
                resp = j->resp;
                j->resp = (mef_response_t) {};
        } else if (r == -ETIME) {
                /* queued behind a slow store until its deadline */
                r = mef_response_error(503, 5000, "store busy: retry later", &resp);
                resp.retry_after = c->server->cfg->retry_after;
        } else
                r = mef_response_error(500, 5000, "internal error", &resp);
        if (r >= 0)
                r = conn_answer(c, &resp, http_msg_header(&j->msg, "X-M2M-RI"));
        exchange_job_free(j);
        if (r < 0 || sd_event_source_set_enabled(c->io, SD_EVENT_ON) < 0) {
                conn_free(c);
                return;
        }
        conn_step(c);
}

/* Hands the request to a store thread: 0, the answer comes through exchange_job_done(). The
 * message moves into the job. */
static int conn_submit(conn_t *c, http_msg_t *msg) {
        server_t *s = c->server;
        exchange_job_t *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        *j = (exchange_job_t) {
                .job = {
                        .run = exchange_job_run,
                        .done = exchange_job_done,
                        /* not started by then: 503 rather than an answer the client may not wait for */
                        .deadline = MIN(c->deadline, now_usec() + s->busy_usec),
                },
                .conn = c,
                .cfg = s->cfg,
                .metrics = s->metrics,
                .enrol_limit = s->enrol_limit,
                .msg = *msg,
                .has_node = c->has_node,
        };
        *msg = (http_msg_t) {};
        if (c->psk_identity && !(j->psk_identity = strdup(c->psk_identity))) {
                exchange_job_free(j);
                return -ENOMEM;
        }
        memcpy(j->cert_fp, c->cert_fp, sizeof j->cert_fp);
        memcpy(j->addr, c->addr, sizeof j->addr);
        memcpy(j->ekm, c->ekm, sizeof j->ekm);
        if (c->has_node)
                j->node = c->node;
        int r = store_queue_submit(s->queue, &j->job);
        if (r < 0) {
                *msg = j->msg; /* back to the caller, for the 503 */
                j->msg = (http_msg_t) {};
                exchange_job_free(j);
                return r;
        }
        c->job = j;
        c->phase = CONN_STORE;
        /* not started by its deadline: taken back and answered 503 (on_conn_timer) */
        (void) sd_event_source_set_time(c->timer, MIN(j->job.deadline, c->deadline));
        return 0;
}

/* 1: answered, writing; 0: in a store thread; <0: close. */
static int conn_handle(conn_t *c, http_msg_t *msg) {
        server_t *s = c->server;
        mef_response_t resp = {};
        int r;

        snprintf(c->method, sizeof c->method, "%s", msg->method);
        sanitize(msg->target, c->path, sizeof c->path);

        if (c->pool == POOL_OVERFLOW) {
                r = mef_response_error(503, 5000, "overloaded: retry later", &resp);
                resp.retry_after = s->cfg->retry_after;
        } else if (!c->psk_identity && !c->cert_fp[0])
                r = mef_response_error(403, 4103, "client certificate required", &resp);
        else {
                r = conn_submit(c, msg);
                if (r >= 0) {
                        erase(c->ekm, sizeof c->ekm);
                        return 0;
                }
                if (r == -EAGAIN) {
                        /* every store thread busy and the queue full */
                        r = mef_response_error(503, 5000, "store busy: retry later", &resp);
                        resp.retry_after = s->cfg->retry_after;
                }
        }
        /* The EKM served its one purpose (an enrol's Ke). */
        erase(c->ekm, sizeof c->ekm);
        if (r < 0)
                return r;
        return conn_answer(c, &resp, http_msg_header(msg, "X-M2M-RI"));
}

/* Grow the input buffer by moving it: the old copy is wiped, not left to realloc. */
static int conn_grow_input(conn_t *c) {
        size_t n = MIN(MAX((size_t) INPUT_INITIAL, c->in_size * 2), (size_t) INPUT_MAX);
        uint8_t *p = malloc(n);
        if (!p)
                return -ENOMEM;
        if (c->in) {
                memcpy(p, c->in, c->in_len);
                erase(c->in, c->in_size);
                free(c->in);
        }
        c->in = p;
        c->in_size = n;
        return 0;
}

/* 1: moved on to writing; 0: waiting for input; <0: close. */
static int conn_read(conn_t *c) {
        for (;;) {
                if (c->in_len == c->in_size) {
                        if (c->in_size >= INPUT_MAX)
                                return conn_answer_error(c, 413, 4000, "request too large");
                        int r = conn_grow_input(c);
                        if (r < 0)
                                return r;
                }
                ssize_t n = tls_conn_read(c->tls, c->in + c->in_len, MIN((size_t) READ_CHUNK, c->in_size - c->in_len));
                if (n == -EAGAIN)
                        return 0;
                if (n < 0) {
                        conn_note(c, LOGBOOK_REQUEST_FAILED, LOG_WARNING, "reading the request: %s",
                                  tls_error_str((int) n));
                        return (int) n;
                }
                if (n == 0) {
                        if (c->in_len > 0)
                                conn_note(c, LOGBOOK_REQUEST_FAILED, LOG_WARNING,
                                          "connection closed before a complete request (%zu bytes)", c->in_len);
                        return -EPIPE;
                }
                c->in_len += (size_t) n;

                http_msg_t msg = {};
                int r = http_parse(&c->parser, c->in, c->in_len, &msg);
                if (r == 0)
                        continue;
                if (r == -EFBIG)
                        return conn_answer_error(c, 413, 4000, "request body over 64 KiB");
                if (r == -EMSGSIZE)
                        return conn_answer_error(c, 431, 4000,
                                                 "request head over 8 KiB, over 64 headers or target too long");
                if (r < 0)
                        return conn_answer_error(c, 400, 4000, "malformed HTTP request");
                r = conn_handle(c, &msg);
                http_msg_done(&msg);
                return r;
        }
}

/* 1: everything sent, lingering; 0: waiting; <0: close. */
static int conn_write(conn_t *c) {
        while (c->out_pos < c->out_len) {
                ssize_t n = tls_conn_write(c->tls, c->out + c->out_pos, c->out_len - c->out_pos);
                if (n == -EAGAIN)
                        return 0;
                if (n <= 0) {
                        conn_note(c, LOGBOOK_REQUEST_FAILED, LOG_WARNING, "writing the response: %s",
                                  tls_error_str(n < 0 ? (int) n : -EPIPE));
                        return n < 0 ? (int) n : -EPIPE;
                }
                c->out_pos += (size_t) n;
        }
        conn_log_exchange(c);
        erase(c->out, c->out_len);
        free(c->out);
        c->out = NULL;
        c->out_len = c->out_pos = 0;

        tls_conn_shutdown(c->tls);
        (void) shutdown(c->fd, SHUT_WR);
        int r = conn_enter_linger(c);
        if (r < 0)
                return r;
        if (c->deadline > now_usec() + LINGER_USEC)
                conn_set_deadline(c, LINGER_USEC);
        return 1;
}

/* Discard what the client still sends until it closes. 0: waiting; <0: done, close. */
static int conn_linger(conn_t *c) {
        uint8_t buf[4096];
        for (size_t total = 0; total < LINGER_DRAIN_MAX;) {
                ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
                if (n > 0) {
                        total += (size_t) n;
                        continue;
                }
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                        return 0;
                return -ECONNRESET; /* EOF or error: done */
        }
        return 0;
}

/* After the handshake: the exporter output and who the peer is. <0: close. */
static int conn_identify(conn_t *c) {
        int r = tls_conn_export(c->tls, KDF_EXPORTER_LABEL, c->ekm, KDF_EKM_LEN);
        if (r < 0) {
                log_warning("%s: cannot export keying material: %s", c->addr, strerror(-r));
                return r;
        }
        c->psk_identity = tls_conn_psk_identity(c->tls);
        if (!c->psk_identity && tls_conn_peer_fingerprint(c->tls, c->cert_fp) < 0)
                c->cert_fp[0] = 0; /* answered 403 once its request is read: stays unauthenticated */
        if (conn_authenticated(c)) {
                /* Served from max_connections, which no unauthenticated connection takes. */
                server_t *s = c->server;
                conn_pool_leave(c);
                if (s->n_serving < s->max_serving) {
                        c->pool = POOL_SERVING;
                        s->n_serving++;
                } else {
                        c->pool = POOL_OVERFLOW;
                        s->n_overflow++;
                        conn_note(c, LOGBOOK_OVERLOADED, LOG_WARNING, "overloaded (%u in service): will answer 503",
                                  s->n_serving);
                }
                server_update_accept(s);
        }
        c->phase = CONN_READ;
        conn_set_deadline(c, c->server->cfg->request_timeout_usec);
        return 1;
}

static void conn_wait(conn_t *c) {
        if (c->phase == CONN_STORE) {
                /* TLS holds what the client may still send: read it after the answer. */
                if (sd_event_source_set_enabled(c->io, SD_EVENT_OFF) < 0)
                        conn_free(c);
                return;
        }
        uint32_t events = EPOLLIN;
        if (c->phase != CONN_LINGER && tls_conn_want(c->tls) == POLLOUT)
                events = EPOLLOUT;
        if (sd_event_source_set_io_events(c->io, events) < 0)
                conn_free(c);
}

static void conn_step(conn_t *c) {
        for (;;) {
                int r;
                switch (c->phase) {
                case CONN_HANDSHAKE:
                        r = tls_conn_handshake(c->tls);
                        if (c->admission.idle && tls_conn_bytes_received(c->tls) > 0) {
                                /* under way: the whole handshake deadline now */
                                admission_mark_active(&c->admission);
                                conn_set_deadline_at(c, c->started + c->server->handshake_usec);
                        }
                        if (r == -EAGAIN)
                                r = 0;
                        else if (r == -ECONNRESET || r == -EPIPE) {
                                /* connect-and-close (port scans, health checks): not a problem */
                                mef_metrics_failure(c->server->metrics, MEF_FAIL_CLOSED);
                                conn_note(c, LOGBOOK_CLOSED, LOG_INFO, "closed during the TLS handshake");
                        } else if (r < 0) {
                                mef_metrics_failure(c->server->metrics, r == -EACCES  ? MEF_FAIL_AUTH
                                                                        : r == -EPROTO ? MEF_FAIL_PROTOCOL
                                                                                       : MEF_FAIL_HANDSHAKE_OTHER);
                                conn_note(c, LOGBOOK_HANDSHAKE_FAILED, LOG_WARNING, "TLS handshake failed: %s%s%s",
                                          tls_error_str(r), c->identity_tried[0] ? ", identity " : "",
                                          c->identity_tried);
                                /* Linger so the client reads our alert: a TLS 1.3 client whose
                                 * certificate we refused has already sent its Finished, and an
                                 * abrupt close would turn the alert into a reset (transient). */
                                (void) shutdown(c->fd, SHUT_WR);
                                r = conn_enter_linger(c);
                                if (r >= 0)
                                        conn_set_deadline(c, LINGER_USEC);
                        } else
                                r = conn_identify(c);
                        break;
                case CONN_READ:
                        r = conn_read(c);
                        break;
                case CONN_STORE:
                        r = 0;
                        break;
                case CONN_WRITE:
                        r = conn_write(c);
                        break;
                case CONN_LINGER:
                        r = conn_linger(c);
                        break;
                default:
                        r = -EINVAL;
                }
                if (r < 0) {
                        conn_free(c);
                        return;
                }
                if (r == 0) {
                        conn_wait(c);
                        return;
                }
        }
}

static int on_conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        conn_step(userdata);
        return 0;
}

/* A request still queued when the store may no longer keep it waiting (every store thread held
 * up by a slow disk or a database gone silent): 503 now. 1: answered; 0: a thread has it. */
static int conn_store_overdue(conn_t *c) {
        server_t *s = c->server;
        if (!c->job || store_queue_cancel(s->queue, &c->job->job) < 0)
                return 0;
        exchange_job_t *j = TAKE_PTR(c->job);
        mef_response_t resp;
        int r = mef_response_error(503, 5000, "store busy: retry later", &resp);
        if (r >= 0) {
                resp.retry_after = s->cfg->retry_after;
                r = conn_answer(c, &resp, http_msg_header(&j->msg, "X-M2M-RI"));
        }
        exchange_job_free(j);
        conn_set_deadline_at(c, c->deadline);
        if (r < 0 || sd_event_source_set_enabled(c->io, SD_EVENT_ON) < 0) {
                conn_free(c);
                return 1;
        }
        conn_step(c);
        return 1;
}

static int on_conn_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        conn_t *c = userdata;
        server_t *s = c->server;
        if (c->phase == CONN_STORE && now_usec() < c->deadline) {
                if (conn_store_overdue(c) == 0)
                        conn_set_deadline_at(c, c->deadline); /* being run: the request's own deadline */
                return 0;
        }
        switch (c->phase) {
        case CONN_HANDSHAKE: {
                uint64_t got = tls_conn_bytes_received(c->tls);
                mef_metrics_failure(s->metrics, got == 0 ? MEF_FAIL_NO_CLIENT_HELLO : MEF_FAIL_HANDSHAKE_TIMEOUT);
                if (got == 0)
                        conn_note(c, LOGBOOK_TIMEOUT, LOG_INFO,
                                  "timed out waiting for a ClientHello (nothing within %llu ms)",
                                  (unsigned long long) (MIN(s->first_byte_usec, s->handshake_usec) / 1000u));
                else
                        conn_note(c, LOGBOOK_TIMEOUT, LOG_WARNING, "timed out TLS handshake (%llu bytes received)",
                                  (unsigned long long) got);
                break;
        }
        case CONN_READ:
                mef_metrics_failure(s->metrics, MEF_FAIL_REQUEST_TIMEOUT);
                conn_note(c, LOGBOOK_TIMEOUT, LOG_WARNING, "timed out reading the request (%zu bytes received)",
                          c->in_len);
                break;
        case CONN_STORE:
                mef_metrics_failure(s->metrics, MEF_FAIL_REQUEST_TIMEOUT);
                conn_note(c, LOGBOOK_TIMEOUT, LOG_WARNING, "timed out waiting for the store");
                break;
        case CONN_WRITE:
                mef_metrics_failure(s->metrics, MEF_FAIL_REQUEST_TIMEOUT);
                conn_note(c, LOGBOOK_TIMEOUT, LOG_WARNING, "timed out writing the response (%zu of %zu bytes sent)",
                          c->out_pos, c->out_len);
                break;
        case CONN_LINGER:
                break;
        }
        conn_free(c);
        return 0;
}

/* Room in the unauthenticated pool for a connection from src: older unauthenticated ones go. */
static void server_make_room(server_t *s, const source_key_t *src) {
        admission_entry_t *e;
        while ((e = admission_victim(s->unauth, src, now_usec()))) {
                conn_t *v = (conn_t *) ((char *) e - offsetof(conn_t, admission));
                unsigned same = admission_count_source(s->unauth, &v->source);
                mef_metrics_failure(s->metrics, MEF_FAIL_EVICTED);
                conn_note(v, LOGBOOK_EVICTED, LOG_INFO,
                          "closed after %llu ms %s to make room (%u unauthenticated connections, %u from %s)",
                          (unsigned long long) ((now_usec() - v->started) / 1000u),
                          e->idle ? "without a byte" : "in the handshake", admission_count(s->unauth), same,
                          v->source_name);
                conn_free(v);
        }
}

static void conn_new(server_t *s, int fd, const struct sockaddr_storage *sa) {
        source_key_t src;
        source_key_from_sockaddr(sa, &src);
        server_make_room(s, &src);

        conn_t *c = calloc(1, sizeof *c);
        if (!c) {
                close(fd);
                return;
        }
        c->server = s;
        c->fd = fd;
        c->started = now_usec();
        c->source = src;
        addr_format(sa, c->addr, sizeof c->addr);
        source_key_format(&src, c->source_name, sizeof c->source_name);
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->pool = POOL_UNAUTHENTICATED;
        if (admission_add(s->unauth, &c->admission, &src, c->started) < 0) {
                free(c); /* cannot happen: room was made */
                close(fd);
                return;
        }
        c->next = s->conns;
        if (s->conns)
                s->conns->prev = c;
        s->conns = c;
        mef_metrics_connections(s->metrics, +1);

        int r = tls_conn_new_server(s->tls, fd, &c->tls);
        if (r >= 0) {
                tls_conn_set_userdata(c->tls, c); /* psk_lookup keeps the node in c */
                r = sd_event_add_io(s->event, &c->io, fd, EPOLLIN, on_conn_io, c);
        }
        if (r >= 0)
                r = sd_event_add_time(s->event, &c->timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC,
                                      on_conn_timer, c);
        if (r < 0) {
                log_warning("%s: cannot set up the connection: %s", c->addr, strerror(-r));
                conn_free(c);
                return;
        }
        /* The first byte of the ClientHello soon; then the whole handshake from accept. */
        conn_set_deadline_at(c, c->started + MIN(s->first_byte_usec, s->handshake_usec));
        conn_step(c);
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        server_t *s = userdata;

        for (int i = 0; i < ACCEPT_BATCH; i++) {
                if (!server_has_slot(s))
                        break;
                struct sockaddr_storage sa = {};
                socklen_t salen = sizeof sa;
                int cfd = accept4(s->listen_fd, (struct sockaddr *) &sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM)
                                continue;
                        /* Out of fds or memory: the listen socket stays readable, so pause
                         * instead of spinning. */
                        uint64_t now = now_usec();
                        if (s->backoff_logged == 0 || now - s->backoff_logged >= PAUSE_LOG_USEC) {
                                s->backoff_logged = now;
                                log_warning("accept: %m: pausing for %u ms", ACCEPT_RETRY_USEC / 1000u);
                        }
                        s->accept_backoff = true;
                        if (sd_event_source_set_time_relative(s->accept_retry, ACCEPT_RETRY_USEC) >= 0)
                                (void) sd_event_source_set_enabled(s->accept_retry, SD_EVENT_ONESHOT);
                        break;
                }
                conn_new(s, cfd, &sa);
        }
        server_update_accept(s);
        return 0;
}

/* ---- setup ---- */

/* userdata: the conn_t (tls_conn_set_userdata). */
static unsigned psk_lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max) {
        conn_t *c = userdata;
        if (!c)
                return 0;
        server_t *s = c->server;
        uint8_t buf[MSG_KEY_MAX];
        size_t len = 0;
        unsigned ret = 0;

        /* Cert-mode nodes have an empty KpmID: an empty identity must never match them. */
        if (!identity || !*identity)
                return 0;
        /* for the log when the handshake fails: identities are not secret */
        sanitize(identity, c->identity_tried, sizeof c->identity_tried);
        /* Nodes first: a name used both as a KpmID and a target PSK identity is a node's. */
        store_node_t node;
        int r = store_node_by_kpm_id(s->store, identity, &node, buf, &len);
        c->has_node = r >= 0;
        if (c->has_node)
                c->node = node;
        if (r < 0 && !store_error_is_transient(r)) {
                store_target_t target;
                len = 0;
                r = store_target_by_psk_id(s->store, identity, &target, buf, &len);
        }
        if (r >= 0)
                psk_cache_put(s->psks, identity, buf, len, now_usec());
        else if (store_error_is_transient(r))
                /* the store is away: a PSK it gave before completes the handshake, and the
                 * request that follows is answered 503 (the handlers need the store) */
                len = psk_cache_get(s->psks, identity, buf, now_usec());
        else
                psk_cache_drop(s->psks, identity);
        if (len > 0 && len <= key_max && len <= sizeof buf) {
                memcpy(key, buf, len);
                ret = (unsigned) len;
        }
        erase(buf, sizeof buf);
        return ret;
}

/* Every connection the limits allow must find an fd: raise the soft limit towards the hard one
 * (systemd's default soft limit is 1024). Failing that, accept pauses on EMFILE as before. */
static void raise_fd_limit(unsigned need) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
                return;
        rlim_t want = rl.rlim_max == RLIM_INFINITY ? need : MIN((rlim_t) need, rl.rlim_max);
        if (want > rl.rlim_cur) {
                rl.rlim_cur = want;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
        if (want < need)
                log_warning("open file limit %llu is below the %u that the connection limits may need",
                            (unsigned long long) want, need);
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        log_info("received %s: stopping", strsignal((int) si->ssi_signo));
        return sd_event_exit(sd_event_source_get_event(src), 0);
}

static void server_done(server_t *s) {
        while (s->conns)
                conn_free(s->conns);
        s->retention = retention_free(s->retention);
        s->queue = store_queue_free(s->queue); /* waits for the requests under way */
        s->psks = psk_cache_free(s->psks);
        s->accept_source = sd_event_source_disable_unref(s->accept_source);
        s->accept_retry = sd_event_source_disable_unref(s->accept_retry);
        if (s->logbook) {
                logbook_stats_t st;
                logbook_drain(s->logbook, now_usec()); /* say what was counted and not yet said */
                logbook_get_stats(s->logbook, &st);
                if (st.aggregated > 0)
                        log_info("%llu connection failures were counted in log summaries rather than logged each",
                                 (unsigned long long) st.aggregated);
                s->logbook = logbook_free(s->logbook);
        }
        s->logbook_timer = sd_event_source_disable_unref(s->logbook_timer);
        s->trim_timer = sd_event_source_disable_unref(s->trim_timer);
        s->unauth = admission_free(s->unauth);
        s->metrics_http = metrics_http_free(s->metrics_http);
        s->enrol_limit = ratelimit_free(s->enrol_limit);
        if (s->listen_fd >= 0)
                close(s->listen_fd);
        s->listen_fd = -1;
        s->tls = tls_ctx_free(s->tls);
        s->event = sd_event_unref(s->event);
}

static int server_setup(server_t *s, char *err, size_t err_size) {
        const mef_config_t *cfg = s->cfg;
        int r;

        tls_config_t tc = {
                .mode = cfg->cert_file ? TLS_MODE_CERT : TLS_MODE_PSK,
                .min_version = cfg->tls_min,
                .psk_lookup = psk_lookup,
                .psk_userdata = NULL, /* each connection sets its own */
                .cert_file = cfg->cert_file,
                .key_file = cfg->key_file,
                .ca_file = cfg->client_ca_file,
        };
        r = tls_ctx_new_server(&tc, &s->tls);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up TLS%s%s: %s", cfg->cert_file ? " with " : "",
                         cfg->cert_file ? cfg->cert_file : "", strerror(-r));
                return r;
        }

        /* with workers, each has its own socket on the address (mef/workers.c) */
        r = mef_listen(cfg->listen_host, cfg->listen_port, cfg->listen_backlog, cfg->workers != 1, &s->listen_fd, err,
                       err_size);
        if (r < 0)
                return r;

        r = admission_new(cfg->max_unauthenticated,
                          MIN(cfg->max_unauthenticated_per_source, cfg->max_unauthenticated), IDLE_GRACE_USEC,
                          &s->unauth);
        if (r >= 0 && cfg->enrolments_per_node > 0)
                r = ratelimit_new(cfg->enrolments_per_node, (uint64_t) cfg->enrolment_window_s * 1000000u,
                                  ENROL_LIMIT_NODES, &s->enrol_limit);
        if (r >= 0)
                r = logbook_new(NULL, logbook_sink, s, &s->logbook);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up the connection pools: %s", strerror(-r));
                return r;
        }

        r = sd_event_new(&s->event);
        if (r >= 0)
                r = sd_event_add_io(s->event, &s->accept_source, s->listen_fd, EPOLLIN, on_accept, s);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->accept_retry, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC,
                                      on_accept_retry, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->accept_retry, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->logbook_timer, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC,
                                      on_logbook_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->logbook_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time(s->event, &s->trim_timer, CLOCK_MONOTONIC, 0, 100u * 1000u, on_trim_timer, s);
        if (r >= 0)
                r = sd_event_source_set_enabled(s->trim_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_signal(s->event, NULL, SIGTERM, on_signal, s);
        if (r >= 0)
                r = sd_event_add_signal(s->event, NULL, SIGINT, on_signal, s);
        if (r >= 0)
                r = sd_event_set_watchdog(s->event, true);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up the event loop: %s", strerror(-r));
                return r;
        }

        /* The loop's own store connection only looks up PSKs in handshakes: reads, which a
         * writer's lock does not hold up in WAL mode; bounded all the same. */
        r = store_set_busy_timeout(s->store, (unsigned) MIN(cfg->store_busy_timeout_usec / 1000u, (usec_t) LOOP_BUSY_TIMEOUT_MS));
        if (r >= 0)
                r = psk_cache_new(&s->psks);
        if (r >= 0)
                r = store_queue_new(s->event, cfg, cfg->store_threads, s->max_serving, (unsigned) (cfg->store_busy_timeout_usec / 1000u),
                                    &s->queue);
        if (r < 0) {
                snprintf(err, err_size, "cannot open the store's connections for its %u threads: %s",
                         cfg->store_threads, strerror(-r));
                return r;
        }
        if (cfg->audit_keep_usec > 0) {
                r = retention_new(s->event, s->queue, cfg->audit_keep_usec, &s->retention);
                if (r < 0) {
                        snprintf(err, err_size, "cannot set up pruning: %s", strerror(-r));
                        return r;
                }
        }
        if (cfg->metrics_host && s->metrics) {
                r = metrics_http_new(s->event, cfg->metrics_host, cfg->metrics_port, s->metrics, s->queue,
                                     &s->metrics_http, err, err_size);
                if (r < 0)
                        return r;
        }
        s->accept_on = true;
        return 0;
}

int mef_server_run(const mef_config_t *cfg, mef_store_t *store, mef_metrics_t *metrics, char *err,
                   size_t err_size) {
        if (!cfg || !store || !err || err_size == 0)
                return -EINVAL;
        err[0] = 0;

        server_t s = {
                .cfg = cfg,
                .store = store,
                .metrics = metrics,
                .listen_fd = -1,
                .max_serving = MAX(cfg->max_connections, 1u),
                .max_overflow = cfg->max_connections / 4 + 4,
                .max_lingering = MAX(cfg->max_connections, 1u),
                .first_byte_usec = cfg->first_byte_timeout_usec,
                .handshake_usec = cfg->handshake_timeout_usec,
                .busy_usec = cfg->store_busy_timeout_usec,
        };
        sigset_t mask, old;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        /* sd-event takes these through a signalfd: they must be blocked. */
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0) {
                snprintf(err, err_size, "cannot block signals: %m");
                return negative_errno();
        }
        /* wolfSSL may write to a socket the peer closed. */
        signal(SIGPIPE, SIG_IGN);

        raise_fd_limit(s.max_serving + s.max_overflow + s.max_lingering + cfg->max_unauthenticated + FD_SPARE);
        int r = server_setup(&s, err, err_size);
        if (r >= 0) {
                unsigned port = mef_listen_port(s.listen_fd);
                const char *host = cfg->listen_host && *cfg->listen_host ? cfg->listen_host : "*";
                bool v6 = strchr(host, ':') != NULL;
                log_event(&(mef_log_fields_t) { .message_id = MEF_MESSAGE_STARTED }, LOG_INFO,
                          "listening on %s%s%s:%u (%s mode, TLS >= 1.%d, %u connections + %u overflow, "
                         "%u unauthenticated, %u per source, backlog %u)",
                         v6 ? "[" : "", host, v6 ? "]" : "", port, cfg->cert_file ? "psk+cert" : "psk",
                         cfg->tls_min == TLS_VERSION_1_3 ? 3 : 2, s.max_serving, s.max_overflow,
                         cfg->max_unauthenticated, MIN(cfg->max_unauthenticated_per_source, cfg->max_unauthenticated),
                         cfg->listen_backlog);
                unsigned long long somaxconn = 0;
                _cleanup_fclose_ FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
                if (f && fscanf(f, "%llu", &somaxconn) == 1 && somaxconn < cfg->listen_backlog)
                        log_info("listen_backlog %u is capped at net.core.somaxconn = %llu", cfg->listen_backlog,
                                 somaxconn);
                if (cfg->listen_port && streq(cfg->listen_port, "0")) {
                        /* Port chosen by the kernel: tell whoever started us (tests). */
                        printf("listening on %s%s%s:%u\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
                        fflush(stdout);
                }
                if (s.metrics_http) {
                        const char *mh = cfg->metrics_host;
                        bool mv6 = strchr(mh, ':') != NULL;
                        unsigned mport = metrics_http_port(s.metrics_http);
                        log_info("metrics on http://%s%s%s:%u/metrics", mv6 ? "[" : "", mh, mv6 ? "]" : "", mport);
                        if (streq(cfg->metrics_port, "0")) {
                                printf("metrics on %s%s%s:%u\n", mv6 ? "[" : "", mh, mv6 ? "]" : "", mport);
                                fflush(stdout);
                        }
                }
                (void) sd_notify(0, "READY=1\nSTATUS=Serving");
                r = sd_event_loop(s.event);
                (void) sd_notify(0, "STOPPING=1");
                if (r < 0)
                        snprintf(err, err_size, "event loop failed: %s", strerror(-r));
        }
        server_done(&s);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return r < 0 ? r : 0;
}

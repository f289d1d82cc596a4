/* SPDX-License-Identifier: MIT */
#pragma once
/* A TLS listener on the server's sd-event loop and its connections: accept, admission, the
 * handshake, one request read under the HTTP limits, the answer written, the linger, a
 * deadline on each phase and the pools bounding how many are open (mef/server.c says which).
 * What a request means is the listener's ops: the gateways' port (mef/server-exchange.c) and
 * the admin API (mef/admin.c) share everything else. Private to msce-mef's server. */

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "util/util.h"

#include "keys/kdf.h"
#include "mef/accept-pause.h"
#include "mef/admission.h"
#include "mef/logbook.h"
#include "mef/metrics.h"
#include "mef/node-count.h"
#include "mef/store-queue.h"
#include "mef/store.h"
#include "proto/http.h"
#include "proto/tls.h"
#include "proto/tls-hello.h"

#define CONN_LOG_PATH_MAX 96u
#define CONN_IDENTITY_LOG_MAX 64u
#define CONN_NODE_KEY_MAX (8u + TLS_HELLO_IDENTITY_MAX + 1u) /* "psk:ID", "cert:FP" */
#define CONN_TIMER_ACCURACY_USEC (10u * 1000u)
/* After the answer, read and discard what the client still sends for at most this long. */
#define CONN_LINGER_USEC (1000u * 1000u)
/* A source over its unauthenticated bound gives up connections silent for this long. */
#define CONN_IDLE_GRACE_USEC (250u * 1000u)

/* A CLOCK_MONOTONIC timer that starts disabled: armed later with sd_event_source_set_time()
 * and SD_EVENT_ONESHOT. */
static inline int conn_timer_add_disabled(sd_event *e, sd_event_source **ret, uint64_t accuracy,
                                          sd_event_time_handler_t handler, void *userdata) {
        int r = sd_event_add_time(e, ret, CLOCK_MONOTONIC, 0, accuracy, handler, userdata);
        return r < 0 ? r : sd_event_source_set_enabled(*ret, SD_EVENT_OFF);
}

typedef struct listener listener_t;
typedef struct conn conn_t;
typedef struct conn_job conn_job_t;
typedef struct conn_ahead conn_ahead_t;

typedef enum conn_phase {
        CONN_HANDSHAKE,
        CONN_AHEAD, /* in the handshake, a store thread looks up the PSK identity offered */
        CONN_READ,
        CONN_STORE, /* a store thread handles the request: no I/O meanwhile */
        CONN_WRITE,
        CONN_LINGER,
} conn_phase_t;

/* Which count a connection is in. */
typedef enum conn_pool {
        POOL_UNAUTHENTICATED, /* in listener.unauth (admission) */
        POOL_SERVING,         /* n_serving */
        POOL_OVERFLOW,        /* n_overflow: answered 503 */
        POOL_LINGER,          /* n_lingering */
} conn_pool_t;

typedef struct listener_ops {
        /* After the handshake: who the peer is (c->authenticated and what handle needs). <0: close. */
        int (*identify)(conn_t *c);
        /* A complete request: 1 answered (conn_answer), 0 handed to a store thread
         * (conn_submit), <0 close. The message may be moved out. */
        int (*handle)(conn_t *c, http_msg_t *msg);
        /* An error found before or around handle (400, 413, 431, 503): conn_answer() it. */
        int (*answer_error)(conn_t *c, int status, const char *reason, const char *request_id);
        /* The answer is out: metrics and the log line. */
        void (*log_exchange)(const conn_t *c);
        /* The peer for a log line: "psk:ID", "cert:FP", "api:CN" or "-". */
        const char *(*peer_name)(const conn_t *c, char *buf, size_t size);
        /* Before wolfSSL reads the ClientHello, the first PSK identity it offers
         * (proto/tls-hello.h), when listener.lookup_ahead: 1 when its lookup went to a store
         * thread (conn_submit_ahead()), 0 to go on without. */
        int (*lookup_ahead)(conn_t *c, const char *identity);
        /* After identify: the node identity c counts under against listener.per_node, written
         * to buf; NULL when c is not capped (a target, no credential). */
        const char *(*node_key)(const conn_t *c, char *buf, size_t size);
} listener_ops_t;

struct listener {
        const listener_ops_t *ops;
        void *userdata;                   /* the ops' own (server_t, admin_t) */
        const char *name;                 /* for log lines: "" (the gateways' port) or "admin" */
        sd_event *event;
        const mef_config_t *cfg;
        mef_metrics_t *metrics;           /* NULL: not counted */
        store_queue_t *queue;
        logbook_t *logbook;               /* shared; its timer is armed through logbook_timer */
        sd_event_source *logbook_timer;   /* not owned */
        sd_event_source *accept_source;
        accept_pause_t accept_pause; /* out of fds or memory: accept off for a while */
        int listen_fd;
        tls_ctx_t *tls;
        conn_t *conns;
        admission_t *unauth;
        unsigned max_serving, max_overflow;
        unsigned n_serving, n_overflow;
        unsigned n_lingering, max_lingering;
        unsigned per_node;                /* connections_per_node; 0: no cap */
        /* with per_node and ops->node_key (listener_start()): each node's connections in
         * service or overflow */
        node_count_t *node_counts;
        uint64_t first_byte_usec, handshake_usec, request_usec;
        uint64_t busy_usec; /* a request queued for longer than the store may wait: 503 */
        bool accept_on;
        /* ops->lookup_ahead for each handshake: where a lookup is a round trip to a database, so
         * that the loop does not wait for it */
        bool lookup_ahead;
        uint64_t pause_logged;
        void (*idle)(listener_t *l); /* the last connection closed; NULL: nothing to do */
};

struct conn {
        listener_t *listener;
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
        char identity_tried[CONN_IDENTITY_LOG_MAX + 1]; /* last PSK identity looked up, sanitized */
        bool authenticated;               /* set by ops->identify */
        /* ops->node_key: counted against listener.per_node while in service or overflow */
        char node_key[CONN_NODE_KEY_MAX];
        bool node_counted;                /* in listener.node_counts under node_key */
        /* the gateways' port: the peer after the handshake */
        const char *psk_identity;         /* owned by tls */
        char cert_fp[STORE_FP_LEN + 1];   /* "" when none */
        uint8_t ekm[KDF_EKM_LEN];
        /* the node or target the PSK lookup found for this handshake: the handlers need not
         * look it up again */
        store_peer_t peer;
        uint64_t peer_read_usec; /* when that lookup read it (CLOCK_MONOTONIC) */
        /* that lookup failed (the database gone or busy) and the PSK came from the cache: the
         * request is answered 503 at once, never served with a key the store did not confirm */
        bool store_away;
        /* that lookup failed so and no PSK was cached, or failed for a fault of the store's
         * own (c->error says which): the handshake is refused with internal_error
         * (tls_conn_refuse_busy()), no credential was refused */
        bool store_refused;
        /* the admin API: the operator certificate's subject CN */
        char operator[CONN_IDENTITY_LOG_MAX + 1];
        /* request */
        uint8_t *in;
        size_t in_len, in_size;
        http_parser_t parser;
        /* response: may carry key bytes, wiped as soon as it is sent */
        uint8_t *out;
        size_t out_len, out_pos;
        /* for the exchange log line */
        char method[8];
        char path[CONN_LOG_PATH_MAX + 1];
        int status;
        mef_exchange_t exchange;
        char node_id[MSG_ID_MAX + 1];
        char ke_id[MSG_KEID_MAX + 1];
        const char *failed; /* the internal failure behind a 5xx (static text), and its errno */
        int error;
        store_reason_t reason; /* the store's for it (store_error_reason()), or text "" */
        unsigned audit_folded; /* a refusal not audited: mef_response_t.audit_folded */
        conn_job_t *job;                  /* while CONN_STORE */
        conn_ahead_t *ahead;              /* from CONN_AHEAD until the PSK callback takes it */
        bool ahead_tried;                 /* the ClientHello was looked at */
};

/* A request on its way through a store thread. It owns copies of all it needs, so that the
 * connection may go (deadline, eviction, shutdown) while a thread still works on it. The
 * listener's job types embed it first. */
struct conn_job {
        store_job_t job;
        conn_t *conn;                     /* NULL once the connection is gone */
        http_msg_t msg;
        /* Back in the loop, the connection still there: answer what run() made of it. */
        int (*answer)(conn_job_t *j, conn_t *c);
        void (*free)(conn_job_t *j);
};

/* A PSK identity looked up ahead of the handshake, the start of a listener's zeroed type. It
 * outlives the connection while a thread still runs it. */
struct conn_ahead {
        store_job_t job;
        conn_t *conn;                     /* NULL once the connection is gone */
        bool done;                        /* result is set: run() returned it, or -ETIME */
        int result;
        void (*free)(conn_ahead_t *a);
};

/* Sets up l (its fields filled by the caller: ops, event, cfg, limits, tls, listen_fd) on its
 * event loop. */
int listener_start(listener_t *l);
/* Closes every connection and the sources; not the TLS context or the socket. */
void listener_stop(listener_t *l);
void listener_logbook_arm(listener_t *l);

void conn_free(conn_t *c);
/* Sends out (len bytes, taken) with status; moves on to writing. 1. */
int conn_answer(conn_t *c, int status, uint8_t *out, size_t len);
/* Sets up j, the start of a listener's zeroed job: msg moves into it. */
void conn_job_init(conn_job_t *j, http_msg_t *msg, int (*run)(store_job_t *job, mef_store_t *store),
                   int (*answer)(conn_job_t *j, conn_t *c), void (*free_job)(conn_job_t *j));
/* Hands j (set up by conn_job_init()) to a store thread: 0, or -EAGAIN when the
 * queue is full (j untouched). A job that fails or waits past its deadline is answered 500 or
 * 503 through the listener's answer_error. */
int conn_submit(conn_t *c, conn_job_t *j);
/* Hands a (its job.run and free set) to a store thread for c's handshake, which waits for it
 * in CONN_AHEAD: 0, or -EAGAIN when the queue is full (a untouched). */
int conn_submit_ahead(conn_t *c, conn_ahead_t *a);
/* Back in the loop after a job: the connection goes on (r >= 0) or closes. */
void conn_resume(conn_t *c, int r);
/* A line about a connection that anyone reaching the port can cause, counted per source. */
void conn_note(const conn_t *c, logbook_kind_t kind, int priority, const char *fmt, ...) _printf_(4, 5);
/* What failed behind c's answer (static text), its negative errno and the store's reason for it
 * (store_error_reason(); NULL or text "": none), for its log line; set after the answer is made
 * (making it sets them from the response). */
static inline void conn_set_failure(conn_t *c, const char *what, int error, const store_reason_t *reason) {
        c->failed = what;
        c->error = error;
        c->reason = reason ? *reason : (store_reason_t) { .text = "" };
}
/* ": failed: strerror[, PostgreSQL said reason]" for the log line of an answer c->failed is
 * behind, else "" */
#define CONN_CAUSE_MAX (160u + STORE_REASON_MAX)
const char *conn_failure_cause(const conn_t *c, char *buf, size_t size);
const char *conn_tls_error_str(int r);

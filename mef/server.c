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
 * - Authenticated: at most connections_per_node of one node identity (mef/conn-node-cap.c:
 *   more are answered 503 right after the handshake, taking no slot; targets not capped), and
 *   at most max_connections in service. Up to max_connections/4 + 4 more are
 *   "overflow" (accept stops there; handshakes already under way may still land in it, so
 *   max_unauthenticated more at worst): once their request has been read (bounded by the
 *   same limits and deadlines),
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
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>

#include "mef/handlers.h"
#include "mef/listen.h"
#include "mef/log.h"
#include "mef/message-ids.h"
#include "mef/server-internal.h"
#include "mef/server.h"
#include "util/util.h"

/* Nodes the enrolment rate limit remembers at once (about 300 bytes each at most): past it,
 * the node whose window opened first is forgotten. */
#define ENROL_LIMIT_NODES 16384u
#define FD_SPARE 32u /* listen socket, store, event loop, logs */
/* Idle this long after the last connection: give the heap that a burst grew back. */
#define TRIM_USEC (1000u * 1000u)
#define LOOP_BUSY_TIMEOUT_MS 100u

/* ---- bounded logging (mef/logbook.h) ---- */

static void logbook_sink(void *userdata, int priority, const char *line) {
        if (priority <= LOG_WARNING)
                log_warning("%s", line);
        else
                log_info("%s", line);
}

static int on_logbook_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        server_t *s = userdata;
        logbook_stats_t st;
        logbook_flush(s->logbook, now_usec());
        listener_logbook_arm(&s->gateways);
        logbook_get_stats(s->logbook, &st);
        (void) sd_notifyf(0,
                          "STATUS=Serving: %u in service, %u unauthenticated; %llu failures counted in log summaries",
                          s->gateways.n_serving, admission_count(s->gateways.unauth),
                          (unsigned long long) st.aggregated);
        return 0;
}

/* Nothing open: once that has lasted TRIM_USEC, hand freed heap back (a flood of handshakes
 * grows it by megabytes that glibc would keep). */
static void on_gateways_idle(listener_t *l) {
        server_t *s = l->userdata;
        if (s->trim_timer && sd_event_source_set_time_relative(s->trim_timer, TRIM_USEC) >= 0)
                (void) sd_event_source_set_enabled(s->trim_timer, SD_EVENT_ONESHOT);
}

static int on_trim_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        server_t *s = userdata;
        if (!s->gateways.conns)
                (void) malloc_trim(0);
        return 0;
}

/* ---- setup ---- */

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
        s->admin = admin_free(s->admin);
        listener_stop(&s->gateways);
        s->retention = retention_free(s->retention);
        s->queue = store_queue_free(s->queue); /* waits for the requests under way */
        s->psks = psk_cache_free(s->psks);
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
        s->gateways.unauth = admission_free(s->gateways.unauth);
        s->metrics_http = metrics_http_free(s->metrics_http);
        s->enrol_limit = ratelimit_free(s->enrol_limit);
        s->refusal_audit = ratelimit_free(s->refusal_audit);
        if (s->gateways.listen_fd >= 0)
                close(s->gateways.listen_fd);
        s->gateways.listen_fd = -1;
        s->gateways.tls = tls_ctx_free(s->gateways.tls);
        s->event = sd_event_unref(s->event);
}

static int server_setup(server_t *s, char *err, size_t err_size) {
        const mef_config_t *cfg = s->cfg;
        listener_t *l = &s->gateways;
        int r;

        tls_config_t tc = {
                .mode = cfg->cert_file ? TLS_MODE_CERT : TLS_MODE_PSK,
                .min_version = cfg->tls_min,
                .psk_lookup = server_psk_lookup,
                .psk_userdata = NULL, /* each connection sets its own */
                .cert_file = cfg->cert_file,
                .key_file = cfg->key_file,
                .ca_file = cfg->client_ca_file,
        };
        r = tls_ctx_new_server(&tc, &l->tls);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up TLS%s%s: %s", cfg->cert_file ? " with " : "",
                         cfg->cert_file ? cfg->cert_file : "", strerror(-r));
                return r;
        }

        /* with workers, each has its own socket on the address (mef/workers.c) */
        r = mef_listen(cfg->listen_host, cfg->listen_port, cfg->listen_backlog, cfg->workers != 1, NULL, &l->listen_fd, err,
                       err_size);
        if (r < 0)
                return r;

        r = admission_new(cfg->max_unauthenticated,
                          MIN(cfg->max_unauthenticated_per_source, cfg->max_unauthenticated), CONN_IDLE_GRACE_USEC,
                          &l->unauth);
        if (r >= 0 && cfg->enrolments_per_node > 0)
                r = ratelimit_new(cfg->enrolments_per_node, (uint64_t) cfg->enrolment_window_s * 1000000u,
                                  ENROL_LIMIT_NODES, &s->enrol_limit);
        if (r >= 0)
                r = mef_refusal_audit_new(&s->refusal_audit);
        if (r >= 0)
                r = logbook_new(NULL, logbook_sink, s, &s->logbook);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up the connection pools: %s", strerror(-r));
                return r;
        }

        r = sd_event_new(&s->event);
        if (r >= 0)
                r = conn_timer_add_disabled(s->event, &s->logbook_timer, CONN_TIMER_ACCURACY_USEC, on_logbook_timer, s);
        if (r >= 0)
                r = conn_timer_add_disabled(s->event, &s->trim_timer, 100u * 1000u, on_trim_timer, s);
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

        store_reason_t why = { .text = "" }; /* the server's reason for a store connection refused */
        /* The loop's own store connection only looks up PSKs in handshakes: reads, which a
         * writer's lock does not hold up in WAL mode; bounded all the same. */
        r = store_set_busy_timeout(s->store, (unsigned) MIN(cfg->store_busy_timeout_usec / 1000u, (usec_t) LOOP_BUSY_TIMEOUT_MS));
        if (r >= 0)
                r = psk_cache_new(&s->psks);
        if (r >= 0)
                r = store_queue_new(s->event, cfg, cfg->store_threads, l->max_serving + ADMIN_QUEUE_EXTRA,
                                    (unsigned) (cfg->store_busy_timeout_usec / 1000u), &s->queue, &why);
        if (r < 0) {
                char said[STORE_SAID_MAX];
                store_said(said, sizeof said, r == -EUSERS ? STORE_TOO_MANY_HINT : strerror(-r), &why);
                snprintf(err, err_size, "cannot open the store's connections for its %u threads: %s",
                         cfg->store_threads, said);
                return r;
        }
        store_queue_set_metrics(s->queue, s->metrics);
        l->event = s->event;
        l->queue = s->queue;
        l->logbook = s->logbook;
        l->logbook_timer = s->logbook_timer;
        r = listener_start(l);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up the event loop: %s", strerror(-r));
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
                /* with workers both have SO_REUSEPORT: the kernel alone would let them share a port;
                 * a single process has it on neither, so that a second msce-mef cannot join it */
                const mef_listen_apart_t gateways = { l->listen_fd, "[server] listen" };
                r = metrics_http_new(s->event, cfg->metrics_host, cfg->metrics_port, cfg->workers != 1, &gateways, s->metrics, s->queue,
                                     &s->metrics_http, err, err_size);
                if (r < 0)
                        return r;
        }
        if (cfg->admin_host) {
                r = admin_new(s->event, cfg, s->queue, s->logbook, s->logbook_timer, &s->admin, err, err_size);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A second listener's line; "WHAT on HOST:PORT" on stdout too for a port the kernel chose:
 * whoever started us (tests) reads it. */
static void tell_port(const char *what, const char *url, const char *path, const char *host, const char *port_cfg,
                      unsigned port) {
        bool v6 = strchr(host, ':') != NULL;
        if (url)
                log_info("%s on %s://%s%s%s:%u%s", what, url, v6 ? "[" : "", host, v6 ? "]" : "", port, path);
        if (port_cfg && streq(port_cfg, "0")) {
                printf("%s on %s%s%s:%u\n", what, v6 ? "[" : "", host, v6 ? "]" : "", port);
                fflush(stdout);
        }
}

static void server_announce(const server_t *s) {
        const mef_config_t *cfg = s->cfg;
        const listener_t *l = &s->gateways;
        unsigned port = mef_listen_port(l->listen_fd);
        const char *host = cfg->listen_host && *cfg->listen_host ? cfg->listen_host : "*";
        bool v6 = strchr(host, ':') != NULL;
        log_event(&(mef_log_fields_t) { .message_id = MEF_MESSAGE_STARTED }, LOG_INFO,
                  "listening on %s%s%s:%u (%s mode, TLS >= 1.%d, %u connections + %u overflow, "
                  "%u unauthenticated, %u per source, backlog %u)",
                  v6 ? "[" : "", host, v6 ? "]" : "", port, cfg->cert_file ? "psk+cert" : "psk",
                  cfg->tls_min == TLS_VERSION_1_3 ? 3 : 2, l->max_serving, l->max_overflow, cfg->max_unauthenticated,
                  MIN(cfg->max_unauthenticated_per_source, cfg->max_unauthenticated), cfg->listen_backlog);
        unsigned long long somaxconn = 0;
        _cleanup_fclose_ FILE *f = fopen("/proc/sys/net/core/somaxconn", "re");
        if (f && fscanf(f, "%llu", &somaxconn) == 1 && somaxconn < cfg->listen_backlog)
                log_info("listen_backlog %u is capped at net.core.somaxconn = %llu", cfg->listen_backlog, somaxconn);
        tell_port("listening", NULL, NULL, host, cfg->listen_port, port);
        if (s->metrics_http)
                tell_port("metrics", "http", "/metrics", cfg->metrics_host, cfg->metrics_port,
                          metrics_http_port(s->metrics_http));
        if (s->admin)
                tell_port("admin", "https", "/admin/v1", cfg->admin_host, cfg->admin_port, admin_port(s->admin));
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
                .gateways = {
                        .ops = &server_exchange_ops,
                        .name = "",
                        .cfg = cfg,
                        .metrics = metrics,
                        .listen_fd = -1,
                        .max_serving = MAX(cfg->max_connections, 1u),
                        .max_overflow = cfg->max_connections / 4 + 4,
                        .max_lingering = MAX(cfg->max_connections, 1u),
                        .per_node = cfg->connections_per_node,
                        .first_byte_usec = cfg->first_byte_timeout_usec,
                        .handshake_usec = cfg->handshake_timeout_usec,
                        .request_usec = cfg->request_timeout_usec,
                        .busy_usec = cfg->store_busy_timeout_usec,
                        /* SQLite reads in microseconds where the loop is; a thread's hand-off
                         * would cost more than it saves */
                        .lookup_ahead = cfg->store_backend == STORE_BACKEND_POSTGRESQL,
                        .idle = on_gateways_idle,
                },
        };
        s.gateways.userdata = &s;
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

        const listener_t *l = &s.gateways;
        raise_fd_limit(l->max_serving + l->max_overflow + l->max_lingering + cfg->max_unauthenticated + FD_SPARE +
                       (cfg->admin_host ? ADMIN_FDS : 0));
        int r = server_setup(&s, err, err_size);
        if (r >= 0) {
                server_announce(&s);
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

/* SPDX-License-Identifier: MIT */
/* A scrape is small and rare: each connection reads one request head (at most HEAD_MAX
 * bytes, within DEADLINE_USEC), gets the whole answer written as the socket takes it, and is
 * closed. Beyond MAX_CONNS at once a new connection takes the place of the oldest one still
 * waiting for its request (one is closed unanswered when all are being answered), so the
 * metrics port can never take resources from the gateways' port, nor idle connections keep
 * scrapes out. The store's gauges are counted by a store
 * thread like any request's work (COUNT scans must not stall the loop); a store that does not
 * answer within GAUGES_WAIT_USEC leaves them out of that scrape, whether the job still waits for
 * a thread or a thread is held up running it (a database gone silent holds it for up to twice
 * the busy timeout, past the connection's deadline); either way the answer then has DEADLINE_USEC
 * of its own to be written in. Out of file descriptors or memory, accept
 * pauses as the gateways' does (mef/accept-pause.h) rather than spin on the readable socket. */
#include <sys/epoll.h>
#include <sys/socket.h>

#include "mef/accept-pause.h"
#include "mef/listen.h"
#include "mef/metrics-http.h"
#include "proto/http.h"
#include "util/list.h"
#include "util/time.h"
#include "util/util.h"

#define MAX_CONNS 4u
#define HEAD_MAX 4096u
#define DEADLINE_USEC (2u * 1000u * 1000u)
#define TIMER_ACCURACY_USEC (10u * 1000u)
#define GAUGES_WAIT_USEC (1000u * 1000u)

typedef struct mconn mconn_t;
typedef struct gauges_job gauges_job_t;

struct metrics_http {
        sd_event *event;
        sd_event_source *accept_source;
        accept_pause_t accept_pause; /* out of fds or memory: accept off for a while */
        int fd;
        mef_metrics_t *metrics;
        store_queue_t *queue;
        mconn_t *conns;
        unsigned n_conns;
};

struct mconn {
        metrics_http_t *h;
        mconn_t *prev, *next;
        int fd;
        sd_event_source *io, *timer;
        uint8_t in[HEAD_MAX];
        size_t in_len;
        http_parser_t parser;
        uint8_t *out;
        size_t out_len, out_pos;
        gauges_job_t *job; /* the store's gauges being counted */
};

struct gauges_job {
        store_job_t job;
        mconn_t *c; /* NULL once the connection is gone: done() only frees */
        store_counts_t counts;
};

static void mconn_drop_job(mconn_t *c) {
        gauges_job_t *j = TAKE_PTR(c->job);
        if (!j)
                return;
        if (store_queue_cancel(c->h->queue, &j->job) >= 0)
                free(j);
        else
                j->c = NULL; /* being run: its done() frees it */
}

static void mconn_free(mconn_t *c) {
        metrics_http_t *h = c->h;
        LIST_REMOVE(h->conns, c);
        h->n_conns--;
        mconn_drop_job(c);
        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->fd >= 0)
                close(c->fd);
        free(c->out);
        free(c);
}

static int answer(mconn_t *c, int status, const char *content_type, const char *body, size_t body_len) {
        const char *headers[] = { "Content-Type", content_type, "Connection", "close", NULL };
        int r = http_format_response(status, headers, body, body_len, &c->out, &c->out_len);
        if (r < 0)
                return r;
        c->out_pos = 0;
        r = sd_event_source_set_io_events(c->io, EPOLLOUT);
        return r < 0 ? r : sd_event_source_set_enabled(c->io, SD_EVENT_ON);
}

static int answer_metrics(mconn_t *c, const store_counts_t *gauges) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = mef_metrics_render(c->h->metrics, gauges, &text, &len);
        if (r < 0)
                return answer(c, 500, "text/plain", "cannot render metrics\n", 22);
        return answer(c, 200, "text/plain; version=0.0.4", text, len);
}

/* The answer, with DEADLINE_USEC from now to write it: the gauges may come (or be given up) just
 * before the time left for them runs out, and that timer must not cut the write short. */
static int answer_metrics_then_write(mconn_t *c, const store_counts_t *gauges) {
        int r = answer_metrics(c, gauges);
        if (r >= 0)
                r = sd_event_source_set_time_relative(c->timer, DEADLINE_USEC);
        return r < 0 ? r : sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static int gauges_run(store_job_t *job, mef_store_t *store) {
        gauges_job_t *j = (gauges_job_t *) job;
        return store_counts(store, (int64_t) time(NULL), &j->counts);
}

static void gauges_done(store_job_t *job, int r) {
        gauges_job_t *j = (gauges_job_t *) job;
        mconn_t *c = j->c;
        if (c) {
                c->job = NULL;
                if (answer_metrics_then_write(c, r >= 0 ? &j->counts : NULL) < 0)
                        mconn_free(c);
        }
        free(j);
}

static int respond(mconn_t *c, const http_msg_t *req) {
        metrics_http_t *h = c->h;
        if (!streq(req->target, "/metrics"))
                return answer(c, 404, "text/plain", "try /metrics\n", 13);
        if (!streq(req->method, "GET"))
                return answer(c, 405, "text/plain", "GET only\n", 9);
        if (!h->queue)
                return answer_metrics(c, NULL);
        gauges_job_t *j = calloc(1, sizeof *j);
        if (!j)
                return answer_metrics(c, NULL);
        j->job = (store_job_t) { .run = gauges_run, .done = gauges_done, .deadline = now_usec() + GAUGES_WAIT_USEC };
        j->c = c;
        if (store_queue_submit(h->queue, &j->job) < 0) {
                free(j);
                return answer_metrics(c, NULL); /* the store is saturated: counters only */
        }
        c->job = j;
        int r = sd_event_source_set_time_relative(c->timer, GAUGES_WAIT_USEC);
        return r < 0 ? r : sd_event_source_set_enabled(c->io, SD_EVENT_OFF); /* nothing more to read */
}

/* >0: keep going, 0: wait, <0: close. */
static int mconn_read(mconn_t *c) {
        if (c->in_len == sizeof c->in)
                return answer(c, 431, "text/plain", "request head too large\n", 23) < 0 ? -EIO : 1;
        ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - c->in_len, 0);
        if (n < 0)
                return errno == EAGAIN || errno == EINTR ? 0 : -errno;
        if (n == 0)
                return -ECONNRESET;
        c->in_len += (size_t) n;
        http_msg_t req = {};
        int r = http_parse(&c->parser, c->in, c->in_len, &req);
        if (r == 0)
                return 1;
        if (r < 0)
                r = answer(c, r == -EMSGSIZE ? 431 : 400, "text/plain", "bad request\n", 12);
        else {
                r = respond(c, &req);
                http_msg_done(&req);
        }
        return r < 0 ? r : 0;
}

static int on_mconn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        mconn_t *c = userdata;
        int r;
        if (!c->out) {
                while ((r = mconn_read(c)) > 0 && !c->out)
                        ;
                if (r < 0 || !c->out) {
                        if (r < 0)
                                mconn_free(c);
                        return 0;
                }
        }
        while (c->out_pos < c->out_len) {
                ssize_t n = send(c->fd, c->out + c->out_pos, c->out_len - c->out_pos, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EAGAIN || errno == EINTR)
                                return 0;
                        break;
                }
                c->out_pos += (size_t) n;
        }
        mconn_free(c);
        return 0;
}

static int on_mconn_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        mconn_t *c = userdata;
        if (c->job) {
                /* no gauges in time: the counters alone now */
                mconn_drop_job(c);
                if (answer_metrics_then_write(c, NULL) >= 0)
                        return 0;
        }
        mconn_free(c);
        return 0;
}

static void on_accept_resume(void *userdata) {
        metrics_http_t *h = userdata;
        (void) sd_event_source_set_enabled(h->accept_source, SD_EVENT_ON);
}

/* Frees the oldest connection still waiting for its request head, for a new one to take its
 * place: a scraper sends its request at once, so connections that hold a slot without one
 * would otherwise keep every scrape out. False when all are being answered. */
static bool mconn_evict_idle(metrics_http_t *h) {
        mconn_t *oldest = NULL;
        for (mconn_t *c = h->conns; c; c = c->next) /* newest first */
                if (!c->out && !c->job)
                        oldest = c;
        if (!oldest)
                return false;
        mconn_free(oldest);
        return true;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        metrics_http_t *h = userdata;
        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        accept_fail_t f = accept_pause_failed(&h->accept_pause, errno);
                        if (f == ACCEPT_SKIP)
                                continue;
                        /* Out of fds or memory: the scrape stays queued and the socket readable,
                         * so accept again only when the pause ends, not at once (a spin). */
                        if (f == ACCEPT_PAUSED)
                                (void) sd_event_source_set_enabled(h->accept_source, SD_EVENT_OFF);
                        return 0;
                }
                if (h->n_conns >= MAX_CONNS && !mconn_evict_idle(h)) {
                        close(cfd);
                        continue;
                }
                mconn_t *c = calloc(1, sizeof *c);
                if (!c) {
                        close(cfd);
                        continue;
                }
                c->h = h;
                c->fd = cfd;
                http_parser_init(&c->parser, HTTP_REQUEST);
                LIST_PREPEND(h->conns, c);
                h->n_conns++;
                int r = sd_event_add_io(h->event, &c->io, cfd, EPOLLIN, on_mconn_io, c);
                if (r >= 0)
                        r = sd_event_add_time_relative(h->event, &c->timer, CLOCK_MONOTONIC, DEADLINE_USEC,
                                                       TIMER_ACCURACY_USEC, on_mconn_timer, c);
                if (r < 0)
                        mconn_free(c);
        }
}

int metrics_http_new(sd_event *event, const char *host, const char *port, bool reuseport,
                     const mef_listen_apart_t *apart, mef_metrics_t *m, store_queue_t *queue, metrics_http_t **ret, char *err, size_t err_size) {
        metrics_http_t *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        *h = (metrics_http_t) {
                .event = sd_event_ref(event),
                .fd = -1,
                .metrics = m,
                .queue = queue,
        };
        int r = mef_listen(host, port, 16, reuseport, apart, &h->fd, err, err_size);
        if (r >= 0) {
                r = sd_event_add_io(event, &h->accept_source, h->fd, EPOLLIN, on_accept, h);
                if (r >= 0)
                        r = accept_pause_init(&h->accept_pause, event, "metrics", on_accept_resume, h);
                if (r < 0)
                        snprintf(err, err_size, "cannot watch the metrics socket: %s", strerror(-r));
        }
        if (r < 0) {
                metrics_http_free(h);
                return r;
        }
        *ret = h;
        return 0;
}

unsigned metrics_http_port(const metrics_http_t *h) {
        return h ? mef_listen_port(h->fd) : 0;
}

metrics_http_t *metrics_http_free(metrics_http_t *h) {
        if (!h)
                return NULL;
        while (h->conns)
                mconn_free(h->conns);
        h->accept_source = sd_event_source_disable_unref(h->accept_source);
        accept_pause_done(&h->accept_pause);
        if (h->fd >= 0)
                close(h->fd);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

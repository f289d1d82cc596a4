/* SPDX-License-Identifier: MIT */
/* The connection machinery both of msce-mef's TLS listeners use (mef/conn.h): accept and its
 * gating, the unauthenticated pool, the handshake, reading one request under the HTTP limits,
 * writing the answer, lingering until the client closes, and the deadline of each phase. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <syslog.h>

#include "mef/conn-internal.h"
#include "mef/log.h"
#include "proto/tls-hello.h"
#include "util/list.h"
#include "util/text.h"
#include "util/util.h"

#define READ_CHUNK 16384u
/* The largest request the parser takes (a chunked body of 128 KiB on the wire between a head and
 * trailers of 8 KiB: protocol.md's framing), so the buffer refuses nothing it accepts. It grows
 * on demand: only a peer that sends that much holds it, for request_timeout at most. */
#define INPUT_MAX HTTP_MSG_MAX
#define INPUT_INITIAL 4096u
#define LINGER_DRAIN_MAX (64u * 1024u)
#define ACCEPT_BATCH 64
#define PAUSE_LOG_USEC (10u * 1000u * 1000u)

static void conn_step(conn_t *c);

/* ---- helpers ---- */

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

const char *conn_tls_error_str(int r) {
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

void listener_logbook_arm(listener_t *l) {
        uint64_t next = logbook_next(l->logbook);
        if (!l->logbook_timer)
                return;
        if (next == UINT64_MAX) {
                (void) sd_event_source_set_enabled(l->logbook_timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(l->logbook_timer, MAX(next, 1u));
        (void) sd_event_source_set_enabled(l->logbook_timer, SD_EVENT_ONESHOT);
}

/* "ADDR: what", counted per source, with the PSK identity it tried when there was one; the
 * admin listener's lines say so. */
void conn_note(const conn_t *c, logbook_kind_t kind, int priority, const char *fmt, ...) {
        char what[512];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(what, sizeof what, fmt, ap);
        va_end(ap);
        listener_t *l = c->listener;
        logbook_note(l->logbook, now_usec(), c->source_name, kind, c->identity_tried[0] ? c->identity_tried : NULL,
                     priority, "%s%s%s: %s", l->name[0] ? l->name : "", l->name[0] ? " " : "", c->addr, what);
        listener_logbook_arm(l);
}

const char *conn_failure_cause(const conn_t *c, char *buf, size_t size) {
        if (!c->failed)
                return "";
        char said[STORE_STRERROR_MAX];
        snprintf(buf, size, ": %s: %s", c->failed, store_strerror(c->error, &c->reason, said));
        return buf;
}

/* ---- accept gating ---- */

static bool listener_has_slot(const listener_t *l) {
        return l->n_serving < l->max_serving || l->n_overflow < l->max_overflow;
}

static void listener_update_accept(listener_t *l) {
        bool on = listener_has_slot(l) && !l->accept_pause.paused;
        if (on == l->accept_on || !l->accept_source)
                return;
        if (sd_event_source_set_enabled(l->accept_source, on ? SD_EVENT_ON : SD_EVENT_OFF) < 0)
                return;
        l->accept_on = on;
        /* Under sustained overload this flips with every connection: say it every 10 s. */
        uint64_t now = now_usec();
        if (!on && !l->accept_pause.paused && (l->pause_logged == 0 || now - l->pause_logged >= PAUSE_LOG_USEC)) {
                l->pause_logged = now;
                log_warning("%s%s%u connections open (limit %u + %u overflow): not accepting until one closes",
                            l->name, l->name[0] ? ": " : "", l->n_serving + l->n_overflow, l->max_serving,
                            l->max_overflow);
        }
}

static void on_accept_resume(void *userdata) {
        listener_update_accept(userdata);
}

/* ---- connections ---- */

static void conn_pool_leave(conn_t *c) {
        listener_t *l = c->listener;
        switch (c->pool) {
        case POOL_UNAUTHENTICATED:
                admission_remove(l->unauth, &c->admission);
                break;
        case POOL_SERVING:
                l->n_serving--;
                conn_node_release(c);
                break;
        case POOL_OVERFLOW:
                l->n_overflow--;
                conn_node_release(c);
                break;
        case POOL_LINGER:
                l->n_lingering--;
                break;
        }
}

void conn_free(conn_t *c) {
        if (!c)
                return;
        listener_t *l = c->listener;

        LIST_REMOVE(l->conns, c);
        conn_pool_leave(c);
        mef_metrics_connections(l->metrics, -1);
        if (c->job)
                c->job->conn = NULL; /* its thread finishes; the job frees itself */
        conn_ahead_drop(c);

        c->io = sd_event_source_disable_unref(c->io);
        c->timer = sd_event_source_disable_unref(c->timer);
        tls_conn_free(c->tls);
        if (c->fd >= 0)
                close(c->fd);
        erase(c->ekm, sizeof c->ekm);
        erase_free(c->in, c->in_size);
        erase_free(c->out, c->out_len);
        free(c);

        listener_update_accept(l);
        if (!l->conns && l->idle)
                l->idle(l);
}

/* Nothing more to send: wait for the client to close, off the slot count, so the next client
 * need not wait for this one's FIN. -ENOBUFS when too many linger already: close now. */
static int conn_enter_linger(conn_t *c) {
        listener_t *l = c->listener;
        if (l->n_lingering >= l->max_lingering)
                return -ENOBUFS;
        conn_pool_leave(c);
        l->n_lingering++;
        c->pool = POOL_LINGER;
        c->phase = CONN_LINGER;
        listener_update_accept(l);
        return 0;
}

void conn_set_deadline_at(conn_t *c, uint64_t at) {
        c->deadline = at;
        (void) sd_event_source_set_time(c->timer, c->deadline);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void conn_set_deadline(conn_t *c, uint64_t usec_from_now) {
        conn_set_deadline_at(c, now_usec() + usec_from_now);
}

int conn_answer(conn_t *c, int status, uint8_t *out, size_t len) {
        erase_free(c->out, c->out_len);
        c->out = out;
        c->out_len = len;
        c->out_pos = 0;
        c->status = status;
        c->phase = CONN_WRITE;
        return 1;
}

void conn_resume(conn_t *c, int r) {
        if (r < 0 || sd_event_source_set_enabled(c->io, SD_EVENT_ON) < 0) {
                conn_free(c);
                return;
        }
        conn_step(c);
}

/* 1: answered, writing; 0: in a store thread; <0: close. */
static int conn_handle(conn_t *c, http_msg_t *msg) {
        listener_t *l = c->listener;
        snprintf(c->method, sizeof c->method, "%s", msg->method);
        text_copy(msg->target, TEXT_ASCII, c->path, sizeof c->path);
        if (c->pool == POOL_OVERFLOW)
                return l->ops->answer_error(c, 503, "overloaded: retry later", http_msg_header(msg, "X-M2M-RI"));
        return l->ops->handle(c, msg);
}

/* 1: moved on to writing; 0: waiting for input; <0: close. */
static int conn_read(conn_t *c) {
        const listener_ops_t *ops = c->listener->ops;
        for (;;) {
                if (c->in_len == c->in_size) {
                        if (c->in_size >= INPUT_MAX)
                                return ops->answer_error(c, 413, "request too large", NULL);
                        int r = secret_buffer_grow(&c->in, &c->in_size, c->in_len,
                                                   MIN(MAX((size_t) INPUT_INITIAL, c->in_size * 2), (size_t) INPUT_MAX));
                        if (r < 0)
                                return r;
                }
                ssize_t n = tls_conn_read(c->tls, c->in + c->in_len, MIN((size_t) READ_CHUNK, c->in_size - c->in_len));
                if (n == -EAGAIN)
                        return 0;
                if (n < 0) {
                        conn_note(c, LOGBOOK_REQUEST_FAILED, LOG_WARNING, "reading the request: %s",
                                  conn_tls_error_str((int) n));
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
                        return ops->answer_error(c, 413, "request body over 64 KiB", NULL);
                if (r == -EMSGSIZE)
                        return ops->answer_error(c, 431, "request head over 8 KiB, over 64 headers or target too long",
                                                 NULL);
                if (r < 0)
                        return ops->answer_error(c, 400, "malformed HTTP request", NULL);
                r = conn_handle(c, &msg);
                http_msg_done(&msg);
                /* The EKM served its one purpose (an enrol's Ke). */
                erase(c->ekm, sizeof c->ekm);
                return r;
        }
}

/* 1: everything sent, lingering; 0: waiting; <0: close. */
static int conn_write(conn_t *c) {
        tls_conn_cork(c->tls); /* pushed by the shutdown() below */
        while (c->out_pos < c->out_len) {
                ssize_t n = tls_conn_write(c->tls, c->out + c->out_pos, c->out_len - c->out_pos);
                if (n == -EAGAIN)
                        return 0;
                if (n <= 0) {
                        conn_note(c, LOGBOOK_REQUEST_FAILED, LOG_WARNING, "writing the response: %s",
                                  conn_tls_error_str(n < 0 ? (int) n : -EPIPE));
                        return n < 0 ? (int) n : -EPIPE;
                }
                c->out_pos += (size_t) n;
        }
        c->listener->ops->log_exchange(c);
        erase_free(c->out, c->out_len);
        c->out = NULL;
        c->out_len = c->out_pos = 0;

        tls_conn_shutdown(c->tls);
        (void) shutdown(c->fd, SHUT_WR);
        int r = conn_enter_linger(c);
        if (r < 0)
                return r;
        if (c->deadline > now_usec() + CONN_LINGER_USEC)
                conn_set_deadline(c, CONN_LINGER_USEC);
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

/* After the handshake: who the peer is (the listener's ops), then its pool. <0: close. */
static int conn_identify(conn_t *c) {
        listener_t *l = c->listener;
        int r = l->ops->identify(c);
        if (r < 0)
                return r;
        if (c->authenticated) {
                /* a node over its cap is answered from the pool it shook hands in: no slot */
                r = conn_node_admit(c);
                if (r != 0) {
                        if (r > 0)
                                conn_set_deadline(c, l->request_usec);
                        return r;
                }
                /* Served from max_connections, which no unauthenticated connection takes. */
                conn_pool_leave(c);
                if (l->n_serving < l->max_serving) {
                        c->pool = POOL_SERVING;
                        l->n_serving++;
                } else {
                        c->pool = POOL_OVERFLOW;
                        l->n_overflow++;
                        conn_note(c, LOGBOOK_OVERLOADED, LOG_WARNING, "overloaded (%u in service): will answer 503",
                                  l->n_serving);
                }
                listener_update_accept(l);
        }
        c->phase = CONN_READ;
        conn_set_deadline(c, l->request_usec);
        return 1;
}

/* CONN_STORE leaves the socket watched: a client waits for its answer in silence, and the
 * epoll_ctl() pair of turning it off and on again would cost each request two system calls.
 * One that stirs meanwhile is turned off then (on_conn_io). CONN_AHEAD has the ClientHello
 * peeked, not read: the socket is readable, off at once. */
static void conn_io_off(conn_t *c) {
        /* TLS holds what the client may still send: read it after the answer. */
        if (sd_event_source_set_enabled(c->io, SD_EVENT_OFF) < 0)
                conn_free(c);
}

static void conn_wait(conn_t *c) {
        if (c->phase == CONN_STORE)
                return;
        if (c->phase == CONN_AHEAD) {
                conn_io_off(c);
                return;
        }
        uint32_t events = EPOLLIN;
        if (c->phase != CONN_LINGER && tls_conn_want(c->tls) == POLLOUT)
                events = EPOLLOUT;
        if (sd_event_source_set_io_events(c->io, events) < 0)
                conn_free(c);
}

static void conn_handshake_started(conn_t *c) {
        if (c->admission.idle) {
                /* under way: the whole handshake deadline now */
                admission_mark_active(&c->admission);
                conn_set_deadline_at(c, c->started + c->listener->handshake_usec);
        }
}

/* Before wolfSSL reads the ClientHello (peeked, not consumed): its PSK identity to a store
 * thread. 1: CONN_AHEAD until that is done; 0: on with the handshake; -EAGAIN: nothing yet. */
static int conn_look_ahead(conn_t *c) {
        uint8_t buf[TLS_HELLO_PEEK_MAX];
        ssize_t n = recv(c->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                return -EAGAIN;
        /* Once: a ClientHello that came in pieces goes the usual way (the loop looks it up)
         * rather than be waited for here. */
        c->ahead_tried = true;
        char identity[TLS_HELLO_IDENTITY_MAX + 1];
        if (n <= 0 || tls_hello_psk_identity(buf, (size_t) n, identity, sizeof identity) <= 0)
                return 0;
        conn_handshake_started(c);
        if (c->listener->ops->lookup_ahead(c, identity) <= 0)
                return 0;
        c->phase = CONN_AHEAD;
        return 1;
}

static int conn_handshake(conn_t *c) {
        listener_t *l = c->listener;
        if (l->lookup_ahead && !c->ahead_tried) {
                int q = conn_look_ahead(c);
                if (q != 0)
                        return 0;
        }
        int r = tls_conn_handshake(c->tls);
        if (tls_conn_bytes_received(c->tls) > 0)
                conn_handshake_started(c);
        if (r == -EAGAIN)
                return 0;
        conn_ahead_drop(c); /* the key it holds served its purpose */
        if (r == -ECONNRESET || r == -EPIPE) {
                /* connect-and-close (port scans, health checks): not a problem */
                mef_metrics_failure(l->metrics, MEF_FAIL_CLOSED);
                conn_note(c, LOGBOOK_CLOSED, LOG_INFO, "closed during the TLS handshake");
                return r;
        }
        if (r < 0) {
                /* the store could not look the identity up: no credential was refused, and the
                 * cause says why (internal_error sent: the client retries soon) */
                bool away = c->store_refused;
                mef_metrics_failure(l->metrics, away ? (store_error_is_transient(c->error) ? MEF_FAIL_STORE_UNAVAILABLE
                                                                                          : MEF_FAIL_STORE_ERROR)
                                                : r == -EACCES ? MEF_FAIL_AUTH
                                                : r == -EPROTO ? MEF_FAIL_PROTOCOL
                                                               : MEF_FAIL_HANDSHAKE_OTHER);
                char cause[CONN_CAUSE_MAX];
                conn_note(c, LOGBOOK_HANDSHAKE_FAILED, LOG_WARNING, "TLS handshake %s%s%s%s%s",
                          away ? "refused" : "failed: ", away ? "" : conn_tls_error_str(r),
                          c->identity_tried[0] ? ", identity " : "", c->identity_tried,
                          conn_failure_cause(c, cause, sizeof cause));
                /* Linger so the client reads our alert: a TLS 1.3 client whose certificate we
                 * refused has already sent its Finished, and an abrupt close would turn the
                 * alert into a reset (transient). */
                (void) shutdown(c->fd, SHUT_WR);
                r = conn_enter_linger(c);
                if (r >= 0)
                        conn_set_deadline(c, CONN_LINGER_USEC);
                return r;
        }
        return conn_identify(c);
}

static void conn_step(conn_t *c) {
        for (;;) {
                int r;
                switch (c->phase) {
                case CONN_HANDSHAKE:
                        r = conn_handshake(c);
                        break;
                case CONN_READ:
                        r = conn_read(c);
                        break;
                case CONN_AHEAD:
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
        conn_t *c = userdata;
        if (c->phase == CONN_STORE)
                conn_io_off(c);
        else
                conn_step(c);
        return 0;
}

static int on_conn_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        conn_t *c = userdata;
        listener_t *l = c->listener;
        if (c->phase == CONN_STORE && now_usec() < c->deadline) {
                if (conn_store_overdue(c) == 0)
                        conn_set_deadline_at(c, c->deadline); /* being run: the request's own deadline */
                return 0;
        }
        switch (c->phase) {
        case CONN_AHEAD:
                mef_metrics_failure(l->metrics, MEF_FAIL_HANDSHAKE_TIMEOUT);
                conn_note(c, LOGBOOK_TIMEOUT, LOG_WARNING,
                          "timed out TLS handshake (the store did not look up the PSK identity in time)");
                break;
        case CONN_HANDSHAKE: {
                uint64_t got = tls_conn_bytes_received(c->tls);
                mef_metrics_failure(l->metrics, got == 0 ? MEF_FAIL_NO_CLIENT_HELLO : MEF_FAIL_HANDSHAKE_TIMEOUT);
                if (got == 0)
                        conn_note(c, LOGBOOK_TIMEOUT, LOG_INFO,
                                  "timed out waiting for a ClientHello (nothing within %llu ms)",
                                  (unsigned long long) (MIN(l->first_byte_usec, l->handshake_usec) / 1000u));
                else
                        conn_note(c, LOGBOOK_TIMEOUT, LOG_WARNING, "timed out TLS handshake (%llu bytes received)",
                                  (unsigned long long) got);
                break;
        }
        case CONN_READ:
                mef_metrics_failure(l->metrics, MEF_FAIL_REQUEST_TIMEOUT);
                conn_note(c, LOGBOOK_TIMEOUT, LOG_WARNING, "timed out reading the request (%zu bytes received)",
                          c->in_len);
                break;
        case CONN_STORE:
                mef_metrics_failure(l->metrics, MEF_FAIL_REQUEST_TIMEOUT);
                conn_note(c, LOGBOOK_TIMEOUT, LOG_WARNING, "timed out waiting for the store");
                break;
        case CONN_WRITE:
                mef_metrics_failure(l->metrics, MEF_FAIL_REQUEST_TIMEOUT);
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
static void listener_make_room(listener_t *l, const source_key_t *src) {
        admission_entry_t *e;
        while ((e = admission_victim(l->unauth, src, now_usec()))) {
                conn_t *v = (conn_t *) ((char *) e - offsetof(conn_t, admission));
                unsigned same = admission_count_source(l->unauth, &v->source);
                mef_metrics_failure(l->metrics, MEF_FAIL_EVICTED);
                conn_note(v, LOGBOOK_EVICTED, LOG_INFO,
                          "closed after %llu ms %s to make room (%u unauthenticated connections, %u from %s)",
                          (unsigned long long) ((now_usec() - v->started) / 1000u),
                          e->idle ? "without a byte" : "in the handshake", admission_count(l->unauth), same,
                          v->source_name);
                conn_free(v);
        }
}

static void conn_new(listener_t *l, int fd, const struct sockaddr_storage *sa) {
        source_key_t src;
        source_key_from_sockaddr(sa, &src);
        listener_make_room(l, &src);

        conn_t *c = calloc(1, sizeof *c);
        if (!c) {
                close(fd);
                return;
        }
        c->listener = l;
        c->fd = fd;
        c->started = now_usec();
        c->source = src;
        addr_format(sa, c->addr, sizeof c->addr);
        source_key_format(&src, c->source_name, sizeof c->source_name);
        http_parser_init(&c->parser, HTTP_REQUEST);
        c->pool = POOL_UNAUTHENTICATED;
        if (admission_add(l->unauth, &c->admission, &src, c->started) < 0) {
                free(c); /* cannot happen: room was made */
                close(fd);
                return;
        }
        LIST_PREPEND(l->conns, c);
        mef_metrics_connections(l->metrics, +1);

        int r = tls_conn_new_server(l->tls, fd, &c->tls);
        if (r >= 0) {
                tls_conn_set_userdata(c->tls, c); /* a PSK lookup keeps what it found in c */
                r = sd_event_add_io(l->event, &c->io, fd, EPOLLIN, on_conn_io, c);
        }
        if (r >= 0)
                r = sd_event_add_time(l->event, &c->timer, CLOCK_MONOTONIC, 0, CONN_TIMER_ACCURACY_USEC,
                                      on_conn_timer, c);
        if (r < 0) {
                log_warning("%s: cannot set up the connection: %s", c->addr, strerror(-r));
                conn_free(c);
                return;
        }
        /* The first byte of the ClientHello soon; then the whole handshake from accept. */
        conn_set_deadline_at(c, c->started + MIN(l->first_byte_usec, l->handshake_usec));
        conn_step(c);
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        listener_t *l = userdata;

        for (int i = 0; i < ACCEPT_BATCH; i++) {
                if (!listener_has_slot(l))
                        break;
                struct sockaddr_storage sa = {};
                socklen_t salen = sizeof sa;
                int cfd = accept4(l->listen_fd, (struct sockaddr *) &sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0) {
                        /* out of fds or memory: paused, listener_update_accept() turns accept off */
                        if (accept_pause_failed(&l->accept_pause, errno) == ACCEPT_SKIP)
                                continue;
                        break;
                }
                conn_new(l, cfd, &sa);
        }
        listener_update_accept(l);
        return 0;
}

int listener_start(listener_t *l) {
        /* Sized for full pools. Overflow can run past max_overflow (accept goes on while
         * service has room, and handshakes under way land in overflow): the table grows then. */
        int r = 0;
        if (l->per_node > 0 && l->ops->node_key)
                r = node_count_new(l->max_serving + l->max_overflow, &l->node_counts);
        if (r >= 0)
                r = sd_event_add_io(l->event, &l->accept_source, l->listen_fd, EPOLLIN, on_accept, l);
        if (r >= 0)
                r = accept_pause_init(&l->accept_pause, l->event, l->name, on_accept_resume, l);
        if (r >= 0)
                l->accept_on = true;
        return r;
}

void listener_stop(listener_t *l) {
        while (l->conns)
                conn_free(l->conns);
        l->node_counts = node_count_free(l->node_counts);
        l->accept_source = sd_event_source_disable_unref(l->accept_source);
        accept_pause_done(&l->accept_pause);
}

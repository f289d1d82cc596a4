/* SPDX-License-Identifier: MIT */
/* delay-relay: a TCP relay for fault tests (tests/integration/fault-matrix.sh).
 *
 *   delay-relay --listen HOST:PORT --connect HOST:PORT [--mode-file FILE]
 *
 * Prints "listening on HOST:PORT" on stdout once bound (PORT 0 picks one). What it does with a
 * connection is read from FILE when the connection is accepted (missing file: pass), so a test
 * changes the behaviour between connections by rewriting the file:
 *
 *   pass               relay both ways
 *   delay MS           hold every byte MS milliseconds in each direction (EOF too)
 *   reset BYTES        relay, but after BYTES bytes from the server reset the client
 *                      (SO_LINGER 0 close: an RST) and close the server side
 *   reset-flight F     relay, but reset the client when the server starts its F-th flight (a
 *                      flight: server bytes after client bytes; F = 2 with TLS 1.3 is the first
 *                      server data after the handshake)
 *   blackhole          accept, read and discard, never connect to the server, never answer
 *
 * Events go to stderr, one a line, prefixed by the wall-clock time in seconds with 3 decimals:
 *   T conn N accepted MODE | upstream failed: ERR | s2c first data | reset after B bytes (flight F)
 *   | closed c2s=B s2c=B */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "util/macro.h"
#include "util/util.h"

#define CHUNK_MAX 16384u
#define QUEUE_MAX (1024u * 1024u) /* stop reading a side while this much waits to be sent */
#define CONNS_MAX 64u
#define CONNECT_TIMEOUT_MS 3000

typedef enum relay_mode {
        MODE_PASS,
        MODE_DELAY,
        MODE_RESET,
        MODE_RESET_FLIGHT,
        MODE_BLACKHOLE,
} relay_mode_t;

typedef struct chunk {
        struct chunk *next;
        uint64_t due;
        size_t len, off;
        uint8_t data[];
} chunk_t;

/* One direction: bytes read from one side, waiting to be written to the other. */
typedef struct flow {
        chunk_t *head, *tail;
        size_t queued;
        uint64_t bytes;     /* read so far */
        uint64_t passed;    /* accepted for relaying (read minus what a reset swallowed) */
        bool eof;           /* the source sent FIN */
        uint64_t eof_due;   /* when to pass the FIN on */
        bool shut;          /* FIN passed on */
} flow_t;

typedef struct conn {
        unsigned id;
        int cfd, ufd;
        relay_mode_t mode;
        uint64_t delay_usec;
        uint64_t reset_at;  /* MODE_RESET: server bytes; MODE_RESET_FLIGHT: flight number */
        unsigned flights;   /* server flights seen */
        bool last_from_server;
        bool reset_pending; /* reset once s2c is flushed */
        bool first_s2c_logged;
        flow_t c2s, s2c;
} conn_t;

static void log_event(const char *fmt, ...) _printf_(1, 2);
static void log_event(const char *fmt, ...) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        fprintf(stderr, "%lld.%03ld ", (long long) ts.tv_sec, ts.tv_nsec / 1000000);
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
}

static const char *mode_name(relay_mode_t m) {
        static const char *const names[] = {
                [MODE_PASS] = "pass", [MODE_DELAY] = "delay", [MODE_RESET] = "reset",
                [MODE_RESET_FLIGHT] = "reset-flight", [MODE_BLACKHOLE] = "blackhole",
        };
        return names[m];
}

/* The mode for a new connection; a missing file is "pass", a bad one is an error. */
static int mode_read(const char *path, conn_t *c) {
        c->mode = MODE_PASS;
        if (!path)
                return 0;
        _cleanup_free_ char *text = NULL;
        int r = file_read_all(path, 256, &text, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        char word[32] = "";
        char arg[32] = "";
        int n = sscanf(text, "%31s %31s", word, arg);
        unsigned long long v = 0;
        if (n == 2 && parse_uint(arg, 86400000ull, &v) < 0)
                return -EINVAL;
        if (n == 1 && streq(word, "pass"))
                c->mode = MODE_PASS;
        else if (n == 2 && streq(word, "delay")) {
                c->mode = MODE_DELAY;
                c->delay_usec = v * 1000u;
        } else if (n == 2 && streq(word, "reset"))
                c->mode = MODE_RESET;
        else if (n == 2 && streq(word, "reset-flight") && v >= 1)
                c->mode = MODE_RESET_FLIGHT;
        else if (n == 1 && streq(word, "blackhole"))
                c->mode = MODE_BLACKHOLE;
        else
                return -EINVAL;
        c->reset_at = v;
        return 0;
}

static int addr_parse(const char *s, struct sockaddr_in *ret) {
        char host[64];
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t) (colon - s) >= sizeof host)
                return -EINVAL;
        memcpy(host, s, colon - s);
        host[colon - s] = 0;
        unsigned long long port;
        if (parse_uint(colon + 1, 65535, &port) < 0)
                return -EINVAL;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
                return -EINVAL;
        *ret = sa;
        return 0;
}

static int upstream_connect(const struct sockaddr_in *to) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (const struct sockaddr *) to, sizeof *to) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                struct pollfd p = { .fd = fd, .events = POLLOUT };
                int n = poll(&p, 1, CONNECT_TIMEOUT_MS);
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ETIMEDOUT;
                int err = 0;
                socklen_t len = sizeof err;
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        return -errno;
                if (err)
                        return -err;
        }
        return TAKE_FD(fd);
}

/* Close with an RST instead of a FIN. */
static void close_reset(int fd) {
        struct linger l = { .l_onoff = 1, .l_linger = 0 };
        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(fd);
}

static void flow_clear(flow_t *f) {
        while (f->head) {
                chunk_t *c = f->head;
                f->head = c->next;
                free(c);
        }
        f->tail = NULL;
        f->queued = 0;
}

static int flow_push(flow_t *f, const uint8_t *data, size_t len, uint64_t due) {
        chunk_t *c = malloc(sizeof *c + len);
        if (!c)
                return -ENOMEM;
        *c = (chunk_t) { .due = due, .len = len };
        memcpy(c->data, data, len);
        if (f->tail)
                f->tail->next = c;
        else
                f->head = c;
        f->tail = c;
        f->queued += len;
        return 0;
}

/* Write what is due; -errno when the destination is gone. */
static int flow_flush(flow_t *f, int fd, uint64_t now) {
        while (f->head && f->head->due <= now) {
                chunk_t *c = f->head;
                ssize_t n = send(fd, c->data + c->off, c->len - c->off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0)
                        return errno == EAGAIN ? 0 : -errno;
                c->off += (size_t) n;
                f->queued -= (size_t) n;
                if (c->off < c->len)
                        return 0;
                f->head = c->next;
                if (!f->head)
                        f->tail = NULL;
                free(c);
        }
        if (!f->head && f->eof && !f->shut && f->eof_due <= now) {
                (void) shutdown(fd, SHUT_WR);
                f->shut = true;
        }
        return 0;
}

/* The earliest time something in f becomes due (UINT64_MAX: nothing waits). */
static uint64_t flow_next(const flow_t *f) {
        if (f->head)
                return f->head->due;
        if (f->eof && !f->shut)
                return f->eof_due;
        return UINT64_MAX;
}

static void conn_free(conn_t *c, bool reset) {
        if (!c)
                return;
        if (c->cfd >= 0) {
                if (reset)
                        close_reset(c->cfd);
                else
                        close(c->cfd);
        }
        if (c->ufd >= 0) {
                if (reset)
                        close_reset(c->ufd);
                else
                        close(c->ufd);
        }
        flow_clear(&c->c2s);
        flow_clear(&c->s2c);
        free(c);
}

/* Read from one side into its flow. Returns 0, or -errno when the side failed. */
static int conn_read(conn_t *c, bool from_server, uint64_t now) {
        uint8_t buf[CHUNK_MAX];
        int fd = from_server ? c->ufd : c->cfd;
        flow_t *f = from_server ? &c->s2c : &c->c2s;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0)
                return errno == EAGAIN ? 0 : -errno;
        if (n == 0) {
                f->eof = true;
                f->eof_due = now + c->delay_usec;
                return 0;
        }
        f->bytes += (uint64_t) n;
        if (c->mode == MODE_BLACKHOLE)
                return 0;
        size_t keep = (size_t) n;
        if (from_server) {
                if (!c->first_s2c_logged) {
                        log_event("conn %u s2c first data", c->id);
                        c->first_s2c_logged = true;
                }
                if (!c->last_from_server)
                        c->flights++;
                if (c->mode == MODE_RESET && f->bytes > c->reset_at) {
                        keep = (size_t) (c->reset_at - MIN(c->reset_at, f->bytes - (uint64_t) n));
                        c->reset_pending = true;
                } else if (c->mode == MODE_RESET_FLIGHT && c->flights >= c->reset_at) {
                        keep = 0;
                        c->reset_pending = true;
                }
        }
        c->last_from_server = from_server;
        if (keep == 0)
                return 0;
        f->passed += keep;
        return flow_push(f, buf, keep, now + c->delay_usec);
}

/* Returns true when the connection is finished (and freed). */
static bool conn_step(conn_t *c, short crev, short urev, uint64_t now) {
        int r = 0;
        bool reset = false;

        if ((crev & (POLLIN | POLLHUP | POLLERR)) && !c->c2s.eof)
                r = conn_read(c, false, now);
        if (r >= 0 && c->ufd >= 0 && (urev & (POLLIN | POLLHUP | POLLERR)) && !c->s2c.eof && !c->reset_pending)
                r = conn_read(c, true, now);
        if (r >= 0 && c->ufd >= 0)
                r = flow_flush(&c->c2s, c->ufd, now);
        if (r >= 0 && c->ufd >= 0)
                r = flow_flush(&c->s2c, c->cfd, now);
        if (r < 0) {
                /* A side reset or vanished: pass that on as a reset too. */
                log_event("conn %u aborted: %s c2s=%llu s2c=%llu", c->id, strerror(-r),
                          (unsigned long long) c->c2s.bytes, (unsigned long long) c->s2c.bytes);
                reset = true;
        } else if (c->reset_pending && !c->s2c.head) {
                log_event("conn %u reset after %llu server bytes (flight %u)", c->id,
                          (unsigned long long) c->s2c.passed, c->flights);
                reset = true;
        } else if (c->mode == MODE_BLACKHOLE ? c->c2s.eof : c->c2s.shut && c->s2c.shut) {
                log_event("conn %u closed c2s=%llu s2c=%llu", c->id, (unsigned long long) c->c2s.bytes,
                          (unsigned long long) c->s2c.bytes);
        } else
                return false;
        conn_free(c, reset);
        return true;
}

static void help(void) {
        printf("Usage: delay-relay --listen HOST:PORT --connect HOST:PORT [--mode-file FILE]\n"
               "Modes (first line of FILE, read per connection): pass | delay MS | reset BYTES |\n"
               "reset-flight F | blackhole\n");
}

int main(int argc, char *argv[]) {
        const char *listen_s = NULL, *connect_s = NULL, *mode_file = NULL;
        for (int i = 1; i < argc; i++) {
                if (streq(argv[i], "--help")) {
                        help();
                        return 0;
                }
                if (i + 1 >= argc) {
                        help();
                        return 2;
                }
                if (streq(argv[i], "--listen"))
                        listen_s = argv[++i];
                else if (streq(argv[i], "--connect"))
                        connect_s = argv[++i];
                else if (streq(argv[i], "--mode-file"))
                        mode_file = argv[++i];
                else {
                        help();
                        return 2;
                }
        }
        struct sockaddr_in la, ua;
        if (!listen_s || !connect_s || addr_parse(listen_s, &la) < 0 || addr_parse(connect_s, &ua) < 0) {
                help();
                return 2;
        }
        (void) signal(SIGPIPE, SIG_IGN);

        _cleanup_close_ int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(lfd, (struct sockaddr *) &la, sizeof la) < 0 || listen(lfd, 64) < 0) {
                fprintf(stderr, "delay-relay: cannot listen on %s: %m\n", listen_s);
                return 1;
        }
        socklen_t len = sizeof la;
        if (getsockname(lfd, (struct sockaddr *) &la, &len) < 0) {
                fprintf(stderr, "delay-relay: getsockname: %m\n");
                return 1;
        }
        char host[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &la.sin_addr, host, sizeof host);
        printf("listening on %s:%u\n", host, ntohs(la.sin_port));
        fflush(stdout);

        conn_t *conns[CONNS_MAX] = {};
        unsigned next_id = 1;
        for (;;) {
                struct pollfd p[1 + 2 * CONNS_MAX];
                size_t np = 0;
                uint64_t now = now_usec(), wake = UINT64_MAX;
                p[np++] = (struct pollfd) { .fd = lfd, .events = POLLIN };
                for (size_t i = 0; i < CONNS_MAX; i++) {
                        conn_t *c = conns[i];
                        if (!c)
                                continue;
                        short ce = 0, ue = 0;
                        if (!c->c2s.eof && c->c2s.queued < QUEUE_MAX)
                                ce |= POLLIN;
                        if (c->ufd >= 0 && !c->s2c.eof && c->s2c.queued < QUEUE_MAX && !c->reset_pending)
                                ue |= POLLIN;
                        if (c->s2c.head && c->s2c.head->due <= now)
                                ce |= POLLOUT;
                        if (c->c2s.head && c->c2s.head->due <= now && c->ufd >= 0)
                                ue |= POLLOUT;
                        wake = MIN(wake, MIN(flow_next(&c->c2s), flow_next(&c->s2c)));
                        if (c->reset_pending)
                                wake = now;
                        /* A side with nothing left to read or write is left out: a socket shut
                         * both ways reports POLLHUP for ever. */
                        bool cdone = c->c2s.eof && (c->s2c.shut || c->ufd < 0);
                        bool udone = c->s2c.eof && c->c2s.shut;
                        p[np++] = (struct pollfd) { .fd = cdone ? -1 : c->cfd, .events = ce };
                        p[np++] = (struct pollfd) { .fd = udone ? -1 : c->ufd, .events = ue };
                }
                int timeout = wake == UINT64_MAX ? -1 : wake <= now ? 0 : (int) ((wake - now + 999) / 1000);
                if (poll(p, np, timeout) < 0) {
                        if (errno == EINTR)
                                continue;
                        fprintf(stderr, "delay-relay: poll: %m\n");
                        return 1;
                }
                now = now_usec();
                size_t k = 1;
                for (size_t i = 0; i < CONNS_MAX; i++) {
                        if (!conns[i])
                                continue;
                        if (conn_step(conns[i], p[k].revents, p[k + 1].revents, now))
                                conns[i] = NULL;
                        k += 2;
                }
                if (!(p[0].revents & POLLIN))
                        continue;
                int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0)
                        continue;
                size_t slot = 0;
                while (slot < CONNS_MAX && conns[slot])
                        slot++;
                conn_t *c = slot < CONNS_MAX ? calloc(1, sizeof *c) : NULL;
                if (!c) {
                        close_reset(cfd);
                        continue;
                }
                *c = (conn_t) { .id = next_id++, .cfd = cfd, .ufd = -1 };
                int r = mode_read(mode_file, c);
                if (r < 0) {
                        log_event("conn %u bad mode file %s: %s", c->id, mode_file, strerror(-r));
                        conn_free(c, true);
                        continue;
                }
                log_event("conn %u accepted %s %llu", c->id, mode_name(c->mode), (unsigned long long) c->reset_at);
                if (c->mode != MODE_BLACKHOLE) {
                        r = upstream_connect(&ua);
                        if (r < 0) {
                                log_event("conn %u upstream failed: %s", c->id, strerror(-r));
                                conn_free(c, true);
                                continue;
                        }
                        c->ufd = r;
                        (void) setsockopt(c->ufd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                }
                (void) setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                conns[slot] = c;
        }
}

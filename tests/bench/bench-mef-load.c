/* SPDX-License-Identifier: MIT */
/* Enrolments per second under load: a generator keeping CONNS client connections in flight
 * (non-blocking wolfSSL, epoll, PROCS processes), each a full psk TLS 1.3 enrolment (X25519
 * key share, TLS13-AES128-GCM-SHA256, POST <base>/enrolments, response read), against msce-mef
 * or against the raw reference server below (a minimal single-threaded epoll wolfSSL PSK
 * server: handshake, read the request, fixed small answer, close). Driven by
 * bench-mef-load.sh (meson test -C BUILD --benchmark --suite bench -v mef-load):
 *   bench-mef-load run PORT NODES SECONDS CONNS PROCS [SERVER_PID]
 *       NODES: lines "NODE_ID PSK_IDENTITY KPM_HEX" (owner-only file); connection i uses line
 *       i mod n. One second of warm-up, then SECONDS measured. Prints one line of figures:
 *       ok/s, answers by class, errors, latency, client CPU (and the server's from
 *       /proc/SERVER_PID/schedstat) as a share of one core, and ok/s per server CPU-second
 *       (the server's capacity per core even when other work shares its CPU).
 *   bench-mef-load server NODES MAX_SECONDS
 *       the raw server on 127.0.0.1, port 0 ("listening on 127.0.0.1:PORT" on stdout), until
 *       SIGTERM/SIGINT or MAX_SECONDS. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define SUITE "TLS13-AES128-GCM-SHA256"
#define NODES_MAX 1024u
#define CONNS_MAX 1024u
#define PROCS_MAX 8u
#define KEY_MAX 64u
#define ID_MAX 127u
#define BUF_MAX 8192u
#define WARMUP_USEC (1000u * 1000u)
#define STUCK_USEC (10u * 1000u * 1000u) /* a connection older than this is counted as an error */
#define HIST_BUCKET_US 10u
#define HIST_N 100000u                   /* 10 us buckets up to 1 s; slower ones in the last */
#define LISTEN_BACKLOG 128               /* as msce-mef */
#define ACCEPT_BATCH 64                  /* as msce-mef */

typedef struct node {
        char id[ID_MAX + 1];
        char psk_id[ID_MAX + 1];
        uint8_t key[KEY_MAX];
        size_t key_len;
} node_t;

static node_t nodes[NODES_MAX];
static size_t n_nodes;

/* ---- shared ---- */

static void nodes_wipe(void) {
        erase(nodes, sizeof nodes);
}

static int nodes_load(const char *path) {
        _cleanup_secret_ secret_t sec = {};
        int r = secret_file_read(path, 1024 * 1024, &sec);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", path, strerror(-r));
                return r;
        }
        _cleanup_free_ char *text = strndup((const char *) sec.data, sec.len);
        if (!text)
                return -ENOMEM;
        char *save = NULL;
        for (char *line = strtok_r(text, "\n", &save); line && n_nodes < NODES_MAX;
             line = strtok_r(NULL, "\n", &save)) {
                char id[ID_MAX + 1], psk_id[ID_MAX + 1], hex[2 * KEY_MAX + 1];
                node_t *nd = &nodes[n_nodes];
                if (sscanf(line, "%127s %127s %128s", id, psk_id, hex) != 3 ||
                    hex_decode(hex, nd->key, sizeof nd->key, &nd->key_len) < 0 || nd->key_len < 16) {
                        erase(hex, sizeof hex);
                        erase(text, sec.len);
                        fprintf(stderr, "%s: bad line %zu\n", path, n_nodes + 1);
                        return -EINVAL;
                }
                erase(hex, sizeof hex);
                strcpy(nd->id, id);
                strcpy(nd->psk_id, psk_id);
                n_nodes++;
        }
        erase(text, sec.len);
        return n_nodes > 0 ? 0 : -ENODATA;
}

static WOLFSSL_CTX *ctx_new(bool server) {
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method());
        int groups[] = { WOLFSSL_ECC_X25519 };
        if (!ctx)
                return NULL;
        if (wolfSSL_CTX_set_cipher_list(ctx, SUITE) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_set_groups(ctx, groups, 1) != WOLFSSL_SUCCESS) {
                wolfSSL_CTX_free(ctx);
                return NULL;
        }
        if (server)
                wolfSSL_CTX_no_ticket_TLSv13(ctx); /* as msce-mef */
        wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
        return ctx;
}

/* Length of the complete HTTP message in buf (head + Content-Length body), 0 while incomplete. */
static size_t msg_complete(const char *buf, size_t len) {
        const char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end)
                return 0;
        size_t head = (size_t) (end - buf) + 4, body = 0;
        const char *cl = memmem(buf, head, "Content-Length: ", 16);
        if (cl)
                body = strtoul(cl + 16, NULL, 10);
        return len >= head + body ? head + body : 0;
}

static uint64_t rusage_cpu_ns(void) {
        struct rusage ru;
        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return ((uint64_t) ru.ru_utime.tv_sec + (uint64_t) ru.ru_stime.tv_sec) * 1000000000u +
               ((uint64_t) ru.ru_utime.tv_usec + (uint64_t) ru.ru_stime.tv_usec) * 1000u;
}

/* CPU time of a (single-threaded) process in ns, from /proc/PID/schedstat; 0 when unknown. */
static uint64_t task_cpu_ns(pid_t pid) {
        char path[64];
        unsigned long long ns = 0;
        snprintf(path, sizeof path, "/proc/%d/schedstat", (int) pid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f || fscanf(f, "%llu", &ns) != 1)
                return 0;
        return ns;
}

/* ---- generator ---- */

typedef enum phase {
        PH_IDLE,
        PH_CONNECT,
        PH_HANDSHAKE,
        PH_WRITE,
        PH_READ,
} phase_t;

typedef struct slot {
        int fd;
        WOLFSSL *ssl;
        phase_t phase;
        uint32_t events;   /* what epoll waits for */
        const node_t *node;
        uint64_t started;
        char buf[BUF_MAX];
        size_t len;
} slot_t;

typedef struct gen_result {
        uint64_t ok, status_4xx, status_503, status_other, errors;
        uint64_t cpu_ns;
        uint32_t hist[HIST_N];
} gen_result_t;

typedef struct gen {
        WOLFSSL_CTX *ctx;
        int epfd;
        uint16_t port;
        uint64_t win_start, win_end;
        unsigned long long ri;
        gen_result_t *res;
} gen_t;

static unsigned gen_psk(WOLFSSL *ssl, const char *hint, char *identity, unsigned id_max, unsigned char *key,
                        unsigned key_max, const char **suite) {
        const slot_t *s = wolfSSL_get_ex_data(ssl, 0);
        if (!s || !s->node || strlen(s->node->psk_id) >= id_max || s->node->key_len > key_max)
                return 0;
        strcpy(identity, s->node->psk_id);
        memcpy(key, s->node->key, s->node->key_len);
        *suite = SUITE;
        return (unsigned) s->node->key_len;
}

static void slot_close(gen_t *g, slot_t *s) {
        if (s->ssl)
                wolfSSL_free(s->ssl);
        s->ssl = NULL;
        if (s->fd >= 0)
                close(s->fd); /* also leaves the epoll set */
        s->fd = -1;
        s->phase = PH_IDLE;
        s->len = 0;
}

static bool in_window(const gen_t *g, uint64_t t) {
        return t >= g->win_start && t < g->win_end;
}

/* Connection ended; count it when it ended inside the measured window. */
static void slot_finish(gen_t *g, slot_t *s, int status) {
        uint64_t now = now_usec();
        if (in_window(g, now)) {
                gen_result_t *r = g->res;
                if (status >= 200 && status < 300) {
                        r->ok++;
                        uint64_t b = (now - s->started) / HIST_BUCKET_US;
                        r->hist[MIN(b, (uint64_t) HIST_N - 1)]++;
                } else if (status == 503)
                        r->status_503++;
                else if (status >= 400 && status < 500)
                        r->status_4xx++;
                else if (status > 0)
                        r->status_other++;
                else
                        r->errors++;
        }
        if (status > 0 && s->ssl)
                (void) wolfSSL_shutdown(s->ssl); /* close_notify, best effort, no waiting */
        slot_close(g, s);
}

static int slot_wait(gen_t *g, slot_t *s, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.ptr = s };
        if (events == s->events)
                return 0;
        s->events = events;
        return epoll_ctl(g->epfd, EPOLL_CTL_MOD, s->fd, &ev);
}

static void slot_start(gen_t *g, slot_t *s, const node_t *node) {
        s->node = node;
        s->started = now_usec();
        s->len = 0;
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->fd < 0) {
                slot_finish(g, s, -1);
                return;
        }
        int one = 1;
        (void) setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as msce-agent */
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(g->port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = s };
        if ((connect(s->fd, (struct sockaddr *) &sa, sizeof sa) < 0 && errno != EINPROGRESS) ||
            epoll_ctl(g->epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
                slot_finish(g, s, -1);
                return;
        }
        s->phase = PH_CONNECT;
        s->events = EPOLLOUT;
}

static int status_of(const char *buf) {
        unsigned long st;
        if (strncmp(buf, "HTTP/1.1 ", 9) != 0)
                return -1;
        st = strtoul(buf + 9, NULL, 10);
        return st >= 100 && st <= 599 ? (int) st : -1;
}

/* After connect: the TLS object for this connection. */
static int slot_tls(gen_t *g, slot_t *s) {
        int e = 0;
        socklen_t l = sizeof e;
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0 || e != 0)
                return -ECONNREFUSED;
        s->ssl = wolfSSL_new(g->ctx);
        if (!s->ssl || wolfSSL_set_fd(s->ssl, s->fd) != WOLFSSL_SUCCESS ||
            wolfSSL_set_ex_data(s->ssl, 0, s) != WOLFSSL_SUCCESS ||
            wolfSSL_UseKeyShare(s->ssl, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS)
                return -ENOMEM;
        return 0;
}

/* Read until the response is complete: its status, 0 when more is needed (ret holds the
 * wolfSSL return), -1 on error. */
static int slot_read(slot_t *s, int *ret) {
        for (;;) {
                if (s->len >= sizeof s->buf - 1)
                        return -1;
                *ret = wolfSSL_read(s->ssl, s->buf + s->len, (int) (sizeof s->buf - 1 - s->len));
                if (*ret <= 0)
                        return 0;
                s->len += (size_t) *ret;
                s->buf[s->len] = 0;
                if (msg_complete(s->buf, s->len))
                        return status_of(s->buf);
        }
}

/* Drive one connection as far as it goes without blocking. */
static void slot_step(gen_t *g, slot_t *s) {
        int ret = 0, st;
        switch (s->phase) {
        case PH_CONNECT:
                if (slot_tls(g, s) < 0) {
                        slot_finish(g, s, -1);
                        return;
                }
                s->phase = PH_HANDSHAKE;
                __attribute__((fallthrough));
        case PH_HANDSHAKE:
                ret = wolfSSL_connect(s->ssl);
                if (ret != WOLFSSL_SUCCESS)
                        break;
                s->len = (size_t) snprintf(s->buf, sizeof s->buf,
                                           "POST /msce/enrolments HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                                           "X-M2M-Origin: %s\r\nX-M2M-RI: %016llx\r\nX-M2M-RVI: 3\r\n"
                                           "Accept: application/json\r\nConnection: close\r\n"
                                           "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n"
                                           "{\"msce:enrolReq\":{\"nodeID\":\"%s\"}}",
                                           g->port, s->node->id, g->ri++, strlen(s->node->id) + 31, s->node->id);
                s->phase = PH_WRITE;
                __attribute__((fallthrough));
        case PH_WRITE:
                /* after WANT_WRITE wolfSSL wants the same buffer again */
                ret = wolfSSL_write(s->ssl, s->buf, (int) s->len);
                if (ret <= 0)
                        break;
                s->len = 0;
                s->phase = PH_READ;
                __attribute__((fallthrough));
        case PH_READ:
                st = slot_read(s, &ret);
                if (st != 0) {
                        slot_finish(g, s, st);
                        return;
                }
                break;
        default:
                return;
        }
        int err = wolfSSL_get_error(s->ssl, ret);
        if (err == WOLFSSL_ERROR_WANT_READ)
                (void) slot_wait(g, s, EPOLLIN);
        else if (err == WOLFSSL_ERROR_WANT_WRITE)
                (void) slot_wait(g, s, EPOLLOUT);
        else
                slot_finish(g, s, -1);
}

static void generate(uint16_t port, unsigned conns, unsigned first, uint64_t win_start, uint64_t win_end,
                     gen_result_t *res) {
        gen_t g = { .port = port, .win_start = win_start, .win_end = win_end, .res = res };
        _cleanup_free_ slot_t *slots = calloc(conns, sizeof *slots);
        g.ctx = ctx_new(false);
        g.epfd = epoll_create1(EPOLL_CLOEXEC);
        if (!slots || !g.ctx || g.epfd < 0) {
                res->errors++;
                return;
        }
        wolfSSL_CTX_set_psk_client_tls13_callback(g.ctx, gen_psk);
        for (unsigned i = 0; i < conns; i++) {
                slots[i].fd = -1;
                slot_start(&g, &slots[i], &nodes[(first + i) % n_nodes]);
        }
        uint64_t cpu0 = 0;
        bool cpu_started = false;
        struct epoll_event ev[64];
        for (;;) {
                uint64_t now = now_usec();
                if (!cpu_started && now >= win_start) {
                        cpu0 = rusage_cpu_ns();
                        cpu_started = true;
                }
                if (now >= win_end)
                        break;
                int n = epoll_wait(g.epfd, ev, ELEMENTSOF(ev), 100);
                if (n < 0 && errno != EINTR)
                        break;
                for (int i = 0; i < n; i++)
                        slot_step(&g, ev[i].data.ptr);
                /* restart finished slots, give up on stuck ones */
                now = now_usec();
                for (unsigned i = 0; i < conns; i++) {
                        slot_t *s = &slots[i];
                        if (s->phase != PH_IDLE && now - s->started > STUCK_USEC)
                                slot_finish(&g, s, -1);
                        if (s->phase == PH_IDLE && now < win_end)
                                slot_start(&g, s, s->node);
                }
        }
        res->cpu_ns = cpu_started ? rusage_cpu_ns() - cpu0 : 0;
        for (unsigned i = 0; i < conns; i++)
                slot_close(&g, &slots[i]);
        close(g.epfd);
        wolfSSL_CTX_free(g.ctx);
}

static double hist_pct_ms(const uint32_t *h, uint64_t total, unsigned p) {
        uint64_t want = (total * p + 99) / 100, seen = 0;
        for (unsigned i = 0; i < HIST_N; i++) {
                seen += h[i];
                if (seen >= want && want > 0)
                        return (i + 0.5) * HIST_BUCKET_US / 1000.0;
        }
        return 0;
}

static int run(uint16_t port, unsigned seconds, unsigned conns, unsigned procs, pid_t server) {
        uint64_t win_start = now_usec() + WARMUP_USEC, win_end = win_start + (uint64_t) seconds * 1000000u;
        /* results come back through shared memory: one gen_result_t per process */
        gen_result_t *res = mmap(NULL, procs * sizeof *res, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (res == MAP_FAILED)
                return 1;
        memset(res, 0, procs * sizeof *res);
        pid_t pids[PROCS_MAX];
        for (unsigned p = 0; p < procs; p++) {
                unsigned share = conns / procs + (p < conns % procs), first = p * (conns / procs) + MIN(p, conns % procs);
                pids[p] = fork();
                if (pids[p] < 0)
                        return 1;
                if (pids[p] == 0) {
                        generate(port, share, first, win_start, win_end, &res[p]);
                        nodes_wipe();
                        _exit(0);
                }
        }
        nodes_wipe();
        uint64_t now = now_usec();
        if (now < win_start)
                usleep((useconds_t) (win_start - now));
        uint64_t srv0 = server > 0 ? task_cpu_ns(server) : 0, t0 = now_usec();
        now = now_usec();
        if (now < win_end)
                usleep((useconds_t) (win_end - now));
        uint64_t srv1 = server > 0 ? task_cpu_ns(server) : 0, t1 = now_usec();
        int rc = 0;
        for (unsigned p = 0; p < procs; p++) {
                int status;
                if (waitpid(pids[p], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                        rc = 1;
        }

        gen_result_t *sum = calloc(1, sizeof *sum);
        if (!sum)
                return 1;
        for (unsigned p = 0; p < procs; p++) {
                sum->ok += res[p].ok;
                sum->status_4xx += res[p].status_4xx;
                sum->status_503 += res[p].status_503;
                sum->status_other += res[p].status_other;
                sum->errors += res[p].errors;
                sum->cpu_ns += res[p].cpu_ns;
                for (unsigned i = 0; i < HIST_N; i++)
                        sum->hist[i] += res[p].hist[i];
        }
        double secs = (double) seconds, wall_ns = (double) (t1 - t0) * 1000.0;
        printf("ok/s %.0f  ok %llu  4xx %llu  503 %llu  other %llu  errors %llu  latency median %.2f p90 %.2f ms  "
               "client cpu %.0f%% (%u proc)",
               sum->ok / secs, (unsigned long long) sum->ok, (unsigned long long) sum->status_4xx,
               (unsigned long long) sum->status_503, (unsigned long long) sum->status_other,
               (unsigned long long) sum->errors, hist_pct_ms(sum->hist, sum->ok, 50),
               hist_pct_ms(sum->hist, sum->ok, 90), 100.0 * (double) sum->cpu_ns / ((double) seconds * 1e9), procs);
        /* ok/s divided by the server's CPU share: its capacity per core, whatever else ran */
        if (server > 0 && srv1 > srv0)
                printf("  server cpu %.0f%%  ok per server cpu-s %.0f", 100.0 * (double) (srv1 - srv0) / wall_ns,
                       (double) sum->ok / secs / ((double) (srv1 - srv0) / wall_ns));
        printf("\n");
        if (sum->ok == 0)
                rc = 1;
        free(sum);
        munmap(res, procs * sizeof *res);
        return rc;
}

/* ---- raw reference server ---- */

typedef struct sconn {
        int fd;
        WOLFSSL *ssl;
        bool handshaken;
        bool answering;
        uint32_t events;   /* what epoll waits for */
        char buf[BUF_MAX];
        size_t len;
} sconn_t;

static volatile sig_atomic_t stop;

static void on_stop(int sig) {
        stop = 1;
}

static unsigned raw_psk(WOLFSSL *ssl, const char *identity, unsigned char *key, unsigned key_max,
                        const char **suite) {
        for (size_t i = 0; identity && i < n_nodes; i++)
                if (streq(identity, nodes[i].psk_id) && nodes[i].key_len <= key_max) {
                        memcpy(key, nodes[i].key, nodes[i].key_len);
                        *suite = SUITE;
                        return (unsigned) nodes[i].key_len;
                }
        return 0;
}

static void sconn_free(sconn_t *c) {
        if (c->ssl)
                wolfSSL_free(c->ssl);
        close(c->fd);
        free(c);
}

/* Handshake, read the request, answer, close. false when the connection is done. */
static bool sconn_step(sconn_t *c, int epfd) {
        static const char answer[] = "HTTP/1.1 200 OK\r\nX-M2M-RSC: 2000\r\nContent-Type: application/json\r\n"
                                     "Connection: close\r\nContent-Length: 2\r\n\r\n{}";
        int ret;
        if (!c->handshaken) {
                ret = wolfSSL_accept(c->ssl);
                if (ret != WOLFSSL_SUCCESS)
                        goto want;
                c->handshaken = true;
        }
        while (!c->answering) {
                if (c->len >= sizeof c->buf - 1)
                        return false;
                ret = wolfSSL_read(c->ssl, c->buf + c->len, (int) (sizeof c->buf - 1 - c->len));
                if (ret <= 0)
                        goto want;
                c->len += (size_t) ret;
                if (msg_complete(c->buf, c->len))
                        c->answering = true;
        }
        ret = wolfSSL_write(c->ssl, answer, (int) sizeof answer - 1);
        if (ret <= 0)
                goto want;
        (void) wolfSSL_shutdown(c->ssl);
        return false;
want:;
        int err = wolfSSL_get_error(c->ssl, ret);
        struct epoll_event ev = { .events = err == WOLFSSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN, .data.ptr = c };
        if (err != WOLFSSL_ERROR_WANT_READ && err != WOLFSSL_ERROR_WANT_WRITE)
                return false;
        if (ev.events == c->events)
                return true;
        c->events = ev.events;
        return epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0;
}

static int serve(unsigned max_seconds) {
        WOLFSSL_CTX *ctx = ctx_new(true);
        if (!ctx)
                return 1;
        wolfSSL_CTX_set_psk_server_tls13_callback(ctx, raw_psk);
        _cleanup_close_ int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        _cleanup_close_ int epfd = epoll_create1(EPOLL_CLOEXEC);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t salen = sizeof sa;
        int one = 1;
        struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
        if (lfd < 0 || epfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
            bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, LISTEN_BACKLOG) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sa, &salen) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
                perror("raw server");
                return 1;
        }
        struct sigaction act = { .sa_handler = on_stop };
        sigaction(SIGTERM, &act, NULL);
        sigaction(SIGINT, &act, NULL);
        printf("listening on 127.0.0.1:%u\n", ntohs(sa.sin_port));
        fflush(stdout);

        uint64_t end = now_usec() + (uint64_t) max_seconds * 1000000u;
        struct epoll_event ev[64];
        while (!stop && now_usec() < end) {
                int n = epoll_wait(epfd, ev, ELEMENTSOF(ev), 200);
                for (int i = 0; i < n; i++) {
                        if (!ev[i].data.ptr) {
                                for (int k = 0; k < ACCEPT_BATCH; k++) {
                                        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                                        if (fd < 0)
                                                break;
                                        sconn_t *c = calloc(1, sizeof *c);
                                        if (!c) {
                                                close(fd);
                                                continue;
                                        }
                                        c->fd = fd;
                                        c->events = EPOLLIN;
                                        c->ssl = wolfSSL_new(ctx);
                                        struct epoll_event cev = { .events = EPOLLIN, .data.ptr = c };
                                        if (!c->ssl || wolfSSL_set_fd(c->ssl, fd) != WOLFSSL_SUCCESS ||
                                            epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev) < 0 || !sconn_step(c, epfd))
                                                sconn_free(c);
                                }
                                continue;
                        }
                        if (!sconn_step(ev[i].data.ptr, epfd))
                                sconn_free(ev[i].data.ptr);
                }
        }
        /* connections still open at exit are left to the kernel: the process ends here */
        wolfSSL_CTX_free(ctx);
        return 0;
}

int main(int argc, char **argv) {
        signal(SIGPIPE, SIG_IGN); /* wolfSSL's default I/O writes without MSG_NOSIGNAL */
        unsigned long long port, secs, conns, procs, pid = 0;
        if (wolfSSL_Init() != WOLFSSL_SUCCESS)
                return 1;
        if ((argc == 7 || argc == 8) && streq(argv[1], "run") && parse_uint(argv[2], 65535, &port) == 0 && port > 0 &&
            parse_uint(argv[4], 3600, &secs) == 0 && secs > 0 && parse_uint(argv[5], CONNS_MAX, &conns) == 0 &&
            conns > 0 && parse_uint(argv[6], PROCS_MAX, &procs) == 0 && procs > 0 && procs <= conns &&
            (argc == 7 || parse_uint(argv[7], INT32_MAX, &pid) == 0)) {
                if (nodes_load(argv[3]) < 0)
                        return 1;
                return run((uint16_t) port, (unsigned) secs, (unsigned) conns, (unsigned) procs, (pid_t) pid);
        }
        if (argc == 4 && streq(argv[1], "server") && parse_uint(argv[3], 24 * 3600, &secs) == 0 && secs > 0) {
                if (nodes_load(argv[2]) < 0)
                        return 1;
                int r = serve((unsigned) secs);
                nodes_wipe();
                return r;
        }
        fprintf(stderr, "usage: %s run PORT NODES SECONDS CONNS PROCS [SERVER_PID] | server NODES MAX_SECONDS\n",
                argv[0]);
        return 2;
}

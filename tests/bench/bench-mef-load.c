/* SPDX-License-Identifier: MIT */
/* The raw reference server of the per-core efficiency benchmark (bench-mef-load.sh): a minimal
 * single-threaded epoll wolfSSL PSK server (psk TLS 1.3, X25519, TLS13-AES128-GCM-SHA256, no
 * tickets, as msce-mef): handshake, read the request, fixed small answer, close. The load comes
 * from msce-loadgen --duration, the same generator for both servers.
 *   bench-mef-load server NODES MAX_SECONDS
 *       NODES: lines "NODE_ID PSK_IDENTITY KPM_HEX" (owner-only file). Serves on 127.0.0.1,
 *       port 0 ("listening on 127.0.0.1:PORT" on stdout), until SIGTERM/SIGINT or MAX_SECONDS. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include "tests/bench/bench-tls.h"
#include "tests/bench/msg-complete.h"

#define SUITE "TLS13-AES128-GCM-SHA256"
#define NODES_MAX 1024u
#define KEY_MAX 64u
#define ID_MAX 127u
#define BUF_MAX 8192u
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
        /* not strndup(): no NUL after the file's bytes to stop a read */
        _cleanup_free_ char *text = malloc(sec.len + 1);
        if (!text)
                return -ENOMEM;
        memcpy(text, sec.data, sec.len);
        text[sec.len] = 0;
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

static WOLFSSL_CTX *ctx_new(void) {
        WOLFSSL_CTX *ctx = bench_tls_ctx(wolfTLSv1_3_server_method(), SUITE);
        if (!ctx)
                return NULL;
        wolfSSL_CTX_no_ticket_TLSv13(ctx); /* as msce-mef */
        wolfSSL_CTX_set_session_cache_mode(ctx, WOLFSSL_SESS_CACHE_OFF);
        return ctx;
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
        WOLFSSL_CTX *ctx = ctx_new();
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
        unsigned long long secs;
        if (wolfSSL_Init() != WOLFSSL_SUCCESS)
                return 1;
        if (argc == 4 && streq(argv[1], "server") && parse_uint(argv[3], 24 * 3600, &secs) == 0 && secs > 0) {
                if (nodes_load(argv[2]) < 0)
                        return 1;
                int r = serve((unsigned) secs);
                nodes_wipe();
                return r;
        }
        fprintf(stderr, "usage: %s server NODES MAX_SECONDS\n", argv[0]);
        return 2;
}

/* SPDX-License-Identifier: MIT */
/* The TLS tests' peers (tls-peers.h). */
#include "tests/integration/tls-peers.h"

const uint8_t good_psk[32] = {
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
};

static char certs[PATH_MAX / 2];

const char *cert(const char *name) {
        static char buf[8][PATH_MAX];
        static unsigned i;
        char *p = buf[i++ % 8];
        snprintf(p, PATH_MAX, "%s/%s", certs, name);
        return p;
}

void need_certs(void) {
        const char *d = getenv("MSCE_TEST_CERTS");
        if (!d || !d[0])
                cr_skip_test("MSCE_TEST_CERTS not set (run through meson test)");
        snprintf(certs, sizeof(certs), "%s", d);
        if (access(cert("ca.pem"), R_OK) < 0)
                cr_skip_test("no test certificates in %s", d);
}

unsigned lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max) {
        if (!streq(identity, IDENTITY) || key_max < sizeof(good_psk))
                return 0;
        memcpy(key, good_psk, sizeof(good_psk));
        return sizeof(good_psk);
}

/* The raw wolfSSL peers below would otherwise run wolfSSL_Init (from wolfSSL_CTX_new) in
 * the main thread at the same time as proto/tls does in the server thread. */
static void suite_init(void) {
        cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
}

TestSuite(tls, .init = suite_init);

void record(peer_t *p, tls_conn_t *c) {
        snprintf(p->version, sizeof(p->version), "%s", tls_conn_version(c));
        snprintf(p->cipher, sizeof(p->cipher), "%s", tls_conn_cipher(c));
        p->r_ekm = tls_conn_export(c, KDF_EXPORTER_LABEL, p->ekm, sizeof(p->ekm));
        const char *s = tls_conn_sni(c);
        p->has_sni = s != NULL;
        if (s)
                snprintf(p->sni, sizeof(p->sni), "%s", s);
        s = tls_conn_psk_identity(c);
        p->has_identity = s != NULL;
        if (s)
                snprintf(p->identity, sizeof(p->identity), "%s", s);
        p->r_fp = tls_conn_peer_fingerprint(c, p->fp);
}

/* p's context and a connection on fd, through the handshake (p->r, p->r_ctx): the connection,
 * NULL in *ret_ctx when the context failed. */
static tls_conn_t *peer_handshake(peer_t *p, int fd, bool server, tls_ctx_t **ret_ctx) {
        p->r = p->r_ctx = server ? tls_ctx_new_server(&p->cfg, ret_ctx) : tls_ctx_new_client(&p->cfg, ret_ctx);
        if (p->r_ctx < 0)
                return NULL;
        snprintf(p->ciphers, sizeof(p->ciphers), "%s", tls_ctx_ciphers(*ret_ctx));
        tls_conn_t *c = NULL;
        p->r = server ? tls_conn_new_server(*ret_ctx, fd, &c)
                      : tls_conn_new_client(*ret_ctx, fd, p->host ? p->host : "mef.test", &c);
        if (p->r == 0)
                p->r = tls_conn_handshake_until(c, now_usec() + TIMEOUT_USEC);
        return c;
}

int accept_one(int lfd) {
        struct pollfd pfd = { .fd = lfd, .events = POLLIN };
        if (poll(&pfd, 1, (int) (TIMEOUT_USEC / 1000)) != 1)
                return -ETIMEDOUT;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* After a failed handshake, a TLS 1.3 client may still be sending: closing with unread data
 * would reset the connection, which these tests leave to test-tls-reset.c (the reset can reach
 * the client before its next write, and our alert is read after that write: proto/tls-ctx.c
 * io_send). */
void lingering_close(int fd) {
        char buf[4096];
        shutdown(fd, SHUT_WR);
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        while (poll(&pfd, 1, 1000) == 1 && read(fd, buf, sizeof(buf)) > 0)
                ;
}

/* The echo: the server answers "pong:" and what it read; the client sends "ping" and keeps
 * what comes back in p->echoed (p->r_read). */
static void echo_pong(tls_conn_t *c) {
        char buf[32] = "";
        ssize_t n = tls_conn_read_until(c, buf, sizeof(buf) - 1, now_usec() + TIMEOUT_USEC);
        if (n > 0) {
                char out[64];
                int k = snprintf(out, sizeof(out), "pong:%.*s", (int) n, buf);
                tls_conn_write_all_until(c, out, (size_t) k, now_usec() + TIMEOUT_USEC);
        }
}

static void echo_ping(peer_t *p, tls_conn_t *c) {
        p->r_read = tls_conn_write_all_until(c, "ping", 4, now_usec() + TIMEOUT_USEC);
        size_t got = 0;
        while (p->r_read == 0) {
                ssize_t n = tls_conn_read_until(c, p->echoed + got, sizeof(p->echoed) - 1 - got,
                                                now_usec() + TIMEOUT_USEC);
                if (n <= 0) {
                        p->r_read = n;
                        break;
                }
                got += (size_t) n;
        }
        p->echoed[got] = 0;
}

/* p's side of one connection on fd: the handshake, what it gave (record), the echo when asked,
 * and the close: a TLS shutdown, or after a failed handshake on the server a lingering close. */
static void peer_session(peer_t *p, int fd, bool server) {
        tls_ctx_t *ctx = NULL;
        tls_conn_t *c = peer_handshake(p, fd, server, &ctx);
        if (!ctx)
                return;
        if (p->r == 0) {
                record(p, c);
                if (p->echo && server)
                        echo_pong(c);
                else if (p->echo)
                        echo_ping(p, c);
                tls_conn_shutdown(c);
        } else if (server)
                lingering_close(fd);
        tls_conn_free(c);
        tls_ctx_free(ctx);
}

void server_body(peer_t *p) {
        _cleanup_close_ int fd = accept_one(p->lfd);
        if (fd < 0) {
                p->r = fd;
                return;
        }
        peer_session(p, fd, true);
}

/* wolfSSL's P-256 fixed-point cache is thread-local here (FP_ECC, HAVE_THREAD_LS): free it
 * before a server thread ends, or LSan reports it. */
static void *server_thread(void *arg) {
        server_body(arg);
        wc_ecc_fp_free();
        return NULL;
}

static const char *raw_suite_name;

static unsigned raw_server_psk(WOLFSSL *ssl, const char *id, unsigned char *key, unsigned max,
                               const char **suite) {
        *suite = raw_suite_name;
        memcpy(key, good_psk, sizeof(good_psk));
        return sizeof(good_psk);
}

/* A wolfSSL server that does not follow our rules: only the given suite, PSK. */
static void *raw_server_thread(void *arg) {
        peer_t *p = arg;
        _cleanup_close_ int fd = accept_one(p->lfd);
        if (fd < 0) {
                p->r = fd;
                return NULL;
        }
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
        raw_suite_name = p->raw_suite;
        wolfSSL_CTX_set_cipher_list(ctx, p->raw_suite);
        wolfSSL_CTX_set_psk_server_tls13_callback(ctx, raw_server_psk);
        if (p->raw_no_dhe)
                wolfSSL_CTX_no_dhe_psk(ctx);
        WOLFSSL *ssl = wolfSSL_new(ctx);
        wolfSSL_set_fd(ssl, fd);
        p->r = wolfSSL_accept(ssl) == WOLFSSL_SUCCESS ? 0 : -EPROTO;
        if (p->r == 0)
                snprintf(p->cipher, sizeof(p->cipher), "%s", wolfSSL_get_cipher_name(ssl));
        wolfSSL_free(ssl);
        wolfSSL_CTX_free(ctx);
        wc_ecc_fp_free();
        return NULL;
}

int listen_any(char port[8]) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
        cr_assert_eq(listen(fd, 4), 0);
        cr_assert_eq(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        snprintf(port, 8, "%u", ntohs(a.sin_port));
        return fd;
}

void client_run(peer_t *p, const char *port) {
        _cleanup_close_ int fd = -1;
        p->r = tcp_connect_until("127.0.0.1", port, now_usec() + TIMEOUT_USEC, &fd);
        if (p->r < 0)
                return;
        peer_session(p, fd, false);
}

/* One connection: server (our server, or raw when srv->raw_suite) in a thread, client here. */
void run_pair(peer_t *srv, peer_t *cli) {
        char port[8];
        srv->lfd = listen_any(port);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, srv->raw_suite ? raw_server_thread : server_thread, srv), 0);
        client_run(cli, port);
        pthread_join(th, NULL);
        close(srv->lfd);
}

static unsigned raw_client_psk(WOLFSSL *ssl, const char *hint, char *id, unsigned id_max,
                               unsigned char *key, unsigned key_max, const char **suite) {
        *suite = raw_suite_name;
        snprintf(id, id_max, "%s", IDENTITY);
        memcpy(key, good_psk, sizeof(good_psk));
        return sizeof(good_psk);
}

/* A raw wolfSSL TLS 1.3 PSK client against our server in srv (thread). */
void run_raw_client(peer_t *srv, peer_t *cli) {
        char port[8];
        srv->lfd = listen_any(port);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, server_thread, srv), 0);
        int fd = -1;
        cr_assert_eq(tcp_connect_until("127.0.0.1", port, now_usec() + TIMEOUT_USEC, &fd), 0);
        int flags = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        raw_suite_name = cli->raw_suite;
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
        wolfSSL_CTX_set_cipher_list(ctx, cli->raw_suite);
        wolfSSL_CTX_set_psk_client_tls13_callback(ctx, raw_client_psk);
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
        if (cli->raw_no_dhe)
                wolfSSL_CTX_no_dhe_psk(ctx);
        WOLFSSL *ssl = wolfSSL_new(ctx);
        wolfSSL_set_fd(ssl, fd);
        cli->r = wolfSSL_connect(ssl) == WOLFSSL_SUCCESS ? 0 : -EPROTO;
        if (cli->r == 0) {
                snprintf(cli->cipher, sizeof(cli->cipher), "%s", wolfSSL_get_cipher_name(ssl));
                WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(ssl);
                cli->raw_certs = chain ? wolfSSL_get_chain_count(chain) : 0;
                char buf[16];
                wolfSSL_read(ssl, buf, sizeof(buf)); /* wait for the server to decide */
        }
        wolfSSL_free(ssl);
        wolfSSL_CTX_free(ctx);
        close(fd);
        pthread_join(th, NULL);
        close(srv->lfd);
}

tls_config_t psk_client(tls_version_t min, tls_version_t max) {
        return (tls_config_t) {
                .mode = TLS_MODE_PSK, .min_version = min, .max_version = max,
                .psk_identity = IDENTITY, .psk = good_psk, .psk_len = sizeof(good_psk),
        };
}

tls_config_t psk_server(tls_version_t min, tls_version_t max) {
        return (tls_config_t) {
                .mode = TLS_MODE_PSK, .min_version = min, .max_version = max, .psk_lookup = lookup,
        };
}

tls_config_t cert_client(tls_version_t max) {
        return (tls_config_t) {
                .mode = TLS_MODE_CERT, .max_version = max,
                .cert_file = cert("client.pem"), .key_file = cert("client.key"), .ca_file = cert("ca.pem"),
        };
}

tls_config_t cert_server(tls_version_t max) {
        return (tls_config_t) {
                .mode = TLS_MODE_CERT, .max_version = max,
                .cert_file = cert("server.pem"), .key_file = cert("server.key"), .ca_file = cert("ca.pem"),
        };
}

tls_config_t both_server(void) {
        need_certs();
        tls_config_t both = cert_server(0);
        both.psk_lookup = lookup;
        return both;
}

int listen_connected(int *ret_fd) {
        char port[8];
        int lfd = listen_any(port);
        cr_assert_eq(tcp_connect_until("127.0.0.1", port, now_usec() + TIMEOUT_USEC, ret_fd), 0);
        return lfd;
}

void conn_pair_open(conn_pair_t *p, const tls_config_t *scfg, const tls_config_t *ccfg) {
        *p = (conn_pair_t) { .fd = -1, .lfd = -1, .afd = -1 };
        p->lfd = listen_connected(&p->fd);
        p->afd = accept_one(p->lfd);
        cr_assert_geq(p->afd, 0);
        cr_assert_eq(tls_ctx_new_server(scfg, &p->sctx), 0);
        cr_assert_eq(tls_ctx_new_client(ccfg, &p->cctx), 0);
        cr_assert_eq(tls_conn_new_server(p->sctx, p->afd, &p->s), 0);
        cr_assert_eq(tls_conn_new_client(p->cctx, p->fd, "mef.test", &p->c), 0);
}

void conn_pair_close(conn_pair_t *p) {
        tls_conn_free(p->s);
        tls_conn_free(p->c);
        tls_ctx_free(p->sctx);
        tls_ctx_free(p->cctx);
        closep(&p->afd);
        closep(&p->lfd);
        closep(&p->fd);
}

void expect_same_ekm(const peer_t *s, const peer_t *c) {
        cr_assert_eq(s->r_ekm, 0);
        cr_assert_eq(c->r_ekm, 0);
        cr_assert_arr_eq(s->ekm, c->ekm, KDF_EKM_LEN, "exporter output differs");
        static const uint8_t zero[KDF_EKM_LEN];
        cr_assert_arr_neq(c->ekm, zero, KDF_EKM_LEN);
}


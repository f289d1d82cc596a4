/* SPDX-License-Identifier: MIT */
/* proto/tls end to end: our client against our server (and a raw wolfSSL peer) on 127.0.0.1. */
#include <wolfssl/options.h>
#include <criterion/criterion.h>

#include "keys/kdf.h"
#include "proto/exchange.h"
#include "util/util.h"

#include <wolfssl/ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#define IDENTITY "urn:dev:ops:kpm-0001"
/* Where wolfSSL releases behave differently, the expectation follows the one this is built
 * with: up to 5.5.4 (Debian 12), or newer (measured with Debian 13's 5.7.2; the versions between
 * are not). docs/interop.md, "wolfSSL 5.5 and 5.7". */
#define WOLFSSL_55 (LIBWOLFSSL_VERSION_HEX <= 0x05005004)
#define TIMEOUT_USEC (30 * 1000 * 1000ULL) /* a deadline for hangs, however loaded the machine */

static const uint8_t good_psk[32] = {
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
        0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
};

static char certs[PATH_MAX / 2];

static const char *cert(const char *name) {
        static char buf[8][PATH_MAX];
        static unsigned i;
        char *p = buf[i++ % 8];
        snprintf(p, PATH_MAX, "%s/%s", certs, name);
        return p;
}

static void need_certs(void) {
        const char *d = getenv("MSCE_TEST_CERTS");
        if (!d || !d[0])
                cr_skip_test("MSCE_TEST_CERTS not set (run through meson test)");
        snprintf(certs, sizeof(certs), "%s", d);
        if (access(cert("ca.pem"), R_OK) < 0)
                cr_skip_test("no test certificates in %s", d);
}

static unsigned lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max) {
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

/* ---- a server thread ---- */

typedef struct peer {
        tls_config_t cfg;
        const char *host;      /* client only */
        const char *raw_suite; /* a raw wolfSSL PSK peer offering only this suite */
        bool raw_no_dhe;       /* raw peer: psk_ke only (no (EC)DHE) */
        bool echo;
        int lfd;
        /* results */
        int r_ctx, r;
        char version[16], cipher[64], ciphers[512];
        uint8_t ekm[KDF_EKM_LEN];
        int r_ekm;
        char sni[256];
        bool has_sni;
        char identity[200];
        bool has_identity;
        char fp[65];
        int r_fp;
        char echoed[64];
        ssize_t r_read;        /* client with echo: last read result */
        int raw_certs;         /* raw client: certificates the server sent */
        int first_r;           /* two connections: the first one's result */
} peer_t;

static void record(peer_t *p, tls_conn_t *c) {
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

static int accept_one(int lfd) {
        struct pollfd pfd = { .fd = lfd, .events = POLLIN };
        if (poll(&pfd, 1, (int) (TIMEOUT_USEC / 1000)) != 1)
                return -ETIMEDOUT;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* After a failed handshake, a TLS 1.3 client may still be sending: closing with unread data
 * would reset the connection and destroy our alert before the client reads it. */
static void lingering_close(int fd) {
        char buf[4096];
        shutdown(fd, SHUT_WR);
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        while (poll(&pfd, 1, 1000) == 1 && read(fd, buf, sizeof(buf)) > 0)
                ;
}

static void server_body(peer_t *p) {
        _cleanup_close_ int fd = accept_one(p->lfd);
        if (fd < 0) {
                p->r = fd;
                return;
        }
        tls_ctx_t *ctx = NULL;
        tls_conn_t *c = peer_handshake(p, fd, true, &ctx);
        if (!ctx)
                return;
        if (p->r == 0) {
                record(p, c);
                if (p->echo) {
                        char buf[32] = "";
                        ssize_t n = tls_conn_read_until(c, buf, sizeof(buf) - 1, now_usec() + TIMEOUT_USEC);
                        if (n > 0) {
                                char out[64];
                                int k = snprintf(out, sizeof(out), "pong:%.*s", (int) n, buf);
                                tls_conn_write_all_until(c, out, (size_t) k, now_usec() + TIMEOUT_USEC);
                        }
                }
                tls_conn_shutdown(c);
        } else
                lingering_close(fd);
        tls_conn_free(c);
        tls_ctx_free(ctx);
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

static int listen_any(char port[8]) {
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

static void client_run(peer_t *p, const char *port) {
        _cleanup_close_ int fd = -1;
        p->r = tcp_connect_until("127.0.0.1", port, now_usec() + TIMEOUT_USEC, &fd);
        if (p->r < 0)
                return;
        tls_ctx_t *ctx = NULL;
        tls_conn_t *c = peer_handshake(p, fd, false, &ctx);
        if (!ctx)
                return;
        if (p->r == 0) {
                record(p, c);
                if (p->echo) {
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
                tls_conn_shutdown(c);
        }
        tls_conn_free(c);
        tls_ctx_free(ctx);
}

/* One connection: server (our server, or raw when srv->raw_suite) in a thread, client here. */
static void run_pair(peer_t *srv, peer_t *cli) {
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
static void run_raw_client(peer_t *srv, peer_t *cli) {
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

static tls_config_t psk_client(tls_version_t min, tls_version_t max) {
        return (tls_config_t) {
                .mode = TLS_MODE_PSK, .min_version = min, .max_version = max,
                .psk_identity = IDENTITY, .psk = good_psk, .psk_len = sizeof(good_psk),
        };
}

static tls_config_t psk_server(tls_version_t min, tls_version_t max) {
        return (tls_config_t) {
                .mode = TLS_MODE_PSK, .min_version = min, .max_version = max, .psk_lookup = lookup,
        };
}

static tls_config_t cert_client(tls_version_t max) {
        return (tls_config_t) {
                .mode = TLS_MODE_CERT, .max_version = max,
                .cert_file = cert("client.pem"), .key_file = cert("client.key"), .ca_file = cert("ca.pem"),
        };
}

static tls_config_t cert_server(tls_version_t max) {
        return (tls_config_t) {
                .mode = TLS_MODE_CERT, .max_version = max,
                .cert_file = cert("server.pem"), .key_file = cert("server.key"), .ca_file = cert("ca.pem"),
        };
}

static void expect_same_ekm(const peer_t *s, const peer_t *c) {
        cr_assert_eq(s->r_ekm, 0);
        cr_assert_eq(c->r_ekm, 0);
        cr_assert_arr_eq(s->ekm, c->ekm, KDF_EKM_LEN, "exporter output differs");
        static const uint8_t zero[KDF_EKM_LEN];
        cr_assert_arr_neq(c->ekm, zero, KDF_EKM_LEN);
}

static bool in_list(const char *list, const char *name) {
        size_t n = strlen(name);
        for (const char *p = list; (p = strstr(p, name)); p += n)
                if ((p == list || p[-1] == ':') && (p[n] == 0 || p[n] == ':'))
                        return true;
        return false;
}

/* ---- successful handshakes ---- */

Test(tls, psk_tls12) {
        peer_t s = { .cfg = psk_server(0, TLS_VERSION_1_2) };
        peer_t c = { .cfg = psk_client(0, TLS_VERSION_1_2), .echo = true };
        s.echo = true;
        run_pair(&s, &c);
        cr_assert_eq(c.r, 0, "client: %s", strerror(-c.r));
        cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
        cr_assert_str_eq(c.version, "TLSv1.2");
        cr_assert_str_eq(s.version, "TLSv1.2");
        /* ECDHE-PSK on this wolfSSL; a build with static PSK may pick that from the list. */
        cr_assert(strstr(c.cipher, "PSK-AES128-") != NULL, "cipher %s", c.cipher);
        cr_assert(in_list(c.ciphers, c.cipher), "%s not in %s", c.cipher, c.ciphers);
        cr_assert_str_eq(s.cipher, c.cipher);
        expect_same_ekm(&s, &c);
        cr_assert(s.has_identity);
        cr_assert_str_eq(s.identity, IDENTITY);
        cr_assert_eq(s.r_fp, -ENOKEY);
        cr_assert_str_eq(c.echoed, "pong:ping");
        cr_assert_eq(c.r_read, 0, "read after pong: %zd", c.r_read);
}

Test(tls, psk_tls13) {
        peer_t s = { .cfg = psk_server(0, 0), .echo = true };
        peer_t c = { .cfg = psk_client(0, 0), .echo = true };
        run_pair(&s, &c);
        cr_assert_eq(c.r, 0, "client: %s", strerror(-c.r));
        cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
        cr_assert_str_eq(c.version, "TLSv1.3");
        cr_assert_str_eq(c.cipher, "TLS13-AES128-GCM-SHA256");
        cr_assert_str_eq(s.cipher, "TLS13-AES128-GCM-SHA256");
        expect_same_ekm(&s, &c);
        cr_assert(s.has_identity);
        cr_assert_str_eq(s.identity, IDENTITY);
        cr_assert_str_eq(s.sni, "mef.test");
        cr_assert_str_eq(c.echoed, "pong:ping");
        cr_assert_eq(c.r_read, 0, "read after pong: %zd", c.r_read);
}

/* ---- issue 10: TLS 1.2-only MEFs with the default versions, and the downgrade guard ---- */

#if WOLFSSL_55
/* wolfSSL 5.5.4 cannot continue a handshake in which a TLS 1.2 server answers a TLS 1.3 PSK
 * ClientHello: the client connects again for a TLS 1.2-only handshake (docs/protocol.md). The
 * server thread serves two connections; the first fails. */
static void *two_server_thread(void *arg) {
        peer_t *p = arg;
        server_body(p);
        p->first_r = p->r;
        server_body(p);
        wc_ecc_fp_free();
        return NULL;
}

static void run_pair_twice(peer_t *srv, peer_t *cli) {
        char port[8];
        srv->lfd = listen_any(port);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, two_server_thread, srv), 0);
        client_run(cli, port);
        pthread_join(th, NULL);
        close(srv->lfd);
}
#endif

Test(tls, psk_default_versions_tls12_server) {
        peer_t s = { .cfg = psk_server(0, TLS_VERSION_1_2), .echo = true };
        peer_t c = { .cfg = psk_client(0, 0), .echo = true };
#if WOLFSSL_55
        run_pair_twice(&s, &c);
        cr_assert_eq(c.r, 0, "client: %s", strerror(-c.r));
        cr_assert_lt(s.first_r, 0, "the first connection cannot complete (wolfSSL 5.5.4)");
#else
        /* wolfSSL 5.7 completes the downgraded handshake itself: one connection, no retry. */
        run_pair(&s, &c);
        cr_assert_eq(c.r, 0, "client: %s", strerror(-c.r));
#endif
        cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
        cr_assert_str_eq(c.version, "TLSv1.2");
        cr_assert_str_eq(c.cipher, "ECDHE-PSK-AES128-CBC-SHA256");
        expect_same_ekm(&s, &c);
        cr_assert_str_eq(s.identity, IDENTITY);
        cr_assert_str_eq(s.sni, "mef.test", "the retry sends SNI too");
        cr_assert_str_eq(c.echoed, "pong:ping");
}

/* No retry needed without a PSK in the ClientHello: one connection. */
Test(tls, cert_default_versions_tls12_server) {
        need_certs();
        peer_t s = { .cfg = cert_server(TLS_VERSION_1_2) };
        peer_t c = { .cfg = cert_client(0) };
        run_pair(&s, &c);
        cr_assert_eq(c.r, 0, "client: %s", strerror(-c.r));
        cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
        cr_assert_str_eq(c.version, "TLSv1.2");
        expect_same_ekm(&s, &c);
}

/* A forged TLS 1.2 ServerHello record (ECDHE-PSK, the extended_master_secret extension); with
 * sentinel, its Random ends in DOWNGRD 01. */
static size_t forged_server_hello(uint8_t out[128], bool sentinel) {
        static const uint8_t head[] = { 22, 3, 3, 0, 0x30, 2, 0, 0, 0x2c, 3, 3 };
        static const uint8_t tail[] = { 0, 0xc0, 0x37, 0, 0, 4, 0, 0x17, 0, 0 };
        size_t n = 0;
        memcpy(out, head, sizeof head);
        n += sizeof head;
        cr_assert_eq(random_bytes(out + n, 32), 0);
        if (sentinel)
                memcpy(out + n + 24, "DOWNGRD\x01", 8);
        else
                out[n + 24] = 'X';
        n += 32;
        memcpy(out + n, tail, sizeof tail);
        return n + sizeof tail;
}

typedef struct forger {
        peer_t *p;      /* then our server for a second connection, when set */
        bool sentinel;
        bool once;      /* no second connection expected */
        int r;
} forger_t;

/* Answers the first connection with a forged TLS 1.2 ServerHello (a man in the middle that
 * wants TLS 1.2), then serves the second with p. */
static void *forger_thread(void *arg) {
        forger_t *f = arg;
        int fd = accept_one(f->p->lfd);
        f->r = fd;
        if (fd < 0)
                return NULL;
        uint8_t buf[4096], sh[128];
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, 5000) == 1 && read(fd, buf, sizeof buf) > 0) {
                size_t n = forged_server_hello(sh, f->sentinel);
                f->r = write(fd, sh, n) == (ssize_t) n ? 0 : -EIO;
        }
        lingering_close(fd);
        close(fd);
        if (!f->sentinel && !f->once)
                server_body(f->p);
        wc_ecc_fp_free();
        return NULL;
}

static void run_forger(forger_t *f, peer_t *cli) {
        char port[8];
        f->p->lfd = listen_any(port);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, forger_thread, f), 0);
        client_run(cli, port);
        pthread_join(th, NULL);
        /* The blocking client reconnects before it returns: a retry would be queued now. */
        struct pollfd pfd = { .fd = f->p->lfd, .events = POLLIN };
        f->p->first_r = poll(&pfd, 1, 0);
        close(f->p->lfd);
}

/* The sentinel in the first ServerHello: a TLS 1.3 server was made to say TLS 1.2. wolfSSL
 * refuses it (illegal_parameter) and the client does not retry. */
Test(tls, downgrade_sentinel_no_retry) {
        peer_t s = {};
        forger_t f = { .p = &s, .sentinel = true };
        peer_t c = { .cfg = psk_client(0, 0) };
        run_forger(&f, &c);
        cr_assert_eq(f.r, 0);
        cr_assert_eq(c.r, -EPROTO, "client: %s", strerror(-c.r));
        cr_assert_eq(s.first_r, 0, "the client connected again");
}

/* A forged TLS 1.2 ServerHello without the sentinel makes the client retry over TLS 1.2; the
 * real server behind it supports TLS 1.3 and says so with DOWNGRD 01 in its TLS 1.2 answer to
 * the retry, which wolfSSL's TLS 1.2-only client does not check: the client must. */
Test(tls, downgrade_sentinel_on_retry) {
        peer_t s = { .cfg = psk_server(0, 0) };
#if !WOLFSSL_55
        /* wolfSSL 5.7 goes on with a TLS 1.2 ServerHello itself, so the client never retries
         * (and wolfSSL checks the sentinel there: downgrade_sentinel_no_retry). The forged one
         * leads nowhere: the forger closes, the client fails, without connecting again. */
        forger_t once = { .p = &s, .once = true };
        peer_t c1 = { .cfg = psk_client(0, 0) };
        run_forger(&once, &c1);
        cr_assert_eq(once.r, 0);
        cr_assert_lt(c1.r, 0, "client: %s", c1.version);
        cr_assert_eq(s.first_r, 0, "the client connected again");
#else
        forger_t f = { .p = &s };
        peer_t c = { .cfg = psk_client(0, 0) };
        run_forger(&f, &c);
        cr_assert_eq(f.r, 0);
        cr_assert_eq(c.r, -EPROTO, "client: %s (%s)", strerror(-c.r), c.version);
        /* The server completed TLS 1.2 with the retry: the client refused it afterwards, on
         * the sentinel, before sending anything. */
        cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
        cr_assert_str_eq(s.version, "TLSv1.2");
#endif
}

/* Nothing in common: -EPROTONOSUPPORT, with what the client offered to say so. */
Test(tls, incompatible_version) {
        peer_t s = { .cfg = psk_server(TLS_VERSION_1_3, 0) };
        peer_t c = { .cfg = psk_client(0, TLS_VERSION_1_2) };
        run_pair(&s, &c);
        cr_assert_eq(c.r, -EPROTONOSUPPORT, "client: %s", strerror(-c.r));
}

Test(tls, offer_text) {
        tls_ctx_t *ctx = NULL;
        tls_config_t cfg = psk_client(0, 0);
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), 0);
        cr_assert_str_eq(tls_ctx_offer(ctx),
                         "TLS 1.2-1.3 (1.3: PSK with (EC)DHE); suites TLS_AES_128_GCM_SHA256, "
                         "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256; groups X25519, P-256");
        ctx = tls_ctx_free(ctx);
        cfg.max_version = TLS_VERSION_1_2;
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), 0);
        cr_assert_str_eq(tls_ctx_offer(ctx), "TLS 1.2; suites TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256; groups X25519, P-256");
        ctx = tls_ctx_free(ctx);
        need_certs();
        tls_config_t cc = cert_client(0);
        cr_assert_eq(tls_ctx_new_client(&cc, &ctx), 0);
        cr_assert_str_eq(tls_ctx_offer(ctx),
                         "TLS 1.2-1.3; suites TLS_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "
                         "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256; groups X25519, P-256");
        tls_ctx_free(ctx);
}

Test(tls, cert_tls12) {
        need_certs();
        peer_t s = { .cfg = cert_server(TLS_VERSION_1_2) };
        peer_t c = { .cfg = cert_client(TLS_VERSION_1_2) };
        run_pair(&s, &c);
        cr_assert_eq(c.r, 0, "client: %s", strerror(-c.r));
        cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
        cr_assert_str_eq(c.version, "TLSv1.2");
        cr_assert(strncmp(c.cipher, "ECDHE-ECDSA-AES128-", 19) == 0, "cipher %s", c.cipher);
        expect_same_ekm(&s, &c);
        cr_assert_not(s.has_identity);
}

static void expected_fingerprint(char out[65]) {
        _cleanup_free_ char *der = NULL;
        size_t len = 0;
        cr_assert_eq(file_read_all(cert("client.der"), 65536, &der, &len), 0);
        uint8_t d[WC_SHA256_DIGEST_SIZE];
        cr_assert_eq(wc_Sha256Hash((const byte *) der, (word32) len, d), 0);
        hex_encode(d, sizeof(d), out);
}

Test(tls, cert_tls13_fingerprint_and_sni) {
        need_certs();
        peer_t s = { .cfg = cert_server(0), .echo = true };
        peer_t c = { .cfg = cert_client(0), .echo = true };
        run_pair(&s, &c);
        cr_assert_eq(c.r, 0, "client: %s", strerror(-c.r));
        cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
        cr_assert_str_eq(c.version, "TLSv1.3");
        cr_assert_str_eq(c.cipher, "TLS13-AES128-GCM-SHA256");
        expect_same_ekm(&s, &c);
        char want[65];
        expected_fingerprint(want);
        cr_assert_eq(s.r_fp, 0);
        cr_assert_str_eq(s.fp, want);
        cr_assert(s.has_sni);
        cr_assert_str_eq(s.sni, "mef.test");
        cr_assert_str_eq(c.echoed, "pong:ping");
        cr_assert_eq(c.r_read, 0, "read after pong: %zd", c.r_read);
        /* The client does not get a "peer fingerprint": only servers verify client certs. */
        cr_assert_eq(c.r_fp, -ENOKEY);
}

Test(tls, cert_ip_literal_no_sni) {
        need_certs();
        peer_t s = { .cfg = cert_server(0) };
        peer_t c = { .cfg = cert_client(0), .host = "127.0.0.1" };
        run_pair(&s, &c);
        cr_assert_eq(c.r, 0, "client: %s", strerror(-c.r));
        cr_assert_eq(s.r, 0);
        cr_assert_not(s.has_sni, "SNI sent for an IP literal: %s", s.sni);
        expect_same_ekm(&s, &c);
}

Test(tls, psk_ip_literal_no_sni_tls12) {
        peer_t s = { .cfg = psk_server(0, TLS_VERSION_1_2) };
        peer_t c = { .cfg = psk_client(0, TLS_VERSION_1_2), .host = "127.0.0.1" };
        run_pair(&s, &c);
        cr_assert_eq(c.r, 0);
        cr_assert_eq(s.r, 0);
        cr_assert_not(s.has_sni);
}

Test(tls, floor_13_both) {
        peer_t s = { .cfg = psk_server(TLS_VERSION_1_3, 0) };
        peer_t c = { .cfg = psk_client(TLS_VERSION_1_3, 0) };
        run_pair(&s, &c);
        cr_log_info("client %s, server %s", strerror(-c.r), strerror(-s.r));
        cr_assert_eq(c.r, 0);
        cr_assert_str_eq(c.version, "TLSv1.3");
        cr_assert_not(in_list(c.ciphers, "ECDHE-PSK-AES128-CBC-SHA256"), "%s", c.ciphers);
}

/* A server with both a PSK lookup and a certificate serves both kinds of client. */
Test(tls, server_both_modes) {
        need_certs();
        tls_config_t both = cert_server(0);
        both.psk_lookup = lookup;

        peer_t s1 = { .cfg = both };
        peer_t c1 = { .cfg = psk_client(0, 0) };
        run_pair(&s1, &c1);
        cr_assert_eq(c1.r, 0, "psk client: %s", strerror(-c1.r));
        cr_assert_eq(s1.r, 0);
        cr_assert(s1.has_identity);
        cr_assert_eq(s1.r_fp, -ENOKEY);
        expect_same_ekm(&s1, &c1);

        peer_t s2 = { .cfg = both };
        peer_t c2 = { .cfg = cert_client(0) };
        run_pair(&s2, &c2);
        cr_assert_eq(c2.r, 0, "cert client: %s", strerror(-c2.r));
        cr_assert_eq(s2.r, 0);
        cr_assert_not(s2.has_identity);
        cr_assert_eq(s2.r_fp, 0);

        tls_config_t both12 = both;
        both12.max_version = TLS_VERSION_1_2;
        peer_t s3 = { .cfg = both12 };
        peer_t c3 = { .cfg = psk_client(0, TLS_VERSION_1_2) };
        run_pair(&s3, &c3);
        cr_assert_eq(c3.r, 0);
        cr_assert(s3.has_identity);
        cr_assert(strstr(c3.cipher, "PSK") != NULL);
}

/* ---- failures ---- */

Test(tls, wrong_psk) {
        static const tls_version_t versions[] = { TLS_VERSION_1_2, TLS_VERSION_1_3 };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                uint8_t bad[32];
                memcpy(bad, good_psk, sizeof(bad));
                bad[31] ^= 1;
                peer_t s = { .cfg = psk_server(0, versions[i]) };
                peer_t c = { .cfg = psk_client(0, versions[i]) };
                c.cfg.psk = bad;
                run_pair(&s, &c);
                cr_assert_eq(c.r, -EACCES, "TLS %d client: %s", versions[i], strerror(-c.r));
                cr_assert_eq(s.r, -EACCES, "TLS %d server: %s", versions[i], strerror(-s.r));
        }
}

Test(tls, unknown_identity) {
        static const tls_version_t versions[] = { TLS_VERSION_1_2, TLS_VERSION_1_3 };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                peer_t s = { .cfg = psk_server(0, versions[i]) };
                peer_t c = { .cfg = psk_client(0, versions[i]) };
                c.cfg.psk_identity = "urn:dev:ops:nobody";
                run_pair(&s, &c);
                cr_assert_eq(c.r, -EACCES, "TLS %d client: %s", versions[i], strerror(-c.r));
                cr_assert_eq(s.r, -EACCES, "TLS %d server: %s", versions[i], strerror(-s.r));
        }
}

/* Unknown identity at a server that also has a certificate: it fails like a wrong key
 * (no fallback to a certificate handshake, which the PSK client would refuse anyway). */
Test(tls, unknown_identity_both_mode_server) {
        need_certs();
        tls_config_t both = cert_server(0);
        both.psk_lookup = lookup;
        peer_t s = { .cfg = both };
        peer_t c = { .cfg = psk_client(0, 0) };
        c.cfg.psk_identity = "urn:dev:ops:nobody";
        run_pair(&s, &c);
        cr_assert_eq(c.r, -EACCES, "client: %s", strerror(-c.r));
        cr_assert_neq(s.r, 0);
}

Test(tls, wrong_host_name) {
        need_certs();
        static const tls_version_t versions[] = { TLS_VERSION_1_2, TLS_VERSION_1_3 };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                peer_t s = { .cfg = cert_server(versions[i]) };
                peer_t c = { .cfg = cert_client(versions[i]), .host = "other.test" };
                run_pair(&s, &c);
                cr_assert_eq(c.r, -EACCES, "TLS %d client: %s", versions[i], strerror(-c.r));
                cr_assert_eq(s.r, -EACCES, "TLS %d server: %s", versions[i], strerror(-s.r));
        }
}

Test(tls, wrong_ip_literal) {
        need_certs();
        peer_t s = { .cfg = cert_server(0) };
        peer_t c = { .cfg = cert_client(0), .host = "127.0.0.2" };
        run_pair(&s, &c);
        cr_assert_eq(c.r, -EACCES, "client: %s", strerror(-c.r));
        cr_assert_neq(s.r, 0);
}

Test(tls, ip_in_cn_only_refused) {
        need_certs();
        peer_t s = { .cfg = cert_server(0) };
        s.cfg.cert_file = cert("cn-ip-server.pem");
        s.cfg.key_file = cert("cn-ip-server.key");
        peer_t c = { .cfg = cert_client(0), .host = "127.0.0.1" };
        run_pair(&s, &c);
        cr_assert_eq(c.r, -EACCES, "client: %s", strerror(-c.r));
}

Test(tls, untrusted_server_ca) {
        need_certs();
        peer_t s = { .cfg = cert_server(0) };
        s.cfg.cert_file = cert("rogue-server.pem");
        s.cfg.key_file = cert("rogue-server.key");
        peer_t c = { .cfg = cert_client(0) };
        run_pair(&s, &c);
        cr_assert_eq(c.r, -EACCES, "client: %s", strerror(-c.r));
        cr_assert_eq(s.r, -EACCES, "server: %s", strerror(-s.r));
}

Test(tls, untrusted_client_cert) {
        need_certs();
        static const tls_version_t versions[] = { TLS_VERSION_1_2, TLS_VERSION_1_3 };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                peer_t s = { .cfg = cert_server(versions[i]) };
                peer_t c = { .cfg = cert_client(versions[i]), .echo = true };
                /* The rogue server pair as a client certificate: not signed by the server's anchors. */
                c.cfg.cert_file = cert("rogue-server.pem");
                c.cfg.key_file = cert("rogue-server.key");
                run_pair(&s, &c);
                cr_assert_eq(s.r, -EACCES, "TLS %d server: %s", versions[i], strerror(-s.r));
                if (versions[i] == TLS_VERSION_1_2)
                        cr_assert_eq(c.r, -EACCES, "client: %s", strerror(-c.r));
                else
                        /* TLS 1.3: the client is done before the server has judged its
                         * certificate; the rejection arrives with the first read. */
                        cr_assert(c.r == -EACCES || (c.r == 0 && c.r_read == -EACCES),
                                  "client: %d, read %zd", c.r, c.r_read);
        }
}

Test(tls, version_floor_13_vs_server_12) {
        peer_t s = { .cfg = psk_server(0, TLS_VERSION_1_2) };
        peer_t c = { .cfg = psk_client(TLS_VERSION_1_3, 0) };
        run_pair(&s, &c);
        cr_log_info("client %s, server %s", strerror(-c.r), strerror(-s.r));
        cr_assert_lt(c.r, 0);
        cr_assert_neq(c.r, -EAGAIN);
        cr_assert_lt(s.r, 0);
}

Test(tls, integrity_only_server_refused) {
        peer_t s = { .raw_suite = "TLS13-SHA256-SHA256" };
        peer_t c = { .cfg = psk_client(0, 0) };
        run_pair(&s, &c);
        cr_log_info("client %s", strerror(-c.r));
        cr_assert_lt(c.r, 0, "client accepted %s", c.cipher);
        cr_assert_neq(s.r, 0, "raw server negotiated %s", s.cipher);
}

/* TLS 1.3 PSK must be psk_dhe_ke: a psk_ke-only peer is refused on either side. */
Test(tls, psk_ke_only_server_refused) {
        peer_t s = { .raw_suite = "TLS13-AES128-GCM-SHA256", .raw_no_dhe = true };
        peer_t c = { .cfg = psk_client(0, 0) };
        run_pair(&s, &c);
#if WOLFSSL_55
        /* wolfSSL 5.5.4 fails here (AES-GCM auth error on the server's flight); the client
         * sees in the ServerHello that the server chose psk_ke (pre_shared_key without
         * key_share) and says the MEF is incompatible; were the handshake to complete, the
         * psk_dhe_ke check after it says the same. */
        cr_assert_eq(c.r, -EPROTOTYPE, "client: %s", strerror(-c.r));
#else
        /* wolfSSL 5.7 offers psk_dhe_ke alone: the server finds no mode in common and aborts
         * before its ServerHello with illegal_parameter, which is also what OpenSSL says for a
         * binder that does not verify: a refused credential (the agent's message names both). */
        cr_assert_eq(c.r, -EACCES, "client: %s", strerror(-c.r));
#endif
        cr_assert_neq(s.r, 0);
}

Test(tls, psk_ke_only_client_refused) {
        peer_t s = { .cfg = psk_server(0, 0) };
        peer_t c = { .raw_suite = "TLS13-AES128-GCM-SHA256", .raw_no_dhe = true };
        run_raw_client(&s, &c);
        cr_assert_eq(s.r, -EPROTO, "server: %s", strerror(-s.r));
        cr_assert_not(s.has_identity);
}

Test(tls, raw_dhe_client_accepted) {
        /* The same raw client with (EC)DHE: proves the refusal above is about psk_ke. */
        peer_t s = { .cfg = psk_server(0, 0) };
        peer_t c = { .raw_suite = "TLS13-AES128-GCM-SHA256" };
        run_raw_client(&s, &c);
        cr_assert_eq(c.r, 0);
        cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
        cr_assert(s.has_identity);
}

/* A known identity bound to a suite the server's PSK is not: the PSK must not be taken as
 * authenticated when the handshake ends up without it. */
Test(tls, psk_other_suite_not_trusted) {
        need_certs();
        tls_config_t both = cert_server(0);
        both.psk_lookup = lookup;
        peer_t s = { .cfg = both };
        peer_t c = { .raw_suite = "TLS13-CHACHA20-POLY1305-SHA256" };
        run_raw_client(&s, &c);
        cr_log_info("server %d cipher %s identity %s, client saw %d certs", s.r, s.cipher,
                    s.has_identity ? s.identity : "-", c.raw_certs);
        if (s.r == 0) {
                cr_assert_not(s.has_identity, "identity %s trusted over %s", s.identity, s.cipher);
                cr_assert_eq(s.r_fp, -ENOKEY);
        }
}

Test(tls, cipher_lists) {
        tls_ctx_t *ctx = NULL;
        tls_config_t cfg = psk_client(0, 0);
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), 0);
        const char *l = tls_ctx_ciphers(ctx);
        cr_assert(strncmp(l, "TLS13-AES128-GCM-SHA256", 23) == 0, "%s", l);
        cr_assert(in_list(l, "ECDHE-PSK-AES128-CBC-SHA256"), "%s", l);
        cr_assert_null(strstr(l, "NULL"));
        cr_assert_null(strstr(l, "TLS13-SHA"));
        cr_assert_null(strstr(l, "ECDSA"), "%s", l);
        cr_assert_null(strstr(l, "TLS13-AES256"), "%s", l);
        cr_assert_null(strstr(l, "CHACHA"), "%s", l);
        ctx = tls_ctx_free(ctx);

        cfg.max_version = TLS_VERSION_1_2;
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), 0);
        cr_assert_null(strstr(tls_ctx_ciphers(ctx), "TLS13"), "%s", tls_ctx_ciphers(ctx));
        ctx = tls_ctx_free(ctx);

        need_certs();
        tls_config_t cc = cert_client(0);
        cr_assert_eq(tls_ctx_new_client(&cc, &ctx), 0);
        l = tls_ctx_ciphers(ctx);
        cr_assert(in_list(l, "ECDHE-ECDSA-AES128-SHA256"), "%s", l);
        cr_assert(in_list(l, "ECDHE-ECDSA-AES128-GCM-SHA256"), "%s", l);
        cr_assert_null(strstr(l, "PSK"), "%s", l);
        tls_ctx_free(ctx);
}

Test(tls, config_errors) {
        tls_ctx_t *ctx = NULL;
        tls_config_t cfg = psk_client(0, 0);
        cfg.psk_len = 15;
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), -EINVAL);
        cfg.psk_len = 65;
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), -EINVAL);
        cfg = psk_client(TLS_VERSION_1_3, TLS_VERSION_1_2);
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), -EINVAL);
        cfg = psk_client(0, 0);
        cfg.psk_identity = "";
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), -EINVAL);
        char id[129];
        memset(id, 'a', 128);
        id[128] = 0;
        cfg.psk_identity = id;
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), -EINVAL);
        id[127] = 0;
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), 0);
        ctx = tls_ctx_free(ctx);
        cfg = (tls_config_t) { .mode = TLS_MODE_CERT, .cert_file = "/nonexistent.pem",
                               .key_file = "/nonexistent.key", .ca_file = "/nonexistent-ca.pem" };
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), -ENOENT);
        cfg = (tls_config_t) { .mode = TLS_MODE_PSK };
        cr_assert_eq(tls_ctx_new_server(&cfg, &ctx), -EINVAL);
        cr_assert_null(ctx);
}

/* ---- TCP and deadlines ---- */

Test(tls, connect_refused) {
        /* A port bound here and never listening: refused, and no other process can take it
         * (closing a listener and connecting to its port afterwards would race with them). */
        char port[8];
        _cleanup_close_ int bfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof(a);
        cr_assert_eq(bind(bfd, (struct sockaddr *) &a, sizeof(a)), 0);
        cr_assert_eq(getsockname(bfd, (struct sockaddr *) &a, &alen), 0);
        snprintf(port, sizeof(port), "%u", ntohs(a.sin_port));
        int fd = -1;
        cr_assert_eq(tcp_connect_until("127.0.0.1", port, now_usec() + TIMEOUT_USEC, &fd), -ECONNREFUSED);
        cr_assert_eq(fd, -1);
        cr_assert_eq(tcp_connect_until("no-such-host.invalid", "1", now_usec() + TIMEOUT_USEC, &fd), -ENOENT);
}

Test(tls, handshake_deadline) {
        char port[8];
        _cleanup_close_ int lfd = listen_any(port); /* never accepts, never answers */
        cr_assert_geq(lfd, 0);
        _cleanup_close_ int fd = -1;
        cr_assert_eq(tcp_connect_until("127.0.0.1", port, now_usec() + TIMEOUT_USEC, &fd), 0);
        cr_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
        cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        tls_ctx_t *ctx = NULL;
        tls_config_t cfg = psk_client(0, 0);
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), 0);
        tls_conn_t *c = NULL;
        cr_assert_eq(tls_conn_new_client(ctx, fd, "mef.test", &c), 0);
        /* One manual step: the ClientHello goes out, then we wait for input. */
        cr_assert_eq(tls_conn_handshake(c), -EAGAIN);
        cr_assert_eq(tls_conn_want(c), POLLIN);
        uint64_t t0 = now_usec();
        cr_assert_eq(tls_conn_handshake_until(c, t0 + 200 * 1000), -ETIMEDOUT);
        uint64_t dt = now_usec() - t0;
        /* not before the deadline; no upper bound (a loaded machine may take long to return) */
        cr_assert(dt >= 190 * 1000, "took %llu us", (unsigned long long) dt);
        uint8_t ekm[48];
        cr_assert_eq(tls_conn_export(c, KDF_EXPORTER_LABEL, ekm, sizeof(ekm)), -ENOTCONN);
        tls_conn_free(c);
        tls_ctx_free(ctx);
}

/* The server counts what it read: nothing, then a partial ClientHello's 11 bytes. */
Test(tls, bytes_received) {
        char port[8];
        _cleanup_close_ int lfd = listen_any(port);
        _cleanup_close_ int fd = -1;
        cr_assert_eq(tcp_connect_until("127.0.0.1", port, now_usec() + TIMEOUT_USEC, &fd), 0);
        _cleanup_close_ int afd = accept_one(lfd);
        cr_assert_geq(afd, 0);
        tls_ctx_t *ctx = NULL;
        tls_config_t cfg = psk_server(0, 0);
        cr_assert_eq(tls_ctx_new_server(&cfg, &ctx), 0);
        tls_conn_t *c = NULL;
        cr_assert_eq(tls_conn_new_server(ctx, afd, &c), 0);
        cr_assert_eq(tls_conn_bytes_received(c), 0);
        cr_assert_eq(tls_conn_handshake(c), -EAGAIN);
        cr_assert_eq(tls_conn_bytes_received(c), 0);
        static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
        cr_assert_eq(write(fd, hello, sizeof hello), (ssize_t) sizeof hello);
        struct pollfd pfd = { .fd = afd, .events = POLLIN };
        cr_assert_eq(poll(&pfd, 1, 5000), 1);
        cr_assert_eq(tls_conn_handshake(c), -EAGAIN);
        cr_assert_eq(tls_conn_bytes_received(c), sizeof hello);
        cr_assert_eq(tls_conn_bytes_received(NULL), 0);
        tls_conn_free(c);
        tls_ctx_free(ctx);
}

/* Peer closes mid-handshake: no SIGPIPE, an errno. */
Test(tls, peer_closes) {
        char port[8];
        _cleanup_close_ int lfd = listen_any(port);
        _cleanup_close_ int fd = -1;
        cr_assert_eq(tcp_connect_until("127.0.0.1", port, now_usec() + TIMEOUT_USEC, &fd), 0);
        int afd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        cr_assert_geq(afd, 0);
        /* RST on close: SO_LINGER 0 */
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(afd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(afd);
        tls_ctx_t *ctx = NULL;
        tls_config_t cfg = psk_client(0, 0);
        cr_assert_eq(tls_ctx_new_client(&cfg, &ctx), 0);
        tls_conn_t *c = NULL;
        cr_assert_eq(tls_conn_new_client(ctx, fd, "mef.test", &c), 0);
        int r = tls_conn_handshake_until(c, now_usec() + TIMEOUT_USEC);
        cr_assert(r == -ECONNRESET || r == -EPIPE, "got %d %s", r, strerror(-r));
        tls_conn_free(c);
        tls_ctx_free(ctx);
}

/* SPDX-License-Identifier: MIT */
/* proto/tls end to end: successful handshakes; TLS 1.2-only MEFs with the default versions, and the downgrade guard (issue 10). */
#include "tests/integration/tls-peers.h"

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
        cr_assert(tls_in_list(c.ciphers, c.cipher), "%s not in %s", c.cipher, c.ciphers);
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
        cr_assert_not(tls_in_list(c.ciphers, "ECDHE-PSK-AES128-CBC-SHA256"), "%s", c.ciphers);
}

/* A server with both a PSK lookup and a certificate serves both kinds of client. */
Test(tls, server_both_modes) {
        tls_config_t both = both_server();

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

/* SPDX-License-Identifier: MIT */
/* proto/tls end to end: failed handshakes, configuration errors, TCP and deadlines. */
#include "tests/integration/tls-peers.h"

#include <dlfcn.h>
#include <linux/tcp.h> /* tcpi_data_segs_out: newer than glibc's struct tcp_info */

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
        tls_config_t both = both_server();
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

/* Our client (host host, or the default when NULL) against our server presenting the test PKI's
 * name.pem and name.key, TLS 1.2 and 1.3: the client's result is want, -EACCES (refused) or 0
 * (accepted, and the server's result 0 too). */
static void expect_server_cert(const char *name, const char *host, int want) {
        need_certs();
        char pem[64], key[64];
        snprintf(pem, sizeof pem, "%s.pem", name);
        snprintf(key, sizeof key, "%s.key", name);
        static const tls_version_t versions[] = { TLS_VERSION_1_2, TLS_VERSION_1_3 };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                peer_t s = { .cfg = cert_server(versions[i]) };
                s.cfg.cert_file = cert(pem);
                s.cfg.key_file = cert(key);
                peer_t c = { .cfg = cert_client(versions[i]), .host = host };
                run_pair(&s, &c);
                cr_assert_eq(c.r, want, "%s for host %s, TLS %d client: %s", name, host ? host : "mef.test",
                             versions[i], strerror(-c.r));
                if (want == 0)
                        cr_assert_eq(s.r, 0, "%s, TLS %d server: %s", name, versions[i], strerror(-s.r));
        }
}

/* A host name only counts in a dNSName SAN, never in the subject CN (RFC 9525 6.3). */
Test(tls, name_in_cn_only_refused) {
        expect_server_cert("cn-dns-server", "localhost", -EACCES);
}

/* A wildcard counts only as the whole left-most label (RFC 9525 6.3), never partial, alone or
 * in another label: wolfSSL's own match takes each of these for the host (DNS:* for any
 * one-label host), so the old code accepted them all; nor for an IP literal. */
Test(tls, partial_and_bare_wildcards_refused) {
        expect_server_cert("wild-bare-server", "mef", -EACCES);
        expect_server_cert("wild-bare-server", "localhost", -EACCES);
        expect_server_cert("wild-bare-server", "127.0.0.1", -EACCES);
        expect_server_cert("wild-m-server", "mef", -EACCES);
        expect_server_cert("wild-partial-server", "mef.example.net", -EACCES);
        expect_server_cert("wild-labels-server", "mef.example.net", -EACCES);
}

/* A wildcard needs two labels or more to its right: *.net and *.localhost name nothing
 * (wolfSSL takes them for example.net and mef.localhost). */
Test(tls, wildcard_over_one_label_refused) {
        expect_server_cert("wild-tld-server", "example.net", -EACCES);
        expect_server_cert("wild-tld-server", "mef.localhost", -EACCES);
}

/* *.example.net names mef.example.net, for exactly one label: not example.net, not
 * a.b.example.net. */
Test(tls, wildcard_left_label) {
        expect_server_cert("wild-server", "mef.example.net", 0);
        expect_server_cert("wild-server", "example.net", -EACCES);
        expect_server_cert("wild-server", "a.b.example.net", -EACCES);
}

/* One matching dNSName among invalid and other ones is enough; an invalid one (m*.example.net)
 * stands for nothing. */
Test(tls, right_name_among_several_accepted) {
        expect_server_cert("wild-among-server", "mef.example.net", 0);
        expect_server_cert("wild-among-server", "other.example.net", 0);
        expect_server_cert("wild-among-server", "m1.example.net", -EACCES);
}

/* A server certificate whose keyUsage does not allow signing (RFC 8446 4.4.2.2): wolfSSL
 * checks it for TLS 1.2 suites only. */
Test(tls, server_key_not_for_signing_refused) {
        expect_server_cert("keyagree-server", NULL, -EACCES);
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
        tls_config_t both = both_server();
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
        cr_assert(tls_in_list(l, "ECDHE-PSK-AES128-CBC-SHA256"), "%s", l);
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
        cr_assert(tls_in_list(l, "ECDHE-ECDSA-AES128-SHA256"), "%s", l);
        cr_assert(tls_in_list(l, "ECDHE-ECDSA-AES128-GCM-SHA256"), "%s", l);
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
        _cleanup_close_ int fd = -1;
        _cleanup_close_ _unused_ int lfd = listen_connected(&fd); /* never accepts, never answers */
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
        _cleanup_close_ int fd = -1;
        _cleanup_close_ int lfd = listen_connected(&fd);
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

/* recv() on one socket returning "would block", counted; every call goes on to the real one. */
static int counted_fd = -1;
static unsigned would_block;

ssize_t recv(int fd, void *buf, size_t n, int flags) {
        static ssize_t (*real)(int, void *, size_t, int);
        if (!real)
                real = (ssize_t (*)(int, void *, size_t, int)) dlsym(RTLD_NEXT, "recv");
        ssize_t r = real(fd, buf, n, flags);
        if (fd == counted_fd && r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                would_block++;
        return r;
}

static unsigned would_block_in_step(tls_conn_t *c, int fd) {
        counted_fd = fd;
        would_block = 0;
        cr_assert_eq(tls_conn_handshake(c), -EAGAIN);
        counted_fd = -1;
        return would_block;
}

/* A handshake step with nothing to read asks the socket once, on either side: Debian's
 * wolfSSL turns on SSL_MODE_AUTO_RETRY, which asked 11 times in a row. */
Test(tls, would_block_asked_once) {
        _cleanup_(conn_pair_close) conn_pair_t p;
        tls_config_t scfg = psk_server(0, 0), ccfg = psk_client(0, 0);
        conn_pair_open(&p, &scfg, &ccfg);
        tls_conn_t *s = p.s, *c = p.c;
        int fd = p.fd, afd = p.afd;

        unsigned n = would_block_in_step(s, afd);
        cr_assert_eq(n, 1, "server, no ClientHello yet: asked %u times", n);
        n = would_block_in_step(c, fd);
        cr_assert_eq(n, 1, "client, ClientHello sent, no answer yet: asked %u times", n);
        struct pollfd pfd = { .fd = afd, .events = POLLIN };
        cr_assert_eq(poll(&pfd, 1, (int) (TIMEOUT_USEC / 1000)), 1);
        n = would_block_in_step(s, afd);
        cr_assert_eq(n, 1, "server, its flight sent, no Finished yet: asked %u times", n);
        cr_assert_eq(tls_conn_bytes_received(s) > 0, true);
}

/* Peer closes mid-handshake: no SIGPIPE, an errno. */
Test(tls, peer_closes) {
        _cleanup_close_ int fd = -1;
        _cleanup_close_ int lfd = listen_connected(&fd);
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

/* Both ends of one connection through their handshakes, each stepped when it would block. */
static void handshake_both(tls_conn_t *s, int sfd, tls_conn_t *c, int cfd) {
        int rs = -EAGAIN, rc = -EAGAIN;
        while (rs == -EAGAIN || rc == -EAGAIN) {
                if (rc == -EAGAIN)
                        rc = tls_conn_handshake(c);
                if (rs == -EAGAIN)
                        rs = tls_conn_handshake(s);
                struct pollfd p[2] = { { .fd = sfd, .events = POLLIN }, { .fd = cfd, .events = POLLIN } };
                if (rs == -EAGAIN || rc == -EAGAIN)
                        cr_assert_geq(poll(p, 2, (int) (TIMEOUT_USEC / 1000)), 1, "handshake stalled");
        }
        cr_assert_eq(rs, 0, "server: %s", strerror(-rs));
        cr_assert_eq(rc, 0, "client: %s", strerror(-rc));
}

static unsigned data_segments_out(int fd) {
        struct tcp_info ti = {};
        socklen_t len = sizeof ti;
        cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
        return ti.tcpi_data_segs_out;
}

/* A corked answer, close_notify and FIN leave as one segment (with Nagle, as msce-mef's
 * sockets have it: two, the close_notify waiting for the answer's ACK), and the client reads
 * the answer and then a clean EOF. */
Test(tls, corked_answer_is_one_segment) {
        _cleanup_(conn_pair_close) conn_pair_t p;
        tls_config_t scfg = psk_server(0, 0), ccfg = psk_client(0, 0);
        conn_pair_open(&p, &scfg, &ccfg);
        tls_conn_t *s = p.s, *c = p.c;
        int fd = p.fd, afd = p.afd;
        handshake_both(s, afd, c, fd);

        static const char answer[] = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}";
        unsigned before = data_segments_out(afd);
        tls_conn_cork(s);
        cr_assert_eq(tls_conn_write(s, answer, sizeof answer - 1), (ssize_t) sizeof answer - 1);
        tls_conn_shutdown(s);
        cr_assert_eq(shutdown(afd, SHUT_WR), 0);
        unsigned segments = data_segments_out(afd) - before;
        cr_assert_eq(segments, 1, "answer and close_notify in %u segments", segments);

        char buf[256];
        size_t got = 0;
        for (;;) {
                ssize_t n = tls_conn_read(c, buf + got, sizeof buf - got);
                if (n == -EAGAIN) {
                        struct pollfd pfd = { .fd = fd, .events = POLLIN };
                        cr_assert_eq(poll(&pfd, 1, (int) (TIMEOUT_USEC / 1000)), 1);
                        continue;
                }
                cr_assert_geq(n, 0, "client read: %s", strerror((int) -n));
                if (n == 0)
                        break;
                got += (size_t) n;
        }
        cr_assert_eq(got, sizeof answer - 1);
        cr_assert_arr_eq(buf, answer, got);
}

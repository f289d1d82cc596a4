/* SPDX-License-Identifier: MIT */
/* proto/tls end to end: a server that resets the connection after its last words (a fatal alert,
 * or nothing), the reset reaching the client before its next write. A TLS 1.3 MEF that refuses
 * the device certificate does this (OpenSSL s_server -verify_return_error): its alert comes after
 * our Finished, and it closes with our request unread. Each test waits for the reset before the
 * client writes: which comes first is never left to timing. */
#include "tests/integration/tls-peers.h"

#include <netinet/tcp.h>

#define TIMEOUT_MS ((int) (TIMEOUT_USEC / 1000))

static const char request[] = "GET /msce HTTP/1.1\r\nHost: mef.test\r\n\r\n";

/* Close with a reset (SO_LINGER 0). */
static void reset_close(int fd) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)); /* else: no reset, wait_reset() says so */
        close(fd);
}

/* Until the reset has reached fd; with take_error, its error read too (as a read would have), so
 * that the next send() says EPIPE instead of ECONNRESET. */
static void wait_reset(int fd, bool take_error) {
        struct pollfd p = { .fd = fd }; /* POLLERR/POLLHUP only */
        cr_assert_eq(poll(&p, 1, TIMEOUT_MS), 1, "no reset from the server");
        if (!take_error)
                return;
        int err = 0;
        socklen_t len = sizeof err;
        cr_assert_eq(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
        cr_assert_eq(err, ECONNRESET);
}

static void wait_readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        cr_assert_eq(poll(&p, 1, TIMEOUT_MS), 1, "nothing came");
}

/* ---- our client and server, each step driven here ---- */

/* TLS 1.3 in cert mode, the client with client_cert of the test PKI: both ends through their
 * handshakes, the client's over first (ours ends with our Finished); the server's result is
 * want_server (-EACCES: it refused the certificate and sent its alert). Then the server resets
 * the connection, and the client sees the reset before it writes. */
static void tls13_judged_then_reset(conn_pair_t *p, const char *client_cert, int want_server, bool take_error) {
        char pem[64], key[64];
        snprintf(pem, sizeof pem, "%s.pem", client_cert);
        snprintf(key, sizeof key, "%s.key", client_cert);
        tls_config_t scfg = cert_server(TLS_VERSION_1_3), ccfg = cert_client(TLS_VERSION_1_3);
        ccfg.cert_file = cert(pem);
        ccfg.key_file = cert(key);
        conn_pair_open(p, &scfg, &ccfg);
        uint64_t deadline = now_usec() + TIMEOUT_USEC;
        cr_assert_eq(tls_conn_handshake(p->c), -EAGAIN); /* ClientHello */
        wait_readable(p->afd);
        cr_assert_eq(tls_conn_handshake(p->s), -EAGAIN); /* its flight; then it waits for ours */
        cr_assert_eq(tls_conn_handshake_until(p->c, deadline), 0);
        int r = tls_conn_handshake_until(p->s, deadline);
        cr_assert_eq(r, want_server, "server: %s", strerror(-r));
        reset_close(p->afd);
        p->afd = -1;
        wait_reset(p->fd, take_error);
}

/* The MEF's refusal is read although the write before the read met its reset: the agent's request
 * (tls_conn_write), and mscectl check's close_notify (tls_conn_shutdown). The old code failed the
 * write with -ECONNRESET (or -EPIPE), and wolfSSL read nothing after that: "connection lost",
 * transient, retried fast, for a MEF that had said why it refused. */
Test(tls, refusal_read_after_write_met_reset) {
        static const struct {
                bool shutdown, take_error;
        } cases[] = { { false, false }, { false, true }, { true, false } };
        need_certs();
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(conn_pair_close) conn_pair_t p;
                tls13_judged_then_reset(&p, "rogue-server", -EACCES, cases[i].take_error);
                if (cases[i].shutdown)
                        tls_conn_shutdown(p.c);
                else {
                        ssize_t n = tls_conn_write(p.c, request, sizeof request - 1);
                        cr_assert_eq(n, (ssize_t) sizeof request - 1, "case %zu: write: %s", i, strerror((int) -n));
                }
                char buf[64];
                ssize_t n = tls_conn_read(p.c, buf, sizeof buf);
                cr_assert_eq(n, -EACCES, "case %zu: read: %zd %s", i, n, n < 0 ? strerror((int) -n) : "");
        }
}

/* With nothing before the reset, the read after the write says what the write met: -ECONNRESET,
 * or -EPIPE when the reset's error was taken before (exchange_run makes both a lost request). */
Test(tls, write_lost_to_reset_told_by_read) {
        need_certs();
        static const bool take_error[] = { false, true };
        for (size_t i = 0; i < ELEMENTSOF(take_error); i++) {
                _cleanup_(conn_pair_close) conn_pair_t p;
                tls13_judged_then_reset(&p, "client", 0, take_error[i]);
                cr_assert_eq(tls_conn_write(p.c, request, sizeof request - 1), (ssize_t) sizeof request - 1);
                char buf[64];
                ssize_t n = tls_conn_read(p.c, buf, sizeof buf);
                int want = take_error[i] ? -EPIPE : -ECONNRESET;
                cr_assert_eq(n, want, "read: %zd %s", n, n < 0 ? strerror((int) -n) : "");
                cr_assert_eq(tls_conn_read(p.c, buf, sizeof buf), want, "not sticky");
        }
}

/* TLS 1.3: the server resets the connection right after its flight, so our Finished meets the
 * reset: the handshake fails with that write's error, as before the fix, and does not end as if
 * the server had got our Finished (mscectl check reads nothing after a psk handshake: it would
 * say OK). */
Test(tls, tls13_finished_lost_to_reset_fails_handshake) {
        _cleanup_(conn_pair_close) conn_pair_t p;
        tls_config_t scfg = psk_server(0, TLS_VERSION_1_3), ccfg = psk_client(0, TLS_VERSION_1_3);
        conn_pair_open(&p, &scfg, &ccfg);
        cr_assert_eq(tls_conn_handshake(p.c), -EAGAIN); /* ClientHello */
        wait_readable(p.afd);
        cr_assert_eq(tls_conn_handshake(p.s), -EAGAIN); /* ServerHello ... Finished */
        reset_close(p.afd);
        p.afd = -1;
        wait_reset(p.fd, false);
        int r = tls_conn_handshake_until(p.c, now_usec() + TIMEOUT_USEC);
        cr_assert_eq(r, -ECONNRESET, "client: %d %s", r, strerror(-r));
        cr_assert(tls_conn_write_lost(p.c));
}

/* TLS 1.2: the server's flight, then its fatal unknown_ca (plaintext, before its Finished) and a
 * reset, all before our flight: our flight meets the reset, and the handshake still reads the
 * alert. The old code said -ECONNRESET. */
Test(tls, tls12_refusal_read_after_flight_met_reset) {
        need_certs();
        tls_config_t scfg = cert_server(TLS_VERSION_1_2), ccfg = cert_client(TLS_VERSION_1_2);
        _cleanup_(conn_pair_close) conn_pair_t p;
        conn_pair_open(&p, &scfg, &ccfg);
        cr_assert_eq(tls_conn_handshake(p.c), -EAGAIN); /* ClientHello */
        wait_readable(p.afd);
        cr_assert_eq(tls_conn_handshake(p.s), -EAGAIN); /* ServerHello ... ServerHelloDone */
        /* The alert leaves at once (no Nagle wait for the flight's ACK), ahead of the reset. */
        int one = 1;
        cr_assert_eq(setsockopt(p.afd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
        static const uint8_t unknown_ca[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 48 };
        cr_assert_eq(send(p.afd, unknown_ca, sizeof unknown_ca, MSG_NOSIGNAL), (ssize_t) sizeof unknown_ca);
        reset_close(p.afd);
        p.afd = -1;
        wait_reset(p.fd, false);
        int r = tls_conn_handshake_until(p.c, now_usec() + TIMEOUT_USEC);
        cr_assert_eq(r, -EACCES, "client: %s", strerror(-r));
}

/* ---- exchange_run (the agent's and mscectl's engine) against a server in a thread ---- */

/* The server's handshake (p->r: -EACCES when it refused the client's certificate, its alert
 * sent), then a reset. */
static void *reset_after_handshake_thread(void *arg) {
        peer_t *p = arg;
        int fd = accept_one(p->lfd);
        tls_ctx_t *ctx = NULL;
        tls_conn_t *c = NULL;
        p->r = fd < 0 ? fd : tls_ctx_new_server(&p->cfg, &ctx);
        if (p->r == 0)
                p->r = tls_conn_new_server(ctx, fd, &c);
        if (p->r == 0)
                p->r = tls_conn_handshake_until(c, now_usec() + TIMEOUT_USEC);
        if (fd >= 0)
                reset_close(fd);
        tls_conn_free(c);
        tls_ctx_free(ctx);
        wc_ecc_fp_free();
        return NULL;
}

/* The request, built once the server's reset arrived (userdata: take its error, a bool). */
static int request_after_reset(tls_conn_t *c, void *userdata, uint8_t **ret, size_t *ret_len) {
        wait_reset(tls_conn_fd(c), *(const bool *) userdata);
        *ret = (uint8_t *) strdup(request);
        cr_assert_not_null(*ret);
        *ret_len = sizeof request - 1;
        return 0;
}

/* exchange_run with client configuration ccfg against server s (reset_after_handshake_thread):
 * its result, where it failed in *ret_stage. */
static int exchange_with_reset(peer_t *s, const tls_config_t *ccfg, bool take_error, exchange_stage_t *ret_stage) {
        char port[8];
        s->lfd = listen_any(port);
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, reset_after_handshake_thread, s), 0);
        tls_ctx_t *ctx = NULL;
        cr_assert_eq(tls_ctx_new_client(ccfg, &ctx), 0);
        exchange_spec_t spec = {
                .ctx = ctx,
                .host = "127.0.0.1",
                .port = port,
                .connect_deadline = now_usec() + TIMEOUT_USEC,
                .deadline = now_usec() + TIMEOUT_USEC,
                .request = request_after_reset,
                .userdata = &take_error,
        };
        http_msg_t m = {};
        char version[16], cipher[64];
        int r = exchange_run(&spec, &m, ret_stage, version, cipher);
        pthread_join(th, NULL);
        close(s->lfd);
        tls_ctx_free(ctx);
        return r;
}

/* A MEF gone while the request is sent: the connection was lost (-ECONNRESET), not the response
 * truncated (-EPIPE, exchange.h), which the agent would report as "truncated response", and
 * while sending (REQUEST), which the agent reports as such. */
Test(tls, request_to_gone_peer_is_reset) {
        static const bool take_error[] = { false, true };
        for (size_t i = 0; i < ELEMENTSOF(take_error); i++) {
                peer_t s = { .cfg = psk_server(0, 0) };
                tls_config_t ccfg = psk_client(0, 0);
                exchange_stage_t stage;
                int r = exchange_with_reset(&s, &ccfg, take_error[i], &stage);
                cr_assert_eq(s.r, 0, "server: %s", strerror(-s.r));
                cr_assert_eq(r, -ECONNRESET, "got %s", strerror(-r));
                cr_assert_eq(stage, EXCHANGE_STAGE_REQUEST, "stage %d: the agent would say reading the response failed",
                             stage);
        }
}

/* A TLS 1.3 MEF that refuses the device certificate and resets the connection before the request
 * goes out (tests/integration/exporter-agent.sh met it by chance): -EACCES, which the agent
 * reports as rejected (77), where the response should come. The old code lost the alert:
 * -ECONNRESET while sending the request, transient (75). */
Test(tls, request_after_refusal_and_reset_gets_refusal) {
        need_certs();
        static const bool take_error[] = { false, true };
        for (size_t i = 0; i < ELEMENTSOF(take_error); i++) {
                peer_t s = { .cfg = cert_server(TLS_VERSION_1_3) };
                tls_config_t ccfg = cert_client(TLS_VERSION_1_3);
                ccfg.cert_file = cert("rogue-server.pem");
                ccfg.key_file = cert("rogue-server.key");
                exchange_stage_t stage;
                int r = exchange_with_reset(&s, &ccfg, take_error[i], &stage);
                cr_assert_eq(s.r, -EACCES, "server: %s", strerror(-s.r));
                cr_assert_eq(r, -EACCES, "got %s at stage %d", strerror(-r), stage);
                cr_assert_eq(stage, EXCHANGE_STAGE_RESPONSE);
        }
}

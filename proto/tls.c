/* SPDX-License-Identifier: MIT */
/* TLS connections on wolfSSL for both ends (proto/tls.h, protocol section 1); the contexts are
 * in proto/tls-ctx.c. */
#include "proto/tls-internal.h" /* first: wolfssl/options.h, util.h, wolfssl/ssl.h, tls-wire.h */
#include "proto/tls-classify.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

/* ---- connections ---- */

/* A WOLFSSL from wctx on fd for c, which starts an attempt afresh (also tls_conn_retry()). */
static int conn_attach(tls_conn_t *c, WOLFSSL_CTX *wctx, int fd) {
        c->fd = fd;
        c->retry = c->auth_failed = c->received = c->second_flight = false;
        c->failed = c->io_errno = c->want = c->write_lost = 0;
        tls_wire_init(&c->wire);
        c->ssl = wolfSSL_new(wctx);
        if (!c->ssl)
                return -ENOMEM;
        if (wolfSSL_set_fd(c->ssl, fd) != WOLFSSL_SUCCESS ||
            wolfSSL_set_ex_data(c->ssl, TLS_EX_IDX, c) != WOLFSSL_SUCCESS)
                return -EINVAL;
        /* set_fd points the I/O context at its own fd copy; ours carries the error too. */
        wolfSSL_SetIOReadCtx(c->ssl, c);
        wolfSSL_SetIOWriteCtx(c->ssl, c);
        wolfSSL_SetCertCbCtx(c->ssl, c);
        return 0;
}

static int conn_new(tls_ctx_t *t, int fd, tls_conn_t **ret) {
        _cleanup_(tls_conn_freep) tls_conn_t *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->ctx = c->cur = t;
        int r = conn_attach(c, t->ctx, fd);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

/* The address of an IP literal host (optionally in brackets, as in a URI): its length, 4 or 16;
 * 0 for a name. */
static uint8_t host_ip_literal(const char *host, uint8_t out[16]) {
        char tmp[INET6_ADDRSTRLEN + 2];
        size_t n = strlen(host);

        if (inet_pton(AF_INET, host, out) == 1)
                return 4;
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(tmp)) {
                memcpy(tmp, host + 1, n - 2);
                tmp[n - 2] = 0;
                host = tmp;
        }
        return inet_pton(AF_INET6, host, out) == 1 ? 16 : 0;
}

/* SNI, name check and key share of a client connection (host checked by the caller). */
static int conn_client_setup(tls_conn_t *c, const char *host, bool tls13) {
        c->host_ip_len = host_ip_literal(host, c->host_ip);
        if (!c->host_ip_len) {
                if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, host, (unsigned short) strlen(host)) !=
                    WOLFSSL_SUCCESS)
                        return -ENOMEM;
                if (c->ctx->cert && wolfSSL_check_domain_name(c->ssl, host) != WOLFSSL_SUCCESS)
                        return -ENOMEM;
        }
        if (tls13 && wolfSSL_UseKeyShare(c->ssl, WOLFSSL_ECC_X25519) != WOLFSSL_SUCCESS)
                return -EPROTO;
        return 0;
}

int tls_conn_new_client(tls_ctx_t *t, int fd, const char *host, tls_conn_t **ret) {
        if (!t || t->server || fd < 0 || !host || !ret)
                return -EINVAL;
        size_t n = strnlen(host, TLS_SNI_MAX + 1);
        if (n == 0 || n > TLS_SNI_MAX)
                return -EINVAL;

        _cleanup_(tls_conn_freep) tls_conn_t *c = NULL;
        int r = conn_new(t, fd, &c);
        if (r < 0)
                return r;
        c->host = strdup(host);
        r = c->host ? conn_client_setup(c, host, t->tls13) : -ENOMEM;
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int tls_conn_retry(tls_conn_t *c, int fd) {
        if (!c || !c->retry || fd < 0)
                return -EINVAL;
        wolfSSL_free(c->ssl);
        c->ssl = NULL;
        tls_ctx_t *next;
        int r = tls_ctx_fallback_new(c->cur, &next);
        if (r < 0)
                return c->failed = r;
        tls_ctx_free(c->fallback);
        c->cur = c->fallback = next;
        r = conn_attach(c, c->cur->ctx, fd);
        if (r == 0)
                r = conn_client_setup(c, c->host, false);
        if (r < 0)
                c->failed = r;
        return r;
}

int tls_conn_new_server(tls_ctx_t *t, int fd, tls_conn_t **ret) {
        if (!t || !t->server || fd < 0 || !ret)
                return -EINVAL;
        return conn_new(t, fd, ret);
}

void tls_conn_set_userdata(tls_conn_t *c, void *userdata) {
        if (c)
                c->userdata = userdata;
}

void tls_conn_refuse_busy(tls_conn_t *c) {
        if (c)
                c->busy = true;
}

uint64_t tls_conn_bytes_received(const tls_conn_t *c) {
        return c ? c->bytes_in : 0;
}

tls_conn_t *tls_conn_free(tls_conn_t *c) {
        if (!c)
                return NULL;
        wolfSSL_free(c->ssl); /* NULL is fine: wolfSSL 5.5.4 and 5.7.2 test it first */
        tls_ctx_free(c->fallback);
        erase(c->psk_identity, sizeof(c->psk_identity));
        free(c->sni);
        free(c->host);
        free(c);
        return NULL;
}

/* The one place wolfSSL errors become errno values. */
static int conn_error(tls_conn_t *c, int ret, bool reading) {
        bool handshake = !c->done;
        int e = wolfSSL_get_error(c->ssl, ret);
        switch (e) {
        case WOLFSSL_ERROR_WANT_READ:
                c->want = POLLIN;
                return -EAGAIN;
        case WOLFSSL_ERROR_WANT_WRITE:
                c->want = POLLOUT;
                return -EAGAIN;
        case WOLFSSL_ERROR_ZERO_RETURN:
                /* close_notify: a clean EOF for read, a failure mid-handshake */
                return reading ? 0 : -ECONNRESET;
        default:
                break;
        }
        /* The lookup accepted the identity, so this is not about the key: wolfSSL 5.6+ reports
         * a client without psk_dhe_ke (refused by wolfSSL_CTX_only_dhe_psk) this way. */
        if (e == PSK_KEY_ERROR && c->ctx->server && c->psk_found)
                return -EPROTO;
        tls_ctx_t *t = c->ctx;
        /* wolfSSL 5.5.4 cannot go on when a TLS 1.2 server answers a ClientHello that offered
         * TLS 1.3 and a PSK (docs/protocol.md): the binder computation set ssl->options.tls1_3,
         * which nothing clears on the downgrade, so DoTls13HandShakeMsgType derives TLS 1.3
         * keys after the ServerHello and DeriveKeyMsg fails with VERSION_ERROR. And a TLS 1.2
         * psk connection reads a P-256 ServerKeyExchange as X25519: ECC_PEERKEY_ERROR (see
         * ctx_new). When the ServerHello really is TLS 1.2 and carries no downgrade sentinel,
         * the caller connects again and tls_conn_retry() goes on with the next context:
         * TLS 1.2 only, then P-256 only; at most two retries, before any credential is sent
         * (the TLS 1.2 identity goes in our ClientKeyExchange). */
        if (handshake && !t->server && c->cur->retry_on && e == c->cur->retry_on && c->wire.server_hello &&
            c->wire.version == 0x0303 && !tls_wire_downgrade_sentinel(&c->wire)) {
                c->retry = true;
                return -ENOPROTOOPT;
        }
        /* A TLS 1.3 server that chose psk_ke (pre_shared_key without key_share): wolfSSL 5.5.4
         * offers it (src/tls.c TLSX_PopulateExtensions), then fails to decrypt the server's
         * next flight (measured with GnuTLS 3.7.9, which takes the client's first mode). */
        if (handshake && !t->server && c->wire.server_hello && c->wire.version == 0x0304 &&
            c->wire.pre_shared_key && !c->wire.key_share)
                return -EPROTOTYPE;
        WOLFSSL_ALERT_HISTORY h = {};
        if (wolfSSL_get_alert_history(c->ssl, &h) != WOLFSSL_SUCCESS)
                h.last_rx.code = -1;
        tls_failure_t f = {
                .error = e,
                .alert_rx = h.last_rx.code,
                .handshake = handshake,
                .client = !t->server,
                .own_verify_failed = c->auth_failed,
                .server_hello = c->wire.server_hello || c->wire.hello_retry,
                .version = c->wire.server_hello ? c->wire.version : 0,
                .min_version = t->min13 ? 0x0304 : 0x0303,
                .psk13_offered = !t->server && t->psk && t->tls13 && c->cur == t,
                .second_flight = c->second_flight,
        };
        int r = tls_classify_failure(&f);
        if (r < 0)
                return r;
        if (e == WOLFSSL_ERROR_SYSCALL || e == SOCKET_PEER_CLOSED_E || e == SOCKET_ERROR_E ||
            c->io_errno != 0)
                return c->io_errno == EPIPE ? -EPIPE : -ECONNRESET;
        return -EPROTO;
}

static bool conn_peer_leaf(tls_conn_t *c, const unsigned char **ret_der, int *ret_len) {
        WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(c->ssl);
        if (!chain || wolfSSL_get_chain_count(chain) < 1)
                return false;
        *ret_der = wolfSSL_get_chain_cert(chain, 0);
        *ret_len = wolfSSL_get_chain_length(chain, 0);
        return *ret_der && *ret_len > 0;
}

/* Which authentication the finished handshake used, checked against what we require. */
static int conn_post_handshake(tls_conn_t *c) {
        tls_ctx_t *t = c->ctx;
        const char *version = wolfSSL_get_version(c->ssl);
        bool tls13 = version && streq(version, "TLSv1.3");
        const char *cipher = wolfSSL_get_cipher_name(c->ssl);
        if (!cipher || !tls_in_list(t->ciphers, cipher))
                return -EPROTO;
        bool cert_suite = !tls13 && strstr(cipher, "ECDSA");
        const unsigned char *der;
        int der_len;
        bool peer_cert = conn_peer_leaf(c, &der, &der_len);

        if (!t->server) {
                if (t->psk) {
                        /* The PSK, and nothing else, must have authenticated the server. */
                        if (peer_cert || cert_suite)
                                return -EACCES;
                } else if (!peer_cert)
                        return -EACCES;
        } else {
                /* PSK used: the lookup accepted an identity, the suite is the one the TLS 1.3
                 * PSK is bound to (otherwise wolfSSL fell back to a certificate handshake),
                 * and no client certificate came with it. */
                bool psk_used = c->psk_found && !peer_cert &&
                                (tls13 ? streq(cipher, TLS13_PSK_SUITE) : strstr(cipher, "PSK") != NULL);
                if (!psk_used) {
                        c->psk_found = false;
                        erase(c->psk_identity, sizeof(c->psk_identity));
                }
                void *data = NULL;
                unsigned short n = wolfSSL_SNI_GetRequest(c->ssl, WOLFSSL_SNI_HOST_NAME, &data);
                if (n > 0 && n <= TLS_SNI_MAX && data && !memchr(data, 0, n)) {
                        c->sni = strndup(data, n);
                        if (!c->sni)
                                return -ENOMEM;
                }
        }
        /* TLS 1.3 PSK must be psk_dhe_ke: an (EC)DHE group was used. wolfSSL 5.5.4 always
         * lists psk_ke too (src/tls.c TLSX_PopulateExtensions): a client refuses a server
         * that chose it (no key_share in its ServerHello), before sending anything. */
        if (tls13 && !peer_cert && (t->server ? c->psk_found : t->psk) &&
            (!wolfSSL_get_curve_name(c->ssl) || (!t->server && c->wire.server_hello && !c->wire.key_share)))
                return t->server ? -EPROTO : -EPROTOTYPE;
        /* RFC 8446 4.1.3: a client that offered TLS 1.3 refuses a TLS 1.2 ServerHello whose
         * Random says the server can do better. wolfSSL checks this on the first connection
         * (CompleteServerHello), but not for DOWNGRD 01 on the TLS 1.2-only retry, where a
         * server that supports TLS 1.3 proves that its TLS 1.2 answer to the first one was
         * not its own. */
        if (!t->server && !tls13 && t->tls13 && tls_wire_downgrade_sentinel(&c->wire))
                return -EPROTO;
        return 0;
}

/* A PSK binder mismatch (wrong key, or an unknown identity, see server_psk_cb) must abort the
 * handshake with decrypt_error (RFC 8446 6.2), which the client reads as "credential refused".
 * wolfSSL gets this wrong in two ways: 5.5.4 (Debian 12) sends no alert at all, so the
 * client sees a plain connection reset; 5.7.2 (Debian 13) sends illegal_parameter, which the
 * client must take for a protocol error. The binder is checked before the server sends
 * anything, so the alert is a plaintext record; io_send() holds such a first alert back, and
 * here it becomes decrypt_error on a binder failure (internal_error when busy: the store could
 * not look the identity up, tls_conn_refuse_busy()) or goes out unchanged otherwise. */
static void server_send_decrypt_error(tls_conn_t *c, int ret) {
        const uint8_t alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02, 0x02, c->busy ? internal_error : decrypt_error };
        const uint8_t *rec = c->held_alert;
        bool held = c->alert_held;
        c->alert_held = false;
        if ((c->busy || wolfSSL_get_error(c->ssl, ret) == BAD_BINDER) && (held || !c->sent_any))
                rec = alert;
        else if (!held)
                return;
        c->sent_any = true;
        (void) send(c->fd, rec, sizeof(alert), MSG_NOSIGNAL | MSG_DONTWAIT);
}

int tls_conn_handshake(tls_conn_t *c) {
        if (!c)
                return -EINVAL;
        if (c->failed)
                return c->failed;
        if (c->done)
                return 0;
        int ret = c->ctx->server ? wolfSSL_accept(c->ssl) : wolfSSL_connect(c->ssl);
        /* A TLS 1.3 client is done once it has sent its Finished, but the server never got it if
         * that write met its reset (io_send): what the server sent before the reset decides, an
         * alert (it refused our certificate) or nothing (the write's error), as if it had come
         * first. Anything else waits for tls_conn_read(). */
        char b;
        int k = ret == WOLFSSL_SUCCESS && c->write_lost ? wolfSSL_peek(c->ssl, &b, 1) : 1;
        if (k <= 0)
                ret = k;
        /* conn_error() never says 0 for a handshake, conn_post_handshake() never -EAGAIN */
        int r = ret == WOLFSSL_SUCCESS ? conn_post_handshake(c) : conn_error(c, ret, false);
        if (r == -EAGAIN)
                return r;
        if (ret != WOLFSSL_SUCCESS && c->ctx->server)
                server_send_decrypt_error(c, ret);
        if (r < 0)
                return c->failed = r;
        c->done = true;
        return 0;
}

/* A read (into rbuf) or a write (of wbuf): what tls_conn_read() or tls_conn_write() returns. */
static ssize_t conn_io(tls_conn_t *c, void *rbuf, const void *wbuf, size_t n) {
        bool reading = rbuf;
        if (!c || (!rbuf && !wbuf && n))
                return -EINVAL;
        if (!c->done)
                return c->failed ? c->failed : -ENOTCONN;
        if (n == 0)
                return 0;
        int k = (int) MIN(n, (size_t) INT_MAX);
        int ret = reading ? wolfSSL_read(c->ssl, rbuf, k) : wolfSSL_write(c->ssl, wbuf, k);
        if (ret > 0)
                return ret;
        int r = conn_error(c, ret, reading);
        return r == 0 && !reading ? -EPIPE : r; /* 0 is an EOF for a read only */
}

ssize_t tls_conn_read(tls_conn_t *c, void *buf, size_t n) {
        return conn_io(c, buf, NULL, n);
}

ssize_t tls_conn_write(tls_conn_t *c, const void *buf, size_t n) {
        return conn_io(c, NULL, buf, n);
}

bool tls_conn_write_lost(const tls_conn_t *c) {
        return c && c->write_lost;
}

void tls_conn_shutdown(tls_conn_t *c) {
        if (c && c->done)
                (void) wolfSSL_shutdown(c->ssl);
}

void tls_conn_cork(tls_conn_t *c) {
        if (c)
                c->corked = true;
}

int tls_conn_want(const tls_conn_t *c) {
        return c && c->want ? c->want : POLLIN;
}

int tls_conn_export(tls_conn_t *c, const char *label, uint8_t *out, size_t len) {
        if (!c || !label || !label[0] || !out || len == 0 || len > 16 * 1024)
                return -EINVAL;
        if (!c->done)
                return -ENOTCONN;
        /* No context: RFC 5705 use_context = 0 (protocol section 2). */
        if (wolfSSL_export_keying_material(c->ssl, out, len, label, strlen(label), NULL, 0, 0) !=
            WOLFSSL_SUCCESS) {
                erase(out, len);
                return -EPROTO;
        }
        return 0;
}

const char *tls_conn_version(const tls_conn_t *c) {
        return c && c->done ? wolfSSL_get_version(c->ssl) : NULL;
}

const char *tls_conn_cipher(const tls_conn_t *c) {
        return c && c->done ? wolfSSL_get_cipher_name(c->ssl) : NULL;
}

const char *tls_conn_psk_identity(const tls_conn_t *c) {
        return c && c->done && c->ctx->server && c->psk_found ? c->psk_identity : NULL;
}

int tls_conn_peer_fingerprint(tls_conn_t *c, char out[65]) {
        if (!c || !out)
                return -EINVAL;
        if (!c->done)
                return -ENOTCONN;
        if (!c->ctx->server || !c->ctx->verify_peer)
                return -ENOKEY;
        const unsigned char *der;
        int len;
        if (!conn_peer_leaf(c, &der, &len))
                return -ENOKEY;
        uint8_t digest[WC_SHA256_DIGEST_SIZE];
        if (wc_Sha256Hash(der, (word32) len, digest) != 0)
                return -EIO;
        hex_encode(digest, sizeof(digest), out);
        return 0;
}

int tls_conn_fd(const tls_conn_t *c) {
        return c ? c->fd : -EBADF;
}

const char *tls_conn_sni(tls_conn_t *c) {
        return c && c->done ? c->sni : NULL;
}


/* SPDX-License-Identifier: MIT */
/* An interoperability peer on OpenSSL's libssl: the MEF's TLS end (server) or a gateway (client)
 * for the matrix of interop-matrix.sh; options and output in peer-common.h. The exporter is
 * SSL_export_keying_material (no context), the HMAC libcrypto's. */
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "peer-common.h"

static peer_opts_t opts;
static unsigned hellos;          /* ClientHellos (server) or ServerHellos (client) seen: 2 = HRR */
static char alert_sent[64], alert_rcvd[64];

static void msg_cb(int write_p, int version, int content_type, const void *buf, size_t len, SSL *ssl, void *arg) {
        (void) version, (void) ssl, (void) arg;
        const unsigned char *b = buf;
        if (content_type == SSL3_RT_HANDSHAKE && !write_p && len > 0 && b[0] == (opts.server ? 1 : 2))
                hellos++;
        if (content_type == SSL3_RT_ALERT && len == 2) {
                char *dst = write_p ? alert_sent : alert_rcvd;
                if (!dst[0])
                        snprintf(dst, sizeof alert_sent, "%s", SSL_alert_desc_string_long(b[1]));
        }
}

static unsigned psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk, unsigned max) {
        (void) ssl;
        if (!identity || strcmp(identity, opts.psk_identity) != 0 || opts.psk_len > max)
                return 0;
        memcpy(psk, opts.psk, opts.psk_len);
        return (unsigned) opts.psk_len;
}

static unsigned psk_client_cb(SSL *ssl, const char *hint, char *identity, unsigned max_id, unsigned char *psk,
                              unsigned max) {
        (void) ssl, (void) hint;
        if (strlen(opts.psk_identity) + 1 > max_id || opts.psk_len > max)
                return 0;
        strcpy(identity, opts.psk_identity);
        memcpy(psk, opts.psk, opts.psk_len);
        return (unsigned) opts.psk_len;
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32]) {
        unsigned n = 32;
        return HMAC(EVP_sha256(), key, (int) key_len, data, len, out, &n) && n == 32 ? 0 : -1;
}

static ssize_t io_read(void *tls, void *buf, size_t n) {
        int k = SSL_read(tls, buf, (int) (n > 16384 ? 16384 : n));
        return k > 0 ? k : SSL_get_error(tls, k) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
}

static ssize_t io_write(void *tls, const void *buf, size_t n) {
        int k = SSL_write(tls, buf, (int) n);
        return k > 0 ? k : -1;
}

static int setup_error(const char *what) {
        fprintf(stderr, "peer-openssl: %s: ", what);
        ERR_print_errors_fp(stderr);
        fputc('\n', stderr);
        return 2;
}

static SSL_CTX *ctx_new(void) {
        SSL_CTX *ctx = SSL_CTX_new(opts.server ? TLS_server_method() : TLS_client_method());
        if (!ctx)
                return NULL;
        int min = opts.versions & PEER_V12 ? TLS1_2_VERSION : TLS1_3_VERSION;
        int max = opts.versions & PEER_V13 ? TLS1_3_VERSION : TLS1_2_VERSION;
        char list[256] = "";
        static const struct {
                unsigned bit;
                const char *name;
        } suites[] = {
                { PEER_S_ECDHE_PSK_CBC, "ECDHE-PSK-AES128-CBC-SHA256" },
                { PEER_S_PSK_GCM, "PSK-AES128-GCM-SHA256" },
                { PEER_S_PSK_CBC, "PSK-AES128-CBC-SHA256" },
                { PEER_S_ECDSA_GCM, "ECDHE-ECDSA-AES128-GCM-SHA256" },
                { PEER_S_ECDSA_CBC, "ECDHE-ECDSA-AES128-SHA256" },
        };
        for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
                if (opts.suites & suites[i].bit)
                        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ":" : "",
                                 suites[i].name);
        const char *groups = opts.groups == PEER_G_X25519 ? "X25519"
                             : opts.groups == PEER_G_P256 ? "P-256"
                             : opts.p256_first            ? "P-256:X25519"
                                                          : "X25519:P-256";
        if (!SSL_CTX_set_min_proto_version(ctx, min) || !SSL_CTX_set_max_proto_version(ctx, max) ||
            !SSL_CTX_set_cipher_list(ctx, list) || !SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") ||
            !SSL_CTX_set1_groups_list(ctx, groups))
                goto fail;
        SSL_CTX_set_msg_callback(ctx, msg_cb);
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
        if (opts.psk_modes & PEER_K_KE)
                SSL_CTX_set_options(ctx, SSL_OP_ALLOW_NO_DHE_KEX);
        if (opts.server)
                SSL_CTX_set_num_tickets(ctx, 0);
        if (opts.psk_identity) {
                if (opts.server)
                        SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
                else
                        SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
        }
        if (opts.cert && (SSL_CTX_use_certificate_chain_file(ctx, opts.cert) != 1 ||
                          SSL_CTX_use_PrivateKey_file(ctx, opts.key, SSL_FILETYPE_PEM) != 1))
                goto fail;
        if (opts.ca) {
                if (SSL_CTX_load_verify_locations(ctx, opts.ca, NULL) != 1)
                        goto fail;
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (opts.server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
        }
        return ctx;
fail:
        SSL_CTX_free(ctx);
        return NULL;
}

static void print_handshake(SSL *ssl) {
        const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
        int nid = SSL_get_negotiated_group(ssl);
        const char *group = nid > 0 ? SSL_group_to_name(ssl, nid) : NULL;
        bool tls13 = SSL_version(ssl) == TLS1_3_VERSION;
        X509 *peer = SSL_get1_peer_certificate(ssl);
        /* an external TLS 1.3 PSK counts as a resumption in OpenSSL */
        const char *kex = tls13 ? (SSL_session_reused(ssl) ? (group ? "psk_dhe_ke" : "psk_ke") : "ecdhe-cert")
                                : (c && SSL_CIPHER_get_kx_nid(c) == NID_kx_ecdhe_psk ? "ecdhe-psk"
                                   : c && SSL_CIPHER_get_kx_nid(c) == NID_kx_psk     ? "psk"
                                                                                     : "ecdhe-cert");
        printf("HANDSHAKE ok %s %s group=%s kex=%s hrr=%s peer-cert=%s\n", SSL_get_version(ssl),
               c ? SSL_CIPHER_standard_name(c) : "?", group ? group : "none", kex, hellos > 1 ? "yes" : "no",
               peer ? "yes" : "no");
        X509_free(peer);
        fflush(stdout);
}

int main(int argc, char **argv) {
        printf("LIB %s\n", OpenSSL_version(OPENSSL_VERSION));
        fflush(stdout);
        if (peer_parse_args(argc, argv, &opts) < 0)
                return 2;
        SSL_CTX *ctx = ctx_new();
        if (!ctx)
                return setup_error("cannot set up the context");
        int lfd = -1, fd;
        if (opts.server) {
                if ((lfd = peer_listen()) < 0)
                        return 2;
                fd = peer_accept(lfd);
        } else
                fd = peer_connect(opts.port);
        if (fd < 0)
                return 2;
        SSL *ssl = SSL_new(ctx);
        if (!ssl || !SSL_set_fd(ssl, fd))
                return setup_error("cannot set up the connection");
        if (!opts.server && opts.name) {
                if (!SSL_set_tlsext_host_name(ssl, opts.name) || !SSL_set1_host(ssl, opts.name))
                        return setup_error("cannot set the server name");
        }
        int r = opts.server ? SSL_accept(ssl) : SSL_connect(ssl);
        if (r != 1) {
                unsigned long e = ERR_peek_error();
                printf("HANDSHAKE failed %s alert-sent=%s alert-received=%s\n",
                       e ? ERR_reason_error_string(e) : "connection closed", alert_sent[0] ? alert_sent : "none",
                       alert_rcvd[0] ? alert_rcvd : "none");
                r = 1;
                goto out;
        }
        print_handshake(ssl);
        uint8_t ekm[PEER_EKM_LEN];
        if (SSL_export_keying_material(ssl, ekm, sizeof ekm, PEER_LABEL, strlen(PEER_LABEL), NULL, 0, 0) != 1) {
                r = setup_error("exporter");
                goto out;
        }
        r = peer_exchange(&opts, &(peer_io_t) { .tls = ssl, .read = io_read, .write = io_write }, ekm, hmac_sha256);
        if (r == 3 && (alert_rcvd[0] || alert_sent[0]))
                printf("ALERT sent=%s received=%s\n", alert_sent[0] ? alert_sent : "none",
                       alert_rcvd[0] ? alert_rcvd : "none");
        (void) SSL_shutdown(ssl);
out:
        SSL_free(ssl);
        close(fd);
        if (lfd >= 0)
                close(lfd);
        SSL_CTX_free(ctx);
        return r;
}

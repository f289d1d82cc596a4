/* SPDX-License-Identifier: MIT */
/* TLS contexts on wolfSSL for both ends (proto/tls.h, protocol section 1): library set-up,
 * versions and suites, PSK and certificates with their callbacks, and the socket I/O callbacks
 * every connection of a context uses. */
#include "proto/tls-internal.h" /* first: wolfssl/options.h, util.h, wolfssl/ssl.h, tls-wire.h */
#include "proto/tls-name.h"

#include <wolfssl/error-ssl.h>
#include <wolfssl/openssl/ec.h>
#include <wolfssl/wolfcrypt/asn_public.h>

#include <pthread.h>
#include <sys/socket.h>

static const suite_t suites_tls13[] = {
        { TLS13_PSK_SUITE, "TLS_AES_128_GCM_SHA256" },
        { "TLS13-AES256-GCM-SHA384", "TLS_AES_256_GCM_SHA384" },
        { "TLS13-CHACHA20-POLY1305-SHA256", "TLS_CHACHA20_POLY1305_SHA256" },
};
#define CLIENT_TLS13_SUITES 1
static const suite_t suites_psk12[] = {
        /* forward secret */
        { "ECDHE-PSK-AES128-CBC-SHA256", "TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256" },
        { "PSK-AES128-GCM-SHA256", "TLS_PSK_WITH_AES_128_GCM_SHA256" },
        /* TS-0003 mandatory */
        { "PSK-AES128-CBC-SHA256", "TLS_PSK_WITH_AES_128_CBC_SHA256" },
};
static const suite_t suites_cert12[] = {
        { "ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
        /* mandatory */
        { "ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256" },
};

static pthread_once_t wolfssl_once = PTHREAD_ONCE_INIT;
static int wolfssl_init_result;

static void wolfssl_init(void) {
        wolfssl_init_result = wolfSSL_Init() == WOLFSSL_SUCCESS ? 0 : -EIO;
}

/* ---- socket I/O: recv/send with MSG_NOSIGNAL so a closed peer never raises SIGPIPE ---- */

/* A failed recv() or send() (errno) as wolfSSL's I/O result; 0 when interrupted: try again. After
 * a lost write (io_send) the connection's error is that write's. */
static int io_fail(tls_conn_t *c, int want) {
        if (errno == EINTR)
                return 0;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
                return want;
        c->io_errno = c->write_lost ?: errno;
        return errno == ECONNRESET || errno == EPIPE ? WOLFSSL_CBIO_ERR_CONN_CLOSE : WOLFSSL_CBIO_ERR_GENERAL;
}

/* Up to sz bytes of what the server read ahead (wolfSSL takes a short read and asks again). */
static int io_take_ahead(tls_conn_t *c, char *buf, int sz) {
        size_t n = MIN((size_t) sz, (size_t) (c->ahead_len - c->ahead_pos));
        memcpy(buf, c->ahead + c->ahead_pos, n);
        c->ahead_pos += (uint16_t) n;
        return (int) n;
}

/* WANT_READ only once the socket said EAGAIN with nothing read ahead: a caller that reads until
 * -EAGAIN before it polls never waits for bytes that are already here. */
static int io_recv(WOLFSSL *ssl, char *buf, int sz, void *userdata) {
        tls_conn_t *c = userdata;
        if (c->ahead_pos < c->ahead_len)
                return io_take_ahead(c, buf, sz);
        bool ahead = c->ctx->server && (size_t) sz < sizeof(c->ahead);
        for (;;) {
                ssize_t n = recv(c->fd, ahead ? (char *) c->ahead : buf, ahead ? sizeof(c->ahead) : (size_t) sz, 0);
                if (n > 0) {
                        c->received = true;
                        c->bytes_in += (uint64_t) n;
                        if (ahead) {
                                c->ahead_pos = 0;
                                c->ahead_len = (uint16_t) n;
                                return io_take_ahead(c, buf, sz);
                        }
                        if (!c->ctx->server && !c->wire.done)
                                tls_wire_feed(&c->wire, (const uint8_t *) buf, (size_t) n);
                        return (int) n;
                }
                if (n == 0) {
                        c->io_errno = c->write_lost ?: ECONNRESET;
                        return WOLFSSL_CBIO_ERR_CONN_CLOSE;
                }
                int r = io_fail(c, WOLFSSL_CBIO_ERR_WANT_READ);
                if (r != 0)
                        return r;
        }
}

/* A TLS plaintext record holding one fatal alert: type 21, version 3.x, length 2, level 2. */
static bool record_is_fatal_alert(const char *buf, int sz) {
        const uint8_t *b = (const uint8_t *) buf;
        return sz == 7 && b[0] == 0x15 && b[1] == 0x03 && b[3] == 0x00 && b[4] == 0x02 && b[5] == 0x02;
}

static int io_send(WOLFSSL *ssl, char *buf, int sz, void *userdata) {
        tls_conn_t *c = userdata;
        if (c->busy && record_is_fatal_alert(buf, sz)) /* TLS 1.2: after the server's first flight */
                buf[6] = internal_error; /* wolfSSL's own output buffer: a resend sends the same */
        /* A server whose first record is a fatal alert is refusing the ClientHello; which alert
         * the peer sees is decided in tls_conn_handshake() (server_send_decrypt_error), once
         * wolfSSL has returned its error. */
        if (c->ctx->server && !c->done && !c->sent_any && !c->alert_held &&
            record_is_fatal_alert(buf, sz)) {
                memcpy(c->held_alert, buf, sizeof(c->held_alert));
                c->alert_held = true;
                return sz;
        }
        if (sz > 0)
                c->sent_any = true;
        if (c->write_lost)
                return sz; /* gone with the connection, like the write before */
        for (;;) {
                ssize_t n = send(c->fd, buf, (size_t) sz, MSG_NOSIGNAL | (c->corked ? MSG_MORE : 0));
                if (n >= 0) {
                        c->second_flight |= c->received;
                        return (int) n;
                }
                /* A client whose peer has spoken may meet the peer's reset with its last words
                 * still unread: a TLS 1.3 MEF that refuses our certificate sends its alert after
                 * our Finished and closes with our request unread, and its RST can come before
                 * we write. Linux keeps what arrived before a reset readable (measured: recv()
                 * gives it, then EOF), but wolfSSL reads nothing after a failed write. So the
                 * write counts as done, and the next read gives the alert (or an answer); with
                 * nothing there, the read fails with this write's errno (io_fail, io_recv). Not a
                 * second flight: the peer never got it. */
                if (!c->ctx->server && c->received && (errno == ECONNRESET || errno == EPIPE)) {
                        c->write_lost = errno;
                        return sz;
                }
                int r = io_fail(c, WOLFSSL_CBIO_ERR_WANT_WRITE);
                if (r != 0)
                        return r;
        }
}

/* ---- PSK callbacks ---- */

static tls_ctx_t *ssl_tls_ctx(WOLFSSL *ssl) {
        return wolfSSL_CTX_get_ex_data(wolfSSL_get_SSL_CTX(ssl), TLS_EX_IDX);
}

static unsigned client_psk_cb(WOLFSSL *ssl, const char *hint, char *identity, unsigned id_max,
                              unsigned char *key, unsigned key_max) {
        tls_ctx_t *t = ssl_tls_ctx(ssl);
        if (!t || !t->psk_identity)
                return 0;
        size_t n = strlen(t->psk_identity);
        if (n >= id_max || t->psk_len > key_max)
                return 0;
        memcpy(identity, t->psk_identity, n + 1);
        memcpy(key, t->psk_key, t->psk_len);
        return (unsigned) t->psk_len;
}

static unsigned client_psk_tls13_cb(WOLFSSL *ssl, const char *hint, char *identity, unsigned id_max,
                                    unsigned char *key, unsigned key_max, const char **suite) {
        *suite = TLS13_PSK_SUITE;
        return client_psk_cb(ssl, hint, identity, id_max, key, key_max);
}

static unsigned server_psk_cb(WOLFSSL *ssl, const char *identity, unsigned char *key,
                              unsigned key_max) {
        tls_ctx_t *t = ssl_tls_ctx(ssl);
        tls_conn_t *c = wolfSSL_get_ex_data(ssl, TLS_EX_IDX);
        if (!t || !c || !t->psk_lookup || !identity)
                return 0;
        size_t n = strnlen(identity, TLS_PSK_ID_MAX + 1);
        if (n == 0 || n > TLS_PSK_ID_MAX)
                return 0;
        /* The lookup writes straight into wolfSSL's key buffer: no copy of the key here. */
        unsigned len = t->psk_lookup(c->userdata ? c->userdata : t->psk_userdata, identity, key,
                                     MIN(key_max, TLS_PSK_MAX));
        if (len > 0 && len <= MIN(key_max, TLS_PSK_MAX)) {
                memcpy(c->psk_identity, identity, n + 1);
                c->psk_found = true;
                return len;
        }
        /* Unknown identity: go on with a random key, so it fails like a wrong key (RFC 4279
         * section 2: do not reveal which identities exist). wolfSSL 5.5.4 would otherwise
         * close a TLS 1.2 handshake without any alert, and the client could not tell an
         * authentication failure from a network error. */
        erase(key, key_max);
        if (key_max < 32 || random_bytes(key, 32) < 0)
                return 0;
        return 32;
}

static unsigned server_psk_tls13_cb(WOLFSSL *ssl, const char *identity, unsigned char *key,
                                    unsigned key_max, const char **suite) {
        *suite = TLS13_PSK_SUITE;
        return server_psk_cb(ssl, identity, key, key_max);
}

/* The leaf names the host in a SAN: an iPAddress equal to an IP literal host, or for a name a
 * dNSName that matches it by RFC 9525 6.3 (tls_name_match: a wildcard only as the whole left-most
 * label); wolfSSL_check_domain_name then matches too. wolfSSL's match alone is looser: it takes
 * "*" for any one-label host, and partial wildcards ("m*.example.net") for mef.example.net
 * (measured, tests/integration/test-tls-failures.c). wolfSSL matches the subject CN when the
 * certificate has no SAN at all, and for an IP also when it has one (measured): RFC 9525 6.3
 * (and RFC 6125 6.2.1 for IPs) leaves the CN out, so that a device certificate from the same
 * CA whose CN is a host name (a node ID may be one) cannot stand for the MEF. */
static bool cert_names_host(WOLFSSL_X509 *x, const tls_conn_t *c) {
        int want_len = c->host_ip_len;
        WOLFSSL_GENERAL_NAMES *names = wolfSSL_X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        bool found = false;
        int n = names ? wolfSSL_sk_GENERAL_NAME_num(names) : 0;
        for (int i = 0; i < n && !found; i++) {
                WOLFSSL_GENERAL_NAME *gn = wolfSSL_sk_GENERAL_NAME_value(names, i);
                if (!gn || gn->type != (want_len ? ASN_IP_TYPE : ASN_DNS_TYPE))
                        continue;
                WOLFSSL_ASN1_STRING *s = want_len ? gn->d.iPAddress : gn->d.dNSName;
                const unsigned char *data = s ? wolfSSL_ASN1_STRING_get0_data(s) : NULL;
                int len = s ? wolfSSL_ASN1_STRING_length(s) : -1;
                if (!data || len < 0)
                        continue;
                found = want_len ? len == want_len && memcmp(data, c->host_ip, (size_t) want_len) == 0
                                 : tls_name_match((const char *) data, (size_t) len, c->host);
        }
        wolfSSL_GENERAL_NAMES_free(names); /* NULL is fine: wolfSSL 5.5.4 and 5.7.2 test it first */
        return found;
}

/* Client: the leaf must name the host in a SAN (cert_names_host), and its key must be one for
 * signing when a keyUsage says what it is for: every suite here signs with it (RFC 8446
 * 4.4.2.2). wolfSSL checks that bit for TLS 1.2 suites only. */
static int verify_cb(int preverify, WOLFSSL_X509_STORE_CTX *store) {
        tls_conn_t *c = store ? store->userCtx : NULL;
        if (!preverify || !c || store->error_depth != 0)
                return preverify;
        WOLFSSL_X509 *x = store->current_cert;
        unsigned ku = x ? wolfSSL_X509_get_keyUsage(x) : 0;
        bool named = x && cert_names_host(x, c);
        int e = !named                             ? (c->host_ip_len ? IPADDR_MISMATCH : DOMAIN_NAME_MISMATCH)
                : ku && !(ku & KEYUSE_DIGITAL_SIG) ? KEYUSE_SIGNATURE_E
                                                   : 0;
        if (e) {
                c->auth_failed = true;
                store->error = e;
                return 0;
        }
        return 1;
}

/* ---- context ---- */

/* Distinguish a missing/unreadable file from bad content. */
static int path_error(const char *path) {
        return access(path, R_OK) < 0 ? -errno : -EINVAL;
}

static int ctx_append_suites(tls_ctx_t *t, WOLFSSL_CTX *probe, const suite_t *suites, size_t n) {
        for (size_t i = 0; i < n; i++) {
                if (wolfSSL_CTX_set_cipher_list(probe, suites[i].name) != WOLFSSL_SUCCESS)
                        continue;
                size_t used = strlen(t->ciphers);
                int k = snprintf(t->ciphers + used, sizeof(t->ciphers) - used, "%s%s",
                                 used ? ":" : "", suites[i].name);
                if (k < 0 || (size_t) k >= sizeof(t->ciphers) - used)
                        return -ENOBUFS;
        }
        return 0;
}

/* Exactly the suites of a ':'-list, by their two bytes. wolfSSL_CTX_set_cipher_list() in an
 * OpenSSL-compatible build treats a list of TLS 1.3 suites only as OpenSSL does (the TLS 1.3
 * suites are another setting), and wolfSSL 5.7.2 as Debian 13 builds it (HAVE_NULL_CIPHER) then
 * keeps its default TLS 1.3 suites next to ours on a TLS 1.3-only context with a certificate:
 * TLS13-SHA256-SHA256 and TLS13-SHA384-SHA384, integrity only, no encryption. The byte form
 * takes the list as given. */
static int ctx_set_suites(WOLFSSL_CTX *ctx, const char *list) {
        char copy[sizeof(((tls_ctx_t *) NULL)->ciphers)], *save = NULL;
        uint8_t bytes[128];
        size_t n = 0;
        snprintf(copy, sizeof copy, "%s", list);
        for (char *name = strtok_r(copy, ":", &save); name; name = strtok_r(NULL, ":", &save)) {
                byte b0, b1;
                int flags = 0;
                if (n + 2 > sizeof bytes || wolfSSL_get_cipher_suite_from_name(name, &b0, &b1, &flags) != 0)
                        return -EPROTO;
                bytes[n++] = b0;
                bytes[n++] = b1;
        }
        return n > 0 && wolfSSL_CTX_set_cipher_list_bytes(ctx, bytes, (int) n) == WOLFSSL_SUCCESS ? 0 : -EPROTO;
}

bool tls_in_list(const char *list, const char *name) {
        size_t n = strlen(name);
        for (const char *p = list; (p = strstr(p, name)); p += n)
                if ((p == list || p[-1] == ':') && (p[n] == 0 || p[n] == ':'))
                        return true;
        return false;
}

/* Pick the suites this build accepts, set them, and read the result back: wolfSSL's
 * OpenSSL-compatible list parser keeps suites it was not asked for in some cases, and an
 * integrity-only or NULL suite must never be negotiable. Only names from the tables above
 * ever reach the list, and the handshake result is checked against it too. */
static int ctx_set_ciphers_probe(tls_ctx_t *t, tls_version_t min, tls_version_t max) {
        WOLFSSL_CTX *probe = wolfSSL_CTX_new(t->server ? wolfSSLv23_server_method()
                                                       : wolfSSLv23_client_method());
        if (!probe)
                return -ENOMEM;
        int r = 0;
        if (max == TLS_VERSION_1_3)
                r = ctx_append_suites(t, probe, suites_tls13,
                                      t->server ? ELEMENTSOF(suites_tls13) : CLIENT_TLS13_SUITES);
        if (r == 0 && min == TLS_VERSION_1_2 && t->psk)
                r = ctx_append_suites(t, probe, suites_psk12, ELEMENTSOF(suites_psk12));
        if (r == 0 && min == TLS_VERSION_1_2 && t->cert)
                r = ctx_append_suites(t, probe, suites_cert12, ELEMENTSOF(suites_cert12));
        wolfSSL_CTX_free(probe);
        if (r < 0)
                return r;
        if (!t->ciphers[0])
                return -EPROTONOSUPPORT;
        if (ctx_set_suites(t->ctx, t->ciphers) < 0)
                return -EPROTO;

        WOLFSSL *ssl = wolfSSL_new(t->ctx);
        if (!ssl)
                return -ENOMEM;
        WOLF_STACK_OF(WOLFSSL_CIPHER) *sk = wolfSSL_get_ciphers_compat(ssl);
        int n = sk ? wolfSSL_sk_SSL_CIPHER_num(sk) : 0;
        for (int i = 0; i < n && r == 0; i++) {
                const char *name = wolfSSL_CIPHER_get_name(wolfSSL_sk_SSL_CIPHER_value(sk, i));
                if (!name || !tls_in_list(t->ciphers, name))
                        r = -EPROTO;
        }
        if (n <= 0)
                r = -EPROTO;
        wolfSSL_free(ssl);
        return r;
}

/* The validated list depends only on the library and these inputs: probing builds a context
 * and a connection, so it is done once per combination and process, not per context. One entry
 * per combination; an empty one is not probed yet (a probed list is never empty). */
static char cipher_cache[32][sizeof(((tls_ctx_t *) NULL)->ciphers)];
static pthread_mutex_t cipher_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int ctx_set_ciphers(tls_ctx_t *t, tls_version_t min, tls_version_t max) {
        char *cached = cipher_cache[t->server | t->psk << 1 | t->cert << 2 | (min == TLS_VERSION_1_3) << 3 |
                                    (max == TLS_VERSION_1_3) << 4];
        pthread_mutex_lock(&cipher_cache_lock);
        memcpy(t->ciphers, cached, sizeof t->ciphers);
        pthread_mutex_unlock(&cipher_cache_lock);
        if (t->ciphers[0])
                return ctx_set_suites(t->ctx, t->ciphers);

        int r = ctx_set_ciphers_probe(t, min, max);
        if (r < 0)
                return r;
        pthread_mutex_lock(&cipher_cache_lock);
        memcpy(cached, t->ciphers, sizeof t->ciphers); /* the same list if another thread was first */
        pthread_mutex_unlock(&cipher_cache_lock);
        return 0;
}

static const char *suite_iana(const char *name) {
        const suite_t *tables[] = { suites_tls13, suites_psk12, suites_cert12 };
        const size_t sizes[] = { ELEMENTSOF(suites_tls13), ELEMENTSOF(suites_psk12), ELEMENTSOF(suites_cert12) };
        for (size_t i = 0; i < ELEMENTSOF(tables); i++)
                for (size_t j = 0; j < sizes[i]; j++)
                        if (streq(tables[i][j].name, name))
                                return tables[i][j].iana;
        return name;
}

/* "TLS 1.2-1.3; suites TLS_AES_128_GCM_SHA256, ...; groups X25519, P-256" */
static void ctx_describe_offer(tls_ctx_t *t, tls_version_t min, tls_version_t max) {
        char *p = t->offer, *end = t->offer + sizeof t->offer;
        p += snprintf(p, (size_t) (end - p), "%s", min == max ? (min == TLS_VERSION_1_3 ? "TLS 1.3" : "TLS 1.2")
                                                             : "TLS 1.2-1.3");
        if (t->psk && max == TLS_VERSION_1_3 && p < end)
                p += snprintf(p, (size_t) (end - p), " (1.3: PSK with (EC)DHE)");
        const char *sep = "; suites ";
        for (const char *s = t->ciphers; *s && p < end;) {
                size_t n = strcspn(s, ":");
                char name[64];
                snprintf(name, sizeof name, "%.*s", (int) MIN(n, sizeof name - 1), s);
                p += snprintf(p, (size_t) (end - p), "%s%s", sep, suite_iana(name));
                sep = ", ";
                s += n + (s[n] == ':');
        }
        if (p < end)
                snprintf(p, (size_t) (end - p), "; groups %s",
                         t->p256_only ? "P-256" : "X25519, P-256");
}

static int ctx_new(const tls_config_t *cfg, bool server, bool p256_only, tls_ctx_t **ret) {
        if (!cfg || !ret)
                return -EINVAL;
        pthread_once(&wolfssl_once, wolfssl_init);
        if (wolfssl_init_result < 0)
                return wolfssl_init_result;

        tls_version_t min = cfg->min_version ? cfg->min_version : TLS_VERSION_1_2;
        tls_version_t max = cfg->max_version ? cfg->max_version : TLS_VERSION_1_3;
        if (min < TLS_VERSION_1_2 || max > TLS_VERSION_1_3 || min > max)
                return -EINVAL;

        bool want_psk = server ? cfg->psk_lookup != NULL : cfg->mode == TLS_MODE_PSK;
        bool want_cert = server ? cfg->cert_file || cfg->key_file : cfg->mode == TLS_MODE_CERT;
        if (!want_psk && !want_cert)
                return -EINVAL;
        if (want_cert && (!cfg->cert_file || !cfg->key_file || (!server && !cfg->ca_file)))
                return -EINVAL;
        if (want_psk && !server) {
                size_t n = cfg->psk_identity ? strnlen(cfg->psk_identity, TLS_PSK_ID_MAX + 1) : 0;
                if (!cfg->psk || n == 0 || n > TLS_PSK_ID_MAX || cfg->psk_len < TLS_PSK_MIN ||
                    cfg->psk_len > TLS_PSK_MAX)
                        return -EINVAL;
        }

        _cleanup_(tls_ctx_freep) tls_ctx_t *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->server = server;
        t->psk = want_psk;
        t->cert = want_cert;
        t->tls13 = max == TLS_VERSION_1_3;
        t->min13 = min == TLS_VERSION_1_3;

        WOLFSSL_METHOD *method;
        if (max == TLS_VERSION_1_2)
                method = server ? wolfTLSv1_2_server_method() : wolfTLSv1_2_client_method();
        else
                method = server ? wolfSSLv23_server_method() : wolfSSLv23_client_method();
        t->ctx = method ? wolfSSL_CTX_new(method) : NULL;
        if (!t->ctx)
                return -ENOMEM;
        if (wolfSSL_CTX_SetMinVersion(t->ctx, min == TLS_VERSION_1_3 ? WOLFSSL_TLSV1_3
                                                                     : WOLFSSL_TLSV1_2) != WOLFSSL_SUCCESS)
                return -EPROTO;
        if (wolfSSL_CTX_set_ex_data(t->ctx, TLS_EX_IDX, t) != WOLFSSL_SUCCESS)
                return -ENOMEM;
        wolfSSL_CTX_SetIORecv(t->ctx, io_recv);
        wolfSSL_CTX_SetIOSend(t->ctx, io_send);
        /* Every socket here is non-blocking and waited on by a loop: a read that would block
         * is said at once. Debian builds wolfSSL with OPENSSL_COMPATIBLE_DEFAULTS, whose
         * SSL_MODE_AUTO_RETRY made every would-block read of a handshake call recv() 11 times
         * in a row (WOLFSSL_MODE_AUTO_RETRY_ATTEMPTS). */
        (void) wolfSSL_CTX_clear_mode(t->ctx, SSL_MODE_AUTO_RETRY);
        /* X25519 first, P-256 second (so that P-256-only peers still work, through a
         * HelloRetryRequest in TLS 1.3); a client sends an X25519 key share only
         * (tls_conn_new_client): P-256 is slow and memory hungry in this build. TLS 1.2 psk:
         * wolfSSL 5.5.4 reads an ECDHE-PSK ServerKeyExchange in the curve of
         * ssl->ecdhCurveOID, not the one the message names (src/internal.c
         * DoServerKeyExchange, ecdhe_psk_kea case; the ECDHE-ECDSA case sets it), so the
         * TLS 1.2 psk context fixes it to X25519 and a server that picks P-256 fails with
         * ECC_PEERKEY_ERROR: then the P-256-only context takes over (tls_conn_retry,
         * docs/protocol.md). */
        int groups[] = { WOLFSSL_ECC_X25519, WOLFSSL_ECC_SECP256R1 };
        size_t n_groups = ELEMENTSOF(groups);
        if (!server && want_psk && !t->tls13 && p256_only) {
                groups[0] = WOLFSSL_ECC_SECP256R1;
                n_groups = 1;
                t->p256_only = true;
        } else if (!server && want_psk && !t->tls13) {
                /* wolfSSL copies the context's ecdhCurveOID into each connection; the only
                 * public setter is the OpenSSL-compatible SSL_CTX_set_tmp_ecdh, which takes
                 * nothing but the group's curve_oid from its EC_KEY. */
                static WOLFSSL_EC_GROUP x25519_group = { .curve_idx = -1, .curve_oid = ECC_X25519_OID };
                static WOLFSSL_EC_KEY x25519_key = { .group = &x25519_group };
                if (wolfSSL_SSL_CTX_set_tmp_ecdh(t->ctx, &x25519_key) != WOLFSSL_SUCCESS)
                        return -EPROTO;
        }
        bool ok = true;
        if (t->tls13)
                ok = wolfSSL_CTX_set_groups(t->ctx, groups, (int) n_groups) == WOLFSSL_SUCCESS;
        else /* set_groups refuses a TLS 1.2-only method */
                for (size_t i = 0; i < n_groups && ok; i++)
                        ok = wolfSSL_CTX_UseSupportedCurve(t->ctx, (word16) groups[i]) == WOLFSSL_SUCCESS;
        if (!ok)
                return -EPROTO;
        /* One-shot connections: no session cache, no tickets, so no resumption. */
        wolfSSL_CTX_set_session_cache_mode(t->ctx, WOLFSSL_SESS_CACHE_OFF);
        if (server) {
                wolfSSL_CTX_no_ticket_TLSv13(t->ctx);
                wolfSSL_CTX_NoTicketTLSv12(t->ctx);
        }
#if HAVE_WOLFSSL_CTX_ONLY_DHE_PSK
        /* TLS 1.3 PSK is psk_dhe_ke only: offer (client) and accept (server) nothing else, so a
         * psk_ke-only peer fails the handshake on both sides. Without this call (wolfSSL < 5.6,
         * Debian 12) a psk_ke handshake completes at the TLS layer and is refused afterwards
         * (conn_post_handshake), which only this side sees. */
        if (want_psk && t->tls13 && wolfSSL_CTX_only_dhe_psk(t->ctx) < 0) /* 0 on success */
                return -EPROTO;
#endif

        if (want_psk && server) {
                t->psk_lookup = cfg->psk_lookup;
                t->psk_userdata = cfg->psk_userdata;
                wolfSSL_CTX_set_psk_server_callback(t->ctx, server_psk_cb);
                wolfSSL_CTX_set_psk_server_tls13_callback(t->ctx, server_psk_tls13_cb);
        } else if (want_psk) {
                t->psk_identity = strdup(cfg->psk_identity);
                if (!t->psk_identity)
                        return -ENOMEM;
                memcpy(t->psk_key, cfg->psk, cfg->psk_len);
                t->psk_len = cfg->psk_len;
                wolfSSL_CTX_set_psk_client_callback(t->ctx, client_psk_cb);
                wolfSSL_CTX_set_psk_client_tls13_callback(t->ctx, client_psk_tls13_cb);
        }

        if (want_cert) {
                if (wolfSSL_CTX_use_certificate_chain_file(t->ctx, cfg->cert_file) != WOLFSSL_SUCCESS)
                        return path_error(cfg->cert_file);
                if (wolfSSL_CTX_use_PrivateKey_file(t->ctx, cfg->key_file, WOLFSSL_FILETYPE_PEM) !=
                    WOLFSSL_SUCCESS)
                        return path_error(cfg->key_file);
                if (wolfSSL_CTX_check_private_key(t->ctx) != WOLFSSL_SUCCESS)
                        return -EINVAL;
                if (cfg->ca_file && wolfSSL_CTX_load_verify_locations(t->ctx, cfg->ca_file, NULL) != WOLFSSL_SUCCESS)
                        return path_error(cfg->ca_file);
                t->verify_peer = cfg->ca_file != NULL;
        }

        if (!server)
                /* Always verify: in psk mode no anchors are loaded (ca_file is ignored), so a
                 * server that answers with a certificate instead of the PSK is refused. */
                wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_PEER, verify_cb);
        else if (t->verify_peer)
                /* With a PSK lookup too, PSK handshakes carry no certificates: a cert handshake
                 * without a client cert completes, and tls_conn_peer_fingerprint says -ENOKEY. */
                wolfSSL_CTX_set_verify(t->ctx,
                                       WOLFSSL_VERIFY_PEER |
                                               (t->psk ? 0 : WOLFSSL_VERIFY_FAIL_IF_NO_PEER_CERT),
                                       NULL);
        else
                wolfSSL_CTX_set_verify(t->ctx, WOLFSSL_VERIFY_NONE, NULL);

        int r = ctx_set_ciphers(t, min, max);
        if (r < 0)
                return r;
        ctx_describe_offer(t, min, max);

        /* The wolfSSL errors after which tls_conn_retry() goes on with tls_ctx_fallback_new():
         * conn_error() says why and when. */
        if (!server && want_psk && min == TLS_VERSION_1_2)
                t->retry_on = t->tls13 ? VERSION_ERROR : p256_only ? 0 : ECC_PEERKEY_ERROR;

        *ret = TAKE_PTR(t);
        return 0;
}

int tls_ctx_new_client(const tls_config_t *cfg, tls_ctx_t **ret) {
        return ctx_new(cfg, false, false, ret);
}

int tls_ctx_new_server(const tls_config_t *cfg, tls_ctx_t **ret) {
        return ctx_new(cfg, true, false, ret);
}

int tls_ctx_fallback_new(const tls_ctx_t *t, tls_ctx_t **ret) {
        tls_config_t cfg = {
                .mode = TLS_MODE_PSK,
                .min_version = TLS_VERSION_1_2,
                .max_version = TLS_VERSION_1_2,
                .psk_identity = t->psk_identity,
                .psk = t->psk_key,
                .psk_len = t->psk_len,
        };
        return ctx_new(&cfg, false, !t->tls13, ret);
}

tls_ctx_t *tls_ctx_free(tls_ctx_t *t) {
        if (!t)
                return NULL;
        wolfSSL_CTX_free(t->ctx); /* NULL is fine: wolfSSL 5.5.4 and 5.7.2 test it first */
        erase(t->psk_key, sizeof(t->psk_key));
        free(t->psk_identity);
        free(t);
        return NULL;
}

const char *tls_ctx_ciphers(const tls_ctx_t *t) {
        return t ? t->ciphers : NULL;
}

const char *tls_ctx_offer(const tls_ctx_t *t) {
        return t ? t->offer : NULL;
}

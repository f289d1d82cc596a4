/* SPDX-License-Identifier: MIT */
/* An interoperability peer on GnuTLS: the MEF's TLS end (server) or a gateway (client) for the
 * matrix of interop-matrix.sh; options and output in peer-common.h. The exporter is
 * gnutls_prf_rfc5705 with a NULL context (RFC 5705 use_context = 0), the HMAC gnutls_hmac_fast.
 * GnuTLS picks TLS 1.2 suites from its priority string as cipher x MAC x key exchange, so -s
 * enables the parts the named suites need (psk-cbc with ecdhe-psk-cbc needs nothing more, for
 * instance, but psk-gcm together with ecdhe-psk-cbc brings psk-cbc along). TLS 1.3 psk modes:
 * +ECDHE-PSK/+DHE-PSK enable psk_dhe_ke, +PSK psk_ke (and the static TLS 1.2 PSK suites). */
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer-common.h"

static peer_opts_t opts;
static bool hrr;

static int hook(gnutls_session_t s, unsigned htype, unsigned when, unsigned incoming, const gnutls_datum_t *msg) {
        (void) s, (void) when, (void) incoming, (void) msg;
        if (htype == GNUTLS_HANDSHAKE_HELLO_RETRY_REQUEST)
                hrr = true;
        return 0;
}

static int psk_server_cb(gnutls_session_t s, const char *username, gnutls_datum_t *key) {
        (void) s;
        if (!username || strcmp(username, opts.psk_identity) != 0)
                return -1;
        key->data = gnutls_malloc(opts.psk_len);
        if (!key->data)
                return -1;
        memcpy(key->data, opts.psk, opts.psk_len);
        key->size = (unsigned) opts.psk_len;
        return 0;
}

static int hmac_sha256(const uint8_t *key, size_t key_len, const void *data, size_t len, uint8_t out[32]) {
        return gnutls_hmac_fast(GNUTLS_MAC_SHA256, key, key_len, data, len, out) == 0 ? 0 : -1;
}

static ssize_t io_read(void *tls, void *buf, size_t n) {
        ssize_t k;
        do
                k = gnutls_record_recv(tls, buf, n);
        while (k == GNUTLS_E_INTERRUPTED);
        return k >= 0 ? k : -1;
}

static ssize_t io_write(void *tls, const void *buf, size_t n) {
        ssize_t k;
        do
                k = gnutls_record_send(tls, buf, n);
        while (k == GNUTLS_E_INTERRUPTED);
        return k > 0 ? k : -1;
}

static void add(char *p, size_t size, const char *item) {
        snprintf(p + strlen(p), size - strlen(p), ":%s", item);
}

static void priority(char *p, size_t size) {
        bool v12 = opts.versions & PEER_V12, v13 = opts.versions & PEER_V13;
        unsigned s = v12 ? opts.suites : 0;
        bool psk = opts.psk_identity;
        snprintf(p, size, "NONE");
        if (v13)
                add(p, size, "+VERS-TLS1.3");
        if (v12)
                add(p, size, "+VERS-TLS1.2");
        if (v13 || s & (PEER_S_PSK_GCM | PEER_S_ECDSA_GCM))
                add(p, size, "+AES-128-GCM:+AEAD");
        if (s & (PEER_S_PSK_CBC | PEER_S_ECDHE_PSK_CBC | PEER_S_ECDSA_CBC))
                add(p, size, "+AES-128-CBC:+SHA256");
        if (psk) {
                /* TLS 1.3: ECDHE-PSK = psk_dhe_ke, PSK = psk_ke; in server order of preference */
                if ((v13 && opts.psk_modes & PEER_K_DHE) || s & PEER_S_ECDHE_PSK_CBC)
                        add(p, size, "+ECDHE-PSK");
                if ((v13 && opts.psk_modes & PEER_K_KE) || s & (PEER_S_PSK_CBC | PEER_S_PSK_GCM))
                        add(p, size, "+PSK");
        }
        if (opts.cert || (!psk && opts.ca))
                add(p, size, "+ECDHE-ECDSA:+ECDHE-RSA");
        if (opts.groups == PEER_G_X25519)
                add(p, size, "+GROUP-X25519");
        else if (opts.groups == PEER_G_P256)
                add(p, size, "+GROUP-SECP256R1");
        else
                add(p, size, opts.p256_first ? "+GROUP-SECP256R1:+GROUP-X25519" : "+GROUP-X25519:+GROUP-SECP256R1");
        add(p, size, "+SIGN-ALL:+COMP-NULL:+CTYPE-X509");
}

static const char *kex_name(gnutls_session_t s, bool tls13) {
        gnutls_kx_algorithm_t kx = gnutls_kx_get(s);
        if (tls13)
                switch (kx) {
                case GNUTLS_KX_ECDHE_PSK:
                case GNUTLS_KX_DHE_PSK: return "psk_dhe_ke";
                case GNUTLS_KX_PSK: return "psk_ke";
                default: return "ecdhe-cert";
                }
        switch (kx) {
        case GNUTLS_KX_ECDHE_PSK: return "ecdhe-psk";
        case GNUTLS_KX_PSK: return "psk";
        default: return "ecdhe-cert";
        }
}

int main(int argc, char **argv) {
        printf("LIB GnuTLS %s\n", gnutls_check_version(NULL));
        fflush(stdout);
        if (peer_parse_args(argc, argv, &opts) < 0)
                return 2;

        char prio[512];
        priority(prio, sizeof prio);
        gnutls_psk_server_credentials_t psk_srv = NULL;
        gnutls_psk_client_credentials_t psk_cli = NULL;
        gnutls_certificate_credentials_t xcred = NULL;
        gnutls_session_t s = NULL;
        int r, lfd = -1, fd = -1;
        if ((r = gnutls_init(&s, opts.server ? GNUTLS_SERVER : GNUTLS_CLIENT)) < 0)
                goto setup;
        const char *err_pos = NULL;
        if ((r = gnutls_priority_set_direct(s, prio, &err_pos)) < 0) {
                fprintf(stderr, "peer-gnutls: priority '%s' at '%s'\n", prio, err_pos ? err_pos : "?");
                goto setup;
        }
        if (opts.psk_identity) {
                gnutls_datum_t key = { .data = opts.psk, .size = (unsigned) opts.psk_len };
                if (opts.server) {
                        if ((r = gnutls_psk_allocate_server_credentials(&psk_srv)) < 0)
                                goto setup;
                        gnutls_psk_set_server_credentials_function(psk_srv, psk_server_cb);
                        r = gnutls_credentials_set(s, GNUTLS_CRD_PSK, psk_srv);
                } else {
                        if ((r = gnutls_psk_allocate_client_credentials(&psk_cli)) < 0 ||
                            (r = gnutls_psk_set_client_credentials(psk_cli, opts.psk_identity, &key,
                                                                   GNUTLS_PSK_KEY_RAW)) < 0)
                                goto setup;
                        r = gnutls_credentials_set(s, GNUTLS_CRD_PSK, psk_cli);
                }
                if (r < 0)
                        goto setup;
        }
        if (opts.cert || opts.ca) {
                if ((r = gnutls_certificate_allocate_credentials(&xcred)) < 0)
                        goto setup;
                if (opts.cert && (r = gnutls_certificate_set_x509_key_file(xcred, opts.cert, opts.key,
                                                                           GNUTLS_X509_FMT_PEM)) < 0)
                        goto setup;
                if (opts.ca && (r = gnutls_certificate_set_x509_trust_file(xcred, opts.ca, GNUTLS_X509_FMT_PEM)) < 0)
                        goto setup;
                if ((r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, xcred)) < 0)
                        goto setup;
                if (opts.ca) {
                        if (opts.server)
                                gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
                        gnutls_session_set_verify_cert(s, opts.server ? NULL : opts.name, 0);
                }
        }
        if (!opts.server && opts.name &&
            (r = gnutls_server_name_set(s, GNUTLS_NAME_DNS, opts.name, strlen(opts.name))) < 0)
                goto setup;
        gnutls_handshake_set_hook_function(s, GNUTLS_HANDSHAKE_ANY, GNUTLS_HOOK_POST, hook);
        gnutls_handshake_set_timeout(s, 20000);

        if (opts.server) {
                if ((lfd = peer_listen()) >= 0)
                        fd = peer_accept(lfd);
        } else
                fd = peer_connect(opts.port);
        if (fd < 0) {
                r = 2;
                goto out;
        }
        gnutls_transport_set_int(s, fd);
        do
                r = gnutls_handshake(s);
        while (r == GNUTLS_E_INTERRUPTED || (r < 0 && !gnutls_error_is_fatal(r) && r != GNUTLS_E_AGAIN));
        if (r < 0) {
                /* as gnutls-serv and gnutls-cli do: tell the peer why */
                (void) gnutls_alert_send_appropriate(s, r);
                bool rcvd = r == GNUTLS_E_FATAL_ALERT_RECEIVED || r == GNUTLS_E_WARNING_ALERT_RECEIVED;
                int level, sent = rcvd ? -1 : gnutls_error_to_alert(r, &level);
                const char *alert = rcvd ? gnutls_alert_get_name(gnutls_alert_get(s)) : NULL;
                printf("HANDSHAKE failed %s alert-sent=%s alert-received=%s\n", gnutls_strerror(r),
                       sent >= 0 ? gnutls_alert_get_name((gnutls_alert_description_t) sent) : "none",
                       alert ? alert : "none");
                r = 1;
                goto out;
        }
        bool tls13 = gnutls_protocol_get_version(s) == GNUTLS_TLS1_3;
        gnutls_group_t g = gnutls_group_get(s);
        unsigned n_peer = 0;
        (void) gnutls_certificate_get_peers(s, &n_peer);
        printf("HANDSHAKE ok %s %s group=%s kex=%s hrr=%s peer-cert=%s\n",
               gnutls_protocol_get_name(gnutls_protocol_get_version(s)), gnutls_ciphersuite_get(s),
               g ? gnutls_group_get_name(g) : "none", kex_name(s, tls13), hrr ? "yes" : "no", n_peer ? "yes" : "no");
        fflush(stdout);

        uint8_t ekm[PEER_EKM_LEN];
        if ((r = gnutls_prf_rfc5705(s, strlen(PEER_LABEL), PEER_LABEL, 0, NULL, sizeof ekm, (char *) ekm)) < 0) {
                fprintf(stderr, "peer-gnutls: exporter: %s\n", gnutls_strerror(r));
                r = 2;
                goto out;
        }
        r = peer_exchange(&opts, &(peer_io_t) { .tls = s, .read = io_read, .write = io_write }, ekm, hmac_sha256);
        (void) gnutls_bye(s, GNUTLS_SHUT_WR);
        goto out;
setup:
        fprintf(stderr, "peer-gnutls: %s (priority %s)\n", gnutls_strerror(r), prio);
        r = 2;
out:
        if (fd >= 0)
                close(fd);
        if (lfd >= 0)
                close(lfd);
        if (s)
                gnutls_deinit(s);
        if (psk_srv)
                gnutls_psk_free_server_credentials(psk_srv);
        if (psk_cli)
                gnutls_psk_free_client_credentials(psk_cli);
        if (xcred)
                gnutls_certificate_free_credentials(xcred);
        return r;
}

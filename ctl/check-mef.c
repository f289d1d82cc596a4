/* SPDX-License-Identifier: MIT */
/* mscectl check --network: the MEF resolves, accepts a connection and the TLS handshake with the
 * bootstrap credential. */
#include <arpa/inet.h>
#include <netdb.h>

#include "agent/credential.h"
#include "ctl/check-internal.h"
#include "proto/exchange.h"

static bool ip_literal(const char *host) {
        uint8_t a[16];
        return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static int check_dns(checker_t *c, const agent_config_t *cfg) {
        if (ip_literal(cfg->mef_host)) {
                check_report(c, L_OK, NULL, "MEF address: %s", cfg->mef_host);
                return 0;
        }
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
        struct addrinfo *ai = NULL;
        int r = getaddrinfo(cfg->mef_host, cfg->mef_port, &hints, &ai);
        if (r != 0) {
                check_report(c, L_FAIL, "check the name in [mef] uri and the resolver (/etc/resolv.conf)",
                             "MEF name: %s does not resolve: %s", cfg->mef_host,
                             r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
                return -ENOENT;
        }
        char addr[INET6_ADDRSTRLEN] = "?";
        size_t n = 0;
        for (struct addrinfo *p = ai; p; p = p->ai_next, n++)
                if (n == 0)
                        (void) getnameinfo(p->ai_addr, p->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
        freeaddrinfo(ai);
        check_report(c, L_OK, NULL, "MEF name: %s resolves to %s%s", cfg->mef_host, addr, n > 1 ? " (and more)" : "");
        return 0;
}

void check_mef(checker_t *c, const agent_config_t *cfg) {
        if (check_dns(c, cfg) < 0)
                return;
        _cleanup_close_ int fd = -1;
        int r = tcp_connect_until(cfg->mef_host, cfg->mef_port, now_usec() + cfg->connect_timeout_usec, &fd);
        if (r < 0) {
                check_report(c, L_FAIL, "is the MEF running and reachable? check [mef] uri, routes and firewalls",
                             "MEF connection: %s port %s: %s", cfg->mef_host, cfg->mef_port, strerror(-r));
                return;
        }
        check_report(c, L_OK, NULL, "MEF connection: %s port %s", cfg->mef_host, cfg->mef_port);

        _cleanup_(tls_ctx_freep) tls_ctx_t *ctx = NULL;
        exchange_info_t info;
        r = credential_tls_ctx(cfg, &ctx, &info);
        if (r < 0) {
                check_report(c, L_FAIL, "check the [mef] credential files", "MEF TLS: cannot set up TLS: %s",
                             info.failure.reason);
                return;
        }
        _cleanup_(tls_conn_freep) tls_conn_t *conn = NULL;
        r = tls_conn_new_client(ctx, fd, cfg->mef_host, &conn);
        if (r == 0)
                r = tls_conn_handshake_until(conn, now_usec() + cfg->exchange_timeout_usec);
        if (r == 0 && cfg->mode == TLS_MODE_CERT && streq(tls_conn_version(conn), "TLSv1.3")) {
                /* A TLS 1.3 MEF judges our certificate after our side of the handshake is over:
                 * its refusal comes as the next record. Ours says we are done, so the MEF either
                 * refuses (an alert: -EACCES) or closes too. */
                char b;
                tls_conn_shutdown(conn);
                ssize_t n = tls_conn_read_until(conn, &b, 1, now_usec() + cfg->exchange_timeout_usec);
                r = n == -EACCES ? -EACCES : 0;
        }
        if (r == -EACCES) {
                check_report(c, L_FAIL,
                             cfg->mode == TLS_MODE_PSK
                                     ? "psk_identity and psk_file must be the KpmID and Kpm of this node at the MEF"
                                     : "the MEF must know the device certificate, and trust_anchors sign the MEF's",
                             "MEF TLS: authentication failed (%s mode)", cfg->mode == TLS_MODE_PSK ? "psk" : "cert");
                return;
        }
        if (r == -EPROTONOSUPPORT || r == -ENOKEY) {
                /* Not the credential: nothing in common (docs/protocol.md "Handshake failures"). */
                check_report(c, L_FAIL,
                             r == -ENOKEY
                                     ? "the MEF must offer one of these, and know psk_identity (its alert does not say "
                                       "which is missing)"
                                     : "the MEF must offer one of these; check tls_min_version and tls_max_version",
                             "MEF TLS: incompatible: the MEF accepted none of %s%s", tls_ctx_offer(ctx),
                             r == -ENOKEY ? ", or does not know the PSK identity" : "");
                return;
        }
        if (r == -EREMOTEIO) {
                check_report(c, L_FAIL,
                             "check the MEF's log; a GnuTLS-based MEF says this when it does not know psk_identity",
                             "MEF TLS: the MEF aborted the handshake with internal_error");
                return;
        }
        if (r == -EPROTOTYPE) {
                check_report(c, L_FAIL, "the MEF must prefer TLS 1.3 PSK with (EC)DHE (psk_dhe_ke) over psk_ke",
                             "MEF TLS: incompatible: the MEF chose TLS 1.3 PSK without (EC)DHE");
                return;
        }
        if (r < 0) {
                check_report(c, L_FAIL, "is this an msce MEF? check tls_min_version and tls_max_version",
                             "MEF TLS: handshake failed: %s", strerror(-r));
                return;
        }
        check_report(c, L_OK, NULL, "MEF TLS: %s %s (%s mode)", tls_conn_version(conn), tls_conn_cipher(conn),
                     cfg->mode == TLS_MODE_PSK ? "psk" : "cert");
        tls_conn_shutdown(conn);
}

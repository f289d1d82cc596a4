/* SPDX-License-Identifier: MIT */
#pragma once
/* Why a TLS handshake failed, from what wolfSSL reports and what the wire showed
 * (proto/tls-wire.h): the mapping of docs/protocol.md "Handshake failures", as a pure function
 * so that every row of that table has a unit test. */

#include <stdbool.h>
#include <stdint.h>

typedef struct tls_failure {
        int error;              /* wolfSSL_get_error() */
        int alert_rx;           /* the last alert received, -1: none */
        bool handshake;         /* during the handshake (else: a record after it) */
        bool client;
        bool own_verify_failed; /* our verify callback refused the peer */
        bool server_hello;      /* a ServerHello or HelloRetryRequest arrived first */
        uint16_t version;       /* the ServerHello's version (0x0303, 0x0304), 0: none */
        uint16_t min_version;   /* our floor, same encoding */
        bool psk13_offered;     /* the ClientHello offered a TLS 1.3 PSK (identity in clear) */
        bool second_flight;     /* we sent our next flight (TLS 1.2: ClientKeyExchange, with
                                 * the PSK identity or our certificate) */
} tls_failure_t;

/* -EACCES: authentication failed (unknown PSK identity, wrong PSK, certificate refused);
 * -EPROTONOSUPPORT: client: no common version, suite or group;
 * -ENOKEY: client: the MEF aborted before its ServerHello in a way that means either no
 *   common version, suite or group, or an unknown TLS 1.3 PSK identity (no way to tell);
 * -EPROTO: any other TLS failure; 0: not a TLS failure (look at the socket error). */
int tls_classify_failure(const tls_failure_t *f);

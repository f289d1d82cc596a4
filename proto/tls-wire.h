/* SPDX-License-Identifier: MIT */
#pragma once
/* A passive reader of the first bytes a TLS server sends (its plaintext records up to and
 * including the ServerHello), independent of wolfSSL. proto/tls.c feeds it what its recv
 * callback returns, to learn what wolfSSL does not expose in the middle of a failed
 * handshake: did the server answer at all (ServerHello, HelloRetryRequest), which version and
 * suite it chose, its Random (for the RFC 8446 4.1.3 downgrade sentinel), and the plaintext
 * alert it sent before any ServerHello. Pure function over bytes (tests/fuzz). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The ServerHello (with a HelloRetryRequest before it) fits: a larger one is not parsed. */
#define TLS_WIRE_HS_MAX 1024u
#define TLS_WIRE_RANDOM_LEN 32u

typedef struct tls_wire {
        /* parser state */
        uint8_t hdr[5];
        size_t hdr_len;
        size_t rec_left;        /* payload bytes of the current record still to come */
        uint8_t rec_type;
        uint8_t hs[TLS_WIRE_HS_MAX]; /* plaintext handshake bytes not yet parsed */
        size_t hs_len;
        bool done;              /* ServerHello parsed, or nothing more to learn */
        /* results */
        bool server_hello;      /* a ServerHello (not a HelloRetryRequest) was parsed */
        bool hello_retry;       /* a HelloRetryRequest came first */
        uint16_t version;       /* negotiated: supported_versions if present, else legacy_version */
        uint16_t suite;
        uint8_t random[TLS_WIRE_RANDOM_LEN];
        bool key_share;         /* the ServerHello has a key_share: (EC)DHE (TLS 1.3) */
        bool pre_shared_key;    /* the ServerHello accepted a PSK (TLS 1.3) */
        int alert;              /* description of a plaintext alert before the ServerHello, -1: none */
} tls_wire_t;

void tls_wire_init(tls_wire_t *w);
void tls_wire_feed(tls_wire_t *w, const uint8_t *p, size_t n);

/* The ServerHello negotiated TLS 1.2 or lower and its Random ends in the RFC 8446 4.1.3
 * sentinel "DOWNGRD" 00/01: the server supports a higher version than it chose. */
bool tls_wire_downgrade_sentinel(const tls_wire_t *w);

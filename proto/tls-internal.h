/* SPDX-License-Identifier: MIT */
#pragma once
/* Inside proto/tls.h, which is the entry point: the context and connection structures that its
 * two files share. proto/tls-ctx.c: library set-up, versions and suites, PSK and certificate
 * set-up and callbacks, the socket I/O callbacks; proto/tls.c: connections (handshake and its
 * checks, I/O, exporter, peer identity). */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"
#include <wolfssl/ssl.h>

#include <stdbool.h>
#include <stdint.h>

#include "proto/tls.h"
#include "proto/tls-wire.h"

/* Index used for our pointers in wolfSSL's ex_data (CTX: tls_ctx_t, SSL: tls_conn_t). */
#define TLS_EX_IDX 0
/* The key limit is wolfSSL's MAX_PSK_KEY_LEN = 64, as in the protocol (the identity's:
 * TLS_PSK_ID_MAX, proto/tls.h). */
#define TLS_PSK_MIN 16u
#define TLS_PSK_MAX 64u
/* The suite the TLS 1.3 PSK is bound to (SHA-256 hash), both ends. */
#define TLS13_PSK_SUITE "TLS13-AES128-GCM-SHA256"
#define TLS_SNI_MAX 255u
/* A server reads the socket this much at a time: wolfSSL asks for each record's 5-byte header,
 * then its body, so a client's flight (ClientHello; Finished and the request) cost two
 * recv() per record. This holds a usual flight whole. */
#define TLS_READ_AHEAD 2048u

/* The protocol's suites in preference order (wolfSSL name, IANA name for messages). Only
 * those this wolfSSL build accepts are used: the static PSK suites are missing without
 * WOLFSSL_STATIC_PSK. A client offers the first TLS 1.3 suite only (docs/protocol.md); the
 * MEF accepts all three, for clients that prefer another. */
typedef struct suite {
        const char *name;
        const char *iana;
} suite_t;

struct tls_ctx {
        WOLFSSL_CTX *ctx;
        bool server;
        bool psk;           /* PSK suites and callbacks configured */
        bool cert;          /* own certificate loaded */
        bool verify_peer;   /* trust anchors loaded, peer certificates verified */
        bool tls13;         /* TLS 1.3 possible */
        bool min13;         /* TLS 1.3 only */
        bool p256_only;     /* client: P-256 is the only group offered */
        int retry_on;       /* client, psk: the wolfSSL error after a TLS 1.2 ServerHello that asks
                             * for tls_conn_retry() on tls_ctx_fallback_new(); 0: none */
        char *psk_identity; /* client */
        uint8_t psk_key[TLS_PSK_MAX];
        size_t psk_len;
        tls_psk_lookup_t psk_lookup; /* server */
        void *psk_userdata;
        char ciphers[512];
        char offer[512];    /* what a client offers, for messages (tls_ctx_offer) */
};

struct tls_conn {
        tls_ctx_t *ctx;
        WOLFSSL *ssl;
        int fd;
        short want;
        int io_errno;        /* last errno from the socket callbacks */
        bool done;           /* handshake completed and checked */
        bool retry;          /* client: -ENOPROTOOPT returned, tls_conn_retry() expected */
        tls_ctx_t *cur;      /* client: the context of this attempt (ctx, or the fallback) */
        tls_ctx_t *fallback; /* client: the context tls_conn_retry() made, owned */
        tls_wire_t wire;     /* client: what the server's first records said */
        bool received;       /* the peer sent something */
        bool second_flight;  /* we sent something after that (TLS 1.2: our ClientKeyExchange) */
        int write_lost;      /* client: the errno of a write the peer's reset lost, 0 (io_send) */
        int failed;          /* sticky error after a failed post-handshake check */
        bool auth_failed;    /* our own verification refused the peer */
        uint8_t host_ip[16];   /* client: the address of an IP literal host, */
        uint8_t host_ip_len;   /* 4 or 16 bytes; 0 for a name */
        char psk_identity[TLS_PSK_ID_MAX + 1]; /* server: identity the lookup accepted */
        bool psk_found;
        char *sni;
        char *host;          /* client: for the retry */
        void *userdata;      /* server: for the PSK lookup, NULL = the context's */
        uint64_t bytes_in;   /* received from the socket so far */
        bool sent_any;       /* anything written to the socket yet */
        bool corked;         /* tls_conn_cork(): send with MSG_MORE */
        uint8_t held_alert[7]; /* server: a plaintext fatal alert as the first record, held */
        bool alert_held;       /* back until the handshake result is known (io_send) */
        bool busy;             /* server: tls_conn_refuse_busy(): fatal alerts say internal_error */
        uint16_t ahead_pos, ahead_len;     /* server: ahead[pos..len) read, not yet given */
        uint8_t ahead[TLS_READ_AHEAD];     /* to wolfSSL (records: ciphertext, no secret) */
};

/* Client, psk: the context after t's retry_on, TLS 1.2 only (from a TLS 1.3 context), then
 * P-256 only. Made on need: most exchanges never retry. */
int tls_ctx_fallback_new(const tls_ctx_t *t, tls_ctx_t **ret);

/* Is name in the ':'-separated list? */
bool tls_in_list(const char *list, const char *name);

/* SPDX-License-Identifier: MIT */
#pragma once
/* TLS on wolfSSL for both ends (protocol section 1). Explicit cipher lists, a version floor,
 * SNI, PSK (identity = KpmID) or mutual certificates, and the RFC 5705 exporter.
 * Connections work on non-blocking sockets: each call returns -EAGAIN with the direction
 * to wait for in tls_conn_want(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef enum tls_mode {
        TLS_MODE_PSK,
        TLS_MODE_CERT,
        _TLS_MODE_MAX,
        _TLS_MODE_INVALID = -22,
} tls_mode_t;

typedef enum tls_version {
        TLS_VERSION_1_2 = 12,
        TLS_VERSION_1_3 = 13,
} tls_version_t;

/* The longest PSK identity (a KpmID, a target's PSK identity) a handshake can carry: below
 * wolfSSL's MAX_PSK_ID_LEN (128), leaving room for the NUL it expects inside that length. */
#define TLS_PSK_ID_MAX 127u

/* Server side PSK lookup: copy the key for identity into key (at most key_max bytes), return
 * its length, or 0 to refuse the identity (handshake fails like a wrong key: the client sees
 * decrypt_error/bad_record_mac, so identities cannot be probed). It may be called more than
 * once per handshake. userdata is the connection's (tls_conn_set_userdata) when set, else
 * the config's psk_userdata. */
typedef unsigned (*tls_psk_lookup_t)(void *userdata, const char *identity, uint8_t *key,
                                     unsigned key_max);

typedef struct tls_config {
        tls_mode_t mode;
        tls_version_t min_version;     /* floor: 1.2 (default) or 1.3 */
        tls_version_t max_version;     /* 0 = 1.3; tests pin 1.2 with this */
        /* client, psk mode (ca_file, cert_file, key_file are ignored) */
        const char *psk_identity;      /* 1..TLS_PSK_ID_MAX bytes */
        const uint8_t *psk;            /* 16..64 bytes; copied into the context, wiped on free */
        size_t psk_len;
        /* server: mode is not used. PSK suites are offered when psk_lookup is set, certificate
         * suites when cert_file/key_file are; both may be set. With ca_file and a cert, client
         * certificates are requested and verified (and required unless psk_lookup is set:
         * then check tls_conn_psk_identity() or tls_conn_peer_fingerprint()). */
        tls_psk_lookup_t psk_lookup;
        void *psk_userdata;
        /* cert mode (both ends): own chain and key (PEM), trust anchors (PEM file) */
        const char *cert_file;
        const char *key_file;
        const char *ca_file;
} tls_config_t;

typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

int tls_ctx_new_client(const tls_config_t *cfg, tls_ctx_t **ret);
int tls_ctx_new_server(const tls_config_t *cfg, tls_ctx_t **ret);
tls_ctx_t *tls_ctx_free(tls_ctx_t *ctx);
static inline void tls_ctx_freep(tls_ctx_t **p) {
        tls_ctx_free(*p);
}

/* Which suites this wolfSSL build offers for the context (a ':'-list), for diagnostics. */
const char *tls_ctx_ciphers(const tls_ctx_t *ctx);
/* Client: what it offers, for messages: "TLS 1.2-1.3 (1.3: PSK with (EC)DHE); suites
 * TLS_AES_128_GCM_SHA256, ...; groups X25519, P-256". */
const char *tls_ctx_offer(const tls_ctx_t *ctx);

/* Client: host is the MEF host; SNI is sent and the certificate name checked unless it is an
 * IP literal (then no SNI; in cert mode the certificate must name the IP). fd is a connected
 * socket, owned by the caller. */
int tls_conn_new_client(tls_ctx_t *ctx, int fd, const char *host, tls_conn_t **ret);
int tls_conn_new_server(tls_ctx_t *ctx, int fd, tls_conn_t **ret);
tls_conn_t *tls_conn_free(tls_conn_t *c);
static inline void tls_conn_freep(tls_conn_t **p) {
        tls_conn_free(*p);
}
/* Server: what the PSK lookup gets as userdata for this connection instead of the config's
 * psk_userdata (so it can keep what it looked up with the connection); NULL restores that. */
void tls_conn_set_userdata(tls_conn_t *c, void *userdata);
/* Server, from the PSK lookup: it could not tell whether it knows the identity (its store is
 * away). The handshake then fails with internal_error, which clients read as a fault of the
 * server's to retry, not with the alert that says the credential was refused. */
void tls_conn_refuse_busy(tls_conn_t *c);

/* 0 when done, -EAGAIN (see tls_conn_want), -EACCES for an authentication failure (unknown
 * PSK identity, wrong PSK, certificate rejected, name mismatch), -ECONNRESET/-EPIPE when the
 * peer went away, -EPROTO for any other TLS failure. A client also gets:
 *   -EPROTONOSUPPORT  no common version, suite or group (tls_ctx_offer() says what we offered);
 *   -EPROTOTYPE       a TLS 1.3 server chose PSK without (EC)DHE (psk_ke), which wolfSSL 5.5.4
 *                     lists in every ClientHello but we refuse;
 *   -ENOKEY           the server aborted before its ServerHello with handshake_failure after a
 *                     TLS 1.3 PSK offer: no common version, suite or group, or an unknown PSK
 *                     identity - the wire does not say which;
 *   -EREMOTEIO        the server aborted before its ServerHello with internal_error after a
 *                     TLS 1.3 PSK offer: a fault at the MEF, or (GnuTLS) an unknown identity;
 *   -ENOPROTOOPT      (psk mode, TLS 1.2 allowed) the server chose TLS 1.2 and wolfSSL 5.5.4
 *                     cannot go on with this attempt's context: after a TLS 1.3 PSK offer
 *                     (VERSION_ERROR), or, TLS 1.2 only, when the server picked P-256
 *                     (ECC_PEERKEY_ERROR). Connect again to the same address and call
 *                     tls_conn_retry() (tls_conn_handshake_until does this itself); at most
 *                     twice for one tls_conn_t (TLS 1.2, then P-256 only). docs/protocol.md.
 * Classes as in docs/protocol.md "Handshake failures". */
int tls_conn_handshake(tls_conn_t *c);
/* After -ENOPROTOOPT: continue with a TLS 1.2-only handshake on fd, a new connection to the
 * same address (owned by the caller, like the first). The RFC 8446 downgrade sentinel is
 * checked: a server that shows it supports TLS 1.3 fails it with -EPROTO. */
int tls_conn_retry(tls_conn_t *c, int fd);
/* Short reads/writes allowed; 0 from read means clean EOF (close_notify); EOF without
 * close_notify is -ECONNRESET. Negative errno as above; -ENOTCONN before the handshake.
 * Client: a write (here, in the handshake or in tls_conn_shutdown) that meets a reset after the
 * peer has sent something counts as done, and so does every write after it, so that the next
 * read gives what the peer sent before its reset (a fatal alert: -EACCES for a refused
 * certificate; or an answer); with nothing there, reads fail with the lost write's error
 * (-ECONNRESET, or -EPIPE), and tls_conn_write_lost() says so. A TLS 1.3 handshake whose last
 * flight was lost so reads at its end: it fails with the alert's class or that error. */
ssize_t tls_conn_read(tls_conn_t *c, void *buf, size_t n);
ssize_t tls_conn_write(tls_conn_t *c, const void *buf, size_t n);
/* Client: a write was lost to the peer's reset (see tls_conn_read). */
bool tls_conn_write_lost(const tls_conn_t *c);
/* Send close_notify (best effort, never blocks). */
void tls_conn_shutdown(tls_conn_t *c);
/* The last words: from now on what is written (and close_notify) waits in the socket (MSG_MORE)
 * until the caller shuts it down (shutdown(SHUT_WR) or close()), so an answer, close_notify and
 * FIN leave as one segment: one wake-up of the peer, not three. */
void tls_conn_cork(tls_conn_t *c);
/* POLLIN or POLLOUT: what the last -EAGAIN waits for. */
int tls_conn_want(const tls_conn_t *c);
/* Bytes read from the socket so far (TLS records, the handshake included): a server tells
 * a silent client from one whose handshake is under way, and says how far it got. */
uint64_t tls_conn_bytes_received(const tls_conn_t *c);

/* After the handshake. */
int tls_conn_export(tls_conn_t *c, const char *label, uint8_t *out, size_t len);
const char *tls_conn_version(const tls_conn_t *c);   /* "TLSv1.3" */
const char *tls_conn_cipher(const tls_conn_t *c);
/* Server: the PSK identity the client used (psk mode), NULL otherwise, also when the lookup
 * knew the identity but the handshake ended up without the PSK. */
const char *tls_conn_psk_identity(const tls_conn_t *c);
/* Server, cert mode: lowercase hex SHA-256 of the client's verified leaf certificate (DER),
 * 65 bytes. -ENOKEY when the client sent none (a PSK handshake, or a server with psk_lookup
 * whose cert-handshake client had no certificate) and on the client side. */
int tls_conn_peer_fingerprint(tls_conn_t *c, char out[65]);
/* The socket the connection uses (a new one after the TLS 1.2 retry). */
int tls_conn_fd(const tls_conn_t *c);
/* Server: the SNI the client sent, NULL when none. */
const char *tls_conn_sni(tls_conn_t *c);

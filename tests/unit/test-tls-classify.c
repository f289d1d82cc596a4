/* SPDX-License-Identifier: MIT */
/* proto/tls-classify.c: every row of docs/protocol.md "Handshake failures", and
 * proto/tls-wire.c: what the server's first records say (ServerHello, HelloRetryRequest,
 * alerts, the downgrade sentinel), fed whole and byte by byte. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <criterion/criterion.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include "proto/tls-classify.h"
#include "proto/tls-wire.h"

#define TLS12 0x0303
#define TLS13 0x0304

/* A client failure during the handshake: alert a (or -1) after error e. */
static tls_failure_t client(int e, int a) {
        return (tls_failure_t) { .error = e, .alert_rx = a, .handshake = true, .client = true, .min_version = TLS12 };
}

/* One row: a client failure during the handshake (error e, alert a or -1, what else applies;
 * our floor TLS 1.2 unless given) and its class. */
typedef struct {
        tls_failure_t f;
        int want;
} row_t;
#define ROW(want_, e, a, ...) \
        { .f = { .error = (e), .alert_rx = (a), .handshake = true, .client = true, __VA_ARGS__ }, .want = (want_) }

static void check_rows(const row_t *rows, size_t n) {
        for (size_t i = 0; i < n; i++) {
                tls_failure_t f = rows[i].f;
                if (!f.min_version)
                        f.min_version = TLS12;
                cr_assert_eq(tls_classify_failure(&f), rows[i].want, "row %zu (error %d, alert %d)", i, f.error,
                             f.alert_rx);
        }
}

Test(tls_classify, openssl_and_gnutls_rows) {
        static const row_t rows[] = {
                /* TLS 1.2 MEF, no shared suite (OpenSSL and GnuTLS): handshake_failure before the
                 * ServerHello. After a TLS 1.3 PSK offer the same as an unknown TLS 1.3 identity. */
                ROW(-EPROTONOSUPPORT, FATAL_ERROR, handshake_failure),
                ROW(-ENOKEY, FATAL_ERROR, handshake_failure, .psk13_offered = true),
                /* TLS 1.3 MEF: unknown identity without a certificate, no common suite or group:
                 * handshake_failure before the ServerHello (OpenSSL, GnuTLS). */
                ROW(-ENOKEY, FATAL_ERROR, handshake_failure, .psk13_offered = true),
                /* cert mode, TLS 1.3 offered without PSK: no common suite or group. */
                ROW(-EPROTONOSUPPORT, FATAL_ERROR, handshake_failure),
                /* TLS 1.2 ECDHE-PSK, no common group: OpenSSL aborts after its ServerHello, before
                 * our ClientKeyExchange; after it: the credential. */
                ROW(-EPROTONOSUPPORT, FATAL_ERROR, handshake_failure, .server_hello = true, .version = TLS12),
                ROW(-EACCES, FATAL_ERROR, handshake_failure, .server_hello = true, .version = TLS12,
                    .second_flight = true),
                /* TLS 1.3, after the ServerHello (encrypted alert): the credential. */
                ROW(-EACCES, FATAL_ERROR, handshake_failure, .server_hello = true, .version = TLS13),
                /* No common version: protocol_version (OpenSSL), insufficient_security. */
                ROW(-EPROTONOSUPPORT, FATAL_ERROR, protocol_version),
                ROW(-EPROTONOSUPPORT, FATAL_ERROR, protocol_version, .psk13_offered = true),
                ROW(-EPROTONOSUPPORT, FATAL_ERROR, insufficient_security),
                /* TLS 1.2 wrong key or unknown identity (OpenSSL, GnuTLS): bad_record_mac after the
                 * ServerHello; unknown_psk_identity from others; decrypt_error from msce-mef
                 * (RFC 8446 4.2.11). */
                ROW(-EACCES, FATAL_ERROR, bad_record_mac, .server_hello = true, .version = TLS12, .second_flight = true),
                ROW(-EACCES, FATAL_ERROR, unknown_psk_identity, .server_hello = true, .version = TLS12,
                    .second_flight = true),
                ROW(-EACCES, FATAL_ERROR, decrypt_error, .server_hello = true, .version = TLS12, .second_flight = true),
                /* TLS 1.3 wrong key or unknown identity: illegal_parameter before the ServerHello
                 * (OpenSSL 3.0 and GnuTLS 3.7 on a binder that does not verify); without a PSK
                 * offer, or later: a protocol error. */
                ROW(-EACCES, FATAL_ERROR, illegal_parameter, .psk13_offered = true),
                ROW(-EPROTO, FATAL_ERROR, illegal_parameter),
                ROW(-EPROTO, FATAL_ERROR, illegal_parameter, .psk13_offered = true, .server_hello = true,
                    .version = TLS13),
                /* anything else the MEF says is a protocol error */
                ROW(-EPROTO, FATAL_ERROR, decode_error),
                ROW(-EPROTO, FATAL_ERROR, internal_error),
                /* internal_error before the ServerHello after a TLS 1.3 PSK offer: GnuTLS 3.7's
                 * answer to an unknown identity, or a fault at the MEF: its own code (transient,
                 * said so) */
                ROW(-EREMOTEIO, FATAL_ERROR, internal_error, .psk13_offered = true),
                ROW(-EPROTO, FATAL_ERROR, internal_error, .psk13_offered = true, .server_hello = true,
                    .version = TLS13),
        };
        check_rows(rows, ELEMENTSOF(rows));

        /* certificates */
        int cert_alerts[] = { bad_certificate, unsupported_certificate, certificate_revoked, certificate_expired,
                              certificate_unknown, unknown_ca, access_denied, certificate_required };
        for (size_t i = 0; i < ELEMENTSOF(cert_alerts); i++) {
                tls_failure_t f = client(FATAL_ERROR, cert_alerts[i]);
                f.server_hello = true;
                f.version = TLS13;
                cr_assert_eq(tls_classify_failure(&f), -EACCES, "alert %d", cert_alerts[i]);
        }
}

Test(tls_classify, local_errors) {
        /* our own checks of the peer */
        int auth[] = { VERIFY_MAC_ERROR, DECRYPT_ERROR, PSK_KEY_ERROR, BAD_BINDER, VERIFY_FINISHED_ERROR,
                       ASN_NO_SIGNER_E, ASN_AFTER_DATE_E, DOMAIN_NAME_MISMATCH, IPADDR_MISMATCH, VERIFY_CERT_ERROR,
                       NO_PEER_CERT,
                       /* a certificate that chains and names the peer but is not for its use */
                       EXTKEYUSE_AUTH_E, KEYUSE_SIGNATURE_E, KEYUSE_ENCIPHER_E, ASN_CRIT_EXT_E, CRL_CERT_REVOKED,
                       OCSP_CERT_REVOKED, MAX_CHAIN_ERROR };
        for (size_t i = 0; i < ELEMENTSOF(auth); i++) {
                tls_failure_t f = client(auth[i], -1);
                cr_assert_eq(tls_classify_failure(&f), -EACCES, "error %d", auth[i]);
        }
        static const row_t rows[] = {
                ROW(-EACCES, 0, -1, .own_verify_failed = true),
                /* a server below our floor: wolfSSL's VERSION_ERROR after its ServerHello */
                ROW(-EPROTONOSUPPORT, VERSION_ERROR, -1, .server_hello = true, .version = 0x0302),
                ROW(-EPROTONOSUPPORT, VERSION_ERROR, -1, .server_hello = true, .version = TLS12, .min_version = TLS13),
                /* ... a TLS 1.2 server with a TLS 1.2 floor is no version problem */
                ROW(0, VERSION_ERROR, -1, .server_hello = true, .version = TLS12, .min_version = TLS12),
                /* I/O and anything else: not classified here */
                ROW(0, SOCKET_ERROR_E, -1),
                ROW(0, MATCH_SUITE_ERROR, -1),
        };
        check_rows(rows, ELEMENTSOF(rows));
        /* a bad record after the handshake is not an authentication failure */
        tls_failure_t f = client(VERIFY_MAC_ERROR, -1);
        f.handshake = false;
        cr_assert_eq(tls_classify_failure(&f), 0);
}

Test(tls_classify, server_side_unchanged) {
        tls_failure_t f = { .error = FATAL_ERROR, .alert_rx = handshake_failure, .handshake = true };
        cr_assert_eq(tls_classify_failure(&f), -EACCES);
        f.alert_rx = bad_record_mac;
        cr_assert_eq(tls_classify_failure(&f), -EACCES);
        f.alert_rx = protocol_version;
        cr_assert_eq(tls_classify_failure(&f), -EPROTO);
        f = (tls_failure_t) { .error = BAD_BINDER, .handshake = true };
        cr_assert_eq(tls_classify_failure(&f), -EACCES);
}

/* ---- tls-wire ---- */

static size_t put16(uint8_t *p, unsigned v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
        return 2;
}

/* A ServerHello record: version (legacy), random, suite, extensions as given. */
static size_t server_hello(uint8_t *out, unsigned legacy, const uint8_t random[32], unsigned suite,
                           const uint8_t *ext, size_t ext_len) {
        uint8_t body[2048];
        size_t n = 0;
        n += put16(body + n, legacy);
        memcpy(body + n, random, 32);
        n += 32;
        body[n++] = 32; /* session id */
        memset(body + n, 0xab, 32);
        n += 32;
        n += put16(body + n, suite);
        body[n++] = 0;
        if (ext) {
                n += put16(body + n, (unsigned) ext_len);
                memcpy(body + n, ext, ext_len);
                n += ext_len;
        }
        size_t k = 0;
        out[k++] = 22;
        out[k++] = 3;
        out[k++] = 3;
        k += put16(out + k, (unsigned) (n + 4));
        out[k++] = 2;
        out[k++] = 0;
        k += put16(out + k, (unsigned) n);
        memcpy(out + k, body, n);
        return k + n;
}

static const uint8_t ext13[] = { 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04,                   /* supported_versions */
                                 0x00, 0x33, 0x00, 0x06, 0x00, 0x1d, 0x00, 0x02, 1, 2, /* key_share */
                                 0x00, 0x29, 0x00, 0x02, 0x00, 0x00 };                 /* pre_shared_key */
static const uint8_t ext13_psk_ke[] = { 0x00, 0x2b, 0x00, 0x02, 0x03, 0x04, 0x00, 0x29, 0x00, 0x02, 0x00, 0x00 };
static const uint8_t ext12[] = { 0xff, 0x01, 0x00, 0x01, 0x00, 0x00, 0x17, 0x00, 0x00 };

static void feed_both_ways(const uint8_t *rec, size_t n, tls_wire_t *whole, tls_wire_t *bytewise) {
        tls_wire_init(whole);
        tls_wire_feed(whole, rec, n);
        tls_wire_init(bytewise);
        for (size_t i = 0; i < n; i++)
                tls_wire_feed(bytewise, rec + i, 1);
        cr_assert_eq(whole->server_hello, bytewise->server_hello);
        cr_assert_eq(whole->version, bytewise->version);
        cr_assert_eq(whole->alert, bytewise->alert);
        cr_assert_eq(whole->key_share, bytewise->key_share);
}

Test(tls_wire, server_hellos) {
        uint8_t rec[600], random[32];
        tls_wire_t w, b;
        memset(random, 0x11, sizeof random);

        size_t n = server_hello(rec, TLS12, random, 0x1301, ext13, sizeof ext13);
        feed_both_ways(rec, n, &w, &b);
        cr_assert(w.server_hello && w.done);
        cr_assert_eq(w.version, TLS13);
        cr_assert_eq(w.suite, 0x1301);
        cr_assert(w.key_share && w.pre_shared_key);
        cr_assert_not(tls_wire_downgrade_sentinel(&w));

        n = server_hello(rec, TLS12, random, 0x1301, ext13_psk_ke, sizeof ext13_psk_ke);
        feed_both_ways(rec, n, &w, &b);
        cr_assert(w.pre_shared_key && !w.key_share, "psk_ke: a PSK without key_share");

        n = server_hello(rec, TLS12, random, 0xc037, ext12, sizeof ext12);
        feed_both_ways(rec, n, &w, &b);
        cr_assert_eq(w.version, TLS12);
        cr_assert_not(tls_wire_downgrade_sentinel(&w));
        /* no extensions at all */
        n = server_hello(rec, TLS12, random, 0xc037, NULL, 0);
        feed_both_ways(rec, n, &w, &b);
        cr_assert(w.server_hello);
        cr_assert_eq(w.version, TLS12);
}

/* Whether the ServerHello with random, suite and extensions shows the downgrade sentinel. */
static bool sentinel_seen(const uint8_t random[32], unsigned suite, const uint8_t *ext, size_t ext_len) {
        uint8_t rec[600];
        tls_wire_t w, b;
        size_t n = server_hello(rec, TLS12, random, suite, ext, ext_len);
        feed_both_ways(rec, n, &w, &b);
        return tls_wire_downgrade_sentinel(&w);
}

Test(tls_wire, downgrade_sentinel) {
        uint8_t random[32];
        memset(random, 0x22, sizeof random);
        memcpy(random + 24, "DOWNGRD\x01", 8);
        cr_assert(sentinel_seen(random, 0xc037, ext12, sizeof ext12));
        random[31] = 0;
        cr_assert(sentinel_seen(random, 0xc037, ext12, sizeof ext12));
        random[31] = 2;
        cr_assert_not(sentinel_seen(random, 0xc037, ext12, sizeof ext12));
        /* in a TLS 1.3 ServerHello it means nothing */
        random[31] = 1;
        cr_assert_not(sentinel_seen(random, 0x1301, ext13, sizeof ext13));
}

Test(tls_wire, hello_retry_then_server_hello) {
        static const uint8_t hrr[32] = { 0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c,
                                         0x02, 0x1e, 0x65, 0xb8, 0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb,
                                         0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c };
        static const uint8_t ccs[] = { 20, 3, 3, 0, 1, 1 };
        uint8_t rec[1400], random[32];
        memset(random, 0x33, sizeof random);
        size_t n = server_hello(rec, TLS12, hrr, 0x1301, ext13, sizeof ext13);
        memcpy(rec + n, ccs, sizeof ccs);
        n += sizeof ccs;
        n += server_hello(rec + n, TLS12, random, 0x1301, ext13, sizeof ext13);
        tls_wire_t w, b;
        feed_both_ways(rec, n, &w, &b);
        cr_assert(w.hello_retry && w.server_hello);
        cr_assert_eq(w.random[0], 0x33);
}

Test(tls_wire, alerts_and_garbage) {
        static const uint8_t alert[] = { 21, 3, 3, 0, 2, 2, 40 };
        tls_wire_t w, b;
        feed_both_ways(alert, sizeof alert, &w, &b);
        cr_assert_eq(w.alert, 40);
        cr_assert_not(w.server_hello);
        cr_assert(w.done);

        static const uint8_t http[] = "HTTP/1.1 400 Bad Request\r\n\r\n";
        feed_both_ways(http, sizeof http - 1, &w, &b);
        cr_assert(w.done && !w.server_hello && w.alert == -1);

        /* a truncated ServerHello and a bad extension block teach nothing */
        uint8_t rec[600], random[32] = {};
        size_t n = server_hello(rec, TLS12, random, 0x1301, ext13, sizeof ext13);
        tls_wire_init(&w);
        tls_wire_feed(&w, rec, n - 1);
        cr_assert_not(w.server_hello);
        cr_assert_not(w.done);
        rec[n - 3] = 0xff; /* pre_shared_key: a length beyond the extension block */
        feed_both_ways(rec, n, &w, &b);
        cr_assert_not(w.server_hello);
}

/* A TLS 1.2 server may send ServerHello, Certificate and the rest in one record, longer than
 * the reader's buffer: the ServerHello at its start is still read (a handshake_failure after
 * it is a rejection, not an incompatibility: docs/protocol.md). */
Test(tls_wire, server_hello_then_certificate_in_one_record) {
        uint8_t rec[4096], random[32];
        memset(random, 0x44, sizeof random);
        size_t n = server_hello(rec, TLS12, random, 0xc02b, ext12, sizeof ext12);
        size_t cert_len = 2000; /* the Certificate message's body, beyond TLS_WIRE_HS_MAX */
        rec[n++] = 11;
        rec[n++] = 0;
        n += put16(rec + n, (unsigned) cert_len);
        memset(rec + n, 0x5a, cert_len);
        n += cert_len;
        put16(rec + 3, (unsigned) (n - 5)); /* one record around both */
        cr_assert_gt(n - 5, TLS_WIRE_HS_MAX);
        tls_wire_t w, b;
        feed_both_ways(rec, n, &w, &b);
        cr_assert(w.server_hello && w.done);
        cr_assert_eq(w.version, TLS12);
        cr_assert_eq(w.suite, 0xc02b);
        cr_assert_eq(w.random[0], 0x44);
        /* in two reads, the first ending inside the ServerHello */
        tls_wire_init(&w);
        tls_wire_feed(&w, rec, 20);
        tls_wire_feed(&w, rec + 20, n - 20);
        cr_assert(w.server_hello);
}

/* A ServerHello longer than the buffer is not parsed: the reader gives up. */
Test(tls_wire, server_hello_longer_than_buffer) {
        uint8_t rec[4096], random[32] = {};
        uint8_t ext[1200] = { 0xff, 0x01, 0x04, 0xac }; /* renegotiation_info of 1196 bytes */
        size_t n = server_hello(rec, TLS12, random, 0xc02b, ext, sizeof ext);
        tls_wire_t w, b;
        feed_both_ways(rec, n, &w, &b);
        cr_assert(w.done && !w.server_hello);
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* The first PSK identity a TLS 1.3 client offers, read from its ClientHello before the TLS
 * library sees it (the server peeks at the socket, nothing is consumed): msce-mef looks that
 * identity up in a store thread while the handshake waits, instead of in wolfSSL's PSK
 * callback on the event loop. Independent of wolfSSL; a pure function over bytes
 * (tests/fuzz/fuzz-tls-hello.c). */

#include <stddef.h>
#include <stdint.h>

/* The longest identity worth taking: wolfSSL's own bound (MAX_PSK_ID_LEN). */
#define TLS_HELLO_IDENTITY_MAX 128u
/* What is worth peeking at: a ClientHello that comes in one record of at most this much. */
#define TLS_HELLO_PEEK_MAX 2048u

/* p[0..n): the first bytes the client sent. 1: out holds the first identity of the ClientHello's
 * pre_shared_key extension (RFC 8446 4.2.11), NUL-terminated. 0: none to take - no such
 * extension (TLS 1.2, a certificate client), bytes that are not one whole handshake record
 * holding one whole ClientHello (incomplete, split over records, malformed: wolfSSL judges
 * those), an identity that is empty, holds a NUL byte or does not fit out_size - 1; also p or
 * out NULL, out_size 0. On 0, out is left "" (when out_size > 0). */
int tls_hello_psk_identity(const uint8_t *p, size_t n, char *out, size_t out_size);

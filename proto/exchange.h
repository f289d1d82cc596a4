/* SPDX-License-Identifier: MIT */
#pragma once
/* The client's exchange engine: resolve, connect, TLS handshake, one request, one response,
 * each step under a deadline on CLOCK_MONOTONIC (usec, from now_usec()), blocking with poll()
 * on the socket. One engine for the agent's exchange child (agent/enrol.h), mscectl check and
 * the tests; nothing here runs in the daemon's own loop. */

#include <stdint.h>
#include <sys/types.h>

#include "proto/http.h"
#include "proto/tls.h"

/* Connect a non-blocking TCP socket to host:port (getaddrinfo, each address in turn, each
 * with its share of the time left: at least a second, the last all of it). The deadline bounds
 * the connects, not getaddrinfo(), which waits as long as the resolver does.
 * -EHOSTUNREACH/-ECONNREFUSED/-ETIMEDOUT/-ENOENT (name not resolved): the last address's. */
int tcp_connect_until(const char *host, const char *port, uint64_t deadline, int *ret_fd);

/* tls_conn_handshake() and friends, waiting with poll(): -ETIMEDOUT past the deadline. The
 * handshake does the TLS 1.2 retry (-ENOPROTOOPT, proto/tls.h) itself: it connects to the peer
 * address again and puts the new socket in place of the old one under the same fd number. */
int tls_conn_handshake_until(tls_conn_t *c, uint64_t deadline);
int tls_conn_write_all_until(tls_conn_t *c, const void *buf, size_t n, uint64_t deadline);
ssize_t tls_conn_read_until(tls_conn_t *c, void *buf, size_t n, uint64_t deadline);

/* How far an exchange got: where a failure happened. */
typedef enum exchange_stage {
        EXCHANGE_STAGE_NONE,       /* no network needed yet, or the response arrived */
        EXCHANGE_STAGE_CONNECT,    /* name resolution or TCP connect */
        EXCHANGE_STAGE_TLS,        /* the TLS handshake */
        EXCHANGE_STAGE_REQUEST,    /* sending the request */
        EXCHANGE_STAGE_RESPONSE,   /* waiting for the response */
        _EXCHANGE_STAGE_MAX,
} exchange_stage_t;

/* Builds the request once the handshake is done (it may export keying material from c):
 * 0 with *ret (heap, wiped and freed by the engine) or a negative errno. */
typedef int (*exchange_request_t)(tls_conn_t *c, void *userdata, uint8_t **ret, size_t *ret_len);

typedef struct exchange_spec {
        tls_ctx_t *ctx;
        const char *host, *port;
        uint64_t connect_deadline;  /* TCP connect (name resolution is not bounded by it) */
        uint64_t deadline;          /* the whole exchange */
        exchange_request_t request;
        void *userdata;
} exchange_spec_t;

/* One exchange: 0 with *ret the response (http_msg_done()), or a negative errno with
 * *ret_stage saying where it failed: the errors of tcp_connect_until() (CONNECT), of
 * tls_conn_handshake() (TLS) or of request() (TLS: it runs right after the handshake), for
 * the request -ETIMEDOUT and I/O errors (REQUEST: -ECONNRESET also for a peer gone, never
 * -EPIPE), and for the response: -ETIMEDOUT, I/O errors, -EMSGSIZE (over the protocol
 * limits), -EBADMSG (malformed), -ENODATA (closed without a response), -EPIPE (truncated).
 * version and cipher
 * get the TLS version and suite once the handshake is done ("" before). */
int exchange_run(const exchange_spec_t *s, http_msg_t *ret, exchange_stage_t *ret_stage, char version[16],
                 char cipher[64]);

/* SPDX-License-Identifier: MIT */
#pragma once
/* msce-mef's counters, gauges and histograms, rendered in the Prometheus text format (0.0.4).
 * They live in one shared anonymous mapping with atomic updates, so that worker processes
 * forked after mef_metrics_new() count into the same figures and any of them can answer a
 * scrape. Nothing here holds a node's identity or a key: labels are fixed sets. */

#include <stddef.h>
#include <stdint.h>

#include "mef/store.h"

typedef struct mef_metrics mef_metrics_t;

typedef enum mef_exchange {
        MEF_EXCHANGE_OTHER,      /* refused before routing: 400, 403, 404, 503 on overflow... */
        MEF_EXCHANGE_ENROL,
        MEF_EXCHANGE_STATUS,
        MEF_EXCHANGE_DEREGISTER,
        MEF_EXCHANGE_FETCH,
        _MEF_EXCHANGE_MAX,
} mef_exchange_t;
const char *mef_exchange_to_string(mef_exchange_t e);

/* Connections that ended before an authenticated request was answered. */
typedef enum mef_conn_failure {
        MEF_FAIL_AUTH,           /* unknown PSK identity, wrong key or certificate */
        MEF_FAIL_PROTOCOL,       /* TLS protocol error, no common version or suite */
        MEF_FAIL_HANDSHAKE_OTHER,
        MEF_FAIL_NO_CLIENT_HELLO, /* nothing within first_byte_timeout */
        MEF_FAIL_HANDSHAKE_TIMEOUT,
        MEF_FAIL_REQUEST_TIMEOUT, /* reading the request or writing the answer */
        MEF_FAIL_EVICTED,        /* unauthenticated, closed to make room */
        MEF_FAIL_CLOSED,         /* the peer closed during the handshake */
        MEF_FAIL_STORE_UNAVAILABLE, /* the handshake refused: the store could not look its PSK
                                     * identity up (tls_conn_refuse_busy()) */
        MEF_FAIL_STORE_ERROR,    /* the handshake refused: the store's lookup failed for a cause
                                  * of its own (a master key that does not open the identity's
                                  * key, a permission), not the client's credential */
        _MEF_FAIL_MAX,
} mef_conn_failure_t;

/* Where a handshake's PSK lookup ran: in a store thread before wolfSSL saw the ClientHello
 * (PostgreSQL), or in wolfSSL's callback on the event loop, which waits for it meanwhile (SQLite;
 * and on PostgreSQL a ClientHello that offers no PSK or does not come in one piece, TLS 1.2). */
typedef enum mef_psk_lookup {
        MEF_PSK_AHEAD,
        MEF_PSK_LOOP,
        _MEF_PSK_MAX,
} mef_psk_lookup_t;

int mef_metrics_new(mef_metrics_t **ret);
mef_metrics_t *mef_metrics_free(mef_metrics_t *m);

/* The open connections gauge is kept per process, in slot 0 (one process) or the slot of a
 * worker (1..MEF_METRICS_WORKERS), so that the count of a worker that died (killed by the
 * watchdog, crashed: the kernel closed its sockets) goes with it. */
#define MEF_METRICS_WORKERS 256u
/* In a worker, before it counts: this process counts its connections in slot (1..). */
void mef_metrics_use_slot(mef_metrics_t *m, unsigned slot);
/* In the supervisor, once the worker of slot is gone: its connections are no longer open. */
void mef_metrics_clear_slot(mef_metrics_t *m, unsigned slot);

/* Each accepts m == NULL (metrics off) and does nothing then. */
void mef_metrics_request(mef_metrics_t *m, mef_exchange_t ex, int http_status, uint64_t usec);
void mef_metrics_store(mef_metrics_t *m, uint64_t usec);
void mef_metrics_failure(mef_metrics_t *m, mef_conn_failure_t f);
void mef_metrics_connections(mef_metrics_t *m, int delta);
void mef_metrics_psk_lookup(mef_metrics_t *m, mef_psk_lookup_t where);
/* From a store thread: it ran jobs (requests, scrapes, retention) together, in one transaction
 * (SQLite's group commit), or one job alone (jobs = 1). */
void mef_metrics_store_batch(mef_metrics_t *m, unsigned jobs);

/* The exposition text into a heap buffer (NUL-terminated, *ret_len without the NUL). gauges:
 * what the store counted for this scrape; NULL (the store could not answer) leaves the store's
 * gauges out rather than reporting 0. */
int mef_metrics_render(const mef_metrics_t *m, const store_counts_t *gauges, char **ret, size_t *ret_len);

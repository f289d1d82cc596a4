/* SPDX-License-Identifier: MIT */
#pragma once
/* msce-loadgen's engine: simulated gateways on one sd-event loop, each running the real
 * exchanges of the protocol (TLS PSK through proto/tls.c, requests and answers through
 * proto/http.c and proto/msg.c, key confirmation through keys/kdf.c) with the agent's backoff
 * (agent/backoff.c). No logging here: main prints the results. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

#define LG_TARGETS_MAX 8u           /* enrolment targets the generator holds credentials for */
/* Latency histograms, log-linear: 1 us buckets below 256 us, then 128 buckets per power of two
 * (each within 0.8 % of its values) up to 2^40 us (12 days; longer ones in the last). A storm's
 * power-on to enrolled (backoff included) runs to minutes: every value keeps its magnitude. */
#define LG_HIST_LINEAR 256u
#define LG_HIST_SUB 128u
#define LG_HIST_N (LG_HIST_LINEAR + (40u - 8u) * LG_HIST_SUB)

typedef struct lg_cred {
        char id[MSG_ID_MAX + 1];     /* node ID, or target ID */
        char psk_id[MSG_ID_MAX + 1];
        uint8_t key[MSG_KEY_MAX];    /* secret */
        size_t key_len;
} lg_cred_t;

typedef enum lg_class {
        LG_CLASS_CONNECT,       /* TCP connect refused or failed */
        LG_CLASS_TLS,           /* TLS failure other than authentication, connection reset */
        LG_CLASS_TLS_AUTH,      /* PSK refused: rejected */
        LG_CLASS_TIMEOUT,       /* no answer within the exchange timeout */
        LG_CLASS_BUSY,          /* 503 */
        LG_CLASS_RATE,          /* 429: the MEF's per-node enrolment rate limit, transient */
        LG_CLASS_5XX,           /* other 5xx */
        LG_CLASS_REFUSED,       /* 403: rejected */
        LG_CLASS_UNKNOWN,       /* 404 on status or fetch: enrol again */
        LG_CLASS_4XX,           /* other 4xx: rejected */
        LG_CLASS_MALFORMED,     /* answer that does not parse, wrong X-M2M-RI, wrong state */
        LG_CLASS_KEY_MISMATCH,  /* key confirmation or fetched key differs */
        _LG_CLASS_MAX,
} lg_class_t;

const char *lg_class_to_string(lg_class_t c);

typedef struct lg_options {
        const char *host;            /* IP literal or name of the MEF, resolved once (lg_run()) */
        const char *port;
        const char *base;            /* "/msce" */
        const char *fqdn;            /* MEF-FQDN for the KeID: host in lower case unless given */
        const lg_cred_t *gateways;
        size_t n_gateways;
        const lg_cred_t *targets;    /* fetchCredentials as these targets when the profile names them */
        size_t n_targets;
        uint64_t spread_usec;        /* power-on times uniform over [0, spread] */
        uint64_t exchange_usec;      /* one exchange, connect to answer */
        uint64_t deadline_usec;      /* from the start: gateways not done by then are lost */
        uint64_t backoff_min_usec, backoff_max_usec, retry_after_max_usec;
        unsigned concurrency;        /* connections in flight at most (0: no limit) */
        uint64_t duration_usec;      /* >0: sustained mode (benchmarks), see lg_run() */
        uint64_t warmup_usec;
} lg_options_t;

typedef struct lg_result {
        uint64_t gateways, complete, lost, rejected;
        uint64_t enrolled;             /* gateways enrolled, each once (its first enrolment) */
        uint64_t reenrolled;           /* enrolments again, after a 404 (the MEF forgot the KeID) */
        uint64_t exchanges[3];         /* enrol, status, fetch attempts */
        uint64_t failures[_LG_CLASS_MAX];
        uint64_t retry_after_waits;    /* backoffs that honoured a Retry-After */
        uint64_t first_start, last_enrolled; /* now_usec(): first power-on, last first enrolment */
        uint64_t ok_in_window;         /* sustained mode: 2xx answers to enrol in the window */
        uint64_t window_usec;
        uint32_t enrol_hist[LG_HIST_N];   /* successful enrol exchange, connect to answer */
        uint32_t ready_hist[LG_HIST_N];   /* power-on to (first) enrolled, backoff included */
} lg_result_t;

/* The MEF's name is resolved first; of several addresses every gateway uses the first that
 * takes a connection within exchange_usec (each tried in turn, tcp_connect_until()).
 * Storm mode (duration 0): every gateway powers on at its time and runs enrol, a status check
 * and one fetchCredentials per target named in its profile that is in targets, each step
 * retried on transient failures (429 and 503 included, as msce-agent) with full-jitter backoff
 * or the Retry-After the MEF sent.
 * Rejections (TLS authentication, 403, other 4xx) end the gateway. Returns when every gateway
 * is done, rejected or past the deadline.
 * Sustained mode (duration > 0): concurrency gateways (cyclic over the list) enrol again and
 * again without pause for warmup + duration; answers are counted by status only (a reference
 * server may answer anything) in ok_in_window. res must be zeroed. 0, or a negative errno for
 * a setup failure. */
int lg_run(const lg_options_t *opt, lg_result_t *res);

/* One value (usec) into a histogram of LG_HIST_N buckets. */
void lg_hist_add(uint32_t *hist, uint64_t usec);
/* Percentile (1..100) of a histogram in ms, as the upper bound of its bucket (nearest rank); 0
 * when empty. max: the upper bound of the highest bucket in use. */
double lg_hist_ms(const uint32_t *hist, unsigned pct);
double lg_hist_max_ms(const uint32_t *hist);

/* SPDX-License-Identifier: MIT */
#pragma once
/* What the caller of an exchange should do about its result (protocol section 5), and the
 * record of an exchange that carries it, with the reason in words for the top layer. */

#include <stdbool.h>

#include "agent/backoff.h"
#include "proto/exchange.h"
#include "util/macro.h"

typedef enum outcome {
        OUTCOME_OK,
        OUTCOME_TRANSIENT,   /* retry with backoff */
        OUTCOME_REJECTED,    /* credential refused: slow retry */
        OUTCOME_CONFIG,      /* configuration or bootstrap credential unusable */
        OUTCOME_INCOMPATIBLE, /* no common TLS version, suite or group: slow retry */
        _OUTCOME_MAX,
        _OUTCOME_INVALID = -22,
} outcome_t;

const char *outcome_to_string(outcome_t o);

/* Return values of the three exchanges (negative errno, info->outcome says what to do):
 *   transient: -EHOSTUNREACH (also: name not resolved), -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET,
 *              -EPROTO (TLS), -EBUSY (503), -EREMOTEIO (other 5xx), -EBADMSG (truncated or
 *              malformed response, another request's X-M2M-RI, key confirmation mismatch)
 *   rejected:  -EACCES (TLS authentication, 403), -ENOENT (404: unknown KeID), -EINVAL (400
 *              and other 4xx: the MEF refuses what we send)
 *   config:    whatever the Kpm file or the certificate files gave (-EPERM, -ENOENT, -EINVAL...)
 *   incompatible: -EPROTONOSUPPORT (no common TLS version, suite or group), -ENOKEY (that, or
 *              an unknown TLS 1.3 PSK identity: the MEF's alert does not say which) */
typedef struct exchange_info {
        outcome_t outcome;
        exchange_stage_t stage;   /* where a failure happened */
        int http_status;          /* 0 when no response */
        int rsc;                  /* X-M2M-RSC, 0 when none */
        bool has_retry_after;     /* a 5xx carried a Retry-After in seconds (retry_after_parse()) */
        bool retry_after_capped;  /* ... above retry_after_max */
        unsigned retry_after;     /* ... in seconds, clamped to retry_after_max (0 is "now") */
        char retry_after_sent[RETRY_AFTER_SENT_MAX]; /* what the MEF sent, for messages; "" when none */
        char tls_version[16];
        char cipher[64];
        bool ltk_transported;     /* enrolment: the MEF sent the Long Term Key (else it is Ke) */
        char reason[512];         /* why it failed (never key bytes) */
} exchange_info_t;

/* The one setter for a failure: sets outcome and reason (printf-style), returns r. */
int exchange_fail(exchange_info_t *info, outcome_t o, int r, const char *fmt, ...) _printf_(4, 5);

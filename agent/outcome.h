/* SPDX-License-Identifier: MIT */
#pragma once
/* The agent's one error contract: a failure is a class (what the caller should do: the
 * manager's table maps it to the next state, delay, log priority, LED pattern and exit code),
 * the negative errno and a reason in words for the top layer (never key bytes), all set by
 * failure_set(). Exchanges (protocol section 5) and custody (restore, store) fill it. */

#include <stdbool.h>

#include "agent/backoff.h"
#include "proto/exchange.h"
#include "util/macro.h"

typedef enum outcome {
        OUTCOME_OK,
        OUTCOME_TRANSIENT,    /* the exchange failed: retry with backoff */
        OUTCOME_REJECTED,     /* credential refused: slow retry */
        OUTCOME_CONFIG,       /* configuration, bootstrap credential, service user, privileges,
                               * backend or state directory: operator action */
        OUTCOME_INCOMPATIBLE, /* no common TLS version, suite or group: slow retry */
        OUTCOME_UNKNOWN_KEID, /* the MEF's 404 to a status check or deregistration: it no longer
                               * knows the KeID (retired, expired, deregistered): enrol. A class of
                               * its own: -ENOENT alone is also a missing Kpm file (config) */
        OUTCOME_ABSENT,       /* restore: no sealed profile: enrol */
        OUTCOME_MISMATCH,     /* restore: the sealed profile is for another node ID or MEF: enrol */
        OUTCOME_EXPIRED,      /* restore: past its expiry: enrol */
        OUTCOME_UNUSABLE,     /* restore: corrupted, or its key is not available (TPM, host.key): enrol */
        OUTCOME_FAILED,       /* a local failure (file system, keyring, a sealing process): retry later */
        _OUTCOME_MAX,
        _OUTCOME_INVALID = -22,
} outcome_t;

const char *outcome_to_string(outcome_t o);

typedef struct failure {
        outcome_t outcome;  /* OUTCOME_OK: no failure */
        int error;          /* the negative errno returned with it, 0 */
        char reason[512];   /* why (never key bytes), "" */
} failure_t;

#define FAILURE_NULL ((failure_t) { .outcome = OUTCOME_OK })

/* The one setter: outcome, error = r and the reason (printf-style); returns r. */
int failure_set(failure_t *f, outcome_t o, int r, const char *fmt, ...) _printf_(4, 5);

/* Return values of the three exchanges (negative errno, info->failure says what to do: the
 * class decides, never the errno alone):
 *   transient: -EHOSTUNREACH (also: name not resolved), -ECONNREFUSED, -ETIMEDOUT, -ECONNRESET,
 *              -EPROTO (TLS), -EBUSY (503), -EREMOTEIO (other 5xx), -EBADMSG (truncated or
 *              malformed response, another request's X-M2M-RI, key confirmation mismatch)
 *   rejected:  -EACCES (TLS authentication, 403), -EINVAL (400 and other 4xx: the MEF refuses
 *              what we send)
 *   unknown KeID: -ENOENT (404 to a status check or deregistration)
 *   config:    whatever the Kpm file or the certificate files gave (-EPERM, -ENOENT, -EINVAL...),
 *              -ENOENT also for 404 to an enrolment (no enrolment resource at [mef] uri)
 *   incompatible: -EPROTONOSUPPORT (no common TLS version, suite or group), -ENOKEY (that, or
 *              an unknown TLS 1.3 PSK identity: the MEF's alert does not say which) */
typedef struct exchange_info {
        failure_t failure;
        exchange_stage_t stage;   /* where a failure happened */
        int http_status;          /* 0 when no response */
        bool has_retry_after;     /* a 5xx carried a Retry-After in seconds (retry_after_parse()) */
        bool retry_after_capped;  /* ... above retry_after_max */
        bool node_revoked;        /* a 403 with the MEF's node-revoked hint (docs/protocol.md) */
        unsigned retry_after;     /* ... in seconds, clamped to retry_after_max (0 is "now") */
        char retry_after_sent[RETRY_AFTER_SENT_MAX]; /* what the MEF sent, for messages; "" when none */
        char tls_version[16];
        char cipher[64];
        bool ltk_transported;     /* enrolment: the MEF sent the Long Term Key (else it is Ke) */
        bool poll_clamped;        /* success: the MEF's poll was outside MSG_POLL_MIN..MSG_POLL_MAX, */
        int64_t poll_sent;        /* ... this one: the nearest bound is used (the top layer warns) */
} exchange_info_t;

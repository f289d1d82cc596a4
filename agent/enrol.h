/* SPDX-License-Identifier: MIT */
#pragma once
/* The agent's client side of the exchanges (protocol 3.1-3.3): connect, TLS, one request,
 * one response, classification (protocol section 5). No logging here: results carry a
 * human-readable reason for the top layer. */

#include <stdint.h>

#include "agent/config.h"
#include "keys/kdf.h"
#include "proto/msg.h"

typedef enum outcome {
        OUTCOME_OK,
        OUTCOME_TRANSIENT,   /* retry with backoff */
        OUTCOME_REJECTED,    /* credential refused: slow retry */
        OUTCOME_CONFIG,      /* configuration or bootstrap credential unusable */
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
 *   config:    whatever the Kpm file or the certificate files gave (-EPERM, -ENOENT, -EINVAL...) */
typedef struct exchange_info {
        outcome_t outcome;
        int http_status;          /* 0 when no response */
        int rsc;                  /* X-M2M-RSC, 0 when none */
        unsigned retry_after;     /* seconds from a 5xx Retry-After, clamped to retry_after_max; 0: none */
        char tls_version[16];
        char cipher[64];
        char reason[512];         /* why it failed (never key bytes) */
} exchange_info_t;

typedef struct enrol_result {
        msg_profile_t profile;               /* non-secret parts + ltk when transported */
        uint8_t ltk[MSG_KEY_MAX];            /* the Long Term Key: Ke, or the transported ltk */
        size_t ltk_len;
        uint8_t kpsa[MSG_TARGETS_MAX][KDF_KEY_LEN]; /* one per profile.targets[] */
} enrol_result_t;

/* Enrol (3.1): prev is the KeID being replaced or NULL. Returns 0 with *ret filled (caller
 * must enrol_result_wipe()), or a negative errno with info->outcome and info->reason set.
 * Key confirmation: the profile's keID must equal the KeID derived here, else -EBADMSG
 * (transient per protocol section 5) and nothing is returned. */
int enrol_run(const agent_config_t *cfg, const char *prev, enrol_result_t *ret, exchange_info_t *info);

/* Status check (3.2). -ENOENT for 404/4004. */
int enrol_status(const agent_config_t *cfg, const char *ke_id, msg_status_t *ret, exchange_info_t *info);

/* Deregister (3.3). */
int enrol_deregister(const agent_config_t *cfg, const char *ke_id, exchange_info_t *info);

void enrol_result_wipe(enrol_result_t *r);

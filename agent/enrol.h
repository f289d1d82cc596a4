/* SPDX-License-Identifier: MIT */
#pragma once
/* The agent's client side of the exchanges (protocol 3.1-3.3): connect, TLS, one request,
 * one response, classification (protocol section 5). No logging here: results carry a
 * human-readable reason for the top layer.
 *
 * An exchange is a non-blocking state machine on an sd-event loop (exchange_*(): name
 * resolution in a helper thread unless the host is an IP literal, then connect, handshake,
 * write and read driven by one I/O source and one deadline timer). The blocking enrol_*()
 * functions run the same code on a private loop. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "agent/backoff.h"
#include "agent/config.h"
#include "keys/kdf.h"
#include "proto/msg.h"

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

/* How far an exchange got before it failed: the daemon's STATUS tells "cannot connect" from "TLS
 * failed" from "no response in time". */
typedef enum exchange_stage {
        EXCHANGE_STAGE_NONE,       /* no network needed yet, or the response arrived */
        EXCHANGE_STAGE_CONNECT,    /* name resolution or TCP connect */
        EXCHANGE_STAGE_TLS,        /* the TLS handshake */
        EXCHANGE_STAGE_RESPONSE,   /* sending the request or waiting for the response */
        _EXCHANGE_STAGE_MAX,
} exchange_stage_t;

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

/* Reads the Kpm (hex, 16..64 bytes, one optional line end) from path into key. -EINVAL for bad
 * content, -EPERM when group or others may read the file, else the error reading it. */
int kpm_read(const char *path, uint8_t key[MSG_KEY_MAX], size_t *ret_len);

/* ---- non-blocking ---- */

typedef struct exchange exchange_t;

/* Called once when the exchange ends, with 0 or the negative errno documented above; the
 * exchange stays valid during the call and the callback may free it. */
typedef void (*exchange_done_t)(exchange_t *x, int r, void *userdata);

/* Start an exchange on e. cfg must stay valid until the exchange is freed. On success *ret is
 * the running exchange and done will be called (from the loop, never from here). Failures that
 * need no network (bootstrap credential, arguments, memory) are returned here instead, with
 * info filled as by the blocking calls. */
int exchange_enrol(sd_event *e, const agent_config_t *cfg, const char *prev, exchange_done_t done,
                   void *userdata, exchange_t **ret, exchange_info_t *info);
int exchange_status(sd_event *e, const agent_config_t *cfg, const char *ke_id, exchange_done_t done,
                    void *userdata, exchange_t **ret, exchange_info_t *info);
int exchange_deregister(sd_event *e, const agent_config_t *cfg, const char *ke_id, exchange_done_t done,
                        void *userdata, exchange_t **ret, exchange_info_t *info);

/* Cancel (when running) and free: closes the connection, wipes what it held; done is not
 * called. NULL is fine. Returns NULL. */
exchange_t *exchange_free(exchange_t *x);
static inline void exchange_freep(exchange_t **x) {
        exchange_free(*x);
}

/* After done: what happened (always), and the results of a successful exchange. */
const exchange_info_t *exchange_get_info(const exchange_t *x);
/* Moves the enrolment result out (once): 0, or -ENODATA when there is none. */
int exchange_take_enrol(exchange_t *x, enrol_result_t *ret);
/* The status of a successful status check, NULL otherwise. */
const msg_status_t *exchange_get_status(const exchange_t *x);

/* SPDX-License-Identifier: MIT */
#pragma once
/* The four exchanges of protocol section 3 on the MEF side, as functions from an authenticated
 * request to a response: no sockets here, so they can be tested directly. */

#include <stdint.h>

#include "mef/mef-config.h"
#include "mef/metrics.h"
#include "mef/ratelimit.h"
#include "mef/store.h"
#include "proto/http.h"
#include "keys/kdf.h"

/* Who the TLS layer authenticated. */
typedef struct mef_peer {
        const char *psk_identity;  /* NULL in cert mode */
        const char *cert_fp;       /* NULL in psk mode */
        const char *addr;          /* for the audit trail */
        const uint8_t *ekm;        /* KDF_EKM_LEN bytes exported from this session */
        const store_node_t *node;  /* the node found for psk_identity in this handshake, or NULL:
                                    * then the handlers look it up */
        const store_target_t *target; /* the same for a target */
        ratelimit_t *enrol_limit;  /* [limits] enrolments_per_node, keyed by node ID; NULL: none */
        ratelimit_t *refusal_audit; /* mef_refusal_audit_new(); NULL: every refusal audited */
} mef_peer_t;

/* Refusals (4xx) of one identity, and its deregisters of a revoked enrolment (200, nothing
 * changed), are audited once a window per exchange and status: one looping on such a request
 * adds a row a minute, not one per request. The table the server's store threads share
 * (ratelimit_free() it). */
#define MEF_REFUSAL_AUDIT_WINDOW_S 60u
int mef_refusal_audit_new(ratelimit_t **ret);

typedef struct mef_response {
        int status;                 /* HTTP */
        int rsc;                    /* X-M2M-RSC */
        char *body;                 /* heap JSON; wiped and freed by mef_response_done */
        size_t body_len;
        unsigned retry_after;       /* 0: none */
        const char *allow;          /* static "Allow" value with 405, else NULL */
        mef_exchange_t exchange;    /* what was asked, once routed (metrics, log) */
        /* for the log entry, when known: the node and its enrolment */
        char node_id[MSG_ID_MAX + 1];
        char ke_id[MSG_KEID_MAX + 1];
        /* behind a 5xx of handler_fail_internal(), or what a 2xx did not do of what it does
         * best effort (a status check's tally), for the operator's log only (the peer gets a
         * generic reason): what failed (static text) and its negative errno */
        const char *failed;
        int error;
        store_reason_t reason; /* the store's for error (store_error_reason()), or text "" */
        /* a refusal (or a deregister that changed nothing) not audited (refusal_audit): how
         * many of its kind this window, this one included; 0: audited (or no refusal) */
        unsigned audit_folded;
        /* a 201 enrolment: when the node's allowance it spent was taken (enrol_limit), 0 when
         * none was; for mef_response_unstored() */
        uint64_t enrol_taken;
} mef_response_t;

/* Always answers: request, authorisation and store errors become error responses (500/5000
 * with a generic reason for the store). Returns 0 with *ret filled (mef_response_done() it),
 * or -ENOMEM when not even an error response could be built. Every outcome is audited, the
 * repeats of a refusal once a window (refusal_audit). */
int mef_handle(const mef_config_t *cfg, mef_store_t *store, const mef_peer_t *peer,
               const http_msg_t *req, mef_response_t *ret);
/* A response for an error found before a request could be handled (400 on bad framing,
 * 503 when overloaded). */
int mef_response_error(int status, int rsc, const char *reason, mef_response_t *ret);
void mef_response_done(mef_response_t *r);
/* What r answers was not durably stored after all (the store's batch did not commit what the
 * handler wrote): gives back the enrolment allowance it spent (enrol_limit, as in mef_peer_t),
 * so that our failure does not count against the node. Once: r->enrol_taken is cleared. */
void mef_response_unstored(mef_response_t *r, ratelimit_t *enrol_limit);
/* An X-M2M-RI the MEF can echo: 1..MEF_RI_MAX printable ASCII characters, spaces included (no
 * control character or other byte that could split or garble a header line). mef_handle()
 * refuses any other before it acts, so every request it executes has its RI echoed. */
#define MEF_RI_MAX 1024u
bool mef_request_id_is_echoable(const char *ri);
/* Serialise with the protocol's headers (X-M2M-RSC, X-M2M-RI echoed when given and echoable,
 * Content-Type, Retry-After, Connection: close). */
int mef_response_format(const mef_response_t *r, const char *request_id, uint8_t **ret, size_t *ret_len);

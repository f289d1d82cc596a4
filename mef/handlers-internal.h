/* SPDX-License-Identifier: MIT */
#pragma once
/* What mef/handlers*.c share: one request in flight, its route, and the answers and audit rows
 * every exchange gives (mef/handlers-reply.c). Not for use outside mef/handlers*.c. */
#include <stdarg.h>
#include <time.h>

#include "mef/handlers.h"
#include "proto/msg.h"
#include "util/util.h"

typedef enum route_kind {
        ROUTE_ENROLMENTS, /* <base>/enrolments */
        ROUTE_ENROLMENT,  /* <base>/enrolments/<KeID> */
        ROUTE_FETCH,      /* <base>/fetchCredentials/<KeID>/<suid> */
} route_kind_t;

typedef struct route {
        route_kind_t kind;
        char ke_id[MSG_KEID_MAX + 1];
        char suid[MSG_KEID_MAX + 1]; /* validated by the handler (400 names it) */
} route_t;

/* One request in flight: what every helper needs to answer and audit. */
typedef struct exchange {
        const mef_config_t *cfg;
        mef_store_t *store;
        const mef_peer_t *peer;
        const http_msg_t *req;
        const char *actor;  /* the authenticated identity */
        const char *action; /* "enrol", "status", "deregister", "fetch", "request" */
        time_t now;
} exchange_t;

/* ---- answers and the audit trail (mef/handlers-reply.c) ---- */

/* A success response owning a formatted JSON body. */
void handler_respond_ok(mef_response_t *ret, int status, int rsc, char *body);
_printf_(4, 5) int handler_audit(const exchange_t *ex, const char *subject, int status, const char *fmt, ...);
/* An error answer, audited (best effort: the answer is an error already) unless a refusal of
 * the same identity, exchange and status was audited in this window (mef_peer_t.refusal_audit;
 * then ret->audit_folded says how many were not). */
_printf_(6, 7) int handler_fail(const exchange_t *ex, const char *subject, mef_response_t *ret, int status, int rsc,
                                const char *fmt, ...);
/* An answer that changes nothing (a deregister of a revoked enrolment), audited as a refusal
 * is: once a window per identity, exchange and status. How many of the window's were not
 * audited, this one included (for ret->audit_folded); 0: audited. */
_printf_(4, 5) unsigned handler_audit_unchanged(const exchange_t *ex, const char *subject, int status,
                                                const char *fmt, ...);
/* Internal errors: the audit trail and the server's log get the cause (ret->failed = what, a
 * static text, and ret->error), the peer a generic reason; a store that is locked, unreachable
 * or full: 503 with Retry-After, no audit row. */
int handler_fail_internal(const exchange_t *ex, const char *subject, mef_response_t *ret, int error, const char *what);
/* 404 "unknown KeID", with why (a state, "expired") when not NULL. */
int handler_unknown_keid(const exchange_t *ex, const char *ke_id, mef_response_t *ret, const char *why);
/* 403 "target not named for that KeID", whatever the enrolment's state; the audit row (folded
 * as handler_fail's) gets why. */
int handler_unnamed_target(const exchange_t *ex, const char *ke_id, mef_response_t *ret, const char *why);
/* 403 "peer is not an enrolee node": the peer is no node (or no longer one). */
int handler_not_enrolee(const exchange_t *ex, const char *subject, mef_response_t *ret);
/* NULL when e may be used at now, else why not (its state, or "expired"). */
const char *handler_enrolment_unusable(const store_enrolment_t *e, time_t now);

/* ---- peers (mef/handlers.c) ---- */

/* The authenticated peer as an enrolee node: -ENOENT when it is none. */
int handler_peer_node(const exchange_t *ex, store_node_t *ret);
/* An enrolment of this node, or -ENOENT: another node's KeID is reported as unknown so a
 * node cannot probe for the KeIDs of others. */
int handler_node_enrolment(const exchange_t *ex, const store_node_t *node, const char *ke_id, store_enrolment_t *ret);

/* ---- the exchanges: handlers-enrol.c (3.1), handlers-status.c (3.2, 3.3), handlers-fetch.c (3.4) ---- */

int handler_enrol(const exchange_t *ex, mef_response_t *ret);
/* 3.2 status, or with deregister 3.3 */
int handler_enrolment(const exchange_t *ex, const route_t *rt, bool deregister, mef_response_t *ret);
int handler_fetch(const exchange_t *ex, const route_t *rt, mef_response_t *ret);

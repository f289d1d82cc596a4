/* SPDX-License-Identifier: MIT */
/* 3.2 status and 3.3 deregister: a node asking about, or giving up, one of its enrolments. */
#include "mef/handlers-internal.h"

/* 3.2 and 3.3: the peer must be a node, the originator the KeID (protocol section 3), and the
 * KeID one of the node's enrolments. 1 when found; 0 when *ret already holds the error answer. */
static int peer_enrolment(const exchange_t *ex, const route_t *rt, store_node_t *node, store_enrolment_t *e,
                          mef_response_t *ret) {
        int r = handler_peer_node(ex, node);
        if (r == -ENOENT)
                return handler_not_enrolee(ex, rt->ke_id, ret);
        if (r < 0)
                return handler_fail_internal(ex, rt->ke_id, ret, r, "node lookup");
        /* Refused as enrol and fetch refuse an originator that is not the peer's (403/4103).
         * Compared with the path before the KeID is looked up: the answer tells nothing of it. */
        if (!streq(http_msg_header(ex->req, "X-M2M-Origin"), rt->ke_id))
                return handler_fail(ex, rt->ke_id, ret, 403, 4103, "X-M2M-Origin: not the KeID in the path");
        r = handler_node_enrolment(ex, node, rt->ke_id, e);
        if (r == -ENOENT)
                return handler_unknown_keid(ex, rt->ke_id, ret, NULL);
        if (r < 0)
                return handler_fail_internal(ex, rt->ke_id, ret, r, "enrolment lookup");
        return 1;
}

/* ---- 3.2 status ---- */

static int status_answer(const exchange_t *ex, const route_t *rt, const store_node_t *node,
                         const store_enrolment_t *e, mef_response_t *ret) {
        msg_state_t state;
        const char *why;
        if (node->state == NODE_REVOKED || e->state == ENROLMENT_REVOKED)
                state = MSG_STATE_REVOKED;
        else if ((why = handler_enrolment_unusable(e, ex->now)))
                return handler_unknown_keid(ex, rt->ke_id, ret, why);
        else if (node->state == NODE_REENROL)
                state = MSG_STATE_REENROL;
        else
                state = MSG_STATE_ACTIVE;

        msg_status_t s = {
                .state = state,
                .exp_t = (time_t) e->exp,
                .poll = node->poll > 0 ? node->poll : ex->cfg->default_poll,
        };
        snprintf(s.ke_id, sizeof s.ke_id, "%s", e->ke_id);
        time_format_basic(s.exp_t, s.exp);
        char *out = NULL;
        int r = msg_status_format(&s, &out);
        if (r < 0)
                return handler_fail_internal(ex, rt->ke_id, ret, r, "status formatting");
        /* Tallied on the node (last seen, count) rather than an audit row each: a fleet polls
         * daily, and the trail is for changes. Best effort: the answer stands either way, and
         * the log line says what was not recorded (a full disk, a lock). */
        r = store_node_seen(ex->store, node->node_id, (int64_t) ex->now);
        handler_respond_ok(ret, 200, 2000, out);
        if (r < 0) {
                ret->failed = "recording the status check";
                ret->error = r;
        }
        snprintf(ret->node_id, sizeof ret->node_id, "%s", node->node_id);
        return 0;
}

/* ---- 3.3 deregister ---- */

static int deregister_answer(const exchange_t *ex, const route_t *rt, const store_node_t *node,
                             const store_enrolment_t *e, mef_response_t *ret) {
        if (e->state == ENROLMENT_RETIRED || e->state == ENROLMENT_DEREGISTERED)
                return handler_unknown_keid(ex, rt->ke_id, ret, enrolment_state_to_string(e->state));

        /* A revoked enrolment stays revoked: the operator's record is not the device's to erase.
         * Nothing changes, so its repeats are audited as a refusal's are: a node looping on it
         * adds a row a window, not one (and a write transaction) per request. */
        unsigned folded = 0;
        if (e->state == ENROLMENT_ACTIVE) {
                int r = store_begin(ex->store);
                if (r >= 0)
                        r = store_enrolment_deregister(ex->store, rt->ke_id);
                if (r >= 0)
                        r = handler_audit(ex, rt->ke_id, 200, "node=%s deregistered", node->node_id);
                if (r >= 0)
                        r = store_commit(ex->store);
                if (r < 0) {
                        store_rollback(ex->store);
                        /* -ENOENT: revoked or retired since it was read; answered as it is now */
                        store_enrolment_t now;
                        if (r == -ENOENT && store_enrolment_get(ex->store, rt->ke_id, &now, NULL, NULL) == 0 &&
                            now.state != ENROLMENT_ACTIVE)
                                return deregister_answer(ex, rt, node, &now, ret);
                        return handler_fail_internal(ex, rt->ke_id, ret, r, "deregistering");
                }
        } else
                folded = handler_audit_unchanged(ex, rt->ke_id, 200, "node=%s deregister of a revoked enrolment: "
                                                 "kept revoked", node->node_id);
        handler_respond_ok(ret, 200, 2002, NULL);
        ret->audit_folded = folded;
        snprintf(ret->node_id, sizeof ret->node_id, "%s", node->node_id);
        return 0;
}

int handler_enrolment(const exchange_t *ex, const route_t *rt, bool deregister, mef_response_t *ret) {
        store_node_t node;
        store_enrolment_t e = {};
        int r = peer_enrolment(ex, rt, &node, &e, ret);
        if (r <= 0)
                return r;
        return deregister ? deregister_answer(ex, rt, &node, &e, ret) : status_answer(ex, rt, &node, &e, ret);
}

/* SPDX-License-Identifier: MIT */
/* 3.1 enrol: a node's new enrolment and the profile it gets. */
#include "mef/handlers-internal.h"

/* The enrolment a node's allowance counted until it is stored: given back when the handler
 * ends without it (the store failed, a KeID could not be derived...), so that a failure of ours
 * does not turn into the node's 429s for the rest of the window. */
typedef struct enrol_slot {
        ratelimit_t *limit; /* NULL: nothing to give back (none taken, or the enrolment stored) */
        const char *node_id;
        uint64_t taken;
} enrol_slot_t;

static void enrol_slot_refund(enrol_slot_t *slot) {
        if (slot->limit)
                ratelimit_refund(slot->limit, slot->node_id, slot->taken);
}

void mef_response_unstored(mef_response_t *r, ratelimit_t *enrol_limit) {
        if (!r || !r->enrol_taken)
                return;
        ratelimit_refund(enrol_limit, r->node_id, r->enrol_taken);
        r->enrol_taken = 0;
}

/* [limits] enrolments_per_node: 1 with *ret the 429 + Retry-After, 0 when the node may enrol
 * (*slot the allowance it took). Only the window's first refusal is audited: a node enrolling
 * in a loop adds one audit row per window, not one per attempt, and its log lines are bounded
 * as other repeats are. */
static int enrol_limit_check(const exchange_t *ex, const store_node_t *node, enrol_slot_t *slot, mef_response_t *ret) {
        if (!ex->peer->enrol_limit)
                return 0;
        unsigned refused = 0;
        uint64_t now = now_usec();
        int r = ratelimit_take_counted(ex->peer->enrol_limit, node->node_id, now, &refused);
        if (r < 0) {
                r = handler_fail_internal(ex, node->node_id, ret, r, "enrolment rate limit");
                return r < 0 ? r : 1;
        }
        if (r == 0) {
                *slot = (enrol_slot_t) { .limit = ex->peer->enrol_limit, .node_id = node->node_id, .taken = now };
                return 0;
        }
        if (refused == 1)
                (void) handler_audit(ex, node->node_id, 429,
                                     "enrolment rate limit: more than %u in %u s, refused for %d s (not recorded again "
                                     "in this window)",
                                     ex->cfg->enrolments_per_node, ex->cfg->enrolment_window_s, r);
        unsigned retry = (unsigned) r;
        r = mef_response_error(429, 4000, "too many enrolments of this node: retry later", ret);
        if (r < 0)
                return r;
        ret->retry_after = retry;
        ret->audit_folded = refused - 1;
        return 1;
}

static int fail_revoked(const exchange_t *ex, const char *node_id, mef_response_t *ret) {
        return handler_fail(ex, node_id, ret, 403, 4103, MSG_HINT_NODE_REVOKED ": enrolment blocked: node revoked");
}

int handler_enrol(const exchange_t *ex, mef_response_t *ret) {
        const char *origin = http_msg_header(ex->req, "X-M2M-Origin");
        store_node_t node;
        _cleanup_(enrol_slot_refund) enrol_slot_t slot = {}; /* after node: refunded while node lives */
        int r;

        r = handler_peer_node(ex, &node);
        if (r == -ENOENT)
                return handler_not_enrolee(ex, origin, ret);
        if (r < 0)
                return handler_fail_internal(ex, origin, ret, r, "node lookup");

        msg_enrol_req_t req;
        char err[MSG_ERR_MAX] = "";
        const void *body = ex->req->body ? (const void *) ex->req->body : (const void *) "";
        r = msg_enrol_req_parse(body, ex->req->body_len, &req, err);
        if (r == -ENOMEM)
                return handler_fail_internal(ex, node.node_id, ret, r, "enrolReq parse");
        if (r < 0)
                return handler_fail(ex, node.node_id, ret, 400, 4000, "%s",
                                    err[0]           ? err
                                    : r == -EMSGSIZE ? "body: too large"
                                                     : "msce:enrolReq: malformed");

        /* The m2m:dbg reasons of a 403 start with a stable hint the agent matches (docs/protocol.md,
         * "Why the MEF refused"). */
        /* Whether the node ID sent exists at all is not said: a holder of one Kpm must not learn
         * which other node IDs are registered. */
        if (!streq(origin, node.node_id))
                return handler_fail(ex, node.node_id, ret, 403, 4103,
                                    MSG_HINT_NODE_UNREGISTERED
                                    ": X-M2M-Origin: node not registered at this MEF with this credential");
        if (!streq(req.node_id, node.node_id))
                return handler_fail(ex, node.node_id, ret, 403, 4103,
                                    MSG_HINT_NODE_UNREGISTERED
                                    ": msce:enrolReq.nodeID: node not registered at this MEF with this credential");
        if (node.state == NODE_REVOKED)
                return fail_revoked(ex, node.node_id, ret);
        r = enrol_limit_check(ex, &node, &slot, ret);
        if (r != 0)
                return r < 0 ? r : 0;
        if (!ex->peer->ekm)
                return handler_fail_internal(ex, node.node_id, ret, -EINVAL, "no exported keying material");

        _cleanup_erase_(32) uint8_t ke[KDF_KE_LEN];
        _cleanup_erase_(32) uint8_t ltk[KDF_KE_LEN];
        store_enrolment_t e = {
                .state = ENROLMENT_ACTIVE,
                .created = ex->now,
                .exp = ex->now + (int64_t) (node.lifetime > 0 ? node.lifetime : ex->cfg->default_lifetime),
                .ltk_transported = node.ltk_transported,
        };
        r = kdf_split_ekm(ex->peer->ekm, ex->cfg->fqdn, ke, e.ke_id, sizeof e.ke_id);
        if (r < 0)
                return handler_fail_internal(ex, node.node_id, ret, r, "KeID derivation (check [server] fqdn)");
        snprintf(e.node_id, sizeof e.node_id, "%s", node.node_id);
        const uint8_t *key = ke;
        if (node.ltk_transported) {
                r = random_bytes(ltk, sizeof ltk);
                if (r < 0)
                        return handler_fail_internal(ex, node.node_id, ret, r, "ltk generation");
                key = ltk;
        }

        /* The answer is built before anything is stored: nothing changes when it cannot be. */
        _cleanup_(msg_profile_wipe) msg_profile_t p = {};
        snprintf(p.cse_id, sizeof p.cse_id, "%s", node.cse_id);
        snprintf(p.cse_base, sizeof p.cse_base, "%s", node.cse_base);
        snprintf(p.ke_id, sizeof p.ke_id, "%s", e.ke_id);
        p.exp_t = (time_t) e.exp;
        time_format_basic(p.exp_t, p.exp);
        /* kpsaID = "<RelativeKeID>.<n>@<fqdn>", n = 1..N in the node's target order. */
        const char *at = e.ke_id + 2 * KDF_REL_KEID_LEN;
        p.n_targets = MIN(node.n_targets, (size_t) MSG_TARGETS_MAX);
        for (size_t i = 0; i < p.n_targets; i++) {
                snprintf(p.targets[i].id, sizeof p.targets[i].id, "%s", node.targets[i]);
                int k = snprintf(p.targets[i].kpsa_id, sizeof p.targets[i].kpsa_id, "%.*s.%zu%s",
                                 (int) (2 * KDF_REL_KEID_LEN), e.ke_id, i + 1, at);
                if (k < 0 || (size_t) k >= sizeof p.targets[i].kpsa_id)
                        return handler_fail_internal(ex, e.ke_id, ret, -ENAMETOOLONG, "kpsaID");
        }
        p.poll = node.poll > 0 ? node.poll : ex->cfg->default_poll;
        if (node.ltk_transported) {
                p.has_ltk = true;
                memcpy(p.ltk, ltk, sizeof ltk);
                p.ltk_len = sizeof ltk;
        }
        char *out = NULL;
        r = msg_profile_format(&p, &out);
        if (r < 0)
                /* -EINVAL: a node added before the identifier rules (proto/ids.h) holds a CSE-ID,
                 * cseBase or target ID the agent would refuse */
                return handler_fail_internal(ex, e.ke_id, ret, r,
                                             r == -EINVAL ? "profile formatting (an identifier of the node breaks the "
                                                            "rules of docs/protocol.md: msce-mef node show)"
                                                          : "profile formatting");
        mef_response_t resp;
        handler_respond_ok(&resp, 201, 2001, out);

        /* prev only informs the audit trail: every ACTIVE enrolment of the node is retired
         * anyway, and a prev naming another node's enrolment must not touch it. */
        char prev_note[MSG_KEID_MAX + 48] = "";
        if (req.prev[0]) {
                store_enrolment_t pe;
                int q = handler_node_enrolment(ex, &node, req.prev, &pe);
                snprintf(prev_note, sizeof prev_note, " prev=%s%s", req.prev,
                         q == 0         ? ""
                         : q == -ENOENT ? " (unknown or not this node's: ignored)"
                                        : " (lookup failed)");
        }

        /* -ESTALE: sealed under a key that a rekey (by another process) has replaced, nothing
         * stored; the rollback read the new key */
        for (unsigned attempt = 0; attempt < 2; attempt++) {
                r = store_begin(ex->store);
                if (r >= 0)
                        r = store_key_guard(ex->store);
                if (r >= 0)
                        r = store_enrolment_set_state_for_node(ex->store, node.node_id, ENROLMENT_RETIRED);
                if (r >= 0)
                        r = store_enrolment_add(ex->store, &e, key, node.ltk_transported ? sizeof ltk : sizeof ke);
                if (r >= 0 && node.state == NODE_REENROL)
                        r = store_node_set_state(ex->store, node.node_id, NODE_ACTIVE);
                if (r >= 0)
                        r = handler_audit(ex, e.ke_id, 201, "node=%s exp=%s targets=%zu%s%s", node.node_id, p.exp,
                                          p.n_targets, node.ltk_transported ? " ltk" : "", prev_note);
                if (r >= 0)
                        r = store_commit(ex->store);
                if (r != -ESTALE)
                        break;
                store_rollback(ex->store);
        }
        if (r < 0) {
                store_rollback(ex->store);
                mef_response_done(&resp);
                /* store_enrolment_add() refused a node revoked (-EINVAL) or removed (-ENOENT) since
                 * it was read (above, or in the handshake) */
                store_node_t now;
                int q = r == -EINVAL || r == -ENOENT ? store_node_get(ex->store, node.node_id, &now) : -EIO;
                if (q == 0 && now.state == NODE_REVOKED)
                        return fail_revoked(ex, node.node_id, ret);
                if (q == -ENOENT) /* as a request after the removal is answered */
                        return handler_not_enrolee(ex, node.node_id, ret);
                return handler_fail_internal(ex, e.ke_id, ret, r, "storing the enrolment");
        }
        /* stored: the allowance is spent, unless a batch this ran in does not commit */
        resp.enrol_taken = slot.limit ? slot.taken : 0;
        slot.limit = NULL;
        snprintf(resp.node_id, sizeof resp.node_id, "%s", node.node_id);
        snprintf(resp.ke_id, sizeof resp.ke_id, "%s", e.ke_id);
        *ret = resp;
        return 0;
}


/* SPDX-License-Identifier: MIT */
/* 3.4 fetchCredentials: a target fetching the Kpsa of a node's enrolment. */
#include "mef/handlers-internal.h"

#define SUID_MAX 32u

/* The authenticated peer as an enrolment target: -ENOENT when it is none. */
static int peer_target(const exchange_t *ex, store_target_t *ret) {
        const mef_peer_t *p = ex->peer;
        if (!p->psk_identity || !*p->psk_identity)
                return p->cert_fp && *p->cert_fp ? store_target_by_cert(ex->store, p->cert_fp, ret) : -ENOENT;
        if (p->target && streq(p->target->psk_id, p->psk_identity)) {
                *ret = *p->target; /* the handshake's read */
                return 0;
        }
        return store_target_by_psk_id(ex->store, p->psk_identity, ret, NULL, NULL);
}

static bool suid_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > SUID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

int handler_fetch(const exchange_t *ex, const route_t *rt, mef_response_t *ret) {
        const char *origin = http_msg_header(ex->req, "X-M2M-Origin");
        store_target_t target;
        int r;

        r = peer_target(ex, &target);
        if (r == -ENOENT)
                return handler_fail(ex, rt->ke_id, ret, 403, 4103, "peer is not an enrolment target");
        if (r < 0)
                return handler_fail_internal(ex, rt->ke_id, ret, r, "target lookup");
        if (!streq(origin, target.id))
                return handler_fail(ex, rt->ke_id, ret, 403, 4103, "X-M2M-Origin: not the authenticated target");
        /* The suid (TS-0003 security usage identifier) says what the target will use the key
         * for. This MEF derives one Kpsa per (enrolment, target) whatever the usage, so the
         * suid is checked and recorded in the audit trail but does not change the answer. */
        if (!suid_is_valid(rt->suid))
                return handler_fail(ex, rt->ke_id, ret, 400, 4000, "suid: 1..%u characters of [A-Za-z0-9_-] expected",
                                    SUID_MAX);

        store_enrolment_t e = {};
        store_node_t node;
        bool has_node;
        _cleanup_erase_(64) uint8_t key[MSG_KEY_MAX];
        size_t key_len = 0;
        r = store_enrolment_get_with_node(ex->store, rt->ke_id, &e, key, &key_len, &node, &has_node);
        if (r == -ENOENT)
                return handler_unknown_keid(ex, rt->ke_id, ret, NULL);
        if (r < 0)
                return handler_fail_internal(ex, rt->ke_id, ret, r, "enrolment lookup");
        /* Whether the target is named comes before anything of the enrolment's state: a target
         * not (or no longer) named for the node must not follow its enrolments. Without the node
         * no target can be told to be named: the same answer to all. */
        if (!has_node)
                return handler_unnamed_target(ex, rt->ke_id, ret, "node removed");
        bool named = false;
        for (size_t i = 0; i < node.n_targets && i < MSG_TARGETS_MAX; i++)
                if (streq(node.targets[i], target.id))
                        named = true;
        if (!named)
                return handler_unnamed_target(ex, rt->ke_id, ret, "target not named for the node");
        const char *why = handler_enrolment_unusable(&e, ex->now);
        if (why)
                return handler_unknown_keid(ex, rt->ke_id, ret, why);
        /* A revoked node's keys are no longer valid, whatever state its enrolments were left in. */
        if (node.state == NODE_REVOKED)
                return handler_unknown_keid(ex, rt->ke_id, ret, "node revoked");

        _cleanup_(msg_credential_wipe) msg_credential_t c = {
                .status = true,
                .key_len = KDF_KEY_LEN,
                .lifetime_t = (time_t) e.exp,
        };
        r = kdf_kpsa(key, key_len, target.id, c.key);
        if (r < 0)
                return handler_fail_internal(ex, rt->ke_id, ret, r, "Kpsa derivation");
        snprintf(c.enrolee_id, sizeof c.enrolee_id, "%s", node.cse_id);
        time_format_basic(c.lifetime_t, c.lifetime);
        char *out = NULL;
        r = msg_credential_format(&c, &out);
        if (r < 0)
                return handler_fail_internal(ex, rt->ke_id, ret, r, "credential formatting");
        mef_response_t resp;
        handler_respond_ok(&resp, 200, 2000, out);

        /* A key leaves the MEF only with a record of it. */
        r = handler_audit(ex, rt->ke_id, 200, "target=%s suid=%s node=%s", target.id, rt->suid, node.node_id);
        if (r < 0) {
                mef_response_done(&resp);
                return handler_fail_internal(ex, rt->ke_id, ret, r, "audit");
        }
        snprintf(resp.node_id, sizeof resp.node_id, "%s", node.node_id);
        *ret = resp;
        return 0;
}

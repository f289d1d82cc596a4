/* SPDX-License-Identifier: MIT */
/* A node's state changes (reenrol, revoke, activate) and its removal, each in one transaction
 * with its audit row; a certificate fingerprint as operators write it. */
#include <ctype.h>
#include <inttypes.h>

#include "mef/ops.h"
#include "proto/tls.h"
#include "util/string-table.h"
#include "util/util.h"

static const char *const change_table[_OPS_NODE_CHANGE_MAX] = {
        [OPS_NODE_REENROL] = "reenrol",
        [OPS_NODE_REVOKE] = "revoke",
        [OPS_NODE_ACTIVATE] = "activate",
        [OPS_NODE_REMOVE] = "remove",
};
DEFINE_STRING_TABLE(ops_node_change, ops_node_change_t, change_table);

int ops_node_change(mef_store_t *s, const char *actor, const char *node_id, ops_node_change_t change,
                    char *detail, size_t detail_size, store_node_t *ret) {
        static const node_state_t to_state[] = {
                [OPS_NODE_REENROL] = NODE_REENROL,
                [OPS_NODE_REVOKE] = NODE_REVOKED,
                [OPS_NODE_ACTIVATE] = NODE_ACTIVE,
                [OPS_NODE_REMOVE] = NODE_ACTIVE,
        };
        if (change < 0 || change >= _OPS_NODE_CHANGE_MAX)
                return -EINVAL;
        store_node_t n;
        int r = store_node_get(s, node_id, &n);
        if (r < 0)
                return r;
        char action[32];
        snprintf(action, sizeof action, "node-%s", ops_node_change_to_string(change));
        node_state_t to = to_state[change];
        detail[0] = 0;
        if (change != OPS_NODE_REMOVE)
                snprintf(detail, detail_size, "state %s -> %s", node_state_to_string(n.state), node_state_to_string(to));

        r = store_begin(s);
        if (r < 0)
                return r;
        if (change == OPS_NODE_REMOVE)
                r = store_node_remove(s, node_id);
        else
                r = store_node_set_state(s, node_id, to);
        if (r == 0 && change == OPS_NODE_REVOKE)
                /* its keys stop working now, not at their expiry */
                r = store_enrolment_set_state_for_node(s, node_id, ENROLMENT_REVOKED);
        if (r == 0)
                r = store_audit(s, actor, action, node_id, detail[0] ? detail : NULL);
        if (r == 0)
                r = store_commit(s);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        if (ret) {
                n.state = to;
                *ret = n;
        }
        return 0;
}

int ops_long_kpm_ids_said(mef_store_t *s, char *buf, size_t size) {
        char ids[OPS_LONG_KPM_IDS_NAMED][MSG_ID_MAX + 1];
        size_t n = 0;
        uint64_t count = 0;
        buf[0] = 0;
        int r = store_node_long_kpm_ids(s, ids, ELEMENTSOF(ids), &n, &count);
        if (r < 0)
                return r;
        if (count == 0)
                return 0;
        int k = snprintf(buf, size,
                         "%" PRIu64 " node%s with a KpmID longer than %u characters (added before that limit), which "
                         "no TLS handshake can offer, can never enrol:",
                         count, count == 1 ? "" : "s", TLS_PSK_ID_MAX);
        for (size_t i = 0; i < n && k >= 0 && (size_t) k < size; i++)
                k += snprintf(buf + k, size - (size_t) k, "%s %s", i ? "," : "", ids[i]);
        if (count > n && k >= 0 && (size_t) k < size)
                k += snprintf(buf + k, size - (size_t) k, " and %" PRIu64 " more", count - n);
        if (k >= 0 && (size_t) k < size)
                (void) snprintf(buf + k, size - (size_t) k, "; give %s a shorter one (" OPS_LONG_KPM_ID_FIX ")",
                                count == 1 ? "it" : "each");
        return 1;
}

int ops_node_enrolments(mef_store_t *s, const char *node_id, store_enrolment_t **ret, size_t *ret_n,
                        char next[static STORE_ENROLMENT_CURSOR_MAX]) {
        /* as a page of the enrolments' list; one row more tells whether there are more */
        store_page_t p = { .state = -1, .limit = OPS_NODE_ENROLMENTS_MAX + 1 };
        _cleanup_free_ store_enrolment_t *list = NULL;
        size_t n = 0;
        int r = store_enrolment_page(s, node_id, &p, &list, &n);
        if (r < 0)
                return r;
        next[0] = 0;
        if (n > OPS_NODE_ENROLMENTS_MAX) {
                n = OPS_NODE_ENROLMENTS_MAX;
                store_enrolment_cursor(&list[n - 1], next);
        }
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

int ops_cert_fp_normalise(const char *in, char out[STORE_FP_LEN + 1]) {
        size_t n = 0;
        for (const char *p = in; *p; p++) {
                if (*p == ':')
                        continue;
                if (!isxdigit((unsigned char) *p) || n >= STORE_FP_LEN)
                        return -EINVAL;
                out[n++] = (char) tolower((unsigned char) *p);
        }
        if (n != STORE_FP_LEN)
                return -EINVAL;
        out[n] = 0;
        return 0;
}

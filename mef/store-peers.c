/* SPDX-License-Identifier: MIT */
/* What an exchange reads of its peer, each in one statement (one round trip to PostgreSQL): the
 * node or target a PSK identity names, and an enrolment with its node. */
#include "mef/store-internal.h"

int store_peer_by_psk_id(mef_store_t *s, const char *identity, store_peer_t *ret, uint8_t key[MSG_KEY_MAX],
                         size_t *ret_key_len) {
        if (!s || !identity || !ret || !key || !ret_key_len)
                return -EINVAL;
        /* No KpmID or target identity is stored that is not one (store_node_add(),
         * store_target_add()): the ClientHello's bytes are the client's, and a database would
         * refuse some of them (PostgreSQL: not UTF-8), a fault the operator would be told of. */
        if (!id_is_valid(identity, MSG_ID_MAX))
                return -ENOENT;
        /* each part written only when found: at most one of them */
        row_part_t parts[] = {
                { .type = &store_node_row, .first = 0, .out = &ret->node, .key = key, .key_len = ret_key_len },
                { .type = &store_target_row, .first = store_node_row.key_col + 1, .out = &ret->target, .key = key,
                  .key_len = ret_key_len },
        };
        /* Nodes first: a name used both as a KpmID and a target PSK identity is a node's. The
         * CASE makes the targets' index key NULL when a node matched, so that both engines skip
         * that search (a node's handshake costs one index search, as before). */
        int r = store_select_parts(s,
                                   "SELECT n.*, t.* FROM (SELECT 1) AS one"
                                   " LEFT JOIN (SELECT " NODE_SELECT ", kpm_enc FROM nodes WHERE kpm_id = ?1) AS n ON true"
                                   " LEFT JOIN (SELECT " TARGET_COLUMNS ", psk_enc FROM targets) AS t"
                                   " ON t.psk_id = CASE WHEN n.node_id IS NULL THEN ?1 END",
                                   identity, parts, ELEMENTSOF(parts));
        if (r < 0)
                return r;
        ret->kind = parts[0].found ? STORE_PEER_NODE : STORE_PEER_TARGET;
        return 0;
}

int store_enrolment_get_with_node(mef_store_t *s, const char *ke_id, store_enrolment_t *ret,
                                  uint8_t key[MSG_KEY_MAX], size_t *ret_key_len, store_node_t *ret_node,
                                  bool *ret_has_node) {
        if (!s || !ke_id || !ret || !key || !ret_key_len || !ret_node || !ret_has_node)
                return -EINVAL;
        row_part_t parts[] = {
                { .type = &store_enrolment_row, .first = 0, .out = ret, .key = key, .key_len = ret_key_len },
                { .type = &store_node_row, .first = store_enrolment_row.key_col + 1, .out = ret_node },
        };
        int r = store_select_parts(s,
                                   "SELECT e.*, n.* FROM (SELECT " ENROLMENT_COLUMNS ", key_enc FROM enrolments"
                                   " WHERE ke_id = ?1) AS e LEFT JOIN (SELECT " NODE_SELECT " FROM nodes) AS n"
                                   " ON n.node_id = e.node_id",
                                   ke_id, parts, ELEMENTSOF(parts));
        if (r >= 0)
                *ret_has_node = parts[1].found;
        return r;
}

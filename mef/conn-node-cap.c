/* SPDX-License-Identifier: MIT */
/* The per-node connection cap ([limits] connections_per_node) on an authenticated connection:
 * without it one node credential could hold every service and overflow slot with handshakes
 * followed by a request that never ends, and starve every other gateway. A node's count is its
 * connections in service or overflow, kept in the listener's table (mef/node-count.h) as they
 * enter and leave those pools: O(1) per handshake, where a scan of every connection would make
 * a power-on storm of n connections O(n^2). */
#include <syslog.h>

#include "mef/conn-internal.h"

int conn_node_admit(conn_t *c) {
        listener_t *l = c->listener;
        if (!l->node_counts || !l->ops->node_key(c, c->node_key, sizeof c->node_key))
                return 0;
        unsigned open;
        int r = node_count_add_below(l->node_counts, c->node_key, l->per_node, &open);
        if (r < 0)
                return r;
        if (r > 0) {
                c->node_counted = true;
                return 0;
        }
        /* Answered now, not after its request: that request may never end, and the answer
         * must not wait for a slot. The linger reads what the client sends meanwhile, so the
         * close does not reset the 503 away. */
        char peer[96];
        conn_note(c, LOGBOOK_OVERLOADED, LOG_WARNING, "%s holds %u connections (connections_per_node): answering 503",
                  l->ops->peer_name(c, peer, sizeof peer), open);
        return l->ops->answer_error(c, 503, "too many connections for this node: retry later", NULL);
}

void conn_node_release(conn_t *c) {
        if (!c->node_counted)
                return;
        (void) node_count_remove(c->listener->node_counts, c->node_key);
        c->node_counted = false;
}

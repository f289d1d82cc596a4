/* SPDX-License-Identifier: MIT */
/* The per-node connection cap ([limits] connections_per_node) on an authenticated connection:
 * without it one node credential could hold every service and overflow slot with handshakes
 * followed by a request that never ends, and starve every other gateway. A node's count is its
 * connections in service or overflow, read off the listener's list: nothing to keep or free,
 * and a scan per handshake, cheap next to the handshake. */
#include <syslog.h>

#include "mef/conn-internal.h"

static unsigned node_open(const listener_t *l, const char *key) {
        unsigned n = 0;
        for (const conn_t *o = l->conns; o; o = o->next)
                if ((o->pool == POOL_SERVING || o->pool == POOL_OVERFLOW) && streq(o->node_key, key))
                        n++;
        return n;
}

int conn_node_admit(conn_t *c) {
        listener_t *l = c->listener;
        if (l->per_node == 0 || !l->ops->node_key || !l->ops->node_key(c, c->node_key, sizeof c->node_key))
                return 0;
        unsigned open = node_open(l, c->node_key);
        if (open < l->per_node)
                return 0;
        /* Answered now, not after its request: that request may never end, and the answer
         * must not wait for a slot. The linger reads what the client sends meanwhile, so the
         * close does not reset the 503 away. */
        char peer[96];
        conn_note(c, LOGBOOK_OVERLOADED, LOG_WARNING, "%s holds %u connections (connections_per_node): answering 503",
                  l->ops->peer_name(c, peer, sizeof peer), open);
        return l->ops->answer_error(c, 503, "too many connections for this node: retry later", NULL);
}

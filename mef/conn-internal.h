/* SPDX-License-Identifier: MIT */
#pragma once
/* What mef/conn.c and mef/conn-store.c (a connection's work in the store threads) share. */

#include "mef/conn.h"

void conn_set_deadline_at(conn_t *c, uint64_t at);
/* The PSK identity looked up ahead is no longer needed (the handshake is over, or the
 * connection): wiped now, or by its thread once it is done with it. */
void conn_ahead_drop(conn_t *c);
/* A request still queued when the store may no longer keep it waiting (every store thread held
 * up by a slow disk or a database gone silent): 503 now. 1: answered; 0: a thread has it. */
int conn_store_overdue(conn_t *c);
/* After the handshake, an authenticated c against its node's connection cap
 * (mef/conn-node-cap.c): 0 under it or not capped (a target, no cap; when capped, c->node_key
 * set and c counted under it: it goes into service or overflow now), 1 over it and answered
 * 503 (it takes no slot, not counted), <0 close. */
int conn_node_admit(conn_t *c);
/* c leaves service or overflow: its node's count goes down, once. */
void conn_node_release(conn_t *c);

/* SPDX-License-Identifier: MIT */
#pragma once
/* What the operator CLI (mef/cli*.c) and the admin API (mef/admin*.c) both do beyond a store
 * call: the JSON of a node, target, enrolment or audit row (never a key), the states as shown,
 * the paging filters, a node's state changes and the bulk import. Each change is audited with
 * the actor given ("cli:<user>", "api:<CN>"). */

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "mef/mef-config.h"
#include "mef/store.h"

/* ---- JSON (ops-json.c) ---- */
/* "YYYY-MM-DDTHH:MM:SSZ", or "-" for no time. */
void ops_time_format(int64_t t, char out[32]);
json_t *ops_jstr(const char *s);
json_t *ops_jtime(int64_t t);
/* Each json_object_set_new reports failure through ok; v is consumed either way, and an o
 * that is NULL (out of memory) fails too. */
void ops_jset(json_t *o, const char *k, json_t *v, bool *ok);
/* A JSON array of the n items (each size bytes) of list; NULL when out of memory. */
/* o when ok, else NULL (o freed). */
json_t *ops_jdone(json_t *o, bool ok);
json_t *ops_json_array(const void *list, size_t n, size_t size, json_t *(*to_json)(const void *row));
json_t *ops_node_json(const void *row);        /* store_node_t */
json_t *ops_target_json(const void *row);      /* store_target_t */
json_t *ops_enrolment_json(const void *row);   /* store_enrolment_t */
json_t *ops_audit_json(const void *row);       /* store_audit_entry_t */
/* An enrolment's state as the operator needs it: "expired" for an active one past its exp. */
const char *ops_enrolment_state(const store_enrolment_t *e);

/* ---- paging filters (ops-page.c) ---- */
/* "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ" or a duration back from now ("7d"). */
int ops_since_parse(const char *v, int64_t *ret);
#define OPS_PAGE_LIMIT_MAX 1000000u
int ops_limit_parse(const char *v, size_t *ret);
/* An enrolment state filter as shown ("expired" too) into p; -EINVAL for another word. */
int ops_enrolment_state_filter(const char *v, store_page_t *p);

/* ---- nodes (ops-node.c) ---- */
/* "AB:CD:..." (openssl x509 -fingerprint) or plain hex, to lowercase hex; -EINVAL otherwise. */
int ops_cert_fp_normalise(const char *in, char out[STORE_FP_LEN + 1]);
typedef enum ops_node_change {
        OPS_NODE_REENROL,
        OPS_NODE_REVOKE,
        OPS_NODE_ACTIVATE,
        OPS_NODE_REMOVE,
        _OPS_NODE_CHANGE_MAX,
        _OPS_NODE_CHANGE_INVALID = -22,
} ops_node_change_t;
const char *ops_node_change_to_string(ops_node_change_t c);
ops_node_change_t ops_node_change_from_string(const char *s);
/* In one transaction with its audit row: -ENOENT for no such node, -EPERM for reenrol of a
 * revoked node (which stays revoked: new enrolments are refused until activate). detail gets
 * "state A -> B" (empty for remove); ret (may be NULL) the node as changed, read before the
 * change with its new state: what to answer without reading again after the commit, which
 * may fail when the change is done. */
int ops_node_change(mef_store_t *s, const char *actor, const char *node_id, ops_node_change_t change,
                    char *detail, size_t detail_size, store_node_t *ret);
/* The nodes whose KpmID no TLS handshake can offer (store_node_long_kpm_ids()), said for an
 * operator, naming the first OPS_LONG_KPM_IDS_NAMED: 1 and buf filled, 0 (buf "") when there
 * are none, or a negative errno. */
#define OPS_LONG_KPM_IDS_NAMED 5u
int ops_long_kpm_ids_said(mef_store_t *s, char *buf, size_t size);
/* How such a node gets a shorter KpmID, for the messages that name one. */
#define OPS_LONG_KPM_ID_FIX "node remove, node add --psk-id, and the agent's psk_identity"
/* The enrolments a node's view shows (node show, GET /admin/v1/nodes/{id}): the newest
 * OPS_NODE_ENROLMENTS_MAX, since a node enrolling in a loop keeps thousands for [audit] keep.
 * next gets the cursor to list the rest from (store_enrolment_page()'s after), "" when none. */
#define OPS_NODE_ENROLMENTS_MAX 1000u
int ops_node_enrolments(mef_store_t *s, const char *node_id, store_enrolment_t **ret, size_t *ret_n,
                        char next[static STORE_ENROLMENT_CURSOR_MAX]);

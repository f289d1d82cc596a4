/* SPDX-License-Identifier: MIT */
#pragma once
/* The admin API's requests as functions from a request to a response over a store (no
 * sockets: mef/admin.c runs them in a store thread), and who the operator is. */

#include <jansson.h>

#include "mef/mef-config.h"
#include "mef/store.h"
#include "proto/http.h"
#include "proto/tls.h"

typedef struct admin_response {
        int status;
        char *body;                /* heap; freed by admin_response_done */
        size_t body_len;
        const char *content_type;  /* static */
        const char *allow;         /* static "Allow" with 405 */
        unsigned retry_after;      /* 0: none */
        char *next;                /* export: where the next request goes on (X-Next-After); heap */
        int store_error;           /* the store's failure behind a 5xx, for the log only */
        store_reason_t store_reason; /* the store's for it (store_error_reason()), or text "" */
} admin_response_t;

/* Always answers (errors as {"error", "reason"}): 0 with *ret filled, -ENOMEM when not even
 * an error could be built. Every change is audited with actor ("api:<CN>"). */
int admin_api_handle(const mef_config_t *cfg, mef_store_t *store, const char *actor, const http_msg_t *req,
                     admin_response_t *ret);

/* mef/admin-response.c: *ret with j as its body (takes j; NULL: -ENOMEM), an error
 * {"error": the status's word, "reason"}, the whole answer as bytes (heap), freed. */
int admin_response_json(admin_response_t *ret, int status, json_t *j);
int admin_response_error(int status, const char *reason, admin_response_t *ret);
int admin_response_format(const admin_response_t *r, uint8_t **ret, size_t *ret_len);
void admin_response_done(admin_response_t *r);

/* 1..64 of [A-Za-z0-9._@-], not starting with '-' or '.'. */
bool admin_operator_is_valid(const char *cn);
/* The subject CN of the client's verified certificate (admin-peer.c): -ENOKEY when none. */
int admin_peer_cn(tls_conn_t *c, char *out, size_t size);

/* SPDX-License-Identifier: MIT */
#pragma once
/* The fixture of the handler tests (test-handlers-*.c, one executable): suite "handlers" with a
 * store of three nodes and two targets per test, and requests made as a peer would. */
/* The MEF's exchanges (mef/handlers*.c) against a real store in a temporary directory, with a
 * fixed exported keying material standing in for the TLS session. */
#include <criterion/criterion.h>
#include <time.h>

#include "keys/kdf.h"
#include "mef/handlers.h"
#include "mef/store.h"
#include "proto/http.h"
#include "proto/msg.h"
#include "util/time.h"
#include "util/util.h"
#include "handlers-config.h"
#include "store-tmp.h"

#define NODE1 "urn:dev:ops:node-1"
#define NODE2 "urn:dev:ops:node-2"
#define NODE3 "urn:dev:ops:node-3"
#define KPM1 "kpm-1"
#define KPM2 "kpm-2"
#define KPM3 "kpm-3"
#define TARGET_IN "/in-cse"
#define TARGET_MAF "/maf-1"
#define TARGET_OTHER "/other-cse"
#define TPSK_IN "in-cse-psk"
#define TPSK_OTHER "other-psk"

/* call() flags: headers left out or wrong */
enum {
        SKIP_HOST = 1 << 0,
        SKIP_ORIGIN = 1 << 1,
        SKIP_RI = 1 << 2,
        SKIP_RVI = 1 << 3,
        SKIP_CT = 1 << 4,
        BAD_RVI = 1 << 5,
};

extern mef_store_t *store;
extern mef_config_t cfg;
extern uint8_t ekm1[KDF_EKM_LEN], ekm2[KDF_EKM_LEN], ekm3[KDF_EKM_LEN];
void add_node(const char *node_id, const char *kpm_id, const char *cse_id, bool ltk, const char *const *targets);
void add_target(const char *id, const char *psk_id);
/* SQL run on the store's database behind its back, on a connection of its own. */
void store_sql(const char *sql);
/* What the server's PSK lookup found in the handshake (NULL: none), its enrolment rate limit. */
extern const store_node_t *call_node;
extern const store_target_t *call_target;
extern ratelimit_t *call_limit;
/* The fold of refusals in the audit trail, set up as the server's (NULL: every one audited). */
extern ratelimit_t *call_refusals;
extern const char *call_ri;
/* How far ahead of the monotonic clock now_usec() runs (replaced at link time:
 * tests/unit/meson.build): a test past the refusal audit window without waiting for it. */
extern usec_t clock_ahead;
/* One request through mef_handle() as the peer psk_id with exporter ekm. */
void call(const char *psk_id, const uint8_t *ekm, const char *method, const char *target, const char *origin,
          const char *body, unsigned flags, mef_response_t *resp);
void enrol_body(const char *node_id, const char *prev, char *out, size_t size);
/* Enrol and return the profile (asserting 201/2001). */
void enrol(const char *kpm_id, const char *node_id, const uint8_t *ekm, const char *prev, msg_profile_t *p);
/* The response is an error of status and rsc with an m2m:dbg (containing dbg_part, when set). */
void expect_error(const mef_response_t *r, int status, int rsc, const char *dbg_part);
/* call() (flags 0) and fetch() that must fail so */
void call_fails(const char *psk_id, const uint8_t *ekm, const char *method, const char *target, const char *origin,
                const char *body, int status, int rsc, const char *dbg_part);
void fetch_fails(const char *tpsk, const char *origin, const char *keid, const char *suid, int status, int rsc,
                 const char *dbg_part);
void keid_of(const uint8_t *ekm, char keid[MSG_KEID_MAX + 1], uint8_t ke[KDF_KE_LEN]);
/* A status check of keid as the peer kpm_id, its X-M2M-Origin the KeID (protocol section 3). */
void status_of(const char *kpm_id, const char *keid, mef_response_t *r);
void fetch(const char *tpsk, const char *origin, const char *keid, const char *suid, mef_response_t *r);
/* fetch() that must answer 200/2000 with a credential, into *c */
void fetch_credential(const char *tpsk, const char *origin, const char *keid, const char *suid, msg_credential_t *c);
/* The audit trail has an entry of action (and subject, and detail containing detail_part). */
bool audit_has(const char *action, const char *subject, const char *detail_part);

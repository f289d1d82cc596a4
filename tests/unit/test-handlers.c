/* SPDX-License-Identifier: MIT */
/* The MEF's exchanges (mef/handlers*.c) against a real store in a temporary directory, with a
 * fixed exported keying material standing in for the TLS session. */
#include <criterion/criterion.h>
#include <time.h>

#include "keys/kdf.h"
#include "mef/handlers.h"
#include "mef/store.h"
#include "proto/http.h"
#include "proto/msg.h"
#include "util/util.h"
#include "store-tmp.h"

#define FQDN "mef.example.net"
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

static char tmpdir[] = "/tmp/test-handlers-XXXXXX";
static mef_store_t *store;
static mef_config_t cfg;
static uint8_t ekm1[KDF_EKM_LEN], ekm2[KDF_EKM_LEN], ekm3[KDF_EKM_LEN];

static void add_node(const char *node_id, const char *kpm_id, const char *cse_id, bool ltk,
                     const char *const *targets) {
        store_node_t n = {
                .poll = 3600,
                .lifetime = 86400,
                .ltk_transported = ltk,
                .state = NODE_ACTIVE,
        };
        snprintf(n.node_id, sizeof n.node_id, "%s", node_id);
        snprintf(n.kpm_id, sizeof n.kpm_id, "%s", kpm_id);
        snprintf(n.cse_id, sizeof n.cse_id, "%s", cse_id);
        snprintf(n.cse_base, sizeof n.cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        for (; targets && targets[n.n_targets]; n.n_targets++)
                snprintf(n.targets[n.n_targets], sizeof n.targets[0], "%s", targets[n.n_targets]);
        uint8_t kpm[32];
        memset(kpm, 0x5a, sizeof kpm);
        cr_assert_eq(store_node_add(store, &n, kpm, sizeof kpm), 0);
}

static void add_target(const char *id, const char *psk_id) {
        store_target_t t = {};
        snprintf(t.id, sizeof t.id, "%s", id);
        snprintf(t.psk_id, sizeof t.psk_id, "%s", psk_id);
        uint8_t psk[32];
        memset(psk, 0x33, sizeof psk);
        cr_assert_eq(store_target_add(store, &t, psk, sizeof psk), 0);
}

static void setup(void) {
        store = store_tmp_open(tmpdir);

        cfg = (mef_config_t) {
                .fqdn = (char *) FQDN,
                .base = (char *) "/msce",
                .default_lifetime = 31536000,
                .default_poll = 86400,
                .retry_after = 5,
        };
        for (size_t i = 0; i < KDF_EKM_LEN; i++) {
                ekm1[i] = (uint8_t) i;
                ekm2[i] = (uint8_t) (0xa0 + i);
                ekm3[i] = (uint8_t) (0x40 + 3 * i);
        }
        add_node(NODE1, KPM1, "/mn-cse-1", false, (const char *const[]) { TARGET_IN, TARGET_MAF, NULL });
        add_node(NODE2, KPM2, "/mn-cse-2", false, (const char *const[]) { TARGET_IN, NULL });
        add_node(NODE3, KPM3, "/mn-cse-3", true, (const char *const[]) { TARGET_IN, NULL });
        add_target(TARGET_IN, TPSK_IN);
        add_target(TARGET_OTHER, TPSK_OTHER);
}

static void teardown(void) {
        store = store_close(store);
        store_tmp_remove(tmpdir);
}

TestSuite(handlers, .init = setup, .fini = teardown);

/* ---- requests ---- */

enum {
        SKIP_HOST = 1 << 0,
        SKIP_ORIGIN = 1 << 1,
        SKIP_RI = 1 << 2,
        SKIP_RVI = 1 << 3,
        SKIP_CT = 1 << 4,
        BAD_RVI = 1 << 5,
};

/* What the server's PSK lookup found in the handshake (mef_peer_t.node); NULL: none. */
static const store_node_t *call_node;
/* The server's enrolment rate limit (mef_peer_t.enrol_limit); NULL: none. */
static ratelimit_t *call_limit;

static void call(const char *psk_id, const uint8_t *ekm, const char *method, const char *target,
                 const char *origin, const char *body, unsigned flags, mef_response_t *resp) {
        http_msg_t m = { .kind = HTTP_REQUEST };
        snprintf(m.method, sizeof m.method, "%s", method);
        snprintf(m.target, sizeof m.target, "%s", target);
#define HDR(n, v)                                       \
        do {                                            \
                m.headers[m.n_headers].name = (n);      \
                m.headers[m.n_headers++].value = (v);   \
        } while (0)
        if (!(flags & SKIP_HOST))
                HDR("Host", FQDN);
        if (!(flags & SKIP_ORIGIN))
                HDR("X-M2M-Origin", origin);
        if (!(flags & SKIP_RI))
                HDR("X-M2M-RI", "ri-0001");
        if (!(flags & SKIP_RVI))
                HDR("x-m2m-rvi", flags & BAD_RVI ? "2a" : "3");
        HDR("Accept", "application/json");
        if (body) {
                if (!(flags & SKIP_CT))
                        HDR("Content-Type", "application/json; charset=utf-8");
                m.body = (uint8_t *) body;
                m.body_len = strlen(body);
        }
#undef HDR
        mef_peer_t peer = { .psk_identity = psk_id, .addr = "192.0.2.1:4711", .ekm = ekm, .node = call_node,
                            .enrol_limit = call_limit };
        cr_assert_eq(mef_handle(&cfg, store, &peer, &m, resp), 0);
}

static void enrol_body(const char *node_id, const char *prev, char *out, size_t size) {
        if (prev)
                snprintf(out, size, "{\"msce:enrolReq\": {\"nodeID\": \"%s\", \"prev\": \"%s\"}}", node_id, prev);
        else
                snprintf(out, size, "{\"msce:enrolReq\": {\"nodeID\": \"%s\", \"loc\": {\"lat\": 48.85, \"lon\": 2.29}}}",
                         node_id);
}

/* Enrol and return the profile (asserting 201/2001). */
static void enrol(const char *kpm_id, const char *node_id, const uint8_t *ekm, const char *prev, msg_profile_t *p) {
        char body[1024];
        char err[MSG_ERR_MAX] = "";
        mef_response_t r;
        enrol_body(node_id, prev, body, sizeof body);
        call(kpm_id, ekm, "POST", "/msce/enrolments", node_id, body, 0, &r);
        cr_assert_eq(r.status, 201, "status %d: %.*s", r.status, (int) r.body_len, r.body);
        cr_assert_eq(r.rsc, 2001);
        cr_assert_eq(msg_profile_parse(r.body, r.body_len, p, err), 0, "%s", err);
        mef_response_done(&r);
        cr_assert_null(r.body);
}

static void expect_error(const mef_response_t *r, int status, int rsc, const char *dbg_part) {
        char dbg[MSG_DBG_MAX];
        cr_assert_eq(r->status, status, "status %d, expected %d: %.*s", r->status, status, (int) r->body_len,
                     r->body ? r->body : "");
        cr_assert_eq(r->rsc, rsc, "rsc %d, expected %d", r->rsc, rsc);
        msg_dbg_parse(r->body, r->body_len, dbg);
        cr_assert_neq(dbg[0], 0, "error without m2m:dbg");
        if (dbg_part)
                cr_assert_not_null(strstr(dbg, dbg_part), "m2m:dbg \"%s\" lacks \"%s\"", dbg, dbg_part);
}

static void keid_of(const uint8_t *ekm, char keid[MSG_KEID_MAX + 1], uint8_t ke[KDF_KE_LEN]) {
        cr_assert_eq(kdf_split_ekm(ekm, FQDN, ke, keid, MSG_KEID_MAX + 1), 0);
}

static void status_of(const char *kpm_id, const char *node_id, const char *keid, mef_response_t *r) {
        char target[512];
        snprintf(target, sizeof target, "/msce/enrolments/%s", keid);
        call(kpm_id, NULL, "GET", target, node_id, NULL, 0, r);
}

static void fetch(const char *tpsk, const char *origin, const char *keid, const char *suid, mef_response_t *r) {
        char target[512];
        snprintf(target, sizeof target, "/msce/fetchCredentials/%s/%s", keid, suid);
        call(tpsk, NULL, "GET", target, origin, NULL, 0, r);
}

static bool audit_has(const char *action, const char *subject, const char *detail_part) {
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(store, 0, &list, &n), 0);
        bool found = false;
        for (size_t i = 0; i < n && !found; i++)
                found = streq(list[i].action, action) && (!subject || streq(list[i].subject, subject)) &&
                        (!detail_part || strstr(list[i].detail, detail_part));
        free(list);
        return found;
}

/* ---- 3.1 ---- */

Test(handlers, enrol_success) {
        msg_profile_t p;
        char keid[MSG_KEID_MAX + 1];
        uint8_t ke[KDF_KE_LEN];
        time_t before = time(NULL);

        enrol(KPM1, NODE1, ekm1, NULL, &p);
        keid_of(ekm1, keid, ke);
        cr_assert_str_eq(p.ke_id, keid);
        cr_assert_str_eq(p.ke_id, "000102030405060708090a0b0c0d0e0f@" FQDN);
        cr_assert_str_eq(p.cse_id, "/mn-cse-1");
        cr_assert_str_eq(p.cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        cr_assert_eq(p.poll, 3600);
        cr_assert(!p.has_ltk);
        cr_assert(p.exp_t >= before + 86400 && p.exp_t <= time(NULL) + 86400, "exp %s", p.exp);
        cr_assert_eq(p.n_targets, 2);
        cr_assert_str_eq(p.targets[0].id, TARGET_IN);
        cr_assert_str_eq(p.targets[0].kpsa_id, "000102030405060708090a0b0c0d0e0f.1@" FQDN);
        cr_assert_str_eq(p.targets[1].id, TARGET_MAF);
        cr_assert_str_eq(p.targets[1].kpsa_id, "000102030405060708090a0b0c0d0e0f.2@" FQDN);

        store_enrolment_t e;
        uint8_t key[MSG_KEY_MAX];
        size_t key_len;
        cr_assert_eq(store_enrolment_get(store, keid, &e, key, &key_len), 0);
        cr_assert_eq(e.state, ENROLMENT_ACTIVE);
        cr_assert_str_eq(e.node_id, NODE1);
        cr_assert_eq(e.exp, (int64_t) p.exp_t);
        cr_assert_eq(key_len, KDF_KE_LEN);
        cr_assert_arr_eq(key, ke, KDF_KE_LEN, "stored key is not Ke");
        cr_assert(audit_has("enrol", keid, "201"));
}

Test(handlers, enrol_origin_mismatch) {
        mef_response_t r;
        char body[512];
        enrol_body(NODE1, NULL, body, sizeof body);
        call(KPM1, ekm1, "POST", "/msce/enrolments", NODE2, body, 0, &r);
        expect_error(&r, 403, 4103, "X-M2M-Origin");
        mef_response_done(&r);

        /* nodeID of another node, with the right Origin */
        enrol_body(NODE2, NULL, body, sizeof body);
        call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 0, &r);
        expect_error(&r, 403, 4103, "nodeID");
        mef_response_done(&r);

        /* a target's credential cannot enrol */
        enrol_body(TARGET_IN, NULL, body, sizeof body);
        call(TPSK_IN, ekm1, "POST", "/msce/enrolments", TARGET_IN, body, 0, &r);
        expect_error(&r, 403, 4103, NULL);
        mef_response_done(&r);

        store_enrolment_t *list = NULL;
        size_t n = 1;
        cr_assert_eq(store_enrolment_list(store, NULL, &list, &n), 0);
        cr_assert_eq(n, 0, "a refused enrolment was stored");
        free(list);
        cr_assert(audit_has("enrol", NODE1, "403"));
}

Test(handlers, enrol_revoked_node) {
        mef_response_t r;
        char body[512];
        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REVOKED), 0);
        enrol_body(NODE1, NULL, body, sizeof body);
        call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 0, &r);
        expect_error(&r, 403, 4103, "revoked");
        mef_response_done(&r);
}

/* The node the handshake found is used as is (not looked up again) when it is the PSK
 * identity's, and ignored when it is another identity's. */
Test(handlers, peer_node_from_handshake) {
        mef_response_t r;
        char body[512];
        store_node_t n;
        cr_assert_eq(store_node_get(store, NODE1, &n), 0);
        cr_assert_eq(n.state, NODE_ACTIVE);
        n.state = NODE_REVOKED; /* the store still says active */
        call_node = &n;
        enrol_body(NODE1, NULL, body, sizeof body);
        call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 0, &r);
        expect_error(&r, 403, 4103, "revoked");
        mef_response_done(&r);

        snprintf(n.kpm_id, sizeof n.kpm_id, "someone-else");
        msg_profile_t p;
        enrol(KPM1, NODE1, ekm1, NULL, &p);
        call_node = NULL;
}

Test(handlers, enrol_bad_json) {
        mef_response_t r;
        call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, "{\"msce:enrolReq\": {\"loc\": {}}}", 0, &r);
        expect_error(&r, 400, 4000, "nodeID");
        mef_response_done(&r);

        call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, "{\"msce:enrolReq\": ", 0, &r);
        expect_error(&r, 400, 4000, NULL);
        mef_response_done(&r);

        call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, "{\"msce:enrolReq\": {\"nodeID\": 7}}", 0, &r);
        expect_error(&r, 400, 4000, "nodeID");
        mef_response_done(&r);
}

/* A nodeID against the M2M-Node-ID grammar is a malformed request (400), with the rule named and
 * the value not quoted; a prev that is no KeID too. Nothing is stored. */
Test(handlers, enrol_malformed_identifiers) {
        static const struct {
                const char *body, *dbg;
        } cases[] = {
                { "{\"msce:enrolReq\": {\"nodeID\": \"../../etc/passwd\"}}",
                  "msce:enrolReq.nodeID: not an M2M-Node-ID (contains '/')" },
                { "{\"msce:enrolReq\": {\"nodeID\": \"node 1\"}}", "msce:enrolReq.nodeID: contains a space" },
                { "{\"msce:enrolReq\": {\"nodeID\": \"urn:x:1\"}}", "msce:enrolReq.nodeID: not a URN" },
                { "{\"msce:enrolReq\": {\"nodeID\": \"$(reboot)\"}}", "msce:enrolReq.nodeID: not an M2M-Node-ID" },
                { "{\"msce:enrolReq\": {\"nodeID\": \"" NODE1 "\", \"prev\": \"../x@mef\"}}",
                  "msce:enrolReq.prev: not a KeID (lower-case hex, '@', a host name)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                mef_response_t r;
                call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, cases[i].body, 0, &r);
                expect_error(&r, 400, 4000, cases[i].dbg);
                cr_assert_null(memmem(r.body, r.body_len, "passwd", 6));
                cr_assert_null(memmem(r.body, r.body_len, "reboot", 6));
                mef_response_done(&r);
        }
        store_enrolment_t *list = NULL;
        size_t n = 99;
        cr_assert_eq(store_enrolment_list(store, NODE1, &list, &n), 0);
        cr_assert_eq(n, 0, "nothing stored");
        free(list);
}

Test(handlers, missing_headers) {
        static const struct {
                unsigned flag;
                const char *name;
        } cases[] = {
                { SKIP_HOST, "Host" },
                { SKIP_ORIGIN, "X-M2M-Origin" },
                { SKIP_RI, "X-M2M-RI" },
                { SKIP_RVI, "X-M2M-RVI" },
                { BAD_RVI, "X-M2M-RVI" },
                { SKIP_CT, "Content-Type" },
        };
        char body[512];
        enrol_body(NODE1, NULL, body, sizeof body);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                mef_response_t r;
                call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, cases[i].flag, &r);
                expect_error(&r, 400, 4000, cases[i].name);
                mef_response_done(&r);
        }
        /* and on a GET */
        mef_response_t r;
        call(KPM1, NULL, "GET", "/msce/enrolments/00@" FQDN, NODE1, NULL, SKIP_RI, &r);
        expect_error(&r, 400, 4000, "X-M2M-RI");
        mef_response_done(&r);
}

Test(handlers, prev_retires_old_enrolment) {
        msg_profile_t p1, p2, p3;
        mef_response_t r;

        enrol(KPM1, NODE1, ekm1, NULL, &p1);
        enrol(KPM2, NODE2, ekm3, NULL, &p3);
        /* re-enrol naming the old KeID and (ignored) another node's KeID is not touched */
        enrol(KPM1, NODE1, ekm2, p1.ke_id, &p2);
        cr_assert_str_neq(p1.ke_id, p2.ke_id);

        store_enrolment_t e;
        cr_assert_eq(store_enrolment_get(store, p1.ke_id, &e, NULL, NULL), 0);
        cr_assert_eq(e.state, ENROLMENT_RETIRED);
        cr_assert_eq(store_enrolment_get(store, p2.ke_id, &e, NULL, NULL), 0);
        cr_assert_eq(e.state, ENROLMENT_ACTIVE);
        cr_assert(audit_has("enrol", p2.ke_id, p1.ke_id), "prev not in the audit detail");

        status_of(KPM1, NODE1, p1.ke_id, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);

        /* node 1 names node 2's KeID as prev: node 2's enrolment stays active */
        msg_profile_t p4;
        uint8_t ekm4[KDF_EKM_LEN];
        memset(ekm4, 0x77, sizeof ekm4);
        enrol(KPM1, NODE1, ekm4, p3.ke_id, &p4);
        cr_assert_eq(store_enrolment_get(store, p3.ke_id, &e, NULL, NULL), 0);
        cr_assert_eq(e.state, ENROLMENT_ACTIVE, "another node's enrolment was retired");
        cr_assert_eq(store_enrolment_get(store, p2.ke_id, &e, NULL, NULL), 0);
        cr_assert_eq(e.state, ENROLMENT_RETIRED);
}

/* ---- 3.2 / 3.3 ---- */

Test(handlers, status_states) {
        msg_profile_t p;
        msg_status_t s;
        char err[MSG_ERR_MAX] = "";
        mef_response_t r;

        enrol(KPM1, NODE1, ekm1, NULL, &p);

        status_of(KPM1, NODE1, p.ke_id, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.rsc, 2000);
        cr_assert_eq(msg_status_parse(r.body, r.body_len, &s, err), 0, "%s", err);
        cr_assert_str_eq(s.ke_id, p.ke_id);
        cr_assert_eq(s.state, MSG_STATE_ACTIVE);
        cr_assert_str_eq(s.exp, p.exp);
        cr_assert_eq(s.poll, 3600);
        mef_response_done(&r);

        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REENROL), 0);
        status_of(KPM1, NODE1, p.ke_id, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(msg_status_parse(r.body, r.body_len, &s, err), 0, "%s", err);
        cr_assert_eq(s.state, MSG_STATE_REENROL);
        mef_response_done(&r);

        /* the re-enrolment the MEF asked for puts the node back to active */
        msg_profile_t p2;
        enrol(KPM1, NODE1, ekm2, p.ke_id, &p2);
        store_node_t n;
        cr_assert_eq(store_node_get(store, NODE1, &n), 0);
        cr_assert_eq(n.state, NODE_ACTIVE);
        status_of(KPM1, NODE1, p2.ke_id, &r);
        cr_assert_eq(msg_status_parse(r.body, r.body_len, &s, err), 0, "%s", err);
        cr_assert_eq(s.state, MSG_STATE_ACTIVE);
        mef_response_done(&r);

        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REVOKED), 0);
        store_node_t before, after;
        cr_assert_eq(store_node_get(store, NODE1, &before), 0);
        status_of(KPM1, NODE1, p2.ke_id, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(msg_status_parse(r.body, r.body_len, &s, err), 0, "%s", err);
        cr_assert_eq(s.state, MSG_STATE_REVOKED);
        mef_response_done(&r);
        /* a status check is tallied on the node, not written to the audit trail */
        cr_assert_eq(store_node_get(store, NODE1, &after), 0);
        cr_assert_eq(after.status_checks, before.status_checks + 1);
        cr_assert_geq(after.last_seen, before.last_seen);
        cr_assert_gt(after.last_seen, 0);
        cr_assert(!audit_has("status", NULL, NULL));
}

Test(handlers, status_enrolment_revoked) {
        msg_profile_t p;
        msg_status_t s;
        char err[MSG_ERR_MAX] = "";
        mef_response_t r;

        enrol(KPM1, NODE1, ekm1, NULL, &p);
        cr_assert_eq(store_enrolment_set_state(store, p.ke_id, ENROLMENT_REVOKED), 0);
        status_of(KPM1, NODE1, p.ke_id, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(msg_status_parse(r.body, r.body_len, &s, err), 0, "%s", err);
        cr_assert_eq(s.state, MSG_STATE_REVOKED);
        mef_response_done(&r);
}

Test(handlers, status_other_nodes_keid_is_unknown) {
        msg_profile_t p;
        mef_response_t r;
        enrol(KPM1, NODE1, ekm1, NULL, &p);

        status_of(KPM2, NODE2, p.ke_id, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);

        /* and cannot deregister it either */
        char target[512];
        snprintf(target, sizeof target, "/msce/enrolments/%s", p.ke_id);
        call(KPM2, NULL, "DELETE", target, NODE2, NULL, 0, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);

        status_of(KPM1, NODE1, "ffffffffffffffffffffffffffffffff@" FQDN, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);

        store_enrolment_t e;
        cr_assert_eq(store_enrolment_get(store, p.ke_id, &e, NULL, NULL), 0);
        cr_assert_eq(e.state, ENROLMENT_ACTIVE);
}

Test(handlers, status_expired_is_unknown) {
        store_enrolment_t e = {
                .node_id = NODE1,
                .ke_id = "11111111111111111111111111111111@" FQDN,
                .state = ENROLMENT_ACTIVE,
                .created = time(NULL) - 100,
                .exp = time(NULL) - 10,
        };
        uint8_t key[32] = { 1 };
        cr_assert_eq(store_enrolment_add(store, &e, key, sizeof key), 0);
        mef_response_t r;
        status_of(KPM1, NODE1, e.ke_id, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
        fetch(TPSK_IN, TARGET_IN, e.ke_id, "tls", &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
}

Test(handlers, deregister) {
        msg_profile_t p;
        mef_response_t r;
        char target[512];

        enrol(KPM1, NODE1, ekm1, NULL, &p);
        /* '@' percent-encoded works the same */
        snprintf(target, sizeof target, "/msce/enrolments/%.32s%%40%s", p.ke_id, FQDN);
        call(KPM1, NULL, "DELETE", target, p.ke_id, NULL, 0, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.rsc, 2002);
        cr_assert_eq(r.body_len, 0);
        mef_response_done(&r);

        store_enrolment_t e;
        cr_assert_eq(store_enrolment_get(store, p.ke_id, &e, NULL, NULL), 0);
        cr_assert_eq(e.state, ENROLMENT_DEREGISTERED);
        cr_assert(audit_has("deregister", p.ke_id, "200"));

        status_of(KPM1, NODE1, p.ke_id, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
        call(KPM1, NULL, "DELETE", target, p.ke_id, NULL, 0, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
        fetch(TPSK_IN, TARGET_IN, p.ke_id, "tls", &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
}

/* ---- 3.4 ---- */

Test(handlers, fetch_success) {
        msg_profile_t p;
        msg_credential_t c;
        char err[MSG_ERR_MAX] = "";
        char keid[MSG_KEID_MAX + 1];
        uint8_t ke[KDF_KE_LEN], kpsa[KDF_KEY_LEN];
        mef_response_t r;

        enrol(KPM1, NODE1, ekm1, NULL, &p);
        keid_of(ekm1, keid, ke);
        cr_assert_eq(kdf_kpsa(ke, sizeof ke, TARGET_IN, kpsa), 0);

        fetch(TPSK_IN, TARGET_IN, p.ke_id, "tls-psk_1", &r);
        cr_assert_eq(r.status, 200, "%.*s", (int) r.body_len, r.body);
        cr_assert_eq(r.rsc, 2000);
        cr_assert_eq(msg_credential_parse(r.body, r.body_len, &c, err), 0, "%s", err);
        mef_response_done(&r);
        cr_assert(c.status);
        cr_assert_eq(c.key_len, KDF_KEY_LEN);
        cr_assert_arr_eq(c.key, kpsa, KDF_KEY_LEN, "key is not Kpsa(Ke, target)");
        cr_assert_str_eq(c.enrolee_id, "/mn-cse-1");
        cr_assert_str_eq(c.lifetime, p.exp);
        cr_assert(audit_has("fetch", p.ke_id, "suid=tls-psk_1"));
        msg_credential_wipe(&c);
}

Test(handlers, fetch_refusals) {
        msg_profile_t p;
        mef_response_t r;
        enrol(KPM1, NODE1, ekm1, NULL, &p);

        /* a target the node does not name */
        fetch(TPSK_OTHER, TARGET_OTHER, p.ke_id, "tls", &r);
        expect_error(&r, 403, 4103, NULL);
        mef_response_done(&r);
        cr_assert(audit_has("fetch", p.ke_id, "403"));

        /* Origin is not the authenticated target */
        fetch(TPSK_IN, TARGET_OTHER, p.ke_id, "tls", &r);
        expect_error(&r, 403, 4103, "X-M2M-Origin");
        mef_response_done(&r);

        /* a node is no target */
        fetch(KPM1, NODE1, p.ke_id, "tls", &r);
        expect_error(&r, 403, 4103, NULL);
        mef_response_done(&r);

        /* unknown KeID */
        fetch(TPSK_IN, TARGET_IN, "0123456789abcdef0123456789abcdef@" FQDN, "tls", &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);

        /* bad suid */
        fetch(TPSK_IN, TARGET_IN, p.ke_id, "a.b", &r);
        expect_error(&r, 400, 4000, "suid");
        mef_response_done(&r);
        fetch(TPSK_IN, TARGET_IN, p.ke_id, "0123456789012345678901234567890123", &r);
        expect_error(&r, 400, 4000, "suid");
        mef_response_done(&r);

        /* revoked node: its keys are no longer handed out */
        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REVOKED), 0);
        fetch(TPSK_IN, TARGET_IN, p.ke_id, "tls", &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
}

Test(handlers, ltk_transported) {
        msg_profile_t p;
        msg_credential_t c;
        char err[MSG_ERR_MAX] = "";
        char keid[MSG_KEID_MAX + 1];
        uint8_t ke[KDF_KE_LEN], kpsa[KDF_KEY_LEN], kpsa_ke[KDF_KEY_LEN];
        mef_response_t r;

        enrol(KPM3, NODE3, ekm3, NULL, &p);
        keid_of(ekm3, keid, ke);
        cr_assert_str_eq(p.ke_id, keid, "the KeID still comes from the EKM");
        cr_assert(p.has_ltk);
        cr_assert_eq(p.ltk_len, 32);
        cr_assert(memcmp(p.ltk, ke, sizeof ke) != 0, "ltk must not be Ke");
        cr_assert_eq(kdf_kpsa(p.ltk, p.ltk_len, TARGET_IN, kpsa), 0);
        cr_assert_eq(kdf_kpsa(ke, sizeof ke, TARGET_IN, kpsa_ke), 0);

        fetch(TPSK_IN, TARGET_IN, p.ke_id, "tls", &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(msg_credential_parse(r.body, r.body_len, &c, err), 0, "%s", err);
        mef_response_done(&r);
        cr_assert_arr_eq(c.key, kpsa, KDF_KEY_LEN, "key is not Kpsa(ltk, target)");
        cr_assert(memcmp(c.key, kpsa_ke, KDF_KEY_LEN) != 0);

        /* two enrolments get two different ltks */
        msg_profile_t p2;
        enrol(KPM3, NODE3, ekm2, p.ke_id, &p2);
        cr_assert(p2.has_ltk);
        cr_assert(memcmp(p.ltk, p2.ltk, 32) != 0);
        msg_profile_wipe(&p);
        msg_profile_wipe(&p2);
}

/* ---- routing and framing ---- */

Test(handlers, routing) {
        mef_response_t r;
        char body[512];
        enrol_body(NODE1, NULL, body, sizeof body);

        call(KPM1, ekm1, "POST", "/msce/nothing", NODE1, body, 0, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
        call(KPM1, ekm1, "POST", "/other/enrolments", NODE1, body, 0, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
        call(KPM1, ekm1, "POST", "/msce/enrolments/", NODE1, body, 0, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
        call(KPM1, NULL, "GET", "/msce/enrolments/a/b", NODE1, NULL, 0, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
        call(KPM1, NULL, "GET", "/msce/fetchCredentials/a", NODE1, NULL, 0, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);

        call(KPM1, NULL, "GET", "/msce/enrolments", NODE1, NULL, 0, &r);
        expect_error(&r, 405, 4005, NULL);
        cr_assert_str_eq(r.allow, "POST");
        mef_response_done(&r);
        call(KPM1, NULL, "PUT", "/msce/enrolments/x@y", NODE1, NULL, 0, &r);
        expect_error(&r, 405, 4005, NULL);
        cr_assert_str_eq(r.allow, "GET, DELETE");
        mef_response_done(&r);

        call(KPM1, NULL, "GET", "/msce/enrolments/ab%4", NODE1, NULL, 0, &r);
        expect_error(&r, 400, 4000, NULL);
        mef_response_done(&r);
        call(KPM1, NULL, "GET", "/msce/enrolments/ab%zz", NODE1, NULL, 0, &r);
        expect_error(&r, 400, 4000, NULL);
        mef_response_done(&r);
        call(KPM1, NULL, "GET", "/msce/enrolments/ab%00cd", NODE1, NULL, 0, &r);
        expect_error(&r, 400, 4000, NULL);
        mef_response_done(&r);

        /* query strings play no part; absolute-form targets are accepted */
        msg_profile_t p;
        char err[MSG_ERR_MAX];
        call(KPM1, ekm1, "POST", "https://" FQDN ":8443/msce/enrolments?x=1", NODE1, body, 0, &r);
        cr_assert_eq(r.status, 201);
        cr_assert_eq(msg_profile_parse(r.body, r.body_len, &p, err), 0, "%s", err);
        mef_response_done(&r);

        /* no peer identity at all */
        http_msg_t m = { .kind = HTTP_REQUEST, .method = "GET", .target = "/msce/enrolments/x@y" };
        mef_peer_t none = { .addr = "192.0.2.9:1" };
        m.headers[0] = (http_header_t) { "Host", FQDN };
        m.headers[1] = (http_header_t) { "X-M2M-Origin", "x" };
        m.headers[2] = (http_header_t) { "X-M2M-RI", "1" };
        m.headers[3] = (http_header_t) { "X-M2M-RVI", "3" };
        m.n_headers = 4;
        cr_assert_eq(mef_handle(&cfg, store, &none, &m, &r), 0);
        expect_error(&r, 403, 4103, NULL);
        mef_response_done(&r);
}

Test(handlers, base_variants) {
        mef_response_t r;
        char body[512];
        enrol_body(NODE1, NULL, body, sizeof body);
        cfg.base = (char *) "/";
        call(KPM1, ekm1, "POST", "/enrolments", NODE1, body, 0, &r);
        cr_assert_eq(r.status, 201);
        mef_response_done(&r);
        cfg.base = (char *) "/a/b/";
        call(KPM1, ekm2, "POST", "/a/b/enrolments", NODE1, body, 0, &r);
        cr_assert_eq(r.status, 201);
        mef_response_done(&r);
        call(KPM1, ekm3, "POST", "/a/benrolments", NODE1, body, 0, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
}

static const char *resp_header(const http_msg_t *m, const char *name) {
        const char *v = http_msg_header(m, name);
        return v ? v : "(absent)";
}

Test(handlers, response_format) {
        mef_response_t r;
        uint8_t *out = NULL;
        size_t out_len = 0;
        http_parser_t parser;
        http_msg_t m;

        cr_assert_eq(mef_response_error(503, 5000, "overloaded", &r), 0);
        r.retry_after = 7;
        cr_assert_eq(mef_response_format(&r, "ri-42", &out, &out_len), 0);
        mef_response_done(&r);
        http_parser_init(&parser, HTTP_RESPONSE);
        cr_assert_eq(http_parse(&parser, out, out_len, &m), 1, "%.*s", (int) out_len, out);
        cr_assert_eq(m.status, 503);
        cr_assert_str_eq(resp_header(&m, "X-M2M-RSC"), "5000");
        cr_assert_str_eq(resp_header(&m, "X-M2M-RI"), "ri-42");
        cr_assert_str_eq(resp_header(&m, "Retry-After"), "7");
        cr_assert_str_eq(resp_header(&m, "Content-Type"), "application/json");
        cr_assert_str_eq(resp_header(&m, "Connection"), "close");
        char dbg[MSG_DBG_MAX];
        msg_dbg_parse(m.body, m.body_len, dbg);
        cr_assert_str_eq(dbg, "overloaded");
        http_msg_done(&m);
        free(out);

        /* an RI that is too long or not printable is not echoed; no body: no Content-Type */
        static const char *const bad_ri[] = {
                "0123456789012345678901234567890123456789012345678901234567890123456789",
                "a b",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_ri); i++) {
                r = (mef_response_t) { .status = 200, .rsc = 2002 };
                cr_assert_eq(mef_response_format(&r, bad_ri[i], &out, &out_len), 0);
                http_parser_init(&parser, HTTP_RESPONSE);
                cr_assert_eq(http_parse(&parser, out, out_len, &m), 1);
                cr_assert_null(http_msg_header(&m, "X-M2M-RI"));
                cr_assert_null(http_msg_header(&m, "Content-Type"));
                cr_assert_str_eq(resp_header(&m, "Content-Length"), "0");
                cr_assert_str_eq(resp_header(&m, "X-M2M-RSC"), "2002");
                http_msg_done(&m);
                free(out);
        }
}

/* [limits] enrolments_per_node: past the limit a node gets 429 + Retry-After with nothing
 * stored, another node still enrols, and one audit row records the window's refusals. */
Test(handlers, enrol_rate_limit) {
        msg_profile_t p;
        mef_response_t r;
        char body[1024];
        cr_assert_eq(ratelimit_new(2, 60u * 1000000u, 16, &call_limit), 0);
        cfg.enrolments_per_node = 2;
        cfg.enrolment_window_s = 60;
        enrol(KPM1, NODE1, ekm1, NULL, &p);
        enrol(KPM1, NODE1, ekm2, NULL, &p);
        enrol_body(NODE1, NULL, body, sizeof body);
        for (int i = 0; i < 3; i++) {
                call(KPM1, ekm3, "POST", "/msce/enrolments", NODE1, body, 0, &r);
                expect_error(&r, 429, 4000, "too many enrolments");
                cr_assert(r.retry_after >= 1 && r.retry_after <= 60, "Retry-After %u", r.retry_after);
                mef_response_done(&r);
        }
        store_enrolment_t e;
        char keid[MSG_KEID_MAX + 1];
        uint8_t ke[KDF_KE_LEN];
        keid_of(ekm3, keid, ke);
        cr_assert_eq(store_enrolment_get(store, keid, &e, NULL, NULL), -ENOENT, "a refused enrolment was stored");
        enrol(KPM2, NODE2, ekm3, NULL, &p);

        store_audit_entry_t *list = NULL;
        size_t n = 0, refusals = 0;
        cr_assert_eq(store_audit_list(store, 0, &list, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (strncmp(list[i].detail, "429 ", 4) == 0) {
                        refusals++;
                        cr_assert_str_eq(list[i].subject, NODE1);
                }
        free(list);
        cr_assert_eq(refusals, 1, "%zu audit rows for the refusals of one window", refusals);
        call_limit = ratelimit_free(call_limit);
}

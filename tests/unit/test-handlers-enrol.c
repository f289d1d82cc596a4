/* SPDX-License-Identifier: MIT */
/* Handlers: enrolment (protocol 3.1). */
#include "tests/unit/handlers-fixture.h"

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
        char body[512];
        enrol_body(NODE1, NULL, body, sizeof body);
        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE2, body, 403, 4103, "X-M2M-Origin");

        /* nodeID of another node, with the right Origin */
        enrol_body(NODE2, NULL, body, sizeof body);
        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 403, 4103, "nodeID");

        /* a target's credential cannot enrol */
        enrol_body(TARGET_IN, NULL, body, sizeof body);
        call_fails(TPSK_IN, ekm1, "POST", "/msce/enrolments", TARGET_IN, body, 403, 4103, NULL);

        store_enrolment_t *list = NULL;
        size_t n = 1;
        cr_assert_eq(store_enrolment_list(store, NULL, &list, &n), 0);
        cr_assert_eq(n, 0, "a refused enrolment was stored");
        free(list);
        cr_assert(audit_has("enrol", NODE1, "403"));
}

Test(handlers, enrol_revoked_node) {
        char body[512];
        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REVOKED), 0);
        enrol_body(NODE1, NULL, body, sizeof body);
        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 403, 4103, "revoked");
}

/* The node the handshake found is used as is (not looked up again) when it is the PSK
 * identity's, and ignored when it is another identity's. */
Test(handlers, peer_node_from_handshake) {
        char body[512];
        store_node_t n;
        cr_assert_eq(store_node_get(store, NODE1, &n), 0);
        cr_assert_eq(n.state, NODE_ACTIVE);
        n.state = NODE_REVOKED; /* the store still says active */
        call_node = &n;
        enrol_body(NODE1, NULL, body, sizeof body);
        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 403, 4103, "revoked");

        snprintf(n.kpm_id, sizeof n.kpm_id, "someone-else");
        msg_profile_t p;
        enrol(KPM1, NODE1, ekm1, NULL, &p);
        call_node = NULL;
}

/* A revocation committed after the node was read (here in the handshake, which saw it waiting
 * for re-enrolment) is not overtaken: no enrolment is stored, the node stays revoked (it was set
 * active again when the view read first decided), and the answer says revoked. */
Test(handlers, enrol_revoked_since_read) {
        char body[512];
        msg_profile_t p;
        enrol(KPM1, NODE1, ekm2, NULL, &p);
        store_node_t n;
        cr_assert_eq(store_node_get(store, NODE1, &n), 0);
        n.state = NODE_REENROL;
        call_node = &n;
        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REVOKED), 0);
        cr_assert_eq(store_enrolment_set_state_for_node(store, NODE1, ENROLMENT_REVOKED), 0);
        enrol_body(NODE1, p.ke_id, body, sizeof body);
        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 403, 4103, "revoked");
        call_node = NULL;

        store_node_t now;
        cr_assert_eq(store_node_get(store, NODE1, &now), 0);
        cr_assert_eq(now.state, NODE_REVOKED, "the revocation was undone");
        store_enrolment_t *list = NULL;
        size_t count = 0;
        cr_assert_eq(store_enrolment_list(store, NODE1, &list, &count), 0);
        cr_assert_eq(count, 1u, "an enrolment of the revoked node was stored");
        cr_assert_eq(list[0].state, ENROLMENT_REVOKED);
        free(list);
}

/* Removed since the handshake read it: refused as a request after the removal is, not as a
 * server error. */
Test(handlers, enrol_removed_since_read) {
        char body[512];
        store_node_t n;
        cr_assert_eq(store_node_get(store, NODE1, &n), 0);
        call_node = &n;
        cr_assert_eq(store_node_remove(store, NODE1), 0);
        enrol_body(NODE1, NULL, body, sizeof body);
        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 403, 4103, MSG_HINT_NOT_ENROLEE);
        call_node = NULL;
        store_enrolment_t *list = NULL;
        size_t count = 1;
        cr_assert_eq(store_enrolment_list(store, NULL, &list, &count), 0);
        cr_assert_eq(count, 0u, "an enrolment was stored");
        free(list);
}

Test(handlers, enrol_bad_json) {
        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, "{\"msce:enrolReq\": {\"loc\": {}}}", 400, 4000, "nodeID");

        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, "{\"msce:enrolReq\": ", 400, 4000, NULL);

        call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, "{\"msce:enrolReq\": {\"nodeID\": 7}}", 400, 4000, "nodeID");
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

        status_of(KPM1, p1.ke_id, &r);
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

/* SPDX-License-Identifier: MIT */
/* Handlers: status and deregistration (3.2, 3.3), credentials for targets (3.4). */
#include <ctype.h>

#include "tests/unit/handlers-fixture.h"

/* ---- 3.2 / 3.3 ---- */

/* A status check answers 200 with state want. */
static void status_is(const char *kpm_id, const char *ke_id, msg_state_t want) {
        mef_response_t r;
        msg_status_t s;
        char err[MSG_ERR_MAX] = "";
        status_of(kpm_id, ke_id, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(msg_status_parse(r.body, r.body_len, &s, err), 0, "%s", err);
        cr_assert_eq(s.state, want);
        mef_response_done(&r);
}

/* A status check answers 404/4004: the KeID is not the node's, or not known. */
static void status_unknown(const char *kpm_id, const char *ke_id) {
        mef_response_t r;
        status_of(kpm_id, ke_id, &r);
        expect_error(&r, 404, 4004, NULL);
        mef_response_done(&r);
}

Test(handlers, status_states) {
        msg_profile_t p;
        msg_status_t s;
        char err[MSG_ERR_MAX] = "";
        mef_response_t r;

        enrol(KPM1, NODE1, ekm1, NULL, &p);

        status_of(KPM1, p.ke_id, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.rsc, 2000);
        cr_assert_eq(msg_status_parse(r.body, r.body_len, &s, err), 0, "%s", err);
        cr_assert_str_eq(s.ke_id, p.ke_id);
        cr_assert_eq(s.state, MSG_STATE_ACTIVE);
        cr_assert_str_eq(s.exp, p.exp);
        cr_assert_eq(s.poll, 3600);
        mef_response_done(&r);

        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REENROL), 0);
        status_is(KPM1, p.ke_id, MSG_STATE_REENROL);

        /* the re-enrolment the MEF asked for puts the node back to active */
        msg_profile_t p2;
        enrol(KPM1, NODE1, ekm2, p.ke_id, &p2);
        store_node_t n;
        cr_assert_eq(store_node_get(store, NODE1, &n), 0);
        cr_assert_eq(n.state, NODE_ACTIVE);
        status_is(KPM1, p2.ke_id, MSG_STATE_ACTIVE);

        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REVOKED), 0);
        store_node_t before, after;
        cr_assert_eq(store_node_get(store, NODE1, &before), 0);
        status_is(KPM1, p2.ke_id, MSG_STATE_REVOKED);
        /* a status check is tallied on the node, not written to the audit trail */
        cr_assert_eq(store_node_get(store, NODE1, &after), 0);
        cr_assert_eq(after.status_checks, before.status_checks + 1);
        cr_assert_geq(after.last_seen, before.last_seen);
        cr_assert_gt(after.last_seen, 0);
        cr_assert(!audit_has("status", NULL, NULL));
}

Test(handlers, status_enrolment_revoked) {
        msg_profile_t p;
        enrol(KPM1, NODE1, ekm1, NULL, &p);
        cr_assert_eq(store_enrolment_set_state(store, p.ke_id, ENROLMENT_REVOKED), 0);
        status_is(KPM1, p.ke_id, MSG_STATE_REVOKED);
}

Test(handlers, status_other_nodes_keid_is_unknown) {
        msg_profile_t p;
        enrol(KPM1, NODE1, ekm1, NULL, &p);

        status_unknown(KPM2, p.ke_id);

        /* and cannot deregister it either */
        char target[512];
        snprintf(target, sizeof target, "/msce/enrolments/%s", p.ke_id);
        call_fails(KPM2, NULL, "DELETE", target, p.ke_id, NULL, 404, 4004, NULL);

        status_unknown(KPM1, "ffffffffffffffffffffffffffffffff@" FQDN);

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
        status_unknown(KPM1, e.ke_id);
        fetch_fails(TPSK_IN, TARGET_IN, e.ke_id, "tls", 404, 4004, NULL);
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

        status_unknown(KPM1, p.ke_id);
        call_fails(KPM1, NULL, "DELETE", target, p.ke_id, NULL, 404, 4004, NULL);
        fetch_fails(TPSK_IN, TARGET_IN, p.ke_id, "tls", 404, 4004, NULL);
}

/* Protocol section 3: a status check's and a deregistration's X-M2M-Origin is the KeID. Any
 * other (the node's ID, another KeID, the KeID in other case) is refused 403/4103 as enrol and
 * fetch refuse a wrong originator, audited, and changes nothing; also for a KeID the MEF does not
 * know or another node's (the path is not looked up first). */
Test(handlers, status_deregister_origin_not_keid) {
        msg_profile_t p, p2;
        mef_response_t r;
        char target[512], upper[MSG_KEID_MAX + 1], other_target[512];

        enrol(KPM1, NODE1, ekm1, NULL, &p);
        enrol(KPM2, NODE2, ekm2, NULL, &p2);
        snprintf(target, sizeof target, "/msce/enrolments/%s", p.ke_id);
        snprintf(other_target, sizeof other_target, "/msce/enrolments/%s", p2.ke_id);
        snprintf(upper, sizeof upper, "%s", p.ke_id);
        for (char *c = upper; *c; c++)
                *c = (char) toupper((unsigned char) *c);
        const char *const origins[] = { NODE1, "00@other.example", p2.ke_id, upper };
        for (size_t i = 0; i < ELEMENTSOF(origins); i++) {
                call_fails(KPM1, NULL, "GET", target, origins[i], NULL, 403, 4103, "X-M2M-Origin: not the KeID in the path");
                call_fails(KPM1, NULL, "DELETE", target, origins[i], NULL, 403, 4103,
                           "X-M2M-Origin: not the KeID in the path");
        }
        cr_assert(audit_has("status", p.ke_id, "403 X-M2M-Origin: not the KeID in the path"));
        cr_assert(audit_has("deregister", p.ke_id, "403 X-M2M-Origin: not the KeID in the path"));
        /* another node's KeID and an unknown one: the same answer, before any lookup */
        call_fails(KPM1, NULL, "GET", other_target, NODE1, NULL, 403, 4103, "X-M2M-Origin: not the KeID in the path");
        call_fails(KPM1, NULL, "GET", "/msce/enrolments/ffff@" FQDN, NODE1, NULL, 403, 4103,
                   "X-M2M-Origin: not the KeID in the path");

        /* nothing changed: not deregistered, no status check tallied; the KeID as origin works */
        store_enrolment_t e;
        cr_assert_eq(store_enrolment_get(store, p.ke_id, &e, NULL, NULL), 0);
        cr_assert_eq(e.state, ENROLMENT_ACTIVE);
        store_node_t n;
        cr_assert_eq(store_node_get(store, NODE1, &n), 0);
        cr_assert_eq(n.status_checks, 0);
        status_is(KPM1, p.ke_id, MSG_STATE_ACTIVE);
        call(KPM1, NULL, "DELETE", target, p.ke_id, NULL, 0, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.rsc, 2002);
        mef_response_done(&r);
}

static size_t audit_rows_of_action(const char *action, const char *detail_part) {
        store_audit_entry_t *list = NULL;
        size_t n = 0, k = 0;
        cr_assert_eq(store_audit_list(store, 0, &list, &n), 0);
        for (size_t i = 0; i < n; i++)
                k += streq(list[i].action, action) && strstr(list[i].detail, detail_part);
        free(list);
        return k;
}

/* A deregister of a revoked enrolment changes nothing: each is answered 200, but a node looping
 * on it is audited as a refusal is, once a window (the repeats counted for the log line). */
Test(handlers, deregister_revoked_audited_once_a_window) {
        msg_profile_t p;
        mef_response_t r;
        char target[512];

        enrol(KPM1, NODE1, ekm1, NULL, &p);
        cr_assert_eq(store_enrolment_set_state(store, p.ke_id, ENROLMENT_REVOKED), 0);
        snprintf(target, sizeof target, "/msce/enrolments/%s", p.ke_id);
        for (unsigned i = 0; i < 100; i++) {
                call(KPM1, NULL, "DELETE", target, p.ke_id, NULL, 0, &r);
                cr_assert_eq(r.status, 200, "request %u: %d", i, r.status);
                cr_assert_eq(r.rsc, 2002);
                cr_assert_eq(r.audit_folded, i, "request %u: %u folded", i, r.audit_folded);
                mef_response_done(&r);
        }
        size_t rows = audit_rows_of_action("deregister", "kept revoked");
        cr_assert_eq(rows, 1, "%zu audit rows for 100 deregisters of a revoked enrolment", rows);

        clock_ahead = (MEF_REFUSAL_AUDIT_WINDOW_S + 1) * USEC_PER_SEC;
        call(KPM1, NULL, "DELETE", target, p.ke_id, NULL, 0, &r);
        cr_assert_eq(r.status, 200);
        cr_assert_eq(r.audit_folded, 0);
        mef_response_done(&r);
        rows = audit_rows_of_action("deregister", "kept revoked");
        cr_assert_eq(rows, 2, "%zu audit rows after the window", rows);
        cr_assert_eq(audit_rows_of_action("deregister", "[after 99 like it not audited]"), 1);

        store_enrolment_t e;
        cr_assert_eq(store_enrolment_get(store, p.ke_id, &e, NULL, NULL), 0);
        cr_assert_eq(e.state, ENROLMENT_REVOKED);
}

/* ---- 3.4 ---- */

Test(handlers, fetch_success) {
        msg_profile_t p;
        msg_credential_t c;
        char keid[MSG_KEID_MAX + 1];
        uint8_t ke[KDF_KE_LEN], kpsa[KDF_KEY_LEN];

        enrol(KPM1, NODE1, ekm1, NULL, &p);
        keid_of(ekm1, keid, ke);
        cr_assert_eq(kdf_kpsa(ke, sizeof ke, TARGET_IN, kpsa), 0);

        fetch_credential(TPSK_IN, TARGET_IN, p.ke_id, "tls-psk_1", &c);
        cr_assert(c.status);
        cr_assert_eq(c.key_len, KDF_KEY_LEN);
        cr_assert_arr_eq(c.key, kpsa, KDF_KEY_LEN, "key is not Kpsa(Ke, target)");
        cr_assert_str_eq(c.enrolee_id, "/mn-cse-1");
        cr_assert_str_eq(c.lifetime, p.exp);
        cr_assert(audit_has("fetch", p.ke_id, "suid=tls-psk_1"));
        msg_credential_wipe(&c);
}

/* The target the handshake found is used as is when it is the PSK identity's (here the store
 * has removed it since), and ignored when it is another identity's. */
Test(handlers, peer_target_from_handshake) {
        msg_profile_t p;
        msg_credential_t c;
        enrol(KPM1, NODE1, ekm1, NULL, &p);
        store_target_t t;
        cr_assert_eq(store_target_by_psk_id(store, TPSK_IN, &t, NULL, NULL), 0);
        cr_assert_eq(store_target_remove(store, TARGET_IN), 0);
        call_target = &t;
        fetch_credential(TPSK_IN, TARGET_IN, p.ke_id, "tls", &c);
        msg_credential_wipe(&c);

        snprintf(t.psk_id, sizeof t.psk_id, "someone-else");
        fetch_fails(TPSK_IN, TARGET_IN, p.ke_id, "tls", 403, 4103, "not an enrolment target");
        call_target = NULL;
        fetch_fails(TPSK_IN, TARGET_IN, p.ke_id, "tls", 403, 4103, "not an enrolment target");
}

Test(handlers, fetch_refusals) {
        msg_profile_t p;
        enrol(KPM1, NODE1, ekm1, NULL, &p);

        /* a target the node does not name: 403/4103 (fetch_unnamed_target) */
        fetch_fails(TPSK_OTHER, TARGET_OTHER, p.ke_id, "tls", 403, 4103, "target not named for that KeID");
        cr_assert(audit_has("fetch", p.ke_id, "403 target not named for that KeID (target not named for the node)"));

        /* Origin is not the authenticated target */
        fetch_fails(TPSK_IN, TARGET_OTHER, p.ke_id, "tls", 403, 4103, "X-M2M-Origin");

        /* a node is no target */
        fetch_fails(KPM1, NODE1, p.ke_id, "tls", 403, 4103, NULL);

        /* unknown KeID */
        fetch_fails(TPSK_IN, TARGET_IN, "0123456789abcdef0123456789abcdef@" FQDN, "tls", 404, 4004, NULL);

        /* bad suid */
        fetch_fails(TPSK_IN, TARGET_IN, p.ke_id, "a.b", 400, 4000, "suid");
        fetch_fails(TPSK_IN, TARGET_IN, p.ke_id, "0123456789012345678901234567890123", 400, 4000, "suid");

        /* revoked node: its keys are no longer handed out */
        cr_assert_eq(store_node_set_state(store, NODE1, NODE_REVOKED), 0);
        fetch_fails(TPSK_IN, TARGET_IN, p.ke_id, "tls", 404, 4004, NULL);
}

/* A target not named for a KeID's node gets 403/4103 (protocol 3.4), one answer byte for byte
 * whatever the enrolment's state: it learns no more than that the KeID is not its to fetch. */
static void fetch_answer(const char *tpsk, const char *origin, const char *keid, char *out, size_t size) {
        mef_response_t r;
        fetch(tpsk, origin, keid, "tls", &r);
        snprintf(out, size, "%d %d %.*s", r.status, r.rsc, (int) r.body_len, r.body ? r.body : "");
        mef_response_done(&r);
}

Test(handlers, fetch_unnamed_target) {
        msg_profile_t retired, active, revoked;
        char never[512];
        enrol(KPM1, NODE1, ekm1, NULL, &retired);
        enrol(KPM1, NODE1, ekm2, retired.ke_id, &active);
        enrol(KPM2, NODE2, ekm3, NULL, &revoked);
        cr_assert_eq(store_node_set_state(store, NODE2, NODE_REVOKED), 0);
        /* the retired one first: its audit row is the window's (the others' are folded) */
        const char *const keids[] = { retired.ke_id, active.ke_id, revoked.ke_id };
        char got[ELEMENTSOF(keids)][512];
        for (size_t i = 0; i < ELEMENTSOF(keids); i++)
                fetch_answer(TPSK_OTHER, TARGET_OTHER, keids[i], got[i], sizeof got[i]);
        cr_assert_str_eq(got[0], "403 4103 {\"m2m:dbg\":\"target not named for that KeID\"}");
        for (size_t i = 1; i < ELEMENTSOF(keids); i++)
                cr_assert_str_eq(got[i], got[0], "KeID %zu", i);
        /* an unknown KeID stays 404/4004 */
        fetch_answer(TPSK_OTHER, TARGET_OTHER, "0123456789abcdef0123456789abcdef@" FQDN, never, sizeof never);
        cr_assert_eq(strncmp(never, "404 4004 ", 9), 0, "%s", never);
        /* the named target still learns why, and gets the active one's key */
        fetch_fails(TPSK_IN, TARGET_IN, retired.ke_id, "tls", 404, 4004, "retired");
        fetch_fails(TPSK_IN, TARGET_IN, revoked.ke_id, "tls", 404, 4004, "node revoked");
        msg_credential_t c;
        fetch_credential(TPSK_IN, TARGET_IN, active.ke_id, "tls", &c);
        msg_credential_wipe(&c);
        cr_assert(audit_has("fetch", retired.ke_id, "target not named for the node"));
}

Test(handlers, ltk_transported) {
        msg_profile_t p;
        msg_credential_t c;
        char keid[MSG_KEID_MAX + 1];
        uint8_t ke[KDF_KE_LEN], kpsa[KDF_KEY_LEN], kpsa_ke[KDF_KEY_LEN];

        enrol(KPM3, NODE3, ekm3, NULL, &p);
        keid_of(ekm3, keid, ke);
        cr_assert_str_eq(p.ke_id, keid, "the KeID still comes from the EKM");
        cr_assert(p.has_ltk);
        cr_assert_eq(p.ltk_len, 32);
        cr_assert(memcmp(p.ltk, ke, sizeof ke) != 0, "ltk must not be Ke");
        cr_assert_eq(kdf_kpsa(p.ltk, p.ltk_len, TARGET_IN, kpsa), 0);
        cr_assert_eq(kdf_kpsa(ke, sizeof ke, TARGET_IN, kpsa_ke), 0);

        fetch_credential(TPSK_IN, TARGET_IN, p.ke_id, "tls", &c);
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

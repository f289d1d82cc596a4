/* SPDX-License-Identifier: MIT */
/* Messages: the protocol examples, round trips from structs, state strings. */
#include "tests/unit/msg-fixture.h"

/* ---- the examples ---- */

/* k[i] == first + i for the n bytes of a key the examples fill that way */
static void assert_counting(const uint8_t *k, size_t n, unsigned first) {
        for (size_t i = 0; i < n; i++)
                cr_assert_eq(k[i], first + i, "byte %zu", i);
}

static void assert_wiped(const uint8_t *k, size_t n) {
        for (size_t i = 0; i < n; i++)
                cr_assert_eq(k[i], 0, "byte %zu not wiped", i);
}

/* Each example parses and formats to its compact form (parse_kind formats what parsed). */
Test(example, format_compact) {
        static const char *const compact[] = { enrol_compact, profile_compact, status_compact, credential_compact };
        for (kind_t k = K_ENROL; k <= K_CREDENTIAL; k++) {
                char err[MSG_ERR_MAX], *json = NULL;
                cr_assert_eq(parse_kind(k, examples[k], strlen(examples[k]), err, &json), 0, "%s", err);
                cr_assert_str_eq(json, compact[k]);
                erase_free(json, strlen(json));
        }
}

Test(example, enrol_req) {
        msg_enrol_req_t m;
        char err[MSG_ERR_MAX];
        cr_assert_eq(msg_enrol_req_parse(enrol_example, strlen(enrol_example), &m, err), 0, "%s", err);
        cr_assert_str_eq(m.node_id, "urn:dev:ops:0004A3-MNGW-000123");
        cr_assert(m.has_loc && m.loc.has_alt);
        cr_assert_eq(m.loc.lat, 48.8584);
        cr_assert_eq(m.loc.lon, 2.2945);
        cr_assert_eq(m.loc.alt, 35.0);
        cr_assert_str_eq(m.prev, KEID);
}

Test(example, profile) {
        msg_profile_t m;
        char err[MSG_ERR_MAX];
        cr_assert_eq(msg_profile_parse(profile_example, strlen(profile_example), &m, err), 0, "%s", err);
        cr_assert_str_eq(m.cse_id, "/mn-cse-000123");
        cr_assert_str_eq(m.cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        cr_assert_str_eq(m.ke_id, KEID);
        cr_assert_str_eq(m.exp, "20271127T203000");
        cr_assert_eq(m.exp_t, EXP_T);
        cr_assert_eq(m.n_targets, 1);
        cr_assert_str_eq(m.targets[0].id, "/in-cse");
        cr_assert_str_eq(m.targets[0].kpsa_id, KPSAID);
        cr_assert_eq(m.poll, 3600);
        cr_assert(m.has_ltk);
        cr_assert_eq(m.ltk_len, 32);
        assert_counting(m.ltk, 32, 0);
        msg_profile_wipe(&m);
        cr_assert_eq(m.ltk_len, 0);
        assert_wiped(m.ltk, MSG_KEY_MAX);
}

Test(example, status) {
        msg_status_t m;
        char err[MSG_ERR_MAX];
        cr_assert_eq(msg_status_parse(status_example, strlen(status_example), &m, err), 0, "%s", err);
        cr_assert_str_eq(m.ke_id, KEID);
        cr_assert_eq(m.state, MSG_STATE_ACTIVE);
        cr_assert_str_eq(m.exp, "20271127T203000");
        cr_assert_eq(m.exp_t, EXP_T);
        cr_assert_eq(m.poll, 3600);
}

Test(example, credential) {
        msg_credential_t m;
        char err[MSG_ERR_MAX];
        cr_assert_eq(msg_credential_parse(credential_example, strlen(credential_example), &m, err), 0, "%s", err);
        cr_assert(m.status);
        cr_assert_eq(m.key_len, 32);
        assert_counting(m.key, 32, 100);
        cr_assert_str_eq(m.enrolee_id, "/mn-cse-000123");
        cr_assert_str_eq(m.lifetime, "20271127T203000");
        cr_assert_eq(m.lifetime_t, EXP_T);
        msg_credential_wipe(&m);
        cr_assert_eq(m.key_len, 0);
        assert_wiped(m.key, MSG_KEY_MAX);
}

Test(example, dbg) {
        char out[MSG_DBG_MAX];
        static const char body[] = "{\"m2m:dbg\": \"node not allowed\"}";
        msg_dbg_parse(body, strlen(body), out);
        cr_assert_str_eq(out, "node not allowed");
}

/* ---- round trips from structs ---- */

static void enrol_round_trip(const msg_enrol_req_t *in, const char *want) {
        _cleanup_free_ char *json = NULL;
        msg_enrol_req_t out;
        char err[MSG_ERR_MAX];
        cr_assert_eq(msg_enrol_req_format(in, &json), 0);
        if (want)
                cr_assert_str_eq(json, want);
        cr_assert_eq(msg_enrol_req_parse(json, strlen(json), &out, err), 0, "%s: %s", json, err);
        cr_assert_str_eq(out.node_id, in->node_id);
        cr_assert_eq(out.has_loc, in->has_loc);
        if (in->has_loc) {
                cr_assert_eq(out.loc.lat, in->loc.lat, "%s", json);
                cr_assert_eq(out.loc.lon, in->loc.lon, "%s", json);
                cr_assert_eq(out.loc.has_alt, in->loc.has_alt);
                if (in->loc.has_alt)
                        cr_assert_eq(out.loc.alt, in->loc.alt, "%s", json);
        }
        cr_assert_str_eq(out.prev, in->prev);
}

Test(round_trip, enrol_req) {
        msg_enrol_req_t m = { .node_id = "node-1" };
        enrol_round_trip(&m, "{\"msce:enrolReq\":{\"nodeID\":\"node-1\"}}");
        m.has_loc = true;
        m.loc = (msg_loc_t) { .lat = -90, .lon = 180 };
        enrol_round_trip(&m, "{\"msce:enrolReq\":{\"nodeID\":\"node-1\",\"loc\":{\"lat\":-90.0,\"lon\":180.0}}}");
        m.loc = (msg_loc_t) { .lat = 0.1 + 0.2, .lon = -1.0 / 3, .alt = -1e-300, .has_alt = true };
        enrol_round_trip(&m, NULL);
        m.loc = (msg_loc_t) { .lat = 5e-324, .lon = -179.99999999999997, .alt = 1.7976931348623157e308, .has_alt = true };
        enrol_round_trip(&m, NULL);
        strcpy(m.prev, KEID);
        m.has_loc = false;
        enrol_round_trip(&m, "{\"msce:enrolReq\":{\"nodeID\":\"node-1\",\"prev\":\"" KEID "\"}}");
}

static void profile_round_trip(const msg_profile_t *in) {
        _cleanup_free_ char *json = NULL;
        msg_profile_t out;
        char err[MSG_ERR_MAX];
        cr_assert_eq(msg_profile_format(in, &json), 0);
        cr_assert_eq(msg_profile_parse(json, strlen(json), &out, err), 0, "%s", err);
        cr_assert_str_eq(out.cse_id, in->cse_id);
        cr_assert_str_eq(out.cse_base, in->cse_base);
        cr_assert_str_eq(out.ke_id, in->ke_id);
        if (in->exp[0])
                cr_assert_str_eq(out.exp, in->exp);
        cr_assert_eq(out.exp_t, in->exp_t);
        cr_assert_eq(out.n_targets, in->n_targets);
        for (size_t i = 0; i < in->n_targets; i++) {
                cr_assert_str_eq(out.targets[i].id, in->targets[i].id);
                cr_assert_str_eq(out.targets[i].kpsa_id, in->targets[i].kpsa_id);
        }
        cr_assert_eq(out.poll, in->poll);
        cr_assert_eq(out.has_ltk, in->has_ltk);
        if (in->has_ltk) {
                cr_assert_eq(out.ltk_len, in->ltk_len);
                cr_assert_arr_eq(out.ltk, in->ltk, in->ltk_len);
        }
        cr_assert_eq(strstr(json, "\"targets\"") != NULL, in->n_targets > 0, "%s", json);
        cr_assert_eq(strstr(json, "\"ltk\"") != NULL, in->has_ltk, "%s", json);
        msg_profile_wipe(&out);
        erase(json, strlen(json));
}

Test(round_trip, profile) {
        msg_profile_t m = {
                .cse_id = "/mn-cse-1", .cse_base = "https://in/~/in-cse", .ke_id = KEID,
                .exp = "20271127T203000", .exp_t = EXP_T, .poll = MSG_POLL_MIN,
        };
        profile_round_trip(&m);
        /* exp from exp_t when the string is empty */
        m.exp[0] = 0;
        m.exp_t = 1835395200;
        profile_round_trip(&m);
        m.poll = MSG_POLL_MAX;
        m.n_targets = MSG_TARGETS_MAX;
        for (size_t i = 0; i < MSG_TARGETS_MAX; i++) {
                snprintf(m.targets[i].id, sizeof m.targets[i].id, "/target-%zu", i);
                snprintf(m.targets[i].kpsa_id, sizeof m.targets[i].kpsa_id, "abcd.%zu@mef.example.net", i + 1);
        }
        profile_round_trip(&m);
        m.has_ltk = true;
        for (size_t len = MSG_KEY_MIN; len <= MSG_KEY_MAX; len++) {
                for (size_t i = 0; i < len && i < sizeof m.ltk; i++)
                        m.ltk[i] = (uint8_t) (255 - i - len);
                m.ltk_len = len;
                profile_round_trip(&m);
        }
        msg_profile_wipe(&m);
}

Test(round_trip, status) {
        for (msg_state_t s = 0; s < _MSG_STATE_MAX; s++) {
                msg_status_t m = { .ke_id = KEID, .state = s, .exp = "20000229T235959", .poll = 86400 }, out;
                _cleanup_free_ char *json = NULL;
                char err[MSG_ERR_MAX], want[300];
                cr_assert_eq(msg_status_format(&m, &json), 0);
                snprintf(want, sizeof want, "\"state\":\"%s\"", msg_state_to_string(s));
                cr_assert_not_null(strstr(json, want), "%s", json);
                cr_assert_eq(msg_status_parse(json, strlen(json), &out, err), 0, "%s", err);
                cr_assert_str_eq(out.ke_id, KEID);
                cr_assert_eq(out.state, s);
                cr_assert_str_eq(out.exp, m.exp);
                cr_assert_eq(out.exp_t, 951868799);
                cr_assert_eq(out.poll, 86400);
        }
}

Test(round_trip, credential) {
        msg_credential_t m = { .status = true, .enrolee_id = "/mn-cse-7", .lifetime_t = EXP_T }, out;
        char err[MSG_ERR_MAX];
        for (size_t len = MSG_KEY_MIN; len <= MSG_KEY_MAX; len += 16) {
                _cleanup_free_ char *json = NULL;
                random_bytes(m.key, len);
                m.key_len = len;
                cr_assert_eq(msg_credential_format(&m, &json), 0);
                cr_assert_eq(msg_credential_parse(json, strlen(json), &out, err), 0, "%s", err);
                cr_assert(out.status);
                cr_assert_eq(out.key_len, len);
                cr_assert_arr_eq(out.key, m.key, len);
                cr_assert_str_eq(out.enrolee_id, "/mn-cse-7");
                cr_assert_str_eq(out.lifetime, "20271127T203000");
                cr_assert_eq(out.lifetime_t, EXP_T);
                erase(json, strlen(json));
        }
        /* a failure carries only the status */
        _cleanup_free_ char *json = NULL;
        msg_credential_t fail = { .status = false };
        cr_assert_eq(msg_credential_format(&fail, &json), 0);
        cr_assert_str_eq(json, "{\"msce:credential\":{\"status\":false}}");
        memset(&out, 0xa5, sizeof out);
        cr_assert_eq(msg_credential_parse(json, strlen(json), &out, err), 0, "%s", err);
        cr_assert_not(out.status);
        cr_assert_eq(out.key_len, 0);
        cr_assert_str_eq(out.enrolee_id, "");
        cr_assert_str_eq(out.lifetime, "");
        msg_credential_wipe(&m);
        msg_credential_wipe(&out);
}

Test(round_trip, dbg) {
        static const char *const reasons[] = { "", "node not allowed", "quote \" backslash \\ slash /", "a\tb" };
        for (size_t i = 0; i < ELEMENTSOF(reasons); i++) {
                _cleanup_free_ char *json = NULL;
                char out[MSG_DBG_MAX];
                cr_assert_eq(msg_dbg_format(reasons[i], &json), 0);
                msg_dbg_parse(json, strlen(json), out);
                if (i < 3)
                        cr_assert_str_eq(out, reasons[i]);
                else
                        cr_assert_str_eq(out, "a?b");
        }
        _cleanup_free_ char *json = NULL;
        cr_assert_eq(msg_dbg_format("x", &json), 0);
        cr_assert_str_eq(json, "{\"m2m:dbg\":\"x\"}");
        cr_assert_eq(msg_dbg_format("bad \xff utf-8", &json), -EINVAL);
        cr_assert_eq(msg_dbg_format(NULL, &json), -EINVAL);
}

Test(state, strings) {
        cr_assert_str_eq(msg_state_to_string(MSG_STATE_ACTIVE), "active");
        cr_assert_str_eq(msg_state_to_string(MSG_STATE_REENROL), "reenrol");
        cr_assert_str_eq(msg_state_to_string(MSG_STATE_REVOKED), "revoked");
        cr_assert_null(msg_state_to_string(_MSG_STATE_MAX));
        cr_assert_null(msg_state_to_string(_MSG_STATE_INVALID));
        for (msg_state_t s = 0; s < _MSG_STATE_MAX; s++)
                cr_assert_eq(msg_state_from_string(msg_state_to_string(s)), s);
        cr_assert_eq(msg_state_from_string("Active"), _MSG_STATE_INVALID);
        cr_assert_eq(msg_state_from_string(""), _MSG_STATE_INVALID);
        cr_assert_eq(msg_state_from_string(NULL), _MSG_STATE_INVALID);
}

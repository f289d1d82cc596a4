/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>

#include "proto/msg.h"
#include "util/util.h"

#define KEID "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@mef.example.net"
#define KPSAID "3f2a9c0d4e5b6a7980a1b2c3d4e5f601.1@mef.example.net"
#define LTK_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* bytes 0..31 */
#define KEY_B64 "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=" /* bytes 100..131 */

/* The examples of protocol section 3, with valid values where the spec abbreviates. */
static const char enrol_example[] =
        "{\"msce:enrolReq\": {\n"
        "  \"nodeID\": \"urn:dev:ops:0004A3-MNGW-000123\",\n"
        "  \"loc\": {\"lat\": 48.8584, \"lon\": 2.2945, \"alt\": 35.0},\n"
        "  \"prev\": \"" KEID "\"\n"
        "}}\n";
static const char profile_example[] =
        "{\"msce:profile\": {\n"
        "  \"cseID\": \"/mn-cse-000123\",\n"
        "  \"cseBase\": \"https://in.example.net:8443/~/in-cse/in-name\",\n"
        "  \"keID\": \"" KEID "\",\n"
        "  \"exp\": \"20271127T203000\",\n"
        "  \"targets\": [{\"id\": \"/in-cse\", \"kpsaID\": \"" KPSAID "\"}],\n"
        "  \"poll\": 3600,\n"
        "  \"ltk\": \"" LTK_B64 "\"\n"
        "}}\n";
static const char status_example[] =
        "{\"msce:status\": {\"keID\": \"" KEID "\", \"state\": \"active\", \"exp\": \"20271127T203000\", \"poll\": 3600}}";
static const char credential_example[] =
        "{\"msce:credential\": {\"status\": true, \"key\": \"" KEY_B64 "\", \"enroleeID\": \"/mn-cse-000123\", "
        "\"lifetime\": \"20271127T203000\"}}";

/* The same, as our formatters must write them. */
static const char enrol_compact[] =
        "{\"msce:enrolReq\":{\"nodeID\":\"urn:dev:ops:0004A3-MNGW-000123\",\"loc\":{\"lat\":48.8584,\"lon\":2.2945,"
        "\"alt\":35.0},\"prev\":\"" KEID "\"}}";
static const char profile_compact[] =
        "{\"msce:profile\":{\"cseID\":\"/mn-cse-000123\",\"cseBase\":\"https://in.example.net:8443/~/in-cse/in-name\","
        "\"keID\":\"" KEID "\",\"exp\":\"20271127T203000\",\"targets\":[{\"id\":\"/in-cse\",\"kpsaID\":\"" KPSAID "\"}],"
        "\"poll\":3600,\"ltk\":\"" LTK_B64 "\"}}";
static const char status_compact[] =
        "{\"msce:status\":{\"keID\":\"" KEID "\",\"state\":\"active\",\"exp\":\"20271127T203000\",\"poll\":3600}}";
static const char credential_compact[] =
        "{\"msce:credential\":{\"status\":true,\"key\":\"" KEY_B64 "\",\"enroleeID\":\"/mn-cse-000123\","
        "\"lifetime\":\"20271127T203000\"}}";

#define EXP_T 1827347400 /* 20271127T203000 */

/* ---- helpers ---- */

typedef enum kind { K_ENROL, K_PROFILE, K_STATUS, K_CREDENTIAL } kind_t;

static const char *const examples[] = { enrol_example, profile_example, status_example, credential_example };

static kind_t kind_of(const char *path) {
        if (!strncmp(path, "msce:enrolReq", 13))
                return K_ENROL;
        if (!strncmp(path, "msce:profile", 12))
                return K_PROFILE;
        if (!strncmp(path, "msce:status", 11))
                return K_STATUS;
        cr_assert(!strncmp(path, "msce:credential", 15), "bad path %s", path);
        return K_CREDENTIAL;
}

/* Parses with the parser of kind k; on success formats the result into *ret_json (when not
 * NULL) so that callers can check what was parsed. Checks *ret is untouched on failure. */
static int parse_kind(kind_t k, const char *body, size_t len, char err[MSG_ERR_MAX], char **ret_json) {
        union {
                msg_enrol_req_t e;
                msg_profile_t p;
                msg_status_t s;
                msg_credential_t c;
        } u, sentinel;
        int r, f;
        char *json = NULL;

        memset(&u, 0xa5, sizeof u);
        memset(&sentinel, 0xa5, sizeof sentinel);
        strcpy(err, "untouched");
        switch (k) {
        case K_ENROL:
                r = msg_enrol_req_parse(body, len, &u.e, err);
                f = r < 0 ? 0 : msg_enrol_req_format(&u.e, &json);
                break;
        case K_PROFILE:
                r = msg_profile_parse(body, len, &u.p, err);
                f = r < 0 ? 0 : msg_profile_format(&u.p, &json);
                break;
        case K_STATUS:
                r = msg_status_parse(body, len, &u.s, err);
                f = r < 0 ? 0 : msg_status_format(&u.s, &json);
                break;
        default:
                r = msg_credential_parse(body, len, &u.c, err);
                f = r < 0 ? 0 : msg_credential_format(&u.c, &json);
                break;
        }
        if (r < 0) {
                cr_assert(memcmp(&u, &sentinel, sizeof u) == 0, "*ret written on failure");
                cr_assert_str_neq(err, "untouched", "err not set");
        } else {
                cr_assert_eq(f, 0, "parsed message does not format: %d", f);
                cr_assert_str_eq(err, "");
        }
        if (ret_json)
                *ret_json = json;
        else if (json) {
                erase(json, strlen(json));
                free(json);
        }
        return r;
}

static int parse_str(kind_t k, const char *body, char err[MSG_ERR_MAX], char **ret_json) {
        return parse_kind(k, body, strlen(body), err, ret_json);
}

/* Sets the member at a dotted path ("msce:profile.targets[0].id") of the JSON text to value
 * (a JSON literal; NULL deletes it) and returns the new text. */
static char *mutate(const char *text, const char *path, const char *value) {
        json_error_t e;
        json_t *root = json_loads(text, 0, &e), *cur = root;
        json_t *v = value ? json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e) : NULL;
        char buf[256], *save = NULL;
        cr_assert_not_null(root);
        cr_assert(!value || v, "bad literal %s", value);
        snprintf(buf, sizeof buf, "%s", path);
        for (char *tok = strtok_r(buf, ".", &save); tok;) {
                char *next = strtok_r(NULL, ".", &save), *br = strchr(tok, '[');
                long idx = -1;
                if (br) {
                        idx = strtol(br + 1, NULL, 10);
                        *br = 0;
                }
                if (next || idx >= 0) {
                        cur = json_object_get(cur, tok);
                        cr_assert_not_null(cur, "%s: no %s", path, tok);
                }
                if (!next) {
                        int r;
                        if (idx >= 0)
                                r = v ? json_array_set_new(cur, (size_t) idx, v) : json_array_remove(cur, (size_t) idx);
                        else
                                r = v ? json_object_set_new(cur, tok, v) : json_object_del(cur, tok);
                        cr_assert_eq(r, 0, "%s", path);
                        break;
                }
                if (idx >= 0) {
                        cur = json_array_get(cur, (size_t) idx);
                        cr_assert_not_null(cur);
                }
                tok = next;
        }
        char *out = json_dumps(root, JSON_COMPACT);
        cr_assert_not_null(out);
        json_decref(root);
        return out;
}

/* Expects the example with path set to value to fail with "<path>: <reason>". */
static void expect_error(const char *path, const char *value, const char *reason) {
        kind_t k = kind_of(path);
        char err[MSG_ERR_MAX], want[MSG_ERR_MAX];
        _cleanup_free_ char *body = mutate(examples[k], path, value);
        snprintf(want, sizeof want, "%s: %s", path, reason);
        cr_assert_eq(parse_str(k, body, err, NULL), -EBADMSG, "%s = %s accepted", path, value ?: "(deleted)");
        cr_assert_str_eq(err, want, "%s = %s", path, value ?: "(deleted)");
}

/* Expects the example with path set to value to parse, and (when check is set) the
 * formatted result to contain check. */
static void expect_ok(const char *path, const char *value, const char *check) {
        kind_t k = kind_of(path);
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *body = mutate(examples[k], path, value), *json = NULL;
        cr_assert_eq(parse_str(k, body, err, &json), 0, "%s = %.60s: %s", path, value ?: "(deleted)", err);
        if (check)
                cr_assert_not_null(strstr(json, check), "%s = %.60s: '%s' not in %s", path, value, check, json);
}

/* A JSON string literal with the base64 of n bytes. */
static char *key_of(size_t n) {
        uint8_t k[128];
        char *b64 = NULL, *s = NULL;
        for (size_t i = 0; i < n; i++)
                k[i] = (uint8_t) (i * 7 + 1);
        cr_assert_eq(b64_encode(k, n, &b64), 0);
        cr_assert_gt(asprintf(&s, "\"%s\"", b64), 0);
        free(b64);
        return s;
}

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

Test(example, enrol_req) {
        msg_enrol_req_t m;
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *json = NULL;
        cr_assert_eq(msg_enrol_req_parse(enrol_example, strlen(enrol_example), &m, err), 0, "%s", err);
        cr_assert_str_eq(m.node_id, "urn:dev:ops:0004A3-MNGW-000123");
        cr_assert(m.has_loc && m.loc.has_alt);
        cr_assert_eq(m.loc.lat, 48.8584);
        cr_assert_eq(m.loc.lon, 2.2945);
        cr_assert_eq(m.loc.alt, 35.0);
        cr_assert_str_eq(m.prev, KEID);
        cr_assert_eq(msg_enrol_req_format(&m, &json), 0);
        cr_assert_str_eq(json, enrol_compact);
}

Test(example, profile) {
        msg_profile_t m;
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *json = NULL;
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
        cr_assert_eq(msg_profile_format(&m, &json), 0);
        cr_assert_str_eq(json, profile_compact);
        msg_profile_wipe(&m);
        cr_assert_eq(m.ltk_len, 0);
        assert_wiped(m.ltk, MSG_KEY_MAX);
        erase(json, strlen(json));
}

Test(example, status) {
        msg_status_t m;
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *json = NULL;
        cr_assert_eq(msg_status_parse(status_example, strlen(status_example), &m, err), 0, "%s", err);
        cr_assert_str_eq(m.ke_id, KEID);
        cr_assert_eq(m.state, MSG_STATE_ACTIVE);
        cr_assert_str_eq(m.exp, "20271127T203000");
        cr_assert_eq(m.exp_t, EXP_T);
        cr_assert_eq(m.poll, 3600);
        cr_assert_eq(msg_status_format(&m, &json), 0);
        cr_assert_str_eq(json, status_compact);
}

Test(example, credential) {
        msg_credential_t m;
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *json = NULL;
        cr_assert_eq(msg_credential_parse(credential_example, strlen(credential_example), &m, err), 0, "%s", err);
        cr_assert(m.status);
        cr_assert_eq(m.key_len, 32);
        assert_counting(m.key, 32, 100);
        cr_assert_str_eq(m.enrolee_id, "/mn-cse-000123");
        cr_assert_str_eq(m.lifetime, "20271127T203000");
        cr_assert_eq(m.lifetime_t, EXP_T);
        cr_assert_eq(msg_credential_format(&m, &json), 0);
        cr_assert_str_eq(json, credential_compact);
        msg_credential_wipe(&m);
        cr_assert_eq(m.key_len, 0);
        assert_wiped(m.key, MSG_KEY_MAX);
        erase(json, strlen(json));
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
                for (size_t i = 0; i < len; i++)
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

/* ---- missing members and wrong types ---- */

Test(missing, each_required_member) {
        static const char *const required[] = {
                "msce:enrolReq.nodeID", "msce:enrolReq.loc.lat", "msce:enrolReq.loc.lon",
                "msce:profile.cseID", "msce:profile.cseBase", "msce:profile.keID", "msce:profile.exp",
                "msce:profile.targets[0].id", "msce:profile.targets[0].kpsaID",
                "msce:status.keID", "msce:status.state", "msce:status.exp",
                "msce:credential.status", "msce:credential.key", "msce:credential.enroleeID",
                "msce:credential.lifetime",
        };
        for (size_t i = 0; i < ELEMENTSOF(required); i++)
                expect_error(required[i], NULL, "missing");
}

Test(missing, optional_members) {
        char err[MSG_ERR_MAX];
        expect_ok("msce:enrolReq.loc", NULL, NULL);
        expect_ok("msce:enrolReq.loc.alt", NULL, "{\"lat\":48.8584,\"lon\":2.2945}");
        expect_ok("msce:enrolReq.prev", NULL, "{\"msce:enrolReq\":{\"nodeID\":\"urn:dev:ops:0004A3-MNGW-000123\",\"loc\"");
        expect_ok("msce:profile.targets", NULL, NULL);
        expect_ok("msce:profile.poll", NULL, "\"poll\":86400");
        expect_ok("msce:status.poll", NULL, "\"poll\":86400");
        expect_ok("msce:profile.ltk", NULL, "\"poll\":3600}}");
        /* a failed credential may omit the rest */
        cr_assert_eq(parse_str(K_CREDENTIAL, "{\"msce:credential\":{\"status\":false,\"enroleeID\":\"/x\"}}", err, NULL), 0, "%s", err);
        cr_assert_eq(parse_str(K_CREDENTIAL, "{\"msce:credential\":{\"status\":false,\"key\":\"x\"}}", err, NULL), -EBADMSG);
        cr_assert_str_eq(err, "msce:credential.key: not valid base64");
}

Test(missing, wrappers) {
        static const char *const wrappers[] = { "msce:enrolReq", "msce:profile", "msce:status", "msce:credential" };
        for (kind_t k = K_ENROL; k <= K_CREDENTIAL; k++) {
                char err[MSG_ERR_MAX], want[64];
                snprintf(want, sizeof want, "%s: missing", wrappers[k]);
                cr_assert_eq(parse_str(k, "{}", err, NULL), -EBADMSG);
                cr_assert_str_eq(err, want);
                /* another message's wrapper is not ours */
                cr_assert_eq(parse_str(k, examples[(k + 1) % 4], err, NULL), -EBADMSG);
                cr_assert_str_eq(err, want);
                snprintf(want, sizeof want, "%s: body is not a JSON object", wrappers[k]);
                cr_assert_eq(parse_str(k, "[{}]", err, NULL), -EBADMSG);
                cr_assert_str_eq(err, want);
                snprintf(want, sizeof want, "%s: not an object", wrappers[k]);
                _cleanup_free_ char *body = mutate(examples[k], wrappers[k], "[]");
                cr_assert_eq(parse_str(k, body, err, NULL), -EBADMSG);
                cr_assert_str_eq(err, want);
        }
}

Test(types, each_member) {
        static const struct {
                const char *path, *value, *reason;
        } cases[] = {
                { "msce:enrolReq.nodeID", "42", "not a string" },
                { "msce:enrolReq.nodeID", "null", "not a string" },
                { "msce:enrolReq.nodeID", "[\"a\"]", "not a string" },
                { "msce:enrolReq.loc", "[48.8, 2.2]", "not an object" },
                { "msce:enrolReq.loc", "\"48.8,2.2\"", "not an object" },
                { "msce:enrolReq.loc.lat", "\"48.8\"", "not a number" },
                { "msce:enrolReq.loc.lon", "true", "not a number" },
                { "msce:enrolReq.loc.alt", "null", "not a number" },
                { "msce:enrolReq.prev", "{}", "not a string" },
                { "msce:profile.cseID", "1", "not a string" },
                { "msce:profile.cseBase", "false", "not a string" },
                { "msce:profile.keID", "{\"k\":\"v\"}", "not a string" },
                { "msce:profile.exp", "20271127203000", "not a string" },
                { "msce:profile.targets", "{}", "not an array" },
                { "msce:profile.targets", "\"/in-cse\"", "not an array" },
                { "msce:profile.targets[0]", "\"/in-cse\"", "not an object" },
                { "msce:profile.targets[0]", "[]", "not an object" },
                { "msce:profile.targets[0].id", "7", "not a string" },
                { "msce:profile.targets[0].kpsaID", "null", "not a string" },
                { "msce:profile.poll", "\"3600\"", "not an integer" },
                { "msce:profile.poll", "3600.0", "not an integer" },
                { "msce:profile.poll", "3600.5", "not an integer" },
                { "msce:profile.poll", "null", "not an integer" },
                { "msce:profile.ltk", "[1,2,3]", "not a string" },
                { "msce:status.keID", "3", "not a string" },
                { "msce:status.state", "0", "not a string" },
                { "msce:status.exp", "null", "not a string" },
                { "msce:status.poll", "true", "not an integer" },
                { "msce:credential.status", "\"true\"", "not a boolean" },
                { "msce:credential.status", "1", "not a boolean" },
                { "msce:credential.status", "null", "not a boolean" },
                { "msce:credential.key", "[]", "not a string" },
                { "msce:credential.enroleeID", "{}", "not a string" },
                { "msce:credential.lifetime", "1827347400", "not a string" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                expect_error(cases[i].path, cases[i].value, cases[i].reason);
}

Test(types, numbers_real_or_integer) {
        expect_ok("msce:enrolReq.loc.lat", "48", "\"lat\":48.0");
        expect_ok("msce:enrolReq.loc.lon", "-2", "\"lon\":-2.0");
        expect_ok("msce:enrolReq.loc.alt", "-12", "\"alt\":-12.0");
        expect_ok("msce:enrolReq.loc.alt", "1e3", "\"alt\":1000.0");
        expect_ok("msce:enrolReq.loc.lat", "4.88584e1", "\"lat\":48.8584");
}

/* ---- unknown members ---- */

Test(unknown, ignored_at_every_level) {
        static const char *const unknown[] = {
                "extra", "msce:enrolReq.extra", "msce:enrolReq.loc.extra",
                "msce:profile.extra", "msce:profile.targets[0].extra", "msce:profile.LTK",
                "msce:status.extra", "msce:credential.extra", "msce:credential.Key",
        };
        static const char *const values[] = {
                "null", "1", "\"x\"", "[1, {\"a\": [true]}]", "{\"keID\": 5, \"ltk\": []}", "1.5e300",
        };
        for (size_t i = 0; i < ELEMENTSOF(unknown); i++) {
                kind_t k = streq(unknown[i], "extra") ? K_PROFILE : kind_of(unknown[i]);
                for (size_t j = 0; j < ELEMENTSOF(values); j++) {
                        _cleanup_free_ char *body = mutate(examples[k], unknown[i], values[j]), *json = NULL;
                        char err[MSG_ERR_MAX];
                        static const char *const compact[] = { enrol_compact, profile_compact, status_compact,
                                                               credential_compact };
                        cr_assert_eq(parse_str(k, body, err, &json), 0, "%s: %s", body, err);
                        /* what was parsed is exactly the example */
                        cr_assert_str_eq(json, compact[k], "%s", body);
                }
        }
        char err[MSG_ERR_MAX];
        cr_assert_eq(parse_str(K_STATUS, "{\"m2m:dbg\":\"x\",\"msce:status\":{\"keID\":\"a@b\",\"state\":\"revoked\","
                                         "\"exp\":\"20271127T203000\",\"a\":{},\"b\":[]}}", err, NULL), 0, "%s", err);
}

/* ---- duplicates, bad JSON ---- */

Test(json, duplicates_rejected) {
        static const char *const bodies[] = {
                "{\"msce:status\":{\"keID\":\"a@b\",\"keID\":\"c@d\",\"state\":\"active\",\"exp\":\"20271127T203000\"}}",
                ("{\"msce:status\":{\"keID\":\"a@b\",\"state\":\"active\",\"exp\":\"20271127T203000\"},"
                 "\"msce:status\":{\"keID\":\"a@b\",\"state\":\"active\",\"exp\":\"20271127T203000\"}}"),
                "{\"msce:status\":{\"keID\":\"a@b\",\"state\":\"active\",\"exp\":\"20271127T203000\",\"x\":{\"y\":1,\"y\":1}}}",
                "{\"x\":[{\"y\":1,\"y\":2}],\"msce:status\":{\"keID\":\"a@b\",\"state\":\"active\",\"exp\":\"20271127T203000\"}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
                char err[MSG_ERR_MAX];
                cr_assert_eq(parse_str(K_STATUS, bodies[i], err, NULL), -EBADMSG, "%s", bodies[i]);
                cr_assert(strstr(err, "msce:status: invalid JSON: duplicate member at line 1 column") == err, "%s", err);
        }
        char err[MSG_ERR_MAX];
        cr_assert_eq(parse_str(K_PROFILE,
                               "{\"msce:profile\":{\"cseID\":\"/c\",\"cseBase\":\"u\",\"keID\":\"a@b\",\"exp\":\"20271127T203000\","
                               "\"targets\":[{\"id\":\"/t\",\"kpsaID\":\"a@b\",\"id\":\"/u\"}]}}",
                               err, NULL),
                     -EBADMSG);
        cr_assert_not_null(strstr(err, "duplicate member"), "%s", err);
        cr_assert_eq(parse_str(K_PROFILE, "{\"msce:profile\":{\"ltk\":\"" LTK_B64 "\",\"ltk\":\"" LTK_B64 "\"}}", err, NULL),
                     -EBADMSG);
        cr_assert_not_null(strstr(err, "duplicate member"), "%s", err);
}

Test(json, syntax_errors) {
        static const struct {
                const char *body;
                size_t len;
                const char *reason;
        } cases[] = {
                { "", 0, "premature end of input" },
                { "{\"msce:status\":", 15, "premature end of input" },
                { "{} {}", 5, "trailing data" },
                { "{\"a\":1,}", 8, "syntax error" },
                { "{'a':1}", 7, "syntax error" },
                { "{\"a\":\"\\u0000\"}", 13, "NUL character" },
                { "{\"a\":1}\0{", 9, "trailing data" },
                { "{\"a\":\"\xc3\x28\"}", 9, "invalid UTF-8" },
                { "{\"a\":1e999}", 11, "number out of range" },
                { "{\"a\":99999999999999999999}", 26, "number out of range" },
                { "\"msce:status\"", 13, "syntax error" },
                { "{\"a\":NaN}", 9, "syntax error" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char err[MSG_ERR_MAX], want[128];
                snprintf(want, sizeof want, "msce:status: invalid JSON: %s at line", cases[i].reason);
                cr_assert_eq(parse_kind(K_STATUS, cases[i].body, cases[i].len, err, NULL), -EBADMSG, "case %zu", i);
                cr_assert(strncmp(err, want, strlen(want)) == 0, "case %zu: %s", i, err);
        }
        /* NULL body, NULL err */
        msg_status_t m;
        cr_assert_eq(msg_status_parse(NULL, 0, &m, NULL), -EBADMSG);
        cr_assert_eq(msg_status_parse(status_example, strlen(status_example), &m, NULL), 0);
        cr_assert_eq(msg_status_parse("{}", 2, &m, NULL), -EBADMSG);
}

Test(json, body_not_nul_terminated) {
        /* the parser must stop at len: a copy without terminator, and a prefix of the example */
        size_t n = strlen(status_compact);
        char *copy = malloc(n);
        char err[MSG_ERR_MAX];
        memcpy(copy, status_compact, n);
        cr_assert_eq(parse_kind(K_STATUS, copy, n, err, NULL), 0, "%s", err);
        cr_assert_eq(parse_kind(K_STATUS, copy, n - 1, err, NULL), -EBADMSG);
        free(copy);
}

/* ---- limits ---- */

/* A JSON string literal holding a valid value of n characters for the identifier rule of kind
 * (proto/ids.h): 'a's, with what the grammar needs. */
typedef enum vkind {
        V_NODE,   /* M2M-Node-ID */
        V_CSE,    /* CSE-ID, target ID */
        V_URI,    /* cseBase */
        V_KEID,   /* KeID, kpsaID */
} vkind_t;

static char *valid_of(vkind_t k, size_t n) {
        char *s = malloc(n + 3);
        cr_assert_not_null(s);
        s[0] = '"';
        memset(s + 1, 'a', n);
        s[n + 1] = '"';
        s[n + 2] = 0;
        char *v = s + 1;
        if (k == V_CSE)
                v[0] = '/';
        else if (k == V_URI)
                memcpy(v, "https://h/", 10);
        else if (k == V_KEID) {
                /* hex "@" host: the host as long as it may be (253), labels of 63 */
                size_t host = MIN(n - 2, (size_t) 253), rel = n - 1 - host;
                v[rel] = '@';
                for (size_t i = 63; i < host - 1; i += 64)
                        v[rel + 1 + i] = '.';
        }
        return s;
}

Test(limits, strings) {
        static const struct {
                const char *path;
                size_t max;
                vkind_t kind;
                const char *bad, *why; /* a value against the grammar, and the reason given */
        } cases[] = {
                { "msce:enrolReq.nodeID", MSG_ID_MAX, V_NODE, "\"-x\"",
                  "not an M2M-Node-ID (must start with a letter or a digit)" },
                { "msce:enrolReq.prev", MSG_KEID_MAX, V_KEID, "\"3f2a9c0d4e5b6a7980a1b2c3d4e5f601\"",
                  "not a KeID (lower-case hex, '@', a host name)" },
                { "msce:profile.cseID", MSG_ID_MAX, V_CSE, "\"mn-781\"",
                  "not an SP-relative CSE-ID (must start with '/')" },
                { "msce:profile.cseBase", MSG_URI_MAX, V_URI, "\"in.example.net\"",
                  "not an absolute URI with scheme http, https, coap, coaps, mqtt, mqtts, ws or wss" },
                { "msce:profile.keID", MSG_KEID_MAX, V_KEID, "\"3F2A@mef\"",
                  "not a KeID (lower-case hex, '@', a host name)" },
                { "msce:profile.targets[0].id", MSG_ID_MAX, V_CSE, "\"/in-cse/../../x\"", "'.' or '..' segment" },
                { "msce:profile.targets[0].kpsaID", MSG_KEID_MAX, V_KEID, "\"../../../../etc/passwd@mef\"",
                  "not a kpsaID (lower-case hex, optional .<n>, '@', a host name)" },
                { "msce:status.keID", MSG_KEID_MAX, V_KEID, "\"3f2a@MEF\"",
                  "not a KeID: the part after '@' is not a lower-case host name or IP address" },
                { "msce:credential.enroleeID", MSG_ID_MAX, V_CSE, "\"/mn-$(id)`id`;reboot\"",
                  "not a CSE-ID ('/' and A-Z a-z 0-9 - . _ ~)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *p = cases[i].path;
                char reason[64];
                _cleanup_free_ char *at_max = valid_of(cases[i].kind, cases[i].max),
                                    *over = valid_of(cases[i].kind, cases[i].max + 1);
                expect_ok(p, at_max, at_max);
                snprintf(reason, sizeof reason, "too long (max %zu)", cases[i].max);
                expect_error(p, over, reason);
                expect_error(p, "\"\"", "empty");
                /* the shared rules come first, and say what they are */
                expect_error(p, "\"/a b@c\"", "contains a space");
                expect_error(p, "\"/a\\tb@c\"", "contains a control character");
                expect_error(p, "\"/a\\u007fb@c\"", "contains a control character");
                expect_error(p, "\"/caf\\u00e9@c\"", "contains a non-ASCII character");
                expect_error(p, cases[i].bad, cases[i].why);
        }
}

Test(limits, times) {
        static const char *const paths[] = { "msce:profile.exp", "msce:status.exp", "msce:credential.lifetime" };
        static const char *const bad[] = {
                "\"20270230T000000\"", "\"20271301T000000\"", "\"2027-11-27T20:30:00\"", "\"20271127T203000Z\"",
                "\"20271127T20300\"", "\"\"", "\"2027112xT203000\"", "\"20271127T203000\\u0000\"",
        };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                expect_ok(paths[i], "\"20280229T235959\"", "\"20280229T235959\"");
                expect_ok(paths[i], "\"00000101T000000\"", "\"00000101T000000\"");
                expect_ok(paths[i], "\"99991231T235959\"", "\"99991231T235959\"");
                for (size_t j = 0; j < ELEMENTSOF(bad); j++) {
                        if (strstr(bad[j], "u0000"))
                                continue; /* NUL: rejected as invalid JSON, below */
                        expect_error(paths[i], bad[j], "not a UTC time YYYYMMDDTHHMMSS");
                }
        }
}

Test(limits, poll) {
        static const char *const paths[] = { "msce:profile.poll", "msce:status.poll" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                const char *range = "out of range (10..31622400)";
                expect_ok(paths[i], "10", i == 0 ? "\"poll\":10," : "\"poll\":10}");
                expect_ok(paths[i], "31622400", "\"poll\":31622400");
                expect_error(paths[i], "9", range);
                expect_error(paths[i], "31622401", range);
                expect_error(paths[i], "0", range);
                expect_error(paths[i], "-3600", range);
                expect_error(paths[i], "9223372036854775807", range);
                expect_error(paths[i], "-9223372036854775807", range);
        }
        cr_assert_eq(MSG_POLL_MAX, 31622400);
}

Test(limits, loc) {
        expect_ok("msce:enrolReq.loc.lat", "90", "\"lat\":90.0");
        expect_ok("msce:enrolReq.loc.lat", "-90.0", "\"lat\":-90.0");
        expect_ok("msce:enrolReq.loc.lat", "-0.0", "\"lat\":-0.0");
        expect_error("msce:enrolReq.loc.lat", "90.00000000000001", "out of range (-90..90)");
        expect_error("msce:enrolReq.loc.lat", "-90.00000000000001", "out of range (-90..90)");
        expect_error("msce:enrolReq.loc.lat", "1e300", "out of range (-90..90)");
        expect_ok("msce:enrolReq.loc.lon", "180", "\"lon\":180.0");
        expect_ok("msce:enrolReq.loc.lon", "-180", "\"lon\":-180.0");
        expect_error("msce:enrolReq.loc.lon", "180.00000000000003", "out of range (-180..180)");
        expect_error("msce:enrolReq.loc.lon", "-181", "out of range (-180..180)");
        /* exact values of extremes: round_trip::enrol_req */
        expect_ok("msce:enrolReq.loc.alt", "1.7976931348623157e308", "\"alt\":1.7976931348623157e308");
        expect_ok("msce:enrolReq.loc.alt", "-1.7976931348623157e308", "\"alt\":-1.7976931348623157e308");
        expect_ok("msce:enrolReq.loc.alt", "5e-324", "\"alt\":4.94066e-324");
}

Test(limits, keys) {
        static const char *const paths[] = { "msce:profile.ltk", "msce:credential.key" };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                const char *len = "wrong length (16..64 bytes)", *b64 = "not valid base64";
                _cleanup_free_ char *k16 = key_of(16), *k64 = key_of(64), *k15 = key_of(15), *k65 = key_of(65),
                                    *k1 = key_of(1), *k100 = key_of(100);
                expect_ok(paths[i], k16, k16);
                expect_ok(paths[i], k64, k64);
                expect_error(paths[i], k15, len);
                expect_error(paths[i], k65, len);
                expect_error(paths[i], k1, len);
                expect_error(paths[i], k100, len);
                expect_error(paths[i], "\"\"", b64);
                expect_error(paths[i], "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\"", b64); /* no padding */
                expect_error(paths[i], "\"AAECAwQFBgcICQoL DA0ODxAREhMUFRYXGBkaGxwdHh8=\"", b64);
                expect_error(paths[i], "\"AAECAwQFBgcICQoL\\nDA0ODxAREhMUFRYXGBkaGxwdHh8=\"", b64);
                expect_error(paths[i], "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd-h8=\"", b64); /* base64url */
                expect_error(paths[i], "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd\\u00e98=\"", b64);
                expect_error(paths[i], "\"AAECAwQFBgcICQoLDA0ODxAR==MUFRYXGBkaGxwdHh8=\"", b64);
        }
}

Test(limits, targets) {
        char err[MSG_ERR_MAX];
        for (size_t n = 0; n <= MSG_TARGETS_MAX + 1; n++) {
                char targets[4096] = "[";
                for (size_t i = 0; i < n; i++) {
                        char t[64];
                        snprintf(t, sizeof t, "%s{\"id\":\"/t%zu\",\"kpsaID\":\"a.%zu@mef\"}", i ? "," : "", i, i + 1);
                        strcat(targets, t);
                }
                strcat(targets, "]");
                _cleanup_free_ char *body = mutate(profile_example, "msce:profile.targets", targets), *json = NULL;
                int r = parse_str(K_PROFILE, body, err, &json);
                if (n > MSG_TARGETS_MAX) {
                        cr_assert_eq(r, -EBADMSG);
                        cr_assert_str_eq(err, "msce:profile.targets: too many (max 16)");
                        continue;
                }
                cr_assert_eq(r, 0, "%zu targets: %s", n, err);
                if (n == 0)
                        cr_assert_null(strstr(json, "targets"), "empty targets are not written");
                else
                        cr_assert_not_null(strstr(json, targets), "%s", json);
                erase(json, strlen(json));
        }
        /* the error names the element */
        expect_error("msce:profile.targets[0].kpsaID", "\"no-at\"",
                     "not a kpsaID (lower-case hex, optional .<n>, '@', a host name)");
        _cleanup_free_ char *body = mutate(profile_example, "msce:profile.targets",
                                           "[{\"id\":\"/a\",\"kpsaID\":\"a@b\"},{\"id\":\"/b\",\"kpsaID\":\"a@b\"},"
                                           "{\"id\":\"/c\",\"kpsaID\":\"" "0123456789012345678901234567890123456789"
                                           "0123456789012345678901234567890123456789012345678901234567890123456789"
                                           "0123456789012345678901234567890123456789012345678901234567890123456789"
                                           "0123456789012345678901234567890123456789012345678901234567890123456789"
                                           "0123456789012345678901234567890123456789012345678901234567890123@m\"}]");
        cr_assert_eq(parse_str(K_PROFILE, body, err, NULL), -EBADMSG);
        cr_assert_str_eq(err, "msce:profile.targets[2].kpsaID: too long (max 300)");
}

Test(limits, state) {
        expect_ok("msce:status.state", "\"reenrol\"", "\"state\":\"reenrol\"");
        expect_ok("msce:status.state", "\"revoked\"", "\"state\":\"revoked\"");
        static const char *const bad[] = { "\"Active\"", "\"\"", "\"active \"", "\"re-enrol\"", "\"activ\"" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                expect_error("msce:status.state", bad[i], "not one of active, reenrol, revoked");
}

/* A valid status body of exactly len bytes (padded with spaces, which JSON allows). */
static char *status_padded(size_t len) {
        size_t n = strlen(status_compact);
        cr_assert_geq(len, n);
        char *b = malloc(len);
        cr_assert_not_null(b);
        memset(b, ' ', len);
        memcpy(b, status_compact, n);
        return b;
}

Test(limits, body_size) {
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *max = status_padded(MSG_BODY_MAX), *over = status_padded(MSG_BODY_MAX + 1);
        cr_assert_eq(MSG_BODY_MAX, 65536);
        cr_assert_eq(parse_kind(K_STATUS, max, MSG_BODY_MAX, err, NULL), 0, "%s", err);
        cr_assert_eq(parse_kind(K_STATUS, over, MSG_BODY_MAX + 1, err, NULL), -EMSGSIZE);
        cr_assert_str_eq(err, "msce:status: body too large (max 65536 bytes)");
        cr_assert_eq(parse_kind(K_PROFILE, over, MSG_BODY_MAX + 1, err, NULL), -EMSGSIZE);
        cr_assert_eq(parse_kind(K_ENROL, over, SIZE_MAX, err, NULL), -EMSGSIZE);
        msg_credential_t c;
        cr_assert_eq(msg_credential_parse(over, MSG_BODY_MAX + 1, &c, NULL), -EMSGSIZE);
        char out[MSG_DBG_MAX] = "x";
        msg_dbg_parse(over, MSG_BODY_MAX + 1, out);
        cr_assert_str_eq(out, "");
}

/* {"msce:status":{...,"x":[[...]]}} with the given total depth */
static char *status_nested(unsigned depth) {
        size_t n = strlen(status_compact);
        char *b = malloc(n + 2 * depth + 16);
        cr_assert_not_null(b);
        memcpy(b, status_compact, n - 2);
        char *p = b + n - 2;
        p += sprintf(p, ",\"x\":");
        for (unsigned i = 2; i < depth; i++)
                *p++ = '[';
        for (unsigned i = 2; i < depth; i++)
                *p++ = ']';
        strcpy(p, "}}");
        return b;
}

Test(limits, nesting) {
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *ok = status_nested(MSG_DEPTH_MAX), *deep = status_nested(MSG_DEPTH_MAX + 1),
                            *deeper = status_nested(3000);
        cr_assert_eq(parse_str(K_STATUS, ok, err, NULL), 0, "%s: %s", ok, err);
        cr_assert_eq(parse_str(K_STATUS, deep, err, NULL), -EBADMSG);
        cr_assert_str_eq(err, "msce:status: nesting too deep (max 16)");
        cr_assert_eq(parse_str(K_STATUS, deeper, err, NULL), -EBADMSG);
        cr_assert_str_eq(err, "msce:status: nesting too deep (max 16)");
        char out[MSG_DBG_MAX] = "x";
        msg_dbg_parse(deep, strlen(deep), out);
        cr_assert_str_eq(out, "");

        /* objects count too: {"msce:status":{...,"x":{"x":...1}}} */
        for (unsigned depth = MSG_DEPTH_MAX; depth <= MSG_DEPTH_MAX + 1; depth++) {
                char body[1024];
                int n = snprintf(body, sizeof body, "%.*s", (int) strlen(status_compact) - 2, status_compact);
                for (unsigned i = 2; i < depth; i++)
                        n += snprintf(body + n, sizeof body - (size_t) n, ",\"x\":{\"a\":0");
                for (unsigned i = 0; i < depth; i++)
                        body[n++] = '}';
                body[n] = 0;
                int r = parse_str(K_STATUS, body, err, NULL);
                if (depth == MSG_DEPTH_MAX)
                        cr_assert_eq(r, 0, "%s: %s", body, err);
                else {
                        cr_assert_eq(r, -EBADMSG);
                        cr_assert_str_eq(err, "msce:status: nesting too deep (max 16)");
                }
        }

        /* brackets inside strings (also after escaped quotes) do not count */
        _cleanup_free_ char *s = malloc(1000);
        strcpy(s, "{\"msce:status\":{\"keID\":\"a@b\",\"state\":\"active\",\"exp\":\"20271127T203000\",\"x\":\"\\\"");
        for (int i = 0; i < 100; i++)
                strcat(s, "[{");
        strcat(s, "\\\\\"}}");
        cr_assert_eq(parse_str(K_STATUS, s, err, NULL), 0, "%s: %s", s, err);
}

/* ---- secrets never in err ---- */

/* tmpl with every "%s" replaced by key (no printf: the templates are data) */
static char *subst(const char *tmpl, const char *key) {
        char *out = malloc(strlen(tmpl) * (strlen(key) + 1) + 1), *p = out;
        cr_assert_not_null(out);
        for (const char *t = tmpl; *t;)
                if (t[0] == '%' && t[1] == 's') {
                        p = stpcpy(p, key);
                        t += 2;
                } else
                        *p++ = *t++;
        *p = 0;
        return out;
}

static void assert_no_key(const char *err, const char *b64) {
        char prefix[13];
        cr_assert_null(strstr(err, b64), "key in err: %s", err);
        snprintf(prefix, sizeof prefix, "%s", b64);
        cr_assert_null(strstr(err, prefix), "key prefix in err: %s", err);
}

Test(secrets, err_never_contains_key) {
        static const char b64_15[] = "AQIDBAUGBwgJCgsMDQ4P";                       /* 15 bytes */
        static const char b64_bad[] = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8*"; /* bad char */
        static const char *const keys[] = { LTK_B64, b64_15, b64_bad };
        static const char *const fmts[] = {
                "{\"msce:profile\":{\"ltk\":\"%s\"}}",                        /* other members missing */
                "{\"msce:profile\":{\"cseID\":\"/c\",\"cseBase\":\"u\",\"keID\":\"a@b\",\"exp\":\"2027\",\"ltk\":\"%s\"}}",
                "{\"msce:profile\":{\"ltk\":\"%s\",\"ltk\":1}}",               /* duplicate */
                "{\"msce:profile\":{\"ltk\":\"%s\"",                           /* truncated */
                "{\"msce:profile\":{\"ltk\":\"%s",                             /* truncated in the string */
                "{\"msce:profile\":{\"ltk\":\"%s\"}} trailing",
                "{\"msce:profile\":{\"ltk\":\"%s\\x\"}}",                      /* bad escape */
                "{\"msce:profile\":{\"ltk\":\"%s\xff\"}}",                     /* bad UTF-8 */
                "{\"msce:profile\":{\"ltk\":%s}}",                             /* unquoted */
                "{\"msce:credential\":{\"status\":true,\"key\":\"%s\",\"enroleeID\":\"/x\",\"lifetime\":\"x\"}}",
                "{\"msce:credential\":{\"status\":true,\"key\":\"%s\"}}",
                "{\"msce:credential\":{\"status\":true,\"key\":\"%s\",\"key\":\"%s\"}}",
                "{\"msce:credential\":{\"key\":\"%s\"",
        };
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                for (size_t j = 0; j < ELEMENTSOF(fmts); j++) {
                        _cleanup_free_ char *body = subst(fmts[j], keys[i]);
                        char err[MSG_ERR_MAX];
                        kind_t k = strstr(body, "msce:profile") ? K_PROFILE : K_CREDENTIAL;
                        cr_assert_eq(parse_str(k, body, err, NULL), -EBADMSG, "%s", body);
                        assert_no_key(err, keys[i]);
                }
}

/* ---- dbg ---- */

Test(dbg, sanitised_and_truncated) {
        char out[MSG_DBG_MAX];
        static const struct {
                const char *body, *want;
        } cases[] = {
                { "{\"m2m:dbg\":\"\\u001b[31mred\\u0007\"}", "?[31mred?" },
                { "{\"m2m:dbg\":\"caf\\u00e9\"}", "caf??" },
                { "{\"m2m:dbg\":\"line1\\nline2\\r\"}", "line1?line2?" },
                { "{\"m2m:dbg\":\"del\\u007f\"}", "del?" },
                { "{\"m2m:dbg\":\"\",\"x\":1}", "" },
                { "{\"m2m:dbg\":42}", "" },
                { "{\"m2m:dbg\":null}", "" },
                { "{\"m2m:dbg\":[\"a\"]}", "" },
                { "{\"other\":\"a\"}", "" },
                { "[\"m2m:dbg\"]", "" },
                { "<html>Bad Gateway</html>", "" },
                { "{\"m2m:dbg\":\"a\",\"m2m:dbg\":\"b\"}", "" },
                { "{\"m2m:dbg\":\"ok\"} x", "" },
                { "", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                memset(out, 'z', sizeof out);
                msg_dbg_parse(cases[i].body, strlen(cases[i].body), out);
                cr_assert_str_eq(out, cases[i].want, "case %zu", i);
        }
        memset(out, 'z', sizeof out);
        msg_dbg_parse(NULL, 0, out);
        cr_assert_str_eq(out, "");

        /* long reasons: truncated to MSG_DBG_MAX - 1 */
        for (size_t len = MSG_DBG_MAX - 2; len <= MSG_DBG_MAX + 1; len++) {
                _cleanup_free_ char *reason = malloc(len + 1), *json = NULL;
                memset(reason, 'r', len);
                reason[len] = 0;
                cr_assert_eq(msg_dbg_format(reason, &json), 0);
                memset(out, 'z', sizeof out);
                msg_dbg_parse(json, strlen(json), out);
                cr_assert_eq(strlen(out), MIN(len, MSG_DBG_MAX - 1));
                cr_assert(strncmp(out, reason, strlen(out)) == 0);
        }
}

/* ---- formatter input checks ---- */

Test(format, rejects_invalid_structs) {
        char *json = NULL;
        msg_enrol_req_t e = { .node_id = "" };
        cr_assert_eq(msg_enrol_req_format(&e, &json), -EINVAL);
        strcpy(e.node_id, "n");
        strcpy(e.prev, "no-at");
        cr_assert_eq(msg_enrol_req_format(&e, &json), -EINVAL);
        e.prev[0] = 0;
        e.has_loc = true;
        e.loc.lat = 91;
        cr_assert_eq(msg_enrol_req_format(&e, &json), -EINVAL);
        e.loc.lat = NAN;
        cr_assert_eq(msg_enrol_req_format(&e, &json), -EINVAL);
        e.loc.lat = 0;
        e.loc.has_alt = true;
        e.loc.alt = INFINITY;
        cr_assert_eq(msg_enrol_req_format(&e, &json), -EINVAL);
        e.loc.alt = 1;
        cr_assert_eq(msg_enrol_req_format(&e, &json), 0);
        free(TAKE_PTR(json));
        memset(e.node_id, 'a', sizeof e.node_id); /* unterminated */
        cr_assert_eq(msg_enrol_req_format(&e, &json), -EINVAL);

        msg_profile_t p = { .cse_id = "/c", .cse_base = "https://u", .ke_id = "a@b", .exp = "20271127T203000", .poll = 3600 };
        cr_assert_eq(msg_profile_format(&p, &json), 0);
        free(TAKE_PTR(json));
        p.poll = 0;
        cr_assert_eq(msg_profile_format(&p, &json), -EINVAL);
        p.poll = 3600;
        p.n_targets = MSG_TARGETS_MAX + 1;
        cr_assert_eq(msg_profile_format(&p, &json), -EINVAL);
        p.n_targets = 1; /* target with empty id */
        cr_assert_eq(msg_profile_format(&p, &json), -EINVAL);
        p.n_targets = 0;
        p.has_ltk = true;
        p.ltk_len = MSG_KEY_MIN - 1;
        cr_assert_eq(msg_profile_format(&p, &json), -EINVAL);
        p.ltk_len = MSG_KEY_MAX + 1;
        cr_assert_eq(msg_profile_format(&p, &json), -EINVAL);
        p.has_ltk = false;
        strcpy(p.exp, "20270230T000000");
        cr_assert_eq(msg_profile_format(&p, &json), -EINVAL);
        strcpy(p.exp, "2027");
        cr_assert_eq(msg_profile_format(&p, &json), -EINVAL);

        msg_status_t s = { .ke_id = "a@b", .state = _MSG_STATE_MAX, .exp = "20271127T203000", .poll = 3600 };
        cr_assert_eq(msg_status_format(&s, &json), -EINVAL);
        s.state = MSG_STATE_REVOKED;
        s.poll = MSG_POLL_MAX + 1;
        cr_assert_eq(msg_status_format(&s, &json), -EINVAL);

        msg_credential_t c = { .status = true, .enrolee_id = "/x", .lifetime = "20271127T203000" };
        cr_assert_eq(msg_credential_format(&c, &json), -EINVAL, "status true needs a key");
        c.key_len = 16;
        cr_assert_eq(msg_credential_format(&c, &json), 0);
        free(TAKE_PTR(json));
        c.enrolee_id[0] = 0;
        cr_assert_eq(msg_credential_format(&c, &json), -EINVAL);
        cr_assert_null(json);
}

/* SPDX-License-Identifier: MIT */
/* Messages: what the parsers accept and refuse: missing members, wrong types, unknown members,
 * duplicates and bad JSON, the limits of every member, the body size and the nesting depth. */
#include "tests/unit/msg-fixture.h"

/* A value at a member and what the parser makes of it: accepted (and the formatted result
 * contains json, when set) or refused with why. cls: the test that checks it. */
#define ACCEPT(cls, path, value, json) { cls, path, value, json, NULL }
#define REFUSE(cls, path, value, why) { cls, path, value, NULL, why }
static const struct value_case {
        const char *cls, *path, *value, *json, *why;
} value_cases[] = {
        ACCEPT("optional", "msce:enrolReq.loc", NULL, NULL),
        ACCEPT("optional", "msce:enrolReq.loc.alt", NULL, "{\"lat\":48.8584,\"lon\":2.2945}"),
        ACCEPT("optional", "msce:enrolReq.prev", NULL, "{\"msce:enrolReq\":{\"nodeID\":\"urn:dev:ops:0004A3-MNGW-000123\",\"loc\""),
        ACCEPT("optional", "msce:profile.targets", NULL, NULL),
        ACCEPT("optional", "msce:profile.poll", NULL, "\"poll\":86400"),
        ACCEPT("optional", "msce:status.poll", NULL, "\"poll\":86400"),
        ACCEPT("optional", "msce:profile.ltk", NULL, "\"poll\":3600}}"),
        ACCEPT("numbers", "msce:enrolReq.loc.lat", "48", "\"lat\":48.0"),
        ACCEPT("numbers", "msce:enrolReq.loc.lon", "-2", "\"lon\":-2.0"),
        ACCEPT("numbers", "msce:enrolReq.loc.alt", "-12", "\"alt\":-12.0"),
        ACCEPT("numbers", "msce:enrolReq.loc.alt", "1e3", "\"alt\":1000.0"),
        ACCEPT("numbers", "msce:enrolReq.loc.lat", "4.88584e1", "\"lat\":48.8584"),
        ACCEPT("loc", "msce:enrolReq.loc.lat", "90", "\"lat\":90.0"),
        ACCEPT("loc", "msce:enrolReq.loc.lat", "-90.0", "\"lat\":-90.0"),
        ACCEPT("loc", "msce:enrolReq.loc.lat", "-0.0", "\"lat\":-0.0"),
        REFUSE("loc", "msce:enrolReq.loc.lat", "90.00000000000001", "out of range (-90..90)"),
        REFUSE("loc", "msce:enrolReq.loc.lat", "-90.00000000000001", "out of range (-90..90)"),
        REFUSE("loc", "msce:enrolReq.loc.lat", "1e300", "out of range (-90..90)"),
        ACCEPT("loc", "msce:enrolReq.loc.lon", "180", "\"lon\":180.0"),
        ACCEPT("loc", "msce:enrolReq.loc.lon", "-180", "\"lon\":-180.0"),
        REFUSE("loc", "msce:enrolReq.loc.lon", "180.00000000000003", "out of range (-180..180)"),
        REFUSE("loc", "msce:enrolReq.loc.lon", "-181", "out of range (-180..180)"),
        /* exact values of extremes: round_trip::enrol_req */
        ACCEPT("loc", "msce:enrolReq.loc.alt", "1.7976931348623157e308", "\"alt\":1.7976931348623157e308"),
        ACCEPT("loc", "msce:enrolReq.loc.alt", "-1.7976931348623157e308", "\"alt\":-1.7976931348623157e308"),
        ACCEPT("loc", "msce:enrolReq.loc.alt", "5e-324", "\"alt\":4.94066e-324"),
        ACCEPT("state", "msce:status.state", "\"reenrol\"", "\"state\":\"reenrol\""),
        ACCEPT("state", "msce:status.state", "\"revoked\"", "\"state\":\"revoked\""),
        REFUSE("state", "msce:status.state", "\"Active\"", "not one of active, reenrol, revoked"),
        REFUSE("state", "msce:status.state", "\"\"", "not one of active, reenrol, revoked"),
        REFUSE("state", "msce:status.state", "\"active \"", "not one of active, reenrol, revoked"),
        REFUSE("state", "msce:status.state", "\"re-enrol\"", "not one of active, reenrol, revoked"),
        REFUSE("state", "msce:status.state", "\"activ\"", "not one of active, reenrol, revoked"),
};
#undef ACCEPT
#undef REFUSE

static void expect_values(const char *cls) {
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(value_cases); i++) {
                const struct value_case *c = &value_cases[i];
                if (!streq(c->cls, cls))
                        continue;
                if (c->why)
                        expect_error(c->path, c->value, c->why);
                else
                        expect_ok(c->path, c->value, c->json);
                n++;
        }
        cr_assert_gt(n, 0, "no cases for %s", cls);
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
        expect_values("optional");
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
        expect_values("numbers");
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
                const char *body, *reason;
                size_t len; /* 0: strlen(body); some cases cut the body short */
        } cases[] = {
                { "", "premature end of input" },
                { "{\"msce:status\":", "premature end of input" },
                { "{} {}", "trailing data" },
                { "{\"a\":1,}", "syntax error" },
                { "{'a':1}", "syntax error" },
                { "{\"a\":\"\\u0000\"}", "NUL character", 13 }, /* without the last brace */
                { "{\"a\":1}\0{", "trailing data", 9 },
                { "{\"a\":\"\xc3\x28\"}", "invalid UTF-8", 9 }, /* without the last brace */
                { "{\"a\":1e999}", "number out of range" },
                { "{\"a\":99999999999999999999}", "number out of range" },
                { "\"msce:status\"", "syntax error" },
                { "{\"a\":NaN}", "syntax error" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char err[MSG_ERR_MAX], want[128];
                snprintf(want, sizeof want, "msce:status: invalid JSON: %s at line", cases[i].reason);
                size_t len = cases[i].len ?: strlen(cases[i].body);
                cr_assert_eq(parse_kind(K_STATUS, cases[i].body, len, err, NULL), -EBADMSG, "case %zu", i);
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
                { "msce:enrolReq.nodeID", MSG_ID_MAX, V_NODE, "\"-x\"", "not an M2M-Node-ID (must start with a letter or a digit)" },
                { "msce:enrolReq.prev", MSG_KEID_MAX, V_KEID, "\"3f2a9c0d4e5b6a7980a1b2c3d4e5f601\"", "not a KeID (lower-case hex, '@', a host name)" },
                { "msce:profile.cseID", MSG_ID_MAX, V_CSE, "\"mn-781\"", "not an SP-relative CSE-ID (must start with '/')" },
                { "msce:profile.cseBase", MSG_URI_MAX, V_URI, "\"in.example.net\"", "not an absolute URI with scheme http, https, coap, coaps, mqtt, mqtts, ws or wss" },
                { "msce:profile.keID", MSG_KEID_MAX, V_KEID, "\"3F2A@mef\"", "not a KeID (lower-case hex, '@', a host name)" },
                { "msce:profile.targets[0].id", MSG_ID_MAX, V_CSE, "\"/in-cse/../../x\"", "'.' or '..' segment" },
                { "msce:profile.targets[0].kpsaID", MSG_KEID_MAX, V_KEID, "\"../../../../etc/passwd@mef\"", "not a kpsaID (lower-case hex, optional .<n>, '@', a host name)" },
                { "msce:status.keID", MSG_KEID_MAX, V_KEID, "\"3f2a@MEF\"", "not a KeID: the part after '@' is not a lower-case host name or IP address" },
                { "msce:credential.enroleeID", MSG_ID_MAX, V_CSE, "\"/mn-$(id)`id`;reboot\"", "not a CSE-ID ('/' and A-Z a-z 0-9 - . _ ~)" },
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

/* The protocol sets no range for poll: one outside ours is clamped into it, never refused, and
 * the parser says so (what was sent) for the top layer's warning. */
Test(limits, poll) {
        static const char *const paths[] = { "msce:profile.poll", "msce:status.poll" };
        static const struct {
                const char *sent;
                uint32_t used;
                bool clamped;
                int64_t poll_sent;
        } cases[] = {
                { "10", 10, false, 0 },
                { "31622400", 31622400, false, 0 },
                { "3600", 3600, false, 0 },
                { "9", 10, true, 9 },
                { "0", 10, true, 0 },
                { "-3600", 10, true, -3600 },
                { "-9223372036854775807", 10, true, -9223372036854775807LL },
                { "31622401", 31622400, true, 31622401 },
                { "9223372036854775807", 31622400, true, 9223372036854775807LL },
        };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                for (size_t j = 0; j < ELEMENTSOF(cases); j++) {
                        char want[64], err[MSG_ERR_MAX];
                        snprintf(want, sizeof want, "\"poll\":%u%s", (unsigned) cases[j].used, i == 0 ? "," : "}");
                        expect_ok(paths[i], cases[j].sent, want);
                        _cleanup_free_ char *body = mutate(i == 0 ? profile_example : status_example, paths[i],
                                                           cases[j].sent);
                        msg_profile_t p;
                        msg_status_t s;
                        int r = i == 0 ? msg_profile_parse(body, strlen(body), &p, err)
                                       : msg_status_parse(body, strlen(body), &s, err);
                        cr_assert_eq(r, 0, "%s = %s: %s", paths[i], cases[j].sent, err);
                        cr_assert_eq(i == 0 ? p.poll : s.poll, cases[j].used, "%s = %s", paths[i], cases[j].sent);
                        cr_assert_eq(i == 0 ? p.poll_clamped : s.poll_clamped, cases[j].clamped, "%s = %s", paths[i],
                                     cases[j].sent);
                        cr_assert_eq(i == 0 ? p.poll_sent : s.poll_sent, cases[j].poll_sent, "%s = %s", paths[i],
                                     cases[j].sent);
                        if (i == 0)
                                msg_profile_wipe(&p);
                }
        cr_assert_eq(MSG_POLL_MAX, 31622400);
}

Test(limits, loc) {
        expect_values("loc");
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
                        cr_assert_eq(r, -E2BIG); /* not malformed: more than the agent holds */
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

/* Each kpsaID names one key (msce:kpsa:<kpsaID>): a profile that gives two targets one is malformed. */
Test(limits, kpsa_ids_unique) {
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *body = mutate(profile_example, "msce:profile.targets",
                                           "[{\"id\":\"/a\",\"kpsaID\":\"a.1@b\"},{\"id\":\"/b\",\"kpsaID\":\"a.2@b\"},"
                                           "{\"id\":\"/c\",\"kpsaID\":\"a.1@b\"}]");
        cr_assert_eq(parse_str(K_PROFILE, body, err, NULL), -EBADMSG);
        cr_assert_str_eq(err, "msce:profile.targets[2].kpsaID: the same as targets[0]'s");
}

Test(limits, state) {
        expect_values("state");
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

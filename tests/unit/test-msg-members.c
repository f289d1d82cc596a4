/* SPDX-License-Identifier: MIT */
/* Messages: missing members, wrong types, unknown members, duplicates and bad JSON. */
#include "tests/unit/msg-fixture.h"

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

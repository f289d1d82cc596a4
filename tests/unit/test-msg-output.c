/* SPDX-License-Identifier: MIT */
/* Messages: no key in an error, dbg sanitised, the formatters' input checks. */
#include "tests/unit/msg-fixture.h"

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
        p.n_targets = 2; /* two targets, one kpsaID */
        strcpy(p.targets[0].id, "/t1");
        strcpy(p.targets[0].kpsa_id, "a.1@b");
        strcpy(p.targets[1].id, "/t2");
        strcpy(p.targets[1].kpsa_id, "a.1@b");
        cr_assert_eq(msg_profile_format(&p, &json), -EINVAL);
        strcpy(p.targets[1].kpsa_id, "a.2@b");
        cr_assert_eq(msg_profile_format(&p, &json), 0);
        free(TAKE_PTR(json));
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

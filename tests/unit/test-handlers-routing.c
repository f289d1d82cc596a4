/* SPDX-License-Identifier: MIT */
/* Handlers: routing, framing, the response format, the enrolment rate limit. */
#include "tests/unit/handlers-fixture.h"

/* ---- routing and framing ---- */

Test(handlers, routing) {
        mef_response_t r;
        char body[512];
        enrol_body(NODE1, NULL, body, sizeof body);

        call_fails(KPM1, ekm1, "POST", "/msce/nothing", NODE1, body, 404, 4004, NULL);
        call_fails(KPM1, ekm1, "POST", "/other/enrolments", NODE1, body, 404, 4004, NULL);
        call_fails(KPM1, ekm1, "POST", "/msce/enrolments/", NODE1, body, 404, 4004, NULL);
        call_fails(KPM1, NULL, "GET", "/msce/enrolments/a/b", NODE1, NULL, 404, 4004, NULL);
        call_fails(KPM1, NULL, "GET", "/msce/fetchCredentials/a", NODE1, NULL, 404, 4004, NULL);

        call(KPM1, NULL, "GET", "/msce/enrolments", NODE1, NULL, 0, &r);
        expect_error(&r, 405, 4005, NULL);
        cr_assert_str_eq(r.allow, "POST");
        mef_response_done(&r);
        call(KPM1, NULL, "PUT", "/msce/enrolments/00@" FQDN, NODE1, NULL, 0, &r);
        expect_error(&r, 405, 4005, NULL);
        cr_assert_str_eq(r.allow, "GET, DELETE");
        mef_response_done(&r);

        call_fails(KPM1, NULL, "GET", "/msce/enrolments/ab%4", NODE1, NULL, 400, 4000, NULL);
        call_fails(KPM1, NULL, "GET", "/msce/enrolments/ab%zz", NODE1, NULL, 400, 4000, NULL);
        call_fails(KPM1, NULL, "GET", "/msce/enrolments/ab%00cd", NODE1, NULL, 400, 4000, NULL);

        /* query strings play no part; absolute-form targets are accepted */
        msg_profile_t p;
        char err[MSG_ERR_MAX];
        call(KPM1, ekm1, "POST", "https://" FQDN ":8443/msce/enrolments?x=1", NODE1, body, 0, &r);
        cr_assert_eq(r.status, 201);
        cr_assert_eq(msg_profile_parse(r.body, r.body_len, &p, err), 0, "%s", err);
        mef_response_done(&r);

        /* no peer identity at all */
        http_msg_t m = { .kind = HTTP_REQUEST, .method = "GET", .target = "/msce/enrolments/00@" FQDN };
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

/* A KeID in the path is held to the KeID grammar (docs/protocol.md, "Identifiers"): 400/4000
 * naming the rule, before any lookup or method check; a well-formed unknown one stays 404. */
Test(handlers, path_keid_grammar) {
        static const char *const bad[] = {
                "NOT-A-KEID", "x@y", "3F2A@" FQDN, "3f2a@MEF.example.net", "3f2a", "@" FQDN, "3f2a@" FQDN "%20x",
        };
        char target[512];
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                snprintf(target, sizeof target, "/msce/enrolments/%s", bad[i]);
                call_fails(KPM1, NULL, "GET", target, NODE1, NULL, 400, 4000, "KeID in the path: ");
                call_fails(KPM1, NULL, "DELETE", target, NODE1, NULL, 400, 4000, "KeID in the path: ");
                call_fails(KPM1, NULL, "PUT", target, NODE1, NULL, 400, 4000, "KeID in the path: ");
                fetch_fails(TPSK_IN, TARGET_IN, bad[i], "tls", 400, 4000, "KeID in the path: ");
        }
        call_fails(KPM1, NULL, "GET", "/msce/enrolments/NOT-A-KEID", NODE1, NULL, 400, 4000,
                   "not a KeID (lower-case hex, '@', a host name)");
        call_fails(KPM1, NULL, "GET", "/msce/enrolments/3f2a@" FQDN, "3f2a@" FQDN, NULL, 404, 4004, NULL);
        fetch_fails(TPSK_IN, TARGET_IN, "3f2a@" FQDN, "tls", 404, 4004, NULL);
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
        call_fails(KPM1, ekm3, "POST", "/a/benrolments", NODE1, body, 404, 4004, NULL);
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

        /* an RI request_check would refuse is not echoed; no body: no Content-Type */
        char long_ri[MEF_RI_MAX + 2];
        memset(long_ri, 'r', MEF_RI_MAX + 1);
        long_ri[MEF_RI_MAX + 1] = 0;
        const char *const bad_ri[] = { long_ri, "a\tb", "caf\xc3\xa9" };
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

/* Executed means echoed (protocol 3: "A response echoes X-M2M-RI"): an RI with a space, or up
 * to MEF_RI_MAX characters, is acted on and echoed; one the MEF could not echo is refused
 * 400/4000 before anything is done. */
Test(handlers, request_id_echoed_or_refused) {
        char body[512], ri_max[MEF_RI_MAX + 1], ri_over[MEF_RI_MAX + 2], ri_100[101];
        memset(ri_max, 'm', MEF_RI_MAX);
        ri_max[MEF_RI_MAX] = 0;
        memset(ri_over, 'o', MEF_RI_MAX + 1);
        ri_over[MEF_RI_MAX + 1] = 0;
        memset(ri_100, 'h', 100);
        ri_100[100] = 0;
        enrol_body(NODE1, NULL, body, sizeof body);

        const char *const bad[] = { ri_over, "a\tb", "a\x01", "caf\xc3\xa9", "a\x7f" };
        char keid[MSG_KEID_MAX + 1];
        uint8_t ke[KDF_KE_LEN];
        store_enrolment_t e;
        keid_of(ekm1, keid, ke);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                call_ri = bad[i];
                call_fails(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 400, 4000, "X-M2M-RI");
                cr_assert_eq(store_enrolment_get(store, keid, &e, NULL, NULL), -ENOENT, "RI %zu: enrolled", i);
        }

        const char *const good[] = { "ri with a space", ri_100, ri_max };
        const uint8_t *ekm[] = { ekm1, ekm2, ekm3 };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                mef_response_t r;
                uint8_t *out = NULL;
                size_t out_len = 0;
                http_parser_t parser;
                http_msg_t m;
                call_ri = good[i];
                call(KPM1, ekm[i], "POST", "/msce/enrolments", NODE1, body, 0, &r);
                cr_assert_eq(r.status, 201, "RI %zu: status %d", i, r.status);
                cr_assert_eq(mef_response_format(&r, good[i], &out, &out_len), 0);
                mef_response_done(&r);
                http_parser_init(&parser, HTTP_RESPONSE);
                cr_assert_eq(http_parse(&parser, out, out_len, &m), 1);
                cr_assert_str_eq(resp_header(&m, "X-M2M-RI"), good[i]);
                http_msg_done(&m);
                erase_free(out, out_len);
        }
        call_ri = NULL;
}

/* [limits] enrolments_per_node = 2 per 1min, as the server sets it up */
static void enrol_limit_two_a_minute(void) {
        cr_assert_eq(ratelimit_new(2, 60u * 1000000u, 16, &call_limit), 0);
        cfg.enrolments_per_node = 2;
        cfg.enrolment_window_s = 60;
}

/* [limits] enrolments_per_node: past the limit a node gets 429 + Retry-After with nothing
 * stored, another node still enrols, and one audit row records the window's refusals. */
Test(handlers, enrol_rate_limit) {
        msg_profile_t p;
        mef_response_t r;
        char body[1024];
        enrol_limit_two_a_minute();
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

/* An enrolment the MEF then fails (the store refuses the row: its KeID is taken; no keying
 * material) gives its allowance back: after three 500s the node still enrols its full two. */
Test(handlers, enrol_failed_gives_the_allowance_back) {
        msg_profile_t p;
        mef_response_t r;
        char body[1024];
        enrol_limit_two_a_minute();
        enrol(KPM1, NODE1, ekm1, NULL, &p);
        enrol_body(NODE1, NULL, body, sizeof body);
        for (int i = 0; i < 2; i++) {
                call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 0, &r); /* the same KeID again */
                expect_error(&r, 500, 5000, "internal error");
                mef_response_done(&r);
        }
        call(KPM1, NULL, "POST", "/msce/enrolments", NODE1, body, 0, &r);
        expect_error(&r, 500, 5000, "internal error");
        mef_response_done(&r);
        enrol(KPM1, NODE1, ekm2, NULL, &p);
        call(KPM1, ekm3, "POST", "/msce/enrolments", NODE1, body, 0, &r);
        expect_error(&r, 429, 4000, "too many enrolments");
        mef_response_done(&r);
        call_limit = ratelimit_free(call_limit);
}

/* An enrolment whose statements all succeed but whose COMMIT fails (a deferred foreign key its
 * row breaks, set up behind the store's back) is answered 500 alone, and gives its allowance
 * back. In a batch (group commit, mef/store-queue.c) the handler answers 201 and only the
 * batch's COMMIT fails: the store thread then gives it back (mef_response_unstored()), not the
 * handler. After three such failures the node still enrols its full two. */
Test(handlers, enrol_commit_failed_gives_the_allowance_back) {
        mef_response_t r;
        char body[1024];
        enrol_limit_two_a_minute();
        store_sql("CREATE TABLE trap_parent (id INTEGER PRIMARY KEY);"
                  "CREATE TABLE trap (p INTEGER REFERENCES trap_parent (id) DEFERRABLE INITIALLY DEFERRED);"
                  "CREATE TRIGGER trap_enrol AFTER INSERT ON enrolments BEGIN INSERT INTO trap VALUES (1); END;");
        enrol_body(NODE1, NULL, body, sizeof body);
        call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 0, &r);
        expect_error(&r, 500, 5000, "internal error");
        mef_response_done(&r);
        for (int i = 0; i < 2; i++) {
                cr_assert_eq(store_batch_begin(store), 0);
                call(KPM1, ekm1, "POST", "/msce/enrolments", NODE1, body, 0, &r);
                cr_assert_eq(r.status, 201, "the statements succeed in the batch");
                cr_assert_lt(store_batch_end(store, true), 0, "the batch's COMMIT fails");
                mef_response_unstored(&r, call_limit);
                mef_response_done(&r);
        }
        store_sql("DROP TRIGGER trap_enrol");
        store_enrolment_t e;
        char keid[MSG_KEID_MAX + 1];
        uint8_t ke[KDF_KE_LEN];
        keid_of(ekm1, keid, ke);
        cr_assert_eq(store_enrolment_get(store, keid, &e, NULL, NULL), -ENOENT, "the failed enrolment was stored");
        msg_profile_t p;
        enrol(KPM1, NODE1, ekm1, NULL, &p);
        enrol(KPM1, NODE1, ekm2, NULL, &p);
        call(KPM1, ekm3, "POST", "/msce/enrolments", NODE1, body, 0, &r);
        expect_error(&r, 429, 4000, "too many enrolments");
        mef_response_done(&r);
        call_limit = ratelimit_free(call_limit);
}

/* ---- refusals in the audit trail ---- */

static size_t audit_rows_of(const char *actor) {
        store_audit_entry_t *list = NULL;
        size_t n = 0, k = 0;
        cr_assert_eq(store_audit_list(store, 0, &list, &n), 0);
        for (size_t i = 0; i < n; i++)
                k += streq(list[i].actor, actor);
        free(list);
        return k;
}

/* A credential looping on refused requests adds one audit row per exchange and status a window,
 * not one per request: the rest are counted (audit_folded, for the log line). A refusal of
 * another kind or of another identity still gets its row, and successes all keep theirs. */
Test(handlers, refusals_audited_once_a_window) {
        mef_response_t r;
        for (unsigned i = 0; i < 1000; i++) {
                call(KPM1, NULL, "GET", "/msce/nope", NODE1, NULL, 0, &r);
                expect_error(&r, 404, 4004, "no such resource");
                cr_assert_eq(r.audit_folded, i, "request %u: %u folded", i, r.audit_folded);
                mef_response_done(&r);
        }
        cr_assert_eq(audit_rows_of(KPM1), 1, "%zu audit rows for 1000 refusals", audit_rows_of(KPM1));
        cr_assert(audit_has("request", NULL, "404 no such resource"));

        /* 1000 more of four other kinds: a row for each kind */
        for (unsigned i = 0; i < 1000; i++) {
                if (i % 4 == 0)
                        call_fails(KPM1, NULL, "PUT", "/msce/enrolments/00@" FQDN, NODE1, NULL, 405, 4005, NULL);
                else if (i % 4 == 1)
                        call_fails(KPM1, NULL, "GET", "/msce/enrolments/NOT-A-KEID", NODE1, NULL, 400, 4000, NULL);
                else if (i % 4 == 2)
                        call_fails(KPM1, NULL, "GET", "/msce/enrolments/00@" FQDN, "00@" FQDN, NULL, 404, 4004,
                                   NULL);
                else
                        fetch_fails(KPM1, NODE1, "00@" FQDN, "tls", 403, 4103, NULL);
        }
        cr_assert_eq(audit_rows_of(KPM1), 5, "%zu audit rows for 2000 refusals of five kinds", audit_rows_of(KPM1));

        call_fails(KPM2, NULL, "GET", "/msce/nope", NODE2, NULL, 404, 4004, NULL);
        cr_assert_eq(audit_rows_of(KPM2), 1, "another identity's refusal is audited");

        msg_profile_t p, p2;
        enrol(KPM1, NODE1, ekm1, NULL, &p);
        enrol(KPM1, NODE1, ekm2, p.ke_id, &p2);
        cr_assert(audit_has("enrol", p.ke_id, "201 "));
        cr_assert(audit_has("enrol", p2.ke_id, "201 "));
        cr_assert_eq(audit_rows_of(KPM1), 7);
}

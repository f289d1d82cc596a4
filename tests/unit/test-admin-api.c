/* SPDX-License-Identifier: MIT */
/* The admin API's requests (mef/admin-api.c) against a real store in a temporary directory:
 * targets and queries as a client may mangle them, errors in their JSON shape, no key answered. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <malloc.h>
#include <sqlite3.h>

#include "mef/admin-api.h"
#include "mef/ops-import.h"
#include "mef/store.h"
#include "proto/tls.h"
#include "util/util.h"
#include "store-fault.h"
#include "store-tmp.h"

#define KPM "00112233445566778899aabbccddeeff"

static char tmpdir[] = "/tmp/test-admin-api-XXXXXX";
static mef_store_t *store;
static mef_config_t cfg;

static void setup(void) {
        store = store_tmp_open(tmpdir);
        cfg = (mef_config_t) { .default_lifetime = 86400, .default_poll = 3600, .retry_after = 5 };
}

static void teardown(void) {
        store = store_close(store);
        store_tmp_remove(tmpdir);
}

TestSuite(admin_api, .init = setup, .fini = teardown);

/* One request; the status, and the body parsed when it is JSON (caller decrefs). */
static int call(const char *method, const char *target, const char *body, json_t **ret) {
        http_msg_t m = {};
        snprintf(m.method, sizeof m.method, "%s", method);
        snprintf(m.target, sizeof m.target, "%s", target);
        if (body) {
                m.body = (uint8_t *) strdup(body);
                m.body_len = strlen(body);
        }
        admin_response_t r;
        cr_assert_eq(admin_api_handle(&cfg, store, "api:tester", &m, &r), 0);
        free(m.body);
        if (ret)
                *ret = r.content_type && streq(r.content_type, "application/json")
                               ? json_loadb(r.body, r.body_len, 0, NULL)
                               : json_stringn(r.body ?: "", r.body_len);
        cr_assert(!r.body || !strstr(r.body, KPM), "a key in an answer: %s", r.body);
        int status = r.status;
        admin_response_done(&r);
        return status;
}

static void expect_error(const char *method, const char *target, const char *body, int want, const char *word) {
        json_t *j = NULL;
        int st = call(method, target, body, &j);
        cr_assert_eq(st, want, "%s %s: %d, want %d", method, target, st, want);
        cr_assert_str_eq(json_string_value(json_object_get(j, "error")), word, "%s %s", method, target);
        cr_assert(json_is_string(json_object_get(j, "reason")));
        json_decref(j);
}

/* Requests answered with an error before anything is changed. */
static const struct {
        const char *method, *target, *body;
        int status;
        const char *word;
} refused[] = {
        /* names nothing (a node is removed with DELETE) */
        { "GET", "/admin/v1", NULL, 404, "not-found" },
        { "GET", "/admin/v1/", NULL, 404, "not-found" },
        { "GET", "/admin/v1/nodes/", NULL, 404, "not-found" },
        { "GET", "/admin/v2/nodes", NULL, 404, "not-found" },
        { "GET", "/admin/v1nodes", NULL, 404, "not-found" },
        { "GET", "/admin/v1/nodes/a/b/c", NULL, 404, "not-found" },
        { "GET", "/admin/v1/nodes/a/b/c/d", NULL, 404, "not-found" },
        { "GET", "/admin/v1//nodes", NULL, 404, "not-found" },
        { "POST", "/admin/v1/nodes/x/remove", NULL, 404, "not-found" },
        { "GET", "/admin/v1/nodes/urn:dev:ops:none", NULL, 404, "not-found" },
        /* mangled targets and queries */
        { "GET", "/admin/v1/nodes/%00x", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/nodes/%zz", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/nodes/%4", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/nodes?limit=%00", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/nodes?limit=0", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/nodes?limit=1000001", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/nodes?since=yesterday", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/nodes?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/audit?after=-1", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/enrolments?state=happy", NULL, 400, "bad-request" },
        { "GET", "/admin/v1/targets?x", NULL, 400, "bad-request" },
        { "POST", "/admin/v1/import?dry_run=perhaps", "nodeID\n", 400, "bad-request" },
        /* methods a path does not take */
        { "PUT", "/admin/v1/nodes", NULL, 405, "method-not-allowed" },
        { "DELETE", "/admin/v1/audit", NULL, 405, "method-not-allowed" },
        { "GET", "/admin/v1/import", NULL, 405, "method-not-allowed" },
};

Test(admin_api, requests_refused_with_their_status_and_word) {
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                expect_error(refused[i].method, refused[i].target, refused[i].body, refused[i].status, refused[i].word);
}

Test(admin_api, node_add_show_page_remove) {
        json_t *j;
        expect_error("POST", "/admin/v1/nodes", "[]", 400, "bad-request");
        expect_error("POST", "/admin/v1/nodes", "{\"nodeID\":\"urn:dev:ops:n1\",\"nodeID\":\"x\"}", 400, "bad-request");
        expect_error("POST", "/admin/v1/nodes", "{\"nodeID\":\"urn:dev:ops:n1\",\"colour\":\"red\"}", 422, "invalid");
        const char *n1 = "{\"nodeID\":\"urn:dev:ops:n1\",\"kpmID\":\"k1\",\"kpm\":\"" KPM "\",\"cseID\":\"/mn-1\","
                         "\"cseBase\":\"https://in.example.net/b\",\"targets\":[\"/in-cse\"]}";
        cr_assert_eq(call("POST", "/admin/v1/nodes", n1, &j), 201);
        cr_assert_str_eq(json_string_value(json_object_get(j, "kpmID")), "k1");
        cr_assert_null(json_object_get(j, "kpm"));
        json_decref(j);
        expect_error("POST", "/admin/v1/nodes", n1, 409, "conflict");
        const char *n2 = "{\"nodeID\":\"urn:dev:ops:n2\",\"kpmID\":\"k2\",\"kpmFile\":\"/etc/passwd\",\"cseID\":\"/mn-2\","
                         "\"cseBase\":\"https://in.example.net/b\"}";
        expect_error("POST", "/admin/v1/nodes", n2, 422, "invalid");

        /* percent-encoded path segment: the same node */
        cr_assert_eq(call("GET", "/admin/v1/nodes/urn%3Adev%3Aops%3An1", NULL, &j), 200);
        cr_assert_eq(json_array_size(json_object_get(j, "enrolments")), 0);
        cr_assert(json_is_null(json_object_get(j, "enrolmentsNext")));
        json_decref(j);
        cr_assert_eq(call("GET", "/admin/v1/nodes?limit=1", NULL, &j), 200);
        cr_assert_str_eq(json_string_value(json_object_get(j, "next")), "urn:dev:ops:n1");
        json_decref(j);
        cr_assert_eq(call("GET", "/admin/v1/nodes?limit=1&after=urn%3Adev%3Aops%3An1", NULL, &j), 200);
        cr_assert_eq(json_array_size(json_object_get(j, "items")), 0);
        cr_assert(json_is_null(json_object_get(j, "next")));
        json_decref(j);

        cr_assert_eq(call("POST", "/admin/v1/nodes/urn:dev:ops:n1/revoke", NULL, &j), 200);
        cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "revoked");
        json_decref(j);
        cr_assert_eq(call("DELETE", "/admin/v1/nodes/urn:dev:ops:n1", NULL, &j), 200);
        cr_assert_str_eq(json_string_value(json_object_get(j, "removed")), "urn:dev:ops:n1");
        json_decref(j);

        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(store, 0, &list, &n), 0);
        /* the changes, and each change refused with its status and why (reads are not audited) */
        static const char *const want[] = { "node-remove", "node-revoke", "api-refused", "api-refused", "node-add",
                                            "api-refused", "api-refused", "api-refused" };
        cr_assert_eq(n, ELEMENTSOF(want));
        for (size_t i = 0; i < n; i++) {
                cr_assert_str_eq(list[i].actor, "api:tester");
                cr_assert_str_eq(list[i].action, want[i], "row %zu: %s", i, list[i].action);
        }
        cr_assert_str_eq(list[3].detail, "POST -> 409: node ID already in use");
        cr_assert(strstr(list[2].detail, "POST -> 422: kpmFile"), "%s", list[2].detail);
        free(list);
}

/* A KpmID or a target's PSK identity is at most what a TLS handshake carries (TLS_PSK_ID_MAX):
 * one longer could never authenticate. 422 naming the field and the limit; the limit itself passes. */
static void add_with_psk_id(const char *target, const char *body, bool ok, const char *field) {
        json_t *j;
        cr_assert_eq(call("POST", target, body, &j), ok ? 201 : 422, "%s", body);
        char rule[160];
        snprintf(rule, sizeof rule, "%s: expected 1..%u printable ASCII characters without spaces (the TLS PSK identity "
                 "limit)", field, TLS_PSK_ID_MAX);
        const char *reason = json_string_value(json_object_get(j, "reason"));
        cr_assert(ok || (reason && strstr(reason, rule)), "%s", reason);
        json_decref(j);
}

Test(admin_api, psk_identity_limit) {
        char id[TLS_PSK_ID_MAX + 2], body[512];
        memset(id, 'k', TLS_PSK_ID_MAX + 1);
        id[TLS_PSK_ID_MAX + 1] = 0;
        for (int ok = 0; ok <= 1; ok++) {
                if (ok)
                        id[TLS_PSK_ID_MAX] = 0;
                snprintf(body, sizeof body, "{\"nodeID\":\"urn:dev:ops:long\",\"kpmID\":\"%s\",\"kpm\":\"" KPM "\","
                         "\"cseID\":\"/mn-long\",\"cseBase\":\"https://in.example.net/b\"}", id);
                add_with_psk_id("/admin/v1/nodes", body, ok, "kpmID");
                id[0] = 't'; /* not the node's KpmID */
                snprintf(body, sizeof body, "{\"id\":\"/in-long\",\"pskID\":\"%s\",\"psk\":\"" KPM "\"}", id);
                add_with_psk_id("/admin/v1/targets", body, ok, "pskID");
                id[0] = 'k';
        }
}

/* The node as GET answers it now, without its enrolments. */
static json_t *node_now(const char *id) {
        char target[128];
        json_t *j;
        snprintf(target, sizeof target, "/admin/v1/nodes/%s", id);
        cr_assert_eq(call("GET", target, NULL, &j), 200);
        json_object_del(j, "enrolments");
        json_object_del(j, "enrolmentsNext");
        return j;
}

/* A node's enrolments in its GET are bounded as a page is (1000, newest first): a node enrolling
 * in a loop keeps thousands. enrolmentsNext names where the list of its enrolments goes on. */
Test(admin_api, node_enrolments_bounded) {
        json_t *j;
        const char *n1 = "{\"nodeID\":\"urn:dev:ops:e1\",\"kpmID\":\"ke1\",\"kpm\":\"" KPM "\",\"cseID\":\"/mn-e1\","
                         "\"cseBase\":\"https://in.example.net/b\"}";
        cr_assert_eq(call("POST", "/admin/v1/nodes", n1, &j), 201);
        json_decref(j);
        uint8_t ke[32] = { 1 };
        cr_assert_eq(store_begin(store), 0);
        for (int i = 0; i < 1001; i++) {
                store_enrolment_t e = { .state = ENROLMENT_RETIRED, .created = 1000000 + i, .exp = 2000000 };
                snprintf(e.ke_id, sizeof e.ke_id, "%032x@mef.example.net", i);
                snprintf(e.node_id, sizeof e.node_id, "urn:dev:ops:e1");
                cr_assert_eq(store_enrolment_add(store, &e, ke, sizeof ke), 0);
        }
        cr_assert_eq(store_commit(store), 0);
        cr_assert_eq(call("GET", "/admin/v1/nodes/urn:dev:ops:e1", NULL, &j), 200);
        json_t *list = json_object_get(j, "enrolments");
        cr_assert_eq(json_array_size(list), 1000);
        char want[64];
        snprintf(want, sizeof want, "%032x@mef.example.net", 1000);
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "keID")), want, "newest first");
        const char *next = json_string_value(json_object_get(j, "enrolmentsNext"));
        cr_assert_not_null(next, "a full list without enrolmentsNext");
        char target[160];
        snprintf(target, sizeof target, "/admin/v1/enrolments?node=urn:dev:ops:e1&after=%s", next);
        json_decref(j);
        cr_assert_eq(call("GET", target, NULL, &j), 200);
        list = json_object_get(j, "items");
        cr_assert_eq(json_array_size(list), 1, "the rest: %zu", json_array_size(list));
        snprintf(want, sizeof want, "%032x@mef.example.net", 0);
        cr_assert_str_eq(json_string_value(json_object_get(json_array_get(list, 0), "keID")), want, "the oldest");
        json_decref(j);
}

/* A change committed is answered as done, with the node as stored, though the store is busy
 * right after: told 503, a client would retry and meet 409, or audit a revoke twice. */
Test(admin_api, change_committed_is_answered_when_a_read_after_it_fails) {
        const char *n1 = "{\"nodeID\":\"urn:dev:ops:c1\",\"kpmID\":\"kc1\",\"kpm\":\"" KPM "\",\"cseID\":\"/mn-c1\","
                         "\"cseBase\":\"https://in.example.net/b\",\"targets\":[\"/in-cse\"]}";
        static const struct {
                const char *method, *target, *state;
                int status;
        } steps[] = {
                { "POST", "/admin/v1/nodes", "active", 201 },
                { "POST", "/admin/v1/nodes/urn:dev:ops:c1/reenrol", "reenrol", 200 },
                { "POST", "/admin/v1/nodes/urn:dev:ops:c1/revoke", "revoked", 200 },
                { "POST", "/admin/v1/nodes/urn:dev:ops:c1/activate", "active", 200 },
        };
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                json_t *j;
                store_fault_armed = true;
                int st = call(steps[i].method, steps[i].target, i == 0 ? n1 : NULL, &j);
                cr_assert(store_fault_committed, "%s: nothing committed", steps[i].target);
                cr_assert_eq(st, steps[i].status, "%s %s: %d, want %d", steps[i].method, steps[i].target, st,
                             steps[i].status);
                cr_assert_str_eq(json_string_value(json_object_get(j, "state")), steps[i].state);
                store_fault_armed = store_fault_committed = false;
                json_t *now = node_now("urn:dev:ops:c1");
                cr_assert(json_equal(j, now), "%s: answered %s, stored %s", steps[i].target,
                          json_dumps(j, JSON_COMPACT), json_dumps(now, JSON_COMPACT));
                json_decref(j);
                json_decref(now);
        }
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(store, 0, &list, &n), 0);
        static const char *const want[] = { "node-activate", "node-revoke", "node-reenrol", "node-add" };
        cr_assert_eq(n, ELEMENTSOF(want));
        for (size_t i = 0; i < n; i++)
                cr_assert_str_eq(list[i].action, want[i], "row %zu: %s", i, list[i].action);
        free(list);
}

/* msce-mef(8): a revoked node's new enrolments are refused until activate; reenrol, which an
 * enrolment ends by setting the node active, must not lift that. */
Test(admin_api, reenrol_of_a_revoked_node_is_refused) {
        const char *n1 = "{\"nodeID\":\"urn:dev:ops:rv1\",\"kpmID\":\"krv1\",\"kpm\":\"" KPM "\",\"cseID\":\"/mn-rv1\","
                         "\"cseBase\":\"https://in.example.net/b\"}";
        json_t *j;
        cr_assert_eq(call("POST", "/admin/v1/nodes", n1, &j), 201);
        json_decref(j);
        cr_assert_eq(call("POST", "/admin/v1/nodes/urn:dev:ops:rv1/revoke", NULL, &j), 200);
        json_decref(j);
        expect_error("POST", "/admin/v1/nodes/urn:dev:ops:rv1/reenrol", NULL, 409, "conflict");
        j = node_now("urn:dev:ops:rv1");
        cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "revoked");
        json_decref(j);
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(store, 1, &list, &n), 0);
        cr_assert_eq(n, 1);
        cr_assert_str_eq(list[0].action, "api-refused");
        cr_assert(strstr(list[0].detail, "409: node is revoked"), "%s", list[0].detail);
        free(list);
        /* activated, it may be asked to enrol again */
        cr_assert_eq(call("POST", "/admin/v1/nodes/urn:dev:ops:rv1/activate", NULL, &j), 200);
        json_decref(j);
        cr_assert_eq(call("POST", "/admin/v1/nodes/urn:dev:ops:rv1/reenrol", NULL, &j), 200);
        cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "reenrol");
        json_decref(j);
}

Test(admin_api, import_bad_rows_change_nothing) {
        json_t *j;
        const char *csv = "nodeID,kpmID,kpm,cseID,cseBase\n"
                          "urn:dev:ops:i1,ki1," KPM ",/mn-i1,https://in.example.net/b\n"
                          "urn:dev:ops:i2,ki2,nothex,/mn-i2,https://in.example.net/b\n";
        cr_assert_eq(call("POST", "/admin/v1/import", csv, &j), 422);
        cr_assert_eq(json_integer_value(json_object_get(json_array_get(json_object_get(j, "errors"), 0), "line")), 3);
        cr_assert(json_is_false(json_object_get(j, "imported")));
        json_decref(j);
        expect_error("POST", "/admin/v1/import", "", 400, "bad-request");
        /* a header it cannot read: the shape of every import 422, line 1 in errors[], and audited why */
        cr_assert_eq(call("POST", "/admin/v1/import", "colour\nred\n", &j), 422);
        json_t *e = json_array_get(json_object_get(j, "errors"), 0);
        cr_assert_eq(json_integer_value(json_object_get(e, "line")), 1);
        cr_assert_str_eq(json_string_value(json_object_get(e, "error")), "header: unknown column 'colour'");
        cr_assert(json_is_false(json_object_get(j, "imported")) && !json_object_get(j, "reason"));
        json_decref(j);
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(store, 1, &list, &n), 0);
        cr_assert(n == 1 && streq(list[0].action, "api-refused"));
        cr_assert_str_eq(list[0].detail, "POST -> 422: line 1: header: unknown column 'colour'");
        free(list);
        cr_assert_eq(call("GET", "/admin/v1/nodes", NULL, &j), 200);
        cr_assert_eq(json_array_size(json_object_get(j, "items")), 0);
        json_decref(j);
        cr_assert_eq(call("GET", "/admin/v1/export?format=csv", NULL, &j), 200);
        cr_assert(strstr(json_string_value(j), "nodeID,kpmID"));
        json_decref(j);
}

/* Out of memory (the import's stream or line buffer, replaced at link time; jansson's first
 * allocation, for a JSON body) is the MEF's failure: -ENOMEM, which the server answers 500,
 * never 400 or 422 as if the body were bad. */
static enum { FAIL_NONE, FAIL_STREAM, FAIL_LINE, FAIL_JANSSON } failing;

FILE *__real_fmemopen(void *buf, size_t size, const char *mode);
FILE *__wrap_fmemopen(void *buf, size_t size, const char *mode);
FILE *__wrap_fmemopen(void *buf, size_t size, const char *mode) {
        if (failing == FAIL_STREAM) {
                errno = ENOMEM;
                return NULL;
        }
        return __real_fmemopen(buf, size, mode);
}

void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_malloc(size_t n) {
        if (failing == FAIL_LINE && n == IMPORT_LINE_MAX + 1) {
                errno = ENOMEM;
                return NULL;
        }
        return __real_malloc(n);
}

static void *jansson_malloc(size_t n) {
        if (failing == FAIL_JANSSON) {
                failing = FAIL_NONE; /* once: the answer could be built, a 4xx told */
                return NULL;
        }
        return malloc(n);
}

Test(admin_api, out_of_memory_is_no_bad_request) {
        const char *csv = "nodeID,certFingerprint,cseID,cseBase\n"
                          "urn:dev:ops:m1,00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff,/mn-m1,"
                          "https://in.example.net/b\n",
                   *node = "{\"nodeID\":\"urn:dev:ops:m2\",\"cseID\":\"/mn-m2\",\"cseBase\":\"https://in.example.net/b\","
                           "\"kpmID\":\"km2\",\"kpm\":\"" KPM "\"}";
        static const struct {
                int fail;
                const char *target, *what;
        } cases[] = {
                { FAIL_STREAM, "/admin/v1/import", "import, the stream" },
                { FAIL_LINE, "/admin/v1/import", "import, the line buffer" },
                { FAIL_JANSSON, "/admin/v1/nodes", "node add, jansson" },
        };
        json_set_alloc_funcs(jansson_malloc, free);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const char *body = i < 2 ? csv : node;
                http_msg_t m = { .body = (uint8_t *) strdup(body), .body_len = strlen(body) };
                snprintf(m.method, sizeof m.method, "POST");
                snprintf(m.target, sizeof m.target, "%s", cases[i].target);
                admin_response_t r = {};
                failing = cases[i].fail;
                int k = admin_api_handle(&cfg, store, "api:tester", &m, &r);
                failing = FAIL_NONE;
                free(m.body);
                cr_assert_eq(k, -ENOMEM, "%s failing: %d, answered %d %.*s", cases[i].what, k, r.status,
                             (int) r.body_len, r.body ?: "");
                admin_response_done(&r);
        }
        json_set_alloc_funcs(malloc, free);
        json_t *j;
        cr_assert_eq(call("POST", "/admin/v1/import", csv, &j), 200);
        cr_assert_eq(json_integer_value(json_object_get(j, "added")), 1);
        json_decref(j);
        cr_assert_eq(call("POST", "/admin/v1/nodes", node, &j), 201);
        json_decref(j);
}

/* A store another process holds locked: 503 with Retry-After and a generic reason, the cause
 * kept for the server's log (never in the answer). */
Test(admin_api, locked_store_is_503_with_the_cause_for_the_log) {
        char db_path[256];
        snprintf(db_path, sizeof db_path, "%s/mef.db", tmpdir);
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
        cr_assert_eq(store_set_busy_timeout(store, 1), 0);

        const char *body = "{\"nodeID\":\"urn:dev:ops:l1\",\"cseID\":\"/mn-l1\",\"cseBase\":\"https://in.example.net/b\","
                           "\"kpmID\":\"kl1\",\"kpm\":\"" KPM "\"}";
        http_msg_t m = { .body = (uint8_t *) strdup(body), .body_len = strlen(body) };
        snprintf(m.method, sizeof m.method, "POST");
        snprintf(m.target, sizeof m.target, "/admin/v1/nodes");
        admin_response_t r;
        cr_assert_eq(admin_api_handle(&cfg, store, "api:tester", &m, &r), 0);
        free(m.body);
        cr_assert_eq(r.status, 503, "status %d: %.*s", r.status, (int) r.body_len, r.body);
        cr_assert_eq(r.retry_after, 5);
        cr_assert_eq(r.store_error, -EBUSY);
        cr_assert(r.body && strstr(r.body, "store busy") && !strstr(r.body, "locked"), "%s", r.body);
        admin_response_done(&r);

        cr_assert_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        json_t *j;
        cr_assert_eq(call("GET", "/admin/v1/nodes/urn:dev:ops:l1", NULL, &j), 404);
        json_decref(j);
}

Test(admin_api, operator_names) {
        cr_assert(admin_operator_is_valid("alice"));
        cr_assert(admin_operator_is_valid("ops.team-1@example.net"));
        cr_assert_not(admin_operator_is_valid(""));
        cr_assert_not(admin_operator_is_valid("-alice"));
        cr_assert_not(admin_operator_is_valid(".alice"));
        cr_assert_not(admin_operator_is_valid("alice smith"));
        cr_assert_not(admin_operator_is_valid("alice\n"));
        char long_name[66];
        memset(long_name, 'a', 65);
        long_name[65] = 0;
        cr_assert_not(admin_operator_is_valid(long_name));
        long_name[64] = 0;
        cr_assert(admin_operator_is_valid(long_name));
}

/* A key string of a refused body is wiped before jansson frees it, however early the request is
 * refused. The test's jansson free counts each block that is exactly the key's text (a json_t
 * string's buffer; the lexer's token buffer starts with the quote): an unknown key or a member of
 * the wrong type read before kpm made node add return before it wiped the kpm. */
#define KEY2 "f0e1d2c3b4a5968778695a4b3c2d1e0f"
static unsigned key_strings_freed;

static void counting_free(void *p) {
        /* within the block: most of what jansson frees is no string (strcmp ran past their ends
         * under ASan) */
        if (p && malloc_usable_size(p) >= sizeof KEY2 && memcmp(p, KEY2, sizeof KEY2) == 0)
                key_strings_freed++;
        free(p);
}

Test(admin_api, keys_of_refused_bodies_are_wiped) {
        static const struct {
                const char *target, *body;
                int status;
        } bodies[] = {
                { "/admin/v1/nodes", "{\"colour\":\"red\",\"nodeID\":\"urn:dev:ops:w1\",\"kpmID\":\"kw1\",\"kpm\":\"" KEY2 "\"}",
                  422 },
                { "/admin/v1/nodes", "{\"nodeID\":\"urn:dev:ops:w1\",\"state\":[],\"kpmID\":\"kw1\",\"kpm\":\"" KEY2 "\"}",
                  422 },
                { "/admin/v1/nodes", "{\"nodeID\":\"urn:dev:ops:w1\",\"kpmID\":\"kw1\",\"kpm\":\"" KEY2 "\",\"colour\":1}",
                  422 },
                { "/admin/v1/import", "{\"colour\":\"red\",\"nodeID\":\"urn:dev:ops:w1\",\"kpmID\":\"kw1\",\"kpm\":\"" KEY2
                                      "\"}\n",
                  422 },
                { "/admin/v1/targets", "{\"pskID\":\"pw1\",\"psk\":\"" KEY2 "\"}", 422 },
        };
        json_set_alloc_funcs(malloc, counting_free);
        for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
                key_strings_freed = 0;
                json_t *j = NULL;
                int st = call("POST", bodies[i].target, bodies[i].body, &j);
                json_decref(j);
                cr_assert_eq(st, bodies[i].status, "%s: %d", bodies[i].body, st);
                cr_assert_eq(key_strings_freed, 0u, "%s: the key freed unwiped", bodies[i].body);
        }
        json_set_alloc_funcs(malloc, free);
}

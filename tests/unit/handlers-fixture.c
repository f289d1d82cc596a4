/* SPDX-License-Identifier: MIT */
/* The handler tests' fixture (handlers-fixture.h). */
#include <sqlite3.h>

#include "tests/unit/handlers-fixture.h"

static char tmpdir[] = "/tmp/test-handlers-XXXXXX";
mef_store_t *store;
mef_config_t cfg;
uint8_t ekm1[KDF_EKM_LEN], ekm2[KDF_EKM_LEN], ekm3[KDF_EKM_LEN];

void add_node(const char *node_id, const char *kpm_id, const char *cse_id, bool ltk,
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

void add_target(const char *id, const char *psk_id) {
        store_target_t t = {};
        snprintf(t.id, sizeof t.id, "%s", id);
        snprintf(t.psk_id, sizeof t.psk_id, "%s", psk_id);
        uint8_t psk[32];
        memset(psk, 0x33, sizeof psk);
        cr_assert_eq(store_target_add(store, &t, psk, sizeof psk), 0);
}

void store_sql(const char *sql) {
        char db_path[sizeof tmpdir + 16];
        snprintf(db_path, sizeof db_path, "%s/mef.db", tmpdir);
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
        sqlite3_close(db);
}

static void setup(void) {
        store = store_tmp_open(tmpdir);
        cfg = handlers_config();
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
        cr_assert_eq(mef_refusal_audit_new(&call_refusals), 0);
}

static void teardown(void) {
        call_refusals = ratelimit_free(call_refusals);
        store = store_close(store);
        store_tmp_remove(tmpdir);
}

TestSuite(handlers, .init = setup, .fini = teardown);

/* now_usec() replaced at link time (tests/unit/meson.build). */
usec_t clock_ahead;
usec_t __real_now_usec(void);
usec_t __wrap_now_usec(void);

usec_t __wrap_now_usec(void) {
        return __real_now_usec() + clock_ahead;
}

/* What the server's PSK lookup found in the handshake (mef_peer_t.node, .target); NULL: none. */
const store_node_t *call_node;
const store_target_t *call_target;
/* The server's enrolment rate limit (mef_peer_t.enrol_limit); NULL: none. */
ratelimit_t *call_limit;
/* The fold of refusals in the audit trail (mef_peer_t.refusal_audit), as the server has it. */
ratelimit_t *call_refusals;
/* The request's X-M2M-RI; NULL: ri-0001. */
const char *call_ri;

void call(const char *psk_id, const uint8_t *ekm, const char *method, const char *target,
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
                HDR("X-M2M-RI", call_ri ? call_ri : "ri-0001");
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
                            .target = call_target, .enrol_limit = call_limit, .refusal_audit = call_refusals };
        cr_assert_eq(mef_handle(&cfg, store, &peer, &m, resp), 0);
}

void enrol_body(const char *node_id, const char *prev, char *out, size_t size) {
        if (prev)
                snprintf(out, size, "{\"msce:enrolReq\": {\"nodeID\": \"%s\", \"prev\": \"%s\"}}", node_id, prev);
        else
                snprintf(out, size, "{\"msce:enrolReq\": {\"nodeID\": \"%s\", \"loc\": {\"lat\": 48.85, \"lon\": 2.29}}}",
                         node_id);
}

/* Enrol and return the profile (asserting 201/2001). */
void enrol(const char *kpm_id, const char *node_id, const uint8_t *ekm, const char *prev, msg_profile_t *p) {
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

void expect_error(const mef_response_t *r, int status, int rsc, const char *dbg_part) {
        char dbg[MSG_DBG_MAX];
        cr_assert_eq(r->status, status, "status %d, expected %d: %.*s", r->status, status, (int) r->body_len,
                     r->body ? r->body : "");
        cr_assert_eq(r->rsc, rsc, "rsc %d, expected %d", r->rsc, rsc);
        msg_dbg_parse(r->body, r->body_len, dbg);
        cr_assert_neq(dbg[0], 0, "error without m2m:dbg");
        if (dbg_part)
                cr_assert_not_null(strstr(dbg, dbg_part), "m2m:dbg \"%s\" lacks \"%s\"", dbg, dbg_part);
}

void call_fails(const char *psk_id, const uint8_t *ekm, const char *method, const char *target, const char *origin,
                const char *body, int status, int rsc, const char *dbg_part) {
        mef_response_t r;
        call(psk_id, ekm, method, target, origin, body, 0, &r);
        expect_error(&r, status, rsc, dbg_part);
        mef_response_done(&r);
}

void fetch_fails(const char *tpsk, const char *origin, const char *keid, const char *suid, int status, int rsc,
                 const char *dbg_part) {
        mef_response_t r;
        fetch(tpsk, origin, keid, suid, &r);
        expect_error(&r, status, rsc, dbg_part);
        mef_response_done(&r);
}

void keid_of(const uint8_t *ekm, char keid[MSG_KEID_MAX + 1], uint8_t ke[KDF_KE_LEN]) {
        cr_assert_eq(kdf_split_ekm(ekm, FQDN, ke, keid, MSG_KEID_MAX + 1), 0);
}

void status_of(const char *kpm_id, const char *keid, mef_response_t *r) {
        char target[512];
        snprintf(target, sizeof target, "/msce/enrolments/%s", keid);
        call(kpm_id, NULL, "GET", target, keid, NULL, 0, r);
}

void fetch(const char *tpsk, const char *origin, const char *keid, const char *suid, mef_response_t *r) {
        char target[512];
        snprintf(target, sizeof target, "/msce/fetchCredentials/%s/%s", keid, suid);
        call(tpsk, NULL, "GET", target, origin, NULL, 0, r);
}

void fetch_credential(const char *tpsk, const char *origin, const char *keid, const char *suid, msg_credential_t *c) {
        char err[MSG_ERR_MAX] = "";
        mef_response_t r;
        fetch(tpsk, origin, keid, suid, &r);
        cr_assert_eq(r.status, 200, "%.*s", (int) r.body_len, r.body);
        cr_assert_eq(r.rsc, 2000);
        cr_assert_eq(msg_credential_parse(r.body, r.body_len, c, err), 0, "%s", err);
        mef_response_done(&r);
}

bool audit_has(const char *action, const char *subject, const char *detail_part) {
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

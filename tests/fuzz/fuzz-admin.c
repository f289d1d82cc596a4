/* SPDX-License-Identifier: MIT */
/* admin_api_handle() on an operator's request, with a real SQLite store behind it (a temporary
 * directory, seeded once through the API itself: two nodes, a target, one of the nodes
 * revoked). Input: the request as fuzz-request.h reads it. Checked: always an answer, a status
 * from 200 to 599, a JSON body that parses (for application/json), neither the seeded Kpm nor
 * the target's PSK in it, and an answer that formats. After each input the tables are put back
 * from a snapshot taken by a second connection, so inputs stay independent. */
#include <jansson.h>
#include <stdio.h>

#include "fuzz-request.h"
#include "fuzz-store.h"
#include "mef/admin-api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KPM "8899aabbccddeeff00112233445566778899aabbccddeeff0011223344556677"
#define FP "abababababababababababababababababababababababababababababababab"
#define PSK "0123456789abcdef0123456789abcdef"

static mef_config_t cfg;

static int call(const char *method, const char *target, const char *body) {
        http_msg_t m = {};
        snprintf(m.method, sizeof m.method, "%s", method);
        snprintf(m.target, sizeof m.target, "%s", target);
        m.body = (uint8_t *) (body ? strdup(body) : NULL);
        m.body_len = body ? strlen(body) : 0;
        admin_response_t r;
        check(admin_api_handle(&cfg, store, "api:fuzz", &m, &r) == 0);
        int status = r.status;
        admin_response_done(&r);
        http_msg_done(&m);
        return status;
}

static void setup(void) {
        fuzz_store_open("admin");
        cfg = (mef_config_t) { .default_lifetime = 86400, .default_poll = 3600, .retry_after = 5 };
        check(call("POST", "/admin/v1/targets", "{\"id\": \"/in-cse\", \"pskID\": \"in-psk\", \"psk\": \"" PSK "\"}") ==
              201);
        check(call("POST", "/admin/v1/nodes",
                   "{\"nodeID\": \"urn:dev:ops:f-1\", \"kpmID\": \"kpm-1\", \"kpm\": \"" KPM "\", \"cseID\": "
                   "\"/mn-f-1\", \"cseBase\": \"https://in.example.net/base\", \"targets\": [\"/in-cse\"]}") == 201);
        check(call("POST", "/admin/v1/nodes",
                   "{\"nodeID\": \"urn:dev:ops:f-2\", \"certFingerprint\": \"" FP "\", \"cseID\": \"/mn-f-2\", "
                   "\"cseBase\": \"https://in.example.net/base\"}") == 201);
        check(call("POST", "/admin/v1/nodes/urn:dev:ops:f-2/revoke", NULL) == 200);
        fuzz_store_snapshot("CREATE TABLE seed.audit AS SELECT * FROM main.audit;");
}

static void reset(void) {
        fuzz_store_restore((const char *const[]) { "audit", "enrolments", "nodes", "targets", NULL });
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!store)
                setup();
        _cleanup_(http_msg_done) http_msg_t req = {};
        if (fuzz_request_build((const char *) data, (const char *) data + size, &req) < 0)
                return 0;
        admin_response_t resp = { .status = -1 };
        check(admin_api_handle(&cfg, store, "api:fuzz", &req, &resp) == 0);
        check(resp.status >= 200 && resp.status <= 599);
        check(!resp.body || strlen(resp.body) == resp.body_len);
        if (resp.body && resp.content_type && streq(resp.content_type, "application/json")) {
                json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
                check(j);
                json_decref(j);
        }
        check(!resp.body || (!strstr(resp.body, KPM) && !strstr(resp.body, PSK)));
        _cleanup_free_ uint8_t *wire = NULL;
        size_t len = 0;
        check(admin_response_format(&resp, &wire, &len) == 0);
        admin_response_done(&resp);
        reset();
        return 0;
}

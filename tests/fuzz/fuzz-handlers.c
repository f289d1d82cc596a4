/* SPDX-License-Identifier: MIT */
/* mef_handle() on an authenticated request, with a real SQLite store behind it (a temporary
 * directory, seeded once with nodes in each state, targets and enrolments). Input:
 *   byte 0   who the TLS layer authenticated: bits 0-2 pick a peer of peers[] below, bit 3
 *            drops the exported keying material, bit 4 hands the handlers the node the PSK
 *            lookup found, bits 5-7 vary the EKM (0: the seeded enrolment's, so its KeID clashes)
 *   then     "METHOD TARGET\n", "Name: value\n" lines, an empty line, the body
 * The request goes through http_format_request() and http_parse() so the handlers see only
 * what the server could hand them. Checked: every outcome is an answer with a body that is
 * wiped and freed; an error answer changed no node, target or enrolment (only the audit trail);
 * no 500 from a well-formed store but for an enrolment that cannot be stored. After each input the
 * tables are put back from a snapshot taken by a second connection, so inputs stay independent. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz-request.h"
#include "fuzz-store.h"
#include "keys/kdf.h"
#include "mef/handlers.h"
#include "tests/unit/handlers-config.h"
#include "proto/http.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FP_NODE4 "4444444444444444444444444444444444444444444444444444444444444444"
#define FP_MAF "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static const struct {
        const char *psk, *fp;
} peers[8] = {
        { "kpm-1", NULL },   /* node-1, active, enrolled */
        { "kpm-2", NULL },   /* node-2, reenrol, enrolled */
        { "kpm-3", NULL },   /* node-3, revoked, ltk transported */
        { NULL, FP_NODE4 },  /* node-4, cert mode */
        { "in-psk", NULL },  /* target /in-cse */
        { NULL, FP_MAF },    /* target /maf-1, cert mode */
        { "nobody", NULL },
        { NULL, NULL },
};

static mef_config_t cfg;
static store_node_t nodes[5];

static void ekm_fill(uint8_t ekm[KDF_EKM_LEN], unsigned variant) {
        for (size_t i = 0; i < KDF_EKM_LEN; i++)
                ekm[i] = (uint8_t) i;
        ekm[0] ^= (uint8_t) variant;
}

static void add_node(size_t i, const char *kpm_id, const char *fp, bool ltk, node_state_t state) {
        store_node_t *n = &nodes[i];
        *n = (store_node_t) { .poll = 3600, .lifetime = 86400, .ltk_transported = ltk, .n_targets = 2 };
        snprintf(n->node_id, sizeof n->node_id, "urn:dev:ops:node-%zu", i + 1);
        snprintf(n->kpm_id, sizeof n->kpm_id, "%s", kpm_id ?: "");
        snprintf(n->cert_fp, sizeof n->cert_fp, "%s", fp ?: "");
        snprintf(n->cse_id, sizeof n->cse_id, "/mn-cse-%zu", i + 1);
        snprintf(n->cse_base, sizeof n->cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        snprintf(n->targets[0], sizeof n->targets[0], "/in-cse");
        snprintf(n->targets[1], sizeof n->targets[1], "/maf-1");
        uint8_t kpm[32];
        memset(kpm, 0x5a, sizeof kpm);
        check(store_node_add(store, n, kpm, kpm_id ? sizeof kpm : 0) == 0);
}

/* An enrolment through the handlers themselves, as the agent does it. */
static void enrol(size_t node, unsigned variant) {
        char body[512];
        uint8_t ekm[KDF_EKM_LEN];
        ekm_fill(ekm, variant);
        snprintf(body, sizeof body, "{\"msce:enrolReq\": {\"nodeID\": \"%s\"}}", nodes[node].node_id);
        http_msg_t m = { .kind = HTTP_REQUEST, .method = "POST", .target = "/msce/enrolments" };
        const char *h[][2] = { { "Host", FQDN }, { "X-M2M-Origin", nodes[node].node_id }, { "X-M2M-RI", "1" },
                               { "X-M2M-RVI", "3" }, { "Content-Type", "application/json" } };
        for (size_t i = 0; i < ELEMENTSOF(h); i++)
                m.headers[m.n_headers++] = (http_header_t) { h[i][0], h[i][1] };
        m.body = (uint8_t *) body;
        m.body_len = strlen(body);
        mef_peer_t peer = { .psk_identity = nodes[node].kpm_id[0] ? nodes[node].kpm_id : NULL,
                            .cert_fp = nodes[node].cert_fp[0] ? nodes[node].cert_fp : NULL,
                            .addr = "192.0.2.1:4711", .ekm = ekm };
        mef_response_t resp;
        check(mef_handle(&cfg, store, &peer, &m, &resp) == 0 && resp.status == 201);
        mef_response_done(&resp);
}

static void setup(void) {
        fuzz_store_open("handlers");
        cfg = handlers_config();
        add_node(0, "kpm-1", NULL, false, NODE_ACTIVE);
        add_node(1, "kpm-2", NULL, false, NODE_ACTIVE);
        add_node(2, "kpm-3", NULL, true, NODE_ACTIVE);
        add_node(3, NULL, FP_NODE4, false, NODE_ACTIVE);
        /* holds only an expired enrolment: a node has at most one active one (the store's
         * unique index), and enrolling retires the one before */
        add_node(4, "kpm-5", NULL, false, NODE_ACTIVE);
        store_target_t t = { .id = "/in-cse", .psk_id = "in-psk" };
        uint8_t psk[32];
        memset(psk, 0x33, sizeof psk);
        check(store_target_add(store, &t, psk, sizeof psk) == 0);
        t = (store_target_t) { .id = "/maf-1", .cert_fp = FP_MAF };
        check(store_target_add(store, &t, NULL, 0) == 0);
        /* KeIDs "<hex of the EKM's first 16 bytes>@mef.example.net": variant 0 is node-1's */
        enrol(0, 0);
        enrol(1, 1);
        enrol(2, 2);
        enrol(3, 3);
        enrol(0, 4); /* retires variant 0 */
        enrol(0, 5);
        store_enrolment_t old = { .ke_id = "0000000000000000000000000000000a@" FQDN,
                                  .node_id = "urn:dev:ops:node-5", .created = 1, .exp = 2 };
        uint8_t key[32] = {};
        check(store_enrolment_add(store, &old, key, sizeof key) == 0); /* expired */
        check(store_node_set_state(store, nodes[1].node_id, NODE_REENROL) == 0);
        check(store_node_set_state(store, nodes[2].node_id, NODE_REVOKED) == 0);
        nodes[1].state = NODE_REENROL;
        nodes[2].state = NODE_REVOKED;
        fuzz_store_snapshot("CREATE TABLE seed.audit_max AS SELECT max(id) AS id FROM main.audit;");
}

/* 1 when main holds other rows than the snapshot in any table but the audit trail. */
static bool changed(void) {
        static const char sql[] =
                "SELECT (SELECT count(*) FROM (SELECT * FROM main.nodes EXCEPT SELECT * FROM seed.nodes))"
                " + (SELECT count(*) FROM (SELECT * FROM seed.nodes EXCEPT SELECT * FROM main.nodes))"
                " + (SELECT count(*) FROM (SELECT * FROM main.targets EXCEPT SELECT * FROM seed.targets))"
                " + (SELECT count(*) FROM (SELECT * FROM seed.targets EXCEPT SELECT * FROM main.targets))"
                " + (SELECT count(*) FROM (SELECT * FROM main.enrolments EXCEPT SELECT * FROM seed.enrolments))"
                " + (SELECT count(*) FROM (SELECT * FROM seed.enrolments EXCEPT SELECT * FROM main.enrolments))";
        static sqlite3_stmt *st;
        if (!st)
                check(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
        check(sqlite3_step(st) == SQLITE_ROW);
        bool r = sqlite3_column_int64(st, 0) != 0;
        sqlite3_reset(st);
        return r;
}

static void reset(bool tables) {
        exec_sql("DELETE FROM main.audit WHERE id > (SELECT id FROM seed.audit_max)");
        if (tables)
                fuzz_store_restore((const char *const[]) { "enrolments", "nodes", NULL });
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!store)
                setup();
        if (size < 1)
                return 0;

        _cleanup_(http_msg_done) http_msg_t req = {};
        if (fuzz_request_build((const char *) data + 1, (const char *) data + size, &req) < 0)
                return 0;

        unsigned sel = data[0];
        uint8_t ekm[KDF_EKM_LEN];
        ekm_fill(ekm, sel >> 5);
        mef_peer_t peer = {
                .psk_identity = peers[sel & 7].psk,
                .cert_fp = peers[sel & 7].fp,
                .addr = "192.0.2.7:4711",
                .ekm = sel & 8 ? NULL : ekm,
        };
        if ((sel & 16) && (sel & 7) < 3)
                peer.node = &nodes[sel & 7];

        mef_response_t resp = { .status = -1 };
        int r = mef_handle(&cfg, store, &peer, &req, &resp);
        check(r == 0);
        check(resp.status >= 200 && resp.status <= 599);
        check(!resp.body || strlen(resp.body) == resp.body_len);
        /* a well-formed store never fails: a 500 is a handler's fault, but for an enrolment
         * without EKM or whose KeID clashes with a seeded one (EKM variants 0-5) */
        check(resp.status != 500 || streq(req.method, "POST"));
        bool ok = resp.status < 300;
        if (!ok)
                check(!changed());
        _cleanup_free_ uint8_t *wire = NULL;
        size_t len = 0;
        check(mef_response_format(&resp, http_msg_header(&req, "X-M2M-RI"), &wire, &len) == 0);
        mef_response_done(&resp);
        reset(ok);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* mef/server-exchange.c's PSK lookup and the request that follows it, with the store's answer
 * to the lookup chosen by the test (store_peer_by_psk_id() is replaced at link time,
 * -Wl,--wrap): a PSK the store gave before completes the handshake while the store fails, but
 * the request of that session is answered 503 whatever the failure, so that a key the store no
 * longer holds (replaced on another instance or with the CLI) authenticates no request. And
 * exchanges handed to a store thread of a real queue and SQLite store, their connection's
 * machinery (conn_resume()) replaced too: what a failed group commit gives back. */
#include <criterion/criterion.h>
#include <sqlite3.h>

#include "mef/ratelimit.h"
#include "mef/server-internal.h"
#include "mef/store-queue.h"
#include "util/util.h"
#include "handlers-config.h"
#include "store-tmp.h"

#define KEY_LEN 32u

/* What the wrapped lookup answers: the node with key_byte repeated, or fail_with. */
static int fail_with;
static uint8_t key_byte;
static unsigned lookups;

int __wrap_store_peer_by_psk_id(mef_store_t *s, const char *identity, store_peer_t *ret, uint8_t key[MSG_KEY_MAX],
                                size_t *ret_key_len);
int __wrap_store_peer_by_psk_id(mef_store_t *s, const char *identity, store_peer_t *ret, uint8_t key[MSG_KEY_MAX],
                                size_t *ret_key_len) {
        lookups++;
        if (fail_with < 0)
                return fail_with;
        *ret = (store_peer_t) { .kind = STORE_PEER_NODE };
        snprintf(ret->node.node_id, sizeof ret->node.node_id, "urn:dev:ops:test-1");
        snprintf(ret->node.kpm_id, sizeof ret->node.kpm_id, "%s", identity);
        memset(key, key_byte, KEY_LEN);
        *ret_key_len = KEY_LEN;
        return 0;
}

/* the stand-in store's reason for its failure: the test's (the real one reads the store) */
static store_reason_t fail_reason;
const store_reason_t *__wrap_store_error_reason(const mef_store_t *s, int r);
const store_reason_t *__wrap_store_error_reason(const mef_store_t *s, int r) {
        return r < 0 && fail_reason.text[0] ? &fail_reason : NULL;
}

/* The stand-in store's reason from now on: the server's words or msce-mef's own. */
static void fail_reason_set(const char *text, bool servers) {
        fail_reason.servers = servers;
        snprintf(fail_reason.text, sizeof fail_reason.text, "%s", text);
}

static mef_config_t cfg = { .retry_after = 7 };
static server_t server;
static int store_stand_in; /* never read: the lookup is the wrapped one */

static void setup(void) {
        server = (server_t) { .cfg = &cfg, .store = (mef_store_t *) &store_stand_in };
        server.gateways = (listener_t) { .ops = &server_exchange_ops, .userdata = &server, .cfg = &cfg,
                                         .busy_usec = USEC_PER_SEC };
        cr_assert_eq(psk_cache_new(&server.psks), 0);
        fail_with = 0;
        fail_reason = (store_reason_t) { .text = "" };
        key_byte = 0;
        lookups = 0;
}

static void teardown(void) {
        server.psks = psk_cache_free(server.psks);
}

TestSuite(server_exchange, .init = setup, .fini = teardown);

/* A new connection's handshake offering identity: the key the lookup gave, its length. */
static unsigned handshake(conn_t *c, const char *identity, uint8_t key[MSG_KEY_MAX]) {
        *c = (conn_t) { .listener = &server.gateways, .fd = -1 };
        unsigned n = server_psk_lookup(c, identity, key, MSG_KEY_MAX);
        if (n > 0) {
                c->psk_identity = identity;
                c->authenticated = true;
        }
        return n;
}

/* The session's request: 1 answered at once (c->status), 0 handed to a store thread, <0 close.
 * There is no store queue here: a request handed on fails with -EINVAL. */
static int request(conn_t *c) {
        http_msg_t msg = {};
        int r = server_exchange_ops.handle(c, &msg);
        http_msg_done(&msg);
        return r;
}

static void conn_done(conn_t *c) {
        erase_free(c->out, c->out_len);
        c->out = NULL;
}

static void check_cached_key_answers_503(int failure) {
        conn_t c;
        uint8_t key[MSG_KEY_MAX];

        /* the store gives K1: the handshake completes with it, and it is cached */
        key_byte = 0x11;
        cr_assert_eq(handshake(&c, "kpm-1", key), KEY_LEN);
        cr_assert_eq(key[0], 0x11);

        /* the store fails: K1 from the cache completes the handshake ... */
        fail_with = failure;
        cr_assert_eq(handshake(&c, "kpm-1", key), KEY_LEN, "the cached key completes the handshake");
        cr_assert_eq(key[0], 0x11);
        cr_assert_eq(lookups, 2);
        /* ... but its request is answered 503 + Retry-After without the store: K1 may have
         * been replaced meanwhile (node removed and added again with a new Kpm under the same
         * KpmID, on another instance or with the CLI), and the request's handlers would find the
         * node by its KpmID alone */
        int r = request(&c);
        cr_assert_eq(r, 1, "the request of a session keyed from the cache was handed to the store (%d)", r);
        cr_assert_eq(c.status, 503);
        cr_assert_not_null(memmem(c.out, c.out_len, "Retry-After: 7\r\n", 16));
        /* its log line says why: the lookup's failure (before, "-> 503 (1 ms)" and nothing) */
        char cause[CONN_CAUSE_MAX], want[CONN_CAUSE_MAX];
        snprintf(want, sizeof want, ": store unavailable looking up the PSK identity (a cached key used): %s",
                 strerror(-failure));
        cr_assert_str_eq(conn_failure_cause(&c, cause, sizeof cause), want);
        conn_done(&c);
}

Test(server_exchange, cached_key_busy_store_answers_503) {
        /* locked past the loop's busy timeout (SQLite), or on PostgreSQL a lookup ahead that no
         * store thread started in time */
        check_cached_key_answers_503(-EBUSY);
}

Test(server_exchange, cached_key_store_gone_answers_503) {
        check_cached_key_answers_503(-ECONNRESET);
}

Test(server_exchange, key_from_the_store_goes_to_the_store) {
        conn_t c;
        uint8_t key[MSG_KEY_MAX];
        key_byte = 0x22;
        cr_assert_eq(handshake(&c, "kpm-2", key), KEY_LEN);
        cr_assert_not(c.store_away);
        /* handed on (to no queue here: -EINVAL), not answered 503 */
        cr_assert_eq(request(&c), -EINVAL);
        conn_done(&c);
}

Test(server_exchange, unknown_to_the_cache_fails_the_handshake) {
        conn_t c;
        uint8_t key[MSG_KEY_MAX];
        char cause[CONN_CAUSE_MAX];
        fail_with = -EBUSY;
        cr_assert_eq(handshake(&c, "kpm-3", key), 0);
        /* the handshake's failure line says the store was away, not an unknown identity */
        cr_assert_str_eq(conn_failure_cause(&c, cause, sizeof cause),
                         ": store unavailable looking up the PSK identity (no key cached): Device or resource busy");
        /* with the database server's reason when it gave one */
        fail_with = -ECONNREFUSED;
        fail_reason_set("57P03: the database system is starting up", true);
        cr_assert_eq(handshake(&c, "kpm-3", key), 0);
        cr_assert_str_eq(conn_failure_cause(&c, cause, sizeof cause),
                         ": store unavailable looking up the PSK identity (no key cached): Connection refused, "
                         "PostgreSQL said 57P03: the database system is starting up");
        /* msce-mef's own reason (no SQLSTATE): not put as the server's */
        fail_reason_set("no answer from db1 port 5432 within 5 s (connect_timeout)", false);
        cr_assert_eq(handshake(&c, "kpm-3", key), 0);
        cr_assert_str_eq(conn_failure_cause(&c, cause, sizeof cause),
                         ": store unavailable looking up the PSK identity (no key cached): Connection refused: "
                         "no answer from db1 port 5432 within 5 s (connect_timeout)");
        /* nor when it begins as a SQLSTATE would: whose words it is goes with it, not read from it */
        fail_reason_set("DB001: no answer within 5 s (connect_timeout)", false);
        cr_assert_eq(handshake(&c, "kpm-3", key), 0);
        cr_assert_str_eq(conn_failure_cause(&c, cause, sizeof cause),
                         ": store unavailable looking up the PSK identity (no key cached): Connection refused: "
                         "DB001: no answer within 5 s (connect_timeout)");
        /* a cached key completes it: the failure is kept for the line of the 503 that follows */
        fail_with = 0;
        key_byte = 0x33;
        cr_assert_eq(handshake(&c, "kpm-3", key), KEY_LEN);
        fail_with = -ECONNREFUSED;
        cr_assert_eq(handshake(&c, "kpm-3", key), KEY_LEN);
        cr_assert_str_eq(conn_failure_cause(&c, cause, sizeof cause),
                         ": store unavailable looking up the PSK identity (a cached key used): Connection refused: "
                         "DB001: no answer within 5 s (connect_timeout)");
        cr_assert_eq(request(&c), 1);
        cr_assert_eq(c.status, 503);
        cr_assert_str_eq(conn_failure_cause(&c, cause, sizeof cause),
                         ": store unavailable looking up the PSK identity (a cached key used): Connection refused: "
                         "DB001: no answer within 5 s (connect_timeout)");
        conn_done(&c);
}

/* ---- exchanges through a store thread (a real SQLite store and queue) ---- */

/* conn_resume() replaced at link time: the exchange handed back to the connection, whose
 * machinery (socket, TLS, timers) this test has none of. */
static unsigned resumed;
void __wrap_conn_resume(conn_t *c, int r);
void __wrap_conn_resume(conn_t *c, int r) {
        cr_assert_geq(r, 0, "the answer of %s closes the connection: %d", c->psk_identity, r);
        resumed++;
}

static const char *const enrol_headers[][2] = {
        { "Host", "mef.example.net" },      { "X-M2M-Origin", NULL }, { "X-M2M-RI", "ri-batch" },
        { "x-m2m-rvi", "3" },               { "Accept", "application/json" },
        { "Content-Type", "application/json; charset=utf-8" },
};

/* c's enrolment request as node node_id (PSK identity kpm_id, exporter output of ekm_byte),
 * handed to the queue: answered once the loop runs. */
static void enrol_submit(conn_t *c, const char *kpm_id, const char *node_id, uint8_t ekm_byte) {
        *c = (conn_t) { .listener = &server.gateways, .fd = -1, .psk_identity = kpm_id, .authenticated = true,
                        .deadline = now_usec() + 60 * USEC_PER_SEC };
        memset(c->ekm, ekm_byte, sizeof c->ekm);
        http_msg_t m = { .kind = HTTP_REQUEST, .method = "POST", .target = "/msce/enrolments" };
        for (size_t i = 0; i < ELEMENTSOF(enrol_headers); i++)
                m.headers[m.n_headers++] = (http_header_t) { .name = enrol_headers[i][0],
                                                             .value = enrol_headers[i][1] ?: node_id };
        char body[256];
        int n = snprintf(body, sizeof body, "{\"msce:enrolReq\": {\"nodeID\": \"%s\"}}", node_id);
        m.body = (uint8_t *) strdup(body);
        m.body_len = (size_t) n;
        cr_assert_not_null(m.body);
        cr_assert_eq(server_exchange_ops.handle(c, &m), 0, "not handed to the queue");
        http_msg_done(&m);
}

/* Runs the loop until the store thread has answered the n exchanges submitted. */
static void answers_wait(sd_event *e, unsigned n) {
        uint64_t hang = now_usec() + 60 * USEC_PER_SEC; /* a hang, not a speed requirement */
        while (resumed < n && now_usec() < hang)
                cr_assert_geq(sd_event_run(e, 100 * USEC_PER_MSEC), 0);
        cr_assert_eq(resumed, n, "%u of %u exchanges answered", resumed, n);
        resumed = 0;
}

static void trap_sql(const char *dir, const char *sql) {
        char db_path[128];
        snprintf(db_path, sizeof db_path, "%s/mef.db", dir);
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
        sqlite3_close(db);
}

/* Two enrolments queued together run in one transaction (group commit) and their handlers
 * answer 201; the batch's COMMIT then fails (a deferred foreign key their rows break, set up
 * behind the store's back), and each is answered 500. The store thread gives each node's
 * [limits] enrolments_per_node allowance back (exchange_job_unstored()): with 1 a day, both
 * enrol once the store is mended, rather than get 429 for a day. */
Test(server_exchange, batch_commit_failed_gives_the_allowance_back) {
        static const char *const nodes[][2] = { { "kpm-batch-a", "urn:dev:ops:batch-a" },
                                                { "kpm-batch-b", "urn:dev:ops:batch-b" } };
        char dir[] = "/tmp/test-server-exchange-XXXXXX", db[128], key[128];
        mef_store_t *store = store_tmp_open(dir);
        for (size_t i = 0; i < ELEMENTSOF(nodes); i++) {
                store_node_t n = { .poll = 3600, .lifetime = 86400, .state = NODE_ACTIVE };
                snprintf(n.kpm_id, sizeof n.kpm_id, "%s", nodes[i][0]);
                snprintf(n.node_id, sizeof n.node_id, "%s", nodes[i][1]);
                snprintf(n.cse_id, sizeof n.cse_id, "/mn-cse-batch-%zu", i);
                snprintf(n.cse_base, sizeof n.cse_base, "https://in.example.net:8443/~/in-cse/in-name");
                uint8_t kpm[KEY_LEN];
                memset(kpm, 0x5a, sizeof kpm);
                cr_assert_eq(store_node_add(store, &n, kpm, sizeof kpm), 0);
        }
        store = store_close(store);
        snprintf(db, sizeof db, "%s/mef.db", dir);
        snprintf(key, sizeof key, "%s/master.key", dir);
        cfg = handlers_config();
        cfg.store_backend = STORE_BACKEND_SQLITE;
        cfg.store_path = db;
        cfg.master_key_path = key;
        cfg.enrolments_per_node = 1;
        cfg.enrolment_window_s = 86400;
        sd_event *e = NULL;
        cr_assert_eq(sd_event_new(&e), 0);
        cr_assert_eq(store_queue_new(e, &cfg, 1, 8, 30000, &server.gateways.queue, NULL), 0);
        server.gateways.busy_usec = 30 * USEC_PER_SEC; /* no 503 for a slow machine */
        cr_assert_eq(ratelimit_new(1, 86400 * USEC_PER_SEC, 16, &server.enrol_limit), 0);

        trap_sql(dir, "CREATE TABLE trap_parent (id INTEGER PRIMARY KEY);"
                      "CREATE TABLE trap (p INTEGER REFERENCES trap_parent (id) DEFERRABLE INITIALLY DEFERRED);"
                      "CREATE TRIGGER trap_enrol AFTER INSERT ON enrolments BEGIN INSERT INTO trap VALUES (1); END;");
        /* both queued before the loop wakes the thread (on_kick): it takes them as one batch */
        conn_t c[2];
        char cause[CONN_CAUSE_MAX];
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                enrol_submit(&c[i], nodes[i][0], nodes[i][1], (uint8_t) (0x10 + i));
        answers_wait(e, ELEMENTSOF(c));
        for (size_t i = 0; i < ELEMENTSOF(c); i++) {
                cr_assert_eq(c[i].status, 500, "%s: %d", nodes[i][1], c[i].status);
                /* the batch's failure (a handler's own failed COMMIT would say what it stored) */
                conn_failure_cause(&c[i], cause, sizeof cause);
                cr_assert_eq(strncmp(cause, ": handling the request: ", 24), 0, "%s: %s", nodes[i][1], cause);
                conn_done(&c[i]);
        }

        trap_sql(dir, "DROP TRIGGER trap_enrol");
        for (size_t i = 0; i < ELEMENTSOF(c); i++) {
                enrol_submit(&c[i], nodes[i][0], nodes[i][1], (uint8_t) (0x20 + i));
                answers_wait(e, 1);
                cr_assert_eq(c[i].status, 201, "%s after the failed batch: %d", nodes[i][1], c[i].status);
                conn_done(&c[i]);
        }

        server.gateways.queue = store_queue_free(server.gateways.queue);
        server.enrol_limit = ratelimit_free(server.enrol_limit);
        sd_event_unref(e);
        store_tmp_remove(dir);
}

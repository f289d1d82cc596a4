/* SPDX-License-Identifier: MIT */
/* mef/server-exchange.c's PSK lookup and the request that follows it, with the store's answer
 * to the lookup chosen by the test (store_peer_by_psk_id() is replaced at link time,
 * -Wl,--wrap): a PSK the store gave before completes the handshake while the store fails, but
 * the request of that session is answered 503 whatever the failure, so that a key the store no
 * longer holds (replaced on another instance or with the CLI) authenticates no request. */
#include <criterion/criterion.h>

#include "mef/server-internal.h"
#include "util/util.h"

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

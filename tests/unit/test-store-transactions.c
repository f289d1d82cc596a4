/* SPDX-License-Identifier: MIT */
/* Store transactions as the MEF runs them (store-fixture.h: on SQLite, and on PostgreSQL under
 * tests/pg-run.sh, where statements are pipelined): a failed write leaves nothing, the queue
 * drains, a lost connection ends the transaction. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <pthread.h>
#include <unistd.h>

#include "mef/store-backup.h"
#include "mef/store-internal.h"
#include "tests/unit/store-fixture.h"
#include "util/util.h"

/* An enrolment as the MEF stores one (mef/handlers-enrol.c): the first error of the chain.
 * reenrol: the MEF read the node waiting for re-enrolment, and sets it active. */
static int enrol_exchange_as(mef_store_t *s, const store_enrolment_t *e, const uint8_t *ke, size_t n, bool reenrol) {
        int r = store_begin(s);
        if (r >= 0)
                r = store_key_guard(s);
        if (r >= 0)
                r = store_enrolment_set_state_for_node(s, e->node_id, ENROLMENT_RETIRED);
        if (r >= 0)
                r = store_enrolment_add(s, e, ke, n);
        if (r >= 0 && reenrol)
                r = store_node_set_state(s, e->node_id, NODE_ACTIVE);
        if (r >= 0)
                r = store_audit(s, "peer", "enrol", e->ke_id, NULL);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}

static int enrol_exchange(mef_store_t *s, const store_enrolment_t *e, const uint8_t *ke, size_t n) {
        return enrol_exchange_as(s, e, ke, n, false);
}

static void assert_node_state(mef_store_t *s, const char *node_id, node_state_t want) {
        store_node_t n;
        cr_assert_eq(store_node_get(s, node_id, &n), 0, "%s", node_id);
        cr_assert_eq(n.state, want, "%s: state %d", node_id, n.state);
}

static void assert_enrolment_state(mef_store_t *s, const char *ke_id, enrolment_state_t want) {
        store_enrolment_t r;
        cr_assert_eq(store_enrolment_get(s, ke_id, &r, NULL, NULL), 0, "%s", ke_id);
        cr_assert_eq(r.state, want, "%s: state %d", ke_id, r.state);
}

/* On PostgreSQL the INSERTs are queued (pipelined) and their error comes with the COMMIT: the
 * same -errno as at once on SQLite, and nothing of the exchange stays. */
Test(store, transaction_failed_write_leaves_store) {
        uint8_t ke[32]; /* the nodes' Kpm too: nothing here reads a key back */
        mef_store_t *s = open_psk_nodes("ab", ke, 10);
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000), b1 = enrolment("b1@mef", "b", 1000);
        cr_assert_eq(enrol_exchange(s, &a1, ke, sizeof ke), 0);
        cr_assert_eq(enrol_exchange(s, &b1, ke, sizeof ke), 0);

        /* node b again, with a KeID that is a's */
        store_enrolment_t dup = enrolment("a1@mef", "b", 2000);
        cr_assert_eq(enrol_exchange(s, &dup, ke, sizeof ke), -EEXIST);
        store_enrolment_t orphan = enrolment("x1@mef", "nobody", 2000);
        cr_assert_eq(enrol_exchange(s, &orphan, ke, sizeof ke), -ENOENT);
        assert_enrolment_state(s, "b1@mef", ENROLMENT_ACTIVE); /* the retirement went back too */
        store_enrolment_t r;
        cr_assert_eq(store_enrolment_get(s, "a1@mef", &r, NULL, NULL), 0);
        cr_assert_str_eq(r.node_id, "a");
        assert_audit(s, 2, "b1@mef", "a1@mef"); /* only the exchanges that went through */

        /* a failure in the middle: the next calls of the transaction get it, the commit too */
        cr_assert_eq(store_begin(s), 0);
        int q = store_enrolment_add(s, &dup, ke, sizeof ke);
        cr_assert(q == 0 || q == -EEXIST, "%d", q); /* PostgreSQL: only queued */
        cr_assert_eq(store_enrolment_get(s, "b1@mef", &r, NULL, NULL), q == 0 ? -EEXIST : 0);
        cr_assert_eq(store_commit(s), q == 0 ? -EEXIST : 0);
        store_rollback(s);

        /* and the store goes on: a re-enrolment retires the previous one */
        store_enrolment_t b2 = enrolment("b2@mef", "b", 3000);
        cr_assert_eq(enrol_exchange(s, &b2, ke, sizeof ke), 0);
        assert_enrolment_state(s, "b1@mef", ENROLMENT_RETIRED);
        assert_enrolment_state(s, "b2@mef", ENROLMENT_ACTIVE);
        store_close(s);
}

/* A revocation committed after the MEF read the node (waiting for re-enrolment) and before its
 * transaction: the enrolment is refused whole (-EINVAL, store.h), so the node is not set active
 * again and its revoked state stands. */
Test(store, enrolment_of_node_revoked_since_read) {
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000), a2 = enrolment("a2@mef", "a", 2000),
                          b1 = enrolment("b1@mef", "b", 2000), got;
        mef_store_t *s = open_with("ab", 15, (store_enrolment_t *const[]) { &a1, NULL });
        uint8_t ke[32];
        recognisable_key(ke, sizeof ke, 17);
        cr_assert_eq(store_node_set_state(s, "a", NODE_REENROL), 0);
        /* the MEF reads "reenrol" here; the revocation lands */
        cr_assert_eq(store_node_set_state(s, "a", NODE_REVOKED), 0);
        cr_assert_eq(enrol_exchange_as(s, &a2, ke, sizeof ke, true), -EINVAL);
        assert_node_state(s, "a", NODE_REVOKED);
        cr_assert_eq(store_enrolment_get(s, "a2@mef", &got, NULL, NULL), -ENOENT);
        assert_enrolment_state(s, "a1@mef", ENROLMENT_ACTIVE); /* its retirement went back */
        assert_audit(s, 0, NULL, NULL);

        /* other nodes as before; a row not active (an import's) of the revoked node still goes in */
        cr_assert_eq(enrol_exchange(s, &b1, ke, sizeof ke), 0);
        store_enrolment_t a3 = enrolment_as("a3@mef", "a", 3000, ENROLMENT_REVOKED);
        cr_assert_eq(store_enrolment_add(s, &a3, ke, sizeof ke), 0);
        store_close(s);
}

/* Group commit (store_batch_begin(), SQLite): the exchanges of a batch behave as they do one
 * by one (a failed one leaves nothing, the others stay), and another connection sees none of
 * them before store_batch_end(). PostgreSQL has no batch. */
Test(store, batch_exchanges_commit_together) {
        uint8_t ke[32];
        mef_store_t *s = open_psk_nodes("abc", ke, 14);
        store_enrolment_t b0 = enrolment("b0@mef", "b", 500);
        cr_assert_eq(enrol_exchange(s, &b0, ke, sizeof ke), 0);
        int r = store_batch_begin(s);
        if (r == -EOPNOTSUPP) {
                cr_assert_not_null(pg_uri, "only PostgreSQL refuses a batch");
                store_close(s);
                return;
        }
        cr_assert_eq(r, 0);
        cr_assert(store_batch_alive(s));
        cr_assert_eq(store_batch_begin(s), -EINVAL, "one batch at a time");

        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000), dup = enrolment("a1@mef", "b", 1000),
                          c1 = enrolment("c1@mef", "c", 1000);
        cr_assert_eq(enrol_exchange(s, &a1, ke, sizeof ke), 0);
        cr_assert_eq(enrol_exchange(s, &dup, ke, sizeof ke), -EEXIST);
        cr_assert_eq(enrol_exchange(s, &c1, ke, sizeof ke), 0);
        cr_assert(store_batch_alive(s), "a failed exchange does not end the batch");
        store_enrolment_t e;
        cr_assert_eq(store_enrolment_get(s, "c1@mef", &e, NULL, NULL), 0, "the batch sees its own writes");

        mef_store_t *other = NULL;
        cr_assert_eq(open_db(0, &other), 0);
        cr_assert_eq(store_enrolment_get(other, "a1@mef", &e, NULL, NULL), -ENOENT, "not before the commit");
        cr_assert_eq(store_batch_end(s, true), 0);
        cr_assert(!store_batch_alive(s));
        cr_assert_eq(store_enrolment_get(other, "a1@mef", &e, NULL, NULL), 0);
        cr_assert_str_eq(e.node_id, "a");
        cr_assert_eq(store_enrolment_get(other, "c1@mef", &e, NULL, NULL), 0);
        assert_audit(other, 3, "c1@mef", "b0@mef"); /* not the failed exchange's */
        assert_enrolment_state(other, "b0@mef", ENROLMENT_ACTIVE); /* its retirement went back */

        /* a batch given up: nothing of it stays, and transactions are whole again after it */
        store_enrolment_t b1 = enrolment("b1@mef", "b", 2000), b2 = enrolment("b2@mef", "b", 3000);
        cr_assert_eq(store_batch_begin(s), 0);
        cr_assert_eq(enrol_exchange(s, &b1, ke, sizeof ke), 0);
        cr_assert_eq(store_begin(s), 0); /* a job that forgot its transaction open */
        cr_assert_eq(store_batch_end(s, false), 0);
        cr_assert_eq(store_enrolment_get(other, "b1@mef", &e, NULL, NULL), -ENOENT);
        cr_assert_eq(enrol_exchange(s, &b2, ke, sizeof ke), 0);
        cr_assert_eq(store_enrolment_get(other, "b2@mef", &e, NULL, NULL), 0);
        cr_assert_eq(store_batch_end(s, true), -EINVAL, "no batch open");
        store_close(other);
        store_close(s);
}

/* PostgreSQL prepares statements on first use, inside the pipeline: an error before a prepare
 * leaves it unmade, and the statement's next use must prepare it again. */
Test(store, transaction_failed_at_first_use) {
        uint8_t ke[32];
        mef_store_t *s = open_psk_nodes("ab", ke, 12);
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000);
        cr_assert_eq(store_enrolment_add(s, &a1, ke, sizeof ke), 0);
        /* the audit INSERT's first use comes after the failing enrolment INSERT */
        store_enrolment_t dup = enrolment("a1@mef", "b", 2000), b1 = enrolment("b1@mef", "b", 2000);
        cr_assert_eq(enrol_exchange(s, &dup, ke, sizeof ke), -EEXIST);
        cr_assert_eq(enrol_exchange(s, &b1, ke, sizeof ke), 0);
        assert_audit(s, 1, "b1@mef", NULL);
        store_close(s);
}

/* More queued statements than PostgreSQL's engine sends before reading their results (256):
 * they all land, or none when one fails. */
Test(store, transaction_long_queue) {
        mef_store_t *s = open_new();
        char subject[16];
        cr_assert_eq(store_begin(s), 0);
        for (int i = 0; i < 300; i++) {
                snprintf(subject, sizeof subject, "row-%d", i);
                cr_assert_eq(store_audit(s, "cli", "test", subject, NULL), 0);
        }
        cr_assert_eq(store_commit(s), 0);
        int r = store_begin(s);
        for (int i = 0; r >= 0 && i < 300; i++)
                r = i == 280 ? store_enrolment_set_state(s, "nope", ENROLMENT_RETIRED)
                             : store_audit(s, "cli", "test-2", "x", NULL);
        if (r >= 0)
                r = store_commit(s);
        cr_assert_eq(r, -ENOENT);
        store_rollback(s);
        assert_audit(s, 300, "row-299", "row-0"); /* the first transaction's only */
        store_close(s);
}

/* A rekey through another handle (another instance, the CLI): this handle's next seal must not
 * be under the old key. SQLite reads the check value first. PostgreSQL checks it inside the
 * transaction, at no round trip: the first attempt fails with -ESTALE and stores nothing, its
 * rollback reads the new key, and the second goes in. The rekeying handle opens the key. */
Test(store, enrolment_sealed_after_a_rekey_elsewhere) {
        uint8_t ke[32], k2[32], k[MSG_KEY_MAX];
        size_t len;
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000), a2 = enrolment("a2@mef", "a", 2000), got;
        mef_store_t *serving = open_with("a", 40, (store_enrolment_t *const[]) { &a1, NULL }), *cli = NULL;
        recognisable_key(ke, sizeof ke, 41); /* open_with()'s Ke */
        recognisable_key(k2, sizeof k2, 42);
        cr_assert_eq(store_enrolment_get(serving, "a1@mef", &got, k, &len), 0); /* the key in use */
        cr_assert_eq(open_db(0, &cli), 0);
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(cli, &rk), 0);
        cr_assert_eq(rk.resealed, 2, "the node's Kpm and a1's Ke re-encrypted: %" PRIu64, rk.resealed);

        int r = enrol_exchange(serving, &a2, k2, sizeof k2);
        if (pg_uri) {
                cr_assert_eq(r, -ESTALE, "sealed under the replaced key: %d", r);
                cr_assert_eq(store_enrolment_get(cli, "a2@mef", &got, NULL, NULL), -ENOENT);
                assert_enrolment_state(cli, "a1@mef", ENROLMENT_ACTIVE);
                r = enrol_exchange(serving, &a2, k2, sizeof k2);
        }
        cr_assert_eq(r, 0);
        cr_assert_eq(store_enrolment_get(cli, "a2@mef", &got, k, &len), 0);
        cr_assert_eq(len, sizeof k2);
        cr_assert_arr_eq(k, k2, sizeof k2);
        cr_assert_eq(store_enrolment_get(serving, "a1@mef", &got, k, &len), 0);
        cr_assert_arr_eq(k, ke, sizeof ke);
        assert_enrolment_state(cli, "a1@mef", ENROLMENT_RETIRED);
        store_close(cli);
        store_close(serving);
}

/* A transaction of many adds (a bulk import) reads the master key once (store_key_hold()): a
 * rekey committed since the handle read its key is followed, not failed, and every secret of
 * the transaction is sealed under the new key. */
Test(store, bulk_add_with_the_key_held_follows_a_rekey_made_since) {
        uint8_t kpm[32], k[MSG_KEY_MAX];
        size_t len;
        mef_store_t *serving = open_with("a", 60, (store_enrolment_t *const[]) { NULL }), *cli = NULL;
        cr_assert_eq(open_db(0, &cli), 0);
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(cli, &rk), 0);
        recognisable_key(kpm, sizeof kpm, 61);
        cr_assert_eq(store_begin(serving), 0);
        cr_assert_eq(store_key_hold(serving), 0);
        store_node_t b = psk_node("b", "kpm-b"), c = psk_node("c", "kpm-c"), got;
        cr_assert_eq(store_node_add(serving, &b, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_add(serving, &c, kpm, sizeof kpm), 0);
        cr_assert_eq(store_commit(serving), 0);
        for (const char *const *id = (const char *const[]) { "kpm-b", "kpm-c", NULL }; *id; id++) {
                cr_assert_eq(store_node_by_kpm_id(cli, *id, &got, k, &len), 0, "%s under the new key", *id);
                cr_assert_arr_eq(k, kpm, sizeof kpm);
        }
        store_close(cli);
        store_close(serving);
}

/* A rekey stopped after its commit of the new key by a secret that opens under no key (node b's
 * Kpm); the handle that ran it. rekey_finish(): b removed, the next rekey resumes and renames. */
static mef_store_t *rekey_stopped(void) {
        uint8_t junk[60] = { 0 };
        mef_store_t *cli = NULL;
        sql_exec("UPDATE nodes SET kpm_enc = ?1 WHERE node_id = 'b'", junk, sizeof junk);
        cr_assert_eq(open_db(0, &cli), 0);
        store_rekey_result_t rk;
        cr_assert_eq(store_rekey(cli, &rk), -EBADMSG);
        cr_assert(rk.took_over);
        return cli;
}

static void rekey_finish(mef_store_t *cli) {
        store_rekey_result_t rk;
        sql_exec("DELETE FROM nodes WHERE node_id = 'b'", NULL, 0);
        cr_assert_eq(store_rekey(cli, &rk), 0);
        cr_assert(rk.resumed);
}

/* A handle that took both keys while a rekey was under way drops the old one once the rekey is
 * done, at its next enrolment: on PostgreSQL its check value no longer changes then, and the
 * guard reads none. A secret under the old key opens no more (the master key replaced stays in
 * no process longer than it serves). */
Test(store, old_key_dropped_once_a_rekey_is_done) {
        uint8_t k[MSG_KEY_MAX], ke[32], old[128];
        size_t len;
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000), a2 = enrolment("a2@mef", "a", 2000),
                          a3 = enrolment("a3@mef", "a", 3000), got;
        mef_store_t *serving = open_with("ab", 50, (store_enrolment_t *const[]) { &a1, NULL });
        recognisable_key(ke, sizeof ke, 51);
        int old_len = blob_read("SELECT key_enc FROM enrolments WHERE ke_id = 'a1@mef'", old, sizeof old);
        mef_store_t *cli = rekey_stopped();
        int r = enrol_exchange(serving, &a2, ke, sizeof ke); /* takes both keys */
        if (r == -ESTALE)                                    /* PostgreSQL: the guard saw the new check */
                r = enrol_exchange(serving, &a2, ke, sizeof ke);
        cr_assert_eq(r, 0);
        cr_assert_eq(store_enrolment_get(serving, "a1@mef", &got, k, &len), 0, "under the old key, still");
        rekey_finish(cli);
        cr_assert_eq(enrol_exchange(serving, &a3, ke, sizeof ke), 0);
        /* a1's Ke as it was under the old key, put back: the serving handle opens it no more */
        sql_exec("UPDATE enrolments SET key_enc = ?1 WHERE ke_id = 'a1@mef'", old, old_len);
        cr_assert_eq(store_enrolment_get(serving, "a1@mef", &got, k, &len), -EBADMSG);
        cr_assert_eq(store_enrolment_get(serving, "a3@mef", &got, k, &len), 0);
        cr_assert_arr_eq(k, ke, sizeof ke);
        store_close(cli);
        store_close(serving);
}

/* The same for a handle that only reads, as the event loop's does for handshakes' lookups: it
 * takes both keys at a read of a secret under the new one, and drops the old one at its first
 * read once the rekey is done, though it seals nothing and so never reads the check value. */
Test(store, old_key_dropped_by_a_handle_that_only_reads) {
        uint8_t k[MSG_KEY_MAX], kpm[32], old[128];
        size_t len;
        store_node_t c = psk_node("c", "kpm-c"), got;
        mef_store_t *reader = open_with("ab", 70, (store_enrolment_t *const[]) { NULL });
        recognisable_key(kpm, sizeof kpm, 70);
        int old_len = blob_read("SELECT kpm_enc FROM nodes WHERE node_id = 'a'", old, sizeof old);
        mef_store_t *cli = rekey_stopped(); /* then a node sealed under the new key */
        cr_assert_eq(store_node_add(cli, &c, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_by_kpm_id(reader, "kpm-c", &got, k, &len), 0, "under the new key: both taken");
        cr_assert_eq(store_node_by_kpm_id(reader, "kpm-a", &got, k, &len), 0, "under either key");
        /* the rekey finished, then one read: a's Kpm as it was under the old key, put back, opens
         * no more */
        rekey_finish(cli);
        store_close(cli);
        cr_assert_eq(store_node_by_kpm_id(reader, "kpm-c", &got, k, &len), 0);
        cr_assert_arr_eq(k, kpm, sizeof kpm);
        sql_exec("UPDATE nodes SET kpm_enc = ?1 WHERE node_id = 'a'", old, old_len);
        cr_assert_eq(store_node_by_kpm_id(reader, "kpm-a", &got, k, &len), -EBADMSG);
        store_close(reader);
}

#if HAVE_LIBPQ
/* The store's PostgreSQL backend terminated, and gone. */
static void kill_the_store_backend(void) {
        cr_assert_eq(pg_count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = 'msce-mef'"), 1);
        uint64_t end = now_usec() + 10000000u;
        while (pg_count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'msce-mef'") > 0)
                cr_assert_lt(now_usec(), end, "the store's backend did not end");
}

/* Enrolment a1@mef read through s once it has reconnected (refusals meanwhile transient). */
static void await_a1(mef_store_t *s, store_enrolment_t *got) {
        uint64_t end = now_usec() + 10000000u;
        int r;
        while ((r = store_enrolment_get(s, "a1@mef", got, NULL, NULL)) != 0) {
                cr_assert(store_error_is_transient(r), "%d", r);
                cr_assert_lt(now_usec(), end, "no reconnect: %d", r);
                usleep(20000);
        }
}

/* The connection lost in the middle of a pipelined transaction: the rest of it must not run on
 * a new connection outside it. It fails as transient up to its end, nothing of it is stored,
 * and the store reconnects after. */
Test(store, pg_connection_lost_in_transaction) {
        pg_only();
        uint8_t ke[32];
        mef_store_t *s = open_psk_nodes("a", ke, 13);
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000), a2 = enrolment("a2@mef", "a", 2000), got;
        cr_assert_eq(enrol_exchange(s, &a1, ke, sizeof ke), 0);

        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_key_guard(s), 0); /* as mef/handlers-enrol.c */
        cr_assert_eq(store_enrolment_set_state_for_node(s, "a", ENROLMENT_RETIRED), 0);
        kill_the_store_backend();
        int r = store_enrolment_add(s, &a2, ke, sizeof ke);
        cr_assert_eq(r, 0, "%d: queued (its key sealed without a round trip), it fails with the commit", r);
        /* longer than a reconnect takes (twice a second): still refused */
        for (uint64_t end = now_usec() + 1200000u; now_usec() < end; usleep(20000)) {
                r = store_enrolment_get(s, "a1@mef", &got, NULL, NULL);
                cr_assert(store_error_is_transient(r), "%d: a call of the lost transaction ran outside it", r);
        }
        r = store_commit(s);
        cr_assert(store_error_is_transient(r), "%d", r);
        /* with a reason for the log line of the request it fails: the server's FATAL that ended
         * the connection, or msce-mef's own when none came (pg_lost()) */
        const store_reason_t *why = store_error_reason(s, r);
        cr_assert_not_null(why, "%d: no reason", r);
        cr_assert(strstr(why->text, "57P01: terminating connection") || strstr(why->text, "connection to PostgreSQL lost"),
                  "%s", why->text);
        store_rollback(s);

        await_a1(s, &got);
        cr_assert_eq(got.state, ENROLMENT_ACTIVE, "the lost transaction's retirement stayed");
        cr_assert_eq(store_enrolment_get(s, "a2@mef", &got, NULL, NULL), -ENOENT);
        cr_assert_eq(enrol_exchange(s, &a2, ke, sizeof ke), 0);
        store_close(s);
}

/* PostgreSQL only: a store with node a, enrolled as a1@mef under key ke. */
static mef_store_t *pg_node_a_enrolled(uint8_t ke[32]) {
        pg_only();
        mef_store_t *s = open_psk_nodes("a", ke, 13);
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000);
        cr_assert_eq(enrol_exchange(s, &a1, ke, 32), 0);
        return s;
}

/* The connection lost during the ROLLBACK itself, after a call that failed with a plain SQL
 * answer (the pipeline still open): the handle reconnects as after any lost connection. It
 * refused every later call (-ECONNRESET) until some transaction happened to roll back again. */
Test(store, pg_connection_lost_in_rollback) {
        uint8_t ke[32];
        mef_store_t *s = pg_node_a_enrolled(ke);
        store_enrolment_t got;
        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_enrolment_deregister(s, "nothing@mef"), -ENOENT);
        kill_the_store_backend();
        store_rollback(s); /* its sync finds the connection gone */
        await_a1(s, &got);
        store_close(s);
}

/* A COMMIT outside pipeline mode (a BEGIN of its own: a dump's snapshot, a migration, a
 * restore) of a transaction a failed statement aborted is answered "ROLLBACK" with
 * PGRES_COMMAND_OK: a failure, not the success it was taken for. */
Test(store, pg_commit_of_an_aborted_transaction_fails) {
        pg_only();
        mef_store_t *s = open_new();
        db_t *d = s->d;
        cr_assert_eq(d->ops->exec(d, "BEGIN"), 0);
        cr_assert_eq(d->ops->exec(d, "INSERT INTO meta (name, value) VALUES ('check', '')"), -EEXIST);
        cr_assert_eq(d->ops->txn(d, DB_TXN_COMMIT), -EIO);
        cr_assert_not(d->ops->in_transaction(d), "the server ended it");
        cr_assert_eq(d->ops->exec(d, "BEGIN"), 0);
        cr_assert_eq(d->ops->exec(d, "SELECT 1"), 0);
        cr_assert_eq(d->ops->txn(d, DB_TXN_COMMIT), 0, "a good one commits");
        store_close(s);
}

/* Reconnected to a server that only reads (a standby, an old primary back as one; here
 * default_transaction_read_only): a write is a passing refusal (503, it was 500), and the
 * handle leaves that session, so that it writes again once the server does. */
Test(store, pg_reconnected_to_a_read_only_server) {
        uint8_t ke[32];
        mef_store_t *s = pg_node_a_enrolled(ke);
        store_enrolment_t a2 = enrolment("a2@mef", "a", 2000), got;
        PGconn *admin = pg_connect();
        PGresult *res = PQexec(admin, "ALTER ROLE CURRENT_USER SET default_transaction_read_only = on");
        cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(admin));
        PQclear(res);
        kill_the_store_backend();
        await_a1(s, &got);
        int r = enrol_exchange(s, &a2, ke, sizeof ke);
        res = PQexec(admin, "ALTER ROLE CURRENT_USER RESET default_transaction_read_only");
        cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(admin));
        PQclear(res);
        PQfinish(admin);
        cr_assert(store_error_is_transient(r), "a write on the read-only server: %d", r);
        uint64_t end = now_usec() + 10000000u;
        while ((r = enrol_exchange(s, &a2, ke, sizeof ke)) != 0) {
                cr_assert(store_error_is_transient(r), "%d", r);
                cr_assert_lt(now_usec(), end, "still on the read-only session: %d", r);
                usleep(20000);
        }
        store_close(s);
}

typedef struct late_enrol {
        mef_store_t *store;
        store_enrolment_t e;
        uint8_t ke[32];
        int r;
} late_enrol_t;

static void *late_enrol(void *userdata) {
        late_enrol_t *l = userdata;
        l->r = enrol_exchange_as(l->store, &l->e, l->ke, sizeof l->ke, true);
        return NULL;
}

/* Node a with its enrolment a1@mef (Kpm and Ke from seed), and l to enrol a2@mef for it with
 * a Ke from seed + 2; the waits of the tests end the store's, not its busy timeout. */
static late_enrol_t late_enrol_of_a(uint8_t seed) {
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000);
        late_enrol_t l = { .e = enrolment("a2@mef", "a", 2000),
                           .store = open_with("a", seed, (store_enrolment_t *const[]) { &a1, NULL }) };
        recognisable_key(l.ke, sizeof l.ke, seed + 2);
        cr_assert_eq(store_set_busy_timeout(l.store, 60000), 0);
        return l;
}

/* The test's own connection in a transaction that has run sql[0..n): it holds their locks
 * until pg_release(), its COMMIT. */
static PGconn *pg_hold(const char *const sql[], size_t n) {
        PGconn *c = pg_connect();
        for (size_t i = 0; i <= n; i++) {
                const char *q = i == 0 ? "BEGIN" : sql[i - 1];
                PGresult *res = PQexec(c, q);
                ExecStatusType st = PQresultStatus(res);
                cr_assert(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", q, PQerrorMessage(c));
                PQclear(res);
        }
        return c;
}

static void pg_release(PGconn *c) {
        PGresult *res = PQexec(c, "COMMIT");
        cr_assert_eq(PQresultStatus(res), PGRES_COMMAND_OK, "%s", PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
}

/* Another writer (pg_hold()) holds the locks of sql[0..n) while l's enrolment runs and waits
 * on one of them; then it commits, and the enrolment ends (l->r). */
static void enrol_behind_commit(late_enrol_t *l, const char *const sql[], size_t n) {
        PGconn *c = pg_hold(sql, n);
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, late_enrol, l), 0);
        pg_wait_lock_waiter(NULL);
        pg_release(c);
        pthread_join(t, NULL);
}

/* The same race on PostgreSQL, as two instances run it: the revocation (another instance, or
 * the CLI) holds the node's row; the enrolment read the node before, and its transaction waits
 * on the row lock; the revocation commits. The enrolment must then see it. */
Test(store, pg_enrolment_waiting_on_revocation) {
        pg_only();
        store_enrolment_t got;
        late_enrol_t l = late_enrol_of_a(18);
        cr_assert_eq(store_node_set_state(l.store, "a", NODE_REENROL), 0);

        static const char *const revoke[] = {
                "UPDATE nodes SET state = 'revoked' WHERE node_id = 'a'",
                "UPDATE enrolments SET state = 'revoked' WHERE node_id = 'a' AND state = 'active'",
        };
        enrol_behind_commit(&l, revoke, ELEMENTSOF(revoke));
        cr_assert_eq(l.r, -EINVAL, "the enrolment of a node revoked meanwhile: %d", l.r);
        assert_node_state(l.store, "a", NODE_REVOKED);
        cr_assert_eq(store_enrolment_get(l.store, "a2@mef", &got, NULL, NULL), -ENOENT);
        assert_enrolment_state(l.store, "a1@mef", ENROLMENT_REVOKED);
        store_close(l.store);
}

/* The guard of a seal (store_key_seal) waits for a rekey that holds the check row, as reading
 * the value would, and then sees what it committed: here the test's own connection changes the
 * value (a rekey by another process) and commits while the enrolment waits. */
Test(store, pg_seal_waiting_on_a_rekey) {
        pg_only();
        late_enrol_t l = late_enrol_of_a(50);
        uint8_t check[256];
        int len = blob_read("SELECT value FROM meta WHERE name = 'check'", check, sizeof check);
        cr_assert_gt(len, 0);

        static const char *const rekey[] = { "UPDATE meta SET value = '\\x00' WHERE name = 'check'" };
        enrol_behind_commit(&l, rekey, ELEMENTSOF(rekey));
        cr_assert_eq(l.r, -ESTALE, "a seal that waited on a rekey: %d", l.r);
        store_enrolment_t got;
        cr_assert_eq(store_enrolment_get(l.store, "a2@mef", &got, NULL, NULL), -ENOENT);
        assert_enrolment_state(l.store, "a1@mef", ENROLMENT_ACTIVE);

        /* the value this handle's key opens, back: the guard lets the enrolment through */
        sql_exec("UPDATE meta SET value = ?1 WHERE name = 'check'", check, len);
        cr_assert_eq(enrol_exchange(l.store, &l.e, l.ke, sizeof l.ke), 0);
        assert_enrolment_state(l.store, "a1@mef", ENROLMENT_RETIRED);
        store_close(l.store);
}
typedef struct late_rekey {
        mef_store_t *store;
        int r;
} late_rekey_t;

static void *late_rekey(void *userdata) {
        late_rekey_t *k = userdata;
        store_rekey_result_t rk;
        k->r = store_rekey(k->store, &rk);
        return NULL;
}

/* An enrolment and a rekey at once on PostgreSQL: the rekey locks the check value, then every
 * row it re-encrypts; the enrolment holds the check value shared (store_key_guard()) before it
 * locks its node. Here the enrolment is held (the test's connection holds the enrolment it
 * retires) once it has its locks, and the rekey starts and waits behind it. Taken the other
 * way round (the node first), the enrolment would then wait for the check value and the rekey
 * for the node: a deadlock, which PostgreSQL ends by failing one of them. */
Test(store, pg_enrolment_and_rekey_no_deadlock) {
        pg_only();
        store_enrolment_t got;
        late_enrol_t l = late_enrol_of_a(60);
        late_rekey_t k = { 0 };
        cr_assert_eq(open_db(0, &k.store), 0);
        cr_assert_eq(store_set_busy_timeout(k.store, 60000), 0); /* the waits below end it, not this */

        static const char *const hold[] = { "SELECT 1 FROM enrolments WHERE ke_id = 'a1@mef' FOR UPDATE" };
        PGconn *c = pg_hold(hold, ELEMENTSOF(hold));
        pthread_t te, tk;
        cr_assert_eq(pthread_create(&te, NULL, late_enrol, &l), 0);
        pg_wait_lock_waiter(NULL);
        cr_assert_eq(pthread_create(&tk, NULL, late_rekey, &k), 0);
        pg_wait_lock_waiters(2, NULL);
        pg_release(c);
        pthread_join(te, NULL);
        pthread_join(tk, NULL);

        cr_assert_eq(l.r, 0, "the enrolment: %d", l.r);
        cr_assert_eq(k.r, 0, "the rekey: %d", k.r);
        /* stored before the rekey, re-encrypted by it */
        uint8_t key[MSG_KEY_MAX];
        size_t len;
        cr_assert_eq(store_enrolment_get(k.store, "a2@mef", &got, key, &len), 0);
        cr_assert_eq(len, sizeof l.ke);
        cr_assert_arr_eq(key, l.ke, sizeof l.ke);
        assert_enrolment_state(k.store, "a1@mef", ENROLMENT_RETIRED);
        store_close(k.store);
        store_close(l.store);
}
#endif

/* SPDX-License-Identifier: MIT */
#pragma once
/* The fixture of the store tests (test-store-*.c, one executable): suite "store" with a fresh
 * directory per test, on SQLite or, with MSCE_TEST_PG_URI (tests/pg-run.sh), on that PostgreSQL
 * database, so that the same semantics are asserted on both engines. */
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "mef/store.h"

extern char dir[], db_path[PATH_MAX], key_path[PATH_MAX];
extern const char *pg_uri, *pg_password_file;

/* store_open() on the engine under test; open_new() creates it and asserts. */
int open_db(unsigned flags, mef_store_t **ret);
mef_store_t *open_new(void);
/* open_new(), and kpm[0..n) a recognisable_key() from seed */
mef_store_t *open_keyed(uint8_t *kpm, size_t n, uint8_t seed);

/* A Kpm nobody would find in a database by chance. */
void recognisable_key(uint8_t *k, size_t n, uint8_t seed);
store_node_t psk_node(const char *id, const char *kpm_id);
/* psk_node ID (KpmID kpm-ID) for each letter of ids, all with the same Kpm */
void add_psk_nodes(mef_store_t *s, const char *ids, const uint8_t *kpm, size_t kpm_len);
/* open_new() with add_psk_nodes(ids), their one Kpm kpm[32] a recognisable_key() from seed */
mef_store_t *open_psk_nodes(const char *ids, uint8_t kpm[32], uint8_t seed);
store_node_t cert_node(const char *id, char c);
store_enrolment_t enrolment(const char *ke_id, const char *node_id, int64_t created);
/* enrolment() in another state */
store_enrolment_t enrolment_as(const char *ke_id, const char *node_id, int64_t created, enrolment_state_t state);
/* A new store with a psk_node() for each letter of ids (one Kpm, from seed) and the enrolments
 * of the NULL-terminated es (one Ke, from seed + 1). */
mef_store_t *open_with(const char *ids, uint8_t seed, store_enrolment_t *const es[]);

/* The audit rows: that many, the newest (when given) about newest and the oldest about oldest. */
void assert_audit(mef_store_t *s, size_t want, const char *newest, const char *oldest);

/* Raw SQL on the engine under test, past the store (?N for parameter N; blob is parameter 1),
 * and the blob of a one-row, one-column query. */
void sql_exec(const char *sql, const void *blob, int blob_len);
int blob_read(const char *sql, uint8_t *out, size_t size);
/* Every row of a query on the engine under test as text, columns '|'-separated, a line each;
 * free() it. And statements run on a connection of their own: whether they succeeded. */
char *sql_rows(const char *sql);
bool sql_ok(const char *sql);
/* Skips a test on SQLite (PostgreSQL only: tests/pg-run.sh). */
void pg_only(void);
/* Skips a test on PostgreSQL. */
void sqlite_only(void);
#if HAVE_LIBPQ
#include <libpq-fe.h>
/* A connection of the test's own to the database under test; asserts. */
PGconn *pg_connect(void);
/* Every row of every table as text (bytea as \x hex). */
char *pg_dump_text(void);
/* The count a query gives, on the test's own connection. */
long pg_count(const char *sql);
/* Until a store connection (application_name msce-mef) waits on a lock, or *done (when given)
 * is set; asserts within 20 s. */
void pg_wait_lock_waiter(const bool *done);
/* The same for n connections at once. */
void pg_wait_lock_waiters(long n, const bool *done);
#endif

/* SPDX-License-Identifier: MIT */
#pragma once
/* The MEF's store, on SQLite or PostgreSQL (mef/store-db.h: the same logic and semantics on both):
 * nodes, targets, enrolments, audit trail. Secrets (each node's Kpm,
 * each target's PSK, each enrolment's key) are kept AES-256-GCM-encrypted under a master key
 * file (0400, 32 random bytes); the associated data binds each ciphertext to its row
 * ("kpm:<nodeID>", "tpsk:<targetID>", "ke:<KeID>") so rows cannot be swapped. */

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/msg.h"

#define STORE_FP_LEN 64u /* hex SHA-256 */
#define STORE_MASTER_KEY_LEN 32u
/* Bounds every writer of a node's poll and lifetime respects (store, configuration, CLI). */
#define STORE_POLL_MIN MSG_POLL_MIN
#define STORE_POLL_MAX MSG_POLL_MAX
#define STORE_LIFETIME_MIN 60u
#define STORE_LIFETIME_MAX (10u * 366u * 86400u)

/* A handle is used by one thread at a time (nothing in it is locked, nor is its SQLite
 * connection: mef/store-sqlite.c); another thread may take it over after a hand-over that orders
 * the two (a thread's start or join, a mutex). */
typedef struct mef_store mef_store_t;

typedef enum node_state {
        NODE_ACTIVE,
        NODE_REENROL, /* operator asked: status checks answer "reenrol" */
        NODE_REVOKED,
        _NODE_STATE_MAX,
        _NODE_STATE_INVALID = -22,
} node_state_t;

typedef enum enrolment_state {
        ENROLMENT_ACTIVE,
        ENROLMENT_RETIRED,      /* replaced by a newer enrolment of the node (prev) */
        ENROLMENT_REVOKED,
        ENROLMENT_DEREGISTERED, /* 3.3 */
        _ENROLMENT_STATE_MAX,
        _ENROLMENT_STATE_INVALID = -22,
} enrolment_state_t;

const char *node_state_to_string(node_state_t s);
node_state_t node_state_from_string(const char *s);
const char *enrolment_state_to_string(enrolment_state_t s);
enrolment_state_t enrolment_state_from_string(const char *s);

typedef struct store_node {
        char node_id[MSG_ID_MAX + 1];
        char kpm_id[MSG_ID_MAX + 1];      /* "" in cert mode */
        char cert_fp[STORE_FP_LEN + 1];   /* "" in psk mode */
        char cse_id[MSG_ID_MAX + 1];
        char cse_base[MSG_URI_MAX + 1];
        char targets[MSG_TARGETS_MAX][MSG_ID_MAX + 1];
        size_t n_targets;
        uint32_t poll;                    /* seconds */
        uint32_t lifetime;                /* seconds an enrolment is valid */
        bool ltk_transported;             /* send a generated "ltk" instead of using Ke */
        node_state_t state;
        int64_t created;                  /* unix time */
        int64_t last_seen;                /* its last status check (0: none); not written by add */
        uint64_t status_checks;           /* how many; counted here, not one audit row each */
} store_node_t;

typedef struct store_target {
        char id[MSG_ID_MAX + 1];
        char psk_id[MSG_ID_MAX + 1];      /* "" when authenticated by certificate */
        char cert_fp[STORE_FP_LEN + 1];
        int64_t created;
} store_target_t;

/* What authenticated an exchange, as the store has it: a node or a target (a KpmID is never a
 * target's PSK identity), or nothing read. */
typedef enum store_peer_kind {
        STORE_PEER_NONE,
        STORE_PEER_NODE,
        STORE_PEER_TARGET,
} store_peer_kind_t;

typedef struct store_peer {
        store_peer_kind_t kind;
        union {
                store_node_t node;
                store_target_t target;
        };
} store_peer_t;

typedef struct store_enrolment {
        char ke_id[MSG_KEID_MAX + 1];
        char node_id[MSG_ID_MAX + 1];
        enrolment_state_t state;
        int64_t created;
        int64_t exp;                      /* unix time */
        bool ltk_transported;
        int64_t pos;                      /* store_enrolment_page(): its place among those created
                                           * in the same second (else 0) */
} store_enrolment_t;

/* The schema this msce-mef writes; `msce-mef migrate` brings an older one to it. */
#define STORE_SCHEMA_VERSION 5

typedef enum store_backend {
        STORE_BACKEND_SQLITE,
        STORE_BACKEND_POSTGRESQL,
        _STORE_BACKEND_MAX,
        _STORE_BACKEND_INVALID = -22,
} store_backend_t;

const char *store_backend_to_string(store_backend_t b);
store_backend_t store_backend_from_string(const char *s);

/* Where the store is: a SQLite file, or a PostgreSQL database. */
typedef struct store_location {
        store_backend_t backend;
        const char *path;            /* SQLite */
        const char *uri;             /* PostgreSQL: a libpq URI or key=value string, no password */
        const char *password_file;   /* PostgreSQL: the password, owner-only (0600/0400); NULL: none */
} store_location_t;

enum {
        STORE_OPEN_CREATE = 1 << 0,  /* create what is missing, migrate an older schema */
        STORE_OPEN_MIGRATE = 1 << 1, /* accept an older schema (store_migrate() follows) */
        /* SQLite: every commit synced to disk (synchronous = FULL): none is lost to a power cut
         * or a kernel crash. Without it (NORMAL), a commit is on disk once the kernel writes it
         * back or the next checkpoint syncs it: a power cut can take the last seconds' back
         * (never a torn database). PostgreSQL: its server's synchronous_commit decides. */
        STORE_OPEN_SYNC_FULL = 1 << 2,
};

/* [store] uri as libpq will read it: 0 when it parses and carries no password; -EACCES when it
 * carries one in any form libpq takes (user:password@ in a URI, password= in its query, even
 * percent-encoded, or a password keyword with spaces around its '='); -EDOM when its
 * connect_timeout is not a whole number of seconds; -EINVAL when libpq cannot parse it;
 * -ELIBACC when libpq (loaded on first use) cannot be loaded: store_pg_lib_error() says why.
 * Built without libpq: a textual check of the same forms. mef.conf's loader refuses what this
 * refuses, so that no password reaches a log line naming the store. */
int store_pg_uri_check(const char *uri);
/* Why libpq could not be loaded (dlerror()'s words), or NULL when it was, was not tried, or this
 * build has no PostgreSQL. */
const char *store_pg_lib_error(void);
/* The package that holds libpq, for the errors that need it. */
#define STORE_PG_LIB_HINT "PostgreSQL needs libpq (" "libpq.so.5" "; Debian: libpq5, rpm: libpq)"

/* What the CLI and serve say of -EPROTO from store_open_at(). */
#define STORE_POOLER_HINT \
        "the server does not keep this connection's prepared statements: a connection pooler in " \
        "transaction mode? msce-mef needs session mode (docs/operations.md)"
/* ... of -EUSERS (PostgreSQL: max_connections reached) ... */
#define STORE_TOO_MANY_HINT \
        "PostgreSQL refused another connection (too many: its max_connections, or the connection limit " \
        "of the role or the database). Each msce-mef worker holds [store] threads + 1 connections, each " \
        "CLI command one (docs/operations.md)"
/* ... and of -EUCLEAN (SQLite: not a database, or a damaged one). */
#define STORE_DAMAGED_HINT \
        "not an SQLite database, or a damaged one: is [store] path right? Else restore the last " \
        "backup ('msce-mef restore', docs/operations.md)"

/* SQLite: 1 when a file of the store at path (the database, its -wal or -shm) exists with any
 * permission for group or others, with that file's path and mode (when given); 0 when none
 * does; -errno when one cannot be looked at. Such a store is not opened (-EPERM). */
int store_sqlite_loose_file(const char *path, char ret_file[PATH_MAX], mode_t *ret_mode);

/* SQLite: which of the store's files at path (the database, its -wal, its -shm) are absent, and
 * whether the database is an empty file: what store_sqlite_files_undo() takes back. */
typedef struct store_sqlite_files {
        bool absent[3];
        bool empty;
} store_sqlite_files_t;
int store_sqlite_files_note(const char *path, store_sqlite_files_t *ret);
/* With nothing open on the store: when its database was absent or empty in before, the files
 * absent then removed and the database emptied again (then their directory synced); a database
 * that had content is left alone, with its -wal and -shm. 0, or the first failure. */
int store_sqlite_files_undo(const char *path, const store_sqlite_files_t *before);

/* Opens (and with STORE_OPEN_CREATE, creates the SQLite file, the schema and - when missing -
 * the master key file, 0400). -ENOENT when the database, its schema or the master key is
 * missing and not created (an empty SQLite file is a missing database: only CREATE makes one
 * in it), -EPERM when the master key file (or the password file) is group/world readable, or a
 * file of the SQLite store has any permission for group or others (store_sqlite_loose_file()), -EBADMSG when the master key does not open the store's check value
 * (wrong key file), -EPROTONOSUPPORT when the schema is newer than this msce-mef, -ESTALE when
 * it is older (without CREATE or MIGRATE), -EOPNOTSUPP for PostgreSQL in a build without libpq,
 * -EINVAL for a URI that carries a password, -EPROTO when the server does not keep the
 * connection's prepared statements (a connection pooler in transaction mode), -EUCLEAN when the
 * SQLite file is not a database or is damaged. PostgreSQL refusing the connection (the role's
 * password, LOGIN or CONNECT privilege: -EACCES; no such database: -ENOENT; too many connections:
 * -EUSERS; else -ECONNREFUSED) or a statement of the open: on failure its reason in reason (as
 * store_reason_copy() gives it; text "" when none), which may be NULL. */
typedef struct store_reason store_reason_t;
int store_open_at(const store_location_t *loc, const char *master_key_path, unsigned flags, mef_store_t **ret,
                  store_reason_t *reason);
/* Whether this handle's open made the store (its schema and check value) rather than found
 * one: what init tells. */
bool store_created(const mef_store_t *s);
/* SQLite at db_path; create: STORE_OPEN_CREATE. */
int store_open(const char *db_path, const char *master_key_path, bool create, mef_store_t **ret);
mef_store_t *store_close(mef_store_t *s);
/* Brings the schema to STORE_SCHEMA_VERSION under the engine's exclusive lock; the versions
 * before and after. */
int store_migrate(mef_store_t *s, int *ret_from, int *ret_to);
/* How long a call waits for another writer's lock before it fails with -EBUSY (store_open()
 * sets 5000 ms: the CLI; the server's connections wait less, see mef/store-queue.h). */
int store_set_busy_timeout(mef_store_t *s, unsigned ms);

/* Nodes. -EEXIST on a duplicate node ID, KpmID or fingerprint, -EADDRINUSE when the CSE-ID
 * is assigned to another node already (store_node_by_cse_id() says which); -ENOENT when absent. */
int store_node_add(mef_store_t *s, const store_node_t *n, const uint8_t *kpm, size_t kpm_len);
int store_node_get(mef_store_t *s, const char *node_id, store_node_t *ret);
/* psk lookup: key copied into kpm (caller wipes); kpm and ret_kpm_len NULL: the row only. */
int store_node_by_kpm_id(mef_store_t *s, const char *kpm_id, store_node_t *ret, uint8_t kpm[MSG_KEY_MAX],
                         size_t *ret_kpm_len);
int store_node_by_cert(mef_store_t *s, const char *fp, store_node_t *ret);
/* The node the CSE-ID is assigned to (the first by node ID should old data hold several). */
int store_node_by_cse_id(mef_store_t *s, const char *cse_id, store_node_t *ret);
int store_node_list(mef_store_t *s, store_node_t **ret, size_t *ret_n);
/* -ENOENT for no such node; -EPERM for NODE_REENROL of a revoked node (activate it first). */
int store_node_set_state(mef_store_t *s, const char *node_id, node_state_t state);
/* Removes the node and its enrolments. */
int store_node_remove(mef_store_t *s, const char *node_id);

/* Targets (IN-CSE, MAF...) that may fetch credentials. */
int store_target_add(mef_store_t *s, const store_target_t *t, const uint8_t *psk, size_t psk_len);
/* The same for a target's PSK identity. */
int store_target_by_psk_id(mef_store_t *s, const char *psk_id, store_target_t *ret, uint8_t psk[MSG_KEY_MAX],
                           size_t *ret_psk_len);
int store_target_by_cert(mef_store_t *s, const char *fp, store_target_t *ret);

/* A handshake's PSK identity in one read: the node whose KpmID it is, else the target whose PSK
 * identity it is (a name that is both is the node's), with its key (caller wipes); -ENOENT when
 * it is neither. */
int store_peer_by_psk_id(mef_store_t *s, const char *identity, store_peer_t *ret, uint8_t key[MSG_KEY_MAX],
                         size_t *ret_key_len);
int store_target_list(mef_store_t *s, store_target_t **ret, size_t *ret_n);
int store_target_remove(mef_store_t *s, const char *id);

/* Enrolments. key = the node's Long Term Key for this enrolment (Ke, or the transported ltk).
 * -ENOENT: no such node; -EINVAL also for an ACTIVE enrolment of a node revoked (in a
 * transaction on PostgreSQL: from store_commit()). */
int store_enrolment_add(mef_store_t *s, const store_enrolment_t *e, const uint8_t *key, size_t key_len);
/* key and ret_key_len may both be NULL when only the row is wanted (nothing is decrypted). */
int store_enrolment_get(mef_store_t *s, const char *ke_id, store_enrolment_t *ret, uint8_t key[MSG_KEY_MAX],
                        size_t *ret_key_len);
/* The same with its key, and its node in the same read (*ret_has_node false: the node is
 * gone). */
int store_enrolment_get_with_node(mef_store_t *s, const char *ke_id, store_enrolment_t *ret,
                                  uint8_t key[MSG_KEY_MAX], size_t *ret_key_len, store_node_t *ret_node,
                                  bool *ret_has_node);
int store_enrolment_set_state(mef_store_t *s, const char *ke_id, enrolment_state_t state);
/* ACTIVE to DEREGISTERED, or -ENOENT when the enrolment is not (or no longer) active: a
 * revocation or retirement committed since it was read stands. */
int store_enrolment_deregister(mef_store_t *s, const char *ke_id);
/* Set every ACTIVE enrolment of the node to state (revoke, retire on re-enrol). */
int store_enrolment_set_state_for_node(mef_store_t *s, const char *node_id, enrolment_state_t state);
/* node_id NULL: all. Newest first. */
int store_enrolment_list(mef_store_t *s, const char *node_id, store_enrolment_t **ret, size_t *ret_n);

/* Audit trail: who (peer identity or "cli"), what ("enrol", "status", ...), subject, detail. */
int store_audit(mef_store_t *s, const char *actor, const char *action, const char *subject, const char *detail);

/* Fields longer than these are truncated when written (the trail never refuses a row). */
#define STORE_AUDIT_ACTOR_MAX 255u
#define STORE_AUDIT_ACTION_MAX 63u
#define STORE_AUDIT_SUBJECT_MAX 511u
#define STORE_AUDIT_DETAIL_MAX 1023u

typedef struct store_audit_entry {
        int64_t id;
        int64_t ts;                       /* unix time */
        char actor[STORE_AUDIT_ACTOR_MAX + 1];
        char action[STORE_AUDIT_ACTION_MAX + 1];
        char subject[STORE_AUDIT_SUBJECT_MAX + 1]; /* "" when none */
        char detail[STORE_AUDIT_DETAIL_MAX + 1];   /* "" when none */
} store_audit_entry_t;

/* The newest limit rows (0: all), newest first. Caller frees *ret. */
int store_audit_list(mef_store_t *s, size_t limit, store_audit_entry_t **ret, size_t *ret_n);

/* Fleet figures (metrics): nodes, and active enrolments before and after their expiry at now. */
typedef struct store_counts {
        uint64_t nodes;
        uint64_t enrolments_active;
        uint64_t enrolments_expired;
} store_counts_t;
int store_counts(mef_store_t *s, int64_t now, store_counts_t *ret);
/* Nodes whose KpmID is longer than TLS_PSK_ID_MAX (proto/tls.h), which stores made before
 * that limit may hold (up to 255 characters): no TLS handshake can offer such an identity, so
 * they can never enrol. *ret_count: how many; ids: the first n_ids of them by node ID
 * (*ret_n of them). */
int store_node_long_kpm_ids(mef_store_t *s, char (*ids)[MSG_ID_MAX + 1], size_t n_ids, size_t *ret_n,
                            uint64_t *ret_count);

/* In a transaction that will store an enrolment (store_enrolment_add()), first: on PostgreSQL
 * the check that its key is sealed under the store's current master key, which holds the check
 * value (shared) to the end of the transaction, taken before any row so that it comes in the
 * order a rekey takes its locks (the check value, then the rows): the two cannot deadlock.
 * Without it store_enrolment_add() reads the check value first (a round trip, and the lock
 * taken after the node's). A rekey committed since this handle read its key fails the
 * transaction with -ESTALE; after store_rollback() the handle has the new key. SQLite (the
 * rekey holds the write lock), outside a transaction: nothing. */
int store_key_guard(mef_store_t *s);
/* In a transaction that seals many secrets (a bulk import), first: the master key read once,
 * following a rekey committed since; on PostgreSQL the check value is then held shared to the
 * end of the transaction, so that no seal of it reads it again. */
int store_key_hold(mef_store_t *s);

/* -EBUSY (locked past the busy timeout), the errors of a database that went away
 * (-ECONNREFUSED, -ENOTCONN, -ETIMEDOUT, -ECONNRESET), -ESTALE (a seal raced by a rekey,
 * store_commit() of PostgreSQL), and a full disk (-ENOSPC, -EDQUOT: the change rolled back,
 * and it works again once the operator frees space): worth a retry later (503). */
static inline bool store_error_is_transient(int r) {
        return r == -EBUSY || r == -ECONNREFUSED || r == -ENOTCONN || r == -ETIMEDOUT || r == -ECONNRESET ||
               r == -ESTALE || r == -ENOSPC || r == -EDQUOT;
}

/* Whether a store_commit() that failed with r may have committed all the same: PostgreSQL's
 * connection went (-ECONNRESET) or its answer did not come in time (-ETIMEDOUT) once the COMMIT
 * may have gone out. An error the server answered, and any of SQLite's, rolled it back. */
static inline bool store_commit_unknown(int r) {
        return r == -ECONNRESET || r == -ETIMEDOUT;
}

/* The reason for the error r that a call on s just returned, or NULL when there is none for it
 * (SQLite, a connection that broke). Mostly the database server's ("42501: permission denied
 * for table nodes": PostgreSQL's SQLSTATE and primary message, never a parameter's value nor
 * the DETAIL, which can hold one); a connection attempt that no host answered in time has
 * msce-mef's own ("no answer from db1 port 5432 within 5 s (connect_timeout)"). servers tells
 * which, as the engine that wrote it knows. For the top layer's message (the CLI, serve's log)
 * beside strerror(-r): store_said(). */
#define STORE_REASON_MAX 256u /* its text's size, with the NUL */
struct store_reason {
        char text[STORE_REASON_MAX]; /* "" when none */
        bool servers;                /* the database server's words, else msce-mef's own */
};
const store_reason_t *store_error_reason(const mef_store_t *s, int r);
/* store_error_reason(s, r) copied into *ret, text "" when none: a reason that outlives s's next
 * call (a statement forgets it) or goes to another thread with the error. Returns ret. */
const store_reason_t *store_reason_copy(const mef_store_t *s, int r, store_reason_t *ret);
/* head, then ", PostgreSQL said WHY" when why is the server's reason, ": WHY" when it is
 * msce-mef's own, nothing more when why is NULL or its text "", in buf (size bytes): how the
 * CLI and serve's log put a store's failure. Returns buf. */
#define STORE_SAID_MAX (512u + STORE_REASON_MAX) /* for any head of msce-mef's (STORE_*_HINT) */
const char *store_said(char *buf, size_t size, const char *head, const store_reason_t *why);
/* store_said() of strerror(-r). */
#define STORE_STRERROR_MAX (STORE_REASON_MAX + 128u)
const char *store_strerror(int r, const store_reason_t *why, char buf[static STORE_STRERROR_MAX]);

/* A status check by the node: last_seen = now, status_checks + 1. -ENOENT for no such node. */
int store_node_seen(mef_store_t *s, const char *node_id, int64_t now);

/* Retention: audit rows older than before, and enrolments that no longer serve (not active)
 * whose exp is before it. store_prune_some() deletes at most limit of each in one transaction
 * and adds what it removed to *ret: 1 when it reached a limit (more may be left), 0 when
 * nothing older is left. A pass is many of them, so that no transaction holds the write lock
 * for long: a million rows in one take a second, in which every enrolment waits.
 * store_prune(): a whole pass, in transactions of STORE_PRUNE_STEP rows; on failure *ret has
 * what was pruned before it. */
#define STORE_PRUNE_STEP 1000u
typedef struct store_pruned {
        uint64_t audit, enrolments;
} store_pruned_t;
int store_prune_some(mef_store_t *s, int64_t before, uint64_t limit, store_pruned_t *ret);
int store_prune(mef_store_t *s, int64_t before, store_pruned_t *ret);

/* Run several calls as one transaction. Inside a batch, a savepoint of the batch's. */
int store_begin(mef_store_t *s);
int store_commit(mef_store_t *s);
void store_rollback(mef_store_t *s);

/* Group commit (SQLite; -EOPNOTSUPP elsewhere): the calls of several jobs in one transaction,
 * so that they share its commit, its locks and the pages they all write (a table's last leaf,
 * an index's). Each job's calls behave as without the batch, their own transactions being
 * savepoints of it; what they wrote is durable at store_batch_end(s, true) only.
 * store_batch_alive(): false when the engine gave the batch up (an I/O error, a full disk): what
 * the jobs before wrote is lost. store_batch_end(): COMMIT, or ROLLBACK when !commit; an error
 * of the COMMIT undoes all of the batch too. */
int store_batch_begin(mef_store_t *s);
bool store_batch_alive(mef_store_t *s);
int store_batch_end(mef_store_t *s, bool commit);

/* ---- Bulk lifecycle: keyset pages (issue 14) ----
 * One page of a list in that list's order: the rows after the cursor (the key of the previous
 * page's last row), at most limit (0: all), matching the filters. Each page is one indexed
 * query; nothing is read into memory beyond the page. */
typedef struct store_page {
        const char *after;    /* nodes: a node ID (ascending); enrolments: a cursor of store_enrolment_cursor(),
                               * or a KeID (newest first); NULL: from the start */
        int64_t after_id;     /* audit: an id (newest first); 0: from the start */
        size_t limit;
        int state;            /* a node_state_t / enrolment_state_t; -1: any */
        int64_t since;        /* created (audit: ts) at or after this unix time; 0: any */
        int expired;          /* enrolments: 1 only exp <= now, -1 only exp > now, 0 either */
        int64_t now;          /* for expired; 0: time(NULL) */
        const char *action;   /* audit: this action only; NULL: any */
} store_page_t;
int store_node_page(mef_store_t *s, const store_page_t *p, store_node_t **ret, size_t *ret_n);
/* node_id NULL: every node's. p->after: the cursor of the previous page's last row, which
 * needs that row no more (it may have been pruned, its node removed, since); or a KeID, which
 * must exist (-ENOENT otherwise). */
int store_enrolment_page(mef_store_t *s, const char *node_id, const store_page_t *p, store_enrolment_t **ret,
                         size_t *ret_n);
/* The cursor of a row of store_enrolment_page() to go on after it: its place in the order
 * ("CREATED.POS"), not its KeID. */
#define STORE_ENROLMENT_CURSOR_MAX 48
void store_enrolment_cursor(const store_enrolment_t *e, char buf[static STORE_ENROLMENT_CURSOR_MAX]);
int store_audit_page(mef_store_t *s, const store_page_t *p, store_audit_entry_t **ret, size_t *ret_n);

/* Which field of n another row holds, in this order: STORE_CONFLICT_NODE_ID (n's node exists),
 * "KpmID", "certificate" (either may be a target's) or "CSE-ID"; one statement. Before a
 * store_node_add(), or after one failed with -EEXIST or -EADDRINUSE. 1 and *ret_field, or 0
 * when none does (any more). */
#define STORE_CONFLICT_NODE_ID "node ID"
int store_node_conflict(mef_store_t *s, const store_node_t *n, const char **ret_field);

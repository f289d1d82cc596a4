/* SPDX-License-Identifier: MIT */
#pragma once
/* Backup, restore and master key rotation at the store level (mef/store-backup.c): a
 * backend-neutral logical dump of every table as JSON rows, secrets as their ciphertext under
 * the master key, read in one read transaction (a consistent snapshot while the MEF serves). */
#include <jansson.h>

#include "mef/store.h"

/* The tables a dump holds, in the order a restore writes them (parents first). */
#define STORE_DUMP_TABLES_MAX 5u
/* The oldest schema whose dump has the tables and columns of this one's, so that a restore takes
 * its backups (schema 4 added indexes only, 5 rewrote a check). A migration that changes a dumped table's columns
 * raises it to its own version. */
#define STORE_DUMP_SCHEMA_MIN 3
extern const char *const store_dump_tables[STORE_DUMP_TABLES_MAX];

/* Called for each row: its table and its columns as a JSON object (blobs as hex, SQL NULL as
 * null). A negative return stops the dump with it. */
typedef int (*store_dump_fn_t)(const char *table, json_t *row, void *userdata);
/* Where a dump stopped on a secret that no master key of the store opens: its table and row. */
typedef struct {
        const char *table;
        char id[MSG_ID_MAX + 1];
} store_dump_stop_t;
/* Every row of every table in one read transaction (SQLite: a WAL snapshot; PostgreSQL:
 * REPEATABLE READ READ ONLY); writers go on meanwhile. Every secret is opened on the way and
 * written under the current master key: -EBADMSG, and the row in *ret_stop (when given), for one
 * that no key opens. */
int store_dump(mef_store_t *s, store_dump_fn_t fn, void *userdata, store_dump_stop_t *ret_stop);

/* A master key's ID: the first 16 bytes of HKDF-SHA256 (no salt) of the key with the info
 * "msce-mef master key id", as 32 lowercase hex digits. One-way, so it may be shown and written
 * down: what init, backup, rekey and restore print, and restore --expect-master-key checks. */
#define STORE_MASTER_KEY_ID_LEN 16u
#define STORE_MASTER_KEY_ID_HEX (2u * STORE_MASTER_KEY_ID_LEN + 1u)
int store_master_key_id(const uint8_t key[STORE_MASTER_KEY_LEN], char hex[STORE_MASTER_KEY_ID_HEX]);
/* The ID of the key in the key file at path; errors as reading it. */
int store_master_key_file_id(const char *path, char hex[STORE_MASTER_KEY_ID_HEX]);
/* Whether s is an ID as store_master_key_id() writes it. */
bool store_master_key_id_is_valid(const char *s);

/* The master key files of a store, seen from its check value now (read again first). */
typedef enum store_rekey_state {
        STORE_REKEY_NONE,      /* no key at "<key path>.new" */
        STORE_REKEY_PREPARED,  /* one there, not the store's yet: the key the next rekey takes */
        STORE_REKEY_UNDER_WAY, /* the store's: a rekey committed it and has not renamed it yet */
        _STORE_REKEY_STATE_MAX,
} store_rekey_state_t;
typedef struct store_key_ids {
        store_rekey_state_t rekey;
        char current[STORE_MASTER_KEY_ID_HEX];  /* the key the check value opens: a backup made now wraps it */
        char next[STORE_MASTER_KEY_ID_HEX];     /* PREPARED: the one at "<key path>.new"; else "" */
        char previous[STORE_MASTER_KEY_ID_HEX]; /* UNDER_WAY: the key file's, which still opens what is not
                                                 * re-encrypted yet; else (or no such file) "" */
} store_key_ids_t;
/* -EBADMSG when neither file opens the store; errors as reading them (a torn "<key path>.new",
 * which a rekey replaces, counts as none while the key file opens the store). */
int store_master_key_ids(mef_store_t *s, store_key_ids_t *ret);

/* A restore's master key at path: 0 when the file holds key already, 1 when it was written
 * (0400; its directory made 0700 when missing, as init makes it), -EEXIST when it holds another
 * key, -errno. */
int store_master_key_install(const char *path, const uint8_t key[STORE_MASTER_KEY_LEN]);

/* The number of nodes, targets, enrolments and audit rows: 0 for a store a restore may write
 * into (the backup's audit rows keep their ids, which the store's own would hold already). */
int store_rows_in_use(mef_store_t *s, uint64_t *ret);
/* In a transaction (store_begin): remove every node, target, enrolment and audit row. */
int store_restore_clear(mef_store_t *s);
/* In a transaction: one row of a dump. Its columns are checked against the table's, and each
 * secret must open under this store's master key (-EKEYREJECTED when not: the dump belongs to
 * another key). -EBADMSG for a row that does not fit the table, -EINVAL for an unknown table;
 * the engine's constraint errors otherwise. Rows of table meta are checked, not written. */
int store_restore_row(mef_store_t *s, const char *table, json_t *row);
/* In the transaction, after the rows: what the engine needs after explicit ids (PostgreSQL's
 * audit identity sequence). */
int store_restore_finish(mef_store_t *s);
/* A failed restore into a store its open created (store_created()), out of any transaction:
 * the check value that open wrote removed, so that the store, left with its empty tables, is
 * bound to no key and the key file the restore installed can go (the next open that creates
 * adopts its own key). -EBUSY for a store that was there before. */
int store_restore_forget_key(mef_store_t *s);

/* A new master key: written to "<key path>.new" (0400, the old file's owner), or the one
 * prepared there, and the check value sealed under it committed; then every secret
 * re-encrypted in steps of a transaction each (serving processes' requests go on between them),
 * and the file renamed over the key path. Meanwhile every handle opens secrets under either
 * key (mef/store-key.c) and seals under the new one. Stopped after the commit (a failure, a
 * crash), the store stays so and the next call finishes it. -EBUSY when another rekey of the
 * key file runs. ret (filled on failure too): */
typedef struct store_rekey_result {
        uint64_t resealed; /* secrets this call re-encrypted */
        bool took_over;    /* the new key is the store's: its check value committed */
        bool resumed;      /* it finished a rekey that had stopped after that */
        bool commit_unknown; /* its COMMIT failed without an answer: the new key is kept */
} store_rekey_result_t;
int store_rekey(mef_store_t *s, store_rekey_result_t *ret);
/* The next rekey's key, written to "<key path>.new" ahead (0400, the key file's owner) so that
 * it can be copied to every host of a store first: 0; 1 when one is there already (kept). A
 * rekey takes the key it finds there. */
int store_rekey_prepare(const char *key_path);
/* Whether key opens the check value blob (meta's, as a dump has it): 0, or -EBADMSG. */
int store_key_opens_check(const uint8_t key[STORE_MASTER_KEY_LEN], const uint8_t *blob, size_t n);
/* "<key path>.new" into out (PATH_MAX). */
int store_rekey_pending_path(const char *key_path, char *out, size_t size);

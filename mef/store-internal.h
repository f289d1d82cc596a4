/* SPDX-License-Identifier: MIT */
#pragma once
/* What the store's files share (mef/store.c: open and schema; store-key.c: the master key and
 * what it seals; store-rows.c: statements and rows; then one file per table and store-backup.c).
 * Not for use outside mef/store*.c. */

#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/wolfcrypt/aes.h>

#include <sys/stat.h>

#include "mef/store-db.h"
#include "mef/store.h"

#define NONCE_LEN 12u
#define TAG_LEN 16u
#define SEALED_MAX (NONCE_LEN + MSG_KEY_MAX + TAG_LEN)
#define AAD_MAX (8u + MSG_KEID_MAX + 1u)
/* Encrypted under AAD "check" and kept in meta: a wrong master key fails to open it. */
#define CHECK_PLAINTEXT "msce-mef master key check v1"
#define CHECK_MAX (NONCE_LEN + sizeof(CHECK_PLAINTEXT) + TAG_LEN)

struct mef_store {
        db_t *d;
        Aes aes;      /* key schedule of the master key: wiped in store_close */
        bool aes_ready;
        /* While a rekey re-encrypts in steps, secrets are under the old key or the new: the
         * old one ("<key path>", the new being "<key path>.new") opens what the new does not. */
        Aes prev;
        bool prev_ready;
        /* A rekey (store_rekey) by another process changes meta's check value: the key files are
         * read again when it does (store_key_refresh). */
        char *key_path;
        uint8_t check[CHECK_MAX];
        size_t check_len;
        /* store_batch_begin(): one transaction around several jobs' calls; store_begin() is then
         * a savepoint, depth of them open */
        bool batch;
        unsigned depth;
        /* store_identity_lock() taken in the transaction under way (PostgreSQL) */
        bool identity_locked;
        /* store_key_guard() queued in the transaction under way (PostgreSQL) */
        bool check_guarded;
        /* this open made the schema (STORE_OPEN_CREATE on an empty database) */
        bool created;
};

static inline void store_closep(mef_store_t **s) {
        store_close(*s);
}

/* ---- statements (the engine's, through mef/store-db.h) ---- */

/* A statement in use, given back when it goes out of scope. */
static inline void stmt_releasep(db_stmt_t **st) {
        if (*st)
                DB_OPS(*st)->release(*st);
        *st = NULL;
}
#define _cleanup_stmt_ _cleanup_(stmt_releasep)

#define TRY(expr)                              \
        do {                                    \
                int _r_ = (expr);               \
                if (_r_ < 0)                    \
                        return _r_;             \
        } while (0)

/* sql must be a string literal (its address is the cache key). */
static inline int prepare(mef_store_t *s, const char *sql, db_stmt_t **ret) {
        return s->d->ops->prepare(s->d, sql, ret);
}

static inline int step_done(db_stmt_t *st) {
        int r = db_step(st);
        return r > 0 ? -EIO : r;
}

/* A row -> 1, done -> 0. */
static inline int step_row(db_stmt_t *st) {
        return db_step(st);
}

/* Constant SQL only (schema, data): nothing is ever built at run time. */
static inline int exec_const(mef_store_t *s, const char *sql) {
        return s->d->ops->exec(s->d, sql);
}

/* Transaction control: t, as s's engine does it. */
static inline int store_txn(mef_store_t *s, db_txn_t t) {
        return s->d->ops->txn(s->d, t);
}

static inline int bind_text_or_null(db_stmt_t *st, int i, const char *v) {
        return db_bind_text(st, i, v && v[0] ? v : NULL, -1);
}

static inline uint64_t page_limit(size_t limit) {
        uint64_t l = limit; /* a 64-bit compare: size_t is 32 bits on armhf (-Wtype-limits) */
        return l == 0 || l > INT64_MAX ? INT64_MAX : l;
}

static inline bool key_len_valid(const uint8_t *key, size_t n) {
        return key && n >= MSG_KEY_MIN && n <= MSG_KEY_MAX;
}

/* ---- rows (mef/store-rows.c) ---- */

/* A TEXT column into a fixed buffer; NULL reads as "". -EBADMSG when it cannot fit (a row
 * that no writer of this store produces). */
int store_column_text(db_stmt_t *st, int i, char *out, size_t size);
/* Columns first, first + 1... into n such buffers, given as TEXT_BUF(buf) each. */
int store_column_texts(db_stmt_t *st, int first, int n, ...);
#define TEXT_BUF(buf) (buf), sizeof(buf)

/* How one table's rows decode, from column first of a query on; its secret is sealed to
 * aad_prefix and the row's id (at id_offset in the decoded struct), in column first + key_col of
 * a query that selects it. */
typedef struct row_type {
        int (*decode)(db_stmt_t *st, int first, void *out);
        size_t size;
        size_t id_offset;
        const char *aad_prefix;
        int key_col;
} row_type_t;

/* The columns each table's rows decode from (key_col: the sealed secret's, after them). */
#define ENROLMENT_COLUMNS "ke_id, node_id, state, created, exp, ltk_transported"
#define NODE_COLUMNS \
        "node_id, kpm_id, cert_fp, cse_id, cse_base, targets, poll, lifetime, ltk_transported, state, created"
/* What a node read gets: the written columns, then the status-check tally (schema 3). */
#define NODE_SELECT NODE_COLUMNS ", last_seen, status_checks"
#define TARGET_COLUMNS "id, psk_id, cert_fp, created"
extern const row_type_t store_enrolment_row, store_node_row, store_target_row;

/* One table's part of a row that reads several (a join): its columns from first on, decoded
 * into out, and with key its secret, when its first column is not NULL (found). */
typedef struct row_part {
        const row_type_t *type;
        int first;
        void *out;
        uint8_t *key;
        size_t *key_len;
        bool found;
} row_part_t;

/* The one row sql selects with ?1 = arg, each part of it decoded; -ENOENT when no row or no part
 * matches. The outputs are only written for the parts found, and only on success. */
int store_select_parts(mef_store_t *s, const char *sql, const char *arg, row_part_t *parts, size_t n);
/* The row sql selects with ?1 = arg, decoded into ret; with key, also its secret. ret and key
 * are only written on success; -ENOENT when no row matches. */
int store_select_one(mef_store_t *s, const row_type_t *type, const char *sql, const char *arg, void *ret,
                     uint8_t *key, size_t *ret_key_len);
/* Every row of the prepared and bound st, decoded into a new array. */
int store_select_all(db_stmt_t *st, const row_type_t *type, void **ret, size_t *ret_n);
/* Grow *array (of elem-sized items) to hold one more; returns the new slot. */
void *store_array_push(void **array, size_t *n, size_t *alloc, size_t elem);
/* For UPDATE/DELETE by key (?1 = a1, ?2 = a2 unless NULL): -ENOENT when no row matched. */
int store_update_one(mef_store_t *s, const char *sql, const char *a1, const char *a2);
/* An INSERT ... SELECT ... WHERE NOT EXISTS of one row: -EEXIST when it added none. */
int store_insert_one(mef_store_t *s, db_stmt_t *st);

/* Node and target identities (node ID, CSE-ID, KpmID, certificate, PSK identity) are unique
 * across both tables, checked by their INSERTs' NOT EXISTS and by store_node_conflict(). On
 * PostgreSQL two transactions do not see each other's rows before they commit, so these take a
 * transaction-scoped advisory lock first: identities are assigned one transaction at a time across
 * every instance and the CLI, and each check sees the rows committed before it. Queued (no round
 * trip of its own), once per transaction. SQLite serialises writers already: nothing to do.
 * store_identity_begin(): the lock, in a transaction of the call's own when its caller has none
 * (PostgreSQL only: the lock needs one), ended by store_identity_end() with the call's result. */
int store_identity_lock(mef_store_t *s);
int store_identity_begin(mef_store_t *s, bool *ret_own);
int store_identity_end(mef_store_t *s, bool own, int r);
/* A sealed secret, or SQL NULL when len is 0. */
int store_bind_sealed(db_stmt_t *st, int i, const uint8_t *blob, size_t len);
bool store_fp_is_valid(const char *fp);

/* ---- the master key and the secrets it seals (mef/store-key.c) ---- */

/* The key into s's key schedule (initialised on first use). */
int store_key_use(mef_store_t *s, const uint8_t key[STORE_MASTER_KEY_LEN]);
/* key into a new file at path (0400; -EEXIST when there is one), synced with its directory, removed again on
 * failure; as root owned like owner when given. */
int store_key_file_create(const char *path, const uint8_t key[STORE_MASTER_KEY_LEN], const struct stat *owner);
/* The key in the file at path; -EINVAL when it holds no key (another size: empty, cut short). */
int store_master_key_read(const char *path, uint8_t key[STORE_MASTER_KEY_LEN]);
/* The key file at path; with create, a new random one (0400) when there is none. */
int store_master_key_load(const char *path, bool create, uint8_t key[STORE_MASTER_KEY_LEN]);
/* 1 and the blob when meta's check row exists, 0 when not. */
int store_check_read(mef_store_t *s, uint8_t *blob, size_t size, size_t *ret_len);
/* A new check value sealed under s's key into meta, unless there is one (another process
 * created the store meanwhile): 1 written; 0 the one there opens with s's key; -EBADMSG it
 * does not (another key's store). */
int store_check_write(mef_store_t *s);
/* -EBADMSG when blob is not the check value under s's key. */
int store_check_verify(mef_store_t *s, const uint8_t *blob, size_t n);
/* Whether meta's check value changed since s read it (another process rekeyed): then the key file
 * is read again. 1: a new key; 0: nothing changed. */
int store_key_refresh(mef_store_t *s);
/* The key that opens the check value blob: the key file's, or "<path>.new"'s with the key file's
 * as the previous one (a rekey under way). -EBADMSG when neither opens it. */
int store_key_adopt(mef_store_t *s, const uint8_t *blob, size_t n);
/* After a step of a loop of write transactions (a rekey, a prune) that began at began: on
 * SQLite, a pause as long as the step. Its write lock has no queue: a writer waiting for it
 * polls (the busy handler sleeps up to 100 ms between tries), and a loop that began its next
 * step at once would take the lock again before it; so a serving MEF's writers get half the
 * time. PostgreSQL queues its lock waiters: no pause. */
void store_step_pause(mef_store_t *s, usec_t began);
/* Drops the previous key (every secret is under the current one). */
void store_key_forget_prev(mef_store_t *s);
/* key as the previous one when it is not the current (and none is held): a dump's key file read
 * before its snapshot. */
int store_key_keep_prev(mef_store_t *s, const uint8_t key[STORE_MASTER_KEY_LEN]);
/* Before a read of a secret: outside a transaction, where no snapshot of s can predate the end
 * of a rekey, the previous key dropped once that rekey is done (its key file renamed after its
 * last commit). For a handle that only reads (the event loop's, for the handshakes' lookups),
 * which seals nothing and so never reads the check value. Inside a statement or a transaction a
 * row may still be under the old key: not there. One access() a read while s has the old key. */
void store_key_settle(mef_store_t *s);

int store_aad_format(char out[AAD_MAX], const char *prefix, const char *id);
/* nonce || ciphertext || tag, into out (at least n + NONCE_LEN + TAG_LEN bytes). */
int store_secret_seal(mef_store_t *s, const char *aad, const uint8_t *pt, size_t n, uint8_t *out, size_t *ret_len);
/* -EBADMSG when the blob does not authenticate under this key (or the previous one) and aad. */
int store_secret_open(mef_store_t *s, const char *aad, const void *blob, size_t blob_len, uint8_t *out,
                      size_t out_size, size_t *ret_len);
/* The same under the current key alone (a restore: a dump is under it). */
int store_secret_open_current(mef_store_t *s, const char *aad, const void *blob, size_t blob_len, uint8_t *out,
                              size_t out_size, size_t *ret_len);
/* A blob (SEALED_MAX at most) sealed under the previous key sealed again under the current one,
 * in place: 1; 0 when it is under the current one already; -EBADMSG when under neither. */
int store_secret_reseal(mef_store_t *s, const char *aad, uint8_t *blob, size_t *len);
/* Decrypt a key column (16..64 bytes) into out, which is only written on success. */
int store_column_key(mef_store_t *s, db_stmt_t *st, int col, const char *prefix, const char *id,
                     uint8_t out[MSG_KEY_MAX], size_t *ret_len);
/* Seal key under the AAD prefix:id into blob (SEALED_MAX bytes); n 0 (none): *ret_len 0. The
 * key is the store's current one: checked by the transaction's store_key_guard() when it has
 * one (no round trip), else by reading the check value first. */
int store_key_seal(mef_store_t *s, const char *prefix, const char *id, const uint8_t *key, size_t n,
                   uint8_t blob[SEALED_MAX], size_t *ret_len);

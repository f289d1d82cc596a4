/* SPDX-License-Identifier: MIT */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/string-table.h"
#include "util/util.h"

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <fcntl.h>
#include <jansson.h>
#include <sys/stat.h>
#include <time.h>

#include "mef/store-db.h"
#include "mef/store.h"
#include "mef/store-backup.h"

#define NONCE_LEN 12u
#define TAG_LEN 16u
#define SEALED_MAX (NONCE_LEN + MSG_KEY_MAX + TAG_LEN)
#define AAD_MAX (8u + MSG_KEID_MAX + 1u)
/* Encrypted under AAD "check" and kept in meta: a wrong master key fails to open it. */
#define CHECK_PLAINTEXT "msce-mef master key check v1"

struct mef_store {
        db_t *d;
        Aes aes;      /* key schedule of the master key: wiped in store_close */
        bool aes_ready;
        /* A rekey (store_rekey) by another process changes meta's check value: the key file is
         * read again when it does (key_refresh, at the end of this file). */
        char *key_path;
        uint8_t check[NONCE_LEN + sizeof(CHECK_PLAINTEXT) + TAG_LEN];
        size_t check_len;
};

static int key_refresh(mef_store_t *s);

/* A statement in use, given back when it goes out of scope. */
typedef struct stmt_ref {
        db_stmt_t *st;
} stmt_ref_t;

static void stmt_releasep(stmt_ref_t *ref) {
        if (ref->st)
                DB_OPS(ref->st)->release(ref->st);
        ref->st = NULL;
}
#define _cleanup_stmt_ _cleanup_(stmt_releasep)

static void store_closep(mef_store_t **s) {
        store_close(*s);
}

#define BIND(expr)                              \
        do {                                    \
                int _r_ = (expr);               \
                if (_r_ < 0)                    \
                        return _r_;             \
        } while (0)

/* sql must be a string literal (its address is the cache key). */
static int prepare(mef_store_t *s, const char *sql, stmt_ref_t *ret) {
        return s->d->ops->prepare(s->d, sql, &ret->st);
}

static int step_done(db_stmt_t *st) {
        int r = db_step(st);
        return r > 0 ? -EIO : r;
}

/* A row -> 1, done -> 0. */
static int step_row(db_stmt_t *st) {
        return db_step(st);
}

/* Constant SQL only (schema, transaction control): nothing is ever built at run time. */
static int exec_const(mef_store_t *s, const char *sql) {
        return s->d->ops->exec(s->d, sql);
}

static int bind_text_or_null(db_stmt_t *st, int i, const char *v) {
        return db_bind_text(st, i, v && v[0] ? v : NULL, -1);
}

/* A TEXT column into a fixed buffer; NULL reads as "". -EBADMSG when it cannot fit (a row
 * that no writer of this store produces). */
static int column_text(db_stmt_t *st, int i, char *out, size_t size) {
        size_t n;
        const char *v = db_column_text(st, i, &n);
        if (n >= size || (v && memchr(v, 0, n)))
                return -EBADMSG;
        if (n)
                memcpy(out, v, n);
        out[n] = 0;
        return 0;
}

/* ---- states ---- */

static const char *const node_state_table[_NODE_STATE_MAX] = {
        [NODE_ACTIVE] = "active",
        [NODE_REENROL] = "reenrol",
        [NODE_REVOKED] = "revoked",
};

static const char *const enrolment_state_table[_ENROLMENT_STATE_MAX] = {
        [ENROLMENT_ACTIVE] = "active",
        [ENROLMENT_RETIRED] = "retired",
        [ENROLMENT_REVOKED] = "revoked",
        [ENROLMENT_DEREGISTERED] = "deregistered",
};

static const char *const backend_table[_STORE_BACKEND_MAX] = {
        [STORE_BACKEND_SQLITE] = "sqlite",
        [STORE_BACKEND_POSTGRESQL] = "postgresql",
};

DEFINE_STRING_TABLE(store_backend, store_backend_t, backend_table)
DEFINE_STRING_TABLE(node_state, node_state_t, node_state_table)
DEFINE_STRING_TABLE(enrolment_state, enrolment_state_t, enrolment_state_table)

/* ---- secrets ---- */

static int aad_format(char out[AAD_MAX], const char *prefix, const char *id) {
        int n = snprintf(out, AAD_MAX, "%s:%s", prefix, id);
        return n < 0 || (size_t) n >= AAD_MAX ? -EINVAL : 0;
}

/* nonce || ciphertext || tag, into out (at least n + NONCE_LEN + TAG_LEN bytes). */
static int secret_seal(mef_store_t *s, const char *aad, const uint8_t *pt, size_t n, uint8_t *out,
                       size_t *ret_len) {
        int r = random_bytes(out, NONCE_LEN);
        if (r < 0)
                return r;
        if (wc_AesGcmEncrypt(&s->aes, out + NONCE_LEN, pt, (word32) n, out, NONCE_LEN, out + NONCE_LEN + n,
                             TAG_LEN, (const byte *) aad, (word32) strlen(aad)) != 0)
                return -EIO;
        *ret_len = NONCE_LEN + n + TAG_LEN;
        return 0;
}

/* -EBADMSG when the blob does not authenticate under this key and aad. */
static int secret_open(mef_store_t *s, const char *aad, const void *blob, size_t blob_len, uint8_t *out,
                       size_t out_size, size_t *ret_len) {
        const uint8_t *b = blob;
        if (!b || blob_len < NONCE_LEN + TAG_LEN || blob_len - NONCE_LEN - TAG_LEN > out_size)
                return -EBADMSG;
        size_t n = blob_len - NONCE_LEN - TAG_LEN;
        int r = wc_AesGcmDecrypt(&s->aes, out, b + NONCE_LEN, (word32) n, b, NONCE_LEN, b + NONCE_LEN + n, TAG_LEN,
                                 (const byte *) aad, (word32) strlen(aad));
        if (r != 0) {
                erase(out, n);
                return r == AES_GCM_AUTH_E ? -EBADMSG : -EIO;
        }
        *ret_len = n;
        return 0;
}

/* Decrypt a key column (16..64 bytes) into out, which is only written on success. */
static int column_key(mef_store_t *s, db_stmt_t *st, int col, const char *prefix, const char *id,
                      uint8_t out[MSG_KEY_MAX], size_t *ret_len) {
        char aad[AAD_MAX];
        _cleanup_erase_(64) uint8_t key[MSG_KEY_MAX];
        size_t n;
        int r = aad_format(aad, prefix, id);
        if (r < 0)
                return r;
        size_t blob_len;
        const void *blob = db_column_blob(st, col, &blob_len);
        r = secret_open(s, aad, blob, blob_len, key, sizeof key, &n);
        if (r == -EBADMSG && key_refresh(s) > 0) /* rekeyed meanwhile */
                r = secret_open(s, aad, blob, blob_len, key, sizeof key, &n);
        if (r < 0)
                return r;
        if (n < MSG_KEY_MIN)
                return -EBADMSG;
        memcpy(out, key, n);
        *ret_len = n;
        return 0;
}

/* Seal key under the AAD prefix:id into blob (SEALED_MAX bytes). */
static int key_seal(mef_store_t *s, const char *prefix, const char *id, const uint8_t *key, size_t n,
                    uint8_t blob[SEALED_MAX], size_t *ret_len) {
        char aad[AAD_MAX];
        int r = aad_format(aad, prefix, id);
        if (r < 0)
                return r;
        r = key_refresh(s); /* never seal under a key a rekey has replaced */
        if (r < 0)
                return r;
        return secret_seal(s, aad, key, n, blob, ret_len);
}

/* How one table's rows decode; its secret is sealed to aad_prefix and the row's id (at id_offset
 * in the decoded struct), in column key_col of a query that selects it. */
typedef struct row_type {
        int (*decode)(db_stmt_t *st, void *out);
        size_t size;
        size_t id_offset;
        const char *aad_prefix;
        int key_col;
} row_type_t;

/* The row sql selects with ?1 = arg, decoded into ret; with key, also its secret. ret and key
 * are only written on success; -ENOENT when no row matches. */
static int select_one(mef_store_t *s, const row_type_t *type, const char *sql, const char *arg, void *ret,
                      uint8_t *key, size_t *ret_key_len) {
        if (!s || !arg || !ret)
                return -EINVAL;
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, sql, &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_text(st, 1, arg, -1));
        r = step_row(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        _cleanup_free_ uint8_t *row = malloc(type->size);
        if (!row)
                return -ENOMEM;
        r = type->decode(st, row);
        if (r < 0)
                return r;
        if (key) {
                r = column_key(s, st, type->key_col, type->aad_prefix, (const char *) row + type->id_offset, key,
                               ret_key_len);
                if (r < 0)
                        return r;
        }
        memcpy(ret, row, type->size);
        return 0;
}

/* Grow *array (of elem-sized items) to hold one more; returns the new slot. */
static void *array_push(void **array, size_t *n, size_t *alloc, size_t elem) {
        if (*n == *alloc) {
                size_t na = *alloc ? *alloc * 2 : 8;
                void *p = reallocarray(*array, na, elem);
                if (!p)
                        return NULL;
                *array = p;
                *alloc = na;
        }
        return (uint8_t *) *array + (*n)++ * elem;
}

/* Every row of the prepared and bound st, decoded into a new array. */
static int select_all(db_stmt_t *st, const row_type_t *type, void **ret, size_t *ret_n) {
        _cleanup_free_ void *list = NULL;
        size_t n = 0, alloc = 0;
        int r;
        while ((r = step_row(st)) > 0) {
                void *e = array_push(&list, &n, &alloc, type->size);
                if (!e)
                        return -ENOMEM;
                r = type->decode(st, e);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

static bool key_len_valid(const uint8_t *key, size_t n) {
        return key && n >= MSG_KEY_MIN && n <= MSG_KEY_MAX;
}

static bool fp_is_valid(const char *fp) {
        if (strlen(fp) != STORE_FP_LEN)
                return false;
        for (const char *p = fp; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

/* ---- master key and open ---- */

int store_mkdir_parents(const char *path) {
        _cleanup_free_ char *p = strdup(path);
        if (!p)
                return -ENOMEM;
        for (char *c = p + 1; *c; c++) {
                if (*c != '/')
                        continue;
                *c = 0;
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return negative_errno();
                *c = '/';
        }
        return 0;
}

static int master_key_read(const char *path, uint8_t key[STORE_MASTER_KEY_LEN]) {
        _cleanup_secret_ secret_t k = { 0 };
        int r = secret_file_read(path, STORE_MASTER_KEY_LEN, &k);
        if (r == -EFBIG || r == -ENODATA)
                return -EINVAL;
        if (r < 0)
                return r;
        if (k.len != STORE_MASTER_KEY_LEN)
                return -EINVAL;
        memcpy(key, k.data, STORE_MASTER_KEY_LEN);
        return 0;
}

static int master_key_create(const char *path, uint8_t key[STORE_MASTER_KEY_LEN]) {
        int r = store_mkdir_parents(path);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
        if (fd < 0)
                return negative_errno();
        r = random_bytes(key, STORE_MASTER_KEY_LEN);
        if (r == 0 && fchmod(fd, 0400) < 0)
                r = negative_errno();
        if (r == 0) {
                ssize_t n = write(fd, key, STORE_MASTER_KEY_LEN);
                if (n != (ssize_t) STORE_MASTER_KEY_LEN)
                        r = n < 0 ? negative_errno() : -EIO;
        }
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0) {
                erase(key, STORE_MASTER_KEY_LEN);
                unlink(path);
        }
        return r;
}

static int master_key_load(const char *path, bool create, uint8_t key[STORE_MASTER_KEY_LEN]) {
        int r = master_key_read(path, key);
        if (r != -ENOENT || !create)
                return r;
        r = master_key_create(path, key);
        if (r == -EEXIST) /* created by someone else meanwhile */
                r = master_key_read(path, key);
        return r;
}

/* 1 and the blob when the check row exists, 0 when not. */
static int check_read(mef_store_t *s, uint8_t *blob, size_t size, size_t *ret_len) {
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, "SELECT value FROM meta WHERE name = 'check'", &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        r = step_row(st);
        if (r <= 0)
                return r;
        size_t n;
        const void *v = db_column_blob(st, 0, &n);
        if (!v || n > size)
                return -EBADMSG;
        memcpy(blob, v, n);
        *ret_len = n;
        return 1;
}

static int check_write(mef_store_t *s) {
        uint8_t blob[NONCE_LEN + sizeof(CHECK_PLAINTEXT) + TAG_LEN];
        size_t n;
        int r = secret_seal(s, "check", (const uint8_t *) CHECK_PLAINTEXT, strlen(CHECK_PLAINTEXT), blob, &n);
        if (r < 0)
                return r;
        _cleanup_stmt_ stmt_ref_t ref = {};
        r = prepare(s,
                    "INSERT INTO meta (name, value) VALUES ('check', ?1) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_blob(st, 1, blob, n));
        return step_done(st);
}

static int check_verify(mef_store_t *s, const uint8_t *blob, size_t n) {
        char pt[sizeof(CHECK_PLAINTEXT)];
        size_t len;
        int r = secret_open(s, "check", blob, n, (uint8_t *) pt, sizeof pt, &len);
        if (r < 0)
                return r;
        if (len != strlen(CHECK_PLAINTEXT) || memcmp(pt, CHECK_PLAINTEXT, len) != 0)
                return -EBADMSG;
        return 0;
}

/* ---- schema and open ---- */

/* Under the engine's exclusive lock, from whatever version is there (another process may just
 * have migrated) to the newest. */
static int schema_migrate(mef_store_t *s, int *ret_from, int *ret_to) {
        const db_ops_t *ops = s->d->ops;
        int r = ops->begin_exclusive(s->d);
        if (r < 0)
                return r;
        int v = 0, from;
        r = ops->schema_version(s->d, &v);
        if (r == 0 && v > ops->n_migrations)
                r = -EPROTONOSUPPORT;
        from = v;
        for (; r == 0 && v < ops->n_migrations; v++) {
                r = exec_const(s, ops->migrations[v]);
                if (r == 0)
                        r = ops->set_schema_version(s->d, v + 1);
        }
        if (r == 0)
                r = exec_const(s, "COMMIT");
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        if (ret_from)
                *ret_from = from;
        if (ret_to)
                *ret_to = v;
        return 0;
}

/* Takes d. */
static int store_open_db(db_t *d, const char *master_key_path, unsigned flags, mef_store_t **ret) {
        _cleanup_(store_closep) mef_store_t *s = calloc(1, sizeof *s);
        if (!s) {
                d->ops->close(d);
                return -ENOMEM;
        }
        s->d = d;
        bool create = flags & STORE_OPEN_CREATE;
        _Static_assert(STORE_SCHEMA_VERSION > 0, "");
        if (d->ops->n_migrations != STORE_SCHEMA_VERSION)
                return -EINVAL; /* both engines move in step */

        int v;
        int r = d->ops->schema_version(d, &v);
        if (r < 0)
                return r;
        if (v > STORE_SCHEMA_VERSION)
                return -EPROTONOSUPPORT; /* written by a newer msce-mef */
        if (v == 0 && !create)
                return -ENOENT;          /* a database, but never initialised */
        if (v > 0 && v < STORE_SCHEMA_VERSION && !(flags & (STORE_OPEN_CREATE | STORE_OPEN_MIGRATE)))
                return -ESTALE;          /* older: msce-mef migrate */

        uint8_t blob[NONCE_LEN + sizeof(CHECK_PLAINTEXT) + TAG_LEN];
        size_t blob_len = 0;
        int has_check = 0;
        if (v > 0) {
                has_check = check_read(s, blob, sizeof blob, &blob_len);
                if (has_check < 0)
                        return has_check;
        }

        /* A store that already has data never gets a fresh key: that key could not open it. */
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        r = master_key_load(master_key_path, create && !has_check, key);
        if (r < 0)
                return r;
        if (wc_AesInit(&s->aes, NULL, INVALID_DEVID) != 0)
                return -EIO;
        s->aes_ready = true;
        if (wc_AesGcmSetKey(&s->aes, key, STORE_MASTER_KEY_LEN) != 0)
                return -EIO;

        if (has_check)
                r = check_verify(s, blob, blob_len);
        if (r == 0 && v < STORE_SCHEMA_VERSION && create)
                r = schema_migrate(s, NULL, NULL); /* MIGRATE: store_migrate() follows */
        if (r == 0 && !has_check) {
                /* A new store, or a schema without a check row: adopt this key - unless another
                 * process just created the store with its own. */
                has_check = check_read(s, blob, sizeof blob, &blob_len);
                r = has_check < 0 ? has_check : has_check ? check_verify(s, blob, blob_len) : check_write(s);
        }
        if (r == 0)
                r = check_read(s, s->check, sizeof s->check, &s->check_len);
        if (r < 0)
                return r;
        s->key_path = strdup(master_key_path);
        if (!s->key_path)
                return -ENOMEM;

        *ret = TAKE_PTR(s);
        return 0;
}

int store_open_at(const store_location_t *loc, const char *master_key_path, unsigned flags, mef_store_t **ret) {
        if (!loc || !master_key_path || !ret)
                return -EINVAL;
        db_t *d = NULL;
        int r;
        switch (loc->backend) {
        case STORE_BACKEND_SQLITE:
                r = db_sqlite_open(loc->path, flags & STORE_OPEN_CREATE, &d);
                break;
        case STORE_BACKEND_POSTGRESQL:
                r = db_pg_open(loc, &d);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        return store_open_db(d, master_key_path, flags, ret);
}

int store_open(const char *db_path, const char *master_key_path, bool create, mef_store_t **ret) {
        if (!db_path)
                return -EINVAL;
        store_location_t loc = { .backend = STORE_BACKEND_SQLITE, .path = db_path };
        return store_open_at(&loc, master_key_path, create ? STORE_OPEN_CREATE : 0, ret);
}

int store_migrate(mef_store_t *s, int *ret_from, int *ret_to) {
        if (!s)
                return -EINVAL;
        return schema_migrate(s, ret_from, ret_to);
}

mef_store_t *store_close(mef_store_t *s) {
        if (!s)
                return NULL;
        if (s->d)
                s->d->ops->close(s->d);
        if (s->aes_ready)
                wc_AesFree(&s->aes);
        free(s->key_path);
        erase(s, sizeof *s);
        free(s);
        return NULL;
}

int store_set_busy_timeout(mef_store_t *s, unsigned ms) {
        if (!s)
                return -EINVAL;
        return s->d->ops->set_busy_timeout(s->d, ms);
}

/* ---- transactions ---- */

int store_begin(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        /* SQLite: the write lock now, not at the first write (no upgrade deadlock). PostgreSQL:
         * rows are locked as they are written, the node's first (enrolment_lock_node). */
        return exec_const(s, s->d->ops->dialect == DB_SQLITE ? "BEGIN IMMEDIATE" : "BEGIN");
}

int store_commit(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        return exec_const(s, "COMMIT");
}

void store_rollback(mef_store_t *s) {
        if (s && s->d->ops->in_transaction(s->d))
                (void) exec_const(s, "ROLLBACK");
}

/* ---- nodes ---- */

#define NODE_COLUMNS \
        "node_id, kpm_id, cert_fp, cse_id, cse_base, targets, poll, lifetime, ltk_transported, state, created"
/* What a read gets: the written columns, then the status-check tally (schema 3). */
#define NODE_SELECT NODE_COLUMNS ", last_seen, status_checks"

static int targets_to_json(const store_node_t *n, char **ret) {
        json_t *a = json_array();
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n->n_targets; i++)
                if (json_array_append_new(a, json_string(n->targets[i])) < 0) {
                        json_decref(a);
                        return -ENOMEM;
                }
        char *s = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int targets_from_json(const char *text, store_node_t *n) {
        json_t *a = json_loads(text ?: "", JSON_REJECT_DUPLICATES, NULL);
        int r = 0;
        if (!json_is_array(a) || json_array_size(a) > MSG_TARGETS_MAX)
                r = -EBADMSG;
        for (size_t i = 0; r == 0 && i < json_array_size(a); i++) {
                const char *t = json_string_value(json_array_get(a, i));
                if (!t || !id_is_valid(t, MSG_ID_MAX))
                        r = -EBADMSG;
                else
                        snprintf(n->targets[i], sizeof n->targets[i], "%s", t);
        }
        if (r == 0)
                n->n_targets = json_array_size(a);
        json_decref(a);
        return r;
}

/* Columns in NODE_COLUMNS order. */
static int node_from_row(db_stmt_t *st, void *out) {
        store_node_t *n = out;
        int r;
        memset(n, 0, sizeof *n);
        if ((r = column_text(st, 0, n->node_id, sizeof n->node_id)) < 0 ||
            (r = column_text(st, 1, n->kpm_id, sizeof n->kpm_id)) < 0 ||
            (r = column_text(st, 2, n->cert_fp, sizeof n->cert_fp)) < 0 ||
            (r = column_text(st, 3, n->cse_id, sizeof n->cse_id)) < 0 ||
            (r = column_text(st, 4, n->cse_base, sizeof n->cse_base)) < 0)
                return r;
        r = targets_from_json(db_column_str(st, 5), n);
        if (r < 0)
                return r;
        int64_t poll = db_column_int64(st, 6), lifetime = db_column_int64(st, 7);
        if (poll < 0 || poll > UINT32_MAX || lifetime < 0 || lifetime > UINT32_MAX)
                return -EBADMSG;
        n->poll = (uint32_t) poll;
        n->lifetime = (uint32_t) lifetime;
        n->ltk_transported = (int) db_column_int64(st, 8) != 0;
        n->state = node_state_from_string(db_column_str(st, 9));
        if (n->state < 0)
                return -EBADMSG;
        n->created = db_column_int64(st, 10);
        n->last_seen = db_column_int64(st, 11);
        n->status_checks = (uint64_t) db_column_int64(st, 12);
        return 0;
}

static const row_type_t node_row = {
        node_from_row, sizeof(store_node_t), offsetof(store_node_t, node_id), "kpm", 13,
};

static bool node_is_valid(const store_node_t *n, const uint8_t *kpm, size_t kpm_len) {
        bool psk = n->kpm_id[0] != 0;
        if (!id_is_valid(n->node_id, MSG_ID_MAX) || !id_is_valid(n->cse_id, MSG_ID_MAX) ||
            !id_is_valid(n->cse_base, MSG_URI_MAX))
                return false;
        if (psk && (!id_is_valid(n->kpm_id, MSG_ID_MAX) || n->cert_fp[0] || !key_len_valid(kpm, kpm_len)))
                return false;
        if (!psk && (!fp_is_valid(n->cert_fp) || kpm_len != 0))
                return false;
        if (n->n_targets > MSG_TARGETS_MAX)
                return false;
        for (size_t i = 0; i < n->n_targets; i++)
                if (!id_is_valid(n->targets[i], MSG_ID_MAX))
                        return false;
        return n->poll >= STORE_POLL_MIN && n->poll <= STORE_POLL_MAX && n->lifetime >= STORE_LIFETIME_MIN &&
               n->lifetime <= STORE_LIFETIME_MAX && n->state >= 0 && n->state < _NODE_STATE_MAX;
}

int store_node_add(mef_store_t *s, const store_node_t *n, const uint8_t *kpm, size_t kpm_len) {
        if (!s || !n || !node_is_valid(n, kpm, kpm_len))
                return -EINVAL;

        uint8_t blob[SEALED_MAX];
        size_t blob_len = 0;
        int r;
        if (n->kpm_id[0]) {
                r = key_seal(s, "kpm", n->node_id, kpm, kpm_len, blob, &blob_len);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *targets = NULL;
        r = targets_to_json(n, &targets);
        if (r < 0)
                return r;

        /* A CSE-ID names one CSE: assigned to another node, it is refused (-EADDRINUSE). The
         * schema has no UNIQUE on cse_id (stores created before this check would need an
         * upgrade): the check is here, and again in the INSERT, so it holds without a
         * transaction too. */
        store_node_t other;
        r = store_node_by_cse_id(s, n->cse_id, &other);
        if (r == 0 && !streq(other.node_id, n->node_id))
                return -EADDRINUSE;
        if (r < 0 && r != -ENOENT)
                return r;

        /* A TLS identity names one peer: a KpmID or fingerprint a target already uses is a
         * duplicate too. */
        _cleanup_stmt_ stmt_ref_t ref = {};
        r = prepare(s,
                    "INSERT INTO nodes (" NODE_COLUMNS ", kpm_enc) "
                    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 "
                    "WHERE NOT EXISTS (SELECT 1 FROM targets WHERE psk_id = ?2 OR cert_fp = ?3) "
                    "AND NOT EXISTS (SELECT 1 FROM nodes WHERE cse_id = ?4)",
                    &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_text(st, 1, n->node_id, -1));
        BIND(bind_text_or_null(st, 2, n->kpm_id));
        BIND(bind_text_or_null(st, 3, n->cert_fp));
        BIND(db_bind_text(st, 4, n->cse_id, -1));
        BIND(db_bind_text(st, 5, n->cse_base, -1));
        BIND(db_bind_text(st, 6, targets, -1));
        BIND(db_bind_int64(st, 7, n->poll));
        BIND(db_bind_int64(st, 8, n->lifetime));
        BIND(db_bind_int64(st, 9, n->ltk_transported));
        BIND(db_bind_text(st, 10, node_state_to_string(n->state), -1));
        BIND(db_bind_int64(st, 11, n->created > 0 ? n->created : (int64_t) time(NULL)));
        if (blob_len)
                BIND(db_bind_blob(st, 12, blob, blob_len));
        else
                BIND(db_bind_blob(st, 12, NULL, 0));
        r = step_done(st);
        if (r < 0)
                return r;
        return s->d->ops->changes(s->d) == 1 ? 0 : -EEXIST;
}

int store_node_get(mef_store_t *s, const char *node_id, store_node_t *ret) {
        return select_one(s, &node_row, "SELECT " NODE_SELECT " FROM nodes WHERE node_id = ?1", node_id, ret, NULL,
                               NULL);
}

int store_node_by_kpm_id(mef_store_t *s, const char *kpm_id, store_node_t *ret, uint8_t kpm[MSG_KEY_MAX],
                         size_t *ret_kpm_len) {
        if (!kpm || !ret_kpm_len)
                return -EINVAL;
        return select_one(s, &node_row, "SELECT " NODE_SELECT ", kpm_enc FROM nodes WHERE kpm_id = ?1", kpm_id, ret,
                               kpm, ret_kpm_len);
}

int store_node_by_cse_id(mef_store_t *s, const char *cse_id, store_node_t *ret) {
        return select_one(s, &node_row, "SELECT " NODE_SELECT " FROM nodes WHERE cse_id = ?1 ORDER BY node_id LIMIT 1",
                          cse_id, ret, NULL, NULL);
}

int store_node_by_cert(mef_store_t *s, const char *fp, store_node_t *ret) {
        return select_one(s, &node_row, "SELECT " NODE_SELECT " FROM nodes WHERE cert_fp = ?1", fp, ret, NULL, NULL);
}

int store_node_list(mef_store_t *s, store_node_t **ret, size_t *ret_n) {
        static const store_page_t all = { .state = -1 };
        return store_node_page(s, &all, ret, ret_n);
}

/* For UPDATE/DELETE by key: -ENOENT when no row matched. */
static int update_one(mef_store_t *s, const char *sql, const char *a1, const char *a2) {
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, sql, &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_text(st, 1, a1, -1));
        if (a2)
                BIND(db_bind_text(st, 2, a2, -1));
        r = step_done(st);
        if (r < 0)
                return r;
        return s->d->ops->changes(s->d) > 0 ? 0 : -ENOENT;
}

int store_node_set_state(mef_store_t *s, const char *node_id, node_state_t state) {
        const char *v = node_state_to_string(state);
        if (!s || !node_id || !v)
                return -EINVAL;
        return update_one(s, "UPDATE nodes SET state = ?1 WHERE node_id = ?2", v, node_id);
}

int store_node_remove(mef_store_t *s, const char *node_id) {
        if (!s || !node_id)
                return -EINVAL;
        /* enrolments go with it: ON DELETE CASCADE */
        return update_one(s, "DELETE FROM nodes WHERE node_id = ?1", node_id, NULL);
}

int store_counts(mef_store_t *s, int64_t now, store_counts_t *ret) {
        if (!s || !ret)
                return -EINVAL;
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s,
                        "SELECT (SELECT count(*) FROM nodes),"
                        " (SELECT count(*) FROM enrolments WHERE state = 'active' AND exp > ?1),"
                        " (SELECT count(*) FROM enrolments WHERE state = 'active' AND exp <= ?1)",
                        &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_int64(st, 1, now));
        r = step_row(st);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        *ret = (store_counts_t) {
                .nodes = (uint64_t) db_column_int64(st, 0),
                .enrolments_active = (uint64_t) db_column_int64(st, 1),
                .enrolments_expired = (uint64_t) db_column_int64(st, 2),
        };
        return 0;
}

int store_node_seen(mef_store_t *s, const char *node_id, int64_t now) {
        if (!s || !node_id)
                return -EINVAL;
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, "UPDATE nodes SET last_seen = ?2, status_checks = status_checks + 1 WHERE node_id = ?1",
                        &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_text(st, 1, node_id, -1));
        BIND(db_bind_int64(st, 2, now));
        r = step_done(st);
        if (r < 0)
                return r;
        return s->d->ops->changes(s->d) == 1 ? 0 : -ENOENT;
}

/* One DELETE with a cut-off, counting what it removed. */
static int delete_before(mef_store_t *s, const char *sql, int64_t before, uint64_t *ret_n) {
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, sql, &ref);
        if (r < 0)
                return r;
        BIND(db_bind_int64(ref.st, 1, before));
        r = step_done(ref.st);
        if (r < 0)
                return r;
        *ret_n = (uint64_t) s->d->ops->changes(s->d);
        return 0;
}

int store_prune(mef_store_t *s, int64_t before, store_pruned_t *ret) {
        if (!s || !ret)
                return -EINVAL;
        store_pruned_t p = {};
        int r = store_begin(s);
        if (r >= 0)
                r = delete_before(s, "DELETE FROM audit WHERE ts < ?1", before, &p.audit);
        /* An enrolment that no longer serves (retired, revoked, deregistered) and has expired:
         * its KeID answers 404 like any unknown one, which is what it gets anyway once expired. */
        if (r >= 0)
                r = delete_before(s, "DELETE FROM enrolments WHERE state <> 'active' AND exp < ?1", before,
                                  &p.enrolments);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        *ret = p;
        return 0;
}

/* ---- nodes: pages and conflicts (bulk lifecycle) ---- */

static uint64_t page_limit(size_t limit) {
        uint64_t l = limit; /* a 64-bit compare: size_t is 32 bits on armhf (-Wtype-limits) */
        return l == 0 || l > INT64_MAX ? INT64_MAX : l;
}

int store_node_page(mef_store_t *s, const store_page_t *p, store_node_t **ret, size_t *ret_n) {
        if (!s || !p || !ret || !ret_n)
                return -EINVAL;
        const char *state = NULL;
        if (p->state >= 0 && !(state = node_state_to_string((node_state_t) p->state)))
                return -EINVAL;
        /* keyset: the primary key's index walks from after, whatever the table holds */
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s,
                        "SELECT " NODE_SELECT " FROM nodes WHERE (?1 IS NULL OR node_id > ?1) "
                        "AND (?2 IS NULL OR state = ?2) AND created >= ?3 ORDER BY node_id LIMIT ?4",
                        &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(bind_text_or_null(st, 1, p->after));
        BIND(bind_text_or_null(st, 2, state));
        BIND(db_bind_int64(st, 3, p->since));
        BIND(db_bind_int64(st, 4, (int64_t) page_limit(p->limit)));
        void *list = NULL;
        r = select_all(st, &node_row, &list, ret_n);
        if (r == 0)
                *ret = list;
        return r;
}

/* 1 when sql (?1 = arg, ?2 = not_node) finds a row. */
static int row_exists(mef_store_t *s, const char *sql, const char *arg, const char *not_node) {
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, sql, &ref);
        if (r < 0)
                return r;
        BIND(db_bind_text(ref.st, 1, arg, -1));
        BIND(db_bind_text(ref.st, 2, not_node, -1));
        return step_row(ref.st);
}

int store_node_conflict(mef_store_t *s, const store_node_t *n, const char **ret_field) {
        if (!s || !n || !ret_field)
                return -EINVAL;
        static const struct {
                size_t offset;
                const char *field, *sql;
        } checks[] = {
                { offsetof(store_node_t, node_id), "node ID", "SELECT 1 FROM nodes WHERE node_id = ?1 AND ?2 IS NOT NULL" },
                { offsetof(store_node_t, kpm_id), "KpmID",
                  "SELECT 1 FROM nodes WHERE kpm_id = ?1 AND node_id <> ?2 UNION ALL "
                  "SELECT 1 FROM targets WHERE psk_id = ?1" },
                { offsetof(store_node_t, cert_fp), "certificate",
                  "SELECT 1 FROM nodes WHERE cert_fp = ?1 AND node_id <> ?2 UNION ALL "
                  "SELECT 1 FROM targets WHERE cert_fp = ?1" },
                { offsetof(store_node_t, cse_id), "CSE-ID", "SELECT 1 FROM nodes WHERE cse_id = ?1 AND node_id <> ?2" },
        };
        for (size_t i = 0; i < ELEMENTSOF(checks); i++) {
                const char *v = (const char *) n + checks[i].offset;
                if (!v[0])
                        continue;
                int r = row_exists(s, checks[i].sql, v, n->node_id);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret_field = checks[i].field;
                        return 1;
                }
        }
        return 0;
}

/* ---- targets ---- */

#define TARGET_COLUMNS "id, psk_id, cert_fp, created"

static int target_from_row(db_stmt_t *st, void *out) {
        store_target_t *t = out;
        int r;
        memset(t, 0, sizeof *t);
        if ((r = column_text(st, 0, t->id, sizeof t->id)) < 0 ||
            (r = column_text(st, 1, t->psk_id, sizeof t->psk_id)) < 0 ||
            (r = column_text(st, 2, t->cert_fp, sizeof t->cert_fp)) < 0)
                return r;
        t->created = db_column_int64(st, 3);
        return 0;
}

static const row_type_t target_row = {
        target_from_row, sizeof(store_target_t), offsetof(store_target_t, id), "tpsk", 4,
};

int store_target_add(mef_store_t *s, const store_target_t *t, const uint8_t *psk, size_t psk_len) {
        if (!s || !t || !id_is_valid(t->id, MSG_ID_MAX))
                return -EINVAL;
        bool is_psk = t->psk_id[0] != 0;
        if (is_psk && (!id_is_valid(t->psk_id, MSG_ID_MAX) || t->cert_fp[0] || !key_len_valid(psk, psk_len)))
                return -EINVAL;
        if (!is_psk && (!fp_is_valid(t->cert_fp) || psk_len != 0))
                return -EINVAL;

        uint8_t blob[SEALED_MAX];
        size_t blob_len = 0;
        int r;
        if (is_psk) {
                r = key_seal(s, "tpsk", t->id, psk, psk_len, blob, &blob_len);
                if (r < 0)
                        return r;
        }
        _cleanup_stmt_ stmt_ref_t ref = {};
        r = prepare(s,
                    "INSERT INTO targets (" TARGET_COLUMNS ", psk_enc) SELECT ?1, ?2, ?3, ?4, ?5 "
                    "WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE kpm_id = ?2 OR cert_fp = ?3)",
                    &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_text(st, 1, t->id, -1));
        BIND(bind_text_or_null(st, 2, t->psk_id));
        BIND(bind_text_or_null(st, 3, t->cert_fp));
        BIND(db_bind_int64(st, 4, t->created > 0 ? t->created : (int64_t) time(NULL)));
        if (blob_len)
                BIND(db_bind_blob(st, 5, blob, blob_len));
        else
                BIND(db_bind_blob(st, 5, NULL, 0));
        r = step_done(st);
        if (r < 0)
                return r;
        return s->d->ops->changes(s->d) == 1 ? 0 : -EEXIST;
}

int store_target_by_psk_id(mef_store_t *s, const char *psk_id, store_target_t *ret, uint8_t psk[MSG_KEY_MAX],
                           size_t *ret_psk_len) {
        if (!psk || !ret_psk_len)
                return -EINVAL;
        return select_one(s, &target_row, "SELECT " TARGET_COLUMNS ", psk_enc FROM targets WHERE psk_id = ?1", psk_id,
                                 ret, psk, ret_psk_len);
}

int store_target_by_cert(mef_store_t *s, const char *fp, store_target_t *ret) {
        return select_one(s, &target_row, "SELECT " TARGET_COLUMNS " FROM targets WHERE cert_fp = ?1", fp, ret, NULL,
                                 NULL);
}

int store_target_list(mef_store_t *s, store_target_t **ret, size_t *ret_n) {
        if (!s || !ret || !ret_n)
                return -EINVAL;
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, "SELECT " TARGET_COLUMNS " FROM targets ORDER BY id", &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        void *list = NULL;
        r = select_all(st, &target_row, &list, ret_n);
        if (r == 0)
                *ret = list;
        return r;
}

int store_target_remove(mef_store_t *s, const char *id) {
        if (!s || !id)
                return -EINVAL;
        return update_one(s, "DELETE FROM targets WHERE id = ?1", id, NULL);
}

/* ---- enrolments ---- */

#define ENROLMENT_COLUMNS "ke_id, node_id, state, created, exp, ltk_transported"

static int enrolment_from_row(db_stmt_t *st, void *out) {
        store_enrolment_t *e = out;
        int r;
        memset(e, 0, sizeof *e);
        if ((r = column_text(st, 0, e->ke_id, sizeof e->ke_id)) < 0 ||
            (r = column_text(st, 1, e->node_id, sizeof e->node_id)) < 0)
                return r;
        e->state = enrolment_state_from_string(db_column_str(st, 2));
        if (e->state < 0)
                return -EBADMSG;
        e->created = db_column_int64(st, 3);
        e->exp = db_column_int64(st, 4);
        e->ltk_transported = (int) db_column_int64(st, 5) != 0;
        return 0;
}

static const row_type_t enrolment_row = {
        enrolment_from_row, sizeof(store_enrolment_t), offsetof(store_enrolment_t, ke_id), "ke", 6,
};

int store_enrolment_add(mef_store_t *s, const store_enrolment_t *e, const uint8_t *key, size_t key_len) {
        const char *state = e ? enrolment_state_to_string(e->state) : NULL;
        if (!s || !e || !state || !id_is_valid(e->ke_id, MSG_KEID_MAX) || !id_is_valid(e->node_id, MSG_ID_MAX) ||
            !key_len_valid(key, key_len))
                return -EINVAL;

        uint8_t blob[SEALED_MAX];
        size_t blob_len;
        int r = key_seal(s, "ke", e->ke_id, key, key_len, blob, &blob_len);
        if (r < 0)
                return r;
        _cleanup_stmt_ stmt_ref_t ref = {};
        r = prepare(s, "INSERT INTO enrolments (" ENROLMENT_COLUMNS ", key_enc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_text(st, 1, e->ke_id, -1));
        BIND(db_bind_text(st, 2, e->node_id, -1));
        BIND(db_bind_text(st, 3, state, -1));
        BIND(db_bind_int64(st, 4, e->created > 0 ? e->created : (int64_t) time(NULL)));
        BIND(db_bind_int64(st, 5, e->exp));
        BIND(db_bind_int64(st, 6, e->ltk_transported));
        BIND(db_bind_blob(st, 7, blob, blob_len));
        return step_done(st);
}

int store_enrolment_get(mef_store_t *s, const char *ke_id, store_enrolment_t *ret, uint8_t key[MSG_KEY_MAX],
                        size_t *ret_key_len) {
        if (!s || !ke_id || !ret || !key != !ret_key_len)
                return -EINVAL;
        return select_one(s, &enrolment_row, "SELECT " ENROLMENT_COLUMNS ", key_enc FROM enrolments WHERE ke_id = ?1",
                          ke_id, ret, key, ret_key_len);
}

int store_enrolment_set_state(mef_store_t *s, const char *ke_id, enrolment_state_t state) {
        const char *v = enrolment_state_to_string(state);
        if (!s || !ke_id || !v)
                return -EINVAL;
        return update_one(s, "UPDATE enrolments SET state = ?1 WHERE ke_id = ?2", v, ke_id);
}

int store_enrolment_set_state_for_node(mef_store_t *s, const char *node_id, enrolment_state_t state) {
        const char *v = enrolment_state_to_string(state);
        if (!s || !node_id || !v)
                return -EINVAL;
        if (state == ENROLMENT_ACTIVE)
                return 0; /* active rows stay active: nothing to do */
        /* PostgreSQL: two instances enrolling one node at once each retire what they see and
         * insert their own; holding the node's row until commit makes the second wait and then
         * see (and retire) the first's. SQLite: BEGIN IMMEDIATE serialises writers already. Either
         * way the unique index enrolments_one_active backs it. */
        if (s->d->ops->dialect == DB_POSTGRESQL && s->d->ops->in_transaction(s->d)) {
                _cleanup_stmt_ stmt_ref_t ref = {};
                int r = prepare(s, "SELECT node_id FROM nodes WHERE node_id = ?1 FOR UPDATE", &ref);
                if (r < 0)
                        return r;
                BIND(db_bind_text(ref.st, 1, node_id, -1));
                r = step_row(ref.st);
                if (r < 0)
                        return r;
        }
        /* Find each active row through the index, then update it by primary key: an UPDATE of the
         * column its own index scan runs on makes SQLite build an ephemeral table (3-4x slower). */
        for (;;) {
                char ke_id[MSG_KEID_MAX + 1];
                {
                        _cleanup_stmt_ stmt_ref_t ref = {};
                        int r = prepare(s,
                                        "SELECT ke_id FROM enrolments WHERE node_id = ?1 AND state = 'active' LIMIT 1",
                                        &ref);
                        if (r < 0)
                                return r;
                        BIND(db_bind_text(ref.st, 1, node_id, -1));
                        r = step_row(ref.st);
                        if (r <= 0)
                                return r; /* 0: no active enrolment left */
                        r = column_text(ref.st, 0, ke_id, sizeof ke_id);
                        if (r < 0)
                                return r;
                }
                int r = update_one(s, "UPDATE enrolments SET state = ?1 WHERE ke_id = ?2", v, ke_id);
                if (r < 0)
                        return r; /* -ENOENT too: the row just read is gone, not expected in a transaction */
        }
}

int store_enrolment_list(mef_store_t *s, const char *node_id, store_enrolment_t **ret, size_t *ret_n) {
        static const store_page_t all = { .state = -1 };
        return store_enrolment_page(s, node_id, &all, ret, ret_n);
}

/* ---- enrolments: pages (bulk lifecycle) ---- */

int store_enrolment_page(mef_store_t *s, const char *node_id, const store_page_t *p, store_enrolment_t **ret,
                         size_t *ret_n) {
        if (!s || !p || !ret || !ret_n)
                return -EINVAL;
        const char *state = NULL;
        if (p->state >= 0 && !(state = enrolment_state_to_string((enrolment_state_t) p->state)))
                return -EINVAL;
        /* Newest first as store_enrolment_list(): the cursor is the KeID of the last row shown,
         * its (created, rowid) the position to go on from. */
        int64_t created = INT64_MAX, rowid = INT64_MAX;
        int r;
        _cleanup_stmt_ stmt_ref_t ref = {};
        if (p->after) {
                r = prepare(s, "SELECT created, rowid FROM enrolments WHERE ke_id = ?1", &ref);
                if (r < 0)
                        return r;
                BIND(db_bind_text(ref.st, 1, p->after, -1));
                r = step_row(ref.st);
                if (r <= 0)
                        return r < 0 ? r : -ENOENT;
                created = db_column_int64(ref.st, 0);
                rowid = db_column_int64(ref.st, 1);
                stmt_releasep(&ref);
        }
        r = prepare(s,
                    "SELECT " ENROLMENT_COLUMNS " FROM enrolments WHERE (created < ?1 OR (created = ?1 AND rowid < ?2)) "
                    "AND (?3 IS NULL OR node_id = ?3) AND (?4 IS NULL OR state = ?4) AND created >= ?5 "
                    "AND (?6 = 0 OR (?6 > 0 AND exp <= ?7) OR (?6 < 0 AND exp > ?7)) "
                    "ORDER BY created DESC, rowid DESC LIMIT ?8",
                    &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_int64(st, 1, created));
        BIND(db_bind_int64(st, 2, rowid));
        BIND(bind_text_or_null(st, 3, node_id));
        BIND(bind_text_or_null(st, 4, state));
        BIND(db_bind_int64(st, 5, p->since));
        BIND(db_bind_int64(st, 6, p->expired));
        BIND(db_bind_int64(st, 7, p->now > 0 ? p->now : (int64_t) time(NULL)));
        BIND(db_bind_int64(st, 8, (int64_t) page_limit(p->limit)));
        void *list = NULL;
        r = select_all(st, &enrolment_row, &list, ret_n);
        if (r == 0)
                *ret = list;
        return r;
}

/* ---- audit ---- */

/* Length of s cut to at most max bytes, not splitting a UTF-8 sequence. */
static int truncated_len(const char *s, size_t max) {
        size_t n = strnlen(s, max + 1);
        if (n > max) {
                n = max;
                while (n > 0 && ((unsigned char) s[n] & 0xc0) == 0x80)
                        n--;
        }
        return (int) n;
}

static int bind_truncated(db_stmt_t *st, int i, const char *v, size_t max) {
        if (!v || !v[0])
                return db_bind_text(st, i, NULL, 0);
        return db_bind_text(st, i, v, truncated_len(v, max));
}

int store_audit(mef_store_t *s, const char *actor, const char *action, const char *subject, const char *detail) {
        if (!s || !actor || !actor[0] || !action || !action[0])
                return -EINVAL;
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, "INSERT INTO audit (ts, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)", &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_int64(st, 1, (int64_t) time(NULL)));
        BIND(bind_truncated(st, 2, actor, STORE_AUDIT_ACTOR_MAX));
        BIND(bind_truncated(st, 3, action, STORE_AUDIT_ACTION_MAX));
        BIND(bind_truncated(st, 4, subject, STORE_AUDIT_SUBJECT_MAX));
        BIND(bind_truncated(st, 5, detail, STORE_AUDIT_DETAIL_MAX));
        return step_done(st);
}

/* The rows of the prepared and bound audit query st. */
static int audit_rows(db_stmt_t *st, store_audit_entry_t **ret, size_t *ret_n) {
        int r;
        _cleanup_free_ store_audit_entry_t *list = NULL;
        size_t n = 0, alloc = 0;
        while ((r = step_row(st)) > 0) {
                store_audit_entry_t *e = array_push((void **) &list, &n, &alloc, sizeof *list);
                if (!e)
                        return -ENOMEM;
                memset(e, 0, sizeof *e);
                e->id = db_column_int64(st, 0);
                e->ts = db_column_int64(st, 1);
                if ((r = column_text(st, 2, e->actor, sizeof e->actor)) < 0 ||
                    (r = column_text(st, 3, e->action, sizeof e->action)) < 0 ||
                    (r = column_text(st, 4, e->subject, sizeof e->subject)) < 0 ||
                    (r = column_text(st, 5, e->detail, sizeof e->detail)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

int store_audit_list(mef_store_t *s, size_t limit, store_audit_entry_t **ret, size_t *ret_n) {
        store_page_t p = { .state = -1, .limit = limit };
        return store_audit_page(s, &p, ret, ret_n);
}

/* ---- audit: pages (bulk lifecycle) ---- */

int store_audit_page(mef_store_t *s, const store_page_t *p, store_audit_entry_t **ret, size_t *ret_n) {
        if (!s || !p || !ret || !ret_n || p->after_id < 0)
                return -EINVAL;
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s,
                        "SELECT id, ts, actor, action, subject, detail FROM audit WHERE (?1 = 0 OR id < ?1) "
                        "AND ts >= ?2 AND (?3 IS NULL OR action = ?3) ORDER BY id DESC LIMIT ?4",
                        &ref);
        if (r < 0)
                return r;
        db_stmt_t *st = ref.st;
        BIND(db_bind_int64(st, 1, p->after_id));
        BIND(db_bind_int64(st, 2, p->since));
        BIND(bind_text_or_null(st, 3, p->action));
        BIND(db_bind_int64(st, 4, (int64_t) page_limit(p->limit)));
        return audit_rows(st, ret, ret_n);
}

/* ---- backup, restore, rekey (mef/store-backup.h) ---- */

/* Whether meta's check value changed since this store read it (another process rekeyed): then
 * the key file - or "<path>.new" while that rekey is between its commit and its rename - is
 * read again and kept when it opens the new check value. 1: a new key; 0: nothing changed. */
static int key_refresh(mef_store_t *s) {
        if (!s->key_path)
                return 0;
        uint8_t blob[sizeof s->check];
        size_t n = 0;
        /* PostgreSQL: a share lock on the check row; a rekey updates it first, so a writer that
         * sealed under the old key commits before the rekey re-encrypts (and sees its row). */
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s,
                        s->d->ops->dialect == DB_POSTGRESQL && s->d->ops->in_transaction(s->d)
                                ? "SELECT value FROM meta WHERE name = 'check' FOR SHARE"
                                : "SELECT value FROM meta WHERE name = 'check'",
                        &ref);
        if (r < 0)
                return r;
        r = step_row(ref.st);
        if (r <= 0)
                return r;
        const void *v = db_column_blob(ref.st, 0, &n);
        if (!v || n > sizeof blob)
                return -EBADMSG;
        memcpy(blob, v, n);
        if (n == s->check_len && memcmp(blob, s->check, n) == 0)
                return 0;

        char pending[PATH_MAX];
        r = store_rekey_pending_path(s->key_path, pending, sizeof pending);
        if (r < 0)
                return r;
        const char *paths[] = { s->key_path, pending };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
                if (master_key_read(paths[i], key) < 0 || store_key_opens_check(key, blob, n) < 0)
                        continue;
                if (wc_AesGcmSetKey(&s->aes, key, STORE_MASTER_KEY_LEN) != 0)
                        return -EIO;
                memcpy(s->check, blob, n);
                s->check_len = n;
                return 1;
        }
        return -EBADMSG; /* neither file opens the store any more */
}

int store_rekey_pending_path(const char *key_path, char *out, size_t size) {
        int n = snprintf(out, size, "%s.new", key_path);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

typedef enum dump_type {
        DUMP_TEXT,
        DUMP_INT,
        DUMP_BLOB,
} dump_type_t;

typedef struct dump_col {
        const char *name;
        dump_type_t type;
        bool null_ok;
} dump_col_t;

#define DUMP_COLS_MAX 14
#define DUMP_BLOB_MAX 256u

/* A table as a dump sees it. With aad_prefix, column key_col holds a secret sealed to the
 * row's id (column 0); select_secrets and update_secret serve the rekey. */
typedef struct dump_table {
        const char *name;
        const char *select;
        const char *insert; /* NULL: checked, not written */
        const dump_col_t *cols;
        int n_cols;
        const char *aad_prefix;
        int key_col;
        const char *select_secrets;
        const char *update_secret;
} dump_table_t;

static const dump_col_t node_cols[] = {
        { "node_id", DUMP_TEXT, false }, { "kpm_id", DUMP_TEXT, true },   { "kpm_enc", DUMP_BLOB, true },
        { "cert_fp", DUMP_TEXT, true },  { "cse_id", DUMP_TEXT, false },  { "cse_base", DUMP_TEXT, false },
        { "targets", DUMP_TEXT, false }, { "poll", DUMP_INT, false },     { "lifetime", DUMP_INT, false },
        { "ltk_transported", DUMP_INT, false }, { "state", DUMP_TEXT, false }, { "created", DUMP_INT, false },
        { "last_seen", DUMP_INT, false }, { "status_checks", DUMP_INT, false },
};
static const dump_col_t target_cols[] = {
        { "id", DUMP_TEXT, false },      { "psk_id", DUMP_TEXT, true }, { "psk_enc", DUMP_BLOB, true },
        { "cert_fp", DUMP_TEXT, true },  { "created", DUMP_INT, false },
};
static const dump_col_t enrolment_cols[] = {
        { "ke_id", DUMP_TEXT, false },  { "node_id", DUMP_TEXT, false }, { "key_enc", DUMP_BLOB, false },
        { "ltk_transported", DUMP_INT, false }, { "state", DUMP_TEXT, false }, { "created", DUMP_INT, false },
        { "exp", DUMP_INT, false },
};
static const dump_col_t audit_cols[] = {
        { "id", DUMP_INT, false },      { "ts", DUMP_INT, false },      { "actor", DUMP_TEXT, false },
        { "action", DUMP_TEXT, false }, { "subject", DUMP_TEXT, true }, { "detail", DUMP_TEXT, true },
};
static const dump_col_t meta_cols[] = {
        { "name", DUMP_TEXT, false }, { "value", DUMP_BLOB, false },
};

static const dump_table_t dump_tables[] = {
        { "nodes",
          "SELECT node_id, kpm_id, kpm_enc, cert_fp, cse_id, cse_base, targets, poll, lifetime, ltk_transported, "
          "state, created, last_seen, status_checks FROM nodes ORDER BY node_id",
          "INSERT INTO nodes (node_id, kpm_id, kpm_enc, cert_fp, cse_id, cse_base, targets, poll, lifetime, "
          "ltk_transported, state, created, last_seen, status_checks) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
          node_cols, ELEMENTSOF(node_cols), "kpm", 2,
          "SELECT node_id, kpm_enc FROM nodes WHERE kpm_enc IS NOT NULL",
          "UPDATE nodes SET kpm_enc = ?2 WHERE node_id = ?1" },
        { "targets", "SELECT id, psk_id, psk_enc, cert_fp, created FROM targets ORDER BY id",
          "INSERT INTO targets (id, psk_id, psk_enc, cert_fp, created) VALUES (?1, ?2, ?3, ?4, ?5)", target_cols,
          ELEMENTSOF(target_cols), "tpsk", 2, "SELECT id, psk_enc FROM targets WHERE psk_enc IS NOT NULL",
          "UPDATE targets SET psk_enc = ?2 WHERE id = ?1" },
        { "enrolments",
          "SELECT ke_id, node_id, key_enc, ltk_transported, state, created, exp FROM enrolments ORDER BY ke_id",
          "INSERT INTO enrolments (ke_id, node_id, key_enc, ltk_transported, state, created, exp) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
          enrolment_cols, ELEMENTSOF(enrolment_cols), "ke", 2, "SELECT ke_id, key_enc FROM enrolments",
          "UPDATE enrolments SET key_enc = ?2 WHERE ke_id = ?1" },
        { "audit", "SELECT id, ts, actor, action, subject, detail FROM audit ORDER BY id",
          "INSERT INTO audit (id, ts, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", audit_cols,
          ELEMENTSOF(audit_cols), NULL, 0, NULL, NULL },
        /* the check value: a restore verifies the unwrapped key against it */
        { "meta", "SELECT name, value FROM meta WHERE name = 'check'", NULL, meta_cols, ELEMENTSOF(meta_cols), NULL,
          0, NULL, NULL },
};

const char *const store_dump_tables[STORE_DUMP_TABLES_MAX] = { "nodes", "targets", "enrolments", "audit", "meta" };
_Static_assert(ELEMENTSOF(dump_tables) == STORE_DUMP_TABLES_MAX, "");

static json_t *dump_column(db_stmt_t *st, int i, dump_type_t type) {
        size_t n;
        switch (type) {
        case DUMP_INT:
                return json_integer(db_column_int64(st, i));
        case DUMP_TEXT: {
                const char *v = db_column_text(st, i, &n);
                return v ? json_stringn(v, n) : json_null();
        }
        case DUMP_BLOB: {
                const uint8_t *v = db_column_blob(st, i, &n);
                if (!v)
                        return json_null();
                if (n > DUMP_BLOB_MAX)
                        return NULL;
                char hex[2 * DUMP_BLOB_MAX + 1];
                hex_encode(v, n, hex);
                return json_string(hex);
        }
        }
        return NULL;
}

static int dump_table(mef_store_t *s, const dump_table_t *t, store_dump_fn_t fn, void *userdata) {
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s, t->select, &ref);
        if (r < 0)
                return r;
        while ((r = step_row(ref.st)) > 0) {
                json_t *row = json_object();
                if (!row)
                        return -ENOMEM;
                for (int i = 0; r >= 0 && i < t->n_cols; i++) {
                        json_t *v = dump_column(ref.st, i, t->cols[i].type);
                        if (!v || json_object_set_new(row, t->cols[i].name, v) < 0)
                                r = v ? -ENOMEM : -EBADMSG;
                }
                if (r >= 0)
                        r = fn(t->name, row, userdata);
                json_decref(row);
                if (r < 0)
                        return r;
        }
        return r;
}

int store_dump(mef_store_t *s, store_dump_fn_t fn, void *userdata) {
        if (!s || !fn)
                return -EINVAL;
        int r = exec_const(s, s->d->ops->dialect == DB_POSTGRESQL ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                                                 : "BEGIN");
        if (r < 0)
                return r;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dump_tables); i++)
                r = dump_table(s, &dump_tables[i], fn, userdata);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}

int store_rows_in_use(mef_store_t *s, uint64_t *ret) {
        if (!s || !ret)
                return -EINVAL;
        _cleanup_stmt_ stmt_ref_t ref = {};
        int r = prepare(s,
                        "SELECT (SELECT count(*) FROM nodes) + (SELECT count(*) FROM targets)"
                        " + (SELECT count(*) FROM enrolments)",
                        &ref);
        if (r < 0)
                return r;
        r = step_row(ref.st);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        *ret = (uint64_t) db_column_int64(ref.st, 0);
        return 0;
}

int store_restore_clear(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        return exec_const(s, "DELETE FROM enrolments; DELETE FROM nodes; DELETE FROM targets; DELETE FROM audit;");
}

static const dump_table_t *dump_table_find(const char *name) {
        for (size_t i = 0; name && i < ELEMENTSOF(dump_tables); i++)
                if (streq(dump_tables[i].name, name))
                        return &dump_tables[i];
        return NULL;
}

/* A hex blob column of a dump row; -EBADMSG when it is not one. */
static int restore_blob(json_t *v, uint8_t out[DUMP_BLOB_MAX], size_t *ret_len) {
        const char *hex = json_string_value(v);
        if (!hex || json_string_length(v) > 2 * DUMP_BLOB_MAX || hex_decode(hex, out, DUMP_BLOB_MAX, ret_len) < 0 ||
            *ret_len == 0)
                return -EBADMSG;
        return 0;
}

/* The row's secret must open under this store's key: a dump of another store is refused. */
static int restore_secret_check(mef_store_t *s, const dump_table_t *t, json_t *row) {
        json_t *v = json_object_get(row, t->cols[t->key_col].name);
        if (json_is_null(v))
                return 0; /* cert mode; the table's CHECK constraints hold the rest */
        uint8_t blob[DUMP_BLOB_MAX], pt[DUMP_BLOB_MAX];
        size_t n, len;
        char aad[AAD_MAX];
        int r = restore_blob(v, blob, &n);
        if (r == 0)
                r = aad_format(aad, t->aad_prefix, json_string_value(json_object_get(row, t->cols[0].name)));
        if (r < 0)
                return -EBADMSG;
        r = secret_open(s, aad, blob, n, pt, sizeof pt, &len);
        if (r == 0)
                erase(pt, len);
        return r == -EBADMSG ? -EKEYREJECTED : r;
}

int store_restore_row(mef_store_t *s, const char *table, json_t *row) {
        const dump_table_t *t = dump_table_find(table);
        if (!s || !t)
                return -EINVAL;
        if (!json_is_object(row) || json_object_size(row) != (size_t) t->n_cols)
                return -EBADMSG;
        /* every column present with its type */
        for (int i = 0; i < t->n_cols; i++) {
                json_t *v = json_object_get(row, t->cols[i].name);
                if (!v)
                        return -EBADMSG;
                if (json_is_null(v) ? !t->cols[i].null_ok
                                    : t->cols[i].type == DUMP_INT ? !json_is_integer(v) : !json_is_string(v))
                        return -EBADMSG;
        }
        int r;
        if (!t->insert) { /* meta: the check value */
                uint8_t blob[DUMP_BLOB_MAX];
                size_t n;
                if (!streq(json_string_value(json_object_get(row, "name")), "check"))
                        return -EBADMSG;
                r = restore_blob(json_object_get(row, "value"), blob, &n);
                if (r < 0)
                        return r;
                r = check_verify(s, blob, n);
                return r == -EBADMSG ? -EKEYREJECTED : r;
        }
        if (t->aad_prefix) {
                r = restore_secret_check(s, t, row);
                if (r < 0)
                        return r;
        }
        _cleanup_stmt_ stmt_ref_t ref = {};
        r = prepare(s, t->insert, &ref);
        if (r < 0)
                return r;
        uint8_t blobs[2][DUMP_BLOB_MAX]; /* bound values stay valid until the step */
        int nb = 0;
        for (int i = 0; i < t->n_cols; i++) {
                json_t *v = json_object_get(row, t->cols[i].name);
                if (json_is_null(v)) {
                        BIND(db_bind_text(ref.st, i + 1, NULL, 0));
                        continue;
                }
                switch (t->cols[i].type) {
                case DUMP_INT:
                        BIND(db_bind_int64(ref.st, i + 1, json_integer_value(v)));
                        break;
                case DUMP_TEXT:
                        if (strlen(json_string_value(v)) != json_string_length(v))
                                return -EBADMSG; /* an embedded NUL */
                        BIND(db_bind_text(ref.st, i + 1, json_string_value(v), (int) json_string_length(v)));
                        break;
                case DUMP_BLOB: {
                        size_t n;
                        if (nb >= (int) ELEMENTSOF(blobs))
                                return -EBADMSG;
                        BIND(restore_blob(v, blobs[nb], &n));
                        BIND(db_bind_blob(ref.st, i + 1, blobs[nb], n));
                        nb++;
                        break;
                }
                }
        }
        return step_done(ref.st);
}

int store_restore_finish(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        if (s->d->ops->dialect != DB_POSTGRESQL)
                return 0;
        return exec_const(s, "SELECT setval(pg_get_serial_sequence('audit', 'id'), "
                             "(SELECT COALESCE(MAX(id), 0) + 1 FROM audit), false)");
}

typedef struct sealed_row {
        char id[MSG_KEID_MAX + 1];
        uint8_t blob[SEALED_MAX];
        size_t len;
} sealed_row_t;

/* Every secret of table t, opened under s's key and sealed under next's. */
static int rekey_table(mef_store_t *s, mef_store_t *next, const dump_table_t *t, uint64_t *count) {
        _cleanup_free_ sealed_row_t *rows = NULL;
        size_t n = 0, alloc = 0;
        {
                _cleanup_stmt_ stmt_ref_t ref = {};
                int r = prepare(s, t->select_secrets, &ref);
                if (r < 0)
                        return r;
                while ((r = step_row(ref.st)) > 0) {
                        sealed_row_t *e = array_push((void **) &rows, &n, &alloc, sizeof *rows);
                        if (!e)
                                return -ENOMEM;
                        const void *b = db_column_blob(ref.st, 1, &e->len);
                        if (!b || e->len > sizeof e->blob)
                                return -EBADMSG;
                        memcpy(e->blob, b, e->len);
                        r = column_text(ref.st, 0, e->id, sizeof e->id);
                        if (r < 0)
                                return r;
                }
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < n; i++) {
                char aad[AAD_MAX];
                _cleanup_erase_(64) uint8_t key[MSG_KEY_MAX];
                size_t len;
                int r = aad_format(aad, t->aad_prefix, rows[i].id);
                if (r == 0)
                        r = secret_open(s, aad, rows[i].blob, rows[i].len, key, sizeof key, &len);
                if (r == 0)
                        r = secret_seal(next, aad, key, len, rows[i].blob, &rows[i].len);
                if (r < 0)
                        return r;
                _cleanup_stmt_ stmt_ref_t ref = {};
                r = prepare(s, t->update_secret, &ref);
                if (r < 0)
                        return r;
                BIND(db_bind_text(ref.st, 1, rows[i].id, -1));
                BIND(db_bind_blob(ref.st, 2, rows[i].blob, rows[i].len));
                r = step_done(ref.st);
                if (r < 0)
                        return r;
        }
        *count += n;
        return 0;
}

/* The new key into a new file beside the old one, owned like it. */
static int rekey_key_write(const char *old_path, const char *path, const uint8_t key[STORE_MASTER_KEY_LEN]) {
        struct stat st;
        if (stat(old_path, &st) < 0)
                return negative_errno();
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
        if (fd < 0)
                return negative_errno();
        int r = 0;
        if (fchmod(fd, 0400) < 0 || (geteuid() == 0 && fchown(fd, st.st_uid, st.st_gid) < 0))
                r = negative_errno();
        if (r == 0)
                r = write_all(fd, key, STORE_MASTER_KEY_LEN);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(path);
        return r;
}

static int fsync_parent(const char *path) {
        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (slash == dir)
                slash[1] = 0;
        else if (slash)
                *slash = 0;
        _cleanup_close_ int fd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

int store_rekey(mef_store_t *s, uint64_t *ret_n) {
        if (!s || !s->key_path)
                return -EINVAL;
        char pending[PATH_MAX];
        int r = store_rekey_pending_path(s->key_path, pending, sizeof pending);
        if (r < 0)
                return r;
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        r = random_bytes(key, sizeof key);
        if (r < 0)
                return r;
        _cleanup_(store_closep) mef_store_t *next = calloc(1, sizeof *next);
        if (!next)
                return -ENOMEM;
        if (wc_AesInit(&next->aes, NULL, INVALID_DEVID) != 0)
                return -EIO;
        next->aes_ready = true;
        if (wc_AesGcmSetKey(&next->aes, key, sizeof key) != 0)
                return -EIO;
        r = rekey_key_write(s->key_path, pending, key);
        if (r < 0)
                return r;

        uint64_t count = 0;
        r = store_begin(s);
        /* the key this store holds must be the current one (another rekey may have run) */
        if (r >= 0)
                r = key_refresh(s);
        /* the check value first: PostgreSQL writers that seal hold it shared (key_refresh) */
        if (r >= 0) {
                r = secret_seal(next, "check", (const uint8_t *) CHECK_PLAINTEXT, strlen(CHECK_PLAINTEXT),
                                next->check, &next->check_len);
                _cleanup_stmt_ stmt_ref_t ref = {};
                if (r >= 0)
                        r = prepare(s, "UPDATE meta SET value = ?1 WHERE name = 'check'", &ref);
                if (r >= 0)
                        r = db_bind_blob(ref.st, 1, next->check, next->check_len);
                if (r >= 0)
                        r = step_done(ref.st);
        }
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dump_tables); i++)
                if (dump_tables[i].select_secrets)
                        r = rekey_table(s, next, &dump_tables[i], &count);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0) {
                store_rollback(s);
                unlink(pending);
                return r;
        }
        /* Committed: from here the new key is the one. Serving processes find it at pending
         * until the rename, at the key path after. */
        if (rename(pending, s->key_path) < 0)
                return negative_errno();
        r = fsync_parent(s->key_path);
        if (r < 0)
                return r;
        if (wc_AesGcmSetKey(&s->aes, key, sizeof key) != 0)
                return -EIO;
        memcpy(s->check, next->check, next->check_len);
        s->check_len = next->check_len;
        if (ret_n)
                *ret_n = count;
        return 0;
}

int store_key_opens_check(const uint8_t key[STORE_MASTER_KEY_LEN], const uint8_t *blob, size_t n) {
        if (!key || !blob)
                return -EINVAL;
        mef_store_t t = { 0 };
        if (wc_AesInit(&t.aes, NULL, INVALID_DEVID) != 0)
                return -EIO;
        int r = wc_AesGcmSetKey(&t.aes, key, STORE_MASTER_KEY_LEN) == 0 ? check_verify(&t, blob, n) : -EIO;
        wc_AesFree(&t.aes);
        erase(&t, sizeof t);
        return r;
}

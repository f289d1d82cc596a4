/* SPDX-License-Identifier: MIT */
/* Backup, restore and master key rotation at the store level (mef/store-backup.h). */
#include "mef/store-internal.h"

#include <fcntl.h>
#include <jansson.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "mef/store-backup.h"
#include "util/text.h"

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
/* secrets re-encrypted in one transaction of a rekey */
#define REKEY_STEP 1000u

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
          "SELECT node_id, kpm_enc FROM nodes WHERE kpm_enc IS NOT NULL AND node_id > ?1 ORDER BY node_id LIMIT ?2",
          "UPDATE nodes SET kpm_enc = ?2 WHERE node_id = ?1 AND kpm_enc = ?3" },
        { "targets", "SELECT id, psk_id, psk_enc, cert_fp, created FROM targets ORDER BY id",
          "INSERT INTO targets (id, psk_id, psk_enc, cert_fp, created) VALUES (?1, ?2, ?3, ?4, ?5)", target_cols,
          ELEMENTSOF(target_cols), "tpsk", 2, "SELECT id, psk_enc FROM targets WHERE psk_enc IS NOT NULL AND id > ?1 ORDER BY id LIMIT ?2",
          "UPDATE targets SET psk_enc = ?2 WHERE id = ?1 AND psk_enc = ?3" },
        { "enrolments",
          "SELECT ke_id, node_id, key_enc, ltk_transported, state, created, exp FROM enrolments ORDER BY ke_id",
          "INSERT INTO enrolments (ke_id, node_id, key_enc, ltk_transported, state, created, exp) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
          enrolment_cols, ELEMENTSOF(enrolment_cols), "ke", 2,
          "SELECT ke_id, key_enc FROM enrolments WHERE ke_id > ?1 ORDER BY ke_id LIMIT ?2",
          "UPDATE enrolments SET key_enc = ?2 WHERE ke_id = ?1 AND key_enc = ?3" },
        { "audit", "SELECT id, ts, actor, action, subject, detail FROM audit ORDER BY id",
          "INSERT INTO audit (id, ts, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", audit_cols,
          ELEMENTSOF(audit_cols), NULL, 0, NULL, NULL },
        /* the check value: a restore verifies the unwrapped key against it */
        { "meta", "SELECT name, value FROM meta WHERE name = 'check'", NULL, meta_cols, ELEMENTSOF(meta_cols), NULL,
          0, NULL, NULL },
};

const char *const store_dump_tables[STORE_DUMP_TABLES_MAX] = { "nodes", "targets", "enrolments", "audit", "meta" };
_Static_assert(ELEMENTSOF(dump_tables) == STORE_DUMP_TABLES_MAX, "");
_Static_assert(STORE_DUMP_SCHEMA_MIN >= 3 && STORE_DUMP_SCHEMA_MIN <= STORE_SCHEMA_VERSION,
               "the dump has the columns of schema 3 (last_seen, status_checks)");

static json_t *dump_column(db_stmt_t *st, int i, dump_type_t type) {
        size_t n;
        switch (type) {
        case DUMP_INT:
                return json_integer(db_column_int64(st, i));
        case DUMP_TEXT: {
                const char *v = db_column_text(st, i, &n);
                if (!v)
                        return json_null();
                json_t *j = json_stringn(v, n);
                if (j || strlen(v) != n)
                        return j;
                /* audit text stored before store_audit() made it UTF-8: with '?', not a backup refused */
                _cleanup_free_ char *fixed = text_dup(v, TEXT_UTF8);
                return fixed ? json_string(fixed) : NULL;
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

/* A secret column as a dump writes it: under the current key, the one its check value opens (a
 * secret that a rekey under way has not re-encrypted yet is sealed again). Each is opened on the
 * way, so a backup never holds one that would fail its restore: -EBADMSG when no key opens it. */
static int dump_secret(mef_store_t *s, db_stmt_t *st, const dump_table_t *t, json_t **ret) {
        size_t n;
        const uint8_t *v = db_column_blob(st, t->key_col, &n);
        if (!v) { /* a node by certificate: no key */
                *ret = json_null();
                return 0;
        }
        char aad[AAD_MAX], hex[2 * SEALED_MAX + 1];
        uint8_t blob[SEALED_MAX];
        if (n > sizeof blob || store_aad_format(aad, t->aad_prefix, db_column_str(st, 0)) < 0)
                return -EBADMSG;
        memcpy(blob, v, n);
        int r = store_secret_reseal(s, aad, blob, &n);
        if (r < 0)
                return r;
        hex_encode(blob, n, hex);
        *ret = json_string(hex);
        return *ret ? 0 : -ENOMEM;
}

static int dump_table(mef_store_t *s, const dump_table_t *t, store_dump_fn_t fn, void *userdata,
                      store_dump_stop_t *ret_stop) {
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, t->select, &st));
        int r;
        while ((r = step_row(st)) > 0) {
                json_t *row = json_object();
                if (!row)
                        return -ENOMEM;
                for (int i = 0; r >= 0 && i < t->n_cols; i++) {
                        json_t *v = NULL;
                        if (t->aad_prefix && i == t->key_col) {
                                r = dump_secret(s, st, t, &v);
                                if (r == -EBADMSG && ret_stop) {
                                        ret_stop->table = t->name;
                                        snprintf(ret_stop->id, sizeof ret_stop->id, "%s", db_column_str(st, 0));
                                }
                        } else if (!(v = dump_column(st, i, t->cols[i].type)))
                                r = -EBADMSG;
                        if (v && json_object_set_new(row, t->cols[i].name, v) < 0)
                                r = -ENOMEM;
                }
                if (r >= 0)
                        r = fn(t->name, row, userdata);
                json_decref(row);
                if (r < 0)
                        return r;
        }
        return r;
}

int store_dump(mef_store_t *s, store_dump_fn_t fn, void *userdata, store_dump_stop_t *ret_stop) {
        if (!s || !fn)
                return -EINVAL;
        /* The key file before the snapshot: should a rekey finish (rename its new key over the
         * file) between the snapshot and the reading of the key files below, what the snapshot
         * holds not re-encrypted yet is under this one. */
        _cleanup_erase_(32) uint8_t before[STORE_MASTER_KEY_LEN];
        bool has_before = s->key_path && store_master_key_read(s->key_path, before) == 0;
        int r = exec_const(s, s->d->ops->dialect == DB_POSTGRESQL ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                                                 : "BEGIN");
        if (r < 0)
                return r;
        /* the keys of this snapshot's check value: a rekey may be under way. The previous key is
         * kept even when the rekey has finished since (unlike store_key_refresh()): this snapshot
         * may predate its last step. */
        uint8_t check[CHECK_MAX];
        size_t check_len = 0;
        r = store_check_read(s, check, sizeof check, &check_len);
        if (r > 0 && (check_len != s->check_len || memcmp(check, s->check, check_len) != 0))
                r = store_key_adopt(s, check, check_len);
        if (r >= 0 && has_before)
                r = store_key_keep_prev(s, before);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(dump_tables); i++)
                r = dump_table(s, &dump_tables[i], fn, userdata, ret_stop);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}

int store_master_key_install(const char *path, const uint8_t key[STORE_MASTER_KEY_LEN]) {
        _cleanup_secret_ secret_t s = { 0 };
        int r = secret_file_read(path, STORE_MASTER_KEY_LEN, &s);
        if (r == 0)
                return s.len == STORE_MASTER_KEY_LEN && memcmp(s.data, key, STORE_MASTER_KEY_LEN) == 0 ? 0 : -EEXIST;
        if (r != -ENOENT)
                return r;
        r = mkdir_parents(path, 0700);
        if (r == 0)
                r = store_key_file_create(path, key, NULL);
        return r < 0 ? r : 1;
}

int store_rows_in_use(mef_store_t *s, uint64_t *ret) {
        if (!s || !ret)
                return -EINVAL;
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    "SELECT (SELECT count(*) FROM nodes) + (SELECT count(*) FROM targets)"
                    " + (SELECT count(*) FROM enrolments) + (SELECT count(*) FROM audit)",
                    &st));
        int r = step_row(st);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        *ret = (uint64_t) db_column_int64(st, 0);
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
                r = store_aad_format(aad, t->aad_prefix, json_string_value(json_object_get(row, t->cols[0].name)));
        if (r < 0)
                return -EBADMSG;
        /* under the current key, and of a size every reader, dump and rekey takes */
        if (n > SEALED_MAX)
                return -EBADMSG;
        r = store_secret_open_current(s, aad, blob, n, pt, sizeof pt, &len);
        if (r == 0)
                erase(pt, len);
        if (r == 0 && (len < MSG_KEY_MIN || len > MSG_KEY_MAX))
                return -EBADMSG;
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
                r = store_check_verify(s, blob, n);
                return r == -EBADMSG ? -EKEYREJECTED : r;
        }
        if (t->aad_prefix) {
                r = restore_secret_check(s, t, row);
                if (r < 0)
                        return r;
        }
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, t->insert, &st));
        uint8_t blobs[2][DUMP_BLOB_MAX]; /* bound values stay valid until the step */
        int nb = 0;
        for (int i = 0; i < t->n_cols; i++) {
                json_t *v = json_object_get(row, t->cols[i].name);
                /* A NULL goes in with its column's type: PostgreSQL takes no text NULL into a
                 * bytea column (SQLite does), so a node or target by certificate, whose secret
                 * is NULL, would not restore there. */
                switch (t->cols[i].type) {
                case DUMP_INT:
                        if (json_is_null(v))
                                return -EBADMSG; /* no integer column may be NULL */
                        TRY(db_bind_int64(st, i + 1, json_integer_value(v)));
                        break;
                case DUMP_TEXT:
                        if (json_is_null(v)) {
                                TRY(db_bind_text(st, i + 1, NULL, 0));
                                break;
                        }
                        if (strlen(json_string_value(v)) != json_string_length(v))
                                return -EBADMSG; /* an embedded NUL */
                        TRY(db_bind_text(st, i + 1, json_string_value(v), (int) json_string_length(v)));
                        break;
                case DUMP_BLOB: {
                        size_t n;
                        if (json_is_null(v)) {
                                TRY(db_bind_blob(st, i + 1, NULL, 0));
                                break;
                        }
                        if (nb >= (int) ELEMENTSOF(blobs))
                                return -EBADMSG;
                        TRY(restore_blob(v, blobs[nb], &n));
                        TRY(db_bind_blob(st, i + 1, blobs[nb], n));
                        nb++;
                        break;
                }
                }
        }
        return step_done(st);
}

int store_restore_finish(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        if (s->d->ops->dialect != DB_POSTGRESQL)
                return 0;
        return exec_const(s, "SELECT setval(pg_get_serial_sequence('audit', 'id'), "
                             "(SELECT COALESCE(MAX(id), 0) + 1 FROM audit), false)");
}

int store_restore_forget_key(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        if (!store_created(s) || s->d->ops->in_transaction(s->d))
                return -EBUSY;
        return exec_const(s, "DELETE FROM meta WHERE name = 'check'");
}

typedef struct sealed_row {
        char id[MSG_KEID_MAX + 1];
        uint8_t blob[SEALED_MAX];
        size_t len;
} sealed_row_t;

/* One step of table t's re-encryption, one transaction: the secrets after cursor (at most
 * REKEY_STEP, in id order) that are still under the previous key, sealed under the current one.
 * A row written meanwhile is under the current key (the check value changed first): left as it
 * is, and an update that lost the race to one changes nothing. 1: more may follow. */
static int rekey_step(mef_store_t *s, const dump_table_t *t, char cursor[MSG_KEID_MAX + 1], uint64_t *count) {
        _cleanup_free_ sealed_row_t *rows = calloc(REKEY_STEP, sizeof *rows);
        if (!rows)
                return -ENOMEM;
        size_t n = 0;
        uint64_t resealed = 0;
        int r = store_begin(s);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ db_stmt_t *st = NULL;
                r = prepare(s, t->select_secrets, &st);
                if (r >= 0)
                        r = db_bind_text(st, 1, cursor, -1);
                if (r >= 0)
                        r = db_bind_int64(st, 2, REKEY_STEP);
                while (r >= 0 && n < REKEY_STEP && (r = step_row(st)) > 0) {
                        sealed_row_t *e = &rows[n++];
                        const void *blob = db_column_blob(st, 1, &e->len);
                        r = !blob || e->len > sizeof e->blob ? -EBADMSG : store_column_text(st, 0, e->id, sizeof e->id);
                        if (r >= 0)
                                memcpy(e->blob, blob, e->len);
                }
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                uint8_t old[SEALED_MAX];
                size_t old_len = rows[i].len;
                char aad[AAD_MAX];
                memcpy(old, rows[i].blob, old_len);
                r = store_aad_format(aad, t->aad_prefix, rows[i].id);
                if (r >= 0)
                        r = store_secret_reseal(s, aad, rows[i].blob, &rows[i].len);
                if (r <= 0)
                        continue;
                _cleanup_stmt_ db_stmt_t *st = NULL;
                r = prepare(s, t->update_secret, &st);
                if (r >= 0)
                        r = db_bind_text(st, 1, rows[i].id, -1);
                if (r >= 0)
                        r = db_bind_blob(st, 2, rows[i].blob, rows[i].len);
                if (r >= 0)
                        r = db_bind_blob(st, 3, old, old_len);
                if (r >= 0)
                        r = step_done(st);
                if (r >= 0 && s->d->ops->changes(s->d) > 0) /* else a writer got there first */
                        resealed++;
        }
        if (r >= 0)
                r = store_commit(s);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        if (n > 0)
                memcpy(cursor, rows[n - 1].id, sizeof rows[n - 1].id);
        *count += resealed;
        return n == REKEY_STEP;
}

/* The new key into a new file beside the old one, owned like it. */
static int rekey_key_write(const char *old_path, const char *path, const uint8_t key[STORE_MASTER_KEY_LEN]) {
        struct stat st;
        if (stat(old_path, &st) < 0)
                return negative_errno();
        return store_key_file_create(path, key, &st);
}

/* Whether "<key path>.new" is the key of the check value: a rekey committed it and stopped
 * before its rename. Any other file there is one that stopped before its commit. */
static bool rekey_pending_is_current(mef_store_t *s, const char *pending) {
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        return store_master_key_read(pending, key) == 0 && store_key_opens_check(key, s->check, s->check_len) == 0;
}

/* The new key: the one at pending when it holds one (prepared by store_rekey_prepare() and
 * copied to every host, or left by a rekey that stopped before its commit), else a new one
 * written there. ret_created: whether this call wrote it. */
static int rekey_new_key(const char *key_path, const char *pending, uint8_t key[STORE_MASTER_KEY_LEN],
                         bool *ret_created) {
        *ret_created = false;
        int r = store_master_key_read(pending, key);
        if (r == 0)
                return 0;
        if (r == -EINVAL) { /* not a key: what a crash in its writing leaves */
                if (unlink(pending) < 0)
                        return negative_errno();
        } else if (r != -ENOENT)
                return r;
        r = random_bytes(key, STORE_MASTER_KEY_LEN);
        if (r == 0)
                r = rekey_key_write(key_path, pending, key);
        *ret_created = r == 0;
        return r;
}

int store_rekey_prepare(const char *key_path) {
        char pending[PATH_MAX];
        int r = store_rekey_pending_path(key_path, pending, sizeof pending);
        if (r < 0)
                return r;
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        bool created;
        r = rekey_new_key(key_path, pending, key, &created);
        return r < 0 ? r : !created;
}

/* The new key at pending, and the check value sealed under it committed: from then on serving
 * processes seal under it (and open with either). ret's took_over from that commit on (whatever
 * fails after it), commit_unknown when the COMMIT failed. */
static int rekey_commit_key(mef_store_t *s, const char *pending, store_rekey_result_t *ret) {
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        bool created;
        int r = rekey_new_key(s->key_path, pending, key, &created);
        if (r < 0)
                return r;
        _cleanup_(store_closep) mef_store_t *next = calloc(1, sizeof *next);
        if (!next)
                r = -ENOMEM;
        if (r == 0)
                r = store_key_use(next, key);
        if (r < 0) {
                if (created)
                        unlink(pending);
                return r;
        }

        r = store_begin(s);
        /* the key this store holds must be the current one (another rekey may have run) */
        if (r >= 0)
                r = store_key_refresh(s);
        /* PostgreSQL writers that seal hold the check value shared (store_key_guard) */
        if (r >= 0) {
                r = store_secret_seal(next, "check", (const uint8_t *) CHECK_PLAINTEXT, strlen(CHECK_PLAINTEXT),
                                      next->check, &next->check_len);
                _cleanup_stmt_ db_stmt_t *st = NULL;
                if (r >= 0)
                        r = prepare(s, "UPDATE meta SET value = ?1 WHERE name = 'check'", &st);
                if (r >= 0)
                        r = db_bind_blob(st, 1, next->check, next->check_len);
                if (r >= 0)
                        r = step_done(st);
        }
        if (r >= 0) {
                r = store_commit(s);
                /* the COMMIT went out: it may have taken (a connection lost before its
                 * answer), and then this file holds the only copy of the store's key */
                ret->commit_unknown = r < 0;
        }
        if (r < 0) {
                store_rollback(s);
                if (created && !ret->commit_unknown) /* a prepared one stays: it is on the other hosts too */
                        unlink(pending);
                return r;
        }
        ret->took_over = true; /* only the new key opens the check value now */
        r = store_key_adopt(s, next->check, next->check_len); /* the new key, the old one as previous */
        return r < 0 ? r : 0;
}

int store_rekey(mef_store_t *s, store_rekey_result_t *ret) {
        if (!s || !s->key_path || !ret)
                return -EINVAL;
        *ret = (store_rekey_result_t) {};
        char pending[PATH_MAX];
        int r = store_rekey_pending_path(s->key_path, pending, sizeof pending);
        if (r < 0)
                return r;
        /* one rekey at a time on this key file */
        _cleanup_close_ int lock = open(s->key_path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (lock < 0)
                return negative_errno();
        if (flock(lock, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : negative_errno();

        r = store_key_refresh(s);
        if (r < 0)
                return r;
        ret->resumed = rekey_pending_is_current(s, pending);
        if (!ret->resumed) {
                r = rekey_commit_key(s, pending, ret);
                if (r < 0)
                        return r;
        }
        ret->took_over = true;
        /* Each step is short, so the requests of a serving MEF go on between them; an
         * interruption leaves the store open under both keys (mef/store-key.c), and the next
         * rekey finishes it. */
        for (size_t i = 0; i < ELEMENTSOF(dump_tables); i++) {
                if (!dump_tables[i].select_secrets)
                        continue;
                char cursor[MSG_KEID_MAX + 1] = "";
                for (;;) {
                        usec_t began = now_usec();
                        r = rekey_step(s, &dump_tables[i], cursor, &ret->resealed);
                        if (r <= 0)
                                break;
                        store_step_pause(s, began);
                }
                if (r < 0)
                        return r;
        }
        if (rename(pending, s->key_path) < 0)
                return negative_errno();
        r = fsync_parent_dir(s->key_path);
        if (r < 0)
                return r;
        store_key_forget_prev(s);
        return 0;
}


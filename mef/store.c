/* SPDX-License-Identifier: MIT */
/* The store's entry: open (the engine, the master key, the schema), close, migrate,
 * transactions, and the names of its states. The tables are in mef/store-<table>.c. */
#include "mef/store-internal.h"

#include <sys/stat.h>

#include "util/string-table.h"

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

/* ---- open ---- */

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
                r = store_txn(s, DB_TXN_COMMIT);
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

/* The schema, the master key and the check value of s, just connected. */
static int store_open_check(mef_store_t *s, const char *master_key_path, unsigned flags) {
        db_t *d = s->d;
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

        uint8_t blob[CHECK_MAX];
        size_t blob_len = 0;
        int has_check = 0;
        if (v > 0) {
                has_check = store_check_read(s, blob, sizeof blob, &blob_len);
                if (has_check == -EPROTONOSUPPORT) {
                        /* PostgreSQL: meta missing from a schema of a version this msce-mef
                         * knows, not one of a newer msce-mef; the server's reason goes with it */
                        if (d->reason_r == has_check)
                                d->reason_r = -EIO;
                        return -EIO;
                }
                if (has_check < 0)
                        return has_check;
        }

        /* A store that already has data never gets a fresh key: that key could not open it. */
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        r = store_master_key_load(master_key_path, create && !has_check, key);
        if (r < 0)
                return r;
        r = store_key_use(s, key);
        if (r < 0)
                return r;

        s->key_path = strdup(master_key_path);
        if (!s->key_path)
                return -ENOMEM;
        if (has_check)
                r = store_check_verify(s, blob, blob_len);
        if (r == -EBADMSG) /* a rekey under way: the new key file opens it */
                r = store_key_adopt(s, blob, blob_len);
        if (r == 0 && v < STORE_SCHEMA_VERSION && create)
                r = schema_migrate(s, NULL, NULL); /* MIGRATE: store_migrate() follows */
        if (r == 0 && !has_check) {
                /* A new store, or a schema without a check row: adopt this key - unless another
                 * process just created the store with its own. */
                has_check = store_check_read(s, blob, sizeof blob, &blob_len);
                r = has_check < 0 ? has_check
                    : has_check   ? store_check_verify(s, blob, blob_len)
                                  : store_check_write(s);
                s->created = v == 0 && has_check == 0 && r == 1;
                if (r > 0)
                        r = 0;
        }
        /* The check value the key was verified against, not a read of it now: a rekey
         * committed in between would leave this handle with the old key and the new value,
         * blind to the change. Read only when this open wrote it (or found, writing, another
         * process's of the same key). */
        if (r == 0 && has_check > 0) {
                memcpy(s->check, blob, blob_len);
                s->check_len = blob_len;
        } else if (r == 0)
                r = store_check_read(s, s->check, sizeof s->check, &s->check_len);
        return r < 0 ? r : 0;
}

/* Takes d. */
static int store_open_db(db_t *d, const char *master_key_path, unsigned flags, mef_store_t **ret,
                         store_reason_t *reason) {
        _cleanup_(store_closep) mef_store_t *s = calloc(1, sizeof *s);
        if (!s) {
                d->ops->close(d);
                return -ENOMEM;
        }
        s->d = d;
        int r = store_open_check(s, master_key_path, flags);
        if (r < 0) {
                db_reason_copy(d, r, reason);
                return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

bool store_created(const mef_store_t *s) {
        return s && s->created;
}

const store_reason_t *store_error_reason(const mef_store_t *s, int r) {
        return s ? db_reason(s->d, r) : NULL;
}

void db_reason_copy(const db_t *d, int r, store_reason_t *ret) {
        if (!ret)
                return;
        const store_reason_t *why = db_reason(d, r);
        *ret = why ? *why : (store_reason_t) { .text = "" };
}

const store_reason_t *store_reason_copy(const mef_store_t *s, int r, store_reason_t *ret) {
        db_reason_copy(s ? s->d : NULL, r, ret);
        return ret;
}

const char *store_said(char *buf, size_t size, const char *head, const store_reason_t *why) {
        const char *text = why ? why->text : "";
        const char *sep = !*text ? "" : why->servers ? ", PostgreSQL said " : ": ";
        snprintf(buf, size, "%s%s%s", head, sep, text);
        return buf;
}

const char *store_strerror(int r, const store_reason_t *why, char buf[static STORE_STRERROR_MAX]) {
        return store_said(buf, STORE_STRERROR_MAX, strerror(r < 0 ? -r : r), why);
}

int store_open_at(const store_location_t *loc, const char *master_key_path, unsigned flags, mef_store_t **ret,
                  store_reason_t *reason) {
        if (reason)
                *reason = (store_reason_t) { .text = "" };
        if (!loc || !master_key_path || !ret)
                return -EINVAL;
        db_t *d = NULL;
        int r;
        switch (loc->backend) {
        case STORE_BACKEND_SQLITE:
                r = db_sqlite_open(loc->path, flags & STORE_OPEN_CREATE, flags & STORE_OPEN_SYNC_FULL, &d);
                break;
        case STORE_BACKEND_POSTGRESQL:
                r = db_pg_open(loc, &d, reason);
                break;
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        return store_open_db(d, master_key_path, flags, ret, reason);
}

int store_open(const char *db_path, const char *master_key_path, bool create, mef_store_t **ret) {
        if (!db_path)
                return -EINVAL;
        store_location_t loc = { .backend = STORE_BACKEND_SQLITE, .path = db_path };
        return store_open_at(&loc, master_key_path, create ? STORE_OPEN_CREATE : 0, ret, NULL);
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
        store_key_forget_prev(s);
        free(s->key_path);
        erase_free(s, sizeof *s);
        return NULL;
}

int store_set_busy_timeout(mef_store_t *s, unsigned ms) {
        if (!s)
                return -EINVAL;
        return s->d->ops->set_busy_timeout(s->d, ms);
}

/* ---- transactions ---- */

void store_step_pause(mef_store_t *s, usec_t began) {
        if (s->d->ops->dialect != DB_SQLITE)
                return;
        usec_t now = now_usec();
        sleep_usec(now > began ? now - began : 0);
}

int store_begin(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        if (s->batch) {
                TRY(store_txn(s, DB_TXN_SAVEPOINT));
                s->depth++;
                return 0;
        }
        s->identity_locked = s->check_guarded = false;
        /* SQLite: the write lock now, not at the first write (no upgrade deadlock). PostgreSQL:
         * rows are locked as they are written, the node's first (store_enrolment_set_state_for_node),
         * and what the calls do not read back goes in one round trip (db_step_later()). */
        return store_txn(s, DB_TXN_BEGIN);
}

int store_commit(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        if (s->batch) {
                if (s->depth == 0)
                        return -EINVAL;
                TRY(store_txn(s, DB_TXN_RELEASE)); /* kept open on failure: the job rolls it back */
                s->depth--;
                return 0;
        }
        s->identity_locked = false; /* a transaction begun otherwise ends here too */
        int r = store_txn(s, DB_TXN_COMMIT);
        if (r >= 0)
                s->check_guarded = false; /* else for the rollback */
        return r;
}

void store_rollback(mef_store_t *s) {
        if (!s)
                return;
        if (!s->batch) {
                bool guarded = s->check_guarded;
                s->identity_locked = s->check_guarded = false;
                /* PostgreSQL: a failed COMMIT has ended the transaction already */
                if (s->d->ops->in_transaction(s->d))
                        (void) store_txn(s, DB_TXN_ROLLBACK);
                if (guarded) { /* perhaps sealed under a key a rekey had replaced (-ESTALE): not again */
                        /* the caller tells of the error before: its reason stays the last */
                        int reason_r = s->d->reason_r;
                        store_reason_t reason = s->d->reason;
                        (void) store_key_refresh(s);
                        s->d->reason_r = reason_r;
                        s->d->reason = reason;
                }
                return;
        }
        if (!s->d->ops->in_transaction(s->d))
                return;
        if (s->depth > 0) {
                s->depth--;
                /* one statement each: SQLite keeps them prepared (mef/store-sqlite.c) */
                if (store_txn(s, DB_TXN_ROLLBACK_TO) >= 0)
                        (void) store_txn(s, DB_TXN_RELEASE);
        }
}

int store_batch_begin(mef_store_t *s) {
        if (!s || s->batch)
                return -EINVAL;
        if (s->d->ops->dialect != DB_SQLITE)
                return -EOPNOTSUPP; /* PostgreSQL: a failed statement aborts the whole transaction */
        TRY(store_txn(s, DB_TXN_BEGIN));
        s->batch = true;
        s->depth = 0;
        return 0;
}

bool store_batch_alive(mef_store_t *s) {
        return s && s->batch && s->d->ops->in_transaction(s->d);
}

int store_batch_end(mef_store_t *s, bool commit) {
        if (!s || !s->batch)
                return -EINVAL;
        /* a job that left its transaction open: undone, as its own ROLLBACK would have */
        while (s->depth > 0 && store_batch_alive(s))
                store_rollback(s);
        s->batch = false;
        s->depth = 0;
        if (!s->d->ops->in_transaction(s->d))
                return commit ? -EIO : 0; /* the engine rolled it back already */
        int r = commit ? store_txn(s, DB_TXN_COMMIT) : 0;
        if (r < 0 || !commit)
                (void) store_txn(s, DB_TXN_ROLLBACK);
        return r;
}

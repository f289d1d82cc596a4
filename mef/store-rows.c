/* SPDX-License-Identifier: MIT */
/* Statements and rows: what every table's file reads and writes with. */
#include <stdarg.h>

#include "mef/store-internal.h"

int store_column_text(db_stmt_t *st, int i, char *out, size_t size) {
        size_t n;
        const char *v = db_column_text(st, i, &n);
        if (n >= size || (v && memchr(v, 0, n)))
                return -EBADMSG;
        if (n)
                memcpy(out, v, n);
        out[n] = 0;
        return 0;
}

int store_column_texts(db_stmt_t *st, int first, int n, ...) {
        va_list ap;
        int r = 0;
        va_start(ap, n);
        for (int i = 0; r >= 0 && i < n; i++) {
                char *out = va_arg(ap, char *);
                size_t size = va_arg(ap, size_t);
                r = store_column_text(st, first + i, out, size);
        }
        va_end(ap);
        return r;
}

/* A part's row and secret, decoded before any output is written. */
#define PARTS_MAX 2

typedef struct part_read {
        void *row;
        uint8_t key[MSG_KEY_MAX];
        size_t key_len;
} part_read_t;

static int part_decode(mef_store_t *s, db_stmt_t *st, const row_part_t *p, part_read_t *ret) {
        const row_type_t *t = p->type;
        if (!(ret->row = malloc(t->size)))
                return -ENOMEM;
        int r = t->decode(st, p->first, ret->row);
        if (r >= 0 && p->key)
                r = store_column_key(s, st, p->first + t->key_col, t->aad_prefix, (const char *) ret->row + t->id_offset,
                                     ret->key, &ret->key_len);
        return r;
}

int store_select_parts(mef_store_t *s, const char *sql, const char *arg, row_part_t *parts, size_t n) {
        if (!s || !arg || !parts || n == 0 || n > PARTS_MAX)
                return -EINVAL;
        store_key_settle(s);
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, sql, &st));
        TRY(db_bind_text(st, 1, arg, -1));
        int r = step_row(st);
        if (r < 0)
                return r;
        if (r == 0)
                return -ENOENT;
        part_read_t read[PARTS_MAX] = {};
        bool any = false;
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (db_column_text(st, parts[i].first, &(size_t) { 0 })) {
                        r = part_decode(s, st, &parts[i], &read[i]);
                        any = true;
                }
        if (r >= 0 && !any)
                r = -ENOENT;
        for (size_t i = 0; i < n; i++) {
                parts[i].found = r >= 0 && read[i].row;
                if (parts[i].found) {
                        memcpy(parts[i].out, read[i].row, parts[i].type->size);
                        if (parts[i].key) {
                                memcpy(parts[i].key, read[i].key, read[i].key_len);
                                *parts[i].key_len = read[i].key_len;
                        }
                }
                if (read[i].row)
                        erase_free(read[i].row, parts[i].type->size);
                erase(read[i].key, sizeof read[i].key);
        }
        return r < 0 ? r : 0;
}

int store_select_one(mef_store_t *s, const row_type_t *type, const char *sql, const char *arg, void *ret,
                     uint8_t *key, size_t *ret_key_len) {
        if (!ret)
                return -EINVAL;
        row_part_t p = { .type = type, .out = ret, .key = key, .key_len = ret_key_len };
        return store_select_parts(s, sql, arg, &p, 1);
}

void *store_array_push(void **array, size_t *n, size_t *alloc, size_t elem) {
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

int store_select_all(db_stmt_t *st, const row_type_t *type, void **ret, size_t *ret_n) {
        _cleanup_free_ void *list = NULL;
        size_t n = 0, alloc = 0;
        int r;
        while ((r = step_row(st)) > 0) {
                void *e = store_array_push(&list, &n, &alloc, type->size);
                if (!e)
                        return -ENOMEM;
                r = type->decode(st, 0, e);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

int store_update_one(mef_store_t *s, const char *sql, const char *a1, const char *a2) {
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, sql, &st));
        TRY(db_bind_text(st, 1, a1, -1));
        if (a2)
                TRY(db_bind_text(st, 2, a2, -1));
        int r = step_done(st);
        if (r < 0)
                return r;
        return s->d->ops->changes(s->d) > 0 ? 0 : -ENOENT;
}

int store_insert_one(mef_store_t *s, db_stmt_t *st) {
        int r = step_done(st);
        if (r < 0)
                return r;
        return s->d->ops->changes(s->d) == 1 ? 0 : -EEXIST;
}

int store_identity_lock(mef_store_t *s) {
        if (s->d->ops->dialect != DB_POSTGRESQL || s->identity_locked)
                return 0;
        if (!s->d->ops->in_transaction(s->d))
                return -EINVAL;
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, "SELECT pg_advisory_xact_lock(1836280164)", &st)); /* "msid" in ASCII */
        TRY(db_step_later(st));
        s->identity_locked = true;
        return 0;
}

int store_identity_begin(mef_store_t *s, bool *ret_own) {
        *ret_own = s->d->ops->dialect == DB_POSTGRESQL && !s->d->ops->in_transaction(s->d);
        if (*ret_own)
                TRY(store_begin(s));
        int r = store_identity_lock(s);
        if (r < 0 && *ret_own)
                store_rollback(s);
        return r;
}

int store_identity_end(mef_store_t *s, bool own, int r) {
        if (!own)
                return r;
        if (r >= 0)
                r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}

int store_bind_sealed(db_stmt_t *st, int i, const uint8_t *blob, size_t len) {
        return db_bind_blob(st, i, len ? blob : NULL, len);
}

bool store_fp_is_valid(const char *fp) {
        if (strlen(fp) != STORE_FP_LEN)
                return false;
        for (const char *p = fp; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

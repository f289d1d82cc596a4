/* SPDX-License-Identifier: MIT */
/* The store's enrolments: one per exchange, at most one active per node; newest first. */
#include "mef/store-internal.h"

#include <inttypes.h>
#include <time.h>

static int enrolment_from_row(db_stmt_t *st, int c, void *out) {
        store_enrolment_t *e = out;
        memset(e, 0, sizeof *e);
        TRY(store_column_texts(st, c, 2, TEXT_BUF(e->ke_id), TEXT_BUF(e->node_id)));
        e->state = enrolment_state_from_string(db_column_str(st, c + 2));
        if (e->state < 0)
                return -EBADMSG;
        e->created = db_column_int64(st, c + 3);
        e->exp = db_column_int64(st, c + 4);
        e->ltk_transported = (int) db_column_int64(st, c + 5) != 0;
        return 0;
}

const row_type_t store_enrolment_row = {
        enrolment_from_row, sizeof(store_enrolment_t), offsetof(store_enrolment_t, ke_id), "ke", 6,
};

int store_enrolment_add(mef_store_t *s, const store_enrolment_t *e, const uint8_t *key, size_t key_len) {
        const char *state = e ? enrolment_state_to_string(e->state) : NULL;
        if (!s || !e || !state || !id_is_valid(e->ke_id, MSG_KEID_MAX) || !id_is_valid(e->node_id, MSG_ID_MAX) ||
            !key_len_valid(key, key_len))
                return -EINVAL;

        uint8_t blob[SEALED_MAX];
        size_t blob_len;
        int r = store_key_seal(s, "ke", e->ke_id, key, key_len, blob, &blob_len);
        if (r < 0)
                return r;
        /* An active enrolment only for a node not revoked, as the database has it when the row
         * goes in: the caller read the node before its transaction (mef/handlers-enrol.c), and a
         * revocation committed since must not be overtaken. A revoked node's node_id is NULL: the
         * NOT NULL constraint refuses the row (-EINVAL) and aborts the transaction, on
         * PostgreSQL too where the INSERT is queued. A node that does not exist stays -ENOENT. */
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    e->state == ENROLMENT_ACTIVE
                            ? "INSERT INTO enrolments (" ENROLMENT_COLUMNS ", key_enc) VALUES (?1, CASE WHEN EXISTS "
                              "(SELECT 1 FROM nodes WHERE node_id = ?2 AND state = 'revoked') THEN NULL ELSE ?2 END, "
                              "?3, ?4, ?5, ?6, ?7)"
                            : "INSERT INTO enrolments (" ENROLMENT_COLUMNS ", key_enc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    &st));
        TRY(db_bind_text(st, 1, e->ke_id, -1));
        TRY(db_bind_text(st, 2, e->node_id, -1));
        TRY(db_bind_text(st, 3, state, -1));
        TRY(db_bind_int64(st, 4, e->created > 0 ? e->created : (int64_t) time(NULL)));
        TRY(db_bind_int64(st, 5, e->exp));
        TRY(db_bind_int64(st, 6, e->ltk_transported));
        TRY(db_bind_blob(st, 7, blob, blob_len));
        return db_step_later(st); /* in a transaction its error may come from the commit */
}

int store_enrolment_get(mef_store_t *s, const char *ke_id, store_enrolment_t *ret, uint8_t key[MSG_KEY_MAX],
                        size_t *ret_key_len) {
        if (!s || !ke_id || !ret || !key != !ret_key_len)
                return -EINVAL;
        return store_select_one(s, &store_enrolment_row,
                                "SELECT " ENROLMENT_COLUMNS ", key_enc FROM enrolments WHERE ke_id = ?1", ke_id, ret,
                                key, ret_key_len);
}

int store_enrolment_set_state(mef_store_t *s, const char *ke_id, enrolment_state_t state) {
        const char *v = enrolment_state_to_string(state);
        if (!s || !ke_id || !v)
                return -EINVAL;
        return store_update_one(s, "UPDATE enrolments SET state = ?1 WHERE ke_id = ?2", v, ke_id);
}

int store_enrolment_deregister(mef_store_t *s, const char *ke_id) {
        if (!s || !ke_id)
                return -EINVAL;
        return store_update_one(s, "UPDATE enrolments SET state = 'deregistered' WHERE ke_id = ?1 AND state = 'active'",
                                ke_id, NULL);
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
        bool pg = s->d->ops->dialect == DB_POSTGRESQL;
        _cleanup_stmt_ db_stmt_t *st = NULL;
        if (pg && s->d->ops->in_transaction(s->d)) {
                TRY(prepare(s, "SELECT node_id FROM nodes WHERE node_id = ?1 FOR UPDATE", &st));
                TRY(db_bind_text(st, 1, node_id, -1));
                TRY(db_step_later(st)); /* the lock, not the row */
                stmt_releasep(&st);
        }
        /* One statement. SQLite: the active row (at most one: enrolments_one_active) found
         * through the covering index, then updated by rowid; an UPDATE whose WHERE scans the index
         * on the column it sets makes SQLite build an ephemeral table (3-4x slower). PostgreSQL:
         * queued in a transaction, no round trip of its own. */
        TRY(prepare(s,
                    pg ? "UPDATE enrolments SET state = ?1 WHERE node_id = ?2 AND state = 'active'"
                       : "UPDATE enrolments SET state = ?1 WHERE rowid = "
                         "(SELECT rowid FROM enrolments WHERE node_id = ?2 AND state = 'active')",
                    &st));
        TRY(db_bind_text(st, 1, v, -1));
        TRY(db_bind_text(st, 2, node_id, -1));
        return pg ? db_step_later(st) : step_done(st);
}

int store_enrolment_list(mef_store_t *s, const char *node_id, store_enrolment_t **ret, size_t *ret_n) {
        static const store_page_t all = { .state = -1 };
        return store_enrolment_page(s, node_id, &all, ret, ret_n);
}

/* ---- enrolments: pages (bulk lifecycle) ---- */

/* A page's row: its columns, then its rowid. */
static int enrolment_page_from_row(db_stmt_t *st, int c, void *out) {
        TRY(enrolment_from_row(st, c, out));
        ((store_enrolment_t *) out)->pos = db_column_int64(st, c + 6);
        return 0;
}

static const row_type_t enrolment_page_row = {
        enrolment_page_from_row, sizeof(store_enrolment_t), offsetof(store_enrolment_t, ke_id), "ke", 7,
};

void store_enrolment_cursor(const store_enrolment_t *e, char buf[static STORE_ENROLMENT_CURSOR_MAX]) {
        snprintf(buf, STORE_ENROLMENT_CURSOR_MAX, "%" PRId64 ".%" PRId64, e->created, e->pos);
}

/* "CREATED.POS" of store_enrolment_cursor(): both, or false (a KeID has an '@'). */
static bool enrolment_cursor_parse(const char *v, int64_t *ret_created, int64_t *ret_pos) {
        const char *dot = strchr(v, '.');
        unsigned long long created, pos;
        if (!dot || dot == v || dot - v > 20)
                return false;
        char head[24];
        memcpy(head, v, (size_t) (dot - v));
        head[dot - v] = 0;
        if (parse_uint(head, INT64_MAX, &created) < 0 || parse_uint(dot + 1, INT64_MAX, &pos) < 0)
                return false;
        *ret_created = (int64_t) created;
        *ret_pos = (int64_t) pos;
        return true;
}

int store_enrolment_page(mef_store_t *s, const char *node_id, const store_page_t *p, store_enrolment_t **ret,
                         size_t *ret_n) {
        if (!s || !p || !ret || !ret_n)
                return -EINVAL;
        const char *state = NULL;
        if (p->state >= 0 && !(state = enrolment_state_to_string((enrolment_state_t) p->state)))
                return -EINVAL;
        /* Newest first as store_enrolment_list(): (created, rowid) is the position to go on from,
         * which the cursor carries, so that the row it came from need not exist any more (pruned,
         * its node removed between two pages: the next page failed, or a KeID cursor would have
         * to). A KeID given instead is looked up for it. */
        int64_t created = INT64_MAX, rowid = INT64_MAX;
        int r;
        _cleanup_stmt_ db_stmt_t *st = NULL;
        if (p->after && !enrolment_cursor_parse(p->after, &created, &rowid)) {
                TRY(prepare(s, "SELECT created, rowid FROM enrolments WHERE ke_id = ?1", &st));
                TRY(db_bind_text(st, 1, p->after, -1));
                r = step_row(st);
                if (r <= 0)
                        return r < 0 ? r : -ENOENT;
                created = db_column_int64(st, 0);
                rowid = db_column_int64(st, 1);
                stmt_releasep(&st);
        }
        TRY(prepare(s,
                    "SELECT " ENROLMENT_COLUMNS ", rowid FROM enrolments WHERE (created < ?1 OR (created = ?1 AND rowid < ?2)) "
                    "AND (?3 IS NULL OR node_id = ?3) AND (?4 IS NULL OR state = ?4) AND created >= ?5 "
                    "AND (?6 = 0 OR (?6 > 0 AND exp <= ?7) OR (?6 < 0 AND exp > ?7)) "
                    "ORDER BY created DESC, rowid DESC LIMIT ?8",
                    &st));
        TRY(db_bind_int64(st, 1, created));
        TRY(db_bind_int64(st, 2, rowid));
        TRY(bind_text_or_null(st, 3, node_id));
        TRY(bind_text_or_null(st, 4, state));
        TRY(db_bind_int64(st, 5, p->since));
        TRY(db_bind_int64(st, 6, p->expired));
        TRY(db_bind_int64(st, 7, p->now > 0 ? p->now : (int64_t) time(NULL)));
        TRY(db_bind_int64(st, 8, (int64_t) page_limit(p->limit)));
        void *list = NULL;
        r = store_select_all(st, &enrolment_page_row, &list, ret_n);
        if (r == 0)
                *ret = list;
        return r;
}

/* ---- audit ---- */

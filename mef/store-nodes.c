/* SPDX-License-Identifier: MIT */
/* The store's nodes: add, look up (by node ID, KpmID, certificate, CSE-ID), state, status
 * checks, pages and the conflicts of an add; and the fleet's counts. */
#include "mef/store-internal.h"
#include "proto/tls.h"

#include <jansson.h>
#include <time.h>

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

/* Columns in NODE_SELECT order. */
static int node_from_row(db_stmt_t *st, int c, void *out) {
        store_node_t *n = out;
        memset(n, 0, sizeof *n);
        TRY(store_column_texts(st, c, 5, TEXT_BUF(n->node_id), TEXT_BUF(n->kpm_id), TEXT_BUF(n->cert_fp),
                               TEXT_BUF(n->cse_id), TEXT_BUF(n->cse_base)));
        int r = targets_from_json(db_column_str(st, c + 5), n);
        if (r < 0)
                return r;
        int64_t poll = db_column_int64(st, c + 6), lifetime = db_column_int64(st, c + 7);
        if (poll < 0 || poll > UINT32_MAX || lifetime < 0 || lifetime > UINT32_MAX)
                return -EBADMSG;
        n->poll = (uint32_t) poll;
        n->lifetime = (uint32_t) lifetime;
        n->ltk_transported = (int) db_column_int64(st, c + 8) != 0;
        n->state = node_state_from_string(db_column_str(st, c + 9));
        if (n->state < 0)
                return -EBADMSG;
        n->created = db_column_int64(st, c + 10);
        n->last_seen = db_column_int64(st, c + 11);
        n->status_checks = (uint64_t) db_column_int64(st, c + 12);
        return 0;
}

const row_type_t store_node_row = {
        node_from_row, sizeof(store_node_t), offsetof(store_node_t, node_id), "kpm", 13,
};

static bool node_is_valid(const store_node_t *n, const uint8_t *kpm, size_t kpm_len) {
        bool psk = n->kpm_id[0] != 0;
        if (!id_is_valid(n->node_id, MSG_ID_MAX) || !id_is_valid(n->cse_id, MSG_ID_MAX) ||
            !id_is_valid(n->cse_base, MSG_URI_MAX))
                return false;
        if (psk && (!id_is_valid(n->kpm_id, TLS_PSK_ID_MAX) || n->cert_fp[0] || !key_len_valid(kpm, kpm_len)))
                return false;
        if (!psk && (!store_fp_is_valid(n->cert_fp) || kpm_len != 0))
                return false;
        if (n->n_targets > MSG_TARGETS_MAX)
                return false;
        for (size_t i = 0; i < n->n_targets; i++)
                if (!id_is_valid(n->targets[i], MSG_ID_MAX))
                        return false;
        return n->poll >= STORE_POLL_MIN && n->poll <= STORE_POLL_MAX && n->lifetime >= STORE_LIFETIME_MIN &&
               n->lifetime <= STORE_LIFETIME_MAX && n->state >= 0 && n->state < _NODE_STATE_MAX;
}

/* A node's identities as ?1 node ID, ?2 KpmID, ?3 fingerprint (NULL when none), ?4 CSE-ID. */
static int bind_identities(db_stmt_t *st, const store_node_t *n) {
        TRY(db_bind_text(st, 1, n->node_id, -1));
        TRY(bind_text_or_null(st, 2, n->kpm_id));
        TRY(bind_text_or_null(st, 3, n->cert_fp));
        TRY(db_bind_text(st, 4, n->cse_id, -1));
        return 0;
}

static int node_insert(mef_store_t *s, const store_node_t *n, const uint8_t *kpm, size_t kpm_len) {
        uint8_t blob[SEALED_MAX];
        size_t blob_len;
        TRY(store_key_seal(s, "kpm", n->node_id, kpm, kpm_len, blob, &blob_len)); /* cert mode: none */
        _cleanup_free_ char *targets = NULL;
        int r = targets_to_json(n, &targets);
        if (r < 0)
                return r;

        /* A CSE-ID names one CSE, and a TLS identity one peer: the INSERT adds nothing when
         * another node has the CSE-ID or a target the KpmID or fingerprint (the schema has no
         * UNIQUE on cse_id: stores created before this check would need an upgrade). Which of
         * them it was is asked only then, so that an add takes one round trip. */
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    "INSERT INTO nodes (" NODE_COLUMNS ", kpm_enc) "
                    "SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12 "
                    "WHERE NOT EXISTS (SELECT 1 FROM targets WHERE psk_id = ?2 OR cert_fp = ?3) "
                    "AND NOT EXISTS (SELECT 1 FROM nodes WHERE cse_id = ?4)",
                    &st));
        TRY(bind_identities(st, n));
        TRY(db_bind_text(st, 5, n->cse_base, -1));
        TRY(db_bind_text(st, 6, targets, -1));
        TRY(db_bind_int64(st, 7, n->poll));
        TRY(db_bind_int64(st, 8, n->lifetime));
        TRY(db_bind_int64(st, 9, n->ltk_transported));
        TRY(db_bind_text(st, 10, node_state_to_string(n->state), -1));
        TRY(db_bind_int64(st, 11, n->created > 0 ? n->created : (int64_t) time(NULL)));
        TRY(store_bind_sealed(st, 12, blob, blob_len));
        TRY(step_done(st));
        if (s->d->ops->changes(s->d) == 1)
                return 0;
        store_node_t other; /* another node's CSE-ID: -EADDRINUSE; else a duplicate */
        r = store_node_by_cse_id(s, n->cse_id, &other);
        if (r < 0 && r != -ENOENT)
                return r;
        return r == 0 && !streq(other.node_id, n->node_id) ? -EADDRINUSE : -EEXIST;
}

int store_node_add(mef_store_t *s, const store_node_t *n, const uint8_t *kpm, size_t kpm_len) {
        if (!s || !n || !node_is_valid(n, kpm, kpm_len))
                return -EINVAL;
        bool own;
        TRY(store_identity_begin(s, &own)); /* before the checks */
        return store_identity_end(s, own, node_insert(s, n, kpm, kpm_len));
}

int store_node_get(mef_store_t *s, const char *node_id, store_node_t *ret) {
        return store_select_one(s, &store_node_row, "SELECT " NODE_SELECT " FROM nodes WHERE node_id = ?1", node_id, ret,
                                NULL, NULL);
}

int store_node_by_kpm_id(mef_store_t *s, const char *kpm_id, store_node_t *ret, uint8_t kpm[MSG_KEY_MAX],
                         size_t *ret_kpm_len) {
        if (!kpm != !ret_kpm_len)
                return -EINVAL;
        return store_select_one(s, &store_node_row, "SELECT " NODE_SELECT ", kpm_enc FROM nodes WHERE kpm_id = ?1", kpm_id,
                                ret, kpm, ret_kpm_len);
}

/* No "ORDER BY node_id LIMIT 1": PostgreSQL, with statistics that lag a bulk add, walks the
 * primary key for it, filtering on cse_id - every row when none matches, which is each new node
 * of an import (measured: 10,000 nodes imported onto 5,000 in 20 s, 100,000 onto 100,000 not
 * done in 15 minutes). The matches (one; more only in stores older than the uniqueness check)
 * come by the cse_id index, and the smallest node ID is taken here. */
int store_node_by_cse_id(mef_store_t *s, const char *cse_id, store_node_t *ret) {
        if (!s || !cse_id || !ret)
                return -EINVAL;
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, "SELECT " NODE_SELECT " FROM nodes WHERE cse_id = ?1", &st));
        TRY(db_bind_text(st, 1, cse_id, -1));
        _cleanup_free_ store_node_t *all = NULL;
        size_t n = 0, min = 0;
        TRY(store_select_all(st, &store_node_row, (void **) &all, &n));
        if (n == 0)
                return -ENOENT;
        for (size_t i = 1; i < n; i++)
                if (strcmp(all[i].node_id, all[min].node_id) < 0)
                        min = i;
        *ret = all[min];
        return 0;
}

int store_node_by_cert(mef_store_t *s, const char *fp, store_node_t *ret) {
        return store_select_one(s, &store_node_row, "SELECT " NODE_SELECT " FROM nodes WHERE cert_fp = ?1", fp, ret, NULL,
                                NULL);
}

int store_node_list(mef_store_t *s, store_node_t **ret, size_t *ret_n) {
        static const store_page_t all = { .state = -1 };
        return store_node_page(s, &all, ret, ret_n);
}

int store_node_set_state(mef_store_t *s, const char *node_id, node_state_t state) {
        const char *v = node_state_to_string(state);
        if (!s || !node_id || !v)
                return -EINVAL;
        if (state != NODE_REENROL)
                return store_update_one(s, "UPDATE nodes SET state = ?1 WHERE node_id = ?2", v, node_id);
        /* A revoked node stays so until activated: reenrol would let it enrol again. In the
         * UPDATE itself, so that a revocation committed meanwhile is not overwritten
         * (PostgreSQL evaluates the WHERE again on a row another transaction changed). */
        int r = store_update_one(s, "UPDATE nodes SET state = ?1 WHERE node_id = ?2 AND state <> 'revoked'", v,
                                 node_id);
        if (r != -ENOENT)
                return r;
        store_node_t n;
        r = store_node_get(s, node_id, &n);
        return r < 0 ? r : -EPERM;
}

int store_node_remove(mef_store_t *s, const char *node_id) {
        if (!s || !node_id)
                return -EINVAL;
        /* enrolments go with it: ON DELETE CASCADE */
        return store_update_one(s, "DELETE FROM nodes WHERE node_id = ?1", node_id, NULL);
}

int store_counts(mef_store_t *s, int64_t now, store_counts_t *ret) {
        if (!s || !ret)
                return -EINVAL;
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    "SELECT (SELECT count(*) FROM nodes),"
                    " (SELECT count(*) FROM enrolments WHERE state = 'active' AND exp > ?1),"
                    " (SELECT count(*) FROM enrolments WHERE state = 'active' AND exp <= ?1)",
                    &st));
        TRY(db_bind_int64(st, 1, now));
        int r = step_row(st);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        *ret = (store_counts_t) {
                .nodes = (uint64_t) db_column_int64(st, 0),
                .enrolments_active = (uint64_t) db_column_int64(st, 1),
                .enrolments_expired = (uint64_t) db_column_int64(st, 2),
        };
        return 0;
}

int store_node_long_kpm_ids(mef_store_t *s, char (*ids)[MSG_ID_MAX + 1], size_t n_ids, size_t *ret_n,
                            uint64_t *ret_count) {
        if (!s || (n_ids && !ids) || !ret_n || !ret_count)
                return -EINVAL;
        /* a scan of every node: once at start, or when an operator asks */
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    "SELECT node_id, (SELECT count(*) FROM nodes WHERE length(kpm_id) > ?1) FROM nodes "
                    "WHERE length(kpm_id) > ?1 ORDER BY node_id LIMIT ?2",
                    &st));
        TRY(db_bind_int64(st, 1, TLS_PSK_ID_MAX));
        TRY(db_bind_int64(st, 2, (int64_t) MAX(n_ids, (size_t) 1)));
        size_t n = 0;
        uint64_t count = 0;
        int r;
        while ((r = step_row(st)) > 0) {
                count = (uint64_t) db_column_int64(st, 1);
                if (n < n_ids)
                        snprintf(ids[n++], sizeof ids[0], "%s", db_column_str(st, 0) ?: "");
        }
        if (r < 0)
                return r;
        *ret_n = n;
        *ret_count = count;
        return 0;
}

int store_node_seen(mef_store_t *s, const char *node_id, int64_t now) {
        if (!s || !node_id)
                return -EINVAL;
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, "UPDATE nodes SET last_seen = ?2, status_checks = status_checks + 1 WHERE node_id = ?1", &st));
        TRY(db_bind_text(st, 1, node_id, -1));
        TRY(db_bind_int64(st, 2, now));
        int r = step_done(st);
        if (r < 0)
                return r;
        return s->d->ops->changes(s->d) == 1 ? 0 : -ENOENT;
}

/* ---- nodes: pages and conflicts (bulk lifecycle) ---- */

int store_node_page(mef_store_t *s, const store_page_t *p, store_node_t **ret, size_t *ret_n) {
        if (!s || !p || !ret || !ret_n)
                return -EINVAL;
        const char *state = NULL;
        if (p->state >= 0 && !(state = node_state_to_string((node_state_t) p->state)))
                return -EINVAL;
        /* keyset: the primary key's index walks from after, whatever the table holds */
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    "SELECT " NODE_SELECT " FROM nodes WHERE (?1 IS NULL OR node_id > ?1) "
                    "AND (?2 IS NULL OR state = ?2) AND created >= ?3 ORDER BY node_id LIMIT ?4",
                    &st));
        TRY(bind_text_or_null(st, 1, p->after));
        TRY(bind_text_or_null(st, 2, state));
        TRY(db_bind_int64(st, 3, p->since));
        TRY(db_bind_int64(st, 4, (int64_t) page_limit(p->limit)));
        void *list = NULL;
        int r = store_select_all(st, &store_node_row, &list, ret_n);
        if (r == 0)
                *ret = list;
        return r;
}

int store_node_conflict(mef_store_t *s, const store_node_t *n, const char **ret_field) {
        if (!s || !n || !ret_field)
                return -EINVAL;
        if (s->d->ops->in_transaction(s->d))
                TRY(store_identity_lock(s)); /* a check an INSERT of this transaction will rely on */
        /* the first of n's identities in use, in this order, by one statement: one round trip
         * for each row of a bulk import on PostgreSQL */
        static const char *const fields[] = { STORE_CONFLICT_NODE_ID, "KpmID", "certificate", "CSE-ID" };
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    "SELECT CASE WHEN EXISTS (SELECT 1 FROM nodes WHERE node_id = ?1) THEN 1 "
                    "WHEN EXISTS (SELECT 1 FROM nodes WHERE kpm_id = ?2 AND node_id <> ?1) "
                    "OR EXISTS (SELECT 1 FROM targets WHERE psk_id = ?2) THEN 2 "
                    "WHEN EXISTS (SELECT 1 FROM nodes WHERE cert_fp = ?3 AND node_id <> ?1) "
                    "OR EXISTS (SELECT 1 FROM targets WHERE cert_fp = ?3) THEN 3 "
                    "WHEN EXISTS (SELECT 1 FROM nodes WHERE cse_id = ?4 AND node_id <> ?1) THEN 4 ELSE 0 END",
                    &st));
        TRY(bind_identities(st, n));
        int r = step_row(st);
        if (r <= 0)
                return r < 0 ? r : -EIO;
        int64_t which = db_column_int64(st, 0);
        if (which < 1 || which > (int64_t) ELEMENTSOF(fields))
                return 0;
        *ret_field = fields[which - 1];
        return 1;
}

/* ---- targets ---- */


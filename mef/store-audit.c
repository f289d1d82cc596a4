/* SPDX-License-Identifier: MIT */
/* The store's audit trail, and retention (pruning old audit rows and spent enrolments). */
#include "mef/store-internal.h"

#include <time.h>

#include "util/text.h"


/* v, valid UTF-8 and cut to max bytes in buf (max + 1), which lives until the step. Audit text
 * comes from paths and peers; PostgreSQL refuses any other in a UTF8 database, and JSON (a
 * backup, --json) cannot hold it. */
static int bind_audit_text(db_stmt_t *st, int i, const char *v, size_t max, char *buf) {
        if (!v || !v[0])
                return db_bind_text(st, i, NULL, 0);
        return db_bind_text(st, i, text_copy(v, TEXT_UTF8, buf, max + 1), -1);
}

int store_audit(mef_store_t *s, const char *actor, const char *action, const char *subject, const char *detail) {
        if (!s || !actor || !actor[0] || !action || !action[0])
                return -EINVAL;
        char actor_buf[STORE_AUDIT_ACTOR_MAX + 1], action_buf[STORE_AUDIT_ACTION_MAX + 1],
                subject_buf[STORE_AUDIT_SUBJECT_MAX + 1], detail_buf[STORE_AUDIT_DETAIL_MAX + 1];
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, "INSERT INTO audit (ts, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)", &st));
        TRY(db_bind_int64(st, 1, (int64_t) time(NULL)));
        TRY(bind_audit_text(st, 2, actor, STORE_AUDIT_ACTOR_MAX, actor_buf));
        TRY(bind_audit_text(st, 3, action, STORE_AUDIT_ACTION_MAX, action_buf));
        TRY(bind_audit_text(st, 4, subject, STORE_AUDIT_SUBJECT_MAX, subject_buf));
        TRY(bind_audit_text(st, 5, detail, STORE_AUDIT_DETAIL_MAX, detail_buf));
        return db_step_later(st); /* in a transaction its error may come from the commit */
}

/* The rows of the prepared and bound audit query st. */
static int audit_rows(db_stmt_t *st, store_audit_entry_t **ret, size_t *ret_n) {
        int r;
        _cleanup_free_ store_audit_entry_t *list = NULL;
        size_t n = 0, alloc = 0;
        while ((r = step_row(st)) > 0) {
                store_audit_entry_t *e = store_array_push((void **) &list, &n, &alloc, sizeof *list);
                if (!e)
                        return -ENOMEM;
                memset(e, 0, sizeof *e);
                e->id = db_column_int64(st, 0);
                e->ts = db_column_int64(st, 1);
                TRY(store_column_texts(st, 2, 4, TEXT_BUF(e->actor), TEXT_BUF(e->action), TEXT_BUF(e->subject),
                                       TEXT_BUF(e->detail)));
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
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    "SELECT id, ts, actor, action, subject, detail FROM audit WHERE (?1 = 0 OR id < ?1) "
                    "AND ts >= ?2 AND (?3 IS NULL OR action = ?3) ORDER BY id DESC LIMIT ?4",
                    &st));
        TRY(db_bind_int64(st, 1, p->after_id));
        TRY(db_bind_int64(st, 2, p->since));
        TRY(bind_text_or_null(st, 3, p->action));
        TRY(db_bind_int64(st, 4, (int64_t) page_limit(p->limit)));
        return audit_rows(st, ret, ret_n);
}

/* ---- retention ---- */

/* One DELETE of at most limit rows older than a cut-off; counting what it removed. The
 * subquery is what both engines take (PostgreSQL has no DELETE ... LIMIT); it walks the index
 * on the cut-off's column. */
static int delete_before(mef_store_t *s, const char *sql, int64_t before, uint64_t limit, uint64_t *ret_n) {
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, sql, &st));
        TRY(db_bind_int64(st, 1, before));
        TRY(db_bind_int64(st, 2, (int64_t) limit));
        int r = step_done(st);
        if (r < 0)
                return r;
        *ret_n = (uint64_t) s->d->ops->changes(s->d);
        return 0;
}

int store_prune_some(mef_store_t *s, int64_t before, uint64_t limit, store_pruned_t *ret) {
        if (!s || !ret || limit == 0 || limit > INT64_MAX)
                return -EINVAL;
        store_pruned_t p = {};
        int r = store_begin(s);
        /* Never the newest row: SQLite gives a new row the largest id + 1 (no AUTOINCREMENT in
         * the schema), so with the table emptied ids would start at 1 again, and a follower of
         * "after this id" would miss every new row. PostgreSQL's identity never reuses one. */
        if (r >= 0)
                r = delete_before(s,
                                  "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < ?1 "
                                  "AND id < (SELECT max(id) FROM audit) LIMIT ?2)",
                                  before, limit, &p.audit);
        /* An enrolment that no longer serves (retired, revoked, deregistered) whose exp is
         * keep past: its KeID then answers 404 like any unknown one. A retired or deregistered
         * one got that already; a revoked one answered "revoked" to status checks until now
         * (mef/handlers-status.c, expired or not), and its agent, told so, dropped its keys long
         * before. One that asks now enrols again: refused while its node is revoked. */
        if (r >= 0)
                r = delete_before(s,
                                  "DELETE FROM enrolments WHERE ke_id IN (SELECT ke_id FROM enrolments "
                                  "WHERE state <> 'active' AND exp < ?1 LIMIT ?2)",
                                  before, limit, &p.enrolments);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        ret->audit += p.audit;
        ret->enrolments += p.enrolments;
        return p.audit >= limit || p.enrolments >= limit;
}

int store_prune(mef_store_t *s, int64_t before, store_pruned_t *ret) {
        if (!s || !ret)
                return -EINVAL;
        *ret = (store_pruned_t) {};
        int r;
        for (;;) {
                usec_t began = now_usec();
                r = store_prune_some(s, before, STORE_PRUNE_STEP, ret);
                if (r <= 0)
                        return r;
                store_step_pause(s, began);
        }
}


/* SPDX-License-Identifier: MIT */
/* The MEF's answers: error responses, their serialisation with the protocol's headers, and the
 * audit row each outcome leaves. */
#include "mef/handlers-internal.h"

#define UNNAMED_TARGET "target not named for that KeID"
#define DETAIL_MAX 512u
#define REFUSAL_AUDIT_KEYS 4096u /* identity, exchange, status; beyond, the oldest gives way */

int mef_response_error(int status, int rsc, const char *reason, mef_response_t *ret) {
        char *body = NULL;
        int r = msg_dbg_format(reason, &body);
        if (r < 0 && r != -ENOMEM)
                /* A reason the formatter refuses (it quotes peer input): fall back. */
                r = msg_dbg_format("request rejected", &body);
        if (r < 0)
                return r;
        *ret = (mef_response_t) {
                .status = status,
                .rsc = rsc,
                .body = body,
                .body_len = strlen(body),
        };
        return 0;
}

void mef_response_done(mef_response_t *r) {
        if (!r)
                return;
        /* Profiles and credentials carry key bytes. */
        erase_free(r->body, r->body_len);
        r->body = NULL;
        r->body_len = 0;
}

bool mef_request_id_is_echoable(const char *ri) {
        size_t n = 0;
        for (; ri[n]; n++)
                if ((unsigned char) ri[n] < 0x20 || (unsigned char) ri[n] > 0x7e)
                        return false;
        return n >= 1 && n <= MEF_RI_MAX;
}

int mef_response_format(const mef_response_t *r, const char *request_id, uint8_t **ret, size_t *ret_len) {
        char rsc[16], retry[16];
        const char *h[16];
        size_t n = 0;

        if (!r || !ret || !ret_len)
                return -EINVAL;
        snprintf(rsc, sizeof rsc, "%d", r->rsc);
        h[n++] = "X-M2M-RSC";
        h[n++] = rsc;
        if (request_id && mef_request_id_is_echoable(request_id)) {
                h[n++] = "X-M2M-RI";
                h[n++] = request_id;
        }
        if (r->body && r->body_len > 0) {
                h[n++] = "Content-Type";
                h[n++] = "application/json";
        }
        if (r->retry_after > 0) {
                snprintf(retry, sizeof retry, "%u", r->retry_after);
                h[n++] = "Retry-After";
                h[n++] = retry;
        }
        if (r->allow) {
                h[n++] = "Allow";
                h[n++] = r->allow;
        }
        h[n++] = "Connection";
        h[n++] = "close";
        h[n] = NULL;
        return http_format_response(r->status, h, r->body_len > 0 ? r->body : NULL, r->body_len, ret, ret_len);
}

/* A success response owning a formatted JSON body. */
void handler_respond_ok(mef_response_t *ret, int status, int rsc, char *body) {
        *ret = (mef_response_t) {
                .status = status,
                .rsc = rsc,
                .body = body,
                .body_len = body ? strlen(body) : 0,
        };
}

/* ---- audit ---- */

_printf_(4, 0) static int audit_va(const exchange_t *ex, const char *subject, int status, const char *fmt,
                                   va_list ap) {
        char detail[DETAIL_MAX], what[DETAIL_MAX - 64];
        vsnprintf(what, sizeof what, fmt, ap);
        snprintf(detail, sizeof detail, "%d %s (from %s)", status, what,
                 ex->peer && ex->peer->addr ? ex->peer->addr : "?");
        return store_audit(ex->store, ex->actor, ex->action, subject && *subject ? subject : "-", detail);
}

_printf_(4, 5) int handler_audit(const exchange_t *ex, const char *subject, int status, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = audit_va(ex, subject, status, fmt, ap);
        va_end(ap);
        return r;
}

/* ---- refusals ---- */

int mef_refusal_audit_new(ratelimit_t **ret) {
        return ratelimit_new(1, (uint64_t) MEF_REFUSAL_AUDIT_WINDOW_S * USEC_PER_SEC, REFUSAL_AUDIT_KEYS, ret);
}

/* A refusal changes nothing (nor does a deregister of a revoked enrolment), so its repeats add
 * nothing to the trail but rows in the write lock every enrolment waits for: one row per
 * identity, exchange and status a window, the repeats counted (the next row and the log lines
 * say how many). A refusal of another kind still gets its row. 0: audit it, *ret_n the like
 * ones folded after the last row; else the folded ones of this window, this one included. */
static unsigned refusal_fold(const exchange_t *ex, int status, unsigned *ret_n) {
        char key[MSG_KEID_MAX + 64];
        unsigned n = 0;
        *ret_n = 0;
        if (!ex->peer || !ex->peer->refusal_audit)
                return 0;
        snprintf(key, sizeof key, "%s %s %d", ex->actor, ex->action, status);
        int r = ratelimit_take_counted(ex->peer->refusal_audit, key, now_usec(), &n);
        if (r > 0)
                return n;
        *ret_n = r == 0 ? n : 0; /* -ENOMEM: audited, as without the fold */
        return 0;
}

/* text audited unless folded (best effort: nothing was changed); refusal_fold()'s count. */
static unsigned audit_folding(const exchange_t *ex, const char *subject, int status, const char *text) {
        unsigned before;
        unsigned folded = refusal_fold(ex, status, &before);
        if (folded == 0 && before > 0)
                (void) handler_audit(ex, subject, status, "%s [after %u like it not audited]", text, before);
        else if (folded == 0)
                (void) handler_audit(ex, subject, status, "%s", text);
        return folded;
}

_printf_(4, 5) unsigned handler_audit_unchanged(const exchange_t *ex, const char *subject, int status,
                                                const char *fmt, ...) {
        char text[DETAIL_MAX - 64];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        return audit_folding(ex, subject, status, text);
}

/* The error answer reason, audited as audit_text unless folded (best effort: the answer is an
 * error already). */
static int refuse(const exchange_t *ex, const char *subject, mef_response_t *ret, int status, int rsc,
                  const char *reason, const char *audit_text) {
        unsigned folded = audit_folding(ex, subject, status, audit_text);
        int r = mef_response_error(status, rsc, reason, ret);
        if (r >= 0)
                ret->audit_folded = folded;
        return r;
}

_printf_(6, 7) int handler_fail(const exchange_t *ex, const char *subject, mef_response_t *ret, int status, int rsc,
                                const char *fmt, ...) {
        char reason[MSG_DBG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        return refuse(ex, subject, ret, status, rsc, reason, reason);
}

/* Internal errors: the audit trail and the server's log get the cause, the peer a generic
 * reason. A store that is locked, unreachable or full is a passing state: 503 with Retry-After,
 * and no audit row (writing it would wait for the same store, or fail as the change did). Nothing
 * was changed: the failed call rolled back. */
int handler_fail_internal(const exchange_t *ex, const char *subject, mef_response_t *ret, int error, const char *what) {
        int r;
        /* a copy: the audit row below is a statement, which forgets it in the store */
        store_reason_t why;
        store_reason_copy(ex->store, error < 0 ? error : -error, &why);
        if (store_error_is_transient(error)) {
                r = mef_response_error(503, 5000, "store busy: retry later", ret);
                if (r >= 0)
                        ret->retry_after = ex->cfg->retry_after;
        } else {
                char said[STORE_STRERROR_MAX];
                (void) handler_audit(ex, subject, 500, "internal error: %s: %s", what,
                                     store_strerror(error, &why, said));
                r = mef_response_error(500, 5000, "internal error", ret);
        }
        if (r >= 0) {
                ret->failed = what;
                ret->error = error;
                ret->reason = why;
        }
        return r;
}

int handler_unknown_keid(const exchange_t *ex, const char *ke_id, mef_response_t *ret, const char *why) {
        if (!why)
                return handler_fail(ex, ke_id, ret, 404, 4004, "unknown KeID");
        return handler_fail(ex, ke_id, ret, 404, 4004, "unknown KeID (%s)", why);
}

/* One answer whatever the enrolment's state and whether its node is still there: a target that
 * is not named for the KeID must not follow the node's enrolments. Only the audit row says why. */
int handler_unnamed_target(const exchange_t *ex, const char *ke_id, mef_response_t *ret, const char *why) {
        char text[MSG_DBG_MAX];
        snprintf(text, sizeof text, "%s (%s)", UNNAMED_TARGET, why);
        return refuse(ex, ke_id, ret, 403, 4103, UNNAMED_TARGET, text);
}

int handler_not_enrolee(const exchange_t *ex, const char *subject, mef_response_t *ret) {
        return handler_fail(ex, subject, ret, 403, 4103, MSG_HINT_NOT_ENROLEE ": peer is not an enrolee node");
}

const char *handler_enrolment_unusable(const store_enrolment_t *e, time_t now) {
        if (e->state != ENROLMENT_ACTIVE)
                return enrolment_state_to_string(e->state);
        return e->exp <= now ? "expired" : NULL;
}

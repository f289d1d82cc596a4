/* SPDX-License-Identifier: MIT */
/* The admin API under /admin/v1 (docs/admin-api.md, docs/admin-api.openapi.json): the CLI's
 * operations (mef/ops.h) over JSON. Lists page like the CLI: ?limit, ?after (the last key of
 * the previous page, given back as "next" when the page was full), ?since, ?state. */
#include <inttypes.h>

#include "mef/admin-api.h"
#include "mef/ops-import.h"
#include "mef/ops.h"
#include "proto/ids.h"
#include "proto/tls.h"
#include "util/hex.h"
#include "util/json-alloc.h"
#include "util/text.h"
#include "util/util.h"

#define PREFIX "/admin/v1/"
#define PARAMS_MAX 8u
#define AUDIT_TARGET_MAX 255u
#define SEGMENTS_MAX 3u
/* Answers are built in memory: a list's page, an export's and a node's enrolments are bounded. */
#define LIST_DEFAULT 100u
#define LIST_MAX 1000u
#define EXPORT_PAGE 1000u /* store reads of an export */
#define EXPORT_MAX 10000u

typedef struct request {
        const http_msg_t *msg;
        const mef_config_t *cfg;
        mef_store_t *store;
        const char *actor;
        char *seg[SEGMENTS_MAX]; /* decoded path segments after /admin/v1/ */
        size_t n_seg;
        char *key[PARAMS_MAX], *val[PARAMS_MAX];
        size_t n_params;
        char buf[HTTP_TARGET_MAX + 1];
} request_t;

bool admin_operator_is_valid(const char *cn) {
        size_t n = cn ? strlen(cn) : 0;
        if (n == 0 || n > 64 || cn[0] == '-' || cn[0] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._@-", cn[i]))
                        return false;
        return true;
}

/* ---- responses ---- */

_printf_(3, 4) static int fail(admin_response_t *ret, int status, const char *fmt, ...) {
        char reason[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        /* peer text may be quoted: jansson refuses what is not UTF-8, which would turn the
         * body's fault into a 500 */
        text_clean(reason, TEXT_ASCII);
        return admin_response_error(status, reason, ret);
}

/* The store's failure: busy (or full) is 503, the rest 500; the cause goes to the log. */
static int fail_store(admin_response_t *ret, int r, const request_t *q) {
        bool passing = store_error_is_transient(r);
        int k = passing ? admin_response_error(503, "store busy: retry later", ret)
                        : admin_response_error(500, "internal error", ret);
        if (k < 0)
                return k;
        if (passing)
                ret->retry_after = q->cfg->retry_after;
        ret->store_error = r;
        store_reason_copy(q->store, r, &ret->store_reason);
        return k;
}

/* ---- the request ---- */

static int unhex(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decoding in place ('+' is a space in a query); -EINVAL for a bad escape or a NUL. */
static int pct_decode(char *s, bool query) {
        char *o = s;
        for (char *p = s; *p; p++) {
                if (*p == '%') {
                        int hi = unhex(p[1]), lo = hi >= 0 ? unhex(p[2]) : -1;
                        if (lo < 0 || (hi == 0 && lo == 0))
                                return -EINVAL;
                        *o++ = (char) (hi * 16 + lo);
                        p += 2;
                } else
                        *o++ = query && *p == '+' ? ' ' : *p;
        }
        *o = 0;
        return 0;
}

/* 0, or the status of a target that names nothing here (404) or is malformed (400). */
static int request_parse(request_t *q) {
        snprintf(q->buf, sizeof q->buf, "%s", q->msg->target);
        char *query = strchr(q->buf, '?');
        if (query)
                *query++ = 0;
        if (strncmp(q->buf, PREFIX, strlen(PREFIX)) != 0)
                return 404;
        char *save = NULL, *path = q->buf + strlen(PREFIX);
        if (path[0] == '/' || (strlen(path) && path[strlen(path) - 1] == '/') || strstr(path, "//"))
                return 404; /* one name for each resource */
        for (char *s = strtok_r(path, "/", &save); s; s = strtok_r(NULL, "/", &save)) {
                if (q->n_seg == SEGMENTS_MAX)
                        return 404;
                if (pct_decode(s, false) < 0)
                        return 400;
                q->seg[q->n_seg++] = s;
        }
        if (q->n_seg == 0)
                return 404;
        for (char *kv = query ? strtok_r(query, "&", &save) : NULL; kv; kv = strtok_r(NULL, "&", &save)) {
                if (q->n_params == PARAMS_MAX)
                        return 400;
                char *eq = strchr(kv, '=');
                if (eq)
                        *eq++ = 0;
                if (pct_decode(kv, true) < 0 || (eq && pct_decode(eq, true) < 0))
                        return 400;
                q->key[q->n_params] = kv;
                q->val[q->n_params++] = eq ?: "";
        }
        return 0;
}

static const char *param(const request_t *q, const char *key) {
        for (size_t i = 0; i < q->n_params; i++)
                if (streq(q->key[i], key))
                        return q->val[i];
        return NULL;
}

/* Every parameter must be one of allowed (a NULL-terminated list): a typo is an error, not a
 * filter silently ignored. NULL, or the unknown one. */
static const char *params_check(const request_t *q, const char *const *allowed) {
        for (size_t i = 0; i < q->n_params; i++) {
                bool ok = false;
                for (const char *const *a = allowed; *a && !ok; a++)
                        ok = streq(*a, q->key[i]);
                if (!ok)
                        return q->key[i];
        }
        return NULL;
}

/* ?flag, ?flag=true|1 or =false|0 (absent: false); -EINVAL for another value. */
static int flag_parse(const char *v, bool *ret) {
        if (!v || streq(v, "false") || streq(v, "0"))
                return *ret = false, 0;
        if (streq(v, "") || streq(v, "true") || streq(v, "1"))
                return *ret = true, 0;
        return -EINVAL;
}

/* ?limit (at most max, def when absent), ?after, ?since into p: NULL, or what is wrong. */
static const char *page_parse(const request_t *q, store_page_t *p, size_t def, size_t max) {
        static _Thread_local char why[64];
        const char *v;
        *p = (store_page_t) { .state = -1, .limit = def };
        if ((v = param(q, "limit")) && (ops_limit_parse(v, &p->limit) < 0 || p->limit > max)) {
                snprintf(why, sizeof why, "limit: expected a number from 1 to %zu", max);
                return why;
        }
        if ((v = param(q, "since")) && ops_since_parse(v, &p->since) < 0)
                return "since: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or a duration back from now (7d)";
        p->after = param(q, "after");
        return NULL;
}

/* {"items": [...], "next": KEY or null}: next when the page was full. Takes items. */
static int respond_page(admin_response_t *ret, json_t *items, const store_page_t *p, size_t n, const char *last) {
        json_t *next = p->limit && n == p->limit && last ? json_string(last) : json_null();
        return admin_response_json(ret, 200, items ? json_pack("{s:o, s:o}", "items", items, "next", next) : NULL);
}

/* The request body as a JSON object, or the error answered. */
static json_t *body_json(const request_t *q, admin_response_t *ret, int *r) {
        json_error_t e = {};
        json_t *j = q->msg->body_len ? json_loadb((const char *) q->msg->body, q->msg->body_len,
                                                  JSON_REJECT_DUPLICATES, &e)
                                     : NULL;
        if (!j && q->msg->body_len && json_load_out_of_memory(&e)) {
                *r = -ENOMEM; /* 500: not the body's fault */
                return NULL;
        }
        if (!json_is_object(j)) {
                json_decref(j);
                *r = fail(ret, 400, "the body must be a JSON object");
                return NULL;
        }
        return j;
}

/* ---- nodes ---- */

/* The audit row's detail of an add, as the CLI's node add and target add write it. */
static void credential_detail_of(const char *psk_id, const char *cert_fp, char *buf, size_t size) {
        if (psk_id[0])
                snprintf(buf, size, "psk id=%s", psk_id);
        else
                snprintf(buf, size, "cert fp=%s", cert_fp);
}

static int nodes_list(request_t *q, admin_response_t *ret) {
        static const char *const allowed[] = { "limit", "after", "since", "state", NULL };
        const char *bad = params_check(q, allowed), *why, *state = param(q, "state");
        if (bad)
                return fail(ret, 400, "unknown parameter '%s'", bad);
        store_page_t p;
        if ((why = page_parse(q, &p, LIST_DEFAULT, LIST_MAX)))
                return fail(ret, 400, "%s", why);
        if (state && (p.state = node_state_from_string(state)) < 0)
                return fail(ret, 400, "state: expected active, reenrol or revoked");
        _cleanup_free_ store_node_t *list = NULL;
        size_t n = 0;
        int r = store_node_page(q->store, &p, &list, &n);
        if (r < 0)
                return fail_store(ret, r, q);
        return respond_page(ret, ops_json_array(list, n, sizeof *list, ops_node_json), &p, n,
                            n ? list[n - 1].node_id : NULL);
}

static int node_get(request_t *q, const char *id, admin_response_t *ret) {
        _cleanup_free_ store_node_t *n = calloc(1, sizeof *n);
        int r = n ? store_node_get(q->store, id, n) : -ENOMEM;
        if (r == -ENOENT)
                return fail(ret, 404, "no such node");
        if (r < 0)
                return fail_store(ret, r, q);
        _cleanup_free_ store_enrolment_t *enr = NULL;
        size_t n_enr = 0;
        char last[STORE_ENROLMENT_CURSOR_MAX];
        r = ops_node_enrolments(q->store, id, &enr, &n_enr, last);
        if (r < 0)
                return fail_store(ret, r, q);
        json_t *o = ops_node_json(n);
        /* json_object_set_new() takes the value, also when o is NULL */
        if (json_object_set_new(o, "enrolments", ops_json_array(enr, n_enr, sizeof *enr, ops_enrolment_json)) < 0 ||
            json_object_set_new(o, "enrolmentsNext", last[0] ? json_string(last) : json_null()) < 0) {
                json_decref(o);
                o = NULL;
        }
        return admin_response_json(ret, 200, o);
}

/* A node from the import's fields (kpm as hex, never kpmFile). */
static int node_add(request_t *q, admin_response_t *ret) {
        int r = 0;
        json_t *j = body_json(q, ret, &r);
        if (!j)
                return r;
        import_reader_t rd = { .no_files = true, .jsonl = true };
        import_record_t rec = {};
        _cleanup_(import_row_done) import_row_t row = {};
        char msg[384];
        const char *why = import_record_from_json(j, &rec);
        if (!why)
                why = import_row_parse(q->cfg, &rd, &rec, &row, msg, sizeof msg);
        import_json_erase(j, "kpm"); /* not rec's: a row refused early never points to it */
        if (why) {
                json_decref(j);
                return fail(ret, 422, "%s", why);
        }
        json_decref(j);
        char detail[MSG_ID_MAX + 16];
        credential_detail_of(row.n.kpm_id, row.n.cert_fp, detail, sizeof detail);
        /* the time the store would give it: the answer is this row, not a read after the commit
         * (which may fail once the node is added: a retry would then meet 409) */
        row.n.created = (int64_t) time(NULL);
        r = store_begin(q->store);
        if (r == 0) {
                r = store_node_add(q->store, &row.n, row.kpm_len ? row.kpm : NULL, row.kpm_len);
                if (r == 0)
                        r = store_audit(q->store, q->actor, "node-add", row.n.node_id, detail);
                if (r == 0)
                        r = store_commit(q->store);
                if (r < 0)
                        store_rollback(q->store);
        }
        const char *field = "node ID, KpmID or certificate";
        if ((r == -EEXIST || r == -EADDRINUSE) && store_node_conflict(q->store, &row.n, &field) >= 0)
                return fail(ret, 409, "%s already in use", field);
        if (r < 0)
                return fail_store(ret, r, q);
        return admin_response_json(ret, 201, ops_node_json(&row.n));
}

static int node_change(request_t *q, const char *id, ops_node_change_t change, admin_response_t *ret) {
        char detail[64];
        store_node_t n;
        int r = ops_node_change(q->store, q->actor, id, change, detail, sizeof detail, &n);
        if (r == -ENOENT)
                return fail(ret, 404, "no such node");
        if (r == -EPERM)
                return fail(ret, 409, "node is revoked: activate it first");
        if (r < 0)
                return fail_store(ret, r, q);
        if (change == OPS_NODE_REMOVE)
                return admin_response_json(ret, 200, json_pack("{s:s}", "removed", id));
        return admin_response_json(ret, 200, ops_node_json(&n));
}

/* ---- import, export ---- */

/* ImportResult (docs/admin-api.openapi.json); takes errors */
static int import_answer(admin_response_t *ret, int status, bool dry_run, const ops_import_result_t *res, json_t *errors) {
        json_t *j = json_pack("{s:b, s:b, s:I, s:I, s:I, s:I, s:o}", "dryRun", dry_run, "imported", res->imported,
                              "rows", (json_int_t) res->rows, "added", (json_int_t) (res->imported ? res->added : 0),
                              "wouldAdd", (json_int_t) res->added, "unchanged", (json_int_t) res->unchanged, "errors",
                              errors);
        return admin_response_json(ret, status, j);
}

static int import(request_t *q, admin_response_t *ret) {
        static const char *const allowed[] = { "dry_run", NULL };
        const char *bad = params_check(q, allowed);
        if (bad)
                return fail(ret, 400, "unknown parameter '%s'", bad);
        bool dry_run;
        if (flag_parse(param(q, "dry_run"), &dry_run) < 0)
                return fail(ret, 400, "dry_run: expected true or false");
        _cleanup_(import_reader_done) import_reader_t rd = { .no_files = true };
        int r = import_reader_open_memory(&rd, "request", q->msg->body, q->msg->body_len);
        if (r == -ENODATA)
                return fail(ret, 400, "the body must be CSV with a header row, or JSON Lines");
        const char *why = r < 0 ? NULL : import_reader_start(&rd, &r);
        ops_import_result_t res = {};
        if (why || r == -E2BIG || r == -EBADMSG) { /* the first line too long, or with a NUL */
                /* the shape of every 422 of this route: the line in errors[], nothing imported */
                char msg[256];
                snprintf(msg, sizeof msg, "%s", why ?: strerror(-r));
                json_t *line = json_pack("[{s:I, s:s}]", "line", (json_int_t) rd.lineno, "error",
                                         text_clean(msg, TEXT_ASCII));
                return line ? import_answer(ret, 422, dry_run, &res, line) : -ENOMEM;
        }
        if (r < 0)
                return r; /* out of memory: 500, not the body's fault */
        json_t *errors = json_array();
        char subject[96];
        snprintf(subject, sizeof subject, "request of %s", q->actor);
        r = ops_import_run(q->store, q->cfg, q->actor, subject, &rd, dry_run, errors, &res);
        if (r < 0) {
                json_decref(errors);
                return fail_store(ret, r, q);
        }
        return import_answer(ret, res.n_errors ? 422 : 200, dry_run, &res, errors);
}

/* As `node export`: the import's fields, never a key; CSV or JSON Lines. At most EXPORT_MAX
 * rows a request: a full one says where the next goes on in X-Next-After. */
static int export(request_t *q, admin_response_t *ret) {
        static const char *const allowed[] = { "format", "state", "limit", "after", "since", NULL };
        const char *bad = params_check(q, allowed), *why, *fmt = param(q, "format") ?: "jsonl",
                   *state = param(q, "state");
        if (bad)
                return fail(ret, 400, "unknown parameter '%s'", bad);
        if (!streq(fmt, "csv") && !streq(fmt, "jsonl"))
                return fail(ret, 400, "format: expected csv or jsonl");
        store_page_t p;
        if ((why = page_parse(q, &p, EXPORT_MAX, EXPORT_MAX)))
                return fail(ret, 400, "%s", why);
        if (state && (p.state = node_state_from_string(state)) < 0)
                return fail(ret, 400, "state: expected active, reenrol or revoked");
        bool csv = streq(fmt, "csv");
        char *text = NULL;
        size_t len = 0, want = p.limit, done = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        if (csv)
                fputs(OPS_EXPORT_CSV_HEADER, f);
        char after[MSG_ID_MAX + 1] = "";
        if (p.after)
                snprintf(after, sizeof after, "%s", p.after);
        int r = 0;
        for (;;) {
                _cleanup_free_ store_node_t *list = NULL;
                size_t n = 0;
                p.after = after[0] ? after : NULL;
                p.limit = MIN(want - done, (size_t) EXPORT_PAGE);
                if ((r = store_node_page(q->store, &p, &list, &n)) < 0)
                        break;
                for (size_t i = 0; i < n && r >= 0; i++)
                        r = ops_node_export(f, &list[i], csv);
                done += n;
                if (n > 0)
                        snprintf(after, sizeof after, "%s", list[n - 1].node_id);
                if (r < 0 || n < p.limit || done >= want)
                        break;
        }
        if (fclose(f) != 0 && r == 0)
                r = -ENOMEM;
        if (r < 0) {
                free(text);
                return fail_store(ret, r, q);
        }
        *ret = (admin_response_t) { .status = 200, .body = text, .body_len = len,
                                    .content_type = csv ? "text/csv" : "application/jsonl" };
        /* a node ID is printable ASCII without spaces (ids_check_node_id): safe in a header */
        if (done == want && after[0] && id_is_valid(after, MSG_ID_MAX) && !(ret->next = strdup(after))) {
                admin_response_done(ret);
                return -ENOMEM;
        }
        return 0;
}

/* ---- targets ---- */

static int targets_list(request_t *q, admin_response_t *ret) {
        if (q->n_params)
                return fail(ret, 400, "unknown parameter '%s'", q->key[0]);
        _cleanup_free_ store_target_t *list = NULL;
        size_t n = 0;
        int r = store_target_list(q->store, &list, &n);
        if (r < 0)
                return fail_store(ret, r, q);
        store_page_t p = {};
        return respond_page(ret, ops_json_array(list, n, sizeof *list, ops_target_json), &p, n, NULL);
}

/* {"id", "pskID" + "psk" (hex)} or {"id", "certFingerprint"}. */
static int target_add(request_t *q, admin_response_t *ret) {
        int r = 0;
        json_t *j = body_json(q, ret, &r);
        if (!j)
                return r;
        const char *id = NULL, *psk_id = NULL, *psk = NULL, *fp = NULL, *why = NULL;
        char rule[128];
        store_target_t t = {};
        _cleanup_erase_(64) uint8_t key[MSG_KEY_MAX];
        size_t key_len = 0;
        if (json_unpack(j, "{s:s, s?s, s?s, s?s !}", "id", &id, "pskID", &psk_id, "psk", &psk, "certFingerprint", &fp) < 0)
                why = "expected {\"id\", \"pskID\" and \"psk\" (hex), or \"certFingerprint\"}";
        else if (ids_check_target_id(id, &why) < 0)
                ;
        else if (!!psk_id + !!fp != 1 || !!psk_id != !!psk)
                why = "give pskID with psk, or certFingerprint";
        else if (psk_id && !id_is_valid(psk_id, TLS_PSK_ID_MAX)) {
                snprintf(rule, sizeof rule, "pskID: expected 1..%u printable ASCII characters without spaces "
                         "(the TLS PSK identity limit)", TLS_PSK_ID_MAX);
                why = rule;
        } else if (psk && hex_key_parse(psk, strlen(psk), MSG_KEY_MIN, MSG_KEY_MAX, key, &key_len) < 0)
                why = "psk: expected 16..64 bytes as hex";
        else if (fp && ops_cert_fp_normalise(fp, t.cert_fp) < 0)
                why = "certFingerprint: expected a SHA-256 fingerprint (64 hex digits)";
        if (!why) {
                snprintf(t.id, sizeof t.id, "%s", id);
                snprintf(t.psk_id, sizeof t.psk_id, "%s", psk_id ?: "");
                t.created = (int64_t) time(NULL);
        }
        import_json_erase(j, "psk"); /* psk is unset when the unpack failed first */
        json_decref(j);
        if (why)
                return fail(ret, 422, "%s", why);
        char detail[MSG_ID_MAX + 16];
        credential_detail_of(t.psk_id, t.cert_fp, detail, sizeof detail);
        r = store_begin(q->store);
        if (r == 0) {
                r = store_target_add(q->store, &t, key_len ? key : NULL, key_len);
                if (r == 0)
                        r = store_audit(q->store, q->actor, "target-add", t.id, detail);
                if (r == 0)
                        r = store_commit(q->store);
                if (r < 0)
                        store_rollback(q->store);
        }
        if (r == -EEXIST || r == -EADDRINUSE)
                return fail(ret, 409, "target ID, PSK identity or certificate already in use");
        if (r < 0)
                return fail_store(ret, r, q);
        return admin_response_json(ret, 201, ops_target_json(&t));
}

static int target_remove(request_t *q, const char *id, admin_response_t *ret) {
        int r = store_begin(q->store);
        if (r == 0) {
                r = store_target_remove(q->store, id);
                if (r == 0)
                        r = store_audit(q->store, q->actor, "target-remove", id, NULL);
                if (r == 0)
                        r = store_commit(q->store);
                if (r < 0)
                        store_rollback(q->store);
        }
        if (r == -ENOENT)
                return fail(ret, 404, "no such target");
        if (r < 0)
                return fail_store(ret, r, q);
        return admin_response_json(ret, 200, json_pack("{s:s}", "removed", id));
}

/* ---- enrolments, audit ---- */

static int enrolments(request_t *q, admin_response_t *ret) {
        static const char *const allowed[] = { "limit", "after", "since", "state", "node", NULL };
        const char *bad = params_check(q, allowed), *why, *state = param(q, "state"), *node = param(q, "node");
        if (bad)
                return fail(ret, 400, "unknown parameter '%s'", bad);
        store_page_t p;
        if ((why = page_parse(q, &p, LIST_DEFAULT, LIST_MAX)))
                return fail(ret, 400, "%s", why);
        if (state && ops_enrolment_state_filter(state, &p) < 0)
                return fail(ret, 400, "state: expected active, expired, retired, revoked or deregistered");
        store_node_t n;
        int r = node ? store_node_get(q->store, node, &n) : 0;
        if (r == -ENOENT)
                return fail(ret, 404, "no such node");
        _cleanup_free_ store_enrolment_t *list = NULL;
        size_t k = 0;
        if (r == 0)
                r = store_enrolment_page(q->store, node, &p, &list, &k);
        if (r == -ENOENT)
                return fail(ret, 400, "after: no such enrolment");
        if (r < 0)
                return fail_store(ret, r, q);
        char last[STORE_ENROLMENT_CURSOR_MAX] = "";
        if (k)
                store_enrolment_cursor(&list[k - 1], last);
        return respond_page(ret, ops_json_array(list, k, sizeof *list, ops_enrolment_json), &p, k, k ? last : NULL);
}

static int audit(request_t *q, admin_response_t *ret) {
        static const char *const allowed[] = { "limit", "after", "since", "action", NULL };
        const char *bad = params_check(q, allowed), *why;
        if (bad)
                return fail(ret, 400, "unknown parameter '%s'", bad);
        store_page_t p;
        if ((why = page_parse(q, &p, LIST_DEFAULT, LIST_MAX)))
                return fail(ret, 400, "%s", why);
        unsigned long long id;
        if (p.after && (parse_uint(p.after, INT64_MAX, &id) < 0 || id == 0))
                return fail(ret, 400, "after: expected an audit row's id");
        p.after_id = p.after ? (int64_t) id : 0;
        p.after = NULL;
        p.action = param(q, "action");
        _cleanup_free_ store_audit_entry_t *list = NULL;
        size_t n = 0;
        int r = store_audit_page(q->store, &p, &list, &n);
        if (r < 0)
                return fail_store(ret, r, q);
        char last[24] = "";
        if (n)
                snprintf(last, sizeof last, "%" PRId64, list[n - 1].id);
        return respond_page(ret, ops_json_array(list, n, sizeof *list, ops_audit_json), &p, n, last);
}

/* ---- routing ---- */

static int method_not_allowed(admin_response_t *ret, const char *allow) {
        int r = fail(ret, 405, "allowed: %s", allow);
        if (r >= 0)
                ret->allow = allow;
        return r;
}

static int route(request_t *q, admin_response_t *ret) {
        const char *m = q->msg->method, *s0 = q->seg[0], *s1 = q->n_seg > 1 ? q->seg[1] : NULL;
        bool get = streq(m, "GET"), post = streq(m, "POST"), del = streq(m, "DELETE");
        if (streq(s0, "nodes") && q->n_seg == 1)
                return get ? nodes_list(q, ret) : post ? node_add(q, ret) : method_not_allowed(ret, "GET, POST");
        if (streq(s0, "nodes") && q->n_seg == 2)
                return get ? node_get(q, s1, ret)
                     : del ? node_change(q, s1, OPS_NODE_REMOVE, ret)
                           : method_not_allowed(ret, "GET, DELETE");
        if (streq(s0, "nodes") && q->n_seg == 3) {
                ops_node_change_t c = ops_node_change_from_string(q->seg[2]);
                if (c < 0 || c == OPS_NODE_REMOVE)
                        return fail(ret, 404, "no such operation");
                return post ? node_change(q, s1, c, ret) : method_not_allowed(ret, "POST");
        }
        if (q->n_seg == 1 && streq(s0, "import"))
                return post ? import(q, ret) : method_not_allowed(ret, "POST");
        if (q->n_seg == 1 && streq(s0, "export"))
                return get ? export(q, ret) : method_not_allowed(ret, "GET");
        if (streq(s0, "targets") && q->n_seg == 1)
                return get ? targets_list(q, ret) : post ? target_add(q, ret) : method_not_allowed(ret, "GET, POST");
        if (streq(s0, "targets") && q->n_seg == 2)
                return del ? target_remove(q, s1, ret) : method_not_allowed(ret, "DELETE");
        if (q->n_seg == 1 && streq(s0, "enrolments"))
                return get ? enrolments(q, ret) : method_not_allowed(ret, "GET");
        if (q->n_seg == 1 && streq(s0, "audit"))
                return get ? audit(q, ret) : method_not_allowed(ret, "GET");
        return fail(ret, 404, "no such resource");
}

/* A change an operator asked for and was refused (4xx) goes into the audit trail too, with
 * why; reads are in the journal only. A busy store (503) would not take the row either. */
static void audit_refused(const request_t *q, const admin_response_t *ret) {
        if (ret->status < 400 || ret->status >= 500)
                return;
        char subject[AUDIT_TARGET_MAX + 1], detail[STORE_AUDIT_DETAIL_MAX + 1];
        /* the target as the client sent it: printable, cut */
        text_copy(q->msg->target, TEXT_ASCII, subject, sizeof subject);
        json_t *j = ret->body ? json_loadb(ret->body, ret->body_len, 0, NULL) : NULL;
        /* why: an error's reason, or an import's first bad line */
        json_t *first = json_array_get(json_object_get(j, "errors"), 0);
        const char *reason = json_string_value(json_object_get(j, "reason"));
        if (reason || !first)
                snprintf(detail, sizeof detail, "%s -> %d: %s", q->msg->method, ret->status, reason ?: "-");
        else
                snprintf(detail, sizeof detail, "%s -> %d: line %" JSON_INTEGER_FORMAT ": %s", q->msg->method,
                         ret->status, json_integer_value(json_object_get(first, "line")),
                         json_string_value(json_object_get(first, "error")) ?: "-");
        json_decref(j);
        (void) store_audit(q->store, q->actor, "api-refused", subject, detail);
}

int admin_api_handle(const mef_config_t *cfg, mef_store_t *store, const char *actor, const http_msg_t *req,
                     admin_response_t *ret) {
        _cleanup_free_ request_t *q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        *q = (request_t) { .msg = req, .cfg = cfg, .store = store, .actor = actor };
        int status = request_parse(q);
        int r = status ? fail(ret, status, status == 404 ? "no such resource" : "malformed request target")
                       : route(q, ret);
        if (r >= 0 && !streq(req->method, "GET"))
                audit_refused(q, ret);
        return r;
}

/* SPDX-License-Identifier: MIT */
/* The JSON of the MEF's rows, as the CLI's --json and the admin API show them: never a key. */
#include "mef/ops.h"
#include "util/text.h"
#include "util/util.h"

void ops_time_format(int64_t t, char out[32]) {
        if (t <= 0)
                snprintf(out, 32, "-");
        else
                time_format_iso((time_t) t, out);
}

json_t *ops_jstr(const char *s) {
        json_t *j = json_string(s ?: "");
        if (j)
                return j;
        /* not UTF-8 (only possible in audit text): show it, mangled but safe */
        _cleanup_free_ char *p = text_dup(s, TEXT_ASCII);
        return p ? json_string(p) : NULL;
}

json_t *ops_jtime(int64_t t) {
        char buf[32];
        ops_time_format(t, buf);
        return json_string(buf);
}

void ops_jset(json_t *o, const char *k, json_t *v, bool *ok) {
        if (!v || json_object_set_new(o, k, v) < 0)
                *ok = false;
}

json_t *ops_json_array(const void *list, size_t n, size_t size, json_t *(*to_json)(const void *row)) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, to_json((const uint8_t *) list + i * size)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

/* o when every field went in, else NULL (o released). */
json_t *ops_jdone(json_t *o, bool ok) {
        if (ok)
                return o;
        json_decref(o);
        return NULL;
}

/* A node's or a target's credential: a PSK under psk_key (with its identity), else a certificate. */
static void set_auth(json_t *o, const char *psk_key, const char *psk_id, const char *cert_fp, bool *ok) {
        bool psk = psk_id[0];
        ops_jset(o, "auth", json_string(psk ? "psk" : "cert"), ok);
        if (psk)
                ops_jset(o, psk_key, json_string(psk_id), ok);
        else
                ops_jset(o, "certFingerprint", json_string(cert_fp), ok);
}

json_t *ops_node_json(const void *row) {
        const store_node_t *n = row;
        json_t *o = json_object(), *t = json_array();
        bool ok = o && t;
        for (size_t i = 0; ok && i < n->n_targets; i++)
                ok = json_array_append_new(t, json_string(n->targets[i])) == 0;
        if (!ok) {
                json_decref(t);
                return ops_jdone(o, false);
        }
        ops_jset(o, "nodeID", json_string(n->node_id), &ok);
        set_auth(o, "kpmID", n->kpm_id, n->cert_fp, &ok);
        ops_jset(o, "cseID", json_string(n->cse_id), &ok);
        ops_jset(o, "cseBase", json_string(n->cse_base), &ok);
        ops_jset(o, "targets", t, &ok);
        ops_jset(o, "poll", json_integer(n->poll), &ok);
        ops_jset(o, "lifetime", json_integer(n->lifetime), &ok);
        ops_jset(o, "ltkTransported", json_boolean(n->ltk_transported), &ok);
        ops_jset(o, "state", json_string(node_state_to_string(n->state)), &ok);
        ops_jset(o, "created", ops_jtime(n->created), &ok);
        ops_jset(o, "lastSeen", ops_jtime(n->last_seen), &ok);
        ops_jset(o, "statusChecks", json_integer((json_int_t) n->status_checks), &ok);
        return ops_jdone(o, ok);
}

json_t *ops_target_json(const void *row) {
        const store_target_t *t = row;
        json_t *o = json_object();
        bool ok = o != NULL;
        ops_jset(o, "id", json_string(t->id), &ok);
        set_auth(o, "pskID", t->psk_id, t->cert_fp, &ok);
        ops_jset(o, "created", ops_jtime(t->created), &ok);
        return ops_jdone(o, ok);
}

const char *ops_enrolment_state(const store_enrolment_t *e) {
        if (e->state == ENROLMENT_ACTIVE && e->exp <= (int64_t) time(NULL))
                return "expired";
        return enrolment_state_to_string(e->state);
}

json_t *ops_enrolment_json(const void *row) {
        const store_enrolment_t *e = row;
        json_t *o = json_object();
        bool ok = o != NULL;
        ops_jset(o, "keID", json_string(e->ke_id), &ok);
        ops_jset(o, "nodeID", json_string(e->node_id), &ok);
        ops_jset(o, "state", json_string(ops_enrolment_state(e)), &ok);
        ops_jset(o, "created", ops_jtime(e->created), &ok);
        ops_jset(o, "exp", ops_jtime(e->exp), &ok);
        ops_jset(o, "ltkTransported", json_boolean(e->ltk_transported), &ok);
        return ops_jdone(o, ok);
}

json_t *ops_audit_json(const void *row) {
        const store_audit_entry_t *a = row;
        json_t *o = json_object();
        bool ok = o != NULL;
        ops_jset(o, "id", json_integer(a->id), &ok);
        ops_jset(o, "time", ops_jtime(a->ts), &ok);
        ops_jset(o, "actor", ops_jstr(a->actor), &ok);
        ops_jset(o, "action", ops_jstr(a->action), &ok);
        ops_jset(o, "subject", ops_jstr(a->subject), &ok);
        ops_jset(o, "detail", ops_jstr(a->detail), &ok);
        return ops_jdone(o, ok);
}

/* SPDX-License-Identifier: MIT */
/* The JSON messages of protocol section 3: each message's parser and formatter over the JSON
 * layer of proto/msg-json.c, which says how secrets are kept out of jansson's buffers. */
#include <math.h>

#include "proto/msg-internal.h" /* jansson.h, util/util.h */
#include "util/string-table.h"
#include "util/text.h"

static const char *const state_names[_MSG_STATE_MAX] = {
        [MSG_STATE_ACTIVE] = "active",
        [MSG_STATE_REENROL] = "reenrol",
        [MSG_STATE_REVOKED] = "revoked",
};

DEFINE_STRING_TABLE(msg_state, msg_state_t, state_names)

/* ---- enrolment request ---- */

int msg_enrol_req_parse(const void *body, size_t len, msg_enrol_req_t *ret, char err[MSG_ERR_MAX]) {
        static const char path[] = "msce:enrolReq";
        _cleanup_json_ json_t *root = NULL;
        json_t *o, *loc = NULL;
        msg_enrol_req_t m = {};
        int r;

        if ((r = mj_load(body, len, path, &root, &o, err)) < 0 ||
            (r = mj_read_str(o, path, "nodeID", true, STR_NODE_ID, m.node_id, err)) < 0 ||
            (r = mj_get(o, path, "loc", false, J_OBJECT, &loc, err)) < 0)
                return r;
        if (r > 0) {
                static const char lpath[] = "msce:enrolReq.loc";
                if ((r = mj_read_number(loc, lpath, "lat", true, -90, 90, &m.loc.lat, err)) < 0 ||
                    (r = mj_read_number(loc, lpath, "lon", true, -180, 180, &m.loc.lon, err)) < 0 ||
                    (r = mj_read_number(loc, lpath, "alt", false, -HUGE_VAL, HUGE_VAL, &m.loc.alt, err)) < 0)
                        return r;
                m.loc.has_alt = r > 0;
                m.has_loc = true;
        }
        if ((r = mj_read_str(o, path, "prev", false, STR_KEID, m.prev, err)) < 0)
                return r;
        *ret = m;
        return 0;
}

/* Significant digits for jansson's "%.*g": the fewest that read back as exactly v (its
 * default of 17 turns 48.8584 into 48.858400000000003), raised when that avoids an exponent
 * (180.0, not 1.8e2). More digits than needed still read back exactly. */
static int real_digits(double v) {
        char buf[64];
        int p = 1;
        for (; p < 17; p++) {
                snprintf(buf, sizeof buf, "%.*g", p, v);
                if (strtod(buf, NULL) == v)
                        break;
        }
        for (int q = p; q <= 17; q++) {
                snprintf(buf, sizeof buf, "%.*g", q, v);
                if (!strchr(buf, 'e'))
                        return q;
        }
        return p;
}

static bool field_ok(const char *s, size_t size, str_kind_t k) {
        size_t n = strnlen(s, size);
        return n < size && !mj_str_problem(s, n, k);
}

int msg_enrol_req_format(const msg_enrol_req_t *m, char **ret) {
        int precision = 1;

        if (!m || !ret || !field_ok(m->node_id, sizeof m->node_id, STR_NODE_ID))
                return -EINVAL;
        if (m->prev[0] && !field_ok(m->prev, sizeof m->prev, STR_KEID))
                return -EINVAL;
        if (m->has_loc) {
                const msg_loc_t *l = &m->loc;
                if (!(l->lat >= -90 && l->lat <= 90 && l->lon >= -180 && l->lon <= 180) ||
                    (l->has_alt && !isfinite(l->alt)))
                        return -EINVAL;
                precision = MAX(real_digits(l->lat), real_digits(l->lon));
                if (l->has_alt)
                        precision = MAX(precision, real_digits(l->alt));
        }

        json_t *o = json_object();
        _cleanup_json_ json_t *root = mj_wrap("msce:enrolReq", o);
        if (!root)
                return -ENOMEM;
        if (mj_set(o, "nodeID", json_string(m->node_id)) < 0)
                return -ENOMEM;
        if (m->has_loc) {
                json_t *loc = json_object();
                if (mj_set(o, "loc", loc) < 0 || mj_set(loc, "lat", json_real(m->loc.lat)) < 0 ||
                    mj_set(loc, "lon", json_real(m->loc.lon)) < 0 ||
                    (m->loc.has_alt && mj_set(loc, "alt", json_real(m->loc.alt)) < 0))
                        return -ENOMEM;
        }
        if (m->prev[0] && mj_set(o, "prev", json_string(m->prev)) < 0)
                return -ENOMEM;
        return mj_dump_owned(root, precision, ret);
}

/* ---- profile ---- */

static int read_target(json_t *t, size_t i, msg_target_t *ret, char *err) {
        char path[64];
        snprintf(path, sizeof path, "msce:profile.targets[%zu]", i);
        if (!json_is_object(t))
                return mj_fail(err, path, "not an object");
        int r = mj_read_str(t, path, "id", true, STR_TARGET_ID, ret->id, err);
        if (r >= 0)
                r = mj_read_str(t, path, "kpsaID", true, STR_KPSA_ID, ret->kpsa_id, err);
        return r;
}

/* Each kpsaID names one key (the keyring's msce:kpsa:<kpsaID>, derived for one target): the
 * index of an earlier target with targets[i]'s kpsaID, or -1. */
static ssize_t kpsa_id_earlier(const msg_profile_t *m, size_t i) {
        for (size_t j = 0; j < i; j++)
                if (streq(m->targets[j].kpsa_id, m->targets[i].kpsa_id))
                        return (ssize_t) j;
        return -1;
}

int msg_profile_parse(const void *body, size_t len, msg_profile_t *ret, char err[MSG_ERR_MAX]) {
        static const char path[] = "msce:profile";
        _cleanup_json_ json_t *root = NULL;
        _cleanup_(msg_profile_wipe) msg_profile_t m = {};
        json_t *o, *targets = NULL;
        int r;

        if ((r = mj_load(body, len, path, &root, &o, err)) < 0 ||
            (r = mj_read_str(o, path, "cseID", true, STR_CSE_ID, m.cse_id, err)) < 0 ||
            (r = mj_read_str(o, path, "cseBase", true, STR_URI, m.cse_base, err)) < 0 ||
            (r = mj_read_str(o, path, "keID", true, STR_KEID, m.ke_id, err)) < 0 ||
            (r = mj_read_time(o, path, "exp", true, m.exp, &m.exp_t, err)) < 0 ||
            (r = mj_get(o, path, "targets", false, J_ARRAY, &targets, err)) < 0)
                return r;
        if (r > 0) {
                if (json_array_size(targets) > MSG_TARGETS_MAX) {
                        mj_fail_member(err, path, "targets", "too many (max %u)", MSG_TARGETS_MAX);
                        return -E2BIG; /* well formed, but more than this end holds: not a passing fault */
                }
                for (size_t i = 0; i < json_array_size(targets); i++) {
                        r = read_target(json_array_get(targets, i), i, &m.targets[i], err);
                        if (r < 0)
                                return r;
                }
                m.n_targets = json_array_size(targets);
                for (size_t i = 0; i < m.n_targets; i++) {
                        ssize_t j = kpsa_id_earlier(&m, i);
                        if (j >= 0) {
                                char tpath[64];
                                snprintf(tpath, sizeof tpath, "%s.targets[%zu]", path, i);
                                return mj_fail_member(err, tpath, "kpsaID", "the same as targets[%zd]'s", j);
                        }
                }
        }
        if ((r = mj_read_poll(o, path, &m.poll, &m.poll_clamped, &m.poll_sent, err)) < 0 ||
            (r = mj_read_key(o, path, "ltk", false, m.ltk, &m.ltk_len, err)) < 0)
                return r;
        m.has_ltk = r > 0;
        *ret = m;
        return 0;
}

/* The time string to send: s when set (validated), else t formatted. */
static int time_field(const char *s, time_t t, char out[16]) {
        time_t x;
        if (s[0]) {
                if (strnlen(s, 16) != 15)
                        return -EINVAL;
                memcpy(out, s, 16);
        } else
                time_format_basic(t, out);
        return time_parse_basic(out, &x) < 0 ? -EINVAL : 0;
}

/* Base64 of a key as a jansson string; our own copy is wiped here, jansson's by the caller's
 * mj_wipe_decrefp(). */
static json_t *key_string(const uint8_t *key, size_t len) {
        char *b64 = NULL;
        if (b64_encode(key, len, &b64) < 0)
                return NULL;
        json_t *v = json_string(b64);
        erase_free(b64, strlen(b64));
        return v;
}

int msg_profile_format(const msg_profile_t *m, char **ret) {
        char exp[16];

        if (!m || !ret || !field_ok(m->cse_id, sizeof m->cse_id, STR_CSE_ID) ||
            !field_ok(m->cse_base, sizeof m->cse_base, STR_URI) ||
            !field_ok(m->ke_id, sizeof m->ke_id, STR_KEID) || time_field(m->exp, m->exp_t, exp) < 0 ||
            m->n_targets > MSG_TARGETS_MAX || m->poll < MSG_POLL_MIN || m->poll > MSG_POLL_MAX ||
            (m->has_ltk && (m->ltk_len < MSG_KEY_MIN || m->ltk_len > MSG_KEY_MAX)))
                return -EINVAL;
        for (size_t i = 0; i < m->n_targets; i++)
                if (!field_ok(m->targets[i].id, sizeof m->targets[i].id, STR_TARGET_ID) ||
                    !field_ok(m->targets[i].kpsa_id, sizeof m->targets[i].kpsa_id, STR_KPSA_ID) ||
                    kpsa_id_earlier(m, i) >= 0)
                        return -EINVAL;

        json_t *o = json_object();
        _cleanup_json_ json_t *root = mj_wrap("msce:profile", o);
        if (!root)
                return -ENOMEM;
        if (mj_set(o, "cseID", json_string(m->cse_id)) < 0 || mj_set(o, "cseBase", json_string(m->cse_base)) < 0 ||
            mj_set(o, "keID", json_string(m->ke_id)) < 0 || mj_set(o, "exp", json_string(exp)) < 0)
                return -ENOMEM;
        if (m->n_targets > 0) {
                json_t *a = json_array();
                if (mj_set(o, "targets", a) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < m->n_targets; i++) {
                        json_t *t = json_object();
                        if (json_array_append_new(a, t) < 0 || mj_set(t, "id", json_string(m->targets[i].id)) < 0 ||
                            mj_set(t, "kpsaID", json_string(m->targets[i].kpsa_id)) < 0)
                                return -ENOMEM;
                }
        }
        if (mj_set(o, "poll", json_integer(m->poll)) < 0)
                return -ENOMEM;
        if (m->has_ltk && mj_set(o, "ltk", key_string(m->ltk, m->ltk_len)) < 0)
                return -ENOMEM;
        return mj_dump_owned(root, 0, ret);
}

void msg_profile_wipe(msg_profile_t *m) {
        if (m)
                explicit_bzero(m, sizeof *m);
}

/* ---- status ---- */

int msg_status_parse(const void *body, size_t len, msg_status_t *ret, char err[MSG_ERR_MAX]) {
        static const char path[] = "msce:status";
        _cleanup_json_ json_t *root = NULL;
        msg_status_t m = {};
        json_t *o = NULL, *v = NULL;
        int r;

        if ((r = mj_load(body, len, path, &root, &o, err)) < 0 ||
            (r = mj_read_str(o, path, "keID", true, STR_KEID, m.ke_id, err)) < 0 ||
            (r = mj_get(o, path, "state", true, J_STRING, &v, err)) < 0)
                return r;
        m.state = msg_state_from_string(json_string_value(v));
        if (m.state < 0)
                return mj_fail_member(err, path, "state", "not one of active, reenrol, revoked");
        if ((r = mj_read_time(o, path, "exp", true, m.exp, &m.exp_t, err)) < 0 ||
            (r = mj_read_poll(o, path, &m.poll, &m.poll_clamped, &m.poll_sent, err)) < 0)
                return r;
        *ret = m;
        return 0;
}

int msg_status_format(const msg_status_t *m, char **ret) {
        char exp[16];

        if (!m || !ret || !field_ok(m->ke_id, sizeof m->ke_id, STR_KEID) || !msg_state_to_string(m->state) ||
            time_field(m->exp, m->exp_t, exp) < 0 || m->poll < MSG_POLL_MIN || m->poll > MSG_POLL_MAX)
                return -EINVAL;

        json_t *o = json_object();
        _cleanup_json_ json_t *root = mj_wrap("msce:status", o);
        if (!root)
                return -ENOMEM;
        if (mj_set(o, "keID", json_string(m->ke_id)) < 0 ||
            mj_set(o, "state", json_string(msg_state_to_string(m->state))) < 0 ||
            mj_set(o, "exp", json_string(exp)) < 0 || mj_set(o, "poll", json_integer(m->poll)) < 0)
                return -ENOMEM;
        return mj_dump_owned(root, 0, ret);
}

/* ---- credential ---- */

int msg_credential_parse(const void *body, size_t len, msg_credential_t *ret, char err[MSG_ERR_MAX]) {
        static const char path[] = "msce:credential";
        _cleanup_json_ json_t *root = NULL;
        _cleanup_(msg_credential_wipe) msg_credential_t m = {};
        json_t *o, *status;
        int r;

        if ((r = mj_load(body, len, path, &root, &o, err)) < 0 ||
            (r = mj_get(o, path, "status", true, J_BOOLEAN, &status, err)) < 0)
                return r;
        m.status = json_is_true(status);
        /* On success (status true) everything is required; a failure may carry less. */
        if ((r = mj_read_key(o, path, "key", m.status, m.key, &m.key_len, err)) < 0 ||
            (r = mj_read_str(o, path, "enroleeID", m.status, STR_CSE_ID, m.enrolee_id, err)) < 0 ||
            (r = mj_read_time(o, path, "lifetime", m.status, m.lifetime, &m.lifetime_t, err)) < 0)
                return r;
        *ret = m;
        return 0;
}

int msg_credential_format(const msg_credential_t *m, char **ret) {
        char lifetime[16] = "";

        if (!m || !ret)
                return -EINVAL;
        bool has_key = m->status || m->key_len > 0;
        bool has_id = m->status || m->enrolee_id[0];
        bool has_lifetime = m->status || m->lifetime[0] || m->lifetime_t != 0;
        if ((has_key && (m->key_len < MSG_KEY_MIN || m->key_len > MSG_KEY_MAX)) ||
            (has_id && !field_ok(m->enrolee_id, sizeof m->enrolee_id, STR_CSE_ID)) ||
            (has_lifetime && time_field(m->lifetime, m->lifetime_t, lifetime) < 0))
                return -EINVAL;

        json_t *o = json_object();
        _cleanup_json_ json_t *root = mj_wrap("msce:credential", o);
        if (!root)
                return -ENOMEM;
        if (mj_set(o, "status", json_boolean(m->status)) < 0 ||
            (has_key && mj_set(o, "key", key_string(m->key, m->key_len)) < 0) ||
            (has_id && mj_set(o, "enroleeID", json_string(m->enrolee_id)) < 0) ||
            (has_lifetime && mj_set(o, "lifetime", json_string(lifetime)) < 0))
                return -ENOMEM;
        return mj_dump_owned(root, 0, ret);
}

void msg_credential_wipe(msg_credential_t *m) {
        if (m)
                explicit_bzero(m, sizeof *m);
}

/* ---- error bodies ---- */

int msg_dbg_format(const char *reason, char **ret) {
        if (!reason || !ret)
                return -EINVAL;
        json_t *v = json_string(reason);
        if (!v)
                return -EINVAL; /* not UTF-8 (or out of memory: jansson does not say) */
        _cleanup_json_ json_t *root = mj_wrap("m2m:dbg", v);
        if (!root)
                return -ENOMEM;
        return mj_dump_owned(root, 0, ret);
}

void msg_dbg_parse(const void *body, size_t len, char out[MSG_DBG_MAX]) {
        _cleanup_json_ json_t *root = NULL;
        json_error_t e;

        out[0] = 0;
        if (!body || mj_body_check(body, len, "m2m:dbg", NULL) < 0)
                return;
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        json_t *v = json_object_get(root, "m2m:dbg"); /* NULL when root is NULL or not an object */
        if (!json_is_string(v))
                return;
        /* Shown to operators: printable ASCII only, so no terminal escapes get through (no NUL
         * either: jansson refuses \u0000 without JSON_ALLOW_NUL). */
        text_copy(json_string_value(v), TEXT_ASCII, out, MSG_DBG_MAX);
}

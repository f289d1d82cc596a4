/* SPDX-License-Identifier: MIT */
/* The JSON messages of protocol section 3, with jansson.
 *
 * Secrets: ltk (profile) and key (credential) travel as base64 strings. When parsing, jansson
 * holds the string in its tree: before every json_decref() we overwrite all string values of
 * the tree in place (json_wipe_decrefp()). json_string_value() returns const only to keep callers
 * from breaking the string's length bookkeeping; the bytes are jansson's own malloc'd buffer,
 * so erasing them (same length, nothing hashed on values) is safe. What we cannot reach: the
 * lexer's token buffer (lex->saved_text, freed unwiped inside json_loadb) and partial trees
 * jansson frees itself when a parse fails. When formatting we dump with json_dumpb() into a
 * buffer we own, so the only copies are our base64 buffer and the jansson string (both
 * wiped here) and the returned text (the caller wipes it).
 *
 * err never echoes input values (jansson's error text quotes the token near the error, which
 * may be a key): it names the member and, for bad JSON, the position. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>

#include "proto/ids.h"
#include "proto/msg.h"
#include "util/string-table.h"
#include "util/util.h"

static const char *const state_names[_MSG_STATE_MAX] = {
        [MSG_STATE_ACTIVE] = "active",
        [MSG_STATE_REENROL] = "reenrol",
        [MSG_STATE_REVOKED] = "revoked",
};

DEFINE_STRING_TABLE(msg_state, msg_state_t, state_names)

/* ---- jansson helpers ---- */

/* Overwrite every string value of a tree (see the top of the file for why this is sound).
 * Recursion is bounded: parsed trees are at most MSG_DEPTH_MAX deep, built ones 4. */
static void json_wipe_strings(json_t *j) {
        if (json_is_string(j))
                erase((char *) json_string_value(j), json_string_length(j));
        else if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v)
                        json_wipe_strings(v);
        } else if (json_is_object(j)) {
                const char *k;
                json_t *v;
                json_object_foreach(j, k, v)
                        json_wipe_strings(v);
        }
}

static void json_wipe_decrefp(json_t **j) {
        if (!*j)
                return;
        json_wipe_strings(*j);
        json_decref(*j);
}
#define _cleanup_json_ _cleanup_(json_wipe_decrefp)

/* Compact dump into a buffer we own (json_dumps() would leave copies in jansson's growing
 * strbuffer). precision 0 = jansson's default of 17 significant digits. */
static int json_dump_owned(const json_t *root, int precision, char **ret) {
        size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(precision);
        size_t n = json_dumpb(root, NULL, 0, flags);
        if (n == 0)
                return -ENOMEM;
        char *buf = malloc(n + 1);
        if (!buf)
                return -ENOMEM;
        if (json_dumpb(root, buf, n, flags) != n) {
                erase(buf, n);
                free(buf);
                return -ENOMEM;
        }
        buf[n] = 0;
        *ret = buf;
        return 0;
}

/* json_object_set_new() consumes v even when it fails, and fails on v == NULL. */
static int set(json_t *o, const char *name, json_t *v) {
        return json_object_set_new(o, name, v) < 0 ? -ENOMEM : 0;
}

/* Wraps body as {"<wrapper>": body}, consuming body. */
static json_t *wrap(const char *wrapper, json_t *body) {
        json_t *root = json_object();
        if (!root) {
                json_decref(body);
                return NULL;
        }
        if (json_object_set_new(root, wrapper, body) < 0) {
                json_decref(root);
                return NULL;
        }
        return root;
}

/* ---- errors ---- */

_printf_(3, 4) static int fail(char *err, const char *path, const char *fmt, ...) {
        if (err) {
                va_list ap;
                int n = snprintf(err, MSG_ERR_MAX, "%s: ", path);
                if (n >= 0 && (size_t) n < MSG_ERR_MAX) {
                        va_start(ap, fmt);
                        vsnprintf(err + n, MSG_ERR_MAX - (size_t) n, fmt, ap);
                        va_end(ap);
                }
        }
        return -EBADMSG;
}

/* "path.member: reason" */
_printf_(4, 5) static int fail_member(char *err, const char *path, const char *name, const char *fmt, ...) {
        char p[MSG_ERR_MAX], reason[MSG_ERR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        snprintf(p, sizeof p, "%s.%s", path, name);
        return fail(err, p, "%s", reason);
}

static const char *json_error_describe(enum json_error_code c) {
        switch (c) {
        case json_error_invalid_utf8:
                return "invalid UTF-8";
        case json_error_premature_end_of_input:
                return "premature end of input";
        case json_error_end_of_input_expected:
                return "trailing data";
        case json_error_null_character:
        case json_error_null_byte_in_key:
                return "NUL character";
        case json_error_duplicate_key:
                return "duplicate member";
        case json_error_numeric_overflow:
                return "number out of range";
        case json_error_stack_overflow:
                return "nesting too deep";
        default:
                return "syntax error";
        }
}

/* ---- loading ---- */

/* Size and nesting limits before jansson sees the bytes (jansson 2.14 has no depth option;
 * its built-in limit is 2048). Brackets inside strings do not count; on invalid JSON the
 * count may be off, but jansson rejects such input anyway. */
static int body_check(const char *p, size_t len, const char *what, char *err) {
        if (len > MSG_BODY_MAX) {
                fail(err, what, "body too large (max %u bytes)", MSG_BODY_MAX);
                return -EMSGSIZE;
        }
        unsigned depth = 0;
        bool in_str = false, esc = false;
        for (size_t i = 0; i < len; i++) {
                char c = p[i];
                if (in_str) {
                        if (esc)
                                esc = false;
                        else if (c == '\\')
                                esc = true;
                        else if (c == '"')
                                in_str = false;
                } else if (c == '"')
                        in_str = true;
                else if (c == '{' || c == '[') {
                        if (++depth > MSG_DEPTH_MAX)
                                return fail(err, what, "nesting too deep (max %u)", MSG_DEPTH_MAX);
                } else if ((c == '}' || c == ']') && depth > 0)
                        depth--;
        }
        return 0;
}

/* Parses body into *ret_root (a JSON object) and points *ret_obj at root[wrapper], which must
 * be an object. */
static int load(const void *body, size_t len, const char *wrapper, json_t **ret_root, json_t **ret_obj,
                char *err) {
        if (err)
                err[0] = 0;
        if (!body) {
                body = "";
                len = 0;
        }
        int r = body_check(body, len, wrapper, err);
        if (r < 0)
                return r;

        json_error_t e;
        _cleanup_json_ json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!root) {
                enum json_error_code c = json_error_code(&e);
                if (c == json_error_out_of_memory)
                        return -ENOMEM;
                return fail(err, wrapper, "invalid JSON: %s at line %d column %d", json_error_describe(c),
                            e.line, e.column);
        }
        if (!json_is_object(root))
                return fail(err, wrapper, "body is not a JSON object");
        json_t *o = json_object_get(root, wrapper);
        if (!o)
                return fail(err, wrapper, "missing");
        if (!json_is_object(o))
                return fail(err, wrapper, "not an object");
        *ret_obj = o;
        *ret_root = TAKE_PTR(root);
        return 0;
}

/* ---- field readers: 0 absent (optional), 1 present, -EBADMSG ---- */

typedef enum str_kind {
        STR_NODE_ID,   /* M2M-Node-ID (proto/ids.h) */
        STR_CSE_ID,    /* SP-relative CSE-ID */
        STR_TARGET_ID, /* enrolment target ID */
        STR_KEID,      /* KeID */
        STR_KPSA_ID,   /* kpsaID */
        STR_URI,       /* cseBase */
} str_kind_t;

static size_t str_kind_max(str_kind_t k) {
        switch (k) {
        case STR_KEID:
        case STR_KPSA_ID:
                return MSG_KEID_MAX;
        case STR_URI:
                return MSG_URI_MAX;
        default:
                return MSG_ID_MAX;
        }
}

_Static_assert(MSG_ID_MAX == IDS_NODE_ID_MAX && MSG_ID_MAX == IDS_CSE_ID_MAX && MSG_ID_MAX == IDS_TARGET_ID_MAX,
               "one bound for the IDs");
_Static_assert(MSG_KEID_MAX == IDS_KE_ID_MAX && MSG_KEID_MAX == IDS_KPSA_ID_MAX, "one bound for KeID and kpsaID");
_Static_assert(MSG_URI_MAX == IDS_CSE_BASE_MAX, "one bound for cseBase");

/* Why s (n bytes) is not a valid value of kind k, or NULL. A static string, never the value. */
static const char *str_problem(const char *s, size_t n, str_kind_t k) {
        static int (*const check[])(const char *, const char **) = {
                [STR_NODE_ID] = ids_check_node_id,
                [STR_CSE_ID] = ids_check_cse_id,
                [STR_TARGET_ID] = ids_check_target_id,
                [STR_KEID] = ids_check_ke_id,
                [STR_KPSA_ID] = ids_check_kpsa_id,
                [STR_URI] = ids_check_cse_base,
        };
        const char *why = NULL;
        if (n == 0)
                return "empty";
        if (n > str_kind_max(k))
                return "too long";
        if (strlen(s) != n)
                return "contains a NUL character";
        return check[k](s, &why) < 0 ? why : NULL;
}

/* The JSON types a member may have, as a set of 1 << json_type. */
enum {
        J_STRING = 1u << JSON_STRING,
        J_INTEGER = 1u << JSON_INTEGER,
        J_NUMBER = J_INTEGER | 1u << JSON_REAL,
        J_BOOLEAN = 1u << JSON_TRUE | 1u << JSON_FALSE,
        J_OBJECT = 1u << JSON_OBJECT,
        J_ARRAY = 1u << JSON_ARRAY,
};

static const char *types_name(unsigned types) {
        return types == J_STRING ? "a string" : types == J_INTEGER ? "an integer" : types == J_NUMBER ? "a number"
               : types == J_BOOLEAN ? "a boolean" : types == J_OBJECT ? "an object" : "an array";
}

/* o[name], one of types, into *ret: 1; 0 when absent and not required; else -EBADMSG. */
static int get(json_t *o, const char *path, const char *name, bool required, unsigned types, json_t **ret,
               char *err) {
        json_t *v = json_object_get(o, name);
        if (!v && required)
                return fail_member(err, path, name, "missing");
        if (v && !(types & 1u << json_typeof(v)))
                return fail_member(err, path, name, "not %s", types_name(types));
        *ret = v;
        return !!v;
}

static int read_str(json_t *o, const char *path, const char *name, bool required, str_kind_t k, char *out,
                    char *err) {
        json_t *v;
        int r = get(o, path, name, required, J_STRING, &v, err);
        if (r <= 0)
                return r;
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        const char *why = str_problem(s, n, k);
        if (why && streq(why, "too long"))
                return fail_member(err, path, name, "too long (max %zu)", str_kind_max(k));
        if (why)
                return fail_member(err, path, name, "%s", why);
        memcpy(out, s, n + 1);
        return 1;
}

static int read_time(json_t *o, const char *path, const char *name, bool required, char out[16], time_t *ret_t,
                     char *err) {
        json_t *v;
        int r = get(o, path, name, required, J_STRING, &v, err);
        if (r <= 0)
                return r;
        time_t t;
        if (json_string_length(v) != 15 || time_parse_basic(json_string_value(v), &t) < 0)
                return fail_member(err, path, name, "not a UTC time YYYYMMDDTHHMMSS");
        memcpy(out, json_string_value(v), 16);
        *ret_t = t;
        return 1;
}

static int read_poll(json_t *o, const char *path, uint32_t *ret, char *err) {
        json_t *v = NULL;
        int r = get(o, path, "poll", false, J_INTEGER, &v, err);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = MSG_POLL_DEFAULT;
                return 0;
        }
        json_int_t p = json_integer_value(v);
        if (p < MSG_POLL_MIN || p > MSG_POLL_MAX)
                return fail_member(err, path, "poll", "out of range (%u..%u)", MSG_POLL_MIN, MSG_POLL_MAX);
        *ret = (uint32_t) p;
        return 1;
}

static int read_number(json_t *o, const char *path, const char *name, bool required, double lo, double hi,
                       double *ret, char *err) {
        json_t *v;
        int r = get(o, path, name, required, J_NUMBER, &v, err);
        if (r <= 0)
                return r;
        double d = json_number_value(v);
        if (!isfinite(d) || d < lo || d > hi)
                return fail_member(err, path, name, "out of range (%g..%g)", lo, hi);
        *ret = d;
        return 1;
}

static int read_bool(json_t *o, const char *path, const char *name, bool *ret, char *err) {
        json_t *v;
        int r = get(o, path, name, true, J_BOOLEAN, &v, err);
        if (r < 0)
                return r;
        *ret = json_is_true(v);
        return 1;
}

/* Decodes a base64 key straight into out; never puts the value in err. */
static int read_key(json_t *o, const char *path, const char *name, bool required, uint8_t out[MSG_KEY_MAX],
                    size_t *ret_len, char *err) {
        json_t *v;
        int r = get(o, path, name, required, J_STRING, &v, err);
        if (r <= 0)
                return r;
        size_t n = 0;
        r = b64_decode(json_string_value(v), json_string_length(v), out, MSG_KEY_MAX, &n);
        if (r == -ENOMEM)
                return r;
        if (r == -EMSGSIZE || (r == 0 && n < MSG_KEY_MIN)) {
                erase(out, MSG_KEY_MAX);
                return fail_member(err, path, name, "wrong length (%u..%u bytes)", MSG_KEY_MIN, MSG_KEY_MAX);
        }
        if (r < 0)
                return fail_member(err, path, name, "not valid base64");
        *ret_len = n;
        return 1;
}

/* ---- enrolment request ---- */

int msg_enrol_req_parse(const void *body, size_t len, msg_enrol_req_t *ret, char err[MSG_ERR_MAX]) {
        static const char path[] = "msce:enrolReq";
        _cleanup_json_ json_t *root = NULL;
        json_t *o, *loc = NULL;
        msg_enrol_req_t m = {};
        int r;

        r = load(body, len, path, &root, &o, err);
        if (r < 0)
                return r;
        r = read_str(o, path, "nodeID", true, STR_NODE_ID, m.node_id, err);
        if (r < 0)
                return r;
        r = get(o, path, "loc", false, J_OBJECT, &loc, err);
        if (r < 0)
                return r;
        if (r > 0) {
                static const char lpath[] = "msce:enrolReq.loc";
                r = read_number(loc, lpath, "lat", true, -90, 90, &m.loc.lat, err);
                if (r >= 0)
                        r = read_number(loc, lpath, "lon", true, -180, 180, &m.loc.lon, err);
                if (r >= 0)
                        r = read_number(loc, lpath, "alt", false, -HUGE_VAL, HUGE_VAL, &m.loc.alt, err);
                if (r < 0)
                        return r;
                m.loc.has_alt = r > 0;
                m.has_loc = true;
        }
        r = read_str(o, path, "prev", false, STR_KEID, m.prev, err);
        if (r < 0)
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
        return n < size && !str_problem(s, n, k);
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
        _cleanup_json_ json_t *root = wrap("msce:enrolReq", o);
        if (!root)
                return -ENOMEM;
        if (set(o, "nodeID", json_string(m->node_id)) < 0)
                return -ENOMEM;
        if (m->has_loc) {
                json_t *loc = json_object();
                if (set(o, "loc", loc) < 0 || set(loc, "lat", json_real(m->loc.lat)) < 0 ||
                    set(loc, "lon", json_real(m->loc.lon)) < 0 ||
                    (m->loc.has_alt && set(loc, "alt", json_real(m->loc.alt)) < 0))
                        return -ENOMEM;
        }
        if (m->prev[0] && set(o, "prev", json_string(m->prev)) < 0)
                return -ENOMEM;
        return json_dump_owned(root, precision, ret);
}

/* ---- profile ---- */

static int read_target(json_t *t, size_t i, msg_target_t *ret, char *err) {
        char path[64];
        snprintf(path, sizeof path, "msce:profile.targets[%zu]", i);
        if (!json_is_object(t))
                return fail(err, path, "not an object");
        int r = read_str(t, path, "id", true, STR_TARGET_ID, ret->id, err);
        if (r >= 0)
                r = read_str(t, path, "kpsaID", true, STR_KPSA_ID, ret->kpsa_id, err);
        return r;
}

int msg_profile_parse(const void *body, size_t len, msg_profile_t *ret, char err[MSG_ERR_MAX]) {
        static const char path[] = "msce:profile";
        _cleanup_json_ json_t *root = NULL;
        _cleanup_(msg_profile_wipe) msg_profile_t m = {};
        json_t *o, *targets = NULL;
        int r;

        r = load(body, len, path, &root, &o, err);
        if (r < 0)
                return r;
        if ((r = read_str(o, path, "cseID", true, STR_CSE_ID, m.cse_id, err)) < 0 ||
            (r = read_str(o, path, "cseBase", true, STR_URI, m.cse_base, err)) < 0 ||
            (r = read_str(o, path, "keID", true, STR_KEID, m.ke_id, err)) < 0 ||
            (r = read_time(o, path, "exp", true, m.exp, &m.exp_t, err)) < 0)
                return r;
        r = get(o, path, "targets", false, J_ARRAY, &targets, err);
        if (r < 0)
                return r;
        if (r > 0) {
                if (json_array_size(targets) > MSG_TARGETS_MAX)
                        return fail_member(err, path, "targets", "too many (max %u)", MSG_TARGETS_MAX);
                for (size_t i = 0; i < json_array_size(targets); i++) {
                        r = read_target(json_array_get(targets, i), i, &m.targets[i], err);
                        if (r < 0)
                                return r;
                }
                m.n_targets = json_array_size(targets);
        }
        if ((r = read_poll(o, path, &m.poll, err)) < 0)
                return r;
        r = read_key(o, path, "ltk", false, m.ltk, &m.ltk_len, err);
        if (r < 0)
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
 * json_wipe_decrefp(). */
static json_t *key_string(const uint8_t *key, size_t len) {
        char *b64 = NULL;
        if (b64_encode(key, len, &b64) < 0)
                return NULL;
        json_t *v = json_string(b64);
        erase(b64, strlen(b64));
        free(b64);
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
                    !field_ok(m->targets[i].kpsa_id, sizeof m->targets[i].kpsa_id, STR_KPSA_ID))
                        return -EINVAL;

        json_t *o = json_object();
        _cleanup_json_ json_t *root = wrap("msce:profile", o);
        if (!root)
                return -ENOMEM;
        if (set(o, "cseID", json_string(m->cse_id)) < 0 || set(o, "cseBase", json_string(m->cse_base)) < 0 ||
            set(o, "keID", json_string(m->ke_id)) < 0 || set(o, "exp", json_string(exp)) < 0)
                return -ENOMEM;
        if (m->n_targets > 0) {
                json_t *a = json_array();
                if (set(o, "targets", a) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < m->n_targets; i++) {
                        json_t *t = json_object();
                        if (json_array_append_new(a, t) < 0 || set(t, "id", json_string(m->targets[i].id)) < 0 ||
                            set(t, "kpsaID", json_string(m->targets[i].kpsa_id)) < 0)
                                return -ENOMEM;
                }
        }
        if (set(o, "poll", json_integer(m->poll)) < 0)
                return -ENOMEM;
        if (m->has_ltk && set(o, "ltk", key_string(m->ltk, m->ltk_len)) < 0)
                return -ENOMEM;
        return json_dump_owned(root, 0, ret);
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

        r = load(body, len, path, &root, &o, err);
        if (r < 0)
                return r;
        if ((r = read_str(o, path, "keID", true, STR_KEID, m.ke_id, err)) < 0 ||
            (r = get(o, path, "state", true, J_STRING, &v, err)) < 0)
                return r;
        m.state = msg_state_from_string(json_string_value(v));
        if (m.state < 0)
                return fail_member(err, path, "state", "not one of active, reenrol, revoked");
        if ((r = read_time(o, path, "exp", true, m.exp, &m.exp_t, err)) < 0 ||
            (r = read_poll(o, path, &m.poll, err)) < 0)
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
        _cleanup_json_ json_t *root = wrap("msce:status", o);
        if (!root)
                return -ENOMEM;
        if (set(o, "keID", json_string(m->ke_id)) < 0 ||
            set(o, "state", json_string(msg_state_to_string(m->state))) < 0 ||
            set(o, "exp", json_string(exp)) < 0 || set(o, "poll", json_integer(m->poll)) < 0)
                return -ENOMEM;
        return json_dump_owned(root, 0, ret);
}

/* ---- credential ---- */

int msg_credential_parse(const void *body, size_t len, msg_credential_t *ret, char err[MSG_ERR_MAX]) {
        static const char path[] = "msce:credential";
        _cleanup_json_ json_t *root = NULL;
        _cleanup_(msg_credential_wipe) msg_credential_t m = {};
        json_t *o;
        int r;

        r = load(body, len, path, &root, &o, err);
        if (r < 0)
                return r;
        /* On success (status true) everything is required; a failure may carry less. */
        if ((r = read_bool(o, path, "status", &m.status, err)) < 0 ||
            (r = read_key(o, path, "key", m.status, m.key, &m.key_len, err)) < 0 ||
            (r = read_str(o, path, "enroleeID", m.status, STR_CSE_ID, m.enrolee_id, err)) < 0 ||
            (r = read_time(o, path, "lifetime", m.status, m.lifetime, &m.lifetime_t, err)) < 0)
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
        _cleanup_json_ json_t *root = wrap("msce:credential", o);
        if (!root)
                return -ENOMEM;
        if (set(o, "status", json_boolean(m->status)) < 0 ||
            (has_key && set(o, "key", key_string(m->key, m->key_len)) < 0) ||
            (has_id && set(o, "enroleeID", json_string(m->enrolee_id)) < 0) ||
            (has_lifetime && set(o, "lifetime", json_string(lifetime)) < 0))
                return -ENOMEM;
        return json_dump_owned(root, 0, ret);
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
        _cleanup_json_ json_t *root = wrap("m2m:dbg", v);
        if (!root)
                return -ENOMEM;
        return json_dump_owned(root, 0, ret);
}

void msg_dbg_parse(const void *body, size_t len, char out[MSG_DBG_MAX]) {
        _cleanup_json_ json_t *root = NULL;
        json_error_t e;

        out[0] = 0;
        if (!body || body_check(body, len, "m2m:dbg", NULL) < 0)
                return;
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        json_t *v = json_object_get(root, "m2m:dbg"); /* NULL when root is NULL or not an object */
        if (!json_is_string(v))
                return;
        /* Shown to operators: printable ASCII only, so no terminal escapes get through. */
        const char *s = json_string_value(v);
        size_t n = MIN(json_string_length(v), (size_t) MSG_DBG_MAX - 1);
        for (size_t i = 0; i < n; i++)
                out[i] = (unsigned char) s[i] >= 0x20 && (unsigned char) s[i] <= 0x7e ? s[i] : '?';
        out[n] = 0;
}

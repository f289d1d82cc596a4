/* SPDX-License-Identifier: MIT */
/* The JSON layer of the messages (proto/msg-internal.h), with jansson.
 *
 * Secrets: ltk (profile) and key (credential) travel as base64 strings. When parsing, jansson
 * holds the string in its tree: before every json_decref() we overwrite all string values of
 * the tree in place (mj_wipe_decrefp()). json_string_value() returns const only to keep callers
 * from breaking the string's length bookkeeping; the bytes are jansson's own malloc'd buffer,
 * so erasing them (same length, nothing hashed on values) is safe. What we cannot reach (the
 * lexer's token buffer, partial trees after a failed parse) the program's jansson allocator
 * wipes when it is freed (util/json-alloc.h). When formatting we dump with json_dumpb() into a
 * buffer we own, so the only copies are our base64 buffer and the jansson string (both
 * wiped here) and the returned text (the caller wipes it).
 *
 * err never echoes input values (jansson's error text quotes the token near the error, which
 * may be a key): it names the member and, for bad JSON, the position. */
#include <math.h>
#include <stdarg.h>

#include "proto/ids.h"
#include "proto/msg-internal.h" /* jansson.h, util/util.h */

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

void mj_wipe_decrefp(json_t **j) {
        if (!*j)
                return;
        json_wipe_strings(*j);
        json_decref(*j);
}

/* Compact dump into a buffer we own (json_dumps() would leave copies in jansson's growing
 * strbuffer). precision 0 = jansson's default of 17 significant digits. Most messages fit the
 * first guess, so they are serialised once; a larger one is serialised again at its size. */
#define DUMP_GUESS 2048u
int mj_dump_owned(const json_t *root, int precision, char **ret) {
        size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(precision);
        size_t cap = DUMP_GUESS;
        for (int pass = 0; pass < 2; pass++) {
                char *buf = malloc(cap);
                if (!buf)
                        return -ENOMEM;
                size_t n = json_dumpb(root, buf, cap - 1, flags);
                if (n > 0 && n < cap) {
                        buf[n] = 0;
                        *ret = buf;
                        return 0;
                }
                erase_free(buf, cap);
                if (n == 0)
                        return -ENOMEM;
                cap = n + 1;
        }
        return -ENOMEM;
}

/* json_object_set_new() consumes v even when it fails, and fails on v or o NULL. */
int mj_set(json_t *o, const char *name, json_t *v) {
        return json_object_set_new(o, name, v) < 0 ? -ENOMEM : 0;
}

/* Wraps body as {"<wrapper>": body}, consuming body whatever fails (mj_set()). */
json_t *mj_wrap(const char *wrapper, json_t *body) {
        json_t *root = json_object();
        if (mj_set(root, wrapper, body) < 0) {
                json_decref(root);
                return NULL;
        }
        return root;
}

/* ---- errors ---- */

_printf_(3, 4) int mj_fail(char *err, const char *path, const char *fmt, ...) {
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
_printf_(4, 5) int mj_fail_member(char *err, const char *path, const char *name, const char *fmt, ...) {
        char p[MSG_ERR_MAX], reason[MSG_ERR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        snprintf(p, sizeof p, "%s.%s", path, name);
        return mj_fail(err, p, "%s", reason);
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
int mj_body_check(const char *p, size_t len, const char *what, char *err) {
        if (len > MSG_BODY_MAX) {
                mj_fail(err, what, "body too large (max %u bytes)", MSG_BODY_MAX);
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
                                return mj_fail(err, what, "nesting too deep (max %u)", MSG_DEPTH_MAX);
                } else if ((c == '}' || c == ']') && depth > 0)
                        depth--;
        }
        return 0;
}

/* Parses body into *ret_root (a JSON object) and points *ret_obj at root[wrapper], which must
 * be an object. */
int mj_load(const void *body, size_t len, const char *wrapper, json_t **ret_root, json_t **ret_obj,
                char *err) {
        if (err)
                err[0] = 0;
        if (!body) {
                body = "";
                len = 0;
        }
        int r = mj_body_check(body, len, wrapper, err);
        if (r < 0)
                return r;

        json_error_t e;
        _cleanup_json_ json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!root) {
                enum json_error_code c = json_error_code(&e);
                if (c == json_error_out_of_memory)
                        return -ENOMEM;
                return mj_fail(err, wrapper, "invalid JSON: %s at line %d column %d", json_error_describe(c),
                            e.line, e.column);
        }
        if (!json_is_object(root))
                return mj_fail(err, wrapper, "body is not a JSON object");
        json_t *o = json_object_get(root, wrapper);
        if (!o)
                return mj_fail(err, wrapper, "missing");
        if (!json_is_object(o))
                return mj_fail(err, wrapper, "not an object");
        *ret_obj = o;
        *ret_root = TAKE_PTR(root);
        return 0;
}

/* ---- field readers: 0 absent (optional), 1 present, -EBADMSG ---- */

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
const char *mj_str_problem(const char *s, size_t n, str_kind_t k) {
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

static const char *types_name(unsigned types) {
        return types == J_STRING ? "a string" : types == J_INTEGER ? "an integer" : types == J_NUMBER ? "a number"
               : types == J_BOOLEAN ? "a boolean" : types == J_OBJECT ? "an object" : "an array";
}

/* o[name], one of types, into *ret: 1; 0 when absent and not required; else -EBADMSG. */
int mj_get(json_t *o, const char *path, const char *name, bool required, unsigned types, json_t **ret,
               char *err) {
        json_t *v = json_object_get(o, name);
        if (!v && required)
                return mj_fail_member(err, path, name, "missing");
        if (v && !(types & 1u << json_typeof(v)))
                return mj_fail_member(err, path, name, "not %s", types_name(types));
        *ret = v;
        return !!v;
}

int mj_read_str(json_t *o, const char *path, const char *name, bool required, str_kind_t k, char *out,
                    char *err) {
        json_t *v;
        int r = mj_get(o, path, name, required, J_STRING, &v, err);
        if (r <= 0)
                return r;
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        const char *why = mj_str_problem(s, n, k);
        if (why && streq(why, "too long"))
                return mj_fail_member(err, path, name, "too long (max %zu)", str_kind_max(k));
        if (why)
                return mj_fail_member(err, path, name, "%s", why);
        memcpy(out, s, n + 1);
        return 1;
}

int mj_read_time(json_t *o, const char *path, const char *name, bool required, char out[16], time_t *ret_t,
                     char *err) {
        json_t *v;
        int r = mj_get(o, path, name, required, J_STRING, &v, err);
        if (r <= 0)
                return r;
        time_t t;
        if (json_string_length(v) != 15 || time_parse_basic(json_string_value(v), &t) < 0)
                return mj_fail_member(err, path, name, "not a UTC time YYYYMMDDTHHMMSS");
        memcpy(out, json_string_value(v), 16);
        *ret_t = t;
        return 1;
}

int mj_read_poll(json_t *o, const char *path, uint32_t *ret, bool *ret_clamped, int64_t *ret_sent, char *err) {
        json_t *v = NULL;
        int r = mj_get(o, path, "poll", false, J_INTEGER, &v, err);
        if (r < 0)
                return r;
        *ret_clamped = false;
        *ret_sent = 0;
        if (r == 0) {
                *ret = MSG_POLL_DEFAULT;
                return 0;
        }
        /* The protocol sets no range: a value outside ours is the MEF's to choose, and refusing
         * the whole message for it would cost a well-formed profile (docs/protocol.md). */
        json_int_t p = json_integer_value(v);
        *ret = p < MSG_POLL_MIN ? MSG_POLL_MIN : p > MSG_POLL_MAX ? MSG_POLL_MAX : (uint32_t) p;
        *ret_clamped = (json_int_t) *ret != p;
        *ret_sent = *ret_clamped ? (int64_t) p : 0;
        return 1;
}

int mj_read_number(json_t *o, const char *path, const char *name, bool required, double lo, double hi,
                       double *ret, char *err) {
        json_t *v;
        int r = mj_get(o, path, name, required, J_NUMBER, &v, err);
        if (r <= 0)
                return r;
        double d = json_number_value(v);
        if (!isfinite(d) || d < lo || d > hi)
                return mj_fail_member(err, path, name, "out of range (%g..%g)", lo, hi);
        *ret = d;
        return 1;
}

/* Decodes a base64 key straight into out; never puts the value in err. */
int mj_read_key(json_t *o, const char *path, const char *name, bool required, uint8_t out[MSG_KEY_MAX],
                    size_t *ret_len, char *err) {
        json_t *v;
        int r = mj_get(o, path, name, required, J_STRING, &v, err);
        if (r <= 0)
                return r;
        size_t n = 0;
        r = b64_decode(json_string_value(v), json_string_length(v), out, MSG_KEY_MAX, &n);
        if (r == -ENOMEM)
                return r;
        if (r == -EMSGSIZE || (r == 0 && n < MSG_KEY_MIN)) {
                erase(out, MSG_KEY_MAX);
                return mj_fail_member(err, path, name, "wrong length (%u..%u bytes)", MSG_KEY_MIN, MSG_KEY_MAX);
        }
        if (r < 0)
                return mj_fail_member(err, path, name, "not valid base64");
        *ret_len = n;
        return 1;
}


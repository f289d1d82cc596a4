/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <string.h>

#include "keys/profile.h"
#include "proto/ids.h"

typedef int (*id_check_t)(const char *s, const char **ret_why);

/* NUL-terminated s passes check (NULL: no grammar beyond the printable rule). */
static bool id_ok(const char *s, id_check_t check) {
        return !check || check(s, NULL) == 0;
}

/* Printable ASCII 0x21..0x7e, min..max bytes, no NUL: the rule for every string field. */
static bool field_is_valid(const char *s, size_t len, size_t min, size_t max) {
        if (len < min || len > max)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x21 || (unsigned char) s[i] > 0x7e)
                        return false;
        return true;
}

static bool exp_is_valid(const char *s, size_t len, time_t *ret) {
        char buf[16];
        time_t t;
        if (len != 15)
                return false;
        memcpy(buf, s, 15);
        buf[15] = 0;
        if (time_parse_basic(buf, &t) < 0)
                return false;
        if (ret)
                *ret = t;
        return true;
}

static bool cstr_is_valid(const char *s, size_t size, size_t min, size_t max) {
        size_t n = strnlen(s, size);
        return n < size && field_is_valid(s, n, min, max);
}

int profile_keys(const stored_profile_t *p, profile_keys_t *ret) {
        ret->n = 0;
        ret->keys[ret->n++] = (keyring_key_t) { .name = KEYRING_LTK, .data = p->ltk, .len = p->ltk_len };
        for (size_t i = 0; i < p->n_targets && i < MSG_TARGETS_MAX; i++) {
                snprintf(ret->names[i], sizeof ret->names[i], KEYRING_KPSA "%s", p->targets[i].kpsa_id);
                ret->keys[ret->n++] = (keyring_key_t) { .name = ret->names[i], .data = p->targets[i].kpsa, .len = PROFILE_KPSA_LEN };
        }
        return p->n_targets > MSG_TARGETS_MAX ? -EINVAL : keyring_keys_validate(ret->keys, ret->n);
}

/* Also what keyring_install() would refuse: checked before anything is sealed. */
static int profile_validate(const stored_profile_t *p) {
        if (!cstr_is_valid(p->node_id, sizeof p->node_id, 1, MSG_ID_MAX) ||
            !cstr_is_valid(p->mef_uri, sizeof p->mef_uri, 1, MSG_URI_MAX) ||
            !cstr_is_valid(p->cse_id, sizeof p->cse_id, 1, MSG_ID_MAX) ||
            !cstr_is_valid(p->cse_base, sizeof p->cse_base, 1, MSG_URI_MAX) ||
            !cstr_is_valid(p->ke_id, sizeof p->ke_id, 1, MSG_KEID_MAX) || !id_ok(p->node_id, ids_check_node_id) ||
            !id_ok(p->cse_id, ids_check_cse_id) || !id_ok(p->cse_base, ids_check_cse_base) ||
            !id_ok(p->ke_id, ids_check_ke_id) ||
            strnlen(p->exp, sizeof p->exp) != 15 || !exp_is_valid(p->exp, 15, NULL))
                return -EINVAL;
        if (p->poll < MSG_POLL_MIN || p->poll > MSG_POLL_MAX || p->obtained < 0)
                return -EINVAL;
        if (p->ltk_len < MSG_KEY_MIN || p->ltk_len > MSG_KEY_MAX || p->n_targets > MSG_TARGETS_MAX)
                return -EINVAL;
        for (size_t i = 0; i < p->n_targets; i++)
                if (!cstr_is_valid(p->targets[i].id, sizeof p->targets[i].id, 1, MSG_ID_MAX) ||
                    !cstr_is_valid(p->targets[i].kpsa_id, sizeof p->targets[i].kpsa_id, 1, MSG_KEID_MAX) ||
                    !id_ok(p->targets[i].id, ids_check_target_id) || !id_ok(p->targets[i].kpsa_id, ids_check_kpsa_id))
                        return -EINVAL;
        profile_keys_t k;
        return profile_keys(p, &k);
}

int profile_from_msg(const msg_profile_t *m, const char *node_id, const char *mef_uri, time_t obtained,
                     const uint8_t *ltk, size_t ltk_len, stored_profile_t *ret) {
        if (!m || !node_id || !mef_uri || !ltk || !ret)
                return -EINVAL;
        if (strlen(node_id) > MSG_ID_MAX || strlen(mef_uri) > MSG_URI_MAX || ltk_len < MSG_KEY_MIN ||
            ltk_len > MSG_KEY_MAX || m->n_targets > MSG_TARGETS_MAX)
                return -EINVAL;

        _cleanup_(stored_profile_wipe) stored_profile_t p = { 0 };
        snprintf(p.node_id, sizeof p.node_id, "%s", node_id);
        snprintf(p.mef_uri, sizeof p.mef_uri, "%s", mef_uri);
        snprintf(p.cse_id, sizeof p.cse_id, "%s", m->cse_id);
        snprintf(p.cse_base, sizeof p.cse_base, "%s", m->cse_base);
        snprintf(p.ke_id, sizeof p.ke_id, "%s", m->ke_id);
        if (m->exp[0])
                snprintf(p.exp, sizeof p.exp, "%s", m->exp);
        else
                time_format_basic(m->exp_t, p.exp);
        if (!exp_is_valid(p.exp, strlen(p.exp), &p.exp_t))
                return -EINVAL;
        p.poll = m->poll;
        p.obtained = obtained;
        memcpy(p.ltk, ltk, ltk_len);
        p.ltk_len = ltk_len;
        p.n_targets = m->n_targets;
        for (size_t i = 0; i < m->n_targets; i++) {
                snprintf(p.targets[i].id, sizeof p.targets[i].id, "%s", m->targets[i].id);
                snprintf(p.targets[i].kpsa_id, sizeof p.targets[i].kpsa_id, "%s", m->targets[i].kpsa_id);
        }
        int r = profile_validate(&p);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

/* Writer over a buffer sized by PROFILE_SERIALIZED_MAX: bounds are checked anyway. */
typedef struct writer {
        uint8_t *buf;
        size_t size, off;
} writer_t;

static void put(writer_t *w, const void *data, size_t n) {
        if (w->off > w->size || n > w->size - w->off) {
                w->off = SIZE_MAX; /* poisoned: reported once at the end */
                return;
        }
        memcpy(w->buf + w->off, data, n);
        w->off += n;
}

static void put_be(writer_t *w, uint64_t v, size_t n) {
        uint8_t b[8];
        for (size_t i = 0; i < n; i++)
                b[i] = (uint8_t) (v >> (8 * (n - 1 - i)));
        put(w, b, n);
}

static void put_str(writer_t *w, const char *s) {
        size_t n = strlen(s);
        put_be(w, n, 2);
        put(w, s, n);
}

int profile_serialize(const stored_profile_t *p, secret_t *ret) {
        if (!p || !ret)
                return -EINVAL;
        int r = profile_validate(p);
        if (r < 0)
                return r;

        _cleanup_secret_ secret_t s = { .data = malloc(PROFILE_SERIALIZED_MAX), .len = PROFILE_SERIALIZED_MAX };
        if (!s.data)
                return -ENOMEM;
        writer_t w = { .buf = s.data, .size = s.len };
        put_be(&w, PROFILE_VERSION, 1);
        put_str(&w, p->node_id);
        put_str(&w, p->mef_uri);
        put_str(&w, p->cse_id);
        put_str(&w, p->cse_base);
        put_str(&w, p->ke_id);
        put_str(&w, p->exp);
        put_be(&w, p->poll, 4);
        put_be(&w, (uint64_t) p->obtained, 8);
        put_be(&w, p->ltk_len, 1);
        put(&w, p->ltk, p->ltk_len);
        put_be(&w, p->n_targets, 1);
        for (size_t i = 0; i < p->n_targets; i++) {
                put_str(&w, p->targets[i].id);
                put_str(&w, p->targets[i].kpsa_id);
                put(&w, p->targets[i].kpsa, PROFILE_KPSA_LEN);
        }
        if (w.off > w.size)
                return -EINVAL; /* cannot happen with validated fields */
        s.len = w.off; /* bytes past off were never written: nothing secret there */
        *ret = s;
        s.data = NULL;
        s.len = 0;
        return 0;
}

typedef struct reader {
        const uint8_t *buf;
        size_t len, off;
} reader_t;

static bool get(reader_t *r, void *out, size_t n) {
        if (n > r->len - r->off)
                return false;
        memcpy(out, r->buf + r->off, n);
        r->off += n;
        return true;
}

static bool get_be(reader_t *r, size_t n, uint64_t *ret) {
        uint8_t b[8];
        uint64_t v = 0;
        if (!get(r, b, n))
                return false;
        for (size_t i = 0; i < n; i++)
                v = v << 8 | b[i];
        *ret = v;
        return true;
}

/* A str field into out (size max+1), checked against min..max, the character rule and, when
 * check is set, the identifier grammar (proto/ids.h). */
static bool get_str(reader_t *r, char *out, size_t min, size_t max, id_check_t check) {
        uint64_t n;
        if (!get_be(r, 2, &n) || n < min || n > max || n > r->len - r->off)
                return false;
        if (!field_is_valid((const char *) r->buf + r->off, n, min, max))
                return false;
        memcpy(out, r->buf + r->off, n);
        out[n] = 0;
        r->off += n;
        return id_ok(out, check);
}

int profile_parse(const uint8_t *buf, size_t len, stored_profile_t *ret) {
        if (!ret || (!buf && len))
                return -EINVAL;
        if (len > PROFILE_SERIALIZED_MAX)
                return -EBADMSG;

        _cleanup_(stored_profile_wipe) stored_profile_t p = { 0 };
        reader_t rd = { .buf = buf, .len = len };
        uint64_t v;

        if (!get_be(&rd, 1, &v) || v != PROFILE_VERSION)
                return -EBADMSG;
        if (!get_str(&rd, p.node_id, 1, MSG_ID_MAX, ids_check_node_id) || !get_str(&rd, p.mef_uri, 1, MSG_URI_MAX, NULL) ||
            !get_str(&rd, p.cse_id, 1, MSG_ID_MAX, ids_check_cse_id) ||
            !get_str(&rd, p.cse_base, 1, MSG_URI_MAX, ids_check_cse_base) ||
            !get_str(&rd, p.ke_id, 1, MSG_KEID_MAX, ids_check_ke_id) || !get_str(&rd, p.exp, 15, 15, NULL) ||
            !exp_is_valid(p.exp, 15, &p.exp_t))
                return -EBADMSG;
        if (!get_be(&rd, 4, &v) || v < MSG_POLL_MIN || v > MSG_POLL_MAX)
                return -EBADMSG;
        p.poll = (uint32_t) v;
        if (!get_be(&rd, 8, &v) || v > INT64_MAX)
                return -EBADMSG;
        p.obtained = (time_t) v;
        if (!get_be(&rd, 1, &v) || v < MSG_KEY_MIN || v > MSG_KEY_MAX || !get(&rd, p.ltk, v))
                return -EBADMSG;
        p.ltk_len = v;
        if (!get_be(&rd, 1, &v) || v > MSG_TARGETS_MAX)
                return -EBADMSG;
        p.n_targets = v;
        for (size_t i = 0; i < p.n_targets; i++)
                if (!get_str(&rd, p.targets[i].id, 1, MSG_ID_MAX, ids_check_target_id) ||
                    !get_str(&rd, p.targets[i].kpsa_id, 1, MSG_KEID_MAX, ids_check_kpsa_id) ||
                    !get(&rd, p.targets[i].kpsa, PROFILE_KPSA_LEN))
                        return -EBADMSG;
        if (rd.off != rd.len)
                return -EBADMSG; /* trailing bytes */
        /* one an older agent sealed and could never install: re-enrolled, not retried forever */
        profile_keys_t k;
        if (profile_keys(&p, &k) < 0)
                return -EBADMSG;

        *ret = p;
        return 0;
}

void stored_profile_wipe(stored_profile_t *p) {
        if (p)
                erase(p, sizeof *p);
}

bool profile_is_expired(const stored_profile_t *p, time_t now) {
        time_t exp;
        /* The string is authoritative (exp_t may be unset in a hand-built profile); an
         * unreadable expiry counts as expired. */
        if (!p || strnlen(p->exp, sizeof p->exp) != 15 || !exp_is_valid(p->exp, 15, &exp))
                return true;
        return now >= exp;
}

/* SPDX-License-Identifier: MIT */
/* Runs every message parser on the input. Whatever parses must format, parse again to the
 * same fields, and format to the same text (abort() otherwise); whatever fails must say why
 * in a terminated err. */
#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_err(int r, const char *err) {
        if (r == -ENOMEM)
                return;
        if (r != -EBADMSG && r != -EMSGSIZE && r != -E2BIG) /* -E2BIG: more targets than a profile holds */
                abort();
        if (strnlen(err, MSG_ERR_MAX) >= MSG_ERR_MAX || err[0] == 0)
                abort();
}

/* The first and second formatting must agree byte for byte. */
static void same_text(char *a, char *b) {
        if (!a || !b || !streq(a, b))
                abort();
        erase(a, strlen(a));
        erase(b, strlen(b));
        free(a);
        free(b);
}

/* The round trip of one message type (functions prefix_parse and prefix_format): the input
 * parsed into a; when it parses, a formatted and parsed again into b, same_fields checked, b
 * formatted to the same text. */
#define round_trip(prefix, a, b, data, size, same_fields)                                        \
        do {                                                                                      \
                char err[MSG_ERR_MAX], *j1 = NULL, *j2 = NULL;                                    \
                int r = prefix##_parse(data, size, &(a), err);                                    \
                if (r < 0) {                                                                      \
                        check_err(r, err);                                                        \
                        break;                                                                    \
                }                                                                                 \
                if (prefix##_format(&(a), &j1) < 0 || prefix##_parse(j1, strlen(j1), &(b), err) < 0) \
                        abort();                                                                  \
                if (!(same_fields))                                                               \
                        abort();                                                                  \
                if (prefix##_format(&(b), &j2) < 0)                                               \
                        abort();                                                                  \
                same_text(j1, j2);                                                                \
        } while (0)

static bool same_enrol_req(const msg_enrol_req_t *a, const msg_enrol_req_t *b) {
        if (!streq(a->node_id, b->node_id) || a->has_loc != b->has_loc || !streq(a->prev, b->prev))
                return false;
        return !a->has_loc || (a->loc.lat == b->loc.lat && a->loc.lon == b->loc.lon &&
                               a->loc.has_alt == b->loc.has_alt && (!a->loc.has_alt || a->loc.alt == b->loc.alt));
}

static bool same_profile(const msg_profile_t *a, const msg_profile_t *b) {
        if (!streq(a->cse_id, b->cse_id) || !streq(a->cse_base, b->cse_base) || !streq(a->ke_id, b->ke_id) ||
            !streq(a->exp, b->exp) || a->exp_t != b->exp_t || a->n_targets != b->n_targets || a->poll != b->poll ||
            a->has_ltk != b->has_ltk || a->ltk_len != b->ltk_len || memcmp(a->ltk, b->ltk, a->ltk_len) != 0)
                return false;
        for (size_t i = 0; i < a->n_targets; i++)
                if (!streq(a->targets[i].id, b->targets[i].id) || !streq(a->targets[i].kpsa_id, b->targets[i].kpsa_id))
                        return false;
        return true;
}

static bool same_status(const msg_status_t *a, const msg_status_t *b) {
        return streq(a->ke_id, b->ke_id) && a->state == b->state && streq(a->exp, b->exp) && a->exp_t == b->exp_t &&
               a->poll == b->poll;
}

static bool same_credential(const msg_credential_t *a, const msg_credential_t *b) {
        return a->status == b->status && a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0 &&
               streq(a->enrolee_id, b->enrolee_id) && streq(a->lifetime, b->lifetime) &&
               a->lifetime_t == b->lifetime_t;
}

static void fuzz_messages(const uint8_t *data, size_t size) {
        msg_enrol_req_t e1, e2;
        round_trip(msg_enrol_req, e1, e2, data, size, same_enrol_req(&e1, &e2));
        _cleanup_(msg_profile_wipe) msg_profile_t p1 = {}, p2 = {};
        round_trip(msg_profile, p1, p2, data, size, same_profile(&p1, &p2));
        msg_status_t s1, s2;
        round_trip(msg_status, s1, s2, data, size, same_status(&s1, &s2));
        _cleanup_(msg_credential_wipe) msg_credential_t c1 = {}, c2 = {};
        round_trip(msg_credential, c1, c2, data, size, same_credential(&c1, &c2));
}

static void fuzz_dbg(const uint8_t *data, size_t size) {
        char a[MSG_DBG_MAX], b[MSG_DBG_MAX], *json = NULL;
        msg_dbg_parse(data, size, a);
        size_t n = strnlen(a, MSG_DBG_MAX);
        if (n >= MSG_DBG_MAX)
                abort();
        for (size_t i = 0; i < n; i++)
                if (a[i] < 0x20 || a[i] > 0x7e)
                        abort();
        if (n == 0)
                return;
        if (msg_dbg_format(a, &json) < 0)
                abort();
        msg_dbg_parse(json, strlen(json), b);
        free(json);
        if (!streq(a, b))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        fuzz_messages(data, size);
        fuzz_dbg(data, size);
        return 0;
}

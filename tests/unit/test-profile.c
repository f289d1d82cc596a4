/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>

#include "keys/kdf.h"
#include "keys/profile.h"
#include "tests/unit/profile-example.h"
#include "util/util.h"

static void assert_same(const stored_profile_t *a, const stored_profile_t *b) {
        cr_assert_str_eq(a->node_id, b->node_id);
        cr_assert_str_eq(a->mef_uri, b->mef_uri);
        cr_assert_str_eq(a->cse_id, b->cse_id);
        cr_assert_str_eq(a->cse_base, b->cse_base);
        cr_assert_str_eq(a->ke_id, b->ke_id);
        cr_assert_str_eq(a->exp, b->exp);
        cr_assert_eq(a->poll, b->poll);
        cr_assert_eq(a->obtained, b->obtained);
        cr_assert_eq(a->ltk_len, b->ltk_len);
        cr_assert_arr_eq(a->ltk, b->ltk, a->ltk_len);
        cr_assert_eq(a->n_targets, b->n_targets);
        for (size_t i = 0; i < a->n_targets; i++) {
                cr_assert_str_eq(a->targets[i].id, b->targets[i].id);
                cr_assert_str_eq(a->targets[i].kpsa_id, b->targets[i].kpsa_id);
                cr_assert_arr_eq(a->targets[i].kpsa, b->targets[i].kpsa, PROFILE_KPSA_LEN);
        }
}

/* p: profile_example() with n_targets targets, and s: p serialized */
static void serialized_example(stored_profile_t *p, size_t n_targets, secret_t *s) {
        profile_example(p, n_targets);
        cr_assert_eq(profile_serialize(p, s), 0);
}

Test(profile, round_trip) {
        for (size_t n = 0; n <= MSG_TARGETS_MAX; n += 4) {
                stored_profile_t p, q;
                _cleanup_secret_ secret_t s = { 0 };
                serialized_example(&p, n, &s);
                cr_assert_eq(profile_parse(s.data, s.len, &q), 0);
                assert_same(&p, &q);
                time_t exp;
                cr_assert_eq(time_parse_basic("20271127T203000", &exp), 0);
                cr_assert_eq(q.exp_t, exp);
                /* Serializing the parsed copy gives the same bytes: one encoding per profile. */
                _cleanup_secret_ secret_t s2 = { 0 };
                cr_assert_eq(profile_serialize(&q, &s2), 0);
                cr_assert_eq(s2.len, s.len);
                cr_assert_arr_eq(s2.data, s.data, s.len);
        }
}

Test(profile, layout_starts_as_documented) {
        stored_profile_t p;
        _cleanup_secret_ secret_t s = { 0 };
        serialized_example(&p, 1, &s);
        cr_assert_eq(s.data[0], PROFILE_VERSION);
        size_t n = strlen(p.node_id);
        cr_assert_eq(s.data[1], n >> 8);
        cr_assert_eq(s.data[2], n & 0xff);
        cr_assert_arr_eq(s.data + 3, p.node_id, n);
        /* the last 32 bytes are the last target's Kpsa */
        cr_assert_arr_eq(s.data + s.len - 32, p.targets[0].kpsa, 32);
}

Test(profile, every_truncation_rejected) {
        stored_profile_t p, q;
        _cleanup_secret_ secret_t s = { 0 };
        serialized_example(&p, 3, &s);
        for (size_t i = 0; i < s.len; i++) {
                uint8_t *copy = malloc(i ? i : 1); /* exact size for ASan */
                memcpy(copy, s.data, i);
                memset(&q, 0x5a, sizeof q);
                cr_assert_eq(profile_parse(copy, i, &q), -EBADMSG, "prefix of %zu bytes", i);
                /* ret untouched on failure */
                cr_assert_eq(((uint8_t *) &q)[0], 0x5a);
                free(copy);
        }
}

Test(profile, trailing_bytes_rejected) {
        stored_profile_t p, q;
        _cleanup_secret_ secret_t s = { 0 };
        serialized_example(&p, 2, &s);
        uint8_t *b = malloc(s.len + 1);
        memcpy(b, s.data, s.len);
        b[s.len] = 0;
        cr_assert_eq(profile_parse(b, s.len + 1, &q), -EBADMSG);
        cr_assert_eq(profile_parse(b, s.len, &q), 0);
        free(b);
}

Test(profile, wrong_version_rejected) {
        stored_profile_t p, q;
        _cleanup_secret_ secret_t s = { 0 };
        serialized_example(&p, 0, &s);
        s.data[0] = 2;
        cr_assert_eq(profile_parse(s.data, s.len, &q), -EBADMSG);
        s.data[0] = 0;
        cr_assert_eq(profile_parse(s.data, s.len, &q), -EBADMSG);
        cr_assert_eq(profile_parse(NULL, 0, &q), -EBADMSG);
}

/* Change one field in place on a serialized buffer: parse must reject it. */
Test(profile, bad_field_values_rejected) {
        stored_profile_t p, q;
        _cleanup_secret_ secret_t s = { 0 };
        serialized_example(&p, 1, &s);
        /* a control character in node_id */
        s.data[3] = '\n';
        cr_assert_eq(profile_parse(s.data, s.len, &q), -EBADMSG);
        s.data[3] = 0;
        cr_assert_eq(profile_parse(s.data, s.len, &q), -EBADMSG);
        s.data[3] = (uint8_t) p.node_id[0];
        cr_assert_eq(profile_parse(s.data, s.len, &q), 0);
        /* a zero node_id length */
        s.data[1] = 0;
        s.data[2] = 0;
        cr_assert_eq(profile_parse(s.data, s.len, &q), -EBADMSG);
}

Test(profile, serialize_checks_limits) {
        stored_profile_t p;
        _cleanup_secret_ secret_t s = { 0 };

        profile_example(&p, 1);
        p.ltk_len = MSG_KEY_MIN - 1;
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);
        p.ltk_len = MSG_KEY_MAX + 1;
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);
        p.ltk_len = MSG_KEY_MIN;
        cr_assert_eq(profile_serialize(&p, &s), 0);
        secret_done(&s);

        profile_example(&p, 1);
        p.n_targets = MSG_TARGETS_MAX + 1;
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);

        profile_example(&p, 1);
        p.poll = MSG_POLL_MIN - 1;
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);
        p.poll = MSG_POLL_MAX + 1;
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);

        profile_example(&p, 1);
        strcpy(p.exp, "20270231T000000"); /* no such day */
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);
        strcpy(p.exp, "2027");
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);

        profile_example(&p, 1);
        p.cse_id[0] = 0;
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);

        profile_example(&p, 1);
        strcpy(p.targets[0].kpsa_id, "has space@x");
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);

        /* the identifier grammars (proto/ids.h): nothing a keyring name could misuse */
        static const struct {
                size_t off;
                const char *v;
        } bad[] = {
                { offsetof(stored_profile_t, cse_id), "mn-781" },
                { offsetof(stored_profile_t, cse_id), "/mn-$(id)`id`;reboot" },
                { offsetof(stored_profile_t, cse_base), "in.example.net" },
                { offsetof(stored_profile_t, ke_id), "3F2A@mef" },
                { offsetof(stored_profile_t, node_id), "../x" },
                { offsetof(stored_profile_t, targets[0].id), "/in-cse/../../x" },
                { offsetof(stored_profile_t, targets[0].kpsa_id), "../../../../etc/passwd@mef" },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                profile_example(&p, 1);
                strcpy((char *) &p + bad[i].off, bad[i].v);
                cr_assert_eq(profile_serialize(&p, &s), -EINVAL, "%s", bad[i].v);
        }

        profile_example(&p, 1);
        p.obtained = -1;
        cr_assert_eq(profile_serialize(&p, &s), -EINVAL);
        cr_assert_null(s.data);
}

/* A KeID (and kpsaID) of len characters: hex 'a's, '@', a 253-character host in labels of 63. */
static void long_id(char *out, size_t len) {
        size_t host = 253, rel = len - 1 - host;
        memset(out, 'a', len);
        out[rel] = '@';
        for (size_t i = 63; i < host - 1; i += 64)
                out[rel + 1 + i] = '.';
        out[len] = 0;
}

/* The parser holds the identifiers to their grammar too (a sealed profile of an older version,
 * or a tampered one, does not reach the keyring with them). */
Test(profile, parser_checks_identifiers) {
        static const char *const fields[] = { "/mn-cse-000123", "/target-0", "3f2a.1@mef.example.net",
                                              "urn:dev:ops:0004A3-MNGW-000123" };
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
                stored_profile_t p, q;
                _cleanup_secret_ secret_t s = { 0 };
                serialized_example(&p, 1, &s);
                cr_assert_eq(profile_parse(s.data, s.len, &q), 0);
                uint8_t *at = memmem(s.data, s.len, fields[i], strlen(fields[i]));
                cr_assert_not_null(at, "%s", fields[i]);
                at[0] = '.'; /* same length, printable: only the grammar is broken */
                cr_assert_eq(profile_parse(s.data, s.len, &q), -EBADMSG, "%s", fields[i]);
        }
}

Test(profile, maximal_profile_fits_bound) {
        stored_profile_t p, q;
        _cleanup_secret_ secret_t s = { 0 };
        profile_example(&p, MSG_TARGETS_MAX);
        memset(p.node_id, 'n', MSG_ID_MAX);
        p.node_id[MSG_ID_MAX] = 0;
        memset(p.mef_uri, 'u', MSG_URI_MAX);
        p.mef_uri[MSG_URI_MAX] = 0;
        memset(p.cse_id, 'c', MSG_ID_MAX);
        p.cse_id[0] = '/';
        p.cse_id[MSG_ID_MAX] = 0;
        memset(p.cse_base, 'b', MSG_URI_MAX);
        memcpy(p.cse_base, "https://b/", 10);
        p.cse_base[MSG_URI_MAX] = 0;
        long_id(p.ke_id, MSG_KEID_MAX);
        p.ltk_len = MSG_KEY_MAX;
        for (size_t i = 0; i < MSG_TARGETS_MAX; i++) {
                memset(p.targets[i].id, 'i', MSG_ID_MAX);
                p.targets[i].id[0] = '/';
                p.targets[i].id[MSG_ID_MAX] = 0;
                long_id(p.targets[i].kpsa_id, MSG_KEID_MAX);
                p.targets[i].kpsa_id[0] = "0123456789abcdef"[i]; /* one kpsaID per target */
        }
        cr_assert_eq(profile_serialize(&p, &s), 0);
        cr_assert_eq(s.len, PROFILE_SERIALIZED_MAX);
        cr_assert_eq(profile_parse(s.data, s.len, &q), 0);
        assert_same(&p, &q);
}

Test(profile, overlong_string_rejected_by_parser) {
        /* Hand-built: version, node_id with length MSG_ID_MAX + 1. */
        size_t len = 1 + 2 + MSG_ID_MAX + 1;
        uint8_t *b = malloc(len);
        b[0] = 1;
        b[1] = (uint8_t) ((MSG_ID_MAX + 1) >> 8);
        b[2] = (uint8_t) ((MSG_ID_MAX + 1) & 0xff);
        memset(b + 3, 'a', MSG_ID_MAX + 1);
        stored_profile_t q;
        cr_assert_eq(profile_parse(b, len, &q), -EBADMSG);
        free(b);
        /* and a buffer above the documented maximum is refused outright */
        uint8_t *big = calloc(1, PROFILE_SERIALIZED_MAX + 1);
        big[0] = 1;
        cr_assert_eq(profile_parse(big, PROFILE_SERIALIZED_MAX + 1, &q), -EBADMSG);
        free(big);
}

/* A received profile with two targets, the first's kpsaID "a@mef.example.net". */
static void msg_example(msg_profile_t *ret, const char *kpsa_id_1) {
        msg_profile_t m = { 0 };
        strcpy(m.cse_id, "/mn-cse-1");
        strcpy(m.cse_base, "https://in.example.net/~/in-cse");
        strcpy(m.ke_id, "00@mef.example.net");
        strcpy(m.exp, "20300101T000000");
        m.poll = 600;
        m.n_targets = 2;
        strcpy(m.targets[0].id, "/in-cse");
        strcpy(m.targets[0].kpsa_id, "a@mef.example.net");
        strcpy(m.targets[1].id, "/maf-01");
        snprintf(m.targets[1].kpsa_id, sizeof m.targets[1].kpsa_id, "%s", kpsa_id_1);
        *ret = m;
}

Test(profile, from_msg_derives_kpsa) {
        msg_profile_t m;
        msg_example(&m, "b@mef.example.net");
        uint8_t ltk[32];
        for (size_t i = 0; i < sizeof ltk; i++)
                ltk[i] = (uint8_t) i;

        stored_profile_t p;
        cr_assert_eq(profile_from_msg(&m, "node-1", "https://mef.example.net/msce", 1000, ltk, sizeof ltk, &p), 0);
        cr_assert_str_eq(p.node_id, "node-1");
        cr_assert_str_eq(p.cse_id, "/mn-cse-1");
        cr_assert_eq(p.obtained, 1000);
        cr_assert_arr_eq(p.ltk, ltk, sizeof ltk);
        /* the Kpsa are the enrolment's to derive (agent/enrol.c) */
        static const uint8_t zero[32];
        cr_assert_arr_eq(p.targets[0].kpsa, zero, 32);
        cr_assert_arr_eq(p.targets[1].kpsa, zero, 32);

        cr_assert_eq(profile_from_msg(&m, "", "https://mef.example.net/msce", 1000, ltk, sizeof ltk, &p), -EINVAL);
        cr_assert_eq(profile_from_msg(&m, "node-1", "https://mef.example.net/msce", 1000, ltk, 15, &p), -EINVAL);
}

/* Two targets with one kpsaID: keyring_install() would refuse them, so no step before it
 * (profile_from_msg, profile_serialize: before sealing) accepts them, nor does the parser. */
Test(profile, keys_the_keyring_refuses_are_refused) {
        stored_profile_t p, q;
        profile_keys_t k;
        profile_example(&p, 2);
        cr_assert_eq(profile_keys(&p, &k), 0);
        cr_assert_eq(k.n, 3);
        cr_assert_str_eq(k.keys[0].name, "ltk");
        cr_assert_str_eq(k.keys[2].name, "kpsa:3f2a.2@mef.example.net");
        cr_assert_eq(k.keys[2].data, p.targets[1].kpsa);

        strcpy(p.targets[1].kpsa_id, p.targets[0].kpsa_id);
        cr_assert_eq(profile_keys(&p, &k), -EINVAL);
        _cleanup_secret_ secret_t bad = { 0 };
        cr_assert_eq(profile_serialize(&p, &bad), -EINVAL);

        /* one an older agent sealed */
        _cleanup_secret_ secret_t s = { 0 };
        serialized_example(&p, 2, &s);
        uint8_t *id2 = memmem(s.data, s.len, "3f2a.2@", 7);
        cr_assert_not_null(id2);
        id2[5] = '1';
        cr_assert_eq(profile_parse(s.data, s.len, &q), -EBADMSG);

        msg_profile_t m;
        msg_example(&m, "a@mef.example.net"); /* targets[0]'s */
        uint8_t ltk[32] = { 0 };
        cr_assert_eq(profile_from_msg(&m, "node-1", "https://mef.example.net/msce", 1000, ltk, sizeof ltk, &q), -EINVAL);
}

Test(profile, expiry) {
        stored_profile_t p;
        profile_example(&p, 0);
        time_t exp;
        cr_assert_eq(time_parse_basic(p.exp, &exp), 0);
        cr_assert_not(profile_is_expired(&p, exp - 1));
        cr_assert(profile_is_expired(&p, exp));
        cr_assert(profile_is_expired(&p, exp + 1));
        strcpy(p.exp, "garbage");
        cr_assert(profile_is_expired(&p, 0));
        cr_assert(profile_is_expired(NULL, 0));
}

Test(profile, wipe) {
        stored_profile_t p;
        profile_example(&p, 2);
        stored_profile_wipe(&p);
        for (size_t i = 0; i < sizeof p.ltk; i++)
                cr_assert_eq(p.ltk[i], 0);
        for (size_t i = 0; i < PROFILE_KPSA_LEN; i++)
                cr_assert_eq(p.targets[1].kpsa[i], 0);
        stored_profile_wipe(NULL);
}

/* SPDX-License-Identifier: MIT */
/* worker_reply_parse(): what an exchange child sends back, accepted only in its exact shape.
 * Every buffer is allocated at its exact size, so a read past the end shows under ASan. */
#include <criterion/criterion.h>

#include "agent/worker.h"
#include "keys/profile.h"
#include "tests/unit/profile-example.h"
#include "util/util.h"

#define KEID "3f2a00112233445566778899aabbccdd@mef.example.net"

static exchange_info_t info_ok(void) {
        exchange_info_t i;
        memset(&i, 0, sizeof i);
        i.failure.outcome = OUTCOME_OK;
        i.http_status = 200;
        strcpy(i.tls_version, "TLSv1.3");
        strcpy(i.cipher, "TLS_AES_128_GCM_SHA256");
        return i;
}

static exchange_info_t info_fail(void) {
        exchange_info_t i = info_ok();
        i.failure.outcome = OUTCOME_REJECTED;
        i.http_status = 403;
        i.retry_after = 0;
        strcpy(i.failure.reason, "the MEF refused the credential");
        return i;
}

static msg_status_t status_ok(void) {
        msg_status_t s;
        memset(&s, 0, sizeof s);
        strcpy(s.ke_id, KEID);
        s.state = MSG_STATE_REENROL;
        strcpy(s.exp, "20271127T203000");
        cr_assert_eq(time_parse_basic(s.exp, &s.exp_t), 0);
        s.poll = 3600;
        return s;
}

/* A reply buffer of exactly info + extra (may be NULL/0). Caller frees. */
static uint8_t *reply(const exchange_info_t *i, const void *extra, size_t extra_len, size_t *ret_len) {
        size_t len = sizeof *i + extra_len;
        uint8_t *b = malloc(len);
        cr_assert_not_null(b);
        memcpy(b, i, sizeof *i);
        if (extra_len)
                memcpy(b + sizeof *i, extra, extra_len);
        *ret_len = len;
        return b;
}

/* Expect -EBADMSG and no output parameter written. */
static void assert_rejected(worker_op_t op, int result, const uint8_t *buf, size_t len, const char *what) {
        exchange_info_t i;
        msg_status_t s;
        stored_profile_t p;
        memset(&i, 0x5a, sizeof i);
        memset(&s, 0x5a, sizeof s);
        memset(&p, 0x5a, sizeof p);
        cr_assert_eq(worker_reply_parse(op, result, buf, len, &i, &s, &p), -EBADMSG, "%s", what);
        cr_assert_eq(((uint8_t *) &i)[0], 0x5a, "%s: info written", what);
        cr_assert_eq(((uint8_t *) &i)[sizeof i - 1], 0x5a, "%s: info written", what);
        cr_assert_eq(((uint8_t *) &s)[0], 0x5a, "%s: status written", what);
        cr_assert_eq(((uint8_t *) &p)[0], 0x5a, "%s: profile written", what);
}

static void assert_info_eq(const exchange_info_t *a, const exchange_info_t *b) {
        cr_assert_eq(a->failure.outcome, b->failure.outcome);
        cr_assert_eq(a->http_status, b->http_status);
        cr_assert_eq(a->retry_after, b->retry_after);
        cr_assert_str_eq(a->tls_version, b->tls_version);
        cr_assert_str_eq(a->cipher, b->cipher);
        cr_assert_str_eq(a->failure.reason, b->failure.reason);
}

/* ---- accepted ---- */

Test(worker, status_reply) {
        exchange_info_t in = info_ok(), out;
        msg_status_t st = status_ok(), got;
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, &st, sizeof st, &len);
        stored_profile_t p;
        memset(&p, 0x5a, sizeof p);
        cr_assert_eq(worker_reply_parse(WORKER_STATUS, 0, b, len, &out, &got, &p), 0);
        assert_info_eq(&out, &in);
        cr_assert_str_eq(got.ke_id, KEID);
        cr_assert_eq(got.state, MSG_STATE_REENROL);
        cr_assert_str_eq(got.exp, st.exp);
        cr_assert_eq(got.exp_t, st.exp_t);
        cr_assert_eq(got.poll, 3600);
        cr_assert_eq(((uint8_t *) &p)[0], 0x5a, "no profile for a status reply");

        /* poll 0 (none given) and the range ends pass */
        const uint32_t polls[] = { 0, MSG_POLL_MIN, MSG_POLL_MAX };
        for (size_t k = 0; k < ELEMENTSOF(polls); k++) {
                st.poll = polls[k];
                memcpy(b + sizeof in, &st, sizeof st);
                cr_assert_eq(worker_reply_parse(WORKER_STATUS, 0, b, len, &out, &got, NULL), 0, "poll %u", polls[k]);
                cr_assert_eq(got.poll, polls[k]);
        }
}

Test(worker, enrol_reply) {
        stored_profile_t p, got;
        profile_example(&p, 2);
        _cleanup_secret_ secret_t s = {};
        cr_assert_eq(profile_serialize(&p, &s), 0);
        exchange_info_t in = info_ok(), out;
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, s.data, s.len, &len);
        msg_status_t st;
        memset(&st, 0x5a, sizeof st);
        cr_assert_eq(worker_reply_parse(WORKER_ENROL, 0, b, len, &out, &st, &got), 0);
        assert_info_eq(&out, &in);
        cr_assert_eq(((uint8_t *) &st)[0], 0x5a, "no status for an enrol reply");
        cr_assert_str_eq(got.node_id, p.node_id);
        cr_assert_str_eq(got.mef_uri, p.mef_uri);
        cr_assert_str_eq(got.cse_id, p.cse_id);
        cr_assert_str_eq(got.cse_base, p.cse_base);
        cr_assert_str_eq(got.ke_id, p.ke_id);
        cr_assert_str_eq(got.exp, p.exp);
        cr_assert_eq(got.poll, p.poll);
        cr_assert_eq(got.obtained, p.obtained);
        cr_assert_eq(got.ltk_len, p.ltk_len);
        cr_assert_arr_eq(got.ltk, p.ltk, p.ltk_len);
        cr_assert_eq(got.n_targets, p.n_targets);
        for (size_t i = 0; i < p.n_targets; i++) {
                cr_assert_str_eq(got.targets[i].id, p.targets[i].id);
                cr_assert_str_eq(got.targets[i].kpsa_id, p.targets[i].kpsa_id);
                cr_assert_arr_eq(got.targets[i].kpsa, p.targets[i].kpsa, PROFILE_KPSA_LEN);
        }
        stored_profile_wipe(&got);
        explicit_bzero(b, len);
}

Test(worker, failure_reply) {
        exchange_info_t in = info_fail(), out;
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, NULL, 0, &len);
        for (int op = 0; op < _WORKER_OP_MAX; op++) {
                msg_status_t st;
                stored_profile_t p;
                memset(&st, 0x5a, sizeof st);
                memset(&p, 0x5a, sizeof p);
                cr_assert_eq(worker_reply_parse((worker_op_t) op, -EACCES, b, len, &out, &st, &p), 0, "op %d", op);
                assert_info_eq(&out, &in);
                cr_assert_eq(((uint8_t *) &st)[0], 0x5a);
                cr_assert_eq(((uint8_t *) &p)[0], 0x5a);
        }
        /* status and profile may be NULL for a failure */
        cr_assert_eq(worker_reply_parse(WORKER_ENROL, -ETIMEDOUT, b, len, &out, NULL, NULL), 0);
        /* a transient failure with a Retry-After */
        in.failure.outcome = OUTCOME_TRANSIENT;
        in.http_status = 503;
        in.retry_after = 120;
        memcpy(b, &in, sizeof in);
        cr_assert_eq(worker_reply_parse(WORKER_STATUS, -EBUSY, b, len, &out, NULL, NULL), 0);
        cr_assert_eq(out.retry_after, 120);
}

/* ---- rejected ---- */

Test(worker, too_short) {
        exchange_info_t in = info_fail();
        for (size_t n = 0; n < sizeof in; n += (n < 16 ? 1 : 97)) {
                uint8_t *b = malloc(n ? n : 1);
                memcpy(b, &in, n);
                assert_rejected(WORKER_ENROL, -EACCES, b, n, "short");
                free(b);
        }
        exchange_info_t i;
        cr_assert_eq(worker_reply_parse(WORKER_ENROL, -EACCES, NULL, 0, &i, NULL, NULL), -EBADMSG);
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, NULL, 0, &len);
        cr_assert_eq(worker_reply_parse(WORKER_ENROL, -EACCES, b, len, &i, NULL, NULL), 0);
        cr_assert_eq(worker_reply_parse(WORKER_ENROL, -EACCES, b, len, NULL, NULL, NULL), -EBADMSG, "no info");
}

Test(worker, trailing_bytes_after_failure) {
        exchange_info_t in = info_fail();
        uint8_t extra[1] = { 0 };
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, extra, sizeof extra, &len);
        assert_rejected(WORKER_ENROL, -EACCES, b, len, "one trailing byte, enrol");
        assert_rejected(WORKER_STATUS, -EACCES, b, len, "one trailing byte, status");
}

Test(worker, unterminated_strings) {
        for (int field = 0; field < 3; field++) {
                exchange_info_t in = info_fail();
                switch (field) {
                case 0:
                        memset(in.tls_version, 'A', sizeof in.tls_version);
                        break;
                case 1:
                        memset(in.cipher, 'B', sizeof in.cipher);
                        break;
                default:
                        memset(in.failure.reason, 'C', sizeof in.failure.reason);
                }
                size_t len;
                _cleanup_free_ uint8_t *b = reply(&in, NULL, 0, &len);
                assert_rejected(WORKER_STATUS, -EACCES, b, len, "unterminated string");
                /* the terminator in the last byte is enough */
                b[(field == 0 ? offsetof(exchange_info_t, tls_version) + sizeof in.tls_version
                   : field == 1 ? offsetof(exchange_info_t, cipher) + sizeof in.cipher
                                : offsetof(exchange_info_t, failure.reason) + sizeof in.failure.reason) - 1] = 0;
                exchange_info_t out;
                cr_assert_eq(worker_reply_parse(WORKER_STATUS, -EACCES, b, len, &out, NULL, NULL), 0, "field %d",
                             field);
        }
}

Test(worker, info_values_out_of_range) {
        struct {
                const char *what;
                int result;
        } cases[] = {
                { "outcome _OUTCOME_MAX", -EACCES },
                { "outcome ABSENT (custody's, never an exchange's)", -EACCES },
                { "outcome -1", -EACCES },
                { "outcome OK with result < 0", -EACCES },
                { "result 0 with outcome TRANSIENT", 0 },
                { "http_status 1000", -EACCES },
                { "http_status -1", -EACCES },
        };
        for (size_t k = 0; k < ELEMENTSOF(cases); k++) {
                exchange_info_t in = info_fail();
                switch (k) {
                case 0:
                        in.failure.outcome = _OUTCOME_MAX;
                        break;
                case 1:
                        in.failure.outcome = OUTCOME_ABSENT;
                        break;
                case 2:
                        in.failure.outcome = (outcome_t) -1;
                        break;
                case 3:
                        in.failure.outcome = OUTCOME_OK;
                        break;
                case 4:
                        in.failure.outcome = OUTCOME_TRANSIENT;
                        break;
                case 5:
                        in.http_status = 1000;
                        break;
                default:
                        in.http_status = -1;
                }
                size_t len;
                _cleanup_free_ uint8_t *b = reply(&in, NULL, 0, &len);
                for (int op = 0; op < _WORKER_OP_MAX; op++)
                        assert_rejected((worker_op_t) op, cases[k].result, b, len, cases[k].what);
        }
        /* the limits themselves pass */
        exchange_info_t in = info_fail(), out;
        in.http_status = 999;
        in.failure.outcome = OUTCOME_CONFIG;
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, NULL, 0, &len);
        cr_assert_eq(worker_reply_parse(WORKER_ENROL, -EPERM, b, len, &out, NULL, NULL), 0);
        /* the last class an exchange gives: a status check's 404, kept apart from a missing Kpm's -ENOENT */
        in.http_status = 404;
        in.failure.outcome = OUTCOME_UNKNOWN_KEID;
        _cleanup_free_ uint8_t *u = reply(&in, NULL, 0, &len);
        cr_assert_eq(worker_reply_parse(WORKER_STATUS, -ENOENT, u, len, &out, NULL, NULL), 0);
        cr_assert_eq(out.failure.outcome, OUTCOME_UNKNOWN_KEID);
}

Test(worker, result_and_op_out_of_range) {
        exchange_info_t in = info_fail();
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, NULL, 0, &len);
        assert_rejected(WORKER_ENROL, 1, b, len, "result > 0");
        assert_rejected(WORKER_ENROL, -4096, b, len, "result < -4095");
        assert_rejected(_WORKER_OP_MAX, -EACCES, b, len, "op _WORKER_OP_MAX");
        assert_rejected((worker_op_t) -1, -EACCES, b, len, "op -1");
        assert_rejected(_WORKER_OP_INVALID, -EACCES, b, len, "op invalid");

        /* result > 0 with an otherwise well-formed status reply (outcome not OK, as for a failure) */
        in.failure.outcome = OUTCOME_TRANSIENT;
        msg_status_t st = status_ok();
        _cleanup_free_ uint8_t *s = reply(&in, &st, sizeof st, &len);
        assert_rejected(WORKER_STATUS, 1, s, len, "result > 0 with a status");
}

static void assert_status_rejected(const msg_status_t *st, const char *what) {
        exchange_info_t in = info_ok();
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, st, sizeof *st, &len);
        assert_rejected(WORKER_STATUS, 0, b, len, what);
}

Test(worker, status_values) {
        msg_status_t st = status_ok();
        st.state = _MSG_STATE_MAX;
        assert_status_rejected(&st, "state _MSG_STATE_MAX");
        st.state = (msg_state_t) -1;
        assert_status_rejected(&st, "state -1");

        st = status_ok();
        memset(st.ke_id, 'a', sizeof st.ke_id);
        assert_status_rejected(&st, "unterminated ke_id");
        st = status_ok();
        strcpy(st.ke_id, "bad id@mef.example.net");
        assert_status_rejected(&st, "ke_id with a space");
        st.ke_id[0] = 0;
        assert_status_rejected(&st, "empty ke_id");
        st = status_ok();
        memset(st.exp, '1', sizeof st.exp);
        assert_status_rejected(&st, "unterminated exp");

        st = status_ok();
        st.poll = 5;
        assert_status_rejected(&st, "poll 5");
        st.poll = MSG_POLL_MIN - 1;
        assert_status_rejected(&st, "poll below the minimum");
        st.poll = MSG_POLL_MAX + 1;
        assert_status_rejected(&st, "poll above the maximum");

        /* and the unchanged one passes, so the cases above fail for their own reason */
        st = status_ok();
        exchange_info_t in = info_ok(), out;
        msg_status_t got;
        size_t len;
        _cleanup_free_ uint8_t *b = reply(&in, &st, sizeof st, &len);
        cr_assert_eq(worker_reply_parse(WORKER_STATUS, 0, b, len, &out, &got, NULL), 0);
}

Test(worker, status_wrong_size) {
        exchange_info_t in = info_ok();
        msg_status_t st = status_ok();
        uint8_t big[sizeof st + 1];
        memcpy(big, &st, sizeof st);
        big[sizeof st] = 0;
        size_t len;
        _cleanup_free_ uint8_t *shorter = reply(&in, &st, sizeof st - 1, &len);
        assert_rejected(WORKER_STATUS, 0, shorter, len, "status one byte short");
        _cleanup_free_ uint8_t *longer = reply(&in, big, sizeof big, &len);
        assert_rejected(WORKER_STATUS, 0, longer, len, "status one byte long");
        _cleanup_free_ uint8_t *none = reply(&in, NULL, 0, &len);
        assert_rejected(WORKER_STATUS, 0, none, len, "no status");
        /* the right size, but nowhere to put it */
        _cleanup_free_ uint8_t *ok = reply(&in, &st, sizeof st, &len);
        exchange_info_t out;
        cr_assert_eq(worker_reply_parse(WORKER_STATUS, 0, ok, len, &out, NULL, NULL), -EBADMSG);
}

Test(worker, enrol_bad_profile) {
        stored_profile_t p;
        profile_example(&p, 2);
        _cleanup_secret_ secret_t s = {};
        cr_assert_eq(profile_serialize(&p, &s), 0);
        exchange_info_t in = info_ok();
        size_t len;

        s.data[0] ^= 0x01; /* the version */
        _cleanup_free_ uint8_t *b = reply(&in, s.data, s.len, &len);
        assert_rejected(WORKER_ENROL, 0, b, len, "profile version flipped");
        s.data[0] ^= 0x01;

        _cleanup_free_ uint8_t *cut = reply(&in, s.data, s.len - 1, &len);
        assert_rejected(WORKER_ENROL, 0, cut, len, "profile truncated");

        _cleanup_free_ uint8_t *none = reply(&in, NULL, 0, &len);
        assert_rejected(WORKER_ENROL, 0, none, len, "no profile");

        uint8_t *longer = malloc(s.len + 1);
        memcpy(longer, s.data, s.len);
        longer[s.len] = 0;
        _cleanup_free_ uint8_t *trail = reply(&in, longer, s.len + 1, &len);
        free(longer);
        assert_rejected(WORKER_ENROL, 0, trail, len, "byte after the profile");

        /* a status-shaped payload for an enrol */
        msg_status_t st = status_ok();
        _cleanup_free_ uint8_t *wrong = reply(&in, &st, sizeof st, &len);
        assert_rejected(WORKER_ENROL, 0, wrong, len, "status for an enrol");

        /* the intact profile but nowhere to put it */
        _cleanup_free_ uint8_t *ok = reply(&in, s.data, s.len, &len);
        exchange_info_t out;
        cr_assert_eq(worker_reply_parse(WORKER_ENROL, 0, ok, len, &out, NULL, NULL), -EBADMSG);
        stored_profile_t got;
        cr_assert_eq(worker_reply_parse(WORKER_ENROL, 0, ok, len, &out, NULL, &got), 0);
        stored_profile_wipe(&got);
}

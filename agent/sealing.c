/* SPDX-License-Identifier: MIT */
/* Sealing through the crypto table, optionally in a child process (agent/sealing.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/crypto.h"
#include "agent/sealing.h"
#include "hw/tpm2-names.h"
#include "util/child.h"
#include "util/text.h"

_Static_assert(1 + PROFILE_SERIALIZED_MAX <= CHILD_PAYLOAD_MAX, "a profile fits in a child's reply");

typedef struct job {
        const seal_opts_t *o;
        const stored_profile_t *p; /* store */
} job_t;

#define TPM_RC_LEN 4u

/* A failure's reply: the TPM's response code (big-endian) when the TPM gave one, else nothing. */
static int child_failed(const crypto_ops_t *ops, int r, uint8_t *out, size_t *out_len) {
        uint32_t rc = ops->tpm2_last_rc();
        *out_len = 0;
        if (rc != 0) {
                for (unsigned i = 0; i < TPM_RC_LEN; i++)
                        out[i] = (uint8_t) (rc >> (8 * (TPM_RC_LEN - 1 - i)));
                *out_len = TPM_RC_LEN;
        }
        return r;
}

/* The crypto module's load error, as the worker's children send theirs: the daemon words the
 * failure without loading the module itself (agent/crypto.h: it maps no crypto library, and a
 * foreign module's constructors would run in it). At most LOAD_ERR_MAX printable ASCII bytes. */
#define LOAD_ERR_MAX 255u

static int child_load_failed(int r, const char *why, uint8_t *out, size_t *out_len) {
        char text[LOAD_ERR_MAX + 1];
        size_t n = strlen(text_copy(why, TEXT_ASCII, text, sizeof text)); /* dlerror() quotes a path: any bytes */
        memcpy(out, text, n);
        *out_len = n;
        return r;
}

/* In the child: seal j->p, or unseal (j->p NULL). The reply is the method byte, for an unseal
 * followed by the serialized profile; for a failure child_load_failed()'s or child_failed()'s. */
static int child_seal(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        job_t *j = userdata;
        const crypto_ops_t *ops;
        char why[LOAD_ERR_MAX + 1] = "";
        int r = crypto_ops_get(&ops, why, sizeof why);
        if (r < 0)
                return child_load_failed(r, why, out, out_len);
        seal_method_t m = SEAL_METHOD_AUTO;
        _cleanup_(stored_profile_wipe) stored_profile_t p = {};
        _cleanup_secret_ secret_t s = {}; /* a store's reply has no profile: s.len 0 */
        r = j->p ? ops->seal_store(j->o, j->p, &m) : ops->seal_load(j->o, &p, &m);
        if (r < 0)
                return child_failed(ops, r, out, out_len);
        if (!j->p && (r = profile_serialize(&p, &s)) < 0)
                return r;
        if (s.len + 1 > max)
                return -EOVERFLOW;
        out[0] = (uint8_t) m;
        if (s.len > 0)
                memcpy(out + 1, s.data, s.len);
        *out_len = s.len + 1;
        return 0;
}

/* The child's reply: the method byte, and for a load the serialized profile. */
static int reply_parse(bool load, const uint8_t *buf, size_t len, stored_profile_t *ret, seal_method_t *ret_method) {
        if (len < 1 || (buf[0] != SEAL_METHOD_TPM2 && buf[0] != SEAL_METHOD_HOST) || (load ? len < 2 : len != 1))
                return -EBADMSG;
        int r;
        if (load && (r = profile_parse(buf + 1, len - 1, ret)) < 0)
                return r;
        if (ret_method)
                *ret_method = (seal_method_t) buf[0];
        return 0;
}

/* ---- on an event loop ---- */

struct sealing {
        bool load;
        child_watch_t *watch;
        sealing_done_t done;
        void *userdata;
        int r;
        stored_profile_t profile; /* secret: a load's result */
        seal_method_t method;
        uint32_t tpm_rc; /* a failure's: the TPM's response code, 0 when none came */
        char load_err[LOAD_ERR_MAX + 1]; /* -ELIBACC/-ELIBBAD's: the child's words */
};

/* A failure's reply: the load error's text (checked: the child's bytes), or the TPM's code. */
static int failure_parse(sealing_t *s, int result, const uint8_t *buf, size_t len) {
        if (result == -ELIBACC || result == -ELIBBAD) {
                if (len < 1 || len > LOAD_ERR_MAX)
                        return -EBADMSG;
                for (size_t i = 0; i < len; i++)
                        if (buf[i] < 0x20 || buf[i] > 0x7e)
                                return -EBADMSG;
                memcpy(s->load_err, buf, len);
                s->load_err[len] = 0;
        } else if (len == TPM_RC_LEN)
                s->tpm_rc = (uint32_t) buf[0] << 24 | (uint32_t) buf[1] << 16 | (uint32_t) buf[2] << 8 | buf[3];
        return result;
}

static void on_child(child_watch_t *watch, int r, int result, const uint8_t *payload, size_t len, void *userdata) {
        sealing_t *s = userdata;
        if (r == 0)
                r = result < 0 ? failure_parse(s, result, payload, len)
                               : reply_parse(s->load, payload, len, &s->profile, &s->method);
        s->r = r;
        s->done(s, r, s->userdata); /* last: may free s */
}

int sealing_start(sd_event *e, const seal_opts_t *o, const stored_profile_t *p, sealing_done_t done, void *userdata,
                  sealing_t **ret) {
        if (!e || !o || !done || !ret)
                return -EINVAL;
        _cleanup_(sealing_freep) sealing_t *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        *s = (sealing_t) { .load = !p, .done = done, .userdata = userdata, .method = _SEAL_METHOD_INVALID };
        /* the child takes its copy of o and p when it is forked: they need not outlive this call */
        job_t j = { .o = o, .p = p };
        int r = child_watch_start(e, child_seal, &j, SEALING_TIMEOUT_MS * 1000ull, on_child, s, &s->watch);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

int sealing_result(sealing_t *s, stored_profile_t *ret, seal_method_t *ret_method, char *err, size_t err_size) {
        if (!s)
                return -EINVAL;
        if (s->r == -ELIBACC || s->r == -ELIBBAD) {
                snprintf(err, err_size, "%s", s->load_err);
        } else if (s->r < 0 && s->tpm_rc != 0)
                tpm2_rc_describe(s->tpm_rc, err, err_size);
        if (s->r < 0)
                return s->r;
        if (ret_method)
                *ret_method = s->method;
        if (s->load && ret) {
                *ret = s->profile;
                stored_profile_wipe(&s->profile);
        }
        return 0;
}

sealing_t *sealing_free(sealing_t *s) {
        if (!s)
                return NULL;
        s->watch = child_watch_free(s->watch);
        stored_profile_wipe(&s->profile);
        free(s);
        return NULL;
}

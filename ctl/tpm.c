/* SPDX-License-Identifier: MIT */
/* mscectl's TPM work in a child with a deadline (ctl/tpm.h). */
#include <errno.h>
#include <string.h>

#include "ctl/tpm.h"
#include "hw/tpm2.h"
#include "util/child.h"
#include "util/util.h"

_Static_assert(sizeof(ctl_sealed_t) <= CHILD_PAYLOAD_MAX, "a sealed profile's summary fits in a child's reply");

typedef struct probe_job {
        const char *tcti, *pcrs;
} probe_job_t;

/* The reply: tpm2_probe_pcrs()'s *ret_pcrs. */
static int child_probe(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        const probe_job_t *j = userdata;
        int pcrs = 0, r = tpm2_probe_pcrs(j->tcti, j->pcrs, &pcrs);
        if (max < sizeof pcrs)
                return -ENOBUFS;
        memcpy(out, &pcrs, sizeof pcrs);
        *out_len = sizeof pcrs;
        return r;
}

int ctl_tpm_probe(const char *tcti, const char *pcrs, int *ret_pcrs) {
        int p = 0;
        size_t n = 0;
        int r = child_run(child_probe, &(probe_job_t) { .tcti = tcti, .pcrs = pcrs }, (uint8_t *) &p, sizeof p, &n,
                          SEALING_TIMEOUT_MS);
        if (r == 0 && n != sizeof p)
                return -EMSGSIZE;
        if (r == 0)
                *ret_pcrs = p;
        return r;
}

/* The reply: a ctl_sealed_t, or for a failure tpm2_last_rc(). */
static int child_sealed(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        const seal_opts_t *o = userdata;
        _cleanup_(stored_profile_wipe) stored_profile_t p = {};
        ctl_sealed_t s = {};
        int r = seal_load(o, &p, &s.method);
        if (r < 0) {
                uint32_t rc = tpm2_last_rc();
                memcpy(out, &rc, sizeof rc);
                *out_len = sizeof rc;
                return r;
        }
        if (max < sizeof s)
                return -ENOBUFS;
        memcpy(s.node_id, p.node_id, sizeof s.node_id);
        memcpy(s.mef_uri, p.mef_uri, sizeof s.mef_uri);
        memcpy(s.ke_id, p.ke_id, sizeof s.ke_id);
        s.exp_t = p.exp_t;
        s.expired = profile_is_expired(&p, time(NULL));
        memcpy(out, &s, sizeof s);
        *out_len = sizeof s;
        return 0;
}

static bool terminated(const char *s, size_t size) {
        return memchr(s, 0, size) != NULL;
}

int ctl_sealed_read(const seal_opts_t *o, ctl_sealed_t *ret, uint32_t *ret_rc) {
        union {
                ctl_sealed_t s;
                uint32_t rc;
        } reply = {};
        size_t n = 0;
        *ret_rc = 0;
        int r = child_run(child_sealed, (void *) o, (uint8_t *) &reply, sizeof reply, &n, SEALING_TIMEOUT_MS);
        if (r < 0) {
                if (n == sizeof reply.rc)
                        *ret_rc = reply.rc;
                return r;
        }
        if (n != sizeof reply.s || !terminated(reply.s.node_id, sizeof reply.s.node_id) ||
            !terminated(reply.s.mef_uri, sizeof reply.s.mef_uri) || !terminated(reply.s.ke_id, sizeof reply.s.ke_id) ||
            reply.s.expired > 1 || (reply.s.method != SEAL_METHOD_TPM2 && reply.s.method != SEAL_METHOD_HOST))
                return -EMSGSIZE;
        *ret = reply.s;
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* mscectl's TPM work, each in a child process (util/child.h) with the deadline the agent gives
 * its own (agent/sealing.h SEALING_TIMEOUT_MS): ESYS's synchronous calls wait for as long as a
 * TCTI that connected gives no answer, so in process a TPM that never answers would hang
 * mscectl for good. Besides the results named, both return -ETIMEDOUT (the child killed) when
 * the deadline passed first, -ECHILD when the child ended without a reply and -EMSGSIZE for a
 * reply of the wrong shape. */

#include <stdint.h>
#include <time.h>

#include "agent/sealing.h"
#include "keys/seal.h"
#include "proto/msg.h"

#define CTL_TPM_TIMEOUT_S (SEALING_TIMEOUT_MS / 1000u)

/* hw/tpm2.h tpm2_probe_pcrs(), on one connection to the TPM. */
int ctl_tpm_probe(const char *tcti, const char *pcrs, int *ret_pcrs);

/* What of a sealed profile is not secret: the profile itself, keys included, never leaves the
 * child. */
typedef struct ctl_sealed {
        char node_id[MSG_ID_MAX + 1];
        char mef_uri[MSG_URI_MAX + 1];
        char ke_id[MSG_KEID_MAX + 1];
        time_t exp_t;
        uint8_t expired; /* profile_is_expired() when it was read: 0 or 1 */
        seal_method_t method;
} ctl_sealed_t;

/* seal_load()'s result, with *ret on success; on its failure *ret_rc is tpm2_last_rc() as the
 * child had it (0 when the failure is the child's own, above). */
int ctl_sealed_read(const seal_opts_t *o, ctl_sealed_t *ret, uint32_t *ret_rc);

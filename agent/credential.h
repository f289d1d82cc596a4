/* SPDX-License-Identifier: MIT */
#pragma once
/* What the configuration says about talking to the MEF and keeping the profile, for the agent
 * and for mscectl alike: the TLS client context with the bootstrap credential, and the seal
 * options. */

#include "agent/config.h"
#include "agent/enrol.h"
#include "keys/seal.h"
#include "proto/tls.h"

/* The TLS client context for cfg. In psk mode the Kpm is read now (hex, 16..64 bytes, one
 * optional line end, owner-only) into a wiped buffer and copied into the context, which wipes
 * it on free; in cert mode the key file must be owner-only too. A negative errno with
 * info->failure (CONFIG, TRANSIENT for -ENOMEM) with a reason naming file and key. */
int credential_tls_ctx(const agent_config_t *cfg, tls_ctx_t **ret, exchange_info_t *info);

/* The seal options for cfg (pointers into cfg). */
static inline seal_opts_t credential_seal_opts(const agent_config_t *cfg) {
        return (seal_opts_t) {
                .state_dir = cfg->state_dir,
                .method = cfg->seal_backend == SEAL_TPM2 ? SEAL_METHOD_TPM2 :
                          cfg->seal_backend == SEAL_HOST ? SEAL_METHOD_HOST : SEAL_METHOD_AUTO,
                .tcti = cfg->tcti,
                .pcrs = cfg->pcrs,
        };
}

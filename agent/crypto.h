/* SPDX-License-Identifier: MIT */
#pragma once
/* Everything the agent does that needs wolfSSL (TLS, key derivation, AES-GCM) or the TPM
 * libraries, behind one table. mscectl, msce-mef and the tests link it in
 * (agent/crypto-linked.c). msce-agent does not: it loads the table from the module
 * msce-agent-crypto.so (agent/crypto-module.c), and only in the child processes that do that
 * work (agent/worker.h, agent/sealing.h), so the long-lived daemon maps no crypto library at all. */

#include <stddef.h>
#include <stdint.h>

#include "agent/config.h"
#include "agent/enrol.h"
#include "keys/profile.h"
#include "keys/seal.h"

#define CRYPTO_MODULE_NAME "msce-agent-crypto.so"
#define CRYPTO_ENTRY "msce_crypto_ops_v1"

typedef struct crypto_ops {
        size_t size; /* sizeof(crypto_ops_t) of the side that built the table */
        int (*enrol_run)(const agent_config_t *cfg, const char *prev, stored_profile_t *ret, exchange_info_t *info);
        int (*enrol_status)(const agent_config_t *cfg, const char *ke_id, msg_status_t *ret, exchange_info_t *info);
        int (*seal_store)(const seal_opts_t *o, const stored_profile_t *p, seal_method_t *ret_method);
        int (*seal_load)(const seal_opts_t *o, stored_profile_t *ret, seal_method_t *ret_method);
        uint32_t (*tpm2_last_rc)(void); /* hw/tpm2.h: the TPM's response code of a failed seal or load */
} crypto_ops_t;

/* The table, or -ELIBACC (the module cannot be loaded) / -ELIBBAD (it is not the module this
 * build expects) with a reason in err. Loaded once per process. */
int crypto_ops_get(const crypto_ops_t **ret, char *err, size_t err_size);

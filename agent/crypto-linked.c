/* SPDX-License-Identifier: MIT */
/* The crypto table with the functions linked in (agent/crypto.h): part of libmsce, and the
 * whole of what the msce-agent-crypto.so module exports. */
#include "agent/crypto.h"
#include "hw/tpm2.h"

static const crypto_ops_t ops = {
        .size = sizeof(crypto_ops_t),
        .enrol_run = enrol_run,
        .enrol_status = enrol_status,
        .seal_store = seal_store,
        .seal_load = seal_load,
        .tpm2_last_rc = tpm2_last_rc,
};

/* The module's only exported symbol (crypto-module.map). */
__attribute__((visibility("default"))) const crypto_ops_t *msce_crypto_ops_v1(void);
const crypto_ops_t *msce_crypto_ops_v1(void) {
        return &ops;
}

#ifndef MSCE_CRYPTO_MODULE
int crypto_ops_get(const crypto_ops_t **ret, char *err, size_t err_size) {
        *ret = &ops;
        return 0;
}
#endif

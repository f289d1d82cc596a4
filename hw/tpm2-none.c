/* SPDX-License-Identifier: MIT */
/* Built without tpm2-tss: there is no TPM backend, callers fall back to the host key. */
#include <errno.h>

#include "hw/tpm2.h"

int tpm2_probe(const char *tcti) {
        return -EOPNOTSUPP;
}

int tpm2_probe_pcrs(const char *tcti, const char *pcrs, int *ret_pcrs) {
        return -EOPNOTSUPP;
}

int tpm2_seal(const char *tcti, const char *pcrs, const uint8_t *secret, size_t len, uint8_t **ret_blob,
              size_t *ret_blob_len) {
        return -EOPNOTSUPP;
}

int tpm2_unseal(const char *tcti, const uint8_t *blob, size_t blob_len, uint8_t *out, size_t out_size,
                size_t *ret_len) {
        return -EOPNOTSUPP;
}

uint32_t tpm2_last_rc(void) {
        return 0;
}

void tpm2_last_rc_clear(void) {
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* Sealing a small secret to the TPM 2.0 (tpm2-tss ESAPI). hw/tpm2.c is the real backend,
 * hw/tpm2-none.c the fallback when built without tss2 (every call returns -EOPNOTSUPP).
 *
 * The storage primary key is re-created in the owner hierarchy from the standard ECC P-256
 * SRK template on every call (same seed, same template: same key), the secret goes into a
 * keyed-hash data object under it (fixedTPM|fixedParent, no auth value), created and unsealed
 * through a session salted with the primary (parameter encryption both ways). With pcrs the
 * object's policy is PolicyPCR over the current values of those PCRs, without it the object
 * takes userWithAuth. Every transient handle is flushed on every path (swtpm without a
 * resource manager has 3 object slots); on a TCTI that is no resource manager
 * (tpm2_tcti_is_resource_manager()), seal and unseal first flush every transient object and
 * session a process that ended before them left in the TPM (a sealing child killed on its
 * timeout): the agent is then the TPM's only user.
 *
 * Blob format (all of it public, only the TPM that sealed it can load it):
 *     u8   version = 1
 *     TPM2B_PUBLIC        marshalled (tss2-mu), the sealed object's public area
 *     TPM2B_PRIVATE       marshalled, its encrypted private area
 *     TPML_PCR_SELECTION  marshalled, count 0 when not bound to PCRs
 * and nothing after it.
 *
 * tcti: a tctildr string ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321"); NULL or
 * "" means TPM2_TCTI_DEFAULT. pcrs: util/parse.h's PCR list,
 * "<bank>:<n>[,<n>...][+<bank>:...]", e.g. "sha256:0,7"; NULL or "" for no binding.
 *
 * Errors: -ENODEV the TCTI does not connect (no TPM), -EACCES a device: TCTI's node is there but
 * this process may not open it read-write, -EBUSY it is held by another process (/dev/tpmN),
 * -EINVAL bad arguments or pcrs string,
 * -ENXIO (tpm2_seal) pcrs names a PCR the TPM has not active (a bank not allocated: PolicyPCR
 * would skip it and bind nothing),
 * -EBADMSG a blob that does not parse, -EKEYREJECTED the TPM refuses the blob (another TPM,
 * another owner seed, changed PCRs, altered blob), -EIO any other TPM failure,
 * -EOPNOTSUPP built without TPM support, or the tpm2-tss libraries (libtss2-esys, -tctildr,
 * -mu) are not installed: hw/tpm2.c dlopen()s them on first use and keeps them loaded for the
 * life of the process (one that lacks a symbol is closed again).
 * When libtss2-esys alone is missing and no TPM answers either, -ENODEV comes first (it is
 * loaded only once a TPM answers, as it maps libcrypto for good). The library writes nothing
 * to the environment; tss2 itself logs to stderr unless TSS2_LOG says otherwise. */

#include <stddef.h>
#include <stdint.h>

#define TPM2_TCTI_DEFAULT "device:/dev/tpmrm0"
#define TPM2_SECRET_MAX 128u /* MAX_SYM_DATA: the most a sealed data object holds */

/* 0 when a TPM answers on tcti (a GetCapability round trip). */
int tpm2_probe(const char *tcti);

/* tpm2_probe()'s result, and when 0, on the same connection, whether the TPM has every PCR of
 * pcrs active in *ret_pcrs: 0 when it has (and for no pcrs, without asking it), -ENXIO when not,
 * as tpm2_seal() would refuse them, -EINVAL for a pcrs string that does not parse, the errors of
 * tpm2_probe() else. */
int tpm2_probe_pcrs(const char *tcti, const char *pcrs, int *ret_pcrs);

/* Seal len (1..TPM2_SECRET_MAX) bytes; *ret_blob is heap memory (not secret) of *ret_blob_len. */
int tpm2_seal(const char *tcti, const char *pcrs, const uint8_t *secret, size_t len, uint8_t **ret_blob,
              size_t *ret_blob_len);

/* Unseal into out (out_size bytes); -ENOBUFS when the secret is larger than out_size. */
int tpm2_unseal(const char *tcti, const uint8_t *blob, size_t blob_len, uint8_t *out, size_t out_size,
                size_t *ret_len);

/* The tss2 response code of the failure the last of the calls above returned, when the TPM or the
 * software stack under it gave one (-EIO, -EBUSY, -EKEYREJECTED, -ENOMEM), for saying what went
 * wrong (hw/tpm2-names.h tpm2_rc_describe()); 0 after a success, or a failure without one (no
 * TPM answers, bad arguments, no library). Each call resets it, and so does tpm2_last_rc_clear():
 * a caller that may or may not reach the TPM (keys/seal.h) clears it first, so that a code left
 * by an earlier call is not taken for its own. */
uint32_t tpm2_last_rc(void);
void tpm2_last_rc_clear(void);

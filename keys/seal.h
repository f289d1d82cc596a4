/* SPDX-License-Identifier: MIT */
#pragma once
/* The sealed profile at rest: one envelope file, <state_dir>/profile.sealed (mode 0600),
 * written atomically (file_write_atomic: a crash leaves the old or the new file).
 *
 * Envelope, version 1 (integers big-endian):
 *
 *     offset  size      field
 *     0       4         magic "MSCE"
 *     4       1         version = 1
 *     5       1         backend: 1 = tpm2, 2 = host
 *     6       2         reserved, 0
 *     8       4         blob_len   (1..SEAL_BLOB_MAX)
 *     12      4         ct_len     (1..PROFILE_SERIALIZED_MAX)
 *     16      12        nonce      (random per write)
 *     28      blob_len  blob: the DEK as the backend protects it
 *     ...     ct_len    AES-256-GCM(DEK, nonce, aad = bytes [0, 28 + blob_len)) of the
 *                       serialized profile (keys/profile.h)
 *     ...     16        GCM tag
 *
 * The DEK (32 bytes) is random per write. The backends only protect the DEK:
 *   tpm2: blob = tpm2_seal(DEK) (hw/tpm2.h: public + private of a sealed data object under a
 *         storage primary re-created from the standard template, PCR selection).
 *   host: blob = nonce' (12) || AES-256-GCM(KEK, nonce', aad = "msce host.key v1", DEK) (32) ||
 *         tag (16), with KEK = <state_dir>/host.key, 32 random bytes, mode 0400, created once
 *         (temporary file, fsync, link(): it appears complete or not at all) and never replaced.
 *         The same construction as the TPM path, so the envelope code has a single shape; the
 *         host key protects nothing but DEKs.
 * Anything altered in the file fails the tag (or the TPM's integrity check): -EBADMSG or
 * -EKEYREJECTED, never a partial profile.
 *
 * seal_load() opens whatever backend the envelope names, whatever opts->method says (so a
 * configuration change does not lose the profile); the caller may store again to move it. */

#include <errno.h>
#include <stdint.h>

#include "keys/profile.h"

#define SEAL_ENVELOPE_NAME "profile.sealed"
#define SEAL_HOST_KEY_NAME "host.key"
#define SEAL_DEK_LEN 32u
#define SEAL_BLOB_MAX 4096u

/* Kept separate from the agent's configuration enum so keys/ does not depend on agent/. */
typedef enum seal_method {
        SEAL_METHOD_AUTO,  /* tpm2 when tpm2_probe() answers, host when no TPM does (store only) */
        SEAL_METHOD_TPM2,
        SEAL_METHOD_HOST,
        _SEAL_METHOD_MAX,
        _SEAL_METHOD_INVALID = -EINVAL,
} seal_method_t;

typedef struct seal_opts {
        const char *state_dir;  /* required: holds profile.sealed and host.key */
        seal_method_t method;
        const char *tcti;       /* NULL: TPM2_TCTI_DEFAULT */
        const char *pcrs;       /* NULL or "": no PCR binding; "sha256:0,7" (tpm2 only) */
} seal_opts_t;

const char *seal_method_to_string(seal_method_t m);     /* "auto", "tpm2", "host" */
seal_method_t seal_method_from_string(const char *s);

/* Write p. *ret_method (may be NULL) gets the backend used (never AUTO).
 * -ENODEV method tpm2 and no TPM answers, -EOPNOTSUPP method tpm2 in a build without TPM
 * support, with method auto the TPM's error (-EIO, -EBUSY, -EACCES) when one is there but fails (only
 * without a TPM does auto use the host key), -EINVAL bad opts or profile, -EBADMSG an existing host.key that is not 32 bytes,
 * -EPERM an existing host.key readable by others, -ENOSPC/-EIO... from the write (the previous
 * envelope is then left as it was), TPM errors as in hw/tpm2.h. */
int seal_store(const seal_opts_t *o, const stored_profile_t *p, seal_method_t *ret_method);

/* Read and open the envelope. -ENOENT there is none, -EBADMSG corrupted, truncated, wrong
 * magic or version, -EKEYREJECTED the key to open it is not available (the TPM refuses the
 * blob: other TPM, changed PCRs; or host.key is gone), -ENODEV it names tpm2 and no TPM answers,
 * -EOPNOTSUPP it names tpm2 in a build without TPM support, -EPERM host.key readable by others.
 * Expiry is not checked here (profile_is_expired()). After seal_store() and seal_load(),
 * tpm2_last_rc() (hw/tpm2.h) is the TPM's response code of the call's failure, 0 when the TPM gave
 * none (the host key's failures too). */
int seal_load(const seal_opts_t *o, stored_profile_t *ret, seal_method_t *ret_method);

/* Remove the envelope and host.key (factory reset, revocation). 1 when an envelope was
 * removed, 0 when there was none. */
int seal_remove(const seal_opts_t *o);

/* SPDX-License-Identifier: MIT */
#pragma once
/* Sealing and unsealing for the manager, through agent/crypto.h, in a child process
 * (util/child.h) driven by an event loop: the TPM libraries and the libcrypto they load never
 * map into the daemon, which keeps answering signals and the watchdog while the TPM works. The
 * child's reply is one byte, the method used, and for a load the profile as
 * profile_serialize() writes it, read back with the strict profile_parse(); a failure's, the
 * TPM's response code, or when the crypto module cannot be loaded the child's words for that
 * (printable, checked: the daemon never loads the module to ask). Errors as
 * keys/seal.h, plus -ECHILD/-EMSGSIZE/-ETIMEDOUT (util/child.h), -EBADMSG for a malformed reply
 * and -ELIBACC/-ELIBBAD (the crypto module, reason in err).
 *
 * p: the profile to store (copied by the fork), or NULL to load. done is called once from the
 * loop, with the result as above; then sealing_result() gives the method and a load's profile
 * (moved out; the caller wipes it), and in err the words of a failure: the crypto module's load
 * error as the child met it for -ELIBACC/-ELIBBAD, the TPM's response code (hw/tpm2-names.h
 * tpm2_rc_describe(), "TPM_RC_OBJECT_MEMORY (0x902)") when the TPM or the software stack under
 * it failed with one, else nothing (err is left as it was). sealing_free() kills a child still
 * running. */

#include <systemd/sd-event.h>

#include "keys/seal.h"

/* A TPM that stops answering must not hold the daemon's loop for good; an ECC P-256 primary
 * plus one seal or unseal takes well under a second on real TPMs. mscectl gives its own TPM
 * work (ctl/tpm.h) the same deadline. */
#define SEALING_TIMEOUT_MS 20000u

typedef struct sealing sealing_t;
typedef void (*sealing_done_t)(sealing_t *s, int r, void *userdata);
int sealing_start(sd_event *e, const seal_opts_t *o, const stored_profile_t *p, sealing_done_t done, void *userdata,
                  sealing_t **ret);
int sealing_result(sealing_t *s, stored_profile_t *ret, seal_method_t *ret_method, char *err, size_t err_size);
sealing_t *sealing_free(sealing_t *s);
static inline void sealing_freep(sealing_t **s) {
        sealing_free(*s);
}

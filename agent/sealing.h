/* SPDX-License-Identifier: MIT */
#pragma once
/* Sealing and unsealing for agent/custody.c, through agent/crypto.h: in the calling process,
 * or (isolate) in a child process (util/child.h), so that the TPM libraries and the libcrypto
 * they load never map into the daemon. The child's reply is one byte, the method used, and for
 * a load the profile as profile_serialize() writes it, read back with the strict
 * profile_parse(). Errors as keys/seal.h, plus -ECHILD/-EMSGSIZE (util/child.h), -EBADMSG for a
 * malformed reply and -ELIBACC/-ELIBBAD (the crypto module, reason in err). */

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "keys/seal.h"

int sealing_store(const seal_opts_t *o, bool isolate, const stored_profile_t *p, seal_method_t *ret_method,
                  char *err, size_t err_size);
int sealing_load(const seal_opts_t *o, bool isolate, stored_profile_t *ret, seal_method_t *ret_method, char *err,
                 size_t err_size);

/* The same in a child process driven by an event loop (the daemon keeps answering signals and
 * the watchdog while the TPM works). p: the profile to store (copied by the fork), or NULL to
 * load. done is called once from the loop, with the result as above; then sealing_result()
 * gives the method and a load's profile (moved out; the caller wipes it), and err for
 * -ELIBACC/-ELIBBAD. sealing_free() kills a child still running. */
typedef struct sealing sealing_t;
typedef void (*sealing_done_t)(sealing_t *s, int r, void *userdata);
int sealing_start(sd_event *e, const seal_opts_t *o, const stored_profile_t *p, sealing_done_t done, void *userdata,
                  sealing_t **ret);
int sealing_result(sealing_t *s, stored_profile_t *ret, seal_method_t *ret_method, char *err, size_t err_size);
sealing_t *sealing_free(sealing_t *s);
static inline void sealing_freep(sealing_t **s) {
        sealing_free(*s);
}

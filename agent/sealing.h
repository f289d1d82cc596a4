/* SPDX-License-Identifier: MIT */
#pragma once
/* Sealing and unsealing for agent/custody.c, through agent/crypto.h: in the calling process,
 * or (isolate) in a child process (util/child.h), so that the TPM libraries and the libcrypto
 * they load never map into the daemon. The child's reply is one byte, the method used, and for
 * a load the profile as profile_serialize() writes it, read back with the strict
 * profile_parse(). Errors as keys/seal.h, plus -ECHILD/-EMSGSIZE (util/child.h), -EBADMSG for a
 * malformed reply and -ELIBACC/-ELIBBAD (the crypto module, reason in err). */

#include <stdbool.h>

#include "keys/seal.h"

int sealing_store(const seal_opts_t *o, bool isolate, const stored_profile_t *p, seal_method_t *ret_method,
                  char *err, size_t err_size);
int sealing_load(const seal_opts_t *o, bool isolate, stored_profile_t *ret, seal_method_t *ret_method, char *err,
                 size_t err_size);

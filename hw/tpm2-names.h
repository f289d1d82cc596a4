/* SPDX-License-Identifier: MIT */
#pragma once
/* What the agent says about a TPM, without tpm2-tss (libmsce-core: the daemon and mscectl word
 * what a sealing child reports): which TCTIs are resource managers, which node a device: TCTI
 * opens, and TPM response codes by name. Pure functions over their arguments. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether tcti (a tctildr string, hw/tpm2.h; NULL or "" the default "device:/dev/tpmrm0")
 * reaches the TPM through a resource manager, which flushes the transient objects and sessions
 * of a client that goes away: "device:" with a node named tpmrm* (the kernel's; "device:" alone
 * opens /dev/tpmrm0 first) and "tabrmd" (tpm2-abrmd). The library may be named in full
 * ("libtss2-tcti-device.so.0:/dev/tpmrm0"). Every other TCTI talks to the TPM directly: a
 * device node /dev/tpmN (which the kernel lets one process open at a time), a simulator's socket
 * (swtpm, mssim), libtpms, spi-*, i2c-*, cmd: what a process leaves loaded stays loaded. */
bool tpm2_tcti_is_resource_manager(const char *tcti);

/* The device node that tcti ("device:PATH"; NULL or "" TPM2_TCTI_DEFAULT) opens, for saying which
 * node is not accessible; NULL for any other TCTI, and for "device:" alone (tcti-device picks a
 * node itself). */
const char *tpm2_tcti_device(const char *tcti);

/* A tss2 response code in words, e.g. "TPM_RC_OBJECT_MEMORY (0x902)", "TPM_RC_AUTH_FAIL, session
 * 1 (0x98e)", "tss2 TCTI error 10 (0x000a000a)"; "" for 0. Always NUL-terminated when size > 0. */
void tpm2_rc_describe(uint32_t rc, char *buf, size_t size);

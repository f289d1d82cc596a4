/* SPDX-License-Identifier: MIT */
#include "msce-config.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "hw/tpm2-names.h"

Test(tpm2_names, resource_managers) {
        static const char *const rm[] = {
                NULL, "", "device:/dev/tpmrm0", "device:/dev/tpmrm1", "device:", "device",
                "libtss2-tcti-device.so.0:/dev/tpmrm0", "tcti-device:/dev/tpmrm0", "tabrmd", "tabrmd:bus_type=system",
                "libtss2-tcti-tabrmd.so.0:",
        };
        for (size_t i = 0; i < sizeof rm / sizeof *rm; i++)
                cr_assert(tpm2_tcti_is_resource_manager(rm[i]), "%s", rm[i] ?: "NULL");
        static const char *const direct[] = {
                "device:/dev/tpm0", "libtss2-tcti-device.so.0:/dev/tpm0", "swtpm:path=/run/swtpm/sock",
                "swtpm:host=127.0.0.1,port=2321", "mssim:host=localhost,port=2321", "libtpms", "cmd:tpm2-proxy",
                "spi-ftdi", "device:/dev/tpm-rm", "tpmrm0",
        };
        for (size_t i = 0; i < sizeof direct / sizeof *direct; i++)
                cr_assert(!tpm2_tcti_is_resource_manager(direct[i]), "%s", direct[i]);
}

/* The node a device: TCTI opens, which the agent names when it is not its to open. */
Test(tpm2_names, device_nodes) {
        cr_assert_str_eq(tpm2_tcti_device(NULL), "/dev/tpmrm0");
        cr_assert_str_eq(tpm2_tcti_device(""), "/dev/tpmrm0");
        cr_assert_str_eq(tpm2_tcti_device("device:/dev/tpm0"), "/dev/tpm0");
        static const char *const none[] = { "device:", "device", "swtpm:host=127.0.0.1,port=2321", "tabrmd", "cmd:device:/x" };
        for (size_t i = 0; i < sizeof none / sizeof *none; i++)
                cr_assert_null(tpm2_tcti_device(none[i]), "%s", none[i]);
}

Test(tpm2_names, response_codes) {
        static const struct {
                unsigned rc;
                const char *want;
        } cases[] = {
                { 0x902, "TPM_RC_OBJECT_MEMORY (0x902)" },
                { 0x903, "TPM_RC_SESSION_MEMORY (0x903)" },
                { 0x98e, "TPM_RC_AUTH_FAIL, session 1 (0x98e)" },
                { 0x1c4, "TPM_RC_VALUE, parameter 1 (0x1c4)" },
                { 0x18b, "TPM_RC_HANDLE, handle 1 (0x18b)" },
                { 0x99d, "TPM_RC_POLICY_FAIL, session 1 (0x99d)" },
                { 0x101, "TPM_RC_FAILURE (0x101)" },
                { 0x921, "TPM_RC_LOCKOUT (0x921)" },
                { 0x0c0902, "resource manager: TPM_RC_OBJECT_MEMORY (0x902)" },
                { 0x57f, "TPM response code 0x57f" },
                { 0x0a000a, "tss2 TCTI error 10 (0x000a000a)" },
                { 0x070017, "tss2 ESAPI error 23 (0x00070017)" },
                { 0x2a0001, "tss2 layer error 1 (0x002a0001)" },
        };
        char buf[96];
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
                tpm2_rc_describe(cases[i].rc, buf, sizeof buf);
                cr_assert_str_eq(buf, cases[i].want, "0x%x", cases[i].rc);
        }
        tpm2_rc_describe(0, buf, sizeof buf);
        cr_assert_str_eq(buf, "");
        tpm2_rc_describe(0x902, buf, 8);
        cr_assert_str_eq(buf, "TPM_RC_");
}

#if HAVE_TPM2
#include <tss2/tss2_tpm2_types.h>

/* Every response code tss2_tpm2_types.h defines (but TPM2_RC_MAX_FM0, a bound, and
 * TPM2_RC_NOT_USED, which no TPM returns), by tpm2-tss's value: hw/tpm2-names.c has each under the
 * same name, and names no code that is not among them (a row at a wrong number). A second row for a
 * number does not compile (hw/tpm2-names.c). */
Test(tpm2_names, response_codes_are_tpm2_tss_s) {
#define X(n) { TPM2_RC_##n, "TPM_RC_" #n }
        static const struct {
                uint32_t rc;
                const char *name;
        } tss[] = {
                X(BAD_TAG), X(ASYMMETRIC), X(ATTRIBUTES), X(HASH), X(VALUE), X(HIERARCHY), X(KEY_SIZE), X(MGF),
                X(MODE), X(TYPE), X(HANDLE), X(KDF), X(RANGE), X(AUTH_FAIL), X(NONCE), X(PP), X(SCHEME), X(SIZE),
                X(SYMMETRIC), X(TAG), X(SELECTOR), X(INSUFFICIENT), X(SIGNATURE), X(KEY), X(POLICY_FAIL),
                X(INTEGRITY), X(TICKET), X(RESERVED_BITS), X(BAD_AUTH), X(EXPIRED), X(POLICY_CC), X(BINDING),
                X(CURVE), X(ECC_POINT), X(INITIALIZE), X(FAILURE), X(SEQUENCE), X(PRIVATE), X(HMAC), X(DISABLED),
                X(EXCLUSIVE), X(AUTH_TYPE), X(AUTH_MISSING), X(POLICY), X(PCR), X(PCR_CHANGED), X(UPGRADE),
                X(TOO_MANY_CONTEXTS), X(AUTH_UNAVAILABLE), X(REBOOT), X(UNBALANCED), X(COMMAND_SIZE), X(COMMAND_CODE),
                X(AUTHSIZE), X(AUTH_CONTEXT), X(NV_RANGE), X(NV_SIZE), X(NV_LOCKED), X(NV_AUTHORIZATION),
                X(NV_UNINITIALIZED), X(NV_SPACE), X(NV_DEFINED), X(BAD_CONTEXT), X(CPHASH), X(PARENT), X(NEEDS_TEST),
                X(NO_RESULT), X(SENSITIVE), X(CONTEXT_GAP), X(OBJECT_MEMORY), X(SESSION_MEMORY), X(MEMORY),
                X(SESSION_HANDLES), X(OBJECT_HANDLES), X(LOCALITY), X(YIELDED), X(CANCELED), X(TESTING),
                X(REFERENCE_H0), X(REFERENCE_H1), X(REFERENCE_H2), X(REFERENCE_H3), X(REFERENCE_H4), X(REFERENCE_H5),
                X(REFERENCE_H6), X(REFERENCE_S0), X(REFERENCE_S1), X(REFERENCE_S2), X(REFERENCE_S3), X(REFERENCE_S4),
                X(REFERENCE_S5), X(REFERENCE_S6), X(NV_RATE), X(LOCKOUT), X(RETRY), X(NV_UNAVAILABLE),
        };
#undef X
        char buf[96], want[96];
        for (size_t i = 0; i < sizeof tss / sizeof *tss; i++) {
                tpm2_rc_describe(tss[i].rc, buf, sizeof buf);
                snprintf(want, sizeof want, "%s (0x%03x)", tss[i].name, (unsigned) tss[i].rc);
                cr_assert_str_eq(buf, want);
        }
        /* every code without handle, session or parameter, format 0 and 1 */
        size_t named = 0;
        for (uint32_t rc = 1; rc <= 0xfff; rc++) {
                if ((rc & 0x080u) && (rc & 0xf40u))
                        continue;
                tpm2_rc_describe(rc, buf, sizeof buf);
                if (strncmp(buf, "TPM_RC_", 7) != 0)
                        continue;
                named++;
                bool found = false;
                for (size_t i = 0; i < sizeof tss / sizeof *tss && !found; i++)
                        found = tss[i].rc == rc;
                cr_assert(found, "0x%03x is named %s, which tpm2-tss does not have", (unsigned) rc, buf);
        }
        cr_assert_eq(named, sizeof tss / sizeof *tss);
}
#endif

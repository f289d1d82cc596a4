/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>

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

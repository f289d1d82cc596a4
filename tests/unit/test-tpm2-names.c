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

/* SPDX-License-Identifier: MIT */
/* TCTIs in words (hw/tpm2-names.h). */
#include <string.h>
#include <stdio.h>

#include "hw/tpm2-names.h"
#include "util/util.h"

bool tpm2_tcti_is_resource_manager(const char *tcti) {
        if (!tcti || !*tcti)
                return true; /* TPM2_TCTI_DEFAULT */
        const char *colon = strchr(tcti, ':');
        size_t n = colon ? (size_t) (colon - tcti) : strlen(tcti);
        const char *conf = colon ? colon + 1 : "";
        /* "libtss2-tcti-NAME.so.0", "tcti-NAME", "NAME" */
        char name[64];
        if (n >= sizeof name)
                return false;
        memcpy(name, tcti, n);
        name[n] = 0;
        char *s = name;
        if (strncmp(s, "libtss2-", 8) == 0)
                s += 8;
        if (strncmp(s, "tcti-", 5) == 0)
                s += 5;
        s[strcspn(s, ".")] = 0;
        if (streq(s, "tabrmd"))
                return true;
        if (!streq(s, "device"))
                return false;
        if (!*conf)
                return true; /* tcti-device tries /dev/tpmrm0 first */
        const char *slash = strrchr(conf, '/');
        const char *node = slash ? slash + 1 : conf;
        return strncmp(node, "tpmrm", 5) == 0;
}

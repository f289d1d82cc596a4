/* SPDX-License-Identifier: MIT */
/* TCTIs and TPM response codes in words (hw/tpm2-names.h). The codes are the TPM 2.0 Library
 * specification's (Part 2, TPM_RC), as tss2_tpm2_types.h has them; written out here so that
 * this file needs no tpm2-tss headers. */
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

static const struct {
        uint16_t code;
        const char *name;
} rc_names[] = {
        { 0x01e, "TPM_RC_BAD_TAG" },
        { 0x081, "TPM_RC_ASYMMETRIC" },
        { 0x082, "TPM_RC_ATTRIBUTES" },
        { 0x083, "TPM_RC_HASH" },
        { 0x084, "TPM_RC_VALUE" },
        { 0x085, "TPM_RC_HIERARCHY" },
        { 0x085, "TPM_RC_HIERARCHY" },
        { 0x087, "TPM_RC_KEY_SIZE" },
        { 0x088, "TPM_RC_MGF" },
        { 0x089, "TPM_RC_MODE" },
        { 0x08a, "TPM_RC_TYPE" },
        { 0x08b, "TPM_RC_HANDLE" },
        { 0x08c, "TPM_RC_KDF" },
        { 0x08d, "TPM_RC_RANGE" },
        { 0x08e, "TPM_RC_AUTH_FAIL" },
        { 0x08f, "TPM_RC_NONCE" },
        { 0x090, "TPM_RC_PP" },
        { 0x092, "TPM_RC_SCHEME" },
        { 0x095, "TPM_RC_SIZE" },
        { 0x096, "TPM_RC_SYMMETRIC" },
        { 0x097, "TPM_RC_TAG" },
        { 0x098, "TPM_RC_SELECTOR" },
        { 0x09a, "TPM_RC_INSUFFICIENT" },
        { 0x09b, "TPM_RC_SIGNATURE" },
        { 0x09c, "TPM_RC_KEY" },
        { 0x09d, "TPM_RC_POLICY_FAIL" },
        { 0x09f, "TPM_RC_INTEGRITY" },
        { 0x0a0, "TPM_RC_TICKET" },
        { 0x0a1, "TPM_RC_RESERVED_BITS" },
        { 0x0a2, "TPM_RC_BAD_AUTH" },
        { 0x0a3, "TPM_RC_EXPIRED" },
        { 0x0a4, "TPM_RC_POLICY_CC" },
        { 0x0a5, "TPM_RC_BINDING" },
        { 0x0a6, "TPM_RC_CURVE" },
        { 0x0a7, "TPM_RC_ECC_POINT" },
        { 0x100, "TPM_RC_INITIALIZE" },
        { 0x101, "TPM_RC_FAILURE" },
        { 0x103, "TPM_RC_SEQUENCE" },
        { 0x10b, "TPM_RC_PRIVATE" },
        { 0x119, "TPM_RC_HMAC" },
        { 0x120, "TPM_RC_DISABLED" },
        { 0x121, "TPM_RC_EXCLUSIVE" },
        { 0x124, "TPM_RC_AUTH_TYPE" },
        { 0x125, "TPM_RC_AUTH_MISSING" },
        { 0x126, "TPM_RC_POLICY" },
        { 0x127, "TPM_RC_PCR" },
        { 0x128, "TPM_RC_PCR_CHANGED" },
        { 0x12d, "TPM_RC_UPGRADE" },
        { 0x12e, "TPM_RC_TOO_MANY_CONTEXTS" },
        { 0x12f, "TPM_RC_AUTH_UNAVAILABLE" },
        { 0x130, "TPM_RC_REBOOT" },
        { 0x131, "TPM_RC_UNBALANCED" },
        { 0x142, "TPM_RC_COMMAND_SIZE" },
        { 0x143, "TPM_RC_COMMAND_CODE" },
        { 0x144, "TPM_RC_AUTHSIZE" },
        { 0x145, "TPM_RC_AUTH_CONTEXT" },
        { 0x146, "TPM_RC_NV_RANGE" },
        { 0x147, "TPM_RC_NV_SIZE" },
        { 0x148, "TPM_RC_NV_LOCKED" },
        { 0x149, "TPM_RC_NV_AUTHORIZATION" },
        { 0x14a, "TPM_RC_NV_UNINITIALIZED" },
        { 0x14b, "TPM_RC_NV_SPACE" },
        { 0x14c, "TPM_RC_NV_DEFINED" },
        { 0x150, "TPM_RC_BAD_CONTEXT" },
        { 0x151, "TPM_RC_CPHASH" },
        { 0x152, "TPM_RC_PARENT" },
        { 0x153, "TPM_RC_NEEDS_TEST" },
        { 0x154, "TPM_RC_NO_RESULT" },
        { 0x155, "TPM_RC_SENSITIVE" },
        { 0x901, "TPM_RC_CONTEXT_GAP" },
        { 0x902, "TPM_RC_OBJECT_MEMORY" },
        { 0x903, "TPM_RC_SESSION_MEMORY" },
        { 0x904, "TPM_RC_MEMORY" },
        { 0x905, "TPM_RC_SESSION_HANDLES" },
        { 0x906, "TPM_RC_OBJECT_HANDLES" },
        { 0x907, "TPM_RC_LOCALITY" },
        { 0x908, "TPM_RC_YIELDED" },
        { 0x909, "TPM_RC_CANCELED" },
        { 0x90a, "TPM_RC_TESTING" },
        { 0x920, "TPM_RC_NV_RATE" },
        { 0x921, "TPM_RC_LOCKOUT" },
        { 0x922, "TPM_RC_RETRY" },
        { 0x923, "TPM_RC_NV_UNAVAILABLE" },
};

#define RC_LAYER_MASK 0xff0000u
#define RC_LAYER_TPM 0u
#define RC_LAYER_RESMGR_TPM (12u << 16)
#define RC_FMT1 0x080u
#define RC_VENDOR 0x400u /* format 0: a vendor's code, not the specification's */

static const char *const layer_names[] = {
        [6] = "feature", [7] = "ESAPI", [8] = "SAPI", [9] = "marshalling", [10] = "TCTI", [11] = "resource manager",
};

static const char *rc_name(uint32_t code) {
        for (size_t i = 0; i < ELEMENTSOF(rc_names); i++)
                if (rc_names[i].code == code)
                        return rc_names[i].name;
        return NULL;
}

void tpm2_rc_describe(uint32_t rc, char *buf, size_t size) {
        if (size == 0)
                return;
        buf[0] = 0;
        if (rc == 0)
                return;
        uint32_t layer = rc & RC_LAYER_MASK, base = rc & 0xffffu;
        if (layer != RC_LAYER_TPM && layer != RC_LAYER_RESMGR_TPM) {
                unsigned l = layer >> 16;
                const char *ln = l < ELEMENTSOF(layer_names) && layer_names[l] ? layer_names[l] : "layer";
                snprintf(buf, size, "tss2 %s error %u (0x%08x)", ln, (unsigned) base, (unsigned) rc);
                return;
        }
        const char *by = layer == RC_LAYER_RESMGR_TPM ? "resource manager: " : "";
        char where[32] = "";
        const char *name;
        if (base & RC_FMT1) {
                /* bits 8-11: the handle, session or (bit 6) parameter the code is about */
                unsigned nr = (base >> 8) & 0xfu;
                name = rc_name(base & 0xbfu);
                if (base & 0x40u)
                        snprintf(where, sizeof where, ", parameter %u", nr);
                else if (nr & 8u)
                        snprintf(where, sizeof where, ", session %u", nr & 7u);
                else if (nr)
                        snprintf(where, sizeof where, ", handle %u", nr);
        } else
                name = base & RC_VENDOR ? NULL : rc_name(base);
        if (name)
                snprintf(buf, size, "%s%s%s (0x%03x)", by, name, where, (unsigned) rc & 0xffffu);
        else
                snprintf(buf, size, "%sTPM response code 0x%03x", by, (unsigned) base);
}

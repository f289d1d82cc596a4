/* SPDX-License-Identifier: MIT */
/* TCTIs and TPM response codes in words (hw/tpm2-names.h). The codes are the TPM 2.0 Library
 * specification's (Part 2, TPM_RC), as tss2_tpm2_types.h has them (tests/unit/test-tpm2-names.c
 * compares them with it); written out here so that this file needs no tpm2-tss headers. */
#include <string.h>
#include <stdio.h>

#include "hw/tpm2-names.h"
#include "hw/tpm2.h"
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

const char *tpm2_tcti_device(const char *tcti) {
        if (!tcti || !*tcti)
                tcti = TPM2_TCTI_DEFAULT;
        return strncmp(tcti, "device:", 7) == 0 && tcti[7] ? tcti + 7 : NULL;
}

/* The specification's names, indexed by the code's number within its format: a second row for a
 * number does not compile (gcc's -Woverride-init, clang's -Winitializer-overrides, made an error
 * here whatever the build's warning flags), where a list of pairs kept it silently. */
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Woverride-init"
/* format 1: TPM_RC_FMT1 (0x080) + n; bits 6-11 say which handle, session or parameter */
static const char *const rc_fmt1[0x40] = {
        [0x01] = "TPM_RC_ASYMMETRIC",
        [0x02] = "TPM_RC_ATTRIBUTES",
        [0x03] = "TPM_RC_HASH",
        [0x04] = "TPM_RC_VALUE",
        [0x05] = "TPM_RC_HIERARCHY",
        [0x07] = "TPM_RC_KEY_SIZE",
        [0x08] = "TPM_RC_MGF",
        [0x09] = "TPM_RC_MODE",
        [0x0a] = "TPM_RC_TYPE",
        [0x0b] = "TPM_RC_HANDLE",
        [0x0c] = "TPM_RC_KDF",
        [0x0d] = "TPM_RC_RANGE",
        [0x0e] = "TPM_RC_AUTH_FAIL",
        [0x0f] = "TPM_RC_NONCE",
        [0x10] = "TPM_RC_PP",
        [0x12] = "TPM_RC_SCHEME",
        [0x15] = "TPM_RC_SIZE",
        [0x16] = "TPM_RC_SYMMETRIC",
        [0x17] = "TPM_RC_TAG",
        [0x18] = "TPM_RC_SELECTOR",
        [0x1a] = "TPM_RC_INSUFFICIENT",
        [0x1b] = "TPM_RC_SIGNATURE",
        [0x1c] = "TPM_RC_KEY",
        [0x1d] = "TPM_RC_POLICY_FAIL",
        [0x1f] = "TPM_RC_INTEGRITY",
        [0x20] = "TPM_RC_TICKET",
        [0x21] = "TPM_RC_RESERVED_BITS",
        [0x22] = "TPM_RC_BAD_AUTH",
        [0x23] = "TPM_RC_EXPIRED",
        [0x24] = "TPM_RC_POLICY_CC",
        [0x25] = "TPM_RC_BINDING",
        [0x26] = "TPM_RC_CURVE",
        [0x27] = "TPM_RC_ECC_POINT",
};
/* format 0 errors: TPM_RC_VER1 (0x100) + n */
static const char *const rc_ver1[0x80] = {
        [0x00] = "TPM_RC_INITIALIZE",
        [0x01] = "TPM_RC_FAILURE",
        [0x03] = "TPM_RC_SEQUENCE",
        [0x0b] = "TPM_RC_PRIVATE",
        [0x19] = "TPM_RC_HMAC",
        [0x20] = "TPM_RC_DISABLED",
        [0x21] = "TPM_RC_EXCLUSIVE",
        [0x24] = "TPM_RC_AUTH_TYPE",
        [0x25] = "TPM_RC_AUTH_MISSING",
        [0x26] = "TPM_RC_POLICY",
        [0x27] = "TPM_RC_PCR",
        [0x28] = "TPM_RC_PCR_CHANGED",
        [0x2d] = "TPM_RC_UPGRADE",
        [0x2e] = "TPM_RC_TOO_MANY_CONTEXTS",
        [0x2f] = "TPM_RC_AUTH_UNAVAILABLE",
        [0x30] = "TPM_RC_REBOOT",
        [0x31] = "TPM_RC_UNBALANCED",
        [0x42] = "TPM_RC_COMMAND_SIZE",
        [0x43] = "TPM_RC_COMMAND_CODE",
        [0x44] = "TPM_RC_AUTHSIZE",
        [0x45] = "TPM_RC_AUTH_CONTEXT",
        [0x46] = "TPM_RC_NV_RANGE",
        [0x47] = "TPM_RC_NV_SIZE",
        [0x48] = "TPM_RC_NV_LOCKED",
        [0x49] = "TPM_RC_NV_AUTHORIZATION",
        [0x4a] = "TPM_RC_NV_UNINITIALIZED",
        [0x4b] = "TPM_RC_NV_SPACE",
        [0x4c] = "TPM_RC_NV_DEFINED",
        [0x50] = "TPM_RC_BAD_CONTEXT",
        [0x51] = "TPM_RC_CPHASH",
        [0x52] = "TPM_RC_PARENT",
        [0x53] = "TPM_RC_NEEDS_TEST",
        [0x54] = "TPM_RC_NO_RESULT",
        [0x55] = "TPM_RC_SENSITIVE",
};
/* format 0 warnings: TPM_RC_WARN (0x900) + n (TPM_RC_NOT_USED, 0x97f, is never returned) */
static const char *const rc_warn[0x80] = {
        [0x01] = "TPM_RC_CONTEXT_GAP",
        [0x02] = "TPM_RC_OBJECT_MEMORY",
        [0x03] = "TPM_RC_SESSION_MEMORY",
        [0x04] = "TPM_RC_MEMORY",
        [0x05] = "TPM_RC_SESSION_HANDLES",
        [0x06] = "TPM_RC_OBJECT_HANDLES",
        [0x07] = "TPM_RC_LOCALITY",
        [0x08] = "TPM_RC_YIELDED",
        [0x09] = "TPM_RC_CANCELED",
        [0x0a] = "TPM_RC_TESTING",
        [0x10] = "TPM_RC_REFERENCE_H0",
        [0x11] = "TPM_RC_REFERENCE_H1",
        [0x12] = "TPM_RC_REFERENCE_H2",
        [0x13] = "TPM_RC_REFERENCE_H3",
        [0x14] = "TPM_RC_REFERENCE_H4",
        [0x15] = "TPM_RC_REFERENCE_H5",
        [0x16] = "TPM_RC_REFERENCE_H6",
        [0x18] = "TPM_RC_REFERENCE_S0",
        [0x19] = "TPM_RC_REFERENCE_S1",
        [0x1a] = "TPM_RC_REFERENCE_S2",
        [0x1b] = "TPM_RC_REFERENCE_S3",
        [0x1c] = "TPM_RC_REFERENCE_S4",
        [0x1d] = "TPM_RC_REFERENCE_S5",
        [0x1e] = "TPM_RC_REFERENCE_S6",
        [0x20] = "TPM_RC_NV_RATE",
        [0x21] = "TPM_RC_LOCKOUT",
        [0x22] = "TPM_RC_RETRY",
        [0x23] = "TPM_RC_NV_UNAVAILABLE",
};
#pragma GCC diagnostic pop

#define RC_LAYER_MASK 0xff0000u
#define RC_LAYER_TPM 0u
#define RC_LAYER_RESMGR_TPM (12u << 16)
#define RC_FMT1 0x080u
#define RC_VENDOR 0x400u /* format 0: a vendor's code, not the specification's */

static const char *const layer_names[] = {
        [6] = "feature", [7] = "ESAPI", [8] = "SAPI", [9] = "marshalling", [10] = "TCTI", [11] = "resource manager",
};

#define RC_BAD_TAG 0x01eu /* TPM 1.2's, which a TPM 2.0 answers to a 1.2 command */
#define RC_VER1 0x100u
#define RC_WARN 0x900u

/* The name of base (no layer; for format 1 without its handle, session or parameter), or NULL. */
static const char *rc_name(uint32_t base) {
        if (base & RC_FMT1)
                return rc_fmt1[base & 0x3fu];
        if (base == RC_BAD_TAG)
                return "TPM_RC_BAD_TAG";
        if ((base & ~0x7fu) == RC_VER1)
                return rc_ver1[base & 0x7fu];
        if ((base & ~0x7fu) == RC_WARN)
                return rc_warn[base & 0x7fu];
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

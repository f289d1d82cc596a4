/* SPDX-License-Identifier: MIT */
/* TS-0003 10.3 key derivation: split the exporter output, derive Kpsa and Km. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include <ctype.h>

#include "keys/kdf.h"
#include "proto/ids.h"
#include "util/util.h"

/* IDs are restricted to printable ASCII (protocol section 2); bound them generously. */
#define KDF_ID_MAX 1024u

int kdf_split_ekm(const uint8_t ekm[KDF_EKM_LEN], const char *mef_fqdn, uint8_t ret_ke[KDF_KE_LEN],
                  char *ret_keid, size_t keid_size) {
        if (!ekm || !mef_fqdn || !ret_ke || !ret_keid)
                return -EINVAL;

        if (ids_check_host(mef_fqdn, NULL) < 0)
                return -EINVAL;
        size_t n = strlen(mef_fqdn);
        /* hex(16 bytes) "@" fqdn NUL */
        if (2 * KDF_REL_KEID_LEN + 1 + n + 1 > keid_size)
                return -EINVAL;

        hex_encode(ekm, KDF_REL_KEID_LEN, ret_keid);
        char *p = ret_keid + 2 * KDF_REL_KEID_LEN;
        *p++ = '@';
        for (size_t i = 0; i < n; i++)
                *p++ = (char) tolower((unsigned char) mef_fqdn[i]);
        *p = 0;
        memcpy(ret_ke, ekm + KDF_REL_KEID_LEN, KDF_KE_LEN);
        return 0;
}

static int hmac_label_id(const uint8_t *key, size_t key_len, const char *label, const char *id,
                         uint8_t ret[KDF_KEY_LEN]) {
        if (!key || !id || !ret)
                return -EINVAL;
        if (key_len < 16 || key_len > 64)
                return -EINVAL;
        if (!id_is_valid(id, KDF_ID_MAX))
                return -EINVAL;

        Hmac hmac;
        uint8_t out[WC_SHA256_DIGEST_SIZE];
        int r = -EIO;

        if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0) {
                erase(&hmac, sizeof(hmac));
                return -EIO;
        }
        if (wc_HmacSetKey(&hmac, WC_SHA256, key, (word32) key_len) == 0 &&
            wc_HmacUpdate(&hmac, (const byte *) label, (word32) strlen(label)) == 0 &&
            wc_HmacUpdate(&hmac, (const byte *) id, (word32) strlen(id)) == 0 &&
            wc_HmacFinal(&hmac, out) == 0) {
                memcpy(ret, out, KDF_KEY_LEN);
                r = 0;
        }
        wc_HmacFree(&hmac);
        erase(&hmac, sizeof(hmac));
        erase(out, sizeof(out));
        return r;
}

int kdf_kpsa(const uint8_t *key, size_t key_len, const char *target_id, uint8_t ret[KDF_KEY_LEN]) {
        return hmac_label_id(key, key_len, KDF_LABEL_KPSA, target_id, ret);
}

int kdf_km(const uint8_t *key, size_t key_len, const char *maf_id, uint8_t ret[KDF_KEY_LEN]) {
        return hmac_label_id(key, key_len, KDF_LABEL_KM, maf_id, ret);
}

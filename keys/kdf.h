/* SPDX-License-Identifier: MIT */
#pragma once
/* TS-0003 10.3 key derivation (protocol section 2). */

#include <stddef.h>
#include <stdint.h>

#define KDF_EXPORTER_LABEL "EXPORTER-oneM2M-Bootstrap"
#define KDF_EKM_LEN 48u
#define KDF_REL_KEID_LEN 16u
#define KDF_KE_LEN 32u
#define KDF_KEY_LEN 32u
#define KDF_KEID_MAX 300u

#define KDF_LABEL_KPSA "oneM2M Enrolment Key to Provisioned Secure Connection Key derivation"
#define KDF_LABEL_KM "oneM2M Enrolment Key to Master Credential derivation"

/* Split EKM into Ke and KeID = lowercase-hex(EKM[0..16)) "@" lowercase(fqdn).
 * -EINVAL when fqdn is not a host name or IP address (ids_check_host: an IPv6 address without
 * brackets) or the KeID would not fit keid_size. */
int kdf_split_ekm(const uint8_t ekm[KDF_EKM_LEN], const char *mef_fqdn, uint8_t ret_ke[KDF_KE_LEN],
                  char *ret_keid, size_t keid_size);

/* Kpsa(target) and Km(maf): HMAC-SHA-256(key, label || id). key is Ke or the transported ltk.
 * -EINVAL unless 16 <= key_len <= 64 and id is 1..1024 printable ASCII characters. Km is derived
 * by neither end: the binding names no MAF target and no place for it (docs/protocol.md, "Keys"). */
int kdf_kpsa(const uint8_t *key, size_t key_len, const char *target_id, uint8_t ret[KDF_KEY_LEN]);
int kdf_km(const uint8_t *key, size_t key_len, const char *maf_id, uint8_t ret[KDF_KEY_LEN]);

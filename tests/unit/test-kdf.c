/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>

#include "keys/kdf.h"
#include "util/util.h"

/* Expected values below were computed independently with the OpenSSL CLI, not with this code:
 *   printf '%s' "<label><id>" | openssl dgst -sha256 -mac HMAC -macopt hexkey:<key hex>
 * with <label> the exact ASCII label from protocol section 2 (no terminator). */
#define K32 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K16 "f0e1d2c3b4a5968778695a4b3c2d1e0f"
#define K64                                                              \
        "abababababababababababababababababababababababababababababababab" \
        "abababababababababababababababababababababababababababababababab"

static size_t unhex(const char *s, uint8_t *out, size_t size) {
        size_t n;
        cr_assert_eq(hex_decode(s, out, size, &n), 0);
        return n;
}

static void check_hex(const uint8_t *got, size_t n, const char *want) {
        char h[2 * 64 + 1];
        hex_encode(got, n, h);
        cr_assert_str_eq(h, want);
}

/* Each vector: the derivation, its key (hex, of the length named), the identifier, the result. */
Test(kdf, vectors) {
        static const struct {
                int (*derive)(const uint8_t *key, size_t key_len, const char *id, uint8_t ret[KDF_KEY_LEN]);
                const char *key;
                size_t key_len;
                const char *id, *want;
        } vectors[] = {
                { kdf_kpsa, K32, 32, "/in-cse", "0387ca5926ab0e2b706a1778f15c5175ed6c96dd77400378cd8909dae6acb749" },
                { kdf_km, K32, 32, "/maf-01", "cc148c5d00729b12b2b794fcd83bc5a877fcdf7f3cd0c819899fa13ace532bd2" },
                { kdf_kpsa, K16, 16, "/in-cse", "45ce308efcbab65340aae953d0984ba4affef7c64a5a382a783dd8b7e719bddb" },
                { kdf_km, K64, 64, "/maf-01", "9c3ae0b1b89dfcdc3f8a4a43083715b4e386e88724af5db6285fdc6ad405d901" },
        };
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                uint8_t key[64], out[KDF_KEY_LEN];
                size_t n = unhex(vectors[i].key, key, sizeof(key));
                cr_assert_eq(n, vectors[i].key_len, "vector %zu", i);
                cr_assert_eq(vectors[i].derive(key, n, vectors[i].id, out), 0, "vector %zu", i);
                check_hex(out, sizeof(out), vectors[i].want);
        }
}

Test(kdf, labels_differ) {
        uint8_t key[32] = { 7 }, a[KDF_KEY_LEN], b[KDF_KEY_LEN];
        cr_assert_eq(kdf_kpsa(key, sizeof(key), "/x", a), 0);
        cr_assert_eq(kdf_km(key, sizeof(key), "/x", b), 0);
        cr_assert_neq(memcmp(a, b, sizeof(a)), 0);
}

Test(kdf, key_and_id_limits) {
        uint8_t key[65] = { 1 }, out[KDF_KEY_LEN], untouched[KDF_KEY_LEN];
        memset(out, 0x5a, sizeof(out));
        memcpy(untouched, out, sizeof(out));

        cr_assert_eq(kdf_kpsa(key, 15, "/in-cse", out), -EINVAL);
        cr_assert_eq(kdf_kpsa(key, 65, "/in-cse", out), -EINVAL);
        cr_assert_eq(kdf_km(key, 0, "/maf", out), -EINVAL);
        cr_assert_eq(kdf_km(key, 32, "", out), -EINVAL);
        cr_assert_eq(kdf_kpsa(key, 32, "", out), -EINVAL);
        cr_assert_eq(kdf_kpsa(key, 32, "with space", out), -EINVAL);
        cr_assert_eq(kdf_kpsa(key, 32, NULL, out), -EINVAL);
        cr_assert_eq(kdf_kpsa(NULL, 32, "/in-cse", out), -EINVAL);
        cr_assert_eq(memcmp(out, untouched, sizeof(out)), 0, "output touched on failure");

        cr_assert_eq(kdf_kpsa(key, 16, "/in-cse", out), 0);
        cr_assert_eq(kdf_km(key, 64, "/maf", out), 0);
}

Test(kdf, split_ekm) {
        uint8_t ekm[KDF_EKM_LEN], ke[KDF_KE_LEN];
        char keid[KDF_KEID_MAX];
        for (unsigned i = 0; i < sizeof(ekm); i++)
                ekm[i] = (uint8_t) (0xA0 + i);

        cr_assert_eq(kdf_split_ekm(ekm, "MEF.Example.NET", ke, keid, sizeof(keid)), 0);
        cr_assert_str_eq(keid, "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf@mef.example.net");
        check_hex(ke, sizeof(ke), "b0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecf");
}

Test(kdf, split_ekm_ip_literals) {
        uint8_t ekm[KDF_EKM_LEN] = { 0 }, ke[KDF_KE_LEN];
        char keid[KDF_KEID_MAX];
        cr_assert_eq(kdf_split_ekm(ekm, "127.0.0.1", ke, keid, sizeof(keid)), 0);
        cr_assert_str_eq(keid, "00000000000000000000000000000000@127.0.0.1");
        /* IPv6 without brackets, as the agent keeps the host of its URI (proto/ids.h) */
        cr_assert_eq(kdf_split_ekm(ekm, "FE80::1", ke, keid, sizeof(keid)), 0);
        cr_assert_str_eq(keid, "00000000000000000000000000000000@fe80::1");
        cr_assert_eq(kdf_split_ekm(ekm, "[fe80::1]", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "fe80::1%eth0", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "1.2.3.999", ke, keid, sizeof(keid)), -EINVAL);
}

Test(kdf, split_ekm_limits) {
        uint8_t ekm[KDF_EKM_LEN] = { 0 }, ke[KDF_KE_LEN];
        char keid[KDF_KEID_MAX];
        memset(keid, 'x', sizeof(keid));

        cr_assert_eq(kdf_split_ekm(ekm, "", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "mef example", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "mef/x", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "mef@x", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "-mef.example", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "mef..example", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "m\xc3\xa9" "f", ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, NULL, ke, keid, sizeof(keid)), -EINVAL);
        cr_assert_eq(keid[0], 'x', "KeID touched on failure");

        char big[300];
        memset(big, 'a', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        cr_assert_eq(kdf_split_ekm(ekm, big, ke, keid, sizeof(keid)), -EINVAL);

        /* Exactly fitting buffer: 32 hex + '@' + "a.b" + NUL = 37 bytes. */
        cr_assert_eq(kdf_split_ekm(ekm, "a.b", ke, keid, 36), -EINVAL);
        cr_assert_eq(kdf_split_ekm(ekm, "a.b", ke, keid, 37), 0);
        cr_assert_eq(strlen(keid), 36);
}

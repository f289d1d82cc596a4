/* SPDX-License-Identifier: MIT */
/* The master key wrapped for a recipient's P-256 public key (mef/backup.h): an ephemeral ECDH
 * with the recipient, HKDF-SHA256 from the shared secret to a key-encryption key, AES-256-GCM.
 * The host that makes backups needs only the public key; the private key (the identity) stays
 * with whoever may restore. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/wolfcrypt/asn_public.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/random.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include "mef/backup-internal.h"
#include "mef/backup.h"

#define WRAP_KEM "ecdh-p256"
#define WRAP_KDF "hkdf-sha256"
#define POINT_LEN 65u /* uncompressed P-256 point */
#define DER_MAX 512u
#define PEM_MAX 8192u

DEFINE_ERASE(512) /* DER_MAX: a private key's DER on the stack */

typedef struct p256 {
        ecc_key key;
        bool ready;
        uint8_t point[POINT_LEN];
        uint8_t fingerprint[32]; /* SHA-256 of the SubjectPublicKeyInfo DER */
} p256_t;

static void p256_done(p256_t *k) {
        if (k->ready)
                wc_ecc_free(&k->key);
        erase(k, sizeof *k);
}

/* The point and the fingerprint of a key that is P-256. */
static int p256_finish(p256_t *k) {
        if (wc_ecc_get_curve_id(k->key.idx) != ECC_SECP256R1)
                return -EINVAL;
        uint8_t der[DER_MAX];
        int n = wc_EccPublicKeyToDer(&k->key, der, sizeof der, 1);
        word32 len = sizeof k->point;
        if (n <= 0 || wc_ecc_export_x963(&k->key, k->point, &len) != 0 || len != POINT_LEN ||
            wc_Sha256Hash(der, (word32) n, k->fingerprint) != 0)
                return -EINVAL;
        return 0;
}

static int p256_public(const char *pem, size_t len, p256_t *k) {
        uint8_t der[DER_MAX];
        word32 idx = 0;
        if (!pem || len == 0 || len > PEM_MAX || wc_ecc_init(&k->key) != 0)
                return -EINVAL;
        k->ready = true;
        int n = wc_PubKeyPemToDer((const unsigned char *) pem, (int) len, der, sizeof der);
        if (n <= 0 || wc_EccPublicKeyDecode(der, &idx, &k->key, (word32) n) != 0 || wc_ecc_check_key(&k->key) != 0)
                return -EINVAL;
        return p256_finish(k);
}

/* A private key in PEM: SEC1 ("EC PRIVATE KEY") or PKCS#8 ("PRIVATE KEY"). */
static int p256_private(const char *pem, size_t len, p256_t *k) {
        _cleanup_erase_(512) uint8_t der[DER_MAX];
        word32 idx = 0;
        if (!pem || len == 0 || len > PEM_MAX || wc_ecc_init(&k->key) != 0)
                return -EINVAL;
        k->ready = true;
        int n = wc_KeyPemToDer((const unsigned char *) pem, (int) len, der, sizeof der, NULL);
        if (n <= 0 || wc_EccPrivateKeyDecode(der, &idx, &k->key, (word32) n) != 0)
                return -EINVAL;
        /* SEC1 makes the public key optional: derive it, then check the pair */
        if (k->key.type == ECC_PRIVATEKEY_ONLY && wc_ecc_make_pub(&k->key, NULL) != 0)
                return -EINVAL;
        if (wc_ecc_check_key(&k->key) != 0)
                return -EINVAL;
        return p256_finish(k);
}

/* The key-encryption key from the ECDH of priv with pub; salt: the ephemeral point and the
 * recipient's fingerprint, so that the KEK is bound to both. */
static int kek_derive(p256_t *priv, p256_t *pub, const uint8_t eph[POINT_LEN], const uint8_t fpr[32],
                      uint8_t kek[BACKUP_KEK_LEN]) {
        _cleanup_erase_(32) uint8_t z[32];
        uint8_t salt[POINT_LEN + 32];
        word32 zlen = sizeof z;
        WC_RNG rng;
        if (wc_InitRng(&rng) != 0)
                return -EIO;
        (void) wc_ecc_set_rng(&priv->key, &rng); /* blinding (ECC_TIMING_RESISTANT) */
        int e = wc_ecc_shared_secret(&priv->key, &pub->key, z, &zlen);
        (void) wc_ecc_set_rng(&priv->key, NULL);
        wc_FreeRng(&rng);
        if (e != 0 || zlen != sizeof z)
                return -EIO;
        memcpy(salt, eph, POINT_LEN);
        memcpy(salt + POINT_LEN, fpr, 32);
        if (wc_HKDF(WC_SHA256, z, zlen, salt, sizeof salt, (const byte *) BACKUP_WRAP_AAD, strlen(BACKUP_WRAP_AAD), kek,
                    BACKUP_KEK_LEN) != 0)
                return -EIO;
        return 0;
}

int backup_recipient_fingerprint(const char *pem, size_t len, char hex[65]) {
        _cleanup_(p256_done) p256_t k = {};
        int r = p256_public(pem, len, &k);
        if (r == 0)
                hex_encode(k.fingerprint, sizeof k.fingerprint, hex);
        return r;
}

int backup_key_wrap_recipient(const uint8_t key[STORE_MASTER_KEY_LEN], const char *pem, size_t pem_len, char **ret) {
        if (!key || !ret)
                return -EINVAL;
        _cleanup_(p256_done) p256_t to = {}, eph = {};
        int r = p256_public(pem, pem_len, &to);
        if (r < 0)
                return r;
        WC_RNG rng;
        if (wc_InitRng(&rng) != 0)
                return -EIO;
        int e = wc_ecc_init(&eph.key);
        eph.ready = e == 0;
        if (e == 0)
                e = wc_ecc_make_key_ex(&rng, 32, &eph.key, ECC_SECP256R1);
        wc_FreeRng(&rng);
        if (e != 0 || p256_finish(&eph) < 0)
                return -EIO;

        uint8_t nonce[BACKUP_NONCE_LEN], sealed[BACKUP_SEALED_LEN];
        _cleanup_erase_(32) uint8_t kek[BACKUP_KEK_LEN];
        r = random_bytes(nonce, sizeof nonce);
        if (r == 0)
                r = kek_derive(&eph, &to, eph.point, to.fingerprint, kek);
        if (r == 0)
                r = wrap_seal(kek, key, nonce, sealed);
        if (r < 0)
                return r;
        json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:o, s:o}", "format", BACKUP_FORMAT " key", "kem",
                              WRAP_KEM, "kdf", WRAP_KDF, "recipient", hex_json(to.fingerprint, sizeof to.fingerprint),
                              "ephemeral", hex_json(eph.point, POINT_LEN), "cipher", BACKUP_WRAP_CIPHER, "nonce",
                              hex_json(nonce, sizeof nonce), "sealed", hex_json(sealed, sizeof sealed));
        return json_take_text(o, ret);
}

typedef struct recipient_wrap {
        uint8_t fingerprint[32], ephemeral[POINT_LEN], nonce[BACKUP_NONCE_LEN];
        uint8_t sealed[BACKUP_SEALED_LEN];
} recipient_wrap_t;

static int recipient_wrap_parse(const char *text, size_t len, recipient_wrap_t *w) {
        json_t *o = json_parse_limited(text, len);
        int r = 0;
        if (!json_is_object(o) || json_object_size(o) != 8 || !string_member_is(o, "format", BACKUP_FORMAT " key") ||
            !string_member_is(o, "kem", WRAP_KEM) || !string_member_is(o, "kdf", WRAP_KDF) ||
            !string_member_is(o, "cipher", BACKUP_WRAP_CIPHER) ||
            hex_member(o, "recipient", w->fingerprint, sizeof w->fingerprint) < 0 ||
            hex_member(o, "ephemeral", w->ephemeral, sizeof w->ephemeral) < 0 ||
            hex_member(o, "nonce", w->nonce, sizeof w->nonce) < 0 ||
            hex_member(o, "sealed", w->sealed, sizeof w->sealed) < 0)
                r = -EBADMSG;
        json_decref(o);
        return r;
}

int backup_key_kind(const char *text, size_t len, char recipient_hex[65]) {
        recipient_wrap_t w;
        if (recipient_wrap_parse(text, len, &w) == 0) {
                if (recipient_hex)
                        hex_encode(w.fingerprint, sizeof w.fingerprint, recipient_hex);
                return BACKUP_WRAP_RECIPIENT;
        }
        json_t *o = json_parse_limited(text, len);
        bool pass = json_is_object(o) && json_object_get(o, "iterations");
        json_decref(o);
        return pass ? BACKUP_WRAP_PASSPHRASE : -EBADMSG;
}

int backup_key_unwrap_identity(const char *text, size_t len, const char *pem, size_t pem_len,
                               uint8_t key[STORE_MASTER_KEY_LEN]) {
        if (!key)
                return -EINVAL;
        recipient_wrap_t w;
        int r = recipient_wrap_parse(text, len, &w);
        if (r < 0)
                return r;
        _cleanup_(p256_done) p256_t me = {}, eph = {};
        r = p256_private(pem, pem_len, &me);
        if (r < 0)
                return r;
        if (memcmp(me.fingerprint, w.fingerprint, sizeof w.fingerprint) != 0)
                return -EKEYREJECTED; /* another recipient's backup */
        /* the ephemeral point comes from the file: on the curve, or no ECDH with it */
        if (wc_ecc_init(&eph.key) != 0)
                return -EIO;
        eph.ready = true;
        if (wc_ecc_import_x963_ex(w.ephemeral, POINT_LEN, &eph.key, ECC_SECP256R1) != 0 ||
            wc_ecc_check_key(&eph.key) != 0)
                return -EBADMSG;
        _cleanup_erase_(32) uint8_t kek[BACKUP_KEK_LEN];
        r = kek_derive(&me, &eph, w.ephemeral, w.fingerprint, kek);
        return r < 0 ? r : wrap_open(kek, w.sealed, w.nonce, key);
}

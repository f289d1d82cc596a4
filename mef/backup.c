/* SPDX-License-Identifier: MIT */
/* The master key wrapped under a passphrase, and the manifest of a backup (mef/backup.h); the
 * wrap for a recipient key is in backup-recipient.c. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/pwdbased.h>

#include <inttypes.h>
#include <jansson.h>

#include "mef/backup-internal.h"
#include "mef/backup.h"

#define SALT_LEN 16u
#define NONCE_LEN BACKUP_NONCE_LEN
#define TAG_LEN BACKUP_TAG_LEN
#define WRAP_AAD BACKUP_WRAP_AAD
#define WRAP_KDF "pbkdf2-hmac-sha256"
#define WRAP_CIPHER BACKUP_WRAP_CIPHER
#define MANIFEST_MAC_INFO "msce-mef backup manifest v2"

const char *const backup_file_names[_BACKUP_FILES] = {
        [BACKUP_STORE] = BACKUP_FILE_STORE,
        [BACKUP_KEY] = BACKUP_FILE_KEY,
};

static int kek_derive(const char *pass, size_t pass_len, const uint8_t *salt, uint32_t iterations,
                      uint8_t kek[BACKUP_KEK_LEN]) {
        if (pass_len < BACKUP_PASSPHRASE_MIN || pass_len > BACKUP_PASSPHRASE_MAX)
                return -EINVAL;
        if (wc_PBKDF2(kek, (const byte *) pass, (int) pass_len, salt, SALT_LEN, (int) iterations, BACKUP_KEK_LEN,
                      WC_SHA256) != 0)
                return -EIO;
        return 0;
}

static int gcm_key(const uint8_t kek[BACKUP_KEK_LEN], Aes *aes) {
        if (wc_AesInit(aes, NULL, INVALID_DEVID) != 0)
                return -EIO;
        if (wc_AesGcmSetKey(aes, kek, BACKUP_KEK_LEN) != 0) {
                wc_AesFree(aes);
                return -EIO;
        }
        return 0;
}

int wrap_seal(const uint8_t kek[BACKUP_KEK_LEN], const uint8_t key[STORE_MASTER_KEY_LEN],
              const uint8_t nonce[BACKUP_NONCE_LEN], uint8_t sealed[BACKUP_SEALED_LEN]) {
        Aes aes;
        int r = gcm_key(kek, &aes);
        if (r < 0)
                return r;
        if (wc_AesGcmEncrypt(&aes, sealed, key, STORE_MASTER_KEY_LEN, nonce, BACKUP_NONCE_LEN,
                             sealed + STORE_MASTER_KEY_LEN, TAG_LEN, (const byte *) WRAP_AAD, strlen(WRAP_AAD)) != 0)
                r = -EIO;
        wc_AesFree(&aes);
        erase(&aes, sizeof aes);
        return r;
}

int wrap_open(const uint8_t kek[BACKUP_KEK_LEN], const uint8_t sealed[BACKUP_SEALED_LEN],
              const uint8_t nonce[BACKUP_NONCE_LEN], uint8_t key[STORE_MASTER_KEY_LEN]) {
        _cleanup_erase_(32) uint8_t out[STORE_MASTER_KEY_LEN];
        Aes aes;
        int r = gcm_key(kek, &aes);
        if (r < 0)
                return r;
        int e = wc_AesGcmDecrypt(&aes, out, sealed, STORE_MASTER_KEY_LEN, nonce, BACKUP_NONCE_LEN,
                                 sealed + STORE_MASTER_KEY_LEN, TAG_LEN, (const byte *) WRAP_AAD, strlen(WRAP_AAD));
        wc_AesFree(&aes);
        erase(&aes, sizeof aes);
        if (e != 0)
                return e == AES_GCM_AUTH_E ? -EKEYREJECTED : -EIO;
        memcpy(key, out, sizeof out);
        return 0;
}

json_t *hex_json(const uint8_t *p, size_t n) {
        char hex[2 * 128 + 1];
        if (n > 128)
                return NULL;
        hex_encode(p, n, hex);
        return json_string(hex);
}

int json_take_text(json_t *o, char **ret) {
        if (!o)
                return -ENOMEM;
        char *text = json_dumps(o, JSON_INDENT(2));
        json_decref(o);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

int backup_key_wrap(const uint8_t key[STORE_MASTER_KEY_LEN], const char *pass, size_t pass_len, uint32_t iterations,
                    char **ret) {
        if (!key || !pass || !ret || iterations < BACKUP_KDF_ITERATIONS_MIN || iterations > BACKUP_KDF_ITERATIONS_MAX)
                return -EINVAL;
        uint8_t salt[SALT_LEN], nonce[NONCE_LEN], sealed[BACKUP_SEALED_LEN];
        _cleanup_erase_(32) uint8_t kek[BACKUP_KEK_LEN];
        int r = random_bytes(salt, sizeof salt);
        if (r == 0)
                r = random_bytes(nonce, sizeof nonce);
        if (r == 0)
                r = kek_derive(pass, pass_len, salt, iterations, kek);
        if (r == 0)
                r = wrap_seal(kek, key, nonce, sealed);
        if (r < 0)
                return r;
        json_t *o = json_pack("{s:s, s:s, s:I, s:o, s:s, s:o, s:o}", "format", BACKUP_FORMAT " key", "kdf", WRAP_KDF,
                              "iterations", (json_int_t) iterations, "salt", hex_json(salt, sizeof salt), "cipher",
                              WRAP_CIPHER, "nonce", hex_json(nonce, sizeof nonce), "sealed",
                              hex_json(sealed, sizeof sealed));
        return json_take_text(o, ret);
}

int hex_member(json_t *o, const char *name, uint8_t *out, size_t n) {
        json_t *v = json_object_get(o, name);
        size_t len;
        if (!json_is_string(v) || json_string_length(v) != 2 * n || hex_decode(json_string_value(v), out, n, &len) < 0 ||
            len != n)
                return -EBADMSG;
        return 0;
}

bool string_member_is(json_t *o, const char *name, const char *want) {
        const char *v = json_string_value(json_object_get(o, name));
        return v && streq(v, want);
}

json_t *json_parse_limited(const char *text, size_t len) {
        if (!text || len > BACKUP_SMALL_FILE_MAX)
                return NULL;
        return json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
}

int backup_key_unwrap(const char *text, size_t len, const char *pass, size_t pass_len,
                      uint8_t key[STORE_MASTER_KEY_LEN]) {
        if (!pass || !key)
                return -EINVAL;
        json_t *o = json_parse_limited(text, len);
        uint8_t salt[SALT_LEN], nonce[NONCE_LEN], sealed[BACKUP_SEALED_LEN];
        json_t *it = json_object_get(o, "iterations");
        int r = 0;
        if (!json_is_object(o) || json_object_size(o) != 7 || !string_member_is(o, "format", BACKUP_FORMAT " key") ||
            !string_member_is(o, "kdf", WRAP_KDF) || !string_member_is(o, "cipher", WRAP_CIPHER) ||
            !json_is_integer(it) || json_integer_value(it) < BACKUP_KDF_ITERATIONS_MIN ||
            json_integer_value(it) > BACKUP_KDF_ITERATIONS_MAX || hex_member(o, "salt", salt, sizeof salt) < 0 ||
            hex_member(o, "nonce", nonce, sizeof nonce) < 0 || hex_member(o, "sealed", sealed, sizeof sealed) < 0)
                r = -EBADMSG;
        uint32_t iterations = r == 0 ? (uint32_t) json_integer_value(it) : 0;
        json_decref(o);
        if (r < 0)
                return r;
        if (pass_len < BACKUP_PASSPHRASE_MIN || pass_len > BACKUP_PASSPHRASE_MAX)
                return -EKEYREJECTED; /* no passphrase of that length wraps a key */
        _cleanup_erase_(32) uint8_t kek[BACKUP_KEK_LEN];
        r = kek_derive(pass, pass_len, salt, iterations, kek);
        return r < 0 ? r : wrap_open(kek, sealed, nonce, key);
}

int backup_manifest_format(const backup_manifest_t *m, char **ret) {
        if (!m || !ret)
                return -EINVAL;
        json_t *rows = json_object(), *files = json_object();
        bool ok = rows && files;
        for (size_t i = 0; ok && i < STORE_DUMP_TABLES_MAX; i++)
                ok = json_object_set_new(rows, store_dump_tables[i], json_integer((json_int_t) m->rows[i])) == 0;
        for (size_t i = 0; ok && i < _BACKUP_FILES; i++)
                ok = json_object_set_new(files, backup_file_names[i],
                                         json_pack("{s:I, s:s}", "size", (json_int_t) m->files[i].size, "sha256",
                                                   m->files[i].sha256)) == 0;
        json_t *o = ok ? json_pack("{s:s, s:i, s:i, s:I, s:s, s:O, s:O, s:o}", "format", BACKUP_FORMAT, "version",
                                   m->version, "schema", m->schema, "created", (json_int_t) m->created, "backend",
                                   m->backend, "rows", rows, "files", files, "mac", hex_json(m->mac, sizeof m->mac))
                       : NULL;
        json_decref(rows);
        json_decref(files);
        return json_take_text(o, ret);
}

/* A non-negative integer member up to max. */
static int uint_member(json_t *o, const char *name, int64_t max, int64_t *ret) {
        json_t *v = json_object_get(o, name);
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
                return -EBADMSG;
        *ret = json_integer_value(v);
        return 0;
}

static bool sha256_hex_is_valid(const char *s) {
        if (!s || strlen(s) != 64)
                return false;
        for (; *s; s++)
                if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
                        return false;
        return true;
}

static int manifest_from_json(json_t *o, backup_manifest_t *m) {
        int64_t v;
        if (!json_is_object(o) || !string_member_is(o, "format", BACKUP_FORMAT))
                return -EBADMSG;
        if (uint_member(o, "version", INT32_MAX, &v) < 0 || v < 1)
                return -EBADMSG;
        if (v > BACKUP_FORMAT_VERSION)
                return -EPROTONOSUPPORT;
        if (v < BACKUP_FORMAT_VERSION)
                return -EPROTO; /* no MAC: nothing tells its rows from changed ones */
        if (json_object_size(o) != 8 || hex_member(o, "mac", m->mac, sizeof m->mac) < 0)
                return -EBADMSG;
        m->version = (int) v;
        if (uint_member(o, "schema", INT32_MAX, &v) < 0 || v < 1)
                return -EBADMSG;
        m->schema = (int) v;
        if (uint_member(o, "created", INT64_MAX, &m->created) < 0)
                return -EBADMSG;
        const char *backend = json_string_value(json_object_get(o, "backend"));
        if (!backend || store_backend_from_string(backend) < 0)
                return -EBADMSG;
        snprintf(m->backend, sizeof m->backend, "%s", backend);

        json_t *rows = json_object_get(o, "rows"), *files = json_object_get(o, "files");
        if (!json_is_object(rows) || json_object_size(rows) != STORE_DUMP_TABLES_MAX || !json_is_object(files) ||
            json_object_size(files) != _BACKUP_FILES)
                return -EBADMSG;
        for (size_t i = 0; i < STORE_DUMP_TABLES_MAX; i++) {
                if (uint_member(rows, store_dump_tables[i], INT64_MAX, &v) < 0)
                        return -EBADMSG;
                m->rows[i] = (uint64_t) v;
        }
        for (size_t i = 0; i < _BACKUP_FILES; i++) {
                json_t *f = json_object_get(files, backup_file_names[i]);
                const char *h = json_string_value(json_object_get(f, "sha256"));
                if (!json_is_object(f) || json_object_size(f) != 2 || uint_member(f, "size", INT64_MAX, &v) < 0 ||
                    !sha256_hex_is_valid(h))
                        return -EBADMSG;
                m->files[i].size = (uint64_t) v;
                memcpy(m->files[i].sha256, h, 65);
        }
        return 0;
}

/* Every member but the MAC, one a line, in a fixed order: what the MAC is over. */
static int manifest_mac_text(const backup_manifest_t *m, char *buf, size_t size) {
        size_t n = 0;
        int k = snprintf(buf, size, "%s\nversion %d\nschema %d\ncreated %" PRId64 "\nbackend %s\n", BACKUP_FORMAT,
                         m->version, m->schema, m->created, m->backend);
        for (size_t i = 0; k >= 0 && (size_t) k < size - n && i < STORE_DUMP_TABLES_MAX; i++) {
                n += (size_t) k;
                k = snprintf(buf + n, size - n, "rows %s %" PRIu64 "\n", store_dump_tables[i], m->rows[i]);
        }
        for (size_t i = 0; k >= 0 && (size_t) k < size - n && i < _BACKUP_FILES; i++) {
                n += (size_t) k;
                k = snprintf(buf + n, size - n, "file %s %" PRIu64 " %.64s\n", backup_file_names[i], m->files[i].size,
                             m->files[i].sha256);
        }
        if (k < 0 || (size_t) k >= size - n)
                return -ENOBUFS;
        return (int) (n + (size_t) k);
}

static int manifest_mac(const uint8_t key[STORE_MASTER_KEY_LEN], const backup_manifest_t *m,
                        uint8_t mac[BACKUP_MAC_LEN]) {
        char text[1024];
        int n = manifest_mac_text(m, text, sizeof text);
        if (n < 0)
                return n;
        _cleanup_erase_(32) uint8_t mac_key[32];
        if (wc_HKDF(WC_SHA256, key, STORE_MASTER_KEY_LEN, NULL, 0, (const byte *) MANIFEST_MAC_INFO,
                    strlen(MANIFEST_MAC_INFO), mac_key, sizeof mac_key) != 0)
                return -EIO;
        Hmac hmac;
        if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0)
                return -EIO;
        int r = wc_HmacSetKey(&hmac, WC_SHA256, mac_key, sizeof mac_key) == 0 &&
                                wc_HmacUpdate(&hmac, (const byte *) text, (word32) n) == 0 &&
                                wc_HmacFinal(&hmac, mac) == 0
                        ? 0
                        : -EIO;
        wc_HmacFree(&hmac);
        erase(&hmac, sizeof hmac);
        return r;
}

int backup_manifest_seal(const uint8_t key[STORE_MASTER_KEY_LEN], backup_manifest_t *m) {
        if (!key || !m)
                return -EINVAL;
        return manifest_mac(key, m, m->mac);
}

int backup_manifest_verify(const uint8_t key[STORE_MASTER_KEY_LEN], const backup_manifest_t *m) {
        if (!key || !m)
                return -EINVAL;
        uint8_t mac[BACKUP_MAC_LEN];
        int r = manifest_mac(key, m, mac);
        if (r < 0)
                return r;
        uint8_t diff = 0;
        for (size_t i = 0; i < sizeof mac; i++)
                diff |= (uint8_t) (mac[i] ^ m->mac[i]);
        return diff == 0 ? 0 : -EKEYREJECTED;
}

int backup_manifest_parse(const char *text, size_t len, backup_manifest_t *ret) {
        if (!ret)
                return -EINVAL;
        json_t *o = json_parse_limited(text, len);
        backup_manifest_t m = { 0 };
        int r = manifest_from_json(o, &m);
        json_decref(o);
        if (r == 0)
                *ret = m;
        return r;
}

int backup_line_parse(const char *text, size_t len, const char **ret_table, json_t **ret_row, json_t **ret_root) {
        if (!text || len > BACKUP_LINE_MAX)
                return -EBADMSG;
        json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
        const char *table = json_string_value(json_object_get(o, "table"));
        json_t *row = json_object_get(o, "row");
        if (!json_is_object(o) || json_object_size(o) != 2 || !table || !json_is_object(row)) {
                json_decref(o);
                return -EBADMSG;
        }
        *ret_table = table;
        *ret_row = row;
        *ret_root = o;
        return 0;
}

/* SPDX-License-Identifier: MIT */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "hw/tpm2.h"
#include "keys/seal.h"
#include "util/util.h"

#define MAGIC "MSCE"
#define ENVELOPE_VERSION 1u
#define HEADER_LEN 28u
#define NONCE_LEN 12u
#define TAG_LEN 16u
#define BACKEND_TPM2 1u
#define BACKEND_HOST 2u
#define HOST_KEY_LEN 32u
#define HOST_WRAP_LEN (NONCE_LEN + SEAL_DEK_LEN + TAG_LEN)
#define HOST_WRAP_AAD "msce host.key v1"
#define ENVELOPE_MAX (HEADER_LEN + SEAL_BLOB_MAX + PROFILE_SERIALIZED_MAX + TAG_LEN)

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

/* AES-256-GCM one shot. Decrypt: -EBADMSG when the tag does not verify (out is wiped then). */
static int gcm(bool encrypt, const uint8_t key[32], const uint8_t nonce[NONCE_LEN], const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[TAG_LEN]) {
        Aes aes;
        int r = wc_AesInit(&aes, NULL, INVALID_DEVID);
        if (r != 0)
                return -EIO;
        r = wc_AesGcmSetKey(&aes, key, 32);
        if (r == 0 && encrypt)
                r = wc_AesGcmEncrypt(&aes, out, in, (word32) len, nonce, NONCE_LEN, tag, TAG_LEN, aad,
                                     (word32) aad_len);
        else if (r == 0)
                r = wc_AesGcmDecrypt(&aes, out, in, (word32) len, nonce, NONCE_LEN, tag, TAG_LEN, aad,
                                     (word32) aad_len);
        wc_AesFree(&aes);
        erase(&aes, sizeof aes); /* the key schedule */
        if (r == 0)
                return 0;
        erase(out, len);
        return r == AES_GCM_AUTH_E ? -EBADMSG : -EIO;
}

/* Read host.key; with create, make it first when missing. It appears complete or not at all:
 * written to a temporary file, fsynced, then link()ed, which fails rather than replace a key
 * that another writer put there first. */
static int host_key_get(const char *state_dir, bool create, uint8_t ret[HOST_KEY_LEN]) {
        char path[PATH_MAX], tmp[PATH_MAX];
        int r = path_join(state_dir, SEAL_HOST_KEY_NAME, path);
        if (r < 0)
                return r;

        for (unsigned attempt = 0;; attempt++) {
                _cleanup_secret_ secret_t s = { 0 };
                r = secret_file_read(path, HOST_KEY_LEN, &s);
                if (r == 0) {
                        if (s.len != HOST_KEY_LEN)
                                return -EBADMSG;
                        memcpy(ret, s.data, HOST_KEY_LEN);
                        return 0;
                }
                if (r == -EFBIG || r == -ENODATA)
                        return -EBADMSG;
                if (r != -ENOENT)
                        return r;
                if (!create)
                        return -EKEYREJECTED; /* the envelope's key is gone */
                if (attempt > 0)
                        return -EIO;

                if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int) sizeof tmp)
                        return -ENAMETOOLONG;
                _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
                if (fd < 0)
                        return negative_errno();
                _cleanup_erase_(32) uint8_t key[HOST_KEY_LEN];
                r = fchmod(fd, 0400) < 0 ? negative_errno() : 0;
                if (r == 0)
                        r = random_bytes(key, sizeof key);
                if (r == 0)
                        r = write_all(fd, key, sizeof key);
                if (r == 0 && fsync(fd) < 0)
                        r = negative_errno();
                if (r == 0 && link(tmp, path) < 0 && errno != EEXIST)
                        r = negative_errno();
                (void) unlink(tmp);
                if (r < 0)
                        return r;
                _cleanup_close_ int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (dfd < 0 || fsync(dfd) < 0)
                        return negative_errno();
                /* Read back what is now there: ours, or a concurrent writer's. */
        }
}

static int host_wrap(const char *state_dir, const uint8_t dek[SEAL_DEK_LEN], uint8_t out[HOST_WRAP_LEN]) {
        _cleanup_erase_(32) uint8_t kek[HOST_KEY_LEN];
        int r = host_key_get(state_dir, true, kek);
        if (r < 0)
                return r;
        r = random_bytes(out, NONCE_LEN);
        if (r < 0)
                return r;
        return gcm(true, kek, out, (const uint8_t *) HOST_WRAP_AAD, strlen(HOST_WRAP_AAD), dek, SEAL_DEK_LEN,
                   out + NONCE_LEN, out + NONCE_LEN + SEAL_DEK_LEN);
}

static int host_unwrap(const char *state_dir, const uint8_t *blob, size_t len, uint8_t dek[SEAL_DEK_LEN]) {
        if (len != HOST_WRAP_LEN)
                return -EBADMSG;
        _cleanup_erase_(32) uint8_t kek[HOST_KEY_LEN];
        int r = host_key_get(state_dir, false, kek);
        if (r < 0)
                return r;
        uint8_t tag[TAG_LEN];
        memcpy(tag, blob + NONCE_LEN + SEAL_DEK_LEN, TAG_LEN);
        return gcm(false, kek, blob, (const uint8_t *) HOST_WRAP_AAD, strlen(HOST_WRAP_AAD), blob + NONCE_LEN,
                   SEAL_DEK_LEN, dek, tag);
}

static int opts_check(const seal_opts_t *o) {
        if (!o || !o->state_dir || !*o->state_dir || o->method < 0 || o->method >= _SEAL_METHOD_MAX)
                return -EINVAL;
        return 0;
}

int seal_store(const seal_opts_t *o, const stored_profile_t *p, seal_method_t *ret_method) {
        tpm2_last_rc_clear(); /* the host key reaches no TPM: no code left by an earlier call */
        char path[PATH_MAX];
        int r = opts_check(o);
        if (r < 0)
                return r;
        r = path_join(o->state_dir, SEAL_ENVELOPE_NAME, path);
        if (r < 0)
                return r;

        _cleanup_secret_ secret_t pt = { 0 };
        r = profile_serialize(p, &pt);
        if (r < 0)
                return r;

        seal_method_t method = o->method;
        if (method == SEAL_METHOD_AUTO) {
                /* The host key when there is no TPM; a TPM that is there but fails (busy, not
                 * started) is an error to retry, not a reason to seal without it. */
                r = tpm2_probe(o->tcti);
                if (r < 0 && r != -ENODEV && r != -EOPNOTSUPP)
                        return r;
                method = r == 0 ? SEAL_METHOD_TPM2 : SEAL_METHOD_HOST;
        }

        _cleanup_erase_(32) uint8_t dek[SEAL_DEK_LEN];
        r = random_bytes(dek, sizeof dek);
        if (r < 0)
                return r;

        _cleanup_free_ uint8_t *blob = NULL;
        size_t blob_len = 0;
        if (method == SEAL_METHOD_TPM2) {
                r = tpm2_seal(o->tcti, o->pcrs, dek, sizeof dek, &blob, &blob_len);
                if (r < 0)
                        return r;
                if (blob_len == 0 || blob_len > SEAL_BLOB_MAX)
                        return -EIO;
        } else {
                blob = malloc(HOST_WRAP_LEN);
                if (!blob)
                        return -ENOMEM;
                blob_len = HOST_WRAP_LEN;
                r = host_wrap(o->state_dir, dek, blob);
                if (r < 0)
                        return r;
        }

        size_t len = HEADER_LEN + blob_len + pt.len + TAG_LEN;
        _cleanup_free_ uint8_t *env = calloc(1, len);
        if (!env)
                return -ENOMEM;
        memcpy(env, MAGIC, 4);
        env[4] = ENVELOPE_VERSION;
        env[5] = method == SEAL_METHOD_TPM2 ? BACKEND_TPM2 : BACKEND_HOST;
        put_be32(env + 8, (uint32_t) blob_len);
        put_be32(env + 12, (uint32_t) pt.len);
        r = random_bytes(env + 16, NONCE_LEN);
        if (r < 0)
                return r;
        memcpy(env + HEADER_LEN, blob, blob_len);
        size_t aad_len = HEADER_LEN + blob_len;
        r = gcm(true, dek, env + 16, env, aad_len, pt.data, pt.len, env + aad_len, env + aad_len + pt.len);
        if (r < 0)
                return r;

        r = file_write_atomic(path, env, len, 0600);
        if (r < 0)
                return r;
        if (ret_method)
                *ret_method = method;
        return 0;
}

int seal_load(const seal_opts_t *o, stored_profile_t *ret, seal_method_t *ret_method) {
        tpm2_last_rc_clear(); /* the host key reaches no TPM: no code left by an earlier call */
        char path[PATH_MAX];
        int r = opts_check(o);
        if (r < 0)
                return r;
        if (!ret)
                return -EINVAL;
        r = path_join(o->state_dir, SEAL_ENVELOPE_NAME, path);
        if (r < 0)
                return r;

        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        r = file_read_all(path, ENVELOPE_MAX, &buf, &len);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        const uint8_t *env = (const uint8_t *) buf;

        if (len < HEADER_LEN + TAG_LEN || memcmp(env, MAGIC, 4) != 0 || env[4] != ENVELOPE_VERSION ||
            (env[5] != BACKEND_TPM2 && env[5] != BACKEND_HOST) || env[6] != 0 || env[7] != 0)
                return -EBADMSG;
        uint32_t blob_len = get_be32(env + 8), ct_len = get_be32(env + 12);
        if (blob_len == 0 || blob_len > SEAL_BLOB_MAX || ct_len == 0 || ct_len > PROFILE_SERIALIZED_MAX ||
            len != HEADER_LEN + (size_t) blob_len + ct_len + TAG_LEN)
                return -EBADMSG;
        const uint8_t *blob = env + HEADER_LEN, *ct = blob + blob_len, *tag = ct + ct_len;

        _cleanup_erase_(32) uint8_t dek[SEAL_DEK_LEN];
        seal_method_t method;
        if (env[5] == BACKEND_TPM2) {
                size_t n = 0;
                method = SEAL_METHOD_TPM2;
                r = tpm2_unseal(o->tcti, blob, blob_len, dek, sizeof dek, &n);
                if (r == -ENOBUFS || (r == 0 && n != sizeof dek))
                        r = -EBADMSG;
        } else {
                method = SEAL_METHOD_HOST;
                r = host_unwrap(o->state_dir, blob, blob_len, dek);
        }
        if (r < 0)
                return r;

        _cleanup_secret_ secret_t pt = { .data = malloc(ct_len), .len = ct_len };
        if (!pt.data)
                return -ENOMEM;
        uint8_t tag_copy[TAG_LEN];
        memcpy(tag_copy, tag, TAG_LEN);
        r = gcm(false, dek, env + 16, env, HEADER_LEN + blob_len, ct, ct_len, pt.data, tag_copy);
        if (r < 0)
                return r;

        _cleanup_(stored_profile_wipe) stored_profile_t p;
        r = profile_parse(pt.data, pt.len, &p);
        if (r < 0)
                return -EBADMSG;
        *ret = p;
        if (ret_method)
                *ret_method = method;
        return 0;
}

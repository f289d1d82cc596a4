/* SPDX-License-Identifier: MIT */
/* The master key: its file, the check value in meta that tells a wrong key, noticing another
 * process's rekey, and the sealing of each secret column under it. */
#include "mef/store-internal.h"

#include <wolfssl/wolfcrypt/error-crypt.h>
#include <wolfssl/wolfcrypt/hmac.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "mef/store-backup.h"

static int aes_set(Aes *aes, bool *ready, const uint8_t key[STORE_MASTER_KEY_LEN]) {
        if (!*ready) {
                if (wc_AesInit(aes, NULL, INVALID_DEVID) != 0)
                        return -EIO;
                *ready = true;
        }
        return wc_AesGcmSetKey(aes, key, STORE_MASTER_KEY_LEN) == 0 ? 0 : -EIO;
}

int store_key_use(mef_store_t *s, const uint8_t key[STORE_MASTER_KEY_LEN]) {
        return aes_set(&s->aes, &s->aes_ready, key);
}

void store_key_forget_prev(mef_store_t *s) {
        if (!s->prev_ready)
                return;
        wc_AesFree(&s->prev);
        erase(&s->prev, sizeof s->prev);
        s->prev_ready = false;
}

int store_master_key_read(const char *path, uint8_t key[STORE_MASTER_KEY_LEN]) {
        _cleanup_secret_ secret_t k = { 0 };
        int r = secret_file_read(path, STORE_MASTER_KEY_LEN, &k);
        if (r == -EFBIG || r == -ENODATA)
                return -EINVAL;
        if (r < 0)
                return r;
        if (k.len != STORE_MASTER_KEY_LEN)
                return -EINVAL;
        memcpy(key, k.data, STORE_MASTER_KEY_LEN);
        return 0;
}

int store_key_file_create(const char *path, const uint8_t key[STORE_MASTER_KEY_LEN], const struct stat *owner) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0400);
        if (fd < 0)
                return negative_errno();
        int r = 0;
        if (fchmod(fd, 0400) < 0 || (owner && geteuid() == 0 && fchown(fd, owner->st_uid, owner->st_gid) < 0))
                r = negative_errno();
        if (r == 0)
                r = write_all(fd, key, STORE_MASTER_KEY_LEN);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        /* and its name: else a power cut can take the file back while the store (a check value
         * committed under this key: init, rekey, restore) depends on it already */
        if (r == 0)
                r = fsync_parent_dir(path);
        if (r < 0)
                unlink(path);
        return r;
}

static int master_key_create(const char *path, uint8_t key[STORE_MASTER_KEY_LEN]) {
        int r = mkdir_parents(path, 0700);
        if (r == 0)
                r = random_bytes(key, STORE_MASTER_KEY_LEN);
        if (r == 0)
                r = store_key_file_create(path, key, NULL);
        if (r < 0)
                erase(key, STORE_MASTER_KEY_LEN);
        return r;
}

int store_master_key_load(const char *path, bool create, uint8_t key[STORE_MASTER_KEY_LEN]) {
        int r = store_master_key_read(path, key);
        if (r != -ENOENT || !create)
                return r;
        r = master_key_create(path, key);
        if (r == -EEXIST) /* created by someone else meanwhile */
                r = store_master_key_read(path, key);
        return r;
}

/* ---- the key's ID ---- */

#define MASTER_KEY_ID_INFO "msce-mef master key id"

int store_master_key_id(const uint8_t key[STORE_MASTER_KEY_LEN], char hex[STORE_MASTER_KEY_ID_HEX]) {
        if (!key || !hex)
                return -EINVAL;
        uint8_t id[STORE_MASTER_KEY_ID_LEN];
        if (wc_HKDF(WC_SHA256, key, STORE_MASTER_KEY_LEN, NULL, 0, (const byte *) MASTER_KEY_ID_INFO,
                    strlen(MASTER_KEY_ID_INFO), id, sizeof id) != 0)
                return -EIO;
        hex_encode(id, sizeof id, hex);
        return 0;
}

int store_master_key_file_id(const char *path, char hex[STORE_MASTER_KEY_ID_HEX]) {
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        int r = store_master_key_read(path, key);
        return r < 0 ? r : store_master_key_id(key, hex);
}

bool store_master_key_id_is_valid(const char *s) {
        if (!s || strlen(s) != 2 * STORE_MASTER_KEY_ID_LEN)
                return false;
        for (; *s; s++)
                if (hex_digit(*s) < 0 || (*s >= 'A' && *s <= 'F')) /* lowercase, as printed */
                        return false;
        return true;
}

/* ---- the check value ---- */

/* for_share: PostgreSQL, in a transaction: a share lock on the check row; a rekey updates it
 * first, so a writer that sealed under the old key commits before the rekey re-encrypts (and
 * sees its row). */
static int check_select(mef_store_t *s, bool for_share, uint8_t *blob, size_t size, size_t *ret_len) {
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s,
                    for_share ? "SELECT value FROM meta WHERE name = 'check' FOR SHARE"
                              : "SELECT value FROM meta WHERE name = 'check'",
                    &st));
        int r = step_row(st);
        if (r <= 0)
                return r;
        size_t n;
        const void *v = db_column_blob(st, 0, &n);
        if (!v || n > size)
                return -EBADMSG;
        memcpy(blob, v, n);
        *ret_len = n;
        return 1;
}

int store_check_read(mef_store_t *s, uint8_t *blob, size_t size, size_t *ret_len) {
        return check_select(s, false, blob, size, ret_len);
}

int store_check_write(mef_store_t *s) {
        uint8_t blob[CHECK_MAX];
        size_t n;
        int r = store_secret_seal(s, "check", (const uint8_t *) CHECK_PLAINTEXT, strlen(CHECK_PLAINTEXT), blob, &n);
        if (r < 0)
                return r;
        /* Never over another's: two processes creating the store at once each read "no check
         * value"; the second must not replace the first's key with its own. */
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, "INSERT INTO meta (name, value) VALUES ('check', ?1) ON CONFLICT (name) DO NOTHING", &st));
        TRY(db_bind_blob(st, 1, blob, n));
        r = step_done(st);
        if (r < 0)
                return r;
        if (s->d->ops->changes(s->d) == 1)
                return 1;
        r = store_check_read(s, blob, sizeof blob, &n);
        if (r < 0)
                return r;
        return r == 0 ? -EIO : store_check_verify(s, blob, n); /* -EIO: gone again (a restore's forget) */
}

static int secret_open_with(Aes *aes, const char *aad, const void *blob, size_t blob_len, uint8_t *out,
                            size_t out_size, size_t *ret_len);

int store_check_verify(mef_store_t *s, const uint8_t *blob, size_t n) {
        char pt[sizeof(CHECK_PLAINTEXT)];
        size_t len;
        /* the current key only: the previous one is no longer the store's */
        int r = secret_open_with(&s->aes, "check", blob, n, (uint8_t *) pt, sizeof pt, &len);
        if (r < 0)
                return r;
        if (len != strlen(CHECK_PLAINTEXT) || memcmp(pt, CHECK_PLAINTEXT, len) != 0)
                return -EBADMSG;
        return 0;
}

int store_key_opens_check(const uint8_t key[STORE_MASTER_KEY_LEN], const uint8_t *blob, size_t n) {
        if (!key || !blob)
                return -EINVAL;
        mef_store_t t = { 0 };
        int r = store_key_use(&t, key);
        if (r == 0)
                r = store_check_verify(&t, blob, n);
        if (t.aes_ready)
                wc_AesFree(&t.aes);
        erase(&t, sizeof t);
        return r;
}

int store_rekey_pending_path(const char *key_path, char *out, size_t size) {
        int n = snprintf(out, size, "%s.new", key_path);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* Which key file opens the check value blob: 0 the key path's (in key), 1 the pending one's (in
 * next; key holds the key path's when *ret_has_key), -EBADMSG neither. Only a missing file is
 * no key: any other failure (EMFILE, EIO, ...) is returned, or a handle would take the new key
 * without the old one that rows still need. */
static int key_files_read(const char *key_path, const uint8_t *blob, size_t n, uint8_t key[STORE_MASTER_KEY_LEN],
                          uint8_t next[STORE_MASTER_KEY_LEN], bool *ret_has_key) {
        char pending[PATH_MAX];
        int r = store_rekey_pending_path(key_path, pending, sizeof pending);
        if (r < 0)
                return r;
        r = store_master_key_read(key_path, key);
        if (r < 0 && r != -ENOENT)
                return r;
        *ret_has_key = r == 0;
        if (*ret_has_key && store_key_opens_check(key, blob, n) == 0)
                return 0;
        r = store_master_key_read(pending, next);
        if (r < 0 && r != -ENOENT)
                return r;
        return r == 0 && store_key_opens_check(next, blob, n) == 0 ? 1 : -EBADMSG;
}

/* A rekey writes the new key to "<path>.new", replaces the check value, re-encrypts in steps,
 * then renames the new file over the key path: the check value tells which file is current,
 * and while the new one is, the key path's opens what is not re-encrypted yet. */
int store_key_adopt(mef_store_t *s, const uint8_t *blob, size_t n) {
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        _cleanup_erase_(32) uint8_t next[STORE_MASTER_KEY_LEN];
        bool has_key;
        int r = key_files_read(s->key_path, blob, n, key, next, &has_key);
        if (r == 0) {
                r = store_key_use(s, key);
                store_key_forget_prev(s);
        } else if (r == 1) {
                r = has_key ? aes_set(&s->prev, &s->prev_ready, key) : 0;
                if (r == 0)
                        r = store_key_use(s, next);
        }
        if (r < 0)
                return r;
        memcpy(s->check, blob, n);
        s->check_len = n;
        return 0;
}

int store_master_key_ids(mef_store_t *s, store_key_ids_t *ret) {
        if (!s || !s->key_path || !ret)
                return -EINVAL;
        char pending[PATH_MAX];
        int r = store_rekey_pending_path(s->key_path, pending, sizeof pending);
        if (r >= 0)
                r = store_key_refresh(s); /* the check value now */
        if (r < 0)
                return r;
        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        _cleanup_erase_(32) uint8_t next[STORE_MASTER_KEY_LEN];
        bool has_key;
        r = key_files_read(s->key_path, s->check, s->check_len, key, next, &has_key);
        if (r < 0)
                return r;
        store_key_ids_t k = { .rekey = r == 1 ? STORE_REKEY_UNDER_WAY : STORE_REKEY_NONE };
        if (k.rekey == STORE_REKEY_UNDER_WAY) {
                r = store_master_key_id(next, k.current);
                if (r == 0 && has_key)
                        r = store_master_key_id(key, k.previous);
        } else {
                r = store_master_key_id(key, k.current);
                /* the pending file, not read when the key file opens the store */
                int p = store_master_key_read(pending, next);
                if (p == 0) {
                        k.rekey = STORE_REKEY_PREPARED;
                        r = store_master_key_id(next, k.next);
                } else if (p != -ENOENT && p != -EINVAL) /* -EINVAL: torn, a rekey replaces it */
                        r = p;
        }
        if (r < 0)
                return r;
        *ret = k;
        return 0;
}

int store_key_keep_prev(mef_store_t *s, const uint8_t key[STORE_MASTER_KEY_LEN]) {
        if (s->prev_ready || store_key_opens_check(key, s->check, s->check_len) == 0)
                return 0; /* the current key, or a previous one held already */
        return aes_set(&s->prev, &s->prev_ready, key);
}

/* The previous key dropped once the rekey that needed it has finished (its new key file renamed
 * over the key path): every secret is under the current one. */
static void forget_prev_when_done(mef_store_t *s) {
        char pending[PATH_MAX];
        if (s->prev_ready && store_rekey_pending_path(s->key_path, pending, sizeof pending) == 0 &&
            access(pending, F_OK) < 0)
                store_key_forget_prev(s);
}

void store_key_settle(mef_store_t *s) {
        if (s->prev_ready && !s->d->ops->in_transaction(s->d))
                forget_prev_when_done(s);
}

int store_key_refresh(mef_store_t *s) {
        if (!s->key_path)
                return 0;
        uint8_t blob[sizeof s->check];
        size_t n = 0;
        bool for_share = s->d->ops->dialect == DB_POSTGRESQL && s->d->ops->in_transaction(s->d);
        int r = check_select(s, for_share, blob, sizeof blob, &n);
        if (r <= 0)
                return r;
        if (n == s->check_len && memcmp(blob, s->check, n) == 0) {
                forget_prev_when_done(s);
                r = 0;
        } else {
                r = store_key_adopt(s, blob, n);
                if (r < 0)
                        return r;
                r = 1;
        }
        if (for_share) /* the check row held shared to the transaction's end: its key stays, as a guard's */
                s->check_guarded = true;
        return r;
}

/* ---- secrets ---- */

int store_aad_format(char out[AAD_MAX], const char *prefix, const char *id) {
        int n = snprintf(out, AAD_MAX, "%s:%s", prefix, id);
        return n < 0 || (size_t) n >= AAD_MAX ? -EINVAL : 0;
}

int store_secret_seal(mef_store_t *s, const char *aad, const uint8_t *pt, size_t n, uint8_t *out, size_t *ret_len) {
        int r = random_bytes(out, NONCE_LEN);
        if (r < 0)
                return r;
        if (wc_AesGcmEncrypt(&s->aes, out + NONCE_LEN, pt, (word32) n, out, NONCE_LEN, out + NONCE_LEN + n,
                             TAG_LEN, (const byte *) aad, (word32) strlen(aad)) != 0)
                return -EIO;
        *ret_len = NONCE_LEN + n + TAG_LEN;
        return 0;
}

static int secret_open_with(Aes *aes, const char *aad, const void *blob, size_t blob_len, uint8_t *out,
                            size_t out_size, size_t *ret_len) {
        const uint8_t *b = blob;
        if (!b || blob_len < NONCE_LEN + TAG_LEN || blob_len - NONCE_LEN - TAG_LEN > out_size)
                return -EBADMSG;
        size_t n = blob_len - NONCE_LEN - TAG_LEN;
        int r = wc_AesGcmDecrypt(aes, out, b + NONCE_LEN, (word32) n, b, NONCE_LEN, b + NONCE_LEN + n, TAG_LEN,
                                 (const byte *) aad, (word32) strlen(aad));
        if (r != 0) {
                erase(out, n);
                return r == AES_GCM_AUTH_E ? -EBADMSG : -EIO;
        }
        *ret_len = n;
        return 0;
}

int store_secret_open_current(mef_store_t *s, const char *aad, const void *blob, size_t blob_len, uint8_t *out,
                              size_t out_size, size_t *ret_len) {
        return secret_open_with(&s->aes, aad, blob, blob_len, out, out_size, ret_len);
}

int store_secret_open(mef_store_t *s, const char *aad, const void *blob, size_t blob_len, uint8_t *out,
                      size_t out_size, size_t *ret_len) {
        int r = store_secret_open_current(s, aad, blob, blob_len, out, out_size, ret_len);
        if (r == -EBADMSG && s->prev_ready)
                r = secret_open_with(&s->prev, aad, blob, blob_len, out, out_size, ret_len);
        return r;
}

int store_secret_reseal(mef_store_t *s, const char *aad, uint8_t *blob, size_t *len) {
        _cleanup_erase_(64) uint8_t pt[MSG_KEY_MAX];
        size_t n;
        int r = secret_open_with(&s->aes, aad, blob, *len, pt, sizeof pt, &n);
        if (r != -EBADMSG)
                return r;
        if (!s->prev_ready)
                return -EBADMSG;
        r = secret_open_with(&s->prev, aad, blob, *len, pt, sizeof pt, &n);
        if (r == 0)
                r = store_secret_seal(s, aad, pt, n, blob, len);
        return r < 0 ? r : 1;
}

int store_column_key(mef_store_t *s, db_stmt_t *st, int col, const char *prefix, const char *id,
                     uint8_t out[MSG_KEY_MAX], size_t *ret_len) {
        char aad[AAD_MAX];
        _cleanup_erase_(64) uint8_t key[MSG_KEY_MAX];
        size_t n;
        int r = store_aad_format(aad, prefix, id);
        if (r < 0)
                return r;
        size_t blob_len;
        const void *blob = db_column_blob(st, col, &blob_len);
        r = store_secret_open(s, aad, blob, blob_len, key, sizeof key, &n);
        if (r == -EBADMSG && store_key_refresh(s) > 0) /* rekeyed meanwhile */
                r = store_secret_open(s, aad, blob, blob_len, key, sizeof key, &n);
        if (r < 0)
                return r;
        if (n < MSG_KEY_MIN)
                return -EBADMSG;
        memcpy(out, key, n);
        *ret_len = n;
        return 0;
}

/* PostgreSQL, in a transaction: what store_key_refresh() makes sure of, without waiting for
 * the check value. Queued: the check row held shared until the end of the transaction, as the
 * read would hold it, and the transaction failed (a division by zero: -ESTALE) when the value
 * is not this handle's, whether a rekey committed before or is waited for. Once a
 * transaction. */
int store_key_guard(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        if (s->check_guarded || !s->key_path || s->d->ops->dialect != DB_POSTGRESQL ||
            !s->d->ops->in_transaction(s->d))
                return 0;
        /* a guarded handle reads no check value while it stays the same: the old key goes here */
        forget_prev_when_done(s);
        _cleanup_stmt_ db_stmt_t *st = NULL;
        TRY(prepare(s, "SELECT 1 / (value = ?1)::int FROM meta WHERE name = 'check' FOR SHARE", &st));
        TRY(db_bind_blob(st, 1, s->check, s->check_len));
        TRY(db_step_later(st));
        s->check_guarded = true;
        return 0;
}

int store_key_hold(mef_store_t *s) {
        if (!s)
                return -EINVAL;
        int r = store_key_refresh(s);
        return r < 0 ? r : 0;
}

int store_key_seal(mef_store_t *s, const char *prefix, const char *id, const uint8_t *key, size_t n,
                   uint8_t blob[SEALED_MAX], size_t *ret_len) {
        if (n == 0) {
                *ret_len = 0;
                return 0;
        }
        char aad[AAD_MAX];
        int r = store_aad_format(aad, prefix, id);
        if (r < 0)
                return r;
        /* never seal under a key a rekey has replaced: the transaction's guard checks it, or a
         * read of the check value now */
        if (!s->check_guarded) {
                r = store_key_refresh(s);
                if (r < 0)
                        return r;
        }
        return store_secret_seal(s, aad, key, n, blob, ret_len);
}

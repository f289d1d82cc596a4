/* SPDX-License-Identifier: MIT */
#pragma once
/* Handing keys to the CSE service through the kernel keyring (architecture.md, "the keyring
 * contract"). The agent files user-type keys "msce:ltk" and "msce:kpsa:<kpsaID>" in a keyring
 * "msce" linked into the persistent keyring of the service user. Owner: the service uid;
 * permissions possessor all, user view|read|search, group and other nothing, on the keys and on
 * the "msce" keyring, so no other uid (root included, unless it possesses the keyring) can read
 * them.
 *
 * Needs CAP_SETUID (keyctl_get_persistent for another uid) and CAP_SYS_ADMIN (keyctl_chown).
 * Every call opens the persistent keyring, which links it into the caller's session keyring
 * (giving the caller possession) and pushes its expiry forward by
 * /proc/sys/kernel/keys/persistent_keyring_expiry (3 days by default): an expired persistent
 * keyring takes the keys with it, so the agent calls keyring_find() at a third of that (and
 * before each poll) and reinstalls on -ENOKEY. The persistent keyring is per user namespace:
 * neither the agent nor the CSE may run with PrivateUsers=. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KEYRING_NAME "msce"         /* the keyring in the persistent keyring */
#define KEYRING_PREFIX "msce:"      /* every key description starts with it */
#define KEYRING_LTK "ltk"           /* name of the Long Term Key */
#define KEYRING_KPSA "kpsa:"        /* prefix of the name of a Kpsa, before the kpsaID */
#define KEYRING_KPSA_ID_MAX 300u    /* a kpsaID (ids_check_kpsa_id), so a description holds no
                                     * path, space or control characters */
#define KEYRING_LTK_MIN 16u
#define KEYRING_LTK_MAX 64u
#define KEYRING_KPSA_LEN 32u
#define KEYRING_KEYS_MAX 64u        /* ltk + targets (the protocol allows 16) */
/* "msce:" "kpsa:" kpsaID NUL */
#define KEYRING_DESC_MAX (sizeof(KEYRING_PREFIX) - 1 + sizeof(KEYRING_KPSA) - 1 + KEYRING_KPSA_ID_MAX + 1)

typedef struct keyring_key {
        const char *name;     /* "ltk" or "kpsa:<kpsaID>": the description after "msce:" */
        const uint8_t *data;  /* secret: passed to add_key() only, never copied */
        size_t len;           /* ltk: 16..64, kpsa: 32 */
} keyring_key_t;

/* Replace the keys of service_uid with exactly keys[0..n): one "ltk" and any number of distinct
 * "kpsa:<id>". A complete new "msce" keyring is built in the caller's thread keyring, then linked
 * into the persistent keyring, which displaces the old "msce" link in one step (readers see the
 * old or the new keyring, never none); then, once every search that may still walk the old
 * keyring has finished (an RCU grace period, a few ms), every key of the old keyring and the old
 * keyring are revoked and unlinked (the caller's thread and process keyrings serve as staging; nothing stays
 * there). On failure the old keys stay in place and nothing new is left behind; only when the old
 * keys cannot all be revoked are the new ones in place and the error returned nonetheless.
 * -EINVAL: bad uid (0 or -1: the contract cannot hold for root), names, lengths, duplicates, no
 * ltk, n out of 1..KEYRING_KEYS_MAX. -EDQUOT: the key quota of service_uid is exhausted
 * (keyring_strerror()). -EPERM/-EACCES: missing capabilities. */
int keyring_install(uid_t service_uid, const keyring_key_t *keys, size_t n);

/* What keyring_install() refuses with -EINVAL, checked without a keyring (no system call): for a
 * caller that must not commit to keys the keyring would refuse (keys/profile.h). */
int keyring_keys_validate(const keyring_key_t *keys, size_t n);

/* Revoke and unlink every key of the "msce" keyring of service_uid and the keyring itself.
 * 0 also when there was nothing to remove. */
int keyring_remove(uid_t service_uid);

/* Serial of "msce:<name>" in the "msce" keyring of service_uid, or of the "msce" keyring itself
 * when name is NULL. -ENOKEY when absent. Also refreshes the persistent keyring's expiry. */
int keyring_find(uid_t service_uid, const char *name, int32_t *ret_serial);

/* Full descriptions ("msce:ltk", "msce:kpsa:...") of the keys in the "msce" keyring, sorted, as
 * a NULL-terminated array; free with keyring_names_free(). -ENOKEY when there is no keyring. */
int keyring_list(uid_t service_uid, char ***ret_names);
void keyring_names_free(char **names);
static inline void keyring_names_freep(char ***p) {
        keyring_names_free(*p);
}
#define _cleanup_keyring_names_ __attribute__((cleanup(keyring_names_freep)))

/* A message for a keyring_*() error, with a hint where one helps, e.g. for -EDQUOT
 * "key quota exhausted: see /proc/sys/kernel/keys/maxkeys and maxbytes". The caller names the
 * uid: log_error("Failed to hand keys to uid %u: %s", uid, keyring_strerror(r)). Never NULL. */
const char *keyring_strerror(int r);

/* Resolve a user name (or a decimal uid) to uid and primary gid through the passwd database.
 * -EINVAL for an empty or overlong name, -ESRCH when there is no such user. ret_gid may be NULL. */
int user_resolve(const char *name, uid_t *ret_uid, gid_t *ret_gid);
/* The name of uid into ret (size bytes, truncated). -ESRCH when no user has it. */
int user_name(uid_t uid, char *ret, size_t size);

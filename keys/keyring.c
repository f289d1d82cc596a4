/* SPDX-License-Identifier: MIT */
#include <keyutils.h>
#include <linux/membarrier.h>
#include <pwd.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "keys/keyring.h"
#include "proto/ids.h"
#include "util/util.h"

/* Keys and the "msce" keyring alike: the possessor (the agent, and the CSE once it has linked its
 * persistent keyring) may do everything; the owner (the service uid) may view, read and search
 * without possession; group and others nothing. Root is "other" here: it has no override for key
 * permissions, only for keyctl_chown and for opening another uid's persistent keyring. */
#define KEYRING_PERM (KEY_POS_ALL | KEY_USR_VIEW | KEY_USR_READ | KEY_USR_SEARCH)

static bool uid_is_service(uid_t uid) {
        return uid != 0 && uid != (uid_t) -1;
}

static int persistent_open(uid_t uid, key_serial_t *ret) {
        /* Links it into our session keyring: that gives us possession (and refreshes its expiry). */
        long r = keyctl_get_persistent(uid, KEY_SPEC_SESSION_KEYRING);
        if (r < 0)
                return negative_errno();
        *ret = (key_serial_t) r;
        return 0;
}

/* keyctl_describe gives "type;uid;gid;perm;description"; the description may itself hold ';'.
 * Returns the buffer (type NUL-terminated at its start) and a pointer to the description. */
static int key_describe(key_serial_t k, char **ret_buf, const char **ret_desc) {
        _cleanup_free_ char *buf = NULL;
        if (keyctl_describe_alloc(k, &buf) < 0)
                return negative_errno();
        char *p = buf;
        for (int i = 0; i < 4; i++) {
                p = strchr(p, ';');
                if (!p)
                        return -EBADMSG;
                p++;
        }
        *strchr(buf, ';') = '\0';
        *ret_desc = p;
        *ret_buf = TAKE_PTR(buf);
        return 0;
}

/* A key of a ring's list: 1 with its type (in *ret_buf) and description, 0 when it is gone
 * meanwhile or not ours to see (to be skipped), -ENOMEM. */
static int ring_describe(key_serial_t k, char **ret_buf, const char **ret_desc) {
        int r = key_describe(k, ret_buf, ret_desc);
        return r == -ENOMEM ? r : r == 0;
}

static int ring_read(key_serial_t ring, key_serial_t **ret, size_t *ret_n) {
        void *buf = NULL;
        long len = keyctl_read_alloc(ring, &buf);
        if (len < 0)
                return negative_errno();
        *ret = buf;
        *ret_n = (size_t) len / sizeof(key_serial_t);
        return 0;
}

/* Whether k is a key of type and description desc: 1, 0 (also when it is gone or not ours to
 * see), -ENOMEM. */
static int key_is(key_serial_t k, const char *type, const char *desc) {
        _cleanup_free_ char *buf = NULL;
        const char *d;
        int r = ring_describe(k, &buf, &d);
        return r <= 0 ? r : streq(buf, type) && streq(d, desc);
}

/* A key linked directly into ring (keyctl_search would also descend into nested keyrings). */
static int ring_find_child(key_serial_t ring, const char *type, const char *desc, key_serial_t *ret) {
        _cleanup_free_ key_serial_t *ids = NULL;
        size_t n;
        int r = ring_read(ring, &ids, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                r = key_is(ids[i], type, desc);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret = ids[i];
                        return 0;
                }
        }
        return -ENOKEY;
}

static int key_restrict(key_serial_t k, uid_t uid) {
        /* Permissions first, while we own it; chown also moves the quota charge to uid. */
        if (keyctl_setperm(k, KEYRING_PERM) < 0)
                return negative_errno();
        if (keyctl_chown(k, uid, (gid_t) -1) < 0)
                return negative_errno();
        return 0;
}

/* Revoke our keys in ring (the user payload is freed by the kernel on revoke), unlink everything
 * from it, revoke ring. Best effort: goes on after an error and returns the first one. */
static int ring_purge(key_serial_t ring) {
        _cleanup_free_ key_serial_t *ids = NULL;
        size_t n = 0;
        int r = ring_read(ring, &ids, &n);
        if (r == -EKEYREVOKED || r == -ENOKEY) /* already retired */
                return 0;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *buf = NULL;
                const char *d;
                if (key_describe(ids[i], &buf, &d) < 0)
                        continue;
                if (!streq(buf, "user") || strncmp(d, KEYRING_PREFIX, strlen(KEYRING_PREFIX)) != 0)
                        continue; /* not ours: unlinked by the clear below, not revoked */
                if (keyctl_revoke(ids[i]) < 0 && errno != EKEYREVOKED && errno != ENOKEY && r >= 0)
                        r = negative_errno();
        }
        if (keyctl_clear(ring) < 0 && errno != EKEYREVOKED && errno != ENOKEY && r >= 0)
                r = negative_errno();
        if (keyctl_revoke(ring) < 0 && errno != EKEYREVOKED && errno != ENOKEY && r >= 0)
                r = negative_errno();
        return r;
}

/* 1 for the ltk, 0 for a kpsa, -EINVAL otherwise. */
static int key_validate(const keyring_key_t *k) {
        if (!k->name || !k->data)
                return -EINVAL;
        if (streq(k->name, KEYRING_LTK))
                return k->len >= KEYRING_LTK_MIN && k->len <= KEYRING_LTK_MAX ? 1 : -EINVAL;
        if (strncmp(k->name, KEYRING_KPSA, strlen(KEYRING_KPSA)) != 0 ||
            strnlen(k->name, KEYRING_DESC_MAX) >= KEYRING_DESC_MAX ||
            ids_check_kpsa_id(k->name + strlen(KEYRING_KPSA), NULL) < 0)
                return -EINVAL;
        return k->len == KEYRING_KPSA_LEN ? 0 : -EINVAL;
}

int keyring_keys_validate(const keyring_key_t *keys, size_t n) {
        unsigned n_ltk = 0;

        if (!keys || n < 1 || n > KEYRING_KEYS_MAX)
                return -EINVAL;
        for (size_t i = 0; i < n; i++) {
                int r = key_validate(&keys[i]);
                if (r < 0)
                        return r;
                n_ltk += (unsigned) r;
                /* add_key would update the first key in place: refuse duplicates. */
                for (size_t j = 0; j < i; j++)
                        if (streq(keys[i].name, keys[j].name))
                                return -EINVAL;
        }
        return n_ltk == 1 ? 0 : -EINVAL;
}

static int key_add(key_serial_t ring, uid_t uid, const keyring_key_t *k) {
        char desc[KEYRING_DESC_MAX];
        int m = snprintf(desc, sizeof(desc), KEYRING_PREFIX "%s", k->name);
        if (m < 0 || (size_t) m >= sizeof(desc))
                return -EINVAL;
        /* The only place key bytes go: add_key's payload. */
        key_serial_t s = add_key("user", desc, k->data, k->len, ring);
        if (s < 0)
                return negative_errno();
        return key_restrict(s, uid);
}

/* Once unlinked from the persistent keyring a ring is no longer possessed, and without possession
 * root may not even read it (the contract at work). So pin it in our process keyring first; the
 * new ring is built in the thread keyring: both are named "msce", one keyring cannot hold both. */
static int ring_pin(key_serial_t ring) {
        return keyctl_link(ring, KEY_SPEC_PROCESS_KEYRING) < 0 ? negative_errno() : 0;
}

/* A keyring search runs under rcu_read_lock(), and a search that started before our link may still
 * walk the displaced "msce": revoking its keys then makes that search fail with EKEYREVOKED (a
 * revoked key of the searched type sets the search's error) although the new keys are in place.
 * membarrier(MEMBARRIER_CMD_GLOBAL) is synchronize_rcu(): when it returns, every such search has
 * finished. It is refused with nohz_full (EINVAL) and skipped on one CPU; a reader may then see
 * the gap, and the retry docs/cse-integration.md asks of every CSE covers it. */
static void searches_drain(void) {
        (void) syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
}

static int ring_retire(key_serial_t ring) {
        int r = ring_purge(ring);
        (void) keyctl_unlink(ring, KEY_SPEC_PROCESS_KEYRING); /* works on revoked keys too */
        return r;
}

int keyring_install(uid_t service_uid, const keyring_key_t *keys, size_t n) {
        key_serial_t persistent, old = 0, ring;
        int r;

        if (!uid_is_service(service_uid))
                return -EINVAL;
        r = keyring_keys_validate(keys, n);
        if (r < 0)
                return r;

        r = persistent_open(service_uid, &persistent);
        if (r < 0)
                return r;
        /* A revoked or expired "msce" cannot be described, so it is not found here; the link
         * below displaces it all the same. */
        r = ring_find_child(persistent, "keyring", KEYRING_NAME, &old);
        if (r >= 0) {
                r = ring_pin(old);
                if (r < 0)
                        return r;
        } else if (r != -ENOKEY)
                return r;

        /* Build the complete new keyring where only this thread can reach it. */
        ring = add_key("keyring", KEYRING_NAME, NULL, 0, KEY_SPEC_THREAD_KEYRING);
        if (ring < 0) {
                r = negative_errno();
                goto fail_unpin;
        }
        for (size_t i = 0; i < n; i++) {
                r = key_add(ring, service_uid, &keys[i]);
                if (r < 0)
                        goto fail;
        }
        r = key_restrict(ring, service_uid);
        if (r < 0)
                goto fail;

        /* Linking a keyring of the same type and description replaces the old link in one
         * RCU-published edit: a search sees the old or the new "msce", never neither. */
        if (keyctl_link(ring, persistent) < 0) {
                r = negative_errno();
                goto fail;
        }
        (void) keyctl_unlink(ring, KEY_SPEC_THREAD_KEYRING);
        if (old <= 0)
                return 0;

        /* Only now retire the old keys: no search can reach them any more. */
        searches_drain();
        return ring_retire(old);

fail:
        (void) ring_purge(ring);
        (void) keyctl_unlink(ring, KEY_SPEC_THREAD_KEYRING);
fail_unpin:
        if (old > 0)
                (void) keyctl_unlink(old, KEY_SPEC_PROCESS_KEYRING);
        return r;
}

int keyring_remove(uid_t service_uid) {
        key_serial_t persistent, ring;
        int r;

        if (!uid_is_service(service_uid))
                return -EINVAL;
        r = persistent_open(service_uid, &persistent);
        if (r < 0)
                return r;
        r = ring_find_child(persistent, "keyring", KEYRING_NAME, &ring);
        if (r == -ENOKEY)
                return 0;
        if (r < 0)
                return r;
        r = ring_pin(ring);
        if (r < 0)
                return r;

        /* Unlink first, so the CSE cannot find it, then revoke what it may still hold. */
        if (keyctl_unlink(ring, persistent) < 0 && errno != ENOENT)
                r = negative_errno();
        int q = ring_retire(ring);
        return r < 0 ? r : q;
}

int keyring_find(uid_t service_uid, const char *name, int32_t *ret_serial) {
        key_serial_t persistent, ring, k;
        char desc[KEYRING_DESC_MAX];
        int r;

        if (!uid_is_service(service_uid))
                return -EINVAL;
        if (name) {
                int m = snprintf(desc, sizeof(desc), KEYRING_PREFIX "%s", name);
                if (m < 0 || (size_t) m >= sizeof(desc))
                        return -EINVAL;
        }
        r = persistent_open(service_uid, &persistent);
        if (r < 0)
                return r;
        r = ring_find_child(persistent, "keyring", KEYRING_NAME, &ring);
        if (r < 0)
                return r;
        if (!name) {
                *ret_serial = ring;
                return 0;
        }
        r = ring_find_child(ring, "user", desc, &k);
        if (r < 0)
                return r;
        *ret_serial = k;
        return 0;
}

void keyring_names_free(char **names) {
        if (!names)
                return;
        for (char **p = names; *p; p++)
                free(*p);
        free(names);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int keyring_list(uid_t service_uid, char ***ret_names) {
        _cleanup_free_ key_serial_t *ids = NULL;
        _cleanup_keyring_names_ char **names = NULL;
        key_serial_t ring;
        size_t n, m = 0;
        int r;

        r = keyring_find(service_uid, NULL, &ring);
        if (r < 0)
                return r;
        r = ring_read(ring, &ids, &n);
        if (r < 0)
                return r;
        names = calloc(n + 1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *buf = NULL;
                const char *d;
                r = ring_describe(ids[i], &buf, &d);
                if (r < 0)
                        return r;
                if (r == 0 || !streq(buf, "user"))
                        continue;
                names[m] = strdup(d);
                if (!names[m])
                        return -ENOMEM;
                m++;
        }
        qsort(names, m, sizeof(char *), cmp_str);
        *ret_names = TAKE_PTR(names);
        return 0;
}

const char *keyring_strerror(int r) {
        switch (r) {
        case -EDQUOT:
                return "key quota exhausted: see /proc/sys/kernel/keys/maxkeys and maxbytes";
        case -EPERM:
        case -EACCES:
                return "permission denied: filing keys for another user needs CAP_SETUID and CAP_SYS_ADMIN";
        case -ENOKEY:
                return "no msce keyring or key in the persistent keyring";
        case -EINVAL:
                return "invalid key name or length, or root as service user";
        case -EOPNOTSUPP:
                return "kernel without persistent keyrings (CONFIG_PERSISTENT_KEYRINGS)";
        case -ENOSYS:
                return "kernel key retention service unavailable (CONFIG_KEYS, or filtered system calls)";
        default: {
                const char *s = strerrordesc_np(r < 0 ? -r : r);
                return s ? s : "unknown error";
        }
        }
}

/* user_resolve(), and with ret_name the user's name (truncated to name_size bytes) */
static int passwd_get(const char *name, uid_t *ret_uid, gid_t *ret_gid, char *ret_name, size_t name_size) {
        unsigned long long v;
        bool numeric;

        if (!name || !*name || strnlen(name, 257) > 256)
                return -EINVAL;
        numeric = parse_uint(name, (uid_t) -2, &v) == 0;

        for (size_t size = 1024; size <= 1024 * 1024; size *= 4) {
                _cleanup_free_ char *buf = malloc(size);
                struct passwd pw, *res = NULL;
                int e;

                if (!buf)
                        return -ENOMEM;
                e = numeric ? getpwuid_r((uid_t) v, &pw, buf, size, &res)
                            : getpwnam_r(name, &pw, buf, size, &res);
                if (e == ERANGE)
                        continue;
                if (e == 0 && !res)
                        return -ESRCH;
                if (e == ENOENT || e == ESRCH || e == EBADF || e == EPERM)
                        return -ESRCH; /* glibc's documented "not found" codes */
                if (e != 0)
                        return -e;
                *ret_uid = pw.pw_uid;
                if (ret_gid)
                        *ret_gid = pw.pw_gid;
                if (ret_name)
                        snprintf(ret_name, name_size, "%s", pw.pw_name);
                return 0;
        }
        return -ERANGE;
}

int user_resolve(const char *name, uid_t *ret_uid, gid_t *ret_gid) {
        return passwd_get(name, ret_uid, ret_gid, NULL, 0);
}

int user_name(uid_t uid, char *ret, size_t size) {
        char num[24];
        uid_t u;
        snprintf(num, sizeof num, "%u", (unsigned) uid);
        return passwd_get(num, &u, NULL, ret, size);
}

/* SPDX-License-Identifier: MIT */
/* The sealed profile, the keyring and profile.json kept in step (agent/custody.h). */
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "msce-config.h"

#include "agent/credential.h"
#include "agent/custody.h"
#include "agent/state-mark.h"
#include "hw/tpm2-names.h"
#include "keys/keyring-owner.h"
#include "keys/keyring.h"
#include "util/util.h"

/* Every entry point starts here: info is required (the caller acts on it). */
static void info_init(custody_info_t *info) {
        *info = (custody_info_t) { .failure = FAILURE_NULL, .method = _SEAL_METHOD_INVALID };
}

/* Temporary files a killed writer left behind (file_write_atomic, host.key creation). */
static void remove_stale_temporaries(const char *dir) {
        DIR *d = opendir(dir); /* O_CLOEXEC (glibc) */
        if (!d)
                return;
        static const char *const prefixes[] = {
                SEAL_ENVELOPE_NAME ".tmp.", SEAL_HOST_KEY_NAME ".tmp.", CUSTODY_PROFILE_JSON ".tmp.", "state.json.tmp.",
                KEYRING_OWNER_NAME ".tmp.", ENROL_MARK_NAME ".tmp.", REVOKED_MARK_NAME ".tmp.",
        };
        struct dirent *de;
        while ((de = readdir(d)))
                for (size_t i = 0; i < ELEMENTSOF(prefixes); i++)
                        if (strncmp(de->d_name, prefixes[i], strlen(prefixes[i])) == 0)
                                (void) unlinkat(dirfd(d), de->d_name, 0);
        closedir(d);
}

static int state_dir_create(const agent_config_t *cfg, custody_info_t *info) {
        int r = mkdir_p(cfg->state_dir, 0700);
        return r < 0 ? failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [seal] state_dir: cannot create %s: %s", cfg->path,
                                   cfg->state_dir, strerror(-r))
                     : 0;
}

#define LOCK_WAIT_TRIES 40u
#define LOCK_WAIT_USEC 25000u

/* flock(fd): -EBUSY when another agent holds it. The agent's children inherit the lock's
 * descriptor for the moment between their fork and closing it (util/child.h): a killed agent's
 * child may hold it until it dies too, which PR_SET_PDEATHSIG makes a matter of milliseconds.
 * Wait that long, boundedly. */
static int lock_wait(int fd) {
        for (unsigned i = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; i++) {
                if (errno != EWOULDBLOCK)
                        return negative_errno();
                if (i == LOCK_WAIT_TRIES)
                        return -EBUSY;
                (void) usleep(LOCK_WAIT_USEC);
        }
        return 0;
}

int custody_lock(const agent_config_t *cfg, int *ret_fd, custody_info_t *info) {
        info_init(info);
        int r = state_dir_create(cfg, info);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = negative_errno();
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [seal] state_dir: cannot open %s: %s", cfg->path,
                                   cfg->state_dir, strerror(-r));
        }
        r = lock_wait(fd);
        if (r == -EBUSY)
                return failure_set(&info->failure, OUTCOME_FAILED, r, "another msce-agent is using the state directory %s",
                                   cfg->state_dir);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_FAILED, r, "cannot lock the state directory %s: %s",
                                   cfg->state_dir, strerror(-r));
        remove_stale_temporaries(cfg->state_dir);
        remove_stale_temporaries(cfg->runtime_dir);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int custody_lock_existing(const agent_config_t *cfg, int *ret_fd) {
        _cleanup_close_ int fd = open(cfg->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int r = lock_wait(fd);
        if (r < 0)
                return r;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int service_uid(const agent_config_t *cfg, uid_t *ret, custody_info_t *info) {
        uid_t uid;
        int r = user_resolve(cfg->service_user, &uid, NULL);
        if (r == -ESRCH)
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [consumer] user: no such user '%s'", cfg->path,
                                   cfg->service_user);
        /* Anything but "no such user" or a malformed name is the user database's trouble (sssd or
         * LDAP not up yet at boot, a timeout): retried, not an operator's to fix. */
        if (r < 0)
                return failure_set(&info->failure, r == -EINVAL ? OUTCOME_CONFIG : OUTCOME_FAILED, r,
                                   "%s: [consumer] user: cannot resolve '%s': %s", cfg->path, cfg->service_user,
                                   strerror(-r));
        if (uid == 0)
                return failure_set(&info->failure, OUTCOME_CONFIG, -EINVAL,
                                   "%s: [consumer] user: '%s' is root; the keys must go to the CSE's own user", cfg->path,
                                   cfg->service_user);
        *ret = uid;
        return 0;
}

/* The start of the entry points that act for the service user. */
static int begin(const agent_config_t *cfg, uid_t *ret_uid, custody_info_t *info) {
        info_init(info);
        return cfg ? service_uid(cfg, ret_uid, info) : failure_set(&info->failure, OUTCOME_FAILED, -EINVAL, "invalid arguments");
}

/* The nearest existing one of path and its parents (path itself when it exists) into p, with its
 * stat: -ENAMETOOLONG, -EINVAL for a relative path, else stat()'s error on p. */
static int nearest_existing(const char *path, char p[PATH_MAX], struct stat *ret) {
        if (snprintf(p, PATH_MAX, "%s", path) >= PATH_MAX)
                return -ENAMETOOLONG;
        while (stat(p, ret) < 0) {
                char *slash = strrchr(p, '/');
                if (errno != ENOENT || !slash || streq(p, "/"))
                        return slash ? negative_errno() : -EINVAL;
                slash[slash == p] = 0; /* "/a" gives "/" */
        }
        return 0;
}

int custody_tpm_denied(failure_t *f, outcome_t o, const char *what, const char *tcti) {
        const char *node = tpm2_tcti_device(tcti);
        return failure_set(f, o, -EACCES,
                           "%sthe TPM %s%s is not accessible to uid %u: %s (make the agent's user a member of the TPM "
                           "device's group, tss)",
                           what, node ? "" : "at ", node ?: tcti, (unsigned) geteuid(), strerror(EACCES));
}

/* -EACCES from sealing is the TPM's when its node is not ours to open (else a file's). */
static bool tpm_node_denied(const agent_config_t *cfg) {
        const char *node = tpm2_tcti_device(cfg->tcti);
        if (!node || faccessat(AT_FDCWD, node, R_OK | W_OK, AT_EACCESS) == 0)
                return false;
        return errno == EACCES || errno == EPERM;
}

/* A directory the agent keeps files in: see custody_preflight(). */
static int dir_preflight(const agent_config_t *cfg, const char *agent_user, uid_t agent, const char *key,
                         const char *dir, custody_info_t *info) {
        struct stat st;
        char near[PATH_MAX];
        int r = nearest_existing(dir, near, &st);
        if (r == -EINVAL)
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [seal] %s: %s is not an absolute path", cfg->path, key, dir);
        if (r == -ENAMETOOLONG)
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [seal] %s: path too long", cfg->path, key);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [seal] %s: %s: %s", cfg->path, key, near, strerror(-r));
        if (!streq(near, dir)) {
                /* Missing: the nearest existing parent must let us create it. */
                if (!S_ISDIR(st.st_mode))
                        return failure_set(&info->failure, OUTCOME_CONFIG, -ENOTDIR, "%s: [seal] %s: cannot create %s: %s is not a directory",
                                           cfg->path, key, dir, near);
                if (faccessat(AT_FDCWD, near, W_OK | X_OK, AT_EACCESS) < 0)
                        return failure_set(&info->failure, OUTCOME_CONFIG, negative_errno(), "%s: [seal] %s: cannot create %s: %s: %m",
                                           cfg->path, key, dir, near);
                return 0;
        }
        if (!S_ISDIR(st.st_mode))
                return failure_set(&info->failure, OUTCOME_CONFIG, -ENOTDIR, "%s: [seal] %s: %s is not a directory", cfg->path, key, dir);
        if (faccessat(AT_FDCWD, dir, R_OK | W_OK | X_OK, AT_EACCESS) < 0)
                return failure_set(&info->failure, OUTCOME_CONFIG, negative_errno(), "%s: [seal] %s: %s is not writable by uid %u: %m (owner uid %u, mode %04o)",
                                   cfg->path, key, dir, (unsigned) geteuid(), (unsigned) st.st_uid,
                                   (unsigned) (st.st_mode & 07777));
        if (st.st_mode & 0022)
                return failure_set(&info->failure, OUTCOME_CONFIG, -EPERM, "%s: [seal] %s: %s is writable by group or others (mode %04o; chmod go-w)",
                                   cfg->path, key, dir, (unsigned) (st.st_mode & 07777));
        if (st.st_uid != geteuid() && st.st_uid != 0 && st.st_uid != agent)
                return failure_set(&info->failure, OUTCOME_CONFIG, -EPERM,
                                   "%s: [seal] %s: %s belongs to uid %u, not to the agent (%s) or root", cfg->path, key, dir,
                                   (unsigned) st.st_uid, agent_user);
        return 0;
}

int custody_space_check(const agent_config_t *cfg, custody_info_t *info) {
        info_init(info);
        const char *dirs[] = { cfg->state_dir, cfg->runtime_dir };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                /* Where it is, or would be made (its nearest existing parent); unknown: not checked. */
                char p[PATH_MAX];
                struct stat st;
                struct statvfs sv;
                if (nearest_existing(dirs[i], p, &st) < 0 || statvfs(p, &sv) < 0)
                        continue;
                uint64_t avail = (uint64_t) sv.f_bavail * sv.f_frsize;
                if (avail < CUSTODY_SPACE_MIN)
                        return failure_set(&info->failure, OUTCOME_FAILED, -ENOSPC,
                                           "no space left in %s (%llu bytes free, %u needed to keep a profile)", dirs[i],
                                           (unsigned long long) avail, CUSTODY_SPACE_MIN);
        }
        return 0;
}

int custody_preflight(const agent_config_t *cfg, const char *agent_user, custody_info_t *info) {
        uid_t uid;
        int r = begin(cfg, &uid, info);
        if (r < 0)
                return r;
        if (!agent_user)
                agent_user = CUSTODY_AGENT_USER;
        uid_t agent = (uid_t) -1;
        (void) user_resolve(agent_user, &agent, NULL);
        if (uid == geteuid() || uid == agent)
                return failure_set(&info->failure, OUTCOME_CONFIG, -EINVAL,
                                   "%s: [consumer] user: '%s' is the agent's own user; the keys must go to the CSE's own user",
                                   cfg->path, cfg->service_user);
        r = dir_preflight(cfg, agent_user, agent, "state_dir", cfg->state_dir, info);
        if (r == 0)
                r = dir_preflight(cfg, agent_user, agent, "runtime_dir", cfg->runtime_dir, info);
        if (r < 0)
                return r;
        if (cfg->mode == TLS_MODE_PSK && !cfg->kpm_path && !cfg->check_only)
                return failure_set(&info->failure, OUTCOME_CONFIG, -ENOKEY,
                                   "%s: [mef] psk_credential: the Kpm is the systemd credential %s (%s), which only "
                                   "msce-agent.service receives; set [mef] psk_file, or start the agent through systemd",
                                   cfg->path, cfg->psk_credential, cfg->kpm_credstore ?: "?");
        if (cfg->seal_backend == SEAL_TPM2) {
#if !HAVE_TPM2
                return failure_set(&info->failure, OUTCOME_CONFIG, -EOPNOTSUPP,
                                   "%s: [seal] backend = tpm2, but this build has no TPM support", cfg->path);
#else
                const char *dev = tpm2_tcti_device(cfg->tcti);
                if (dev && faccessat(AT_FDCWD, dev, R_OK | W_OK, AT_EACCESS) < 0) {
                        int e = errno;
                        if (e == EACCES || e == EPERM) {
                                char what[PATH_MAX + 64];
                                snprintf(what, sizeof what, "%s: [seal] backend = tpm2, but ", cfg->path);
                                return custody_tpm_denied(&info->failure, OUTCOME_CONFIG, what, cfg->tcti);
                        }
                        return failure_set(&info->failure, OUTCOME_CONFIG, -e, "%s: [seal] backend = tpm2, but the TPM %s is %s", cfg->path,
                                           dev, e == ENOENT ? "missing (no TPM, or its driver is not loaded)" : strerror(e));
                }
#endif
        }
        return 0;
}

static int keyring_fail(const char *user, uid_t uid, int r, const char *what, custody_info_t *info) {
        bool denied = r == -EPERM || r == -EACCES; /* a configuration error: say what it takes */
        char bare[32], who[CUSTODY_USER_MAX + sizeof bare + 8];
        snprintf(bare, sizeof bare, "uid %u", (unsigned) uid);
        if (streq(user, bare)) /* a uid no user has: keyring_owner_read() names it "uid N" */
                snprintf(who, sizeof who, "%s", bare);
        else
                snprintf(who, sizeof who, "user %s (%s)", user, bare);
        return failure_set(&info->failure, denied ? OUTCOME_CONFIG : OUTCOME_FAILED, r, "cannot %s the keys of %s: %s%s", what, who,
                           keyring_strerror(r), denied ? " (the agent needs CAP_SETUID and CAP_SYS_ADMIN)" : "");
}

/* The non-secret profile for the CSE (docs/cse-integration.md), world-readable: written and
 * synced as a temporary file next to profile.json, for install() to rename into place. */
static int profile_json_stage(const agent_config_t *cfg, const stored_profile_t *p, file_staged_t *ret,
                              custody_info_t *info) {
        char path[PATH_MAX];
        int r = path_join(cfg->runtime_dir, CUSTODY_PROFILE_JSON, path);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [seal] runtime_dir: path too long", cfg->path);

        json_t *targets = json_array();
        bool ok = targets;
        for (size_t i = 0; ok && i < p->n_targets; i++)
                ok = json_array_append_new(targets, json_pack("{s:s, s:s}", "id", p->targets[i].id, "kpsaID",
                                                              p->targets[i].kpsa_id)) == 0;
        json_t *o = ok ? json_pack("{s:s, s:s, s:s, s:s, s:O, s:I}", "cseID", p->cse_id, "cseBase", p->cse_base, "keID",
                                   p->ke_id, "exp", p->exp, "targets", targets, "poll", (json_int_t) p->poll)
                       : NULL;
        _cleanup_free_ char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(targets);
        json_decref(o);
        if (!text)
                return failure_set(&info->failure, OUTCOME_FAILED, -ENOMEM, "out of memory");

        r = mkdir_p(cfg->runtime_dir, 0755);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_FAILED, r, "cannot create %s: %s", cfg->runtime_dir, strerror(-r));
        size_t len = strlen(text);
        text[len] = '\n'; /* replaces the NUL: write len + 1 bytes */
        r = file_stage(path, text, len + 1, 0644, ret);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_FAILED, r, "cannot write %s: %s", path, strerror(-r));
        return 0;
}

/* The steps of custody_restore_finish() (agent/custody.h). profile.json is staged first so that a
 * full or read-only /run fails while nothing has changed: the old keys cannot be put back once the
 * new ones replace them (their keyring is revoked). */
static int install(const agent_config_t *cfg, const stored_profile_t *p, stored_profile_t *ret_profile,
                   custody_info_t *info) {
        uid_t uid = (uid_t) -1;
        int r = service_uid(cfg, &uid, info);
        if (r < 0)
                return r;
        _cleanup_(file_staged_done) file_staged_t json = {};
        r = profile_json_stage(cfg, p, &json, info);
        if (r < 0)
                return r;
        int32_t serial;
        bool had_keys = keyring_find(uid, NULL, &serial) != -ENOKEY; /* an error counts as yes: nothing is taken out */
        profile_keys_t k;
        r = profile_keys(p, &k);
        if (r == 0)
                r = keyring_install(uid, k.keys, k.n);
        if (r == -EINVAL)
                return failure_set(&info->failure, OUTCOME_FAILED, r,
                                   "the profile's keys cannot be filed for user %s: invalid or duplicate kpsaID", cfg->service_user);
        if (r < 0)
                return keyring_fail(cfg->service_user, uid, r, "install", info);
        r = file_staged_commit(&json);
        if (r < 0) {
                /* json.tmp is "" once renamed: then only the directory's fsync failed */
                bool taken_out = !had_keys && json.tmp[0] && keyring_remove(uid) == 0;
                return failure_set(&info->failure, OUTCOME_FAILED, r, "cannot write %s: %s (the keys of KeID %s %s)",
                                   json.path, strerror(-r), p->ke_id, taken_out ? "were taken out again" : "are installed");
        }
        if (ret_profile)
                *ret_profile = *p;
        return 0;
}

/* The crypto module missing or foreign, the child doing the work lost, or host.key too widely
 * readable: for both directions. */
static int sealing_fail(const agent_config_t *cfg, int r, const char *err, const char *what, custody_info_t *info) {
        switch (r) {
        case -ELIBACC:
        case -ELIBBAD:
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s (reinstall msce-agent)", err);
        case -ECHILD:
        case -EMSGSIZE:
                return failure_set(&info->failure, OUTCOME_FAILED, r, "the process %s the profile ended without a result", what);
        case -ETIMEDOUT:
                return failure_set(&info->failure, OUTCOME_FAILED, r, "%s the profile did not finish in time (is the TPM answering?)",
                                   what);
        case -EPERM:
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s/%s is readable by group or others (chmod 0400)",
                                   cfg->state_dir, SEAL_HOST_KEY_NAME);
        default:
                return 0;
        }
}

/* err, past sealing_fail(): the TPM's response code when the TPM failed with one (agent/sealing.h),
 * "" for every other failure (a file, host.key, memory). */
static int seal_load_fail(const agent_config_t *cfg, int r, const char *err, custody_info_t *info) {
        const char *dir = cfg->state_dir;
        if (sealing_fail(cfg, r, err, "unsealing", info) < 0)
                return r;
        if (r == -EKEYREJECTED && *err)
                return failure_set(&info->failure, OUTCOME_UNUSABLE, r,
                                   "the sealed profile %s/%s cannot be opened: the TPM at %s refuses its key (%s: "
                                   "another TPM, or changed PCRs)",
                                   dir, SEAL_ENVELOPE_NAME, cfg->tcti, err);
        if (*err && r != -ENODEV && r != -EOPNOTSUPP)
                return failure_set(&info->failure, OUTCOME_FAILED, r, "the TPM at %s failed to unseal the profile %s/%s: %s",
                                   cfg->tcti, dir, SEAL_ENVELOPE_NAME, err);
        /* a retry: at boot, udev may not have given the node its group yet */
        if (r == -EACCES && tpm_node_denied(cfg))
                return custody_tpm_denied(&info->failure, OUTCOME_FAILED, "cannot unseal the profile: ", cfg->tcti);
        switch (r) {
        case -ENOENT:
                return failure_set(&info->failure, OUTCOME_ABSENT, r, "no sealed profile in %s", dir);
        case -EBUSY:
                return failure_set(&info->failure, OUTCOME_FAILED, r,
                                   "the sealed profile %s/%s was sealed by a TPM, and the TPM at %s is busy (another "
                                   "process has it open)",
                                   dir, SEAL_ENVELOPE_NAME, cfg->tcti);
        case -EBADMSG:
                return failure_set(&info->failure, OUTCOME_UNUSABLE, r, "the sealed profile %s/%s is corrupted, truncated or not a valid profile", dir,
                                   SEAL_ENVELOPE_NAME);
        case -EKEYREJECTED:
                return failure_set(&info->failure, OUTCOME_UNUSABLE, r,
                                   "the sealed profile %s/%s cannot be opened: its key is not available "
                                   "(another TPM, changed PCRs, or %s gone)",
                                   dir, SEAL_ENVELOPE_NAME, SEAL_HOST_KEY_NAME);
        case -ENODEV:
                /* A TPM not (yet) there at boot is retried: re-enrolling would replace a profile
                 * the TPM still holds, and under auto seal it with the host key. Only backend =
                 * host says the TPM is not to be used any more. */
                if (cfg->seal_backend == SEAL_HOST)
                        return failure_set(&info->failure, OUTCOME_UNUSABLE, r,
                                           "the sealed profile %s/%s was sealed by a TPM, no TPM answers at %s, and "
                                           "[seal] backend = host",
                                           dir, SEAL_ENVELOPE_NAME, cfg->tcti);
                return failure_set(&info->failure, OUTCOME_FAILED, r,
                                   "the sealed profile %s/%s was sealed by a TPM, and no TPM answers at %s (not yet, or "
                                   "gone: with [seal] backend = host the agent enrols again)",
                                   dir, SEAL_ENVELOPE_NAME, cfg->tcti);
        case -EOPNOTSUPP:
                return failure_set(&info->failure, OUTCOME_UNUSABLE, r,
                                   "the sealed profile %s/%s was sealed by a TPM, and this build has no TPM support", dir,
                                   SEAL_ENVELOPE_NAME);
        default:
                return failure_set(&info->failure, OUTCOME_FAILED, r, "cannot read the sealed profile in %s: %s", dir, strerror(-r));
        }
}

/* The start of the *_finish() entry points: r and err are the sealing process's, a failure
 * that fail() describes. */
static int finish_begin(const agent_config_t *cfg, const stored_profile_t *profile, int r, const char *err,
                        seal_method_t method,
                        int (*fail)(const agent_config_t *cfg, int r, const char *err, custody_info_t *info),
                        custody_info_t *info) {
        info_init(info);
        if (!cfg || !profile)
                return failure_set(&info->failure, OUTCOME_FAILED, -EINVAL, "invalid arguments");
        if (r < 0)
                return fail(cfg, r, err ?: "", info);
        info->method = method;
        snprintf(info->ke_id, sizeof info->ke_id, "%s", profile->ke_id);
        return 0;
}

int custody_restore_finish(const agent_config_t *cfg, int r, const char *err, stored_profile_t *p,
                           seal_method_t method, stored_profile_t *ret_profile, custody_info_t *info) {
        if ((r = finish_begin(cfg, p, r, err, method, seal_load_fail, info)) < 0)
                return r;

        if (profile_is_expired(p, time(NULL))) {
                char when[32];
                time_format_utc(p->exp_t, when);
                return failure_set(&info->failure, OUTCOME_EXPIRED, -EKEYEXPIRED, "the sealed profile (KeID %s) expired at %s",
                                   p->ke_id, when);
        }
        bool node = !streq(p->node_id, cfg->node_id);
        if (node || !streq(p->mef_uri, cfg->mef_uri))
                return failure_set(&info->failure, OUTCOME_MISMATCH, -ENOENT,
                                   "the sealed profile was obtained %s %s, the configuration says %s",
                                   node ? "for node ID" : "from MEF", node ? p->node_id : p->mef_uri,
                                   node ? cfg->node_id : cfg->mef_uri);

        return install(cfg, p, ret_profile, info);
}

/* err as for seal_load_fail() */
static int seal_store_fail(const agent_config_t *cfg, int r, const char *err, custody_info_t *info) {
        if (sealing_fail(cfg, r, err, "sealing", info) < 0)
                return r;
        if (*err && r != -ENODEV && r != -ENXIO && r != -EOPNOTSUPP)
                return failure_set(&info->failure, OUTCOME_FAILED, r, "the TPM at %s failed to seal the profile: %s", cfg->tcti,
                                   err);
        if (r == -EACCES && tpm_node_denied(cfg))
                return custody_tpm_denied(&info->failure, OUTCOME_CONFIG, "cannot seal the profile: ", cfg->tcti);
        switch (r) {
        case -EBUSY:
                return failure_set(&info->failure, OUTCOME_FAILED, r,
                                   "the TPM at %s is busy (another process has it open) while sealing the profile", cfg->tcti);
        case -ENODEV:
                /* It answered the probe before (enrol_run() for tpm2, seal's for auto; no TPM at
                 * all is a configuration error there): gone since, a retry. */
                return failure_set(&info->failure, OUTCOME_FAILED, r, "the TPM at %s stopped answering while sealing the profile",
                                   cfg->tcti);
        case -ENXIO:
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [seal] pcrs = %s: the TPM at %s has not all of them active",
                                   cfg->path, cfg->pcrs, cfg->tcti);
        case -EOPNOTSUPP:
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [seal] backend = tpm2, but this build has no TPM support",
                                   cfg->path);
        case -EBADMSG:
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s/%s is damaged (not 32 bytes); remove it and %s",
                                   cfg->state_dir, SEAL_HOST_KEY_NAME, SEAL_ENVELOPE_NAME);
        case -EINVAL:
                return failure_set(&info->failure, OUTCOME_FAILED, r, "the profile cannot be sealed: a field is out of range or a kpsaID repeated");
        default:
                return failure_set(&info->failure, OUTCOME_FAILED, r, "cannot write the sealed profile in %s: %s", cfg->state_dir,
                                   strerror(-r));
        }
}

/* The sealed profile's inode, 0 when there is none: a store's rename puts another in its place. */
static ino_t envelope_ino(const agent_config_t *cfg) {
        char path[PATH_MAX];
        struct stat st;
        return path_join(cfg->state_dir, SEAL_ENVELOPE_NAME, path) == 0 && stat(path, &st) == 0 ? st.st_ino : 0;
}

int custody_store_begin(const agent_config_t *cfg, ino_t *ret_envelope, custody_info_t *info) {
        /* Resolve the user before anything is written: a configuration error changes nothing. */
        uid_t uid;
        int r = begin(cfg, &uid, info);
        if (r == 0 && (r = state_dir_create(cfg, info)) == 0)
                *ret_envelope = envelope_ino(cfg);
        return r;
}

int custody_store_finish(const agent_config_t *cfg, int r, const char *err, ino_t envelope, const stored_profile_t *profile,
                         seal_method_t method, stored_profile_t *ret_profile, custody_info_t *info) {
        r = finish_begin(cfg, profile, r, err, method, seal_store_fail, info);
        /* A seal that failed after its rename (the directory's fsync, or killed at its time
         * limit) is in place all the same: the restore installs it. */
        info->sealed = r == 0 || (cfg && envelope_ino(cfg) != envelope);
        return r < 0 ? r : install(cfg, profile, ret_profile, info);
}

int custody_remove(const agent_config_t *cfg, bool sealed, custody_info_t *info) {
        uid_t uid;
        int ret = begin(cfg, &uid, info), r;
        if (!cfg)
                return ret;
        if (ret == 0 && (r = keyring_remove(uid)) < 0)
                ret = keyring_fail(cfg->service_user, uid, r, "remove", info);
        /* The files only once the keys are gone: while keys remain, the sealed profile and
         * profile.json are what names them (a restore accounts for them again, mscectl and the
         * CSE see whose they are). */
        if (ret < 0 && info->failure.outcome == OUTCOME_FAILED)
                return ret;

        seal_opts_t o = credential_seal_opts(cfg);
        r = sealed ? seal_remove(&o) : 0;
        if (r < 0 && r != -ENOENT && ret == 0)
                ret = failure_set(&info->failure, OUTCOME_FAILED, r, "cannot remove the sealed profile in %s: %s", cfg->state_dir,
                                  strerror(-r));

        char path[PATH_MAX];
        if (path_join(cfg->runtime_dir, CUSTODY_PROFILE_JSON, path) == 0 && unlink(path) < 0 && errno != ENOENT && ret == 0) {
                r = negative_errno();
                ret = failure_set(&info->failure, OUTCOME_FAILED, r, "cannot remove %s: %s", path, strerror(-r));
        }
        return ret;
}

int custody_user_leave(const agent_config_t *cfg, char ret_old[static CUSTODY_USER_MAX], custody_info_t *info) {
        uid_t uid = 0, old_uid = 0;
        int r = begin(cfg, &uid, info);
        if (r < 0)
                return r;
        r = keyring_owner_read(cfg->state_dir, &old_uid, ret_old, CUSTODY_USER_MAX);
        if (r < 0 && r != -ENOENT)
                failure_set(&info->failure, OUTCOME_FAILED, r, "%s/%s: %s, taken as absent (a previous user's keys may remain)",
                            cfg->state_dir, KEYRING_OWNER_NAME, r == -EBADMSG ? "not a uid" : strerror(-r));
        /* None after a reboot (the keyring is kernel memory): nothing to say then. */
        int32_t serial;
        bool had = r == 0 && old_uid != uid && keyring_find(old_uid, NULL, &serial) != -ENOKEY;
        if (had && (r = keyring_remove(old_uid)) < 0)
                return keyring_fail(ret_old, old_uid, r, "remove", info);
        if (old_uid != uid && (r = keyring_owner_write(cfg->state_dir, uid)) < 0)
                failure_set(&info->failure, OUTCOME_FAILED, r, "cannot write %s/%s: %s (a restart with another user would leave "
                            "the keys to %s)", cfg->state_dir, KEYRING_OWNER_NAME, strerror(-r), cfg->service_user);
        return info->failure.error ?: had;
}

int custody_check(const agent_config_t *cfg, const stored_profile_t *p, custody_info_t *info) {
        uid_t uid = 0;
        int r = begin(cfg, &uid, info);
        if (r < 0)
                return r;
        profile_keys_t k = { .keys[0].name = KEYRING_LTK, .n = 1 };
        if (p)
                (void) profile_keys(p, &k); /* the names (an adopted profile's are valid) */
        for (size_t i = 0; i < k.n; i++) {
                int32_t serial;
                r = keyring_find(uid, k.keys[i].name, &serial);
                if (r == -ENOKEY || r == -EKEYREVOKED || r == -EKEYEXPIRED)
                        return failure_set(&info->failure, OUTCOME_ABSENT, -ENOKEY,
                                           "the keys of user %s are no longer in the keyring (no " KEYRING_PREFIX "%s)",
                                           cfg->service_user, k.keys[i].name);
                if (r < 0)
                        return keyring_fail(cfg->service_user, uid, r, "look up", info);
        }
        return 0;
}

int custody_sealed_exists(const agent_config_t *cfg) {
        char path[PATH_MAX];
        return path_join(cfg->state_dir, SEAL_ENVELOPE_NAME, path) == 0 && access(path, F_OK) < 0 && errno == ENOENT
                       ? -ENOENT
                       : 0;
}

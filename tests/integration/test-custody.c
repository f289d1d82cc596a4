/* SPDX-License-Identifier: MIT */
/* agent/custody.c against the real kernel keyring and a temporary state directory (root):
 * store then restore, the restore refusals (absent, expired, another node or MEF, corrupted),
 * nothing half-loaded when profile.json cannot be written, working keys kept when it cannot be
 * replaced, a configuration error changes nothing, a profile the keyring refuses is not sealed,
 * a TPM that does not answer is retried, check (each of a profile's keys) and remove (the files
 * kept while the keys cannot go), a changed service user (and its record), and the lock. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <keyutils.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent/credential.h"
#include "agent/custody.h"
#include "tests/integration/sealing-loop.h"
#include "keys/keyring-owner.h"
#include "keys/keyring.h"
#include "util/util.h"

extern char **environ;

/* A user of each test's own, msce-t<PID>-custody (as tests/integration/test-user.sh names them,
 * whose sweep also removes one a crashed test left): not shared with any other test, nor with
 * this one run from another build directory or worktree. Removed again in teardown. */
static char cse_user[32];
static bool cse_user_created;
static uid_t cse_uid;
static char dir[64];
static agent_config_t cfg;

/* sh test-user.sh ARGS... (tests/integration/test-user.sh, from meson: its useradd and userdel
 * wait out another test's lock of the user database); its exit status, -1 when it did not run. */
static int user_sh(const char *verb, const char *arg1, const char *arg2) {
        const char *sh = getenv("MSCE_TEST_USER_SH");
        cr_assert_not_null(sh, "MSCE_TEST_USER_SH (the path of test-user.sh) is not set: run through meson");
        char *argv[] = { "sh", (char *) sh, (char *) verb, (char *) arg1, (char *) arg2, NULL };
        posix_spawn_file_actions_t fa;
        pid_t pid;
        int status;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0); /* the name it prints */
        int r = posix_spawn(&pid, "/bin/sh", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (r != 0 || waitpid(pid, &status, 0) != pid)
                return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void user_ensure(const char *name, uid_t *uid) {
        if (user_resolve(name, uid, NULL) == 0)
                return;
        if (access("/usr/sbin/useradd", X_OK) < 0)
                cr_skip_test("useradd is missing: cannot create test user %s", name);
        char pid[16];
        snprintf(pid, sizeof pid, "%d", (int) getpid());
        cr_assert_eq(user_sh("add", pid, "custody"), 0, "test-user.sh add %s custody failed", pid);
        cr_assert_eq(user_resolve(name, uid, NULL), 0);
        cse_user_created = true;
}

/* dir + "/" + name */
static char *path_in(const char *d, const char *name) {
        char *p;
        cr_assert_geq(asprintf(&p, "%s/%s", d, name), 0);
        return p;
}

static void setup(void) {
        if (geteuid() != 0)
                cr_skip_test("needs root (persistent keyring of another user, keyctl_chown)");
        snprintf(cse_user, sizeof cse_user, "msce-t%d-custody", (int) getpid());
        user_ensure(cse_user, &cse_uid);
        cr_assert_geq(keyctl_join_session_keyring(NULL), 0, "join session: %m");
        cr_assert_eq(keyring_remove(cse_uid), 0);
        snprintf(dir, sizeof dir, "/tmp/test-custody-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        cfg = (agent_config_t) {
                .path = strdup("/etc/msce/agent.conf"),
                .node_id = strdup("node-1"),
                .mef_uri = strdup("https://mef.example.net/msce"),
                .service_user = strdup(cse_user),
                .seal_backend = SEAL_HOST,
                .tcti = strdup("device:/dev/null"),
                .pcrs = strdup(""),
                .state_dir = path_in(dir, "state"),
                .runtime_dir = path_in(dir, "run"),
        };
}

static void rm_rf(const char *path) {
        char *argv[] = { "rm", "-rf", (char *) path, NULL };
        pid_t pid;
        if (posix_spawn(&pid, "/bin/rm", NULL, NULL, argv, environ) == 0)
                (void) waitpid(pid, NULL, 0);
}

static void teardown(void) {
        if (geteuid() != 0)
                return;
        (void) keyring_remove(cse_uid);
        if (dir[0])
                rm_rf(dir);
        agent_config_done(&cfg);
        if (cse_user_created) {
                /* it also empties the persistent keyring a later user of this uid would get */
                (void) user_sh("del", cse_user, NULL);
                cse_user_created = false;
        }
}

/* The user database not answering (sssd or LDAP at boot): getpwnam_r() fails with EIO for the
 * user nss_down names, as daemon-fake-nss.c makes it for the daemon; the C library's otherwise. */
static const char *nss_down;

int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t size, struct passwd **res);
int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t size, struct passwd **res) {
        if (nss_down && streq(name, nss_down)) {
                *res = NULL;
                return EIO;
        }
        int (*real)(const char *, struct passwd *, char *, size_t, struct passwd **) =
                (int (*)(const char *, struct passwd *, char *, size_t, struct passwd **)) dlsym(RTLD_NEXT, "getpwnam_r");
        return real ? real(name, pw, buf, size, res) : ENOSYS;
}

/* Restore and store as the manager does them: custody's halves around a seal in a child. */
static int custody_restore(const agent_config_t *c, stored_profile_t *ret, custody_info_t *ci) {
        seal_opts_t o = credential_seal_opts(c);
        _cleanup_(stored_profile_wipe) stored_profile_t p = {};
        seal_method_t m = _SEAL_METHOD_INVALID;
        char err[256] = "";
        int r = sealing_run(&o, NULL, &p, &m, err, sizeof err);
        return custody_restore_finish(c, r, err, &p, m, ret, ci);
}

static int custody_store(const agent_config_t *c, const stored_profile_t *p, stored_profile_t *ret,
                         custody_info_t *ci) {
        ino_t envelope;
        int r = custody_store_begin(c, &envelope, ci);
        if (r < 0)
                return r;
        seal_opts_t o = credential_seal_opts(c);
        seal_method_t m = _SEAL_METHOD_INVALID;
        char err[256] = "";
        r = sealing_run(&o, p, NULL, &m, err, sizeof err);
        return custody_store_finish(c, r, err, envelope, p, m, ret, ci);
}

TestSuite(custody, .init = setup, .fini = teardown, .timeout = 60);

/* What enrol_run() would return: a profile with two targets and a 32-byte Ke. */
static void result_make(stored_profile_t *r, const char *ke_id, time_t exp) {
        msg_profile_t m = {}, *p = &m;
        snprintf(p->cse_id, sizeof p->cse_id, "/mn-cse-1");
        snprintf(p->cse_base, sizeof p->cse_base, "https://in.example.net/~/in-cse");
        snprintf(p->ke_id, sizeof p->ke_id, "%s", ke_id);
        p->exp_t = exp;
        time_format_basic(exp, p->exp);
        p->poll = 3600;
        p->n_targets = 2;
        snprintf(p->targets[0].id, sizeof p->targets[0].id, "/in-cse");
        /* kpsaID = <RelativeKeID>.<n>@<fqdn> (docs/protocol.md) */
        const char *at = strchr(ke_id, '@');
        cr_assert_not_null(at);
        snprintf(p->targets[0].kpsa_id, sizeof p->targets[0].kpsa_id, "%.*s.1%s", (int) (at - ke_id), ke_id, at);
        snprintf(p->targets[1].id, sizeof p->targets[1].id, "/maf-1");
        snprintf(p->targets[1].kpsa_id, sizeof p->targets[1].kpsa_id, "%.*s.2%s", (int) (at - ke_id), ke_id, at);
        uint8_t ltk[32];
        cr_assert_eq(random_bytes(ltk, sizeof ltk), 0);
        cr_assert_eq(profile_from_msg(&m, cfg.node_id, cfg.mef_uri, time(NULL), ltk, sizeof ltk, r), 0);
        for (size_t i = 0; i < r->n_targets; i++)
                cr_assert_eq(random_bytes(r->targets[i].kpsa, sizeof r->targets[i].kpsa), 0);
        erase(ltk, sizeof ltk);
}

static void store(const char *ke_id, time_t exp) {
        _cleanup_(stored_profile_wipe) stored_profile_t r;
        result_make(&r, ke_id, exp);
        custody_info_t ci;
        _cleanup_(stored_profile_wipe) stored_profile_t p;
        int rc = custody_store(&cfg, &r, &p, &ci);
        cr_assert_eq(rc, 0, "store: %s", ci.failure.reason);
        cr_assert(ci.sealed);
        cr_assert_eq(ci.method, SEAL_METHOD_HOST);
        cr_assert_str_eq(p.ke_id, ke_id);
        cr_assert_eq(memcmp(p.ltk, r.ltk, 32), 0);
}

static bool has_key(const char *name) {
        int32_t serial;
        return keyring_find(cse_uid, name, &serial) == 0;
}

static char *profile_json(void) {
        _cleanup_free_ char *path = path_in(cfg.runtime_dir, "profile.json");
        char *text = NULL;
        return file_read_all(path, 65536, &text, NULL) == 0 ? text : NULL;
}

static char *envelope(size_t *len) {
        _cleanup_free_ char *path = path_in(cfg.state_dir, "profile.sealed");
        char *data = NULL;
        cr_assert_eq(file_read_all(path, 65536, &data, len), 0);
        return data;
}

Test(custody, absent) {
        custody_info_t ci;
        stored_profile_t p = { .poll = 77 };
        cr_assert_eq(custody_restore(&cfg, &p, &ci), -ENOENT);
        cr_assert_eq(ci.failure.outcome, OUTCOME_ABSENT);
        cr_assert(strstr(ci.failure.reason, cfg.state_dir), "%s", ci.failure.reason);
        cr_assert_eq(p.poll, 77, "ret_profile touched on failure");
        cr_assert(!has_key("ltk"));
}

Test(custody, store_then_restore) {
        time_t exp = time(NULL) + 86400;
        store("0123456789abcdef0123456789abcdef@mef.example.net", exp);
        cr_assert(has_key("ltk"));
        cr_assert(has_key("kpsa:0123456789abcdef0123456789abcdef.1@mef.example.net"));
        cr_assert(has_key("kpsa:0123456789abcdef0123456789abcdef.2@mef.example.net"));

        /* The keys go; restore brings them back from the sealed profile. */
        custody_info_t ci;
        cr_assert_eq(custody_check(&cfg, NULL, &ci), 0, "%s", ci.failure.reason);
        cr_assert_eq(custody_sealed_exists(&cfg), 0);
        cr_assert_eq(keyring_remove(cse_uid), 0);
        cr_assert_eq(custody_check(&cfg, NULL, &ci), -ENOKEY);
        cr_assert_eq(ci.failure.outcome, OUTCOME_ABSENT);

        _cleanup_(stored_profile_wipe) stored_profile_t p;
        cr_assert_eq(custody_restore(&cfg, &p, &ci), 0, "%s", ci.failure.reason);
        cr_assert_eq(ci.method, SEAL_METHOD_HOST);
        cr_assert_str_eq(p.node_id, "node-1");
        cr_assert_eq(p.exp_t, exp);
        cr_assert_eq(p.n_targets, 2);
        cr_assert(has_key("ltk"));
        cr_assert_eq(custody_check(&cfg, &p, &ci), 0, "%s", ci.failure.reason);

        /* A Kpsa alone gone: the profile's keys are not all there (its Long Term Key is). */
        const char *kpsa = "kpsa:0123456789abcdef0123456789abcdef.2@mef.example.net";
        int32_t ring, key;
        cr_assert_eq(keyring_find(cse_uid, NULL, &ring), 0);
        cr_assert_eq(keyring_find(cse_uid, kpsa, &key), 0);
        cr_assert_eq(keyctl_unlink(key, ring), 0);
        cr_assert_eq(custody_check(&cfg, &p, &ci), -ENOKEY);
        cr_assert(strstr(ci.failure.reason, "msce:kpsa:0123456789abcdef0123456789abcdef.2@"), "%s", ci.failure.reason);
        cr_assert_eq(custody_check(&cfg, NULL, &ci), 0, "%s", ci.failure.reason);
        _cleanup_(stored_profile_wipe) stored_profile_t again;
        cr_assert_eq(custody_restore(&cfg, &again, &ci), 0, "%s", ci.failure.reason);
        cr_assert_eq(custody_check(&cfg, &p, &ci), 0, "%s", ci.failure.reason);

        _cleanup_free_ char *json = profile_json();
        cr_assert_not_null(json);
        cr_assert(strstr(json, "\"keID\": \"0123456789abcdef0123456789abcdef@mef.example.net\""), "%s", json);
        cr_assert(strstr(json, "\"kpsaID\": \"0123456789abcdef0123456789abcdef.2@mef.example.net\""), "%s", json);
        cr_assert(strstr(json, "\"poll\": 3600"), "%s", json);
        cr_assert_null(strstr(json, "ltk"), "%s", json);
        _cleanup_free_ char *path = path_in(cfg.runtime_dir, "profile.json");
        struct stat st;
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0644);
        cr_assert_eq(stat(cfg.state_dir, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0700);
}

Test(custody, expired) {
        time_t exp = time(NULL) + 2;
        store("00000000000000000000000000000001@mef.example.net", exp);
        cr_assert_eq(keyring_remove(cse_uid), 0);
        /* until the wall clock is past exp (not a fixed sleep: a slow store can take longer) */
        while (time(NULL) <= exp)
                usleep(20000);
        custody_info_t ci;
        cr_assert_eq(custody_restore(&cfg, NULL, &ci), -EKEYEXPIRED);
        cr_assert_eq(ci.failure.outcome, OUTCOME_EXPIRED);
        cr_assert(strstr(ci.failure.reason, "expired at"), "%s", ci.failure.reason);
        cr_assert(!has_key("ltk"), "an expired profile's keys were installed");
}

Test(custody, other_node_or_mef) {
        store("00000000000000000000000000000002@mef.example.net", time(NULL) + 86400);
        cr_assert_eq(keyring_remove(cse_uid), 0);
        custody_info_t ci;

        free(cfg.node_id);
        cfg.node_id = strdup("node-2");
        cr_assert_eq(custody_restore(&cfg, NULL, &ci), -ENOENT);
        cr_assert_eq(ci.failure.outcome, OUTCOME_MISMATCH);
        cr_assert(strstr(ci.failure.reason, "node ID node-1, the configuration says node-2"), "%s", ci.failure.reason);

        free(cfg.node_id);
        cfg.node_id = strdup("node-1");
        free(cfg.mef_uri);
        cfg.mef_uri = strdup("https://other.example.net/msce");
        cr_assert_eq(custody_restore(&cfg, NULL, &ci), -ENOENT);
        cr_assert_eq(ci.failure.outcome, OUTCOME_MISMATCH);
        cr_assert(strstr(ci.failure.reason, "MEF https://mef.example.net/msce"), "%s", ci.failure.reason);
        cr_assert(!has_key("ltk"));
}

Test(custody, corrupted) {
        store("00000000000000000000000000000003@mef.example.net", time(NULL) + 86400);
        size_t len;
        _cleanup_free_ char *env = envelope(&len);
        env[len - 20] ^= 1;
        _cleanup_free_ char *path = path_in(cfg.state_dir, "profile.sealed");
        cr_assert_eq(file_write_atomic(path, env, len, 0600), 0);
        custody_info_t ci;
        cr_assert_eq(custody_restore(&cfg, NULL, &ci), -EBADMSG);
        cr_assert_eq(ci.failure.outcome, OUTCOME_UNUSABLE);
        cr_assert(strstr(ci.failure.reason, "corrupted"), "%s", ci.failure.reason);

        /* host.key gone: the envelope cannot be opened. */
        store("00000000000000000000000000000004@mef.example.net", time(NULL) + 86400);
        _cleanup_free_ char *key = path_in(cfg.state_dir, "host.key");
        cr_assert_eq(unlink(key), 0);
        cr_assert_eq(custody_restore(&cfg, NULL, &ci), -EKEYREJECTED);
        cr_assert_eq(ci.failure.outcome, OUTCOME_UNUSABLE);
}

Test(custody, nothing_half_loaded) {
        store("00000000000000000000000000000005@mef.example.net", time(NULL) + 86400);
        cr_assert_eq(keyring_remove(cse_uid), 0);
        /* profile.json cannot be written: the runtime directory is a file. */
        free(cfg.runtime_dir);
        cfg.runtime_dir = path_in(dir, "not-a-dir");
        cr_assert_eq(file_write_atomic(cfg.runtime_dir, "x", 1, 0644), 0);
        custody_info_t ci;
        stored_profile_t p = { .poll = 77 };
        cr_assert_lt(custody_restore(&cfg, &p, &ci), 0);
        cr_assert_eq(ci.failure.outcome, OUTCOME_FAILED);
        cr_assert(strstr(ci.failure.reason, cfg.runtime_dir), "%s", ci.failure.reason);
        cr_assert(!has_key("ltk"), "keys left without their profile.json");
        cr_assert_eq(p.poll, 77);
}

Test(custody, config_error_changes_nothing) {
        store("00000000000000000000000000000006@mef.example.net", time(NULL) + 86400);
        size_t len_before;
        _cleanup_free_ char *before = envelope(&len_before);

        free(cfg.service_user);
        cfg.service_user = strdup("msce-test-nosuchuser");
        _cleanup_(stored_profile_wipe) stored_profile_t r;
        result_make(&r, "00000000000000000000000000000007@mef.example.net", time(NULL) + 86400);
        custody_info_t ci;
        cr_assert_eq(custody_store(&cfg, &r, NULL, &ci), -ESRCH);
        cr_assert_eq(ci.failure.outcome, OUTCOME_CONFIG);
        cr_assert(!ci.sealed);
        cr_assert(strstr(ci.failure.reason, "[consumer] user: no such user 'msce-test-nosuchuser'"), "%s", ci.failure.reason);

        size_t len_after;
        _cleanup_free_ char *after = envelope(&len_after);
        cr_assert_eq(len_before, len_after);
        cr_assert_eq(memcmp(before, after, len_before), 0, "the sealed profile changed");
        cr_assert(has_key("ltk"), "the old keys went");
}

Test(custody, remove) {
        store("00000000000000000000000000000008@mef.example.net", time(NULL) + 86400);
        custody_info_t ci;
        cr_assert_eq(custody_remove(&cfg, true, &ci), 0, "%s", ci.failure.reason);
        cr_assert(!has_key("ltk"));
        _cleanup_free_ char *json = profile_json();
        cr_assert_null(json);
        _cleanup_free_ char *path = path_in(cfg.state_dir, "profile.sealed");
        cr_assert_eq(access(path, F_OK), -1);
        cr_assert_eq(custody_sealed_exists(&cfg), -ENOENT);
        cr_assert_eq(custody_restore(&cfg, NULL, &ci), -ENOENT);
        /* Nothing left to remove is fine too. */
        cr_assert_eq(custody_remove(&cfg, true, &ci), 0, "%s", ci.failure.reason);
}

/* Another [consumer] user than the uid the record names (a reload, or a restart: the record is a
 * file in the state directory): that user's keys go; the same user keeps them; a record that is
 * not a uid is taken as absent and replaced. The other user is only resolved and its keyring
 * emptied: "nobody" serves. */
static uid_t recorded(void) {
        uid_t u = 0;
        char name[CUSTODY_USER_MAX];
        cr_assert_eq(keyring_owner_read(cfg.state_dir, &u, name, sizeof name), 0);
        return u;
}

Test(custody, user_leave) {
        store("0000000000000000000000000000000a@mef.example.net", time(NULL) + 86400);
        custody_info_t ci;
        char prev[CUSTODY_USER_MAX] = "";
        /* no record yet (the first start of this version): nothing to remove, the record is made */
        cr_assert_eq(custody_user_leave(&cfg, prev, &ci), 0, "%s", ci.failure.reason);
        cr_assert_eq(recorded(), cse_uid);
        cr_assert_eq(custody_user_leave(&cfg, prev, &ci), 0, "%s", ci.failure.reason);
        cr_assert(has_key("ltk"), "the same user lost its keys");
        uid_t nobody;
        if (user_resolve("nobody", &nobody, NULL) < 0)
                cr_skip_test("no user nobody");
        agent_config_t other = cfg;
        other.service_user = "nobody";
        cr_assert_eq(custody_user_leave(&other, prev, &ci), 1, "%s", ci.failure.reason);
        cr_assert_str_eq(prev, cse_user);
        cr_assert(!has_key("ltk"), "the previous user kept its keys");
        cr_assert_eq(recorded(), nobody);
        /* back: "nobody" has no keys (as after a reboot, which empties the keyring): nothing said */
        cr_assert_eq(custody_user_leave(&cfg, prev, &ci), 0, "%s", ci.failure.reason);
        cr_assert_eq(recorded(), cse_uid);

        _cleanup_free_ char *record = path_in(cfg.state_dir, KEYRING_OWNER_NAME);
        cr_assert_eq(file_write_atomic(record, "garbage\n", 8, 0600), 0);
        cr_assert_eq(custody_user_leave(&cfg, prev, &ci), -EBADMSG);
        _cleanup_free_ char *reason = NULL;
        cr_assert_geq(asprintf(&reason, "%s: not a uid, taken as absent (a previous user's keys may remain)", record), 0);
        cr_assert_str_eq(ci.failure.reason, reason);
        cr_assert_eq(recorded(), cse_uid, "the garbage record was not replaced");
}

/* Keys that cannot be removed for now (the user database not answering) keep what names them:
 * the sealed profile and profile.json stay for the retry (agent/removal.c). A user that does
 * not exist has no keys to wait for: the files go all the same. */
Test(custody, remove_keeps_the_files_while_the_keys_stay) {
        store("0000000000000000000000000000000b@mef.example.net", time(NULL) + 86400);
        size_t len;
        _cleanup_free_ char *sealed = envelope(&len);
        custody_info_t ci;
        nss_down = cse_user;
        cr_assert_eq(custody_remove(&cfg, true, &ci), -EIO);
        nss_down = NULL;
        cr_assert_eq(ci.failure.outcome, OUTCOME_FAILED);
        cr_assert(strstr(ci.failure.reason, "Input/output error"), "%s", ci.failure.reason);
        cr_assert(has_key("ltk"));
        _cleanup_free_ char *json = profile_json();
        cr_assert_not_null(json, "profile.json went before the keys");
        size_t len_after;
        _cleanup_free_ char *after = envelope(&len_after); /* there still, unchanged */
        cr_assert(len == len_after && memcmp(sealed, after, len) == 0, "the sealed profile changed");
        cr_assert_eq(custody_remove(&cfg, true, &ci), 0, "%s", ci.failure.reason);
        _cleanup_free_ char *path = path_in(cfg.state_dir, "profile.sealed");
        cr_assert(!has_key("ltk"));
        cr_assert_eq(access(path, F_OK), -1);

        store("0000000000000000000000000000000c@mef.example.net", time(NULL) + 86400);
        agent_config_t other = cfg;
        other.service_user = "msce-test-nosuchuser";
        cr_assert_lt(custody_remove(&other, true, &ci), 0);
        cr_assert_eq(ci.failure.outcome, OUTCOME_CONFIG);
        _cleanup_free_ char *json2 = profile_json();
        cr_assert_null(json2);
        cr_assert_eq(access(path, F_OK), -1);
}

/* What an expiry removes while an enrolment is under way: the keys and profile.json, not the
 * sealed files, which that enrolment's sealing may be writing (and its host.key reading). */
Test(custody, remove_keys_leaves_the_sealed_files) {
        store("00000000000000000000000000000009@mef.example.net", time(NULL) + 86400);
        size_t len_before, len_after;
        _cleanup_free_ char *before = envelope(&len_before);
        custody_info_t ci;
        cr_assert_eq(custody_remove(&cfg, false, &ci), 0, "%s", ci.failure.reason);
        cr_assert(!has_key("ltk"));
        _cleanup_free_ char *json = profile_json();
        cr_assert_null(json);
        _cleanup_free_ char *after = envelope(&len_after);
        cr_assert(len_before == len_after && memcmp(before, after, len_before) == 0, "the sealed profile changed");
        cr_assert_eq(custody_restore(&cfg, NULL, &ci), 0, "%s", ci.failure.reason);
        cr_assert(has_key("ltk"));
}

Test(custody, lock) {
        custody_info_t ci;
        _cleanup_close_ int a = -1, b = -1;
        _cleanup_free_ char *stale = path_in(cfg.state_dir, "profile.sealed.tmp.AbCdEf");
        cr_assert_eq(custody_lock(&cfg, &a, &ci), 0, "%s", ci.failure.reason);
        cr_assert_eq(file_write_atomic(stale, "x", 1, 0600), 0);
        /* flock is per open file description: a second open cannot take it. */
        cr_assert_eq(custody_lock(&cfg, &b, &ci), -EBUSY);
        cr_assert(strstr(ci.failure.reason, "another msce-agent"), "%s", ci.failure.reason);
        cr_assert_eq(access(stale, F_OK), 0, "a temporary file removed without the lock");
        close(TAKE_FD(a));
        cr_assert_eq(custody_lock(&cfg, &b, &ci), 0, "%s", ci.failure.reason);
        cr_assert_eq(access(stale, F_OK), -1, "a stale temporary file was left");
}

/* profile.json cannot be replaced: a non-empty directory sits at its path, so its temporary
 * file is written and only the rename fails (EISDIR), after the keys were installed. */
static void profile_json_block(void) {
        _cleanup_free_ char *pj = path_in(cfg.runtime_dir, "profile.json");
        (void) unlink(pj);
        cr_assert_eq(mkdir(pj, 0755), 0);
        _cleanup_free_ char *inner = path_in(pj, "x");
        cr_assert_eq(mkdir(inner, 0755), 0);
}

static size_t runtime_temporaries(void) {
        DIR *d = opendir(cfg.runtime_dir);
        cr_assert_not_null(d);
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));)
                n += strstr(de->d_name, ".tmp.") != NULL;
        closedir(d);
        return n;
}

Test(custody, renewal_keeps_keys_when_profile_json_cannot_be_replaced) {
        store("000000000000000000000000000000a1@mef.example.net", time(NULL) + 86400);
        profile_json_block();
        _cleanup_(stored_profile_wipe) stored_profile_t r;
        result_make(&r, "000000000000000000000000000000a2@mef.example.net", time(NULL) + 86400);
        custody_info_t ci;
        cr_assert_lt(custody_store(&cfg, &r, NULL, &ci), 0);
        cr_assert_eq(ci.failure.outcome, OUTCOME_FAILED, "%s", ci.failure.reason);
        cr_assert(ci.sealed);
        cr_assert(strstr(ci.failure.reason, "profile.json"), "%s", ci.failure.reason);
        /* the sealed profile's keys, which the manager's restore completes with profile.json */
        cr_assert(has_key("ltk"), "a failed renewal left the CSE with no keys (%s)", ci.failure.reason);
        cr_assert(has_key("kpsa:000000000000000000000000000000a2.1@mef.example.net"));
        cr_assert_eq(runtime_temporaries(), 0, "profile.json's temporary file was left");
}

Test(custody, reload_keeps_keys_when_profile_json_cannot_be_replaced) {
        store("000000000000000000000000000000a3@mef.example.net", time(NULL) + 86400);
        profile_json_block();
        custody_info_t ci;
        cr_assert_lt(custody_restore(&cfg, NULL, &ci), 0);
        cr_assert_eq(ci.failure.outcome, OUTCOME_FAILED, "%s", ci.failure.reason);
        cr_assert(has_key("ltk"), "a failed restore removed the keys that were in place");
        cr_assert(has_key("kpsa:000000000000000000000000000000a3.2@mef.example.net"));
}

/* A first install whose profile.json cannot be renamed into place loads nothing. */
Test(custody, first_install_loads_nothing_when_profile_json_cannot_be_replaced) {
        store("000000000000000000000000000000a4@mef.example.net", time(NULL) + 86400);
        cr_assert_eq(keyring_remove(cse_uid), 0);
        profile_json_block();
        custody_info_t ci;
        cr_assert_lt(custody_restore(&cfg, NULL, &ci), 0);
        cr_assert_eq(ci.failure.outcome, OUTCOME_FAILED, "%s", ci.failure.reason);
        cr_assert(!has_key("ltk"), "keys left without their profile.json");
}

/* profile.json cannot be written at all (here: runtime_dir is a file; on a gateway a full or
 * read-only /run): the renewal fails before the keyring is touched, the old keys stay as they were. */
Test(custody, renewal_leaves_keys_alone_when_profile_json_cannot_be_written) {
        store("000000000000000000000000000000a5@mef.example.net", time(NULL) + 86400);
        int32_t before, after;
        cr_assert_eq(keyring_find(cse_uid, "ltk", &before), 0);
        free(cfg.runtime_dir);
        cfg.runtime_dir = path_in(dir, "not-a-dir");
        cr_assert_eq(file_write_atomic(cfg.runtime_dir, "x", 1, 0644), 0);
        _cleanup_(stored_profile_wipe) stored_profile_t r;
        result_make(&r, "000000000000000000000000000000a6@mef.example.net", time(NULL) + 86400);
        custody_info_t ci;
        cr_assert_lt(custody_store(&cfg, &r, NULL, &ci), 0);
        cr_assert_eq(ci.failure.outcome, OUTCOME_FAILED, "%s", ci.failure.reason);
        cr_assert_eq(keyring_find(cse_uid, "ltk", &after), 0, "the old keys went");
        cr_assert_eq(after, before, "the keys were replaced although profile.json could not be written");
        cr_assert(has_key("kpsa:000000000000000000000000000000a5.1@mef.example.net"));
}

/* A profile whose keys the keyring would refuse (two targets with one kpsaID) is refused before
 * it is sealed: the good sealed profile and its keys stay, and a restore still installs them. */
Test(custody, profile_the_keyring_refuses_is_not_sealed) {
        store("000000000000000000000000000000b1@mef.example.net", time(NULL) + 86400);
        size_t len_before;
        _cleanup_free_ char *before = envelope(&len_before);
        _cleanup_(stored_profile_wipe) stored_profile_t r;
        result_make(&r, "000000000000000000000000000000b2@mef.example.net", time(NULL) + 86400);
        snprintf(r.targets[1].kpsa_id, sizeof r.targets[1].kpsa_id, "%s", r.targets[0].kpsa_id);
        custody_info_t ci;
        cr_assert_lt(custody_store(&cfg, &r, NULL, &ci), 0);
        cr_assert_eq(ci.failure.outcome, OUTCOME_FAILED, "%s", ci.failure.reason);
        cr_assert(!ci.sealed);

        size_t len_after;
        _cleanup_free_ char *after = envelope(&len_after);
        cr_assert(len_before == len_after && memcmp(before, after, len_before) == 0,
                  "the good sealed profile was replaced by one that can never be installed");
        cr_assert(has_key("kpsa:000000000000000000000000000000b1.2@mef.example.net"), "the old keys went");
        _cleanup_(stored_profile_wipe) stored_profile_t p;
        cr_assert_eq(custody_restore(&cfg, &p, &ci), 0, "%s", ci.failure.reason);
        cr_assert_str_eq(p.ke_id, "000000000000000000000000000000b1@mef.example.net");
}

/* What custody makes of a sealing child's "no TPM answers" (-ENODEV) under backend. */
static void assert_tpm_silent(bool at_store, seal_backend_t backend, outcome_t want) {
        cfg.seal_backend = backend;
        stored_profile_t p = {};
        custody_info_t ci;
        int r = at_store ? custody_store_finish(&cfg, -ENODEV, "", 0, &p, _SEAL_METHOD_INVALID, NULL, &ci)
                         : custody_restore_finish(&cfg, -ENODEV, "", &p, _SEAL_METHOD_INVALID, NULL, &ci);
        cr_assert_eq(r, -ENODEV);
        cr_assert_eq(ci.failure.outcome, want, "%s, backend %s: outcome %s: %s", at_store ? "store" : "restore",
                     seal_backend_to_string(backend), outcome_to_string(ci.failure.outcome), ci.failure.reason);
        cr_assert(!ci.sealed);
}

/* A profile a TPM sealed, and no TPM answers (yet: at boot, before its driver or device node):
 * retried in backoff, not re-enrolled (which under auto would seal with the host key). Only
 * backend = host, which gives up the TPM, re-enrols. */
Test(custody, tpm_not_answering_at_restore_is_retried) {
        assert_tpm_silent(false, SEAL_AUTO, OUTCOME_FAILED);
        assert_tpm_silent(false, SEAL_TPM2, OUTCOME_FAILED);
        assert_tpm_silent(false, SEAL_HOST, OUTCOME_UNUSABLE);
}

/* A TPM that answered the probe (auto's, or the one before a tpm2 enrolment) and then stopped
 * answering while sealing: a retry, not a configuration error (exit 78, which systemd does not
 * restart). */
Test(custody, tpm_gone_while_sealing_is_retried) {
        assert_tpm_silent(true, SEAL_AUTO, OUTCOME_FAILED);
        assert_tpm_silent(true, SEAL_TPM2, OUTCOME_FAILED);
}

/* A seal reported failed after its rename (the directory's fsync failed, or the child was killed
 * at its time limit right after it): the new envelope is in place, so the store says sealed and
 * the restore installs it (the old code said not sealed: the agent enrolled again). */
Test(custody, seal_failed_after_its_rename_is_sealed) {
        store("000000000000000000000000000000c1@mef.example.net", time(NULL) + 86400);
        _cleanup_(stored_profile_wipe) stored_profile_t r;
        result_make(&r, "000000000000000000000000000000c2@mef.example.net", time(NULL) + 86400);
        custody_info_t ci;
        ino_t envelope;
        cr_assert_eq(custody_store_begin(&cfg, &envelope, &ci), 0, "%s", ci.failure.reason);
        seal_opts_t o = credential_seal_opts(&cfg);
        char err[256] = "";
        cr_assert_eq(sealing_run(&o, &r, NULL, NULL, err, sizeof err), 0);
        cr_assert_eq(custody_store_finish(&cfg, -ETIMEDOUT, "", envelope, &r, _SEAL_METHOD_INVALID, NULL, &ci), -ETIMEDOUT);
        cr_assert(ci.sealed, "a seal in place reported as not sealed: %s", ci.failure.reason);
        _cleanup_(stored_profile_wipe) stored_profile_t p;
        cr_assert_eq(custody_restore(&cfg, &p, &ci), 0, "%s", ci.failure.reason);
        cr_assert_str_eq(p.ke_id, "000000000000000000000000000000c2@mef.example.net");
        /* failed before the rename: not sealed */
        cr_assert_eq(custody_store_begin(&cfg, &envelope, &ci), 0);
        cr_assert_eq(custody_store_finish(&cfg, -ETIMEDOUT, "", envelope, &r, _SEAL_METHOD_INVALID, NULL, &ci), -ETIMEDOUT);
        cr_assert(!ci.sealed);
}

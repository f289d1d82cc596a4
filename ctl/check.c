/* SPDX-License-Identifier: MIT */
/* mscectl check (ctl/check.h). The top layer: it prints. */
#include "msce-config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <keyutils.h>
#include <netdb.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/timex.h>
#include <sys/wait.h>
#include <jansson.h>

#include "agent/config.h"
#include "agent/credential.h"
#include "agent/custody.h"
#include "ctl/check.h"
#include "ctl/runtime.h"
#include "hw/gpio.h"
#include "hw/leds.h"
#include "hw/tpm2.h"
#include "keys/keyring.h"
#include "keys/seal.h"
#include "proto/exchange.h"
#include "util/util.h"

#define GROUPS_MAX 64

typedef enum level {
        L_OK,
        L_WARN,
        L_FAIL,
} level_t;

typedef struct checker {
        FILE *f;
        unsigned fails;
        unsigned warns;
        const ctl_check_opts_t *o;
        const char *id;   /* the check running now (ctl_check_list()) */
        json_t *results;  /* --output json: the findings, printed at the end */
        /* the agent's identity, for permission checks */
        const char *user;
        uid_t uid;
        gid_t groups[GROUPS_MAX];
        size_t n_groups;
} checker_t;

/* Every check, in the order they run: "mscectl check-list", --dont-run ID. */
static const struct {
        const char *id;
        const char *description;
} check_table[] = {
        { "config", "the configuration loads (as msce-agent --check-config --syntax-only)" },
        { "agent-user", "the user msce-agent.service runs as exists, and its groups" },
        { "config-files", "the configuration files are readable by the agent's user" },
        { "credentials", "the bootstrap credential files: regular, owner-only, readable by the agent's user" },
        { "clock", "the clock is past this build and synchronized" },
        { "state-dir", "[seal] state_dir: a directory the agent can write" },
        { "runtime-dir", "[seal] runtime_dir: a directory the agent can write" },
        { "preflight", "what msce-agent checks before it enrols: the CSE's user, the directories, the TPM" },
        { "consumer", "[consumer] user exists and reads the keys filed for it (root: the keys too)" },
        { "tpm", "[seal] backend: the TPM answers and the agent's user may open it" },
        { "sealed-profile", "the sealed profile opens, is this configuration's and has not expired" },
        { "leds", "[leds] status and error name GPIO lines the agent's user may drive" },
        { "mef", "the MEF resolves, accepts a TCP connection and the TLS handshake with the credential" },
        { "agent", "msce-agent runs, and its state is not rejected, revoked, incompatible or failed" },
        { "profile", "the profile handed to the CSE (profile.json) has not expired" },
};

static bool check_wanted(const checker_t *c, const char *id) {
        for (size_t i = 0; i < c->o->n_dont_run; i++)
                if (streq(c->o->dont_run[i], id))
                        return false;
        return true;
}

bool ctl_check_known(const char *id) {
        for (size_t i = 0; i < ELEMENTSOF(check_table); i++)
                if (streq(check_table[i].id, id))
                        return true;
        return false;
}

int ctl_check_list(bool json, FILE *f) {
        if (!json) {
                for (size_t i = 0; i < ELEMENTSOF(check_table); i++)
                        fprintf(f, "%-15s %s\n", check_table[i].id, check_table[i].description);
                return 0;
        }
        json_auto_t *a = json_array();
        for (size_t i = 0; a && i < ELEMENTSOF(check_table); i++)
                if (json_array_append_new(a, json_pack("{s:s, s:s}", "id", check_table[i].id, "description",
                                                       check_table[i].description)) < 0)
                        return -ENOMEM;
        if (!a || json_dumpf(a, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                return -ENOMEM;
        fputc('\n', f);
        return 0;
}

static void _printf_(4, 5) report(checker_t *c, level_t l, const char *fix, const char *fmt, ...) {
        static const char *const label[] = { "OK", "WARN", "FAIL" };
        static const char *const result[] = { "ok", "warning", "failed" };
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (l == L_FAIL)
                c->fails++;
        else if (l == L_WARN)
                c->warns++;
        if (c->results) {
                json_t *o = json_pack("{s:s, s:s, s:s, s:s?}", "id", c->id ?: "", "result", result[l], "message", msg,
                                      "fix", l != L_OK ? fix : NULL);
                if (o)
                        (void) json_array_append_new(c->results, o);
                return;
        }
        fprintf(c->f, "%-5s %s\n", label[l], msg);
        if (l != L_OK && fix)
                fprintf(c->f, "      fix: %s\n", fix);
}

bool ctl_access_ok(uid_t owner, gid_t group, mode_t mode, uid_t uid, const gid_t *groups, size_t n, int want) {
        mode_t shift = 0; /* other */
        if (uid == owner)
                shift = 6;
        else
                for (size_t i = 0; i < n; i++)
                        if (groups[i] == group) {
                                shift = 3;
                                break;
                        }
        mode_t bits = (mode >> shift) & 7;
        return (!(want & R_OK) || (bits & 4)) && (!(want & W_OK) || (bits & 2)) && (!(want & X_OK) || (bits & 1));
}

static bool agent_can(const checker_t *c, const struct stat *st, int want) {
        return ctl_access_ok(st->st_uid, st->st_gid, st->st_mode, c->uid, c->groups, c->n_groups, want);
}

static const char *user_name(uid_t uid, char buf[32]) {
        struct passwd *pw = getpwuid(uid);
        if (pw)
                return pw->pw_name;
        snprintf(buf, 32, "%u", (unsigned) uid);
        return buf;
}

static const char *group_name(gid_t gid, char buf[32]) {
        struct group *gr = getgrgid(gid);
        if (gr)
                return gr->gr_name;
        snprintf(buf, 32, "%u", (unsigned) gid);
        return buf;
}

static bool path_under(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* A file the agent reads: secret ones must be owner-only. */
static void check_file(checker_t *c, const char *what, const char *path, bool secret) {
        char fix[512], u[32], g[32];
        struct stat st;
        if (stat(path, &st) < 0) {
                snprintf(fix, sizeof fix, "create %s or correct %s in the configuration", path, what);
                report(c, L_FAIL, fix, "%s: %s: %m", what, path);
                return;
        }
        if (!S_ISREG(st.st_mode)) {
                report(c, L_FAIL, "name a regular file", "%s: %s is not a regular file", what, path);
                return;
        }
        if (secret && (st.st_mode & 077)) {
                snprintf(fix, sizeof fix, "chmod 0600 %s", path);
                report(c, L_FAIL, fix, "%s: %s is readable by group or others (mode %04o)", what, path,
                       (unsigned) (st.st_mode & 07777));
                return;
        }
        if (!agent_can(c, &st, R_OK)) {
                if (secret)
                        snprintf(fix, sizeof fix, "chown %s: %s", c->user, path);
                else
                        snprintf(fix, sizeof fix, "chmod a+r %s", path);
                report(c, L_FAIL, fix, "%s: %s is not readable by the agent's user %s (owner %s, group %s, mode %04o)",
                       what, path, c->user, user_name(st.st_uid, u), group_name(st.st_gid, g),
                       (unsigned) (st.st_mode & 07777));
                return;
        }
        /* What msce-agent.service hides from the agent. */
        static const char *const hidden[][2] = {
                { "/home", "ProtectHome=yes" }, { "/root", "ProtectHome=yes" }, { "/run/user", "ProtectHome=yes" },
                { "/tmp", "PrivateTmp=yes" },   { "/var/tmp", "PrivateTmp=yes" },
        };
        for (size_t i = 0; i < ELEMENTSOF(hidden); i++)
                if (path_under(path, hidden[i][0])) {
                        report(c, L_WARN, "keep the agent's files in /etc/msce",
                               "%s: %s is hidden from msce-agent.service (%s)", what, path, hidden[i][1]);
                        return;
                }
        report(c, L_OK, NULL, "%s: %s (owner %s, mode %04o)", what, path, user_name(st.st_uid, u),
               (unsigned) (st.st_mode & 07777));
}

static int dropin_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".conf");
}

/* The agent reads them as its user too. */
static void check_config_files(checker_t *c, const agent_config_t *cfg) {
        check_file(c, "configuration", cfg->path, false);
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s.d", cfg->path) < 0)
                return;
        struct dirent **list = NULL;
        int n = scandir(dir, &list, dropin_filter, alphasort);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, list[i]->d_name) >= 0)
                        check_file(c, "configuration", p, false);
                free(list[i]);
        }
        free(list);
}

static void check_credentials(checker_t *c, const agent_config_t *cfg) {
        if (cfg->mode == TLS_MODE_PSK) {
                if (cfg->kpm_path && cfg->psk_file && streq(cfg->kpm_path, cfg->psk_file))
                        check_file(c, "[mef] psk_file", cfg->psk_file, true);
                else if (cfg->kpm_path)
                        report(c, L_OK, NULL, "[mef] psk_credential: the Kpm from the systemd credential %s",
                               cfg->kpm_path);
                else
                        report(c, L_OK, NULL, "[mef] psk_credential: %s, passed to msce-agent.service by systemd",
                               cfg->kpm_credstore);
                return;
        }
        check_file(c, "[mef] key", cfg->key_file, true);
        check_file(c, "[mef] certificate", cfg->cert_file, false);
        check_file(c, "[mef] trust_anchors", cfg->ca_file, false);
}

static void check_clock(checker_t *c) {
        time_t now = time(NULL), built = (time_t) MSCE_BUILD_TIME;
        char a[32], b[32];
        time_format_utc(now, a);
        time_format_utc(built, b);
        if (now < built) {
                report(c, L_FAIL, "set the clock: timedatectl set-ntp true (or date -s)",
                       "clock: %s is before this build (%s): certificates and expiry cannot be checked", a, b);
                return;
        }
        struct timex tx = {};
        if (adjtimex(&tx) == TIME_ERROR) {
                report(c, L_WARN, "enable time synchronization: timedatectl set-ntp true",
                       "clock: %s, not synchronized", a);
                return;
        }
        report(c, L_OK, NULL, "clock: %s, synchronized", a);
}

static void check_dir(checker_t *c, const char *what, const char *dir, const char *unit_dir, mode_t mode) {
        char fix[512], u[32];
        struct stat st;
        if (!streq(dir, unit_dir)) {
                snprintf(fix, sizeof fix, "add ReadWritePaths=%s in a drop-in for msce-agent.service", dir);
                report(c, L_WARN, fix, "%s: %s: msce-agent.service can write %s only", what, dir, unit_dir);
        }
        if (stat(dir, &st) < 0) {
                if (errno == ENOENT)
                        report(c, L_OK, NULL, "%s: %s does not exist yet (the agent creates it)", what, dir);
                else
                        report(c, L_FAIL, NULL, "%s: %s: %m", what, dir);
                return;
        }
        if (!S_ISDIR(st.st_mode)) {
                snprintf(fix, sizeof fix, "remove %s; the agent creates the directory", dir);
                report(c, L_FAIL, fix, "%s: %s is not a directory", what, dir);
                return;
        }
        if (!agent_can(c, &st, R_OK | W_OK | X_OK)) {
                snprintf(fix, sizeof fix, "chown %s: %s (restarting msce-agent.service does it for %s)", c->user, dir,
                         unit_dir);
                report(c, L_FAIL, fix, "%s: %s is not writable by the agent's user %s (owner %s, mode %04o)", what, dir,
                       c->user, user_name(st.st_uid, u), (unsigned) (st.st_mode & 07777));
                return;
        }
        if ((st.st_mode & 07777) != mode) {
                snprintf(fix, sizeof fix, "chmod %04o %s", (unsigned) mode, dir);
                report(c, L_WARN, fix, "%s: %s has mode %04o, expected %04o", what, dir, (unsigned) (st.st_mode & 07777),
                       (unsigned) mode);
                return;
        }
        report(c, L_OK, NULL, "%s: %s (owner %s, mode %04o)", what, dir, user_name(st.st_uid, u),
               (unsigned) (st.st_mode & 07777));
}

/* In a child: become uid/gid with a fresh session keyring (so nothing of ours is possessed)
 * and read msce:ltk the way docs/cse-integration.md tells a CSE to. Returns the key's length
 * or a negative errno. The bytes are wiped and never leave the child. */
static long key_read_as(uid_t uid, gid_t gid) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) < 0)
                return negative_errno();
        pid_t pid = fork();
        if (pid < 0) {
                long r = negative_errno();
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (pid == 0) {
                long r;
                uint8_t buf[KEYRING_LTK_MAX + 1];
                close(fds[0]);
                if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0 ||
                    keyctl_join_session_keyring(NULL) < 0 ||
                    keyctl_get_persistent((uid_t) -1, KEY_SPEC_SESSION_KEYRING) < 0)
                        r = negative_errno();
                else {
                        long ring = keyctl_search(KEY_SPEC_SESSION_KEYRING, "keyring", KEYRING_NAME, 0);
                        long key = ring < 0 ? -1 : keyctl_search((key_serial_t) ring, "user", KEYRING_PREFIX KEYRING_LTK, 0);
                        r = key < 0 ? negative_errno() : keyctl_read((key_serial_t) key, (char *) buf, sizeof buf);
                        if (r < 0)
                                r = negative_errno();
                        erase(buf, sizeof buf);
                }
                _exit(write(fds[1], &r, sizeof r) == sizeof r ? 0 : 1);
        }
        close(fds[1]);
        long r = -EIO;
        ssize_t n;
        do
                n = read(fds[0], &r, sizeof r);
        while (n < 0 && errno == EINTR);
        close(fds[0]);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        return n == sizeof r ? r : -EIO;
}

static void check_service_user(checker_t *c, const agent_config_t *cfg) {
        char fix[512];
        uid_t uid;
        gid_t gid;
        int r = user_resolve(cfg->service_user, &uid, &gid);
        if (r < 0) {
                snprintf(fix, sizeof fix, "create the CSE's user %s, or set [consumer] user", cfg->service_user);
                report(c, L_FAIL, fix, "[consumer] user: %s: %s", cfg->service_user,
                       r == -ESRCH ? "no such user" : strerror(-r));
                return;
        }
        if (uid == 0) {
                report(c, L_FAIL, "run the CSE as its own user and name it in [consumer] user",
                       "[consumer] user: %s is root: the keys must go to the CSE's own user", cfg->service_user);
                return;
        }
        report(c, L_OK, NULL, "[consumer] user: %s (uid %u)", cfg->service_user, (unsigned) uid);

        if (geteuid() != 0) {
                report(c, L_WARN, "run mscectl check as root", "keys: not checked (needs root)");
                return;
        }
        _cleanup_keyring_names_ char **names = NULL;
        r = keyring_list(uid, &names);
        if (r == -ENOKEY) {
                report(c, L_WARN, "start msce-agent: it files the keys once enrolled",
                       "keys: none filed for %s yet", cfg->service_user);
                return;
        }
        if (r < 0) {
                report(c, L_FAIL, NULL, "keys: cannot list the keys of %s: %s", cfg->service_user, keyring_strerror(r));
                return;
        }
        size_t n = 0;
        while (names[n])
                n++;
        long len = key_read_as(uid, gid);
        if (len < 0) {
                report(c, L_FAIL, "restart msce-agent.service: it files the keys again",
                       "keys: %zu filed, but %s cannot read " KEYRING_PREFIX KEYRING_LTK ": %s", n, cfg->service_user,
                       strerror((int) -len));
                return;
        }
        report(c, L_OK, NULL, "keys: %zu filed; %s reads " KEYRING_PREFIX KEYRING_LTK " (%ld bytes)", n,
               cfg->service_user, len);
}

static void check_device(checker_t *c, const char *what, const char *path, const char *fix) {
        char u[32], g[32];
        struct stat st;
        if (stat(path, &st) < 0) {
                report(c, L_FAIL, NULL, "%s: %s: %m", what, path);
                return;
        }
        if (!agent_can(c, &st, R_OK | W_OK)) {
                report(c, L_FAIL, fix, "%s: %s is not accessible to the agent's user %s (owner %s, group %s, mode %04o)",
                       what, path, c->user, user_name(st.st_uid, u), group_name(st.st_gid, g),
                       (unsigned) (st.st_mode & 07777));
                return;
        }
        report(c, L_OK, NULL, "%s: %s (group %s, mode %04o)", what, path, group_name(st.st_gid, g),
               (unsigned) (st.st_mode & 07777));
}

static void check_tpm(checker_t *c, const agent_config_t *cfg) {
        if (cfg->seal_backend == SEAL_HOST) {
                report(c, L_OK, NULL, "[seal] backend: host (no TPM used)");
                return;
        }
        bool required = cfg->seal_backend == SEAL_TPM2;
        int r = tpm2_probe(cfg->tcti);
        if (r == -EOPNOTSUPP) {
                report(c, required ? L_FAIL : L_OK, "set [seal] backend = host or auto",
                       "[seal] backend: %s, but this build has no TPM support%s", seal_backend_to_string(cfg->seal_backend),
                       required ? "" : ": the host key is used");
                return;
        }
        if (r < 0) {
                if (required)
                        report(c, L_FAIL, "check that the TPM is enabled and [seal] tcti names it",
                               "TPM: none answers on %s: %s", cfg->tcti, strerror(-r));
                else
                        report(c, L_WARN, "nothing to do when this gateway has no TPM",
                               "TPM: none answers on %s: the profile is sealed with the host key", cfg->tcti);
                return;
        }
        report(c, L_OK, NULL, "TPM: answers on %s", cfg->tcti);
        if (strncmp(cfg->tcti, "device:", 7) == 0 && cfg->tcti[7] == '/')
                check_device(c, "TPM", cfg->tcti + 7,
                             "make the agent's user a member of the TPM device's group (tss): systemd-sysusers");
}

static void check_sealed(checker_t *c, const agent_config_t *cfg) {
        seal_opts_t so = credential_seal_opts(cfg);
        _cleanup_(stored_profile_wipe) stored_profile_t p = {};
        seal_method_t m;
        int r = seal_load(&so, &p, &m);
        if (r == -ENOENT) {
                report(c, L_WARN, "start msce-agent: it enrols with the MEF", "sealed profile: none in %s (not enrolled yet)",
                       cfg->state_dir);
                return;
        }
        if (r == -EACCES && geteuid() != 0) {
                report(c, L_WARN, "run mscectl check as root", "sealed profile: not checked (needs root)");
                return;
        }
        if (r < 0) {
                report(c, L_WARN, "nothing: the agent enrols again (mscectl factory-reset removes it now)",
                       "sealed profile: %s/%s does not open: %s", cfg->state_dir, SEAL_ENVELOPE_NAME, strerror(-r));
                return;
        }
        char when[32], rel[48];
        time_format_utc(p.exp_t, when);
        ctl_time_relative(p.exp_t, time(NULL), rel);
        if (profile_is_expired(&p, time(NULL)))
                report(c, L_FAIL, "start msce-agent (systemctl restart msce-agent): it enrols again",
                       "sealed profile: KeID %s expired %s (%s)", p.ke_id, when, rel);
        else if (!streq(p.node_id, cfg->node_id) || !streq(p.mef_uri, cfg->mef_uri))
                report(c, L_WARN, "nothing: the agent enrols again with this configuration",
                       "sealed profile: for node %s at %s, not this configuration's", p.node_id, p.mef_uri);
        else
                report(c, L_OK, NULL, "sealed profile: KeID %s, expires %s (%s), %s backend", p.ke_id, when, rel,
                       seal_method_to_string(m) ?: "?");
}

static void check_led(checker_t *c, const char *key, const char *spec) {
        char what[32];
        snprintf(what, sizeof what, "[leds] %s", key);
        led_spec_t ls;
        const char *why = NULL;
        int r = leds_parse_spec(spec, &ls, &why);
        if (r == 0)
                return; /* no LED */
        if (r < 0) {
                report(c, L_FAIL, "write gpiochipN:OFFSET[:active-low] or name:LINE[:active-low]", "%s: %s: %s", what,
                       spec, why ?: "invalid");
                return;
        }
#if !HAVE_GPIOD
        report(c, L_FAIL, "remove the [leds] settings, or use a build with libgpiod",
               "%s: %s, but this build has no LED support", what, spec);
        return;
#else
        const char *devfix = "make the agent's user a member of group gpio (systemd-sysusers, udev/60-msce.rules)";
        char path[64];
        if (ls.chip[0]) {
                snprintf(path, sizeof path, "/dev/%s", ls.chip);
                check_device(c, what, path, devfix);
                return;
        }
        char chip[32];
        r = gpio_line_chip(ls.name, chip, sizeof chip);
        if (r == -EOPNOTSUPP) {
                report(c, L_WARN, "gpioinfo lists the line names", "%s: line name %s not checked with this libgpiod",
                       what, ls.name);
                return;
        }
        if (r < 0) {
                report(c, L_FAIL, "gpioinfo lists the line names", "%s: no GPIO line is named %s%s%s", what, ls.name,
                       r != -ENOENT ? ": " : "", r != -ENOENT ? strerror(-r) : "");
                return;
        }
        snprintf(path, sizeof path, "/dev/%s", chip);
        check_device(c, what, path, devfix);
#endif
}

static bool ip_literal(const char *host) {
        uint8_t a[16];
        return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static int check_dns(checker_t *c, const agent_config_t *cfg) {
        if (ip_literal(cfg->mef_host)) {
                report(c, L_OK, NULL, "MEF address: %s", cfg->mef_host);
                return 0;
        }
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG };
        struct addrinfo *ai = NULL;
        int r = getaddrinfo(cfg->mef_host, cfg->mef_port, &hints, &ai);
        if (r != 0) {
                report(c, L_FAIL, "check the name in [mef] uri and the resolver (/etc/resolv.conf)",
                       "MEF name: %s does not resolve: %s", cfg->mef_host, r == EAI_SYSTEM ? strerror(errno) : gai_strerror(r));
                return -ENOENT;
        }
        char addr[INET6_ADDRSTRLEN] = "?";
        size_t n = 0;
        for (struct addrinfo *p = ai; p; p = p->ai_next, n++)
                if (n == 0)
                        (void) getnameinfo(p->ai_addr, p->ai_addrlen, addr, sizeof addr, NULL, 0, NI_NUMERICHOST);
        freeaddrinfo(ai);
        report(c, L_OK, NULL, "MEF name: %s resolves to %s%s", cfg->mef_host, addr, n > 1 ? " (and more)" : "");
        return 0;
}

static void check_mef(checker_t *c, const agent_config_t *cfg) {
        if (check_dns(c, cfg) < 0)
                return;
        _cleanup_close_ int fd = -1;
        int r = tcp_connect_until(cfg->mef_host, cfg->mef_port, now_usec() + cfg->connect_timeout_usec, &fd);
        if (r < 0) {
                report(c, L_FAIL, "is the MEF running and reachable? check [mef] uri, routes and firewalls",
                       "MEF connection: %s port %s: %s", cfg->mef_host, cfg->mef_port, strerror(-r));
                return;
        }
        report(c, L_OK, NULL, "MEF connection: %s port %s", cfg->mef_host, cfg->mef_port);

        _cleanup_(tls_ctx_freep) tls_ctx_t *ctx = NULL;
        exchange_info_t info;
        r = credential_tls_ctx(cfg, &ctx, &info);
        if (r < 0) {
                report(c, L_FAIL, "check the [mef] credential files", "MEF TLS: cannot set up TLS: %s", info.failure.reason);
                return;
        }
        _cleanup_(tls_conn_freep) tls_conn_t *conn = NULL;
        r = tls_conn_new_client(ctx, fd, cfg->mef_host, &conn);
        if (r == 0)
                r = tls_conn_handshake_until(conn, now_usec() + cfg->exchange_timeout_usec);
        if (r == -EACCES) {
                report(c, L_FAIL,
                       cfg->mode == TLS_MODE_PSK ? "psk_identity and psk_file must be the KpmID and Kpm of this node at the MEF"
                                                 : "the MEF must know the device certificate, and trust_anchors sign the MEF's",
                       "MEF TLS: authentication failed (%s mode)", cfg->mode == TLS_MODE_PSK ? "psk" : "cert");
                return;
        }
        if (r == -EPROTONOSUPPORT || r == -ENOKEY) {
                /* Not the credential: nothing in common (docs/protocol.md "Handshake failures"). */
                report(c, L_FAIL,
                       r == -ENOKEY ? "the MEF must offer one of these, and know psk_identity (its alert does not say which is missing)"
                                    : "the MEF must offer one of these; check tls_min_version and tls_max_version",
                       "MEF TLS: incompatible: the MEF accepted none of %s%s", tls_ctx_offer(ctx),
                       r == -ENOKEY ? ", or does not know the PSK identity" : "");
                return;
        }
        if (r == -EREMOTEIO) {
                report(c, L_FAIL, "check the MEF's log; a GnuTLS-based MEF says this when it does not know psk_identity",
                       "MEF TLS: the MEF aborted the handshake with internal_error");
                return;
        }
        if (r == -EPROTOTYPE) {
                report(c, L_FAIL, "the MEF must prefer TLS 1.3 PSK with (EC)DHE (psk_dhe_ke) over psk_ke",
                       "MEF TLS: incompatible: the MEF chose TLS 1.3 PSK without (EC)DHE");
                return;
        }
        if (r < 0) {
                report(c, L_FAIL, "is this an msce MEF? check tls_min_version and tls_max_version",
                       "MEF TLS: handshake failed: %s", strerror(-r));
                return;
        }
        report(c, L_OK, NULL, "MEF TLS: %s %s (%s mode)", tls_conn_version(conn), tls_conn_cipher(conn),
               cfg->mode == TLS_MODE_PSK ? "psk" : "cert");
        tls_conn_shutdown(conn);
}

static bool strcaseeq(const char *a, const char *b) {
        return strcasecmp(a, b) == 0;
}

static void check_agent(checker_t *c, const char *runtime_dir) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = ctl_runtime_read(runtime_dir, CTL_STATE_FILE, &text, &len);
        if (r == -ENOENT) {
                report(c, L_WARN, "systemctl start msce-agent", "agent: no %s/%s (not started since boot)", runtime_dir,
                       CTL_STATE_FILE);
                return;
        }
        if (r < 0) {
                report(c, L_WARN, NULL, "agent: %s/%s: %s", runtime_dir, CTL_STATE_FILE, strerror(-r));
                return;
        }
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        char err[256];
        r = ctl_state_parse(text, len, &s, err, sizeof err);
        if (r < 0) {
                report(c, L_WARN, NULL, "agent: %s/%s: %s", runtime_dir, CTL_STATE_FILE, err);
                return;
        }
        if (strcaseeq(s.state, "configuration-error")) {
                report(c, L_FAIL, "correct the configuration (msce-agent --check-config), then systemctl restart msce-agent",
                       "agent: stopped on a configuration error: %s", s.last_error ?: "no reason given");
                return;
        }
        if (s.pid <= 0 || ctl_proc_comm_is("/proc", s.pid, CTL_AGENT_COMM) != 1) {
                report(c, L_WARN, "systemctl start msce-agent", "agent: not running (last state %s)", s.state);
                return;
        }
        if (strcaseeq(s.state, "ready"))
                report(c, L_OK, NULL, "agent: running (pid %d), ready", (int) s.pid);
        else if (strcaseeq(s.state, "rejected") || strcaseeq(s.state, "incompatible") || strcaseeq(s.state, "revoked") ||
                 strcaseeq(s.state, "failed"))
                report(c, L_FAIL, "see mscectl status and journalctl -u msce-agent", "agent: running (pid %d), %s: %s",
                       (int) s.pid, s.state, s.last_error ?: "no reason given");
        else
                report(c, L_WARN, "see mscectl status and journalctl -u msce-agent", "agent: running (pid %d), %s%s%s",
                       (int) s.pid, s.state, s.last_error ? ": " : "", s.last_error ?: "");
}

static void agent_identity(checker_t *c, const char *user) {
        c->user = user;
        c->uid = 0;
        c->groups[0] = 0;
        c->n_groups = 1;
        struct passwd *pw = getpwnam(user);
        if (!pw) {
                report(c, L_FAIL, "systemd-sysusers (creates it from sysusers.d/msce-agent.conf)",
                       "agent user: %s does not exist", user);
                return;
        }
        c->uid = pw->pw_uid;
        int n = GROUPS_MAX;
        if (getgrouplist(user, pw->pw_gid, c->groups, &n) < 0) {
                c->groups[0] = pw->pw_gid;
                n = 1;
        }
        c->n_groups = (size_t) n;
        report(c, L_OK, NULL, "agent user: %s (uid %u, %d group%s)", user, (unsigned) c->uid, n, n == 1 ? "" : "s");
}

/* profile.json, the CSE's view: an expired one means the CSE holds keys no longer valid. */
static void check_profile(checker_t *c, const char *runtime_dir) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = ctl_runtime_read(runtime_dir, CTL_PROFILE_FILE, &text, &len);
        if (r == -ENOENT) {
                report(c, L_WARN, "start msce-agent: it enrols with the MEF", "profile: no %s/%s (not enrolled)",
                       runtime_dir, CTL_PROFILE_FILE);
                return;
        }
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        char err[256] = "";
        if (r == 0)
                r = ctl_profile_parse(text, len, &p, err, sizeof err);
        if (r < 0) {
                report(c, L_FAIL, "restart msce-agent: it writes the file again", "profile: %s/%s: %s", runtime_dir,
                       CTL_PROFILE_FILE, err[0] ? err : strerror(-r));
                return;
        }
        time_t t, now = time(NULL);
        char when[32], rel[48];
        if (ctl_time_parse(p.exp, &t) < 0) {
                report(c, L_FAIL, "restart msce-agent: it writes the file again", "profile: KeID %s: expiry %s does not parse",
                       p.ke_id, p.exp);
                return;
        }
        time_format_utc(t, when);
        ctl_time_relative(t, now, rel);
        if (t <= now)
                report(c, L_FAIL, "see mscectl status; systemctl restart msce-agent enrols again",
                       "profile: KeID %s expired %s (%s): the CSE's keys are no longer valid", p.ke_id, when, rel);
        else
                report(c, L_OK, NULL, "profile: KeID %s, expires %s (%s)", p.ke_id, when, rel);
}

static void check_preflight(checker_t *c, agent_config_t *cfg) {
        custody_info_t ci;
        cfg->check_only = true; /* a Kpm only in the credential store is msce-agent.service's */
        if (custody_preflight_as(cfg, c->user, &ci) < 0)
                report(c, L_FAIL, "correct what the message names; msce-agent --check-config says the same",
                       "preflight: %s", ci.failure.reason);
        else
                report(c, L_OK, NULL, "preflight: what msce-agent checks before it enrols passes");
}

#define RUN(c, check_id, call)                       \
        do {                                         \
                if (check_wanted((c), (check_id))) { \
                        (c)->id = (check_id);        \
                        call;                        \
                }                                    \
        } while (0)

static unsigned check_result(checker_t *c) {
        unsigned bad = c->fails + (c->o->warnings_as_errors ? c->warns : 0);
        if (c->results) {
                json_auto_t *out = json_pack("{s:O, s:{s:i, s:i, s:i}, s:b}", "checks", c->results, "summary", "ok",
                                             (int) (json_array_size(c->results) - c->fails - c->warns), "warning",
                                             (int) c->warns, "failed", (int) c->fails, "passed", bad == 0);
                if (out)
                        (void) json_dumpf(out, c->f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
                fputc('\n', c->f);
                json_decref(c->results);
                c->results = NULL;
        }
        return bad;
}

unsigned ctl_check_run(const ctl_check_opts_t *o, FILE *f) {
        checker_t c = { .f = f, .o = o, .id = "config" };
        if (o->json && !(c.results = json_array()))
                return 1;
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        char err[1024] = "";
        int r = agent_config_load(o->config, &cfg, err, sizeof err);
        if (r < 0) {
                report(&c, L_FAIL,
                       r == -EACCES && geteuid() != 0 ? "run mscectl check as root"
                                                      : "correct what the message names (msce-agent.conf(5))",
                       "configuration: %s", err[0] ? err : strerror(-r));
                return check_result(&c);
        }
        report(&c, L_OK, NULL, "configuration: %s is valid", cfg.path);

        /* tss2 logs to stderr unless told otherwise; the findings say it better. */
        (void) setenv("TSS2_LOG", "all+none", 0);

        /* The agent's identity is needed by the permission checks: always looked up. */
        c.id = "agent-user";
        agent_identity(&c, o->agent_user ?: CTL_AGENT_USER);
        RUN(&c, "config-files", check_config_files(&c, &cfg));
        RUN(&c, "credentials", check_credentials(&c, &cfg));
        RUN(&c, "clock", check_clock(&c));
        RUN(&c, "state-dir", check_dir(&c, "[seal] state_dir", cfg.state_dir, "/var/lib/msce", 0700));
        RUN(&c, "runtime-dir", check_dir(&c, "[seal] runtime_dir", cfg.runtime_dir, "/run/msce", 0755));
        RUN(&c, "preflight", check_preflight(&c, &cfg));
        RUN(&c, "consumer", check_service_user(&c, &cfg));
        RUN(&c, "tpm", check_tpm(&c, &cfg));
        RUN(&c, "sealed-profile", check_sealed(&c, &cfg));
        RUN(&c, "leds", check_led(&c, "status", cfg.led_status); check_led(&c, "error", cfg.led_error));
        if (o->network)
                RUN(&c, "mef", check_mef(&c, &cfg));
        RUN(&c, "agent", check_agent(&c, o->runtime_dir ?: cfg.runtime_dir));
        RUN(&c, "profile", check_profile(&c, o->runtime_dir ?: cfg.runtime_dir));
        return check_result(&c);
}

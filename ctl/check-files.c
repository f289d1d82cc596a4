/* SPDX-License-Identifier: MIT */
/* mscectl check: the files, directories and devices the agent uses, against the permissions of
 * its user. */
#include <dirent.h>
#include <grp.h>
#include <pwd.h>

#include "ctl/check-internal.h"

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

bool check_agent_can(const checker_t *c, const struct stat *st, int want) {
        return ctl_access_ok(st->st_uid, st->st_gid, st->st_mode, c->uid, c->groups, c->n_groups, want);
}

/* name, or id as a number when it has none */
static const char *name_or_id(const char *name, unsigned id, char buf[32]) {
        if (name)
                return name;
        snprintf(buf, 32, "%u", id);
        return buf;
}

const char *check_user_name(uid_t uid, char buf[32]) {
        struct passwd *pw = getpwuid(uid);
        return name_or_id(pw ? pw->pw_name : NULL, (unsigned) uid, buf);
}

const char *check_group_name(gid_t gid, char buf[32]) {
        struct group *gr = getgrgid(gid);
        return name_or_id(gr ? gr->gr_name : NULL, (unsigned) gid, buf);
}

static bool path_under(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

/* The directory nearest above path that the agent's user may not enter (X_OK), into dir and
 * *ret: true when there is one. Without it the file is out of the agent's reach, whatever
 * its own mode. */
static bool parent_closed(const checker_t *c, const char *path, char dir[PATH_MAX], struct stat *ret) {
        if (snprintf(dir, PATH_MAX, "%s", path) >= PATH_MAX)
                return false;
        for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
                bool root = slash == dir;
                slash[root] = 0; /* "/a/b" -> "/a"; "/a" -> "/" */
                if (stat(dir, ret) == 0 && S_ISDIR(ret->st_mode) && !check_agent_can(c, ret, X_OK))
                        return true;
                if (root)
                        break;
        }
        return false;
}

/* "<what>: <path> is out of reach of the agent's user: it may not enter <dir> (...)", with the
 * fix; false when every directory above path lets it through. */
static bool report_closed_parent(checker_t *c, const char *what, const char *path) {
        char dir[PATH_MAX], fix[PATH_MAX + 32], u[32], g[32];
        struct stat st;
        if (!parent_closed(c, path, dir, &st))
                return false;
        snprintf(fix, sizeof fix, "chmod a+x %s", dir);
        check_report(c, L_FAIL, fix,
                     "%s: %s is out of reach of the agent's user %s: it may not enter %s (owner %s, group %s, mode %04o)",
                     what, path, c->user, dir, check_user_name(st.st_uid, u), check_group_name(st.st_gid, g),
                     (unsigned) (st.st_mode & 07777));
        return true;
}

/* A file the agent reads: secret ones must be owner-only. */
static void check_file(checker_t *c, const char *what, const char *path, bool secret) {
        char fix[512], u[32], g[32];
        struct stat st;
        if (stat(path, &st) < 0) {
                snprintf(fix, sizeof fix, "create %s or correct %s in the configuration", path, what);
                check_report(c, L_FAIL, fix, "%s: %s: %m", what, path);
                return;
        }
        if (!S_ISREG(st.st_mode)) {
                check_report(c, L_FAIL, "name a regular file", "%s: %s is not a regular file", what, path);
                return;
        }
        if (secret && (st.st_mode & 077)) {
                snprintf(fix, sizeof fix, "chmod 0600 %s", path);
                check_report(c, L_FAIL, fix, "%s: %s is readable by group or others (mode %04o)", what, path,
                             (unsigned) (st.st_mode & 07777));
                return;
        }
        if (!check_agent_can(c, &st, R_OK)) {
                if (secret)
                        snprintf(fix, sizeof fix, "chown %s: %s", c->user, path);
                else
                        snprintf(fix, sizeof fix, "chmod a+r %s", path);
                check_report(c, L_FAIL, fix,
                             "%s: %s is not readable by the agent's user %s (owner %s, group %s, mode %04o)", what,
                             path, c->user, check_user_name(st.st_uid, u), check_group_name(st.st_gid, g),
                             (unsigned) (st.st_mode & 07777));
                return;
        }
        if (report_closed_parent(c, what, path))
                return;
        /* What msce-agent.service hides from the agent. */
        static const char *const hidden[][2] = {
                { "/home", "ProtectHome=yes" }, { "/root", "ProtectHome=yes" }, { "/run/user", "ProtectHome=yes" },
                { "/tmp", "PrivateTmp=yes" },   { "/var/tmp", "PrivateTmp=yes" },
        };
        for (size_t i = 0; i < ELEMENTSOF(hidden); i++)
                if (path_under(path, hidden[i][0])) {
                        check_report(c, L_WARN, "keep the agent's files in /etc/msce",
                                     "%s: %s is hidden from msce-agent.service (%s)", what, path, hidden[i][1]);
                        return;
                }
        check_report(c, L_OK, NULL, "%s: %s (owner %s, mode %04o)", what, path, check_user_name(st.st_uid, u),
                     (unsigned) (st.st_mode & 07777));
}

static int dropin_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".conf");
}

/* The agent reads them as its user too: the drop-in directory as well, which it must list
 * (msce-agent refuses to start when it cannot). */
void check_config_files(checker_t *c, const agent_config_t *cfg) {
        check_file(c, "configuration", cfg->path, false);
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s.d", cfg->path) < 0)
                return;
        struct stat st;
        if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) && !check_agent_can(c, &st, R_OK | X_OK)) {
                char fix[PATH_MAX + 16], u[32];
                snprintf(fix, sizeof fix, "chmod 0755 %s", dir);
                check_report(c, L_FAIL, fix,
                             "configuration: the drop-in directory %s is not readable by the agent's user %s (owner %s, "
                             "mode %04o): msce-agent refuses to start",
                             dir, c->user, check_user_name(st.st_uid, u), (unsigned) (st.st_mode & 07777));
        }
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

void check_credentials(checker_t *c, const agent_config_t *cfg) {
        if (cfg->mode == TLS_MODE_PSK) {
                if (cfg->kpm_path && cfg->psk_file && streq(cfg->kpm_path, cfg->psk_file))
                        check_file(c, "[mef] psk_file", cfg->psk_file, true);
                else if (cfg->kpm_path)
                        check_report(c, L_OK, NULL, "[mef] psk_credential: the Kpm from the systemd credential %s",
                                     cfg->kpm_path);
                else
                        check_report(c, L_OK, NULL, "[mef] psk_credential: %s, passed to msce-agent.service by systemd",
                                     cfg->kpm_credstore);
                return;
        }
        check_file(c, "[mef] key", cfg->key_file, true);
        check_file(c, "[mef] certificate", cfg->cert_file, false);
        check_file(c, "[mef] trust_anchors", cfg->ca_file, false);
}

/* dir is missing and not systemd's to create (StateDirectory=, RuntimeDirectory=): the agent
 * creates it, as its user, in the nearest directory above it that exists (agent/custody.c's
 * preflight). false, with a FAIL in the agent's words, when it cannot. */
static bool missing_dir_creatable(checker_t *c, const char *what, const char *dir, mode_t mode) {
        char near[PATH_MAX], fix[PATH_MAX + 64], u[32];
        struct stat st;
        bool found = false;
        if (snprintf(near, sizeof near, "%s", dir) >= (int) sizeof near)
                return true; /* the agent's own check says it */
        for (char *slash = strrchr(near, '/'); slash && !found; slash = strrchr(near, '/')) {
                bool root = slash == near;
                slash[root] = 0; /* "/a/b" -> "/a"; "/a" -> "/" */
                found = stat(near, &st) == 0;
                if (!found && (errno != ENOENT || root))
                        return true; /* not this finding's: the preflight finding says it */
        }
        if (!found)
                return true;
        if (report_closed_parent(c, what, near))
                return false;
        if (!S_ISDIR(st.st_mode)) {
                check_report(c, L_FAIL, NULL, "%s: cannot create %s: %s is not a directory", what, dir, near);
                return false;
        }
        if (!check_agent_can(c, &st, W_OK | X_OK)) {
                snprintf(fix, sizeof fix, "install -d -o %s -m %04o %s", c->user, (unsigned) mode, dir);
                check_report(c, L_FAIL, fix, "%s: cannot create %s: %s is not writable by the agent's user %s (owner %s, mode %04o)",
                             what, dir, near, c->user, check_user_name(st.st_uid, u), (unsigned) (st.st_mode & 07777));
                return false;
        }
        return true;
}

void check_dir(checker_t *c, const char *what, const char *dir, const char *unit_dir, mode_t mode) {
        char fix[512], u[32];
        struct stat st;
        if (!streq(dir, unit_dir)) {
                snprintf(fix, sizeof fix, "add ReadWritePaths=%s in a drop-in for msce-agent.service", dir);
                check_report(c, L_WARN, fix, "%s: %s: msce-agent.service can write %s only", what, dir, unit_dir);
        }
        if (stat(dir, &st) < 0) {
                if (errno != ENOENT)
                        check_report(c, L_FAIL, NULL, "%s: %s: %m", what, dir);
                else if (streq(dir, unit_dir) || missing_dir_creatable(c, what, dir, mode))
                        check_report(c, L_OK, NULL, "%s: %s does not exist yet (the agent creates it)", what, dir);
                return;
        }
        if (!S_ISDIR(st.st_mode)) {
                snprintf(fix, sizeof fix, "remove %s; the agent creates the directory", dir);
                check_report(c, L_FAIL, fix, "%s: %s is not a directory", what, dir);
                return;
        }
        if (!check_agent_can(c, &st, R_OK | W_OK | X_OK)) {
                snprintf(fix, sizeof fix, "chown %s: %s (restarting msce-agent.service does it for %s)", c->user, dir,
                         unit_dir);
                check_report(c, L_FAIL, fix, "%s: %s is not writable by the agent's user %s (owner %s, mode %04o)",
                             what, dir, c->user, check_user_name(st.st_uid, u), (unsigned) (st.st_mode & 07777));
                return;
        }
        if ((st.st_mode & 07777) != mode) {
                snprintf(fix, sizeof fix, "chmod %04o %s", (unsigned) mode, dir);
                check_report(c, L_WARN, fix, "%s: %s has mode %04o, expected %04o", what, dir,
                             (unsigned) (st.st_mode & 07777), (unsigned) mode);
                return;
        }
        check_report(c, L_OK, NULL, "%s: %s (owner %s, mode %04o)", what, dir, check_user_name(st.st_uid, u),
                     (unsigned) (st.st_mode & 07777));
}
void check_device(checker_t *c, const char *what, const char *path, const char *fix) {
        char u[32], g[32];
        struct stat st;
        if (stat(path, &st) < 0) {
                check_report(c, L_FAIL, NULL, "%s: %s: %m", what, path);
                return;
        }
        if (!check_agent_can(c, &st, R_OK | W_OK)) {
                check_report(c, L_FAIL, fix,
                             "%s: %s is not accessible to the agent's user %s (owner %s, group %s, mode %04o)", what,
                             path, c->user, check_user_name(st.st_uid, u), check_group_name(st.st_gid, g),
                             (unsigned) (st.st_mode & 07777));
                return;
        }
        check_report(c, L_OK, NULL, "%s: %s (group %s, mode %04o)", what, path, check_group_name(st.st_gid, g),
                     (unsigned) (st.st_mode & 07777));
}

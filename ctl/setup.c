/* SPDX-License-Identifier: MIT */
/* mscectl setup and logs (ctl/setup.h). */
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "agent/config.h"
#include "agent/custody.h"
#include "ctl/check.h"
#include "ctl/setup.h"
#include "proto/msg.h"
#include "util/ini.h"
#include "util/util.h"

/* The longest Kpm file: hex, CR LF - as long as msce-agent reads one (secret_hex_file_read(),
 * its --check-config's PSK_FILE_MAX), so that a file one takes the other takes too. */
#define KPM_HEX_MAX (2 * MSG_KEY_MAX + 2)

static int _printf_(4, 5) fail(char *err, size_t size, int r, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
        return r;
}

/* What of this setup the loaded configuration does not use, into why: a later drop-in (or a
 * systemd credential for the Kpm) that sets the same keys. false when it uses all of it. */
static bool setup_overridden(const ctl_setup_opts_t *o, const agent_config_t *cfg, const char *kpm, char *why,
                             size_t size) {
        const char *key = NULL, *have = NULL;
        /* the configuration holds the URI canonical (https_uri_parse): compare that form */
        _cleanup_(https_uri_done) https_uri_t uri = {};
        bool same_uri = https_uri_parse(o->mef_uri, &uri, NULL) == 0 && streq(uri.canonical, cfg->mef_uri);
        if (!streq(cfg->node_id, o->node_id))
                key = "[node] id", have = cfg->node_id;
        else if (!same_uri)
                key = "[mef] uri", have = cfg->mef_uri;
        else if (cfg->mode != TLS_MODE_PSK)
                key = "[mef] mode", have = "cert";
        else if (!streq(cfg->psk_identity, o->psk_identity))
                key = "[mef] psk_identity", have = cfg->psk_identity;
        else if (!cfg->kpm_path || cfg->kpm_is_credential || !streq(cfg->kpm_path, kpm))
                key = "the Kpm", have = cfg->kpm_path ?: cfg->kpm_credstore ?: "a systemd credential";
        else if (o->cse_user && (!cfg->service_user || !streq(cfg->service_user, o->cse_user)))
                key = "[consumer] user", have = cfg->service_user ?: "unset";
        if (!key)
                return false;
        snprintf(why, size, "%s would be %s, not this setup's: a later drop-in or a credential sets it", key, have);
        return true;
}

/* The Kpm as hex from fd, checked (16..64 bytes) and normalised to lower-case hex + "\n". */
static int kpm_load(int fd, char out[KPM_HEX_MAX + 1], size_t *ret_len) {
        char buf[KPM_HEX_MAX + 1]; /* read_max() reads one byte past what it takes */
        size_t n = 0;
        int r = read_max(fd, buf, KPM_HEX_MAX, &n); /* -EFBIG: longer than the agent reads */
        if (r < 0) {
                erase(buf, sizeof buf);
                return r;
        }
        uint8_t key[MSG_KEY_MAX];
        size_t klen = 0;
        r = hex_key_parse(buf, n, MSG_KEY_MIN, MSG_KEY_MAX, key, &klen);
        erase(buf, sizeof buf);
        if (r == 0) {
                hex_encode(key, klen, out);
                out[2 * klen] = '\n';
                out[2 * klen + 1] = 0;
                *ret_len = 2 * klen + 1;
        }
        erase(key, sizeof key);
        return r;
}

/* A file's previous content, to put back when the setup is refused. */
typedef struct saved {
        char path[PATH_MAX];
        bool existed;
        char *data;
        size_t len;
        struct stat st;
} saved_t;

static int saved_take(saved_t *s, const char *path) {
        snprintf(s->path, sizeof s->path, "%s", path);
        if (lstat(path, &s->st) < 0) {
                if (errno == ENOENT)
                        return 0;
                return negative_errno();
        }
        if (!S_ISREG(s->st.st_mode))
                return -EBADFD;
        s->existed = true;
        return file_read_all(path, 64 * 1024, &s->data, &s->len);
}

static void saved_restore(saved_t *s) {
        if (!s->existed) {
                (void) unlink(s->path);
                return;
        }
        /* Best effort: the caller reports the error that led here. */
        if (file_write_atomic(s->path, s->data, s->len, s->st.st_mode & 07777) == 0 &&
            chown(s->path, s->st.st_uid, s->st.st_gid) < 0)
                return;
}

static void saved_done(saved_t *s) {
        if (s->data) {
                erase_free(s->data, s->len);
        }
        s->data = NULL;
}

int ctl_setup_run(const ctl_setup_opts_t *o, char *err, size_t err_size, char *ret_dropin, char *ret_kpm,
                  bool *ret_refused) {
        bool ignored, *refused = ret_refused ?: &ignored;
        *refused = false;
        const char *config = o->config ?: AGENT_CONFIG_DEFAULT;
        const struct {
                const char *option, *key, *value;
        } values[] = {
                { "--node-id", "id", o->node_id },
                { "--mef-uri", "uri", o->mef_uri },
                { "--psk-identity", "psk_identity", o->psk_identity },
                { "--user", "user", o->cse_user },
        };
        for (size_t i = 0; i < ELEMENTSOF(values); i++)
                if ((values[i].value || i < 3) && !ini_value_ok(values[i].key, values[i].value)) {
                        *refused = true;
                        if (!values[i].value)
                                return fail(err, err_size, -EINVAL, "%s: required", values[i].option);
                        return fail(err, err_size, -EINVAL,
                                    "%s: not a value for the configuration (printable, no ; or #, at most %zu characters)",
                                    values[i].option, ini_value_max(values[i].key));
                }
        if (!o->kpm_file) {
                *refused = true;
                return fail(err, err_size, -EINVAL, "--kpm-file: required");
        }
        struct stat st;
        if (stat(config, &st) < 0)
                return fail(err, err_size, negative_errno(), "%s: %m (install msce-agent first)", config);

        const char *agent_user = o->agent_user ?: CTL_AGENT_USER;
        struct passwd *pw = getpwnam(agent_user);
        *refused = !pw;
        if (!pw)
                return fail(err, err_size, -ESRCH, "the agent's user %s does not exist (systemd-sysusers creates it)",
                            agent_user);
        uid_t agent_uid = pw->pw_uid;
        gid_t agent_gid = pw->pw_gid;

        /* The Kpm: any mode on the way in, checked as the agent checks it. */
        char hex[KPM_HEX_MAX + 1];
        size_t hex_len = 0;
        int fd = streq(o->kpm_file, "-") ? STDIN_FILENO : open(o->kpm_file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fail(err, err_size, negative_errno(), "--kpm-file: %s: %m", o->kpm_file);
        int r = kpm_load(fd, hex, &hex_len);
        if (fd != STDIN_FILENO)
                close(fd);
        if (r < 0) {
                erase(hex, sizeof hex);
                /* Content the agent's --check-config refuses too (exit 78): -EINVAL, which
                 * mscectl turns into its exit 11, also for a file too long or empty. */
                const char *bad = r == -EINVAL || r == -EFBIG ? "does not hold a 16..64 byte Kpm as hex"
                                  : r == -ENODATA         ? "is empty"
                                                          : NULL;
                *refused = bad;
                if (bad)
                        return fail(err, err_size, -EINVAL, "--kpm-file: %s: %s", o->kpm_file, bad);
                return fail(err, err_size, r, "--kpm-file: %s: %s", o->kpm_file, strerror(-r));
        }

        _cleanup_free_ char *copy = strdup(config);
        char dropin_dir[PATH_MAX], dropin[PATH_MAX], kpm[PATH_MAX];
        if (!copy) {
                erase(hex, sizeof hex);
                return fail(err, err_size, -ENOMEM, "out of memory");
        }
        if (snprintf(dropin_dir, sizeof dropin_dir, "%s.d", config) >= (int) sizeof dropin_dir ||
            path_join(dropin_dir, CTL_SETUP_DROPIN, dropin) < 0 || path_join(dirname(copy), CTL_SETUP_KPM, kpm) < 0) {
                erase(hex, sizeof hex);
                return fail(err, err_size, -ENAMETOOLONG, "%s: path too long", config);
        }
        /* The drop-in directory alone, never a parent: its parent holds the configuration
         * (stat() above), and one gone since is an error, not a directory made that a refusal
         * would leave behind. 0755 whatever root's umask: the agent lists it as its user, and
         * refuses to start when it cannot. Made here (1) or not: mkdir()'s own answer. */
        r = mkdir_exact(dropin_dir, 0755);
        if (r < 0) {
                erase(hex, sizeof hex);
                return fail(err, err_size, r, "cannot create %s: %s", dropin_dir, strerror(-r));
        }
        bool made_dir = r > 0;

        /* Declared before the first goto: the cleanups must not be jumped over. */
        _cleanup_free_ char *text = NULL;
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        char why[1024] = "";
        custody_info_t ci;
        saved_t old_dropin = {}, old_kpm = {};
        r = saved_take(&old_dropin, dropin);
        if (r == 0)
                r = saved_take(&old_kpm, kpm);
        if (r < 0) {
                erase(hex, sizeof hex);
                saved_done(&old_dropin);
                saved_done(&old_kpm);
                if (made_dir) /* "nothing was changed", as after undo: */
                        (void) rmdir(dropin_dir);
                return fail(err, err_size, r, "cannot read the previous %s or %s: %s", dropin, kpm, strerror(-r));
        }

        /* The Kpm: the agent's user alone reads it (0400). */
        r = file_write_atomic(kpm, hex, hex_len, 0400);
        erase(hex, sizeof hex);
        if (r == 0 && chown(kpm, agent_uid, agent_gid) < 0)
                r = negative_errno();
        if (r < 0) {
                fail(err, err_size, r, "cannot write %s: %s", kpm, strerror(-r));
                goto undo;
        }

        if (asprintf(&text,
                     "# Written by mscectl setup (quick setup); msce-agent.conf(5).\n"
                     "[node]\nid = %s\n"
                     "[mef]\nuri = %s\nmode = psk\npsk_identity = %s\npsk_file = %s\n"
                     "%s%s%s",
                     o->node_id, o->mef_uri, o->psk_identity, kpm, o->cse_user ? "[consumer]\nuser = " : "",
                     o->cse_user ?: "", o->cse_user ? "\n" : "") < 0) {
                text = NULL;
                r = fail(err, err_size, -ENOMEM, "out of memory");
                goto undo;
        }
        r = file_write_atomic(dropin, text, strlen(text), 0644);
        if (r == 0 && chown(dropin, 0, 0) < 0 && geteuid() == 0)
                r = negative_errno();
        if (r < 0) {
                fail(err, err_size, r, "cannot write %s: %s", dropin, strerror(-r));
                goto undo;
        }

        /* What the agent will see, checked as msce-agent --check-config checks it. */
        r = agent_config_load(config, 0, &cfg, why, sizeof why);
        *refused = r < 0;
        if (r < 0) {
                fail(err, err_size, r, "refused, as msce-agent --check-config would: %s", why[0] ? why : strerror(-r));
                goto undo;
        }
        *refused = setup_overridden(o, &cfg, kpm, why, sizeof why);
        if (*refused) {
                r = fail(err, err_size, -EINVAL, "refused: the agent would not use it: %s", why);
                goto undo;
        }
        cfg.check_only = true;
        r = custody_preflight(&cfg, agent_user, &ci);
        *refused = r < 0;
        if (r < 0) {
                fail(err, err_size, r, "refused, as msce-agent --check-config would: %s", ci.failure.reason);
                goto undo;
        }
        if (ret_dropin)
                snprintf(ret_dropin, PATH_MAX, "%s", dropin);
        if (ret_kpm)
                snprintf(ret_kpm, PATH_MAX, "%s", kpm);
        saved_done(&old_dropin);
        saved_done(&old_kpm);
        return 0;

undo:
        saved_restore(&old_dropin);
        saved_restore(&old_kpm);
        saved_done(&old_dropin);
        saved_done(&old_kpm);
        if (made_dir) /* "nothing was changed": not even the directory */
                (void) rmdir(dropin_dir);
        return r;
}

int ctl_logs_argv(const ctl_logs_opts_t *o, const char **argv, size_t max) {
        static char file_arg[PATH_MAX + 8];
        const char *a[16];
        size_t n = 0;
        a[n++] = "journalctl";
        a[n++] = "--unit=msce-agent.service";
        /* -x: the catalog's explanation (systemd/msce.catalog) under each entry with a MESSAGE_ID */
        a[n++] = "--catalog";
        a[n++] = "--no-pager";
        if (o->file) {
                snprintf(file_arg, sizeof file_arg, "--file=%s", o->file);
                a[n++] = file_arg;
        }
        if (o->follow)
                a[n++] = "--follow";
        if (o->lines) {
                a[n++] = "--lines";
                a[n++] = o->lines;
        }
        if (o->since) {
                a[n++] = "--since";
                a[n++] = o->since;
        }
        if (o->json) {
                a[n++] = "--output";
                a[n++] = "json";
        }
        if (n + 1 > max)
                return -E2BIG;
        for (size_t i = 0; i < n; i++)
                argv[i] = a[i];
        argv[n] = NULL;
        return 0;
}

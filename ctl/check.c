/* SPDX-License-Identifier: MIT */
/* mscectl check (ctl/check.h). The top layer: it prints. */
/* mscectl check: the list of checks, their findings, and the run (the checks themselves are in
 * ctl/check-<group>.c). */
#include <grp.h>
#include <pwd.h>

#include "ctl/check-internal.h"

/* Every check, in the order they run: "mscectl check-list", --dont-run ID. */
static const struct {
        const char *id;
        const char *description;
} check_table[] = {
        { "config", "the configuration loads (as msce-agent --check-config --syntax-only)" },
        { "agent-user", "the user msce-agent.service runs as exists, and its groups" },
        { "config-files", "the configuration files and their directories are readable by the agent's user" },
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

void _printf_(4, 5) check_report(checker_t *c, level_t l, const char *fix, const char *fmt, ...) {
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

static void agent_identity(checker_t *c, const char *user) {
        c->user = user;
        c->uid = 0;
        c->groups[0] = 0;
        c->n_groups = 1;
        struct passwd *pw = getpwnam(user);
        if (!pw) {
                check_report(c, L_FAIL, "systemd-sysusers (creates it from sysusers.d/msce-agent.conf)",
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
        check_report(c, L_OK, NULL, "agent user: %s (uid %u, %d group%s)", user, (unsigned) c->uid, n,
                     n == 1 ? "" : "s");
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
        int r = agent_config_load(o->config, 0, &cfg, err, sizeof err);
        if (r < 0) {
                check_report(&c, L_FAIL,
                             r == -EACCES && geteuid() != 0 ? "run mscectl check as root"
                                                            : "correct what the message names (msce-agent.conf(5))",
                             "configuration: %s", err[0] ? err : strerror(-r));
                return check_result(&c);
        }
        check_report(&c, L_OK, NULL, "configuration: %s is valid", cfg.path);

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

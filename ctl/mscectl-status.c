/* SPDX-License-Identifier: MIT */
/* mscectl status and mscectl profile: what the agent's runtime files say, for any user. */
#include <getopt.h>
#include <jansson.h>

#include "ctl/env.h"
#include "ctl/mscectl.h"
#include "util/util.h"

/* "        Label: value"; an empty label continues the field above. */
static void print_field(const char *label, const char *value) {
        if (value && value[0])
                printf("%13s%s %s\n", label, label[0] ? ":" : " ", value);
}

/* A time as "2025-11-27 21:30:00 UTC (3h ago)", or as written when it does not parse. */
static void print_time(const char *label, const char *prefix, const char *raw) {
        if (!raw)
                return;
        time_t t;
        char buf[160], when[32], rel[48];
        if (ctl_time_parse(raw, &t) == 0) {
                time_format_utc(t, when);
                ctl_time_relative(t, time(NULL), rel);
                snprintf(buf, sizeof buf, "%s%s (%s)", prefix, when, rel);
        } else
                snprintf(buf, sizeof buf, "%s%s", prefix, raw);
        print_field(label, buf);
}

static int status_json(const char *dir, const ctl_state_t *s, bool running, const char *label, int code,
                       const char *config_error) {
        json_auto_t *out = json_object();
        if (!out)
                return -ENOMEM;
        const char *files[] = { CTL_STATE_FILE, CTL_PROFILE_FILE };
        const char *keys[] = { "state", "profile" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *text = NULL;
                size_t len;
                json_t *v = NULL;
                /* Both were parsed (validated) already; a file replaced meanwhile shows as null. */
                if (ctl_runtime_read(dir, files[i], &text, &len) == 0)
                        v = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
                if (json_object_set_new(out, keys[i], v ?: json_null()) < 0)
                        return -ENOMEM;
        }
        if (json_object_set_new(out, "running", json_boolean(s && running)) < 0 ||
            json_object_set_new(out, "health", json_string(label)) < 0 ||
            json_object_set_new(out, "exit", json_integer(code)) < 0 ||
            json_object_set_new(out, "config_error", config_error[0] ? json_string(config_error) : json_null()) < 0)
                return -ENOMEM;
        if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                return -EIO;
        putchar('\n');
        return 0;
}

/* Has the profile expired? From state.json's exp, else profile.json's; false when neither says. */
static bool profile_expired(const ctl_state_t *s, const ctl_profile_t *p, time_t now) {
        const char *exp = s && s->exp ? s->exp : p ? p->exp : NULL;
        time_t t;
        return exp && ctl_time_parse(exp, &t) == 0 && t <= now;
}

/* The command's one option, --name, into *ret_set: 0, or EXIT_USAGE (printed). */
static int flag_parse(const char *cmd, const char *name, int argc, char **argv, bool *ret_set) {
        const struct option opts[] = { { name, no_argument, NULL, 'f' }, {} };
        int o;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0) {
                if (o != 'f')
                        return option_error(cmd, o, argv);
                *ret_set = true;
        }
        if (optind < argc)
                return usage_error("%s: unexpected argument '%s'", cmd, argv[optind]);
        return 0;
}

int cmd_status(const globals_t *g, int argc, char **argv) {
        bool json = false;
        if (flag_parse("status", "json", argc, argv, &json) != 0)
                return EXIT_USAGE;

        /* Most configuration errors are found as the agent loads its files, before it writes
         * state.json: what it finds at its next start is said here. */
        _cleanup_free_ char *dir = NULL;
        char config_error[1024];
        int refused = config_refused(g, &dir, config_error, sizeof config_error);
        if (refused < 0)
                return EXIT_FAILURE;
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        int have_state = state_load(dir, &s);
        int have_profile = profile_load(dir, NULL, &p);
        if (have_state < 0 || have_profile < 0)
                return EXIT_FAILURE;
        ctl_agent_alive_t alive = have_state ? ctl_agent_alive(s.pid) : CTL_AGENT_GONE;
        bool running = alive != CTL_AGENT_GONE;
        bool expired = profile_expired(have_state ? &s : NULL, have_profile ? &p : NULL, time(NULL));
        ctl_health_t h = ctl_health_of(have_state ? s.state : NULL, running, expired);
        if (refused && !running)
                h = CTL_HEALTH_CONFIG;
        char buf[32];
        const char *label = ctl_health_label(h, have_state ? s.state : NULL, buf);
        int ret = ctl_health_exit(h);

        if (json)
                return status_json(dir, have_state ? &s : NULL, running, label, ret, config_error) < 0 ? EXIT_FAILURE
                                                                                                       : ret;

        if (!have_state)
                printf("msce-agent: %s (no %s/%s%s)\n", label, dir, CTL_STATE_FILE,
                       h == CTL_HEALTH_CONFIG ? "" : ": not started since boot");
        else if (!running)
                printf("msce-agent: %s (last state %s)\n", label, s.state);
        else
                printf("msce-agent: %s\n", label);
        if (refused) {
                print_field("Config error", config_error);
                print_field("", running ? "the files as they are now: a reload or a restart refuses them"
                                        : "msce-agent does not start with them");
        }
        if (have_state) {
                print_field("Status", s.status);
                print_time("State", running ? "since " : "reported since ", s.since);
                if (s.pid > 0) {
                        char pid[64];
                        snprintf(pid, sizeof pid, "%d (%s)", (int) s.pid,
                                 alive == CTL_AGENT_HIDDEN ? "running; its name hidden by /proc's hidepid"
                                 : running                 ? "running"
                                                           : "gone");
                        print_field("Process", pid);
                }
                print_field("Node", s.node);
                print_field("MEF", s.mef);
                print_field("Sealing", s.backend);
                print_field("Last error", s.last_error);
                print_time("Next attempt", "", s.next_attempt);
        }
        print_field("KeID", have_state && s.ke_id ? s.ke_id : have_profile ? p.ke_id : NULL);
        print_time("Expires", expired ? "EXPIRED " : "", have_state && s.exp ? s.exp : have_profile ? p.exp : NULL);
        if (have_profile) {
                print_field("CSE-ID", p.cse_id);
                print_field("CSEBase", p.cse_base);
                for (size_t i = 0; i < p.n_targets; i++) {
                        char t[2 * MSG_KEID_MAX + 32];
                        snprintf(t, sizeof t, "%s (kpsaID %s)", p.targets[i].id, p.targets[i].kpsa_id);
                        print_field(i == 0 ? "Targets" : "", t);
                }
                if (p.poll)
                        printf("%13s: %u s\n", "Poll", p.poll);
        } else
                print_field("Profile", "none (not enrolled)");
        return fflush(stdout) == 0 ? ret : EXIT_FAILURE;
}

int cmd_profile(const globals_t *g, int argc, char **argv) {
        bool env = false;
        if (flag_parse("profile", "env", argc, argv, &env) != 0)
                return EXIT_USAGE;

        _cleanup_free_ char *dir = NULL, *text = NULL;
        if (runtime_dir_get(g, &dir, NULL, 0) < 0)
                return EXIT_FAILURE;
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        int r = profile_load(dir, &text, &p);
        if (r < 0)
                return EXIT_FAILURE;
        if (r == 0) {
                fprintf(stderr, "mscectl: no %s/%s: the agent has not enrolled\n", dir, CTL_PROFILE_FILE);
                return EXIT_NO_DATA;
        }
        if (env && profile_expired(NULL, &p, time(NULL))) {
                fprintf(stderr, "mscectl: %s/%s: the profile (KeID %s) expired at %s; its keys are no longer "
                        "valid (see mscectl status)\n", dir, CTL_PROFILE_FILE, p.ke_id, p.exp);
                return EXIT_EXPIRED;
        }
        if (env) {
                r = ctl_profile_env(&p, stdout);
                if (r < 0) {
                        fprintf(stderr, "mscectl: %s/%s: %s\n", dir, CTL_PROFILE_FILE, strerror(-r));
                        return EXIT_FAILURE;
                }
        } else {
                json_auto_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
                if (!j || json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                        return EXIT_FAILURE;
                putchar('\n');
        }
        return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}


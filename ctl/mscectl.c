/* SPDX-License-Identifier: MIT */
/* mscectl: the operator's CLI for msce-agent (mscectl(8)). */
#include <getopt.h>
#include <jansson.h>
#include <keyutils.h>
#include <signal.h>
#include <sys/prctl.h>

#include "msce-config.h"

#include "agent/config.h"
#include "agent/custody.h"
#include "agent/enrol.h"
#include "ctl/check.h"
#include "ctl/env.h"
#include "ctl/runtime.h"
#include "keys/seal.h"
#include "util/util.h"

#define EXIT_USAGE 2
#define EXIT_NOT_RUNNING 3 /* status: not running or not ready; reprovision: not running */
#define EXIT_NO_DATA 4     /* status: no state.json; profile: no profile.json */

typedef struct globals {
        const char *config;      /* --config */
        const char *runtime_dir; /* --runtime-dir */
} globals_t;

static void help(void) {
        printf("Usage: mscectl [--config FILE] [--runtime-dir DIR] COMMAND [OPTIONS]\n"
               "\n"
               "Operate msce-agent, the oneM2M security provisioning agent.\n"
               "\n"
               "Commands:\n"
               "  status [--json]             the agent's state and the non-secret profile\n"
               "  check [--no-network] [--agent-user USER]\n"
               "                              check what the agent needs; as root for every check\n"
               "  reprovision                 make the running agent enrol again now\n"
               "  factory-reset [--deregister] [--yes]\n"
               "                              remove the keys, the sealed profile and profile.json\n"
               "  profile [--env]             the non-secret profile as JSON, or as NAME='value' lines\n"
               "\n"
               "Options:\n"
               "  -c, --config FILE      agent configuration (default %s)\n"
               "      --runtime-dir DIR  where state.json and profile.json are\n"
               "                         (default: [seal] runtime_dir, else %s)\n"
               "  -h, --help             show this help\n"
               "  -V, --version          show the version\n"
               "\n"
               "Exit status:\n"
               "  0  success (status: running and ready; check: nothing failed)\n"
               "  1  failure (check: at least one FAIL)\n"
               "  2  usage error\n"
               "  3  the agent is not running (status: or not ready)\n"
               "  4  nothing to show: no state.json (status) or no profile.json (profile)\n",
               AGENT_CONFIG_DEFAULT, CTL_RUNTIME_DIR_DEFAULT);
}

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("mscectl: ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'mscectl --help'.\n", stderr);
        return EXIT_USAGE;
}

/* The configuration, when one is needed: an explicit --config must load. */
static int config_load(const globals_t *g, agent_config_t *cfg) {
        char err[1024] = "";
        int r = agent_config_load(g->config, cfg, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "mscectl: %s\n", err[0] ? err : strerror(-r));
        return r;
}

/* --runtime-dir, else the configuration's (quietly falling back to the default when the
 * default configuration cannot be read, e.g. by a user who may not read its secrets). */
static int runtime_dir_get(const globals_t *g, char **ret) {
        if (g->runtime_dir) {
                *ret = strdup(g->runtime_dir);
                return *ret ? 0 : -ENOMEM;
        }
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        int r = g->config ? config_load(g, &cfg) : agent_config_load(NULL, &cfg, NULL, 0);
        if (r < 0 && g->config)
                return r;
        *ret = strdup(r == 0 ? cfg.runtime_dir : CTL_RUNTIME_DIR_DEFAULT);
        return *ret ? 0 : -ENOMEM;
}

/* state.json: 1 loaded, 0 absent, negative errno (printed). */
static int state_load(const char *dir, ctl_state_t *ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = ctl_runtime_read(dir, CTL_STATE_FILE, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                fprintf(stderr, "mscectl: %s/%s: %s\n", dir, CTL_STATE_FILE, strerror(-r));
                return r;
        }
        char err[256];
        r = ctl_state_parse(text, len, ret, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "mscectl: %s/%s: %s\n", dir, CTL_STATE_FILE, r == -ENOMEM ? strerror(ENOMEM) : err);
                return r;
        }
        return 1;
}

/* profile.json as text and parsed: 1 loaded, 0 absent, negative errno (printed). */
static int profile_load(const char *dir, char **ret_text, ctl_profile_t *ret) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        int r = ctl_runtime_read(dir, CTL_PROFILE_FILE, &text, &len);
        if (r == -ENOENT)
                return 0;
        if (r < 0) {
                fprintf(stderr, "mscectl: %s/%s: %s\n", dir, CTL_PROFILE_FILE, strerror(-r));
                return r;
        }
        char err[256];
        r = ctl_profile_parse(text, len, ret, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "mscectl: %s/%s: %s\n", dir, CTL_PROFILE_FILE, r == -ENOMEM ? strerror(ENOMEM) : err);
                return r;
        }
        if (ret_text)
                *ret_text = TAKE_PTR(text);
        return 1;
}

static bool agent_running(const ctl_state_t *s) {
        return s->pid > 0 && ctl_proc_comm_is("/proc", s->pid, CTL_AGENT_COMM) == 1;
}

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
                ctl_time_format(t, when);
                ctl_time_relative(t, time(NULL), rel);
                snprintf(buf, sizeof buf, "%s%s (%s)", prefix, when, rel);
        } else
                snprintf(buf, sizeof buf, "%s%s", prefix, raw);
        print_field(label, buf);
}

static int status_json(const char *dir, const ctl_state_t *s, bool running) {
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
        if (json_object_set_new(out, "running", json_boolean(s && running)) < 0)
                return -ENOMEM;
        if (json_dumpf(out, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) < 0)
                return -EIO;
        putchar('\n');
        return 0;
}

static int cmd_status(const globals_t *g, int argc, char **argv) {
        static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, {} };
        bool json = false;
        int o;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0) {
                if (o != 'j')
                        return usage_error("status: unknown option '%s'", argv[optind - 1]);
                json = true;
        }
        if (optind < argc)
                return usage_error("status: unexpected argument '%s'", argv[optind]);

        _cleanup_free_ char *dir = NULL;
        if (runtime_dir_get(g, &dir) < 0)
                return EXIT_FAILURE;
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        int have_state = state_load(dir, &s);
        int have_profile = profile_load(dir, NULL, &p);
        if (have_state < 0 || have_profile < 0)
                return EXIT_FAILURE;
        bool running = have_state && agent_running(&s);
        int ret = !have_state ? EXIT_NO_DATA : running && streq(s.state, "ready") ? EXIT_SUCCESS : EXIT_NOT_RUNNING;

        if (json)
                return status_json(dir, have_state ? &s : NULL, running) < 0 ? EXIT_FAILURE : ret;

        if (!have_state) {
                printf("msce-agent: no state (no %s/%s: not started since boot)\n", dir, CTL_STATE_FILE);
        } else {
                printf("msce-agent: %s%s\n", running ? "" : "not running, last state ", s.state);
                print_field("Status", s.status);
                print_time("State", running ? "since " : "reported since ", s.since);
                if (s.pid > 0) {
                        char pid[64];
                        snprintf(pid, sizeof pid, "%d (%s)", (int) s.pid, running ? "running" : "gone");
                        print_field("Process", pid);
                }
                print_field("Node", s.node);
                print_field("MEF", s.mef);
                print_field("Sealing", s.backend);
                print_field("Last error", s.last_error);
                print_time("Next attempt", "", s.next_attempt);
        }
        print_field("KeID", have_state && s.ke_id ? s.ke_id : have_profile ? p.ke_id : NULL);
        print_time("Expires", "", have_state && s.exp ? s.exp : have_profile ? p.exp : NULL);
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

static int cmd_profile(const globals_t *g, int argc, char **argv) {
        static const struct option opts[] = { { "env", no_argument, NULL, 'e' }, {} };
        bool env = false;
        int o;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0) {
                if (o != 'e')
                        return usage_error("profile: unknown option '%s'", argv[optind - 1]);
                env = true;
        }
        if (optind < argc)
                return usage_error("profile: unexpected argument '%s'", argv[optind]);

        _cleanup_free_ char *dir = NULL, *text = NULL;
        if (runtime_dir_get(g, &dir) < 0)
                return EXIT_FAILURE;
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        int r = profile_load(dir, &text, &p);
        if (r < 0)
                return EXIT_FAILURE;
        if (r == 0) {
                fprintf(stderr, "mscectl: no %s/%s: the agent has not enrolled\n", dir, CTL_PROFILE_FILE);
                return EXIT_NO_DATA;
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

static int cmd_check(const globals_t *g, int argc, char **argv) {
        static const struct option opts[] = {
                { "no-network", no_argument, NULL, 'n' },
                { "agent-user", required_argument, NULL, 'u' },
                {},
        };
        ctl_check_opts_t co = { .config = g->config, .runtime_dir = g->runtime_dir, .network = true };
        int o;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0)
                switch (o) {
                case 'n':
                        co.network = false;
                        break;
                case 'u':
                        co.agent_user = optarg;
                        break;
                default:
                        return usage_error("check: %s '%s'", o == ':' ? "option needs a value:" : "unknown option",
                                           argv[optind - 1]);
                }
        if (optind < argc)
                return usage_error("check: unexpected argument '%s'", argv[optind]);
        /* Keyrings that the checks open link into this session keyring: make it our own, so
         * that nothing stays linked into the caller's session (and possessed) afterwards. */
        (void) keyctl_join_session_keyring(NULL);
        unsigned fails = ctl_check_run(&co, stdout);
        if (fflush(stdout) != 0)
                return EXIT_FAILURE;
        return fails ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* The pid of the running agent from state.json, 0 when none runs. */
static pid_t running_pid(const char *dir) {
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        if (state_load(dir, &s) <= 0)
                return 0;
        return agent_running(&s) ? s.pid : 0;
}

static int cmd_reprovision(const globals_t *g, int argc, char **argv) {
        if (argc > 1)
                return usage_error("reprovision: unexpected argument '%s'", argv[1]);
        _cleanup_free_ char *dir = NULL;
        if (runtime_dir_get(g, &dir) < 0)
                return EXIT_FAILURE;
        pid_t pid = running_pid(dir);
        if (pid == 0) {
                fprintf(stderr, "mscectl: msce-agent is not running (see mscectl status)\n");
                return EXIT_NOT_RUNNING;
        }
        if (kill(pid, SIGUSR1) < 0) {
                fprintf(stderr, "mscectl: cannot signal msce-agent (pid %d): %m%s\n", (int) pid,
                        errno == EPERM ? " (run as root)" : "");
                return EXIT_FAILURE;
        }
        printf("Asked msce-agent (pid %d) to enrol again.\n", (int) pid);
        return EXIT_SUCCESS;
}

static bool confirm(const agent_config_t *cfg) {
        if (!isatty(STDIN_FILENO)) {
                fprintf(stderr, "mscectl: factory-reset: refusing without --yes (standard input is not a terminal)\n");
                return false;
        }
        fprintf(stderr,
                "This removes the keys of user %s from the kernel keyring, the sealed profile in %s\n"
                "(and its host key) and %s/%s. The CSE has no credentials until the agent enrols again.\n"
                "Type 'yes' to continue: ",
                cfg->service_user, cfg->state_dir, cfg->runtime_dir, CUSTODY_PROFILE_JSON);
        char answer[16] = "";
        if (!fgets(answer, sizeof answer, stdin))
                return false;
        return streq(answer, "yes\n");
}

/* The KeID to deregister: from the sealed profile, else from profile.json. 0 with ret set,
 * -ENOENT when there is none (not enrolled). */
static int current_ke_id(const agent_config_t *cfg, char ret[MSG_KEID_MAX + 1]) {
        seal_opts_t so = {
                .state_dir = cfg->state_dir,
                .method = custody_seal_method(cfg),
                .tcti = cfg->tcti,
                .pcrs = cfg->pcrs,
        };
        _cleanup_(stored_profile_wipe) stored_profile_t p = {};
        if (seal_load(&so, &p, NULL) == 0) {
                snprintf(ret, MSG_KEID_MAX + 1, "%s", p.ke_id);
                return 0;
        }
        _cleanup_(ctl_profile_done) ctl_profile_t pj = {};
        if (profile_load(cfg->runtime_dir, NULL, &pj) > 0) {
                snprintf(ret, MSG_KEID_MAX + 1, "%s", pj.ke_id);
                return 0;
        }
        return -ENOENT;
}

static int cmd_factory_reset(const globals_t *g, int argc, char **argv) {
        static const struct option opts[] = {
                { "deregister", no_argument, NULL, 'd' },
                { "yes", no_argument, NULL, 'y' },
                {},
        };
        bool deregister = false, yes = false;
        int o;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0)
                switch (o) {
                case 'd':
                        deregister = true;
                        break;
                case 'y':
                        yes = true;
                        break;
                default:
                        return usage_error("factory-reset: unknown option '%s'", argv[optind - 1]);
                }
        if (optind < argc)
                return usage_error("factory-reset: unexpected argument '%s'", argv[optind]);

        _cleanup_(agent_config_done) agent_config_t cfg = {};
        if (config_load(g, &cfg) < 0)
                return EXIT_FAILURE;
        if (!yes && !confirm(&cfg))
                return EXIT_USAGE;
        (void) keyctl_join_session_keyring(NULL); /* see cmd_check() */

        /* A running agent holds the lock: then remove under its feet and tell it afterwards. */
        _cleanup_close_ int lock = -1;
        custody_info_t ci;
        int r = custody_lock(&cfg, &lock, &ci);
        if (r < 0 && r != -EBUSY) {
                fprintf(stderr, "mscectl: %s\n", ci.reason);
                return EXIT_FAILURE;
        }
        pid_t agent = r == -EBUSY ? running_pid(g->runtime_dir ?: cfg.runtime_dir) : 0;

        if (deregister) {
                char ke_id[MSG_KEID_MAX + 1];
                if (current_ke_id(&cfg, ke_id) < 0)
                        printf("Nothing to deregister: no profile.\n");
                else {
                        exchange_info_t info;
                        r = enrol_deregister(&cfg, ke_id, &info);
                        if (r < 0) {
                                fprintf(stderr,
                                        "mscectl: deregistering KeID %s with MEF %s failed (%s): %s\n"
                                        "mscectl: nothing was removed; retry, or reset without --deregister\n",
                                        ke_id, cfg.mef_uri, outcome_to_string(info.outcome) ?: "unknown", info.reason);
                                return EXIT_FAILURE;
                        }
                        printf("Deregistered KeID %s with MEF %s.\n", ke_id, cfg.mef_uri);
                }
        }
        r = custody_remove(&cfg, &ci);
        if (r < 0) {
                fprintf(stderr, "mscectl: factory-reset: %s\n", ci.reason);
                return EXIT_FAILURE;
        }
        printf("Removed the keys of user %s, the sealed profile in %s and %s/%s.\n", cfg.service_user, cfg.state_dir,
               cfg.runtime_dir, CUSTODY_PROFILE_JSON);
        if (agent > 0) {
                if (kill(agent, SIGUSR1) < 0) {
                        fprintf(stderr, "mscectl: cannot signal msce-agent (pid %d): %m; restart it\n", (int) agent);
                        return EXIT_FAILURE;
                }
                printf("Asked msce-agent (pid %d) to enrol again.\n", (int) agent);
        } else if (lock < 0)
                printf("Another msce-agent holds %s: restart it so that it enrols again.\n", cfg.state_dir);
        return EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        /* factory-reset and check handle keys (the Kpm for the handshake, a key read in a child). */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        signal(SIGPIPE, SIG_IGN); /* wolfSSL writes without MSG_NOSIGNAL */

        enum { ARG_RUNTIME_DIR = 0x100 };
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "runtime-dir", required_argument, NULL, ARG_RUNTIME_DIR },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        globals_t g = {};
        int o;
        /* '+': stop at the command, whose options are its own */
        while ((o = getopt_long(argc, argv, "+:c:hV", opts, NULL)) >= 0)
                switch (o) {
                case 'c':
                        g.config = optarg;
                        break;
                case ARG_RUNTIME_DIR:
                        g.runtime_dir = optarg;
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case 'V':
                        printf("mscectl %s\n", PACKAGE_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return usage_error("%s '%s'", o == ':' ? "option needs a value:" : "unknown option",
                                           argv[optind - 1]);
                }
        if (optind >= argc)
                return usage_error("missing command");

        static const struct {
                const char *name;
                int (*run)(const globals_t *g, int argc, char **argv);
        } commands[] = {
                { "status", cmd_status },
                { "check", cmd_check },
                { "reprovision", cmd_reprovision },
                { "factory-reset", cmd_factory_reset },
                { "profile", cmd_profile },
        };
        char **av = argv + optind;
        int ac = argc - optind;
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(av[0], commands[i].name)) {
                        optind = 0; /* the command's options, from av[1] */
                        return commands[i].run(&g, ac, av);
                }
        return usage_error("unknown command '%s'", av[0]);
}

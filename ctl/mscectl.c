/* SPDX-License-Identifier: MIT */
/* mscectl: the operator's CLI for msce-agent (mscectl(8)). */
#include <getopt.h>
#include <jansson.h>
#include <keyutils.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "msce-config.h"

#include "agent/config.h"
#include "agent/credential.h"
#include "agent/custody.h"
#include "agent/state-mark.h"
#include "agent/enrol.h"
#include "ctl/check.h"
#include "ctl/env.h"
#include "ctl/mscectl.h"
#include "ctl/runtime.h"
#include "ctl/setup.h"
#include "ctl/tpm.h"
#include "keys/keyring-owner.h"
#include "keys/seal.h"
#include "util/util.h"

static void help(void) {
        printf("Usage: mscectl [--config FILE] [--runtime-dir DIR] COMMAND [OPTIONS]\n"
               "\n"
               "Operate msce-agent, the oneM2M security provisioning agent.\n"
               "\n"
               "Commands:\n"
               "  status [--json]             the agent's state and the non-secret profile; any user\n"
               "  check [--no-network] [--agent-user USER] [--output text|json]\n"
               "        [--warnings-as-errors] [--dont-run ID[,ID...]]\n"
               "                              check what the agent needs; as root for every check\n"
               "  check-list [--output text|json]\n"
               "                              the checks that check runs, with their ids\n"
               "  reprovision                 make the running agent enrol again now\n"
               "  reload [--pid PID] [--timeout SECONDS]\n"
               "                              make the running agent reload its configuration, and\n"
               "                              wait until it has (or refused it)\n"
               "  factory-reset [--deregister] [--yes]\n"
               "                              remove the keys, the sealed profile and profile.json\n"
               "  profile [--env]             the non-secret profile as JSON, or as NAME='value' lines\n"
               "  setup --node-id ID --mef-uri URI --psk-identity KPMID --kpm-file FILE|-\n"
               "        [--user CSE_USER] [--agent-user USER]\n"
               "                              quick setup: install the Kpm and a drop-in, checked\n"
               "  logs [-f] [-n N] [--since TIME] [--file JOURNAL] [--output text|json] [--dry-run]\n"
               "                              the agent's journal, explained (journalctl -x)\n"
               "\n"
               "Options:\n"
               "  -c, --config FILE      agent configuration (default %s)\n"
               "      --runtime-dir DIR  where state.json and profile.json are\n"
               "                         (default: [seal] runtime_dir, else %s)\n"
               "  -h, --help             show this help\n"
               "  -V, --version          show the version\n"
               "\n"
               "Exit status (status: one per state, mscectl(8)):\n"
               "  0  success (status: READY; check: nothing failed)\n"
               "  1  failure (check: at least one FAIL; reload: refused, or not done in time)\n"
               "  2  usage error\n"
               "  3  status: NOT RUNNING; reprovision, reload: the agent is not running\n"
               "  4  nothing to show: no state.json (status) or no profile.json (profile)\n"
               "  5  status: starting, restoring, enrolling, waiting for the time or stopping\n"
               "  6  status: BACKOFF    7  REJECTED    8  REVOKED    9  INCOMPATIBLE\n"
               "  10 status: EXPIRED; profile --env: the profile expired\n"
               "  11 status: CONFIGURATION ERROR; setup: refused as msce-agent --check-config would\n",
               AGENT_CONFIG_DEFAULT, CTL_RUNTIME_DIR_DEFAULT);
}

int usage_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("mscectl: ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'mscectl --help'.\n", stderr);
        return EXIT_USAGE;
}

/* getopt_long() returned o (':' or '?') for the option at argv[optind - 1] of cmd ("" for none). */
int option_error(const char *cmd, int o, char **argv) {
        return usage_error("%s%s%s '%s'", cmd, cmd[0] ? ": " : "",
                           o == ':' ? "option needs a value:" : "unknown option", argv[optind - 1]);
}

/* The configuration, when one is needed: an explicit --config must load. */
static int config_load(const globals_t *g, agent_config_t *cfg) {
        char err[1024] = "";
        int r = agent_config_load(g->config, 0, cfg, err, sizeof err);
        if (r < 0)
                fprintf(stderr, "mscectl: %s\n", err[0] ? err : strerror(-r));
        return r;
}

/* --runtime-dir, else the configuration's [seal] runtime_dir. Reading it needs no secret (the
 * credential files are not opened), so any user may; a configuration that does not load leaves
 * the default, said on stderr (or in why) unless it is the default configuration and absent. */
int runtime_dir_get(const globals_t *g, char **ret, char *why, size_t why_size) {
        if (why)
                why[0] = 0;
        if (g->runtime_dir) {
                *ret = strdup(g->runtime_dir);
                return *ret ? 0 : -ENOMEM;
        }
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        char err[1024] = "";
        int r = agent_config_load(g->config, AGENT_CONFIG_NO_SECRETS, &cfg, err, sizeof err);
        if (r < 0 && (g->config || r != -ENOENT)) {
                if (why)
                        snprintf(why, why_size, "%s", err[0] ? err : strerror(-r));
                else
                        fprintf(stderr, "mscectl: %s; reading %s\n", err[0] ? err : strerror(-r), CTL_RUNTIME_DIR_DEFAULT);
        }
        *ret = strdup(r == 0 ? cfg.runtime_dir : CTL_RUNTIME_DIR_DEFAULT);
        return *ret ? 0 : -ENOMEM;
}

int config_refused(const globals_t *g, char **ret_dir, char *err, size_t err_size) {
        err[0] = 0;
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        /* Not installed (the default configuration absent): nothing to tell. */
        bool installed = g->config || access(AGENT_CONFIG_DEFAULT, F_OK) == 0 || errno != ENOENT;
        int r = installed ? agent_config_load(g->config, 0, &cfg, err, err_size) : -ENOENT;
        /* A file this user may not read may well be the agent's to read: not known here. */
        bool refused = installed && r < 0 && r != -ENOMEM && !(r == -EACCES && geteuid() != 0);
        if (!refused)
                err[0] = 0;
        else if (!err[0])
                snprintf(err, err_size, "%s", strerror(-r));
        if (r == 0 && !g->runtime_dir) {
                *ret_dir = strdup(cfg.runtime_dir);
                return *ret_dir ? 0 : -ENOMEM;
        }
        /* Without the credential files, runtime_dir may still be known; a refusal's reason is
         * said once, by the caller. */
        char why[1024];
        r = runtime_dir_get(g, ret_dir, refused ? why : NULL, sizeof why);
        return r < 0 ? r : refused;
}

/* ctl_runtime_load(): 1 loaded, 0 absent, negative errno (printed). */
static int runtime_load(const char *dir, ctl_state_t *state, ctl_profile_t *profile, char **ret_text) {
        char err[256];
        int r = ctl_runtime_load(dir, state, profile, ret_text, err, sizeof err);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                fprintf(stderr, "mscectl: %s/%s: %s\n", dir, state ? CTL_STATE_FILE : CTL_PROFILE_FILE,
                        r == -ENOMEM ? strerror(ENOMEM) : err);
        return r < 0 ? r : 1;
}

int state_load(const char *dir, ctl_state_t *ret) {
        return runtime_load(dir, ret, NULL, NULL);
}

int profile_load(const char *dir, char **ret_text, ctl_profile_t *ret) {
        return runtime_load(dir, NULL, ret, ret_text);
}

/* --output text|json: 0 text, 1 json, -1 (printed) neither. */
static int output_parse(const char *cmd, const char *v) {
        if (streq(v, "text"))
                return 0;
        if (streq(v, "json"))
                return 1;
        usage_error("%s: --output: '%s' is neither text nor json", cmd, v);
        return -1;
}

static int cmd_check(const globals_t *g, int argc, char **argv) {
        static const struct option opts[] = {
                { "no-network", no_argument, NULL, 'n' },
                { "agent-user", required_argument, NULL, 'u' },
                { "output", required_argument, NULL, 'o' },
                { "warnings-as-errors", no_argument, NULL, 'w' },
                { "dont-run", required_argument, NULL, 'd' },
                {},
        };
        ctl_check_opts_t co = { .config = g->config, .runtime_dir = g->runtime_dir, .network = true };
        char *skip[64];
        co.dont_run = skip;
        int o, j;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0)
                switch (o) {
                case 'n':
                        co.network = false;
                        break;
                case 'u':
                        co.agent_user = optarg;
                        break;
                case 'o':
                        if ((j = output_parse("check", optarg)) < 0)
                                return EXIT_USAGE;
                        co.json = j;
                        break;
                case 'w':
                        co.warnings_as_errors = true;
                        break;
                case 'd':
                        /* a comma-separated list or the option repeated */
                        for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
                                if (!ctl_check_known(tok))
                                        return usage_error("check: --dont-run: no check '%s' (see mscectl check-list)", tok);
                                if (streq(tok, "config") || streq(tok, "agent-user"))
                                        return usage_error("check: --dont-run: '%s' always runs: the other checks need it", tok);
                                if (co.n_dont_run == ELEMENTSOF(skip))
                                        return usage_error("check: --dont-run: too many");
                                skip[co.n_dont_run++] = tok;
                        }
                        break;
                default:
                        return option_error("check", o, argv);
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

static int cmd_check_list(const globals_t *g, int argc, char **argv) {
        static const struct option opts[] = { { "output", required_argument, NULL, 'o' }, {} };
        int o, json = 0;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0) {
                if (o != 'o')
                        return option_error("check-list", o, argv);
                if ((json = output_parse("check-list", optarg)) < 0)
                        return EXIT_USAGE;
        }
        if (optind < argc)
                return usage_error("check-list: unexpected argument '%s'", argv[optind]);
        if (ctl_check_list(json, stdout) < 0 || fflush(stdout) != 0)
                return EXIT_FAILURE;
        return EXIT_SUCCESS;
}

/* The pid of the running agent from state.json, 0 when none runs, -1 when state.json does not
 * tell (its error printed). */
static pid_t running_pid(const char *dir) {
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        int r = state_load(dir, &s);
        if (r <= 0)
                return r < 0 ? -1 : 0;
        return ctl_agent_alive(s.pid) != CTL_AGENT_GONE ? s.pid : 0;
}

static int cmd_reprovision(const globals_t *g, int argc, char **argv) {
        if (argc > 1)
                return usage_error("reprovision: unexpected argument '%s'", argv[1]);
        _cleanup_free_ char *dir = NULL;
        if (runtime_dir_get(g, &dir, NULL, 0) < 0)
                return EXIT_FAILURE;
        pid_t pid = running_pid(dir);
        if (pid < 0)
                return EXIT_FAILURE; /* not "not running": whether it runs is not known */
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
 * -ENOENT when there is none (not enrolled). -ETIMEDOUT, -ECHILD or -EMSGSIZE (ctl/tpm.h) when
 * the sealed profile's could not be read: the TPM did not answer in time, or the child asking it
 * was lost: then profile.json's is not taken instead, the operator decides (factory-reset says
 * how). */
static int current_ke_id(const agent_config_t *cfg, char ret[MSG_KEID_MAX + 1]) {
        seal_opts_t so = credential_seal_opts(cfg);
        ctl_sealed_t p;
        uint32_t rc;
        int r = ctl_sealed_read(&so, &p, &rc);
        if (r == 0) {
                snprintf(ret, MSG_KEID_MAX + 1, "%s", p.ke_id);
                return 0;
        }
        if (r == -ETIMEDOUT || r == -ECHILD || r == -EMSGSIZE)
                return r;
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
                        return option_error("factory-reset", o, argv);
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
                fprintf(stderr, "mscectl: %s\n", ci.failure.reason);
                return EXIT_FAILURE;
        }
        pid_t agent = r == -EBUSY ? MAX(running_pid(g->runtime_dir ?: cfg.runtime_dir), 0) : 0;

        if (deregister) {
                char ke_id[MSG_KEID_MAX + 1];
                r = current_ke_id(&cfg, ke_id);
                if (r == -ENOENT)
                        printf("Nothing to deregister: no profile.\n");
                else if (r < 0) {
                        if (r == -ETIMEDOUT)
                                fprintf(stderr, "mscectl: factory-reset: the TPM at %s did not answer within %u s: ",
                                        cfg.tcti, CTL_TPM_TIMEOUT_S);
                        else
                                fprintf(stderr,
                                        "mscectl: factory-reset: the process unsealing the profile ended without a result: ");
                        fprintf(stderr, "cannot read the KeID of the sealed profile in %s to deregister it\n"
                                        "mscectl: nothing was removed; retry, or reset without --deregister\n",
                                cfg.state_dir);
                        return EXIT_FAILURE;
                } else {
                        exchange_info_t info;
                        r = enrol_deregister(&cfg, ke_id, &info);
                        if (r == 0)
                                printf("Deregistered KeID %s with MEF %s.\n", ke_id, cfg.mef_uri);
                        else if (info.failure.outcome == OUTCOME_UNKNOWN_KEID) /* 404: done already */
                                printf("MEF %s no longer knows KeID %s: nothing to deregister (%s).\n", cfg.mef_uri,
                                       ke_id, info.failure.reason);
                        else {
                                fprintf(stderr,
                                        "mscectl: deregistering KeID %s with MEF %s failed (%s): %s\n"
                                        "mscectl: nothing was removed; retry, or reset without --deregister\n",
                                        ke_id, cfg.mef_uri, outcome_to_string(info.failure.outcome) ?: "unknown", info.failure.reason);
                                return EXIT_FAILURE;
                        }
                }
        }
        /* A previous [consumer] user's keys too (the uid keyring.owner records, which the agent
         * would remove them by at its next start, but which goes below when no agent runs). */
        char prev[CUSTODY_USER_MAX] = "";
        r = custody_user_leave(&cfg, prev, &ci);
        if (r > 0)
                printf("Removed the keys of the previous [consumer] user %s.\n", prev);
        else if (r < 0)
                fprintf(stderr, "mscectl: factory-reset: %s\n", ci.failure.reason);
        r = custody_remove(&cfg, true, &ci);
        if (r < 0) {
                fprintf(stderr, "mscectl: factory-reset: %s\n", ci.failure.reason);
                return EXIT_FAILURE;
        }
        printf("Removed the keys of user %s, the sealed profile in %s and %s/%s.\n", cfg.service_user, cfg.state_dir,
               cfg.runtime_dir, CUSTODY_PROFILE_JSON);
        char state[PATH_MAX], owner[PATH_MAX];
        /* no agent runs to write it again: what a stopped one said of the profile gone is stale */
        if (lock >= 0 && path_join(g->runtime_dir ?: cfg.runtime_dir, "state.json", state) == 0)
                (void) unlink(state);
        /* no keys are left for it to name; a running agent's names its user, who gets them again */
        if (lock >= 0 && path_join(cfg.state_dir, KEYRING_OWNER_NAME, owner) == 0)
                (void) unlink(owner);
        /* no profile is left for it to have the next start check; a running agent's is its own */
        if (lock >= 0)
                (void) state_mark_clear(cfg.state_dir, ENROL_MARK_NAME);
        /* an operator's act: a revoked agent enrols again (agent/state-mark.h), also a stopped one
         * at its next start */
        r = state_mark_clear(cfg.state_dir, REVOKED_MARK_NAME);
        if (r < 0) {
                fprintf(stderr, "mscectl: factory-reset: cannot remove %s/%s: %s (msce-agent stays revoked)\n",
                        cfg.state_dir, REVOKED_MARK_NAME, strerror(-r));
                return EXIT_FAILURE;
        }
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

static int cmd_setup(const globals_t *g, int argc, char **argv) {
        enum { O_NODE = 0x100, O_URI, O_PSK_ID, O_KPM, O_USER, O_AGENT_USER };
        static const struct option opts[] = {
                { "node-id", required_argument, NULL, O_NODE },
                { "mef-uri", required_argument, NULL, O_URI },
                { "psk-identity", required_argument, NULL, O_PSK_ID },
                { "kpm-file", required_argument, NULL, O_KPM },
                { "user", required_argument, NULL, O_USER },
                { "agent-user", required_argument, NULL, O_AGENT_USER },
                {},
        };
        ctl_setup_opts_t so = { .config = g->config };
        int o;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0)
                switch (o) {
                case O_NODE:
                        so.node_id = optarg;
                        break;
                case O_URI:
                        so.mef_uri = optarg;
                        break;
                case O_PSK_ID:
                        so.psk_identity = optarg;
                        break;
                case O_KPM:
                        so.kpm_file = optarg;
                        break;
                case O_USER:
                        so.cse_user = optarg;
                        break;
                case O_AGENT_USER:
                        so.agent_user = optarg;
                        break;
                default:
                        return option_error("setup", o, argv);
                }
        if (optind < argc)
                return usage_error("setup: unexpected argument '%s'", argv[optind]);
        if (!so.node_id || !so.mef_uri || !so.psk_identity || !so.kpm_file)
                return usage_error("setup: --node-id, --mef-uri, --psk-identity and --kpm-file are required");
        char err[1536] = "", dropin[PATH_MAX], kpm[PATH_MAX];
        bool refused;
        int r = ctl_setup_run(&so, err, sizeof err, dropin, kpm, &refused);
        if (r < 0) {
                fprintf(stderr, "mscectl: setup: %s\nmscectl: setup: nothing was changed\n", err);
                return refused ? EXIT_CONFIG : EXIT_FAILURE;
        }
        /* restart, not "enable --now": a running agent (a first setup that was rejected, say)
         * keeps the node, MEF and KpmID it started with until it is restarted */
        printf("Wrote %s (the node and the MEF) and %s (the Kpm, readable by %s only).\n"
               "Apply it: systemctl enable msce-agent; systemctl restart msce-agent (a running agent keeps\n"
               "its previous configuration until then); then mscectl status.\n",
               dropin, kpm, so.agent_user ?: CTL_AGENT_USER);
        return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int cmd_logs(const globals_t *g, int argc, char **argv) {
        enum { O_SINCE = 0x100, O_FILE, O_OUTPUT, O_DRY_RUN };
        static const struct option opts[] = {
                { "follow", no_argument, NULL, 'f' },
                { "lines", required_argument, NULL, 'n' },
                { "since", required_argument, NULL, O_SINCE },
                { "file", required_argument, NULL, O_FILE },
                { "output", required_argument, NULL, O_OUTPUT },
                { "dry-run", no_argument, NULL, O_DRY_RUN },
                {},
        };
        ctl_logs_opts_t lo = {};
        bool dry_run = false;
        int o, j;
        while ((o = getopt_long(argc, argv, "+:fn:", opts, NULL)) >= 0)
                switch (o) {
                case 'f':
                        lo.follow = true;
                        break;
                case 'n':
                        lo.lines = optarg;
                        break;
                case O_SINCE:
                        lo.since = optarg;
                        break;
                case O_FILE:
                        lo.file = optarg;
                        break;
                case O_OUTPUT:
                        if ((j = output_parse("logs", optarg)) < 0)
                                return EXIT_USAGE;
                        lo.json = j;
                        break;
                case O_DRY_RUN:
                        dry_run = true;
                        break;
                default:
                        return option_error("logs", o, argv);
                }
        if (optind < argc)
                return usage_error("logs: unexpected argument '%s'", argv[optind]);
        const char *av[24];
        if (ctl_logs_argv(&lo, av, ELEMENTSOF(av)) < 0)
                return EXIT_FAILURE;
        if (dry_run) {
                for (size_t i = 0; av[i]; i++)
                        printf("%s%s", i ? " " : "", av[i]);
                putchar('\n');
                return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
        }
        fflush(stdout);
        execvp(av[0], (char *const *) av);
        fprintf(stderr, "mscectl: logs: cannot run %s: %m\n", av[0]);
        return EXIT_FAILURE;
}

/* No command needs a capability unless run as root (check's key read as the CSE's user, setup,
 * factory-reset): what a user other than root holds anyway - msce-agent.service's
 * AmbientCapabilities= reach its ExecReload=, mscectl reload - goes before any input is read,
 * and is not passed on to what mscectl runs (logs: journalctl). */
static int capabilities_drop(void) {
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return negative_errno();
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct none[2] = {};
        return syscall(SYS_capset, &h, none) < 0 ? negative_errno() : 0;
}

int main(int argc, char *argv[]) {
        /* factory-reset and check handle keys (the Kpm for the handshake, a key read in a child). */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        if (geteuid() != 0 && capabilities_drop() < 0) {
                fprintf(stderr, "mscectl: cannot drop capabilities: %m\n");
                return EXIT_FAILURE;
        }
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
                        return option_error("", o, argv);
                }
        if (optind >= argc)
                return usage_error("missing command");

        static const struct {
                const char *name;
                int (*run)(const globals_t *g, int argc, char **argv);
        } commands[] = {
                { "status", cmd_status },
                { "check", cmd_check },
                { "check-list", cmd_check_list },
                { "reprovision", cmd_reprovision },
                { "reload", cmd_reload },
                { "factory-reset", cmd_factory_reset },
                { "profile", cmd_profile },
                { "setup", cmd_setup },
                { "logs", cmd_logs },
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

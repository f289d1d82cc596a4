/* SPDX-License-Identifier: MIT */
/* msce-agent: thin main. Without options it is the daemon (agent/manager.h); --once runs the
 * same states until they settle and prints the non-secret profile; --check-config validates. */
#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>

#include "msce-config.h"

#include <systemd/sd-daemon.h>

#include "agent/config.h"
#include "agent/custody.h"
#include "agent/exit-codes.h"
#include "agent/manager.h"
#include "util/journal.h"
#include "util/json-alloc.h"
#include "util/util.h"

static void help(void) {
        printf("Usage: msce-agent [--config FILE]\n"
               "       msce-agent --once [--reenrol] [--config FILE]\n"
               "       msce-agent --check-config [--syntax-only] [--config FILE]\n"
               "\n"
               "oneM2M Remote Security Provisioning agent (Msce enrolee). Without --once or\n"
               "--check-config it runs as the daemon (systemd Type=notify; SIGHUP reloads the\n"
               "configuration, SIGUSR1 re-enrols, SIGTERM stops).\n"
               "\n"
               "  --once            restore the sealed profile, or enrol with the MEF when there is\n"
               "                    no usable one; hand the keys over and print the profile (no keys)\n"
               "  --reenrol         with --once: enrol even when the profile restores (the old one\n"
               "                    stays in place until the new one is stored)\n"
               "  --check-config    validate the configuration and what it names locally (the CSE's\n"
               "                    user, the state and runtime directories, the TPM, the\n"
               "                    bootstrap credential) and print it as effective INI\n"
               "  --syntax-only     with --check-config: the file and the credential files only, not\n"
               "                    the user, directories and TPM (a configuration for another machine)\n"
               "  -c, --config FILE configuration file (default %s, plus FILE.d/*.conf)\n"
               "  -V, --version     print the version\n"
               "  -h, --help        print this help\n"
               "\n"
               "Exit status:\n"
               "  %d   restored or enrolled (--once) / configuration valid (--check-config) /\n"
               "       stopped by SIGTERM (daemon)\n"
               "  %d  usage error\n"
               "  %d  internal error\n"
               "  %d  transient failure: MEF unreachable, timeout, overloaded, bad response, state\n"
               "       directory, keyring or user database failure, --once interrupted by SIGTERM\n"
               "       or SIGINT; retry later\n"
               "  %d  incompatible: the MEF accepted none of the TLS versions, suites or groups\n"
               "       offered\n"
               "  %d  rejected: the MEF refused the bootstrap credential or the request, or revoked\n"
               "       the enrolment (until an operator acts: --once --reenrol, mscectl reprovision)\n"
               "  %d  configuration or bootstrap credential missing, invalid or too widely readable\n",
               AGENT_CONFIG_DEFAULT, AGENT_EXIT_OK, AGENT_EXIT_USAGE, AGENT_EXIT_SOFTWARE, AGENT_EXIT_TRANSIENT,
               AGENT_EXIT_INCOMPATIBLE, AGENT_EXIT_REJECTED, AGENT_EXIT_CONFIG);
}

/* Fatal start-up errors: at err priority when stderr is the journal, so that
 * `journalctl -p err -u msce-agent` says why the unit exited 78. */
static void fatal(const char *msg) {
        fprintf(stderr, "%smsce-agent: %s\n", journal_stderr_is_journal() ? SD_ERR : "", msg);
}

/* The daemon, or with once its run until the states settle (manager_set_once()). */
static int run(const char *config, agent_config_t *cfg, bool once, bool reenrol) {
        _cleanup_(manager_freep) manager_t *m = NULL;
        char err[1024] = "";
        int code;
        int r = manager_new(config, cfg, &m, &code, err, sizeof err);
        if (r < 0) {
                fatal(err[0] ? err : strerror(-r));
                return code;
        }
        if (once)
                manager_set_once(m, reenrol);
        return manager_run(m);
}

int main(int argc, char *argv[]) {
        /* No core dumps or ptrace by other users of our uid: memory holds keys. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        json_alloc_install(); /* the children parse the MEF's keys: inherited across fork */
        /* wolfSSL writes without MSG_NOSIGNAL. */
        signal(SIGPIPE, SIG_IGN);

        enum { ARG_ONCE = 0x100, ARG_CHECK, ARG_REENROL, ARG_SYNTAX_ONLY };
        static const struct option options[] = {
                { "once", no_argument, NULL, ARG_ONCE },
                { "check-config", no_argument, NULL, ARG_CHECK },
                { "reenrol", no_argument, NULL, ARG_REENROL },
                { "syntax-only", no_argument, NULL, ARG_SYNTAX_ONLY },
                { "config", required_argument, NULL, 'c' },
                { "version", no_argument, NULL, 'V' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *config = NULL;
        bool once = false, check = false, reenrol = false, syntax_only = false;
        int c;
        while ((c = getopt_long(argc, argv, "c:Vh", options, NULL)) >= 0) {
                switch (c) {
                case ARG_ONCE:
                        once = true;
                        break;
                case ARG_CHECK:
                        check = true;
                        break;
                case ARG_REENROL:
                        reenrol = true;
                        break;
                case ARG_SYNTAX_ONLY:
                        syntax_only = true;
                        break;
                case 'c':
                        config = optarg;
                        break;
                case 'V':
                        printf("msce-agent %s\n", PACKAGE_VERSION);
                        return AGENT_EXIT_OK;
                case 'h':
                        help();
                        return AGENT_EXIT_OK;
                default:
                        return AGENT_EXIT_USAGE;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "msce-agent: unexpected argument '%s' (see --help)\n", argv[optind]);
                return AGENT_EXIT_USAGE;
        }
        const char *conflict = once && check            ? "--once and --check-config exclude each other"
                               : syntax_only && !check ? "--syntax-only needs --check-config"
                               : reenrol && !once      ? "--reenrol needs --once"
                                                       : NULL;
        if (conflict) {
                fprintf(stderr, "msce-agent: %s\n", conflict);
                return AGENT_EXIT_USAGE;
        }

        _cleanup_(agent_config_done) agent_config_t cfg = {};
        char err[1024];
        int r = agent_config_load(config, 0, &cfg, err, sizeof err);
        if (r < 0) {
                fatal(err[0] ? err : strerror(-r));
                return r == -ENOMEM ? AGENT_EXIT_SOFTWARE : AGENT_EXIT_CONFIG;
        }
        /* Everything local first: an enrolment whose profile cannot be kept would leave an
         * active KeID at the MEF that no gateway holds. */
        custody_info_t ci;
        /* The daemon checks the same at its start, where it can say so in STATUS= and state.json. */
        cfg.check_only = check;
        r = syntax_only || (!check && !once) ? 0 : custody_preflight(&cfg, NULL, &ci);
        if (r < 0) {
                fatal(ci.failure.reason);
                return manager_exit_code(ci.failure.outcome);
        }
        if (check) {
                agent_config_dump(&cfg, stdout);
                return fflush(stdout) == 0 ? AGENT_EXIT_OK : AGENT_EXIT_SOFTWARE;
        }
        return run(config, &cfg, once, reenrol);
}

/* SPDX-License-Identifier: MIT */
/* msce-agent: thin main. Without options it is the daemon (agent/manager.h); --once restores
 * or enrols once and prints the non-secret profile; --check-config validates. */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>

#include "msce-config.h"

#include <systemd/sd-daemon.h>

#include "agent/journal.h"
#include "agent/config.h"
#include "agent/crypto.h"
#include "agent/custody.h"
#include "agent/enrol.h"
#include "agent/exit-codes.h"
#include "agent/manager.h"
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
               "       directory or keyring failure; retry later\n"
               "  %d  incompatible: the MEF accepted none of the TLS versions, suites or groups\n"
               "       offered\n"
               "  %d  rejected: the MEF refused the bootstrap credential or the request\n"
               "  %d  configuration or bootstrap credential missing, invalid or too widely readable\n",
               AGENT_CONFIG_DEFAULT, AGENT_EXIT_OK, AGENT_EXIT_USAGE, AGENT_EXIT_SOFTWARE, AGENT_EXIT_TRANSIENT,
               AGENT_EXIT_INCOMPATIBLE, AGENT_EXIT_REJECTED, AGENT_EXIT_CONFIG);
}

static int outcome_exit(outcome_t o) {
        switch (o) {
        case OUTCOME_OK:
                return AGENT_EXIT_OK;
        case OUTCOME_TRANSIENT:
                return AGENT_EXIT_TRANSIENT;
        case OUTCOME_REJECTED:
                return AGENT_EXIT_REJECTED;
        case OUTCOME_INCOMPATIBLE:
                return AGENT_EXIT_INCOMPATIBLE;
        case OUTCOME_CONFIG:
                return AGENT_EXIT_CONFIG;
        default:
                return AGENT_EXIT_SOFTWARE;
        }
}

static int custody_exit(custody_class_t c) {
        return c == CUSTODY_CONFIG ? AGENT_EXIT_CONFIG : AGENT_EXIT_TRANSIENT;
}

/* The non-secret parts only: never key bytes. */
static void profile_print(const agent_config_t *cfg, const stored_profile_t *p, seal_method_t method) {
        struct tm tm;
        char iso[32] = "";
        if (gmtime_r(&p->exp_t, &tm))
                strftime(iso, sizeof iso, "%Y-%m-%d %H:%M:%S UTC", &tm);

        printf("  node:          %s\n", p->node_id);
        printf("  CSE-ID:        %s\n", p->cse_id);
        printf("  CSEBase:       %s\n", p->cse_base);
        printf("  KeID:          %s\n", p->ke_id);
        printf("  expiry:        %s (%s)\n", iso, p->exp);
        printf("  poll:          %" PRIu32 " s\n", p->poll);
        for (size_t i = 0; i < p->n_targets; i++)
                printf("  target:        %s kpsaID %s\n", p->targets[i].id, p->targets[i].kpsa_id);
        printf("  sealed:        %s/%s (%s)\n", cfg->state_dir, SEAL_ENVELOPE_NAME,
               seal_method_to_string(method) ?: "?");
        printf("  keys:          keyring of user %s\n", cfg->service_user);
}

/* Restore first (no network); enrol only when there is no usable profile, or when asked to
 * (reenrol: the restored profile stays in place until the new one is stored). */
static int run_once(const agent_config_t *cfg, bool reenrol) {
        _cleanup_close_ int lock = -1;
        custody_info_t ci;
        int r = custody_lock(cfg, &lock, &ci);
        if (r < 0) {
                fprintf(stderr, "msce-agent: %s\n", ci.reason);
                return custody_exit(ci.cls);
        }

        _cleanup_(stored_profile_wipe) stored_profile_t p = {};
        r = custody_restore(cfg, &p, &ci);
        if (r == 0 && !reenrol) {
                printf("restored (KeID %s, no network needed)\n", p.ke_id);
                profile_print(cfg, &p, ci.method);
                return fflush(stdout) == 0 ? AGENT_EXIT_OK : AGENT_EXIT_SOFTWARE;
        }
        char prev[MSG_KEID_MAX + 1] = "";
        if (r == 0) {
                snprintf(prev, sizeof prev, "%s", p.ke_id);
                fprintf(stderr, "msce-agent: restored KeID %s; re-enrolling as asked\n", prev);
        } else if (custody_class_wants_enrol(ci.cls)) {
                fprintf(stderr, "msce-agent: cannot restore (%s): %s; enrolling with MEF %s\n",
                        custody_class_to_string(ci.cls), ci.reason, cfg->mef_uri);
                if (ci.cls == CUSTODY_EXPIRED) {
                        custody_info_t ri;
                        if (custody_remove(cfg, &ri) < 0)
                                fprintf(stderr, "msce-agent: removing the expired profile: %s\n", ri.reason);
                }
        } else {
                fprintf(stderr, "msce-agent: cannot restore the sealed profile (%s): %s\n",
                        custody_class_to_string(ci.cls), ci.reason);
                return custody_exit(ci.cls);
        }
        stored_profile_wipe(&p);
        r = custody_space_check(cfg, &ci);
        if (r < 0) {
                fprintf(stderr, "msce-agent: not enrolling: %s%s\n", ci.reason,
                        prev[0] ? "; the previous profile stays in place" : "");
                return custody_exit(ci.cls);
        }

        _cleanup_(stored_profile_wipe) stored_profile_t res;
        exchange_info_t info;
        const crypto_ops_t *ops;
        char err[256];
        r = crypto_ops_get(&ops, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "msce-agent: %s\n", err);
                return AGENT_EXIT_CONFIG;
        }
        r = ops->enrol_run(cfg, prev[0] ? prev : NULL, &res, &info);
        if (r < 0) {
                char retry[RETRY_AFTER_SENT_MAX + 64] = "";
                if (info.retry_after_sent[0])
                        snprintf(retry, sizeof retry, " (%s%s)", info.retry_after_sent,
                                 !info.has_retry_after ? ": ignored" : info.retry_after_capped ? ", capped at [timing] retry_after_max" : "");
                fprintf(stderr, "msce-agent: enrolment with MEF %s failed (%s): %s%s\n", cfg->mef_uri,
                        outcome_to_string(info.outcome) ?: "unknown", info.reason, retry);
                if (prev[0])
                        fprintf(stderr, "msce-agent: KeID %s stays in place\n", prev);
                return outcome_exit(info.outcome);
        }
        r = custody_store(cfg, &res, &p, &ci);
        if (r < 0) {
                if (ci.sealed)
                        fprintf(stderr, "msce-agent: enrolled as KeID %s and sealed the profile, but: %s "
                                "(the next start installs it)\n", res.ke_id, ci.reason);
                else
                        fprintf(stderr, "msce-agent: enrolled as KeID %s, but cannot keep the profile: %s%s\n",
                                res.ke_id, ci.reason, prev[0] ? "; the previous profile stays in place" : "");
                return custody_exit(ci.cls);
        }
        printf("enrolled with MEF %s\n", cfg->mef_uri);
        profile_print(cfg, &p, ci.method);
        printf("  long-term key: %s\n", info.ltk_transported ? "transported" : "derived (Ke)");
        printf("  TLS:           %s %s\n", info.tls_version, info.cipher);
        if (fflush(stdout) != 0) {
                fprintf(stderr, "msce-agent: cannot write to stdout: %m\n");
                return AGENT_EXIT_SOFTWARE;
        }
        return AGENT_EXIT_OK;
}

/* Fatal start-up errors: at err priority when stderr is the journal, so that
 * `journalctl -p err -u msce-agent` says why the unit exited 78. */
static void fatal(const char *msg) {
        fprintf(stderr, "%smsce-agent: %s\n", journal_stderr_is_journal() ? SD_ERR : "", msg);
}

static int run_daemon(const char *config, agent_config_t *cfg) {
        _cleanup_(manager_freep) manager_t *m = NULL;
        char err[1024] = "";
        int r = manager_new(config, cfg, &m, err, sizeof err);
        if (r < 0) {
                fatal(err[0] ? err : strerror(-r));
                return r == -EBUSY ? AGENT_EXIT_TRANSIENT : r == -ENOMEM ? AGENT_EXIT_SOFTWARE : AGENT_EXIT_CONFIG;
        }
        return manager_run(m);
}

int main(int argc, char *argv[]) {
        /* No core dumps or ptrace by other users of our uid: memory holds keys. */
        (void) prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
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
        if (once && check) {
                fprintf(stderr, "msce-agent: --once and --check-config exclude each other\n");
                return AGENT_EXIT_USAGE;
        }
        if (syntax_only && !check) {
                fprintf(stderr, "msce-agent: --syntax-only needs --check-config\n");
                return AGENT_EXIT_USAGE;
        }
        if (reenrol && !once) {
                fprintf(stderr, "msce-agent: --reenrol needs --once\n");
                return AGENT_EXIT_USAGE;
        }

        _cleanup_(agent_config_done) agent_config_t cfg = {};
        char err[1024];
        int r = agent_config_load(config, &cfg, err, sizeof err);
        if (r < 0) {
                fatal(err[0] ? err : strerror(-r));
                return r == -ENOMEM ? AGENT_EXIT_SOFTWARE : AGENT_EXIT_CONFIG;
        }
        /* Everything local first: an enrolment whose profile cannot be kept would leave an
         * active KeID at the MEF that no gateway holds. */
        custody_info_t ci;
        /* The daemon checks the same at its start, where it can say so in STATUS= and state.json. */
        cfg.check_only = check;
        r = syntax_only || (!check && !once) ? 0 : custody_preflight(&cfg, &ci);
        if (r < 0) {
                fatal(ci.reason);
                return ci.cls == CUSTODY_CONFIG ? AGENT_EXIT_CONFIG : AGENT_EXIT_SOFTWARE;
        }
        if (check) {
                agent_config_dump(&cfg, stdout);
                return fflush(stdout) == 0 ? AGENT_EXIT_OK : AGENT_EXIT_SOFTWARE;
        }
        if (once)
                return run_once(&cfg, reenrol);
        return run_daemon(config, &cfg);
}

/* SPDX-License-Identifier: MIT */
/* msce-mef: thin main. "serve" (the default) runs the MEF; everything else is mef/cli.c. */
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include "msce-config.h"

#include "mef/cli.h"
#include "mef/log.h"
#include "mef/mef-config.h"
#include "mef/metrics.h"
#include "mef/ops.h"
#include "mef/server.h"
#include "mef/store-open.h"
#include "mef/store.h"
#include "mef/workers.h"
#include "util/json-alloc.h"
#include "util/util.h"

static void store_closep(mef_store_t **s) {
        store_close(*s);
}

/* Opens (creating when missing) the store: 0, or the exit status after saying why not. */
static int serve_open_store(const mef_config_t *cfg, mef_store_t **ret) {
        store_reason_t why;
        char said[STORE_SAID_MAX];
        int r = mef_store_open(cfg, STORE_OPEN_CREATE, ret, &why);
        if (why.text[0] && r != -EPROTO && r != -EUSERS) {
                /* PostgreSQL refused the connection, or a statement of the open: its reason */
                log_error("store %s: %s%s", mef_store_name(cfg),
                          r == -EPROTONOSUPPORT ? "the schema is not the one this msce-mef knows: " : "",
                          store_strerror(r, &why, said));
                return MEF_EXIT_FAILURE;
        }
        if (r == -EBADMSG) {
                log_error("master key %s does not open store %s", cfg->master_key_path, mef_store_name(cfg));
                return MEF_EXIT_CONFIG;
        }
        char hint[PATH_MAX + 200];
        if (r == -EPERM) {
                log_error("store %s: %s", mef_store_name(cfg), mef_store_mode_hint(cfg, hint, sizeof hint));
                return MEF_EXIT_CONFIG;
        }
        if (r == -EPROTO) {
                log_error("store %s: %s", mef_store_name(cfg), store_said(said, sizeof said, STORE_POOLER_HINT, &why));
                return MEF_EXIT_FAILURE;
        }
        if ((r == -EACCES || r == -EROFS) && mef_store_access_hint(cfg, hint, sizeof hint)) {
                log_error("store %s: %s", mef_store_name(cfg), hint);
                return MEF_EXIT_FAILURE;
        }
        if (r == -EUCLEAN) {
                log_error("store %s: " STORE_DAMAGED_HINT, mef_store_name(cfg));
                return MEF_EXIT_FAILURE;
        }
        if (r == -EUSERS) {
                log_error("store %s: %s", mef_store_name(cfg), store_said(said, sizeof said, STORE_TOO_MANY_HINT, &why));
                return MEF_EXIT_FAILURE;
        }
        if (r == -EPROTONOSUPPORT) {
                log_error("store %s: schema written by a newer msce-mef", mef_store_name(cfg));
                return MEF_EXIT_FAILURE;
        }
        if (r < 0) {
                log_error_errno(r, "Failed to open store %s (master key %s): %m", mef_store_name(cfg),
                                cfg->master_key_path);
                return MEF_EXIT_FAILURE;
        }
        return 0;
}

/* Once a start (not per worker): what the store holds that can never work, for the operator. */
static void serve_check_store(const mef_config_t *cfg, mef_store_t *store) {
        char said[OPS_LONG_KPM_IDS_NAMED * (MSG_ID_MAX + 2) + 512];
        int r = ops_long_kpm_ids_said(store, said, sizeof said);
        if (r < 0)
                log_warning("store %s: cannot check the nodes' KpmIDs: %s", mef_store_name(cfg), strerror(-r));
        else if (r > 0)
                log_warning("store %s: %s", mef_store_name(cfg), said);
}

/* Made before any worker is forked: they all count into it (mef/metrics.h). NULL: off. */
static mef_metrics_t *metrics;

static int serve(const mef_config_t *cfg) {
        _cleanup_(store_closep) mef_store_t *store = NULL;
        int r = serve_open_store(cfg, &store);
        if (r != 0)
                return r;
        if (cfg->workers == 1) /* else the supervisor did */
                serve_check_store(cfg, store);
        char err[MEF_SERVER_ERR_MAX] = "";
        r = mef_server_run(cfg, store, metrics, err, sizeof err);
        if (r < 0) {
                if (err[0])
                        log_error_errno(r, "serve: %s", err);
                else
                        log_error_errno(r, "serve: %m");
                return MEF_EXIT_FAILURE;
        }
        return 0;
}

int main(int argc, char **argv) {
        /* no core dumps or ptrace by peers: this process holds the master key and node keys */
        (void) prctl(PR_SET_DUMPABLE, 0);
        json_alloc_install(); /* admin bodies (kpm, psk) and enrolment answers hold keys */
        /* wolfSSL writes without MSG_NOSIGNAL */
        signal(SIGPIPE, SIG_IGN);
        umask(0077);

        mef_cli_globals_t g;
        if (mef_cli_parse_globals(argc, argv, &g) < 0)
                return MEF_EXIT_USAGE;
        if (g.help) {
                mef_cli_usage(stdout);
                return 0;
        }
        if (g.version) {
                printf("msce-mef %s\n", PACKAGE_VERSION);
                return 0;
        }

        _cleanup_(mef_config_done) mef_config_t cfg = { 0 };
        char err[512] = "";
        int r = mef_config_load(g.config_path, &cfg, err, sizeof err);
        if (r < 0) {
                if (err[0])
                        log_error("configuration: %s", err);
                else
                        log_error_errno(r, "configuration %s: %m", g.config_path ?: MEF_CONFIG_DEFAULT);
                return MEF_EXIT_CONFIG;
        }

        if (g.command >= argc || streq(argv[g.command], "serve")) {
                if (g.command < argc - 1 && (streq(argv[g.command + 1], "--help") || streq(argv[g.command + 1], "-h"))) {
                        printf("Usage: msce-mef [--config FILE] serve\n\n"
                               "Run the MEF: serve the enrolment protocol on [server] listen until SIGTERM.\n"
                               "Creates the store and its master key when missing.\n");
                        return 0;
                }
                if (g.command < argc - 1) {
                        fprintf(stderr, "msce-mef: serve: unexpected argument '%s'\nTry 'msce-mef --help'.\n",
                                argv[g.command + 1]);
                        return MEF_EXIT_USAGE;
                }
                if (cfg.metrics_host) {
                        r = mef_metrics_new(&metrics);
                        if (r < 0) {
                                log_error_errno(r, "Failed to set up metrics: %m");
                                return MEF_EXIT_FAILURE;
                        }
                }
                if (cfg.workers == 1)
                        return serve(&cfg);
                /* create or check the store once, before the workers open their own connections */
                mef_store_t *store = NULL;
                r = serve_open_store(&cfg, &store);
                if (r == 0)
                        serve_check_store(&cfg, store);
                store_close(store);
                return r != 0 ? r : mef_workers_run(&cfg, metrics, serve);
        }
        return mef_cli_run(&cfg, argc, argv);
}

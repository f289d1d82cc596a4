/* SPDX-License-Identifier: MIT */
#pragma once
/* [server] workers = N|auto: N worker processes, each with its own listening socket on the same
 * address (SO_REUSEPORT: the kernel spreads connections over them), its own event loop and its
 * own store connection (the admin API and retention run in the first worker only), under a
 * supervisor that restarts a worker that dies and stops them all on SIGTERM/SIGINT. The supervisor tells systemd READY=1 once every worker listens, pings its
 * watchdog, and kills (to restart) a worker that stops pinging the supervisor within it, and
 * one not listening [server] worker_start_timeout after it started, watchdog or not. */

#include "mef/mef-config.h"
#include "mef/metrics.h"

/* One worker: serve cfg until SIGTERM, return the process exit status. Runs in a child. */
typedef int (*mef_worker_fn_t)(const mef_config_t *cfg);

/* How many workers cfg asks for: [server] workers, or the CPUs this process may run on (auto). */
unsigned mef_workers_count(const mef_config_t *cfg);

/* Supervise mef_workers_count(cfg) workers running fn until SIGTERM/SIGINT (a worker's exit 0
 * with one of those pending counts as that stop; one without is restarted). A listen or metrics port of 0 is resolved once here
 * (and printed as "listening on HOST:PORT", "metrics on HOST:PORT" when all listen) so that every
 * worker binds the same port; a port given is bound once without SO_REUSEPORT first, and one in
 * use fails the start. metrics (NULL: off), made before: each worker counts its open
 * connections in a slot of its own, cleared here when it dies (mef_metrics_use_slot()). Returns
 * the exit status: 0 after a clean stop, the status of a worker that failed before every worker
 * was listening, or MEF_EXIT_FAILURE. */
int mef_workers_run(const mef_config_t *cfg, mef_metrics_t *metrics, mef_worker_fn_t fn);

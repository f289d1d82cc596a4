/* SPDX-License-Identifier: MIT */
/* The worker supervisor (mef/workers.c) with worker functions of the test's own: a worker stuck
 * before READY=1 is killed after [server] worker_start_timeout, with no watchdog
 * (WATCHDOG_USEC unset), and the start fails. It waited for the worker for ever. */
#include <criterion/criterion.h>
#include <signal.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "mef/cli.h"
#include "mef/workers.h"
#include "util/util.h"

#define START_TIMEOUT_USEC (300u * 1000u)

/* Worker 1 (the supervisor leaves [admin] listen to it alone) says READY=1 and serves until
 * SIGTERM; the others hang in their setup, SIGTERM blocked as a worker's is until its loop
 * takes it (a store that never answers). */
static int worker_stuck_but_first(const mef_config_t *cfg) {
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        if (cfg->admin_host) {
                (void) sd_notify(0, "READY=1");
                int sig = 0;
                (void) sigwait(&term, &sig);
                return 0;
        }
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL); /* should the test give up on the supervisor */
        for (;;)
                pause();
}

Test(mef_workers, stuck_before_ready_is_killed_without_watchdog, .timeout = 30) {
        cr_assert_eq(unsetenv("WATCHDOG_USEC"), 0);
        cr_assert_eq(unsetenv("NOTIFY_SOCKET"), 0);
        mef_config_t cfg = {
                .workers = 2,
                .worker_start_timeout_usec = START_TIMEOUT_USEC,
                .admin_host = (char *) "worker-1",
        };
        uint64_t t0 = now_usec();
        int status = mef_workers_run(&cfg, NULL, worker_stuck_but_first);
        uint64_t took = now_usec() - t0;
        cr_assert_eq(status, MEF_EXIT_FAILURE, "a worker not listening in time fails the start");
        cr_assert_geq(took, START_TIMEOUT_USEC, "killed before its time: %llu us", (unsigned long long) took);
        cr_assert_lt(took, 10u * 1000u * 1000u, "took %llu us", (unsigned long long) took);
}

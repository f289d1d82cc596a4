/* SPDX-License-Identifier: MIT */
/* The worker supervisor (mef/workers.c) with worker functions of the test's own: a worker stuck
 * before READY=1 is killed after [server] worker_start_timeout, with no watchdog
 * (WATCHDOG_USEC unset), and the start fails (it waited for the worker for ever); a worker's
 * exit 0 is a stop, during the start or after it; the workers' notification socket is private. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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

/* The supervisor's own READY=1 (it announces once every worker listens) goes to a socket of the
 * test's (NOTIFY_SOCKET of the test process): workers inherit it and wait there for the start
 * to be over. */
static int announced_fd = -1;
static char announced_dir[] = "/tmp/test-mef-workers-XXXXXX";
static struct sockaddr_un announced_sa = { .sun_family = AF_UNIX };

static void announced_socket(void) {
        cr_assert_not_null(mkdtemp(announced_dir));
        snprintf(announced_sa.sun_path, sizeof announced_sa.sun_path, "%s/notify", announced_dir);
        announced_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(announced_fd, 0);
        cr_assert_eq(bind(announced_fd, (struct sockaddr *) &announced_sa, sizeof announced_sa), 0);
        cr_assert_eq(setenv("NOTIFY_SOCKET", announced_sa.sun_path, 1), 0);
}

/* each test runs in a process of its own: the one that made the socket removes it */
static void announced_done(void) {
        if (announced_fd < 0)
                return;
        close(announced_fd);
        (void) unlink(announced_sa.sun_path);
        (void) rmdir(announced_dir);
}

TestSuite(mef_workers, .fini = announced_done);

/* In a worker: until the supervisor said READY=1 (its datagram holds more: STATUS=) */
static void wait_announced(void) {
        for (;;) {
                char buf[512];
                ssize_t n = recv(announced_fd, buf, sizeof buf - 1, 0);
                if (n < 0)
                        _exit(90);
                buf[n] = 0;
                if (strstr(buf, "READY=1"))
                        return;
        }
}

/* Two workers, the first with [admin] listen (as the supervisor leaves it to worker 1 alone):
 * the supervisor's exit status. */
static int run_two(mef_worker_fn_t fn) {
        mef_config_t cfg = {
                .workers = 2,
                .worker_start_timeout_usec = 20u * 1000u * 1000u,
                .admin_host = (char *) "worker-1",
        };
        return mef_workers_run(&cfg, NULL, fn);
}

static int wait_sigterm(void) {
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        int sig = 0;
        (void) sigwait(&term, &sig);
        return 0;
}

/* systemctl stop as worker 1 sees it: SIGTERM reaches every process of the service, the
 * supervisor (pending there until its loop reads it) and this worker, which exits 0. */
static int stopped_by_systemctl(void) {
        (void) kill(getppid(), SIGTERM);
        return 0;
}

/* Worker 1 stops before it listens; worker 2 listens and waits for SIGTERM. A stop, not a failed
 * start: the supervisor stops worker 2 and exits 0 (it said "exited with status 0 before all
 * workers were listening" and exited 1 when the worker's exit came in first). */
static int worker_first_stops_early(const mef_config_t *cfg) {
        if (cfg->admin_host)
                return stopped_by_systemctl();
        (void) sd_notify(0, "READY=1");
        return wait_sigterm();
}

Test(mef_workers, clean_exit_during_start_is_a_stop, .timeout = 30) {
        cr_assert_eq(unsetenv("WATCHDOG_USEC"), 0);
        cr_assert_eq(unsetenv("NOTIFY_SOCKET"), 0);
        cr_assert_eq(run_two(worker_first_stops_early), 0);
}

/* The state letter of pid in /proc/PID/stat ('T' stopped, 'Z' exited and not reaped), 0 gone */
static char proc_state(pid_t pid) {
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
        if (fd >= 0)
                close(fd);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        const char *p = strrchr(buf, ')');
        return p && p[1] == ' ' ? p[2] : 0;
}

/* systemctl stop with the supervisor descheduled: worker 1's exit 0 and then the supervisor's
 * SIGTERM come in while it does not run (SIGSTOP, then SIGCONT), so its loop finds both pending
 * in one iteration, the exit first. sd-event had read the signal by then (sigpending() empty):
 * the exit was taken for a failed start (exit 1) unless the stop signal is dispatched first. A
 * grandchild sends the signal once worker 1 is a zombie, then wakes the supervisor. */
static int worker_first_exits_then_stop_arrives(const mef_config_t *cfg) {
        if (!cfg->admin_host) {
                (void) sd_notify(0, "READY=1");
                return wait_sigterm();
        }
        pid_t sup = getppid(), self = getpid();
        if (kill(sup, SIGSTOP) < 0)
                return 6;
        while (proc_state(sup) != 'T')
                (void) usleep(1000); /* a condition polled, not a delay */
        pid_t helper = fork();
        if (helper < 0)
                return 7;
        if (helper == 0) {
                while (proc_state(self) != 'Z')
                        (void) usleep(1000);
                (void) kill(sup, SIGTERM);
                (void) kill(sup, SIGCONT);
                _exit(0);
        }
        return 0;
}

Test(mef_workers, clean_exit_then_stop_in_one_iteration_is_a_stop, .timeout = 30) {
        cr_assert_eq(unsetenv("WATCHDOG_USEC"), 0);
        cr_assert_eq(unsetenv("NOTIFY_SOCKET"), 0);
        cr_assert_eq(run_two(worker_first_exits_then_stop_arrives), 0);
}

/* The same once every worker listens: worker 1 stops after the supervisor's READY=1. The
 * supervisor stops (it restarted worker 1 "after it died", again and again). */
static int worker_first_stops_after_start(const mef_config_t *cfg) {
        (void) sd_notify(0, "READY=1");
        if (!cfg->admin_host)
                return wait_sigterm();
        wait_announced();
        return stopped_by_systemctl();
}

Test(mef_workers, clean_exit_after_start_is_a_stop, .timeout = 30) {
        cr_assert_eq(unsetenv("WATCHDOG_USEC"), 0);
        announced_socket();
        cr_assert_eq(run_two(worker_first_stops_after_start), 0);
}

/* The workers' NOTIFY_SOCKET is a path in a directory only this user may enter: an abstract
 * socket ("@...", as it was) has no permission check, and any local user could flood it. */
static int worker_checks_notify_socket(const mef_config_t *cfg) {
        const char *path = getenv("NOTIFY_SOCKET");
        if (!path || path[0] != '/')
                return 3;
        char dir[108];
        snprintf(dir, sizeof dir, "%s", path);
        *strrchr(dir, '/') = 0;
        struct stat st;
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 07777) != 0700 || st.st_uid != geteuid())
                return 4;
        return worker_first_stops_after_start(cfg);
}

Test(mef_workers, notify_socket_is_private, .timeout = 30) {
        cr_assert_eq(unsetenv("WATCHDOG_USEC"), 0);
        announced_socket();
        cr_assert_eq(run_two(worker_checks_notify_socket), 0);
}

/* A worker that exits 0 with no stop of the service (its own SIGTERM: kill PID by an operator)
 * is restarted like any other death, not taken for a stop: that would leave the MEF down, exit 0,
 * which systemd's Restart=on-failure does not restart. Worker 1 exits 0 after the start (leaving
 * a mark); its second run, restarted, takes the mark away and stops the service. */
static void restarted_mark(char path[PATH_MAX]) {
        snprintf(path, PATH_MAX, "%s/first-run", announced_dir);
}

static int worker_first_exits_then_stops(const mef_config_t *cfg) {
        char mark[PATH_MAX];
        restarted_mark(mark);
        (void) sd_notify(0, "READY=1");
        if (!cfg->admin_host)
                return wait_sigterm();
        if (unlink(mark) == 0)
                return stopped_by_systemctl(); /* the restarted run */
        wait_announced();
        int fd = open(mark, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return 5;
        close(fd);
        return 0; /* the first run: exits 0 on its own */
}

Test(mef_workers, clean_exit_without_a_stop_is_restarted, .timeout = 30) {
        cr_assert_eq(unsetenv("WATCHDOG_USEC"), 0);
        announced_socket();
        cr_assert_eq(run_two(worker_first_exits_then_stops), 0);
        char mark[PATH_MAX];
        restarted_mark(mark);
        bool not_restarted = access(mark, F_OK) == 0;
        (void) unlink(mark);
        cr_assert(!not_restarted, "worker 1 exited 0 on its own and was not run again");
}

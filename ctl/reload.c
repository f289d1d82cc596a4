/* SPDX-License-Identifier: MIT */
/* mscectl reload: SIGHUP to the agent, then wait until it says in state.json that a reload begun
 * after this run looked is complete, and fail when it refused the configuration ("reload_error").
 * It is msce-agent.service's ExecReload=, so that systemctl reload returns when the reload is done
 * and fails when it was refused (Type=notify-reload needs systemd 253 and never fails a reload).
 *
 * Which reload: the agent numbers them as they begin ("reloads_begun", written before it reads
 * the files) and names the newest complete one ("reload_done"). A run that read number B waits
 * for reload_done > B: that reload began after the run started, so it read the files as the
 * operator left them, whoever's SIGHUP started it. Counting completions instead ("reloads", all an
 * older agent writes) returns on a reload begun before, when another one (a second operator's,
 * a kill -HUP) completes between this run's look and its signal. */
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>

#include "ctl/mscectl.h"
#include "util/util.h"

#define RELOAD_TIMEOUT_DEFAULT 90u /* s: restoring the sealed profile takes seconds at most */
#define RELOAD_TIMEOUT_MAX 3600u

/* state.json again, quietly (a reader between two writes sees the old file or the new one). */
static int state_reload(const char *dir, ctl_state_t *s) {
        char err[256];
        ctl_state_done(s);
        return ctl_runtime_load(dir, s, NULL, NULL, err, sizeof err);
}

/* Wait for something in dir to change (or timeout_ms): on ifd when there is one, else a pause. */
static void dir_wait(int ifd, int timeout_ms) {
        struct pollfd p = { .fd = ifd, .events = POLLIN };
        if (ifd < 0)
                timeout_ms = MIN(timeout_ms, 100);
        if (poll(&p, ifd >= 0, timeout_ms) > 0) {
                char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
                while (read(ifd, buf, sizeof buf) > 0) {
                }
        }
}

int cmd_reload(const globals_t *g, int argc, char **argv) {
        static const struct option opts[] = {
                { "pid", required_argument, NULL, 'p' },
                { "timeout", required_argument, NULL, 't' },
                {},
        };
        unsigned long long v, timeout = RELOAD_TIMEOUT_DEFAULT;
        pid_t pid = 0;
        int o;
        while ((o = getopt_long(argc, argv, "+:", opts, NULL)) >= 0)
                switch (o) {
                case 'p':
                        if (parse_uint(optarg, INT_MAX, &v) < 0 || v == 0)
                                return usage_error("reload: --pid: '%s' is not a process ID", optarg);
                        pid = (pid_t) v;
                        break;
                case 't':
                        if (parse_uint(optarg, RELOAD_TIMEOUT_MAX, &timeout) < 0 || timeout == 0)
                                return usage_error("reload: --timeout: '%s' is not a number of seconds (1..%u)",
                                                   optarg, RELOAD_TIMEOUT_MAX);
                        break;
                default:
                        return option_error("reload", o, argv);
                }
        if (optind < argc)
                return usage_error("reload: unexpected argument '%s'", argv[optind]);

        _cleanup_free_ char *dir = NULL;
        char why[1024];
        if (runtime_dir_get(g, &dir, why, sizeof why) < 0)
                return EXIT_FAILURE;
        if (why[0])
                fprintf(stderr, "mscectl: %s; reading %s\n", why, dir);
        /* Watch before reading the count: no write after it goes unnoticed. */
        _cleanup_close_ int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ifd >= 0 && inotify_add_watch(ifd, dir, IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
                close(ifd);
                ifd = -1; /* dir_wait() pauses instead */
        }

        _cleanup_(ctl_state_done) ctl_state_t s = {};
        int r = state_load(dir, &s);
        if (r < 0)
                return EXIT_FAILURE;
        if (pid == 0)
                pid = r > 0 ? s.pid : 0;
        if (pid == 0 || ctl_agent_alive(pid) == CTL_AGENT_GONE) {
                fprintf(stderr, "mscectl: msce-agent is not running (see mscectl status)\n");
                return EXIT_NOT_RUNNING;
        }
        if (r == 0 || s.pid != pid) {
                /* Not signalled: nothing changes. The causes: the configuration (read for
                 * runtime_dir) does not load, so the default was read, or it names another
                 * runtime_dir than the agent's, which it refuses on reload. */
                char hint[sizeof why + 256];
                if (why[0])
                        snprintf(hint, sizeof hint,
                                 "the configuration does not load (%s), so %s was read: give the agent's runtime "
                                 "directory with --runtime-dir, also in ExecReload= where [seal] runtime_dir is "
                                 "not %s",
                                 why, dir, CTL_RUNTIME_DIR_DEFAULT);
                else
                        snprintf(hint, sizeof hint,
                                 "if [seal] runtime_dir changed since the agent started: that takes a restart, "
                                 "systemctl restart msce-agent");
                fprintf(stderr,
                        "mscectl: %s/%s does not name msce-agent pid %d: cannot tell when it has reloaded, not "
                        "signalled (%s)\n",
                        dir, CTL_STATE_FILE, (int) pid, hint);
                return EXIT_FAILURE;
        }
        long long before = s.reloads, begun = s.reloads_begun;
        if (kill(pid, SIGHUP) < 0) {
                fprintf(stderr, "mscectl: cannot signal msce-agent (pid %d): %m%s\n", (int) pid,
                        errno == EPERM ? " (run as root)" : "");
                return EXIT_FAILURE;
        }
        if (before < 0) {
                printf("Asked msce-agent (pid %d) to reload; it does not say when it is done (an older agent).\n",
                       (int) pid);
                return EXIT_SUCCESS;
        }

        usec_t deadline = now_usec() + timeout * USEC_PER_SEC;
        for (;;) {
                if (state_reload(dir, &s) == 0 && s.pid == pid &&
                    (begun >= 0 ? s.reload_done > begun : s.reloads > before))
                        break;
                if (ctl_agent_alive(pid) == CTL_AGENT_GONE) {
                        fprintf(stderr, "mscectl: msce-agent (pid %d) stopped during the reload (see mscectl status)\n",
                                (int) pid);
                        return EXIT_FAILURE;
                }
                usec_t now = now_usec();
                if (now >= deadline) {
                        fprintf(stderr, "mscectl: msce-agent (pid %d) has not completed the reload in %llu s (see mscectl status)\n",
                                (int) pid, timeout);
                        return EXIT_FAILURE;
                }
                /* at least once a second: the agent may have stopped without a word */
                dir_wait(ifd, (int) MIN((deadline - now + 999) / 1000, 1000));
        }
        if (s.reload_error) {
                fprintf(stderr, "mscectl: reload refused, previous configuration kept: %s\n", s.reload_error);
                return EXIT_FAILURE;
        }
        printf("msce-agent (pid %d) reloaded its configuration: %s\n", (int) pid, s.status ?: s.state);
        return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

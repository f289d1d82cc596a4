/* SPDX-License-Identifier: MIT */
/* The keyring tests' main: it creates the two system users of the run (test-user.sh) before the
 * tests and removes them after, also on a timeout's SIGTERM or ^C. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>

#include "tests/integration/keyring-users.h"
#include "util/util.h"

extern char **environ;

static char user_sh[4096], user_cse[33], user_other[33];
static pid_t runner_pid;

/* sh test-user.sh ARGS...; async-signal-safe (fork, execve, waitpid) for users_del_on_signal. */
static int user_sh_run(char *const argv[]) {
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDOUT_FILENO);
                execve("/bin/sh", argv, environ);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void users_del(void) {
        if (!user_cse[0])
                return;
        char *argv[] = { "sh", user_sh, "del", user_cse, user_other, NULL };
        (void) user_sh_run(argv);
        user_cse[0] = '\0';
}

/* A timeout's SIGTERM, or ^C: remove the users before dying (SIGKILL leaves them to the next
 * test-user.sh add, which removes the users of runs that are gone). */
static void users_del_on_signal(int sig) {
        if (getpid() == runner_pid)
                users_del();
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Why there are no users, for the tests to report; skip: the machine lacks what they need. */
static void users_none(bool skip, const char *why) {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s%s", skip ? "skip:" : "fail:", why);
        setenv(ENV_NO_USERS, buf, 1);
}

static void users_add(void) {
        const char *sh = getenv(ENV_USER_SH);
        if (geteuid() != 0) {
                users_none(true, "needs root (persistent keyrings of other users, keyctl_chown)");
                return;
        }
        if (!sh || snprintf(user_sh, sizeof(user_sh), "%s", sh) >= (int) sizeof(user_sh)) {
                users_none(false, ENV_USER_SH " (the path of test-user.sh) is not set: run through meson");
                return;
        }
        if (access("/usr/sbin/useradd", X_OK) < 0) {
                users_none(true, "useradd is missing: cannot create the test users");
                return;
        }
        runner_pid = getpid();
        char pid[16], cse[sizeof(user_cse)], other[sizeof(user_other)];
        snprintf(pid, sizeof(pid), "%d", (int) runner_pid);
        snprintf(cse, sizeof(cse), "msce-t%s-kr", pid);
        snprintf(other, sizeof(other), "msce-t%s-kr2", pid);
        struct sigaction sa = { .sa_handler = users_del_on_signal };
        int sigs[] = { SIGTERM, SIGINT, SIGHUP };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaction(sigs[i], &sa, NULL);
        char *add_cse[] = { "sh", user_sh, "add", pid, "kr", NULL };
        char *add_other[] = { "sh", user_sh, "add", pid, "kr2", NULL };
        /* the names before the users: a signal from here on removes what exists of them */
        memcpy(user_cse, cse, sizeof(cse));
        memcpy(user_other, other, sizeof(other));
        if (user_sh_run(add_cse) != 0 || user_sh_run(add_other) != 0) {
                users_del();
                users_none(false, "test-user.sh add failed: cannot create the test users");
                return;
        }
        char both[sizeof(cse) + sizeof(other)];
        snprintf(both, sizeof(both), "%s %s", cse, other);
        setenv(ENV_USERS, both, 1);
}

int main(int argc, char *argv[]) {
        struct criterion_test_set *tests = criterion_initialize();
        int r = 0;
        if (criterion_handle_args(argc, argv, true)) {
                users_add();
                r = !criterion_run_all_tests(tests);
                users_del();
        }
        criterion_finalize(tests);
        return r;
}

/* SPDX-License-Identifier: MIT */
/* Peak resident set size (VmHWM) of one run of a program: fork, exec, wait4, ru_maxrss.
 *   peak-rss [-o FILE] PROGRAM [ARGS...]
 * The program's stdout and stderr go to FILE (default /dev/null). Prints
 * "<peak KiB> <exit status> <wall ms>" and exits 0 only when the program exited 0.
 * Used by bench-enrol.sh (meson test -C BUILD --benchmark --suite bench -v). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int main(int argc, char **argv) {
        const char *out = "/dev/null";
        int first = 1;
        if (argc > 2 && strcmp(argv[1], "-o") == 0) {
                out = argv[2];
                first = 3;
        }
        if (first >= argc) {
                fprintf(stderr, "usage: %s [-o FILE] PROGRAM [ARGS...]\n", argv[0]);
                return 2;
        }
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) {
                perror(out);
                return 2;
        }
        uint64_t t0 = now_us();
        pid_t pid = fork();
        if (pid < 0) {
                perror("fork");
                return 2;
        }
        if (pid == 0) {
                if (dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
                        _exit(127);
                execv(argv[first], argv + first);
                _exit(127);
        }
        close(fd);
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) < 0) {
                perror("wait4");
                return 2;
        }
        uint64_t us = now_us() - t0;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        /* ru_maxrss: KiB on Linux, the child's high-water mark (not ours: we never touch much) */
        printf("%ld %d %.1f\n", ru.ru_maxrss, code, us / 1000.0);
        return code == 0 ? 0 : 1;
}

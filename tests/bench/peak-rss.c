/* SPDX-License-Identifier: MIT */
/* Peak resident set size (VmHWM) of one run of a program: fork, exec, wait4, ru_maxrss.
 *   peak-rss [-o FILE] [-m] PROGRAM [ARGS...]
 * The program's stdout and stderr go to FILE (default /dev/null). Prints
 * "<peak KiB> <exit status> <wall ms>" and exits 0 only when the program exited 0.
 * -m: also print, from /proc/PID/smaps at the program's exit (stopped there with
 * PTRACE_O_TRACEEXIT; root can do that to a non-dumpable process), its RSS by mapping
 * (library, [heap], ...), largest first: what the peak is made of.
 * Used by bench-enrol.sh (meson test -C BUILD --benchmark --suite bench -v enrol). */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAPS_MAX 256

typedef struct mapping {
        char name[64];
        long rss_kib;
        long anon_kib;
} mapping_t;

static uint64_t now_us(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

static int cmp_rss(const void *a, const void *b) {
        const mapping_t *x = a, *y = b;
        return (x->rss_kib < y->rss_kib) - (x->rss_kib > y->rss_kib);
}

/* Sum Rss and Anonymous per mapped file (basename) or pseudo-name, print the largest. */
static void smaps_print(pid_t pid) {
        static mapping_t maps[MAPS_MAX];
        size_t n = 0;
        char path[64], line[512], cur[64] = "";
        snprintf(path, sizeof path, "/proc/%d/smaps", (int) pid);
        FILE *f = fopen(path, "re");
        if (!f) {
                perror(path);
                return;
        }
        while (fgets(line, sizeof line, f)) {
                unsigned long lo, hi;
                long kib;
                int off = 0;
                if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) == 2 && off > 0) {
                        char *name = line + off, *nl = strchr(name, '\n'), *slash;
                        if (nl)
                                *nl = 0;
                        slash = strrchr(name, '/');
                        snprintf(cur, sizeof cur, "%s", *name ? (slash ? slash + 1 : name) : "[anon]");
                        continue;
                }
                bool rss = sscanf(line, "Rss: %ld kB", &kib) == 1;
                bool anon = !rss && sscanf(line, "Anonymous: %ld kB", &kib) == 1;
                if (!rss && !anon)
                        continue;
                size_t i = 0;
                while (i < n && strcmp(maps[i].name, cur) != 0)
                        i++;
                if (i == n) {
                        if (n == MAPS_MAX)
                                continue;
                        snprintf(maps[n++].name, sizeof maps[0].name, "%s", cur);
                }
                if (rss)
                        maps[i].rss_kib += kib;
                else
                        maps[i].anon_kib += kib;
        }
        fclose(f);
        qsort(maps, n, sizeof maps[0], cmp_rss);
        long total = 0;
        for (size_t i = 0; i < n; i++)
                total += maps[i].rss_kib;
        printf("  RSS at exit %ld KiB:", total);
        for (size_t i = 0; i < n && maps[i].rss_kib >= 64; i++)
                printf(" %s %ld", maps[i].name, maps[i].rss_kib);
        printf(" (KiB; mappings under 64 KiB left out)\n");
        long anon = 0;
        for (size_t i = 0; i < n; i++)
                anon += maps[i].anon_kib;
        printf("  of which anonymous (heap, stack, relocated data) %ld KiB\n", anon);
}

int main(int argc, char **argv) {
        const char *out = "/dev/null";
        bool maps = false;
        int first = 1;
        for (; first < argc && argv[first][0] == '-'; first++) {
                if (strcmp(argv[first], "-o") == 0 && first + 1 < argc)
                        out = argv[++first];
                else if (strcmp(argv[first], "-m") == 0)
                        maps = true;
                else
                        break;
        }
        if (first >= argc) {
                fprintf(stderr, "usage: %s [-o FILE] [-m] PROGRAM [ARGS...]\n", argv[0]);
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
                if (maps && ptrace(PTRACE_TRACEME, 0, NULL, NULL) < 0)
                        _exit(127);
                execv(argv[first], argv + first);
                _exit(127);
        }
        close(fd);
        int status = 0;
        struct rusage ru;
        bool reaped = false;
        if (maps && wait4(pid, &status, 0, &ru) == pid) {
                /* stopped at exec: ask for a stop at exit and follow it there (bounded: each stop
                 * is a signal passed on, the exit event, or the end) */
                reaped = !WIFSTOPPED(status);
                int sig = 0;
                for (unsigned i = 0; i < 100000 && !reaped; i++) {
                        if ((i == 0 && ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *) (long) PTRACE_O_TRACEEXIT) < 0) ||
                            ptrace(PTRACE_CONT, pid, NULL, (void *) (long) sig) < 0 || wait4(pid, &status, 0, &ru) != pid)
                                break;
                        reaped = !WIFSTOPPED(status);
                        if (!reaped && status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
                                smaps_print(pid);
                                (void) ptrace(PTRACE_DETACH, pid, NULL, NULL);
                                break;
                        }
                        sig = !reaped && WSTOPSIG(status) != SIGTRAP ? WSTOPSIG(status) : 0;
                }
        }
        if (!reaped && wait4(pid, &status, 0, &ru) < 0) {
                perror("wait4");
                return 2;
        }
        uint64_t us = now_us() - t0;
        int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        /* ru_maxrss: KiB on Linux, the child's high-water mark (not ours: we never touch much) */
        printf("%ld %d %.1f\n", ru.ru_maxrss, code, us / 1000.0);
        return code == 0 ? 0 : 1;
}

/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/journal.h"

/* criterion runs each test in a process of its own: changing stderr and the environment
 * here does not leak into other tests. */
static void stderr_to(const char *path) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
        close(fd);
}

static void stream_of(int fd, char out[64]) {
        struct stat st;
        cr_assert_eq(fstat(fd, &st), 0);
        snprintf(out, 64, "%llu:%llu", (unsigned long long) st.st_dev, (unsigned long long) st.st_ino);
}

Test(journal, unset) {
        unsetenv("JOURNAL_STREAM");
        cr_assert_not(journal_stderr_is_journal());
}

Test(journal, matches_stderr) {
        stderr_to("/dev/null");
        char v[64];
        stream_of(STDERR_FILENO, v);
        cr_assert_eq(setenv("JOURNAL_STREAM", v, 1), 0);
        cr_assert(journal_stderr_is_journal());
}

Test(journal, inherited_but_stale) {
        /* a child whose stderr was redirected after systemd set JOURNAL_STREAM */
        char v[64];
        int fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        stream_of(fd, v);
        close(fd);
        stderr_to("/dev/null");
        cr_assert_eq(setenv("JOURNAL_STREAM", v, 1), 0);
        cr_assert_not(journal_stderr_is_journal());
}

Test(journal, garbage) {
        static const char *const bad[] = { "", "x", "1", ":", "1:x" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                cr_assert_eq(setenv("JOURNAL_STREAM", bad[i], 1), 0);
                cr_assert_not(journal_stderr_is_journal(), "'%s'", bad[i]);
        }
}

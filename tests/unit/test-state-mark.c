/* SPDX-License-Identifier: MIT */
/* agent/enrol-mark.c: the mark of an enrolment under way, in a temporary directory: set (mode
 * 0600, no temporary left), seen, cleared, cleared again (no privileges). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/enrol-mark.h"
#include "util/util.h"

static char dir[64];

static void setup(void) {
        cr_assert_not_null(mkdtemp(strcpy(dir, "/tmp/test-enrol-mark-XXXXXX")));
}

static void teardown(void) {
        (void) enrol_mark_clear(dir);
        (void) rmdir(dir);
}

TestSuite(enrol_mark, .init = setup, .fini = teardown);

static unsigned entries(void) {
        unsigned n = 0;
        DIR *d = opendir(dir);
        cr_assert_not_null(d);
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

Test(enrol_mark, set_present_clear) {
        cr_assert_not(enrol_mark_present(dir));
        cr_assert_eq(enrol_mark_clear(dir), 0); /* none: fine */

        cr_assert_eq(enrol_mark_set(dir), 0);
        cr_assert(enrol_mark_present(dir));
        char path[PATH_MAX];
        struct stat st;
        cr_assert_eq(path_join(dir, ENROL_MARK_NAME, path), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(entries(), 1); /* no temporary left */

        cr_assert_eq(enrol_mark_set(dir), 0); /* again: still one */
        cr_assert_eq(entries(), 1);

        cr_assert_eq(enrol_mark_clear(dir), 0);
        cr_assert_not(enrol_mark_present(dir));
        cr_assert_eq(entries(), 0);
}

Test(enrol_mark, unreadable_counts_as_there) {
        /* a directory that cannot be looked into (not ENOENT): one status check too many beats a
         * retired KeID kept for a poll interval */
        char sub[PATH_MAX];
        cr_assert_eq(path_join(dir, "file", sub), 0);
        FILE *f = fopen(sub, "we");
        cr_assert_not_null(f);
        fclose(f);
        cr_assert(enrol_mark_present(sub)); /* ENOTDIR */
        cr_assert_lt(enrol_mark_set(sub), 0);
        cr_assert_eq(unlink(sub), 0);
}

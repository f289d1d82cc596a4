/* SPDX-License-Identifier: MIT */
/* agent/state-mark.c: the marks in the state directory, in a temporary directory: set (mode
 * 0600, no temporary left), seen, read back, cleared, cleared again (no privileges). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/state-mark.h"
#include "util/util.h"

static char dir[64];

static void setup(void) {
        cr_assert_not_null(mkdtemp(strcpy(dir, "/tmp/test-state-mark-XXXXXX")));
}

static void teardown(void) {
        (void) state_mark_clear(dir, ENROL_MARK_NAME);
        (void) state_mark_clear(dir, REVOKED_MARK_NAME);
        (void) rmdir(dir);
}

TestSuite(state_mark, .init = setup, .fini = teardown);

static unsigned entries(void) {
        unsigned n = 0;
        DIR *d = opendir(dir);
        cr_assert_not_null(d);
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

Test(state_mark, set_present_clear) {
        cr_assert_not(state_mark_present(dir, ENROL_MARK_NAME));
        cr_assert_eq(state_mark_clear(dir, ENROL_MARK_NAME), 0); /* none: fine */

        cr_assert_eq(state_mark_set(dir, ENROL_MARK_NAME, NULL), 0);
        cr_assert(state_mark_present(dir, ENROL_MARK_NAME));
        cr_assert_not(state_mark_present(dir, REVOKED_MARK_NAME)); /* each its own */
        char path[PATH_MAX];
        struct stat st;
        cr_assert_eq(path_join(dir, ENROL_MARK_NAME, path), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(entries(), 1); /* no temporary left */

        cr_assert_eq(state_mark_set(dir, ENROL_MARK_NAME, NULL), 0); /* again: still one */
        cr_assert_eq(entries(), 1);

        cr_assert_eq(state_mark_clear(dir, ENROL_MARK_NAME), 0);
        cr_assert_not(state_mark_present(dir, ENROL_MARK_NAME));
        cr_assert_eq(entries(), 0);
}

Test(state_mark, read_back) {
        time_t t = 1, before = time(NULL);
        char text[64] = "untouched";
        cr_assert_eq(state_mark_read(dir, REVOKED_MARK_NAME, &t, text, sizeof text), -ENOENT);
        cr_assert_eq(t, 1);
        cr_assert_str_eq(text, "untouched");

        cr_assert_eq(state_mark_set(dir, REVOKED_MARK_NAME, "00aa@mef\nhttps://mef/msce\n"), 0);
        cr_assert_eq(state_mark_read(dir, REVOKED_MARK_NAME, &t, text, sizeof text), 0);
        cr_assert(t >= before && t <= time(NULL));
        cr_assert_str_eq(text, "00aa@mef\nhttps://mef/msce\n");
        cr_assert_eq(state_mark_read(dir, REVOKED_MARK_NAME, &t, text, 5), 0); /* cut */
        cr_assert_str_eq(text, "00aa");

        cr_assert_eq(state_mark_set(dir, ENROL_MARK_NAME, NULL), 0); /* the time alone */
        cr_assert_eq(state_mark_read(dir, ENROL_MARK_NAME, &t, text, sizeof text), 0);
        cr_assert_str_eq(text, "");

        /* not written by state_mark_set(): a first line that is not a time */
        char path[PATH_MAX];
        cr_assert_eq(path_join(dir, REVOKED_MARK_NAME, path), 0);
        cr_assert_eq(file_write_atomic(path, "revoked\n", 8, 0600), 0);
        t = 1;
        cr_assert_eq(state_mark_read(dir, REVOKED_MARK_NAME, &t, text, sizeof text), -EBADMSG);
        cr_assert_eq(t, 1);
        cr_assert(state_mark_present(dir, REVOKED_MARK_NAME));
}

Test(state_mark, unreadable_counts_as_there) {
        /* a directory that cannot be looked into (not ENOENT): one status check too many beats a
         * retired KeID kept for a poll interval */
        char sub[PATH_MAX];
        cr_assert_eq(path_join(dir, "file", sub), 0);
        FILE *f = fopen(sub, "we");
        cr_assert_not_null(f);
        fclose(f);
        cr_assert(state_mark_present(sub, ENROL_MARK_NAME)); /* ENOTDIR */
        cr_assert_lt(state_mark_set(sub, ENROL_MARK_NAME, NULL), 0);
        cr_assert_eq(unlink(sub), 0);
}

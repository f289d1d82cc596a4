/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "agent/enrol-mark.h"
#include "util/util.h"

int enrol_mark_set(const char *state_dir) {
        char path[PATH_MAX], text[32];
        int r = path_join(state_dir, ENROL_MARK_NAME, path);
        if (r < 0)
                return r;
        int len = snprintf(text, sizeof text, "%lld\n", (long long) time(NULL));
        return file_write_atomic(path, text, (size_t) len, 0600);
}

int enrol_mark_clear(const char *state_dir) {
        char path[PATH_MAX];
        int r = path_join(state_dir, ENROL_MARK_NAME, path);
        if (r < 0)
                return r;
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        /* A power cut must not bring it back: that would cost a status check, not more, but
         * the directory is fsynced for every other change too. */
        return fsync_parent_dir(path);
}

bool enrol_mark_present(const char *state_dir) {
        char path[PATH_MAX];
        return path_join(state_dir, ENROL_MARK_NAME, path) < 0 || access(path, F_OK) == 0 || errno != ENOENT;
}

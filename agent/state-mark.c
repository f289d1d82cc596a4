/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "agent/state-mark.h"
#include "util/util.h"

#define STATE_MARK_MAX 4096

int state_mark_set(const char *state_dir, const char *name, const char *text) {
        char path[PATH_MAX], buf[STATE_MARK_MAX];
        int r = path_join(state_dir, name, path);
        if (r < 0)
                return r;
        int len = snprintf(buf, sizeof buf, "%lld\n%s", (long long) time(NULL), text ?: "");
        if (len < 0 || (size_t) len >= sizeof buf)
                return -EMSGSIZE;
        return file_write_atomic(path, buf, (size_t) len, 0600);
}

int state_mark_clear(const char *state_dir, const char *name) {
        char path[PATH_MAX];
        int r = path_join(state_dir, name, path);
        if (r < 0)
                return r;
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : negative_errno();
        /* A power cut must not bring it back. */
        return fsync_parent_dir(path);
}

bool state_mark_present(const char *state_dir, const char *name) {
        char path[PATH_MAX];
        return path_join(state_dir, name, path) < 0 || access(path, F_OK) == 0 || errno != ENOENT;
}

int state_mark_read(const char *state_dir, const char *name, time_t *ret_time, char *ret_text, size_t size) {
        char path[PATH_MAX], *end;
        _cleanup_free_ char *buf = NULL;
        int r = path_join(state_dir, name, path);
        if (r == 0)
                r = file_read_all(path, STATE_MARK_MAX, &buf, NULL);
        if (r < 0)
                return r;
        errno = 0;
        long long t = strtoll(buf, &end, 10);
        if (end == buf || errno || (*end != '\n' && *end) || t < 0)
                return -EBADMSG;
        *ret_time = (time_t) t;
        snprintf(ret_text, size, "%s", *end ? end + 1 : "");
        return 0;
}

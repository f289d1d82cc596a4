/* SPDX-License-Identifier: MIT */
/* The parts of keys/seal.h that need no crypto library: method names and removal. */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "keys/seal.h"
#include "util/string-table.h"
#include "util/util.h"

static const char *const method_names[_SEAL_METHOD_MAX] = {
        [SEAL_METHOD_AUTO] = "auto",
        [SEAL_METHOD_TPM2] = "tpm2",
        [SEAL_METHOD_HOST] = "host",
};

DEFINE_STRING_TABLE(seal_method, seal_method_t, method_names)

int seal_remove(const seal_opts_t *o) {
        char path[PATH_MAX], key[PATH_MAX];
        if (!o || !o->state_dir || !*o->state_dir)
                return -EINVAL;
        if (path_join(o->state_dir, SEAL_ENVELOPE_NAME, path) < 0 ||
            path_join(o->state_dir, SEAL_HOST_KEY_NAME, key) < 0)
                return -ENAMETOOLONG;

        bool removed = true;
        if (unlink(path) < 0) {
                if (errno != ENOENT)
                        return negative_errno();
                removed = false;
        }
        if (unlink(key) < 0 && errno != ENOENT)
                return negative_errno();
        _cleanup_close_ int dfd = open(o->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return negative_errno();
        return removed;
}

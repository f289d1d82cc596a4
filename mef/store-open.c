/* SPDX-License-Identifier: MIT */
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mef/store-open.h"
#include "util/util.h"

int mef_store_open(const mef_config_t *cfg, unsigned flags, mef_store_t **ret, store_reason_t *reason) {
        if (reason)
                *reason = (store_reason_t) { .text = "" };
        if (!cfg)
                return -EINVAL;
        store_location_t loc = {
                .backend = cfg->store_backend,
                .path = cfg->store_path,
                .uri = cfg->store_uri,
                .password_file = cfg->store_password_file,
        };
        if (cfg->store_sync == STORE_SYNC_FULL)
                flags |= STORE_OPEN_SYNC_FULL;
        return store_open_at(&loc, cfg->master_key_path, flags, ret, reason);
}

const char *mef_store_name(const mef_config_t *cfg) {
        if (cfg->store_backend == STORE_BACKEND_POSTGRESQL)
                return cfg->store_uri ? cfg->store_uri : "(postgresql)";
        return cfg->store_path;
}

const char *mef_store_access_hint(const mef_config_t *cfg, char *buf, size_t size) {
        if (!cfg || cfg->store_backend != STORE_BACKEND_SQLITE || !cfg->store_path)
                return NULL;
        _cleanup_free_ char *copy = strdup(cfg->store_path);
        if (!copy)
                return NULL;
        const char *dir = dirname(copy);
        if (access(cfg->store_path, F_OK) == 0 && access(cfg->store_path, R_OK | W_OK) < 0)
                snprintf(buf, size, "%s is not readable and writable by uid %u", cfg->store_path, (unsigned) getuid());
        else if (access(dir, W_OK | X_OK) < 0)
                snprintf(buf, size,
                         "directory %s is not writable by uid %u: SQLite makes its -wal and -shm files beside the "
                         "database",
                         dir, (unsigned) getuid());
        else
                return NULL;
        return buf;
}

/* true, with its mode, when path gives group or others any permission (secret_file_read() refuses it) */
static bool file_loose(const char *path, mode_t *ret_mode) {
        struct stat st;
        if (!path || stat(path, &st) < 0 || !(st.st_mode & (S_IRWXG | S_IRWXO)))
                return false;
        *ret_mode = st.st_mode & 07777;
        return true;
}

const char *mef_store_mode_hint(const mef_config_t *cfg, char *buf, size_t size) {
        char file[PATH_MAX];
        mode_t mode;
        /* in the order the open reads them: the store's own files, then the master key */
        if (cfg->store_backend == STORE_BACKEND_SQLITE && cfg->store_path &&
            store_sqlite_loose_file(cfg->store_path, file, &mode) > 0)
                snprintf(buf, size,
                         "%s is mode %04o: group or others may read or write it, and the store holds node metadata "
                         "and sealed secrets. chmod 0600 it (and the -wal and -shm files beside it), owned by the "
                         "MEF's user",
                         file, (unsigned) mode);
        else if (cfg->store_backend == STORE_BACKEND_POSTGRESQL && file_loose(cfg->store_password_file, &mode))
                snprintf(buf, size,
                         "password_file %s is mode %04o, not owner-only, and it holds the database password. "
                         "chmod 0600 or 0400 it, owned by the MEF's user",
                         cfg->store_password_file, (unsigned) mode);
        else if (file_loose(cfg->master_key_path, &mode))
                snprintf(buf, size,
                         "master key %s is mode %04o, not owner-only, and it opens every secret in the store. "
                         "chmod 0400 (or 0600) it, owned by the MEF's user",
                         cfg->master_key_path, (unsigned) mode);
        /* none is now: one was chmod-ed since the open refused it */
        else if (cfg->store_backend == STORE_BACKEND_POSTGRESQL && cfg->store_password_file)
                snprintf(buf, size, "master key %s or password_file %s: not owner-only (chmod 0600 or 0400 it)",
                         cfg->master_key_path, cfg->store_password_file);
        else
                snprintf(buf, size, "master key %s: not owner-only (chmod 0400 or 0600 it)", cfg->master_key_path);
        return buf;
}

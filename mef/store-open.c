/* SPDX-License-Identifier: MIT */
#include <libgen.h>
#include <stdio.h>
#include <string.h>
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

const char *mef_store_mode_hint(const mef_config_t *cfg, char *buf, size_t size) {
        if (!cfg || cfg->store_backend != STORE_BACKEND_SQLITE || !cfg->store_path)
                return NULL;
        char file[PATH_MAX];
        mode_t mode;
        if (store_sqlite_loose_file(cfg->store_path, file, &mode) <= 0)
                return NULL;
        snprintf(buf, size,
                 "%s is mode %04o: group or others may read or write it, and the store holds node metadata and "
                 "sealed secrets. chmod 0600 it (and the -wal and -shm files beside it), owned by the MEF's user",
                 file, (unsigned) mode);
        return buf;
}

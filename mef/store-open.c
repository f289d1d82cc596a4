/* SPDX-License-Identifier: MIT */
#include "mef/store-open.h"

int mef_store_open(const mef_config_t *cfg, unsigned flags, mef_store_t **ret) {
        if (!cfg)
                return -EINVAL;
        store_location_t loc = {
                .backend = cfg->store_backend,
                .path = cfg->store_path,
                .uri = cfg->store_uri,
                .password_file = cfg->store_password_file,
        };
        return store_open_at(&loc, cfg->master_key_path, flags, ret);
}

const char *mef_store_name(const mef_config_t *cfg) {
        if (cfg->store_backend == STORE_BACKEND_POSTGRESQL)
                return cfg->store_uri ? cfg->store_uri : "(postgresql)";
        return cfg->store_path;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* The store mef.conf's [store] names, for the server, its store threads and the CLI. */

#include "mef/mef-config.h"
#include "mef/store.h"

/* store_open_at() on [store] backend, path / uri, password_file and master_key. */
int mef_store_open(const mef_config_t *cfg, unsigned flags, mef_store_t **ret);
/* What to call it in messages: the SQLite path or the PostgreSQL URI (which has no password). */
const char *mef_store_name(const mef_config_t *cfg);

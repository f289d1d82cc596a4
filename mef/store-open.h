/* SPDX-License-Identifier: MIT */
#pragma once
/* The store mef.conf's [store] names, for the server, its store threads and the CLI. */

#include "mef/mef-config.h"
#include "mef/store.h"

/* store_open_at() on [store] backend, path / uri, password_file and master_key; reason (may be
 * NULL) as store_open_at() fills it. */
int mef_store_open(const mef_config_t *cfg, unsigned flags, mef_store_t **ret, store_reason_t *reason);
/* What to call it in messages: the SQLite path or the PostgreSQL URI (which has no password). */
const char *mef_store_name(const mef_config_t *cfg);
/* For -EACCES or -EROFS from mef_store_open() on SQLite: what this user may not do, in buf
 * ("directory D is not writable by uid N: SQLite makes its -wal and -shm files beside the
 * database"); NULL when access(2) finds nothing to say. */
const char *mef_store_access_hint(const mef_config_t *cfg, char *buf, size_t size);
/* For -EPERM from mef_store_open(): which file group or others may reach (a file of the SQLite
 * store, the password_file, the master key), its mode and what to do, in buf; returns buf. */
const char *mef_store_mode_hint(const mef_config_t *cfg, char *buf, size_t size);

/* SPDX-License-Identifier: MIT */
#pragma once
/* msce-mef's TLS server on one sd-event loop. */

#include "mef/mef-config.h"
#include "mef/metrics.h"
#include "mef/store.h"

/* Serve until SIGTERM/SIGINT. Sends READY=1 through sd_notify once listening. The store and
 * metrics (NULL: not counted, no metrics listener) stay owned by the caller. Returns 0 on a clean stop, negative errno on setup failure; err gets a
 * human-readable reason for the top layer to log. */
int mef_server_run(const mef_config_t *cfg, mef_store_t *store, mef_metrics_t *metrics, char *err,
                   size_t err_size);
/* An err that holds the longest store failure whole: "cannot open the store's connections for its
 * N threads: " (64 bytes at most) before store_said()'s hint and the server's reason. */
#define MEF_SERVER_ERR_MAX (80u + STORE_SAID_MAX)

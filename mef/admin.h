/* SPDX-License-Identifier: MIT */
#pragma once
/* The admin API ([admin] listen): JSON over HTTPS under /admin/v1 for operators' automation,
 * on the connection machinery of the gateways' port (mef/conn.h) with its own TLS context:
 * certificates only, a client certificate chaining to [admin] ca required, never a PSK.
 * docs/admin-api.md and docs/admin-api.openapi.json describe it. */

#include <systemd/sd-event.h>

#include "mef/logbook.h"
#include "mef/mef-config.h"
#include "mef/store-queue.h"

/* Operators' automation, not a fleet: a few connections at once. */
#define ADMIN_MAX_CONNECTIONS 8u
#define ADMIN_MAX_UNAUTHENTICATED 16u
/* Room in the store queue beside the gateways' requests, and fds the listener may hold. */
#define ADMIN_QUEUE_EXTRA ADMIN_MAX_CONNECTIONS
#define ADMIN_FDS (3u * ADMIN_MAX_CONNECTIONS + ADMIN_MAX_UNAUTHENTICATED + 1u)

typedef struct admin admin_t;

/* Listens on [admin] listen; requests go to the store through queue. logbook_timer: the
 * server's, armed for the logbook's notes. On failure err says why. */
int admin_new(sd_event *event, const mef_config_t *cfg, store_queue_t *queue, logbook_t *logbook,
              sd_event_source *logbook_timer, admin_t **ret, char *err, size_t err_size);
admin_t *admin_free(admin_t *a);
unsigned admin_port(const admin_t *a);

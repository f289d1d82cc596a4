/* SPDX-License-Identifier: MIT */
#pragma once
/* [audit] keep: audit rows older than that, and enrolments that no longer serve whose lifetime
 * ended before it, are pruned by the serving MEF (store_prune() in a store thread: the loop
 * never waits for it) at start and then every hour. Logs what it pruned. */

#include <systemd/sd-event.h>

#include "mef/store-queue.h"
#include "util/parse.h"

typedef struct retention retention_t;

int retention_new(sd_event *event, store_queue_t *queue, usec_t keep, retention_t **ret);
retention_t *retention_free(retention_t *r);
static inline void retention_freep(retention_t **r) {
        retention_free(*r);
}

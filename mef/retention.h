/* SPDX-License-Identifier: MIT */
#pragma once
/* [audit] keep: audit rows older than that, and enrolments that no longer serve whose lifetime
 * ended before it, are pruned by the serving MEF at start and then every hour, in store
 * threads (the loop never waits for it), a step of STORE_PRUNE_STEP rows at a time, behind the
 * requests. A pass held up by the store (locked, full, gone) goes on a minute later. Logs what
 * it pruned. */

#include <systemd/sd-event.h>

#include "mef/store-queue.h"
#include "util/parse.h"

typedef struct retention retention_t;

int retention_new(sd_event *event, store_queue_t *queue, usec_t keep, retention_t **ret);
retention_t *retention_free(retention_t *r);
static inline void retention_freep(retention_t **r) {
        retention_free(*r);
}

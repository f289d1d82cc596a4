/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <time.h>

#include "mef/log.h"
#include "mef/retention.h"
#include "util/util.h"

#define FIRST_USEC 0 /* at start: a restart after a long stop catches up */
#define EVERY_USEC (3600ull * 1000 * 1000)
#define ACCURACY_USEC (1000ull * 1000)

/* A pass that has not run when the next would start is not doubled: one job at a time. */
typedef struct prune_job {
        store_job_t job;
        retention_t *owner; /* NULL once the retention is freed */
        int64_t before;
        store_pruned_t pruned;
} prune_job_t;

struct retention {
        store_queue_t *queue;
        sd_event_source *timer;
        usec_t keep;
        prune_job_t *running;
};

static int prune_run(store_job_t *job, mef_store_t *store) {
        prune_job_t *j = (prune_job_t *) job;
        return store_prune(store, j->before, &j->pruned);
}

static void prune_done(store_job_t *job, int r) {
        prune_job_t *j = (prune_job_t *) job;
        if (j->owner) {
                j->owner->running = NULL;
                char keep[32];
                duration_format(j->owner->keep, keep);
                if (r < 0 && r != -ECANCELED)
                        log_warning("retention: pruning what is older than %s failed: %s (next try in an hour)", keep,
                                    strerror(-r));
                else if (r >= 0 && (j->pruned.audit || j->pruned.enrolments))
                        log_info("retention: pruned %llu audit rows and %llu spent enrolments older than %s",
                                 (unsigned long long) j->pruned.audit, (unsigned long long) j->pruned.enrolments,
                                 keep);
        }
        free(j);
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        retention_t *t = userdata;
        if (sd_event_source_set_time_relative(src, EVERY_USEC) >= 0)
                (void) sd_event_source_set_enabled(src, SD_EVENT_ONESHOT);
        if (t->running)
                return 0;
        prune_job_t *j = calloc(1, sizeof *j);
        if (!j)
                return 0;
        *j = (prune_job_t) {
                .job = { .run = prune_run, .done = prune_done },
                .owner = t,
                .before = (int64_t) time(NULL) - (int64_t) (t->keep / (1000 * 1000)),
        };
        if (store_queue_submit(t->queue, &j->job) < 0) {
                free(j); /* the queue is full of requests: they go first, the next hour retries */
                return 0;
        }
        t->running = j;
        return 0;
}

int retention_new(sd_event *event, store_queue_t *queue, usec_t keep, retention_t **ret) {
        _cleanup_(retention_freep) retention_t *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        *t = (retention_t) { .queue = queue, .keep = keep };
        /* one shot each time: on_timer arms the next */
        int r = sd_event_add_time_relative(event, &t->timer, CLOCK_MONOTONIC, FIRST_USEC, ACCURACY_USEC, on_timer, t);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

retention_t *retention_free(retention_t *t) {
        if (!t)
                return NULL;
        if (t->running)
                t->running->owner = NULL; /* its done() still comes, from the queue */
        sd_event_source_disable_unref(t->timer);
        free(t);
        return NULL;
}

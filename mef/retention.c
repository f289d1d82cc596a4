/* SPDX-License-Identifier: MIT */
/* A pass is a chain of store jobs of STORE_PRUNE_STEP rows each, the next queued when one is
 * done: requests queued meanwhile go first (a job without a deadline runs after those with
 * one), and no transaction of the pass holds the write lock for long. */
#include <stdlib.h>
#include <time.h>

#include "mef/log.h"
#include "mef/retention.h"
#include "util/util.h"

#define FIRST_USEC 0 /* at start: a restart after a long stop catches up */
#define EVERY_USEC (3600ull * USEC_PER_SEC)
/* a store locked, full or gone, or the queue full of requests: the pass goes on later */
#define RETRY_USEC (60ull * USEC_PER_SEC)
#define ACCURACY_USEC USEC_PER_SEC

typedef struct prune_job {
        store_job_t job;
        retention_t *owner; /* NULL once the retention is freed */
        int64_t before;
        store_pruned_t pruned; /* by the pass so far */
        store_reason_t reason; /* the store's for the step's failure, or text "" */
} prune_job_t;

struct retention {
        store_queue_t *queue;
        sd_event_source *timer;
        usec_t keep;
        prune_job_t *pass; /* the pass under way, NULL between passes */
        bool queued;       /* its next step is in the queue (or running) */
};

static int prune_run(store_job_t *job, mef_store_t *store) {
        prune_job_t *j = (prune_job_t *) job;
        int r = store_prune_some(store, j->before, STORE_PRUNE_STEP, &j->pruned);
        store_reason_copy(store, r, &j->reason);
        return r;
}

static void retry_in(retention_t *t, usec_t usec) {
        if (sd_event_source_set_time_relative(t->timer, usec) >= 0)
                (void) sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
}

static void pass_step(retention_t *t) {
        t->pass->reason.text[0] = 0; /* a step not run (-ETIME) has none */
        if (store_queue_submit(t->queue, &t->pass->job) < 0) {
                retry_in(t, RETRY_USEC); /* the queue is full of requests: they go first */
                return;
        }
        t->queued = true;
}

static void pass_end(retention_t *t) {
        free(t->pass);
        t->pass = NULL;
}

static void prune_done(store_job_t *job, int r) {
        prune_job_t *j = (prune_job_t *) job;
        retention_t *t = j->owner;
        if (!t) {
                free(j);
                return;
        }
        t->queued = false;
        if (r > 0) {
                pass_step(t);
                return;
        }
        char keep[32], error[STORE_STRERROR_MAX];
        duration_format(t->keep, keep);
        unsigned long long audit = j->pruned.audit, enrolments = j->pruned.enrolments;
        if (r == 0) {
                if (audit || enrolments)
                        log_info("retention: pruned %llu audit rows and %llu spent enrolments older than %s", audit,
                                 enrolments, keep);
                pass_end(t);
        } else if (r == -ECANCELED) {
                pass_end(t);
        } else if (store_error_is_transient(r) || r == -ETIME) {
                log_warning("retention: pruning what is older than %s paused after %llu audit rows and %llu spent "
                            "enrolments: %s (goes on in a minute)",
                            keep, audit, enrolments, store_strerror(r, &j->reason, error));
                retry_in(t, RETRY_USEC);
        } else {
                log_warning("retention: pruning what is older than %s failed after %llu audit rows and %llu spent "
                            "enrolments: %s (next try in an hour)",
                            keep, audit, enrolments, store_strerror(r, &j->reason, error));
                pass_end(t);
        }
}

static int on_timer(sd_event_source *src, uint64_t usec, void *userdata) {
        retention_t *t = userdata;
        retry_in(t, EVERY_USEC);
        if (t->queued)
                return 0; /* a step is still queued or running: one pass at a time */
        if (!t->pass) {
                t->pass = calloc(1, sizeof *t->pass);
                if (!t->pass)
                        return 0;
                *t->pass = (prune_job_t) {
                        .job = { .run = prune_run, .done = prune_done },
                        .owner = t,
                        .before = (int64_t) time(NULL) - (int64_t) (t->keep / USEC_PER_SEC),
                };
        }
        pass_step(t);
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
        if (t->pass && t->queued)
                t->pass->owner = NULL; /* its done() still comes, from the queue, and frees it */
        else
                free(t->pass);
        sd_event_source_disable_unref(t->timer);
        free(t);
        return NULL;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* The store, off the event loop: a few threads, each with its own store connection, take jobs
 * from a bounded queue and hand the results back through an eventfd watched by sd-event. A
 * locked database or a slow disk then holds up the requests that need the store (each bounded
 * by the store's busy timeout, then -EBUSY) while handshakes and other connections go on.
 * On SQLite a thread takes every job queued (up to 64) and runs them in one transaction
 * (store_batch_begin(): group commit); their done() come after its commit. */

#include <stdint.h>
#include <systemd/sd-event.h>

#include "mef/mef-config.h"
#include "mef/metrics.h"
#include "mef/store.h"

typedef struct store_queue store_queue_t;
typedef struct store_job store_job_t;

struct store_job {
        /* In a store thread: the job's work on that thread's store. */
        int (*run)(store_job_t *j, mef_store_t *store);
        /* In the loop, exactly once: r is what run() returned, -ETIME when the job was still
         * queued at its deadline (run() not called), -ECANCELED when the queue is freed first. */
        void (*done)(store_job_t *j, int r);
        /* Optional, in the store thread: run() succeeded, but its batch did not commit what it
         * wrote (the COMMIT failed, or a later job's error took the batch down), and done()
         * will get that failure. For what run() counted as done beyond the store (an
         * allowance spent): undo it here. */
        void (*unstored)(store_job_t *j);
        /* CLOCK_MONOTONIC usec; 0: none (background work): run after those with one, and waits
         * for a lock 100 ms at most (-EBUSY then) */
        uint64_t deadline;
        /* private */
        store_job_t *next;
        int result;
};

/* Opens one store connection per thread ([store] in cfg, never creating), each with
 * busy_timeout_ms. reason (may be NULL): as mef_store_open() fills it. */
int store_queue_new(sd_event *event, const mef_config_t *cfg, unsigned threads, unsigned max_queued,
                    unsigned busy_timeout_ms, store_queue_t **ret, store_reason_t *reason);
/* Waits for the jobs being run, then calls done() of every job not yet done. */
store_queue_t *store_queue_free(store_queue_t *q);
static inline void store_queue_freep(store_queue_t **q) {
        store_queue_free(*q);
}
/* Counts each run of a thread (mef_metrics_store_batch()); NULL: not counted. Before the first
 * submit. */
void store_queue_set_metrics(store_queue_t *q, mef_metrics_t *m);
/* -EAGAIN when max_queued jobs wait already: answer 503 without the store. */
int store_queue_submit(store_queue_t *q, store_job_t *j);
/* Takes back a job no thread has started (every thread held up by a slow disk or a database
 * gone silent): 0, and done() will not be called; -EBUSY when it is being run or is done. */
int store_queue_cancel(store_queue_t *q, store_job_t *j);

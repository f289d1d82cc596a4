/* SPDX-License-Identifier: MIT */
/* Jobs go from the loop to the threads through `queued` (bounded), and back through `finished`
 * and the eventfd. One mutex guards both lists: jobs are few and short next to a store call.
 * The threads are woken once the loop has nothing else ready (on_kick), not at each job, and
 * at the latest KICK_LATE_USEC after the first job queued since the last wake-up. */
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "mef/store-open.h"
#include "mef/store-queue.h"
#include "util/util.h"

typedef struct worker {
        store_queue_t *queue;
        pthread_t thread;
        bool started;
        mef_store_t *store;
        unsigned busy_ms; /* what the store's busy timeout is set to now */
} worker_t;

struct store_queue {
        pthread_mutex_t lock;
        pthread_cond_t wake;
        store_job_t *queued, **queued_tail;
        store_job_t *finished, **finished_tail;
        unsigned n_queued, max_queued;
        unsigned batch_max; /* jobs a thread takes at once: 1 where the store has no batch */
        unsigned busy_ms;
        bool stopping;
        int efd;
        sd_event_source *source;
        sd_event_source *kick; /* wakes the threads once the loop has read what is ready */
        sd_event_source *kick_late; /* or when the loop never runs out of ready input */
        worker_t *workers;
        unsigned n_workers;
        mef_metrics_t *metrics;
};

static void list_append(store_job_t ***tail, store_job_t *j) {
        j->next = NULL;
        **tail = j;
        *tail = &j->next;
}

/* jobs one thread takes at once, run in one transaction where the store can */
#define BATCH_MAX 64u
/* An idle-priority source runs only when no other is pending, which never happens while input
 * keeps coming faster than the loop reads it (a flood of connections, a storm): the jobs would
 * wait for their deadline with the threads idle, and be answered 503. A timer, pending like any
 * other source, goes after what was ready before it. Long enough that a saturated loop still
 * fills batches (2,000 enrolments/s: 64 jobs in 32 ms), short next to the store's busy timeout
 * (1 s by default). */
#define KICK_LATE_USEC (50 * USEC_PER_MSEC)

static store_job_t *list_take_all(store_job_t **head, store_job_t ***tail) {
        store_job_t *all = *head;
        *head = NULL;
        *tail = head;
        return all;
}

/* A job without a deadline (retention) waits this long at most for a lock: on a store another
 * process holds locked it would keep a thread from the requests queued behind it for the whole
 * busy timeout, and they would time out in the queue rather than wait for the lock themselves.
 * It fails with -EBUSY and is tried again later. */
#define BACKGROUND_BUSY_MS 100u

/* What time the job has left is all the store may wait for a lock: a request is answered
 * within busy_timeout of its arrival, however long it queued. Set again only on a real change
 * (PostgreSQL: a round trip). */
static void worker_set_busy(worker_t *w, uint64_t deadline, uint64_t now) {
        unsigned want = deadline ? (unsigned) MIN((deadline - now + 999) / 1000, w->queue->busy_ms)
                                 : MIN(BACKGROUND_BUSY_MS, w->queue->busy_ms);
        if (want * 10 < w->busy_ms * 9 || want * 10 > w->busy_ms * 11) {
                if (store_set_busy_timeout(w->store, MAX(want, 1u)) >= 0)
                        w->busy_ms = want;
        }
}

static bool job_due(const store_job_t *j, uint64_t now) {
        return j->deadline == 0 || now < j->deadline;
}

/* j's run() succeeded, but what it wrote went with its batch: it fails with r. */
static void job_unstored(store_job_t *j, int r) {
        if (j->unstored)
                j->unstored(j);
        j->result = r;
}

/* jobs[0..n) in one transaction where the store can (store_batch_begin()), one by one
 * otherwise. Nothing of a batch is answered before its commit: a failed commit, or a batch the
 * engine gave up, fails every job of it that had succeeded. A job that waited past its deadline
 * (the store was slow for those before it) gets -ETIME unrun: its client is better served by a
 * quick 503 than by a late answer. */
static void worker_run(worker_t *w, store_job_t **jobs, size_t n) {
        bool run[BATCH_MAX];
        while (n > 0) {
                uint64_t now = now_usec(), first = 0;
                size_t live = 0;
                for (size_t i = 0; i < n; i++) {
                        run[i] = job_due(jobs[i], now);
                        if (!run[i]) {
                                jobs[i]->result = -ETIME;
                                continue;
                        }
                        live++;
                        if (jobs[i]->deadline && (!first || jobs[i]->deadline < first))
                                first = jobs[i]->deadline;
                }
                worker_set_busy(w, first, now);
                if (live < 2 || store_batch_begin(w->store) < 0) {
                        /* one by one (the BEGIN may have waited for a lock: deadlines again) */
                        for (size_t i = 0; i < n; i++) {
                                now = now_usec();
                                if (!run[i] || !job_due(jobs[i], now)) {
                                        jobs[i]->result = -ETIME;
                                        continue;
                                }
                                worker_set_busy(w, jobs[i]->deadline, now);
                                jobs[i]->result = jobs[i]->run(jobs[i], w->store);
                                mef_metrics_store_batch(w->queue->metrics, 1);
                        }
                        return;
                }
                size_t i = 0, ran = 0;
                bool alive = true;
                for (; i < n && alive; i++)
                        if (run[i]) {
                                jobs[i]->result = jobs[i]->run(jobs[i], w->store);
                                alive = store_batch_alive(w->store);
                                ran++;
                        }
                int r = store_batch_end(w->store, alive);
                mef_metrics_store_batch(w->queue->metrics, (unsigned) ran);
                if (!alive) {
                        /* the last job run took the batch down: it fails, and so do those
                         * before whose writes went with it */
                        if (jobs[i - 1]->result >= 0)
                                job_unstored(jobs[i - 1], -EIO);
                        r = jobs[i - 1]->result;
                }
                if (r < 0)
                        for (size_t k = 0; k < i; k++)
                                if (run[k] && jobs[k]->result >= 0)
                                        job_unstored(jobs[k], r);
                /* after a lost batch, the rest in a new one */
                jobs += i;
                n -= i;
        }
}

/* Stable: the jobs with a deadline to the front; how many there are. */
static size_t jobs_with_deadline_first(store_job_t **jobs, size_t n) {
        store_job_t *rest[BATCH_MAX];
        size_t k = 0, m = 0;
        for (size_t i = 0; i < n; i++) {
                if (jobs[i]->deadline)
                        jobs[k++] = jobs[i];
                else
                        rest[m++] = jobs[i];
        }
        memcpy(jobs + k, rest, m * sizeof *rest);
        return k;
}

/* Done jobs back to the loop (n may be 0). */
static void worker_publish(store_queue_t *q, store_job_t **jobs, size_t n) {
        if (n == 0)
                return;
        pthread_mutex_lock(&q->lock);
        bool wake = !q->finished;
        for (size_t i = 0; i < n; i++)
                list_append(&q->finished_tail, jobs[i]);
        pthread_mutex_unlock(&q->lock);
        /* After the unlock, so that the woken loop does not wait for the lock. A loop that took
         * the list before this write reads a count and an empty list: harmless. */
        if (wake) {
                uint64_t one = 1;
                (void) !write(q->efd, &one, sizeof one);
        }
}

static void *worker_main(void *userdata) {
        worker_t *w = userdata;
        store_queue_t *q = w->queue;
        store_job_t *batch[BATCH_MAX];

        pthread_mutex_lock(&q->lock);
        for (;;) {
                while (!q->queued && !q->stopping)
                        pthread_cond_wait(&q->wake, &q->lock);
                if (q->stopping)
                        break;
                if (q->batch_max > 1) {
                        /* Sharing a core with the loop (a worker process under load), let it go
                         * on reading the requests that are ready, above all after a batch, when
                         * nobody woke this thread: they join this batch rather than the next.
                         * Elsewhere the yield returns at once. */
                        pthread_mutex_unlock(&q->lock);
                        sched_yield();
                        pthread_mutex_lock(&q->lock);
                        if (q->stopping)
                                break;
                }
                size_t n = 0;
                while (q->queued && n < q->batch_max) {
                        store_job_t *j = q->queued;
                        q->queued = j->next;
                        q->n_queued--;
                        batch[n++] = j;
                }
                if (!q->queued)
                        q->queued_tail = &q->queued;
                if (n == 0)
                        continue; /* taken back (store_queue_cancel()) meanwhile */
                pthread_mutex_unlock(&q->lock);

                /* Jobs with a deadline (requests) run and are answered before those without
                 * (retention). */
                size_t k = jobs_with_deadline_first(batch, n);
                worker_run(w, batch, k);
                worker_publish(q, batch, k);
                worker_run(w, batch + k, n - k);
                worker_publish(q, batch + k, n - k);
                pthread_mutex_lock(&q->lock);
        }
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

static void jobs_done(store_job_t *j, int override) {
        while (j) {
                store_job_t *next = j->next;
                j->done(j, override ? override : j->result);
                j = next;
        }
}

/* The loop has dispatched everything that was ready (an idle-priority defer source), or
 * KICK_LATE_USEC went by: the jobs it queued meanwhile go to the threads together, as one batch
 * on SQLite, with one wake-up. */
static int on_kick(sd_event_source *src, void *userdata) {
        store_queue_t *q = userdata;
        (void) sd_event_source_set_enabled(src == q->kick ? q->kick_late : q->kick, SD_EVENT_OFF);
        pthread_mutex_lock(&q->lock);
        unsigned n = MIN(q->n_queued, q->n_workers);
        pthread_mutex_unlock(&q->lock);
        /* Signalled after the unlock, so that a woken thread does not block on the lock at once
         * (3 futex calls fewer per batch). No wake-up is lost: a thread checks q->queued under
         * the lock before it waits, and the jobs were queued under it. */
        for (unsigned i = 0; i < n; i++)
                pthread_cond_signal(&q->wake);
        return 0;
}

static int on_kick_late(sd_event_source *src, uint64_t usec, void *userdata) {
        return on_kick(src, userdata);
}

static int on_finished(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        store_queue_t *q = userdata;
        uint64_t n;
        (void) !read(q->efd, &n, sizeof n);
        pthread_mutex_lock(&q->lock);
        store_job_t *all = list_take_all(&q->finished, &q->finished_tail);
        pthread_mutex_unlock(&q->lock);
        jobs_done(all, 0);
        return 0;
}

int store_queue_new(sd_event *event, const mef_config_t *cfg, unsigned threads, unsigned max_queued,
                    unsigned busy_timeout_ms, store_queue_t **ret, store_reason_t *reason) {
        if (reason)
                *reason = (store_reason_t) { .text = "" };
        if (!event || !cfg || threads == 0 || max_queued == 0 || !ret)
                return -EINVAL;
        _cleanup_(store_queue_freep) store_queue_t *q = calloc(1, sizeof *q);
        if (!q)
                return -ENOMEM;
        pthread_mutex_init(&q->lock, NULL);
        pthread_cond_init(&q->wake, NULL);
        q->queued_tail = &q->queued;
        q->finished_tail = &q->finished;
        q->max_queued = max_queued;
        /* PostgreSQL: one job each, so that every thread has work (no batch there) */
        q->batch_max = cfg->store_backend == STORE_BACKEND_SQLITE ? BATCH_MAX : 1;
        q->busy_ms = busy_timeout_ms;
        q->efd = -1;

        int r = 0;
        q->workers = calloc(threads, sizeof *q->workers);
        if (!q->workers)
                r = -ENOMEM;
        for (unsigned i = 0; r >= 0 && i < threads; i++, q->n_workers++) {
                q->workers[i].queue = q;
                r = mef_store_open(cfg, 0, &q->workers[i].store, reason);
                if (r >= 0)
                        r = store_set_busy_timeout(q->workers[i].store, busy_timeout_ms);
                q->workers[i].busy_ms = busy_timeout_ms;
        }
        if (r >= 0) {
                q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
                if (q->efd < 0)
                        r = negative_errno();
        }
        if (r >= 0)
                r = sd_event_add_io(event, &q->source, q->efd, EPOLLIN, on_finished, q);
        if (r >= 0)
                r = sd_event_add_defer(event, &q->kick, on_kick, q);
        if (r >= 0)
                r = sd_event_source_set_priority(q->kick, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->kick, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &q->kick_late, CLOCK_MONOTONIC, KICK_LATE_USEC, USEC_PER_MSEC,
                                               on_kick_late, q);
        if (r >= 0)
                r = sd_event_source_set_enabled(q->kick_late, SD_EVENT_OFF);
        for (unsigned i = 0; r >= 0 && i < q->n_workers; i++) {
                r = -pthread_create(&q->workers[i].thread, NULL, worker_main, &q->workers[i]);
                q->workers[i].started = r >= 0;
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(q);
        return 0;
}

store_queue_t *store_queue_free(store_queue_t *q) {
        if (!q)
                return NULL;
        pthread_mutex_lock(&q->lock);
        q->stopping = true;
        pthread_cond_broadcast(&q->wake);
        pthread_mutex_unlock(&q->lock);
        for (unsigned i = 0; i < q->n_workers; i++) {
                if (q->workers[i].started)
                        pthread_join(q->workers[i].thread, NULL);
                store_close(q->workers[i].store);
        }
        free(q->workers);
        /* The threads are gone: no lock needed. Finished jobs get their result, the rest none. */
        jobs_done(list_take_all(&q->finished, &q->finished_tail), 0);
        jobs_done(list_take_all(&q->queued, &q->queued_tail), -ECANCELED);
        q->source = sd_event_source_disable_unref(q->source);
        q->kick = sd_event_source_disable_unref(q->kick);
        q->kick_late = sd_event_source_disable_unref(q->kick_late);
        if (q->efd >= 0)
                close(q->efd);
        pthread_cond_destroy(&q->wake);
        pthread_mutex_destroy(&q->lock);
        free(q);
        return NULL;
}

void store_queue_set_metrics(store_queue_t *q, mef_metrics_t *m) {
        if (q)
                q->metrics = m;
}

int store_queue_submit(store_queue_t *q, store_job_t *j) {
        if (!q || !j || !j->run || !j->done)
                return -EINVAL;
        pthread_mutex_lock(&q->lock);
        if (q->n_queued >= q->max_queued) {
                pthread_mutex_unlock(&q->lock);
                return -EAGAIN;
        }
        list_append(&q->queued_tail, j);
        q->n_queued++;
        /* The threads are woken by on_kick(), or at once when it cannot be armed. A timer
         * already armed is left as it is: re-arming it for each job would push it back forever. */
        if (sd_event_source_get_enabled(q->kick_late, NULL) <= 0 &&
            (sd_event_source_set_enabled(q->kick, SD_EVENT_ONESHOT) < 0 ||
             sd_event_source_set_time_relative(q->kick_late, KICK_LATE_USEC) < 0 ||
             sd_event_source_set_enabled(q->kick_late, SD_EVENT_ONESHOT) < 0))
                pthread_cond_signal(&q->wake);
        pthread_mutex_unlock(&q->lock);
        return 0;
}

int store_queue_cancel(store_queue_t *q, store_job_t *j) {
        if (!q || !j)
                return -EINVAL;
        int r = -EBUSY;
        pthread_mutex_lock(&q->lock);
        for (store_job_t **p = &q->queued; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        if (q->queued_tail == &j->next)
                                q->queued_tail = p;
                        q->n_queued--;
                        j->next = NULL;
                        r = 0;
                        break;
                }
        pthread_mutex_unlock(&q->lock);
        return r;
}

/* SPDX-License-Identifier: MIT */
/* mef/store-queue.c: jobs run on the store threads and come back through the event loop; the
 * queue is bounded; a job no thread has started can be taken back; one waiting past its
 * deadline is not run. */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>

#include "mef/store-queue.h"
#include "util/util.h"

static char dir[] = "/tmp/test-store-queue.XXXXXX";
static char db_path[PATH_MAX], key_path[PATH_MAX];
static mef_config_t cfg;

static void setup(void) {
        cr_assert_not_null(mkdtemp(dir));
        snprintf(db_path, sizeof db_path, "%s/mef.db", dir);
        snprintf(key_path, sizeof key_path, "%s/master.key", dir);
        mef_store_t *s = NULL;
        cr_assert_eq(store_open(db_path, key_path, true, &s), 0);
        store_close(s);
        cfg = (mef_config_t) { .store_backend = STORE_BACKEND_SQLITE, .store_path = db_path,
                               .master_key_path = key_path };
}

static void teardown(void) {
        static const char *const names[] = { "mef.db", "mef.db-wal", "mef.db-shm", "master.key" };
        char p[PATH_MAX + 16];
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(p, sizeof p, "%s/%s", dir, names[i]);
                unlink(p);
        }
        rmdir(dir);
}

TestSuite(store_queue, .init = setup, .fini = teardown);

typedef struct test_job {
        store_job_t job;
        atomic_bool running, release;
        int ran, done, result;
} test_job_t;

static int job_run(store_job_t *j, mef_store_t *store) {
        test_job_t *t = (test_job_t *) j;
        atomic_store(&t->running, true);
        while (!atomic_load(&t->release))
                usleep(1000);
        t->ran++;
        /* a store call on the thread's own connection */
        return store_audit(store, "test", "job", NULL, NULL);
}

static void job_done(store_job_t *j, int r) {
        test_job_t *t = (test_job_t *) j;
        t->done++;
        t->result = r;
}

static void job_init(test_job_t *t, uint64_t deadline) {
        *t = (test_job_t) { .job = { .run = job_run, .done = job_done, .deadline = deadline } };
}

/* Run the loop until cond holds (the deadline: the test's timeout). */
#define LOOP_UNTIL(event, cond)                                         \
        do {                                                            \
                while (!(cond))                                         \
                        cr_assert_geq(sd_event_run(event, 100000), 0);  \
        } while (0)

/* A queue of one thread with max_queued places, that thread busy with a (until released). */
static store_queue_t *queue_busy(sd_event **ret_e, unsigned max_queued, test_job_t *a) {
        cr_assert_eq(sd_event_new(ret_e), 0);
        store_queue_t *q = NULL;
        cr_assert_eq(store_queue_new(*ret_e, &cfg, 1, max_queued, 1000, &q), 0);
        job_init(a, 0);
        cr_assert_eq(store_queue_submit(q, &a->job), 0);
        while (!atomic_load(&a->running)) /* the only thread has it */
                usleep(1000);
        return q;
}

Test(store_queue, bounded_cancel_and_done) {
        sd_event *e = NULL;
        test_job_t a, b, c, d;
        store_queue_t *q = queue_busy(&e, 2, &a);
        job_init(&b, 0);
        job_init(&c, 0);
        job_init(&d, 0);
        cr_assert_eq(store_queue_submit(q, &b.job), 0);
        cr_assert_eq(store_queue_submit(q, &c.job), 0);
        cr_assert_eq(store_queue_submit(q, &d.job), -EAGAIN, "queue bound");
        cr_assert_eq(store_queue_cancel(q, &a.job), -EBUSY, "running: cannot be taken back");
        cr_assert_eq(store_queue_cancel(q, &b.job), 0);
        cr_assert_eq(store_queue_cancel(q, &b.job), -EBUSY, "not queued any more");

        atomic_store(&a.release, true);
        atomic_store(&c.release, true);
        LOOP_UNTIL(e, a.done && c.done);
        cr_assert_eq(a.result, 0);
        cr_assert_eq(c.result, 0);
        cr_assert_eq(b.ran + b.done, 0, "a cancelled job is neither run nor done");
        cr_assert_eq(a.done + c.done, 2, "done once each");
        store_queue_free(q);
        sd_event_unref(e);
}

Test(store_queue, overdue_job_is_not_run) {
        sd_event *e = NULL;
        test_job_t a, late;
        store_queue_t *q = queue_busy(&e, 4, &a);
        job_init(&late, now_usec() + 1000); /* 1 ms: long gone once a lets go */
        cr_assert_eq(store_queue_submit(q, &late.job), 0);
        usleep(5000);
        atomic_store(&late.release, true);
        atomic_store(&a.release, true);
        LOOP_UNTIL(e, a.done && late.done);
        cr_assert_eq(late.result, -ETIME);
        cr_assert_eq(late.ran, 0);
        store_queue_free(q);
        sd_event_unref(e);
}

Test(store_queue, free_finishes_every_job) {
        sd_event *e = NULL;
        test_job_t a, b;
        store_queue_t *q = queue_busy(&e, 4, &a);
        job_init(&b, 0);
        cr_assert_eq(store_queue_submit(q, &b.job), 0);
        atomic_store(&b.release, true); /* should a thread still take it */
        atomic_store(&a.release, true);
        store_queue_free(q); /* a: run to its end; b: run or cancelled, done either way */
        cr_assert_eq(a.done, 1);
        cr_assert_eq(a.result, 0);
        cr_assert(b.done == 1 && (b.result == -ECANCELED || b.result == 0));
        sd_event_unref(e);
}

/* SPDX-License-Identifier: MIT */
/* mef/store-queue.c: jobs run on the store threads and come back through the event loop; the
 * queue is bounded; a job no thread has started can be taken back; one waiting past its
 * deadline is not run; the jobs a thread finds queued share one transaction (group commit),
 * and so do those queued in one loop iteration; a loop never idle still wakes the threads. */
#include <criterion/criterion.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "mef/store-internal.h" /* store_txn(): an engine giving a transaction up */
#include "mef/store-open.h"
#include "mef/store-queue.h"
#include "util/util.h"

static char dir[] = "/tmp/test-store-queue.XXXXXX";
static char db_path[PATH_MAX], key_path[PATH_MAX];
static mef_config_t cfg;
static sd_event *event; /* the loop the queue's jobs come back through, one per test */

static void setup(void) {
        cr_assert_not_null(mkdtemp(dir));
        snprintf(db_path, sizeof db_path, "%s/mef.db", dir);
        snprintf(key_path, sizeof key_path, "%s/master.key", dir);
        mef_store_t *s = NULL;
        cr_assert_eq(store_open(db_path, key_path, true, &s), 0);
        store_close(s);
        cfg = (mef_config_t) { .store_backend = STORE_BACKEND_SQLITE, .store_path = db_path,
                               .master_key_path = key_path };
        cr_assert_eq(sd_event_new(&event), 0);
}

static void teardown(void) {
        event = sd_event_unref(event);
        static const char *const names[] = { "mef.db", "mef.db-wal", "mef.db-shm", "master.key" };
        char p[PATH_MAX + 16];
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(p, sizeof p, "%s/%s", dir, names[i]);
                unlink(p);
        }
        rmdir(dir);
}

TestSuite(store_queue, .init = setup, .fini = teardown);

typedef enum job_kind {
        JOB_AUDIT,   /* an audit row, subject the job's name */
        JOB_FAIL,    /* an audit row in a transaction it rolls back, then -EPERM */
        JOB_ABANDON, /* an audit row, then the engine gives the transaction up (SQLite does on
                      * some I/O errors), unnoticed by the job */
        JOB_NOTHING, /* no store call */
} job_kind_t;

typedef struct test_job {
        store_job_t job;
        atomic_bool running, release;
        job_kind_t kind;
        const char *name;
        bool batched; /* ran inside a batch */
        pid_t tid;    /* the thread it ran on */
        int ran, done, result;
        int unstored; /* times told its writes went with the batch */
        unsigned done_seq; /* the order of its done() among all jobs' */
} test_job_t;

static unsigned done_count;

static int job_run(store_job_t *j, mef_store_t *store) {
        test_job_t *t = (test_job_t *) j;
        atomic_store(&t->running, true);
        while (!atomic_load(&t->release))
                usleep(1000);
        t->ran++;
        t->tid = gettid();
        t->batched = store_batch_alive(store);
        /* store calls on the thread's own connection */
        if (t->kind == JOB_FAIL) {
                int r = store_begin(store);
                if (r >= 0)
                        r = store_audit(store, "test", "job", t->name, NULL);
                store_rollback(store);
                return r < 0 ? r : -EPERM;
        }
        if (t->kind == JOB_NOTHING)
                return 0;
        int r = store_audit(store, "test", "job", t->name, NULL);
        if (r >= 0 && t->kind == JOB_ABANDON)
                r = store_txn(store, DB_TXN_ROLLBACK);
        return r;
}

static void job_unstored(store_job_t *j) {
        ((test_job_t *) j)->unstored++;
}

static void job_done(store_job_t *j, int r) {
        test_job_t *t = (test_job_t *) j;
        t->done++;
        t->result = r;
        t->done_seq = ++done_count;
}

/* A new job t, submitted: store_queue_submit()'s result. */
static int job_submit(store_queue_t *q, test_job_t *t, uint64_t deadline) {
        *t = (test_job_t) { .job = { .run = job_run, .done = job_done, .deadline = deadline } };
        return store_queue_submit(q, &t->job);
}

/* job_submit() of a job of that kind and name, released already. */
static void job_submit_kind(store_queue_t *q, test_job_t *t, job_kind_t kind, const char *name, uint64_t deadline) {
        *t = (test_job_t) { .job = { .run = job_run, .done = job_done, .unstored = job_unstored, .deadline = deadline },
                            .kind = kind, .name = name };
        atomic_store(&t->release, true);
        cr_assert_eq(store_queue_submit(q, &t->job), 0);
}

/* The audit rows of named test jobs, in the store as another connection sees it: their
 * subjects' first letters, oldest first. */
static void audit_subjects(char *buf, size_t size) {
        mef_store_t *s = NULL;
        cr_assert_eq(store_open(db_path, key_path, false, &s), 0);
        _cleanup_free_ store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(s, 0, &list, &n), 0);
        size_t k = 0;
        for (size_t i = n; i-- > 0 && k + 1 < size;)
                if (streq(list[i].action, "job") && list[i].subject[0])
                        buf[k++] = list[i].subject[0];
        buf[k] = 0;
        store_close(s);
}

/* Run the loop until cond holds (the deadline: the test's timeout). */
#define LOOP_UNTIL(event, cond)                                         \
        do {                                                            \
                while (!(cond))                                         \
                        cr_assert_geq(sd_event_run(event, 100000), 0);  \
        } while (0)

/* A queue of one thread with max_queued places, that thread busy with a (until released). */
static store_queue_t *queue_busy(unsigned max_queued, test_job_t *a) {
        store_queue_t *q = NULL;
        cr_assert_eq(store_queue_new(event, &cfg, 1, max_queued, 1000, &q, NULL), 0);
        cr_assert_eq(job_submit(q, a, 0), 0);
        LOOP_UNTIL(event, atomic_load(&a->running)); /* the only thread has it */
        return q;
}

/* Lets x, then y go, and runs the loop until both are done. */
static void release_both(test_job_t *x, test_job_t *y) {
        atomic_store(&x->release, true);
        atomic_store(&y->release, true);
        LOOP_UNTIL(event, x->done && y->done);
}

Test(store_queue, bounded_cancel_and_done) {
        test_job_t a, b, c, d;
        store_queue_t *q = queue_busy(2, &a);
        cr_assert_eq(job_submit(q, &b, 0), 0);
        cr_assert_eq(job_submit(q, &c, 0), 0);
        cr_assert_eq(job_submit(q, &d, 0), -EAGAIN, "queue bound");
        cr_assert_eq(store_queue_cancel(q, &a.job), -EBUSY, "running: cannot be taken back");
        cr_assert_eq(store_queue_cancel(q, &b.job), 0);
        cr_assert_eq(store_queue_cancel(q, &b.job), -EBUSY, "not queued any more");

        release_both(&a, &c);
        cr_assert_eq(a.result, 0);
        cr_assert_eq(c.result, 0);
        cr_assert_eq(b.ran + b.done, 0, "a cancelled job is neither run nor done");
        cr_assert_eq(a.done + c.done, 2, "done once each");
        store_queue_free(q);
}

Test(store_queue, overdue_job_is_not_run) {
        test_job_t a, late;
        store_queue_t *q = queue_busy(4, &a);
        cr_assert_eq(job_submit(q, &late, now_usec() + 1000), 0); /* 1 ms: long gone once a lets go */
        usleep(5000);
        release_both(&late, &a);
        cr_assert_eq(late.result, -ETIME);
        cr_assert_eq(late.ran, 0);
        store_queue_free(q);
}

Test(store_queue, free_finishes_every_job) {
        test_job_t a, b;
        store_queue_t *q = queue_busy(4, &a);
        cr_assert_eq(job_submit(q, &b, 0), 0);
        atomic_store(&b.release, true); /* should a thread still take it */
        atomic_store(&a.release, true);
        store_queue_free(q); /* a: run to its end; b: run or cancelled, done either way */
        cr_assert_eq(a.done, 1);
        cr_assert_eq(a.result, 0);
        cr_assert(b.done == 1 && (b.result == -ECANCELED || b.result == 0));
}

Test(store_queue, queued_jobs_share_one_commit) {
        test_job_t a, b, c, d;
        store_queue_t *q = queue_busy(8, &a);
        job_submit_kind(q, &b, JOB_AUDIT, "b", 0);
        job_submit_kind(q, &c, JOB_FAIL, "c", 0);
        job_submit_kind(q, &d, JOB_AUDIT, "d", 0);
        atomic_store(&a.release, true);
        LOOP_UNTIL(event, a.done && b.done && c.done && d.done);
        cr_assert(!a.batched, "a ran alone");
        cr_assert(b.batched && c.batched && d.batched, "b, c and d were queued together");
        cr_assert_eq(b.result, 0);
        cr_assert_eq(c.result, -EPERM);
        cr_assert_eq(d.result, 0);
        char got[8];
        audit_subjects(got, sizeof got);
        cr_assert_str_eq(got, "bd", "c's row went back with its transaction");
        store_queue_free(q);
}

/* The thread is woken once the loop has dispatched what was ready, not at each job: jobs
 * queued in one loop iteration share one commit even with the thread idle. */
Test(store_queue, one_iteration_one_commit) {
        test_job_t a, b, c;
        store_queue_t *q = NULL;
        mef_metrics_t *m = NULL;
        cr_assert_eq(mef_metrics_new(&m), 0);
        cr_assert_eq(store_queue_new(event, &cfg, 1, 8, 1000, &q, NULL), 0);
        store_queue_set_metrics(q, m);
        job_submit_kind(q, &a, JOB_AUDIT, "a", 0);
        job_submit_kind(q, &b, JOB_AUDIT, "b", 0);
        job_submit_kind(q, &c, JOB_AUDIT, "c", 0);
        cr_assert_eq(a.ran + b.ran + c.ran, 0, "nothing run before the loop went on");
        LOOP_UNTIL(event, a.done && b.done && c.done);
        cr_assert(a.batched && b.batched && c.batched, "a, b and c ran in one batch");
        cr_assert(a.result == 0 && b.result == 0 && c.result == 0);
        char got[8];
        audit_subjects(got, sizeof got);
        cr_assert_str_eq(got, "abc");
        store_queue_free(q);
        _cleanup_free_ char *text = NULL;
        size_t len;
        cr_assert_eq(mef_metrics_render(m, NULL, &text, &len), 0);
        cr_assert(strstr(text, "\nmsce_mef_store_batches_total 1\n"), "%s", text);
        cr_assert(strstr(text, "\nmsce_mef_store_batch_jobs_total 3\n"), "%s", text);
        mef_metrics_free(m);
}

/* Whether thread tid of this process sleeps (state S: here, waiting for the queue's lock or
 * its condition). */
static bool thread_sleeps(pid_t tid) {
        char path[64], buf[256];
        snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int) tid);
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        cr_assert_not_null(f, "%s: %m", path);
        cr_assert_not_null(fgets(buf, sizeof buf, f));
        const char *end = strrchr(buf, ')'); /* after the command name, which may hold anything */
        cr_assert_not_null(end);
        return end[1] == ' ' && end[2] == 'S';
}

/* Input that is always there again when the loop looks (an eventfd never read): pending anew
 * in every iteration, as it is when it comes faster than the loop reads it. */
static int on_flood(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        (*(unsigned long *) userdata)++;
        return 0;
}

/* The loop never runs out of ready input (a flood of connections): the idle threads still get
 * the job, long before its deadline. Without the late kick it waited for the loop to go idle,
 * which never came (mef-attack's dribble row under ASan: "store busy" 503s). */
Test(store_queue, woken_while_the_loop_is_never_idle) {
        test_job_t a;
        store_queue_t *q = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *flood = NULL;
        unsigned long floods = 0;
        _cleanup_close_ int efd = eventfd(1, EFD_CLOEXEC);
        cr_assert_geq(efd, 0);
        cr_assert_eq(store_queue_new(event, &cfg, 1, 8, 1000, &q, NULL), 0);
        /* the thread asleep, waiting for work: a job queued before would be found without
         * being woken at all */
        job_submit_kind(q, &a, JOB_NOTHING, "first", 0);
        LOOP_UNTIL(event, a.done);
        LOOP_UNTIL(event, thread_sleeps(a.tid));
        cr_assert_eq(sd_event_add_io(event, &flood, efd, EPOLLIN, on_flood, &floods), 0);
        uint64_t t0 = now_usec();
        job_submit_kind(q, &a, JOB_NOTHING, "a", t0 + 60 * USEC_PER_SEC);
        /* 30 s: a hang's bound, far over the 50 ms the wake-up may wait */
        while (!a.done && now_usec() - t0 < 30 * USEC_PER_SEC)
                cr_assert_geq(sd_event_run(event, 100000), 0);
        cr_assert_eq(a.done, 1, "not run while the loop was busy (%lu dispatches)", floods);
        cr_assert_eq(a.result, 0);
        cr_assert_gt(floods, 0, "the flood ran meanwhile");
        store_queue_free(q);
}

/* Four jobs of these kinds (named "b" to "e"), queued behind a, then all run: the queue. */
static store_queue_t *four_behind(test_job_t *a, test_job_t t[4], const job_kind_t kinds[4]) {
        static const char *const names[] = { "b", "c", "d", "e" };
        store_queue_t *q = queue_busy(8, a);
        for (size_t i = 0; i < 4; i++)
                job_submit_kind(q, &t[i], kinds[i], names[i], 0);
        atomic_store(&a->release, true);
        LOOP_UNTIL(event, a->done && t[0].done && t[1].done && t[2].done && t[3].done);
        return q;
}

Test(store_queue, abandoned_batch_fails_its_jobs) {
        test_job_t a, t[4], *b = &t[0], *c = &t[1], *d = &t[2], *e = &t[3];
        store_queue_t *q = four_behind(&a, t, (const job_kind_t[]) { JOB_AUDIT, JOB_ABANDON, JOB_AUDIT, JOB_AUDIT });
        cr_assert_eq(b->result, -EIO, "its row went with the batch: not answered as stored");
        cr_assert_eq(c->result, -EIO);
        cr_assert(b->unstored == 1 && c->unstored == 1, "b and c told: %d %d", b->unstored, c->unstored);
        cr_assert(d->unstored == 0 && e->unstored == 0, "d and e committed");
        cr_assert(d->batched && e->batched, "the rest in a new batch");
        cr_assert_eq(d->result, 0);
        cr_assert_eq(e->result, 0);
        char got[8];
        audit_subjects(got, sizeof got);
        cr_assert_str_eq(got, "de");
        store_queue_free(q);
}

/* Every job of a batch succeeds, its COMMIT fails (a deferred foreign key c's row breaks, set
 * up behind the store's back): each job that had succeeded fails with the COMMIT's error and
 * is told its writes went (unstored()); the job that failed on its own (d) is not. */
Test(store_queue, failed_commit_fails_its_jobs) {
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(db,
                                  "CREATE TABLE trap_parent (id INTEGER PRIMARY KEY);"
                                  "CREATE TABLE trap (p INTEGER REFERENCES trap_parent (id) DEFERRABLE INITIALLY DEFERRED);"
                                  "CREATE TRIGGER trap_c AFTER INSERT ON audit WHEN NEW.subject = 'c' "
                                  "BEGIN INSERT INTO trap VALUES (1); END;",
                                  NULL, NULL, NULL),
                     SQLITE_OK, "%s", sqlite3_errmsg(db));
        sqlite3_close(db);
        test_job_t a, t[4], *b = &t[0], *c = &t[1], *d = &t[2], *e = &t[3];
        store_queue_t *q = four_behind(&a, t, (const job_kind_t[]) { JOB_AUDIT, JOB_AUDIT, JOB_FAIL, JOB_AUDIT });
        cr_assert(b->batched && c->batched && e->batched, "b, c and e in one batch");
        cr_assert_lt(b->result, 0, "its row went with the COMMIT: not answered as stored");
        cr_assert_eq(c->result, b->result);
        cr_assert_eq(e->result, b->result);
        cr_assert_eq(d->result, -EPERM);
        cr_assert(b->unstored == 1 && c->unstored == 1 && e->unstored == 1, "told: %d %d %d", b->unstored,
                  c->unstored, e->unstored);
        cr_assert_eq(d->unstored, 0, "failed on its own: nothing of it to undo");
        char got[8];
        audit_subjects(got, sizeof got);
        cr_assert_str_eq(got, "");
        store_queue_free(q);
}

/* Another connection (*holder) holds the write lock; a queue of one thread with busy_ms, that
 * thread busy with a (no store call, until released). */
static store_queue_t *queue_locked(mef_store_t **holder, unsigned busy_ms, test_job_t *a) {
        cr_assert_eq(store_open(db_path, key_path, false, holder), 0);
        cr_assert_eq(store_begin(*holder), 0); /* BEGIN IMMEDIATE: the write lock */
        store_queue_t *q = NULL;
        cr_assert_eq(store_queue_new(event, &cfg, 1, 8, busy_ms, &q, NULL), 0);
        *a = (test_job_t) { .job = { .run = job_run, .done = job_done }, .kind = JOB_NOTHING };
        cr_assert_eq(store_queue_submit(q, &a->job), 0);
        LOOP_UNTIL(event, atomic_load(&a->running));
        return q;
}

/* Another connection holds the write lock: the batch's BEGIN waits until the first deadline
 * and fails; the jobs then go one by one, each with its own time left, and one whose deadline
 * passed meanwhile is not run (it would wait the whole busy timeout again). */
Test(store_queue, locked_batch_keeps_each_deadline) {
        mef_store_t *holder = NULL;
        test_job_t a, b, c;
        store_queue_t *q = queue_locked(&holder, 1000, &a);
        job_submit_kind(q, &b, JOB_AUDIT, "b", now_usec() + 300 * USEC_PER_MSEC);
        job_submit_kind(q, &c, JOB_AUDIT, "c", now_usec() + 30 * USEC_PER_SEC);
        atomic_store(&a.release, true);
        LOOP_UNTIL(event, a.done && b.done && c.done);
        cr_assert_eq(a.result, 0);
        cr_assert_eq(b.result, -ETIME, "b's deadline passed while the batch waited: %d", b.result);
        cr_assert_eq(b.ran, 0);
        cr_assert_eq(c.result, -EBUSY, "c waited its own busy timeout: %d", c.result);
        store_rollback(holder);
        store_close(holder);
        store_queue_free(q);
}

/* [store] synchronous reaches every connection mef_store_open() makes: SQLite's synchronous
 * pragma, FULL (2) or NORMAL (1). */
static int64_t synchronous_of(store_sync_t sync) {
        mef_config_t c = cfg;
        c.store_sync = sync;
        mef_store_t *s = NULL;
        cr_assert_eq(mef_store_open(&c, 0, &s, NULL), 0);
        db_stmt_t *st = NULL;
        cr_assert_eq(prepare(s, "PRAGMA synchronous", &st), 0);
        cr_assert_eq(step_row(st), 1);
        int64_t v = db_column_int64(st, 0);
        stmt_releasep(&st);
        store_close(s);
        return v;
}

Test(store_queue, synchronous_setting_reaches_sqlite) {
        cr_assert_eq(synchronous_of(STORE_SYNC_FULL), 2);
        cr_assert_eq(synchronous_of(STORE_SYNC_NORMAL), 1);
}

/* A job without a deadline (retention) batched with a request: the request runs and is
 * answered first; the other waits BACKGROUND_BUSY_MS at most for the lock, not the busy
 * timeout. */
Test(store_queue, request_answered_before_a_job_without_deadline) {
        mef_store_t *holder = NULL;
        test_job_t a, b, c;
        store_queue_t *q = queue_locked(&holder, 30 * 1000, &a);
        /* queued behind a, taken together: b without a deadline first, then c */
        job_submit_kind(q, &b, JOB_AUDIT, "b", 0);
        job_submit_kind(q, &c, JOB_AUDIT, "c", now_usec() + 300 * USEC_PER_MSEC);
        atomic_store(&a.release, true);
        LOOP_UNTIL(event, b.done && c.done);
        cr_assert(c.result == -EBUSY || c.result == -ETIME, "c, within its own time: %d", c.result);
        cr_assert_lt(c.done_seq, b.done_seq, "c answered first");
        cr_assert_eq(b.result, -EBUSY, "b gave the lock up: %d", b.result);
        store_rollback(holder);
        char got[8];
        audit_subjects(got, sizeof got);
        cr_assert_str_eq(got, "");
        store_close(holder);
        store_queue_free(q);
}

/* A job without a deadline that finds the store locked by another process does not keep the
 * thread from a request queued behind it for the busy timeout: it gives up (-EBUSY, retried
 * later by its owner), and the request waits for the lock itself, within its own time. */
Test(store_queue, job_without_deadline_yields_a_locked_store) {
        mef_store_t *holder = NULL;
        test_job_t a, b, c;
        store_queue_t *q = queue_locked(&holder, 5000, &a);
        b = (test_job_t) { .job = { .run = job_run, .done = job_done }, .kind = JOB_AUDIT, .name = "b" };
        cr_assert_eq(store_queue_submit(q, &b.job), 0);
        atomic_store(&a.release, true);
        LOOP_UNTIL(event, atomic_load(&b.running));
        /* b has the one thread (and waits for the lock); c queues behind it */
        job_submit_kind(q, &c, JOB_AUDIT, "c", now_usec() + 5 * USEC_PER_SEC);
        atomic_store(&b.release, true);
        LOOP_UNTIL(event, b.done);
        cr_assert_eq(b.result, -EBUSY, "b: %d", b.result);
        cr_assert_eq(c.done, 0, "c waits for the lock, not for b");
        store_rollback(holder);
        LOOP_UNTIL(event, c.done);
        cr_assert_eq(c.result, 0, "c ran and got the lock once it was free: %d", c.result);
        char got[8];
        audit_subjects(got, sizeof got);
        cr_assert_str_eq(got, "c");
        store_close(holder);
        store_queue_free(q);
}

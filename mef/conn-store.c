/* SPDX-License-Identifier: MIT */
/* A connection's work in the store threads (mef/store-queue.h): its request, handed over and
 * answered back in the loop (or 503 when no thread took it in time), and on PostgreSQL the PSK
 * identity its ClientHello offers, looked up before the handshake goes on. The job owns what it
 * needs: the connection may go while a thread still runs it. */
#include "mef/conn-internal.h"
#include "util/util.h"

/* Back in the loop after a store thread. */
static void conn_job_done(store_job_t *job, int r) {
        conn_job_t *j = (conn_job_t *) job;
        conn_t *c = j->conn;
        if (c) {
                c->job = NULL;
                /* the timer may still be at the job's start deadline (conn_submit()): the answer
                 * has the rest of the request's time to be written, as the other ways out of
                 * CONN_STORE give it (conn_store_overdue(), on_conn_timer()) */
                conn_set_deadline_at(c, c->deadline);
                if (r >= 0)
                        r = j->answer(j, c);
                else {
                        /* -ETIME: queued behind a slow store until its deadline */
                        int error = r;
                        r = c->listener->ops->answer_error(c, error == -ETIME ? 503 : 500,
                                                           error == -ETIME ? "store busy: retry later" : "internal error",
                                                           http_msg_header(&j->msg, "X-M2M-RI"));
                        conn_set_failure(c, error == -ETIME ? "waiting for a store thread" : "handling the request", error,
                                         NULL);
                }
        }
        j->free(j);
        if (c)
                conn_resume(c, r);
}

void conn_job_init(conn_job_t *j, http_msg_t *msg, int (*run)(store_job_t *job, mef_store_t *store),
                   int (*answer)(conn_job_t *j, conn_t *c), void (*free_job)(conn_job_t *j)) {
        *j = (conn_job_t) { .job = { .run = run }, .msg = *msg, .answer = answer, .free = free_job };
        *msg = (http_msg_t) {};
}

/* Not started by its deadline (the connection's, or the store's busy timeout from now): done()
 * gets -ETIME rather than a result the client may no longer wait for. */
static int conn_queue(conn_t *c, store_job_t *job, void (*done)(store_job_t *job, int r)) {
        job->done = done;
        job->deadline = MIN(c->deadline, now_usec() + c->listener->busy_usec);
        return store_queue_submit(c->listener->queue, job);
}

int conn_submit(conn_t *c, conn_job_t *j) {
        j->conn = c;
        int r = conn_queue(c, &j->job, conn_job_done);
        if (r < 0)
                return r;
        c->job = j;
        c->phase = CONN_STORE;
        /* not started by its deadline: taken back and answered 503 (on_conn_timer) */
        (void) sd_event_source_set_time(c->timer, MIN(j->job.deadline, c->deadline));
        return 0;
}

/* Back in the loop: the handshake goes on, wolfSSL's PSK callback finds the result in c->ahead. */
static void conn_ahead_done(store_job_t *job, int r) {
        conn_ahead_t *a = (conn_ahead_t *) job;
        conn_t *c = a->conn;
        a->done = true;
        a->result = r;
        if (!c) {
                a->free(a);
                return;
        }
        c->phase = CONN_HANDSHAKE;
        conn_resume(c, 0);
}

int conn_submit_ahead(conn_t *c, conn_ahead_t *a) {
        a->conn = c;
        int r = conn_queue(c, &a->job, conn_ahead_done);
        if (r < 0)
                return r;
        c->ahead = a;
        return 0;
}

int conn_store_overdue(conn_t *c) {
        listener_t *l = c->listener;
        if (!c->job || store_queue_cancel(l->queue, &c->job->job) < 0)
                return 0;
        conn_job_t *j = TAKE_PTR(c->job);
        int r = l->ops->answer_error(c, 503, "store busy: retry later", http_msg_header(&j->msg, "X-M2M-RI"));
        conn_set_failure(c, "waiting for a store thread", -ETIME, NULL);
        j->free(j);
        conn_set_deadline_at(c, c->deadline);
        conn_resume(c, r);
        return 1;
}

void conn_ahead_drop(conn_t *c) {
        conn_ahead_t *a = TAKE_PTR(c->ahead);
        if (!a)
                return;
        if (a->done || store_queue_cancel(c->listener->queue, &a->job) == 0)
                a->free(a);
        else
                a->conn = NULL; /* its thread finishes; done() frees it */
}

/* SPDX-License-Identifier: MIT */
/* getaddrinfo() off the event loop (agent/resolve.h). The job is shared by the loop side and the
 * thread with a reference count, so either may go first: a cancelled lookup runs to its end in
 * the thread and is freed there. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>

#include "agent/resolve.h"
#include "util/net.h"
#include "util/util.h"

typedef struct job {
        atomic_int refs;
        char *host, *port;
        int efd;
        int r;                /* result, published before the eventfd write */
        struct addrinfo *res;
} job_t;

struct resolve {
        sd_event_source *src;
        job_t *job;
        resolve_done_t done;
        void *userdata;
};

static const struct addrinfo hints_tcp = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_protocol = IPPROTO_TCP,
        .ai_flags = AI_NUMERICSERV,
};

static void job_unref(job_t *j) {
        if (!j || atomic_fetch_sub(&j->refs, 1) != 1)
                return;
        if (j->res)
                freeaddrinfo(j->res);
        if (j->efd >= 0)
                close(j->efd);
        free(j->host);
        free(j->port);
        free(j);
}

static void *job_run(void *p) {
        job_t *j = p;
        struct addrinfo *res = NULL;
        int r = gai_error_to_errno(getaddrinfo(j->host, j->port, &hints_tcp, &res));
        j->res = r == 0 ? res : NULL;
        j->r = r;
        /* The eventfd write orders the stores above before the loop's read. */
        uint64_t one = 1;
        (void) !write(j->efd, &one, sizeof one);
        job_unref(j);
        return NULL;
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        resolve_t *q = userdata;
        uint64_t v;
        if (read(fd, &v, sizeof v) < 0 && errno == EAGAIN)
                return 0;
        q->src = sd_event_source_disable_unref(q->src);
        job_t *j = q->job;
        struct addrinfo *ai = TAKE_PTR(j->res);
        int r = j->r;
        q->done(q, r, ai, q->userdata); /* may free q: nothing after this */
        return 0;
}

int resolve_start(sd_event *e, const char *host, const char *port, resolve_done_t done, void *userdata,
                  resolve_t **ret, struct addrinfo **ret_ai) {
        if (!e || !host || !*host || !port || !*port || !done || !ret || !ret_ai)
                return -EINVAL;

        struct addrinfo numeric = hints_tcp, *ai = NULL;
        numeric.ai_flags |= AI_NUMERICHOST;
        if (getaddrinfo(host, port, &numeric, &ai) == 0) {
                *ret_ai = ai;
                return 1;
        }

        _cleanup_(resolve_freep) resolve_t *q = calloc(1, sizeof *q);
        job_t *j = calloc(1, sizeof *j);
        if (!q || !j) {
                free(j);
                return -ENOMEM;
        }
        atomic_init(&j->refs, 1);
        j->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        j->host = strdup(host);
        j->port = strdup(port);
        q->job = j;
        q->done = done;
        q->userdata = userdata;
        if (j->efd < 0 || !j->host || !j->port)
                return j->efd < 0 ? negative_errno() : -ENOMEM;
        int r = sd_event_add_io(e, &q->src, j->efd, EPOLLIN, on_done, q);
        if (r < 0)
                return r;

        /* The thread takes no signal: sd-event's signal sources need them blocked everywhere. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_attr_t attr;
        pthread_t t;
        if (pthread_attr_init(&attr) != 0)
                return -ENOMEM;
        (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        (void) pthread_attr_setstacksize(&attr, 256 * 1024);
        atomic_fetch_add(&j->refs, 1);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int k = pthread_create(&t, &attr, job_run, j);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (k != 0) {
                atomic_fetch_sub(&j->refs, 1);
                return -EAGAIN;
        }
        *ret = TAKE_PTR(q);
        return 0;
}

resolve_t *resolve_free(resolve_t *q) {
        if (!q)
                return NULL;
        q->src = sd_event_source_disable_unref(q->src);
        job_unref(q->job);
        free(q);
        return NULL;
}

/* SPDX-License-Identifier: MIT */
/* Counters in a MAP_SHARED mapping, updated with relaxed atomics: a scrape may see one
 * histogram a request ahead of another, which Prometheus tolerates; it never sees torn words. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mef/metrics.h"
#include "util/macro.h"
#include "util/string-table.h"

/* The HTTP statuses the MEF answers (protocol section 3 and the server's refusals); anything
 * else is counted as "other" so the label set stays fixed. */
static const int statuses[] = { 200, 201, 204, 400, 403, 404, 405, 409, 410, 429, 431, 500, 503 };
#define N_STATUS (ELEMENTSOF(statuses) + 1)

/* Seconds, as Prometheus wants them; in usec for the comparisons. */
static const uint64_t bucket_usec[] = { 1000,   2500,   5000,    10000,   25000,   50000,   100000,
                                        250000, 500000, 1000000, 2500000, 5000000, 10000000 };
#define N_BUCKET (ELEMENTSOF(bucket_usec) + 1) /* + Inf */

typedef struct histogram {
        uint64_t bucket[N_BUCKET]; /* not cumulative here: summed when rendered */
        uint64_t sum_usec;
        uint64_t count;
} histogram_t;

struct mef_metrics {
        uint64_t requests[_MEF_EXCHANGE_MAX][N_STATUS];
        histogram_t request_time[_MEF_EXCHANGE_MAX];
        histogram_t store_time;
        uint64_t failures[_MEF_FAIL_MAX];
        uint64_t psk_lookups[_MEF_PSK_MAX];
        uint64_t store_batches, store_batch_jobs;
        int64_t connections[1 + MEF_METRICS_WORKERS]; /* per process: summed when rendered */
};

/* This process's slot of connections[]: each worker's own copy, set after the fork. */
static unsigned own_slot;

static const char *const exchange_names[_MEF_EXCHANGE_MAX] = {
        [MEF_EXCHANGE_OTHER] = "other",   [MEF_EXCHANGE_ENROL] = "enrol",
        [MEF_EXCHANGE_STATUS] = "status", [MEF_EXCHANGE_DEREGISTER] = "deregister",
        [MEF_EXCHANGE_FETCH] = "fetch",
};

static const char *const failure_names[_MEF_FAIL_MAX] = {
        [MEF_FAIL_AUTH] = "authentication",
        [MEF_FAIL_PROTOCOL] = "protocol",
        [MEF_FAIL_HANDSHAKE_OTHER] = "handshake_other",
        [MEF_FAIL_NO_CLIENT_HELLO] = "no_client_hello",
        [MEF_FAIL_HANDSHAKE_TIMEOUT] = "handshake_timeout",
        [MEF_FAIL_REQUEST_TIMEOUT] = "request_timeout",
        [MEF_FAIL_EVICTED] = "evicted",
        [MEF_FAIL_CLOSED] = "closed_in_handshake",
        [MEF_FAIL_STORE_UNAVAILABLE] = "store_unavailable",
        [MEF_FAIL_STORE_ERROR] = "store_error",
};

DEFINE_STRING_TABLE_TO_STRING(mef_exchange, mef_exchange_t, exchange_names)

int mef_metrics_new(mef_metrics_t **ret) {
        void *p = mmap(NULL, sizeof(mef_metrics_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
                return -errno;
        *ret = p; /* zero-filled */
        return 0;
}

mef_metrics_t *mef_metrics_free(mef_metrics_t *m) {
        if (m)
                (void) munmap(m, sizeof *m);
        return NULL;
}

static void add(uint64_t *v, uint64_t n) {
        __atomic_fetch_add(v, n, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *v) {
        return __atomic_load_n(v, __ATOMIC_RELAXED);
}

static void observe(histogram_t *h, uint64_t usec) {
        size_t i = 0;
        while (i < ELEMENTSOF(bucket_usec) && usec > bucket_usec[i])
                i++;
        add(&h->bucket[i], 1);
        add(&h->sum_usec, usec);
        add(&h->count, 1);
}

void mef_metrics_request(mef_metrics_t *m, mef_exchange_t ex, int http_status, uint64_t usec) {
        if (!m || ex < 0 || ex >= _MEF_EXCHANGE_MAX)
                return;
        size_t s = 0;
        while (s < ELEMENTSOF(statuses) && statuses[s] != http_status)
                s++;
        add(&m->requests[ex][s], 1);
        observe(&m->request_time[ex], usec);
}

void mef_metrics_store(mef_metrics_t *m, uint64_t usec) {
        if (m)
                observe(&m->store_time, usec);
}

void mef_metrics_failure(mef_metrics_t *m, mef_conn_failure_t f) {
        if (m && f >= 0 && f < _MEF_FAIL_MAX)
                add(&m->failures[f], 1);
}

void mef_metrics_psk_lookup(mef_metrics_t *m, mef_psk_lookup_t where) {
        if (m && where >= 0 && where < _MEF_PSK_MAX)
                add(&m->psk_lookups[where], 1);
}

void mef_metrics_store_batch(mef_metrics_t *m, unsigned jobs) {
        if (m && jobs > 0) {
                add(&m->store_batches, 1);
                add(&m->store_batch_jobs, jobs);
        }
}

void mef_metrics_connections(mef_metrics_t *m, int delta) {
        if (m)
                __atomic_fetch_add(&m->connections[own_slot], (int64_t) delta, __ATOMIC_RELAXED);
}

void mef_metrics_use_slot(mef_metrics_t *m, unsigned slot) {
        if (slot <= MEF_METRICS_WORKERS)
                own_slot = slot;
}

void mef_metrics_clear_slot(mef_metrics_t *m, unsigned slot) {
        if (m && slot <= MEF_METRICS_WORKERS)
                __atomic_store_n(&m->connections[slot], 0, __ATOMIC_RELAXED);
}

/* ---- rendering ---- */

typedef struct out {
        char *buf;
        size_t len, size;
        int error;
} out_t;

_printf_(2, 3) static void put(out_t *o, const char *fmt, ...) {
        if (o->error)
                return;
        for (;;) {
                va_list ap;
                va_start(ap, fmt);
                int n = vsnprintf(o->buf + o->len, o->size - o->len, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        o->error = -EINVAL;
                        return;
                }
                if ((size_t) n < o->size - o->len) {
                        o->len += (size_t) n;
                        return;
                }
                size_t size = MAX(o->size * 2, o->len + (size_t) n + 1);
                char *b = realloc(o->buf, size);
                if (!b) {
                        o->error = -ENOMEM;
                        return;
                }
                o->buf = b;
                o->size = size;
        }
}

static void put_histogram(out_t *o, const char *name, const char *label, const histogram_t *h) {
        uint64_t cum = 0;
        const char *sep = label[0] ? "," : "";
        for (size_t i = 0; i < N_BUCKET; i++) {
                cum += get(&h->bucket[i]);
                if (i < ELEMENTSOF(bucket_usec))
                        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, label, sep, (double) bucket_usec[i] / 1e6,
                            (unsigned long long) cum);
                else
                        put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, label, sep, (unsigned long long) cum);
        }
        const char *open = label[0] ? "{" : "", *close = label[0] ? "}" : "";
        put(o, "%s_sum%s%s%s %.6f\n", name, open, label, close, (double) get(&h->sum_usec) / 1e6);
        put(o, "%s_count%s%s%s %llu\n", name, open, label, close, (unsigned long long) get(&h->count));
}

int mef_metrics_render(const mef_metrics_t *m, const store_counts_t *g, char **ret, size_t *ret_len) {
        if (!m || !ret || !ret_len)
                return -EINVAL;
        out_t o = { .size = 8192 };
        o.buf = malloc(o.size);
        if (!o.buf)
                return -ENOMEM;
        o.buf[0] = 0;

        put(&o, "# HELP msce_mef_requests_total Answers to authenticated and refused requests, by exchange and HTTP status.\n"
                "# TYPE msce_mef_requests_total counter\n");
        for (size_t e = 0; e < _MEF_EXCHANGE_MAX; e++)
                for (size_t s = 0; s < N_STATUS; s++) {
                        char code[16];
                        if (s < ELEMENTSOF(statuses))
                                snprintf(code, sizeof code, "%d", statuses[s]);
                        else
                                snprintf(code, sizeof code, "other");
                        put(&o, "msce_mef_requests_total{exchange=\"%s\",code=\"%s\"} %llu\n", exchange_names[e],
                            code, (unsigned long long) get(&m->requests[e][s]));
                }

        put(&o, "# HELP msce_mef_request_duration_seconds From accept to the answer written, by exchange.\n"
                "# TYPE msce_mef_request_duration_seconds histogram\n");
        for (size_t e = 0; e < _MEF_EXCHANGE_MAX; e++) {
                char label[48];
                snprintf(label, sizeof label, "exchange=\"%s\"", exchange_names[e]);
                put_histogram(&o, "msce_mef_request_duration_seconds", label, &m->request_time[e]);
        }

        put(&o, "# HELP msce_mef_store_duration_seconds Time a request spent with the store (lookups, "
                "transaction, audit).\n"
                "# TYPE msce_mef_store_duration_seconds histogram\n");
        put_histogram(&o, "msce_mef_store_duration_seconds", "", &m->store_time);

        put(&o, "# HELP msce_mef_store_batches_total Runs of a store thread: jobs taken together into one "
                "transaction (SQLite's group commit), or one job alone.\n"
                "# TYPE msce_mef_store_batches_total counter\n"
                "msce_mef_store_batches_total %llu\n"
                "# HELP msce_mef_store_batch_jobs_total The jobs (requests, scrapes, retention) those runs "
                "held.\n"
                "# TYPE msce_mef_store_batch_jobs_total counter\n"
                "msce_mef_store_batch_jobs_total %llu\n",
            (unsigned long long) get(&m->store_batches), (unsigned long long) get(&m->store_batch_jobs));

        put(&o, "# HELP msce_mef_connection_failures_total Connections that ended without an authenticated "
                "answer, by reason.\n"
                "# TYPE msce_mef_connection_failures_total counter\n");
        for (size_t f = 0; f < _MEF_FAIL_MAX; f++)
                put(&o, "msce_mef_connection_failures_total{reason=\"%s\"} %llu\n", failure_names[f],
                    (unsigned long long) get(&m->failures[f]));

        put(&o, "# HELP msce_mef_psk_lookups_total PSK identities looked up for handshakes: ahead, in a store "
                "thread, or on the event loop, which waits for the store meanwhile.\n"
                "# TYPE msce_mef_psk_lookups_total counter\n"
                "msce_mef_psk_lookups_total{where=\"ahead\"} %llu\n"
                "msce_mef_psk_lookups_total{where=\"loop\"} %llu\n",
            (unsigned long long) get(&m->psk_lookups[MEF_PSK_AHEAD]),
            (unsigned long long) get(&m->psk_lookups[MEF_PSK_LOOP]));

        int64_t open = 0;
        for (size_t i = 0; i < ELEMENTSOF(m->connections); i++)
                open += __atomic_load_n(&m->connections[i], __ATOMIC_RELAXED);
        put(&o, "# HELP msce_mef_connections_open Connections open now, in every worker.\n"
                "# TYPE msce_mef_connections_open gauge\n"
                "msce_mef_connections_open %lld\n",
            (long long) open);

        if (g) {
                put(&o, "# HELP msce_mef_nodes Nodes registered in the store.\n"
                        "# TYPE msce_mef_nodes gauge\n"
                        "msce_mef_nodes %llu\n",
                    (unsigned long long) g->nodes);
                put(&o, "# HELP msce_mef_enrolments Current enrolments (one per node at most), by state.\n"
                        "# TYPE msce_mef_enrolments gauge\n"
                        "msce_mef_enrolments{state=\"active\"} %llu\n"
                        "msce_mef_enrolments{state=\"expired\"} %llu\n",
                    (unsigned long long) g->enrolments_active, (unsigned long long) g->enrolments_expired);
        }
        if (o.error) {
                free(o.buf);
                return o.error;
        }
        *ret = o.buf;
        *ret_len = o.len;
        return 0;
}

/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mef/metrics.h"
#include "util/util.h"

static char *render(const mef_metrics_t *m, const store_counts_t *gauges) {
        char *text = NULL;
        size_t len = 0;
        cr_assert_eq(mef_metrics_render(m, gauges, &text, &len), 0);
        cr_assert_eq(strlen(text), len);
        return text;
}

/* The value of the sample line "NAME VALUE" (exact name with labels), or -1. */
static double sample(const char *text, const char *name) {
        size_t n = strlen(name);
        for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
                if (strncmp(p, name, n) == 0 && p[n] == ' ')
                        return strtod(p + n + 1, NULL);
        return -1;
}

/* Samples the tests expect in what they render, by test: the name with labels, the value. */
static const struct {
        const char *test, *name;
        double value;
} samples[] = {
        { "counts_by_exchange_and_status", "msce_mef_requests_total{exchange=\"enrol\",code=\"201\"}", 2 },
        { "counts_by_exchange_and_status", "msce_mef_requests_total{exchange=\"enrol\",code=\"503\"}", 1 },
        { "counts_by_exchange_and_status", "msce_mef_requests_total{exchange=\"status\",code=\"other\"}", 1 },
        { "counts_by_exchange_and_status", "msce_mef_requests_total{exchange=\"fetch\",code=\"200\"}", 0 },
        { "counts_by_exchange_and_status", "msce_mef_connection_failures_total{reason=\"authentication\"}", 1 },
        { "counts_by_exchange_and_status", "msce_mef_connection_failures_total{reason=\"store_unavailable\"}", 1 },
        { "counts_by_exchange_and_status", "msce_mef_connections_open", 2 },
        { "histogram_buckets_are_cumulative", "msce_mef_store_duration_seconds_bucket{le=\"0.001\"}", 1 },
        { "histogram_buckets_are_cumulative", "msce_mef_store_duration_seconds_bucket{le=\"0.0025\"}", 2 },
        { "histogram_buckets_are_cumulative", "msce_mef_store_duration_seconds_bucket{le=\"10\"}", 2 },
        { "histogram_buckets_are_cumulative", "msce_mef_store_duration_seconds_bucket{le=\"+Inf\"}", 3 },
        { "histogram_buckets_are_cumulative", "msce_mef_store_duration_seconds_count", 3 },
        { "shared_with_forked_workers", "msce_mef_requests_total{exchange=\"fetch\",code=\"200\"}", 2000 },
        { "shared_with_forked_workers", "msce_mef_request_duration_seconds_count{exchange=\"fetch\"}", 2000 },
        { "store_gauges_or_none", "msce_mef_nodes", 7 },
        { "store_gauges_or_none", "msce_mef_enrolments{state=\"active\"}", 5 },
        { "store_gauges_or_none", "msce_mef_enrolments{state=\"expired\"}", 2 },
};

static void samples_are(const char *t, const char *test) {
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(samples); i++)
                if (streq(samples[i].test, test)) {
                        cr_assert_eq(sample(t, samples[i].name), samples[i].value, "%s", samples[i].name);
                        n++;
                }
        cr_assert_gt(n, 0, "no samples for %s", test);
}

Test(metrics, counts_by_exchange_and_status) {
        mef_metrics_t *m = NULL;
        cr_assert_eq(mef_metrics_new(&m), 0);
        mef_metrics_request(m, MEF_EXCHANGE_ENROL, 201, 3000);
        mef_metrics_request(m, MEF_EXCHANGE_ENROL, 201, 3000);
        mef_metrics_request(m, MEF_EXCHANGE_ENROL, 503, 10);
        mef_metrics_request(m, MEF_EXCHANGE_STATUS, 418, 10); /* not in the fixed set: "other" */
        mef_metrics_failure(m, MEF_FAIL_AUTH);
        mef_metrics_failure(m, MEF_FAIL_STORE_UNAVAILABLE);
        mef_metrics_connections(m, +3);
        mef_metrics_connections(m, -1);
        _cleanup_free_ char *t = render(m, NULL);
        samples_are(t, "counts_by_exchange_and_status");
        /* no store callback: no store gauges */
        cr_assert_null(strstr(t, "msce_mef_nodes"));
        mef_metrics_free(m);
}

Test(metrics, histogram_buckets_are_cumulative) {
        mef_metrics_t *m = NULL;
        cr_assert_eq(mef_metrics_new(&m), 0);
        mef_metrics_store(m, 1000);     /* on the 1 ms bound: in le="0.001" */
        mef_metrics_store(m, 1001);     /* just above: le="0.0025" */
        mef_metrics_store(m, 60000000); /* a minute: only +Inf */
        _cleanup_free_ char *t = render(m, NULL);
        samples_are(t, "histogram_buckets_are_cumulative");
        cr_assert_float_eq(sample(t, "msce_mef_store_duration_seconds_sum"), 60.002001, 1e-6);
        mef_metrics_free(m);
}

/* Two forked children (workers) each run work(m, 0 or 1) and exit; back when both have. */
static void in_two_workers(mef_metrics_t *m, void (*work)(mef_metrics_t *m, int i)) {
        pid_t pids[2];
        for (int i = 0; i < 2; i++) {
                pids[i] = fork();
                cr_assert_geq(pids[i], 0);
                if (pids[i] == 0) {
                        work(m, i);
                        _exit(0);
                }
        }
        for (int i = 0; i < 2; i++) {
                int st;
                cr_assert_eq(waitpid(pids[i], &st, 0), pids[i]);
                cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
}

static void fetches(mef_metrics_t *m, int i) {
        for (int k = 0; k < 1000; k++)
                mef_metrics_request(m, MEF_EXCHANGE_FETCH, 200, 5);
}

/* Workers are forked after mef_metrics_new(): what a child counts, the parent renders. */
Test(metrics, shared_with_forked_workers) {
        mef_metrics_t *m = NULL;
        cr_assert_eq(mef_metrics_new(&m), 0);
        in_two_workers(m, fetches);
        _cleanup_free_ char *t = render(m, NULL);
        samples_are(t, "shared_with_forked_workers");
        mef_metrics_free(m);
}

/* Worker i + 1 opens 3 + i connections and dies without closing them. */
static void connections_left_open(mef_metrics_t *m, int i) {
        mef_metrics_use_slot(m, (unsigned) i + 1);
        mef_metrics_connections(m, +3 + i);
}

/* Workers count their open connections each in a slot; a worker that dies (SIGKILL, a crash:
 * no connection of it closes through conn_free()) takes its count with it once the supervisor
 * clears its slot, and the others' stay. */
Test(metrics, connections_of_a_dead_worker_leave_the_gauge) {
        mef_metrics_t *m = NULL;
        cr_assert_eq(mef_metrics_new(&m), 0);
        in_two_workers(m, connections_left_open);
        _cleanup_free_ char *t = render(m, NULL);
        cr_assert_eq(sample(t, "msce_mef_connections_open"), 7);
        mef_metrics_clear_slot(m, 1);
        _cleanup_free_ char *t2 = render(m, NULL);
        cr_assert_eq(sample(t2, "msce_mef_connections_open"), 4, "the live worker's 4 stay");
        mef_metrics_clear_slot(m, 2);
        mef_metrics_clear_slot(m, MEF_METRICS_WORKERS + 1); /* out of range: ignored */
        _cleanup_free_ char *t3 = render(m, NULL);
        cr_assert_eq(sample(t3, "msce_mef_connections_open"), 0);
        mef_metrics_free(m);
}

Test(metrics, store_gauges_or_none) {
        mef_metrics_t *m = NULL;
        cr_assert_eq(mef_metrics_new(&m), 0);
        const store_counts_t g = { .nodes = 7, .enrolments_active = 5, .enrolments_expired = 2 };
        _cleanup_free_ char *t = render(m, &g);
        samples_are(t, "store_gauges_or_none");
        _cleanup_free_ char *t2 = render(m, NULL);
        /* a store that cannot answer leaves its gauges out rather than reporting 0 */
        cr_assert_null(strstr(t2, "msce_mef_nodes"));
        cr_assert_geq(sample(t2, "msce_mef_connections_open"), 0);
        mef_metrics_free(m);
}

Test(metrics, off_is_a_no_op) {
        mef_metrics_request(NULL, MEF_EXCHANGE_ENROL, 201, 1);
        mef_metrics_store(NULL, 1);
        mef_metrics_failure(NULL, MEF_FAIL_AUTH);
        mef_metrics_connections(NULL, 1);
        char *t = NULL;
        size_t len;
        cr_assert_eq(mef_metrics_render(NULL, NULL, &t, &len), -EINVAL);
}

/* SPDX-License-Identifier: MIT */
/* msce-loadgen's latency histograms (loadgen/loadgen.c): percentiles and the maximum keep the
 * magnitude of every value, from microseconds to the minutes a storm's power-on to enrolled
 * takes with its backoff, each within 0.8 % above it (a bucket's upper bound). */
#include <criterion/criterion.h>

#include "loadgen/loadgen.h"
#include "util/util.h"

static uint32_t hist[LG_HIST_N];

static void setup(void) {
        memset(hist, 0, sizeof hist);
}

TestSuite(loadgen_hist, .init = setup);

static void add(uint64_t usec, unsigned times) {
        for (unsigned i = 0; i < times; i++)
                lg_hist_add(hist, usec);
}

/* got (ms) for a value of usec: no less, and at most 0.8 % (one bucket) more */
static void near(double got_ms, uint64_t usec, const char *what) {
        double want = (double) usec / 1000.0;
        cr_assert(got_ms >= want && got_ms <= want * 1.008 + 0.001, "%s: %.3f ms for a value of %.3f ms", what,
                  got_ms, want);
}

Test(loadgen_hist, empty_is_zero) {
        cr_assert_eq(lg_hist_ms(hist, 50), 0);
        cr_assert_eq(lg_hist_max_ms(hist), 0);
}

/* A storm's power-on to enrolled: half the gateways at once, the rest after minutes of 503s and
 * backoff. p99 and max are minutes, not a cap. */
Test(loadgen_hist, minutes_keep_their_magnitude) {
        add(2 * 1000, 50);
        add(100 * USEC_PER_SEC, 49);
        add(250 * USEC_PER_SEC, 1);
        near(lg_hist_ms(hist, 99), 100 * USEC_PER_SEC, "p99");
        near(lg_hist_ms(hist, 100), 250 * USEC_PER_SEC, "p100");
        near(lg_hist_max_ms(hist), 250 * USEC_PER_SEC, "max");
        near(lg_hist_ms(hist, 50), 2 * 1000, "p50");
}

Test(loadgen_hist, every_scale_within_a_bucket) {
        static const uint64_t values[] = { 0,    1,     99,     100,    255,     256,      257,
                                           1000, 4321,  65535,  65536,  999999,  59999999, 60000000,
                                           86400ull * USEC_PER_SEC, (1ull << 40) - 1 };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                memset(hist, 0, sizeof hist);
                add(values[i], 1);
                near(lg_hist_max_ms(hist), values[i], "max");
                near(lg_hist_ms(hist, 50), values[i], "p50");
        }
}

/* Nearest rank: p99 of 1..100 ms is the 99th value. */
Test(loadgen_hist, nearest_rank) {
        for (uint64_t ms = 1; ms <= 100; ms++)
                add(ms * 1000, 1);
        near(lg_hist_ms(hist, 99), 99 * 1000, "p99");
        near(lg_hist_ms(hist, 50), 50 * 1000, "p50");
        near(lg_hist_ms(hist, 1), 1 * 1000, "p1");
}

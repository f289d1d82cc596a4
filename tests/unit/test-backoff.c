/* SPDX-License-Identifier: MIT */
/* Retry delays: bounds of the full jitter, the cap, the Retry-After clamp, the initial delay,
 * and that the jitter is actually spread (uniform enough) rather than a constant. */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>

#include "agent/backoff.h"

#define S 1000000ull

static const backoff_params_t P = {
        .min_usec = 1 * S,
        .max_usec = 600 * S,
        .retry_after_max_usec = 3600 * S,
};

/* A deterministic stream of 64-bit values (splitmix64), so failures are reproducible. */
static uint64_t next(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* The first retry is spread too: a fleet whose exchanges failed at one moment (a MEF
 * restart) must not come back at one. */
Test(backoff, first_retry_is_jittered) {
        uint64_t st = 1, lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 5000; i++) {
                uint64_t d = backoff_delay(&P, 1, next(&st));
                cr_assert(d >= P.min_usec && d <= 2 * P.min_usec, "%llu", (unsigned long long) d);
                lo = d < lo ? d : lo;
                hi = d > hi ? d : hi;
        }
        cr_assert_lt(lo, P.min_usec + P.min_usec / 50, "lowest %llu", (unsigned long long) lo);
        cr_assert_gt(hi, 2 * P.min_usec - P.min_usec / 50, "highest %llu", (unsigned long long) hi);
        cr_assert_eq(backoff_delay(&P, 1, 0), P.min_usec);
}

Test(backoff, bounds_per_attempt) {
        uint64_t st = 2;
        for (unsigned a = 1; a <= 40; a++) {
                uint64_t ceiling = P.min_usec << (a < 20 ? a : 20);
                if (ceiling > P.max_usec)
                        ceiling = P.max_usec;
                uint64_t lo = UINT64_MAX, hi = 0;
                for (int i = 0; i < 5000; i++) {
                        uint64_t d = backoff_delay(&P, a, next(&st));
                        cr_assert_geq(d, P.min_usec, "attempt %u: %llu below min", a, (unsigned long long) d);
                        cr_assert_leq(d, ceiling, "attempt %u: %llu above %llu", a, (unsigned long long) d,
                                      (unsigned long long) ceiling);
                        lo = d < lo ? d : lo;
                        hi = d > hi ? d : hi;
                }
                /* Full jitter: the whole range is used, not just its top. */
                uint64_t span = ceiling - P.min_usec;
                cr_assert_lt(lo - P.min_usec, span / 50, "attempt %u: lowest %llu", a, (unsigned long long) lo);
                cr_assert_gt(hi - P.min_usec, span - span / 50, "attempt %u: highest %llu", a, (unsigned long long) hi);
        }
}

Test(backoff, uniform_spread) {
        /* attempt 4: [1 s, 16 s]; ten equal bins each get about a tenth. */
        uint64_t st = 3;
        unsigned bins[10] = { 0 };
        const int n = 100000;
        double sum = 0;
        for (int i = 0; i < n; i++) {
                uint64_t d = backoff_delay(&P, 4, next(&st));
                sum += (double) d;
                unsigned b = (unsigned) ((d - P.min_usec) * 10 / (15 * S + 1));
                bins[b]++;
        }
        for (int b = 0; b < 10; b++)
                cr_assert(bins[b] > n / 10 * 0.9 && bins[b] < n / 10 * 1.1, "bin %d has %u of %d", b, bins[b], n);
        double mean = sum / n;
        cr_assert(mean > 8.3 * S && mean < 8.7 * S, "mean %.0f", mean);
}

Test(backoff, cap) {
        uint64_t st = 4;
        unsigned attempts[] = { 11, 12, 50, 64, 65, 1000, UINT_MAX };
        for (size_t k = 0; k < sizeof attempts / sizeof attempts[0]; k++) {
                cr_assert_leq(backoff_delay(&P, attempts[k], UINT64_MAX), P.max_usec);
                uint64_t hi = 0;
                for (int i = 0; i < 2000; i++) {
                        uint64_t d = backoff_delay(&P, attempts[k], next(&st));
                        cr_assert_leq(d, P.max_usec, "attempt %u: %llu", attempts[k], (unsigned long long) d);
                        hi = d > hi ? d : hi;
                }
                cr_assert_gt(hi, P.max_usec * 99 / 100, "attempt %u never near the cap", attempts[k]);
        }
        /* min == max: no jitter left. */
        backoff_params_t fixed = { .min_usec = 5 * S, .max_usec = 5 * S, .retry_after_max_usec = S };
        for (unsigned a = 1; a < 100; a++)
                cr_assert_eq(backoff_delay(&fixed, a, next(&st)), 5 * S);
        /* The largest configurable values do not overflow. */
        backoff_params_t big = { .min_usec = 3600 * S, .max_usec = 86400 * S, .retry_after_max_usec = 86400 * S };
        cr_assert_leq(backoff_delay(&big, UINT_MAX, UINT64_MAX), 86400 * S);
        cr_assert_geq(backoff_delay(&big, UINT_MAX, 0), 3600 * S);
}

Test(backoff, retry_after) {
        uint64_t st = 5;
        for (int i = 0; i < 2000; i++) {
                uint64_t d = backoff_retry_after(&P, 8, next(&st));
                cr_assert(d >= 8 * S && d <= 9 * S, "Retry-After 8: %llu", (unsigned long long) d);
        }
        /* Clamped: a day asked, an hour given at most. */
        for (int i = 0; i < 2000; i++)
                cr_assert_eq(backoff_retry_after(&P, 86400, next(&st)), 3600 * S);
        backoff_params_t small = { .min_usec = S / 10, .max_usec = 10 * S, .retry_after_max_usec = 30 * S };
        for (int i = 0; i < 2000; i++) {
                uint64_t d = backoff_retry_after(&small, 29, next(&st));
                cr_assert(d >= 29 * S && d <= 30 * S, "Retry-After 29 clamped at 30: %llu", (unsigned long long) d);
        }
        cr_assert_eq(backoff_retry_after(&small, UINT_MAX, UINT64_MAX), 30 * S);
        /* Retry-After: 0 is no reason to hammer the MEF. */
        cr_assert_eq(backoff_retry_after(&P, 0, next(&st)), P.min_usec);
        /* Spread, not constant. */
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
                uint64_t d = backoff_retry_after(&P, 80, next(&st));
                lo = d < lo ? d : lo;
                hi = d > hi ? d : hi;
        }
        cr_assert(lo < 81 * S && hi > 89 * S, "Retry-After 80 spread over [%llu, %llu]", (unsigned long long) lo,
                  (unsigned long long) hi);
}

Test(backoff, initial) {
        uint64_t st = 6;
        cr_assert_eq(backoff_initial(0, UINT64_MAX), 0);
        uint64_t lo = UINT64_MAX, hi = 0;
        for (int i = 0; i < 5000; i++) {
                uint64_t d = backoff_initial(30 * S, next(&st));
                cr_assert_leq(d, 30 * S);
                lo = d < lo ? d : lo;
                hi = d > hi ? d : hi;
        }
        cr_assert(lo < S / 2 && hi > 29 * S, "initial delay spread over [%llu, %llu]", (unsigned long long) lo,
                  (unsigned long long) hi);
}

Test(backoff, random_differs) {
        uint64_t a = backoff_random(), b = backoff_random(), c = backoff_random();
        cr_assert(a != b || b != c, "three equal random values");
}

/* The field value: any number of digits, clamped to the maximum, and what was sent kept for the
 * messages. */
static void ra_ok(const char *v, unsigned max, unsigned want_s, bool want_capped, const char *want_sent) {
        unsigned s = 12345;
        bool capped = !want_capped;
        char sent[RETRY_AFTER_SENT_MAX];
        cr_assert_eq(retry_after_parse(v, max, &s, &capped, sent), 1, "%s", v);
        cr_assert_eq(s, want_s, "%s: %u s", v, s);
        cr_assert_eq(capped, want_capped, "%s", v);
        cr_assert_str_eq(sent, want_sent);
}

Test(backoff, retry_after_parse) {
        static const struct {
                const char *value;
                unsigned want_s;
                bool capped;
                const char *sent;
                unsigned max; /* [timing] retry_after_max: 3600 but where given */
        } ok[] = {
                { "120", 120, false, "Retry-After 120 s" },
                { "3600", 3600, false, "Retry-After 3600 s" },
                { "3601", 3600, true, "Retry-After 3601 s" },
                { "0", 0, false, "Retry-After 0 s" },
                { "000", 0, false, "Retry-After 0 s" },
                { "0007", 7, false, "Retry-After 7 s" },
                /* more than 10 digits: clamped, not ignored (it used to fall back to the normal backoff) */
                { "999999999999", 3600, true, "Retry-After 999999999999 s" },
                { "4294967296", 3600, true, "Retry-After 4294967296 s" },
                { "18446744073709551615", 86400, true, "Retry-After 18446744073709551615 s", 86400 },
                { "18446744073709551616", 86400, true, "Retry-After of 20 digits", 86400 },
                { "123456789012345678901234567890", 3600, true, "Retry-After of 30 digits" },
                { "000000000000000000000000000005", 5, false, "Retry-After 5 s" },
        };
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
                ra_ok(ok[i].value, ok[i].max ?: 3600, ok[i].want_s, ok[i].capped, ok[i].sent);

        unsigned s = 77;
        bool capped = true;
        char sent[RETRY_AFTER_SENT_MAX] = "x";
        cr_assert_eq(retry_after_parse(NULL, 3600, &s, &capped, sent), 0);
        cr_assert_str_eq(sent, "");
        static const char *const bad[] = { "", "Fri, 31 Dec 1999 23:59:59 GMT", "-1", "+5", "1.5", "5 ", " 5", "0x10" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                cr_assert_eq(retry_after_parse(bad[i], 3600, &s, &capped, sent), -EINVAL, "%s", bad[i]);
                cr_assert_str_eq(sent, "Retry-After not in seconds");
        }
        cr_assert_eq(s, 77, "untouched unless parsed");
        cr_assert(capped);
}

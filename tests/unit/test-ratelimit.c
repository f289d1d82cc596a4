/* SPDX-License-Identifier: MIT */
/* The per-node enrolment rate limit on a clock of the test's own: the limit per window, the
 * Retry-After until the window closes, one reported refusal per window, other keys unaffected,
 * the bounded table (closed windows give way first, else the oldest), the refusals counted, and
 * an event given back. */
#include <criterion/criterion.h>

#include "mef/ratelimit.h"
#include "util/util.h"

#define S 1000000ull /* usec */
#define T0 (1000 * S)

static ratelimit_t *rl;

static void teardown(void) {
        rl = ratelimit_free(rl);
}

TestSuite(ratelimit, .fini = teardown);

Test(ratelimit, limit_per_window) {
        unsigned refused = 0;
        cr_assert_eq(ratelimit_new(3, 60 * S, 16, &rl), 0);
        for (int i = 0; i < 3; i++)
                cr_assert_eq(ratelimit_take_counted(rl, "node-1", T0 + i * S, &refused), 0, "event %d", i);
        /* the fourth within the window: refused until it closes at T0 + 60 s */
        cr_assert_eq(ratelimit_take_counted(rl, "node-1", T0 + 10 * S, &refused), 50);
        cr_assert_eq(refused, 1, "the window's first refusal");
        cr_assert_eq(ratelimit_take_counted(rl, "node-1", T0 + 10 * S + 1, &refused), 50, "rounded up");
        cr_assert_eq(refused, 2, "the refusals counted");
        cr_assert_eq(ratelimit_take_counted(rl, "node-1", T0 + 60 * S - 1, &refused), 1, "at least 1 s");
        cr_assert_eq(refused, 3);
        /* another node is not affected */
        cr_assert_eq(ratelimit_take_counted(rl, "node-2", T0 + 10 * S, NULL), 0);
        /* a new window: three more, and a refusal reported again */
        for (int i = 0; i < 3; i++)
                cr_assert_eq(ratelimit_take_counted(rl, "node-1", T0 + 60 * S + i, &refused), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "node-1", T0 + 61 * S, &refused), 59);
        cr_assert_eq(refused, 1);
        cr_assert_eq(ratelimit_size(rl), 2);
}

Test(ratelimit, window_opens_with_the_first_event) {
        cr_assert_eq(ratelimit_new(1, 10 * S, 4, &rl), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "n", T0, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "n", T0 + 9 * S, NULL), 1);
        /* refusals do not extend the window */
        cr_assert_eq(ratelimit_take_counted(rl, "n", T0 + 10 * S, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "n", T0 + 15 * S, NULL), 5);
}

Test(ratelimit, bounded_table) {
        char key[16];
        cr_assert_eq(ratelimit_new(1, 60 * S, 3, &rl), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "a", T0, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "b", T0 + 1 * S, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "c", T0 + 2 * S, NULL), 0);
        cr_assert_eq(ratelimit_size(rl), 3);
        /* full: the key whose window opened first ("a") gives way */
        cr_assert_eq(ratelimit_take_counted(rl, "d", T0 + 3 * S, NULL), 0);
        cr_assert_eq(ratelimit_size(rl), 3);
        cr_assert_eq(ratelimit_take_counted(rl, "b", T0 + 4 * S, NULL), 57, "b kept");
        cr_assert_eq(ratelimit_take_counted(rl, "c", T0 + 4 * S, NULL), 58, "c kept");
        cr_assert_eq(ratelimit_take_counted(rl, "d", T0 + 4 * S, NULL), 59, "d kept");
        cr_assert_eq(ratelimit_take_counted(rl, "a", T0 + 5 * S, NULL), 0, "a forgotten (b gives way now)");
        cr_assert_eq(ratelimit_take_counted(rl, "c", T0 + 6 * S, NULL), 56, "c kept");
        cr_assert_eq(ratelimit_take_counted(rl, "b", T0 + 6 * S, NULL), 0, "b forgotten (c gives way now)");
        for (int i = 0; i < 100; i++) {
                snprintf(key, sizeof key, "k%d", i);
                cr_assert_eq(ratelimit_take_counted(rl, key, T0 + 200 * S + (uint64_t) i, NULL), 0);
        }
        cr_assert_eq(ratelimit_size(rl), 3);
}

/* The audit trail's fold of refusals (1 per window): the refusals counted in the window, and
 * the window's first event told how many the window before refused. */
Test(ratelimit, refusals_counted) {
        unsigned n = 99;
        cr_assert_eq(ratelimit_new(1, 60 * S, 4, &rl), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0, &n), 0);
        cr_assert_eq(n, 0);
        for (unsigned i = 1; i <= 5; i++) {
                cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + i * S, &n), 60 - (int) i);
                cr_assert_eq(n, i);
        }
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 60 * S, &n), 0);
        cr_assert_eq(n, 5, "the window before refused 5");
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 200 * S, &n), 0);
        cr_assert_eq(n, 0, "the window before refused none");
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 201 * S, NULL), 59);
}

/* An allowed event given back (an enrolment the store then failed) is no longer counted, in the
 * window that counted it only: not in one opened since, nor for a key the table forgot. */
Test(ratelimit, refund) {
        unsigned n = 99;
        cr_assert_eq(ratelimit_new(2, 60 * S, 2, &rl), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + S, NULL), 0);
        ratelimit_refund(rl, "k", T0 + S);
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 2 * S, NULL), 0, "the refunded event still counted");
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 3 * S, &n), 57);
        cr_assert_eq(n, 1);
        /* a refund never goes below nothing, nor makes room beyond the limit */
        ratelimit_refund(rl, "k", T0 + 2 * S);
        ratelimit_refund(rl, "k", T0 + 2 * S);
        ratelimit_refund(rl, "k", T0 + 2 * S);
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 4 * S, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 4 * S, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 4 * S, NULL), 56);

        /* taken in the window before: the new window keeps its count */
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 60 * S, &n), 0);
        cr_assert_eq(n, 2, "the window before refused 2");
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 61 * S, NULL), 0);
        ratelimit_refund(rl, "k", T0 + 59 * S);
        cr_assert_eq(ratelimit_take_counted(rl, "k", T0 + 62 * S, &n), 58, "refunded into the wrong window");
        cr_assert_eq(n, 1);
        /* the window's first event given back: the one after it is not told the refusals again */
        cr_assert_eq(ratelimit_take_counted(rl, "j", T0 + 62 * S, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "j", T0 + 63 * S, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "j", T0 + 64 * S, NULL), 58);
        cr_assert_eq(ratelimit_take_counted(rl, "j", T0 + 122 * S, &n), 0);
        cr_assert_eq(n, 1);
        ratelimit_refund(rl, "j", T0 + 122 * S);
        cr_assert_eq(ratelimit_take_counted(rl, "j", T0 + 123 * S, &n), 0);
        cr_assert_eq(n, 0, "the refusals of the window before told twice");

        /* forgotten (two keys, x and y came): nothing to give back, nobody else's count touched */
        cr_assert_eq(ratelimit_take_counted(rl, "x", T0 + 200 * S, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "y", T0 + 201 * S, NULL), 0);
        ratelimit_refund(rl, "j", T0 + 123 * S);
        ratelimit_refund(rl, "nobody", T0 + 201 * S);
        ratelimit_refund(NULL, "x", T0);
        cr_assert_eq(ratelimit_size(rl), 2);
        cr_assert_eq(ratelimit_take_counted(rl, "y", T0 + 202 * S, NULL), 0);
        cr_assert_eq(ratelimit_take_counted(rl, "y", T0 + 203 * S, NULL), 58);
}

Test(ratelimit, arguments) {
        cr_assert_eq(ratelimit_new(0, S, 1, &rl), -EINVAL);
        cr_assert_eq(ratelimit_new(1, 0, 1, &rl), -EINVAL);
        cr_assert_eq(ratelimit_new(1, S, 0, &rl), -EINVAL);
        cr_assert_null(ratelimit_free(NULL));
        cr_assert_eq(ratelimit_take_counted(NULL, "x", 0, NULL), -EINVAL);
}

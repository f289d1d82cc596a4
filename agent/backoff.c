/* SPDX-License-Identifier: MIT */
/* Retry delays (agent/backoff.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/backoff.h"
#include "util/util.h"

/* Uniform in [lo, hi] from 64 random bits (the modulo bias is below 2^-40 for our ranges). */
static uint64_t uniform(uint64_t lo, uint64_t hi, uint64_t rnd) {
        if (hi <= lo)
                return lo;
        uint64_t span = hi - lo;
        return span == UINT64_MAX ? rnd : lo + rnd % (span + 1);
}

uint64_t backoff_delay(const backoff_params_t *p, unsigned attempt, uint64_t rnd) {
        uint64_t lo = p->min_usec, cap = MAX(p->max_usec, p->min_usec);
        uint64_t ceiling = lo;
        /* Doubling stops at the cap: no overflow however many attempts. From the first retry
         * on, so that a fleet failing at one moment (a MEF restart) does not come back at one. */
        for (unsigned i = 0; i < attempt && ceiling < cap; i++)
                ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
        if (ceiling == 0)
                ceiling = cap;
        return uniform(lo, MIN(ceiling, cap), rnd);
}

uint64_t backoff_retry_after(const backoff_params_t *p, unsigned retry_after_s, uint64_t rnd) {
        uint64_t ra = MIN((uint64_t) retry_after_s * 1000000u, p->retry_after_max_usec);
        uint64_t hi = MIN(ra + ra / 8, MAX(p->retry_after_max_usec, ra));
        return MAX(uniform(ra, hi, rnd), p->min_usec);
}

int retry_after_parse(const char *value, unsigned max_s, unsigned *ret_s, bool *ret_capped,
                      char sent[RETRY_AFTER_SENT_MAX]) {
        sent[0] = 0;
        if (!value)
                return 0;
        size_t n = strlen(value);
        if (n == 0 || strspn(value, "0123456789") != n) {
                snprintf(sent, RETRY_AFTER_SENT_MAX, "Retry-After not in seconds");
                return -EINVAL;
        }
        const char *digits = value + strspn(value, "0"); /* "" for "0", "000" */
        size_t nd = strlen(digits);
        unsigned long long v = 0;
        bool big = nd > 20 || (nd == 20 && strcmp(digits, "18446744073709551615") > 0);
        if (big)
                snprintf(sent, RETRY_AFTER_SENT_MAX, "Retry-After of %u digits", (unsigned) MIN(nd, (size_t) 99999));
        else {
                for (const char *p = digits; *p; p++)
                        v = v * 10 + (unsigned) (*p - '0');
                snprintf(sent, RETRY_AFTER_SENT_MAX, "Retry-After %llu s", v);
        }
        bool capped = big || v > max_s;
        *ret_s = capped ? max_s : (unsigned) v;
        *ret_capped = capped;
        return 1;
}

uint64_t backoff_initial(uint64_t max_usec, uint64_t rnd) {
        return uniform(0, max_usec, rnd);
}

uint64_t backoff_random(void) {
        uint64_t v;
        if (random_bytes(&v, sizeof v) < 0)
                v = now_usec() * 6364136223846793005ull;
        return v;
}

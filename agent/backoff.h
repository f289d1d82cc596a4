/* SPDX-License-Identifier: MIT */
#pragma once
/* Retry delays (protocol section 5), as pure functions of their inputs and a random value so
 * they can be tested for their bounds. All delays in microseconds. */

#include <stdint.h>

typedef struct backoff_params {
        uint64_t min_usec;              /* backoff_min: the first delay, and the floor */
        uint64_t max_usec;              /* backoff_max: the cap */
        uint64_t retry_after_max_usec;  /* a Retry-After is clamped to this */
} backoff_params_t;

/* Delay before the retry that follows failure number attempt (1, 2, ...): capped exponential
 * with full jitter, uniform in [min, min(max, min * 2^(attempt-1))]. rnd: 64 random bits. */
uint64_t backoff_delay(const backoff_params_t *p, unsigned attempt, uint64_t rnd);

/* Delay for a Retry-After of retry_after_s seconds: clamped to retry_after_max, and spread over
 * [ra, ra + ra/8] (still at most retry_after_max) so a fleet told the same value does not come
 * back at the same instant. Never below min. */
uint64_t backoff_retry_after(const backoff_params_t *p, unsigned retry_after_s, uint64_t rnd);

/* Uniform in [0, max_usec]: the delay before the first attempt. */
uint64_t backoff_initial(uint64_t max_usec, uint64_t rnd);

/* 64 random bits (getrandom); a fixed value only if the kernel cannot give any. */
uint64_t backoff_random(void);

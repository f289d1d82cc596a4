/* SPDX-License-Identifier: MIT */
#pragma once
/* Retry delays (protocol section 5), as pure functions of their inputs and a random value so
 * they can be tested for their bounds. All delays in microseconds. */

#include <stdbool.h>
#include <stdint.h>

typedef struct backoff_params {
        uint64_t min_usec;              /* backoff_min: the floor */
        uint64_t max_usec;              /* backoff_max: the cap */
        uint64_t retry_after_max_usec;  /* a Retry-After is clamped to this */
} backoff_params_t;

/* Delay before the retry that follows failure number attempt (1, 2, ...): capped exponential
 * with full jitter, uniform in [min, min(max, min * 2^attempt)]. rnd: 64 random bits. */
uint64_t backoff_delay(const backoff_params_t *p, unsigned attempt, uint64_t rnd);

/* Delay for a Retry-After of retry_after_s seconds: clamped to retry_after_max, and spread over
 * [ra, ra + ra/8] (still at most retry_after_max) so a fleet told the same value does not come
 * back at the same instant. Never below min. */
uint64_t backoff_retry_after(const backoff_params_t *p, unsigned retry_after_s, uint64_t rnd);

/* What a Retry-After said, for messages: "Retry-After 120 s", "Retry-After of 31 digits" (more
 * than 20 significant digits), "Retry-After not in seconds" (an HTTP-date or anything else). */
#define RETRY_AFTER_SENT_MAX 40u

/* A Retry-After field value (RFC 9110 10.2.3) in its delay-seconds form: any number of digits,
 * leading zeros too. 1 with *ret_s = the value clamped to max_s and *ret_capped = whether it was
 * above; 0 when value is NULL (no Retry-After: sent ""); -EINVAL when it is not delay-seconds
 * (the HTTP-date form is not supported: the protocol's MEF sends seconds). sent is always set.
 * *ret_s and *ret_capped are only written on 1. */
int retry_after_parse(const char *value, unsigned max_s, unsigned *ret_s, bool *ret_capped,
                      char sent[RETRY_AFTER_SENT_MAX]);

/* Uniform in [0, max_usec]: the delay before the first attempt. */
uint64_t backoff_initial(uint64_t max_usec, uint64_t rnd);

/* 64 random bits (getrandom); a fixed value only if the kernel cannot give any. */
uint64_t backoff_random(void);

/* SPDX-License-Identifier: MIT */
#pragma once
/* The per-node enrolment rate limit ([limits] enrolments_per_node = N per WINDOW), and the fold
 * of refused requests in the audit trail (mef/handlers-reply.c, 1 per minute): at most
 * limit events per key in a fixed window that opens with the key's first event and lasts
 * window usec. In memory (a restart forgets) and bounded to max_keys keys: when the table is
 * full, the key whose window opened first gives way (closed, or the next to close). Bookkeeping only (no I/O); callers pass CLOCK_MONOTONIC
 * usec, tests a clock of their own. The cost of a call is linear in max_keys at most.
 * Thread-safe: the MEF's store threads share one. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ratelimit ratelimit_t;

/* limit >= 1, window >= 1 usec, max_keys >= 1. */
int ratelimit_new(unsigned limit, uint64_t window, size_t max_keys, ratelimit_t **ret);
ratelimit_t *ratelimit_free(ratelimit_t *rl);

/* Counts an event for key at now. 0: allowed. A positive number: refused, the seconds until
 * the key's window closes (rounded up, at least 1: the Retry-After). *ret_refused (may be
 * NULL): when refused, the key's refusals in this window, this one included (1: the first, the
 * one worth recording); when allowed as the first event of a window, the refusals of the key's
 * window before (0 when the table forgot it); else 0. -ENOMEM. */
int ratelimit_take_counted(ratelimit_t *rl, const char *key, uint64_t now, unsigned *ret_refused);
/* Gives back an event ratelimit_take_counted() allowed for key at taken that did not happen
 * after all (an enrolment the store failed): the key's window has it no more. Nothing when that
 * window is over or the table forgot the key (a window after it is not the one that counted it). */
void ratelimit_refund(ratelimit_t *rl, const char *key, uint64_t taken);
/* Keys in the table (tests). */
size_t ratelimit_size(ratelimit_t *rl);

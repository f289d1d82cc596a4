/* SPDX-License-Identifier: MIT */
#pragma once
/* Time: usec_t on CLOCK_MONOTONIC inside, time_t (UTC seconds) on the wire and on screen. */
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <time.h>

typedef uint64_t usec_t;
#define USEC_PER_SEC ((usec_t) 1000000u)
#define USEC_PER_MSEC ((usec_t) 1000u)

/* Monotonic clock in microseconds. */
usec_t now_usec(void);

/* Sleeps usec (any length: usleep() takes 32 bits), resumed after a signal's interruption. */
void sleep_usec(usec_t usec);

/* CPU time in nanoseconds, for the benchmarks: user + system of a struct rusage, and of a
 * running process's live threads from /proc/PID/task/TID/schedstat (0 when unknown; threads
 * that have ended are not counted). */
uint64_t rusage_cpu_nsec(const struct rusage *ru);
uint64_t process_cpu_nsec(pid_t pid);

/* oneM2M basic ISO 8601 UTC: "YYYYMMDDTHHMMSS". */
int time_parse_basic(const char *s, time_t *ret);
/* "" when t is outside years 0000..9999. */
void time_format_basic(time_t t, char out[16]);

#define TIME_TEXT_MAX 32
/* "YYYY-MM-DD HH:MM:SS UTC" and "YYYY-MM-DDTHH:MM:SSZ"; "@<seconds>" when t has no such form. */
void time_format_utc(time_t t, char out[TIME_TEXT_MAX]);
void time_format_iso(time_t t, char out[TIME_TEXT_MAX]);

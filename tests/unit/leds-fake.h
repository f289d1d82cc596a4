/* SPDX-License-Identifier: MIT */
#pragma once
/* The fakes of the LED pattern tests (test-leds-patterns.c, with -Wl,--wrap, see
 * tests/unit/meson.build): libgpiod v1 modelling two chips and recording every line write with
 * its time, and a virtual clock behind now_usec() and sd-event's timers; suite "leds" with a
 * loop of its own per test. */
#include <criterion/criterion.h>
#include <gpiod.h>
#include <stdint.h>

#include "hw/leds.h"
#include "util/util.h"

#define TOLERANCE_USEC 1 /* virtual time: every edge exactly when due */
#define MSEC 1000u

struct gpiod_chip {
        const char *name;
        unsigned nlines;
        int opens;
        bool absent; /* not probed yet: opening it fails with ENOENT */
};

struct gpiod_line {
        struct gpiod_chip *chip;
        unsigned offset;
        const char *name;
        bool requested;
        bool held_elsewhere; /* another consumer has it: requests fail with EBUSY */
        bool gone;           /* its chip went away while it was requested: writes fail with ENODEV until released */
        int flags;
        int value;
        char consumer[32];
        int releases;
};

typedef struct event {
        uint64_t t;
        struct gpiod_line *line;
        int value;
} event_t;

extern struct gpiod_chip chips[2];
extern struct gpiod_line lines[2][32];
extern event_t events[4096];
extern size_t n_events;
extern int gpiod_calls;
extern bool fail_writes; /* set: line writes fail with EIO */

#define STATUS_LINE (&lines[0][17])
#define ERROR_LINE (&lines[1][2])

/* Chip c goes away (unbound, unplugged): it cannot be opened, and its requested lines are dead. */
void chip_remove(size_t c);

/* Nothing may stay requested or open once every leds_t is freed. */
void assert_all_released(void);

/* What leds_new()'s report callback was told, in order (record_report() as the callback). */
typedef struct report {
        uint64_t t;
        led_line_t line;
        int r;
} report_t;
extern report_t reports[64];
extern size_t n_reports;
void record_report(led_line_t line, int r, void *userdata);
/* Failed gpiod_chip_open_by_name() and gpiod_line_find() calls: the request attempts. */
extern int failed_lookups;

typedef struct action {
        leds_t *leds;
        led_pattern_t pattern;
        bool free_it;
        int result;
} action_t;

/* The loop is busy elsewhere for usec: no timer runs meanwhile. */
void vclock_stall(uint64_t usec);
/* Run a at t0 + ms (floating: the loop owns the source). */
void at(sd_event *e, uint64_t t0, unsigned ms, action_t *a);
/* Dispatch the loop until t0 + ms of virtual time: every timer due before then, in order,
 * each at its due time (or at once, when the loop "was busy" past it). */
void run_until(sd_event *e, uint64_t t0, unsigned ms);
/* The writes to line are exactly: first value at t0 + from_ms, then alternating every half_ms,
 * count writes in all, each edge within the tolerance of its due time. */
void assert_blink(struct gpiod_line *line, uint64_t t0, unsigned from_ms, unsigned half_ms, int first, size_t count);

typedef struct fixture {
        sd_event *e;
        leds_t *l;
        uint64_t t0;
} fixture_t;

extern fixture_t fx;
/* leds_new() with a line on each chip; start pattern p at fx.t0 and run for ms. */
void open_both(void);
void show(led_pattern_t p, unsigned ms);
/* Start pattern from at fx.t0, switch to pattern to at fx.t0 + at_ms (leds_set() must take it),
 * and run until fx.t0 + run_ms. */
void show_then(led_pattern_t from, led_pattern_t to, unsigned at_ms, unsigned run_ms);

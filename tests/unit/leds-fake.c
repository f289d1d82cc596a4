/* SPDX-License-Identifier: MIT */
/* The LED tests' fakes: libgpiod v1 and a virtual clock (leds-fake.h). */
#include "tests/unit/leds-fake.h"

struct gpiod_chip chips[2] = { { "gpiochip0", 32 }, { "gpiochip1", 8 } };
struct gpiod_line lines[2][32];
event_t events[4096];
size_t n_events;
static int violations; /* calls libgpiod would reject or that leak: must stay 0 */
int gpiod_calls;
bool fail_writes;
report_t reports[64];
size_t n_reports;
int failed_lookups;

void record_report(led_line_t line, int r, void *userdata) {
        (void) userdata;
        cr_assert_lt(n_reports, ELEMENTSOF(reports));
        reports[n_reports++] = (report_t) { now_usec(), line, r };
}

struct gpiod_chip *__wrap_gpiod_chip_open_by_name(const char *name);
struct gpiod_line *__wrap_gpiod_chip_get_line(struct gpiod_chip *chip, unsigned int offset);
struct gpiod_line *__wrap_gpiod_line_find(const char *name);
struct gpiod_chip *__wrap_gpiod_line_get_chip(struct gpiod_line *line);
int __wrap_gpiod_line_request_output_flags(struct gpiod_line *line, const char *consumer, int flags, int default_val);
int __wrap_gpiod_line_set_value(struct gpiod_line *line, int value);
void __wrap_gpiod_line_release(struct gpiod_line *line);
void __wrap_gpiod_chip_close(struct gpiod_chip *chip);

struct gpiod_chip *__wrap_gpiod_chip_open_by_name(const char *name) {
        gpiod_calls++;
        for (size_t c = 0; c < ELEMENTSOF(chips); c++)
                if (streq(chips[c].name, name) && !chips[c].absent) {
                        chips[c].opens++;
                        return &chips[c];
                }
        failed_lookups++;
        errno = ENOENT;
        return NULL;
}

struct gpiod_line *__wrap_gpiod_chip_get_line(struct gpiod_chip *chip, unsigned int offset) {
        gpiod_calls++;
        if (chip->opens <= 0)
                violations++;
        if (offset >= chip->nlines) {
                errno = EINVAL;
                return NULL;
        }
        return &lines[chip - chips][offset];
}

struct gpiod_line *__wrap_gpiod_line_find(const char *name) {
        gpiod_calls++;
        for (size_t c = 0; c < ELEMENTSOF(chips); c++)
                for (unsigned o = 0; o < chips[c].nlines && !chips[c].absent; o++)
                        if (lines[c][o].name && streq(lines[c][o].name, name)) {
                                chips[c].opens++;
                                return &lines[c][o];
                        }
        failed_lookups++;
        errno = ENOENT;
        return NULL;
}

struct gpiod_chip *__wrap_gpiod_line_get_chip(struct gpiod_line *line) {
        return line->chip;
}

int __wrap_gpiod_line_request_output_flags(struct gpiod_line *line, const char *consumer, int flags, int default_val) {
        gpiod_calls++;
        if (line->requested || line->held_elsewhere) {
                errno = EBUSY;
                return -1;
        }
        line->requested = true;
        line->flags = flags;
        line->value = default_val;
        snprintf(line->consumer, sizeof(line->consumer), "%s", consumer);
        return 0;
}

int __wrap_gpiod_line_set_value(struct gpiod_line *line, int value) {
        gpiod_calls++;
        if (!line->requested) {
                violations++;
                errno = EPERM;
                return -1;
        }
        if (line->gone) {
                errno = ENODEV;
                return -1;
        }
        if (fail_writes) {
                errno = EIO;
                return -1;
        }
        cr_assert_lt(n_events, ELEMENTSOF(events));
        events[n_events++] = (event_t) { now_usec(), line, value };
        line->value = value;
        return 0;
}

void __wrap_gpiod_line_release(struct gpiod_line *line) {
        if (!line->requested)
                violations++;
        line->requested = false;
        line->gone = false;
        line->releases++;
}

void __wrap_gpiod_chip_close(struct gpiod_chip *chip) {
        if (--chip->opens < 0)
                violations++;
}

static void fake_init(void) {
        n_reports = 0;
        failed_lookups = 0;
        for (size_t c = 0; c < ELEMENTSOF(chips); c++)
                chips[c].absent = false;
        for (size_t c = 0; c < ELEMENTSOF(chips); c++)
                for (unsigned o = 0; o < chips[c].nlines; o++)
                        lines[c][o] = (struct gpiod_line) { .chip = &chips[c], .offset = o };
        lines[1][3].name = "LED_STATUS";
        lines[1][4].name = "LED_ERR";
}

void chip_remove(size_t c) {
        chips[c].absent = true;
        for (unsigned o = 0; o < chips[c].nlines; o++)
                lines[c][o].gone = lines[c][o].requested;
}

/* Nothing may stay requested or open once every leds_t is freed. */
void assert_all_released(void) {
        cr_assert_eq(violations, 0);
        for (size_t c = 0; c < ELEMENTSOF(chips); c++) {
                cr_assert_eq(chips[c].opens, 0, "%s left open", chips[c].name);
                for (unsigned o = 0; o < chips[c].nlines; o++)
                        cr_assert(!lines[c][o].requested, "%s:%u still requested", chips[c].name, o);
        }
}

/* ---- virtual time ---- */

/* now_usec() for hw/leds and for this file: vnow. Each timer that hw/leds (or this test) adds
 * is a real sd-event source, kept far in the future; its due time is virtual. run_until()
 * takes the earliest enabled one, moves vnow there, makes the real source due at once and
 * lets sd-event dispatch it: the handler is called with the virtual due time, as sd-event
 * would call it with the scheduled time. */
uint64_t __real_now_usec(void);
uint64_t __wrap_now_usec(void);
int __real_sd_event_add_time(sd_event *e, sd_event_source **ret, clockid_t clock, uint64_t usec, uint64_t accuracy,
                             sd_event_time_handler_t callback, void *userdata);
int __wrap_sd_event_add_time(sd_event *e, sd_event_source **ret, clockid_t clock, uint64_t usec, uint64_t accuracy,
                             sd_event_time_handler_t callback, void *userdata);
int __real_sd_event_source_set_time(sd_event_source *s, uint64_t usec);
int __wrap_sd_event_source_set_time(sd_event_source *s, uint64_t usec);

typedef struct vtimer {
        sd_event_source *source; /* a reference of ours */
        sd_event_time_handler_t callback;
        void *userdata;
        uint64_t due; /* virtual */
        bool fired;
} vtimer_t;

static uint64_t vnow;
static vtimer_t vtimers[64];
static size_t n_vtimers;

static uint64_t far_future(void) {
        return __real_now_usec() + 86400ULL * 1000000ULL;
}

uint64_t __wrap_now_usec(void) {
        return vnow;
}

static int vtimer_dispatch(sd_event_source *s, uint64_t usec, void *userdata) {
        vtimer_t *v = userdata;
        (void) usec;
        v->fired = true;
        /* back to the far future unless the handler sets a new time */
        cr_assert_geq(__real_sd_event_source_set_time(s, far_future()), 0);
        return v->callback(s, v->due, v->userdata);
}

int __wrap_sd_event_add_time(sd_event *e, sd_event_source **ret, clockid_t clock, uint64_t usec, uint64_t accuracy,
                             sd_event_time_handler_t callback, void *userdata) {
        cr_assert_eq(clock, CLOCK_MONOTONIC);
        cr_assert_lt(n_vtimers, ELEMENTSOF(vtimers));
        vtimer_t *v = &vtimers[n_vtimers];
        sd_event_source *s = NULL;
        int r = __real_sd_event_add_time(e, &s, clock, far_future(), accuracy, vtimer_dispatch, v);
        if (r < 0)
                return r;
        n_vtimers++;
        *v = (vtimer_t) { .source = s, .callback = callback, .userdata = userdata, .due = usec };
        if (ret)
                *ret = sd_event_source_ref(s);
        else /* the loop's, as sd_event_add_time(NULL) makes it; set_floating takes its own ref */
                cr_assert_geq(sd_event_source_set_floating(s, 1), 0);
        return r;
}

int __wrap_sd_event_source_set_time(sd_event_source *s, uint64_t usec) {
        for (size_t i = 0; i < n_vtimers; i++)
                if (vtimers[i].source == s) {
                        vtimers[i].due = usec;
                        return 0;
                }
        return __real_sd_event_source_set_time(s, usec);
}

static void vclock_init(void) {
        vnow = __real_now_usec();
        n_vtimers = 0;
}

/* Before the loop goes: drop our references (a floating source must not outlive its loop). */
static void vclock_done(void) {
        for (size_t i = 0; i < n_vtimers; i++)
                vtimers[i].source = sd_event_source_unref(vtimers[i].source);
        n_vtimers = 0;
}

/* The loop is busy elsewhere for usec: no timer runs meanwhile. */
void vclock_stall(uint64_t usec) {
        vnow += usec;
}

/* ---- event loop helpers ---- */

static int on_action(sd_event_source *s, uint64_t usec, void *userdata) {
        action_t *a = userdata;

        if (a->free_it)
                a->leds = leds_free(a->leds);
        else
                a->result = leds_set(a->leds, a->pattern);
        return 0;
}

/* Run at t0 + ms (floating: the loop owns the source). */
void at(sd_event *e, uint64_t t0, unsigned ms, action_t *a) {
        cr_assert_eq(sd_event_add_time(e, NULL, CLOCK_MONOTONIC, t0 + ms * MSEC, 1, on_action, a), 0);
}

/* Dispatch the loop until t0 + ms of virtual time: every timer due before then, in order,
 * each at its due time (or at once, when the loop "was busy" past it). */
void run_until(sd_event *e, uint64_t t0, unsigned ms) {
        uint64_t end = t0 + ms * MSEC;

        for (;;) {
                vtimer_t *next = NULL;
                for (size_t i = 0; i < n_vtimers; i++) {
                        int enabled = SD_EVENT_OFF;
                        cr_assert_geq(sd_event_source_get_enabled(vtimers[i].source, &enabled), 0);
                        if (enabled != SD_EVENT_OFF && vtimers[i].due < end && (!next || vtimers[i].due < next->due))
                                next = &vtimers[i];
                }
                if (!next)
                        break;
                if (next->due > vnow)
                        vnow = next->due;
                next->fired = false;
                cr_assert_geq(__real_sd_event_source_set_time(next->source, 1), 0); /* due now */
                /* sd-event sees it due at its next iteration; a deadline against a hang only */
                for (int i = 0; i < 100000 && !next->fired; i++)
                        cr_assert_geq(sd_event_run(e, 10 * 1000), 0);
                cr_assert(next->fired, "sd-event did not dispatch a timer that was due");
        }
        if (end > vnow)
                vnow = end;
}

static size_t line_events(struct gpiod_line *line, event_t *out, size_t max) {
        size_t n = 0;
        for (size_t i = 0; i < n_events; i++)
                if (events[i].line == line) {
                        cr_assert_lt(n, max);
                        out[n++] = events[i];
                }
        return n;
}

/* The writes to line are exactly: first value at t0 + from_ms, then alternating every half_ms,
 * count writes in all, each edge within the tolerance of its due time. */
void assert_blink(struct gpiod_line *line, uint64_t t0, unsigned from_ms, unsigned half_ms, int first,
                         size_t count) {
        event_t ev[512];
        size_t n = line_events(line, ev, ELEMENTSOF(ev)), on = 0;

        cr_assert_eq(n, count, "expected %zu writes, got %zu", count, n);
        for (size_t k = 0; k < n; k++) {
                int64_t due = (int64_t) (t0 + (from_ms + k * half_ms) * MSEC);
                int64_t late = (int64_t) ev[k].t - due;

                cr_assert_eq(ev[k].value, k % 2 ? !first : first, "edge %zu has value %d", k, ev[k].value);
                cr_assert(late > -TOLERANCE_USEC && late < TOLERANCE_USEC, "edge %zu off by %lld us", k,
                          (long long) late);
                if (k > 0) {
                        int64_t d = (int64_t) (ev[k].t - ev[k - 1].t) - (int64_t) half_ms * MSEC;
                        cr_assert(d > -TOLERANCE_USEC && d < TOLERANCE_USEC, "edge %zu: period off by %lld us", k,
                                  (long long) d);
                }
                on += ev[k].value == 1;
        }
        cr_assert_eq(on, (count + (first == 1)) / 2);
}

fixture_t fx;

static void setup(void) {
        fake_init();
        vclock_init();
        cr_assert_eq(sd_event_new(&fx.e), 0);
}

static void teardown(void) {
        fx.l = leds_free(fx.l);
        vclock_done();
        fx.e = sd_event_unref(fx.e);
}

void open_both(void) {
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2:active-low", NULL, NULL, &fx.l), 0);
        cr_assert_eq(n_events, 0, "requesting must not write");
}

/* Start pattern p at t0 and run for ms. */
void show(led_pattern_t p, unsigned ms) {
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, p), 0);
        run_until(fx.e, fx.t0, ms);
}

void show_then(led_pattern_t from, led_pattern_t to, unsigned at_ms, unsigned run_ms) {
        action_t a = { .leds = fx.l, .pattern = to, .result = 1 };
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, from), 0);
        at(fx.e, fx.t0, at_ms, &a);
        run_until(fx.e, fx.t0, run_ms);
        cr_assert_eq(a.result, 0);
}

TestSuite(leds, .init = setup, .fini = teardown, .timeout = 30);

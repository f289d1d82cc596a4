/* SPDX-License-Identifier: MIT */
/* hw/leds: the spec parser, and the patterns over time on a real sd-event loop with libgpiod
 * replaced at link time (-Wl,--wrap=gpiod_..., see tests/unit/meson.build): the fakes below
 * model two chips and record every line write with its time. Time is virtual: now_usec(),
 * sd_event_add_time() and sd_event_source_set_time() are wrapped too, the test advances a
 * virtual CLOCK_MONOTONIC from one timer to the next and sd-event dispatches each at once, so
 * every edge is checked to the microsecond and no result depends on the machine's speed or
 * load. Without libgpiod the fallback is tested instead. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "msce-config.h"
#include "hw/leds.h"
#include "util/util.h"

/* ---- parser ---- */

#define SENTINEL_OFFSET 4242u

static led_spec_t sentinel(void) {
        led_spec_t s = { .chip = "untouched", .offset = SENTINEL_OFFSET };
        return s;
}

static void parse_ok(const char *spec, const char *chip, const char *name, unsigned offset, bool active_low) {
        led_spec_t s = sentinel();
        const char *why = NULL;

        cr_assert_eq(leds_parse_spec(spec, &s, &why), 1, "%s: %s", spec, why ? why : "");
        cr_assert_str_eq(s.chip, chip, "%s", spec);
        cr_assert_str_eq(s.name, name, "%s", spec);
        cr_assert_eq(s.offset, offset, "%s", spec);
        cr_assert_eq(s.active_low, active_low, "%s", spec);
}

static void parse_bad(const char *spec, const char *why_part) {
        led_spec_t s = sentinel();
        const char *why = NULL;

        cr_assert_eq(leds_parse_spec(spec, &s, &why), -EINVAL, "%s accepted", spec);
        cr_assert_not_null(why, "%s", spec);
        cr_assert_not_null(strstr(why, why_part), "%s: \"%s\" does not say \"%s\"", spec, why, why_part);
        cr_assert_str_eq(s.chip, "untouched", "%s: ret touched", spec);
        cr_assert_eq(s.offset, SENTINEL_OFFSET, "%s: ret touched", spec);
        /* why is optional */
        cr_assert_eq(leds_parse_spec(spec, &s, NULL), -EINVAL);
}

Test(leds_spec, valid) {
        parse_ok("gpiochip0:17", "gpiochip0", "", 17, false);
        parse_ok("gpiochip0:17:active-low", "gpiochip0", "", 17, true);
        parse_ok("gpiochip12:0", "gpiochip12", "", 0, false);
        parse_ok("gpiochip3:65535", "gpiochip3", "", 65535, false);
        parse_ok("name:LED_STATUS", "", "LED_STATUS", 0, false);
        parse_ok("name:LED_STATUS:active-low", "", "LED_STATUS", 0, true);
        parse_ok("name:gpio-17.led/x", "", "gpio-17.led/x", 0, false);
        parse_ok("name:0123456789012345678901234567890", "", "0123456789012345678901234567890", 0, false);
        parse_ok("name:name", "", "name", 0, false);
}

Test(leds_spec, empty_means_no_led) {
        led_spec_t s = sentinel();
        const char *why = NULL;

        cr_assert_eq(leds_parse_spec(NULL, &s, &why), 0);
        cr_assert_eq(leds_parse_spec("", &s, &why), 0);
        cr_assert_str_eq(s.chip, "untouched");
        cr_assert_null(why);
}

Test(leds_spec, bad_chip) {
        const char *bad[] = { "gpio0:1", "gpiochip:1", "gpiochipx:1", "gpiochip01:1", "gpiochip-1:1",
                              "Gpiochip0:1", "gpiochip0x:1", "gpiochip99999999:1", ":1", "/dev/gpiochip0:1",
                              "chip0:1", "gpiochip00000000000000000000000000:1" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                parse_bad(bad[i], "gpiochipN");
}

Test(leds_spec, bad_offset) {
        const char *bad[] = { "gpiochip0:", "gpiochip0:x", "gpiochip0:-1", "gpiochip0:+1", "gpiochip0:65536",
                              "gpiochip0:1.5", "gpiochip0:0x10", "gpiochip0:99999999999999999999999" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                parse_bad(bad[i], "offset");
}

Test(leds_spec, unknown_option) {
        parse_bad("gpiochip0:1:active-high", "unknown option");
        parse_bad("gpiochip0:1:", "unknown option");
        parse_bad("name:LED:ACTIVE-LOW", "unknown option");
        parse_bad("name:LED:activelow", "unknown option");
        parse_bad("gpiochip0:1:active-low:x", "unexpected text");
        parse_bad("name:LED:active-low:active-low", "unexpected text");
}

Test(leds_spec, missing_parts_and_bad_names) {
        parse_bad("gpiochip0", "expected");
        parse_bad("name", "expected");
        parse_bad("name:", "empty line name");
        parse_bad("name::active-low", "empty line name");
        parse_bad("name:LED STATUS", "printable");
        parse_bad("name:\tLED", "printable");
        parse_bad("gpiochip0: 1", "printable");
        parse_bad("name:LED\x7f", "printable");
        parse_bad("name:\xc3\xa9", "printable");
}

Test(leds_spec, too_long) {
        char spec[LED_SPEC_MAX + 2];

        parse_bad("name:01234567890123456789012345678901", "longer than 31");
        parse_bad("gpiochip100000000000000000000000:1", "gpiochipN");

        /* exactly LED_SPEC_MAX characters parse, one more does not */
        strcpy(spec, "gpiochip0:");
        memset(spec + 10, '0', LED_SPEC_MAX - 11);
        strcpy(spec + LED_SPEC_MAX - 1, "7");
        cr_assert_eq(strlen(spec), LED_SPEC_MAX);
        parse_ok(spec, "gpiochip0", "", 7, false);
        memmove(spec + 11, spec + 10, LED_SPEC_MAX - 9);
        cr_assert_eq(strlen(spec), LED_SPEC_MAX + 1);
        parse_bad(spec, "longer than 255");
}

Test(leds_api, null_and_bad_pattern) {
        cr_assert_eq(leds_set(NULL, LED_READY), 0);
        cr_assert_eq(leds_get(NULL), LED_OFF);
        cr_assert_null(leds_free(NULL));
}

Test(leds_api, empty_specs_are_a_noop_object) {
        sd_event *e = NULL;
        leds_t *l = NULL;

        cr_assert_eq(sd_event_new(&e), 0);
        cr_assert_eq(leds_new(e, NULL, "", &l), 0);
        cr_assert_not_null(l);
        cr_assert_eq(leds_set(l, LED_ENROLLING), 0);
        cr_assert_eq(leds_get(l), LED_ENROLLING);
        cr_assert_eq(leds_set(l, _LED_PATTERN_MAX), -EINVAL);
        cr_assert_eq(leds_set(l, _LED_PATTERN_INVALID), -EINVAL);
        cr_assert_eq(leds_get(l), LED_ENROLLING);
        cr_assert_null(leds_free(l));

        l = (leds_t *) 0x1;
        cr_assert_eq(leds_new(e, "gpiochip0:1:bogus", NULL, &l), -EINVAL);
        cr_assert_eq(leds_new(e, NULL, "name:", &l), -EINVAL);
        cr_assert_eq(l, (leds_t *) 0x1, "ret touched on failure");
        cr_assert_eq(leds_new(NULL, NULL, NULL, &l), -EINVAL);
        sd_event_unref(e);
}

#if !HAVE_GPIOD
/* ---- the fallback: configured LEDs are reported, not silently ignored ---- */

Test(leds_none, configured_led_is_not_supported) {
        sd_event *e = NULL;
        leds_t *l = NULL;

        cr_assert_eq(sd_event_new(&e), 0);
        cr_assert_eq(leds_new(e, "gpiochip0:17", NULL, &l), -EOPNOTSUPP);
        cr_assert_eq(leds_new(e, NULL, "name:LED_ERR:active-low", &l), -EOPNOTSUPP);
        cr_assert_eq(leds_new(e, "gpiochip0:17", "name:", &l), -EINVAL); /* bad spec first */
        cr_assert_null(l);
        sd_event_unref(e);
}
#endif

#if HAVE_GPIOD && TEST_GPIO_WRAP
/* ---- fake libgpiod (v1 API) ---- */
#include <gpiod.h>

#define TOLERANCE_USEC 1 /* virtual time: every edge exactly when due */
#define MSEC 1000u

struct gpiod_chip {
        const char *name;
        unsigned nlines;
        int opens;
};

struct gpiod_line {
        struct gpiod_chip *chip;
        unsigned offset;
        const char *name;
        bool requested;
        bool held_elsewhere; /* another consumer has it: requests fail with EBUSY */
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

static struct gpiod_chip chips[2] = { { "gpiochip0", 32 }, { "gpiochip1", 8 } };
static struct gpiod_line lines[2][32];
static event_t events[4096];
static size_t n_events;
static int violations; /* calls libgpiod would reject or that leak: must stay 0 */
static int gpiod_calls;
static bool fail_writes;

#define STATUS_LINE (&lines[0][17])
#define ERROR_LINE (&lines[1][2])

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
                if (streq(chips[c].name, name)) {
                        chips[c].opens++;
                        return &chips[c];
                }
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
                for (unsigned o = 0; o < chips[c].nlines; o++)
                        if (lines[c][o].name && streq(lines[c][o].name, name)) {
                                chips[c].opens++;
                                return &lines[c][o];
                        }
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
        line->releases++;
}

void __wrap_gpiod_chip_close(struct gpiod_chip *chip) {
        if (--chip->opens < 0)
                violations++;
}

static void fake_init(void) {
        for (size_t c = 0; c < ELEMENTSOF(chips); c++)
                for (unsigned o = 0; o < chips[c].nlines; o++)
                        lines[c][o] = (struct gpiod_line) { .chip = &chips[c], .offset = o };
        lines[1][3].name = "LED_STATUS";
        lines[1][4].name = "LED_ERR";
}

/* Nothing may stay requested or open once every leds_t is freed. */
static void assert_all_released(void) {
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
static void vclock_stall(uint64_t usec) {
        vnow += usec;
}

/* ---- event loop helpers ---- */

typedef struct action {
        leds_t *leds;
        led_pattern_t pattern;
        bool free_it;
        int result;
} action_t;

static int on_action(sd_event_source *s, uint64_t usec, void *userdata) {
        action_t *a = userdata;

        if (a->free_it)
                a->leds = leds_free(a->leds);
        else
                a->result = leds_set(a->leds, a->pattern);
        return 0;
}

/* Run at t0 + ms (floating: the loop owns the source). */
static void at(sd_event *e, uint64_t t0, unsigned ms, action_t *a) {
        cr_assert_eq(sd_event_add_time(e, NULL, CLOCK_MONOTONIC, t0 + ms * MSEC, 1, on_action, a), 0);
}

/* Dispatch the loop until t0 + ms of virtual time: every timer due before then, in order,
 * each at its due time (or at once, when the loop "was busy" past it). */
static void run_until(sd_event *e, uint64_t t0, unsigned ms) {
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
static void assert_blink(struct gpiod_line *line, uint64_t t0, unsigned from_ms, unsigned half_ms, int first,
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

typedef struct fixture {
        sd_event *e;
        leds_t *l;
        uint64_t t0;
} fixture_t;

static fixture_t fx;

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

static void open_both(void) {
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2:active-low", &fx.l), 0);
        cr_assert_eq(n_events, 0, "requesting must not write");
}

/* Start pattern p at t0 and run for ms. */
static void show(led_pattern_t p, unsigned ms) {
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, p), 0);
        run_until(fx.e, fx.t0, ms);
}

TestSuite(leds, .init = setup, .fini = teardown, .timeout = 30);

/* ---- requests ---- */

Test(leds, request_flags_consumer_and_release) {
        open_both();
        cr_assert(STATUS_LINE->requested && ERROR_LINE->requested);
        cr_assert_str_eq(STATUS_LINE->consumer, "msce-agent");
        cr_assert_str_eq(ERROR_LINE->consumer, "msce-agent");
        cr_assert_eq(STATUS_LINE->flags, 0);
        cr_assert_eq(ERROR_LINE->flags, GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW);
        cr_assert_eq(STATUS_LINE->value, 0);
        cr_assert_eq(ERROR_LINE->value, 0);
        cr_assert_eq(chips[0].opens, 1);
        cr_assert_eq(chips[1].opens, 1);
        cr_assert_eq(leds_get(fx.l), LED_OFF);

        fx.l = leds_free(fx.l);
        cr_assert_eq(STATUS_LINE->releases, 1);
        cr_assert_eq(ERROR_LINE->releases, 1);
        assert_all_released();
}

Test(leds, lines_by_name_on_any_chip) {
        cr_assert_eq(leds_new(fx.e, "name:LED_STATUS", "name:LED_ERR:active-low", &fx.l), 0);
        cr_assert(lines[1][3].requested && lines[1][4].requested);
        cr_assert_eq(lines[1][3].flags, 0);
        cr_assert_eq(lines[1][4].flags, GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW);
        cr_assert_eq(chips[1].opens, 2);
        cr_assert_eq(leds_set(fx.l, LED_READY), 0);
        cr_assert_eq(lines[1][3].value, 1);
        fx.l = leds_free(fx.l);
        cr_assert_eq(lines[1][3].value, 0);
        assert_all_released();
}

Test(leds, open_errors_leave_nothing_behind) {
        leds_t *l = (leds_t *) 0x1;

        cr_assert_eq(leds_new(fx.e, "gpiochip7:1", NULL, &l), -ENOENT);
        cr_assert_eq(leds_new(fx.e, "gpiochip0:1", "gpiochip1:8", &l), -EINVAL); /* chip1 has 8 lines */
        cr_assert_eq(leds_new(fx.e, "name:NO_SUCH_LINE", NULL, &l), -ENOENT);
        STATUS_LINE->held_elsewhere = true;
        cr_assert_eq(leds_new(fx.e, "gpiochip1:2", "gpiochip0:17", &l), -EBUSY);
        cr_assert_eq(ERROR_LINE->releases, 1, "the first line must be released again");
        STATUS_LINE->held_elsewhere = false;
        cr_assert_eq(l, (leds_t *) 0x1, "ret touched on failure");
        assert_all_released();

        /* a bad spec fails before any line is touched */
        gpiod_calls = 0;
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2:active", &l), -EINVAL);
        cr_assert_eq(gpiod_calls, 0);
}

/* ---- patterns over time ---- */

Test(leds, starting_blinks_100ms) {
        open_both();
        show(LED_STARTING, 1050);
        assert_blink(STATUS_LINE, fx.t0, 0, 100, 1, 11); /* on at 0, off at 100, ... on at 1000 */
        assert_blink(ERROR_LINE, fx.t0, 0, 0, 0, 0);
}

Test(leds, waiting_blinks_1000ms) {
        open_both();
        show(LED_WAITING, 2500);
        assert_blink(STATUS_LINE, fx.t0, 0, 1000, 1, 3);
        assert_blink(ERROR_LINE, fx.t0, 0, 0, 0, 0);
}

Test(leds, enrolling_blinks_200ms) {
        open_both();
        show(LED_ENROLLING, 1100);
        assert_blink(STATUS_LINE, fx.t0, 0, 200, 1, 6); /* 3 on, 3 off, each ~200 ms */
        assert_blink(ERROR_LINE, fx.t0, 0, 0, 0, 0);
        cr_assert_eq(STATUS_LINE->value, 0);
}

Test(leds, ready_is_solid_without_further_writes) {
        open_both();
        show(LED_READY, 600);
        assert_blink(STATUS_LINE, fx.t0, 0, 0, 1, 1);
        cr_assert_eq(STATUS_LINE->value, 1);
        cr_assert_eq(n_events, 1, "READY must not write again");
        cr_assert_eq(leds_set(fx.l, LED_READY), 0);
        cr_assert_eq(n_events, 1, "setting READY again must not write");
}

Test(leds, error_blinks_error_led_and_turns_status_off) {
        open_both();
        cr_assert_eq(leds_set(fx.l, LED_READY), 0);
        cr_assert_eq(STATUS_LINE->value, 1);
        n_events = 0;

        show(LED_ERROR, 525);
        assert_blink(ERROR_LINE, fx.t0, 0, 50, 1, 11);
        assert_blink(STATUS_LINE, fx.t0, 0, 0, 0, 1); /* one write: off */
        cr_assert_eq(events[0].line, STATUS_LINE, "status goes off before the error LED lights");

        /* and back: error off, status solid */
        n_events = 0;
        show(LED_READY, 200);
        cr_assert_eq(ERROR_LINE->value, 0);
        cr_assert_eq(STATUS_LINE->value, 1);
        /* the error LED was lit (edge at 500 ms): it goes off first */
        cr_assert_eq(n_events, 2);
        cr_assert(events[0].line == ERROR_LINE && events[0].value == 0);
        cr_assert(events[1].line == STATUS_LINE && events[1].value == 1);
}

Test(leds, error_without_error_led_blinks_status) {
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", NULL, &fx.l), 0);
        show(LED_ERROR, 275);
        assert_blink(STATUS_LINE, fx.t0, 0, 50, 1, 6);
}

Test(leds, incompatible_blinks_error_led_500ms_and_turns_status_off) {
        open_both();
        cr_assert_eq(leds_set(fx.l, LED_READY), 0);
        n_events = 0;

        show(LED_INCOMPATIBLE, 750);
        assert_blink(ERROR_LINE, fx.t0, 0, 500, 1, 2); /* on at 0, off at 500 */
        assert_blink(STATUS_LINE, fx.t0, 0, 0, 0, 1);  /* one write: off */
        cr_assert_eq(events[0].line, STATUS_LINE, "status goes off before the error LED lights");

        /* from there to ERROR: the same LED, the fast pattern */
        n_events = 0;
        show(LED_ERROR, 125);
        assert_blink(ERROR_LINE, fx.t0, 0, 50, 1, 3); /* off since 500 ms: on at 0, off at 50, on at 100 */
}

Test(leds, incompatible_without_error_led_blinks_status_500ms) {
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", NULL, &fx.l), 0);
        show(LED_INCOMPATIBLE, 750);
        assert_blink(STATUS_LINE, fx.t0, 0, 500, 1, 2);
}

Test(leds, switching_cancels_the_old_timer) {
        action_t to_ready = {}, to_starting = {};

        open_both();
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ENROLLING), 0);
        to_ready = (action_t) { .leds = fx.l, .pattern = LED_READY, .result = 1 };
        at(fx.e, fx.t0, 300, &to_ready);
        run_until(fx.e, fx.t0, 1000);
        cr_assert_eq(to_ready.result, 0);
        /* on at 0, off at 200, on at 300 (READY), then nothing: no 400/600/800 ms edges */
        cr_assert_eq(n_events, 3);
        cr_assert(events[0].value == 1 && events[1].value == 0 && events[2].value == 1);
        cr_assert(llabs((long long) (events[2].t - fx.t0) - 300000) < TOLERANCE_USEC);

        /* ENROLLING -> STARTING: the new period counts from the switch */
        n_events = 0;
        cr_assert_eq(leds_set(fx.l, LED_OFF), 0);
        n_events = 0;
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ENROLLING), 0);
        to_starting = (action_t) { .leds = fx.l, .pattern = LED_STARTING, .result = 1 };
        at(fx.e, fx.t0, 250, &to_starting); /* status is off at 250 */
        run_until(fx.e, fx.t0, 575);
        cr_assert_eq(to_starting.result, 0);
        /* 0 on, 200 off, then STARTING: 250 on, 350 off, 450 on, 550 off */
        cr_assert_eq(n_events, 6);
        memmove(events, events + 2, 4 * sizeof(event_t));
        n_events = 4;
        assert_blink(STATUS_LINE, fx.t0, 250, 100, 1, 4);
}

Test(leds, same_pattern_keeps_the_phase) {
        action_t again = {};

        open_both();
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ENROLLING), 0);
        again = (action_t) { .leds = fx.l, .pattern = LED_ENROLLING, .result = 1 };
        at(fx.e, fx.t0, 100, &again);
        run_until(fx.e, fx.t0, 500);
        cr_assert_eq(again.result, 0);
        assert_blink(STATUS_LINE, fx.t0, 0, 200, 1, 3); /* 0, 200, 400: not restarted at 100 */
}

Test(leds, stalled_loop_resyncs_without_a_burst) {
        open_both();
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ENROLLING), 0);
        vclock_stall(650 * MSEC); /* the loop is busy elsewhere: edges at 200, 400 and 600 ms are missed */
        run_until(fx.e, fx.t0, 1000);
        /* on at 0, the late edge off at ~650, then 200 ms from there: on at ~850; no catch-up */
        cr_assert_eq(n_events, 3);
        cr_assert(events[1].value == 0 && events[2].value == 1);
        cr_assert_eq(events[1].t - fx.t0, 650 * MSEC);
        cr_assert(llabs((long long) (events[2].t - events[1].t) - 200000) < TOLERANCE_USEC);
}

Test(leds, off_turns_both_off_and_stops) {
        open_both();
        cr_assert_eq(leds_set(fx.l, LED_ERROR), 0);
        cr_assert_eq(ERROR_LINE->value, 1);
        show(LED_OFF, 300);
        cr_assert_eq(ERROR_LINE->value, 0);
        cr_assert_eq(STATUS_LINE->value, 0);
        cr_assert_eq(n_events, 2);
}

Test(leds, free_turns_lines_off_releases_and_stops_the_timer) {
        action_t free_it = {};

        open_both();
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ENROLLING), 0);
        free_it = (action_t) { .leds = fx.l, .free_it = true };
        at(fx.e, fx.t0, 100, &free_it); /* while the status LED is lit */
        run_until(fx.e, fx.t0, 700);
        fx.l = NULL;
        cr_assert_null(free_it.leds);

        cr_assert_eq(n_events, 2, "after free no timer may fire");
        cr_assert_eq(events[1].line, STATUS_LINE);
        cr_assert_eq(events[1].value, 0);
        cr_assert(llabs((long long) (events[1].t - fx.t0) - 100000) < TOLERANCE_USEC);
        cr_assert_eq(STATUS_LINE->releases, 1);
        cr_assert_eq(ERROR_LINE->releases, 1);
        assert_all_released();
}

Test(leds, timer_failure_is_reported) {
        open_both();
        cr_assert_eq(sd_event_exit(fx.e, 0), 0);
        cr_assert_eq(sd_event_loop(fx.e), 0); /* finished: no new sources */
        cr_assert_lt(leds_set(fx.l, LED_ENROLLING), 0);
        cr_assert_eq(leds_get(fx.l), _LED_PATTERN_INVALID);
        cr_assert_eq(leds_set(fx.l, LED_READY), 0, "a steady pattern needs no timer");
        cr_assert_eq(leds_get(fx.l), LED_READY);
        cr_assert_eq(STATUS_LINE->value, 1);
}

Test(leds, failed_write_is_reported_and_retried) {
        open_both();
        fail_writes = true;
        cr_assert_eq(leds_set(fx.l, LED_READY), -EIO);
        cr_assert_eq(STATUS_LINE->value, 0);
        fail_writes = false;
        cr_assert_eq(leds_set(fx.l, LED_READY), 0, "the same pattern is applied again after a failure");
        cr_assert_eq(STATUS_LINE->value, 1);
        cr_assert_eq(leds_set(fx.l, LED_READY), 0);
        cr_assert_eq(n_events, 1);
}
#endif

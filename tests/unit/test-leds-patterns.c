/* SPDX-License-Identifier: MIT */
/* hw/leds: the patterns over time on a real sd-event loop, libgpiod and the clock faked
 * (leds-fake.h): every edge is checked to the microsecond and no result depends on the machine's
 * speed or load. */
#include "tests/unit/leds-fake.h"

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
        cr_assert_eq(leds_new(fx.e, "name:LED_STATUS", "name:LED_ERR:active-low", NULL, NULL, &fx.l), 0);
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

/* A line that cannot be requested is reported and retried, the other one is driven anyway. */
static void open_fails(const char *status, const char *error, led_line_t line, int r) {
        leds_t *l = NULL;

        n_reports = 0;
        cr_assert_eq(leds_new(fx.e, status, error, record_report, NULL, &l), 0);
        cr_assert_eq(n_reports, 1);
        cr_assert(reports[0].line == line && reports[0].r == r, "reported %d for line %d", reports[0].r,
                  reports[0].line);
        cr_assert_null(leds_free(l));
        assert_all_released();
}

Test(leds, open_errors_are_reported_and_leave_nothing_behind) {
        leds_t *l = (leds_t *) 0x1;

        open_fails("gpiochip7:1", NULL, LED_LINE_STATUS, -ENOENT);
        open_fails("gpiochip0:1", "gpiochip1:8", LED_LINE_ERROR, -EINVAL); /* chip1 has 8 lines */
        open_fails("name:NO_SUCH_LINE", NULL, LED_LINE_STATUS, -ENOENT);
        STATUS_LINE->held_elsewhere = true;
        open_fails("gpiochip1:2", "gpiochip0:17", LED_LINE_ERROR, -EBUSY);
        cr_assert_eq(ERROR_LINE->releases, 1, "the line that was requested is released with the leds_t");
        STATUS_LINE->held_elsewhere = false;

        /* a bad spec fails before any line is touched */
        gpiod_calls = 0;
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2:active", record_report, NULL, &l), -EINVAL);
        cr_assert_eq(l, (leds_t *) 0x1, "ret touched on failure");
        cr_assert_eq(gpiod_calls, 0);
}

/* The chip of the status LED probes after the agent started (or udev has not given it to group
 * gpio yet): the error LED works meanwhile, the status LED shows the pattern from when its chip
 * is there, and the retries back off (no busy loop) and say nothing new. */
Test(leds, missing_chip_is_retried_and_then_shows_the_pattern) {
        chips[0].absent = true;
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2:active-low", record_report, NULL, &fx.l), 0);
        cr_assert(ERROR_LINE->requested && !STATUS_LINE->requested);
        cr_assert_eq(n_reports, 1);
        cr_assert(reports[0].line == LED_LINE_STATUS && reports[0].r == -ENOENT);

        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ENROLLING), 0);
        run_until(fx.e, fx.t0, 10000);
        cr_assert_eq(n_events, 0, "nothing to blink yet");
        /* retries at 1, 3 and 7 s: 1 s doubling */
        cr_assert_eq(failed_lookups, 4, "%d attempts in 10 s", failed_lookups);
        cr_assert_eq(n_reports, 1, "the same error is not reported again");

        chips[0].absent = false; /* retried at 15 s */
        run_until(fx.e, fx.t0, 15900);
        cr_assert(STATUS_LINE->requested);
        cr_assert_eq(n_reports, 2);
        cr_assert(reports[1].line == LED_LINE_STATUS && reports[1].r == 0);
        cr_assert_eq(reports[1].t - fx.t0, 15000 * MSEC);
        cr_assert_eq(STATUS_LINE->flags, 0);
        assert_blink(STATUS_LINE, fx.t0, 15000, 200, 1, 5); /* from the request on: 15.0 .. 15.8 s */
        cr_assert_eq(ERROR_LINE->value, 0);

        /* nothing left to retry: no further attempts */
        failed_lookups = 0;
        run_until(fx.e, fx.t0, 600000);
        cr_assert_eq(failed_lookups, 0);
        fx.l = leds_free(fx.l);
        assert_all_released();
}

Test(leds, retries_back_off_to_a_minute) {
        chips[1].absent = true;
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2", record_report, NULL, &fx.l), 0);
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_READY), 0);
        run_until(fx.e, fx.t0, 3600 * 1000);
        /* 1 + at 1, 3, 7, 15, 31, 63 s, then every 64 s until 1 h */
        cr_assert_eq(failed_lookups, 7 + (3600 - 63) / 64, "%d attempts in an hour", failed_lookups);
        cr_assert_eq(n_reports, 1);
        cr_assert_eq(STATUS_LINE->value, 1);
}

/* Another consumer holds the error LED's line at start: the status LED shows the state meanwhile
 * (also a failure, which the error LED would show), then the error LED takes over. */
Test(leds, busy_line_is_retried) {
        ERROR_LINE->held_elsewhere = true;
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2", record_report, NULL, &fx.l), 0);
        cr_assert_eq(n_reports, 1);
        cr_assert(reports[0].line == LED_LINE_ERROR && reports[0].r == -EBUSY);
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ERROR), 0);
        run_until(fx.e, fx.t0, 1200); /* status blinks 50/50 alone; the retry at 1 s fails alike */
        cr_assert_eq(n_reports, 1);
        ERROR_LINE->held_elsewhere = false;
        run_until(fx.e, fx.t0, 3025); /* retried at 3 s: on, off at 3.05 s */
        cr_assert(ERROR_LINE->requested);
        cr_assert_eq(n_reports, 2);
        cr_assert(reports[1].line == LED_LINE_ERROR && reports[1].r == 0);
        cr_assert_eq(STATUS_LINE->value, 0, "the error LED shows the failure now");
        cr_assert_eq(ERROR_LINE->value, 1);
}

/* The status LED's chip goes away while it blinks (unbound, a USB expander unplugged): the dead
 * line is released and reported, once (the retries that find the chip still away are that same
 * event, not a warning each), retried like one never requested, and requested anew once the
 * chip is back, where the pattern goes on; the error LED is not touched meanwhile. */
Test(leds, line_of_a_removed_chip_is_requested_again) {
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2", record_report, NULL, &fx.l), 0);
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ENROLLING), 0);
        run_until(fx.e, fx.t0, 500); /* edges at 0, 200, 400 ms */
        cr_assert_eq(n_events, 3);
        chip_remove(0);
        run_until(fx.e, fx.t0, 700); /* the edge at 600 ms fails: the line is let go */
        cr_assert(!STATUS_LINE->requested, "the dead line is released");
        cr_assert_eq(STATUS_LINE->releases, 1);
        cr_assert_eq(n_reports, 1);
        cr_assert(reports[0].line == LED_LINE_STATUS && reports[0].r == -ENODEV);
        run_until(fx.e, fx.t0, 1700); /* retried at 1.6 s: the chip is still gone */
        cr_assert_eq(failed_lookups, 1);
        cr_assert_eq(n_reports, 1, "the chip still away (-ENOENT) is the loss reported already");

        chips[0].absent = false; /* retried at 3.6 s */
        size_t before = n_events;
        run_until(fx.e, fx.t0, 4000);
        cr_assert(STATUS_LINE->requested, "requested again once the chip is back");
        cr_assert_eq(n_reports, 2);
        cr_assert(reports[1].line == LED_LINE_STATUS && reports[1].r == 0);
        cr_assert_eq(reports[1].t - fx.t0, 3600 * MSEC);
        cr_assert_eq(n_events - before, 2, "the pattern goes on: on at 3.6 s, off at 3.8 s");
        cr_assert_eq(events[before].line, STATUS_LINE);
        cr_assert_eq(events[before].t - fx.t0, 3600 * MSEC);
        cr_assert_eq(events[before].value, 1);
        cr_assert_eq(ERROR_LINE->value, 0);
        fx.l = leds_free(fx.l);
        assert_all_released();
}

/* After the loss, a retry that meets another failure than the chip still away says so: the chip
 * is back and another consumer took the line. */
Test(leds, removed_chip_back_with_its_line_taken_is_reported) {
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", NULL, record_report, NULL, &fx.l), 0);
        fx.t0 = now_usec();
        cr_assert_eq(leds_set(fx.l, LED_ENROLLING), 0);
        chip_remove(0);
        run_until(fx.e, fx.t0, 300); /* the edge at 200 ms finds the chip gone */
        cr_assert_eq(n_reports, 1);
        cr_assert_eq(reports[0].r, -ENODEV);
        chips[0].absent = false;
        STATUS_LINE->held_elsewhere = true;
        run_until(fx.e, fx.t0, 1300); /* retried at 1.2 s */
        cr_assert_eq(n_reports, 2);
        cr_assert(reports[1].line == LED_LINE_STATUS && reports[1].r == -EBUSY);
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

/* Without an error LED, p shown for ms blinks the status LED: count edges half_ms apart. */
static void status_led_alone_blinks(led_pattern_t p, unsigned ms, unsigned half_ms, size_t count) {
        cr_assert_eq(leds_new(fx.e, "gpiochip0:17", NULL, NULL, NULL, &fx.l), 0);
        show(p, ms);
        assert_blink(STATUS_LINE, fx.t0, 0, half_ms, 1, count);
}

Test(leds, error_without_error_led_blinks_status) {
        status_led_alone_blinks(LED_ERROR, 275, 50, 6);
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
        status_led_alone_blinks(LED_INCOMPATIBLE, 750, 500, 2);
}

Test(leds, switching_cancels_the_old_timer) {
        open_both();
        show_then(LED_ENROLLING, LED_READY, 300, 1000);
        /* on at 0, off at 200, on at 300 (READY), then nothing: no 400/600/800 ms edges */
        cr_assert_eq(n_events, 3);
        cr_assert(events[0].value == 1 && events[1].value == 0 && events[2].value == 1);
        cr_assert(llabs((long long) (events[2].t - fx.t0) - 300000) < TOLERANCE_USEC);

        /* ENROLLING -> STARTING: the new period counts from the switch */
        n_events = 0;
        cr_assert_eq(leds_set(fx.l, LED_OFF), 0);
        n_events = 0;
        show_then(LED_ENROLLING, LED_STARTING, 250, 575); /* status is off at 250 */
        /* 0 on, 200 off, then STARTING: 250 on, 350 off, 450 on, 550 off */
        cr_assert_eq(n_events, 6);
        memmove(events, events + 2, 4 * sizeof(event_t));
        n_events = 4;
        assert_blink(STATUS_LINE, fx.t0, 250, 100, 1, 4);
}

Test(leds, same_pattern_keeps_the_phase) {
        open_both();
        show_then(LED_ENROLLING, LED_ENROLLING, 100, 500);
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

/* leds_new() cannot arm the retry timer of a pending line: it fails, and frees what it had:
 * the line it did request is released, nothing stays open, ret is not touched. */
Test(leds, retry_timer_failure_leaves_nothing_behind) {
        leds_t *l = (leds_t *) 0x1;

        chips[0].absent = true;
        cr_assert_eq(sd_event_exit(fx.e, 0), 0);
        cr_assert_eq(sd_event_loop(fx.e), 0); /* finished: no new sources */
        cr_assert_lt(leds_new(fx.e, "gpiochip0:17", "gpiochip1:2", record_report, NULL, &l), 0);
        cr_assert_eq(l, (leds_t *) 0x1, "ret touched on failure");
        cr_assert_eq(n_reports, 1, "the absent chip's line was reported");
        cr_assert_eq(ERROR_LINE->releases, 1, "the line that was requested is released");
        assert_all_released();
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

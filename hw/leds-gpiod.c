/* SPDX-License-Identifier: MIT */
/* State LEDs on libgpiod lines (hw/gpio.h), blinking on sd-event timers. */
#include <stdlib.h>

#include "hw/gpio.h"
#include "hw/leds.h"
#include "util/util.h"

#define BLINK_ACCURACY_USEC USEC_PER_MSEC /* sd-event's default (250 ms) would smear a 50 ms blink */
#define RETRY_MIN_USEC USEC_PER_SEC
#define RETRY_ACCURACY_USEC (100 * USEC_PER_MSEC)

struct leds {
        sd_event *event;
        sd_event_source *timer;
        gpio_line_t *line[_LED_LINE_MAX];
        int value[_LED_LINE_MAX]; /* last value written, -1 after a failed write */
        led_pattern_t pattern;
        int blink;              /* the line the timer toggles */
        int phase;              /* its current logical value */
        uint64_t half_usec;     /* on time = off time */

        /* A line configured (spec not empty) but not requested yet (chip not there, no
         * permission, busy) is pending: line_pending(). */
        led_spec_t spec[_LED_LINE_MAX];
        int error[_LED_LINE_MAX]; /* the last failed request's, reported once */
        sd_event_source *retry;
        uint64_t retry_usec;
        leds_report_t report;
        void *userdata;
};

/* Half period of each blinking pattern, 0 for steady ones. */
static const unsigned half_ms[_LED_PATTERN_MAX] = {
        [LED_STARTING] = 100,
        [LED_WAITING] = 1000,
        [LED_ENROLLING] = 200,
        [LED_ERROR] = 50,
        [LED_INCOMPATIBLE] = 500,
};

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata);

/* The retry of pending lines, from RETRY_MIN_USEC on: at leds_new(), and when a line is lost. */
static int retry_arm(leds_t *l) {
        l->retry_usec = RETRY_MIN_USEC;
        uint64_t when = now_usec() + l->retry_usec;
        if (l->retry) {
                int r = sd_event_source_set_time(l->retry, when);
                return r < 0 ? r : sd_event_source_set_enabled(l->retry, SD_EVENT_ONESHOT);
        }
        int r = sd_event_add_time(l->event, &l->retry, CLOCK_MONOTONIC, when, RETRY_ACCURACY_USEC, on_retry, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->retry, "leds-retry");
        return 0;
}

/* Write only real changes, so a steady pattern costs no syscalls and the line sees no glitch.
 * A line whose chip went away (-ENODEV, -EBADF: unbound, unplugged) is released, reported and
 * pending again, so the retry requests it anew once the chip is back: the handle is dead. */
static int line_write(leds_t *l, int i, int v) {
        int r;

        if (!l->line[i] || l->value[i] == v)
                return 0;
        r = gpio_line_set(l->line[i], v);
        l->value[i] = r < 0 ? -1 : v;
        if (r == -ENODEV || r == -EBADF) {
                l->line[i] = gpio_line_close(l->line[i]);
                if (l->report)
                        l->report((led_line_t) i, r, l->userdata);
                l->error[i] = r;
                (void) retry_arm(l); /* best effort: without it, the line stays dark */
        }
        return r;
}

static int on_blink(sd_event_source *s, uint64_t usec, void *userdata) {
        leds_t *l = userdata;
        uint64_t next, now;

        l->phase = !l->phase;
        (void) line_write(l, l->blink, l->phase); /* best effort: the next edge retries */

        /* Next edge relative to this one's due time, so edges do not drift; after a stall
         * (the loop was busy) restart from now instead of catching up in a burst. */
        next = usec + l->half_usec;
        now = now_usec();
        if (next <= now)
                next = now + l->half_usec;
        if (sd_event_source_set_time(s, next) < 0)
                return 0;
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

int leds_set(leds_t *l, led_pattern_t p) {
        int status = 0, error = 0, r, q;

        if (!l)
                return 0;
        if (p < 0 || p >= _LED_PATTERN_MAX)
                return -EINVAL;
        if (p == l->pattern && l->value[LED_LINE_STATUS] >= 0 && l->value[LED_LINE_ERROR] >= 0)
                return 0; /* shown already; after a failed write, apply it again */

        l->timer = sd_event_source_disable_unref(l->timer);
        l->pattern = p;
        l->half_usec = (uint64_t) half_ms[p] * USEC_PER_MSEC;
        l->blink = LED_LINE_STATUS;

        if ((p == LED_ERROR || p == LED_INCOMPATIBLE) && l->line[LED_LINE_ERROR]) {
                l->blink = LED_LINE_ERROR;
                error = 1;
        } else if (p != LED_OFF)
                status = 1;
        l->phase = 1;

        /* The LED going off first, so both are never lit together. */
        if (status) {
                r = line_write(l, LED_LINE_ERROR, error);
                q = line_write(l, LED_LINE_STATUS, status);
        } else {
                r = line_write(l, LED_LINE_STATUS, status);
                q = line_write(l, LED_LINE_ERROR, error);
        }
        if (r >= 0)
                r = q;

        if (l->half_usec == 0 || !l->line[l->blink])
                return r;

        q = sd_event_add_time(l->event, &l->timer, CLOCK_MONOTONIC, now_usec() + l->half_usec,
                              BLINK_ACCURACY_USEC, on_blink, l);
        if (q < 0) {
                l->pattern = _LED_PATTERN_INVALID; /* so that the next leds_set() tries again */
                return q;
        }
        (void) sd_event_source_set_description(l->timer, "leds-blink");
        return r;
}

static bool line_pending(const leds_t *l, int i) {
        return !l->line[i] && (l->spec[i].chip[0] || l->spec[i].name[0]);
}

/* The failure of a request is the last one again: the same error, or the chip still away after
 * its line was lost with it (the write's -ENODEV/-EBADF, then the request's -ENOENT: one event). */
static bool failure_known(int last, int r) {
        return r == last || ((last == -ENODEV || last == -EBADF) && (r == -ENOENT || r == -ENODEV));
}

/* Request pending line i. A failure is reported when it is not the last one (a retry that
 * fails alike says nothing), a success after a failure too. */
static int line_request(leds_t *l, int i) {
        int r = gpio_line_open(&l->spec[i], &l->line[i]);
        if (r < 0) {
                if (!failure_known(l->error[i], r) && l->report)
                        l->report((led_line_t) i, r, l->userdata);
                l->error[i] = r;
                return r;
        }
        l->value[i] = 0; /* requested at logical 0 */
        if (l->error[i] < 0 && l->report)
                l->report((led_line_t) i, 0, l->userdata);
        l->error[i] = 0;
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        leds_t *l = userdata;
        bool requested = false, pending = false;

        for (int i = 0; i < _LED_LINE_MAX; i++) {
                if (!line_pending(l, i))
                        continue;
                if (line_request(l, i) == 0)
                        requested = true;
                else
                        pending = true;
        }
        if (requested && l->pattern >= 0) {
                /* The pattern shown so far, now on the new line too (the blink starts over). */
                led_pattern_t p = l->pattern;
                l->pattern = _LED_PATTERN_INVALID;
                (void) leds_set(l, p);
        }
        if (!pending)
                return 0; /* oneshot: stays off */
        l->retry_usec = MIN(l->retry_usec * 2, LEDS_RETRY_MAX_USEC);
        if (sd_event_source_set_time(s, usec + l->retry_usec) < 0)
                return 0;
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

led_pattern_t leds_get(const leds_t *l) {
        return l ? l->pattern : LED_OFF;
}

int leds_new(sd_event *e, const char *status_spec, const char *error_spec, leds_report_t report, void *userdata,
             leds_t **ret) {
        const char *specs[_LED_LINE_MAX] = { status_spec, error_spec };
        led_spec_t parsed[_LED_LINE_MAX];
        bool have[_LED_LINE_MAX], pending = false;
        int r;

        if (!e || !ret)
                return -EINVAL;
        for (int i = 0; i < _LED_LINE_MAX; i++) {
                r = leds_parse_spec(specs[i], &parsed[i], NULL);
                if (r < 0)
                        return r;
                have[i] = r > 0;
        }

        /* Freed on every failure below: its lines released, its timers gone. */
        _cleanup_(leds_freep) leds_t *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(e);
        l->pattern = LED_OFF;
        l->report = report;
        l->userdata = userdata;

        for (int i = 0; i < _LED_LINE_MAX; i++) {
                if (!have[i])
                        continue;
                l->spec[i] = parsed[i];
                if (line_request(l, i) < 0)
                        pending = true;
        }
        if (pending) {
                r = retry_arm(l);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(l);
        return 0;
}

leds_t *leds_free(leds_t *l) {
        if (!l)
                return NULL;
        l->timer = sd_event_source_disable_unref(l->timer);
        l->retry = sd_event_source_disable_unref(l->retry);
        for (int i = 0; i < _LED_LINE_MAX; i++) {
                /* Explicitly off: whether a released line keeps its value is up to the driver
                 * (not line_write(): a lost line arms no retry here). */
                if (l->line[i] && l->value[i] != 0)
                        (void) gpio_line_set(l->line[i], 0);
                l->line[i] = gpio_line_close(l->line[i]);
        }
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

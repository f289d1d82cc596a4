/* SPDX-License-Identifier: MIT */
#pragma once
/* State LEDs on GPIO lines. hw/leds-gpiod.c drives them with libgpiod (through the tiny
 * hw/gpio.h seam), hw/leds-none.c is the fallback when built without libgpiod.
 *
 * Two LEDs, each optional: the status LED shows the agent's state, the error LED lights up
 * for rejected / revoked / failed (fast) and incompatible (slow). Blinking runs on sd-event timers (CLOCK_MONOTONIC, 1 ms
 * accuracy), so it only advances while the event loop dispatches. The line requests are held
 * for as long as the leds_t lives (a released gpio-sim line falls back to its pull value).
 * A configured line that cannot be requested (its chip not probed yet, udev not done giving
 * /dev/gpiochipN to group gpio, another consumer holding the line) does not stop the other one:
 * it is requested again on a timer (1 s, doubling up to LEDS_RETRY_MAX_USEC) and shows the
 * current pattern from when it is.
 *
 * LED spec (the [leds] status= / error= values of the agent configuration), at most
 * LED_SPEC_MAX characters:
 *     gpiochipN:OFFSET[:active-low]   chip /dev/gpiochipN, line OFFSET (0..LED_OFFSET_MAX)
 *     name:LINE_NAME[:active-low]     the first line called LINE_NAME on any chip
 * LINE_NAME is 1..LED_NAME_MAX printable ASCII characters (0x21..0x7e) other than ':'.
 * NULL or "" means "no LED". active-low: the line is requested with the active-low flag,
 * so a logical 1 lights the LED whatever the wiring. */

#include <errno.h>
#include <stdbool.h>

#include <systemd/sd-event.h>

#define LED_SPEC_MAX 255u
#define LED_NAME_MAX 31u        /* the kernel's GPIO_MAX_NAME_SIZE (32) minus the NUL */
#define LED_OFFSET_MAX 65535u
#define LED_CONSUMER "msce-agent"

typedef enum led_pattern {
        LED_OFF,
        LED_STARTING,  /* status: fast blink 100/100 ms (starting, restoring) */
        LED_WAITING,   /* status: slow blink 1000/1000 ms (waiting for network or time) */
        LED_ENROLLING, /* status: blink 200/200 ms */
        LED_READY,     /* status: solid on */
        LED_ERROR,     /* error: rapid blink 50/50 ms, status off; without an error LED the
                        * status LED blinks 50/50 instead, so one LED still shows a failure */
        LED_INCOMPATIBLE, /* error: slow blink 500/500 ms, status off (no common TLS version, suite
                           * or group with the MEF: a firmware or MEF configuration matter, not a
                           * credential); without an error LED the status LED blinks 500/500 */
        _LED_PATTERN_MAX,
        _LED_PATTERN_INVALID = -EINVAL,
} led_pattern_t;

typedef struct led_spec {
        char chip[LED_NAME_MAX + 1]; /* "gpiochipN", or "" when the line is found by name */
        char name[LED_NAME_MAX + 1]; /* line name, or "" when chip and offset are given */
        unsigned offset;
        bool active_low;
} led_spec_t;

typedef struct leds leds_t;

typedef enum led_line {
        LED_LINE_STATUS,
        LED_LINE_ERROR,
        _LED_LINE_MAX,
} led_line_t;

#define LEDS_RETRY_MAX_USEC (64ULL * 1000000ULL)

/* Told about a configured line's request: r < 0 when it failed (at leds_new(), and again only
 * when a retry fails with another error: no repeats) or when a write found its chip gone
 * (-ENODEV, -EBADF: the line is released and retried as one never requested; a retry finding
 * the chip still away, -ENOENT, is that same failure), 0 when a retry requested it after a
 * failure. Called from leds_new(), leds_set(), the blink and the retry
 * timers. */
typedef void (*leds_report_t)(led_line_t line, int r, void *userdata);

/* Pure parser. Returns 1 with *ret filled for a LED, 0 for NULL or "" (no LED, *ret not
 * touched), -EINVAL for a bad spec; then *why (when why is not NULL) points to a static
 * sentence saying what is wrong. */
int leds_parse_spec(const char *spec, led_spec_t *ret, const char **why);

/* Parse both specs and request both lines as outputs, off. With both specs empty the object
 * is a valid no-op. Errors: -EINVAL a bad spec (nothing requested), -EOPNOTSUPP a LED is
 * configured but the build has no libgpiod, -ENOMEM, or the error of arming the retry timer;
 * nothing stays requested then. A line that cannot be requested is no error of leds_new():
 * report (may be NULL) is told, with libgpiod's error (-ENOENT no such chip or no line of that
 * name, -EINVAL offset beyond the chip, -EBUSY the line is held by another consumer, -EACCES no
 * permission on /dev/gpiochipN), and the line is retried until it is requested or the leds_t
 * is freed. */
int leds_new(sd_event *e, const char *status_spec, const char *error_spec, leds_report_t report, void *userdata,
             leds_t **ret);

/* Show pattern p from now on; the previous pattern's timer is cancelled. Setting the pattern
 * already shown is a no-op (the blink phase is kept). l == NULL is a no-op, so a caller
 * without LEDs need not check. Returns -EINVAL for a bad pattern, or the error of the first
 * line write (the pattern is still switched: later edges retry; a line whose chip is gone is
 * requested again by the retry timer, see leds_report_t). */
int leds_set(leds_t *l, led_pattern_t p);

/* The pattern currently shown: LED_OFF for NULL, _LED_PATTERN_INVALID after leds_set()
 * could not start the blink timer (the next leds_set() applies its pattern again). */
led_pattern_t leds_get(const leds_t *l);

/* Both LEDs off, lines released, timer gone. Accepts NULL; returns NULL. */
leds_t *leds_free(leds_t *l);

static inline void leds_freep(leds_t **l) {
        leds_free(*l);
}
#define _cleanup_leds_ __attribute__((cleanup(leds_freep)))

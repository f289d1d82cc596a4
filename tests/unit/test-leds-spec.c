/* SPDX-License-Identifier: MIT */
/* hw/leds: the spec parser and the API; without libgpiod the fallback. The patterns over time
 * are in test-leds-patterns.c (with libgpiod 1.x). */
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
        cr_assert_eq(leds_new(e, NULL, "", NULL, NULL, &l), 0);
        cr_assert_not_null(l);
        cr_assert_eq(leds_set(l, LED_ENROLLING), 0);
        cr_assert_eq(leds_get(l), LED_ENROLLING);
        cr_assert_eq(leds_set(l, _LED_PATTERN_MAX), -EINVAL);
        cr_assert_eq(leds_set(l, _LED_PATTERN_INVALID), -EINVAL);
        cr_assert_eq(leds_get(l), LED_ENROLLING);
        cr_assert_null(leds_free(l));

        l = (leds_t *) 0x1;
        cr_assert_eq(leds_new(e, "gpiochip0:1:bogus", NULL, NULL, NULL, &l), -EINVAL);
        cr_assert_eq(leds_new(e, NULL, "name:", NULL, NULL, &l), -EINVAL);
        cr_assert_eq(l, (leds_t *) 0x1, "ret touched on failure");
        cr_assert_eq(leds_new(NULL, NULL, NULL, NULL, NULL, &l), -EINVAL);
        sd_event_unref(e);
}

#if !HAVE_GPIOD
/* ---- the fallback: configured LEDs are reported, not silently ignored ---- */

Test(leds_none, configured_led_is_not_supported) {
        sd_event *e = NULL;
        leds_t *l = NULL;

        cr_assert_eq(sd_event_new(&e), 0);
        cr_assert_eq(leds_new(e, "gpiochip0:17", NULL, NULL, NULL, &l), -EOPNOTSUPP);
        cr_assert_eq(leds_new(e, NULL, "name:LED_ERR:active-low", NULL, NULL, &l), -EOPNOTSUPP);
        cr_assert_eq(leds_new(e, "gpiochip0:17", "name:", NULL, NULL, &l), -EINVAL); /* bad spec first */
        cr_assert_null(l);
        sd_event_unref(e);
}
#endif

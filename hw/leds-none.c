/* SPDX-License-Identifier: MIT */
/* Built without libgpiod: no LED can be driven. Configured LEDs are an error the agent
 * reports (-EOPNOTSUPP); without any, leds_t is a valid object that does nothing. */
#include <stdlib.h>

#include "hw/leds.h"

struct leds {
        led_pattern_t pattern;
};

int leds_new(sd_event *e, const char *status_spec, const char *error_spec, leds_report_t report, void *userdata,
             leds_t **ret) {
        led_spec_t spec;
        int r, s;

        if (!e || !ret)
                return -EINVAL;
        r = leds_parse_spec(status_spec, &spec, NULL);
        if (r < 0)
                return r;
        s = leds_parse_spec(error_spec, &spec, NULL);
        if (s < 0)
                return s;
        if (r > 0 || s > 0)
                return -EOPNOTSUPP;

        leds_t *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        *ret = l;
        return 0;
}

int leds_set(leds_t *l, led_pattern_t p) {
        if (!l)
                return 0;
        if (p < 0 || p >= _LED_PATTERN_MAX)
                return -EINVAL;
        l->pattern = p;
        return 0;
}

led_pattern_t leds_get(const leds_t *l) {
        return l ? l->pattern : LED_OFF;
}

leds_t *leds_free(leds_t *l) {
        free(l);
        return NULL;
}

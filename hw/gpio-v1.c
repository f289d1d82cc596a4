/* SPDX-License-Identifier: MIT */
/* hw/gpio.h on the libgpiod 1.x API (Debian 12 ships 1.6.3). */
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>

#include "hw/gpio.h"
#include "util/util.h"

struct gpio_line {
        struct gpiod_chip *chip;
        struct gpiod_line *line;
};

int gpio_line_open(const led_spec_t *spec, gpio_line_t **ret) {
        _cleanup_free_ gpio_line_t *h = NULL;
        struct gpiod_chip *chip;
        struct gpiod_line *line;
        int r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;

        if (spec->name[0]) {
                /* The first line of that name on any chip; the chip stays open with it.
                 * libgpiod sets ENOENT when there is none; clear errno to tell it apart. */
                errno = 0;
                line = gpiod_line_find(spec->name);
                if (!line)
                        return errno == 0 ? -ENOENT : negative_errno();
                chip = gpiod_line_get_chip(line);
        } else {
                chip = gpiod_chip_open_by_name(spec->chip);
                if (!chip)
                        return negative_errno();
                line = gpiod_chip_get_line(chip, spec->offset);
                if (!line) {
                        r = negative_errno();
                        gpiod_chip_close(chip);
                        return r;
                }
        }

        if (gpiod_line_request_output_flags(line, LED_CONSUMER,
                                            spec->active_low ? GPIOD_LINE_REQUEST_FLAG_ACTIVE_LOW : 0, 0) < 0) {
                r = negative_errno();
                gpiod_chip_close(chip);
                return r;
        }

        h->chip = chip;
        h->line = line;
        *ret = TAKE_PTR(h);
        return 0;
}

int gpio_line_set(gpio_line_t *h, int value) {
        if (gpiod_line_set_value(h->line, !!value) < 0)
                return negative_errno();
        return 0;
}

int gpio_line_chip(const char *name, char *chip, size_t size) {
        errno = 0;
        struct gpiod_line *line = gpiod_line_find(name);
        if (!line)
                return errno == 0 ? -ENOENT : negative_errno();
        snprintf(chip, size, "%s", gpiod_chip_name(gpiod_line_get_chip(line)));
        gpiod_line_close_chip(line);
        return 0;
}

gpio_line_t *gpio_line_close(gpio_line_t *h) {
        if (!h)
                return NULL;
        gpiod_line_release(h->line);
        gpiod_chip_close(h->chip);
        free(h);
        return NULL;
}

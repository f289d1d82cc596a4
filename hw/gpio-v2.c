/* SPDX-License-Identifier: MIT */
/* hw/gpio.h on the libgpiod 2.x API (line settings, line/request config, line requests).
 *
 * meson builds it instead of hw/gpio-v1.c when libgpiod >= 2.0 is found (Debian 13: 2.2.1).
 * Debian 12, the development host, has only libgpiod 1.6.3, so it is built and tested in the
 * Debian 13 root filesystem (scripts/test-release.sh trixie, gcc and clang at -Werror) and
 * run in the Debian 13 guest of the system test (tests/system, test system-trixie), which
 * drives the LEDs on gpio-sim through it and has mscectl check find the lines by name. The
 * unit tests' libgpiod fakes are v1 only. Unlike v1, a v2 line request outlives its chip, so
 * the chip is closed right after the request. */
#include <dirent.h>
#include <gpiod.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/gpio.h"
#include "util/util.h"

struct gpio_line {
        struct gpiod_line_request *req;
        unsigned offset;
};

static int chip_request(struct gpiod_chip *chip, unsigned offset, bool active_low,
                        struct gpiod_line_request **ret) {
        struct gpiod_line_settings *settings = NULL;
        struct gpiod_line_config *line_cfg = NULL;
        struct gpiod_request_config *req_cfg = NULL;
        struct gpiod_line_request *req = NULL;
        int r = 0;

        settings = gpiod_line_settings_new();
        line_cfg = gpiod_line_config_new();
        req_cfg = gpiod_request_config_new();
        if (!settings || !line_cfg || !req_cfg) {
                r = -ENOMEM;
                goto finish;
        }
        if (gpiod_line_settings_set_direction(settings, GPIOD_LINE_DIRECTION_OUTPUT) < 0 ||
            gpiod_line_settings_set_output_value(settings, GPIOD_LINE_VALUE_INACTIVE) < 0) {
                r = negative_errno();
                goto finish;
        }
        gpiod_line_settings_set_active_low(settings, active_low);
        if (gpiod_line_config_add_line_settings(line_cfg, &offset, 1, settings) < 0) {
                r = negative_errno();
                goto finish;
        }
        gpiod_request_config_set_consumer(req_cfg, LED_CONSUMER);

        req = gpiod_chip_request_lines(chip, req_cfg, line_cfg);
        if (!req) {
                r = negative_errno();
                goto finish;
        }
        *ret = req;

finish:
        /* guarded: a NULL argument to a libgpiod 2.x method aborts */
        if (req_cfg)
                gpiod_request_config_free(req_cfg);
        if (line_cfg)
                gpiod_line_config_free(line_cfg);
        if (settings)
                gpiod_line_settings_free(settings);
        return r;
}

static int is_gpiochip(const struct dirent *de) {
        return strncmp(de->d_name, "gpiochip", 8) == 0;
}

/* Open the first chip (in gpiochipN order) with a line called name; its name in /dev
 * ("gpiochip0") into ret_dev (size bytes) when that is not NULL. */
static int chip_find_line(const char *name, struct gpiod_chip **ret_chip, unsigned *ret_offset, char *ret_dev,
                          size_t size) {
        struct dirent **list = NULL;
        int n, r = -ENOENT, open_error = 0;

        n = scandir("/dev", &list, is_gpiochip, versionsort);
        if (n < 0)
                return negative_errno();

        for (int i = 0; i < n; i++) {
                char path[sizeof("/dev/") + 256];
                struct gpiod_chip *chip;
                int off;

                if (r != -ENOENT)
                        continue; /* found, or a hard error: only free the rest */
                snprintf(path, sizeof(path), "/dev/%s", list[i]->d_name);
                if (!gpiod_is_gpiochip_device(path))
                        continue;
                chip = gpiod_chip_open(path);
                if (!chip) {
                        /* one unreadable chip must not hide the line on another; but when the
                         * line is found nowhere, it may be on that chip: say so, as libgpiod 1 does */
                        if (open_error == 0)
                                open_error = negative_errno();
                        continue;
                }
                off = gpiod_chip_get_line_offset_from_name(chip, name);
                if (off < 0) {
                        gpiod_chip_close(chip);
                        continue;
                }
                *ret_chip = chip;
                *ret_offset = (unsigned) off;
                if (ret_dev)
                        snprintf(ret_dev, size, "%s", list[i]->d_name);
                r = 0;
        }
        for (int i = 0; i < n; i++)
                free(list[i]);
        free(list);
        return r == -ENOENT && open_error < 0 ? open_error : r;
}

int gpio_line_open(const led_spec_t *spec, gpio_line_t **ret) {
        _cleanup_free_ gpio_line_t *h = NULL;
        struct gpiod_chip *chip = NULL;
        unsigned offset;
        int r;

        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;

        if (spec->name[0]) {
                r = chip_find_line(spec->name, &chip, &offset, NULL, 0);
                if (r < 0)
                        return r;
        } else {
                char path[sizeof("/dev/") + LED_NAME_MAX];

                snprintf(path, sizeof(path), "/dev/%s", spec->chip);
                chip = gpiod_chip_open(path);
                if (!chip)
                        return negative_errno();
                offset = spec->offset;
        }

        r = chip_request(chip, offset, spec->active_low, &h->req);
        gpiod_chip_close(chip);
        if (r < 0)
                return r;

        h->offset = offset;
        *ret = TAKE_PTR(h);
        return 0;
}

int gpio_line_set(gpio_line_t *h, int value) {
        if (gpiod_line_request_set_value(h->req, h->offset,
                                         value ? GPIOD_LINE_VALUE_ACTIVE : GPIOD_LINE_VALUE_INACTIVE) < 0)
                return negative_errno();
        return 0;
}

gpio_line_t *gpio_line_close(gpio_line_t *h) {
        if (!h)
                return NULL;
        gpiod_line_request_release(h->req);
        free(h);
        return NULL;
}

int gpio_line_chip(const char *name, char *chip, size_t size) {
        struct gpiod_chip *c;
        unsigned offset;
        int r;

        r = chip_find_line(name, &c, &offset, chip, size);
        if (r < 0)
                return r;
        gpiod_chip_close(c);
        return 0;
}

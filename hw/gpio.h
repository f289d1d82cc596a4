/* SPDX-License-Identifier: MIT */
#pragma once
/* Internal seam between hw/leds-gpiod.c and the libgpiod API version: hw/gpio-v1.c for
 * libgpiod 1.x (bookworm), hw/gpio-v2.c for libgpiod >= 2.0; meson builds exactly one.
 * One output line per handle, requested with consumer LED_CONSUMER and held until
 * gpio_line_close(). Values are logical (active-low is applied by the kernel). */

#include "hw/leds.h"

typedef struct gpio_line gpio_line_t;

/* Request the line spec names as an output at logical 0. Negative errno from libgpiod on
 * failure (see leds_new()); nothing stays open then, and *ret is not touched. */
int gpio_line_open(const led_spec_t *spec, gpio_line_t **ret);

/* Drive the line to logical value (0 or 1). */
int gpio_line_set(gpio_line_t *h, int value);

/* Release the line and close its chip. Accepts NULL; returns NULL. */
gpio_line_t *gpio_line_close(gpio_line_t *h);

/* The chip ("gpiochip0", its name in /dev) that has the first line called name, the one
 * gpio_line_open() requests, for mscectl check: 0, -ENOENT when no line has that name, or
 * another negative errno from libgpiod (-EACCES: not found on the chips this user may open,
 * and there is one it may not, with either libgpiod). */
int gpio_line_chip(const char *name, char *chip, size_t size);

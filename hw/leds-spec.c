/* SPDX-License-Identifier: MIT */
/* The LED spec parser: pure, built with and without libgpiod (mscectl check uses it; the
 * agent's --check-config checks only that the value is printable, leds_new() parses it). */
#include <string.h>

#include "hw/leds.h"
#include "util/util.h"

#define FAIL(msg) (why ? (void) (*why = (msg)) : (void) 0, -EINVAL)

/* "gpiochipN" with N decimal without leading zeros: the name libgpiod v1 opens as /dev/<name>
 * and v2 as the path /dev/<name>. */
static bool chip_name_ok(const char *s) {
        unsigned long long n;

        if (strncmp(s, "gpiochip", 8) != 0)
                return false;
        s += 8;
        if (s[0] == '0' && s[1])
                return false;
        return parse_uint(s, LED_OFFSET_MAX, &n) >= 0;
}

int leds_parse_spec(const char *spec, led_spec_t *ret, const char **why) {
        char buf[LED_SPEC_MAX + 1];
        led_spec_t s = {};
        char *field[3];
        size_t n = 0, len;

        if (!spec || !*spec)
                return 0;

        len = strnlen(spec, LED_SPEC_MAX + 1);
        if (len > LED_SPEC_MAX)
                return FAIL("longer than 255 characters");
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) spec[i] < 0x21 || (unsigned char) spec[i] > 0x7e)
                        return FAIL("contains a space or a character that is not printable ASCII");
        memcpy(buf, spec, len + 1);

        for (char *p = buf, *colon;; p = colon + 1) {
                if (n == ELEMENTSOF(field))
                        return FAIL("unexpected text after the option (expected chip:offset[:active-low] or name:LINE[:active-low])");
                field[n++] = p;
                colon = strchr(p, ':');
                if (!colon)
                        break;
                *colon = '\0';
        }
        if (n < 2)
                return FAIL("expected gpiochipN:OFFSET or name:LINE_NAME, optionally followed by :active-low");

        if (streq(field[0], "name")) {
                if (!*field[1])
                        return FAIL("empty line name");
                if (strlen(field[1]) > LED_NAME_MAX)
                        return FAIL("line name longer than 31 characters");
                strcpy(s.name, field[1]);
        } else {
                unsigned long long off;

                if (strlen(field[0]) > LED_NAME_MAX || !chip_name_ok(field[0]))
                        return FAIL("chip must be gpiochipN (N a number without leading zeros), or \"name\" for a line name");
                if (parse_uint(field[1], LED_OFFSET_MAX, &off) < 0)
                        return FAIL("line offset must be a number 0..65535");
                strcpy(s.chip, field[0]);
                s.offset = (unsigned) off;
        }

        if (n == 3) {
                if (!streq(field[2], "active-low"))
                        return FAIL("unknown option (the only option is active-low)");
                s.active_low = true;
        }

        *ret = s;
        return 1;
}

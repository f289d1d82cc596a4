/* SPDX-License-Identifier: MIT */
/* leds_parse_spec() (hw/leds.h) on the input up to its first NUL: what mscectl check and the
 * agent's LEDs (leds_new()) build on. 0 only for "" (no LED); a refusal is -EINVAL with a
 * reason, the same without one, *ret untouched; an accepted spec is printable ASCII of at most
 * LED_SPEC_MAX, names either a chip gpiochipN (no leading zeros) and an offset <= 65535, or a
 * line name of 1..31 bytes without ':', each fitting its NUL-terminated field, active-low
 * exactly when a third field follows (which is "active-low"), and written back in its
 * canonical form it parses to the same LED. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "hw/leds.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(const led_spec_t *a, const led_spec_t *b) {
        return streq(a->chip, b->chip) && streq(a->name, b->name) && a->offset == b->offset &&
               a->active_low == b->active_low;
}

static void check_field(const char *f) {
        check(memchr(f, 0, LED_NAME_MAX + 1));
        for (const char *p = f; *p; p++)
                check(*p > 0x20 && *p < 0x7f && *p != ':');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *spec = fuzz_string(data, size);
        if (!spec)
                return 0;
        led_spec_t s, sentinel;
        memset(&sentinel, 0x5a, sizeof sentinel);
        s = sentinel;
        const char *why = NULL;
        int r = leds_parse_spec(spec, &s, &why);
        size_t n = strlen(spec);
        if (r <= 0) {
                check(memcmp(&s, &sentinel, sizeof s) == 0);
                check(r == 0 ? n == 0 && !why : r == -EINVAL && why && why[0]);
                check(leds_parse_spec(spec, &s, NULL) == r);
                free(spec);
                return 0;
        }
        check(r == 1 && n > 0 && n <= LED_SPEC_MAX);
        check_field(s.chip);
        check_field(s.name);
        check(!s.chip[0] != !s.name[0]);
        if (s.chip[0]) {
                check(strncmp(s.chip, "gpiochip", 8) == 0 && s.chip[8] && (s.chip[8] != '0' || !s.chip[9]));
                for (const char *p = s.chip + 8; *p; p++)
                        check(*p >= '0' && *p <= '9');
                check(s.offset <= LED_OFFSET_MAX);
        } else
                check(s.offset == 0);
        /* a line may be called "active-low": the option is the third field */
        const char *second = strchr(strchr(spec, ':') + 1, ':');
        check(s.active_low == !!second);
        check(!second || streq(second, ":active-low"));

        char canon[LED_SPEC_MAX + 1];
        if (s.chip[0])
                snprintf(canon, sizeof canon, "%s:%u%s", s.chip, s.offset, s.active_low ? ":active-low" : "");
        else
                snprintf(canon, sizeof canon, "name:%s%s", s.name, s.active_low ? ":active-low" : "");
        led_spec_t again = sentinel;
        check(leds_parse_spec(canon, &again, NULL) == 1 && same(&s, &again));
        free(spec);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* LD_PRELOAD shim for daemon-test.py: time() says 2001-01-01, as on a gateway without RTC
 * before NTP. Only time() is replaced: the agent's clock check and wolfSSL's certificate dates
 * use it, while sd-event's timers (clock_gettime) keep the real clocks. */
#include <time.h>

time_t time(time_t *t);

time_t time(time_t *t) {
        time_t v = 978307200; /* 2001-01-01T00:00:00Z */
        if (t)
                *t = v;
        return v;
}

/* SPDX-License-Identifier: MIT */
/* LD_PRELOAD shim for daemon-test.py: time() says 2001-01-01, as on a gateway without RTC
 * before NTP, or MSCE_FAKE_TIME (seconds since the epoch) when set: a time past a profile's
 * expiry. Only time() is replaced: the agent's clock check, its expiry check and wolfSSL's
 * certificate dates use it, while sd-event's timers (clock_gettime) keep the real clocks. */
#include <stdlib.h>
#include <time.h>

time_t time(time_t *t);

time_t time(time_t *t) {
        const char *e = getenv("MSCE_FAKE_TIME");
        time_t v = e ? (time_t) strtoll(e, NULL, 10) : 978307200; /* 2001-01-01T00:00:00Z */
        if (t)
                *t = v;
        return v;
}

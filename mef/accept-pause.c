/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <string.h>

#include "mef/accept-pause.h"
#include "mef/log.h"
#include "util/time.h"
#include "util/util.h"

#define PAUSE_TIMER_ACCURACY_USEC (10u * 1000u)
#define PAUSE_LOG_USEC (10u * 1000u * 1000u)

static int on_pause_end(sd_event_source *src, uint64_t usec, void *userdata) {
        accept_pause_t *p = userdata;
        p->paused = false;
        p->resume(p->userdata);
        return 0;
}

int accept_pause_init(accept_pause_t *p, sd_event *event, const char *name, void (*resume)(void *userdata),
                      void *userdata) {
        *p = (accept_pause_t) { .resume = resume, .userdata = userdata, .name = name ?: "" };
        int r = sd_event_add_time(event, &p->timer, CLOCK_MONOTONIC, 0, PAUSE_TIMER_ACCURACY_USEC, on_pause_end, p);
        return r < 0 ? r : sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
}

void accept_pause_done(accept_pause_t *p) {
        if (!p)
                return;
        p->timer = sd_event_source_disable_unref(p->timer);
        p->paused = false;
}

accept_fail_t accept_pause_failed(accept_pause_t *p, int error) {
        if (error == EAGAIN || error == EWOULDBLOCK)
                return ACCEPT_DRAINED;
        if (error == EINTR || error == ECONNABORTED || error == EPROTO || error == EPERM)
                return ACCEPT_SKIP;
        uint64_t now = now_usec();
        if (p->logged == 0 || now - p->logged >= PAUSE_LOG_USEC) {
                p->logged = now;
                log_warning("%s%saccept: %s: pausing for %u ms", p->name, p->name[0] ? ": " : "", strerror(error),
                            ACCEPT_PAUSE_USEC / 1000u);
        }
        p->paused = true;
        if (sd_event_source_set_time_relative(p->timer, ACCEPT_PAUSE_USEC) >= 0)
                (void) sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
        return ACCEPT_PAUSED;
}

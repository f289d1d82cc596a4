/* SPDX-License-Identifier: MIT */
#pragma once
/* agent/sealing.h on a private event loop, as the manager drives it: for the tests that want
 * one seal or unseal and its result. */

#include <systemd/sd-event.h>

#include "agent/sealing.h"

typedef struct sealing_wait {
        bool done;
} sealing_wait_t;

static inline void sealing_wait_done(sealing_t *s, int r, void *userdata) {
        ((sealing_wait_t *) userdata)->done = true;
}

/* p: store it; NULL: load into *ret. The result as sealing_result() gives it. */
static inline int sealing_run(const seal_opts_t *o, const stored_profile_t *p, stored_profile_t *ret,
                              seal_method_t *ret_method, char *err, size_t err_size) {
        sd_event *e = NULL;
        int r = sd_event_new(&e);
        if (r < 0)
                return r;
        sealing_t *s = NULL;
        sealing_wait_t w = { false };
        r = sealing_start(e, o, p, sealing_wait_done, &w, &s);
        while (r >= 0 && !w.done)
                r = sd_event_run(e, UINT64_MAX);
        if (r >= 0)
                r = sealing_result(s, ret, ret_method, err, err_size);
        sealing_free(s);
        sd_event_unref(e);
        return r;
}

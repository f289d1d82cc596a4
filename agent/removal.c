/* SPDX-License-Identifier: MIT */
/* Removing what a profile no longer in place left (revoked, expired, another node's or MEF's),
 * and trying again when that fails for now: a user database that does not answer (the
 * [consumer] user cannot be resolved) would otherwise leave keys the CSE can read until a
 * restart. agent/manager-internal.h. */
#include "agent/manager-internal.h"
#include "agent/backoff.h"
#include "agent/exit-codes.h"
#include "util/util.h"

void states_removal_cancel(manager_t *m) {
        m->removal_timer = sd_event_source_disable_unref(m->removal_timer);
        m->removal_failures = 0;
}

/* Try a removal owed again; returns custody_remove()'s result, with ci's reason and the next try. */
static int removal_try(manager_t *m, bool sealed, custody_info_t *ci, char retry[32]) {
        int r = states_keys_remove(m, sealed, ci, retry);
        if (r < 0)
                report_log(m, LOG_WARNING, NULL, r, "Still cannot remove the keys of user %s: %s%s%s", m->cfg.service_user,
                           ci->failure.reason, retry[0] ? "; retrying in " : "", retry);
        else
                report_log(m, LOG_NOTICE, NULL, 0, "Removed the keys of user %s now", m->cfg.service_user);
        return r;
}

static int on_removal_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_t *m = userdata;
        custody_info_t ci;
        char retry[32];
        /* A store may be writing the sealed profile unless REVOKED, which waits for an operator. */
        bool revoked = m->state == STATE_REVOKED;
        int r = removal_try(m, revoked, &ci, retry);
        if (revoked)
                states_revoked_report(m, r < 0 ? ci.failure.reason : NULL, retry);
        return 0;
}

void states_removal_flush(manager_t *m) {
        custody_info_t ci;
        char retry[32];
        if (m->removal_timer && m->state == STATE_REVOKED)
                (void) removal_try(m, true, &ci, retry);
}

int states_keys_remove(manager_t *m, bool sealed, custody_info_t *info, char retry[32]) {
        retry[0] = 0;
        int r = custody_remove(&m->cfg, sealed, info);
        if (r == 0 || info->failure.outcome != OUTCOME_FAILED || m->once) {
                states_removal_cancel(m);
                return r;
        }
        backoff_params_t bp = { .min_usec = m->cfg.backoff_min_usec, .max_usec = m->cfg.backoff_max_usec };
        uint64_t delay = backoff_delay(&bp, ++m->removal_failures, backoff_random()), when = now_usec() + delay;
        int t = m->removal_timer ? sd_event_source_set_time(m->removal_timer, when)
                                 : sd_event_add_time(m->event, &m->removal_timer, CLOCK_MONOTONIC, when, 0,
                                                     on_removal_retry, m);
        if (t >= 0)
                t = sd_event_source_set_enabled(m->removal_timer, SD_EVENT_ONESHOT);
        if (t < 0) {
                report_log(m, LOG_ERR, NULL, t, "Cannot arm a timer: %s", strerror(-t));
                (void) sd_event_exit(m->event, AGENT_EXIT_SOFTWARE);
                return r;
        }
        report_duration(delay, retry);
        return r;
}

/* SPDX-License-Identifier: MIT */
/* The profile in place (agent/manager-internal.h): its non-secret copy and its three wall-clock
 * timers, renewal, expiry and keeping the CSE user's keyring alive, its keys put back when they
 * went; and, before an enrolment asked for, whether it is still in place. */
#include <stdio.h>

#include "agent/manager-internal.h"
#include "agent/backoff.h"
#include "agent/exit-codes.h"
#include "util/util.h"

void states_profile_forget(manager_t *m) {
        m->have_profile = false;
        stored_profile_wipe(&m->profile);
        m->renew_timer = sd_event_source_disable_unref(m->renew_timer);
        m->expiry_timer = sd_event_source_disable_unref(m->expiry_timer);
        m->keep_timer = sd_event_source_disable_unref(m->keep_timer);
}

static void realtime_arm(manager_t *m, sd_event_source **s, time_t at, sd_event_time_handler_t h) {
        uint64_t when = at > 0 ? (uint64_t) at * USEC_PER_SEC : 1;
        *s = sd_event_source_disable_unref(*s);
        int r = sd_event_add_time(m->event, s, CLOCK_REALTIME, when, USEC_PER_SEC, h, m);
        if (r < 0) {
                report_log(m, LOG_ERR, NULL, r, "Cannot arm a timer: %s", strerror(-r));
                (void) sd_event_exit(m->event, AGENT_EXIT_SOFTWARE);
        }
}

/* While what runs may put keys in (an enrolment, its seal, a restore) or ends where they can be
 * put back: look again this soon (at the keep-alive's interval when that is shorter). */
#define KEEP_SOON_SEC 5

/* The keep-alive's interval: a third of the persistent keyring's expiry (unreadable or 0: 3
 * days), at least 1 s. */
static time_t keep_interval(void) {
        unsigned long expiry = 0;
        _cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/keys/persistent_keyring_expiry", "re");
        if (!f || fscanf(f, "%lu", &expiry) != 1 || expiry == 0)
                expiry = 3 * 86400;
        return (time_t) MAX(expiry / 3, 1ul);
}

static int keep_keys(sd_event_source *s, uint64_t usec, void *userdata);

static void keep_arm(manager_t *m, time_t in) {
        realtime_arm(m, &m->keep_timer, time(NULL) + in, keep_keys);
}

/* The CSE user's persistent keyring expires unused (keys/keyring.h), and a poll may be a year
 * away: look the keys up, which refreshes it, at keep_interval(). Gone, they are put back from
 * the sealed profile in every state: by a status check, running or due (READY, a reinstall's
 * retry), now, as at a poll (an exchange running is killed, and made again after); after what
 * runs (an enrolment, its seal, a restore); else alone, the state and its retry left as they are
 * (a renewal in backoff, rejected, ...). s NULL: arm. */
static int keep_keys(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_t *m = userdata;
        time_t every = keep_interval();
        keep_arm(m, every);
        custody_info_t ci;
        if (!s || custody_check(&m->cfg, &m->profile, &ci) != -ENOKEY)
                return 0;
        if (m->exchange ? !m->exchange_is_enrol : !m->sealing && m->action == ACTION_STATUS) {
                m->exchange = worker_free(m->exchange);
                states_status(m);
        } else if (m->exchange || m->sealing)
                keep_arm(m, MIN(every, (time_t) KEEP_SOON_SEC));
        else {
                report_log(m, LOG_WARNING, NULL, -ENOKEY, "%s: reinstalling them from the sealed profile", ci.failure.reason);
                states_unseal(m, SEALING_PUT_BACK);
        }
        return 0;
}

void states_put_back_done(manager_t *m, int r, const char *err, stored_profile_t *p, seal_method_t method) {
        custody_info_t ci;
        r = custody_restore_finish(&m->cfg, r, err, p, method, NULL, &ci);
        if (r < 0) /* the keep-alive tries again */
                report_log(m, LOG_WARNING, NULL, r, "Cannot reinstall the keys of KeID %s: %s", m->profile.ke_id,
                           ci.failure.reason);
        else
                report_log(m, LOG_NOTICE, NULL, 0, "Reinstalled the keys of KeID %s from the sealed profile",
                           m->profile.ke_id);
}

void states_profile_check_keys(manager_t *m) {
        custody_info_t ci;
        if (!m->have_profile || custody_check(&m->cfg, &m->profile, &ci) != -ENOKEY)
                return;
        /* The keys alone went (a user, an expired keyring), not a reset: keep_keys() puts them back. */
        if (custody_sealed_exists(&m->cfg) == 0)
                return keep_arm(m, MIN(keep_interval(), (time_t) KEEP_SOON_SEC));
        report_log(m, LOG_NOTICE, NULL, -ENOKEY, "The keys of KeID %s are gone from the keyring, and its sealed profile "
                   "(factory reset?): enrolling anew", m->profile.ke_id);
        states_profile_forget(m);
}

void states_profile_adopt(manager_t *m, stored_profile_t *p, seal_method_t backend) {
        states_profile_forget(m);
        states_removal_cancel(m); /* its keys replaced whatever a failed removal left */
        m->profile = *p;
        stored_profile_wipe(p);
        erase(m->profile.ltk, sizeof m->profile.ltk);
        for (size_t i = 0; i < MSG_TARGETS_MAX; i++)
                erase(m->profile.targets[i].kpsa, sizeof m->profile.targets[i].kpsa);
        m->have_profile = true;
        m->backend = backend;
        time_format_utc(m->profile.exp_t, m->exp_utc);

        time_t exp = m->profile.exp_t, obtained = m->profile.obtained;
        time_t renew = exp > obtained ? obtained + (exp - obtained) / 5 * 4 : exp;
        time_t now = time(NULL);
        if (renew <= now && m->first_attempt) {
                /* Restored past its renewal time: spread a fleet's renewals after an outage. */
                uint64_t d = backoff_initial(m->cfg.initial_delay_max_usec, backoff_random());
                renew = now + (time_t) (d / USEC_PER_SEC);
        }
        realtime_arm(m, &m->renew_timer, renew, manager_on_renew);
        realtime_arm(m, &m->expiry_timer, exp, manager_on_expiry);
        (void) keep_keys(NULL, 0, m);
}

/* SPDX-License-Identifier: MIT */
/* The daemon's state machine on sd-event (agent/manager.h), also for --once: the loop, the
 * signals, reload and life cycle; the states are in agent/states.c, what it reports in
 * agent/report.c. Nothing blocks the loop but the custody calls (file writes with fsync, the
 * keyring: milliseconds): the exchanges with the MEF (agent/worker.h) and every seal and
 * unseal, the TPM's included (agent/sealing.h), run in child processes the loop waits for.
 * Every state change updates STATUS=, state.json and the journal; the important events carry
 * a MESSAGE_ID. */
#include <signal.h>

#include "agent/state-mark.h"
#include "agent/exit-codes.h"
#include "agent/manager-internal.h"
#include "agent/message-ids.h"
#include "keys/keyring-owner.h"
#include "util/journal.h"
#include "util/string-table.h"
#include "util/util.h"

static const char *const state_table[_STATE_MAX] = {
        [STATE_START] = "start",
        [STATE_RESTORE] = "restore",
        [STATE_WAIT_TIME] = "waiting-for-time",
        [STATE_ENROL] = "enrol",
        [STATE_BACKOFF] = "backoff",
        [STATE_REJECTED] = "rejected",
        [STATE_INCOMPATIBLE] = "incompatible",
        [STATE_READY] = "ready",
        [STATE_REVOKED] = "revoked",
        [STATE_STOPPING] = "stopping",
        [STATE_CONFIG_ERROR] = "configuration-error",
};

DEFINE_STRING_TABLE_TO_STRING(agent_state, agent_state_t, state_table)

void manager_set_once(manager_t *m, bool reenrol) {
        m->once = true;
        m->reenrol = reenrol;
        m->first_attempt = false;
}

/* ---- timers ---- */

void manager_action_cancel(manager_t *m) {
        m->action = ACTION_NONE;
        m->next_attempt = 0;
        if (m->action_timer)
                (void) sd_event_source_set_enabled(m->action_timer, SD_EVENT_OFF);
}

static int manager_on_action(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_t *m = userdata;
        action_t a = m->action;
        manager_action_cancel(m); /* a oneshot that fired: it is off already */
        if (a == ACTION_RESTORE)
                states_start(m);
        else if (a == ACTION_ENROL)
                states_enrol(m);
        else if (a == ACTION_STATUS && m->have_profile)
                states_status(m);
        return 0;
}

void manager_action_schedule(manager_t *m, action_t a, uint64_t delay) {
        uint64_t when = now_usec() + delay;
        int r = !m->action_timer
                        ? sd_event_add_time(m->event, &m->action_timer, CLOCK_MONOTONIC, when, 0, manager_on_action, m)
                        : sd_event_source_set_time(m->action_timer, when);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->action_timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                report_log(m, LOG_ERR, NULL, r, "Cannot arm a timer: %s", strerror(-r));
                (void) sd_event_exit(m->event, AGENT_EXIT_SOFTWARE);
                return;
        }
        m->action = a;
        m->next_attempt = time(NULL) + (time_t) ((delay + USEC_PER_SEC - 1) / USEC_PER_SEC);
}

int manager_on_renew(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_t *m = userdata;
        if (!m->have_profile || states_enrol_in_progress(m) || m->state == STATE_REVOKED)
                return 0;
        report_log(m, LOG_INFO, NULL, 0, "KeID %s reached 80%% of its lifetime: renewing", m->profile.ke_id);
        states_enrol_due(m); /* re-armed by a reload's restore: a Retry-After of the MEF's still holds */
        return 0;
}

int manager_on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_t *m = userdata;
        if (!m->have_profile)
                return 0;
        /* The keys go, the sealed profile stays: an enrolment under way may be writing it, or a
         * renewal sealed its successor and has not installed it. The restore that follows finds
         * this one expired and enrols (the next store replaces it), or installs a newer one
         * (without a restore: the next). */
        bool enrolling = states_enrol_in_progress(m);
        report_log(m, LOG_WARNING, enrolling ? MSCE_MESSAGE_EXPIRED : NULL, -EKEYEXPIRED,
                   "KeID %s expired at %s without renewal: removing its keys", m->profile.ke_id, m->exp_utc);
        custody_info_t ci;
        char retry[32];
        int r = states_keys_remove(m, false, &ci, retry);
        if (r < 0)
                report_log(m, retry[0] ? LOG_WARNING : LOG_ERR, NULL, r, "Removing the expired profile: %s%s%s",
                           ci.failure.reason, retry[0] ? "; retrying in " : "", retry);
        states_profile_forget(m);
        if (!enrolling) {
                m->failures = 0;
                states_start(m);
        }
        return 0;
}

void manager_enrol_requested(manager_t *m, const char *who) {
        m->enrol_requested = who;
        snprintf(m->enrol_requested_from, sizeof m->enrol_requested_from, "%s", m->have_profile ? m->profile.ke_id : "");
        states_profile_check_keys(m); /* after: a reload that restores the KeID asked from still enrols */
        /* One under way is the enrolment asked for, as for the renewal: killing its seal would lose
         * an enrolment the MEF has committed (retiring the KeID in place). */
        if (!states_enrol_in_progress(m))
                return states_enrol(m);
        report_log(m, LOG_INFO, NULL, 0, "An enrolment is under way: it is the one %s asks for", who);
}

/* ---- signals ---- */

/* --once interrupted: it has not done what it was run for (`msce-agent --once && start-cse`
 * must not start the CSE): say what holds, and exit as a transient failure, to be retried. */
static void once_interrupted(manager_t *m, const char *sig) {
        char what[256];
        if (m->sealing && m->sealing_kind == SEALING_STORE)
                snprintf(what, sizeof what, "while sealing the profile enrolled with MEF %s: its keys are not "
                         "installed (if its seal completed, the next run restores it)", m->cfg.mef_uri);
        else if (m->exchange && m->exchange_is_enrol)
                snprintf(what, sizeof what, "during the enrolment with MEF %s: no profile kept (a KeID the MEF may "
                         "have issued stays unused)", m->cfg.mef_uri);
        else
                snprintf(what, sizeof what, "while restoring: nothing changed");
        char kept[MSG_KEID_MAX + 64] = "";
        if (m->have_profile) /* an enrolment the MEF may have committed retires the KeID in place */
                snprintf(kept, sizeof kept, "; KeID %s stays in place%s", m->profile.ke_id,
                         states_enrol_in_progress(m) ? " (the MEF may have retired it)" : "");
        report_once_exit(m, AGENT_EXIT_TRANSIENT, "interrupted (signal %s) %s%s", sig, what, kept);
        states_cancel(m);
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_t *m = userdata;
        const char *sig = si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
        if (m->once) {
                int code; /* a run that has ended already has said its result */
                if (sd_event_get_exit_code(m->event, &code) < 0)
                        once_interrupted(m, sig);
                return 0;
        }
        report_notify(m, "STOPPING=1");
        states_cancel(m);
        report_state(m, STATE_STOPPING, LOG_INFO, "Stopping (%s)", sig);
        (void) sd_event_exit(m->event, AGENT_EXIT_OK);
        return 0;
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_t *m = userdata;
        report_log(m, LOG_NOTICE, NULL, 0, "Re-enrolment requested (SIGUSR1)");
        m->failures = 0;
        m->first_attempt = false;
        if (states_revoked_leave(m))
                manager_enrol_requested(m, "SIGUSR1");
        return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_t *m = userdata;
        /* Numbered, and said in state.json, before the files are read: a mscectl reload that read
         * a lower number knows this reload reads what was there when it started. */
        unsigned number = ++m->reloads_begun;
        report_state_json(m);
        report_notify(m, "RELOADING=1");
        report_log(m, LOG_INFO, NULL, 0, "Reloading the configuration (SIGHUP)");

        agent_config_t n = {};
        char err[1024];
        int r = agent_config_load(m->config_path, 0, &n, err, sizeof err);
        _cleanup_close_ int lock = -1;
        custody_info_t ci = {};
        /* state.json and profile.json live there, watched by mscectl reload and the CSE, and
         * msce-agent.service's RuntimeDirectory= makes it: moving them takes a restart. */
        if (r == 0 && !streq(n.runtime_dir, m->cfg.runtime_dir)) {
                snprintf(err, sizeof err,
                         "[seal] runtime_dir cannot change on reload (%s to %s): restart msce-agent to move it",
                         m->cfg.runtime_dir, n.runtime_dir);
                r = -EINVAL;
        } else if (r == 0 && custody_preflight(&n, NULL, &ci) < 0)
                r = -EINVAL;
        else if (r == 0 && !streq(n.state_dir, m->cfg.state_dir) && custody_lock(&n, &lock, &ci) < 0)
                r = -EBUSY;
        if (ci.failure.reason[0])
                snprintf(err, sizeof err, "%s", ci.failure.reason);
        if (r < 0) {
                agent_config_done(&n);
                const char *why = err[0] ? err : strerror(-r);
                /* state.json says it too (written below): last_error, for mscectl status. */
                char refused[sizeof err + 64];
                snprintf(refused, sizeof refused, "reload refused, previous configuration kept: %s", why);
                report_copy(m->last_error, sizeof m->last_error, refused);
                report_log(m, LOG_ERR, NULL, r, "Reload failed, keeping the previous configuration: %s", why);
                char line[STATUS_MAX + sizeof err + 64];
                snprintf(line, sizeof line, "STATUS=%s (reload failed, previous configuration kept: %s)", m->status, why);
                report_notify(m, line);
                if (m->ready_sent)
                        report_notify(m, "READY=1");
                /* complete, said last: mscectl reload waits for it. A reload under way (the
                 * previous SIGHUP's restore) goes on with the configuration it took. */
                report_copy(m->reload_error, sizeof m->reload_error, why);
                m->reloads++;
                m->reload_done = number;
                report_state_json(m);
                return 0;
        }

        /* The running exchange points into the old configuration: cancel it first. */
        states_cancel(m);
        /* Whose keyring holds the keys: the record goes along to a new state directory, where the
         * restore's user_leave() reads it (a new [consumer] user too: the previous one's go). */
        /* So does the mark of an enrolment that the cancel may have cut off after the MEF
         * committed it: the restore asks the MEF about the KeID it restores (agent/state-mark.h). */
        uid_t owner;
        if (!streq(n.state_dir, m->cfg.state_dir)) {
                if (keyring_owner_read(m->cfg.state_dir, &owner, NULL, 0) == 0)
                        (void) keyring_owner_write(n.state_dir, owner);
                if (state_mark_present(m->cfg.state_dir, ENROL_MARK_NAME))
                        (void) state_mark_set(n.state_dir, ENROL_MARK_NAME, NULL);
                /* A reload leaves REVOKED (an operator's act): no mark of it stays behind. */
                int c = state_mark_clear(m->cfg.state_dir, REVOKED_MARK_NAME);
                if (c < 0)
                        report_log(m, LOG_WARNING, NULL, c, "Cannot remove %s/%s: %s (the state directory is now %s)",
                                   m->cfg.state_dir, REVOKED_MARK_NAME, strerror(-c), n.state_dir);
        }
        /* Another MEF's Retry-After is not this one's. */
        if (!streq(n.mef_uri, m->cfg.mef_uri))
                m->enrol_not_before = 0;
        bool leds_changed = !streq(m->cfg.led_status ?: "", n.led_status ?: "") ||
                            !streq(m->cfg.led_error ?: "", n.led_error ?: "");
        agent_config_done(&m->cfg);
        m->cfg = n;
        if (leds_changed)
                report_leds_setup(m);
        if (lock >= 0) {
                close(m->lock_fd);
                m->lock_fd = TAKE_FD(lock);
        }
        m->failures = 0;
        m->reloading = number; /* a reload under way is cancelled: this one settles instead */
        report_log(m, LOG_INFO, NULL, 0, "Configuration reloaded from %s", m->cfg.path);
        /* READY=1 follows when the restore has settled (states_reload_settle()), even when it leads
         * to an enrolment, or when an enrolment cancels it (SIGUSR1, renewal, expiry): the reload
         * itself is complete then. */
        if (states_revoked_leave(m))
                states_start(m);
        return 0;
}

/* ---- life cycle ---- */

int manager_new(const char *config_path, agent_config_t *cfg, manager_t **ret, int *exit_code, char *err,
                size_t err_size) {
        *exit_code = AGENT_EXIT_SOFTWARE;
        _cleanup_(manager_freep) manager_t *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->lock_fd = -1;
        m->cfg = *cfg;
        *cfg = (agent_config_t) {};
        m->echo = !journal_stderr_is_journal();
        m->first_attempt = true;
        m->since = time(NULL);
        m->backend = _SEAL_METHOD_INVALID;
        m->poll_warned = POLL_WARNED_NONE;
        if (config_path && !(m->config_path = strdup(config_path)))
                return -ENOMEM;

        /* Everything local before anything is sent (msce-agent --check-config checks the same):
         * manager_run() stops with a configuration error, in STATUS= and state.json. Nothing is
         * created then. Another failure (the user database not answering yet) is retried by a
         * restart, like a lock another agent holds. */
        custody_info_t ci;
        int r = custody_preflight(&m->cfg, NULL, &ci);
        if (r < 0 && ci.failure.outcome == OUTCOME_CONFIG) {
                report_copy(m->preflight_error, sizeof m->preflight_error, ci.failure.reason);
                /* A second msce-agent of the same configuration (started by hand, where the Kpm
                 * credential is not passed): state.json and the LEDs are the running one's. */
                m->runtime_not_ours = custody_lock_existing(&m->cfg, &m->lock_fd) == -EBUSY;
        } else {
                if (r == 0)
                        r = custody_lock(&m->cfg, &m->lock_fd, &ci);
                if (r < 0) {
                        snprintf(err, err_size, "%s", ci.failure.reason);
                        *exit_code = manager_exit_code(ci.failure.outcome);
                        return r;
                }
        }

        static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
        sd_event_signal_handler_t handlers[] = { on_term, on_term, on_hup, on_usr1 };
        sigset_t mask;
        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaddset(&mask, sigs[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        const char *what = "create the event loop";
        r = sd_event_default(&m->event);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(sigs); i++) {
                what = "watch SIGTERM, SIGINT, SIGHUP and SIGUSR1";
                r = sd_event_add_signal(m->event, &m->signals[i], sigs[i], handlers[i], m);
        }
        /* WATCHDOG=1 at half of WATCHDOG_USEC when the service manager asks for it. */
        if (r >= 0) {
                what = "set up the watchdog";
                r = sd_event_set_watchdog(m->event, true);
        }
        if (r < 0) {
                snprintf(err, err_size, "cannot %s: %s", what, strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

manager_t *manager_free(manager_t *m) {
        if (!m)
                return NULL;
        states_cancel(m);
        states_profile_forget(m); /* the profile's copy and its three timers */
        states_removal_cancel(m);
        m->action_timer = sd_event_source_disable_unref(m->action_timer);
        for (size_t i = 0; i < ELEMENTSOF(m->signals); i++)
                m->signals[i] = sd_event_source_disable_unref(m->signals[i]);
        m->leds = leds_free(m->leds);
        sd_event_unref(m->event);
        agent_config_done(&m->cfg);
        if (m->lock_fd >= 0)
                close(m->lock_fd);
        free(m->config_path);
        free(m);
        return NULL;
}

int manager_run(manager_t *m) {
        /* Here, not in manager_new(): --once (manager_set_once(), called in between) drives no
         * LEDs, so it must neither request the lines nor warn that it cannot. */
        if (!m->once && !m->runtime_not_ours)
                report_leds_setup(m);
        report_state(m, STATE_START, LOG_INFO, "Starting (node %s, MEF %s)", m->cfg.node_id, m->cfg.mef_uri);
        if (m->preflight_error[0])
                report_fatal(m, AGENT_EXIT_CONFIG, -EINVAL, "Configuration error: %s", m->preflight_error);
        else
                states_start(m);
        int r = sd_event_loop(m->event);
        if (r < 0) {
                report_log(m, LOG_ERR, NULL, r, "Event loop failed: %s", strerror(-r));
                return AGENT_EXIT_SOFTWARE;
        }
        return r;
}

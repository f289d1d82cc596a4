/* SPDX-License-Identifier: MIT */
/* The agent's states and their transitions (agent/manager-internal.h): restore, enrol and keep,
 * READY with its status checks and renewal, revoked (the table from a failure's class to what
 * happens next: agent/classes.c). */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

#include "msce-config.h"

#include "agent/manager-internal.h"
#include "agent/backoff.h"
#include "agent/credential.h"
#include "agent/state-mark.h"
#include "agent/exit-codes.h"
#include "agent/message-ids.h"
#include "util/util.h"

void states_cancel(manager_t *m) {
        manager_action_cancel(m);
        m->exchange = worker_free(m->exchange);
        m->sealing = sealing_free(m->sealing);
        stored_profile_wipe(&m->pending);
        m->enrol_retry_at = 0;
}

bool states_enrol_in_progress(const manager_t *m) {
        return (m->exchange && m->exchange_is_enrol) || (m->sealing && m->sealing_kind == SEALING_STORE);
}

void states_reload_settle(manager_t *m) {
        if (!m->reloading)
                return;
        unsigned n = m->reloading;
        m->reloading = 0;
        if (m->ready_sent)
                report_notify(m, "READY=1");
        m->reloads++;
        if (n > m->reload_done) {
                m->reload_done = n;
                m->reload_error[0] = 0;
        }
        report_state_json(m);
}

/* ---- READY ---- */

/* The next status check delay from now; the retry of a refused enrolment instead when that
 * comes first (enrol_retry_at). Returns true for a status check. */
static bool status_schedule(manager_t *m, uint64_t delay) {
        uint64_t now = now_usec();
        if (m->enrol_retry_at && m->enrol_retry_at <= now + delay) {
                manager_action_schedule(m, ACTION_ENROL, m->enrol_retry_at - MIN(m->enrol_retry_at, now));
                return false;
        }
        manager_action_schedule(m, ACTION_STATUS, delay);
        return true;
}

/* READY, the next status check a poll interval away. */
static void ready_status(manager_t *m) {
        manager_action_schedule(m, ACTION_STATUS, (uint64_t) m->profile.poll * USEC_PER_SEC);
        report_state(m, STATE_READY, LOG_INFO, "Ready: KeID %s, expires %s, next check in %" PRIu32 " s",
                     m->profile.ke_id, m->exp_utc, m->profile.poll);
}

static void go_ready(manager_t *m) {
        m->failures = 0;
        m->status_failures = 0;
        m->first_attempt = false;
        m->clock_wait_until = 0;
        m->last_error[0] = 0;
        ready_status(m);
        /* The keys are in the keyring (custody_restore/custody_store returned 0). */
        if (!m->ready_sent && !m->reloading)
                report_notify(m, "READY=1");
        m->ready_sent = true;
        states_reload_settle(m);
}

/* ---- ENROL ---- */

/* The mark (agent/state-mark.h) goes down before each exchange and away once the enrolment is
 * in place or the KeID in place found active: failing to write it does not stop the enrolment,
 * only the recovery from an interrupted one. */
static void enrol_mark(manager_t *m, bool set) {
        if (!set && !state_mark_present(m->cfg.state_dir, ENROL_MARK_NAME))
                return;
        int r = set ? state_mark_set(m->cfg.state_dir, ENROL_MARK_NAME, NULL)
                    : state_mark_clear(m->cfg.state_dir, ENROL_MARK_NAME);
        if (r < 0 && !m->once)
                report_log(m, LOG_WARNING, NULL, r, "Cannot %s %s/%s: %s (%s)", set ? "write" : "remove", m->cfg.state_dir,
                           ENROL_MARK_NAME, strerror(-r),
                           set ? "an enrolment interrupted after the MEF committed it would be noticed at the next "
                                 "status check only"
                               : "the next start checks the status at once");
}

/* A transient network failure by where it happened, for STATUS; NULL for other failures. */
static const char *network_failure(int r, const exchange_info_t *info) {
        if (r != -ECONNREFUSED && r != -EHOSTUNREACH && r != -ENETUNREACH && r != -ETIMEDOUT && r != -ECONNRESET &&
            r != -ECONNABORTED)
                return NULL;
        return info->stage == EXCHANGE_STAGE_TLS        ? "TLS failed"
               : info->stage < EXCHANGE_STAGE_REQUEST   ? "cannot connect"
               : r == -ETIMEDOUT                        ? "no response in time"
                                                        : "connection lost before the response";
}

/* "; KeID ... stays valid until ..." while a profile is in place. */
#define VALID_MAX (MSG_KEID_MAX + 80)
static void still_valid(manager_t *m, char out[VALID_MAX]) {
        out[0] = 0;
        if (m->have_profile)
                snprintf(out, VALID_MAX, " (KeID %s stays in place until %s)", m->profile.ke_id, m->exp_utc);
}

/* prefix and "503, Retry-After 999999999999 s, capped at 1 h" from what the MEF sent (a 5xx). */
static void retry_after_note(const manager_t *m, const exchange_info_t *info, const char *prefix, char *out,
                             size_t size) {
        char cap[32] = "";
        if (info->has_retry_after && info->retry_after_capped)
                report_duration(m->cfg.retry_after_max_usec, cap);
        snprintf(out, size, "%s%d, %s%s%s", prefix, info->http_status, info->retry_after_sent,
                 !info->has_retry_after ? ": ignored" : cap[0] ? ", capped at " : "", cap);
}

/* An enrolment refused while a profile is in place, its slow retry scheduled: until then the MEF
 * is asked about the KeID in place as in READY, every poll, and at once when its refusal said the
 * node is revoked: a revocation since the last check must not leave the keys with the CSE for
 * the rest of their lifetime (the answer 'revoked' leads to REVOKED). Said in checks. */
static void refused_checks(manager_t *m, bool node_revoked, char checks[64]) {
        m->enrol_retry_at = now_usec() + m->cfg.rejected_retry_usec;
        uint64_t delay = node_revoked ? 0 : (uint64_t) m->profile.poll * USEC_PER_SEC;
        char d[32];
        report_duration(delay, d);
        if (status_schedule(m, delay))
                snprintf(checks, 64, "; %s%s", node_revoked ? "checking its status now" : "next status check in ",
                         node_revoked ? "" : d);
}

static void enrol_failed(manager_t *m, int r, const exchange_info_t *info) {
        const failure_t *f = &info->failure;
        if (m->once) {
                char retry[RETRY_AFTER_SENT_MAX + 64] = "";
                if (info->retry_after_sent[0])
                        snprintf(retry, sizeof retry, " (%s%s)", info->retry_after_sent,
                                 !info->has_retry_after ? ": ignored" :
                                 info->retry_after_capped ? ", capped at [timing] retry_after_max" : "");
                fprintf(stderr, "msce-agent: enrolment with MEF %s failed (%s): %s%s\n", m->cfg.mef_uri,
                        outcome_to_string(f->outcome) ?: "unknown", f->reason, retry);
                if (m->have_profile)
                        fprintf(stderr, "msce-agent: KeID %s stays in place\n", m->profile.ke_id);
                return report_once_end(m, states_class_action(f->outcome)->exit_code);
        }
        const class_action_t *a = states_class_failed(m, f, r);
        if (!a)
                return;
        char d[32], valid[VALID_MAX];
        still_valid(m, valid);
        states_class_retry(m, a, info, &m->failures, ACTION_ENROL, d);
        /* what the MEF asked for holds until then, also for the enrolment an expiry starts */
        if (a->delay == DELAY_BACKOFF && info->has_retry_after && m->action == ACTION_ENROL &&
            sd_event_source_get_time(m->action_timer, &m->enrol_not_before) < 0)
                m->enrol_not_before = 0;
        if (a->delay == DELAY_SLOW) {
                const char *what = f->outcome == OUTCOME_INCOMPATIBLE ? "Incompatible with" : "Rejected by";
                report_log(m, a->priority, a->message_id, r, "%s MEF %s: %s", what, m->cfg.mef_uri, f->reason);
                char checks[64] = "";
                if (m->have_profile)
                        refused_checks(m, info->node_revoked, checks);
                return class_enter(m, a, "%s MEF: %s; retrying in %s%s%s", what, f->reason, d, valid, checks);
        }
        const char *net = network_failure(r, info);
        if (net) {
                char what[64];
                snprintf(what, sizeof what, "%s", strerror(-r));
                what[0] = (char) tolower((unsigned char) what[0]);
                /* Only a failed resolution or connect makes the MEF "unreachable": past the
                 * connect, STATUS says which step failed (state.json has the reason). */
                if (info->stage == EXCHANGE_STAGE_CONNECT)
                        return class_enter(m, a, "MEF unreachable (%s); retrying in %s%s", what, d, valid);
                return class_enter(m, a, "%s (%s); retrying in %s%s",
                                   info->stage == EXCHANGE_STAGE_TLS ? "TLS handshake with the MEF failed" :
                                   r == -ETIMEDOUT ? "No response from the MEF in time" :
                                                     "MEF connection lost before the response",
                                   f->reason, d, valid);
        }
        if (info->retry_after_sent[0]) {
                char note[RETRY_AFTER_SENT_MAX + 64];
                retry_after_note(m, info, "", note, sizeof note);
                return class_enter(m, a, "MEF %s (%s); retrying in %s%s%s", info->http_status == 503 ? "busy" : "failed",
                                   note, d, info->has_retry_after && !info->retry_after_capped ? " as it asked" : "",
                                   valid);
        }
        class_enter(m, a, "Enrolment failed: %s; retrying in %s%s", f->reason, d, valid);
}

/* The end of an enrolment: res is the new profile, r and ci what keeping it gave. */
static void store_done(manager_t *m, int r, stored_profile_t *res, const custody_info_t *ci,
                       const exchange_info_t *info) {
        const class_action_t *a = states_class_action(ci->failure.outcome);
        if (r == 0 || ci->sealed)
                m->enrol_requested = NULL; /* the restore installs a sealed one */
        if (r < 0 && m->once && ci->sealed)
                return report_once_exit(m, a->exit_code, "enrolled as KeID %s and sealed the profile, but: %s "
                                        "(the next start installs it)", res->ke_id, ci->failure.reason);
        if (r < 0 && m->once)
                return report_once_exit(m, a->exit_code, "enrolled as KeID %s, but cannot keep the profile: %s%s",
                                        res->ke_id, ci->failure.reason,
                                        m->have_profile ? "; the previous profile stays in place" : "");
        if (r < 0) {
                report_copy(m->last_error, sizeof m->last_error, ci->failure.reason);
                if (a->state == STATE_CONFIG_ERROR)
                        return report_fatal(m, a->exit_code, r, "Enrolled as KeID %s, but: %s", res->ke_id,
                                            ci->failure.reason);
                char d[32], valid[VALID_MAX];
                /* When the new profile is sealed, restoring it completes the hand-over. */
                states_class_retry(m, a, NULL, &m->failures, ci->sealed ? ACTION_RESTORE : ACTION_ENROL, d);
                if (ci->sealed)
                        return class_enter(m, a, "Enrolled as KeID %s and sealed the profile, but: %s; retrying in %s",
                                           res->ke_id, ci->failure.reason, d);
                still_valid(m, valid);
                return class_enter(m, a, "Enrolled as KeID %s, but cannot keep the profile: %s; enrolling again in %s%s",
                                   res->ke_id, ci->failure.reason, d, valid);
        }
        char old[MSG_KEID_MAX + 1] = "";
        if (m->have_profile)
                snprintf(old, sizeof old, "%s", m->profile.ke_id);
        states_profile_adopt(m, res, ci->method);
        enrol_mark(m, false);
        if (m->once) {
                printf("enrolled with MEF %s\n", m->cfg.mef_uri);
                return report_once_print(m, info);
        }
        report_log(m, LOG_INFO, MSCE_MESSAGE_ENROLLED, 0,
                   "Enrolled with MEF %s as KeID %s (expires %s, %zu target%s, %s %s, sealed with %s)%s%s", m->cfg.mef_uri,
                   m->profile.ke_id, m->exp_utc, m->profile.n_targets, m->profile.n_targets == 1 ? "" : "s",
                   info->tls_version, info->cipher, seal_method_to_string(ci->method) ?: "?",
                   old[0] ? ", replacing KeID " : "", old);
        go_ready(m);
}

static void on_stored(sealing_t *s, int r, void *userdata) {
        manager_t *m = userdata;
        seal_method_t method = _SEAL_METHOD_INVALID;
        char err[256] = "";
        r = sealing_result(s, NULL, &method, err, sizeof err);
        m->sealing = sealing_free(s);
        _cleanup_(stored_profile_wipe) stored_profile_t res = m->pending;
        stored_profile_wipe(&m->pending);
        exchange_info_t info = m->pending_info;
        custody_info_t ci;
        r = custody_store_finish(&m->cfg, r, err, m->pending_envelope, &res, method, NULL, &ci);
        store_done(m, r, &res, &ci, &info);
}

static void on_enrol_done(worker_t *x, int r, void *userdata) {
        manager_t *m = userdata;
        exchange_info_t info = *worker_get_info(x);
        _cleanup_(stored_profile_wipe) stored_profile_t res = {};
        if (r == 0)
                r = worker_take_profile(x, &res);
        m->exchange = worker_free(x);
        if (r < 0)
                return enrol_failed(m, r, &info);
        report_poll_clamped(m, &info, "profile");

        custody_info_t ci;
        r = custody_store_begin(&m->cfg, &m->pending_envelope, &ci);
        if (r == 0) {
                seal_opts_t o = credential_seal_opts(&m->cfg);
                r = sealing_start(m->event, &o, &res, on_stored, m, &m->sealing);
                if (r == 0) {
                        m->sealing_kind = SEALING_STORE;
                        m->pending = res;
                        m->pending_info = info;
                        return;
                }
                (void) custody_store_finish(&m->cfg, r, NULL, m->pending_envelope, &res, _SEAL_METHOD_INVALID, NULL, &ci);
        }
        store_done(m, r, &res, &ci, &info);
}

/* In cert mode the MEF's certificate cannot be checked against a clock that is before the build
 * time (no RTC, no NTP yet): wait for the time, boundedly. Returns true while waiting. */
static bool clock_wait(manager_t *m) {
        if (m->once || m->cfg.mode != TLS_MODE_CERT || m->cfg.clock_wait_max_usec == 0 ||
            time(NULL) >= (time_t) MSCE_BUILD_TIME)
                return false;
        uint64_t now = now_usec();
        if (m->clock_wait_until == 0)
                m->clock_wait_until = now + m->cfg.clock_wait_max_usec;
        if (now < m->clock_wait_until) {
                /* Said again after whatever came in between (a reload's restore): the wait goes on. */
                if (m->state != STATE_WAIT_TIME) {
                        char build[32], d[32];
                        time_format_utc((time_t) MSCE_BUILD_TIME, build);
                        report_duration(m->clock_wait_until - now, d);
                        report_state(m, STATE_WAIT_TIME, LOG_NOTICE,
                                     "Waiting for time synchronisation (the clock is before %s; at most %s)", build, d);
                }
                manager_action_schedule(m, ACTION_ENROL, CLOCK_POLL_USEC);
                return true;
        }
        if (m->state == STATE_WAIT_TIME)
                report_log(m, LOG_WARNING, NULL, 0,
                           "The clock is still before the build time: verifying the MEF certificate anyway");
        return false;
}

/* Before each enrolment, what keeping its profile needs (custody_preflight()): an enrolment
 * whose profile cannot be kept leaves a KeID at the MEF that no gateway holds. False when it
 * cannot start now (the daemon stops, or backs off for a full disk). */
static bool enrol_preflight(manager_t *m) {
        custody_info_t ci;
        int r = custody_preflight(&m->cfg, NULL, &ci);
        if (r == 0)
                r = custody_space_check(&m->cfg, &ci);
        if (r == 0)
                return true;
        const class_action_t *a = states_class_failed(m, &ci.failure, r);
        if (!a)
                return false;
        if (m->once)
                report_once_exit(m, a->exit_code, "not enrolling: %s%s", ci.failure.reason,
                                 m->have_profile ? "; the previous profile stays in place" : "");
        else {
                char d[32], valid[VALID_MAX];
                states_class_retry(m, a, NULL, &m->failures, ACTION_ENROL, d);
                still_valid(m, valid);
                class_enter(m, a, "Not enrolling: %s; retrying in %s%s", ci.failure.reason, d, valid);
        }
        return false;
}

/* The enrolment itself, once nothing else runs (states_enrol()). */
static void enrol_start(manager_t *m) {
        if (clock_wait(m) || !enrol_preflight(m))
                return;
        if (m->have_profile)
                report_state(m, STATE_ENROL, LOG_INFO, "Renewing KeID %s with %s", m->profile.ke_id, m->cfg.mef_uri);
        else
                report_state(m, STATE_ENROL, LOG_INFO, "Enrolling with %s", m->cfg.mef_uri);
        m->enrol_not_before = 0;
        enrol_mark(m, true);
        exchange_info_t info;
        int r = worker_start(m->event, &m->cfg, WORKER_ENROL, m->have_profile ? m->profile.ke_id : NULL,
                             on_enrol_done, m, &m->exchange, &info);
        if (r < 0)
                return enrol_failed(m, r, &info);
        m->exchange_is_enrol = true;
}

void states_enrol(manager_t *m) {
        states_cancel(m);
        enrol_start(m);
        /* A reload's restore cancelled for this enrolment (SIGUSR1, renewal, expiry) leaves the
         * reload complete, its configuration in force: settled after the enrolment's state, which
         * mscectl reload prints, unless that ended the run. */
        if (m->state != STATE_CONFIG_ERROR)
                states_reload_settle(m);
}

/* The first attempt after start waits a random 0..initial_delay_max (fleet-wide power-up); a
 * Retry-After of the MEF's that still holds (an expiry or a reload during its backoff) longer. */
void states_enrol_due(manager_t *m) {
        uint64_t d = 0, now = now_usec();
        if (m->first_attempt) {
                m->first_attempt = false;
                d = backoff_initial(m->cfg.initial_delay_max_usec, backoff_random());
        }
        bool asked = m->enrol_not_before > now + d;
        if (asked)
                d = m->enrol_not_before - now;
        if (d == 0)
                return states_enrol(m);
        char ds[32];
        report_duration(d, ds);
        if (m->exchange && !m->exchange_is_enrol) /* a status check's answer would put it off a poll */
                m->exchange = worker_free(m->exchange);
        manager_action_schedule(m, ACTION_ENROL, d);
        report_state(m, asked ? STATE_BACKOFF : STATE_ENROL, LOG_INFO, "Enrolling with %s in %s%s", m->cfg.mef_uri, ds,
                     asked ? ", as it asked (Retry-After)" : " (random start delay)");
}

/* ---- status checks while READY, and while a profile is in place after a refusal ---- */

/* The KeID in place is active, its renewal refused: the next check, or the enrolment's retry. */
static void refused_active(manager_t *m) {
        uint64_t poll = (uint64_t) m->profile.poll * USEC_PER_SEC, now = now_usec();
        bool check = status_schedule(m, poll);
        char d[32];
        report_duration(check ? poll : m->enrol_retry_at - MIN(m->enrol_retry_at, now), d);
        report_log(m, LOG_INFO, NULL, 0, "KeID %s is active at MEF %s; %s in %s", m->profile.ke_id, m->cfg.mef_uri,
                   check ? "next status check" : "retrying the enrolment", d);
        report_state_json(m); /* its next_attempt */
}

/* A status check failed while refused (what: why, and when it is tried again): the state and its
 * STATUS stay; state.json has the error and the next attempt. */
static void refused_check_failed(manager_t *m, int r, const char *what) {
        report_log(m, LOG_WARNING, NULL, r, "KeID %s: %s", m->profile.ke_id, what);
        report_state_json(m);
}

static void on_status_done(worker_t *x, int r, void *userdata) {
        manager_t *m = userdata;
        exchange_info_t info = *worker_get_info(x);
        msg_status_t st = {};
        if (r == 0)
                st = *worker_get_status(x);
        m->exchange = worker_free(x);

        if (r == 0) {
                m->status_failures = 0;
                report_poll_clamped(m, &info, "status");
                if (st.poll >= MSG_POLL_MIN)
                        m->profile.poll = st.poll;
                switch (st.state) {
                case MSG_STATE_REENROL:
                        report_log(m, LOG_NOTICE, NULL, 0, "MEF %s asks to re-enrol KeID %s", m->cfg.mef_uri,
                                   m->profile.ke_id);
                        return manager_enrol_requested(m, "the MEF's reenrol");
                case MSG_STATE_REVOKED:
                        return states_revoked_enter(m);
                default:
                        /* active: no enrolment after it was committed */
                        enrol_mark(m, false);
                        if (m->enrol_retry_at) /* still refused: its state and reason stay */
                                return refused_active(m);
                        m->last_error[0] = 0;
                        return ready_status(m);
                }
        }
        /* the MEF's 404 only: the same errno from the Kpm file is a configuration error */
        if (info.failure.outcome == OUTCOME_UNKNOWN_KEID) {
                report_log(m, LOG_WARNING, NULL, r, "MEF %s no longer knows KeID %s: re-enrolling", m->cfg.mef_uri,
                           m->profile.ke_id);
                return states_enrol(m);
        }
        const class_action_t *a = states_class_failed(m, &info.failure, r);
        if (!a)
                return;
        /* The keys stay valid (READY, whatever the class): try again sooner than the poll
         * interval, never later; but never before the MEF's Retry-After (clamped to
         * retry_after_max), which may be longer. */
        uint64_t delay = states_backoff_next(m, &info, &m->status_failures);
        if (!info.has_retry_after)
                delay = MIN(delay, (uint64_t) m->profile.poll * USEC_PER_SEC);
        char d[32], extra[800], note[RETRY_AFTER_SENT_MAX + 64] = "";
        report_duration(delay, d);
        if (info.retry_after_sent[0])
                retry_after_note(m, &info, "; ", note, sizeof note);
        bool incompatible = info.failure.outcome == OUTCOME_INCOMPATIBLE;
        if (incompatible || info.failure.outcome == OUTCOME_REJECTED)
                report_log(m, a->priority, a->message_id, r, "MEF %s %s: %s", m->cfg.mef_uri,
                           incompatible ? "is incompatible" : "refused the status check", info.failure.reason);
        const char *net = network_failure(r, &info);
        snprintf(extra, sizeof extra, "; status check failed (%s%s%s%s), retrying in %s%s", net ?: "", net ? ": " : "",
                 info.failure.reason, note, d, info.has_retry_after && !info.retry_after_capped ? " as it asked" : "");
        status_schedule(m, delay);
        if (m->enrol_retry_at) /* REJECTED or INCOMPATIBLE stays what it says */
                return refused_check_failed(m, r, extra + 2);
        /* ready_status() would say "next check in <poll>": say the truth instead. */
        report_state(m, STATE_READY, LOG_WARNING, "Ready: KeID %s, expires %s%s", m->profile.ke_id, m->exp_utc, extra);
}

static void status_exchange(manager_t *m) {
        exchange_info_t info;
        int r = worker_start(m->event, &m->cfg, WORKER_STATUS, m->profile.ke_id, on_status_done, m, &m->exchange, &info);
        if (r == 0)
                m->exchange_is_enrol = false;
        else if (states_class_failed(m, &info.failure, r)) { /* nothing was sent: report it like a failed check */
                report_log(m, LOG_WARNING, NULL, r, "Status check failed: %s", info.failure.reason);
                status_schedule(m, m->cfg.backoff_max_usec);
        }
}

static void reinstall_done(manager_t *m, int r, stored_profile_t *p, const custody_info_t *ci) {
        const class_action_t *a = states_class_action(ci->failure.outcome);
        if (r == 0) {
                states_profile_adopt(m, p, ci->method);
                return status_exchange(m);
        }
        if (a->state == STATE_CONFIG_ERROR)
                return report_fatal(m, a->exit_code, r, "Configuration error: %s", ci->failure.reason);
        if (a->state == STATE_ENROL) {
                report_log(m, LOG_WARNING, MSCE_MESSAGE_UNSEAL_FAILED, r, "Cannot reinstall the keys: %s; enrolling",
                           ci->failure.reason);
                states_profile_forget(m);
                return states_enrol(m);
        }
        /* The keys are not in the keyring: not READY (that is what READY means). Put them back
         * after a backoff, before the next status check, rather than at the poll after it. */
        report_copy(m->last_error, sizeof m->last_error, ci->failure.reason);
        char d[32];
        states_class_retry(m, a, NULL, &m->status_failures, ACTION_STATUS, d);
        class_enter(m, a, "Cannot reinstall the keys of KeID %s: %s; retrying in %s", m->profile.ke_id,
                    ci->failure.reason, d);
}

/* ---- RESTORE, at start and reload, and of the keys while READY ---- */

/* After READY from a restore: an enrolment asked for before a reload cancelled it follows now;
 * one that may have been committed at the MEF and not kept (the mark: stopped, killed or
 * reloaded meanwhile) means the KeID restored may be retired: check now, not a poll later (a
 * 404 re-enrols). */
static void restored_unsettled(manager_t *m) {
        if (m->enrol_requested && !streq(m->profile.ke_id, m->enrol_requested_from))
                m->enrol_requested = NULL; /* its seal completed before the reload: restored */
        if (m->enrol_requested) {
                report_log(m, LOG_NOTICE, NULL, 0, "Re-enrolling as %s asked (a reload cancelled that enrolment)",
                           m->enrol_requested);
                return states_enrol_due(m);
        }
        if (!state_mark_present(m->cfg.state_dir, ENROL_MARK_NAME))
                return;
        report_log(m, LOG_NOTICE, NULL, 0, "An enrolment was interrupted (%s/%s): checking the status of KeID %s now",
                   m->cfg.state_dir, ENROL_MARK_NAME, m->profile.ke_id);
        states_status(m);
}

static void restore_done(manager_t *m, int r, stored_profile_t *p, const custody_info_t *ci) {
        /* every way out settles a reload (states_reload_settle(), in go_ready() too): it is complete with what restoring led to */
        if (r == 0) {
                states_profile_adopt(m, p, ci->method);
                if (m->once && !m->reenrol) {
                        if (state_mark_present(m->cfg.state_dir, ENROL_MARK_NAME)) /* the daemon checks the status at once */
                                fprintf(stderr, "msce-agent: an enrolment was interrupted (%s/%s): the MEF may have "
                                        "retired KeID %s\n", m->cfg.state_dir, ENROL_MARK_NAME, m->profile.ke_id);
                        printf("restored (KeID %s, no network needed)\n", m->profile.ke_id);
                        return report_once_print(m, NULL);
                }
                if (m->once) {
                        fprintf(stderr, "msce-agent: restored KeID %s; re-enrolling as asked\n", m->profile.ke_id);
                        return states_enrol(m);
                }
                report_log(m, LOG_INFO, MSCE_MESSAGE_RESTORED, 0, "Restored KeID %s from the sealed profile (%s)",
                           m->profile.ke_id, seal_method_to_string(ci->method) ?: "?");
                go_ready(m);
                return restored_unsettled(m);
        }
        const failure_t *f = &ci->failure;
        const class_action_t *a = states_class_failed(m, f, r);
        if (!a)
                return;
        if (m->once && a->state != STATE_ENROL)
                return report_once_exit(m, a->exit_code, "cannot restore the sealed profile (%s): %s",
                                        outcome_to_string(f->outcome), f->reason);
        if (a->state == STATE_ENROL) {
                /* what an enrolment fixes */
                if (m->once)
                        fprintf(stderr, "msce-agent: cannot restore (%s): %s; enrolling with MEF %s\n",
                                outcome_to_string(f->outcome), f->reason, m->cfg.mef_uri);
                /* Another node's or MEF's keys go now (like a previous [consumer] user's): no expiry
                 * is watched for them; nor for keys that no profile in place vouches for (a restart's:
                 * the keyring outlives the agent), which go too. An absent or unusable one leaves a
                 * reload's profile in place, its keys in use until the enrolment replaces them or it
                 * expires, if the CSE user has them (a new [consumer] user has none: nothing is in
                 * place then). */
                custody_info_t ri;
                bool expired = f->outcome == OUTCOME_EXPIRED;
                bool keys = custody_check(&m->cfg, m->have_profile ? &m->profile : NULL, &ri) == 0;
                bool drop = expired || f->outcome == OUTCOME_MISMATCH || (keys && !m->have_profile);
                if (f->outcome == OUTCOME_ABSENT)
                        report_log(m, a->priority, a->message_id, 0, "No sealed profile (%s): %senrolling", f->reason,
                                   drop ? "keys removed, " : "");
                else if (expired)
                        report_log_keid(m, ci->ke_id, a->priority, a->message_id, r, "%s: keys removed, enrolling",
                                        f->reason);
                else
                        report_log(m, a->priority, a->message_id, r, "Cannot use the sealed profile: %s; %senrolling",
                                   f->reason, drop ? "keys removed, " : "");
                /* The keys alone: the sealed profile stays for the next store to replace. An expired
                 * one is expired by a clock that nothing vouches for (one ahead at boot, that NTP
                 * steps back): it restores again at a later start. */
                char retry[32];
                if (drop && states_keys_remove(m, false, &ri, retry) < 0)
                        report_log_keid(m, ci->ke_id, retry[0] ? LOG_WARNING : LOG_ERR, NULL, ri.failure.error,
                                        "Removing the profile's keys: %s%s%s", ri.failure.reason,
                                        retry[0] ? "; retrying in " : "", retry);
                if (drop || !keys)
                        states_profile_forget(m);
                states_enrol_due(m);
                return states_reload_settle(m);
        }
        char d[32];
        states_class_retry(m, a, NULL, &m->failures, ACTION_RESTORE, d);
        class_enter(m, a, "Cannot restore the sealed profile: %s; retrying in %s", f->reason, d);
        states_reload_settle(m);
}

/* What an unseal gave (sealing_result()'s r, err, profile and method) to what kind says follows. */
static void unsealed(manager_t *m, sealing_kind_t kind, int r, const char *err, stored_profile_t *loaded,
                     seal_method_t method) {
        /* A put-back that finds another KeID sealed (a renewal's, not installed yet) restores it. */
        if (kind == SEALING_PUT_BACK && (r < 0 || streq(loaded->ke_id, m->profile.ke_id)))
                return states_put_back_done(m, r, err, loaded, method);
        _cleanup_(stored_profile_wipe) stored_profile_t p = {};
        custody_info_t ci;
        r = custody_restore_finish(&m->cfg, r, err, loaded, method, &p, &ci);
        (kind == SEALING_REINSTALL ? reinstall_done : restore_done)(m, r, &p, &ci);
}

static void on_unsealed(sealing_t *s, int r, void *userdata) {
        manager_t *m = userdata;
        _cleanup_(stored_profile_wipe) stored_profile_t loaded = {};
        seal_method_t method = _SEAL_METHOD_INVALID;
        char err[256] = "";
        r = sealing_result(s, &loaded, &method, err, sizeof err);
        m->sealing = sealing_free(s);
        unsealed(m, m->sealing_kind, r, err, &loaded, method);
}

void states_unseal(manager_t *m, sealing_kind_t kind) {
        seal_opts_t o = credential_seal_opts(&m->cfg);
        /* Nothing sealed (a first start): what the child would say, without one. */
        int r = custody_sealed_exists(&m->cfg);
        if (r == 0)
                r = sealing_start(m->event, &o, NULL, on_unsealed, m, &m->sealing);
        if (r == 0) {
                m->sealing_kind = kind;
                return;
        }
        stored_profile_t p = {};
        unsealed(m, kind, r, NULL, &p, _SEAL_METHOD_INVALID);
}

void states_user_leave(manager_t *m) {
        custody_info_t ci;
        char prev[CUSTODY_USER_MAX] = "";
        int r = custody_user_leave(&m->cfg, prev, &ci);
        if (r == 0)
                return;
        char msg[CUSTODY_USER_MAX * 3 + sizeof ci.failure.reason + 64];
        if (r > 0)
                snprintf(msg, sizeof msg, "[consumer] user changed from %s to %s: the keys of %s are removed", prev,
                         m->cfg.service_user, prev);
        else
                snprintf(msg, sizeof msg, "[consumer] user %s: %s", m->cfg.service_user, ci.failure.reason);
        /* a known previous user's keys may remain: an error; else the record's trouble: a warning */
        report_log(m, r > 0 ? LOG_NOTICE : prev[0] ? LOG_ERR : LOG_WARNING, NULL, MIN(r, 0), "%s", msg);
        if (m->once) /* quiet but for its result: this changed another user's keys, say so */
                fprintf(stderr, "msce-agent: %s\n", msg);
}

void states_restore(manager_t *m) {
        states_cancel(m);
        states_user_leave(m);
        report_state(m, STATE_RESTORE, LOG_INFO, "Restoring the sealed profile from %s", m->cfg.state_dir);
        states_unseal(m, SEALING_RESTORE);
}

void states_status(manager_t *m) {
        manager_action_cancel(m);
        /* The persistent keyring expires when unused (3 days): look the keys up on every poll,
         * which also refreshes it, and put them back from the sealed profile if they went. */
        custody_info_t ci;
        int r = custody_check(&m->cfg, &m->profile, &ci);
        if (r == -ENOKEY) {
                report_log(m, LOG_WARNING, NULL, r, "%s: reinstalling them from the sealed profile", ci.failure.reason);
                return states_unseal(m, SEALING_REINSTALL);
        }
        if (r < 0)
                report_log(m, LOG_WARNING, NULL, r, "Cannot check the keyring: %s", ci.failure.reason);
        status_exchange(m);
}

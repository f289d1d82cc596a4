/* SPDX-License-Identifier: MIT */
/* REVOKED until an operator acts (contract 3.2): the mark that outlives a restart
 * (agent/state-mark.h), the start that honours it, and the acts that end it. */
#include <stdio.h>

#include "agent/exit-codes.h"
#include "agent/manager-internal.h"
#include "agent/message-ids.h"
#include "agent/state-mark.h"
#include "util/util.h"

#define REVOKED_WAIT "waiting for an operator (SIGUSR1 or reload)"
#define REVOKED_MARK_TEXT_MAX 2048

void states_revoked_enter(manager_t *m) {
        states_cancel(m);
        /* The mark first: a power cut before the removal leaves keys that the next start removes,
         * not a start that enrols. Without the mark the keys go all the same. */
        char text[REVOKED_MARK_TEXT_MAX];
        snprintf(text, sizeof text, "%s\n%s\n", m->profile.ke_id, m->cfg.mef_uri);
        int w = state_mark_set(m->cfg.state_dir, REVOKED_MARK_NAME, text);
        custody_info_t ci;
        char retry[32];
        int r = states_keys_remove(m, true, &ci, retry);
        if (r < 0)
                report_log(m, LOG_WARNING, MSCE_MESSAGE_REVOKED, r, "MEF %s revoked KeID %s; but: %s%s%s", m->cfg.mef_uri,
                           m->profile.ke_id, ci.failure.reason, retry[0] ? "; retrying in " : "", retry);
        else
                report_log(m, LOG_WARNING, MSCE_MESSAGE_REVOKED, 0, "MEF %s revoked KeID %s: keys and sealed profile removed",
                           m->cfg.mef_uri, m->profile.ke_id);
        if (w < 0)
                report_log(m, LOG_ERR, NULL, w, "Cannot write %s/%s: %s (a restart would enrol again without an operator)",
                           m->cfg.state_dir, REVOKED_MARK_NAME, strerror(-w));
        states_profile_forget(m);
        snprintf(m->last_error, sizeof m->last_error, "revoked by the MEF");
        snprintf(m->revoked_why, sizeof m->revoked_why, "by MEF %s", m->cfg.mef_uri);
        states_revoked_report(m, r < 0 ? ci.failure.reason : NULL, retry);
}

void states_revoked_report(manager_t *m, const char *failed, const char *retry) {
        if (!failed)
                return report_state(m, STATE_REVOKED, LOG_WARNING, "Revoked %s: keys removed; " REVOKED_WAIT,
                                    m->revoked_why);
        report_state(m, STATE_REVOKED, LOG_WARNING, "Revoked %s; the keys cannot be removed%s (%s)%s%s; " REVOKED_WAIT,
                     m->revoked_why, retry[0] ? " yet" : "", failed, retry[0] ? ", retrying in " : "", retry);
}

/* What the mark says of the revocation, for STATUS=, state.json and --once: "by MEF URI before
 * this start (KeID K, at T)". Returns the MEF's URI (in text), NULL when the mark does not say. */
static const char *revoked_why(const manager_t *m, int r, time_t t, char *text, char *out, size_t size) {
        if (r < 0) {
                snprintf(out, size, "before this start (%s/%s says so: %s)", m->cfg.state_dir, REVOKED_MARK_NAME,
                         r == -EBADMSG ? "no time on its first line" : strerror(-r));
                return NULL;
        }
        char when[TIME_TEXT_MAX], *keid = text, *mef = strchr(text, '\n');
        if (mef) {
                *mef++ = 0;
                mef[strcspn(mef, "\n")] = 0;
        }
        time_format_utc(t, when);
        snprintf(out, size, "by MEF %s before this start (KeID %s, at %s)", mef && *mef ? mef : "?", *keid ? keid : "?",
                 when);
        return mef && *mef ? mef : NULL;
}

void states_start(manager_t *m) {
        char text[REVOKED_MARK_TEXT_MAX] = "", why[REVOKED_MARK_TEXT_MAX + 256];
        time_t t = 0;
        int r = state_mark_read(m->cfg.state_dir, REVOKED_MARK_NAME, &t, text, sizeof text);
        if (r == -ENOENT)
                return states_restore(m);
        const char *by = revoked_why(m, r, t, text, why, sizeof why);
        /* An operator's act: asked for, or another MEF configured since (that revocation was not
         * this one's to make). */
        bool other_mef = by && !streq(by, m->cfg.mef_uri);
        if ((m->once && m->reenrol) || other_mef) {
                r = state_mark_clear(m->cfg.state_dir, REVOKED_MARK_NAME);
                if (r < 0 && m->once)
                        return report_once_exit(m, AGENT_EXIT_TRANSIENT, "revoked %s, and cannot remove %s/%s: %s: "
                                                "not enrolling", why, m->cfg.state_dir, REVOKED_MARK_NAME, strerror(-r));
                if (r < 0)
                        report_log(m, LOG_ERR, NULL, r, "Cannot remove %s/%s: %s: staying revoked", m->cfg.state_dir,
                                   REVOKED_MARK_NAME, strerror(-r));
                else if (m->once)
                        fprintf(stderr, "msce-agent: revoked %s: %s\n", why,
                                other_mef ? "another MEF is configured now" : "enrolling again as asked");
                else
                        report_log(m, LOG_NOTICE, NULL, 0, "Revoked %s: MEF %s is configured now, not revoked there", why,
                                   m->cfg.mef_uri);
                if (r >= 0)
                        return states_restore(m);
        }
        /* Whatever the revocation left (a power cut after the mark) goes: revoked means no keys. */
        states_user_leave(m);
        custody_info_t ci;
        char retry[32];
        r = states_keys_remove(m, true, &ci, retry);
        if (m->once)
                return report_once_exit(m, AGENT_EXIT_REJECTED, "revoked %s; not enrolling until an operator acts "
                                        "(msce-agent --once --reenrol; or mscectl factory-reset)%s%s",
                                        why, r < 0 ? "; but: " : "", r < 0 ? ci.failure.reason : "");
        if (r < 0)
                report_log(m, retry[0] ? LOG_WARNING : LOG_ERR, NULL, r, "Removing what the revocation left: %s%s%s",
                           ci.failure.reason, retry[0] ? "; retrying in " : "", retry);
        m->first_attempt = false; /* what ends REVOKED is an operator's act, not a fleet's power-up */
        char last[sizeof why + 16];
        snprintf(last, sizeof last, "revoked %s", why);
        report_copy(m->last_error, sizeof m->last_error, last);
        report_copy(m->revoked_why, sizeof m->revoked_why, why);
        states_revoked_report(m, r < 0 ? ci.failure.reason : NULL, retry);
        states_reload_settle(m); /* a reload that found the mark is complete: it left it REVOKED */
}

bool states_revoked_leave(manager_t *m) {
        int r = state_mark_clear(m->cfg.state_dir, REVOKED_MARK_NAME);
        if (r >= 0) {
                states_removal_flush(m);
                return true;
        }
        report_log(m, m->state == STATE_REVOKED ? LOG_ERR : LOG_WARNING, NULL, r, "Cannot remove %s/%s: %s%s",
                   m->cfg.state_dir, REVOKED_MARK_NAME, strerror(-r),
                   m->state == STATE_REVOKED ? ": staying revoked" : " (while it is there, a start or reload is REVOKED)");
        if (m->state != STATE_REVOKED)
                return true;
        report_state(m, STATE_REVOKED, LOG_WARNING, "Revoked; cannot remove %s/%s (%s): fix it, then SIGUSR1 or reload",
                     m->cfg.state_dir, REVOKED_MARK_NAME, strerror(-r));
        states_reload_settle(m);
        return false;
}

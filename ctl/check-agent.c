/* SPDX-License-Identifier: MIT */
/* mscectl check: the running agent (state.json) and the profile it hands the CSE (profile.json). */
#include <strings.h>

#include "ctl/check-internal.h"
#include "ctl/runtime.h"

static bool strcaseeq(const char *a, const char *b) {
        return strcasecmp(a, b) == 0;
}

/* -ENOENT reported as a warning: "<topic>: no dir/file (<absent>)" and fix. */
static int runtime_missing(checker_t *c, int r, const char *dir, const char *file, const char *topic,
                           const char *absent, const char *fix) {
        if (r == -ENOENT)
                check_report(c, L_WARN, fix, "%s: no %s/%s (%s)", topic, dir, file, absent);
        return r == -ENOENT;
}

void check_agent(checker_t *c, const char *runtime_dir) {
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        char err[256];
        int r = ctl_runtime_load(runtime_dir, &s, NULL, NULL, err, sizeof err);
        if (runtime_missing(c, r, runtime_dir, CTL_STATE_FILE, "agent", "not started since boot",
                            "systemctl start msce-agent"))
                return;
        if (r < 0) {
                check_report(c, L_WARN, NULL, "agent: %s/%s: %s", runtime_dir, CTL_STATE_FILE, err);
                return;
        }
        if (strcaseeq(s.state, "configuration-error")) {
                check_report(c, L_FAIL,
                             "correct the configuration (msce-agent --check-config), then systemctl restart msce-agent",
                             "agent: stopped on a configuration error: %s", s.last_error ?: "no reason given");
                return;
        }
        if (ctl_agent_alive(s.pid) == CTL_AGENT_GONE) {
                check_report(c, L_WARN, "systemctl start msce-agent", "agent: not running (last state %s)", s.state);
                return;
        }
        if (strcaseeq(s.state, "ready"))
                check_report(c, L_OK, NULL, "agent: running (pid %d), ready", (int) s.pid);
        else if (strcaseeq(s.state, "rejected") || strcaseeq(s.state, "incompatible") ||
                 strcaseeq(s.state, "revoked") || strcaseeq(s.state, "failed"))
                check_report(c, L_FAIL, "see mscectl status and journalctl -u msce-agent",
                             "agent: running (pid %d), %s: %s", (int) s.pid, s.state,
                             s.last_error ?: "no reason given");
        else
                check_report(c, L_WARN, "see mscectl status and journalctl -u msce-agent",
                             "agent: running (pid %d), %s%s%s", (int) s.pid, s.state, s.last_error ? ": " : "",
                             s.last_error ?: "");
}

/* profile.json, the CSE's view: an expired one means the CSE holds keys no longer valid. */
void check_profile(checker_t *c, const char *runtime_dir) {
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        char err[256];
        int r = ctl_runtime_load(runtime_dir, NULL, &p, NULL, err, sizeof err);
        if (runtime_missing(c, r, runtime_dir, CTL_PROFILE_FILE, "profile", "not enrolled",
                            "start msce-agent: it enrols with the MEF"))
                return;
        if (r < 0) {
                check_report(c, L_FAIL, "restart msce-agent: it writes the file again", "profile: %s/%s: %s",
                             runtime_dir, CTL_PROFILE_FILE, err);
                return;
        }
        time_t t, now = time(NULL);
        char when[32], rel[48];
        if (ctl_time_parse(p.exp, &t) < 0) {
                check_report(c, L_FAIL, "restart msce-agent: it writes the file again",
                             "profile: KeID %s: expiry %s does not parse", p.ke_id, p.exp);
                return;
        }
        time_format_utc(t, when);
        ctl_time_relative(t, now, rel);
        if (t <= now)
                check_report(c, L_FAIL, "see mscectl status; systemctl restart msce-agent enrols again",
                             "profile: KeID %s expired %s (%s): the CSE's keys are no longer valid", p.ke_id, when,
                             rel);
        else
                check_report(c, L_OK, NULL, "profile: KeID %s, expires %s (%s)", p.ke_id, when, rel);
}

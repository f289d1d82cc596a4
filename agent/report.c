/* SPDX-License-Identifier: MIT */
/* What the agent tells the outside (agent/manager-internal.h): STATUS=, state.json, the journal,
 * the LEDs, and the output of --once. */
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "agent/manager-internal.h"
#include "agent/exit-codes.h"
#include "util/journal.h"
#include "util/util.h"

/* ---- small helpers ---- */

void report_copy(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", src);
}

void report_duration(uint64_t usec, char out[32]) {
        uint64_t s = (usec + USEC_PER_SEC - 1) / USEC_PER_SEC;
        if (usec < USEC_PER_SEC)
                snprintf(out, 32, "%" PRIu64 " ms", usec / 1000);
        else if (s % 3600 == 0)
                snprintf(out, 32, "%" PRIu64 " h", s / 3600);
        else if (s % 60 == 0 && s >= 600)
                snprintf(out, 32, "%" PRIu64 " min", s / 60);
        else if (s < 600)
                snprintf(out, 32, "%" PRIu64 " s", s);
        else if (s < 7200)
                snprintf(out, 32, "%" PRIu64 " min", (s + 59) / 60);
        else
                snprintf(out, 32, "%" PRIu64 " h", (s + 1799) / 3600);
}

void report_log_keid(manager_t *m, const char *ke_id, int priority, const char *message_id, int error,
                     const char *fmt, ...) {
        if (m->once)
                return;
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        char errno_str[16] = "";
        if (error < 0)
                snprintf(errno_str, sizeof errno_str, "%d", -error);
        const char *const kv[] = {
                "MESSAGE_ID", message_id,
                "ERRNO", errno_str,
                "MSCE_STATE", agent_state_to_string(m->state),
                "MSCE_NODE_ID", m->cfg.node_id,
                "MSCE_KEID", ke_id && *ke_id ? ke_id : NULL,
                "MSCE_MEF", m->cfg.mef_uri,
                NULL,
        };
        (void) journal_send(priority, "msce-agent", msg, kv);
        if (m->echo) {
                /* One write per line so lines never interleave. */
                char line[sizeof msg + 32];
                int k = snprintf(line, sizeof line, "msce-agent: %s\n", msg);
                if (k > 0)
                        (void) !write(STDERR_FILENO, line, MIN((size_t) k, sizeof line - 1));
        }
}

void report_notify(manager_t *m, const char *text) {
        if (!m->once)
                (void) sd_notify(0, text);
}

void report_state_json(manager_t *m) {
        if (m->once || m->runtime_not_ours)
                return;
        char since[32], next[32] = "", exp[32] = "", path[PATH_MAX];
        time_format_iso(m->since, since);
        if (m->next_attempt > 0)
                time_format_iso(m->next_attempt, next);
        if (m->have_profile)
                time_format_iso(m->profile.exp_t, exp);
        /* "s?": null for NULL */
        json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:I, s:I, s:I, s:I, s:s?}",
                              "state", agent_state_to_string(m->state), "status", m->status, "since", since, "last_error",
                              m->last_error[0] ? m->last_error : NULL, "next_attempt", next[0] ? next : NULL,
                              "backend", m->have_profile ? seal_method_to_string(m->backend) : NULL, "keID",
                              m->have_profile ? m->profile.ke_id : NULL, "exp", m->have_profile ? exp : NULL, "node",
                              m->cfg.node_id, "mef", m->cfg.mef_uri, "pid", (json_int_t) getpid(), "reloads",
                              (json_int_t) m->reloads, "reloads_begun", (json_int_t) m->reloads_begun,
                              "reload_done", (json_int_t) m->reload_done, "reload_error",
                              m->reload_error[0] ? m->reload_error : NULL);
        _cleanup_free_ char *text = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!text)
                return;
        size_t len = strlen(text);
        text[len] = '\n';
        int r = path_join(m->cfg.runtime_dir, MANAGER_STATE_JSON, path);
        if (r == 0)
                r = file_write_atomic(path, text, len + 1, 0644);
        if (r == -ENOENT) {
                (void) mkdir_p(m->cfg.runtime_dir, 0755);
                r = file_write_atomic(path, text, len + 1, 0644);
        }
        if (r < 0 && !m->state_json_failed)
                report_log(m, LOG_WARNING, NULL, r, "Cannot write %s: %s", path, strerror(-r));
        m->state_json_failed = r < 0;
}

/* The LED pattern of each state (hw/leds.h). */
static const led_pattern_t state_leds[_STATE_MAX] = {
        [STATE_START] = LED_STARTING,
        [STATE_RESTORE] = LED_STARTING,
        [STATE_WAIT_TIME] = LED_WAITING,
        [STATE_BACKOFF] = LED_WAITING,
        [STATE_ENROL] = LED_ENROLLING,
        [STATE_READY] = LED_READY,
        [STATE_REVOKED] = LED_ERROR,
        [STATE_REJECTED] = LED_ERROR,
        [STATE_CONFIG_ERROR] = LED_ERROR,
        [STATE_INCOMPATIBLE] = LED_INCOMPATIBLE,
        [STATE_STOPPING] = LED_OFF,
};

/* A LED line that could not be requested (r < 0: once per distinct error; hw/leds retries it)
 * or, after that, was (r == 0). */
static void report_led_line(led_line_t line, int r, void *userdata) {
        manager_t *m = userdata;
        const char *key = line == LED_LINE_ERROR ? "error" : "status";
        const char *spec = line == LED_LINE_ERROR ? m->cfg.led_error : m->cfg.led_status;
        if (r < 0)
                report_log(m, LOG_WARNING, NULL, r, "Cannot drive the LEDs ([leds] %s = %s): %s; trying again", key,
                           spec ?: "", strerror(-r));
        else
                report_log(m, LOG_INFO, NULL, 0, "Driving the LEDs ([leds] %s = %s) now", key, spec ?: "");
}

/* The LEDs are an aid to the installer: when they cannot be driven the agent carries on. A line
 * that cannot be requested yet (a GPIO chip that probes after the agent starts, udev not done
 * with /dev/gpiochipN, a line busy) is retried by hw/leds and shows the state from then on. */
void report_leds_setup(manager_t *m) {
        m->leds = leds_free(m->leds);
        if (!(m->cfg.led_status && *m->cfg.led_status) && !(m->cfg.led_error && *m->cfg.led_error))
                return;
        int r = leds_new(m->event, m->cfg.led_status, m->cfg.led_error, report_led_line, m, &m->leds);
        if (r < 0)
                report_log(m, LOG_WARNING, NULL, r, "Cannot drive the LEDs ([leds] status = %s, error = %s): %s",
                           m->cfg.led_status ?: "", m->cfg.led_error ?: "",
                           r == -EOPNOTSUPP ? "this build has no libgpiod" : strerror(-r));
}

/* A state change: STATUS= (and ERRNO= for CONFIGURATION-ERROR, which is the last error too),
 * state.json, the LEDs, a journal line. */
_printf_(5, 0) static void state_enter(manager_t *m, agent_state_t s, int priority, int error, const char *fmt, va_list ap) {
        if (m->state != s)
                m->since = time(NULL);
        m->state = s;
        vsnprintf(m->status, sizeof m->status, fmt, ap);
        if (s == STATE_CONFIG_ERROR)
                report_copy(m->last_error, sizeof m->last_error, m->status);
        /* state.json first: whoever reacts to STATUS= finds it current. */
        report_state_json(m);
        (void) leds_set(m->leds, state_leds[s]);
        char line[STATUS_MAX + 32];
        int n = snprintf(line, sizeof line, "STATUS=%s", m->status);
        if (s == STATE_CONFIG_ERROR && n > 0 && (size_t) n < sizeof line)
                snprintf(line + n, sizeof line - (size_t) n, "\nERRNO=%d", error < 0 ? -error : 0);
        report_notify(m, line);
        report_log(m, priority, NULL, error, "%s", m->status);
}

void report_state(manager_t *m, agent_state_t s, int priority, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        state_enter(m, s, priority, 0, fmt, ap);
        va_end(ap);
}

void report_fatal(manager_t *m, int code, int error, const char *fmt, ...) {
        m->next_attempt = 0;
        va_list ap;
        va_start(ap, fmt);
        state_enter(m, STATE_CONFIG_ERROR, LOG_ERR, error, fmt, ap);
        va_end(ap);
        if (m->once)
                fprintf(stderr, "msce-agent: %s\n", m->status);
        (void) sd_event_exit(m->event, code);
}

/* ---- --once: the run ends where the states settle (manager_set_once()) ---- */

void report_once_end(manager_t *m, int code) {
        manager_action_cancel(m);
        (void) sd_event_exit(m->event, code);
}

/* A line on stderr (the caller's terminal or script), then the exit with code. */
void report_once_exit(manager_t *m, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("msce-agent: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        report_once_end(m, code);
}

void report_poll_clamped(manager_t *m, const exchange_info_t *info, const char *what) {
        /* once per value the MEF sends: a status check every 10 s must not warn every 10 s */
        if (!info->poll_clamped) {
                m->poll_warned = POLL_WARNED_NONE; /* the next value out of range warns */
                return;
        }
        if (m->poll_warned == info->poll_sent)
                return;
        m->poll_warned = info->poll_sent;
        char msg[256];
        snprintf(msg, sizeof msg, "MEF %s sent poll %" PRId64 " s in its %s, outside the %u..%u s this agent uses: "
                 "checking every %u s", m->cfg.mef_uri, info->poll_sent, what, MSG_POLL_MIN, MSG_POLL_MAX,
                 info->poll_sent < MSG_POLL_MIN ? MSG_POLL_MIN : MSG_POLL_MAX);
        if (m->once)
                fprintf(stderr, "msce-agent: warning: %s\n", msg);
        else
                report_log(m, LOG_WARNING, NULL, 0, "%s", msg);
}

/* The profile in place, non-secret parts only: never key bytes. Then the exit. */
void report_once_print(manager_t *m, const exchange_info_t *enrolled) {
        const stored_profile_t *p = &m->profile;
        printf("  node:          %s\n", p->node_id);
        printf("  CSE-ID:        %s\n", p->cse_id);
        printf("  CSEBase:       %s\n", p->cse_base);
        printf("  KeID:          %s\n", p->ke_id);
        printf("  expiry:        %s (%s)\n", m->exp_utc, p->exp);
        printf("  poll:          %" PRIu32 " s\n", p->poll);
        for (size_t i = 0; i < p->n_targets; i++)
                printf("  target:        %s kpsaID %s\n", p->targets[i].id, p->targets[i].kpsa_id);
        printf("  sealed:        %s/%s (%s)\n", m->cfg.state_dir, SEAL_ENVELOPE_NAME,
               seal_method_to_string(m->backend) ?: "?");
        printf("  keys:          keyring of user %s\n", m->cfg.service_user);
        if (enrolled) {
                printf("  long-term key: %s\n", enrolled->ltk_transported ? "transported" : "derived (Ke)");
                printf("  TLS:           %s %s\n", enrolled->tls_version, enrolled->cipher);
        }
        if (fflush(stdout) != 0)
                return report_once_exit(m, AGENT_EXIT_SOFTWARE, "cannot write to stdout: %m");
        report_once_end(m, AGENT_EXIT_OK);
}

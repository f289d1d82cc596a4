/* SPDX-License-Identifier: MIT */
/* The daemon's state machine on sd-event (agent/manager.h), also for --once. Nothing blocks
 * the loop but the custody calls (file writes with fsync, the keyring: milliseconds): the
 * exchanges with the MEF (agent/worker.h) and every seal and unseal, the TPM's included
 * (agent/sealing.h), run in child processes the loop waits for. Every state change updates
 * STATUS=, state.json and the journal; the important events carry a MESSAGE_ID. */
#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "msce-config.h"

#include "agent/backoff.h"
#include "agent/credential.h"
#include "agent/custody.h"
#include "agent/enrol.h"
#include "agent/exit-codes.h"
#include "agent/journal.h"
#include "agent/manager.h"
#include "agent/message-ids.h"
#include "agent/sealing.h"
#include "agent/worker.h"
#include "hw/leds.h"
#include "util/util.h"

#define CLOCK_POLL_USEC USEC_PER_SEC
#define STATUS_MAX 1024

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

const char *agent_state_to_string(agent_state_t s) {
        if (s < 0 || s >= _STATE_MAX)
                return NULL;
        return state_table[s];
}

/* What the action timer does when it fires. */
typedef enum action {
        ACTION_NONE,
        ACTION_RESTORE,
        ACTION_ENROL,
        ACTION_STATUS,
} action_t;

typedef enum sealing_kind {
        SEALING_RESTORE,   /* at start, reload, after a failure to keep a new profile */
        SEALING_REINSTALL, /* the keys went from the keyring: put them back, then the status check */
        SEALING_STORE,     /* a new enrolment */
} sealing_kind_t;

struct manager {
        sd_event *event;
        char *config_path;
        agent_config_t cfg;
        int lock_fd;
        bool echo;
        bool once, reenrol;         /* manager_set_once() */

        agent_state_t state;
        time_t since;
        char status[STATUS_MAX];
        char last_error[512];
        char preflight_error[512]; /* custody_preflight() refused the configuration at start */
        time_t next_attempt;        /* wall clock of the next action, 0: none */

        bool have_profile;          /* a valid profile is in place (keys in the keyring) */
        stored_profile_t profile;   /* its non-secret fields: key bytes wiped */
        seal_method_t backend;

        worker_t *exchange;
        bool exchange_is_enrol;
        /* A seal or unseal in its child (agent/sealing.h); at most one, never beside an exchange. */
        sealing_t *sealing;
        sealing_kind_t sealing_kind;
        stored_profile_t pending;   /* SEALING_STORE: the profile being sealed (secret) */
        exchange_info_t pending_info; /* SEALING_STORE: the enrolment's exchange */

        action_t action;
        sd_event_source *action_timer;  /* CLOCK_MONOTONIC */
        sd_event_source *renew_timer;   /* CLOCK_REALTIME: 80% of the lifetime */
        sd_event_source *expiry_timer;  /* CLOCK_REALTIME: exp */
        sd_event_source *signals[4];
        leds_t *leds;               /* NULL without [leds] configured */

        unsigned failures;          /* consecutive failed enrolments (transient) */
        unsigned status_failures;   /* consecutive failed status checks */
        bool first_attempt;         /* the random initial delay still applies */
        uint64_t clock_wait_until;  /* monotonic; 0: not waiting */
        bool ready_sent;
        bool reloading;
        bool state_json_failed;     /* say it once */
};

/* ---- small helpers ---- */

/* Truncating copy (reasons are for humans: a cut one is still useful). */
static void str_copy(char *dst, size_t size, const char *src) {
        size_t n = strnlen(src, size - 1);
        memcpy(dst, src, n);
        dst[n] = 0;
}

static void format_duration(uint64_t usec, char out[32]) {
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

static void format_time(time_t t, char out[32]) {
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(out, 32, "%lld", (long long) t);
}

static void format_iso(time_t t, char out[32]) {
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(out, 32, "%lld", (long long) t);
}

static void log_m(manager_t *m, int priority, const char *message_id, int error, const char *fmt, ...)
        _printf_(5, 6);
static void log_m(manager_t *m, int priority, const char *message_id, int error, const char *fmt, ...) {
        if (m->once)
                return;
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        journal_fields_t f = {
                .state = agent_state_to_string(m->state),
                .node_id = m->cfg.node_id,
                .ke_id = m->have_profile ? m->profile.ke_id : NULL,
                .mef = m->cfg.mef_uri,
        };
        journal_entry(&f, m->echo, priority, message_id, error, "%s", msg);
}

static void notify(manager_t *m, const char *text) {
        if (!m->once)
                (void) sd_notify(0, text);
}

/* <runtime_dir>/state.json, for mscectl and monitoring. */
static void state_json_write(manager_t *m) {
        if (m->once)
                return;
        char since[32], next[32] = "", exp[32] = "", path[PATH_MAX];
        format_iso(m->since, since);
        if (m->next_attempt > 0)
                format_iso(m->next_attempt, next);
        if (m->have_profile)
                format_iso(m->profile.exp_t, exp);
        json_t *o = json_object();
        if (!o)
                return;
        bool ok = json_object_set_new(o, "state", json_string(agent_state_to_string(m->state))) == 0 &&
                  json_object_set_new(o, "status", json_string(m->status)) == 0 &&
                  json_object_set_new(o, "since", json_string(since)) == 0 &&
                  json_object_set_new(o, "last_error", m->last_error[0] ? json_string(m->last_error) : json_null()) == 0 &&
                  json_object_set_new(o, "next_attempt", next[0] ? json_string(next) : json_null()) == 0 &&
                  json_object_set_new(o, "backend", m->have_profile && seal_method_to_string(m->backend)
                                                            ? json_string(seal_method_to_string(m->backend))
                                                            : json_null()) == 0 &&
                  json_object_set_new(o, "keID", m->have_profile ? json_string(m->profile.ke_id) : json_null()) == 0 &&
                  json_object_set_new(o, "exp", m->have_profile ? json_string(exp) : json_null()) == 0 &&
                  json_object_set_new(o, "node", json_string(m->cfg.node_id)) == 0 &&
                  json_object_set_new(o, "mef", json_string(m->cfg.mef_uri)) == 0 &&
                  json_object_set_new(o, "pid", json_integer(getpid())) == 0;
        _cleanup_free_ char *text = ok ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!text)
                return;
        size_t len = strlen(text);
        text[len] = '\n';
        int r = -ENAMETOOLONG;
        if (snprintf(path, sizeof path, "%s/%s", m->cfg.runtime_dir, MANAGER_STATE_JSON) < (int) sizeof path)
                r = file_write_atomic(path, text, len + 1, 0644);
        if (r == -ENOENT) {
                (void) mkdir(m->cfg.runtime_dir, 0755);
                r = file_write_atomic(path, text, len + 1, 0644);
        }
        if (r < 0 && !m->state_json_failed)
                log_m(m, LOG_WARNING, NULL, r, "Cannot write %s: %s", path, strerror(-r));
        m->state_json_failed = r < 0;
}

/* The LEDs of the states a failure does not lead to (those are in class_actions[]). */
static led_pattern_t state_led(agent_state_t s) {
        switch (s) {
        case STATE_START:
        case STATE_RESTORE:
                return LED_STARTING;
        case STATE_WAIT_TIME:
                return LED_WAITING;
        case STATE_ENROL:
                return LED_ENROLLING;
        case STATE_READY:
                return LED_READY;
        case STATE_REVOKED:
                return LED_ERROR;
        default:
                return LED_OFF;
        }
}

/* The LEDs are an aid to the installer: when they cannot be driven the agent carries on. */
static void leds_setup(manager_t *m) {
        m->leds = leds_free(m->leds);
        if (!(m->cfg.led_status && *m->cfg.led_status) && !(m->cfg.led_error && *m->cfg.led_error))
                return;
        int r = leds_new(m->event, m->cfg.led_status, m->cfg.led_error, &m->leds);
        if (r < 0)
                log_m(m, LOG_WARNING, NULL, r, "Cannot drive the LEDs ([leds] status = %s, error = %s): %s",
                      m->cfg.led_status ?: "", m->cfg.led_error ?: "",
                      r == -EOPNOTSUPP ? "this build has no libgpiod" : strerror(-r));
}

/* A state change: STATUS=, state.json, the LEDs, a journal line. */
static void state_enter(manager_t *m, agent_state_t s, led_pattern_t led, int priority, const char *text) {
        if (m->state != s)
                m->since = time(NULL);
        m->state = s;
        str_copy(m->status, sizeof m->status, text);
        /* state.json first: whoever reacts to STATUS= finds it current. */
        state_json_write(m);
        (void) leds_set(m->leds, led);
        char line[STATUS_MAX + 8];
        snprintf(line, sizeof line, "STATUS=%s", text);
        notify(m, line);
        log_m(m, priority, NULL, 0, "%s", text);
}

static void set_state(manager_t *m, agent_state_t s, int priority, const char *fmt, ...) _printf_(4, 5);
static void set_state(manager_t *m, agent_state_t s, int priority, const char *fmt, ...) {
        char text[STATUS_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        state_enter(m, s, state_led(s), priority, text);
}

static backoff_params_t backoff_params(const manager_t *m) {
        return (backoff_params_t) {
                .min_usec = m->cfg.backoff_min_usec,
                .max_usec = m->cfg.backoff_max_usec,
                .retry_after_max_usec = m->cfg.retry_after_max_usec,
        };
}

static void action_cancel(manager_t *m) {
        m->action = ACTION_NONE;
        m->next_attempt = 0;
        if (m->action_timer)
                (void) sd_event_source_set_enabled(m->action_timer, SD_EVENT_OFF);
}

static int on_action(sd_event_source *s, uint64_t usec, void *userdata);

/* Arm the action timer delay from now. */
static void action_schedule(manager_t *m, action_t a, uint64_t delay) {
        uint64_t when = now_usec() + delay;
        int r = 0;
        if (!m->action_timer)
                r = sd_event_add_time(m->event, &m->action_timer, CLOCK_MONOTONIC, when, 0, on_action, m);
        else
                r = sd_event_source_set_time(m->action_timer, when);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->action_timer, SD_EVENT_ONESHOT);
        if (r < 0) {
                log_m(m, LOG_ERR, NULL, r, "Cannot arm a timer: %s", strerror(-r));
                (void) sd_event_exit(m->event, AGENT_EXIT_SOFTWARE);
                return;
        }
        m->action = a;
        m->next_attempt = time(NULL) + (time_t) ((delay + USEC_PER_SEC - 1) / USEC_PER_SEC);
}

static void fatal(manager_t *m, int code, int error, const char *fmt, ...) _printf_(4, 5);
static void fatal(manager_t *m, int code, int error, const char *fmt, ...) {
        char text[STATUS_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        str_copy(m->last_error, sizeof m->last_error, text);
        if (m->once)
                fprintf(stderr, "msce-agent: %s\n", text);
        if (m->state != STATE_CONFIG_ERROR)
                m->since = time(NULL);
        m->state = STATE_CONFIG_ERROR;
        m->next_attempt = 0;
        char line[STATUS_MAX + 32];
        snprintf(line, sizeof line, "STATUS=%s\nERRNO=%d", text, error < 0 ? -error : 0);
        str_copy(m->status, sizeof m->status, text);
        state_json_write(m);
        (void) leds_set(m->leds, LED_ERROR);
        notify(m, line);
        log_m(m, LOG_ERR, NULL, error, "%s", text);
        (void) sd_event_exit(m->event, code);
}

static void exchange_cancel(manager_t *m) {
        m->exchange = worker_free(m->exchange);
        m->sealing = sealing_free(m->sealing);
        stored_profile_wipe(&m->pending);
}

/* An enrolment is under way: its exchange, or the sealing of what it brought. */
static bool enrol_in_progress(const manager_t *m) {
        return (m->exchange && m->exchange_is_enrol) || (m->sealing && m->sealing_kind == SEALING_STORE);
}

/* A reload (SIGHUP) is complete once its restore has settled: say READY=1 again if it was. */
static void reload_settle(manager_t *m) {
        if (!m->reloading)
                return;
        m->reloading = false;
        if (m->ready_sent)
                notify(m, "READY=1");
}

static void timer_disarm(sd_event_source **s) {
        *s = sd_event_source_disable_unref(*s);
}

/* ---- what a failure leads to: one row per class (agent/outcome.h) ---- */

typedef enum delay_kind {
        DELAY_NONE,    /* no retry to wait for: an enrolment fixes it, or the run ends */
        DELAY_BACKOFF, /* capped exponential with jitter, or the MEF's Retry-After */
        DELAY_SLOW,    /* [timing] rejected_retry: retrying sooner cannot help */
} delay_kind_t;

typedef struct class_action {
        agent_state_t state;    /* the state a failure of this class leads to */
        delay_kind_t delay;     /* before the retry */
        int priority;           /* of its journal lines */
        led_pattern_t led;
        int exit_code;          /* --once ends with it; the daemon too in STATE_CONFIG_ERROR */
        const char *message_id; /* of its journal line, NULL: none */
} class_action_t;

static const class_action_t class_actions[_OUTCOME_MAX] = {
        [OUTCOME_OK] =           { STATE_READY,        DELAY_NONE,    LOG_INFO,    LED_READY,        AGENT_EXIT_OK, NULL },
        [OUTCOME_TRANSIENT] =    { STATE_BACKOFF,      DELAY_BACKOFF, LOG_WARNING, LED_WAITING,      AGENT_EXIT_TRANSIENT, NULL },
        [OUTCOME_FAILED] =       { STATE_BACKOFF,      DELAY_BACKOFF, LOG_ERR,     LED_WAITING,      AGENT_EXIT_TRANSIENT, NULL },
        [OUTCOME_REJECTED] =     { STATE_REJECTED,     DELAY_SLOW,    LOG_WARNING, LED_ERROR,        AGENT_EXIT_REJECTED,
                                   MSCE_MESSAGE_REJECTED },
        [OUTCOME_INCOMPATIBLE] = { STATE_INCOMPATIBLE, DELAY_SLOW,    LOG_WARNING, LED_INCOMPATIBLE, AGENT_EXIT_INCOMPATIBLE,
                                   MSCE_MESSAGE_INCOMPATIBLE },
        [OUTCOME_CONFIG] =       { STATE_CONFIG_ERROR, DELAY_NONE,    LOG_ERR,     LED_ERROR,        AGENT_EXIT_CONFIG, NULL },
        [OUTCOME_ABSENT] =       { STATE_ENROL,        DELAY_NONE,    LOG_INFO,    LED_ENROLLING,    AGENT_EXIT_TRANSIENT, NULL },
        [OUTCOME_MISMATCH] =     { STATE_ENROL,        DELAY_NONE,    LOG_WARNING, LED_ENROLLING,    AGENT_EXIT_TRANSIENT,
                                   MSCE_MESSAGE_UNSEAL_FAILED },
        [OUTCOME_EXPIRED] =      { STATE_ENROL,        DELAY_NONE,    LOG_WARNING, LED_ENROLLING,    AGENT_EXIT_TRANSIENT,
                                   MSCE_MESSAGE_EXPIRED },
        [OUTCOME_UNUSABLE] =     { STATE_ENROL,        DELAY_NONE,    LOG_WARNING, LED_ENROLLING,    AGENT_EXIT_TRANSIENT,
                                   MSCE_MESSAGE_UNSEAL_FAILED },
};

static const class_action_t *class_action(outcome_t o) {
        return o >= 0 && o < _OUTCOME_MAX ? &class_actions[o] : &class_actions[OUTCOME_FAILED];
}

/* The delay before retrying a failure of class a (counter: its consecutive failures; info: a
 * 5xx's Retry-After, may be NULL), formatted into d. */
static uint64_t class_delay(manager_t *m, const class_action_t *a, const exchange_info_t *info, unsigned *counter,
                            char d[32]) {
        uint64_t delay = 0;
        if (a->delay == DELAY_SLOW)
                delay = m->cfg.rejected_retry_usec;
        else if (a->delay == DELAY_BACKOFF) {
                (*counter)++;
                backoff_params_t bp = backoff_params(m);
                delay = info && info->has_retry_after ? backoff_retry_after(&bp, info->retry_after, backoff_random())
                                                      : backoff_delay(&bp, *counter, backoff_random());
        }
        format_duration(delay, d);
        return delay;
}

/* Enter the state of a's class (STATUS=, state.json, its LED, a journal line). */
static void class_enter(manager_t *m, const class_action_t *a, const char *fmt, ...) _printf_(3, 4);
static void class_enter(manager_t *m, const class_action_t *a, const char *fmt, ...) {
        char text[STATUS_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        state_enter(m, a->state, a->led, a->priority, text);
}

/* ---- --once: the run ends where the states settle (manager_set_once()) ---- */

static void once_end(manager_t *m, int code) {
        action_cancel(m);
        (void) sd_event_exit(m->event, code);
}

/* A line on stderr (the caller's terminal or script), then the exit with code. */
static void once_exit(manager_t *m, int code, const char *fmt, ...) _printf_(3, 4);
static void once_exit(manager_t *m, int code, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("msce-agent: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        once_end(m, code);
}

/* The profile in place, non-secret parts only: never key bytes. Then the exit. */
static void once_print(manager_t *m, const exchange_info_t *enrolled) {
        const stored_profile_t *p = &m->profile;
        char exp[32];
        format_time(p->exp_t, exp);
        printf("  node:          %s\n", p->node_id);
        printf("  CSE-ID:        %s\n", p->cse_id);
        printf("  CSEBase:       %s\n", p->cse_base);
        printf("  KeID:          %s\n", p->ke_id);
        printf("  expiry:        %s (%s)\n", exp, p->exp);
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
                return once_exit(m, AGENT_EXIT_SOFTWARE, "cannot write to stdout: %m");
        once_end(m, AGENT_EXIT_OK);
}

void manager_set_once(manager_t *m, bool reenrol) {
        m->once = true;
        m->reenrol = reenrol;
        m->first_attempt = false;
        m->leds = leds_free(m->leds);
}

/* ---- the profile in place ---- */

static void profile_forget(manager_t *m) {
        m->have_profile = false;
        stored_profile_wipe(&m->profile);
        timer_disarm(&m->renew_timer);
        timer_disarm(&m->expiry_timer);
}

static int on_renew(sd_event_source *s, uint64_t usec, void *userdata);
static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata);

static void realtime_arm(manager_t *m, sd_event_source **s, time_t at, sd_event_time_handler_t h) {
        uint64_t when = at > 0 ? (uint64_t) at * USEC_PER_SEC : 1;
        timer_disarm(s);
        int r = sd_event_add_time(m->event, s, CLOCK_REALTIME, when, USEC_PER_SEC, h, m);
        if (r < 0) {
                log_m(m, LOG_ERR, NULL, r, "Cannot arm a timer: %s", strerror(-r));
                (void) sd_event_exit(m->event, AGENT_EXIT_SOFTWARE);
        }
}

/* Keep the non-secret fields of p (wiping its keys) and arm renewal and expiry. */
static void profile_adopt(manager_t *m, stored_profile_t *p, seal_method_t backend) {
        profile_forget(m);
        m->profile = *p;
        stored_profile_wipe(p);
        erase(m->profile.ltk, sizeof m->profile.ltk);
        for (size_t i = 0; i < MSG_TARGETS_MAX; i++)
                erase(m->profile.targets[i].kpsa, sizeof m->profile.targets[i].kpsa);
        m->have_profile = true;
        m->backend = backend;

        time_t exp = m->profile.exp_t, obtained = m->profile.obtained;
        time_t renew = exp > obtained ? obtained + (exp - obtained) / 5 * 4 : exp;
        time_t now = time(NULL);
        if (renew <= now && m->first_attempt) {
                /* Restored past its renewal time: spread a fleet's renewals after an outage. */
                uint64_t d = backoff_initial(m->cfg.initial_delay_max_usec, backoff_random());
                renew = now + (time_t) (d / USEC_PER_SEC);
        }
        realtime_arm(m, &m->renew_timer, renew, on_renew);
        realtime_arm(m, &m->expiry_timer, exp, on_expiry);
}

/* ---- READY ---- */

static void ready_status(manager_t *m, const char *extra) {
        char exp[32], next[32];
        format_time(m->profile.exp_t, exp);
        snprintf(next, sizeof next, "%" PRIu32 " s", m->profile.poll);
        set_state(m, STATE_READY, LOG_INFO, "Ready: KeID %s, expires %s, next check in %s%s", m->profile.ke_id, exp,
                  next, extra ?: "");
}

static void go_ready(manager_t *m) {
        m->failures = 0;
        m->status_failures = 0;
        m->first_attempt = false;
        m->clock_wait_until = 0;
        m->last_error[0] = 0;
        action_schedule(m, ACTION_STATUS, (uint64_t) m->profile.poll * USEC_PER_SEC);
        ready_status(m, NULL);
        if (!m->ready_sent || m->reloading) {
                /* The keys are in the keyring (custody_restore/custody_store returned 0). */
                notify(m, "READY=1");
                m->ready_sent = true;
                m->reloading = false;
        }
}

/* ---- ENROL ---- */

static void start_enrol(manager_t *m);

static bool error_is_unreachable(int r) {
        return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ENETUNREACH || r == -ETIMEDOUT ||
               r == -ECONNRESET || r == -ECONNABORTED;
}

/* A transient network failure by where it happened, for STATUS; NULL for other failures. */
static const char *network_failure(int r, const exchange_info_t *info) {
        if (!error_is_unreachable(r))
                return NULL;
        switch (info->stage) {
        case EXCHANGE_STAGE_TLS:
                return "TLS failed";
        case EXCHANGE_STAGE_RESPONSE:
                return r == -ETIMEDOUT ? "no response in time" : "connection lost before the response";
        default:
                return "cannot connect";
        }
}

/* "; KeID ... stays valid until ..." while a profile is in place. */
#define VALID_MAX (MSG_KEID_MAX + 80)
static void still_valid(manager_t *m, char out[VALID_MAX]) {
        out[0] = 0;
        if (m->have_profile) {
                char exp[32];
                format_time(m->profile.exp_t, exp);
                snprintf(out, VALID_MAX, " (KeID %s stays in place until %s)", m->profile.ke_id, exp);
        }
}

/* "503, Retry-After 999999999999 s, capped at 1 h" from what the MEF sent (a 5xx). */
static void retry_after_note(const manager_t *m, const exchange_info_t *info, char *out, size_t size) {
        char cap[32] = "";
        if (info->has_retry_after && info->retry_after_capped)
                format_duration(m->cfg.retry_after_max_usec, cap);
        snprintf(out, size, "%d, %s%s%s", info->http_status, info->retry_after_sent,
                 !info->has_retry_after ? ": ignored" : cap[0] ? ", capped at " : "", cap);
}

static void enrol_failed(manager_t *m, int r, const exchange_info_t *info) {
        const failure_t *f = &info->failure;
        const class_action_t *a = class_action(f->outcome);
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
                return once_end(m, a->exit_code);
        }
        str_copy(m->last_error, sizeof m->last_error, f->reason);
        if (a->state == STATE_CONFIG_ERROR)
                return fatal(m, a->exit_code, r, "Configuration error: %s", f->reason);
        char d[32], valid[VALID_MAX];
        still_valid(m, valid);
        uint64_t delay = class_delay(m, a, info, &m->failures, d);
        action_schedule(m, ACTION_ENROL, delay);
        if (a->delay == DELAY_SLOW) {
                const char *what = f->outcome == OUTCOME_INCOMPATIBLE ? "Incompatible with" : "Rejected by";
                log_m(m, a->priority, a->message_id, r, "%s MEF %s: %s", what, m->cfg.mef_uri, f->reason);
                return class_enter(m, a, "%s MEF: %s; retrying in %s%s", what, f->reason, d, valid);
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
                retry_after_note(m, info, note, sizeof note);
                return class_enter(m, a, "MEF %s (%s); retrying in %s%s%s", info->http_status == 503 ? "busy" : "failed",
                                   note, d, info->has_retry_after && !info->retry_after_capped ? " as it asked" : "",
                                   valid);
        }
        class_enter(m, a, "Enrolment failed: %s; retrying in %s%s", f->reason, d, valid);
}

static void on_stored(sealing_t *s, int r, void *userdata);
static void store_done(manager_t *m, int r, stored_profile_t *res, const custody_info_t *ci_in,
                       const exchange_info_t *einfo);

static void on_enrol_done(worker_t *x, int r, void *userdata) {
        manager_t *m = userdata;
        exchange_info_t info = *worker_get_info(x);
        _cleanup_(stored_profile_wipe) stored_profile_t res = {};
        if (r == 0)
                r = worker_take_profile(x, &res);
        m->exchange = worker_free(x);
        if (r < 0)
                return enrol_failed(m, r, &info);

        custody_info_t ci;
        r = custody_store_begin(&m->cfg, &ci);
        if (r == 0) {
                seal_opts_t o = credential_seal_opts(&m->cfg);
                r = sealing_start(m->event, &o, &res, on_stored, m, &m->sealing);
                if (r == 0) {
                        m->sealing_kind = SEALING_STORE;
                        m->pending = res;
                        m->pending_info = info;
                        return;
                }
                (void) custody_store_finish(&m->cfg, r, NULL, &res, _SEAL_METHOD_INVALID, NULL, &ci);
        }
        store_done(m, r, &res, &ci, &info);
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
        r = custody_store_finish(&m->cfg, r, err, &res, method, NULL, &ci);
        store_done(m, r, &res, &ci, &info);
}

/* The end of an enrolment: res is the new profile, r and ci what keeping it gave. */
static void store_done(manager_t *m, int r, stored_profile_t *res, const custody_info_t *ci_in,
                       const exchange_info_t *einfo) {
        custody_info_t ci_copy = *ci_in, *ci = &ci_copy;
        exchange_info_t info = *einfo;
        if (r < 0 && m->once && ci->sealed)
                return once_exit(m, class_action(ci->failure.outcome)->exit_code, "enrolled as KeID %s and sealed the profile, but: %s "
                                 "(the next start installs it)", res->ke_id, ci->failure.reason);
        if (r < 0 && m->once)
                return once_exit(m, class_action(ci->failure.outcome)->exit_code, "enrolled as KeID %s, but cannot keep the profile: %s%s",
                                 res->ke_id, ci->failure.reason, m->have_profile ? "; the previous profile stays in place" : "");
        if (r < 0) {
                const class_action_t *a = class_action(ci->failure.outcome);
                str_copy(m->last_error, sizeof m->last_error, ci->failure.reason);
                if (a->state == STATE_CONFIG_ERROR)
                        return fatal(m, a->exit_code, r, "Enrolled as KeID %s, but: %s", res->ke_id, ci->failure.reason);
                char d[32], valid[VALID_MAX];
                uint64_t delay = class_delay(m, a, NULL, &m->failures, d);
                if (ci->sealed) {
                        /* The new profile is sealed: restoring it completes the hand-over. */
                        action_schedule(m, ACTION_RESTORE, delay);
                        return class_enter(m, a, "Enrolled as KeID %s and sealed the profile, but: %s; retrying in %s",
                                           res->ke_id, ci->failure.reason, d);
                }
                still_valid(m, valid);
                action_schedule(m, ACTION_ENROL, delay);
                return class_enter(m, a, "Enrolled as KeID %s, but cannot keep the profile: %s; enrolling again in %s%s",
                                   res->ke_id, ci->failure.reason, d, valid);
        }
        char old[MSG_KEID_MAX + 1] = "";
        if (m->have_profile)
                snprintf(old, sizeof old, "%s", m->profile.ke_id);
        profile_adopt(m, res, ci->method);
        if (m->once) {
                printf("enrolled with MEF %s\n", m->cfg.mef_uri);
                return once_print(m, &info);
        }
        char exp[32];
        format_time(m->profile.exp_t, exp);
        log_m(m, LOG_INFO, MSCE_MESSAGE_ENROLLED, 0,
              "Enrolled with MEF %s as KeID %s (expires %s, %zu target%s, %s %s, sealed with %s)%s%s", m->cfg.mef_uri,
              m->profile.ke_id, exp, m->profile.n_targets, m->profile.n_targets == 1 ? "" : "s", info.tls_version,
              info.cipher, seal_method_to_string(ci->method) ?: "?", old[0] ? ", replacing KeID " : "", old);
        go_ready(m);
}

/* In cert mode the MEF's certificate cannot be checked against a clock that is before the build
 * time (no RTC, no NTP yet): wait for the time, boundedly. Returns true while waiting. */
static bool clock_wait(manager_t *m) {
        if (m->once || m->cfg.mode != TLS_MODE_CERT || m->cfg.clock_wait_max_usec == 0 ||
            time(NULL) >= (time_t) MSCE_BUILD_TIME)
                return false;
        uint64_t now = now_usec();
        if (m->clock_wait_until == 0) {
                m->clock_wait_until = now + m->cfg.clock_wait_max_usec;
                char build[32], d[32];
                format_time((time_t) MSCE_BUILD_TIME, build);
                format_duration(m->cfg.clock_wait_max_usec, d);
                set_state(m, STATE_WAIT_TIME, LOG_NOTICE,
                          "Waiting for time synchronisation (the clock is before %s; at most %s)", build, d);
        }
        if (now < m->clock_wait_until) {
                action_schedule(m, ACTION_ENROL, CLOCK_POLL_USEC);
                return true;
        }
        if (m->state == STATE_WAIT_TIME)
                log_m(m, LOG_WARNING, NULL, 0,
                      "The clock is still before the build time: verifying the MEF certificate anyway");
        return false;
}

/* Before each enrolment, what keeping its profile needs (custody_preflight()): an enrolment
 * whose profile cannot be kept leaves a KeID at the MEF that no gateway holds. False when it
 * cannot start now (the daemon stops, or backs off for a full disk). */
static bool enrol_preflight(manager_t *m) {
        custody_info_t ci;
        int r = custody_preflight(&m->cfg, &ci);
        if (r == 0)
                r = custody_space_check(&m->cfg, &ci);
        if (r == 0)
                return true;
        const class_action_t *a = class_action(ci.failure.outcome);
        str_copy(m->last_error, sizeof m->last_error, ci.failure.reason);
        if (a->state == STATE_CONFIG_ERROR)
                fatal(m, a->exit_code, r, "Configuration error: %s", ci.failure.reason);
        else if (m->once)
                once_exit(m, a->exit_code, "not enrolling: %s%s", ci.failure.reason,
                          m->have_profile ? "; the previous profile stays in place" : "");
        else {
                char d[32], valid[VALID_MAX];
                uint64_t delay = class_delay(m, a, NULL, &m->failures, d);
                still_valid(m, valid);
                action_schedule(m, ACTION_ENROL, delay);
                class_enter(m, a, "Not enrolling: %s; retrying in %s%s", ci.failure.reason, d, valid);
        }
        return false;
}

static void start_enrol(manager_t *m) {
        action_cancel(m);
        exchange_cancel(m);
        if (clock_wait(m))
                return;
        if (!enrol_preflight(m))
                return;
        if (m->have_profile)
                set_state(m, STATE_ENROL, LOG_INFO, "Renewing KeID %s with %s", m->profile.ke_id, m->cfg.mef_uri);
        else
                set_state(m, STATE_ENROL, LOG_INFO, "Enrolling with %s", m->cfg.mef_uri);
        exchange_info_t info;
        int r = worker_start(m->event, &m->cfg, WORKER_ENROL, m->have_profile ? m->profile.ke_id : NULL,
                             on_enrol_done, m, &m->exchange, &info);
        if (r < 0)
                return enrol_failed(m, r, &info);
        m->exchange_is_enrol = true;
}

/* The first attempt after start waits a random 0..initial_delay_max (fleet-wide power-up). */
static void schedule_enrol(manager_t *m) {
        uint64_t d = 0;
        if (m->first_attempt) {
                m->first_attempt = false;
                d = backoff_initial(m->cfg.initial_delay_max_usec, backoff_random());
        }
        if (d == 0)
                return start_enrol(m);
        char ds[32];
        format_duration(d, ds);
        action_schedule(m, ACTION_ENROL, d);
        set_state(m, STATE_ENROL, LOG_INFO, "Enrolling with %s in %s (random start delay)", m->cfg.mef_uri, ds);
}

/* ---- RESTORE ---- */

static void on_unsealed(sealing_t *s, int r, void *userdata);
static void restore_done(manager_t *m, int r, stored_profile_t *p, const custody_info_t *ci_in);
static void reinstall_done(manager_t *m, int r, stored_profile_t *p, const custody_info_t *ci);

/* Unseal in a child; kind says what follows (on_unsealed). */
static void unseal_start(manager_t *m, sealing_kind_t kind) {
        seal_opts_t o = credential_seal_opts(&m->cfg);
        int r = sealing_start(m->event, &o, NULL, on_unsealed, m, &m->sealing);
        if (r == 0) {
                m->sealing_kind = kind;
                return;
        }
        stored_profile_t p = {};
        custody_info_t ci;
        r = custody_restore_finish(&m->cfg, r, NULL, &p, _SEAL_METHOD_INVALID, NULL, &ci);
        if (kind == SEALING_REINSTALL)
                return reinstall_done(m, r, &p, &ci);
        restore_done(m, r, &p, &ci);
}

static void on_unsealed(sealing_t *s, int r, void *userdata) {
        manager_t *m = userdata;
        sealing_kind_t kind = m->sealing_kind;
        _cleanup_(stored_profile_wipe) stored_profile_t loaded = {}, p = {};
        seal_method_t method = _SEAL_METHOD_INVALID;
        char err[256] = "";
        r = sealing_result(s, &loaded, &method, err, sizeof err);
        m->sealing = sealing_free(s);
        custody_info_t ci;
        r = custody_restore_finish(&m->cfg, r, err, &loaded, method, &p, &ci);
        if (kind == SEALING_REINSTALL)
                return reinstall_done(m, r, &p, &ci);
        restore_done(m, r, &p, &ci);
}

static void go_restore(manager_t *m) {
        action_cancel(m);
        exchange_cancel(m);
        set_state(m, STATE_RESTORE, LOG_INFO, "Restoring the sealed profile from %s", m->cfg.state_dir);
        unseal_start(m, SEALING_RESTORE);
}

static void restore_done(manager_t *m, int r, stored_profile_t *p, const custody_info_t *ci_in) {
        custody_info_t ci = *ci_in;
        /* every way out settles a reload (reload_settle): it is complete with what restoring led to */
        if (r == 0 && m->once) {
                profile_adopt(m, p, ci.method);
                if (!m->reenrol) {
                        printf("restored (KeID %s, no network needed)\n", m->profile.ke_id);
                        return once_print(m, NULL);
                }
                fprintf(stderr, "msce-agent: restored KeID %s; re-enrolling as asked\n", m->profile.ke_id);
                return start_enrol(m);
        }
        if (r == 0) {
                profile_adopt(m, p, ci.method);
                log_m(m, LOG_INFO, MSCE_MESSAGE_RESTORED, 0, "Restored KeID %s from the sealed profile (%s)",
                      m->profile.ke_id, seal_method_to_string(ci.method) ?: "?");
                go_ready(m);
                return reload_settle(m);
        }
        const failure_t *f = &ci.failure;
        const class_action_t *a = class_action(f->outcome);
        str_copy(m->last_error, sizeof m->last_error, f->reason);
        if (a->state == STATE_CONFIG_ERROR)
                return fatal(m, a->exit_code, r, "Configuration error: %s", f->reason);
        if (m->once && a->state != STATE_ENROL)
                return once_exit(m, a->exit_code, "cannot restore the sealed profile (%s): %s",
                                 outcome_to_string(f->outcome), f->reason);
        if (a->state == STATE_ENROL) {
                /* what an enrolment fixes */
                if (m->once)
                        fprintf(stderr, "msce-agent: cannot restore (%s): %s; enrolling with MEF %s\n",
                                outcome_to_string(f->outcome), f->reason, m->cfg.mef_uri);
                if (f->outcome == OUTCOME_ABSENT)
                        log_m(m, a->priority, a->message_id, 0, "No sealed profile (%s): enrolling", f->reason);
                else if (f->outcome == OUTCOME_EXPIRED)
                        log_m(m, a->priority, a->message_id, r, "%s: keys removed, enrolling", f->reason);
                else
                        log_m(m, a->priority, a->message_id, r, "Cannot use the sealed profile: %s; enrolling",
                              f->reason);
                custody_info_t ri;
                if (f->outcome == OUTCOME_EXPIRED && custody_remove(&m->cfg, &ri) < 0)
                        log_m(m, LOG_ERR, NULL, 0, "Removing the expired profile: %s", ri.failure.reason);
                profile_forget(m);
                schedule_enrol(m);
                return reload_settle(m);
        }
        char d[32];
        uint64_t delay = class_delay(m, a, NULL, &m->failures, d);
        action_schedule(m, ACTION_RESTORE, delay);
        class_enter(m, a, "Cannot restore the sealed profile: %s; retrying in %s", f->reason, d);
        reload_settle(m);
}

/* ---- status checks while READY ---- */

static void go_revoked(manager_t *m) {
        action_cancel(m);
        exchange_cancel(m);
        char ke_id[MSG_KEID_MAX + 1];
        snprintf(ke_id, sizeof ke_id, "%s", m->profile.ke_id);
        custody_info_t ci;
        int r = custody_remove(&m->cfg, &ci);
        log_m(m, LOG_WARNING, MSCE_MESSAGE_REVOKED, 0, "MEF %s revoked KeID %s: keys and sealed profile removed%s%s",
              m->cfg.mef_uri, ke_id, r < 0 ? "; but: " : "", r < 0 ? ci.failure.reason : "");
        profile_forget(m);
        snprintf(m->last_error, sizeof m->last_error, "revoked by the MEF");
        set_state(m, STATE_REVOKED, LOG_WARNING,
                  "Revoked by MEF %s: keys removed; waiting for an operator (SIGUSR1 or restart)", m->cfg.mef_uri);
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
                if (st.poll >= MSG_POLL_MIN)
                        m->profile.poll = st.poll;
                switch (st.state) {
                case MSG_STATE_REENROL:
                        log_m(m, LOG_NOTICE, NULL, 0, "MEF %s asks to re-enrol KeID %s", m->cfg.mef_uri,
                              m->profile.ke_id);
                        return start_enrol(m);
                case MSG_STATE_REVOKED:
                        return go_revoked(m);
                default:
                        m->last_error[0] = 0;
                        action_schedule(m, ACTION_STATUS, (uint64_t) m->profile.poll * USEC_PER_SEC);
                        return ready_status(m, NULL);
                }
        }
        if (r == -ENOENT) {
                log_m(m, LOG_WARNING, NULL, r, "MEF %s no longer knows KeID %s: re-enrolling", m->cfg.mef_uri,
                      m->profile.ke_id);
                return start_enrol(m);
        }
        const class_action_t *a = class_action(info.failure.outcome);
        if (a->state == STATE_CONFIG_ERROR)
                return fatal(m, a->exit_code, r, "Configuration error: %s", info.failure.reason);

        /* The keys stay valid (READY, whatever the class): try again sooner than the poll
         * interval, never later. */
        str_copy(m->last_error, sizeof m->last_error, info.failure.reason);
        m->status_failures++;
        backoff_params_t bp = backoff_params(m);
        uint64_t poll = (uint64_t) m->profile.poll * USEC_PER_SEC;
        uint64_t delay = info.has_retry_after ? backoff_retry_after(&bp, info.retry_after, backoff_random())
                                              : backoff_delay(&bp, m->status_failures, backoff_random());
        delay = MIN(delay, poll);
        char d[32], extra[800], note[RETRY_AFTER_SENT_MAX + 64] = "";
        format_duration(delay, d);
        if (info.retry_after_sent[0]) {
                char n[RETRY_AFTER_SENT_MAX + 48];
                retry_after_note(m, &info, n, sizeof n);
                snprintf(note, sizeof note, "; %s", n);
        }
        if (info.failure.outcome == OUTCOME_REJECTED)
                log_m(m, a->priority, a->message_id, r, "MEF %s refused the status check: %s", m->cfg.mef_uri,
                      info.failure.reason);
        else if (info.failure.outcome == OUTCOME_INCOMPATIBLE)
                log_m(m, a->priority, a->message_id, r, "MEF %s is incompatible: %s", m->cfg.mef_uri,
                      info.failure.reason);
        const char *net = network_failure(r, &info);
        snprintf(extra, sizeof extra, "; status check failed (%s%s%s%s), retrying in %s", net ?: "", net ? ": " : "",
                 info.failure.reason, note, d);
        action_schedule(m, ACTION_STATUS, delay);
        /* ready_status() would say "next check in <poll>": say the truth instead. */
        char exp[32];
        format_time(m->profile.exp_t, exp);
        set_state(m, STATE_READY, LOG_WARNING, "Ready: KeID %s, expires %s%s", m->profile.ke_id, exp, extra);
}

static void status_exchange(manager_t *m);

static void start_status(manager_t *m) {
        action_cancel(m);
        /* The persistent keyring expires when unused (3 days): look the keys up on every poll,
         * which also refreshes it, and put them back from the sealed profile if they went. */
        custody_info_t ci;
        int r = custody_check(&m->cfg, &ci);
        if (r == -ENOKEY) {
                log_m(m, LOG_WARNING, NULL, r, "%s: reinstalling them from the sealed profile", ci.failure.reason);
                return unseal_start(m, SEALING_REINSTALL);
        }
        if (r < 0)
                log_m(m, LOG_WARNING, NULL, r, "Cannot check the keyring: %s", ci.failure.reason);
        status_exchange(m);
}

static void reinstall_done(manager_t *m, int r, stored_profile_t *p, const custody_info_t *ci) {
        const class_action_t *a = class_action(ci->failure.outcome);
        if (r == 0)
                profile_adopt(m, p, ci->method);
        else if (a->state == STATE_CONFIG_ERROR)
                return fatal(m, a->exit_code, r, "Configuration error: %s", ci->failure.reason);
        else if (a->state == STATE_ENROL) {
                log_m(m, LOG_WARNING, MSCE_MESSAGE_UNSEAL_FAILED, r, "Cannot reinstall the keys: %s; enrolling",
                      ci->failure.reason);
                profile_forget(m);
                return start_enrol(m);
        } else
                log_m(m, LOG_ERR, NULL, r, "Cannot reinstall the keys: %s", ci->failure.reason);
        status_exchange(m);
}

static void status_exchange(manager_t *m) {
        exchange_info_t info;
        int r = worker_start(m->event, &m->cfg, WORKER_STATUS, m->profile.ke_id, on_status_done, m, &m->exchange, &info);
        if (r < 0) {
                /* Nothing was sent: report it like a failed check. */
                const class_action_t *a = class_action(info.failure.outcome);
                if (a->state == STATE_CONFIG_ERROR)
                        return fatal(m, a->exit_code, r, "Configuration error: %s", info.failure.reason);
                str_copy(m->last_error, sizeof m->last_error, info.failure.reason);
                log_m(m, LOG_WARNING, NULL, r, "Status check failed: %s", info.failure.reason);
                action_schedule(m, ACTION_STATUS, m->cfg.backoff_max_usec);
                return;
        }
        m->exchange_is_enrol = false;
}

/* ---- timers ---- */

static int on_action(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_t *m = userdata;
        action_t a = m->action;
        m->action = ACTION_NONE;
        m->next_attempt = 0;
        switch (a) {
        case ACTION_RESTORE:
                go_restore(m);
                break;
        case ACTION_ENROL:
                start_enrol(m);
                break;
        case ACTION_STATUS:
                if (m->have_profile)
                        start_status(m);
                break;
        default:
                break;
        }
        return 0;
}

static int on_renew(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_t *m = userdata;
        if (!m->have_profile || enrol_in_progress(m))
                return 0;
        if (m->state == STATE_REVOKED)
                return 0;
        log_m(m, LOG_INFO, NULL, 0, "KeID %s reached 80%% of its lifetime: renewing", m->profile.ke_id);
        start_enrol(m);
        return 0;
}

static int on_expiry(sd_event_source *s, uint64_t usec, void *userdata) {
        manager_t *m = userdata;
        if (!m->have_profile)
                return 0;
        char exp[32];
        format_time(m->profile.exp_t, exp);
        log_m(m, LOG_WARNING, MSCE_MESSAGE_EXPIRED, -EKEYEXPIRED,
              "KeID %s expired at %s without renewal: removing its keys and enrolling", m->profile.ke_id, exp);
        custody_info_t ci;
        if (custody_remove(&m->cfg, &ci) < 0)
                log_m(m, LOG_ERR, NULL, 0, "Removing the expired profile: %s", ci.failure.reason);
        profile_forget(m);
        /* An enrolment under way carries on: it stores a new profile. */
        if (enrol_in_progress(m))
                return 0;
        m->failures = 0;
        start_enrol(m);
        return 0;
}

/* ---- signals ---- */

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_t *m = userdata;
        notify(m, "STOPPING=1");
        action_cancel(m);
        exchange_cancel(m);
        set_state(m, STATE_STOPPING, LOG_INFO, "Stopping (%s)", si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        (void) sd_event_exit(m->event, AGENT_EXIT_OK);
        return 0;
}

static int on_usr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_t *m = userdata;
        log_m(m, LOG_NOTICE, NULL, 0, "Re-enrolment requested (SIGUSR1)");
        m->failures = 0;
        m->first_attempt = false;
        start_enrol(m);
        return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        manager_t *m = userdata;
        notify(m, "RELOADING=1");
        log_m(m, LOG_INFO, NULL, 0, "Reloading the configuration (SIGHUP)");

        agent_config_t n = {};
        char err[1024];
        int r = agent_config_load(m->config_path, &n, err, sizeof err);
        _cleanup_close_ int lock = -1;
        custody_info_t ci;
        if (r == 0 && custody_preflight(&n, &ci) < 0) {
                snprintf(err, sizeof err, "%s", ci.failure.reason);
                r = -EINVAL;
        }
        if (r == 0 && !streq(n.state_dir, m->cfg.state_dir) && custody_lock(&n, &lock, &ci) < 0) {
                snprintf(err, sizeof err, "%s", ci.failure.reason);
                r = -EBUSY;
        }
        if (r < 0) {
                agent_config_done(&n);
                /* state.json says it too: last_error, for mscectl status. */
                char refused[sizeof err + 64];
                snprintf(refused, sizeof refused, "reload refused, previous configuration kept: %s",
                         err[0] ? err : strerror(-r));
                str_copy(m->last_error, sizeof m->last_error, refused);
                state_json_write(m);
                log_m(m, LOG_ERR, NULL, r, "Reload failed, keeping the previous configuration: %s",
                      err[0] ? err : strerror(-r));
                char line[STATUS_MAX + sizeof err + 64];
                snprintf(line, sizeof line, "STATUS=%s (reload failed, previous configuration kept: %s)", m->status,
                         err[0] ? err : strerror(-r));
                notify(m, line);
                if (m->ready_sent)
                        notify(m, "READY=1");
                return 0;
        }

        /* The running exchange points into the old configuration: cancel it first. */
        action_cancel(m);
        exchange_cancel(m);
        bool leds_changed = !streq(m->cfg.led_status ?: "", n.led_status ?: "") ||
                            !streq(m->cfg.led_error ?: "", n.led_error ?: "");
        agent_config_done(&m->cfg);
        m->cfg = n;
        if (leds_changed)
                leds_setup(m);
        if (lock >= 0) {
                close(m->lock_fd);
                m->lock_fd = TAKE_FD(lock);
        }
        m->failures = 0;
        m->reloading = true;
        log_m(m, LOG_INFO, NULL, 0, "Configuration reloaded from %s", m->cfg.path);
        /* READY=1 follows when the restore has settled (reload_settle), even when it leads to an
         * enrolment: the reload itself is complete then. */
        go_restore(m);
        return 0;
}

/* ---- life cycle ---- */

int manager_new(const char *config_path, agent_config_t *cfg, manager_t **ret, char *err, size_t err_size) {
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
        if (config_path && !(m->config_path = strdup(config_path)))
                return -ENOMEM;

        /* Everything local before anything is sent (msce-agent --check-config checks the same):
         * manager_run() stops with it, in STATUS= and state.json. Nothing is created then. */
        custody_info_t ci;
        int r = custody_preflight(&m->cfg, &ci);
        if (r < 0)
                str_copy(m->preflight_error, sizeof m->preflight_error, ci.failure.reason);
        else {
                r = custody_lock(&m->cfg, &m->lock_fd, &ci);
                if (r < 0) {
                        snprintf(err, err_size, "%s", ci.failure.reason);
                        return r;
                }
        }

        r = sd_event_default(&m->event);
        if (r < 0) {
                snprintf(err, err_size, "cannot create the event loop: %s", strerror(-r));
                return r;
        }
        static const int sigs[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };
        sigset_t mask;
        sigemptyset(&mask);
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++)
                sigaddset(&mask, sigs[i]);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return negative_errno();
        sd_event_signal_handler_t handlers[] = { on_term, on_term, on_hup, on_usr1 };
        for (size_t i = 0; i < ELEMENTSOF(sigs); i++) {
                r = sd_event_add_signal(m->event, &m->signals[i], sigs[i], handlers[i], m);
                if (r < 0) {
                        snprintf(err, err_size, "cannot watch signal %d: %s", sigs[i], strerror(-r));
                        return r;
                }
        }
        leds_setup(m);
        /* WATCHDOG=1 at half of WATCHDOG_USEC when the service manager asks for it. */
        r = sd_event_set_watchdog(m->event, true);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up the watchdog: %s", strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

manager_t *manager_free(manager_t *m) {
        if (!m)
                return NULL;
        m->exchange = worker_free(m->exchange);
        m->sealing = sealing_free(m->sealing);
        stored_profile_wipe(&m->pending);
        m->action_timer = sd_event_source_disable_unref(m->action_timer);
        m->renew_timer = sd_event_source_disable_unref(m->renew_timer);
        m->expiry_timer = sd_event_source_disable_unref(m->expiry_timer);
        for (size_t i = 0; i < ELEMENTSOF(m->signals); i++)
                m->signals[i] = sd_event_source_disable_unref(m->signals[i]);
        m->leds = leds_free(m->leds);
        sd_event_unref(m->event);
        stored_profile_wipe(&m->profile);
        agent_config_done(&m->cfg);
        if (m->lock_fd >= 0)
                close(m->lock_fd);
        free(m->config_path);
        free(m);
        return NULL;
}

int manager_run(manager_t *m) {
        set_state(m, STATE_START, LOG_INFO, "Starting (node %s, MEF %s)", m->cfg.node_id, m->cfg.mef_uri);
        if (m->preflight_error[0])
                fatal(m, AGENT_EXIT_CONFIG, -EINVAL, "Configuration error: %s", m->preflight_error);
        else
                go_restore(m);
        int r = sd_event_loop(m->event);
        if (r < 0) {
                log_m(m, LOG_ERR, NULL, r, "Event loop failed: %s", strerror(-r));
                return AGENT_EXIT_SOFTWARE;
        }
        return r;
}

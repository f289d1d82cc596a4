/* SPDX-License-Identifier: MIT */
#pragma once
/* Inside agent/manager.h, which is the entry point: the manager's state (struct manager) and
 * what its three files give each other. agent/manager.c: the loop, signals, reload and life
 * cycle; agent/states.c: the states and their transitions, with the table from failure class
 * to what happens next; agent/report.c: what the agent tells the outside (STATUS=, state.json,
 * the journal, the LEDs, the output of --once). */

#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>
#include <systemd/sd-event.h>
#include <time.h>

#include "agent/config.h"
#include "agent/custody.h"
#include "agent/enrol.h"
#include "agent/manager.h"
#include "agent/sealing.h"
#include "agent/worker.h"
#include "hw/leds.h"
#include "util/macro.h"

#define CLOCK_POLL_USEC USEC_PER_SEC
#define STATUS_MAX 1024

typedef enum action {
        ACTION_NONE,
        ACTION_RESTORE,
        ACTION_ENROL,
        ACTION_STATUS,
} action_t;

typedef enum sealing_kind {
        SEALING_RESTORE,   /* at start, reload, after a failure to keep a new profile */
        SEALING_REINSTALL, /* the keys went from the keyring: put them back, then the status check */
        SEALING_PUT_BACK,  /* the same outside a status check: put them back, nothing else (in-place.c) */
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
        bool runtime_not_ours;      /* ... and another agent holds the state directory: state.json
                                     * and the LEDs are that one's, left alone */
        time_t next_attempt;        /* wall clock of the next action, 0: none */

        int64_t poll_warned;        /* the poll sent that report_poll_clamped() warned about: not
                                     * again; POLL_WARNED_NONE since a value in range */
        bool have_profile;          /* a valid profile is in place (keys in the keyring) */
        stored_profile_t profile;   /* its non-secret fields: key bytes wiped */
        char exp_utc[TIME_TEXT_MAX]; /* its expiry as time_format_utc() gives it, for messages */
        seal_method_t backend;

        worker_t *exchange;
        bool exchange_is_enrol;
        /* A seal or unseal in its child (agent/sealing.h); at most one, never beside an exchange. */
        sealing_t *sealing;
        sealing_kind_t sealing_kind;
        stored_profile_t pending;   /* SEALING_STORE: the profile being sealed (secret) */
        exchange_info_t pending_info; /* SEALING_STORE: the enrolment's exchange */
        ino_t pending_envelope;     /* SEALING_STORE: the sealed profile before (custody_store_begin()) */

        action_t action;
        sd_event_source *action_timer;  /* CLOCK_MONOTONIC */
        sd_event_source *renew_timer;   /* CLOCK_REALTIME: 80% of the lifetime */
        sd_event_source *expiry_timer;  /* CLOCK_REALTIME: exp */
        sd_event_source *keep_timer;    /* CLOCK_REALTIME: a third of the persistent keyring's expiry */
        sd_event_source *removal_timer; /* CLOCK_MONOTONIC: a removal that failed, tried again */
        unsigned removal_failures;      /* ... consecutive, for its backoff */
        sd_event_source *signals[4];
        leds_t *leds;               /* NULL without [leds] configured */

        /* An enrolment asked for (SIGUSR1, the MEF's reenrol), NULL: none; kept until one seals
         * its profile, so that a reload's restore does not drop it; unless that restore
         * installs another KeID than the one in place when it was asked (its seal completed). */
        const char *enrol_requested;
        char enrol_requested_from[MSG_KEID_MAX + 1];
        /* CLOCK_MONOTONIC: the MEF's Retry-After put off the enrolments until then; 0: not. */
        uint64_t enrol_not_before;
        /* CLOCK_MONOTONIC: an enrolment refused (REJECTED, INCOMPATIBLE) while a profile is in
         * place is retried then; its status checks go on meanwhile. 0: none waits. */
        uint64_t enrol_retry_at;
        unsigned failures;          /* consecutive failed enrolments (transient) */
        unsigned status_failures;   /* consecutive failed status checks */
        bool first_attempt;         /* the random initial delay still applies */
        uint64_t clock_wait_until;  /* monotonic; 0: not waiting */
        bool ready_sent;
        /* Reloads (SIGHUP) are numbered 1, 2, ... as they begin; signals that arrive together
         * make one. mscectl reload waits for one begun after it looked (docs/mscectl.8.scd). */
        unsigned reloading;         /* the number of the reload under way (its restore); 0: none */
        unsigned reloads_begun;     /* the last number given, in state.json before the files are read */
        unsigned reload_done;       /* the number of the newest reload complete */
        unsigned reloads;           /* reloads complete (settled or refused; one cancelled by the
                                     * next SIGHUP is not), for mscectl reload of older versions */
        char reload_error[512];     /* why reload_done was refused; empty: it was not */
        char revoked_why[STATUS_MAX]; /* REVOKED: "by MEF URI ...", for its STATUS= */
        bool state_json_failed;     /* say it once */
};

/* ---- agent/report.c ---- */

/* Truncating copy (reasons are for humans: a cut one is still useful; gcc's -Wformat-truncation
 * would flag each caller's own snprintf()). */
void report_copy(char *dst, size_t size, const char *src);
void report_duration(uint64_t usec, char out[32]);
/* A structured journal entry (MESSAGE, PRIORITY, MESSAGE_ID: NULL or 32 hex digits, ERRNO= for
 * a negative error, the MSCE_* fields; MSCE_KEID= ke_id, NULL or "": none), echoed to stderr when
 * that is not the journal (a terminal, a test, a plain redirect); nothing with --once. Callers
 * never pass key bytes. report_log(): MSCE_KEID= the profile in place's. */
void report_log_keid(manager_t *m, const char *ke_id, int priority, const char *message_id, int error,
                     const char *fmt, ...) _printf_(6, 7);
#define report_log(m, ...) report_log_keid((m), (m)->have_profile ? (m)->profile.ke_id : NULL, __VA_ARGS__)
void report_notify(manager_t *m, const char *text);
/* <runtime_dir>/state.json, for mscectl and monitoring. */
void report_state_json(manager_t *m);
void report_leds_setup(manager_t *m);
/* A state change: STATUS=, state.json, the state's LED pattern, a journal line. */
void report_state(manager_t *m, agent_state_t s, int priority, const char *fmt, ...) _printf_(4, 5);
/* CONFIGURATION-ERROR: say why everywhere, then leave the loop with code. */
void report_fatal(manager_t *m, int code, int error, const char *fmt, ...) _printf_(4, 5);
/* --once: end the run with code (after a line on stderr), or print the profile in place (with
 * what the enrolment did, NULL after a restore) and end with 0. */
void report_once_end(manager_t *m, int code);
void report_once_exit(manager_t *m, int code, const char *fmt, ...) _printf_(3, 4);
void report_once_print(manager_t *m, const exchange_info_t *enrolled);
/* A warning when the MEF's poll (in its profile or status: what) was outside the agent's range
 * and clamped into it (exchange_info_t.poll_clamped), once per value sent; on stderr with --once. */
void report_poll_clamped(manager_t *m, const exchange_info_t *info, const char *what);
/* In range, so never a poll warned about: nothing warned. */
#define POLL_WARNED_NONE ((int64_t) MSG_POLL_MIN)

/* ---- agent/manager.c ---- */

void manager_action_cancel(manager_t *m);
/* Arm the action timer delay from now. */
void manager_action_schedule(manager_t *m, action_t a, uint64_t delay);
/* The timers of renewal at 80% of the lifetime and of expiry. */
int manager_on_renew(sd_event_source *s, uint64_t usec, void *userdata);
int manager_on_expiry(sd_event_source *s, uint64_t usec, void *userdata);
/* states_enrol() as who asked (SIGUSR1, the MEF's reenrol), kept as enrol_requested (above); an
 * enrolment under way (states_enrol_in_progress()) goes on as that one. */
void manager_enrol_requested(manager_t *m, const char *who);

/* ---- agent/states.c ---- */

/* Cancel the pending action and the running exchange or sealing. */
void states_cancel(manager_t *m);
void states_restore(manager_t *m);
/* A previous [consumer] user (a reload's, or a restart's: the record says) is the CSE no longer: its
 * keys go before the restore, whose install a failure, backoff or enrolment may put off for long. */
void states_user_leave(manager_t *m);
/* A reload (SIGHUP) is complete once its restore has settled, or has been cancelled for an
 * enrolment (states_enrol()): say READY=1 again if it was, then count it in state.json, which
 * mscectl reload waits for. A newer reload refused meanwhile (its SIGHUP came during this
 * restore) stays the newest complete one, with its reason. */
void states_reload_settle(manager_t *m);
void states_enrol(manager_t *m);
/* Enrol now, or when the random start delay (the first attempt) or the MEF's Retry-After says. */
void states_enrol_due(manager_t *m);
void states_status(manager_t *m);
/* An enrolment is under way: its exchange, or the sealing of what it brought. */
bool states_enrol_in_progress(const manager_t *m);
/* Unseal the sealed profile in a child; kind says what follows. */
void states_unseal(manager_t *m, sealing_kind_t kind);
/* ---- agent/revoked.c ---- */

/* The MEF revoked the KeID in place: the mark, then the keys and the sealed profile go. */
void states_revoked_enter(manager_t *m);
/* At start: REVOKED while its mark is there (agent/state-mark.h; --once ends there, --once
 * --reenrol removes it), else the restore. */
void states_start(manager_t *m);
/* An operator's act (SIGUSR1, a reload) ends REVOKED: its mark goes first. When it cannot, a
 * revoked agent stays REVOKED (a restart would find the mark and remove the keys the enrolment
 * brought): false then, the state said and a reload settled. */
bool states_revoked_leave(manager_t *m);
/* REVOKED's STATUS= (revoked_why): the keys removed (failed NULL), or not (failed: why; retry:
 * when it is tried again, "" when not). */
void states_revoked_report(manager_t *m, const char *failed, const char *retry);

/* ---- agent/classes.c: what a failure leads to, one row per class (agent/outcome.h) ---- */

typedef enum delay_kind {
        DELAY_NONE,    /* no retry to wait for: an enrolment fixes it, or the run ends */
        DELAY_BACKOFF, /* capped exponential with jitter, or the MEF's Retry-After */
        DELAY_SLOW,    /* [timing] rejected_retry: retrying sooner cannot help */
} delay_kind_t;

typedef struct class_action {
        agent_state_t state;    /* the state a failure of this class leads to */
        delay_kind_t delay;     /* before the retry */
        int priority;           /* of its journal lines */
        int exit_code;          /* --once ends with it; the daemon too in STATE_CONFIG_ERROR */
        const char *message_id; /* of its journal line, NULL: none */
} class_action_t;

/* The row of outcome o (OUTCOME_FAILED's for one out of range). */
const class_action_t *states_class_action(outcome_t o);
/* The row of failure f (error r), its reason kept as last_error; NULL when f is a
 * configuration error, which has ended the run (report_fatal()). */
const class_action_t *states_class_failed(manager_t *m, const failure_t *f, int r);
/* Schedule action after the delay before retrying a failure of class a (counter: its
 * consecutive failures; info: a 5xx's Retry-After, may be NULL), formatted into d. */
void states_class_retry(manager_t *m, const class_action_t *a, const exchange_info_t *info, unsigned *counter,
                        action_t action, char d[32]);
/* The next backoff delay (counter: the consecutive failures, counted here; info: a 5xx's
 * Retry-After, may be NULL). */
uint64_t states_backoff_next(const manager_t *m, const exchange_info_t *info, unsigned *counter);
/* Enter the state of a's class (STATUS=, state.json, its LED, a journal line). */
#define class_enter(m, a, ...) report_state((m), (a)->state, (a)->priority, __VA_ARGS__)

/* ---- agent/removal.c ---- */

/* Remove what a profile no longer in place left: custody_remove(), info says why on failure. A
 * failure that may pass (OUTCOME_FAILED: the user database not answering, the keyring) is tried
 * again on a timer with backoff (the sealed profile with it only while REVOKED) until it
 * succeeds, keys are installed again (states_profile_adopt()) or the agent stops (a restart
 * removes them again: the revoked mark, the expired profile); retry says in how long, "" when
 * it is not. --once never retries. */
int states_keys_remove(manager_t *m, bool sealed, custody_info_t *info, char retry[32]);
/* No more tries: keys installed since replaced what was left. */
void states_removal_cancel(manager_t *m);
/* An operator's act ends REVOKED: the removal still owed (the revoked profile's) is tried now,
 * the sealed profile with it (a reload's restore must not install the revoked profile; nothing
 * writes a new one yet). Nothing outside REVOKED. */
void states_removal_flush(manager_t *m);

/* ---- agent/in-place.c ---- */

/* No profile in place any more: its non-secret copy and its timers go. */
void states_profile_forget(manager_t *m);
/* Before an enrolment asked for: a profile whose keys left the keyring with its sealed profile
 * (mscectl factory-reset removes both, then sends SIGUSR1) is in place no longer, and the
 * enrolment is a fresh start, not its renewal (one log line says so). Its keys alone gone, it
 * stays, and they are put back once that enrolment has ended (keep_keys()). */
void states_profile_check_keys(manager_t *m);
/* The end of SEALING_PUT_BACK's unseal (r, err, p and method as sealing_result() gave them; p
 * the KeID in place): its keys installed again, or a line says why not. */
void states_put_back_done(manager_t *m, int r, const char *err, stored_profile_t *p, seal_method_t method);
/* Keep the non-secret fields of p (wiping its keys) and arm renewal, expiry and the keyring's
 * keep-alive. */
void states_profile_adopt(manager_t *m, stored_profile_t *p, seal_method_t backend);

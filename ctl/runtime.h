/* SPDX-License-Identifier: MIT */
#pragma once
/* What mscectl reads from the running agent: <runtime_dir>/state.json and profile.json, and
 * whether the pid named in state.json is still msce-agent. Parsers are pure functions over
 * bytes with explicit limits; unknown members are ignored (a newer agent may add some). */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#include "proto/msg.h"

#define CTL_RUNTIME_DIR_DEFAULT "/run/msce"
#define CTL_STATE_FILE "state.json"
#define CTL_PROFILE_FILE "profile.json"
#define CTL_AGENT_COMM "msce-agent"
#define CTL_JSON_MAX (64u * 1024u)  /* larger files are refused */
#define CTL_FIELD_MAX 1024u         /* longest string member of state.json */

/* state.json, written by the agent on every state change. */
typedef struct ctl_state {
        char *state;        /* required: "ready", "enrol", "backoff", ... (agent/manager.c) */
        char *status;       /* the agent's STATUS= line */
        char *node;         /* M2M-Node-ID and MEF URI it works with */
        char *mef;
        char *since;        /* times as written: a string, or an integer printed in decimal */
        char *last_error;   /* control characters replaced by '?' here and in status */
        char *next_attempt;
        char *backend;
        char *ke_id;
        char *exp;
        pid_t pid;          /* 0 when absent */
        long long reloads;  /* reloads complete (settled or refused); -1 when absent (older agent) */
        long long reloads_begun; /* the number of the last reload begun (said before it reads the
                                  * files); -1 when absent (older agent) */
        long long reload_done;   /* the number of the newest reload complete; -1 when absent */
        char *reload_error; /* why the last one was refused; NULL: it was not */
} ctl_state_t;

typedef struct ctl_target {
        char *id;
        char *kpsa_id;
} ctl_target_t;

/* profile.json: the non-secret profile (docs/cse-integration.md). */
typedef struct ctl_profile {
        char *cse_id;       /* required, printable ASCII (no control characters) */
        char *cse_base;
        char *ke_id;
        char *exp;          /* "YYYYMMDDTHHMMSS" */
        ctl_target_t targets[MSG_TARGETS_MAX];
        size_t n_targets;
        unsigned poll;      /* 0 when absent */
} ctl_profile_t;

/* 0, or -EBADMSG with err saying what is wrong (also for malformed JSON), -ENOMEM.
 * *ret is written only on success; free with *_done(). */
int ctl_state_parse(const char *text, size_t len, ctl_state_t *ret, char *err, size_t err_size);
void ctl_state_done(ctl_state_t *s);
int ctl_profile_parse(const char *text, size_t len, ctl_profile_t *ret, char *err, size_t err_size);
void ctl_profile_done(ctl_profile_t *p);

/* Read <dir>/<name> (at most CTL_JSON_MAX bytes). -ENOENT when missing, -EFBIG when larger. */
int ctl_runtime_read(const char *dir, const char *name, char **ret, size_t *ret_len);
/* <dir>/state.json into state, or (state NULL) <dir>/profile.json into profile, read and
 * parsed: 0 (*ret_text, may be NULL, gets the text), -ENOENT when missing, else a negative
 * errno with err saying why. */
int ctl_runtime_load(const char *dir, ctl_state_t *state, ctl_profile_t *profile, char **ret_text, char *err,
                     size_t err_size);

/* 1 when <proc_root>/<pid>/comm is comm, 0 when it is another program, -ESRCH when there is no
 * such entry (gone, or hidden by /proc's hidepid), other negative errno for pid <= 0 or an
 * unreadable comm (EACCES: hidepid=1). proc_root is "/proc" outside tests. */
int ctl_proc_comm_is(const char *proc_root, pid_t pid, const char *comm);

/* Whether the agent of state.json's pid runs: its comm read in /proc, or (hidden) a live process
 * whose /proc entry hidepid keeps from us (another user's, or one of ours we may not ptrace). */
typedef enum ctl_agent_alive {
        CTL_AGENT_GONE,
        CTL_AGENT_SEEN,
        CTL_AGENT_HIDDEN,
} ctl_agent_alive_t;
ctl_agent_alive_t ctl_agent_alive(pid_t pid);

/* A time as state.json or profile.json may carry it: decimal seconds since the epoch (or
 * microseconds, when larger than 10^11), "YYYYMMDDTHHMMSS", or "YYYY-MM-DDTHH:MM:SS" with an
 * optional "Z" or "+00:00", all UTC, from 1970-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
 * -ERANGE for a well-formed time outside that range, -EINVAL for anything else. */
int ctl_time_parse(const char *s, time_t *ret);

/* "3h 2min ago", "in 364 days", "now": the distance from now to t in its two largest units. */
void ctl_time_relative(time_t t, time_t now, char out[48]);

/* What "mscectl status" says about the agent, and its exit status (mscectl(8)). */
typedef enum ctl_health {
        CTL_HEALTH_READY,        /* 0: running, ready, the profile valid */
        CTL_HEALTH_NOT_RUNNING,  /* 3: state.json names no running msce-agent (the profile valid) */
        CTL_HEALTH_NO_STATE,     /* 4: no state.json (not started since boot; the profile valid) */
        CTL_HEALTH_BUSY,         /* 5: starting, restoring, enrolling, waiting for the time, stopping */
        CTL_HEALTH_BACKOFF,      /* 6: a transient failure (MEF unreachable, busy...), retrying */
        CTL_HEALTH_REJECTED,     /* 7: the MEF refused the credential or the request */
        CTL_HEALTH_REVOKED,      /* 8: the MEF revoked the enrolment */
        CTL_HEALTH_INCOMPATIBLE, /* 9: no TLS version, suite or group in common with the MEF, or a
                                  * profile it cannot file (more than 16 targets) */
        CTL_HEALTH_EXPIRED,      /* 10: the profile's expiry has passed (running or not) */
        CTL_HEALTH_CONFIG,       /* 11: the agent stopped on a configuration error (exit 78), or
                                  * (mscectl status) does not run and its configuration does not load */
        _CTL_HEALTH_MAX,
        _CTL_HEALTH_INVALID = -22,
} ctl_health_t;

/* state: the agent's state from state.json (NULL: none); running: it names a running agent;
 * expired: the profile it names (or profile.json's) has expired. */
ctl_health_t ctl_health_of(const char *state, bool running, bool expired);
/* "READY", "NOT RUNNING", "BACKOFF", ... and for CTL_HEALTH_BUSY the state in upper case
 * ("ENROL" is "ENROLLING"); buf holds it when needed. */
const char *ctl_health_label(ctl_health_t h, const char *state, char buf[32]);
int ctl_health_exit(ctl_health_t h);

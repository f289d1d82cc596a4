/* SPDX-License-Identifier: MIT */
#pragma once
/* The daemon: one sd-event loop running the agent's states (architecture.md)
 *
 *   START -> RESTORE -> READY, or -> ENROL -> READY; ENROL -> BACKOFF | REJECTED | INCOMPATIBLE
 *   -> ENROL;
 *   READY -> ENROL (80% of the lifetime, the MEF says reenrol or no longer knows the KeID);
 *   READY -> REVOKED (the MEF says revoked: keys removed until SIGUSR1, a reload or a restart);
 *   the expiry passing without renewal removes the keys and enrols.
 *
 * with sd_notify (READY=1 once the keys are in the keyring, STATUS= at every change, WATCHDOG=1,
 * RELOADING=1/READY=1 around SIGHUP, STOPPING=1 on SIGTERM/SIGINT), the journal
 * (agent/report.c) and <runtime_dir>/state.json. */

#include "agent/config.h"
#include "agent/outcome.h"

typedef enum agent_state {
        STATE_START,
        STATE_RESTORE,
        STATE_WAIT_TIME,
        STATE_ENROL,
        STATE_BACKOFF,
        STATE_REJECTED,
        STATE_INCOMPATIBLE,
        STATE_READY,
        STATE_REVOKED,
        STATE_STOPPING,
        STATE_CONFIG_ERROR, /* the daemon exits 78: configuration or bootstrap credential unusable */
        _STATE_MAX,
        _STATE_INVALID = -22,
} agent_state_t;

const char *agent_state_to_string(agent_state_t s);

#define MANAGER_STATE_JSON "state.json"

typedef struct manager manager_t;

/* Takes over cfg (moved out: *cfg is zeroed) loaded from config_path (NULL: the default; kept
 * for SIGHUP). Blocks the signals it handles. On failure err says why and *exit_code is the exit
 * status for it (agent/exit-codes.h): -EBUSY when another agent holds the state directory
 * (transient), a failure of the state directory or the user database by its class
 * (manager_exit_code()), an internal one (the event loop, its signals, memory) 70. A
 * configuration the preflight refuses is no failure here: manager_run() reports it. */
int manager_new(const char *config_path, agent_config_t *cfg, manager_t **ret, int *exit_code, char *err,
                size_t err_size);
manager_t *manager_free(manager_t *m);
static inline void manager_freep(manager_t **m) {
        manager_free(*m);
}

/* msce-agent --once: the same states, but the run ends when they settle: READY (the profile
 * restored, or enrolled and kept: printed on stdout, no keys) exits 0; the first failure exits
 * with its class's code (agent/exit-codes.h) and a line on stderr. No random start delay, no
 * clock wait, no LEDs, no journal, no state.json. reenrol: enrol even when the profile
 * restores (it stays in place until the new one is kept). Call before manager_run(). */
void manager_set_once(manager_t *m, bool reenrol);

/* Run until SIGTERM/SIGINT (0; with --once 75, the run unfinished) or a fatal error (the exit
 * code, agent/exit-codes.h). */
int manager_run(manager_t *m);

/* The exit code of a failure of class o (agent/outcome.h), as --once ends with it. */
int manager_exit_code(outcome_t o);

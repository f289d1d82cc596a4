/* SPDX-License-Identifier: MIT */
#pragma once
/* The daemon's exchanges with the MEF, each in a child process (util/child.h): the child runs
 * the blocking exchange (agent/enrol.h) and, for an enrolment, derives the profile to keep
 * (keys/profile.h); the daemon gets back what happened and that profile, never touching TLS,
 * HTTP or JSON from the network itself. Its memory stays what it was at start: the child's
 * heap, and the library pages only an exchange touches, go when the child exits.
 *
 * The reply payload: the exchange_info_t as the child filled it, then for a successful enrol
 * the profile as profile_serialize() writes it, for a successful status check the msg_status_t.
 * worker_reply_parse() checks all of it: it is what a child that parsed network input says. */

#include <systemd/sd-event.h>

#include "agent/config.h"
#include "agent/enrol.h"
#include "keys/profile.h"

typedef enum worker_op {
        WORKER_ENROL,
        WORKER_STATUS,
        _WORKER_OP_MAX,
        _WORKER_OP_INVALID = -22,
} worker_op_t;

typedef struct worker worker_t;

/* Called once from the loop when the exchange ends, with 0 or a negative errno as for the
 * enrol_*() functions, plus -ECHILD (the child ended without a reply) and -ETIMEDOUT (it did
 * not finish in time and was killed); info->outcome says what to do. May free w. */
typedef void (*worker_done_t)(worker_t *w, int r, void *userdata);

/* Start an enrolment (prev: the KeID replaced, or NULL) or a status check of ke_id. cfg must
 * stay valid until the worker is freed. Fails (with info set, outcome transient) only when the
 * child cannot be started; every other failure comes through done. */
int worker_start(sd_event *e, const agent_config_t *cfg, worker_op_t op, const char *arg, worker_done_t done,
                 void *userdata, worker_t **ret, exchange_info_t *info);

/* Kills a running child, wipes what it held. NULL is fine. Returns NULL. */
worker_t *worker_free(worker_t *w);
static inline void worker_freep(worker_t **w) {
        worker_free(*w);
}

const exchange_info_t *worker_get_info(const worker_t *w);
/* After a successful enrol: moves the new profile out (once); -ENODATA otherwise. The caller
 * must stored_profile_wipe() it. */
int worker_take_profile(worker_t *w, stored_profile_t *ret);
/* After a successful status check, else NULL. */
const msg_status_t *worker_get_status(const worker_t *w);

/* Check a reply (pure; also for tests and the fuzzer). result is what the child returned.
 * Fills info always when it returns 0, and status or profile when result is 0 for that op.
 * -EBADMSG for anything out of shape: sizes, unterminated strings, values out of range, an
 * outcome that contradicts result. */
int worker_reply_parse(worker_op_t op, int result, const uint8_t *buf, size_t len, exchange_info_t *info,
                       msg_status_t *status, stored_profile_t *profile);

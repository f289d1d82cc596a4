/* SPDX-License-Identifier: MIT */
/* The one table from a failure's class to what happens next (agent/manager-internal.h), and the
 * retry delays it sets. */
#include "agent/manager-internal.h"
#include "agent/backoff.h"
#include "agent/exit-codes.h"
#include "agent/message-ids.h"
#include "util/util.h"

uint64_t states_backoff_next(const manager_t *m, const exchange_info_t *info, unsigned *counter) {
        backoff_params_t bp = {
                .min_usec = m->cfg.backoff_min_usec,
                .max_usec = m->cfg.backoff_max_usec,
                .retry_after_max_usec = m->cfg.retry_after_max_usec,
        };
        (*counter)++;
        return info && info->has_retry_after ? backoff_retry_after(&bp, info->retry_after, backoff_random())
                                             : backoff_delay(&bp, *counter, backoff_random());
}

static const class_action_t class_actions[_OUTCOME_MAX] = {
        /*                          state               delay          priority     exit code                 MESSAGE_ID */
        [OUTCOME_OK] =           { STATE_READY,        DELAY_NONE,    LOG_INFO,    AGENT_EXIT_OK },
        [OUTCOME_TRANSIENT] =    { STATE_BACKOFF,      DELAY_BACKOFF, LOG_WARNING, AGENT_EXIT_TRANSIENT },
        [OUTCOME_FAILED] =       { STATE_BACKOFF,      DELAY_BACKOFF, LOG_ERR,     AGENT_EXIT_TRANSIENT },
        [OUTCOME_REJECTED] =     { STATE_REJECTED,     DELAY_SLOW,    LOG_WARNING, AGENT_EXIT_REJECTED,      MSCE_MESSAGE_REJECTED },
        [OUTCOME_INCOMPATIBLE] = { STATE_INCOMPATIBLE, DELAY_SLOW,    LOG_WARNING, AGENT_EXIT_INCOMPATIBLE,  MSCE_MESSAGE_INCOMPATIBLE },
        [OUTCOME_UNKNOWN_KEID] = { STATE_ENROL,        DELAY_NONE,    LOG_WARNING, AGENT_EXIT_TRANSIENT },
        [OUTCOME_CONFIG] =       { STATE_CONFIG_ERROR, DELAY_NONE,    LOG_ERR,     AGENT_EXIT_CONFIG },
        [OUTCOME_ABSENT] =       { STATE_ENROL,        DELAY_NONE,    LOG_INFO,    AGENT_EXIT_TRANSIENT },
        [OUTCOME_MISMATCH] =     { STATE_ENROL,        DELAY_NONE,    LOG_WARNING, AGENT_EXIT_TRANSIENT,     MSCE_MESSAGE_UNSEAL_FAILED },
        [OUTCOME_EXPIRED] =      { STATE_ENROL,        DELAY_NONE,    LOG_WARNING, AGENT_EXIT_TRANSIENT,     MSCE_MESSAGE_EXPIRED },
        [OUTCOME_UNUSABLE] =     { STATE_ENROL,        DELAY_NONE,    LOG_WARNING, AGENT_EXIT_TRANSIENT,     MSCE_MESSAGE_UNSEAL_FAILED },
};

const class_action_t *states_class_action(outcome_t o) {
        return o >= 0 && o < _OUTCOME_MAX ? &class_actions[o] : &class_actions[OUTCOME_FAILED];
}

int manager_exit_code(outcome_t o) {
        return states_class_action(o)->exit_code;
}

const class_action_t *states_class_failed(manager_t *m, const failure_t *f, int r) {
        const class_action_t *a = states_class_action(f->outcome);
        report_copy(m->last_error, sizeof m->last_error, f->reason);
        if (a->state != STATE_CONFIG_ERROR)
                return a;
        report_fatal(m, a->exit_code, r, "Configuration error: %s", f->reason);
        return NULL;
}

void states_class_retry(manager_t *m, const class_action_t *a, const exchange_info_t *info, unsigned *counter,
                        action_t action, char d[32]) {
        uint64_t delay = a->delay == DELAY_SLOW      ? m->cfg.rejected_retry_usec
                         : a->delay == DELAY_BACKOFF ? states_backoff_next(m, info, counter)
                                                     : 0;
        report_duration(delay, d);
        manager_action_schedule(m, action, delay);
}

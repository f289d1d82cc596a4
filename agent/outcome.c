/* SPDX-License-Identifier: MIT */
/* The parts of agent/enrol.h that need no crypto library (msce-agent links without one). */
#include <string.h>

#include "agent/enrol.h"

static const char *const outcome_table[_OUTCOME_MAX] = {
        [OUTCOME_OK] = "ok",
        [OUTCOME_TRANSIENT] = "transient",
        [OUTCOME_REJECTED] = "rejected",
        [OUTCOME_CONFIG] = "configuration",
        [OUTCOME_INCOMPATIBLE] = "incompatible",
};

const char *outcome_to_string(outcome_t o) {
        if (o < 0 || o >= _OUTCOME_MAX)
                return NULL;
        return outcome_table[o];
}

void enrol_result_wipe(enrol_result_t *r) {
        if (r)
                explicit_bzero(r, sizeof *r);
}

/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "agent/outcome.h"

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

int exchange_fail(exchange_info_t *info, outcome_t o, int r, const char *fmt, ...) {
        info->outcome = o;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(info->reason, sizeof info->reason, fmt, ap);
        va_end(ap);
        return r;
}

/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>

#include "agent/outcome.h"
#include "util/string-table.h"

static const char *const outcome_table[_OUTCOME_MAX] = {
        [OUTCOME_OK] = "ok",
        [OUTCOME_TRANSIENT] = "transient",
        [OUTCOME_REJECTED] = "rejected",
        [OUTCOME_CONFIG] = "configuration",
        [OUTCOME_INCOMPATIBLE] = "incompatible",
        [OUTCOME_UNKNOWN_KEID] = "unknown KeID",
        [OUTCOME_ABSENT] = "absent",
        [OUTCOME_MISMATCH] = "mismatch",
        [OUTCOME_EXPIRED] = "expired",
        [OUTCOME_UNUSABLE] = "unusable",
        [OUTCOME_FAILED] = "failed",
};

DEFINE_STRING_TABLE_TO_STRING(outcome, outcome_t, outcome_table)

int failure_set(failure_t *f, outcome_t o, int r, const char *fmt, ...) {
        f->outcome = o;
        f->error = r;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->reason, sizeof f->reason, fmt, ap);
        va_end(ap);
        return r;
}

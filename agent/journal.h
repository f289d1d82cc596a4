/* SPDX-License-Identifier: MIT */
#pragma once
/* The daemon's structured journal entries (top layer only): MESSAGE, PRIORITY, MESSAGE_ID,
 * ERRNO and the MSCE_* fields, sent with sd_journal_sendv(); echoed to stderr as well when
 * stderr is not already the journal (a terminal, a test, a plain redirect). Callers never pass
 * key bytes. */

#include <stdbool.h>
#include <syslog.h>

#include "util/journal.h"
#include "util/macro.h"

typedef struct journal_fields {
        const char *state;    /* MSCE_STATE */
        const char *node_id;  /* MSCE_NODE_ID */
        const char *ke_id;    /* MSCE_KEID (NULL or "": not sent) */
        const char *mef;      /* MSCE_MEF */
} journal_fields_t;

/* error: a negative errno sent as ERRNO= (0: none). message_id: NULL or 32 hex digits. */
void journal_entry(const journal_fields_t *f, bool echo, int priority, const char *message_id, int error,
                   const char *fmt, ...) _printf_(6, 7);

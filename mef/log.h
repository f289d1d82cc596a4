/* SPDX-License-Identifier: MIT */
#pragma once
/* msce-mef's logging (top layer only): stderr, with sd-daemon priority prefixes when stderr is
 * connected to the journal (JOURNAL_STREAM matches), "msce-mef: " otherwise. One write(2) per
 * line, so lines from one process never interleave. Callers never pass key bytes. */

#include "util/macro.h"

void log_info(const char *fmt, ...) _printf_(1, 2);
void log_warning(const char *fmt, ...) _printf_(1, 2);
void log_error(const char *fmt, ...) _printf_(1, 2);
/* errno is set to -error for the duration of the call so "%m" works; returns error. */
int log_error_errno(int error, const char *fmt, ...) _printf_(2, 3);
int log_warning_errno(int error, const char *fmt, ...) _printf_(2, 3);

/* The structured fields of an event (mef/message-ids.h); any may be NULL or "". */
typedef struct mef_log_fields {
        const char *message_id; /* MESSAGE_ID */
        const char *node_id;    /* MSCE_NODE_ID */
        const char *ke_id;      /* MSCE_KEID */
        const char *identity;   /* MSCE_IDENTITY: the PSK identity or "cert:<fingerprint>" */
        const char *peer;       /* MSCE_PEER: address:port */
        const char *exchange;   /* MSCE_EXCHANGE: enrol, status, deregister, fetch */
        const char *outcome;    /* MSCE_OUTCOME: enrolled, ok, refused, failed, overloaded */
        int status;             /* MSCE_HTTP_STATUS (0: none) */
} mef_log_fields_t;

/* One line as log_info() etc. would write it; under journald a structured entry with these
 * fields instead (f NULL: the line, whatever stderr is). */
void log_event(const mef_log_fields_t *f, int priority, const char *fmt, ...) _printf_(3, 4);

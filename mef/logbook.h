/* SPDX-License-Identifier: MIT */
#pragma once
/* Bounded logging of what anyone who reaches the port can cause (failed or abandoned
 * handshakes, timeouts, evictions, refused requests, 503s): per source and overall.
 *
 * - A source (an address, as the caller names it) gets at most one line per window: the first
 *   event after a quiet window is logged as it comes; the events after it are counted and
 *   summarised once the window since that line has passed: "127.0.0.2: 412 TLS handshakes
 *   failed, 3 timed out in the last 10 s; identities tried: a, b, c (and 409 more)"
 *   ("and N more": attempts with other identities; identities are not secret, and only
 *   printable ASCII of them is logged).
 * - At most max_lines lines per window overall; what does not fit waits (still counted) for
 *   a later window. Sources beyond max_sources are counted together as "other sources", one
 *   line per window, outside of max_lines.
 * Enrolments, revocations and configuration errors never go through here.
 * No clock of its own: callers pass CLOCK_MONOTONIC usec, so tests drive it with a fake one;
 * call logbook_flush() at logbook_next(). Lines go to a sink: the MEF's log. */

#include <errno.h>
#include <stdint.h>

#include "util/macro.h"

typedef enum logbook_kind {
        LOGBOOK_CLOSED,           /* closed by the peer during the handshake */
        LOGBOOK_HANDSHAKE_FAILED, /* refused credential, protocol error */
        LOGBOOK_TIMEOUT,          /* a deadline passed */
        LOGBOOK_EVICTED,          /* unauthenticated, closed to make room */
        LOGBOOK_REQUEST_FAILED,   /* after the handshake: read/write errors, refused requests */
        LOGBOOK_OVERLOADED,       /* answered 503 */
        _LOGBOOK_KIND_MAX,
        _LOGBOOK_KIND_INVALID = -EINVAL,
} logbook_kind_t;

typedef struct logbook_config {
        uint64_t window_usec; /* 0: 10 s */
        unsigned max_lines;   /* per window, all sources; 0: 10 */
        unsigned max_sources; /* tracked at once; 0: 256 */
} logbook_config_t;

/* priority: LOG_WARNING, LOG_INFO... (syslog.h); line: one line, no newline. */
typedef void (*logbook_sink_t)(void *userdata, int priority, const char *line);

typedef struct logbook_stats {
        uint64_t lines;      /* lines written */
        uint64_t aggregated; /* events counted into summaries instead of a line of their own */
} logbook_stats_t;

typedef struct logbook logbook_t;

int logbook_new(const logbook_config_t *cfg, logbook_sink_t sink, void *userdata, logbook_t **ret);
logbook_t *logbook_free(logbook_t *lb);

/* One event from source: logged now (fmt, formatted only then) or counted for a summary.
 * identity: the credential the peer tried (PSK identity), NULL when none. */
void logbook_note(logbook_t *lb, uint64_t now, const char *source, logbook_kind_t kind, const char *identity,
                  int priority, const char *fmt, ...) _printf_(7, 8);
/* Writes the summaries that are due and forgets quiet sources. */
void logbook_flush(logbook_t *lb, uint64_t now);
/* At the end: writes every summary still waiting, at most max_lines of them and one for the
 * rest ("other sources"). */
void logbook_drain(logbook_t *lb, uint64_t now);
/* When the next summary is due (usec), UINT64_MAX when none is waiting. */
uint64_t logbook_next(const logbook_t *lb);
void logbook_get_stats(const logbook_t *lb, logbook_stats_t *ret);

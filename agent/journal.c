/* SPDX-License-Identifier: MIT */
/* Structured journal entries (agent/journal.h). */
#include <stdarg.h>
#include <sys/stat.h>

#include "agent/journal.h"
#include "util/journal.h"
#include "util/util.h"

void journal_entry(const journal_fields_t *f, bool echo, int priority, const char *message_id, int error,
                   const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        char errno_str[16] = "";
        if (error < 0)
                snprintf(errno_str, sizeof errno_str, "%d", -error);
        const char *const kv[] = {
                "MESSAGE_ID", message_id,
                "ERRNO", errno_str,
                "MSCE_STATE", f ? f->state : NULL,
                "MSCE_NODE_ID", f ? f->node_id : NULL,
                "MSCE_KEID", f ? f->ke_id : NULL,
                "MSCE_MEF", f ? f->mef : NULL,
                NULL,
        };
        (void) journal_send(priority, "msce-agent", msg, kv);

        if (echo) {
                /* One write per line so lines never interleave. */
                char line[sizeof msg + 32];
                int k = snprintf(line, sizeof line, "msce-agent: %s\n", msg);
                if (k > 0)
                        (void) !write(STDERR_FILENO, line, MIN((size_t) k, sizeof line - 1));
        }
}

/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "mef/log.h"
#include "util/fs.h"
#include "util/journal.h"

/* Asked once: the answer does not change while the process runs. */
static bool stderr_is_journal(void) {
        static int cached = -1;
        if (cached < 0)
                cached = journal_stderr_is_journal();
        return cached;
}

_printf_(2, 0) static void log_va(const char *prefix, const char *fmt, va_list ap) {
        int saved = errno;
        char line[2048];
        size_t n;
        if (stderr_is_journal())
                n = (size_t) snprintf(line, sizeof line, "%s", prefix);
        else
                n = (size_t) snprintf(line, sizeof line, "msce-mef: ");
        errno = saved; /* for %m */
        int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
        if (m < 0)
                m = 0;
        n = MIN(n + (size_t) m, sizeof line - 2);
        /* One record per line: fold any newline a caller let through. */
        for (size_t i = 0; i < n; i++)
                if (line[i] == '\n' || line[i] == '\r')
                        line[i] = ' ';
        line[n++] = '\n';
        (void) write_all(STDERR_FILENO, line, n); /* nowhere to report a failed log write */
        errno = saved;
}

#define DEFINE_LOG(name, prefix)                        \
        void name(const char *fmt, ...) {               \
                va_list ap;                             \
                va_start(ap, fmt);                      \
                log_va(prefix, fmt, ap);                \
                va_end(ap);                             \
        }
DEFINE_LOG(log_info, SD_INFO)
DEFINE_LOG(log_warning, SD_WARNING)
DEFINE_LOG(log_error, SD_ERR)

#define DEFINE_LOG_ERRNO(name, prefix)                          \
        int name(int error, const char *fmt, ...) {             \
                va_list ap;                                     \
                int saved = errno;                              \
                errno = error < 0 ? -error : error;             \
                va_start(ap, fmt);                              \
                log_va(prefix, fmt, ap);                        \
                va_end(ap);                                     \
                errno = saved;                                  \
                return error;                                   \
        }
DEFINE_LOG_ERRNO(log_error_errno, SD_ERR)
DEFINE_LOG_ERRNO(log_warning_errno, SD_WARNING)

void log_event(const mef_log_fields_t *f, int priority, const char *fmt, ...) {
        static const char *const prefixes[] = { SD_EMERG, SD_ALERT, SD_CRIT, SD_ERR,
                                                SD_WARNING, SD_NOTICE, SD_INFO, SD_DEBUG };
        va_list ap;
        va_start(ap, fmt);
        if (!stderr_is_journal() || !f) {
                log_va(prefixes[priority & 7], fmt, ap);
                va_end(ap);
                return;
        }
        char msg[2048], status[16] = "";
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (f->status > 0)
                snprintf(status, sizeof status, "%d", f->status);
        const char *const kv[] = {
                "MESSAGE_ID", f->message_id, "MSCE_NODE_ID", f->node_id,   "MSCE_KEID", f->ke_id,
                "MSCE_IDENTITY", f->identity, "MSCE_PEER", f->peer,       "MSCE_EXCHANGE", f->exchange,
                "MSCE_OUTCOME", f->outcome,   "MSCE_HTTP_STATUS", status, NULL,
        };
        (void) journal_send(priority & 7, "msce-mef", msg, kv);
}

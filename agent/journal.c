/* SPDX-License-Identifier: MIT */
/* Structured journal entries (agent/journal.h). */
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "agent/journal.h"
#include "util/util.h"

#define FIELDS_MAX 10

static void field(struct iovec *iov, size_t *n, char **mem, const char *fmt, ...) _printf_(4, 5);
static void field(struct iovec *iov, size_t *n, char **mem, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = NULL;
        int k = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (k < 0 || *n >= FIELDS_MAX)
                return free(k < 0 ? NULL : s);
        mem[*n] = s;
        iov[*n] = (struct iovec) { .iov_base = s, .iov_len = (size_t) k };
        (*n)++;
}

void journal_entry(const journal_fields_t *f, bool echo, int priority, const char *message_id, int error,
                   const char *fmt, ...) {
        char msg[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        struct iovec iov[FIELDS_MAX];
        char *mem[FIELDS_MAX];
        size_t n = 0;
        field(iov, &n, mem, "MESSAGE=%s", msg);
        field(iov, &n, mem, "PRIORITY=%d", priority);
        field(iov, &n, mem, "SYSLOG_IDENTIFIER=msce-agent");
        if (message_id)
                field(iov, &n, mem, "MESSAGE_ID=%s", message_id);
        if (error < 0)
                field(iov, &n, mem, "ERRNO=%d", -error);
        if (f && f->state)
                field(iov, &n, mem, "MSCE_STATE=%s", f->state);
        if (f && f->node_id)
                field(iov, &n, mem, "MSCE_NODE_ID=%s", f->node_id);
        if (f && f->ke_id && *f->ke_id)
                field(iov, &n, mem, "MSCE_KEID=%s", f->ke_id);
        if (f && f->mef)
                field(iov, &n, mem, "MSCE_MEF=%s", f->mef);
        (void) sd_journal_sendv(iov, (int) n);
        for (size_t i = 0; i < n; i++)
                free(mem[i]);

        if (echo) {
                /* One write per line so lines never interleave. */
                char line[sizeof msg + 32];
                int k = snprintf(line, sizeof line, "msce-agent: %s\n", msg);
                if (k > 0)
                        (void) !write(STDERR_FILENO, line, MIN((size_t) k, sizeof line - 1));
        }
}

/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "util/journal.h"
#include "util/macro.h"

bool journal_stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

typedef struct fields {
        struct iovec iov[JOURNAL_FIELDS_MAX];
        size_t n;
} fields_t;

_printf_(2, 3) static void add(fields_t *f, const char *fmt, ...) {
        if (f->n >= JOURNAL_FIELDS_MAX)
                return;
        va_list ap;
        va_start(ap, fmt);
        char *s = NULL;
        int k = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (k < 0)
                return;
        f->iov[f->n++] = (struct iovec) { .iov_base = s, .iov_len = (size_t) k };
}

int journal_send(int priority, const char *identifier, const char *message, const char *const *kv) {
        fields_t f = {};
        add(&f, "MESSAGE=%s", message);
        add(&f, "PRIORITY=%d", priority);
        add(&f, "SYSLOG_IDENTIFIER=%s", identifier);
        for (size_t i = 0; kv && kv[i]; i += 2)
                if (kv[i + 1] && *kv[i + 1])
                        add(&f, "%s=%s", kv[i], kv[i + 1]);
        int r = sd_journal_sendv(f.iov, (int) f.n);
        for (size_t i = 0; i < f.n; i++)
                free(f.iov[i].iov_base);
        return r;
}

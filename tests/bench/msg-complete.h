/* SPDX-License-Identifier: MIT */
/* The bench clients' and reference servers' framing (bench-enrol.c, bench-mef-load.c). */
#pragma once

#include <stdlib.h>
#include <string.h>

/* Length of the complete HTTP message in buf (head + Content-Length body), 0 while incomplete. */
static inline size_t msg_complete(const char *buf, size_t len) {
        const char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (!end)
                return 0;
        size_t head = (size_t) (end - buf) + 4, body = 0;
        const char *cl = memmem(buf, head, "Content-Length: ", 16);
        if (cl)
                body = strtoul(cl + 16, NULL, 10);
        return len >= head + body ? head + body : 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* The request of a fuzz input for the MEF's request handlers: "METHOD TARGET\n", "Name: value\n"
 * lines, an empty line, the body; built with http_format_request() and read back with
 * http_parse(), so that a handler sees only what the server could hand it. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz-util.h"
#include "proto/http.h"
#include "util/util.h"

#define FUZZ_LINE_MAX 4096u

/* The next '\n'-terminated line of [*p, end) as a C string in buf; false at the end or on a
 * line too long. */
static inline bool fuzz_next_line(const char **p, const char *end, char *buf, size_t size) {
        if (*p >= end)
                return false;
        const char *nl = memchr(*p, '\n', (size_t) (end - *p));
        size_t n = (size_t) ((nl ?: end) - *p);
        if (n >= size || memchr(*p, 0, n))
                return false;
        memcpy(buf, *p, n);
        buf[n] = 0;
        *p = nl ? nl + 1 : end;
        return true;
}

/* The request the input describes, as the server's parser would hand it over: 0 or -EINVAL. */
static inline int fuzz_request_build(const char *p, const char *end, http_msg_t *ret) {
        static char first[FUZZ_LINE_MAX], lines[HTTP_HEADERS_MAX][FUZZ_LINE_MAX];
        const char *h[2 * HTTP_HEADERS_MAX + 1];
        size_t n = 0;

        if (!fuzz_next_line(&p, end, first, sizeof first))
                return -EINVAL;
        char *target = strchr(first, ' ');
        if (!target)
                return -EINVAL;
        *target++ = 0;
        for (;;) {
                if (p >= end)
                        break;
                if (*p == '\n') {
                        p++;
                        break;
                }
                if (n == HTTP_HEADERS_MAX || !fuzz_next_line(&p, end, lines[n], sizeof lines[n]))
                        return -EINVAL;
                char *colon = strchr(lines[n], ':');
                if (!colon)
                        return -EINVAL;
                *colon++ = 0;
                h[2 * n] = lines[n];
                h[2 * n + 1] = colon + strspn(colon, " ");
                n++;
        }
        h[2 * n] = NULL;

        _cleanup_free_ uint8_t *wire = NULL;
        size_t len = 0;
        int r = http_format_request(first, target, h, p < end ? p : NULL, (size_t) (end - p), &wire, &len);
        if (r < 0)
                return r;
        http_parser_t parser;
        http_parser_init(&parser, HTTP_REQUEST);
        r = http_parse(&parser, wire, len, ret);
        check(r != 0); /* what the formatter writes, the parser reads */
        return r < 0 ? r : 0;
}

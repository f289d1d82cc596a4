/* SPDX-License-Identifier: MIT */
/* Inputs for the HTTP parser, built in a growable buffer: shared by tests/unit/test-http-*.c and
 * tests/bench/bench-http.c. An allocation failure aborts (a test's input, not a product path). */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"
#include "util/util.h"

typedef struct buf {
        char *data;
        size_t len;
} buf_t;

static inline void buf_add(buf_t *b, const void *p, size_t n) {
        b->data = realloc(b->data, b->len + n + 1);
        if (!b->data)
                abort();
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
}

_printf_(2, 3) static inline void buf_printf(buf_t *b, const char *fmt, ...) {
        va_list ap;
        char *s;
        va_start(ap, fmt);
        int n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                abort();
        buf_add(b, s, (size_t) n);
        free(s);
}

static inline void buf_fill(buf_t *b, char c, size_t n) {
        char *s = malloc(n + 1);
        if (!s)
                abort();
        memset(s, c, n);
        buf_add(b, s, n);
        free(s);
}

static inline void buf_done(buf_t *b) {
        free(b->data);
        *b = (buf_t) {};
}

/* A chunk whose size line is exactly line_len bytes (CRLF included; an extension pads it),
 * then its data. */
static inline void chunk_add(buf_t *b, size_t size, size_t line_len) {
        char hex[32];
        int n = snprintf(hex, sizeof(hex), "%zx", size);
        buf_add(b, hex, (size_t) n);
        if (line_len > (size_t) n + 2) {
                buf_add(b, ";", 1);
                buf_fill(b, 'e', line_len - (size_t) n - 3);
        }
        buf_add(b, "\r\n", 2);
        if (size > 0) {
                buf_fill(b, 'd', size);
                buf_add(b, "\r\n", 2);
        }
}

/* A chunked POST's head, for the chunks to follow. */
static inline buf_t chunked_request(void) {
        buf_t b = {};
        buf_printf(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        return b;
}

/* The largest request the parser takes: 60 headers of 100 bytes and a body of HTTP_BODY_MAX
 * bytes, length-delimited or in 16-byte chunks followed by 60 trailers. */
static inline void full_size_request(buf_t *b, bool chunked) {
        buf_printf(b, "POST / HTTP/1.1\r\n");
        for (int i = 0; i < 60; i++)
                buf_printf(b, "X-Header-%02d: %0100d\r\n", i, i);
        if (chunked) {
                buf_printf(b, "Transfer-Encoding: chunked\r\n\r\n");
                for (size_t i = 0; i < HTTP_BODY_MAX / 16; i++)
                        chunk_add(b, 16, 4);
                buf_printf(b, "0\r\n");
                for (int i = 0; i < 60; i++)
                        buf_printf(b, "X-Trailer-%02d: %0100d\r\n", i, i);
                buf_printf(b, "\r\n");
        } else {
                buf_printf(b, "Content-Length: %u\r\n\r\n", HTTP_BODY_MAX);
                buf_fill(b, 'z', HTTP_BODY_MAX);
        }
}

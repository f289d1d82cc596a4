/* SPDX-License-Identifier: MIT */
/* The HTTP parser fed a full-size message byte by byte (moved here from tests/unit/test-http.c,
 * whose test of the same input checks the result only: the suite has no timed assertions).
 * A parser that rescans the head or walks the chunks again on every call makes about 1e9 byte
 * visits (seconds); a linear one takes milliseconds, even under ASan.
 *   bench-http [LIMIT_MS]   prints "length-delimited MS" and "chunked MS"; exit 1 when either
 *                           takes LIMIT_MS or more (default 500) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/http.h"
#include "util/util.h"

typedef struct buf {
        char *data;
        size_t len;
} buf_t;

static void buf_add(buf_t *b, const void *p, size_t n) {
        b->data = realloc(b->data, b->len + n + 1);
        if (!b->data)
                abort();
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
}

_printf_(2, 3) static void buf_printf(buf_t *b, const char *fmt, ...) {
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

static void buf_fill(buf_t *b, char c, size_t n) {
        for (size_t i = 0; i < n; i++)
                buf_add(b, &c, 1);
}

/* One chunk of size bytes with a chunk line of line_len bytes (an extension pads it). */
static void chunk_add(buf_t *b, size_t size, size_t line_len) {
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

int main(int argc, char **argv) {
        unsigned long long limit_ms = 500;
        if (argc > 1 && parse_uint(argv[1], 3600000, &limit_ms) < 0) {
                fprintf(stderr, "usage: bench-http [LIMIT_MS]\n");
                return 2;
        }
        int status = 0;
        for (int chunked = 0; chunked < 2; chunked++) {
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\n");
                for (int i = 0; i < 60; i++)
                        buf_printf(&b, "X-Header-%02d: %0100d\r\n", i, i);
                if (chunked) {
                        buf_printf(&b, "Transfer-Encoding: chunked\r\n\r\n");
                        for (size_t i = 0; i < HTTP_BODY_MAX / 16; i++)
                                chunk_add(&b, 16, 4);
                        buf_printf(&b, "0\r\n");
                        for (int i = 0; i < 60; i++)
                                buf_printf(&b, "X-Trailer-%02d: %0100d\r\n", i, i);
                        buf_printf(&b, "\r\n");
                } else {
                        buf_printf(&b, "Content-Length: %u\r\n\r\n", HTTP_BODY_MAX);
                        buf_fill(&b, 'z', HTTP_BODY_MAX);
                }
                http_parser_t p;
                http_msg_t m = {};
                int r = 0;
                uint64_t t0 = now_usec();
                http_parser_init(&p, HTTP_REQUEST);
                for (size_t n = 1; n <= b.len && r == 0; n++)
                        r = http_parse(&p, (const uint8_t *) b.data, n, &m);
                uint64_t us = now_usec() - t0;
                const char *what = chunked ? "chunked" : "length-delimited";
                if (r != 1 || m.body_len != HTTP_BODY_MAX) {
                        fprintf(stderr, "%s: parse returned %d, body %zu bytes\n", what, r, m.body_len);
                        status = 1;
                }
                printf("%s %.1f ms\n", what, (double) us / 1000.0);
                if (us >= limit_ms * 1000)
                        status = 1;
                http_msg_done(&m);
                free(b.data);
        }
        return status;
}

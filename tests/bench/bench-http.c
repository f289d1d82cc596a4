/* SPDX-License-Identifier: MIT */
/* The HTTP parser fed a full-size message byte by byte (moved here from the unit test test-http,
 * whose test of the same input checks the result only: the suite has no timed assertions).
 * A parser that rescans the head or walks the chunks again on every call makes about 1e9 byte
 * visits (seconds); a linear one takes milliseconds, even under ASan.
 *   bench-http [LIMIT_MS]   prints "length-delimited MS" and "chunked MS"; exit 1 when either
 *                           takes LIMIT_MS or more (default 500) */
#include <stdio.h>

#include "proto/http.h"
#include "tests/unit/http-input.h"
#include "util/util.h"

int main(int argc, char **argv) {
        unsigned long long limit_ms = 500;
        if (argc > 1 && parse_uint(argv[1], 3600000, &limit_ms) < 0) {
                fprintf(stderr, "usage: bench-http [LIMIT_MS]\n");
                return 2;
        }
        int status = 0;
        for (int chunked = 0; chunked < 2; chunked++) {
                buf_t b = {};
                full_size_request(&b, chunked);
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
                buf_done(&b);
        }
        return status;
}

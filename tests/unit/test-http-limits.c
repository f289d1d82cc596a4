/* SPDX-License-Identifier: MIT */
/* HTTP: the limits of head, body, headers and target; header syntax and framing. */
#include "tests/unit/http-fixture.h"

static void head_of_size(buf_t *b, size_t head_len) {
        buf_printf(b, "GET / HTTP/1.1\r\nX-Pad: ");
        buf_fill(b, 'p', head_len - b->len - 4);
        buf_add(b, "\r\n\r\n", 4);
        cr_assert_eq(b->len, head_len);
}

Test(http, limit_head) {
        buf_t b = {};
        head_of_size(&b, HTTP_HEAD_MAX);
        cr_assert_eq(req_buf(&b), 1);
        buf_done(&b);
        head_of_size(&b, HTTP_HEAD_MAX + 1);
        cr_assert_eq(req_buf(&b), -EMSGSIZE);
        buf_done(&b);

        /* as soon as 8 KiB have been seen without the blank line, not later */
        http_parser_t p;
        http_msg_t m;
        buf_printf(&b, "GET / HTTP/1.1\r\nX-Pad: ");
        buf_fill(&b, 'p', HTTP_HEAD_MAX);
        http_parser_init(&p, HTTP_REQUEST);
        cr_assert_eq(http_parse(&p, (uint8_t *) b.data, HTTP_HEAD_MAX - 1, &m), 0);
        cr_assert_eq(http_parse(&p, (uint8_t *) b.data, HTTP_HEAD_MAX, &m), -EMSGSIZE);
        cr_assert_eq(http_parse(&p, (uint8_t *) b.data, b.len, &m), -EMSGSIZE); /* sticky */
        cr_assert_eq(http_parse_eof(&p, b.len), -EMSGSIZE);
        buf_done(&b);
}

Test(http, limit_body) {
        for (size_t extra = 0; extra < 2; extra++) {
                _cleanup_(http_msg_done) http_msg_t m = {};
                buf_t b = {};
                buf_printf(&b, "HTTP/1.1 200 OK\r\nContent-Length: %u\r\n\r\n", HTTP_BODY_MAX + (unsigned) extra);
                buf_fill(&b, 'b', HTTP_BODY_MAX + extra);
                cr_assert_eq(parse_x(HTTP_RESPONSE, false, b.data, b.len, &m), extra ? -EFBIG : 1);
                if (!extra) {
                        cr_assert_eq(m.body_len, HTTP_BODY_MAX);
                        cr_assert_eq(m.body[HTTP_BODY_MAX - 1], 'b');
                }
                buf_done(&b);
        }
        /* rejected from the head alone */
        http_parser_t p;
        http_msg_t m;
        const char *s = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999999\r\n\r\n";
        http_parser_init(&p, HTTP_REQUEST);
        cr_assert_eq(http_parse(&p, (const uint8_t *) s, strlen(s), &m), -EFBIG);
        cr_assert_eq(http_parse_eof(&p, strlen(s)), -EFBIG); /* sticky */
}

Test(http, limit_headers) {
        for (size_t extra = 0; extra < 2; extra++) {
                _cleanup_(http_msg_done) http_msg_t m = {};
                buf_t b = {};
                buf_printf(&b, "GET / HTTP/1.1\r\n");
                for (size_t i = 0; i < HTTP_HEADERS_MAX + extra; i++)
                        buf_printf(&b, "X-H%zu: %zu\r\n", i, i);
                buf_printf(&b, "\r\n");
                cr_assert_eq(parse_x(HTTP_REQUEST, false, b.data, b.len, &m), extra ? -EMSGSIZE : 1);
                if (!extra) {
                        cr_assert_eq(m.n_headers, HTTP_HEADERS_MAX);
                        cr_assert_str_eq(http_msg_header(&m, "x-h63"), "63");
                }
                buf_done(&b);
        }
}

/* Which limit was hit: 65 short headers (608 bytes) are the head's limit even with a body
 * announced, and a body over 64 KiB with a short head is the body's. */
Test(http, limit_which) {
        buf_t b = {};
        buf_printf(&b, "POST / HTTP/1.1\r\nContent-Length: 2\r\n");
        for (size_t i = 0; i < HTTP_HEADERS_MAX; i++)
                buf_printf(&b, "X%zu: %zu\r\n", i, i);
        buf_printf(&b, "\r\n{}");
        cr_assert_lt(b.len, 1024u);
        cr_assert_eq(req_buf(&b), -EMSGSIZE);
        buf_done(&b);
        buf_printf(&b, "POST / HTTP/1.1\r\nContent-Length: %u\r\n\r\n", HTTP_BODY_MAX + 1);
        cr_assert_eq(req_buf(&b), -EFBIG);
        buf_done(&b);
}

Test(http, limit_target) {
        for (size_t extra = 0; extra < 2; extra++) {
                _cleanup_(http_msg_done) http_msg_t m = {};
                buf_t b = {};
                buf_printf(&b, "GET /");
                buf_fill(&b, 't', HTTP_TARGET_MAX - 1 + extra);
                buf_printf(&b, " HTTP/1.1\r\n\r\n");
                cr_assert_eq(parse_x(HTTP_REQUEST, false, b.data, b.len, &m), extra ? -EMSGSIZE : 1);
                if (!extra)
                        cr_assert_eq(strlen(m.target), HTTP_TARGET_MAX);
                buf_done(&b);
        }
}

Test(http, content_length_checks) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(req("POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length:003\r\n\r\nabc", &m), 1);
        cr_assert_eq(m.body_len, 3);
        static const char *const bad[] = {
                "Content-Length: 3\r\nContent-Length: 4", "Content-Length: 3, 3",
                "Content-Length: +3", "Content-Length: -1", "Content-Length:", "Content-Length: 0x3",
                "Content-Length: 3 3", "Content-Length : 3", "Content-Length: 3\r\nTransfer-Encoding: chunked",
                "Transfer-Encoding: chunked\r\nContent-Length: 3", "Transfer-Encoding: gzip",
                "Transfer-Encoding: chunked, gzip", "Transfer-Encoding: gzip, chunked",
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked", "Transfer-Encoding:",
                "Content-Length: 3\r\nContent-Length: 99999999999999999999999",
        };
        assert_each_request("POST / HTTP/1.1\r\n", bad, ELEMENTSOF(bad), "\r\n\r\nabc", -EBADMSG);
}

Test(http, header_syntax) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(req("GET / HTTP/1.1\r\nA:b\r\n!#$%&'*+-.^_`|~09az:  \t x \t y\t \r\nE:\r\n"
                         "Obs: caf\xc3\xa9\r\n\r\n", &m), 1);
        cr_assert_str_eq(http_msg_header(&m, "a"), "b");
        cr_assert_str_eq(m.headers[1].name, "!#$%&'*+-.^_`|~09az");
        cr_assert_str_eq(m.headers[1].value, "x \t y");
        cr_assert_str_eq(http_msg_header(&m, "E"), "");
        cr_assert_str_eq(http_msg_header(&m, "obs"), "caf\xc3\xa9");

        static const char *const bad[] = {
                "A: b\r\n folded", "A: b\r\n\tfolded", " A: b", "A b", "A : b", "A(b): c",
                ": b", "A\r: b", "A: b\rc", "A: b\x01", "A: b\x7f", "A\x80: b", "A: \x1b[0m",
        };
        assert_each_request("GET / HTTP/1.1\r\n", bad, ELEMENTSOF(bad), "\r\n\r\n", -EBADMSG);
}

Test(http, bare_lf_and_nul_rejected_early) {
        static const char *const bad[] = {
                "GET / HTTP/1.1\n", "GET / HTTP/1.1\r\nA: b\n", "GET / HTTP/1.1\r\nA: b\r\n\n",
                "GET / HTTP/1.1\r\nA: b\rX",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                /* no blank line needed to see the error */
                http_parser_t p;
                http_msg_t m;
                http_parser_init(&p, HTTP_REQUEST);
                cr_assert_eq(http_parse(&p, (const uint8_t *) bad[i], strlen(bad[i]), &m), -EBADMSG, "%zu", i);
        }
        static const char nul[] = "GET / HTTP/1.1\r\nA: b\0c\r\n\r\n";
        cr_assert_eq(parse_x(HTTP_REQUEST, false, nul, sizeof(nul) - 1, NULL), -EBADMSG);
        static const char nul_name[] = "GET / HTTP/1.1\r\nA\0: b\r\n\r\n";
        cr_assert_eq(parse_x(HTTP_REQUEST, false, nul_name, sizeof(nul_name) - 1, NULL), -EBADMSG);
        static const char nul_target[] = "GET /\0 HTTP/1.1\r\n\r\n";
        cr_assert_eq(parse_x(HTTP_REQUEST, false, nul_target, sizeof(nul_target) - 1, NULL), -EBADMSG);
}

Test(http, trailing_garbage) {
        cr_assert_eq(req("GET / HTTP/1.1\r\n\r\nX", NULL), -EBADMSG);
        cr_assert_eq(req("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\n\r\n", NULL), -EBADMSG);
        cr_assert_eq(req("POST / HTTP/1.1\r\nContent-Length: 1\r\n\r\nab", NULL), -EBADMSG);
        cr_assert_eq(req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\r\n", NULL), -EBADMSG);
        cr_assert_eq(resp("HTTP/1.1 204 No Content\r\n\r\nx", NULL), -EBADMSG);
        cr_assert_eq(resp("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n", NULL), -EBADMSG);

        /* bytes arriving after the message was returned */
        http_parser_t p;
        _cleanup_(http_msg_done) http_msg_t m = {};
        const char *s = "GET / HTTP/1.1\r\n\r\nXY";
        http_parser_init(&p, HTTP_REQUEST);
        cr_assert_eq(http_parse(&p, (const uint8_t *) s, 18, &m), 1);
        cr_assert_eq(http_parse_eof(&p, 18), 0);
        cr_assert_eq(http_parse(&p, (const uint8_t *) s, 18, &m), -EALREADY);
        cr_assert_eq(http_parse_eof(&p, 20), -EBADMSG); /* EOF after bytes never parsed */
        cr_assert_eq(http_parse(&p, (const uint8_t *) s, 20, &m), -EBADMSG);
        cr_assert_eq(http_parse_eof(&p, 20), -EBADMSG);
}

Test(http, response_framing) {
        /* a response must say where it ends, unless it has no body */
        cr_assert_eq(resp("HTTP/1.1 200 OK\r\nX: y\r\n\r\n", NULL), -EBADMSG);
        cr_assert_eq(resp("HTTP/1.1 204 No Content\r\n\r\n", NULL), 1);
        cr_assert_eq(resp("HTTP/1.1 304 Not Modified\r\nContent-Length: 100000\r\n\r\n", NULL), 1);
        cr_assert_eq(resp("HTTP/1.1 101 Switching\r\n\r\n", NULL), 1);
        cr_assert_eq(resp("HTTP/1.1 204 No Content\r\nContent-Length: x\r\n\r\n", NULL), -EBADMSG);

        /* the answer to HEAD ends with its head, whatever Content-Length says */
        _cleanup_(http_msg_done) http_msg_t m = {};
        const char *s = "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n";
        cr_assert_eq(parse_x(HTTP_RESPONSE, true, s, strlen(s), &m), 1);
        cr_assert_eq(m.body_len, 0);
        cr_assert_eq(resp(s, NULL), -EFBIG);
        s = "HTTP/1.1 200 OK\r\n\r\n";
        cr_assert_eq(parse_x(HTTP_RESPONSE, true, s, strlen(s), NULL), 1);
}

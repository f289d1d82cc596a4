/* SPDX-License-Identifier: MIT */
/* HTTP: requests, responses, chunked bodies and their limits. */
#include "tests/unit/http-fixture.h"

Test(http, request_content_length) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(req("POST /msce/enrolments HTTP/1.1\r\nHost: mef.example.net\r\n"
                         "Content-Type: application/json\r\nContent-Length: 5\r\n\r\nhello",
                         &m), 1);
        cr_assert_eq(m.kind, HTTP_REQUEST);
        cr_assert_str_eq(m.method, "POST");
        cr_assert_str_eq(m.target, "/msce/enrolments");
        cr_assert_eq(m.n_headers, 3);
        cr_assert_str_eq(m.headers[0].name, "Host");
        cr_assert_str_eq(m.headers[0].value, "mef.example.net");
        cr_assert_str_eq(m.headers[2].name, "Content-Length");
        cr_assert_eq(m.body_len, 5);
        cr_assert_str_eq((char *) m.body, "hello");
}

Test(http, request_without_body) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(req("GET /e/x HTTP/1.1\r\nHost: a\r\n\r\n", &m), 1);
        cr_assert_str_eq(m.method, "GET");
        cr_assert_eq(m.body_len, 0);
        cr_assert_not_null(m.body);
        cr_assert_eq(m.body[0], 0);
        /* and Content-Length: 0 is the same */
        cr_assert_eq(req("DELETE /e/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n", NULL), 1);
}

Test(http, response_content_length) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(resp("HTTP/1.1 201 Created\r\nX-M2M-RSC: 2001\r\nContent-Length: 2\r\n\r\n{}",
                          &m), 1);
        cr_assert_eq(m.kind, HTTP_RESPONSE);
        cr_assert_eq(m.status, 201);
        cr_assert_str_eq(http_msg_header(&m, "x-m2m-rsc"), "2001");
        cr_assert_str_eq((char *) m.body, "{}");
}

Test(http, status_line_variants) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(resp("HTTP/1.0 404 \r\nContent-Length: 0\r\n\r\n", &m), 1);
        cr_assert_eq(m.status, 404);
        cr_assert_eq(resp("HTTP/1.1 503 Service \t Unavailable \xe9\r\nContent-Length: 0\r\n\r\n",
                          NULL), 1);
        const char *bad[] = {
                "HTTP/1.1 20 OK\r\n", "HTTP/1.1 2000 OK\r\n", "HTTP/2 200 OK\r\n",
                "HTTP/1.1 200OK\r\n", "HTTP/1.1 200\r\n", "HTTP/1.1 600 X\r\n",
                "HTTP/1.1 099 X\r\n", "http/1.1 200 OK\r\n", "HTTP/1.1  200 OK\r\n",
                "HTTP/1.2 200 OK\r\n", " HTTP/1.1 200 OK\r\n", "HTTP/1.1 2x0 OK\r\n",
                "\r\n", "HTTP/1.1 200 O\x7fK\r\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_assert_eq(resp(bad[i], NULL), -EBADMSG, "%s", bad[i]);
}

Test(http, request_line_variants) {
        cr_assert_eq(req("ABCDEFG /?a=b&c=%20#x HTTP/1.1\r\n\r\n", NULL), 1);
        const char *bad[] = {
                "get / HTTP/1.1\r\n", "ABCDEFGH / HTTP/1.1\r\n", "GET  / HTTP/1.1\r\n",
                "GET / HTTP/1.0\r\n", "GET * HTTP/1.1\r\n", "GET http://x/ HTTP/1.1\r\n",
                "GET /\r\n", "GET / HTTP/1.1 \r\n", "GET /a b HTTP/1.1\r\n", " GET / HTTP/1.1\r\n",
                "GET /\xc3\xa9 HTTP/1.1\r\n", "\r\nGET / HTTP/1.1\r\n", "GET\t/ HTTP/1.1\r\n",
                "G-T / HTTP/1.1\r\n", "GET /HTTP/1.1\r\n", "GET  HTTP/1.1\r\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_assert_eq(req(bad[i], NULL), -EBADMSG, "%s", bad[i]);
}

Test(http, chunked) {
        static const char *const kinds[] = {
                "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "HTTP/1.1 200 OK\r\ntransfer-encoding:  CHUNKED \r\n\r\n",
        };
        for (size_t k = 0; k < 2; k++) {
                _cleanup_(http_msg_done) http_msg_t m = {};
                buf_t b = {};
                buf_printf(&b, "%s", kinds[k]);
                buf_printf(&b, "5;foo=bar\r\nhello\r\n1\r\n \r\n06 ; x ; y=\"q\"\r\nworld!\r\n"
                               "A\r\n0123456789\r\n000\r\nX-Trailer: yes\r\nX-Other:\r\n\r\n");
                cr_assert_eq(parse_x(k, false, b.data, b.len, &m), 1);
                cr_assert_eq(m.body_len, 22);
                cr_assert_str_eq((char *) m.body, "hello world!0123456789");
                cr_assert_eq(m.n_headers, 1); /* trailers are dropped */
                cr_assert_null(http_msg_header(&m, "X-Trailer"));
                assert_prefixes_incomplete(k, b.data);
                buf_done(&b);
        }
}

Test(http, chunked_empty_body) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(req("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", &m), 1);
        cr_assert_eq(m.body_len, 0);
        cr_assert_not_null(m.body);
}

Test(http, chunked_bad) {
        static const char *const bad[] = {
                "-1\r\nx\r\n0\r\n\r\n", "0x1\r\nx\r\n0\r\n\r\n", "\r\nx\r\n0\r\n\r\n",
                " 1\r\nx\r\n0\r\n\r\n", "+1\r\nx\r\n0\r\n\r\n", "1 x\r\nx\r\n0\r\n\r\n",
                "1\r\nxy\r\n0\r\n\r\n", "1\r\nx\n0\r\n\r\n", "1\nx\r\n0\r\n\r\n",
                "1\r\nx\r\n0\r\nbad trailer\r\n\r\n", "1\r\nx\r\n0\r\n folded: t\r\n\r\n",
                "1\r\nx\r\n0\r\n\n", "1;a\x01\r\nx\r\n0\r\n\r\n", "1\r\nx\rx0\r\n\r\n",
                "g\r\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                buf_t b = chunked_request();
                buf_add(&b, bad[i], strlen(bad[i]));
                cr_assert_eq(req_buf(&b), -EBADMSG, "case %zu", i);
                buf_done(&b);
        }
        static const char nul[] = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "1\r\nx\r\n0\r\nT: \0\r\n\r\n";
        cr_assert_eq(parse_x(HTTP_REQUEST, false, nul, sizeof(nul) - 1, NULL), -EBADMSG);

        /* data longer than its size is refused at the first byte too many */
        const char *s = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxy";
        http_parser_t p;
        http_msg_t m;
        http_parser_init(&p, HTTP_REQUEST);
        cr_assert_eq(http_parse(&p, (const uint8_t *) s, strlen(s) - 1, &m), 0);
        cr_assert_eq(http_parse(&p, (const uint8_t *) s, strlen(s), &m), -EBADMSG);
}

Test(http, chunked_overflowing_sizes) {
        static const char *const big[] = {
                "FFFFFFFFFFFFFFFFFFFFFFFF\r\n", "10001\r\n", "10000000000000000\r\n",
                "ffffffffffffffff;x\r\n",
        };
        assert_each_request("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", big, ELEMENTSOF(big), "", -EFBIG);
        /* leading zeros do not count against anything but the line length */
        cr_assert_eq(req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "00000000000000000000000000000001\r\nx\r\n0\r\n\r\n", NULL), 1);
}

Test(http, limit_chunk_line) {
        for (size_t extra = 0; extra < 2; extra++) {
                buf_t b = chunked_request();
                chunk_add(&b, 3, HTTP_CHUNK_LINE_MAX + extra);
                chunk_add(&b, 0, 3);
                buf_add(&b, "\r\n", 2);
                cr_assert_eq(req_buf(&b), extra ? -EFBIG : 1);
                buf_done(&b);
        }
}

Test(http, limit_chunked_body) {
        for (size_t extra = 0; extra < 2; extra++) {
                _cleanup_(http_msg_done) http_msg_t m = {};
                buf_t b = chunked_request();
                chunk_add(&b, 0x8000, 6);
                chunk_add(&b, 0x7ff0, 6);
                chunk_add(&b, 0x10 + extra, 4);
                chunk_add(&b, 0, 3);
                buf_add(&b, "\r\n", 2);
                int r = parse_x(HTTP_REQUEST, false, b.data, b.len, &m);
                cr_assert_eq(r, extra ? -EFBIG : 1);
                if (r == 1)
                        cr_assert_eq(m.body_len, HTTP_BODY_MAX);
                buf_done(&b);
        }
        /* rejected as soon as the size line arrives, before any data */
        http_parser_t p;
        http_msg_t m;
        const char *s = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n8000\r\n";
        http_parser_init(&p, HTTP_REQUEST);
        cr_assert_eq(http_parse(&p, (const uint8_t *) s, strlen(s), &m), 0);
        s = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n10001\r\n";
        http_parser_init(&p, HTTP_REQUEST);
        cr_assert_eq(http_parse(&p, (const uint8_t *) s, strlen(s), &m), -EFBIG);
}

Test(http, limit_chunked_wire) {
        /* 1000 one-byte chunks with padded size lines, and one more to reach exactly the limit */
        for (size_t extra = 0; extra < 2; extra++) {
                _cleanup_(http_msg_done) http_msg_t m = {};
                buf_t b = chunked_request();
                size_t head = b.len;
                for (int i = 0; i < 1000; i++)
                        chunk_add(&b, 1, HTTP_CHUNK_LINE_MAX);
                size_t left = HTTP_CHUNKED_WIRE_MAX - (b.len - head) - 3 /* "0\r\n" */;
                chunk_add(&b, 1, left - 3 + extra);
                chunk_add(&b, 0, 3);
                if (!extra)
                        cr_assert_eq(b.len - head, HTTP_CHUNKED_WIRE_MAX);
                buf_add(&b, "\r\n", 2);
                cr_assert_eq(parse_x(HTTP_REQUEST, false, b.data, b.len, &m), extra ? -EFBIG : 1);
                if (!extra)
                        cr_assert_eq(m.body_len, 1001);
                buf_done(&b);
        }
}

Test(http, limit_chunked_wire_early) {
        /* a chunk whose data would cross the limit is refused with its size line */
        for (size_t extra = 0; extra < 2; extra++) {
                http_parser_t p;
                http_msg_t m;
                buf_t b = chunked_request();
                size_t head = b.len;
                for (int i = 0; i < 1000; i++)
                        chunk_add(&b, 1, HTTP_CHUNK_LINE_MAX);
                /* "xx\r\n" + data + CRLF ends exactly at the limit, or one past */
                size_t size = HTTP_CHUNKED_WIRE_MAX - (b.len - head) - 4 - 2 + extra;
                buf_printf(&b, "%zx\r\n", size);
                http_parser_init(&p, HTTP_REQUEST);
                cr_assert_eq(http_parse(&p, (uint8_t *) b.data, b.len, &m), extra ? -EFBIG : 0);
                buf_done(&b);
        }
}

Test(http, limit_trailers) {
        for (size_t extra = 0; extra < 2; extra++) {
                buf_t b = chunked_request();
                buf_printf(&b, "0\r\n");
                size_t start = b.len;
                buf_printf(&b, "X-Pad: ");
                buf_fill(&b, 'p', HTTP_HEAD_MAX - (b.len - start) - 4 + extra);
                buf_add(&b, "\r\n\r\n", 4);
                if (!extra)
                        cr_assert_eq(b.len - start, HTTP_HEAD_MAX);
                cr_assert_eq(req_buf(&b), extra ? -EMSGSIZE : 1);
                buf_done(&b);
        }
}

/* A request whose head is exactly head_len bytes. */

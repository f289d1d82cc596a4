/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <time.h>

#include "proto/http.h"
#include "tests/unit/http-input.h"
#include "util/util.h"

static void msg_assert_equal(const http_msg_t *a, const http_msg_t *b) {
        cr_assert_eq(a->kind, b->kind);
        cr_assert_str_eq(a->method, b->method);
        cr_assert_str_eq(a->target, b->target);
        cr_assert_eq(a->status, b->status);
        cr_assert_eq(a->n_headers, b->n_headers);
        for (size_t i = 0; i < a->n_headers; i++) {
                cr_assert_str_eq(a->headers[i].name, b->headers[i].name);
                cr_assert_str_eq(a->headers[i].value, b->headers[i].value);
        }
        cr_assert_eq(a->body_len, b->body_len);
        cr_assert_eq(memcmp(a->body, b->body, a->body_len), 0);
}

/* Feeds data step bytes at a time; returns the first result that is not 0, or 0. */
static int feed(http_kind_t kind, bool head, const void *data, size_t len, size_t step,
                http_msg_t *ret) {
        http_parser_t p;
        size_t n = 0;
        int r;

        http_parser_init(&p, kind);
        p.is_head_request = head;
        do {
                n = MIN(len, n + step);
                r = http_parse(&p, data, n, ret);
                if (r != 0)
                        break;
        } while (n < len);
        if (r == 1 && n < len) {
                /* complete before the end: what follows is refused */
                http_msg_t unused;
                http_msg_done(ret);
                r = http_parse(&p, data, len, &unused);
                cr_assert_eq(r, -EBADMSG);
                n = len;
        }
        /* what EOF would say agrees with what the parser said */
        int e = http_parse_eof(&p, n);
        if (r == 1)
                cr_assert_eq(e, 0);
        else if (r == 0)
                cr_assert_eq(e, -EPIPE);
        else
                cr_assert_eq(e, r);
        return r;
}

/* Parses all at once, byte by byte and 7 bytes at a time: the three must agree. */
static int parse_x(http_kind_t kind, bool head, const void *data, size_t len, http_msg_t *ret) {
        http_msg_t a = {}, b = {}, c = {};
        int r = feed(kind, head, data, len, len ? len : 1, &a);
        cr_assert_eq(feed(kind, head, data, len, 1, &b), r);
        cr_assert_eq(feed(kind, head, data, len, 7, &c), r);
        if (r == 1) {
                msg_assert_equal(&a, &b);
                msg_assert_equal(&a, &c);
                cr_assert_not_null(a.body);
                cr_assert_eq(a.body[a.body_len], 0);
        }
        http_msg_done(&b);
        http_msg_done(&c);
        if (ret)
                *ret = a;
        else
                http_msg_done(&a);
        return r;
}

static int req(const char *s, http_msg_t *ret) {
        return parse_x(HTTP_REQUEST, false, s, strlen(s), ret);
}

static int resp(const char *s, http_msg_t *ret) {
        return parse_x(HTTP_RESPONSE, false, s, strlen(s), ret);
}

static int req_buf(const buf_t *b) {
        return parse_x(HTTP_REQUEST, false, b->data, b->len, NULL);
}

/* Every strict prefix of a valid message is "need more" and truncated at EOF. */
static void assert_prefixes_incomplete(http_kind_t kind, const char *s) {
        size_t len = strlen(s);
        for (size_t n = 0; n < len; n++) {
                http_parser_t p;
                http_msg_t m;
                http_parser_init(&p, kind);
                cr_assert_eq(http_parse(&p, (const uint8_t *) s, n, &m), 0, "prefix %zu", n);
                cr_assert_eq(http_parse_eof(&p, n), -EPIPE, "prefix %zu", n);
        }
}

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
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
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
        for (size_t i = 0; i < ELEMENTSOF(big); i++) {
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n%s", big[i]);
                cr_assert_eq(req_buf(&b), -EFBIG, "%s", big[i]);
                buf_done(&b);
        }
        /* leading zeros do not count against anything but the line length */
        cr_assert_eq(req("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "00000000000000000000000000000001\r\nx\r\n0\r\n\r\n", NULL), 1);
}

Test(http, limit_chunk_line) {
        for (size_t extra = 0; extra < 2; extra++) {
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
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
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
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
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
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
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
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
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
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
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                buf_t b = {};
                buf_printf(&b, "POST / HTTP/1.1\r\n%s\r\n\r\nabc", bad[i]);
                cr_assert_eq(req_buf(&b), -EBADMSG, "%s", bad[i]);
                buf_done(&b);
        }
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
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                buf_t b = {};
                buf_printf(&b, "GET / HTTP/1.1\r\n%s\r\n\r\n", bad[i]);
                cr_assert_eq(req_buf(&b), -EBADMSG, "%s", bad[i]);
                buf_done(&b);
        }
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

Test(http, truncated_at_every_prefix) {
        static const char *const reqs[] = {
                "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
                "POST /a HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
                "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;e\r\nab\r\n0\r\nT: 1\r\n\r\n",
        };
        static const char *const resps[] = {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
                "HTTP/1.1 204 No Content\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(reqs); i++) {
                assert_prefixes_incomplete(HTTP_REQUEST, reqs[i]);
                cr_assert_eq(req(reqs[i], NULL), 1);
        }
        for (size_t i = 0; i < ELEMENTSOF(resps); i++) {
                assert_prefixes_incomplete(HTTP_RESPONSE, resps[i]);
                cr_assert_eq(resp(resps[i], NULL), 1);
        }
}

Test(http, nothing_received) {
        http_parser_t p;
        http_msg_t m;
        http_parser_init(&p, HTTP_RESPONSE);
        cr_assert_eq(http_parse_eof(&p, 0), -EPIPE);
        cr_assert_eq(http_parse(&p, NULL, 0, &m), 0);
        cr_assert_eq(http_parse_eof(&p, 0), -EPIPE);
}

Test(http, api_misuse) {
        http_parser_t p;
        http_msg_t m;
        const uint8_t *s = (const uint8_t *) "GET / HTTP/1.1\r\n";
        http_parser_init(&p, HTTP_REQUEST);
        cr_assert_eq(http_parse(&p, s, 10, &m), 0);
        cr_assert_eq(http_parse(&p, s, 9, &m), -EINVAL);
        cr_assert_eq(http_parse(&p, NULL, 3, &m), -EINVAL);
        cr_assert_eq(http_parse(&p, s, 16, NULL), -EINVAL);
        cr_assert_eq(http_parse(&p, s, 16, &m), 0);
        cr_assert_eq(http_parse_eof(NULL, 0), -EINVAL);
}

Test(http, ret_untouched_unless_complete) {
        http_parser_t p;
        http_msg_t m, pattern;
        memset(&pattern, 0xa5, sizeof(pattern));
        m = pattern;
        const uint8_t *s = (const uint8_t *) "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcX";
        http_parser_init(&p, HTTP_REQUEST);
        cr_assert_eq(http_parse(&p, s, 40, &m), 0);
        cr_assert_eq(memcmp(&m, &pattern, sizeof(m)), 0);
        cr_assert_eq(http_parse(&p, s, 42, &m), -EBADMSG);
        cr_assert_eq(memcmp(&m, &pattern, sizeof(m)), 0);
}

/* A full-size message fed byte by byte parses to the same message. How long it takes (linear,
 * not quadratic) is a benchmark, tests/bench/bench-http.c: the suite has no timed assertions. */
Test(http, incremental_full_size) {
        for (int chunked = 0; chunked < 2; chunked++) {
                _cleanup_(http_msg_done) http_msg_t m = {};
                buf_t b = {};
                full_size_request(&b, chunked);
                cr_assert_eq(feed(HTTP_REQUEST, false, b.data, b.len, 1, &m), 1);
                cr_assert_eq(m.body_len, HTTP_BODY_MAX);
                buf_done(&b);
        }
}

Test(http, header_lookup) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(req("GET / HTTP/1.1\r\nX-M2M-RI: one\r\nx-m2m-ri: two\r\nAccept: application/json\r\n\r\n", &m), 1);
        cr_assert_str_eq(http_msg_header(&m, "X-M2M-RI"), "one");
        cr_assert_str_eq(http_msg_header(&m, "x-M2m-rI"), "one");
        cr_assert_str_eq(http_msg_header(&m, "ACCEPT"), "application/json");
        cr_assert_null(http_msg_header(&m, "X-M2M"));
        cr_assert_null(http_msg_header(&m, "Content-Length"));
        cr_assert_null(http_msg_header(NULL, "Accept"));
        cr_assert_null(http_msg_header(&m, NULL));
}

Test(http, msg_done) {
        http_msg_t m = {};
        http_msg_done(NULL);
        http_msg_done(&m);
        cr_assert_eq(req("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nkey", &m), 1);
        cr_assert_not_null(m.body);
        http_msg_done(&m);
        cr_assert_null(m.body);
        cr_assert_null(m.head);
        cr_assert_eq(m.body_len, 0);
        cr_assert_eq(m.n_headers, 0);
        cr_assert_eq(m.method[0], 0);
        http_msg_done(&m); /* twice is fine */
}

Test(http, reasons) {
        static const struct { int status; const char *reason; } t[] = {
                { 200, "OK" }, { 201, "Created" }, { 400, "Bad Request" }, { 403, "Forbidden" },
                { 404, "Not Found" }, { 405, "Method Not Allowed" }, { 408, "Request Timeout" },
                { 413, "Content Too Large" }, { 431, "Request Header Fields Too Large" },
                { 500, "Internal Server Error" }, { 503, "Service Unavailable" },
                { 202, "Unknown" }, { 0, "Unknown" }, { -1, "Unknown" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                cr_assert_str_eq(http_reason(t[i].status), t[i].reason);
}

Test(http, format_request_round_trip) {
        const char *const headers[] = {
                "Host", "mef.example.net", "X-M2M-Origin", "urn:dev:ops:0004A3-MNGW-000123",
                "X-M2M-RI", "r-1", "X-M2M-RVI", "3", "Accept", "application/json",
                "Content-Type", "application/json", "X-Empty", "", NULL,
        };
        static const char body[] = "{\"msce:enrolReq\": {\"nodeID\": \"n\"}}";
        _cleanup_free_ uint8_t *out = NULL;
        size_t len;
        _cleanup_(http_msg_done) http_msg_t m = {};

        cr_assert_eq(http_format_request("POST", "/msce/enrolments", headers, body, strlen(body), &out, &len), 0);
        cr_assert_eq(out[len], 0);
        const char *start = "POST /msce/enrolments HTTP/1.1\r\nHost: mef.example.net\r\n";
        cr_assert_eq(strncmp((char *) out, start, strlen(start)), 0);
        cr_assert_eq(parse_x(HTTP_REQUEST, false, out, len, &m), 1);
        cr_assert_str_eq(m.method, "POST");
        cr_assert_str_eq(m.target, "/msce/enrolments");
        cr_assert_eq(m.n_headers, 8);
        for (size_t i = 0; headers[i]; i += 2) {
                cr_assert_str_eq(m.headers[i / 2].name, headers[i]);
                cr_assert_str_eq(m.headers[i / 2].value, headers[i + 1]);
        }
        char cl[32];
        snprintf(cl, sizeof(cl), "%zu", strlen(body));
        cr_assert_str_eq(http_msg_header(&m, "Content-Length"), cl);
        cr_assert_eq(m.body_len, strlen(body));
        cr_assert_str_eq((char *) m.body, body);
}

Test(http, format_request_without_body) {
        _cleanup_free_ uint8_t *out = NULL;
        size_t len;
        _cleanup_(http_msg_done) http_msg_t m = {};
        cr_assert_eq(http_format_request("GET", "/msce/enrolments/3f2a@mef", NULL, NULL, 0, &out, &len), 0);
        cr_assert_str_eq((char *) out, "GET /msce/enrolments/3f2a@mef HTTP/1.1\r\n\r\n");
        cr_assert_eq(len, strlen((char *) out));
        cr_assert_eq(parse_x(HTTP_REQUEST, false, out, len, &m), 1);
        cr_assert_eq(m.n_headers, 0);
        cr_assert_eq(m.body_len, 0);
}

Test(http, format_response_round_trip) {
        static const int statuses[] = { 200, 201, 400, 403, 404, 500, 503, 299, 204, 304, 100 };
        for (size_t i = 0; i < ELEMENTSOF(statuses); i++) {
                int st = statuses[i];
                bool no_body = st < 200 || st == 204 || st == 304;
                const char *const headers[] = { "X-M2M-RSC", "2000", "Retry-After", "30", NULL };
                const char *body = no_body ? "" : i % 2 ? "" : "{\"m2m:dbg\": \"x\"}";
                _cleanup_free_ uint8_t *out = NULL;
                size_t len;
                _cleanup_(http_msg_done) http_msg_t m = {};

                cr_assert_eq(http_format_response(st, headers, body, strlen(body), &out, &len), 0);
                cr_assert_eq(parse_x(HTTP_RESPONSE, false, out, len, &m), 1, "%d", st);
                cr_assert_eq(m.status, st);
                cr_assert_str_eq(http_msg_header(&m, "x-m2m-rsc"), "2000");
                cr_assert_str_eq(http_msg_header(&m, "retry-after"), "30");
                cr_assert_eq(m.body_len, strlen(body));
                cr_assert_str_eq((char *) m.body, body);
                if (no_body)
                        cr_assert_null(http_msg_header(&m, "Content-Length"));
                else
                        cr_assert_not_null(http_msg_header(&m, "Content-Length"));
                char line[64];
                snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", st, http_reason(st));
                cr_assert_eq(strncmp((char *) out, line, strlen(line)), 0);
        }
}

Test(http, format_at_limits) {
        /* the formatters refuse exactly what the parser would */
        _cleanup_free_ char *target = malloc(HTTP_TARGET_MAX + 2);
        _cleanup_free_ char *big = malloc(HTTP_BODY_MAX + 1);
        uint8_t *out = NULL;
        size_t len;
        cr_assert_not_null(target);
        cr_assert_not_null(big);
        memset(big, 'b', HTTP_BODY_MAX + 1);
        target[0] = '/';
        memset(target + 1, 't', HTTP_TARGET_MAX);
        target[HTTP_TARGET_MAX] = 0;
        cr_assert_eq(http_format_request("GET", target, NULL, big, HTTP_BODY_MAX, &out, &len), 0);
        cr_assert_eq(parse_x(HTTP_REQUEST, false, out, len, NULL), 1);
        free(out);
        target[HTTP_TARGET_MAX] = 't';
        target[HTTP_TARGET_MAX + 1] = 0;
        cr_assert_eq(http_format_request("GET", target, NULL, NULL, 0, &out, &len), -EMSGSIZE);
        cr_assert_eq(http_format_response(200, NULL, big, HTTP_BODY_MAX + 1, &out, &len), -EMSGSIZE);

        /* 63 headers and Content-Length is the most */
        const char *headers[2 * HTTP_HEADERS_MAX + 3];
        for (size_t i = 0; i < HTTP_HEADERS_MAX; i++) {
                headers[2 * i] = "X";
                headers[2 * i + 1] = "y";
        }
        headers[2 * (HTTP_HEADERS_MAX - 1)] = NULL;
        cr_assert_eq(http_format_response(200, headers, "", 0, &out, &len), 0);
        cr_assert_eq(parse_x(HTTP_RESPONSE, false, out, len, NULL), 1);
        free(out);
        headers[2 * (HTTP_HEADERS_MAX - 1)] = "X";
        headers[2 * HTTP_HEADERS_MAX] = NULL;
        cr_assert_eq(http_format_response(200, headers, "", 0, &out, &len), -EMSGSIZE);

        /* head size: "GET / HTTP/1.1\r\n" + "X: <pad>\r\n" + "\r\n" */
        for (size_t extra = 0; extra < 2; extra++) {
                size_t pad = HTTP_HEAD_MAX - 16 - 5 - 2 + extra;
                _cleanup_free_ char *v = malloc(pad + 1);
                cr_assert_not_null(v);
                memset(v, 'v', pad);
                v[pad] = 0;
                const char *const h[] = { "X", v, NULL };
                int r = http_format_request("GET", "/", h, NULL, 0, &out, &len);
                cr_assert_eq(r, extra ? -EMSGSIZE : 0);
                if (r == 0) {
                        cr_assert_eq(len, HTTP_HEAD_MAX);
                        cr_assert_eq(parse_x(HTTP_REQUEST, false, out, len, NULL), 1);
                        free(out);
                }
        }
}

Test(http, format_refuses_injection) {
        uint8_t *out = (uint8_t *) "untouched";
        size_t len = 7;
        static const char *const bad_headers[][3] = {
                { "X", "a\r\nInjected: 1", NULL }, { "X", "a\nb", NULL }, { "X", "a\rb", NULL },
                { "X\r\nY", "a", NULL }, { "X:Y", "a", NULL }, { "X Y", "a", NULL },
                { "", "a", NULL }, { "X", "a\x01", NULL }, { "X", "\x7f", NULL },
                { "content-length", "3", NULL }, { "Transfer-Encoding", "chunked", NULL },
                { "X", NULL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_headers); i++) {
                cr_assert_eq(http_format_request("GET", "/", bad_headers[i], NULL, 0, &out, &len), -EINVAL, "%zu", i);
                cr_assert_eq(http_format_response(200, bad_headers[i], NULL, 0, &out, &len), -EINVAL, "%zu", i);
        }
        static const char *const bad_methods[] = { "GET\r\n", "G T", "get", "", "TOOLONGX", "GET\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad_methods); i++)
                cr_assert_eq(http_format_request(bad_methods[i], "/", NULL, NULL, 0, &out, &len), -EINVAL);
        static const char *const bad_targets[] = {
                "/a\r\nX: y", "/a b", "/a\n", "a", "", "/\x80", "*", "/a\tb",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_targets); i++)
                cr_assert_eq(http_format_request("GET", bad_targets[i], NULL, NULL, 0, &out, &len), -EINVAL);
        cr_assert_eq(http_format_request(NULL, "/", NULL, NULL, 0, &out, &len), -EINVAL);
        cr_assert_eq(http_format_request("GET", NULL, NULL, NULL, 0, &out, &len), -EINVAL);
        cr_assert_eq(http_format_request("GET", "/", NULL, NULL, 3, &out, &len), -EINVAL);
        cr_assert_eq(http_format_response(99, NULL, NULL, 0, &out, &len), -EINVAL);
        cr_assert_eq(http_format_response(600, NULL, NULL, 0, &out, &len), -EINVAL);
        cr_assert_eq(http_format_response(204, NULL, "x", 1, &out, &len), -EINVAL);
        cr_assert_eq(http_format_response(304, NULL, "x", 1, &out, &len), -EINVAL);
        /* outputs untouched on failure */
        cr_assert_str_eq((char *) out, "untouched");
        cr_assert_eq(len, 7);
}

/* SPDX-License-Identifier: MIT */
/* HTTP: truncation, the API, header lookup, reasons and the formatters. */
#include "tests/unit/http-fixture.h"

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
                { 409, "Conflict" }, { 413, "Content Too Large" }, { 415, "Unsupported Media Type" },
                { 422, "Unprocessable Content" }, { 429, "Too Many Requests" }, { 431, "Request Header Fields Too Large" },
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

/* SPDX-License-Identifier: MIT */
/* The HTTP parser tests' helpers (http-fixture.h). */
#include "tests/unit/http-fixture.h"

void msg_assert_equal(const http_msg_t *a, const http_msg_t *b) {
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
int feed(http_kind_t kind, bool head, const void *data, size_t len, size_t step,
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
int parse_x(http_kind_t kind, bool head, const void *data, size_t len, http_msg_t *ret) {
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

int req(const char *s, http_msg_t *ret) {
        return parse_x(HTTP_REQUEST, false, s, strlen(s), ret);
}

int resp(const char *s, http_msg_t *ret) {
        return parse_x(HTTP_RESPONSE, false, s, strlen(s), ret);
}

int req_buf(const buf_t *b) {
        return parse_x(HTTP_REQUEST, false, b->data, b->len, NULL);
}

/* Every strict prefix of a valid message is "need more" and truncated at EOF. */
void assert_prefixes_incomplete(http_kind_t kind, const char *s) {
        size_t len = strlen(s);
        for (size_t n = 0; n < len; n++) {
                http_parser_t p;
                http_msg_t m;
                http_parser_init(&p, kind);
                cr_assert_eq(http_parse(&p, (const uint8_t *) s, n, &m), 0, "prefix %zu", n);
                cr_assert_eq(http_parse_eof(&p, n), -EPIPE, "prefix %zu", n);
        }
}

void assert_each_request(const char *head, const char *const *mid, size_t n, const char *tail, int want) {
        for (size_t i = 0; i < n; i++) {
                buf_t b = {};
                buf_printf(&b, "%s%s%s", head, mid[i], tail);
                cr_assert_eq(req_buf(&b), want, "%s", mid[i]);
                buf_done(&b);
        }
}

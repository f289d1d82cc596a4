/* SPDX-License-Identifier: MIT */
/* Fuzzes http_parse() on requests (fuzz-http-response.c includes this file for responses).
 * The input is fed all at once, in two pieces split where its first byte says, and byte by
 * byte when short: all must agree, and so must http_parse_eof(). A parsed message must
 * keep the documented limits, and formatting it again must give it back. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz-util.h"
#include "proto/http.h"
#include "util/macro.h"

#ifndef FUZZ_KIND
#define FUZZ_KIND HTTP_REQUEST
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void msg_check(const http_msg_t *m, http_kind_t kind) {
        check(m->kind == kind);
        check(m->body && m->body[m->body_len] == 0 && m->body_len <= HTTP_BODY_MAX);
        check(m->n_headers <= HTTP_HEADERS_MAX);
        if (kind == HTTP_REQUEST)
                check(m->method[0] && m->target[0] == '/' && strlen(m->target) <= HTTP_TARGET_MAX);
        else
                check(m->status >= 100 && m->status <= 599);
        for (size_t i = 0; i < m->n_headers; i++)
                check(m->headers[i].name[0] && !strpbrk(m->headers[i].value, "\r\n"));
}

static bool is_framing(const char *name) {
        return strcasecmp(name, "Content-Length") == 0 || strcasecmp(name, "Transfer-Encoding") == 0;
}

/* Equal fields; framing headers are compared only when with_framing. */
static bool msg_equal(const http_msg_t *a, const http_msg_t *b, bool with_framing) {
        size_t i = 0, j = 0;

        if (a->kind != b->kind || strcmp(a->method, b->method) != 0 ||
            strcmp(a->target, b->target) != 0 || a->status != b->status ||
            a->body_len != b->body_len || memcmp(a->body, b->body, a->body_len) != 0)
                return false;
        for (;;) {
                while (!with_framing && i < a->n_headers && is_framing(a->headers[i].name))
                        i++;
                while (!with_framing && j < b->n_headers && is_framing(b->headers[j].name))
                        j++;
                if (i == a->n_headers || j == b->n_headers)
                        return i == a->n_headers && j == b->n_headers;
                if (strcmp(a->headers[i].name, b->headers[j].name) != 0 ||
                    strcmp(a->headers[i].value, b->headers[j].value) != 0)
                        return false;
                i++, j++;
        }
}

/* What EOF says must agree with what the parser said. */
static void eof_check(const http_parser_t *p, size_t len, int r) {
        int e = http_parse_eof(p, len);
        check(r == 1 ? e == 0 : r == 0 ? e == -EPIPE : e == r);
}

/* Feeds the input in pieces: the first ends at first, each next one step bytes further (the
 * last at size); each call sees an exact-size copy so that ASan catches reads past what was
 * given. */
static int feed(bool head, const uint8_t *data, size_t size, size_t first, size_t step, http_msg_t *ret) {
        http_parser_t p;
        size_t n = MIN(size, first);
        int r;

        http_parser_init(&p, FUZZ_KIND);
        p.is_head_request = head;
        for (;;) {
                uint8_t *copy = malloc(n ? n : 1);
                if (!copy)
                        abort();
                memcpy(copy, data, n);
                r = http_parse(&p, copy, n, ret);
                free(copy);
                if (r != 0 || n == size)
                        break;
                n = MIN(size, n + step);
        }
        if (r == 1 && n < size) {
                http_msg_t unused;
                http_msg_done(ret);
                r = http_parse(&p, data, size, &unused);
                check(r == -EBADMSG); /* one message per connection */
        }
        if (r == 1)
                msg_check(ret, FUZZ_KIND);
        check(r <= 1 && r != -EALREADY);
        eof_check(&p, size, r);
        return r;
}

/* Formats the message again, without its framing headers, and parses that. */
static void round_trip(const http_msg_t *m) {
        const char *headers[2 * HTTP_HEADERS_MAX + 1];
        size_t n = 0, len;
        uint8_t *out;
        http_msg_t again = {};
        int r;

        for (size_t i = 0; i < m->n_headers; i++)
                if (!is_framing(m->headers[i].name)) {
                        headers[n++] = m->headers[i].name;
                        headers[n++] = m->headers[i].value;
                }
        headers[n] = NULL;
        if (m->kind == HTTP_REQUEST)
                r = http_format_request(m->method, m->target, headers, m->body, m->body_len, &out, &len);
        else
                r = http_format_response(m->status, headers, m->body, m->body_len, &out, &len);
        if (r == -EMSGSIZE)
                return; /* "a:b" grows to "a: b", and Content-Length may be one header too many */
        check(r == 0);
        check(feed(false, out, len, len, len, &again) == 1);
        check(msg_equal(m, &again, false));
        http_msg_done(&again);
        free(out);
}

static void one(bool head, const uint8_t *data, size_t size) {
        http_msg_t whole = {}, split = {}, bytes = {};
        int r = feed(head, data, size, size, size, &whole);

        /* two pieces, the first ending where the first byte says */
        check(feed(head, data, size, size ? data[0] % (size + 1) : 0, size, &split) == r);
        if (size <= 512)
                check(feed(head, data, size, 1, 1, &bytes) == r);
        if (r == 1) {
                check(msg_equal(&whole, &split, true));
                if (size <= 512)
                        check(msg_equal(&whole, &bytes, true));
                round_trip(&whole);
        }
        http_msg_done(&whole);
        http_msg_done(&split);
        http_msg_done(&bytes);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        one(false, data, size);
        if (FUZZ_KIND == HTTP_RESPONSE)
                one(true, data, size);
        return 0;
}

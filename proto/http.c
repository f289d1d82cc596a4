/* SPDX-License-Identifier: MIT */
/* HTTP/1.1 framing (RFC 9112, strict) with the limits of protocol section 6.
 *
 * The parser walks the input once, front to back, whatever the feeding pattern: every scan
 * resumes where the previous call stopped (scan_from), and a line is checked once, when its
 * LF arrives. So a check only ever depends on the bytes before the position where it fires,
 * and feeding byte by byte or all at once gives the same result. The message itself is built
 * in one more pass when it is complete (the parser owns no memory, so the body cannot grow
 * in it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/http.h"
#include "util/hex.h"
#include "util/macro.h"

enum {
        STATE_HEAD,
        STATE_BODY,        /* Content-Length */
        STATE_CHUNK_LINE,
        STATE_CHUNK_DATA,
        STATE_TRAILERS,
        STATE_DONE,
        STATE_FAILED,
};

/* RFC 9110 5.6.2 tchar */
static bool is_tchar(unsigned char c) {
        if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
                return true;
        return c && strchr("!#$%&'*+-.^_`|~", c);
}

/* How many bytes from s on, at most n, ok() accepts. */
static size_t span(const char *s, size_t n, bool (*ok)(unsigned char)) {
        size_t i = 0;
        while (i < n && ok((unsigned char) s[i]))
                i++;
        return i;
}

static bool is_token(const char *s, size_t n) {
        return n > 0 && span(s, n, is_tchar) == n;
}

/* A byte that may appear in a line: field-value and reason-phrase characters (HT, SP, VCHAR,
 * obs-text). CR and LF are the scanner's business. */
static bool is_text(unsigned char c) {
        return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool is_ows(unsigned char c) {
        return c == ' ' || c == '\t';
}

static bool is_upper(unsigned char c) {
        return c >= 'A' && c <= 'Z';
}

static bool is_method(const char *s, size_t n) {
        return n > 0 && n <= 7 && span(s, n, is_upper) == n;
}

/* origin-form: '/' then visible ASCII only. */
static bool is_target_char(unsigned char c) {
        return c > 0x20 && c < 0x7f;
}

/* "METHOD SP /target SP HTTP/1.1" (without CRLF). */
static int request_line_parse(const char *s, size_t n, size_t *ret_method_len,
                              size_t *ret_target_len) {
        static const char version[] = " HTTP/1.1";
        const size_t vlen = sizeof(version) - 1;
        const char *sp = memchr(s, ' ', n);

        if (!sp || !is_method(s, sp - s))
                return -EBADMSG;
        size_t m = sp - s, t = m + 1, e = t + span(s + t, n - t, is_target_char);
        if (e == t || s[t] != '/')
                return -EBADMSG;
        if (e - t > HTTP_TARGET_MAX)
                return -EMSGSIZE;
        if (n - e != vlen || memcmp(s + e, version, vlen) != 0)
                return -EBADMSG;
        *ret_method_len = m;
        *ret_target_len = e - t;
        return 0;
}

/* "HTTP/1.1 SP 3DIGIT SP reason" (HTTP/1.0 too; reason may be empty). */
static int status_line_parse(const char *s, size_t n, int *ret_status) {
        if (n < 13 || (memcmp(s, "HTTP/1.1 ", 9) != 0 && memcmp(s, "HTTP/1.0 ", 9) != 0))
                return -EBADMSG;
        if (s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
            s[11] > '9' || s[12] != ' ')
                return -EBADMSG;
        /* the reason phrase is anything line_scan() let through */
        *ret_status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
        return 0;
}

/* "name: value" (without CRLF): token name, colon right after it, value trimmed of OWS.
 * A line starting with whitespace is obs-fold (or junk before a name): refused. */
static int header_split(const char *s, size_t n, size_t *ret_name_len, size_t *ret_value_off,
                        size_t *ret_value_len) {
        if (n == 0 || is_ows(s[0]))
                return -EBADMSG;
        const char *colon = memchr(s, ':', n);
        if (!colon || !is_token(s, colon - s))
                return -EBADMSG;
        size_t b = colon - s + 1, e = n;
        b += span(s + b, e - b, is_ows);
        while (e > b && is_ows(s[e - 1]))
                e--;
        /* line_scan() already refused control characters in the value */
        *ret_name_len = colon - s;
        *ret_value_off = b;
        *ret_value_len = e - b;
        return 0;
}

static bool name_is(const char *s, size_t n, const char *name) {
        return strlen(name) == n && strncasecmp(s, name, n) == 0;
}

/* Content-Length: 1*DIGIT, saturating at SIZE_MAX (it is only compared then). */
static int content_length_parse(const char *s, size_t n, size_t *ret) {
        size_t v = 0;

        if (n == 0)
                return -EBADMSG;
        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return -EBADMSG;
                size_t d = s[i] - '0';
                v = v > (SIZE_MAX - d) / 10 ? SIZE_MAX : v * 10 + d;
        }
        *ret = v;
        return 0;
}

/* chunk-size [ BWS ";" anything ] (without CRLF). The size is bounded as its digits come, so
 * it cannot overflow: more than room - body_seen is -EFBIG. */
static int chunk_line_parse(const char *s, size_t n, size_t room, size_t *ret_size) {
        size_t i = 0, v = 0;

        for (; i < n && hex_digit(s[i]) >= 0; i++) {
                v = v * 16 + (size_t) hex_digit(s[i]);
                if (v > room)
                        return -EFBIG;
        }
        if (i == 0)
                return -EBADMSG;
        i += span(s + i, n - i, is_ows);
        if (i < n && s[i] != ';')
                return -EBADMSG;
        /* extensions are ignored; the scanner already refused control characters */
        *ret_size = v;
        return 0;
}

/* Finds the end of the line that starts at p->line_start, scanning on from p->scan_from
 * and not past limit (the line's LF must sit before it). 1 with *ret_end just past the LF,
 * 0 when more input is needed, -EMSGSIZE when the limit is hit, -EBADMSG on a bare CR or LF,
 * NUL or another control character but HT. */
static int line_scan(http_parser_t *p, const uint8_t *buf, size_t len, size_t limit,
                     size_t *ret_end) {
        size_t end = MIN(len, limit);

        for (size_t i = p->scan_from; i < end; i++) {
                unsigned char c = buf[i];
                bool after_cr = i > p->line_start && buf[i - 1] == '\r';

                if (c == '\n') {
                        if (!after_cr)
                                return -EBADMSG;
                        p->scan_from = i + 1;
                        *ret_end = i + 1;
                        return 1;
                }
                if (after_cr)
                        return -EBADMSG;
                if (!is_text(c) && c != '\r')
                        return -EBADMSG;
        }
        p->scan_from = MAX(p->scan_from, end);
        return len >= limit ? -EMSGSIZE : 0;
}

static int head_line(http_parser_t *p, const char *s, size_t n) {
        size_t name_len, off, vlen;
        int r;

        if (p->n_lines == 0) {
                if (p->kind == HTTP_REQUEST) /* its lengths are for msg_build(), unused here */
                        return request_line_parse(s, n, &name_len, &vlen);
                int status;
                r = status_line_parse(s, n, &status);
                if (r < 0)
                        return r;
                p->no_body = p->is_head_request || status < 200 || status == 204 || status == 304;
                return 0;
        }

        r = header_split(s, n, &name_len, &off, &vlen);
        if (r < 0)
                return r;
        if (p->n_lines > HTTP_HEADERS_MAX)
                return -EMSGSIZE;

        if (name_is(s, name_len, "Content-Length")) {
                size_t v;
                r = content_length_parse(s + off, vlen, &v);
                if (r < 0)
                        return r;
                if (p->chunked || (p->has_content_length && v != p->content_length))
                        return -EBADMSG;
                if (!p->no_body && v > HTTP_BODY_MAX)
                        return -EFBIG;
                p->has_content_length = true;
                p->content_length = v;
        } else if (name_is(s, name_len, "Transfer-Encoding")) {
                if (p->has_content_length || p->chunked || !name_is(s + off, vlen, "chunked"))
                        return -EBADMSG;
                p->chunked = true;
        }
        return 0;
}

/* The blank line ended the head at p->head_len: pick the body framing. */
static int head_end(http_parser_t *p) {
        size_t at = p->head_len;

        p->line_start = p->scan_from = at;
        if (p->kind == HTTP_RESPONSE && p->no_body) {
                p->msg_len = at;
                p->state = STATE_DONE;
        } else if (p->chunked)
                p->state = STATE_CHUNK_LINE;
        else if (p->has_content_length)
                p->state = STATE_BODY;
        else if (p->kind == HTTP_REQUEST) {
                p->msg_len = at;
                p->state = STATE_DONE;
        } else
                return -EBADMSG; /* a response must say where it ends */
        return 0;
}

static int advance(http_parser_t *p, const uint8_t *buf, size_t len) {
        const char *s = (const char *) buf;
        size_t end, size, name_len, off, vlen;
        int r;

        for (;;)
                switch (p->state) {

                case STATE_HEAD:
                        r = line_scan(p, buf, len, HTTP_HEAD_MAX, &end);
                        if (r <= 0)
                                return r;
                        if (end - p->line_start == 2 && p->n_lines > 0) {
                                p->head_len = end;
                                r = head_end(p);
                        } else
                                r = head_line(p, s + p->line_start, end - p->line_start - 2);
                        if (r < 0)
                                return r;
                        p->n_lines++;
                        if (p->state == STATE_HEAD)
                                p->line_start = end;
                        break;

                case STATE_BODY:
                        if (len - p->head_len < p->content_length)
                                return 0;
                        p->msg_len = p->head_len + p->content_length;
                        p->state = STATE_DONE;
                        break;

                case STATE_CHUNK_LINE:
                        r = line_scan(p, buf, len,
                                      MIN(p->line_start + HTTP_CHUNK_LINE_MAX,
                                          p->head_len + HTTP_CHUNKED_WIRE_MAX),
                                      &end);
                        if (r == -EMSGSIZE)
                                return -EFBIG; /* body framing: the size line or the wire limit */
                        if (r <= 0)
                                return r;
                        r = chunk_line_parse(s + p->line_start, end - p->line_start - 2,
                                             HTTP_BODY_MAX - p->body_seen, &size);
                        if (r < 0)
                                return r;
                        if (size == 0) {
                                p->trailer_start = p->line_start = end;
                                p->state = STATE_TRAILERS;
                                break;
                        }
                        /* the data and its CRLF must fit in the chunked wire limit */
                        if (end + size + 2 > p->head_len + HTTP_CHUNKED_WIRE_MAX)
                                return -EFBIG;
                        p->body_seen += size;
                        p->chunk_end = end + size;
                        p->state = STATE_CHUNK_DATA;
                        break;

                case STATE_CHUNK_DATA:
                        if (len > p->chunk_end && buf[p->chunk_end] != '\r')
                                return -EBADMSG;
                        if (len < p->chunk_end + 2)
                                return 0;
                        if (buf[p->chunk_end + 1] != '\n')
                                return -EBADMSG;
                        p->line_start = p->scan_from = p->chunk_end + 2;
                        p->state = STATE_CHUNK_LINE;
                        break;

                case STATE_TRAILERS:
                        r = line_scan(p, buf, len, p->trailer_start + HTTP_HEAD_MAX, &end);
                        if (r <= 0)
                                return r;
                        if (end - p->line_start == 2) {
                                p->msg_len = end;
                                p->state = STATE_DONE;
                                break;
                        }
                        r = header_split(s + p->line_start, end - p->line_start - 2, &name_len, &off, &vlen);
                        if (r < 0)
                                return r;
                        p->line_start = end;
                        break;

                case STATE_DONE:
                        return 1;

                default:
                        return -EINVAL;
                }
}

/* Copies the body of a complete chunked message: the chunk lines were checked already. */
static void chunks_copy(const http_parser_t *p, const uint8_t *buf, uint8_t *out) {
        const char *s = (const char *) buf;
        size_t at = p->head_len, n = 0;

        for (;;) {
                size_t size = 0;
                for (; hex_digit(s[at]) >= 0; at++)
                        size = size * 16 + (size_t) hex_digit(s[at]);
                at = (const uint8_t *) memchr(buf + at, '\n', p->msg_len - at) - buf + 1;
                if (size == 0)
                        break;
                memcpy(out + n, buf + at, size);
                n += size;
                at += size + 2;
        }
}

static int msg_build(const http_parser_t *p, const uint8_t *buf, http_msg_t *ret) {
        _cleanup_free_ char *head = NULL;
        size_t body_len = 0, at = 0, name_len, off, vlen;
        uint8_t *body;

        head = malloc(p->head_len + 1);
        if (!head)
                return -ENOMEM;
        memcpy(head, buf, p->head_len);
        head[p->head_len] = 0;

        if (!(p->kind == HTTP_RESPONSE && p->no_body))
                body_len = p->chunked ? p->body_seen : p->has_content_length ? p->content_length : 0;
        body = malloc(body_len + 1);
        if (!body)
                return -ENOMEM;
        if (p->chunked && body_len > 0)
                chunks_copy(p, buf, body);
        else
                memcpy(body, buf + p->head_len, body_len);
        body[body_len] = 0;

        /* All lines were checked as they arrived: the parsers cannot fail here. */
        *ret = (http_msg_t) {
                .kind = p->kind,
                .body = body,
                .body_len = body_len,
        };
        for (;;) {
                char *line = head + at, *cr = strchr(line, '\r');
                size_t n = cr - line;

                if (n == 0)
                        break;
                *cr = 0;
                if (at == 0 && p->kind == HTTP_REQUEST) {
                        size_t m, t;
                        (void) request_line_parse(line, n, &m, &t);
                        memcpy(ret->method, line, m);
                        memcpy(ret->target, line + m + 1, t);
                } else if (at == 0)
                        (void) status_line_parse(line, n, &ret->status);
                else {
                        (void) header_split(line, n, &name_len, &off, &vlen);
                        line[name_len] = 0;
                        line[off + vlen] = 0;
                        ret->headers[ret->n_headers++] = (http_header_t) {
                                .name = line,
                                .value = line + off,
                        };
                }
                at += n + 2;
        }
        ret->head = TAKE_PTR(head);
        return 0;
}

void http_parser_init(http_parser_t *p, http_kind_t kind) {
        *p = (http_parser_t) {
                .kind = kind,
                .state = STATE_HEAD,
        };
}

static int fail(http_parser_t *p, int r) {
        p->state = STATE_FAILED;
        p->error = r;
        return r;
}

int http_parse(http_parser_t *p, const uint8_t *buf, size_t len, http_msg_t *ret) {
        int r;

        if (!p || (!buf && len > 0) || !ret)
                return -EINVAL;
        if (p->state == STATE_FAILED)
                return p->error;
        if (len < p->seen)
                return -EINVAL;
        if (p->state == STATE_DONE)
                return len > p->msg_len ? fail(p, -EBADMSG) : -EALREADY;
        p->seen = len;

        r = advance(p, buf, len);
        if (r <= 0)
                return r < 0 ? fail(p, r) : 0;
        if (len > p->msg_len)
                return fail(p, -EBADMSG); /* one message per connection */
        r = msg_build(p, buf, ret);
        if (r < 0)
                return fail(p, r);
        return 1;
}

int http_parse_eof(const http_parser_t *p, size_t len) {
        if (!p)
                return -EINVAL;
        if (p->state == STATE_FAILED)
                return p->error;
        if (p->state == STATE_DONE)
                return len == p->msg_len ? 0 : -EBADMSG;
        return -EPIPE;
}

void http_msg_done(http_msg_t *m) {
        if (!m)
                return;
        erase_free(m->body, m->body_len);
        free(m->head);
        erase(m, sizeof(*m));
}

const char *http_msg_header(const http_msg_t *m, const char *name) {
        if (!m || !name)
                return NULL;
        for (size_t i = 0; i < m->n_headers; i++)
                if (strcasecmp(m->headers[i].name, name) == 0)
                        return m->headers[i].value;
        return NULL;
}

const char *http_reason(int status) {
        switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 400: return "Bad Request";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 413: return "Content Too Large";
        case 415: return "Unsupported Media Type";
        case 422: return "Unprocessable Content";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable";
        default:  return "Unknown";
        }
}

/* Checks the caller's header pairs; adds their wire size ("name: value\r\n") to *size and
 * their count to *count. */
static int headers_check(const char *const *headers, size_t *size, size_t *count) {
        if (!headers)
                return 0;
        for (size_t i = 0; headers[i]; i += 2) {
                const char *name = headers[i], *value = headers[i + 1];

                if (!value || !is_token(name, strlen(name)))
                        return -EINVAL;
                if (strcasecmp(name, "Content-Length") == 0 ||
                    strcasecmp(name, "Transfer-Encoding") == 0)
                        return -EINVAL;
                if (span(value, strlen(value), is_text) != strlen(value))
                        return -EINVAL;
                *size += strlen(name) + 2 + strlen(value) + 2;
                (*count)++;
        }
        return 0;
}

/* start: the start line with its CRLF. content_length: false for messages without one. */
static int msg_format(const char *start, const char *const *headers, bool content_length,
                      const void *body, size_t body_len, uint8_t **ret, size_t *ret_len) {
        char cl[64] = "";
        size_t head = strlen(start) + 2, count = 0;
        int r;

        if (!ret || !ret_len || (!body && body_len > 0))
                return -EINVAL;
        r = headers_check(headers, &head, &count);
        if (r < 0)
                return r;
        if (body_len > HTTP_BODY_MAX)
                return -EMSGSIZE;
        if (content_length) {
                snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", body_len);
                head += strlen(cl);
                count++;
        }
        if (head > HTTP_HEAD_MAX || count > HTTP_HEADERS_MAX)
                return -EMSGSIZE;

        uint8_t *buf = malloc(head + body_len + 1);
        if (!buf)
                return -ENOMEM;
        char *w = stpcpy((char *) buf, start);
        for (size_t i = 0; headers && headers[i]; i += 2)
                w += sprintf(w, "%s: %s\r\n", headers[i], headers[i + 1]);
        w = stpcpy(w, cl);
        w = stpcpy(w, "\r\n");
        if (body_len > 0)
                memcpy(w, body, body_len);
        buf[head + body_len] = 0;

        *ret = buf;
        *ret_len = head + body_len;
        return 0;
}

int http_format_request(const char *method, const char *target, const char *const *headers,
                        const void *body, size_t body_len, uint8_t **ret, size_t *ret_len) {
        if (!method || !target || !is_method(method, strlen(method)) || target[0] != '/')
                return -EINVAL;
        size_t t = strlen(target);
        if (span(target, t, is_target_char) != t)
                return -EINVAL;
        if (t > HTTP_TARGET_MAX)
                return -EMSGSIZE;

        _cleanup_free_ char *start = NULL;
        if (asprintf(&start, "%s %s HTTP/1.1\r\n", method, target) < 0)
                return -ENOMEM;
        return msg_format(start, headers, body_len > 0, body, body_len, ret, ret_len);
}

int http_format_response(int status, const char *const *headers, const void *body,
                         size_t body_len, uint8_t **ret, size_t *ret_len) {
        bool no_body = status < 200 || status == 204 || status == 304;
        char start[64];

        if (status < 100 || status > 599 || (no_body && body_len > 0))
                return -EINVAL;
        snprintf(start, sizeof(start), "HTTP/1.1 %03d %s\r\n", status, http_reason(status));
        return msg_format(start, headers, !no_body, body, body_len, ret, ret_len);
}

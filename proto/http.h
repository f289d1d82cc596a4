/* SPDX-License-Identifier: MIT */
#pragma once
/* HTTP/1.1 framing with the hard limits of protocol section 6, as pure functions over
 * bytes (no I/O) so they can be fuzzed. One message per connection. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_HEAD_MAX 8192u   /* status/request line + headers, including the blank line */
#define HTTP_BODY_MAX 65536u  /* decoded body */
#define HTTP_HEADERS_MAX 64u
#define HTTP_TARGET_MAX 2048u

typedef enum http_kind {
        HTTP_REQUEST,
        HTTP_RESPONSE,
} http_kind_t;

typedef struct http_header {
        const char *name;  /* points into the message's own copy of the head */
        const char *value; /* leading/trailing whitespace trimmed */
} http_header_t;

typedef struct http_msg {
        http_kind_t kind;
        /* request */
        char method[8];
        char target[HTTP_TARGET_MAX + 1];
        /* response */
        int status;
        /* both */
        http_header_t headers[HTTP_HEADERS_MAX];
        size_t n_headers;
        uint8_t *body; /* heap, NUL-terminated for convenience, body_len bytes */
        size_t body_len;
        /* private */
        char *head;    /* heap copy of the head with NULs inserted */
} http_msg_t;

/* Incremental parser state; buffer ownership stays with the caller. */
typedef struct http_parser {
        http_kind_t kind;
        bool is_head_request; /* response to HEAD: no body */
        size_t head_len;      /* 0 until the blank line is found */
        size_t scan_from;     /* resume point for the CRLFCRLF search */
        /* body framing, known after the head */
        bool chunked;
        size_t content_length;
        size_t chunk_pos;     /* where chunk parsing resumes in the input */
} http_parser_t;

void http_parser_init(http_parser_t *p, http_kind_t kind);

/* Feed the whole input received so far (buf grows between calls; bytes already given are
 * not changed). Returns 0 when more input is needed, 1 when a complete message was parsed
 * into *ret (caller owns it: http_msg_done()), or a negative errno:
 *   -EMSGSIZE  head over HTTP_HEAD_MAX, body over HTTP_BODY_MAX, too many headers, target too long
 *   -EBADMSG   malformed (bad start line, bad header, bad or conflicting Content-Length,
 *              bad chunk size, bytes after the message, unsupported Transfer-Encoding)
 * A request without a body needs no Content-Length; a response without Content-Length and
 * not chunked is an error (-EBADMSG) unless its status has no body (1xx, 204, 304). */
int http_parse(http_parser_t *p, const uint8_t *buf, size_t len, http_msg_t *ret);

/* Called at EOF: -EPIPE (truncated) if a message was not complete. */
int http_parse_eof(const http_parser_t *p, size_t len);

void http_msg_done(http_msg_t *m);

/* Case-insensitive lookup; NULL when absent. */
const char *http_msg_header(const http_msg_t *m, const char *name);

/* Serialise. headers: NULL-terminated array of "Name", "value" pairs (flat:
 * {"Host","x","Accept","y",NULL}). Content-Length is added for bodies (and for empty bodies
 * on responses). Result is a heap buffer; -EINVAL on CR/LF in any name or value. */
int http_format_request(const char *method, const char *target, const char *const *headers,
                        const void *body, size_t body_len, uint8_t **ret, size_t *ret_len);
int http_format_response(int status, const char *const *headers, const void *body,
                         size_t body_len, uint8_t **ret, size_t *ret_len);

const char *http_reason(int status);

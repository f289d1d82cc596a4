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
/* Framing the parser also bounds, so a caller knows how much it may have to buffer: a chunk-size
 * line (size and extensions), the chunked body on the wire (data, size lines, CRLFs) and the
 * trailer section (like the head). */
#define HTTP_CHUNK_LINE_MAX 128u
#define HTTP_CHUNKED_WIRE_MAX (2u * HTTP_BODY_MAX)
#define HTTP_MSG_MAX (HTTP_HEAD_MAX + HTTP_CHUNKED_WIRE_MAX + HTTP_HEAD_MAX)

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

/* Incremental parser state; buffer ownership stays with the caller. The parser holds no heap
 * memory: abandoning it needs no cleanup. */
typedef struct http_parser {
        http_kind_t kind;
        bool is_head_request; /* response to HEAD: no body */
        size_t head_len;      /* 0 until the blank line is found */
        size_t scan_from;     /* resume point of the line scan (head, chunk lines, trailers) */
        /* body framing, known after the head */
        bool chunked;
        size_t content_length;
        /* private */
        int state;
        int error;            /* sticky once failed */
        bool has_content_length;
        bool no_body;         /* 1xx/204/304 or answer to HEAD */
        size_t line_start;    /* start of the line being scanned */
        size_t n_lines;       /* head lines seen, start line included */
        size_t chunk_end;     /* end of the current chunk's data */
        size_t body_seen;     /* decoded body length so far */
        size_t trailer_start;
        size_t msg_len;       /* total length once complete */
        size_t seen;          /* largest len given */
} http_parser_t;

void http_parser_init(http_parser_t *p, http_kind_t kind);

/* Feed the whole input received so far (buf grows between calls; bytes already given are
 * not changed). Returns 0 when more input is needed, 1 when a complete message was parsed
 * into *ret (caller owns it: http_msg_done()), or a negative errno:
 *   -EMSGSIZE  head over HTTP_HEAD_MAX, too many headers, target too long, trailers over
 *              HTTP_HEAD_MAX (a server answers 431)
 *   -EFBIG     body over HTTP_BODY_MAX (announced or sent), chunk-size line or chunked wire
 *              size over their limits (a server answers 413)
 *   -EBADMSG   malformed (bad start line, bad header, bad or conflicting Content-Length,
 *              bad chunk size, bytes after the message, unsupported Transfer-Encoding)
 *   -ENOMEM
 * Errors are reported as soon as the bytes that cause them arrive (a bad line as soon as its
 * LF does), and are sticky: later calls return the same error. *ret is only written on 1.
 * After 1, a call with more bytes gives -EBADMSG (one message per connection) and a call with
 * the same bytes gives -EALREADY. A len smaller than before is -EINVAL.
 * Syntax is strict (RFC 9112 without the leniencies): lines end in CRLF; no bare CR or LF, no
 * NUL or other control characters but HT in values; no obs-fold; request line
 * "METHOD SP /target SP HTTP/1.1" with METHOD 1..7 of A-Z; status line
 * "HTTP/1.1 SP 3DIGIT SP reason" (HTTP/1.0 accepted, status 100..599, reason may be empty);
 * "name: value" with a token name and no space before the colon. Content-Length: digits only,
 * repeats must agree; Transfer-Encoding only "chunked" (once, any case) and never with
 * Content-Length. Chunk extensions are skipped, trailers checked like headers and dropped.
 * A request without a body needs no Content-Length; a response without Content-Length and
 * not chunked is an error (-EBADMSG) unless its status has no body (1xx, 204, 304) or it
 * answers a HEAD request (is_head_request): those end with the head whatever their
 * Content-Length says (still checked for syntax). A 1xx response is returned as the message:
 * nothing may follow it. */
int http_parse(http_parser_t *p, const uint8_t *buf, size_t len, http_msg_t *ret);

/* Called at EOF once http_parse() has seen all len bytes: 0 when it returned a message of
 * exactly len bytes, the sticky error when it failed, otherwise -EPIPE (truncated; zero bytes
 * received is a truncated message too). */
int http_parse_eof(const http_parser_t *p, size_t len);

/* Wipes (the body may carry keys) and frees what the message holds, then zeroes it. NULL is
 * fine, and so is a zeroed message. */
void http_msg_done(http_msg_t *m);

/* Case-insensitive lookup; NULL when absent. The first one wins when repeated. */
const char *http_msg_header(const http_msg_t *m, const char *name);

/* Serialise. headers: NULL-terminated array of "Name", "value" pairs (flat:
 * {"Host","x","Accept","y",NULL}); may be NULL. Content-Length is added for bodies (and for
 * empty bodies on responses, except 1xx/204/304, which take no body). Result is a heap buffer
 * (NUL-terminated, not counted in ret_len). -EINVAL on CR/LF/NUL or other control characters
 * but HT in any name, value, method or target, on a name that is not a token, on a method or
 * target the parser would refuse, on a status outside 100..599, on a body for a status that
 * takes none, and on a Content-Length or Transfer-Encoding given by the caller (framing is
 * the formatter's job); -EMSGSIZE when the result would break the parser's limits (head,
 * body, header count, target). What the formatters write, http_parse() reads back. */
int http_format_request(const char *method, const char *target, const char *const *headers,
                        const void *body, size_t body_len, uint8_t **ret, size_t *ret_len);
int http_format_response(int status, const char *const *headers, const void *body,
                         size_t body_len, uint8_t **ret, size_t *ret_len);

const char *http_reason(int status);

/* SPDX-License-Identifier: MIT */
/* Test tool: a scripted MEF for msce-agent's abuse tests (agent-abuse.sh). A proto/tls server in
 * psk mode that accepts connections, reads one enrolment request and answers it with the response
 * of a named scenario: a valid profile, or one that breaks a rule of the protocol (limits,
 * framing, headers, JSON, key confirmation, status codes, timing).
 *
 *   fake-mef SCENARIO --psk-identity ID --psk-hex-file FILE [--fqdn HOST] [--base /msce]
 *            [--port N] [-n COUNT] [--secrets-out FILE]
 *   fake-mef --list
 *
 * Listens on 127.0.0.1:PORT (0, the default: the kernel picks one) and prints "port=N" first.
 * The keID of a profile is computed like the MEF does (tls_conn_export + kdf_split_ekm with
 * --fqdn), so a scenario can send the right one or a wrong one. --secrets-out FILE (0600) gets
 * one line per key the agent may hold ("ke HEX", "ltk HEX", "kpsa KPSAID HEX"), for the test's
 * leak scan and key comparison. Exits 0 once COUNT connections were served as scripted (a peer
 * that gives up early is no error), 1 when a handshake or the request was not what an agent
 * sends, 2 on usage errors. */
#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>

#include "keys/kdf.h"
#include "proto/http.h"
#include "proto/msg.h"
#include "proto/exchange.h"
#include "util/util.h"

#define IO_TIMEOUT_USEC (10 * 1000 * 1000ULL)   /* handshake, request, normal answer */
#define HOLD_TIMEOUT_USEC (30 * 1000 * 1000ULL) /* silent scenarios: wait this long for the peer */
#define DRIP_INTERVAL_MSEC 100
#define REQUEST_MAX (HTTP_HEAD_MAX + HTTP_BODY_MAX)
#define CSE_BASE "https://in.example.net:8443/~/in-cse/in-name"

typedef enum scenario_id {
        S_VALID,
        S_VALID_LTK,
        S_VALID_HOLD,
        S_WRONG_KEID,
        S_KEID_FQDN,
        S_HEAD_8K,
        S_HEAD_8K_1,
        S_BODY_64K,
        S_BODY_64K_1,
        S_TRUNCATED,
        S_CLOSE,
        S_CHUNKED,
        S_CHUNK_BAD_SIZE,
        S_CHUNK_TOO_LARGE,
        S_NO_CONTENT_LENGTH,
        S_TWO_CONTENT_LENGTHS,
        S_NO_RSC,
        S_RSC_MISMATCH,
        S_WRONG_RI,
        S_BAD_JSON,
        S_NO_CSEID,
        S_POLL_STRING,
        S_TOO_MANY_TARGETS,
        S_LTK_8,
        S_EXPIRED,
        S_BUSY_503,
        S_RATE_429,
        S_ERROR_500,
        S_FORBIDDEN_403,
        S_BAD_REQUEST_400,
        S_GARBAGE,
        S_NOT_TLS,
        S_SILENT,
        S_DRIP,
        S_EXTRA_BYTES,
        S_CONTINUE_100,
        S_CSEID_SHELL,
        S_CSEID_NO_SLASH,
        S_CSEID_SPACE,
        S_TARGET_TRAVERSAL,
        S_KPSAID_PASSWD,
        S_CSEBASE_NO_URI,
        S_KEID_UPPER,
        S_BUSY_503_HUGE,
        S_BUSY_503_30_DIGITS,
        S_BUSY_503_ZERO,
        S_BUSY_503_DATE,
        _S_MAX,
} scenario_id_t;

typedef enum delivery {
        SEND_ALL,        /* one write, close_notify, close */
        SEND_DRIP,       /* one byte per DRIP_INTERVAL_MSEC */
        SEND_THEN_HOLD,  /* write, then keep the connection open until the peer closes */
} delivery_t;

static const struct {
        const char *name;
        const char *summary;
        delivery_t delivery;
} scenarios[_S_MAX] = {
        [S_VALID] = { "valid", "201 with a valid profile (control)", SEND_ALL },
        [S_VALID_LTK] = { "valid-ltk", "201 with a valid profile and a transported 32-byte ltk", SEND_ALL },
        [S_VALID_HOLD] = { "valid-hold", "201 with a valid profile, then the connection is kept open", SEND_THEN_HOLD },
        [S_WRONG_KEID] = { "wrong-keid", "201, keID with one hex digit changed", SEND_ALL },
        [S_KEID_FQDN] = { "keid-fqdn", "201, keID with the right hex but another MEF-FQDN", SEND_ALL },
        [S_HEAD_8K] = { "head-8k", "201, status line + headers of exactly 8192 bytes", SEND_ALL },
        [S_HEAD_8K_1] = { "head-8k+1", "201, status line + headers of 8193 bytes", SEND_ALL },
        [S_BODY_64K] = { "body-64k", "201, profile padded with an ignored member to 65536 bytes", SEND_ALL },
        [S_BODY_64K_1] = { "body-64k+1", "201, body of 65537 bytes", SEND_ALL },
        [S_TRUNCATED] = { "truncated", "Content-Length 100 more than sent, then close_notify", SEND_ALL },
        [S_CLOSE] = { "close", "close_notify right after the request, no response", SEND_ALL },
        [S_CHUNKED] = { "chunked", "201 with a valid profile in three chunks", SEND_ALL },
        [S_CHUNK_BAD_SIZE] = { "chunk-bad-size", "chunked, chunk size 'zz'", SEND_ALL },
        [S_CHUNK_TOO_LARGE] = { "chunk-too-large", "chunked, one chunk size of 65537", SEND_ALL },
        [S_NO_CONTENT_LENGTH] = { "no-content-length", "201 with a body, no Content-Length, not chunked", SEND_ALL },
        [S_TWO_CONTENT_LENGTHS] = { "two-content-lengths", "two different Content-Length headers", SEND_ALL },
        [S_NO_RSC] = { "no-rsc", "201 without X-M2M-RSC", SEND_ALL },
        [S_RSC_MISMATCH] = { "rsc-mismatch", "HTTP 201 with X-M2M-RSC 4000", SEND_ALL },
        [S_WRONG_RI] = { "wrong-ri", "X-M2M-RI of another request", SEND_ALL },
        [S_BAD_JSON] = { "bad-json", "201 with a body that is not JSON", SEND_ALL },
        [S_NO_CSEID] = { "no-cseid", "profile without cseID", SEND_ALL },
        [S_POLL_STRING] = { "poll-string", "profile with poll as a string", SEND_ALL },
        [S_TOO_MANY_TARGETS] = { "too-many-targets", "profile with 17 targets", SEND_ALL },
        [S_LTK_8] = { "ltk-8", "profile with an 8-byte ltk", SEND_ALL },
        [S_EXPIRED] = { "expired", "profile whose exp has passed", SEND_ALL },
        [S_BUSY_503] = { "busy-503", "503/5000 with Retry-After: 7", SEND_ALL },
        [S_RATE_429] = { "rate-429", "429/4000 with Retry-After: 9 (msce-mef's per-node enrolment rate limit)", SEND_ALL },
        [S_ERROR_500] = { "error-500", "500/5000", SEND_ALL },
        [S_FORBIDDEN_403] = { "forbidden-403", "403/4103 with m2m:dbg", SEND_ALL },
        [S_BAD_REQUEST_400] = { "bad-request-400", "400/4000 with m2m:dbg", SEND_ALL },
        [S_GARBAGE] = { "garbage", "random bytes instead of HTTP (inside TLS)", SEND_ALL },
        [S_NOT_TLS] = { "not-tls", "an HTTP response in clear instead of the TLS handshake", SEND_ALL },
        [S_SILENT] = { "silent", "handshake, read the request, never answer", SEND_THEN_HOLD },
        [S_DRIP] = { "drip", "the valid response at one byte per 100 ms", SEND_DRIP },
        [S_EXTRA_BYTES] = { "extra-bytes", "a valid response followed by more bytes in the same record", SEND_ALL },
        [S_CONTINUE_100] = { "continue-100", "HTTP/1.1 100 Continue, then nothing", SEND_THEN_HOLD },
        [S_CSEID_SHELL] = { "cseid-shell", "cseID /mn-$(id)`id`;reboot", SEND_ALL },
        [S_CSEID_NO_SLASH] = { "cseid-no-slash", "cseID mn-781 (not SP-relative)", SEND_ALL },
        [S_CSEID_SPACE] = { "cseid-space", "cseID with a space", SEND_ALL },
        [S_TARGET_TRAVERSAL] = { "target-traversal", "target id /in-cse/../../x", SEND_ALL },
        [S_KPSAID_PASSWD] = { "kpsaid-passwd", "kpsaID ../../../../etc/passwd@mef", SEND_ALL },
        [S_CSEBASE_NO_URI] = { "csebase-no-uri", "cseBase in.example.net (no scheme)", SEND_ALL },
        [S_KEID_UPPER] = { "keid-upper", "the right keID in upper case", SEND_ALL },
        [S_BUSY_503_HUGE] = { "busy-503-huge", "503/5000 with Retry-After: 999999999999", SEND_ALL },
        [S_BUSY_503_30_DIGITS] = { "busy-503-30-digits", "503/5000 with a 30-digit Retry-After", SEND_ALL },
        [S_BUSY_503_ZERO] = { "busy-503-zero", "503/5000 with Retry-After: 0", SEND_ALL },
        [S_BUSY_503_DATE] = { "busy-503-date", "503/5000 with Retry-After as an HTTP-date", SEND_ALL },
};

typedef struct fake {
        scenario_id_t scenario;
        const char *identity;
        uint8_t psk[MSG_KEY_MAX];
        size_t psk_len;
        const char *fqdn;
        const char *base;
        const char *secrets_out;
} fake_t;

/* What one connection knows once the request is in. Holds key bytes: wiped. */
typedef struct exch {
        char ri[128];
        char ke_id[KDF_KEID_MAX + 1];
        char rel[2 * KDF_REL_KEID_LEN + 1];
        uint8_t ke[KDF_KE_LEN];
        uint8_t ltk[KDF_KE_LEN];  /* a transported ltk (valid-ltk) */
} exch_t;

/* A growable output buffer; sticky out-of-memory. Wiped on free (bodies may carry an ltk). */
typedef struct buf {
        char *data;
        size_t len, size;
        bool oom;
} buf_t;

static void buf_done(buf_t *b) {
        if (b->data) {
                erase(b->data, b->size);
                free(b->data);
        }
        *b = (buf_t) {};
}

static bool buf_reserve(buf_t *b, size_t n) {
        if (b->oom)
                return false;
        if (b->len + n + 1 <= b->size)
                return true;
        size_t size = MAX(b->size * 2, b->len + n + 1 + 1024);
        char *p = malloc(size);
        if (!p) {
                b->oom = true;
                return false;
        }
        if (b->data) {
                memcpy(p, b->data, b->len);
                erase(b->data, b->size);
                free(b->data);
        }
        b->data = p;
        b->size = size;
        b->data[b->len] = 0;
        return true;
}

static void buf_add(buf_t *b, const void *p, size_t n) {
        if (!buf_reserve(b, n))
                return;
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
}

static void buf_fill(buf_t *b, char c, size_t n) {
        if (!buf_reserve(b, n))
                return;
        memset(b->data + b->len, c, n);
        b->len += n;
        b->data[b->len] = 0;
}

static void _printf_(2, 3) buf_printf(buf_t *b, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0 || !buf_reserve(b, (size_t) n)) {
                b->oom = true;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
}

/* ---- the profile body ---- */

typedef struct prof {
        const char *ke_id;   /* NULL: the right one */
        bool no_cse_id;
        const char *cse_id;  /* NULL: /mn-cse-fake */
        const char *cse_base; /* NULL: CSE_BASE */
        const char *target_id, *kpsa_id; /* of the first target; NULL: the right ones */
        const char *poll;    /* raw JSON value; NULL: 3600 */
        unsigned n_targets;
        size_t ltk_len;      /* 0: Ke is the Long Term Key (no ltk member) */
        bool expired;
        size_t pad;          /* > 0: an ignored member "pad" with that many characters */
} prof_t;

static void profile_body(buf_t *b, const fake_t *f, exch_t *e, const prof_t *p) {
        char exp[16];
        time_format_basic(time(NULL) + (p->expired ? -3600 : 365 * 86400), exp);
        buf_printf(b, "{\"msce:profile\":{");
        if (!p->no_cse_id)
                buf_printf(b, "\"cseID\":\"%s\",", p->cse_id ?: "/mn-cse-fake");
        buf_printf(b, "\"cseBase\":\"%s\",\"keID\":\"%s\",\"exp\":\"%s\",\"poll\":%s", p->cse_base ?: CSE_BASE,
                   p->ke_id ?: e->ke_id, exp, p->poll ?: "3600");
        if (p->n_targets > 0) {
                buf_printf(b, ",\"targets\":[");
                for (unsigned i = 0; i < p->n_targets; i++) {
                        if (i == 0 && p->target_id)
                                buf_printf(b, "{\"id\":\"%s\",", p->target_id);
                        else
                                buf_printf(b, "%s{\"id\":\"/target-%u\",", i ? "," : "", i + 1);
                        if (i == 0 && p->kpsa_id)
                                buf_printf(b, "\"kpsaID\":\"%s\"}", p->kpsa_id);
                        else
                                buf_printf(b, "\"kpsaID\":\"%s.%u@%s\"}", e->rel, i + 1, f->fqdn);
                }
                buf_printf(b, "]");
        }
        if (p->ltk_len > 0) {
                _cleanup_free_ char *s = NULL;
                if (b64_encode(e->ltk, MIN(p->ltk_len, sizeof e->ltk), &s) < 0) {
                        b->oom = true;
                        return;
                }
                buf_printf(b, ",\"ltk\":\"%s\"", s);
                erase(s, strlen(s));
        }
        if (p->pad > 0) {
                buf_printf(b, ",\"pad\":\"");
                buf_fill(b, 'p', p->pad);
                buf_printf(b, "\"");
        }
        buf_printf(b, "}}");
}

/* ---- the response ---- */

typedef enum framing {
        FRAME_LENGTH,       /* Content-Length: body length */
        FRAME_LENGTH_MORE,  /* Content-Length: body length + 100 */
        FRAME_TWO_LENGTHS,  /* the right Content-Length and a second, different one */
        FRAME_NONE,         /* neither Content-Length nor chunked */
        FRAME_CHUNKED,      /* three chunks */
} framing_t;

typedef struct resp {
        int status;
        const char *reason;
        const char *rsc;        /* NULL: no X-M2M-RSC */
        const char *ri;         /* NULL: echo the request's */
        const char *extra;      /* more header lines, each ending in CRLF */
        framing_t framing;
        size_t head_size;       /* > 0: pad the head (blank line included) to exactly this */
} resp_t;

static void response(buf_t *out, const exch_t *e, const resp_t *r, const buf_t *body) {
        buf_t head = {};
        buf_printf(&head, "HTTP/1.1 %d %s\r\n", r->status, r->reason);
        buf_printf(&head, "X-M2M-RI: %s\r\n", r->ri ?: e->ri);
        if (r->rsc)
                buf_printf(&head, "X-M2M-RSC: %s\r\n", r->rsc);
        buf_printf(&head, "Content-Type: application/json\r\nConnection: close\r\n%s", r->extra ?: "");
        switch (r->framing) {
        case FRAME_LENGTH:
                buf_printf(&head, "Content-Length: %zu\r\n", body->len);
                break;
        case FRAME_LENGTH_MORE:
                buf_printf(&head, "Content-Length: %zu\r\n", body->len + 100);
                break;
        case FRAME_TWO_LENGTHS:
                buf_printf(&head, "Content-Length: %zu\r\nContent-Length: %zu\r\n", body->len, body->len + 1);
                break;
        case FRAME_NONE:
                break;
        case FRAME_CHUNKED:
                buf_printf(&head, "Transfer-Encoding: chunked\r\n");
                break;
        }
        if (r->head_size > 0) {
                /* "X-Pad: " + n + CRLF, then the blank line */
                size_t fixed = head.len + 7 + 2 + 2;
                if (r->head_size < fixed + 1) {
                        head.oom = true;
                } else {
                        buf_printf(&head, "X-Pad: ");
                        buf_fill(&head, 'h', r->head_size - fixed);
                        buf_printf(&head, "\r\n");
                }
        }
        buf_printf(&head, "\r\n");
        if (head.oom) {
                out->oom = true;
                buf_done(&head);
                return;
        }
        buf_add(out, head.data, head.len);
        buf_done(&head);

        if (r->framing != FRAME_CHUNKED) {
                buf_add(out, body->data, body->len);
                return;
        }
        size_t a = body->len / 3, c = body->len - 2 * a;
        buf_printf(out, "%zx\r\n", a);
        buf_add(out, body->data, a);
        buf_printf(out, "\r\n%zx;ext=1\r\n", a);
        buf_add(out, body->data + a, a);
        buf_printf(out, "\r\n%zx\r\n", c);
        buf_add(out, body->data + 2 * a, c);
        buf_printf(out, "\r\n0\r\n\r\n");
}

static void dbg_body(buf_t *b, const char *reason) {
        buf_printf(b, "{\"m2m:dbg\":\"%s\"}", reason);
}

/* The bytes to send for scenario s; *ret_prof says which profile (for --secrets-out). */
static int build(const fake_t *f, exch_t *e, buf_t *out, prof_t *ret_prof) {
        prof_t p = { .n_targets = 1 };
        resp_t r = { .status = 201, .reason = "Created", .rsc = "2001" };
        _cleanup_(buf_done) buf_t body = {};
        char keid[KDF_KEID_MAX + 1];

        switch (f->scenario) {
        case S_VALID:
        case S_VALID_HOLD:
        case S_CHUNKED:
        case S_DRIP:
        case S_EXTRA_BYTES:
                p.n_targets = 2;
                if (f->scenario == S_CHUNKED)
                        r.framing = FRAME_CHUNKED;
                break;
        case S_VALID_LTK:
                p.ltk_len = 32;
                break;
        case S_WRONG_KEID:
                snprintf(keid, sizeof keid, "%s", e->ke_id);
                keid[0] = keid[0] == '0' ? '1' : '0';
                p.ke_id = keid;
                break;
        case S_KEID_FQDN:
                snprintf(keid, sizeof keid, "%s@mef.example.net", e->rel);
                p.ke_id = keid;
                break;
        case S_HEAD_8K:
                r.head_size = HTTP_HEAD_MAX;
                break;
        case S_HEAD_8K_1:
                r.head_size = HTTP_HEAD_MAX + 1;
                break;
        case S_BODY_64K:
        case S_BODY_64K_1: {
                buf_t probe = {};
                p.pad = 1;
                profile_body(&probe, f, e, &p);
                size_t want = HTTP_BODY_MAX + (f->scenario == S_BODY_64K_1);
                if (probe.oom || probe.len > want) {
                        buf_done(&probe);
                        return -ENOMEM;
                }
                p.pad = 1 + want - probe.len;
                buf_done(&probe);
                break;
        }
        case S_TRUNCATED:
                r.framing = FRAME_LENGTH_MORE;
                break;
        case S_CHUNK_BAD_SIZE:
                buf_printf(out, "HTTP/1.1 201 Created\r\nX-M2M-RI: %s\r\nX-M2M-RSC: 2001\r\n"
                           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
                           e->ri);
                return out->oom ? -ENOMEM : 0;
        case S_CHUNK_TOO_LARGE:
                buf_printf(out, "HTTP/1.1 201 Created\r\nX-M2M-RI: %s\r\nX-M2M-RSC: 2001\r\n"
                           "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n{",
                           e->ri, HTTP_BODY_MAX + 1);
                return out->oom ? -ENOMEM : 0;
        case S_NO_CONTENT_LENGTH:
                r.framing = FRAME_NONE;
                break;
        case S_TWO_CONTENT_LENGTHS:
                r.framing = FRAME_TWO_LENGTHS;
                break;
        case S_NO_RSC:
                r.rsc = NULL;
                break;
        case S_RSC_MISMATCH:
                r.rsc = "4000";
                break;
        case S_WRONG_RI:
                r.ri = "fake-mef-another-request";
                break;
        case S_BAD_JSON:
                buf_printf(&body, "{\"msce:profile\": {\"cseID\": \"/mn-cse-fake\", \"keID\": \"%s\",,}", e->ke_id);
                break;
        case S_NO_CSEID:
                p.no_cse_id = true;
                break;
        case S_POLL_STRING:
                p.poll = "\"3600\"";
                break;
        case S_TOO_MANY_TARGETS:
                p.n_targets = MSG_TARGETS_MAX + 1;
                break;
        case S_LTK_8:
                p.ltk_len = 8;
                break;
        case S_EXPIRED:
                p.expired = true;
                break;
        case S_BUSY_503:
                r = (resp_t) { .status = 503, .reason = "Service Unavailable", .rsc = "5000",
                               .extra = "Retry-After: 7\r\n" };
                dbg_body(&body, "fake-mef is overloaded");
                break;
        case S_RATE_429:
                r = (resp_t) { .status = 429, .reason = "Too Many Requests", .rsc = "4000",
                               .extra = "Retry-After: 9\r\n" };
                dbg_body(&body, "enrolment rate limit: retry later");
                break;
        case S_BUSY_503_HUGE:
        case S_BUSY_503_30_DIGITS:
        case S_BUSY_503_ZERO:
        case S_BUSY_503_DATE:
                r = (resp_t) { .status = 503, .reason = "Service Unavailable", .rsc = "5000",
                               .extra = f->scenario == S_BUSY_503_HUGE ? "Retry-After: 999999999999\r\n" :
                                        f->scenario == S_BUSY_503_30_DIGITS ? "Retry-After: 123456789012345678901234567890\r\n" :
                                        f->scenario == S_BUSY_503_ZERO ? "Retry-After: 0\r\n" :
                                        "Retry-After: Fri, 31 Dec 2099 23:59:59 GMT\r\n" };
                dbg_body(&body, "fake-mef is overloaded");
                break;
        case S_CSEID_SHELL:
                p.cse_id = "/mn-$(id)`id`;reboot";
                break;
        case S_CSEID_NO_SLASH:
                p.cse_id = "mn-781";
                break;
        case S_CSEID_SPACE:
                p.cse_id = "/mn 781";
                break;
        case S_TARGET_TRAVERSAL:
                p.target_id = "/in-cse/../../x";
                break;
        case S_KPSAID_PASSWD:
                p.kpsa_id = "../../../../etc/passwd@mef";
                break;
        case S_CSEBASE_NO_URI:
                p.cse_base = "in.example.net";
                break;
        case S_KEID_UPPER:
                snprintf(keid, sizeof keid, "%s", e->ke_id);
                for (char *c = keid; *c; c++)
                        *c = (char) toupper((unsigned char) *c);
                p.ke_id = keid;
                break;
        case S_ERROR_500:
                r = (resp_t) { .status = 500, .reason = "Internal Server Error", .rsc = "5000" };
                dbg_body(&body, "fake-mef internal error");
                break;
        case S_FORBIDDEN_403:
                r = (resp_t) { .status = 403, .reason = "Forbidden", .rsc = "4103" };
                dbg_body(&body, "node blocked by fake-mef");
                break;
        case S_BAD_REQUEST_400:
                r = (resp_t) { .status = 400, .reason = "Bad Request", .rsc = "4000" };
                dbg_body(&body, "fake-mef refuses this request");
                break;
        case S_GARBAGE:
        case S_NOT_TLS: {
                uint8_t rnd[512];
                int k = random_bytes(rnd, sizeof rnd);
                if (k < 0)
                        return k;
                /* Starts like nothing TLS or HTTP would: a NUL and a bare LF. */
                rnd[0] = 0;
                rnd[1] = '\n';
                if (f->scenario == S_NOT_TLS)
                        buf_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                else
                        buf_add(out, rnd, sizeof rnd);
                return out->oom ? -ENOMEM : 0;
        }
        case S_CLOSE:
                return 0;
        case S_SILENT:
                return 0;
        case S_CONTINUE_100:
                buf_printf(out, "HTTP/1.1 100 Continue\r\n\r\n");
                return out->oom ? -ENOMEM : 0;
        default:
                return -EINVAL;
        }

        if (body.len == 0 && !body.data) {
                *ret_prof = p;
                profile_body(&body, f, e, &p);
        }
        if (body.oom)
                return -ENOMEM;
        response(out, e, &r, &body);
        if (f->scenario == S_EXTRA_BYTES)
                buf_printf(out, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        return out->oom ? -ENOMEM : 0;
}

/* ---- keys the agent may hold, for the test's leak scan ---- */

static int secrets_write(const fake_t *f, const exch_t *e, const prof_t *p) {
        if (!f->secrets_out)
                return 0;
        _cleanup_close_ int fd = open(f->secrets_out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        _cleanup_(buf_done) buf_t b = {};
        char hex[2 * MSG_KEY_MAX + 1];
        hex_encode(e->ke, sizeof e->ke, hex);
        buf_printf(&b, "ke %s\n", hex);
        const uint8_t *ltk = e->ke;
        size_t ltk_len = sizeof e->ke;
        if (p->ltk_len > 0) {
                ltk = e->ltk;
                ltk_len = MIN(p->ltk_len, sizeof e->ltk);
        }
        hex_encode(ltk, ltk_len, hex);
        buf_printf(&b, "ltk %s\n", hex);
        for (unsigned i = 0; i < MIN(p->n_targets, MSG_TARGETS_MAX + 1u); i++) {
                char id[32];
                uint8_t kpsa[KDF_KEY_LEN];
                snprintf(id, sizeof id, "/target-%u", i + 1);
                /* an 8-byte ltk is refused by kdf: derive from Ke then, for the scan only */
                int r = kdf_kpsa(ltk_len >= MSG_KEY_MIN ? ltk : e->ke, ltk_len >= MSG_KEY_MIN ? ltk_len : sizeof e->ke,
                                 id, kpsa);
                if (r < 0)
                        return r;
                hex_encode(kpsa, sizeof kpsa, hex);
                erase(kpsa, sizeof kpsa);
                buf_printf(&b, "kpsa %s.%u@%s %s\n", e->rel, i + 1, f->fqdn, hex);
        }
        erase(hex, sizeof hex);
        if (b.oom)
                return -ENOMEM;
        if (write(fd, b.data, b.len) != (ssize_t) b.len)
                return -EIO;
        return 0;
}

/* ---- one connection ---- */

static unsigned psk_lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max) {
        const fake_t *f = userdata;
        if (!streq(identity, f->identity) || f->psk_len > key_max)
                return 0;
        memcpy(key, f->psk, f->psk_len);
        return (unsigned) f->psk_len;
}

/* Read one request; check it is an enrolment as the agent sends it. */
static int request_read(const fake_t *f, tls_conn_t *c, exch_t *e) {
        _cleanup_free_ uint8_t *in = malloc(REQUEST_MAX);
        if (!in)
                return -ENOMEM;
        size_t len = 0;
        uint64_t deadline = now_usec() + IO_TIMEOUT_USEC;
        http_parser_t p;
        _cleanup_(http_msg_done) http_msg_t m = {};
        http_parser_init(&p, HTTP_REQUEST);
        for (;;) {
                if (len == REQUEST_MAX)
                        return -EMSGSIZE;
                ssize_t n = tls_conn_read_until(c, in + len, REQUEST_MAX - len, deadline);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -EPIPE;
                len += (size_t) n;
                int r = http_parse(&p, in, len, &m);
                if (r < 0)
                        return r;
                if (r == 1)
                        break;
        }
        char target[HTTP_TARGET_MAX + 1];
        snprintf(target, sizeof target, "%s/enrolments", f->base);
        const char *ri = http_msg_header(&m, "X-M2M-RI");
        msg_enrol_req_t er;
        if (!streq(m.method, "POST") || !streq(m.target, target) || !ri || strlen(ri) >= sizeof e->ri ||
            !http_msg_header(&m, "X-M2M-Origin") || !http_msg_header(&m, "Host") ||
            msg_enrol_req_parse(m.body, m.body_len, &er, NULL) < 0) {
                fprintf(stderr, "fake-mef: not an enrolment request: %s %s\n", m.method, m.target);
                return -EBADMSG;
        }
        snprintf(e->ri, sizeof e->ri, "%s", ri);
        return 0;
}

/* Wait until the peer closes (or deadline): keeps the connection open for silent scenarios,
 * and lets the agent read everything before we close. -ETIMEDOUT: the deadline came first. */
static ssize_t drain(tls_conn_t *c, uint64_t deadline) {
        char buf[512];
        ssize_t n;
        while ((n = tls_conn_read_until(c, buf, sizeof buf, deadline)) > 0)
                ;
        return n;
}

static int send_bytes(tls_conn_t *c, const buf_t *out, delivery_t how) {
        if (how != SEND_DRIP)
                return out->len == 0 ? 0 : tls_conn_write_all_until(c, out->data, out->len, now_usec() + IO_TIMEOUT_USEC);
        for (size_t i = 0; i < out->len; i++) {
                int r = tls_conn_write_all_until(c, out->data + i, 1, now_usec() + IO_TIMEOUT_USEC);
                if (r < 0)
                        return r;
                (void) poll(NULL, 0, DRIP_INTERVAL_MSEC);
        }
        return 0;
}

static int serve_tls(const fake_t *f, tls_ctx_t *ctx, int fd) {
        tls_conn_t *c = NULL;
        int r = tls_conn_new_server(ctx, fd, &c);
        if (r < 0)
                return r;
        _cleanup_erase_(48) uint8_t ekm[KDF_EKM_LEN];
        exch_t e = {};
        _cleanup_(buf_done) buf_t out = {};
        prof_t p = {};
        delivery_t how = scenarios[f->scenario].delivery;

        r = tls_conn_handshake_until(c, now_usec() + IO_TIMEOUT_USEC);
        if (r < 0) {
                fprintf(stderr, "fake-mef: handshake: %s\n", strerror(-r));
                goto finish;
        }
        r = tls_conn_export(c, KDF_EXPORTER_LABEL, ekm, sizeof ekm);
        if (r == 0)
                r = kdf_split_ekm(ekm, f->fqdn, e.ke, e.ke_id, sizeof e.ke_id);
        if (r == 0)
                r = random_bytes(e.ltk, sizeof e.ltk);
        if (r < 0) {
                fprintf(stderr, "fake-mef: keys: %s\n", strerror(-r));
                goto finish;
        }
        snprintf(e.rel, sizeof e.rel, "%.*s", (int) (2 * KDF_REL_KEID_LEN), e.ke_id);
        r = request_read(f, c, &e);
        if (r < 0) {
                fprintf(stderr, "fake-mef: reading the request: %s\n", strerror(-r));
                goto finish;
        }
        r = build(f, &e, &out, &p);
        if (r == 0)
                r = secrets_write(f, &e, &p);
        if (r < 0) {
                fprintf(stderr, "fake-mef: building the response: %s\n", strerror(-r));
                goto finish;
        }
        int w = send_bytes(c, &out, how);
        /* The agent giving up while we send (drip, oversized answers) is what some scenarios
         * test: not an error here. */
        fprintf(stderr, "fake-mef: %s: %zu bytes to send%s%s\n", scenarios[f->scenario].name, out.len,
                w < 0 ? ", sending stopped: " : "", w < 0 ? strerror(-w) : "");
        if (how == SEND_THEN_HOLD) {
                /* what agent-abuse.sh checks: the agent closed first, without waiting for us */
                ssize_t d = drain(c, now_usec() + HOLD_TIMEOUT_USEC);
                fprintf(stderr, "fake-mef: hold: %s\n",
                        d == -ETIMEDOUT ? "the connection was still open at the hold deadline"
                                        : "the agent closed the connection");
        }
        else if (w == 0) {
                tls_conn_shutdown(c);
                drain(c, now_usec() + IO_TIMEOUT_USEC);
        }
finish:
        erase(&e, sizeof e);
        tls_conn_free(c);
        return r;
}

/* not-tls: answer the ClientHello with bytes in clear. */
static int serve_raw(const fake_t *f, int fd) {
        _cleanup_(buf_done) buf_t out = {};
        exch_t e = {};
        prof_t p = {};
        int r = build(f, &e, &out, &p);
        if (r < 0)
                return r;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char hello[4096];
        if (poll(&pfd, 1, (int) (IO_TIMEOUT_USEC / 1000)) != 1 || read(fd, hello, sizeof hello) <= 0)
                return -EPIPE; /* no ClientHello */
        if (write(fd, out.data, out.len) != (ssize_t) out.len)
                return negative_errno();
        fprintf(stderr, "fake-mef: %s: sent %zu bytes\n", scenarios[f->scenario].name, out.len);
        (void) shutdown(fd, SHUT_WR);
        while (poll(&pfd, 1, (int) (IO_TIMEOUT_USEC / 1000)) == 1 && read(fd, hello, sizeof hello) > 0)
                ;
        return 0;
}

/* ---- main ---- */

static int listen_on(const char *port, int *ret_fd) {
        unsigned long long p;
        int r = parse_uint(port, 65535, &p);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        int one = 1;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) p),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 8) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &len) < 0)
                return negative_errno();
        printf("port=%u\n", ntohs(a.sin_port));
        fflush(stdout);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int usage(void) {
        fprintf(stderr, "usage: fake-mef SCENARIO --psk-identity ID --psk-hex-file FILE [--fqdn HOST] [--base /msce]\n"
                        "                [--port N] [-n COUNT] [--secrets-out FILE]\n"
                        "       fake-mef --list\n");
        return 2;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "psk-identity", required_argument, NULL, 'i' },
                { "psk-hex-file", required_argument, NULL, 'k' },
                { "fqdn", required_argument, NULL, 'f' },
                { "base", required_argument, NULL, 'b' },
                { "port", required_argument, NULL, 'p' },
                { "secrets-out", required_argument, NULL, 's' },
                { "list", no_argument, NULL, 'l' },
                {},
        };
        fake_t f = { .fqdn = "127.0.0.1", .base = "/msce" };
        const char *psk_file = NULL, *port = "0";
        unsigned long long count = 1;
        int o;

        /* wolfSSL writes without MSG_NOSIGNAL; agents that give up must not kill us. */
        signal(SIGPIPE, SIG_IGN);
        while ((o = getopt_long(argc, argv, "n:", opts, NULL)) >= 0) {
                switch (o) {
                case 'i':
                        f.identity = optarg;
                        break;
                case 'k':
                        psk_file = optarg;
                        break;
                case 'f':
                        f.fqdn = optarg;
                        break;
                case 'b':
                        f.base = optarg;
                        break;
                case 'p':
                        port = optarg;
                        break;
                case 's':
                        f.secrets_out = optarg;
                        break;
                case 'n':
                        if (parse_uint(optarg, 1000, &count) < 0 || count == 0)
                                return usage();
                        break;
                case 'l':
                        for (size_t i = 0; i < _S_MAX; i++)
                                printf("%-20s %s\n", scenarios[i].name, scenarios[i].summary);
                        return 0;
                default:
                        return usage();
                }
        }
        if (argc - optind != 1 || !f.identity || !psk_file)
                return usage();
        f.scenario = _S_MAX;
        for (size_t i = 0; i < _S_MAX; i++)
                if (streq(argv[optind], scenarios[i].name))
                        f.scenario = (scenario_id_t) i;
        if (f.scenario == _S_MAX) {
                fprintf(stderr, "fake-mef: unknown scenario '%s' (see --list)\n", argv[optind]);
                return 2;
        }

        int r = secret_hex_file_read(psk_file, MSG_KEY_MIN, MSG_KEY_MAX, f.psk, &f.psk_len);
        if (r < 0) {
                fprintf(stderr, "fake-mef: %s: %s\n", psk_file, strerror(-r));
                return 2;
        }
        tls_config_t cfg = {
                .mode = TLS_MODE_PSK,
                .min_version = TLS_VERSION_1_2,
                .max_version = TLS_VERSION_1_3,
                .psk_lookup = psk_lookup,
                .psk_userdata = &f,
        };
        tls_ctx_t *ctx = NULL;
        _cleanup_close_ int lfd = -1;
        r = tls_ctx_new_server(&cfg, &ctx);
        if (r < 0)
                fprintf(stderr, "fake-mef: TLS setup: %s\n", strerror(-r));
        else if ((r = listen_on(port, &lfd)) < 0)
                fprintf(stderr, "fake-mef: listen on 127.0.0.1:%s: %s\n", port, strerror(-r));

        int failed = r < 0;
        for (unsigned long long i = 0; r >= 0 && i < count; i++) {
                _cleanup_close_ int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        fprintf(stderr, "fake-mef: accept: %m\n");
                        failed = 1;
                        break;
                }
                if (f.scenario == S_NOT_TLS)
                        r = serve_raw(&f, fd);
                else
                        r = serve_tls(&f, ctx, fd);
                if (r < 0)
                        failed = 1;
                r = 0;
        }
        tls_ctx_free(ctx);
        erase(f.psk, sizeof f.psk);
        return failed ? 1 : 0;
}

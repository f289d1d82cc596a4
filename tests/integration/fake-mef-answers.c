/* SPDX-License-Identifier: MIT */
/* fake-mef: the answer of each scenario, and the buffer it is built in (fake-mef.h). */
#include "tests/integration/fake-mef.h"

/* ---- the buffer ---- */

void buf_done(buf_t *b) {
        if (b->data) {
                erase_free(b->data, b->size);
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
                erase_free(b->data, b->size);
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

void _printf_(2, 3) buf_printf(buf_t *b, const char *fmt, ...) {
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
        FRAME_BYTE_CHUNKS,  /* a chunk per body byte, `wire` bytes in all, then trailers of HTTP_HEAD_MAX */
} framing_t;

typedef struct resp {
        int status;
        const char *reason;
        const char *rsc;        /* NULL: no X-M2M-RSC */
        const char *ri;         /* NULL: echo the request's */
        bool no_ri;             /* no X-M2M-RI at all */
        const char *extra;      /* more header lines, each ending in CRLF */
        framing_t framing;
        size_t head_size;       /* > 0: pad the head (blank line included) to exactly this */
        size_t wire;            /* FRAME_BYTE_CHUNKS: the chunked body's size on the wire */
} resp_t;

static void response(buf_t *out, const exch_t *e, const resp_t *r, const buf_t *body) {
        buf_t head = {};
        buf_printf(&head, "HTTP/1.1 %d %s\r\n", r->status, r->reason);
        if (!r->no_ri)
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
        case FRAME_BYTE_CHUNKS:
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

        if (r->framing == FRAME_BYTE_CHUNKS) {
                /* 6 bytes per body byte and the last-chunk line; the rest of the wire size goes
                 * into an extension of the first chunk. */
                size_t ext = r->wire - 6 * body->len - 3;
                for (size_t i = 0; i < body->len; i++) {
                        buf_printf(out, "1%s", i == 0 && ext > 0 ? ";" : "");
                        if (i == 0 && ext > 0)
                                buf_fill(out, 'e', ext - 1);
                        buf_printf(out, "\r\n%c\r\n", body->data[i]);
                }
                buf_printf(out, "0\r\nX-Pad: "); /* then a trailer section of exactly HTTP_HEAD_MAX */
                buf_fill(out, 't', HTTP_HEAD_MAX - 7 - 2 - 2);
                buf_printf(out, "\r\n\r\n");
                return;
        }
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

/* The scenarios answered with an error of their own: the answer (status, X-M2M-RSC, more
 * header lines) and the m2m:dbg reason. */
#define BUSY_503(retry_after) \
        { .status = 503, .reason = "Service Unavailable", .rsc = "5000", .extra = "Retry-After: " retry_after "\r\n" }
static const struct {
        scenario_id_t id;
        resp_t r;
        const char *dbg;
} error_answers[] = {
        { S_BUSY_503, BUSY_503("7"), "fake-mef is overloaded" },
        { S_BUSY_503_HUGE, BUSY_503("999999999999"), "fake-mef is overloaded" },
        { S_BUSY_503_30_DIGITS, BUSY_503("123456789012345678901234567890"), "fake-mef is overloaded" },
        { S_BUSY_503_ZERO, BUSY_503("0"), "fake-mef is overloaded" },
        { S_BUSY_503_DATE, BUSY_503("Fri, 31 Dec 2099 23:59:59 GMT"), "fake-mef is overloaded" },
        { S_BUSY_503_NO_RI,
          { .status = 503, .reason = "Service Unavailable", .rsc = "5000", .no_ri = true, .extra = "Retry-After: 7\r\n" },
          "too many connections for this node: retry later" },
        { S_BUSY_503_WRONG_RI,
          { .status = 503, .reason = "Service Unavailable", .rsc = "5000", .ri = "fake-mef-another-request",
            .extra = "Retry-After: 7\r\n" },
          "fake-mef is overloaded" },
        { S_ERROR_500_NO_RI,
          { .status = 500, .reason = "Internal Server Error", .rsc = "5000", .no_ri = true, .extra = "Retry-After: 7\r\n" },
          "fake-mef internal error" },
        { S_RATE_429,
          { .status = 429, .reason = "Too Many Requests", .rsc = "4000", .extra = "Retry-After: 9\r\n" },
          "enrolment rate limit: retry later" },
        { S_ERROR_500, { .status = 500, .reason = "Internal Server Error", .rsc = "5000" }, "fake-mef internal error" },
        { S_FORBIDDEN_403, { .status = 403, .reason = "Forbidden", .rsc = "4103" }, "node blocked by fake-mef" },
        { S_BAD_REQUEST_400, { .status = 400, .reason = "Bad Request", .rsc = "4000" }, "fake-mef refuses this request" },
};

static void error_answer(scenario_id_t id, resp_t *r, buf_t *body) {
        for (size_t i = 0; i < ELEMENTSOF(error_answers); i++)
                if (error_answers[i].id == id) {
                        *r = error_answers[i].r;
                        dbg_body(body, error_answers[i].dbg);
                        return;
                }
        abort(); /* a scenario listed in build() but not here */
}

/* The bytes to send for scenario s; *ret_prof says which profile (for --secrets-out). */
int build(const fake_t *f, exch_t *e, buf_t *out, prof_t *ret_prof) {
        prof_t p = { .n_targets = 1 };
        resp_t r = { .status = 201, .reason = "Created", .rsc = "2001" };
        _cleanup_(buf_done) buf_t body = {};
        char keid[KDF_KEID_MAX + 1], retry_after[64];

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
        case S_BODY_64K_1:
        case S_CHUNKED_MAX:
        case S_CHUNKED_MAX_1: {
                buf_t probe = {};
                p.pad = 1;
                profile_body(&probe, f, e, &p);
                size_t want = HTTP_BODY_MAX + (f->scenario == S_BODY_64K_1);
                if (f->scenario == S_CHUNKED_MAX || f->scenario == S_CHUNKED_MAX_1) {
                        /* head, chunked body and trailers at their limits: HTTP_MSG_MAX (+1) */
                        r.framing = FRAME_BYTE_CHUNKS;
                        r.head_size = HTTP_HEAD_MAX;
                        r.wire = HTTP_CHUNKED_WIRE_MAX + (f->scenario == S_CHUNKED_MAX_1);
                        want = (r.wire - 3) / 6;
                }
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
        case S_POLL_HUGE:
                p.poll = "99999999999";
                break;
        case S_POLL_ZERO:
                p.poll = "0";
                break;
        case S_STATUS_POLLS:
                if (!e->status_poll) {
                        p.poll = "11";
                        break;
                }
                if (streq(e->status_poll, "500")) {
                        r = (resp_t) { .status = 500, .reason = "Internal Server Error", .rsc = "5000" };
                        dbg_body(&body, "fake-mef internal error");
                        break;
                }
                if (strncmp(e->status_poll, "503:", 4) == 0) {
                        snprintf(retry_after, sizeof retry_after, "Retry-After: %s\r\n", e->status_poll + 4);
                        r = (resp_t) { .status = 503, .reason = "Service Unavailable", .rsc = "5000", .extra = retry_after };
                        dbg_body(&body, "fake-mef is overloaded");
                        break;
                }
                r = (resp_t) { .status = 200, .reason = "OK", .rsc = "2000" };
                char exp[16];
                time_format_basic(time(NULL) + 365 * 86400, exp);
                buf_printf(&body, "{\"msce:status\":{\"keID\":\"%s\",\"state\":\"active\",\"exp\":\"%s\",\"poll\":%s}}",
                           f->ke_id, exp, e->status_poll);
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
        case S_RATE_429:
        case S_BUSY_503_HUGE:
        case S_BUSY_503_30_DIGITS:
        case S_BUSY_503_ZERO:
        case S_BUSY_503_DATE:
        case S_BUSY_503_NO_RI:
        case S_BUSY_503_WRONG_RI:
        case S_ERROR_500_NO_RI:
        case S_ERROR_500:
        case S_FORBIDDEN_403:
        case S_BAD_REQUEST_400:
                error_answer(f->scenario, &r, &body);
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

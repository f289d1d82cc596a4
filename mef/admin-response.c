/* SPDX-License-Identifier: MIT */
/* The admin API's answers (mef/admin-api.h): JSON bodies, error words, and the HTTP head around
 * a body of any size. */
#include <stdio.h>

#include "mef/admin-api.h"
#include "proto/http.h"
#include "util/util.h"

void admin_response_done(admin_response_t *r) {
        if (!r)
                return;
        free(r->body);
        free(r->next);
        *r = (admin_response_t) {};
}

static const char *error_word(int status) {
        switch (status) {
        case 400: return "bad-request";
        case 403: return "forbidden";
        case 404: return "not-found";
        case 405: return "method-not-allowed";
        case 409: return "conflict";
        case 413: return "too-large";
        case 415: return "unsupported-media-type";
        case 422: return "invalid";
        case 431: return "too-large";
        case 503: return "unavailable";
        default: return "internal";
        }
}

int admin_response_json(admin_response_t *ret, int status, json_t *j) {
        if (!j)
                return -ENOMEM;
        char *body = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (!body)
                return -ENOMEM;
        *ret = (admin_response_t) { .status = status, .body = body, .body_len = strlen(body),
                                    .content_type = "application/json" };
        return 0;
}

int admin_response_error(int status, const char *reason, admin_response_t *ret) {
        return admin_response_json(ret, status, json_pack("{s:s, s:s}", "error", error_word(status), "reason", reason));
}

/* Our own head around a body of any size: http_format_response() holds answers to the
 * protocol's 64 KiB, and a page of nodes or an export is larger. Every header value here is
 * ours (static text or a number), never the client's. */
int admin_response_format(const admin_response_t *r, uint8_t **ret, size_t *ret_len) {
        char *head = NULL;
        size_t head_len = 0;
        FILE *f = open_memstream(&head, &head_len);
        if (!f)
                return -ENOMEM;
        fprintf(f, "HTTP/1.1 %03d %s\r\n", r->status, http_reason(r->status));
        if (r->body_len)
                fprintf(f, "Content-Type: %s\r\n", r->content_type ?: "application/json");
        fprintf(f, "Content-Length: %zu\r\nCache-Control: no-store\r\n", r->body_len);
        if (r->retry_after)
                fprintf(f, "Retry-After: %u\r\n", r->retry_after);
        if (r->allow)
                fprintf(f, "Allow: %s\r\n", r->allow);
        if (r->next)
                fprintf(f, "X-Next-After: %s\r\n", r->next);
        fputs("Connection: close\r\n\r\n", f);
        if (fclose(f) != 0) {
                free(head);
                return -ENOMEM;
        }
        uint8_t *out = realloc(head, head_len + r->body_len + 1);
        if (!out) {
                free(head);
                return -ENOMEM;
        }
        if (r->body_len)
                memcpy(out + head_len, r->body, r->body_len);
        out[head_len + r->body_len] = 0;
        *ret = out;
        *ret_len = head_len + r->body_len;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* The MEF side of protocol section 3: routing, request checks, peer authorisation and the
 * dispatch to the four exchanges (mef/handlers-<exchange>.c), as pure logic over the store (no
 * sockets, no logging: the audit trail records every outcome, a refusal's repeats once a
 * minute). */
#include <strings.h>

#include "mef/handlers-internal.h"
#include "proto/ids.h"

#define SEGMENT_NAME_MAX 32u

/* ---- routing ---- */

/* Percent-decode one path segment: %XX only ('+' is literal in a path). A bad escape or an
 * escaped NUL is -EINVAL, a result longer than out_size - 1 -EMSGSIZE. */
static int segment_decode(const char *s, size_t n, char *out, size_t out_size) {
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (c == '%') {
                        if (n - i < 3)
                                return -EINVAL;
                        int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
                        if (hi < 0 || lo < 0 || (hi | lo) == 0)
                                return -EINVAL;
                        c = (char) (hi << 4 | lo);
                        i += 2;
                }
                if (o + 1 >= out_size)
                        return -EMSGSIZE;
                out[o++] = c;
        }
        out[o] = 0;
        return 0;
}

/* The rule a segment_decode() failure broke. */
static const char *segment_why(int r) {
        return r == -EMSGSIZE ? "too long" : "bad percent-encoding";
}

/* -ENOENT: not one of our resources (404); -EINVAL/-EMSGSIZE: bad segment (400), with *ret_what
 * the segment and *ret_why the rule broken (static texts, never the value). */
static int route_parse(const char *base, const char *target, route_t *ret, const char **ret_what,
                       const char **ret_why) {
        const char *path = target;

        /* absolute-form (RFC 9112 3.2.2): skip scheme and authority. */
        if (strncasecmp(path, "https://", 8) == 0 || strncasecmp(path, "http://", 7) == 0) {
                path = strchr(strstr(path, "://") + 3, '/');
                if (!path)
                        return -ENOENT;
        }
        size_t len = strcspn(path, "?#"); /* the query plays no part in these resources */

        /* base is "/msce", "msce/", "/" or "": compare without its slashes. */
        const char *b = base ? base : "";
        while (*b == '/')
                b++;
        size_t blen = strlen(b);
        while (blen > 0 && b[blen - 1] == '/')
                blen--;
        if (len < 1 || path[0] != '/')
                return -ENOENT;
        path++, len--;
        if (blen > 0) {
                if (len < blen + 1 || memcmp(path, b, blen) != 0 || path[blen] != '/')
                        return -ENOENT;
                path += blen + 1;
                len -= blen + 1;
        }

        const char *seg[3];
        size_t seglen[3], nseg = 0;
        for (const char *p = path, *end = path + len;;) {
                const char *slash = memchr(p, '/', (size_t) (end - p));
                const char *e = slash ? slash : end;
                if (nseg == ELEMENTSOF(seg))
                        return -ENOENT;
                seg[nseg] = p;
                seglen[nseg++] = (size_t) (e - p);
                if (!slash)
                        break;
                p = slash + 1;
        }
        for (size_t i = 0; i < nseg; i++)
                if (seglen[i] == 0)
                        return -ENOENT;

        char name[SEGMENT_NAME_MAX + 1];
        int r = segment_decode(seg[0], seglen[0], name, sizeof name);
        if (r == -EMSGSIZE)
                return -ENOENT; /* no resource has a long name */
        if (r < 0) {
                *ret_what = "path";
                *ret_why = "bad percent-encoding";
                return r;
        }

        route_t rt = {};
        if (streq(name, "enrolments") && nseg == 1)
                rt.kind = ROUTE_ENROLMENTS;
        else if (streq(name, "enrolments") && nseg == 2)
                rt.kind = ROUTE_ENROLMENT;
        else if (streq(name, "fetchCredentials") && nseg == 3)
                rt.kind = ROUTE_FETCH;
        else
                return -ENOENT;
        if (nseg >= 2) {
                r = segment_decode(seg[1], seglen[1], rt.ke_id, sizeof rt.ke_id);
                *ret_what = "KeID in the path";
                if (r < 0) {
                        *ret_why = segment_why(r);
                        return r;
                }
                /* The KeID grammar (docs/protocol.md, "Identifiers"), as for a KeID in a body:
                 * 400, not 404 as for a KeID that merely is not known. */
                r = ids_check_ke_id(rt.ke_id, ret_why);
                if (r < 0)
                        return -EINVAL;
        }
        if (nseg == 3) {
                r = segment_decode(seg[2], seglen[2], rt.suid, sizeof rt.suid);
                if (r < 0) {
                        *ret_what = "suid in the path";
                        *ret_why = segment_why(r);
                        return r;
                }
        }
        *ret = rt;
        return 0;
}

/* ---- request checks ---- */

static bool content_type_is_json(const char *v) {
        static const char json[] = "application/json";
        if (!v || strncasecmp(v, json, sizeof json - 1) != 0)
                return false;
        v += sizeof json - 1;
        while (*v == ' ' || *v == '\t')
                v++;
        return *v == 0 || *v == ';'; /* parameters such as charset=utf-8 are fine */
}

/* NULL when the request carries what every exchange needs, else the reason for the 400. */
static const char *request_check(const http_msg_t *req, bool needs_body, char *buf, size_t size) {
        static const char *const required[] = { "Host", "X-M2M-Origin", "X-M2M-RI", "X-M2M-RVI" };
        for (size_t i = 0; i < ELEMENTSOF(required); i++) {
                const char *v = http_msg_header(req, required[i]);
                if (!v || !*v) {
                        snprintf(buf, size, "%s: missing", required[i]);
                        return buf;
                }
        }
        /* what would be executed unechoed is refused before anything is done */
        if (!mef_request_id_is_echoable(http_msg_header(req, "X-M2M-RI"))) {
                snprintf(buf, size, "X-M2M-RI: not 1..%u printable ASCII characters", MEF_RI_MAX);
                return buf;
        }
        if (!streq(http_msg_header(req, "X-M2M-RVI"), "3"))
                return "X-M2M-RVI: unsupported release version (expected 3)";
        if (!id_is_valid(http_msg_header(req, "X-M2M-Origin"), MSG_KEID_MAX))
                return "X-M2M-Origin: not a valid originator ID";
        if (needs_body && !content_type_is_json(http_msg_header(req, "Content-Type")))
                return "Content-Type: must be application/json";
        return NULL;
}

/* ---- peers ---- */

/* The authenticated peer as an enrolee node: -ENOENT when it is none. */
int handler_peer_node(const exchange_t *ex, store_node_t *ret) {
        const mef_peer_t *p = ex->peer;
        if (p->psk_identity && *p->psk_identity && p->node && streq(p->node->kpm_id, p->psk_identity)) {
                *ret = *p->node;
                return 0;
        }
        if (p->psk_identity && *p->psk_identity)
                return store_node_by_kpm_id(ex->store, p->psk_identity, ret, NULL, NULL);
        if (p->cert_fp && *p->cert_fp)
                return store_node_by_cert(ex->store, p->cert_fp, ret);
        return -ENOENT;
}

/* An enrolment of this node, or -ENOENT: another node's KeID is reported as unknown so a
 * node cannot probe for the KeIDs of others. */
int handler_node_enrolment(const exchange_t *ex, const store_node_t *node, const char *ke_id, store_enrolment_t *ret) {
        store_enrolment_t e = {};
        int r = store_enrolment_get(ex->store, ke_id, &e, NULL, NULL); /* the row only: no key */
        if (r < 0)
                return r;
        if (!streq(e.node_id, node->node_id))
                return -ENOENT;
        *ret = e;
        return 0;
}

/* ---- dispatch ---- */

int mef_handle(const mef_config_t *cfg, mef_store_t *store, const mef_peer_t *peer, const http_msg_t *req,
               mef_response_t *ret) {
        if (!cfg || !store || !peer || !req || !ret)
                return -EINVAL;

        exchange_t ex = {
                .cfg = cfg,
                .store = store,
                .peer = peer,
                .req = req,
                .actor = peer->psk_identity && *peer->psk_identity ? peer->psk_identity
                         : peer->cert_fp && *peer->cert_fp        ? peer->cert_fp
                                                                   : "-",
                .action = "request",
                .now = time(NULL),
        };
        route_t rt;
        char buf[128];
        const char *bad_seg = "path", *why = "bad segment";
        int r;

        if (req->kind != HTTP_REQUEST)
                return handler_fail(&ex, NULL, ret, 400, 4000, "not a request");
        r = route_parse(cfg->base, req->target, &rt, &bad_seg, &why);
        if (r == -ENOENT)
                return handler_fail(&ex, NULL, ret, 404, 4004, "no such resource");
        if (r < 0)
                return handler_fail(&ex, NULL, ret, 400, 4000, "%s: %s", bad_seg, why);

        const char *allow;
        bool method_ok;
        switch (rt.kind) {
        case ROUTE_ENROLMENTS:
                ex.action = "enrol";
                allow = "POST";
                method_ok = streq(req->method, "POST");
                break;
        case ROUTE_ENROLMENT:
                ex.action = streq(req->method, "DELETE") ? "deregister" : "status";
                allow = "GET, DELETE";
                method_ok = streq(req->method, "GET") || streq(req->method, "DELETE");
                break;
        case ROUTE_FETCH:
                ex.action = "fetch";
                allow = "GET";
                method_ok = streq(req->method, "GET");
                break;
        default:
                return -EINVAL;
        }
        const char *subject = rt.kind == ROUTE_ENROLMENTS ? NULL : rt.ke_id;
        if (!method_ok) {
                r = handler_fail(&ex, subject, ret, 405, 4005, "method not allowed (allowed: %s)", allow);
                if (r >= 0)
                        ret->allow = allow;
                return r;
        }
        const char *bad = request_check(req, rt.kind == ROUTE_ENROLMENTS, buf, sizeof buf);
        if (bad)
                return handler_fail(&ex, subject, ret, 400, 4000, "%s", bad);

        mef_exchange_t what;
        switch (rt.kind) {
        case ROUTE_ENROLMENTS:
                what = MEF_EXCHANGE_ENROL;
                r = handler_enrol(&ex, ret);
                break;
        case ROUTE_ENROLMENT:
                what = streq(req->method, "DELETE") ? MEF_EXCHANGE_DEREGISTER : MEF_EXCHANGE_STATUS;
                r = handler_enrolment(&ex, &rt, what == MEF_EXCHANGE_DEREGISTER, ret);
                break;
        case ROUTE_FETCH:
                what = MEF_EXCHANGE_FETCH;
                r = handler_fetch(&ex, &rt, ret);
                break;
        default:
                return -EINVAL;
        }
        if (r >= 0) {
                ret->exchange = what;
                if (!ret->ke_id[0] && rt.kind != ROUTE_ENROLMENTS)
                        snprintf(ret->ke_id, sizeof ret->ke_id, "%s", rt.ke_id);
        }
        return r;
}

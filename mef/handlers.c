/* SPDX-License-Identifier: MIT */
/* The MEF side of protocol section 3: routing, request checks, peer authorisation and the four
 * exchanges, as pure logic over the store (no sockets, no logging: the audit trail records
 * every outcome). */
#include <stdarg.h>
#include <strings.h>
#include <time.h>

#include "mef/handlers.h"
#include "proto/msg.h"
#include "util/util.h"

#define RI_ECHO_MAX 64u   /* X-M2M-RI echoed only when printable and at most this long */
#define SUID_MAX 32u
#define DETAIL_MAX 512u
#define SEGMENT_NAME_MAX 32u

typedef enum route_kind {
        ROUTE_ENROLMENTS, /* <base>/enrolments */
        ROUTE_ENROLMENT,  /* <base>/enrolments/<KeID> */
        ROUTE_FETCH,      /* <base>/fetchCredentials/<KeID>/<suid> */
} route_kind_t;

typedef struct route {
        route_kind_t kind;
        char ke_id[MSG_KEID_MAX + 1];
        char suid[MSG_KEID_MAX + 1]; /* validated by the handler (400 names it) */
} route_t;

/* One request in flight: what every helper needs to answer and audit. */
typedef struct exchange {
        const mef_config_t *cfg;
        mef_store_t *store;
        const mef_peer_t *peer;
        const http_msg_t *req;
        const char *actor;  /* the authenticated identity */
        const char *action; /* "enrol", "status", "deregister", "fetch", "request" */
        time_t now;
} exchange_t;

/* ---- responses ---- */

int mef_response_error(int status, int rsc, const char *reason, mef_response_t *ret) {
        char *body = NULL;
        int r = msg_dbg_format(reason, &body);
        if (r < 0 && r != -ENOMEM)
                /* A reason the formatter refuses (it quotes peer input): fall back. */
                r = msg_dbg_format("request rejected", &body);
        if (r < 0)
                return r;
        *ret = (mef_response_t) {
                .status = status,
                .rsc = rsc,
                .body = body,
                .body_len = strlen(body),
        };
        return 0;
}

void mef_response_done(mef_response_t *r) {
        if (!r)
                return;
        /* Profiles and credentials carry key bytes. */
        erase(r->body, r->body_len);
        free(r->body);
        r->body = NULL;
        r->body_len = 0;
}

int mef_response_format(const mef_response_t *r, const char *request_id, uint8_t **ret, size_t *ret_len) {
        char rsc[16], retry[16];
        const char *h[16];
        size_t n = 0;

        if (!r || !ret || !ret_len)
                return -EINVAL;
        snprintf(rsc, sizeof rsc, "%d", r->rsc);
        h[n++] = "X-M2M-RSC";
        h[n++] = rsc;
        if (request_id && id_is_valid(request_id, RI_ECHO_MAX)) {
                h[n++] = "X-M2M-RI";
                h[n++] = request_id;
        }
        if (r->body && r->body_len > 0) {
                h[n++] = "Content-Type";
                h[n++] = "application/json";
        }
        if (r->retry_after > 0) {
                snprintf(retry, sizeof retry, "%u", r->retry_after);
                h[n++] = "Retry-After";
                h[n++] = retry;
        }
        if (r->allow) {
                h[n++] = "Allow";
                h[n++] = r->allow;
        }
        h[n++] = "Connection";
        h[n++] = "close";
        h[n] = NULL;
        return http_format_response(r->status, h, r->body_len > 0 ? r->body : NULL, r->body_len, ret, ret_len);
}

/* A success response owning a formatted JSON body. */
static void respond_ok(mef_response_t *ret, int status, int rsc, char *body) {
        *ret = (mef_response_t) {
                .status = status,
                .rsc = rsc,
                .body = body,
                .body_len = body ? strlen(body) : 0,
        };
}

/* ---- audit ---- */

_printf_(4, 0) static int audit_va(const exchange_t *ex, const char *subject, int status, const char *fmt,
                                   va_list ap) {
        char detail[DETAIL_MAX], what[DETAIL_MAX - 64];
        vsnprintf(what, sizeof what, fmt, ap);
        snprintf(detail, sizeof detail, "%d %s (from %s)", status, what,
                 ex->peer && ex->peer->addr ? ex->peer->addr : "?");
        return store_audit(ex->store, ex->actor, ex->action, subject && *subject ? subject : "-", detail);
}

_printf_(4, 5) static int audit(const exchange_t *ex, const char *subject, int status, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = audit_va(ex, subject, status, fmt, ap);
        va_end(ap);
        return r;
}

/* An error answer, audited (best effort: the answer is an error already). */
_printf_(6, 7) static int fail(const exchange_t *ex, const char *subject, mef_response_t *ret, int status,
                               int rsc, const char *fmt, ...) {
        char reason[MSG_DBG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        (void) audit(ex, subject, status, "%s", reason);
        return mef_response_error(status, rsc, reason, ret);
}

/* Internal errors: the audit trail gets the cause, the peer a generic reason. A store that is
 * locked or unreachable is a passing state: 503 with Retry-After, and no audit row (writing it
 * would wait for the same store; the server logs the 503). Nothing was changed: the failed call
 * rolled back. */
static int fail_internal(const exchange_t *ex, const char *subject, mef_response_t *ret, int error,
                         const char *what) {
        if (store_error_is_transient(error)) {
                int r = mef_response_error(503, 5000, "store busy: retry later", ret);
                if (r >= 0)
                        ret->retry_after = ex->cfg->retry_after;
                return r;
        }
        (void) audit(ex, subject, 500, "internal error: %s: %s", what, strerror(error < 0 ? -error : error));
        return mef_response_error(500, 5000, "internal error", ret);
}

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

/* -ENOENT: not one of our resources (404); -EINVAL/-EMSGSIZE: bad segment (400). */
static int route_parse(const char *base, const char *target, route_t *ret) {
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
        if (r < 0)
                return r;

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
                if (r < 0)
                        return r;
                if (!id_is_valid(rt.ke_id, MSG_KEID_MAX))
                        return -EINVAL;
        }
        if (nseg == 3) {
                r = segment_decode(seg[2], seglen[2], rt.suid, sizeof rt.suid);
                if (r < 0)
                        return r;
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
static int peer_node(const exchange_t *ex, store_node_t *ret) {
        const mef_peer_t *p = ex->peer;
        if (p->psk_identity && *p->psk_identity && p->node && streq(p->node->kpm_id, p->psk_identity)) {
                *ret = *p->node;
                return 0;
        }
        if (p->psk_identity && *p->psk_identity) {
                uint8_t kpm[MSG_KEY_MAX];
                size_t kpm_len = 0;
                int r = store_node_by_kpm_id(ex->store, p->psk_identity, ret, kpm, &kpm_len);
                erase(kpm, sizeof kpm);
                return r;
        }
        if (p->cert_fp && *p->cert_fp)
                return store_node_by_cert(ex->store, p->cert_fp, ret);
        return -ENOENT;
}

/* The authenticated peer as an enrolment target: -ENOENT when it is none. */
static int peer_target(const exchange_t *ex, store_target_t *ret) {
        const mef_peer_t *p = ex->peer;
        if (p->psk_identity && *p->psk_identity) {
                uint8_t psk[MSG_KEY_MAX];
                size_t psk_len = 0;
                int r = store_target_by_psk_id(ex->store, p->psk_identity, ret, psk, &psk_len);
                erase(psk, sizeof psk);
                return r;
        }
        if (p->cert_fp && *p->cert_fp)
                return store_target_by_cert(ex->store, p->cert_fp, ret);
        return -ENOENT;
}

/* An enrolment of this node, or -ENOENT: another node's KeID is reported as unknown so a
 * node cannot probe for the KeIDs of others. */
static int node_enrolment(const exchange_t *ex, const store_node_t *node, const char *ke_id,
                          store_enrolment_t *ret) {
        store_enrolment_t e = {};
        int r = store_enrolment_get(ex->store, ke_id, &e, NULL, NULL); /* the row only: no key */
        if (r < 0)
                return r;
        if (!streq(e.node_id, node->node_id))
                return -ENOENT;
        *ret = e;
        return 0;
}

/* ---- 3.1 enrol ---- */

/* [limits] enrolments_per_node: 1 with *ret the 429 + Retry-After, 0 when the node may enrol.
 * Only the window's first refusal is audited: a node enrolling in a loop adds one audit row
 * per window, not one per attempt. */
static int enrol_limit_check(const exchange_t *ex, const store_node_t *node, mef_response_t *ret) {
        if (!ex->peer->enrol_limit)
                return 0;
        bool first = false;
        int r = ratelimit_take(ex->peer->enrol_limit, node->node_id, now_usec(), &first);
        if (r < 0) {
                r = fail_internal(ex, node->node_id, ret, r, "enrolment rate limit");
                return r < 0 ? r : 1;
        }
        if (r == 0)
                return 0;
        if (first)
                (void) audit(ex, node->node_id, 429,
                             "enrolment rate limit: more than %u in %u s, refused for %d s (not recorded again "
                             "in this window)",
                             ex->cfg->enrolments_per_node, ex->cfg->enrolment_window_s, r);
        unsigned retry = (unsigned) r;
        r = mef_response_error(429, 4000, "too many enrolments of this node: retry later", ret);
        if (r < 0)
                return r;
        ret->retry_after = retry;
        return 1;
}

static int handle_enrol(const exchange_t *ex, mef_response_t *ret) {
        const char *origin = http_msg_header(ex->req, "X-M2M-Origin");
        store_node_t node;
        int r;

        r = peer_node(ex, &node);
        if (r == -ENOENT)
                return fail(ex, origin, ret, 403, 4103, MSG_HINT_NOT_ENROLEE ": peer is not an enrolee node");
        if (r < 0)
                return fail_internal(ex, origin, ret, r, "node lookup");

        msg_enrol_req_t req;
        char err[MSG_ERR_MAX] = "";
        const void *body = ex->req->body ? (const void *) ex->req->body : (const void *) "";
        r = msg_enrol_req_parse(body, ex->req->body_len, &req, err);
        if (r == -ENOMEM)
                return fail_internal(ex, node.node_id, ret, r, "enrolReq parse");
        if (r < 0)
                return fail(ex, node.node_id, ret, 400, 4000, "%s",
                            err[0] ? err : r == -EMSGSIZE ? "body: too large" : "msce:enrolReq: malformed");

        /* The m2m:dbg reasons of a 403 start with a stable hint the agent matches (docs/protocol.md,
         * "Why the MEF refused"). */
        /* Whether the node ID sent exists at all is not said: a holder of one Kpm must not learn
         * which other node IDs are registered. */
        if (!streq(origin, node.node_id))
                return fail(ex, node.node_id, ret, 403, 4103,
                            MSG_HINT_NODE_UNREGISTERED ": X-M2M-Origin: node not registered at this MEF with this credential");
        if (!streq(req.node_id, node.node_id))
                return fail(ex, node.node_id, ret, 403, 4103,
                            MSG_HINT_NODE_UNREGISTERED ": msce:enrolReq.nodeID: node not registered at this MEF with this credential");
        if (node.state == NODE_REVOKED)
                return fail(ex, node.node_id, ret, 403, 4103, MSG_HINT_NODE_REVOKED ": enrolment blocked: node revoked");
        r = enrol_limit_check(ex, &node, ret);
        if (r != 0)
                return r < 0 ? r : 0;
        if (!ex->peer->ekm)
                return fail_internal(ex, node.node_id, ret, -EINVAL, "no exported keying material");

        _cleanup_erase_(32) uint8_t ke[KDF_KE_LEN];
        _cleanup_erase_(32) uint8_t ltk[KDF_KE_LEN];
        store_enrolment_t e = {
                .state = ENROLMENT_ACTIVE,
                .created = ex->now,
                .exp = ex->now + (int64_t) (node.lifetime > 0 ? node.lifetime : ex->cfg->default_lifetime),
                .ltk_transported = node.ltk_transported,
        };
        r = kdf_split_ekm(ex->peer->ekm, ex->cfg->fqdn, ke, e.ke_id, sizeof e.ke_id);
        if (r < 0)
                return fail_internal(ex, node.node_id, ret, r, "KeID derivation (check [server] fqdn)");
        snprintf(e.node_id, sizeof e.node_id, "%s", node.node_id);
        const uint8_t *key = ke;
        if (node.ltk_transported) {
                r = random_bytes(ltk, sizeof ltk);
                if (r < 0)
                        return fail_internal(ex, node.node_id, ret, r, "ltk generation");
                key = ltk;
        }

        /* The answer is built before anything is stored: nothing changes when it cannot be. */
        _cleanup_(msg_profile_wipe) msg_profile_t p = {};
        snprintf(p.cse_id, sizeof p.cse_id, "%s", node.cse_id);
        snprintf(p.cse_base, sizeof p.cse_base, "%s", node.cse_base);
        snprintf(p.ke_id, sizeof p.ke_id, "%s", e.ke_id);
        p.exp_t = (time_t) e.exp;
        time_format_basic(p.exp_t, p.exp);
        /* kpsaID = "<RelativeKeID>.<n>@<fqdn>", n = 1..N in the node's target order. */
        const char *at = e.ke_id + 2 * KDF_REL_KEID_LEN;
        p.n_targets = MIN(node.n_targets, (size_t) MSG_TARGETS_MAX);
        for (size_t i = 0; i < p.n_targets; i++) {
                snprintf(p.targets[i].id, sizeof p.targets[i].id, "%s", node.targets[i]);
                int k = snprintf(p.targets[i].kpsa_id, sizeof p.targets[i].kpsa_id, "%.*s.%zu%s",
                                 (int) (2 * KDF_REL_KEID_LEN), e.ke_id, i + 1, at);
                if (k < 0 || (size_t) k >= sizeof p.targets[i].kpsa_id)
                        return fail_internal(ex, e.ke_id, ret, -ENAMETOOLONG, "kpsaID");
        }
        p.poll = node.poll > 0 ? node.poll : ex->cfg->default_poll;
        if (node.ltk_transported) {
                p.has_ltk = true;
                memcpy(p.ltk, ltk, sizeof ltk);
                p.ltk_len = sizeof ltk;
        }
        char *out = NULL;
        r = msg_profile_format(&p, &out);
        if (r < 0)
                /* -EINVAL: a node added before the identifier rules (proto/ids.h) holds a CSE-ID,
                 * cseBase or target ID the agent would refuse */
                return fail_internal(ex, e.ke_id, ret, r,
                                     r == -EINVAL ? "profile formatting (an identifier of the node breaks the "
                                                    "rules of docs/protocol.md: msce-mef node show)"
                                                  : "profile formatting");
        mef_response_t resp;
        respond_ok(&resp, 201, 2001, out);

        /* prev only informs the audit trail: every ACTIVE enrolment of the node is retired
         * anyway, and a prev naming another node's enrolment must not touch it. */
        char prev_note[MSG_KEID_MAX + 48] = "";
        if (req.prev[0]) {
                store_enrolment_t pe;
                int q = node_enrolment(ex, &node, req.prev, &pe);
                snprintf(prev_note, sizeof prev_note, " prev=%s%s", req.prev,
                         q == 0 ? "" : q == -ENOENT ? " (unknown or not this node's: ignored)" : " (lookup failed)");
        }

        r = store_begin(ex->store);
        if (r >= 0)
                r = store_enrolment_set_state_for_node(ex->store, node.node_id, ENROLMENT_RETIRED);
        if (r >= 0)
                r = store_enrolment_add(ex->store, &e, key, node.ltk_transported ? sizeof ltk : sizeof ke);
        if (r >= 0 && node.state == NODE_REENROL)
                r = store_node_set_state(ex->store, node.node_id, NODE_ACTIVE);
        if (r >= 0)
                r = audit(ex, e.ke_id, 201, "node=%s exp=%s targets=%zu%s%s", node.node_id, p.exp,
                          p.n_targets, node.ltk_transported ? " ltk" : "", prev_note);
        if (r >= 0)
                r = store_commit(ex->store);
        if (r < 0) {
                store_rollback(ex->store);
                mef_response_done(&resp);
                return fail_internal(ex, e.ke_id, ret, r, "storing the enrolment");
        }
        snprintf(resp.node_id, sizeof resp.node_id, "%s", node.node_id);
        snprintf(resp.ke_id, sizeof resp.ke_id, "%s", e.ke_id);
        *ret = resp;
        return 0;
}

/* 3.2 and 3.3: the peer must be a node, and the KeID one of its enrolments. 1 when found; 0
 * when *ret already holds the error answer. */
static int peer_enrolment(const exchange_t *ex, const route_t *rt, store_node_t *node, store_enrolment_t *e,
                          mef_response_t *ret) {
        int r = peer_node(ex, node);
        if (r == -ENOENT)
                return fail(ex, rt->ke_id, ret, 403, 4103, MSG_HINT_NOT_ENROLEE ": peer is not an enrolee node");
        if (r < 0)
                return fail_internal(ex, rt->ke_id, ret, r, "node lookup");
        r = node_enrolment(ex, node, rt->ke_id, e);
        if (r == -ENOENT)
                return fail(ex, rt->ke_id, ret, 404, 4004, "unknown KeID");
        if (r < 0)
                return fail_internal(ex, rt->ke_id, ret, r, "enrolment lookup");
        return 1;
}

/* ---- 3.2 status ---- */

static int handle_status(const exchange_t *ex, const route_t *rt, mef_response_t *ret) {
        store_node_t node;
        store_enrolment_t e = {};
        int r = peer_enrolment(ex, rt, &node, &e, ret);
        if (r <= 0)
                return r;

        msg_state_t state;
        if (node.state == NODE_REVOKED || e.state == ENROLMENT_REVOKED)
                state = MSG_STATE_REVOKED;
        else if (e.state != ENROLMENT_ACTIVE)
                return fail(ex, rt->ke_id, ret, 404, 4004, "unknown KeID (%s)", enrolment_state_to_string(e.state));
        else if (e.exp <= ex->now)
                return fail(ex, rt->ke_id, ret, 404, 4004, "unknown KeID (expired)");
        else if (node.state == NODE_REENROL)
                state = MSG_STATE_REENROL;
        else
                state = MSG_STATE_ACTIVE;

        msg_status_t s = {
                .state = state,
                .exp_t = (time_t) e.exp,
                .poll = node.poll > 0 ? node.poll : ex->cfg->default_poll,
        };
        snprintf(s.ke_id, sizeof s.ke_id, "%s", e.ke_id);
        time_format_basic(s.exp_t, s.exp);
        char *out = NULL;
        r = msg_status_format(&s, &out);
        if (r < 0)
                return fail_internal(ex, rt->ke_id, ret, r, "status formatting");
        /* Tallied on the node (last seen, count) rather than an audit row each: a fleet polls
         * daily, and the trail is for changes. Best effort: the answer stands either way. */
        (void) store_node_seen(ex->store, node.node_id, (int64_t) ex->now);
        respond_ok(ret, 200, 2000, out);
        snprintf(ret->node_id, sizeof ret->node_id, "%s", node.node_id);
        return 0;
}

/* ---- 3.3 deregister ---- */

static int handle_deregister(const exchange_t *ex, const route_t *rt, mef_response_t *ret) {
        store_node_t node;
        store_enrolment_t e = {};
        int r = peer_enrolment(ex, rt, &node, &e, ret);
        if (r <= 0)
                return r;
        if (e.state == ENROLMENT_RETIRED || e.state == ENROLMENT_DEREGISTERED)
                return fail(ex, rt->ke_id, ret, 404, 4004, "unknown KeID (%s)", enrolment_state_to_string(e.state));

        /* A revoked enrolment stays revoked: the operator's record is not the device's to erase. */
        if (e.state == ENROLMENT_ACTIVE) {
                r = store_begin(ex->store);
                if (r >= 0)
                        r = store_enrolment_set_state(ex->store, rt->ke_id, ENROLMENT_DEREGISTERED);
                if (r >= 0)
                        r = audit(ex, rt->ke_id, 200, "node=%s deregistered", node.node_id);
                if (r >= 0)
                        r = store_commit(ex->store);
                if (r < 0) {
                        store_rollback(ex->store);
                        return fail_internal(ex, rt->ke_id, ret, r, "deregistering");
                }
        } else
                (void) audit(ex, rt->ke_id, 200, "node=%s deregister of a revoked enrolment: kept revoked",
                             node.node_id);
        respond_ok(ret, 200, 2002, NULL);
        snprintf(ret->node_id, sizeof ret->node_id, "%s", node.node_id);
        return 0;
}

/* ---- 3.4 fetchCredentials ---- */

static bool suid_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > SUID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
                      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

static int handle_fetch(const exchange_t *ex, const route_t *rt, mef_response_t *ret) {
        const char *origin = http_msg_header(ex->req, "X-M2M-Origin");
        store_target_t target;
        int r;

        r = peer_target(ex, &target);
        if (r == -ENOENT)
                return fail(ex, rt->ke_id, ret, 403, 4103, "peer is not an enrolment target");
        if (r < 0)
                return fail_internal(ex, rt->ke_id, ret, r, "target lookup");
        if (!streq(origin, target.id))
                return fail(ex, rt->ke_id, ret, 403, 4103, "X-M2M-Origin: not the authenticated target");
        /* The suid (TS-0003 security usage identifier) says what the target will use the key
         * for. This MEF derives one Kpsa per (enrolment, target) whatever the usage, so the
         * suid is checked and recorded in the audit trail but does not change the answer. */
        if (!suid_is_valid(rt->suid))
                return fail(ex, rt->ke_id, ret, 400, 4000, "suid: 1..%u characters of [A-Za-z0-9_-] expected",
                            SUID_MAX);

        store_enrolment_t e = {};
        _cleanup_erase_(64) uint8_t key[MSG_KEY_MAX];
        size_t key_len = 0;
        r = store_enrolment_get(ex->store, rt->ke_id, &e, key, &key_len);
        if (r == -ENOENT)
                return fail(ex, rt->ke_id, ret, 404, 4004, "unknown KeID");
        if (r < 0)
                return fail_internal(ex, rt->ke_id, ret, r, "enrolment lookup");
        if (e.state != ENROLMENT_ACTIVE)
                return fail(ex, rt->ke_id, ret, 404, 4004, "unknown KeID (%s)", enrolment_state_to_string(e.state));
        if (e.exp <= ex->now)
                return fail(ex, rt->ke_id, ret, 404, 4004, "unknown KeID (expired)");

        store_node_t node;
        r = store_node_get(ex->store, e.node_id, &node);
        /* A revoked node's keys are no longer valid, whatever state its enrolments were left in. */
        if (r == -ENOENT || (r >= 0 && node.state == NODE_REVOKED))
                return fail(ex, rt->ke_id, ret, 404, 4004, "unknown KeID (node %s)", r < 0 ? "removed" : "revoked");
        if (r < 0)
                return fail_internal(ex, rt->ke_id, ret, r, "node lookup");
        bool named = false;
        for (size_t i = 0; i < node.n_targets && i < MSG_TARGETS_MAX; i++)
                if (streq(node.targets[i], target.id))
                        named = true;
        if (!named)
                return fail(ex, rt->ke_id, ret, 403, 4103, "target not named for this KeID");

        _cleanup_(msg_credential_wipe) msg_credential_t c = {
                .status = true,
                .key_len = KDF_KEY_LEN,
                .lifetime_t = (time_t) e.exp,
        };
        r = kdf_kpsa(key, key_len, target.id, c.key);
        if (r < 0)
                return fail_internal(ex, rt->ke_id, ret, r, "Kpsa derivation");
        snprintf(c.enrolee_id, sizeof c.enrolee_id, "%s", node.cse_id);
        time_format_basic(c.lifetime_t, c.lifetime);
        char *out = NULL;
        r = msg_credential_format(&c, &out);
        if (r < 0)
                return fail_internal(ex, rt->ke_id, ret, r, "credential formatting");
        mef_response_t resp;
        respond_ok(&resp, 200, 2000, out);

        /* A key leaves the MEF only with a record of it. */
        r = audit(ex, rt->ke_id, 200, "target=%s suid=%s node=%s", target.id, rt->suid, node.node_id);
        if (r < 0) {
                mef_response_done(&resp);
                return fail_internal(ex, rt->ke_id, ret, r, "audit");
        }
        snprintf(resp.node_id, sizeof resp.node_id, "%s", node.node_id);
        *ret = resp;
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
        int r;

        if (req->kind != HTTP_REQUEST)
                return fail(&ex, NULL, ret, 400, 4000, "not a request");
        r = route_parse(cfg->base, req->target, &rt);
        if (r == -ENOENT)
                return fail(&ex, NULL, ret, 404, 4004, "no such resource");
        if (r < 0)
                return fail(&ex, NULL, ret, 400, 4000, "%s",
                            r == -EMSGSIZE ? "path segment too long" : "bad path segment (percent-encoding or KeID)");

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
                r = fail(&ex, subject, ret, 405, 4005, "method not allowed (allowed: %s)", allow);
                if (r >= 0)
                        ret->allow = allow;
                return r;
        }
        const char *bad = request_check(req, rt.kind == ROUTE_ENROLMENTS, buf, sizeof buf);
        if (bad)
                return fail(&ex, subject, ret, 400, 4000, "%s", bad);

        mef_exchange_t what;
        switch (rt.kind) {
        case ROUTE_ENROLMENTS:
                what = MEF_EXCHANGE_ENROL;
                r = handle_enrol(&ex, ret);
                break;
        case ROUTE_ENROLMENT:
                what = streq(req->method, "DELETE") ? MEF_EXCHANGE_DEREGISTER : MEF_EXCHANGE_STATUS;
                r = what == MEF_EXCHANGE_DEREGISTER ? handle_deregister(&ex, &rt, ret) : handle_status(&ex, &rt, ret);
                break;
        case ROUTE_FETCH:
                what = MEF_EXCHANGE_FETCH;
                r = handle_fetch(&ex, &rt, ret);
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

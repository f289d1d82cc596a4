/* SPDX-License-Identifier: MIT */
/* The agent's side of the Msce exchanges (protocol 3.1-3.3). Every exchange is one TCP
 * connection, one TLS handshake, one request and one response, all under one deadline; the
 * result is classified as protocol section 5 says. */
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <time.h>

#include "agent/enrol.h"
#include "proto/http.h"
#include "proto/tls.h"
#include "util/util.h"

/* Head + body limits of protocol section 6, plus room for chunk framing. */
#define RESPONSE_BUF_MAX (HTTP_HEAD_MAX + HTTP_BODY_MAX + 16384u)
#define READ_STEP 4096u

static const char *const outcome_table[_OUTCOME_MAX] = {
        [OUTCOME_OK] = "ok",
        [OUTCOME_TRANSIENT] = "transient",
        [OUTCOME_REJECTED] = "rejected",
        [OUTCOME_CONFIG] = "configuration",
};

const char *outcome_to_string(outcome_t o) {
        if (o < 0 || o >= _OUTCOME_MAX)
                return NULL;
        return outcome_table[o];
}

static int _printf_(4, 5) set_fail(exchange_info_t *info, outcome_t o, int r, const char *fmt, ...) {
        info->outcome = o;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(info->reason, sizeof info->reason, fmt, ap);
        va_end(ap);
        return r;
}

/* What one exchange sends. */
typedef struct request {
        const char *method;
        const char *what;      /* for messages: "enrolment", "status check", ... */
        char target[HTTP_TARGET_MAX + 1];
        const char *origin;    /* X-M2M-Origin */
        const char *body;      /* NULL: none */
        int want_status;       /* the success answer */
        int want_rsc;
        uint8_t *ekm;          /* non-NULL: export KDF_EKM_LEN bytes after the handshake */
} request_t;

/* The response buffer may hold a transported ltk: wipe it whatever happens. */
typedef struct rbuf {
        uint8_t *data;
        size_t len;
} rbuf_t;

static void rbuf_done(rbuf_t *b) {
        if (b->data) {
                erase(b->data, b->len);
                free(b->data);
        }
        *b = (rbuf_t) {};
}

typedef struct session {
        tls_ctx_t *ctx;
        int fd;
        tls_conn_t *conn;
} session_t;

static void session_done(session_t *s) {
        if (s->conn) {
                tls_conn_shutdown(s->conn);
                s->conn = tls_conn_free(s->conn);
        }
        if (s->fd >= 0)
                close(s->fd);
        s->fd = -1;
        s->ctx = tls_ctx_free(s->ctx);
}

/* The TLS client context from the configuration. The Kpm is read here, at exchange time, into
 * a wiped buffer and copied into the context (which wipes it on free). */
static int session_ctx(const agent_config_t *cfg, tls_ctx_t **ret, exchange_info_t *info) {
        tls_config_t tc = {
                .mode = cfg->mode,
                .min_version = cfg->tls_min,
                .max_version = cfg->tls_max,
        };
        int r;
        if (cfg->mode == TLS_MODE_PSK) {
                _cleanup_secret_ secret_t sec = {};
                _cleanup_erase_(64) uint8_t kpm[MSG_KEY_MAX];
                char hex[2 * MSG_KEY_MAX + 3];
                size_t len = 0;

                r = secret_file_read(cfg->psk_file, sizeof hex - 1, &sec);
                if (r == -EPERM)
                        return set_fail(info, OUTCOME_CONFIG, r,
                                        "%s: [mef] psk_file: %s is readable by group or others (chmod 0600)",
                                        cfg->path, cfg->psk_file);
                if (r < 0)
                        return set_fail(info, OUTCOME_CONFIG, r, "%s: [mef] psk_file: cannot read %s: %s",
                                        cfg->path, cfg->psk_file, strerror(-r));
                size_t n = sec.len;
                if (n > 0 && sec.data[n - 1] == '\n')
                        n--;
                if (n > 0 && sec.data[n - 1] == '\r')
                        n--;
                memcpy(hex, sec.data, n);
                hex[n] = 0;
                r = memchr(hex, 0, n) ? -EINVAL : hex_decode(hex, kpm, sizeof kpm, &len);
                erase(hex, sizeof hex);
                if (r < 0 || len < MSG_KEY_MIN)
                        return set_fail(info, OUTCOME_CONFIG, -EINVAL,
                                        "%s: [mef] psk_file: %s does not hold a 16..64 byte Kpm as hex",
                                        cfg->path, cfg->psk_file);
                tc.psk_identity = cfg->psk_identity;
                tc.psk = kpm;
                tc.psk_len = len;
                r = tls_ctx_new_client(&tc, ret);
                erase(&tc, sizeof tc);
        } else {
                /* wolfSSL loads the key whatever its mode: check it is still owner-only. */
                _cleanup_close_ int fd = open(cfg->key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                r = fd < 0 ? negative_errno() : secret_fd_check_mode(fd);
                if (r == -EPERM)
                        return set_fail(info, OUTCOME_CONFIG, r,
                                        "%s: [mef] key: %s is readable by group or others (chmod 0600)", cfg->path,
                                        cfg->key_file);
                if (r < 0)
                        return set_fail(info, OUTCOME_CONFIG, r, "%s: [mef] key: cannot read %s: %s", cfg->path,
                                        cfg->key_file, strerror(-r));
                tc.cert_file = cfg->cert_file;
                tc.key_file = cfg->key_file;
                tc.ca_file = cfg->ca_file;
                r = tls_ctx_new_client(&tc, ret);
        }
        if (r == -ENOMEM)
                return set_fail(info, OUTCOME_TRANSIENT, r, "out of memory setting up TLS");
        if (r < 0)
                return set_fail(info, OUTCOME_CONFIG, r,
                                cfg->mode == TLS_MODE_PSK ? "%s: [mef]: cannot set up TLS with the PSK: %s"
                                                          : "%s: [mef]: cannot load certificate, key or trust anchors: %s",
                                cfg->path, strerror(-r));
        return 0;
}

/* "host" or "[v6]", plus ":port" unless 443. */
static int host_header(const agent_config_t *cfg, char **ret) {
        bool v6 = strchr(cfg->mef_host, ':');
        bool dflt = streq(cfg->mef_port, "443");
        return asprintf(ret, "%s%s%s%s%s", v6 ? "[" : "", cfg->mef_host, v6 ? "]" : "", dflt ? "" : ":",
                        dflt ? "" : cfg->mef_port) < 0 ? -ENOMEM : 0;
}

/* Connect, handshake, send. On success s->conn is ready for the response. */
static int session_open(const agent_config_t *cfg, session_t *s, uint64_t deadline, const request_t *req,
                        const char *ri, exchange_info_t *info) {
        int r = session_ctx(cfg, &s->ctx, info);
        if (r < 0)
                return r;

        uint64_t connect_deadline = MIN(deadline, now_usec() + (uint64_t) cfg->connect_timeout_ms * 1000u);
        r = tcp_connect_until(cfg->mef_host, cfg->mef_port, connect_deadline, &s->fd);
        if (r == -ENOENT)
                /* -ENOENT is reserved for 404 (unknown KeID): a name that does not resolve is
                 * a network problem like any other. */
                return set_fail(info, OUTCOME_TRANSIENT, -EHOSTUNREACH, "cannot resolve %s", cfg->mef_host);
        if (r == -ETIMEDOUT)
                return set_fail(info, OUTCOME_TRANSIENT, r, "connecting to %s port %s timed out", cfg->mef_host,
                                cfg->mef_port);
        if (r < 0)
                return set_fail(info, OUTCOME_TRANSIENT, r, "cannot connect to %s port %s: %s", cfg->mef_host,
                                cfg->mef_port, strerror(-r));

        r = tls_conn_new_client(s->ctx, s->fd, cfg->mef_host, &s->conn);
        if (r < 0)
                return set_fail(info, OUTCOME_TRANSIENT, r, "cannot set up the TLS connection: %s", strerror(-r));
        r = tls_conn_handshake_until(s->conn, deadline);
        if (r == -EACCES && cfg->mode == TLS_MODE_PSK)
                return set_fail(info, OUTCOME_REJECTED, r,
                                "TLS authentication failed: the MEF refused PSK identity %s, or the keys differ",
                                cfg->psk_identity);
        if (r == -EACCES)
                return set_fail(info, OUTCOME_REJECTED, r,
                                "TLS authentication failed: the MEF refused our certificate, or its own did not verify against %s",
                                cfg->ca_file);
        if (r == -ETIMEDOUT)
                return set_fail(info, OUTCOME_TRANSIENT, r, "TLS handshake timed out");
        if (r < 0)
                return set_fail(info, OUTCOME_TRANSIENT, r, "TLS handshake failed: %s", strerror(-r));
        snprintf(info->tls_version, sizeof info->tls_version, "%s", tls_conn_version(s->conn) ?: "");
        snprintf(info->cipher, sizeof info->cipher, "%s", tls_conn_cipher(s->conn) ?: "");

        if (req->ekm) {
                r = tls_conn_export(s->conn, KDF_EXPORTER_LABEL, req->ekm, KDF_EKM_LEN);
                if (r < 0)
                        return set_fail(info, OUTCOME_TRANSIENT, r, "cannot export keying material: %s",
                                        strerror(-r));
        }

        _cleanup_free_ char *host = NULL;
        r = host_header(cfg, &host);
        if (r < 0)
                return set_fail(info, OUTCOME_TRANSIENT, r, "out of memory");
        const char *headers[] = {
                "Host", host,
                "X-M2M-Origin", req->origin,
                "X-M2M-RI", ri,
                "X-M2M-RVI", "3",
                "Accept", "application/json",
                "Connection", "close",
                req->body ? "Content-Type" : NULL, "application/json",
                NULL,
        };
        _cleanup_free_ uint8_t *msg = NULL;
        size_t msg_len = 0;
        r = http_format_request(req->method, req->target, headers, req->body, req->body ? strlen(req->body) : 0,
                                &msg, &msg_len);
        if (r < 0)
                return set_fail(info, OUTCOME_CONFIG, r, "cannot format the request: %s", strerror(-r));
        r = tls_conn_write_all_until(s->conn, msg, msg_len, deadline);
        if (r == -ETIMEDOUT)
                return set_fail(info, OUTCOME_TRANSIENT, r, "sending the request timed out");
        if (r < 0)
                return set_fail(info, OUTCOME_TRANSIENT, r, "sending the request failed: %s", strerror(-r));
        return 0;
}

/* Read until http_parse has one complete response. */
static int session_read(session_t *s, uint64_t deadline, http_msg_t *ret, exchange_info_t *info) {
        _cleanup_(rbuf_done) rbuf_t b = { .data = malloc(RESPONSE_BUF_MAX) };
        if (!b.data)
                return set_fail(info, OUTCOME_TRANSIENT, -ENOMEM, "out of memory");
        http_parser_t p;
        http_parser_init(&p, HTTP_RESPONSE);
        for (;;) {
                size_t room = MIN((size_t) READ_STEP, RESPONSE_BUF_MAX - b.len);
                if (room == 0)
                        return set_fail(info, OUTCOME_TRANSIENT, -EMSGSIZE, "response too large");
                ssize_t n = tls_conn_read_until(s->conn, b.data + b.len, room, deadline);
                if (n == -ETIMEDOUT)
                        return set_fail(info, OUTCOME_TRANSIENT, -ETIMEDOUT, "timed out waiting for the response");
                if (n < 0)
                        return set_fail(info, OUTCOME_TRANSIENT, (int) n, "reading the response failed: %s",
                                        strerror((int) -n));
                if (n == 0) {
                        /* Only reached while the parser wants more, so http_parse_eof() can only
                         * confirm the truncation (-EPIPE). */
                        (void) http_parse_eof(&p, b.len);
                        return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "%s",
                                        b.len == 0 ? "the MEF closed the connection without a response"
                                                   : "truncated response");
                }
                b.len += (size_t) n;
                int r = http_parse(&p, b.data, b.len, ret);
                if (r == 1)
                        return 0;
                if (r == -EMSGSIZE)
                        return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "response exceeds the protocol limits");
                if (r < 0)
                        return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "malformed HTTP response");
        }
}

/* The X-M2M-RSC header: four digits (TS-0004 codes are 1000..6999). */
static int rsc_parse(const char *s) {
        unsigned long long v;
        if (!s || strlen(s) != 4 || parse_uint(s, 6999, &v) < 0 || v < 1000)
                return -EINVAL;
        return (int) v;
}

/* Retry-After in seconds (the HTTP-date form is not used by the MEF: 0), clamped. */
static unsigned retry_after_parse(const char *s, unsigned max) {
        unsigned long long v;
        if (!s || strlen(s) > 10 || parse_uint(s, UINT32_MAX, &v) < 0)
                return 0;
        return (unsigned) MIN(v, (unsigned long long) max);
}

/* Check the response belongs to our request and map its status to an outcome. */
static int response_check(const agent_config_t *cfg, const request_t *req, const http_msg_t *m, const char *ri,
                          exchange_info_t *info) {
        info->http_status = m->status;
        const char *echo = http_msg_header(m, "X-M2M-RI");
        if (!echo || !streq(echo, ri))
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG,
                                "response for another request (X-M2M-RI %s, expected %s)",
                                echo ? "does not match" : "missing", ri);
        int rsc = rsc_parse(http_msg_header(m, "X-M2M-RSC"));
        if (rsc < 0)
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "malformed response: %s X-M2M-RSC (HTTP %d)",
                                http_msg_header(m, "X-M2M-RSC") ? "invalid" : "no", m->status);
        info->rsc = rsc;
        if (rsc / 1000 != m->status / 100)
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG,
                                "malformed response: X-M2M-RSC %d does not match HTTP status %d", rsc, m->status);

        if (m->status == req->want_status && rsc == req->want_rsc)
                return 0;

        char dbg[MSG_DBG_MAX];
        msg_dbg_parse(m->body, m->body_len, dbg);
        char answer[MSG_DBG_MAX + 64];
        snprintf(answer, sizeof answer, "MEF answered %d %s (RSC %d)%s%s", m->status, http_reason(m->status) ?: "",
                 rsc, dbg[0] ? ": " : "", dbg);

        switch (m->status / 100) {
        case 2:
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "unexpected answer to the %s: %s", req->what,
                                answer);
        case 5:
                info->retry_after = retry_after_parse(http_msg_header(m, "Retry-After"), cfg->retry_after_max_s);
                return set_fail(info, OUTCOME_TRANSIENT, m->status == 503 ? -EBUSY : -EREMOTEIO, "%s", answer);
        case 4:
                if (m->status == 403)
                        return set_fail(info, OUTCOME_REJECTED, -EACCES, "%s", answer);
                if (m->status == 404)
                        /* For a status check or deregistration: the MEF no longer knows the KeID
                         * (the caller re-enrols). For an enrolment: the URI's base is wrong. */
                        return set_fail(info, OUTCOME_REJECTED, -ENOENT, "%s%s", answer,
                                        req->ekm ? " (check [mef] uri)" : "");
                /* 400 and the other 4xx: the MEF refuses what we send. The same request will be
                 * refused again, so retrying fast cannot help: slow retry, shown distinctly. */
                return set_fail(info, OUTCOME_REJECTED, -EINVAL, "%s", answer);
        default:
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "unexpected answer to the %s: %s", req->what,
                                answer);
        }
}

/* One exchange: returns 0 with the (successful, checked) response in *ret. */
static int exchange(const agent_config_t *cfg, const request_t *req, http_msg_t *ret, exchange_info_t *info) {
        /* One deadline for the whole exchange (protocol section 6). */
        uint64_t deadline = now_usec() + (uint64_t) cfg->exchange_timeout_ms * 1000u;
        _cleanup_(session_done) session_t s = { .fd = -1 };
        _cleanup_(http_msg_done) http_msg_t m = {};

        uint8_t rnd[8];
        char ri[2 * sizeof rnd + 1];
        int r = random_bytes(rnd, sizeof rnd);
        if (r < 0)
                return set_fail(info, OUTCOME_TRANSIENT, r, "cannot get random bytes: %s", strerror(-r));
        hex_encode(rnd, sizeof rnd, ri);

        r = session_open(cfg, &s, deadline, req, ri, info);
        if (r < 0)
                return r;
        r = session_read(&s, deadline, &m, info);
        if (r < 0)
                return r;
        r = response_check(cfg, req, &m, ri, info);
        if (r < 0)
                return r;
        *ret = m;
        m = (http_msg_t) {};
        return 0;
}

/* <base>/enrolments or <base>/enrolments/<KeID> */
static int target_set(request_t *req, const agent_config_t *cfg, const char *ke_id, exchange_info_t *info) {
        int n = snprintf(req->target, sizeof req->target, "%s/enrolments%s%s", cfg->mef_base, ke_id ? "/" : "",
                         ke_id ?: "");
        if (n < 0 || (size_t) n >= sizeof req->target)
                return set_fail(info, OUTCOME_CONFIG, -ENAMETOOLONG, "request target too long");
        return 0;
}

/* KeIDs go into a path: printable, no path or query syntax. */
static bool ke_id_ok(const char *s) {
        return s && id_is_valid(s, MSG_KEID_MAX) && !strpbrk(s, "/?#%");
}

static void info_init(exchange_info_t *info) {
        *info = (exchange_info_t) { .outcome = OUTCOME_OK };
}

int enrol_run(const agent_config_t *cfg, const char *prev, enrol_result_t *ret, exchange_info_t *info) {
        exchange_info_t dummy;
        if (!info)
                info = &dummy;
        info_init(info);
        if (!cfg || !ret)
                return set_fail(info, OUTCOME_CONFIG, -EINVAL, "invalid arguments");
        if (prev && !ke_id_ok(prev))
                return set_fail(info, OUTCOME_CONFIG, -EINVAL, "invalid previous KeID");

        msg_enrol_req_t er = { .has_loc = cfg->has_loc, .loc = cfg->loc };
        snprintf(er.node_id, sizeof er.node_id, "%s", cfg->node_id);
        if (prev)
                snprintf(er.prev, sizeof er.prev, "%s", prev);
        _cleanup_free_ char *body = NULL;
        int r = msg_enrol_req_format(&er, &body);
        if (r < 0)
                return set_fail(info, OUTCOME_CONFIG, r, "cannot format the enrolment request: %s", strerror(-r));

        _cleanup_erase_(48) uint8_t ekm[KDF_EKM_LEN];
        _cleanup_erase_(32) uint8_t ke[KDF_KE_LEN];
        request_t req = {
                .method = "POST",
                .what = "enrolment",
                .origin = cfg->node_id,
                .body = body,
                .want_status = 201,
                .want_rsc = 2001,
                .ekm = ekm,
        };
        r = target_set(&req, cfg, NULL, info);
        if (r < 0)
                return r;

        _cleanup_(http_msg_done) http_msg_t m = {};
        r = exchange(cfg, &req, &m, info);
        if (r < 0)
                return r;

        char ke_id[KDF_KEID_MAX + 1];
        r = kdf_split_ekm(ekm, cfg->mef_host, ke, ke_id, sizeof ke_id);
        if (r < 0)
                return set_fail(info, OUTCOME_CONFIG, r, "cannot derive the KeID for host %s", cfg->mef_host);

        /* Built here, copied out only when complete: wiped on every path. */
        _cleanup_(enrol_result_wipe) enrol_result_t res = {};
        char err[MSG_ERR_MAX];
        r = msg_profile_parse(m.body, m.body_len, &res.profile, err);
        if (r < 0)
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "malformed profile: %s", err);
        if (!streq(res.profile.ke_id, ke_id))
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG,
                                "key confirmation failed: MEF sent keID %s, derived %s", res.profile.ke_id, ke_id);
        if (res.profile.exp_t <= time(NULL))
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "malformed profile: already expired (exp %s)",
                                res.profile.exp);

        if (res.profile.has_ltk) {
                memcpy(res.ltk, res.profile.ltk, res.profile.ltk_len);
                res.ltk_len = res.profile.ltk_len;
        } else {
                memcpy(res.ltk, ke, sizeof ke);
                res.ltk_len = sizeof ke;
        }
        for (size_t i = 0; i < res.profile.n_targets; i++) {
                r = kdf_kpsa(res.ltk, res.ltk_len, res.profile.targets[i].id, res.kpsa[i]);
                if (r < 0)
                        return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "cannot derive Kpsa for target %s",
                                        res.profile.targets[i].id);
        }

        memcpy(ret, &res, sizeof res);
        return 0;
}

int enrol_status(const agent_config_t *cfg, const char *ke_id, msg_status_t *ret, exchange_info_t *info) {
        exchange_info_t dummy;
        if (!info)
                info = &dummy;
        info_init(info);
        if (!cfg || !ret || !ke_id_ok(ke_id))
                return set_fail(info, OUTCOME_CONFIG, -EINVAL, "invalid arguments");

        request_t req = {
                .method = "GET",
                .what = "status check",
                .origin = ke_id,
                .want_status = 200,
                .want_rsc = 2000,
        };
        int r = target_set(&req, cfg, ke_id, info);
        if (r < 0)
                return r;
        _cleanup_(http_msg_done) http_msg_t m = {};
        r = exchange(cfg, &req, &m, info);
        if (r < 0)
                return r;

        msg_status_t st;
        char err[MSG_ERR_MAX];
        r = msg_status_parse(m.body, m.body_len, &st, err);
        if (r < 0)
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "malformed status: %s", err);
        if (!streq(st.ke_id, ke_id))
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "status for another KeID (%s)", st.ke_id);
        *ret = st;
        return 0;
}

int enrol_deregister(const agent_config_t *cfg, const char *ke_id, exchange_info_t *info) {
        exchange_info_t dummy;
        if (!info)
                info = &dummy;
        info_init(info);
        if (!cfg || !ke_id_ok(ke_id))
                return set_fail(info, OUTCOME_CONFIG, -EINVAL, "invalid arguments");

        request_t req = {
                .method = "DELETE",
                .what = "deregistration",
                .origin = ke_id,
                .want_status = 200,
                .want_rsc = 2002,
        };
        int r = target_set(&req, cfg, ke_id, info);
        if (r < 0)
                return r;
        _cleanup_(http_msg_done) http_msg_t m = {};
        return exchange(cfg, &req, &m, info);
}

void enrol_result_wipe(enrol_result_t *r) {
        if (r)
                explicit_bzero(r, sizeof *r);
}

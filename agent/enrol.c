/* SPDX-License-Identifier: MIT */
/* The agent's side of the Msce exchanges (protocol 3.1-3.3). Every exchange is one TCP
 * connection, one TLS handshake, one request and one response, all under one deadline; the
 * result is classified as protocol section 5 says.
 *
 * An exchange is a state machine (resolve, connect, handshake, write, read) driven by an
 * sd-event loop: one I/O source on the socket, re-armed for whatever tls_conn_want() asks, and
 * one timer (the connect deadline, then the whole-exchange deadline). Freeing it at any point
 * cancels it. The blocking enrol_*() calls run the same machine on a private loop. */
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "agent/backoff.h"
#include "hw/tpm2.h"
#include "agent/enrol.h"
#include "agent/resolve.h"
#include "proto/http.h"
#include "proto/ids.h"
#include "proto/tls.h"
#include "util/util.h"

/* Head + body limits of protocol section 6, plus room for chunk framing. */
#define RESPONSE_BUF_MAX (HTTP_HEAD_MAX + HTTP_BODY_MAX + 16384u)
#define READ_STEP 4096u

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

/* Kpm file format: hex of 16..64 bytes, one optional line end. Bad content is -EINVAL;
 * -EPERM when the file is readable by group or others; other errors from reading it. */
int kpm_read(const char *path, uint8_t key[MSG_KEY_MAX], size_t *ret_len) {
        _cleanup_secret_ secret_t sec = {};
        char hex[2 * MSG_KEY_MAX + 3];
        int r = secret_file_read(path, sizeof hex - 1, &sec);
        if (r < 0)
                return r;
        size_t n = sec.len;
        if (n > 0 && sec.data[n - 1] == '\n')
                n--;
        if (n > 0 && sec.data[n - 1] == '\r')
                n--;
        memcpy(hex, sec.data, n);
        hex[n] = 0;
        _cleanup_erase_(64) uint8_t buf[MSG_KEY_MAX];
        size_t len = 0;
        r = memchr(hex, 0, n) ? -EINVAL : hex_decode(hex, buf, sizeof buf, &len);
        erase(hex, sizeof hex);
        if (r < 0 || len < MSG_KEY_MIN)
                return -EINVAL;
        memcpy(key, buf, len);
        *ret_len = len;
        return 0;
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
                _cleanup_erase_(64) uint8_t kpm[MSG_KEY_MAX];
                size_t len = 0;

                if (!cfg->kpm_path)
                        return set_fail(info, OUTCOME_CONFIG, -ENOKEY,
                                        "%s: [mef] psk_credential: the Kpm is the systemd credential %s, which only "
                                        "msce-agent.service receives", cfg->path, cfg->psk_credential);
                r = kpm_read(cfg->kpm_path, kpm, &len);
                /* The credential when systemd passed one (agent/config.h), else psk_file. */
                const char *key = cfg->psk_file && streq(cfg->kpm_path, cfg->psk_file) ? "psk_file" : "psk_credential";
                if (r == -EPERM)
                        return set_fail(info, OUTCOME_CONFIG, r,
                                        "%s: [mef] %s: %s is readable by group or others (chmod 0600)",
                                        cfg->path, key, cfg->kpm_path);
                if (r == -EINVAL)
                        return set_fail(info, OUTCOME_CONFIG, r,
                                        "%s: [mef] %s: %s does not hold a 16..64 byte Kpm as hex",
                                        cfg->path, key, cfg->kpm_path);
                if (r < 0)
                        return set_fail(info, OUTCOME_CONFIG, r, "%s: [mef] %s: cannot read %s: %s",
                                        cfg->path, key, cfg->kpm_path, strerror(-r));
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

/* The X-M2M-RSC header: four digits (TS-0004 codes are 1000..6999). */
static int rsc_parse(const char *s) {
        unsigned long long v;
        if (!s || strlen(s) != 4 || parse_uint(s, 6999, &v) < 0 || v < 1000)
                return -EINVAL;
        return (int) v;
}

/* Check the response belongs to our request and map its status to an outcome. */
/* Does the m2m:dbg reason start with "<hint>:"? */
static bool dbg_hint_is(const char *dbg, const char *hint) {
        size_t n = strlen(hint);
        return strncmp(dbg, hint, n) == 0 && dbg[n] == ':';
}

static int response_check(const agent_config_t *cfg, const request_t *req, const http_msg_t *m, const char *ri,
                          exchange_info_t *info) {
        info->http_status = m->status;
        /* We never send Expect: 100-continue and the protocol has one response per request:
         * an interim response is a broken MEF, not something to wait past. */
        if (m->status < 200)
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "malformed response: unexpected interim response %d",
                                m->status);
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
                /* any length, clamped to retry_after_max; not in seconds: the normal backoff */
                info->has_retry_after = retry_after_parse(http_msg_header(m, "Retry-After"), cfg->retry_after_max_s,
                                                          &info->retry_after, &info->retry_after_capped,
                                                          info->retry_after_sent) > 0;
                return set_fail(info, OUTCOME_TRANSIENT, m->status == 503 ? -EBUSY : -EREMOTEIO, "%s", answer);
        case 4:
                if (m->status == 403) {
                        /* The MEF's hint first (docs/protocol.md, "Why the MEF refused"), in words. */
                        if (dbg_hint_is(dbg, MSG_HINT_NODE_UNREGISTERED))
                                return set_fail(info, OUTCOME_REJECTED, -EACCES,
                                                "node %s is not registered at this MEF with this credential "
                                                "(check [node] id and %s): %s", cfg->node_id,
                                                cfg->mode == TLS_MODE_PSK ? "psk_identity" : "certificate", answer);
                        if (dbg_hint_is(dbg, MSG_HINT_NODE_REVOKED))
                                return set_fail(info, OUTCOME_REJECTED, -EACCES,
                                                "node %s is revoked at this MEF (ask its operator to reinstate it): %s",
                                                cfg->node_id, answer);
                        if (dbg_hint_is(dbg, MSG_HINT_NOT_ENROLEE))
                                return set_fail(info, OUTCOME_REJECTED, -EACCES,
                                                "the MEF does not know this credential as a node's (check %s): %s",
                                                cfg->mode == TLS_MODE_PSK ? "psk_identity" : "certificate", answer);
                        return set_fail(info, OUTCOME_REJECTED, -EACCES, "%s", answer);
                }
                if (m->status == 404 && req->ekm)
                        /* An enrolment: the MEF has no enrolment resource there, the URI's base
                         * path is wrong. The same request will always fail: configuration. */
                        return set_fail(info, OUTCOME_CONFIG, -ENOENT,
                                        "%s: [mef] uri: %s has no enrolment resource, is the base path right? (%s)",
                                        cfg->path, cfg->mef_uri, answer);
                if (m->status == 404)
                        /* For a status check or deregistration: the MEF no longer knows the KeID
                         * (the caller re-enrols). */
                        return set_fail(info, OUTCOME_REJECTED, -ENOENT, "%s", answer);
                /* 400 and the other 4xx: the MEF refuses what we send. The same request will be
                 * refused again, so retrying fast cannot help: slow retry, shown distinctly. */
                return set_fail(info, OUTCOME_REJECTED, -EINVAL, "%s", answer);
        default:
                return set_fail(info, OUTCOME_TRANSIENT, -EBADMSG, "unexpected answer to the %s: %s", req->what,
                                answer);
        }
}

/* <base>/enrolments or <base>/enrolments/<KeID> */
static int target_set(request_t *req, const agent_config_t *cfg, const char *ke_id, exchange_info_t *info) {
        int n = snprintf(req->target, sizeof req->target, "%s/enrolments%s%s", cfg->mef_base, ke_id ? "/" : "",
                         ke_id ?: "");
        if (n < 0 || (size_t) n >= sizeof req->target)
                return set_fail(info, OUTCOME_CONFIG, -ENAMETOOLONG, "request target too long");
        return 0;
}

/* KeIDs go into a path: a valid KeID has no path or query syntax. */
static bool ke_id_ok(const char *s) {
        return ids_check_ke_id(s, NULL) == 0;
}

static void info_init(exchange_info_t *info) {
        *info = (exchange_info_t) { .outcome = OUTCOME_OK };
}


/* ---- the exchange as a state machine on sd-event ---- */

typedef enum kind {
        KIND_ENROL,
        KIND_STATUS,
        KIND_DEREGISTER,
} kind_t;

typedef enum phase {
        PHASE_START,
        PHASE_RESOLVE,
        PHASE_CONNECT,
        PHASE_HANDSHAKE,
        PHASE_WRITE,
        PHASE_READ,
        PHASE_COMPLETE, /* response checked, results set */
        PHASE_DONE,     /* finished: resources released, owner told */
} phase_t;

struct exchange {
        sd_event *event;
        const agent_config_t *cfg;
        kind_t kind;
        request_t req;
        char *body;
        char origin[MSG_KEID_MAX + 1];
        char ri[17];
        phase_t phase;
        uint64_t deadline;          /* the whole exchange (protocol section 6) */
        uint64_t connect_deadline;  /* resolution and connect */

        tls_ctx_t *ctx;
        resolve_t *resolve;
        struct addrinfo *addrs, *addr; /* all, the next to try */
        int connect_error;
        bool connecting;
        int fd;
        tls_conn_t *conn;
        bool tls_retry;             /* a new connection for tls_conn_retry() (-ENOPROTOOPT) */
        sd_event_source *io, *timer, *defer;

        uint8_t *out;               /* the request */
        size_t out_len, out_off;
        rbuf_t in;                  /* the response */
        http_parser_t parser;
        uint8_t ekm[KDF_EKM_LEN];

        exchange_info_t info;
        bool has_enrol;
        enrol_result_t enrol;
        bool has_status;
        msg_status_t status;

        exchange_done_t done;
        void *userdata;
};

#define FAIL(x, o, r, ...) set_fail(&(x)->info, o, r, __VA_ARGS__)

/* Everything that holds the network or secrets; the results stay. */
static void x_release(exchange_t *x) {
        x->io = sd_event_source_disable_unref(x->io);
        x->timer = sd_event_source_disable_unref(x->timer);
        x->defer = sd_event_source_disable_unref(x->defer);
        x->resolve = resolve_free(x->resolve);
        if (x->conn) {
                tls_conn_shutdown(x->conn);
                x->conn = tls_conn_free(x->conn);
        }
        if (x->fd >= 0)
                close(x->fd);
        x->fd = -1;
        x->ctx = tls_ctx_free(x->ctx);
        if (x->addrs)
                freeaddrinfo(x->addrs);
        x->addrs = x->addr = NULL;
        rbuf_done(&x->in);
        if (x->out) {
                erase(x->out, x->out_len);
                free(x->out);
        }
        x->out = NULL;
        erase(x->ekm, sizeof x->ekm);
}

/* The end: release, then tell the owner (who may free x: nothing may follow). */
static void x_finish(exchange_t *x, int r) {
        if (r < 0)
                x->info.stage = x->phase <= PHASE_CONNECT ? EXCHANGE_STAGE_CONNECT :
                                x->phase == PHASE_HANDSHAKE ? EXCHANGE_STAGE_TLS :
                                x->phase <= PHASE_READ ? EXCHANGE_STAGE_RESPONSE : EXCHANGE_STAGE_NONE;
        x->phase = PHASE_DONE;
        x_release(x);
        if (r == 0)
                x->info.outcome = OUTCOME_OK;
        x->done(x, r, x->userdata);
}

static int x_arm_timer(exchange_t *x, uint64_t when) {
        int r = sd_event_source_set_time(x->timer, when);
        if (r >= 0)
                r = sd_event_source_set_enabled(x->timer, SD_EVENT_ONESHOT);
        return r < 0 ? FAIL(x, OUTCOME_TRANSIENT, r, "cannot arm the exchange timer: %s", strerror(-r)) : 0;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* Wait for fd to become readable or writable (POLLIN/POLLOUT as tls_conn_want() says). */
static int x_wait(exchange_t *x, int poll_events) {
        uint32_t ev = (poll_events & POLLOUT) ? EPOLLOUT : EPOLLIN;
        int r;
        if (!x->io)
                r = sd_event_add_io(x->event, &x->io, x->fd, ev, on_io, x);
        else
                r = sd_event_source_set_io_events(x->io, ev);
        if (r >= 0)
                r = sd_event_source_set_enabled(x->io, SD_EVENT_ON);
        return r < 0 ? FAIL(x, OUTCOME_TRANSIENT, r, "cannot watch the connection: %s", strerror(-r)) : 0;
}

static void x_close_fd(exchange_t *x) {
        x->io = sd_event_source_disable_unref(x->io);
        if (x->fd >= 0)
                close(x->fd);
        x->fd = -1;
        x->connecting = false;
}

/* Each step returns 1 to go on, 0 to wait for the loop, or a negative errno (info set). */

static int step_connect(exchange_t *x) {
        const agent_config_t *cfg = x->cfg;
        if (x->connecting) {
                int err = 0;
                socklen_t len = sizeof err;
                if (getsockopt(x->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        err = errno;
                if (err == 0) {
                        x->connecting = false;
                        x->phase = PHASE_HANDSHAKE;
                        return 1;
                }
                x->connect_error = -err;
                x_close_fd(x);
                x->addr = x->addr->ai_next;
        }
        for (; x->addr; x->addr = x->addr->ai_next) {
                const struct addrinfo *ai = x->addr;
                x->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
                if (x->fd < 0) {
                        x->connect_error = negative_errno();
                        continue;
                }
                /* Requests and handshake flights are single writes: no reason to wait for ACKs. */
                int one = 1;
                (void) setsockopt(x->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                if (connect(x->fd, ai->ai_addr, ai->ai_addrlen) == 0) {
                        x->phase = PHASE_HANDSHAKE;
                        return 1;
                }
                if (errno == EINPROGRESS) {
                        x->connecting = true;
                        return x_wait(x, POLLOUT);
                }
                x->connect_error = negative_errno();
                x_close_fd(x);
        }
        int r = x->connect_error < 0 ? x->connect_error : -EHOSTUNREACH;
        if (r == -ENETUNREACH)
                r = -EHOSTUNREACH;
        return FAIL(x, OUTCOME_TRANSIENT, r, "cannot connect to %s port %s: %s", cfg->mef_host, cfg->mef_port,
                    strerror(-r));
}

/* Handshake done: key material, then the request bytes. */
static int request_prepare(exchange_t *x) {
        snprintf(x->info.tls_version, sizeof x->info.tls_version, "%s", tls_conn_version(x->conn) ?: "");
        snprintf(x->info.cipher, sizeof x->info.cipher, "%s", tls_conn_cipher(x->conn) ?: "");
        int r;
        if (x->req.ekm) {
                r = tls_conn_export(x->conn, KDF_EXPORTER_LABEL, x->req.ekm, KDF_EKM_LEN);
                if (r < 0)
                        return FAIL(x, OUTCOME_TRANSIENT, r, "cannot export keying material: %s", strerror(-r));
        }
        _cleanup_free_ char *host = NULL;
        r = host_header(x->cfg, &host);
        if (r < 0)
                return FAIL(x, OUTCOME_TRANSIENT, r, "out of memory");
        const request_t *req = &x->req;
        const char *headers[] = {
                "Host", host,
                "X-M2M-Origin", req->origin,
                "X-M2M-RI", x->ri,
                "X-M2M-RVI", "3",
                "Accept", "application/json",
                "Connection", "close",
                req->body ? "Content-Type" : NULL, "application/json",
                NULL,
        };
        r = http_format_request(req->method, req->target, headers, req->body, req->body ? strlen(req->body) : 0,
                                &x->out, &x->out_len);
        if (r < 0)
                return FAIL(x, OUTCOME_CONFIG, r, "cannot format the request: %s", strerror(-r));
        x->out_off = 0;
        return 0;
}

static int step_handshake(exchange_t *x) {
        const agent_config_t *cfg = x->cfg;
        int r;
        if (!x->conn) {
                /* Connected: from now on the whole-exchange deadline applies. */
                r = x_arm_timer(x, x->deadline);
                if (r < 0)
                        return r;
                r = tls_conn_new_client(x->ctx, x->fd, cfg->mef_host, &x->conn);
                if (r < 0)
                        return FAIL(x, OUTCOME_TRANSIENT, r, "cannot set up the TLS connection: %s", strerror(-r));
        } else if (x->tls_retry) {
                x->tls_retry = false;
                r = tls_conn_retry(x->conn, x->fd);
                if (r < 0)
                        return FAIL(x, OUTCOME_TRANSIENT, r, "cannot set up the TLS connection: %s", strerror(-r));
        }
        r = tls_conn_handshake(x->conn);
        if (r == -EAGAIN)
                return x_wait(x, tls_conn_want(x->conn));
        if (r == -ENOPROTOOPT) {
                /* The MEF chose TLS 1.2: once more over a new connection, TLS 1.2 only. */
                x_close_fd(x);
                x->tls_retry = true;
                x->phase = PHASE_CONNECT;
                return 1;
        }
        if (r == -EPROTONOSUPPORT)
                return FAIL(x, OUTCOME_INCOMPATIBLE, r, "TLS: the MEF accepted none of what this agent offers (%s)",
                            tls_ctx_offer(x->ctx));
        if (r == -EPROTOTYPE)
                return FAIL(x, OUTCOME_INCOMPATIBLE, r,
                            "TLS: the MEF chose TLS 1.3 PSK without (EC)DHE (psk_ke), which this agent refuses: "
                            "the MEF must prefer psk_dhe_ke");
        if (r == -ENOKEY)
                return FAIL(x, OUTCOME_INCOMPATIBLE, r,
                            "TLS: the MEF accepted none of what this agent offers (%s), or it does not know PSK "
                            "identity %s (before its ServerHello a TLS 1.3 MEF says both the same way)",
                            tls_ctx_offer(x->ctx), cfg->psk_identity);
        if (r == -EREMOTEIO)
                return FAIL(x, OUTCOME_TRANSIENT, r,
                            "TLS: the MEF aborted the handshake with internal_error before choosing parameters: a "
                            "fault at the MEF, or (as GnuTLS-based MEFs say it) it does not know PSK identity %s",
                            cfg->psk_identity);
#if HAVE_WOLFSSL_CTX_ONLY_DHE_PSK
        /* Offering psk_dhe_ke alone, we see a psk_ke-only MEF abort the handshake as one that
         * refused the key does (docs/interop.md, "wolfSSL 5.5 and 5.7"). */
        if (r == -EACCES && cfg->mode == TLS_MODE_PSK && cfg->tls_max != TLS_VERSION_1_2)
                return FAIL(x, OUTCOME_REJECTED, r,
                            "TLS authentication failed: the MEF refused PSK identity %s, or the keys differ, "
                            "or it allows TLS 1.3 PSK only without (EC)DHE (psk_ke), which this agent does not offer",
                            cfg->psk_identity);
#endif
        if (r == -EACCES && cfg->mode == TLS_MODE_PSK)
                return FAIL(x, OUTCOME_REJECTED, r,
                            "TLS authentication failed: the MEF refused PSK identity %s, or the keys differ",
                            cfg->psk_identity);
        if (r == -EACCES)
                return FAIL(x, OUTCOME_REJECTED, r,
                            "TLS authentication failed: the MEF refused our certificate, or its own did not verify against %s",
                            cfg->ca_file);
        if (r < 0)
                return FAIL(x, OUTCOME_TRANSIENT, r, "TLS handshake failed: %s", strerror(-r));
        r = request_prepare(x);
        if (r < 0)
                return r;
        x->phase = PHASE_WRITE;
        return 1;
}

static int step_write(exchange_t *x) {
        while (x->out_off < x->out_len) {
                ssize_t n = tls_conn_write(x->conn, x->out + x->out_off, x->out_len - x->out_off);
                if (n == -EAGAIN)
                        return x_wait(x, tls_conn_want(x->conn));
                if (n < 0)
                        return FAIL(x, OUTCOME_TRANSIENT, (int) n, "sending the request failed: %s",
                                    strerror((int) -n));
                x->out_off += (size_t) n;
        }
        x->in.data = malloc(RESPONSE_BUF_MAX);
        if (!x->in.data)
                return FAIL(x, OUTCOME_TRANSIENT, -ENOMEM, "out of memory");
        x->in.len = 0;
        http_parser_init(&x->parser, HTTP_RESPONSE);
        x->phase = PHASE_READ;
        return 1;
}

static int enrol_complete(exchange_t *x, const http_msg_t *m);
static int status_complete(exchange_t *x, const http_msg_t *m);

/* Read until http_parse has one complete response, then check it (PHASE_COMPLETE). */
static int step_read(exchange_t *x) {
        rbuf_t *b = &x->in;
        _cleanup_(http_msg_done) http_msg_t m = {};
        for (;;) {
                size_t room = MIN((size_t) READ_STEP, RESPONSE_BUF_MAX - b->len);
                if (room == 0)
                        return FAIL(x, OUTCOME_TRANSIENT, -EMSGSIZE, "response too large");
                ssize_t n = tls_conn_read(x->conn, b->data + b->len, room);
                if (n == -EAGAIN)
                        return x_wait(x, tls_conn_want(x->conn));
                if (n < 0)
                        return FAIL(x, OUTCOME_TRANSIENT, (int) n, "reading the response failed: %s",
                                    strerror((int) -n));
                if (n == 0) {
                        /* Only reached while the parser wants more, so http_parse_eof() can only
                         * confirm the truncation (-EPIPE). */
                        (void) http_parse_eof(&x->parser, b->len);
                        return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG, "%s",
                                    b->len == 0 ? "the MEF closed the connection without a response"
                                                : "truncated response");
                }
                b->len += (size_t) n;
                int r = http_parse(&x->parser, b->data, b->len, &m);
                if (r == 1)
                        break;
                if (r == -EMSGSIZE || r == -EFBIG)
                        return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG, "response exceeds the protocol limits");
                if (r < 0)
                        return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG, "malformed HTTP response");
        }
        int r = response_check(x->cfg, &x->req, &m, x->ri, &x->info);
        if (r >= 0 && x->kind == KIND_ENROL)
                r = enrol_complete(x, &m);
        else if (r >= 0 && x->kind == KIND_STATUS)
                r = status_complete(x, &m);
        if (r < 0)
                return r;
        x->phase = PHASE_COMPLETE;
        return 1;
}

/* Drive the exchange as far as it goes without waiting. */
static void x_step(exchange_t *x) {
        for (;;) {
                int r;
                switch (x->phase) {
                case PHASE_CONNECT:
                        r = step_connect(x);
                        break;
                case PHASE_HANDSHAKE:
                        r = step_handshake(x);
                        break;
                case PHASE_WRITE:
                        r = step_write(x);
                        break;
                case PHASE_READ:
                        r = step_read(x);
                        break;
                case PHASE_COMPLETE:
                        return x_finish(x, 0);
                default:
                        return;
                }
                if (r < 0)
                        return x_finish(x, r);
                if (r == 0)
                        return;
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        x_step(userdata);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        exchange_t *x = userdata;
        const agent_config_t *cfg = x->cfg;
        int r = -ETIMEDOUT;
        switch (x->phase) {
        case PHASE_RESOLVE:
                FAIL(x, OUTCOME_TRANSIENT, r, "resolving %s timed out", cfg->mef_host);
                break;
        case PHASE_CONNECT:
                FAIL(x, OUTCOME_TRANSIENT, r, "connecting to %s port %s timed out", cfg->mef_host, cfg->mef_port);
                break;
        case PHASE_HANDSHAKE:
                FAIL(x, OUTCOME_TRANSIENT, r, "TLS handshake timed out");
                break;
        case PHASE_WRITE:
                FAIL(x, OUTCOME_TRANSIENT, r, "sending the request timed out");
                break;
        default:
                FAIL(x, OUTCOME_TRANSIENT, r, "timed out waiting for the response");
                break;
        }
        x_finish(x, r);
        return 0;
}

static void on_resolved(resolve_t *q, int r, struct addrinfo *ai, void *userdata) {
        exchange_t *x = userdata;
        x->resolve = resolve_free(x->resolve);
        if (r < 0) {
                /* -ENOENT is reserved for 404 (unknown KeID): a name that does not resolve is a
                 * network problem like any other. */
                FAIL(x, OUTCOME_TRANSIENT, -EHOSTUNREACH, "cannot resolve %s", x->cfg->mef_host);
                return x_finish(x, -EHOSTUNREACH);
        }
        x->addrs = x->addr = ai;
        x->phase = PHASE_CONNECT;
        x_step(x);
}

static int on_start(sd_event_source *s, void *userdata) {
        exchange_t *x = userdata;
        x->defer = sd_event_source_disable_unref(x->defer);
        struct addrinfo *ai = NULL;
        int r = resolve_start(x->event, x->cfg->mef_host, x->cfg->mef_port, on_resolved, x, &x->resolve, &ai);
        if (r == 0) {
                x->phase = PHASE_RESOLVE;
                return 0;
        }
        if (r < 0) {
                FAIL(x, OUTCOME_TRANSIENT, r == -ENOENT ? -EHOSTUNREACH : r, "cannot resolve %s%s%s",
                     x->cfg->mef_host, r == -ENOENT ? "" : ": ", r == -ENOENT ? "" : strerror(-r));
                x_finish(x, r == -ENOENT ? -EHOSTUNREACH : r);
                return 0;
        }
        x->addrs = x->addr = ai;
        x->phase = PHASE_CONNECT;
        x_step(x);
        return 0;
}

exchange_t *exchange_free(exchange_t *x) {
        if (!x)
                return NULL;
        x_release(x);
        if (x->body) {
                erase(x->body, strlen(x->body));
                free(x->body);
        }
        enrol_result_wipe(&x->enrol);
        sd_event_unref(x->event);
        free(x);
        return NULL;
}

/* Allocate, then set up what needs no network: the request identifier, the TLS context (the
 * bootstrap credential is read here), the timer and the deferred start. */
static int exchange_new(sd_event *e, const agent_config_t *cfg, kind_t kind, exchange_done_t done, void *userdata,
                        exchange_t **ret) {
        exchange_t *x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        x->event = sd_event_ref(e);
        x->cfg = cfg;
        x->kind = kind;
        x->fd = -1;
        x->done = done;
        x->userdata = userdata;
        info_init(&x->info);
        *ret = x;
        return 0;
}

static int exchange_begin(exchange_t *x) {
        const agent_config_t *cfg = x->cfg;
        uint64_t now = now_usec();
        x->deadline = now + (uint64_t) cfg->exchange_timeout_ms * 1000u;
        x->connect_deadline = MIN(x->deadline, now + (uint64_t) cfg->connect_timeout_ms * 1000u);

        uint8_t rnd[8];
        int r = random_bytes(rnd, sizeof rnd);
        if (r < 0)
                return FAIL(x, OUTCOME_TRANSIENT, r, "cannot get random bytes: %s", strerror(-r));
        hex_encode(rnd, sizeof rnd, x->ri);

        r = session_ctx(cfg, &x->ctx, &x->info);
        if (r < 0)
                return r;
        r = sd_event_add_time(x->event, &x->timer, CLOCK_MONOTONIC, x->connect_deadline, 0, on_timeout, x);
        if (r >= 0)
                r = sd_event_add_defer(x->event, &x->defer, on_start, x);
        if (r < 0)
                return FAIL(x, OUTCOME_TRANSIENT, r, "cannot start the exchange: %s", strerror(-r));
        x->phase = PHASE_START;
        return 0;
}

/* Hand the exchange over, or report a failure that needed no network. */
static int exchange_launch(exchange_t *x, int r, exchange_t **ret, exchange_info_t *info) {
        if (r >= 0)
                r = exchange_begin(x);
        if (r < 0) {
                if (info)
                        *info = x->info;
                exchange_free(x);
                return r;
        }
        *ret = x;
        return 0;
}

static int args_fail(exchange_info_t *info, int r, const char *why) {
        exchange_info_t dummy;
        if (!info)
                info = &dummy;
        info_init(info);
        return set_fail(info, r == -ENOMEM ? OUTCOME_TRANSIENT : OUTCOME_CONFIG, r, "%s", why);
}

int exchange_enrol(sd_event *e, const agent_config_t *cfg, const char *prev, exchange_done_t done,
                   void *userdata, exchange_t **ret, exchange_info_t *info) {
        if (!e || !cfg || !done || !ret)
                return args_fail(info, -EINVAL, "invalid arguments");
        if (prev && !ke_id_ok(prev))
                return args_fail(info, -EINVAL, "invalid previous KeID");
        exchange_t *x;
        if (exchange_new(e, cfg, KIND_ENROL, done, userdata, &x) < 0)
                return args_fail(info, -ENOMEM, "out of memory");

        msg_enrol_req_t er = { .has_loc = cfg->has_loc, .loc = cfg->loc };
        snprintf(er.node_id, sizeof er.node_id, "%s", cfg->node_id);
        if (prev)
                snprintf(er.prev, sizeof er.prev, "%s", prev);
        int r = msg_enrol_req_format(&er, &x->body);
        if (r < 0)
                FAIL(x, OUTCOME_CONFIG, r, "cannot format the enrolment request: %s", strerror(-r));
        snprintf(x->origin, sizeof x->origin, "%s", cfg->node_id);
        x->req = (request_t) {
                .method = "POST",
                .what = "enrolment",
                .origin = x->origin,
                .body = x->body,
                .want_status = 201,
                .want_rsc = 2001,
                .ekm = x->ekm,
        };
        if (r >= 0)
                r = target_set(&x->req, cfg, NULL, &x->info);
        return exchange_launch(x, r, ret, info);
}

static int exchange_keid(sd_event *e, const agent_config_t *cfg, kind_t kind, const char *ke_id,
                         exchange_done_t done, void *userdata, exchange_t **ret, exchange_info_t *info) {
        if (!e || !cfg || !done || !ret || !ke_id_ok(ke_id))
                return args_fail(info, -EINVAL, "invalid arguments");
        exchange_t *x;
        if (exchange_new(e, cfg, kind, done, userdata, &x) < 0)
                return args_fail(info, -ENOMEM, "out of memory");
        snprintf(x->origin, sizeof x->origin, "%s", ke_id);
        x->req = (request_t) {
                .method = kind == KIND_STATUS ? "GET" : "DELETE",
                .what = kind == KIND_STATUS ? "status check" : "deregistration",
                .origin = x->origin,
                .want_status = 200,
                .want_rsc = kind == KIND_STATUS ? 2000 : 2002,
        };
        int r = target_set(&x->req, cfg, ke_id, &x->info);
        return exchange_launch(x, r, ret, info);
}

int exchange_status(sd_event *e, const agent_config_t *cfg, const char *ke_id, exchange_done_t done,
                    void *userdata, exchange_t **ret, exchange_info_t *info) {
        return exchange_keid(e, cfg, KIND_STATUS, ke_id, done, userdata, ret, info);
}

int exchange_deregister(sd_event *e, const agent_config_t *cfg, const char *ke_id, exchange_done_t done,
                        void *userdata, exchange_t **ret, exchange_info_t *info) {
        return exchange_keid(e, cfg, KIND_DEREGISTER, ke_id, done, userdata, ret, info);
}

const exchange_info_t *exchange_get_info(const exchange_t *x) {
        return x ? &x->info : NULL;
}

int exchange_take_enrol(exchange_t *x, enrol_result_t *ret) {
        if (!x || !ret)
                return -EINVAL;
        if (!x->has_enrol)
                return -ENODATA;
        memcpy(ret, &x->enrol, sizeof x->enrol);
        enrol_result_wipe(&x->enrol);
        x->has_enrol = false;
        return 0;
}

const msg_status_t *exchange_get_status(const exchange_t *x) {
        return x && x->has_status ? &x->status : NULL;
}

/* Key confirmation and the keys, from a successful enrolment response. */
static int enrol_complete(exchange_t *x, const http_msg_t *m) {
        const agent_config_t *cfg = x->cfg;
        _cleanup_erase_(32) uint8_t ke[KDF_KE_LEN];
        char ke_id[KDF_KEID_MAX + 1];
        int r = kdf_split_ekm(x->ekm, cfg->mef_host, ke, ke_id, sizeof ke_id);
        if (r < 0)
                return FAIL(x, OUTCOME_CONFIG, r, "cannot derive the KeID for host %s", cfg->mef_host);

        /* Built here, copied out only when complete: wiped on every path. */
        _cleanup_(enrol_result_wipe) enrol_result_t res = {};
        char err[MSG_ERR_MAX];
        r = msg_profile_parse(m->body, m->body_len, &res.profile, err);
        if (r < 0)
                return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG, "malformed profile: %s", err);
        if (!streq(res.profile.ke_id, ke_id))
                /* not quoted: the MEF's value is what went wrong, ours is what it should be */
                return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG,
                            "key confirmation failed: msce:profile.keID is not the KeID derived here (%s)", ke_id);
        if (res.profile.exp_t <= time(NULL))
                return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG, "malformed profile: msce:profile.exp: in the past");

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
                        return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG,
                                    "cannot derive Kpsa for msce:profile.targets[%zu]", i);
        }
        memcpy(&x->enrol, &res, sizeof res);
        x->has_enrol = true;
        return 0;
}

static int status_complete(exchange_t *x, const http_msg_t *m) {
        msg_status_t st;
        char err[MSG_ERR_MAX];
        int r = msg_status_parse(m->body, m->body_len, &st, err);
        if (r < 0)
                return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG, "malformed status: %s", err);
        if (!streq(st.ke_id, x->origin))
                return FAIL(x, OUTCOME_TRANSIENT, -EBADMSG,
                            "malformed status: msce:status.keID is not the KeID asked about");
        x->status = st;
        x->has_status = true;
        return 0;
}

/* ---- blocking: the same exchange on a private loop ---- */

typedef struct waiter {
        bool done;
        int r;
} waiter_t;

static void waiter_done(exchange_t *x, int r, void *userdata) {
        waiter_t *w = userdata;
        w->done = true;
        w->r = r;
}

static int loop_new(sd_event **ret, exchange_info_t *info) {
        int r = sd_event_new(ret);
        return r < 0 ? args_fail(info, r, "cannot create an event loop") : 0;
}

/* Run the private loop until the exchange ends; its result and info. */
static int loop_wait(sd_event *e, exchange_t *x, const waiter_t *w, exchange_info_t *info) {
        while (!w->done) {
                int r = sd_event_run(e, UINT64_MAX);
                if (r < 0)
                        return set_fail(info, OUTCOME_TRANSIENT, r, "event loop failed: %s", strerror(-r));
        }
        *info = x->info;
        return w->r;
}

typedef int (*exchange_start_t)(sd_event *e, const agent_config_t *cfg, const char *arg, exchange_done_t done,
                                void *userdata, exchange_t **ret, exchange_info_t *info);

/* The blocking API: the same exchange on a private loop. *ret_x is the finished exchange. */
static int run_blocking(exchange_start_t start, const agent_config_t *cfg, const char *arg, sd_event **ret_e,
                        exchange_t **ret_x, exchange_info_t *info) {
        waiter_t w = {};
        int r = loop_new(ret_e, info);
        if (r >= 0)
                r = start(*ret_e, cfg, arg, waiter_done, &w, ret_x, info);
        if (r >= 0)
                r = loop_wait(*ret_e, *ret_x, &w, info);
        return r;
}

int enrol_run(const agent_config_t *cfg, const char *prev, enrol_result_t *ret, exchange_info_t *info) {
        exchange_info_t dummy;
        if (!info)
                info = &dummy;
        if (!ret || !cfg)
                return args_fail(info, -EINVAL, "invalid arguments");
        /* backend = tpm2: a TPM must answer before the enrolment, or its profile could not be
         * sealed and the KeID would stay active at the MEF with no gateway holding it
         * (custody_preflight() checks a device: TCTI's node only). In the worker child for the
         * daemon, in the process for --once: the TPM libraries are loaded here anyway. */
        if (cfg->seal_backend == SEAL_TPM2) {
                (void) setenv("TSS2_LOG", "all+none", 0);
                int p = tpm2_probe(cfg->tcti);
                if (p < 0) {
                        info_init(info);
                        return set_fail(info, OUTCOME_CONFIG, p, "not enrolling: %s: [seal] backend = tpm2, but %s%s",
                                        cfg->path, p == -EOPNOTSUPP ? "this build has no TPM support" : "no TPM answers at ",
                                        p == -EOPNOTSUPP ? "" : cfg->tcti);
                }
        }
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(exchange_freep) exchange_t *x = NULL;
        int r = run_blocking(exchange_enrol, cfg, prev, &e, &x, info);
        if (r < 0)
                return r;
        return exchange_take_enrol(x, ret);
}

int enrol_status(const agent_config_t *cfg, const char *ke_id, msg_status_t *ret, exchange_info_t *info) {
        exchange_info_t dummy;
        if (!info)
                info = &dummy;
        if (!ret)
                return args_fail(info, -EINVAL, "invalid arguments");
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(exchange_freep) exchange_t *x = NULL;
        int r = run_blocking(exchange_status, cfg, ke_id, &e, &x, info);
        if (r < 0)
                return r;
        *ret = x->status;
        return 0;
}

int enrol_deregister(const agent_config_t *cfg, const char *ke_id, exchange_info_t *info) {
        exchange_info_t dummy;
        if (!info)
                info = &dummy;
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(exchange_freep) exchange_t *x = NULL;
        return run_blocking(exchange_deregister, cfg, ke_id, &e, &x, info);
}

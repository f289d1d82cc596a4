/* SPDX-License-Identifier: MIT */
/* The admin API's listener: the connection machinery of mef/conn.h with a certificate-only TLS
 * context (no PSK suite is ever offered, so a gateway's PSK cannot reach it; a client without a
 * certificate chaining to [admin] ca fails the handshake), the operator named by the
 * certificate's subject CN, and each request run in a store thread (mef/admin-api.c). */
#include <syslog.h>

#include "mef/admin-api.h"
#include "mef/admin.h"
#include "mef/conn.h"
#include "mef/listen.h"
#include "mef/log.h"
#include "util/util.h"

#define ADMIN_BACKLOG 16u
#define ADMIN_PER_SOURCE 8u

struct admin {
        listener_t l;
        const mef_config_t *cfg;
};

typedef struct admin_job {
        conn_job_t base;
        const mef_config_t *cfg;
        char actor[CONN_IDENTITY_LOG_MAX + 8];
        admin_response_t resp;
} admin_job_t;

static const char *peer_name(const conn_t *c, char *buf, size_t size) {
        snprintf(buf, size, "api:%s", c->operator[0] ? c->operator : "-");
        return buf;
}

static void log_exchange(const conn_t *c) {
        char peer[96], cause[CONN_CAUSE_MAX];
        unsigned long long ms = (now_usec() - c->started) / 1000u;
        if (!c->authenticated || c->status == 503) {
                conn_note(c, c->status == 503 ? LOGBOOK_OVERLOADED : LOGBOOK_REQUEST_FAILED,
                          c->failed ? LOG_WARNING : LOG_INFO, "%s %s %s -> %d (%llu ms)%s",
                          peer_name(c, peer, sizeof peer), c->method, c->path, c->status, ms,
                          conn_failure_cause(c, cause, sizeof cause));
                return;
        }
        log_event(NULL, c->failed ? LOG_WARNING : LOG_INFO, "admin: %s %s %s %s -> %d (%llu ms)%s",
                  peer_name(c, peer, sizeof peer), c->addr, c->method, c->path, c->status, ms,
                  conn_failure_cause(c, cause, sizeof cause));
}

static int answer(conn_t *c, admin_response_t *resp) {
        uint8_t *out = NULL;
        size_t len = 0;
        int r = admin_response_format(resp, &out, &len);
        int status = resp->status;
        conn_set_failure(c, resp->store_error ? "store" : NULL, resp->store_error, &resp->store_reason);
        admin_response_done(resp);
        return r < 0 ? r : conn_answer(c, status, out, len);
}

static int answer_error(conn_t *c, int status, const char *reason, const char *request_id) {
        admin_response_t resp;
        int r = admin_response_error(status, reason, &resp);
        if (r < 0)
                return r;
        if (status == 503)
                resp.retry_after = c->listener->cfg->retry_after;
        return answer(c, &resp);
}

static void admin_job_free(conn_job_t *base) {
        admin_job_t *j = (admin_job_t *) base;
        http_msg_done(&j->base.msg);
        admin_response_done(&j->resp);
        free(j);
}

/* In a store thread. */
static int admin_job_run(store_job_t *job, mef_store_t *store) {
        admin_job_t *j = (admin_job_t *) job;
        return admin_api_handle(j->cfg, store, j->actor, &j->base.msg, &j->resp);
}

static int admin_job_answer(conn_job_t *base, conn_t *c) {
        admin_job_t *j = (admin_job_t *) base;
        admin_response_t resp = j->resp;
        j->resp = (admin_response_t) {};
        return answer(c, &resp);
}

static int handle(conn_t *c, http_msg_t *msg) {
        if (!c->authenticated)
                return answer_error(c, 403, "the client certificate names no valid operator (subject CN)", NULL);
        admin_job_t *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        conn_job_init(&j->base, msg, admin_job_run, admin_job_answer, admin_job_free);
        j->cfg = c->listener->cfg;
        snprintf(j->actor, sizeof j->actor, "api:%s", c->operator);
        int r = conn_submit(c, &j->base);
        if (r >= 0)
                return 0;
        admin_job_free(&j->base);
        return r == -EAGAIN ? answer_error(c, 503, "store busy: retry later", NULL) : r;
}

/* The operator: the subject CN of the verified client certificate, a safe identifier (it goes
 * into the audit trail and the log). */
static int identify(conn_t *c) {
        /* room beyond the longest valid name: a longer CN must fail, not be cut to a valid one */
        char cn[256];
        c->authenticated = false;
        if (admin_peer_cn(c->tls, cn, sizeof cn) < 0 || !admin_operator_is_valid(cn))
                return 0; /* answered 403 */
        memcpy(c->operator, cn, strlen(cn) + 1); /* at most 64 + 1: valid */
        c->authenticated = true;
        return 0;
}

static const listener_ops_t admin_ops = {
        .identify = identify,
        .handle = handle,
        .answer_error = answer_error,
        .log_exchange = log_exchange,
        .peer_name = peer_name,
};

int admin_new(sd_event *event, const mef_config_t *cfg, store_queue_t *queue, logbook_t *logbook,
              sd_event_source *logbook_timer, admin_t **ret, char *err, size_t err_size) {
        _cleanup_free_ admin_t *a = calloc(1, sizeof *a);
        if (!a)
                return -ENOMEM;
        a->cfg = cfg;
        a->l = (listener_t) {
                .ops = &admin_ops,
                .userdata = a,
                .name = "admin",
                .event = event,
                .cfg = cfg,
                .queue = queue,
                .logbook = logbook,
                .logbook_timer = logbook_timer,
                .listen_fd = -1,
                .max_serving = ADMIN_MAX_CONNECTIONS,
                .max_overflow = 2,
                .max_lingering = ADMIN_MAX_CONNECTIONS,
                .first_byte_usec = cfg->first_byte_timeout_usec,
                .handshake_usec = cfg->handshake_timeout_usec,
                .request_usec = cfg->request_timeout_usec,
                .busy_usec = cfg->store_busy_timeout_usec,
        };
        /* Certificates only: no psk_lookup, so no PSK suite, and with ca the client's
         * certificate is required and verified. */
        tls_config_t tc = {
                .mode = TLS_MODE_CERT,
                .min_version = cfg->tls_min,
                .cert_file = cfg->admin_cert_file,
                .key_file = cfg->admin_key_file,
                .ca_file = cfg->admin_ca_file,
        };
        int r = tls_ctx_new_server(&tc, &a->l.tls);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up the admin API's TLS with %s: %s", cfg->admin_cert_file,
                         strerror(-r));
                goto fail;
        }
        r = mef_listen(cfg->admin_host, cfg->admin_port, ADMIN_BACKLOG, false, NULL, &a->l.listen_fd, err, err_size);
        if (r < 0)
                goto fail;
        r = admission_new(ADMIN_MAX_UNAUTHENTICATED, ADMIN_PER_SOURCE, CONN_IDLE_GRACE_USEC, &a->l.unauth);
        if (r >= 0)
                r = listener_start(&a->l);
        if (r < 0) {
                snprintf(err, err_size, "cannot set up the admin API: %s", strerror(-r));
                goto fail;
        }
        *ret = TAKE_PTR(a);
        return 0;
fail:
        admin_free(TAKE_PTR(a));
        return r;
}

admin_t *admin_free(admin_t *a) {
        if (!a)
                return NULL;
        listener_stop(&a->l);
        a->l.unauth = admission_free(a->l.unauth);
        if (a->l.listen_fd >= 0)
                close(a->l.listen_fd);
        tls_ctx_free(a->l.tls);
        free(a);
        return NULL;
}

unsigned admin_port(const admin_t *a) {
        return a ? mef_listen_port(a->l.listen_fd) : 0;
}

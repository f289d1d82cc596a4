/* SPDX-License-Identifier: MIT */
/* The gateways' port on the connection machinery (mef/conn.h): the PSK lookup in the
 * handshake, who the peer is, the request handed to a store thread (mef/handlers.h) and the
 * answer and log line of each exchange. */
#include <syslog.h>

#include "mef/conn.h"
#include "mef/handlers.h"
#include "mef/log.h"
#include "mef/message-ids.h"
#include "mef/psk-cache.h"
#include "mef/server-internal.h"
#include "proto/tls-hello.h"
#include "util/text.h"
#include "util/util.h"

/* How long the handshake's read of the node or target stands for the request's (below). */
#define PEER_READ_FRESH_USEC USEC_PER_SEC

typedef struct exchange_job {
        conn_job_t base;
        const mef_config_t *cfg;
        char *psk_identity;
        char cert_fp[STORE_FP_LEN + 1];
        char addr[INET6_ADDRSTRLEN + 8];
        uint8_t ekm[KDF_EKM_LEN];
        store_peer_t peer;
        uint64_t peer_read_usec;
        mef_metrics_t *metrics;
        ratelimit_t *enrol_limit;         /* thread-safe, shared */
        ratelimit_t *refusal_audit;       /* the same */
        mef_response_t resp;
} exchange_job_t;

static const char *peer_name(const conn_t *c, char *buf, size_t size) {
        if (c->psk_identity) {
                char id[64];
                text_copy(c->psk_identity, TEXT_ASCII, id, sizeof id);
                snprintf(buf, size, "psk:%s", id);
        } else if (c->cert_fp[0])
                snprintf(buf, size, "cert:%.16s", c->cert_fp);
        else
                snprintf(buf, size, "-");
        return buf;
}

/* The exchange's journal entry: a MESSAGE_ID for what an operator looks for. */
static void log_event_of(const conn_t *c, const char *peer, unsigned long long ms) {
        char cause[CONN_CAUSE_MAX];
        const char *outcome = "ok", *id = NULL;
        int priority = LOG_INFO;
        if (c->status >= 500) {
                outcome = "failed";
                id = MEF_MESSAGE_FAILED;
                priority = LOG_WARNING;
        } else if (c->status >= 400) {
                outcome = "refused";
                id = MEF_MESSAGE_REFUSED;
        } else if (c->exchange == MEF_EXCHANGE_ENROL) {
                outcome = "enrolled";
                id = MEF_MESSAGE_ENROLLED;
        } else if (c->exchange == MEF_EXCHANGE_FETCH)
                id = MEF_MESSAGE_FETCHED;
        else if (c->exchange == MEF_EXCHANGE_DEREGISTER)
                id = MEF_MESSAGE_DEREGISTERED;
        if (c->failed)
                priority = LOG_WARNING; /* answered, but something of it was not done */
        mef_log_fields_t f = {
                .message_id = id,
                .node_id = c->node_id,
                .ke_id = c->ke_id,
                .identity = peer,
                .peer = c->addr,
                .exchange = mef_exchange_to_string(c->exchange),
                .outcome = outcome,
                .status = c->status,
        };
        log_event(&f, priority, "%s %s %s %s -> %d (%llu ms)%s", peer, c->addr, c->method[0] ? c->method : "-",
                  c->path[0] ? c->path : "-", c->status, ms, conn_failure_cause(c, cause, sizeof cause));
}

static void log_exchange(const conn_t *c) {
        char peer[96], cause[CONN_CAUSE_MAX];
        uint64_t usec = now_usec() - c->started;
        unsigned long long ms = usec / 1000u;
        mef_metrics_request(c->listener->metrics, c->exchange, c->status, usec);
        /* Exchanges of authenticated peers are each logged (enrolments among them); what the
         * others get (403, 400, 431...), 503s and the repeats of a refusal (not audited either:
         * handlers-reply.c) are counted per source. A 503 with the store's failure behind it
         * (locked past busy_timeout, full, gone, no thread in time) is a warning; one of
         * admission (overloaded) stays information. */
        if (c->status == 503 || !c->authenticated || c->audit_folded > 0) {
                char folded[96] = "";
                if (c->audit_folded > 0)
                        snprintf(folded, sizeof folded, " (not audited: %u like it from this peer in this window)",
                                 c->audit_folded);
                conn_note(c, c->status == 503 ? LOGBOOK_OVERLOADED : LOGBOOK_REQUEST_FAILED,
                          c->failed ? LOG_WARNING : LOG_INFO, "%s %s %s -> %d (%llu ms)%s%s",
                          peer_name(c, peer, sizeof peer), c->method[0] ? c->method : "-",
                          c->path[0] ? c->path : "-", c->status, ms, conn_failure_cause(c, cause, sizeof cause), folded);
                return;
        }
        log_event_of(c, peer_name(c, peer, sizeof peer), ms);
}

/* Serialise resp into the output buffer and move on to writing. Consumes resp. */
static int answer(conn_t *c, mef_response_t *resp, const char *request_id) {
        uint8_t *out = NULL;
        size_t len = 0;
        int r = mef_response_format(resp, request_id, &out, &len);
        c->exchange = resp->exchange;
        snprintf(c->node_id, sizeof c->node_id, "%s", resp->node_id);
        snprintf(c->ke_id, sizeof c->ke_id, "%s", resp->ke_id);
        conn_set_failure(c, resp->failed, resp->error, &resp->reason);
        c->audit_folded = resp->audit_folded;
        int status = resp->status;
        mef_response_done(resp);
        if (r < 0) {
                log_warning("%s: cannot format the response: %s", c->addr, strerror(-r));
                return r;
        }
        return conn_answer(c, status, out, len);
}

/* oneM2M's RSC for the errors the connection layer finds; a 503 says when to come back. */
static int answer_error(conn_t *c, int status, const char *reason, const char *request_id) {
        mef_response_t resp;
        int r = mef_response_error(status, status >= 500 ? 5000 : status == 403 ? 4103 : 4000, reason, &resp);
        if (r < 0)
                return r;
        if (status == 503)
                resp.retry_after = c->listener->cfg->retry_after;
        return answer(c, &resp, request_id);
}

static void exchange_job_free(conn_job_t *base) {
        exchange_job_t *j = (exchange_job_t *) base;
        erase(j->ekm, sizeof j->ekm);
        erase(&j->peer, sizeof j->peer);
        free(j->psk_identity);
        http_msg_done(&j->base.msg);
        mef_response_done(&j->resp);
        free(j);
}

/* In a store thread. */
static int exchange_job_run(store_job_t *job, mef_store_t *store) {
        exchange_job_t *j = (exchange_job_t *) job;
        /* The handshake's read of the node or target, when under a second old, spares the
         * handlers a lookup. Older (a client that took its time, a queue that was slow), they
         * read it again: an operator's order made on any instance (re-enrol, a new CSE-ID or
         * targets, a target removed) holds within a second for every request. */
        bool fresh = now_usec() - j->peer_read_usec < PEER_READ_FRESH_USEC;
        mef_peer_t peer = {
                .psk_identity = j->psk_identity,
                .cert_fp = j->cert_fp[0] ? j->cert_fp : NULL,
                .addr = j->addr,
                .ekm = j->ekm,
                .node = fresh && j->peer.kind == STORE_PEER_NODE ? &j->peer.node : NULL,
                .target = fresh && j->peer.kind == STORE_PEER_TARGET ? &j->peer.target : NULL,
                .enrol_limit = j->enrol_limit,
                .refusal_audit = j->refusal_audit,
        };
        uint64_t t0 = now_usec();
        int r = mef_handle(j->cfg, store, &peer, &j->base.msg, &j->resp);
        mef_metrics_store(j->metrics, now_usec() - t0); /* atomic: fine from a store thread */
        erase(j->ekm, sizeof j->ekm);
        return r;
}

/* In a store thread: the enrolment answered was not committed after all (its batch's COMMIT
 * failed): the 500 the client gets spends none of the node's allowance. */
static void exchange_job_unstored(store_job_t *job) {
        exchange_job_t *j = (exchange_job_t *) job;
        mef_response_unstored(&j->resp, j->enrol_limit);
}

/* Back in the loop: the handlers' response. */
static int exchange_job_answer(conn_job_t *base, conn_t *c) {
        exchange_job_t *j = (exchange_job_t *) base;
        mef_response_t resp = j->resp;
        j->resp = (mef_response_t) {};
        return answer(c, &resp, http_msg_header(&base->msg, "X-M2M-RI"));
}

/* Hands the request to a store thread: 0, the answer comes through exchange_job_done(). The
 * message moves into the job (and back on failure). */
static int submit(conn_t *c, http_msg_t *msg) {
        server_t *s = c->listener->userdata;
        exchange_job_t *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        conn_job_init(&j->base, msg, exchange_job_run, exchange_job_answer, exchange_job_free);
        j->base.job.unstored = exchange_job_unstored;
        j->cfg = s->cfg;
        j->metrics = s->metrics;
        j->enrol_limit = s->enrol_limit;
        j->refusal_audit = s->refusal_audit;
        j->peer = c->peer;
        j->peer_read_usec = c->peer_read_usec;
        int r = 0;
        if (c->psk_identity && !(j->psk_identity = strdup(c->psk_identity)))
                r = -ENOMEM;
        memcpy(j->cert_fp, c->cert_fp, sizeof j->cert_fp);
        memcpy(j->addr, c->addr, sizeof j->addr);
        memcpy(j->ekm, c->ekm, sizeof j->ekm);
        if (r >= 0)
                r = conn_submit(c, &j->base);
        if (r < 0) {
                *msg = j->base.msg; /* back to the caller, for the 503 */
                j->base.msg = (http_msg_t) {};
                exchange_job_free(&j->base);
        }
        return r;
}

/* 1: answered, writing; 0: in a store thread; <0: close. */
static int handle(conn_t *c, http_msg_t *msg) {
        if (!c->authenticated) {
                mef_response_t resp;
                int r = mef_response_error(403, 4103, "client certificate required", &resp);
                return r < 0 ? r : answer(c, &resp, http_msg_header(msg, "X-M2M-RI"));
        }
        if (c->store_away) {
                /* the handshake's lookup failed, and its failure is this 503's cause in the log */
                const char *what = c->failed;
                int error = c->error;
                store_reason_t why = c->reason;
                int r = answer_error(c, 503, "store unavailable: retry later", http_msg_header(msg, "X-M2M-RI"));
                conn_set_failure(c, what, error, &why);
                return r;
        }
        int r = submit(c, msg);
        if (r >= 0)
                return 0;
        if (r == -EAGAIN)
                /* every store thread busy and the queue full */
                return answer_error(c, 503, "store busy: retry later", http_msg_header(msg, "X-M2M-RI"));
        return r;
}

/* After the handshake: the exporter output and who the peer is. <0: close. */
static int identify(conn_t *c) {
        int r = tls_conn_export(c->tls, KDF_EXPORTER_LABEL, c->ekm, KDF_EKM_LEN);
        if (r < 0) {
                log_warning("%s: cannot export keying material: %s", c->addr, strerror(-r));
                return r;
        }
        c->psk_identity = tls_conn_psk_identity(c->tls);
        if (!c->psk_identity && tls_conn_peer_fingerprint(c->tls, c->cert_fp) < 0)
                c->cert_fp[0] = 0; /* answered 403 once its request is read: stays unauthenticated */
        c->authenticated = c->psk_identity || c->cert_fp[0];
        return 0;
}

/* A node's KpmID or certificate: capped by connections_per_node. A target (a CSE fetching
 * credentials, trusted to fetch many at once) is not; a PSK from the cache while the store is
 * away is of a kind not known: capped. */
static const char *node_key(const conn_t *c, char *buf, size_t size) {
        if (c->psk_identity && c->peer.kind != STORE_PEER_TARGET)
                snprintf(buf, size, "psk:%s", c->psk_identity);
        else if (!c->psk_identity && c->cert_fp[0])
                snprintf(buf, size, "cert:%s", c->cert_fp);
        else
                return NULL;
        return buf;
}

static int lookup_ahead(conn_t *c, const char *identity);

const listener_ops_t server_exchange_ops = {
        .identify = identify,
        .lookup_ahead = lookup_ahead,
        .handle = handle,
        .answer_error = answer_error,
        .log_exchange = log_exchange,
        .peer_name = peer_name,
        .node_key = node_key,
};

/* The ClientHello's PSK identity, looked up in a store thread before wolfSSL asks for it. */
typedef struct psk_ahead {
        conn_ahead_t base;
        char identity[TLS_HELLO_IDENTITY_MAX + 1];
        store_peer_t peer;
        uint64_t read_usec;
        uint8_t key[MSG_KEY_MAX];
        size_t len;
        store_reason_t reason; /* the store's for a failure (store_error_reason()), or text "" */
} psk_ahead_t;

static int psk_ahead_run(store_job_t *job, mef_store_t *store) {
        psk_ahead_t *a = (psk_ahead_t *) job;
        a->read_usec = now_usec();
        int r = store_peer_by_psk_id(store, a->identity, &a->peer, a->key, &a->len);
        store_reason_copy(store, r, &a->reason);
        return r;
}

static void psk_ahead_free(conn_ahead_t *base) {
        erase_free(base, sizeof(psk_ahead_t));
}

static int lookup_ahead(conn_t *c, const char *identity) {
        psk_ahead_t *a = calloc(1, sizeof *a);
        if (!a)
                return 0;
        if (strlen(identity) >= sizeof a->identity) {
                free(a);
                return 0;
        }
        strcpy(a->identity, identity);
        a->base.job.run = psk_ahead_run;
        a->base.free = psk_ahead_free;
        if (conn_submit_ahead(c, &a->base) < 0) {
                free(a); /* the queue is full: the callback looks it up, as on SQLite */
                return 0;
        }
        return 1;
}

/* userdata: the conn_t (tls_conn_set_userdata). */
unsigned server_psk_lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max) {
        conn_t *c = userdata;
        if (!c)
                return 0;
        server_t *s = c->listener->userdata;
        uint8_t buf[MSG_KEY_MAX];
        size_t len = 0;
        unsigned ret = 0;

        /* Cert-mode nodes have an empty KpmID: an empty identity must never match them. */
        if (!identity || !*identity)
                return 0;
        /* for the log when the handshake fails: identities are not secret */
        text_copy(identity, TEXT_ASCII, c->identity_tried, sizeof c->identity_tried);
        int r;
        const store_reason_t *why = NULL; /* the store's reason for r */
        const psk_ahead_t *a = (const psk_ahead_t *) c->ahead;
        if (a && a->base.done && streq(a->identity, identity)) {
                /* -ETIME: not started in time, the store too busy */
                r = a->base.result == -ETIME ? -EBUSY : a->base.result;
                c->peer = a->peer;
                c->peer_read_usec = a->read_usec;
                len = a->len;
                memcpy(buf, a->key, sizeof buf);
                why = &a->reason;
                mef_metrics_psk_lookup(c->listener->metrics, MEF_PSK_AHEAD);
        } else {
                c->peer.kind = STORE_PEER_NONE; /* not what an earlier callback found */
                c->peer_read_usec = now_usec();
                r = store_peer_by_psk_id(s->store, identity, &c->peer, buf, &len);
                why = store_error_reason(s->store, r);
                mef_metrics_psk_lookup(c->listener->metrics, MEF_PSK_LOOP);
        }
        if (r >= 0) {
                psk_cache_put(s->psks, identity, buf, len, now_usec());
                conn_set_failure(c, NULL, 0, NULL); /* an identity tried before in this handshake failed */
        } else if (store_error_is_transient(r)) {
                /* the store is away or busy: a PSK it gave before completes the handshake, and
                 * the request that follows is answered 503 at once, whatever the store would
                 * say by then. The key was not confirmed by the store for this session: the
                 * node may have been removed and added again under the same KpmID with a new
                 * key (on another instance, or with the CLI), and the handlers, which find the
                 * node by its KpmID, would serve a session keyed with the old one. */
                len = psk_cache_get(s->psks, identity, buf, now_usec());
                c->store_away = true;
                /* none cached: the handshake fails, and its line says the store was away and why
                 * (not an unknown identity); else the line of the 503 that follows does */
                if (len > 0)
                        conn_set_failure(c, "store unavailable looking up the PSK identity (a cached key used)", r, why);
                else {
                        conn_set_failure(c, "store unavailable looking up the PSK identity (no key cached)", r, why);
                        tls_conn_refuse_busy(c->tls); /* the client retries soon, not as refused */
                        c->store_refused = true;
                }
        } else {
                psk_cache_drop(s->psks, identity);
                /* not an unknown identity but the store's own fault (-EBADMSG: a master key that
                 * does not open the identity's key): the line says so, and so does the alert,
                 * lest the gateway wait as refused for what the operator must mend */
                if (r != -ENOENT) {
                        conn_set_failure(c,
                                         r == -EBADMSG ? "the master key does not open this identity's key"
                                                       : "looking up the PSK identity",
                                         r, why);
                        tls_conn_refuse_busy(c->tls);
                        c->store_refused = true;
                }
        }
        if (len > 0 && len <= key_max && len <= sizeof buf) {
                memcpy(key, buf, len);
                ret = (unsigned) len;
        }
        erase(buf, sizeof buf);
        return ret;
}

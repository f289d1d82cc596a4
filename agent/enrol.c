/* SPDX-License-Identifier: MIT */
/* The agent's side of the Msce exchanges (protocol 3.1-3.3) on the exchange engine
 * (proto/exchange.h): one TCP connection, one TLS handshake, one request and one response, all
 * under one deadline; the result classified as protocol section 5 says. */
#include <time.h>

#include "agent/credential.h"
#include "agent/custody.h"
#include "agent/enrol.h"
#include "hw/tpm2.h"
#include "proto/exchange.h"
#include "proto/ids.h"
#include "util/util.h"

/* What one exchange sends. */
typedef struct request {
        const agent_config_t *cfg;
        const char *method;
        const char *what;      /* for messages: "enrolment", "status check", ... */
        char target[HTTP_TARGET_MAX + 1];
        const char *origin;    /* X-M2M-Origin */
        const char *body;      /* NULL: none */
        int want_status;       /* the success answer */
        int want_rsc;
        bool ekm;              /* export KDF_EKM_LEN bytes after the handshake */
        uint8_t ekm_bytes[KDF_EKM_LEN];
        char ri[17];           /* X-M2M-RI */
        int error;             /* why request_build() failed */
        bool export_failed;
} request_t;

static void request_wipe(request_t *req) {
        erase(req->ekm_bytes, sizeof req->ekm_bytes);
}

/* The X-M2M-RSC header: four digits (TS-0004 codes are 1000..6999). */
static int rsc_parse(const char *s) {
        unsigned long long v;
        if (!s || strlen(s) != 4 || parse_uint(s, 6999, &v) < 0 || v < 1000)
                return -EINVAL;
        return (int) v;
}

/* Does the m2m:dbg reason start with "<hint>:"? */
static bool dbg_hint_is(const char *dbg, const char *hint) {
        size_t n = strlen(hint);
        return strncmp(dbg, hint, n) == 0 && dbg[n] == ':';
}

/* Check the response belongs to our request and map its status to an outcome. */
static int response_check(const agent_config_t *cfg, const request_t *req, const http_msg_t *m, exchange_info_t *info) {
        info->http_status = m->status;
        /* We never send Expect: 100-continue and the protocol has one response per request:
         * an interim response is a broken MEF, not something to wait past. */
        if (m->status < 200)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG, "malformed response: unexpected interim response %d",
                                   m->status);
        /* The RI check catches a response to another request. A 503 without one is an MEF that
         * answered before reading ours (msce-mef's per-node connection cap): it changes nothing
         * and says when to come back, so its Retry-After holds (docs/protocol.md, "Responses"). */
        const char *echo = http_msg_header(m, "X-M2M-RI");
        if (echo ? !streq(echo, req->ri) : m->status != 503)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG,
                                   "response for another request (X-M2M-RI %s, expected %s)",
                                   echo ? "does not match" : "missing", req->ri);
        int rsc = rsc_parse(http_msg_header(m, "X-M2M-RSC"));
        if (rsc < 0)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG, "malformed response: %s X-M2M-RSC (HTTP %d)",
                                   http_msg_header(m, "X-M2M-RSC") ? "invalid" : "no", m->status);
        if (rsc / 1000 != m->status / 100)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG,
                                   "malformed response: X-M2M-RSC %d does not match HTTP status %d", rsc, m->status);

        if (m->status == req->want_status && rsc == req->want_rsc)
                return 0;

        char dbg[MSG_DBG_MAX];
        msg_dbg_parse(m->body, m->body_len, dbg);
        char answer[MSG_DBG_MAX + 64];
        snprintf(answer, sizeof answer, "MEF answered %d %s (RSC %d)%s%s", m->status, http_reason(m->status) ?: "",
                 rsc, dbg[0] ? ": " : "", dbg);

        /* 429 (the MEF's per-node enrolment rate limit): transient, after its Retry-After, as
         * for a 5xx - not a refusal of the credential. */
        switch (m->status == 429 ? 5 : m->status / 100) {
        case 5:
                /* any length, clamped to retry_after_max; not in seconds: the normal backoff */
                info->has_retry_after = retry_after_parse(http_msg_header(m, "Retry-After"), (unsigned) (cfg->retry_after_max_usec / 1000000u),
                                                          &info->retry_after, &info->retry_after_capped,
                                                          info->retry_after_sent) > 0;
                return failure_set(&info->failure, OUTCOME_TRANSIENT,
                                   m->status == 503 || m->status == 429 ? -EBUSY : -EREMOTEIO, "%s", answer);
        case 4:
                if (m->status == 403) {
                        /* The MEF's hint first (docs/protocol.md, "Why the MEF refused"), in words. */
                        if (dbg_hint_is(dbg, MSG_HINT_NODE_UNREGISTERED))
                                return failure_set(&info->failure, OUTCOME_REJECTED, -EACCES,
                                                   "node %s is not registered at this MEF with this credential "
                                                   "(check [node] id and %s): %s", cfg->node_id,
                                                   cfg->mode == TLS_MODE_PSK ? "psk_identity" : "certificate", answer);
                        info->node_revoked = dbg_hint_is(dbg, MSG_HINT_NODE_REVOKED);
                        if (info->node_revoked)
                                return failure_set(&info->failure, OUTCOME_REJECTED, -EACCES,
                                                   "node %s is revoked at this MEF (ask its operator to reinstate it): %s",
                                                   cfg->node_id, answer);
                        if (dbg_hint_is(dbg, MSG_HINT_NOT_ENROLEE))
                                return failure_set(&info->failure, OUTCOME_REJECTED, -EACCES,
                                                   "the MEF does not know this credential as a node's (check %s): %s",
                                                   cfg->mode == TLS_MODE_PSK ? "psk_identity" : "certificate", answer);
                        return failure_set(&info->failure, OUTCOME_REJECTED, -EACCES, "%s", answer);
                }
                if (m->status == 404 && req->ekm)
                        /* An enrolment: the MEF has no enrolment resource there, the URI's base
                         * path is wrong. The same request will always fail: configuration. */
                        return failure_set(&info->failure, OUTCOME_CONFIG, -ENOENT,
                                           "%s: [mef] uri: %s has no enrolment resource, is the base path right? (%s)",
                                           cfg->path, cfg->mef_uri, answer);
                if (m->status == 404)
                        /* For a status check or deregistration: the MEF no longer knows the KeID
                         * (the daemon re-enrols; for a deregistration it is done already). */
                        return failure_set(&info->failure, OUTCOME_UNKNOWN_KEID, -ENOENT, "%s", answer);
                /* 400 and the other 4xx: the MEF refuses what we send. The same request will be
                 * refused again, so retrying fast cannot help: slow retry, shown distinctly. */
                return failure_set(&info->failure, OUTCOME_REJECTED, -EINVAL, "%s", answer);
        default: /* 2xx other than the one asked for, 3xx */
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG, "unexpected answer to the %s: %s", req->what,
                                   answer);
        }
}

/* <base>/enrolments or <base>/enrolments/<KeID> */
static int target_set(request_t *req, const agent_config_t *cfg, const char *ke_id, exchange_info_t *info) {
        int n = snprintf(req->target, sizeof req->target, "%s/enrolments%s%s", cfg->mef_base, ke_id ? "/" : "",
                         ke_id ?: "");
        if (n < 0 || (size_t) n >= sizeof req->target)
                return failure_set(&info->failure, OUTCOME_CONFIG, -ENAMETOOLONG, "request target too long");
        return 0;
}

/* After the handshake: key material, then the request bytes. */
static int request_build(tls_conn_t *c, void *userdata, uint8_t **ret, size_t *ret_len) {
        request_t *req = userdata;
        int r;
        if (req->ekm) {
                r = tls_conn_export(c, KDF_EXPORTER_LABEL, req->ekm_bytes, KDF_EKM_LEN);
                req->export_failed = r < 0;
                if (r < 0)
                        return req->error = r;
        }
        /* Host: "host" or "[v6]", plus ":port" unless 443 */
        const agent_config_t *cfg = req->cfg;
        bool v6 = strchr(cfg->mef_host, ':'), dflt = streq(cfg->mef_port, "443");
        _cleanup_free_ char *host = NULL;
        if (asprintf(&host, "%s%s%s%s%s", v6 ? "[" : "", cfg->mef_host, v6 ? "]" : "", dflt ? "" : ":",
                     dflt ? "" : cfg->mef_port) < 0)
                return req->error = -ENOMEM;
        const char *headers[] = {
                "Host", host,
                "X-M2M-Origin", req->origin,
                "X-M2M-RI", req->ri,
                "X-M2M-RVI", "3",
                "Accept", "application/json",
                "Connection", "close",
                req->body ? "Content-Type" : NULL, "application/json",
                NULL,
        };
        r = http_format_request(req->method, req->target, headers, req->body, req->body ? strlen(req->body) : 0,
                                ret, ret_len);
        return r < 0 ? (req->error = r) : 0;
}

/* A failed connect or handshake, in words and with its class (protocol section 5). */
static int network_fail(const agent_config_t *cfg, const tls_ctx_t *ctx, exchange_stage_t stage, int r,
                        exchange_info_t *info) {
        if (stage == EXCHANGE_STAGE_CONNECT) {
                /* A name that does not resolve is a network problem like any other ("MEF
                 * unreachable"), not a missing file's -ENOENT. */
                if (r == -ENOENT)
                        return failure_set(&info->failure, OUTCOME_TRANSIENT, -EHOSTUNREACH, "cannot resolve %s", cfg->mef_host);
                if (r == -ETIMEDOUT)
                        return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "connecting to %s port %s timed out",
                                           cfg->mef_host, cfg->mef_port);
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "cannot connect to %s port %s: %s", cfg->mef_host,
                                   cfg->mef_port, strerror(-r));
        }
        switch (r) {
        case -ETIMEDOUT:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "TLS handshake timed out");
        case -EPROTONOSUPPORT:
                return failure_set(&info->failure, OUTCOME_INCOMPATIBLE, r,
                                   "TLS: the MEF accepted none of what this agent offers (%s)", tls_ctx_offer(ctx));
        case -EPROTOTYPE:
                return failure_set(&info->failure, OUTCOME_INCOMPATIBLE, r,
                                   "TLS: the MEF chose TLS 1.3 PSK without (EC)DHE (psk_ke), which this agent refuses: "
                                   "the MEF must prefer psk_dhe_ke");
        case -ENOKEY:
                return failure_set(&info->failure, OUTCOME_INCOMPATIBLE, r,
                                   "TLS: the MEF accepted none of what this agent offers (%s), or it does not know PSK "
                                   "identity %s (before its ServerHello a TLS 1.3 MEF says both the same way)",
                                   tls_ctx_offer(ctx), cfg->psk_identity);
        case -EREMOTEIO:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r,
                                   "TLS: the MEF aborted the handshake with internal_error before choosing parameters: a "
                                   "fault at the MEF, or (as GnuTLS-based MEFs say it) it does not know PSK identity %s",
                                   cfg->psk_identity);
        case -EACCES:
                /* Offering psk_dhe_ke alone (HAVE_WOLFSSL_CTX_ONLY_DHE_PSK), we see a psk_ke-only MEF
                 * abort the handshake as one that refused the key does (docs/interop.md, "wolfSSL 5.5
                 * and 5.7"). */
                if (cfg->mode == TLS_MODE_PSK)
                        return failure_set(&info->failure, OUTCOME_REJECTED, r,
                                           "TLS authentication failed: the MEF refused PSK identity %s, or the keys "
                                           "differ%s", cfg->psk_identity,
                                           HAVE_WOLFSSL_CTX_ONLY_DHE_PSK && cfg->tls_max != TLS_VERSION_1_2
                                                   ? ", or it allows TLS 1.3 PSK only without (EC)DHE (psk_ke), "
                                                     "which this agent does not offer"
                                                   : "");
                return failure_set(&info->failure, OUTCOME_REJECTED, r,
                                   "TLS authentication failed: the MEF refused our certificate, or its own did not verify "
                                   "against %s", cfg->ca_file);
        default:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "TLS handshake failed: %s", strerror(-r));
        }
}

/* A failure after the handshake: sending the request or reading the response. */
static int response_fail(int r, exchange_stage_t stage, exchange_info_t *info) {
        if (stage == EXCHANGE_STAGE_REQUEST)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "sending the request failed: %s", strerror(-r));
        switch (r) {
        case -ETIMEDOUT:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "timed out waiting for the response");
        case -EMSGSIZE:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG, "response exceeds the protocol limits");
        case -EBADMSG:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "malformed HTTP response");
        case -ENODATA:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG, "the MEF closed the connection without a response");
        case -EPIPE:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG, "truncated response");
        default:
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "reading the response failed: %s", strerror(-r));
        }
}

/* One exchange: 0 with *ret the response req expects, else a negative errno with info (reset by the caller). */
static int exchange(const agent_config_t *cfg, request_t *req, http_msg_t *ret, exchange_info_t *info) {
        req->cfg = cfg;
        uint8_t rnd[8];
        int r = random_bytes(rnd, sizeof rnd);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "cannot get random bytes: %s", strerror(-r));
        hex_encode(rnd, sizeof rnd, req->ri);

        _cleanup_(tls_ctx_freep) tls_ctx_t *ctx = NULL;
        r = credential_tls_ctx(cfg, &ctx, info);
        if (r < 0)
                return r;
        uint64_t now = now_usec();
        exchange_spec_t spec = {
                .ctx = ctx,
                .host = cfg->mef_host,
                .port = cfg->mef_port,
                .deadline = now + cfg->exchange_timeout_usec,
                .request = request_build,
                .userdata = req,
        };
        spec.connect_deadline = MIN(spec.deadline, now + cfg->connect_timeout_usec);
        exchange_stage_t stage;
        r = exchange_run(&spec, ret, &stage, info->tls_version, info->cipher);
        info->stage = stage;
        if (r < 0 && req->error < 0) {
                r = req->error;
                if (req->export_failed)
                        return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "cannot export keying material: %s", strerror(-r));
                if (r == -ENOMEM)
                        return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "out of memory");
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "cannot format the request: %s", strerror(-r));
        }
        /* -EACCES while reading: a TLS 1.3 MEF refusing our certificate after our Finished */
        if (r < 0 && (stage < EXCHANGE_STAGE_REQUEST || r == -EACCES))
                return network_fail(cfg, ctx, stage, r, info);
        if (r < 0)
                return response_fail(r, stage, info);
        r = response_check(cfg, req, ret, info);
        if (r < 0)
                http_msg_done(ret);
        return r;
}

/* The key's path from a successful enrolment response, top to bottom (agent/enrol.h). */
static int enrol_complete(const agent_config_t *cfg, const request_t *req, const http_msg_t *m,
                          stored_profile_t *ret, exchange_info_t *info) {
        _cleanup_erase_(32) uint8_t ke[KDF_KE_LEN];
        char ke_id[KDF_KEID_MAX + 1];
        int r = kdf_split_ekm(req->ekm_bytes, cfg->mef_host, ke, ke_id, sizeof ke_id);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_CONFIG, r, "cannot derive the KeID for host %s", cfg->mef_host);

        /* may hold a transported ltk: wiped on every path */
        _cleanup_(msg_profile_wipe) msg_profile_t mp = {};
        char err[MSG_ERR_MAX];
        r = msg_profile_parse(m->body, m->body_len, &mp, err);
        if (r == -E2BIG)
                /* The MEF lists the node's targets: it will send the same again. Slow retry, as
                 * for any MEF this agent cannot work with (each retry is an enrolment there). */
                return failure_set(&info->failure, OUTCOME_INCOMPATIBLE, r,
                                   "%s: more than this agent holds; the MEF's operator must name fewer targets for "
                                   "node %s", err, cfg->node_id);
        if (r < 0)
                /* Protocol section 5 classes a malformed response transient, so this is, though
                 * the MEF will likely answer the same and each retry is one more enrolment it
                 * commits (-E2BIG differs: the binding sets no count, that profile is well formed).
                 * Whose fault it is goes into the reason. */
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG,
                                   "malformed profile: %s (the MEF's answer breaks the protocol: its operator must fix it)",
                                   err);
        if (!streq(mp.ke_id, ke_id))
                /* Transient: protocol section 5 names key confirmation mismatch so. Not quoted:
                 * the MEF's value is what went wrong, ours is what it should be. */
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG,
                                   "key confirmation failed: msce:profile.keID is not the KeID derived here (%s)", ke_id);
        time_t now = time(NULL);
        if (mp.exp_t <= now) {
                /* Well formed, and past by our clock, which nothing vouches for (psk mode never
                 * waits for time synchronisation; cert mode only while the clock is before the
                 * build, at most clock_wait_max; --once never): a clock ahead that NTP will step
                 * back looks the same. Transient, and the reason names both. */
                char clock[16];
                time_format_basic(now, clock);
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG,
                                   "profile already expired: msce:profile.exp: in the past by this gateway's clock (%s UTC): "
                                   "the clock here is ahead, or the MEF's operator set an expiry already over", clock);
        }

        _cleanup_(stored_profile_wipe) stored_profile_t p;
        info->ltk_transported = mp.has_ltk;
        info->poll_clamped = mp.poll_clamped;
        info->poll_sent = mp.poll_sent;
        r = profile_from_msg(&mp, cfg->node_id, cfg->mef_uri, now, mp.has_ltk ? mp.ltk : ke,
                             mp.has_ltk ? mp.ltk_len : sizeof ke, &p);
        for (size_t i = 0; r >= 0 && i < p.n_targets; i++)
                r = kdf_kpsa(p.ltk, p.ltk_len, p.targets[i].id, p.targets[i].kpsa);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r,
                                   "the profile from the MEF cannot be kept: a field is out of range");
        *ret = p;
        return 0;
}

int enrol_run(const agent_config_t *cfg, const char *prev, stored_profile_t *ret, exchange_info_t *info) {
        *info = (exchange_info_t) { .failure = FAILURE_NULL };
        if (!ret || !cfg)
                return failure_set(&info->failure, OUTCOME_CONFIG, -EINVAL, "invalid arguments");
        if (prev && ids_check_ke_id(prev, NULL) < 0)
                return failure_set(&info->failure, OUTCOME_CONFIG, -EINVAL, "invalid previous KeID");
        /* backend = tpm2 (and auto when there is a TPM): it must answer before the enrolment, or
         * its profile could not be sealed and the KeID would stay active at the MEF with no
         * gateway holding it (custody_preflight() checks a device: TCTI's node only). */
        if (cfg->seal_backend != SEAL_HOST) {
                (void) setenv("TSS2_LOG", "all+none", 0);
                int pcrs = 0, p = tpm2_probe_pcrs(cfg->tcti, cfg->pcrs, &pcrs); /* one connection */
                if (p == 0 && (p = pcrs) == -ENXIO) /* tpm2_seal() would refuse */
                        return failure_set(&info->failure, OUTCOME_CONFIG, p, "not enrolling: %s: [seal] pcrs = %s: the TPM at %s "
                                           "has not all of them active", cfg->path, cfg->pcrs, cfg->tcti);
                if (p == -EACCES) /* there, but not ours to open: the setup's (hw/tpm2.h) */
                        return custody_tpm_denied(&info->failure, OUTCOME_CONFIG, "not enrolling: ", cfg->tcti);
                if (p < 0 && p != -ENODEV && p != -EOPNOTSUPP) /* there, but busy or failing: a retry */
                        return failure_set(&info->failure, OUTCOME_TRANSIENT, p, "not enrolling: the TPM at %s fails: %s",
                                           cfg->tcti, strerror(-p));
                if (p < 0 && cfg->seal_backend == SEAL_TPM2)
                        return failure_set(&info->failure, OUTCOME_CONFIG, p,
                                           "not enrolling: %s: [seal] backend = tpm2, but %s%s", cfg->path,
                                           p == -EOPNOTSUPP ? "this build has no TPM support" : "no TPM answers at ",
                                           p == -EOPNOTSUPP ? "" : cfg->tcti);
        }
        msg_enrol_req_t er = { .has_loc = cfg->has_loc, .loc = cfg->loc };
        snprintf(er.node_id, sizeof er.node_id, "%s", cfg->node_id);
        if (prev)
                snprintf(er.prev, sizeof er.prev, "%s", prev);
        _cleanup_free_ char *body = NULL;
        int r = msg_enrol_req_format(&er, &body);
        if (r < 0)
                return failure_set(&info->failure, r == -ENOMEM ? OUTCOME_TRANSIENT : OUTCOME_CONFIG, r,
                                   "cannot format the enrolment request: %s", strerror(-r));
        _cleanup_(request_wipe) request_t req = {
                .method = "POST",
                .what = "enrolment",
                .origin = cfg->node_id,
                .body = body,
                .want_status = 201,
                .want_rsc = 2001,
                .ekm = true,
        };
        r = target_set(&req, cfg, NULL, info);
        _cleanup_(http_msg_done) http_msg_t m = {};
        if (r >= 0)
                r = exchange(cfg, &req, &m, info);
        if (r >= 0)
                r = enrol_complete(cfg, &req, &m, ret, info);
        return r;
}

/* A status check or deregistration of ke_id: 0 with *ret the response. */
static int exchange_keid(const agent_config_t *cfg, bool status, const char *ke_id, http_msg_t *ret,
                         exchange_info_t *info) {
        *info = (exchange_info_t) { .failure = FAILURE_NULL };
        /* ke_id goes into a path: a valid KeID has no path or query syntax. */
        if (!cfg || ids_check_ke_id(ke_id, NULL) < 0)
                return failure_set(&info->failure, OUTCOME_CONFIG, -EINVAL, "invalid arguments");
        request_t req = {
                .method = status ? "GET" : "DELETE",
                .what = status ? "status check" : "deregistration",
                .origin = ke_id,
                .want_status = 200,
                .want_rsc = status ? 2000 : 2002,
        };
        int r = target_set(&req, cfg, ke_id, info);
        return r < 0 ? r : exchange(cfg, &req, ret, info);
}

int enrol_status(const agent_config_t *cfg, const char *ke_id, msg_status_t *ret, exchange_info_t *info) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        int r = exchange_keid(cfg, true, ke_id, &m, info);
        if (r < 0)
                return r;
        msg_status_t st;
        char err[MSG_ERR_MAX];
        r = msg_status_parse(m.body, m.body_len, &st, err);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG, "malformed status: %s", err);
        if (!streq(st.ke_id, ke_id))
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -EBADMSG,
                                   "malformed status: msce:status.keID is not the KeID asked about");
        info->poll_clamped = st.poll_clamped;
        info->poll_sent = st.poll_sent;
        *ret = st;
        return 0;
}

int enrol_deregister(const agent_config_t *cfg, const char *ke_id, exchange_info_t *info) {
        _cleanup_(http_msg_done) http_msg_t m = {};
        return exchange_keid(cfg, false, ke_id, &m, info);
}

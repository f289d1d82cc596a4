/* SPDX-License-Identifier: MIT */
/* The daemon's exchanges, each in a child process (agent/worker.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/crypto.h"
#include "agent/worker.h"
#include "proto/ids.h"
#include "util/child.h"
#include "util/util.h"

/* Beyond the exchange's own deadline (enforced in the child), the time the child may take to
 * start, derive and reply before it is killed. */
#define WORKER_GRACE_USEC (5u * 1000000u)

_Static_assert(sizeof(exchange_info_t) + PROFILE_SERIALIZED_MAX <= CHILD_PAYLOAD_MAX, "an enrol reply fits");
_Static_assert(sizeof(exchange_info_t) + sizeof(msg_status_t) <= CHILD_PAYLOAD_MAX, "a status reply fits");

struct worker {
        worker_op_t op;
        const agent_config_t *cfg;
        char arg[MSG_KEID_MAX + 1]; /* prev KeID or the KeID to check; "" for none */
        child_watch_t *watch;
        worker_done_t done;
        void *userdata;
        exchange_info_t info;
        msg_status_t status;
        stored_profile_t profile; /* secret */
        bool has_profile, has_status;
};

/* ---- in the child ---- */

static int child_exchange(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        worker_t *w = userdata;
        exchange_info_t info = {};
        const char *arg = w->arg[0] ? w->arg : NULL;
        size_t len = sizeof info;
        const crypto_ops_t *ops;
        int r = crypto_ops_get(&ops, info.failure.reason, sizeof info.failure.reason);
        if (r < 0) {
                info.failure.outcome = OUTCOME_CONFIG;
        } else if (w->op == WORKER_ENROL) {
                _cleanup_(stored_profile_wipe) stored_profile_t p;
                r = ops->enrol_run(w->cfg, arg, &p, &info);
                if (r == 0) {
                        _cleanup_secret_ secret_t s = {};
                        r = profile_serialize(&p, &s);
                        if (r < 0) {
                                failure_set(&info.failure, OUTCOME_TRANSIENT, r,
                                            "the profile from the MEF cannot be kept: a field is out of range");
                        } else {
                                memcpy(out + sizeof info, s.data, s.len);
                                len += s.len;
                        }
                }
        } else {
                msg_status_t st = {};
                r = ops->enrol_status(w->cfg, arg, &st, &info);
                if (r == 0) {
                        memcpy(out + sizeof info, &st, sizeof st);
                        len += sizeof st;
                }
        }
        /* The reply must be consistent (worker_reply_parse): a failure is never "ok". */
        if (r < 0 && info.failure.outcome == OUTCOME_OK) {
                info.failure.outcome = OUTCOME_TRANSIENT;
                if (!info.failure.reason[0])
                        snprintf(info.failure.reason, sizeof info.failure.reason, "%s", strerror(-r));
        }
        memcpy(out, &info, sizeof info);
        *out_len = len;
        return r;
}

/* ---- the reply ---- */

static bool terminated(const char *s, size_t size) {
        return memchr(s, 0, size) != NULL;
}

int worker_reply_parse(worker_op_t op, int result, const uint8_t *buf, size_t len, exchange_info_t *info,
                       msg_status_t *status, stored_profile_t *profile) {
        if (op < 0 || op >= _WORKER_OP_MAX || !buf || !info || result > 0 || result < -4095)
                return -EBADMSG;
        exchange_info_t i;
        if (len < sizeof i)
                return -EBADMSG;
        memcpy(&i, buf, sizeof i);
        if (!terminated(i.tls_version, sizeof i.tls_version) || !terminated(i.cipher, sizeof i.cipher) ||
            !terminated(i.failure.reason, sizeof i.failure.reason) ||
            !terminated(i.retry_after_sent, sizeof i.retry_after_sent) || i.failure.outcome < 0 ||
            i.failure.outcome > OUTCOME_UNKNOWN_KEID || /* the classes after it are custody's */
            i.stage < 0 || i.stage >= _EXCHANGE_STAGE_MAX ||
            i.http_status < 0 || i.http_status > 999 ||
            (result == 0) != (i.failure.outcome == OUTCOME_OK))
                return -EBADMSG;
        buf += sizeof i;
        len -= sizeof i;
        if (result < 0) {
                if (len != 0)
                        return -EBADMSG;
        } else if (op == WORKER_STATUS) {
                msg_status_t st;
                if (!status || len != sizeof st)
                        return -EBADMSG;
                memcpy(&st, buf, sizeof st);
                if (!terminated(st.ke_id, sizeof st.ke_id) || ids_check_ke_id(st.ke_id, NULL) < 0 ||
                    !terminated(st.exp, sizeof st.exp) || st.state < 0 || st.state >= _MSG_STATE_MAX ||
                    (st.poll != 0 && (st.poll < MSG_POLL_MIN || st.poll > MSG_POLL_MAX)))
                        return -EBADMSG;
                *status = st;
        } else {
                if (!profile)
                        return -EBADMSG;
                int r = profile_parse(buf, len, profile);
                if (r < 0)
                        return r;
        }
        *info = i;
        return 0;
}

/* ---- in the daemon ---- */

static void on_child(child_watch_t *watch, int r, int result, const uint8_t *payload, size_t len, void *userdata) {
        worker_t *w = userdata;
        if (r == 0) {
                r = worker_reply_parse(w->op, result, payload, len, &w->info, &w->status, &w->profile);
                if (r == 0) {
                        w->info.failure.error = result;
                        w->has_status = w->op == WORKER_STATUS && result == 0;
                        w->has_profile = w->op == WORKER_ENROL && result == 0;
                        return w->done(w, result, w->userdata);
                }
                r = -EBADMSG;
        }
        /* No usable reply: a transient failure of its own. */
        w->info = (exchange_info_t) {};
        failure_t *f = &w->info.failure;
        const char *what = r == -EBADMSG     ? "the exchange process sent a malformed result"
                           : r == -ETIMEDOUT ? "the exchange process did not finish in time and was stopped"
                           : r == -ENOMEM    ? "out of memory reading the exchange's result"
                                             : NULL;
        char why[96];
        if (r == -ECHILD) {
                child_watch_describe(watch, why, sizeof why);
                failure_set(f, OUTCOME_TRANSIENT, r, "the exchange process %s without a result", why);
        } else if (what)
                failure_set(f, OUTCOME_TRANSIENT, r, "%s", what);
        else
                failure_set(f, OUTCOME_TRANSIENT, r, "the exchange process sent a malformed result (%s)", strerror(-r));
        w->done(w, r, w->userdata); /* last: may free w */
}

int worker_start(sd_event *e, const agent_config_t *cfg, worker_op_t op, const char *arg, worker_done_t done,
                 void *userdata, worker_t **ret, exchange_info_t *info) {
        *info = (exchange_info_t) {};
        if (!e || !cfg || op < 0 || op >= _WORKER_OP_MAX || !done || !ret || (op == WORKER_STATUS && !arg) ||
            (arg && strlen(arg) > MSG_KEID_MAX))
                return failure_set(&info->failure, OUTCOME_CONFIG, -EINVAL, "%s", "invalid arguments");
        _cleanup_(worker_freep) worker_t *w = calloc(1, sizeof *w);
        if (!w)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, -ENOMEM, "%s", "out of memory");
        *w = (worker_t) { .op = op, .cfg = cfg, .done = done, .userdata = userdata };
        if (arg)
                snprintf(w->arg, sizeof w->arg, "%s", arg);
        uint64_t limit = cfg->exchange_timeout_usec + WORKER_GRACE_USEC;
        int r = child_watch_start(e, child_exchange, w, limit, on_child, w, &w->watch);
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "cannot start the exchange process: %s",
                                   strerror(-r));
        *ret = TAKE_PTR(w);
        return 0;
}

worker_t *worker_free(worker_t *w) {
        if (!w)
                return NULL;
        w->watch = child_watch_free(w->watch);
        stored_profile_wipe(&w->profile);
        erase_free(w, sizeof *w);
        return NULL;
}

const exchange_info_t *worker_get_info(const worker_t *w) {
        return &w->info;
}

int worker_take_profile(worker_t *w, stored_profile_t *ret) {
        if (!w || !ret || !w->has_profile)
                return -ENODATA;
        *ret = w->profile;
        stored_profile_wipe(&w->profile);
        w->has_profile = false;
        return 0;
}

const msg_status_t *worker_get_status(const worker_t *w) {
        return w && w->has_status ? &w->status : NULL;
}

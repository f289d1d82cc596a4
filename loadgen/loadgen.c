/* SPDX-License-Identifier: MIT */
/* Each gateway is a small state machine: power-on timer, then per step (enrol, status, fetch)
 * connect, TLS handshake, write, read, check; on failure a backoff timer and the step again.
 * One connection per exchange and one exchange per connection, as the agent does. */
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "agent/backoff.h"
#include "keys/kdf.h"
#include "loadgen/loadgen.h"
#include "proto/exchange.h"
#include "proto/http.h"
#include "proto/tls.h"
#include "util/string-table.h"
#include "util/util.h"

#define IN_MAX (HTTP_MSG_MAX + 1)
#define SUID "lg"

static const char *const class_names[_LG_CLASS_MAX] = {
        [LG_CLASS_CONNECT] = "connect",
        [LG_CLASS_TLS] = "tls",
        [LG_CLASS_TLS_AUTH] = "tls-auth",
        [LG_CLASS_TIMEOUT] = "timeout",
        [LG_CLASS_BUSY] = "503",
        [LG_CLASS_RATE] = "429",
        [LG_CLASS_5XX] = "5xx",
        [LG_CLASS_REFUSED] = "403",
        [LG_CLASS_UNKNOWN] = "404",
        [LG_CLASS_4XX] = "4xx",
        [LG_CLASS_MALFORMED] = "malformed",
        [LG_CLASS_KEY_MISMATCH] = "key-mismatch",
};

DEFINE_STRING_TABLE_TO_STRING(lg_class, lg_class_t, class_names)

typedef enum step {
        STEP_ENROL,
        STEP_STATUS,
        STEP_FETCH,
        STEP_DONE,
} step_t;

typedef struct lg lg_t;

typedef struct gw {
        lg_t *lg;
        const lg_cred_t *cred;
        step_t step;
        unsigned fetch_next;             /* index into fetch[] */
        unsigned attempt;                /* failures in a row of this step */
        bool running;                    /* an exchange in flight */
        bool queued;                     /* waiting for a connection slot (storm: the timer is the deadline) */
        bool done;                       /* done, rejected or lost: skipped if still queued */
        bool enrolled;                   /* has enrolled once: another enrolment is a re-enrolment */
        struct gw *queue_next;
        uint64_t power_on, started;
        char ke_id[MSG_KEID_MAX + 1];
        unsigned n_fetch;
        size_t fetch_target[LG_TARGETS_MAX];        /* index into opt->targets (up to a million) */
        uint8_t kpsa[LG_TARGETS_MAX][KDF_KEY_LEN];  /* secret: what each fetch must return */
        /* the exchange */
        int fd;
        tls_ctx_t *ctx;
        tls_conn_t *conn;
        sd_event_source *io, *timer;
        char ri[17];
        uint8_t *out;
        size_t out_len, out_off;
        uint8_t *in;
        size_t in_len, in_cap;
        http_parser_t parser;
        bool handshaken;
        bool reconnecting;               /* connecting again for tls_conn_retry() */
} gw_t;

struct lg {
        const lg_options_t *opt;
        lg_result_t *res;
        sd_event *event;
        struct sockaddr_storage addr;
        socklen_t addr_len;
        char host_header[300];
        gw_t *gws;
        size_t n_gws;
        unsigned in_flight;
        gw_t *queue_head, *queue_tail;
        bool pumping;
        size_t finished;                 /* gateways done, rejected or lost */
        uint64_t start, win_start, win_end;
        unsigned long long ri;
};

static void gw_step(gw_t *g);
static void gw_begin(gw_t *g);

/* Bucket i holds [lower(i), upper(i)): below LG_HIST_LINEAR one microsecond each; above, the
 * value's top 8 bits (128 mantissas per power of two from 2^8 on). */
static size_t hist_index(uint64_t usec) {
        if (usec < LG_HIST_LINEAR)
                return (size_t) usec;
        unsigned e = 63u - (unsigned) __builtin_clzll(usec); /* 8.. */
        size_t i = LG_HIST_LINEAR + (size_t) (e - 8u) * LG_HIST_SUB + (size_t) ((usec >> (e - 7u)) - LG_HIST_SUB);
        return MIN(i, (size_t) LG_HIST_N - 1);
}

static uint64_t hist_upper_usec(size_t i) {
        if (i < LG_HIST_LINEAR)
                return i + 1;
        size_t k = i - LG_HIST_LINEAR;
        unsigned e = 8u + (unsigned) (k / LG_HIST_SUB);
        return (uint64_t) (LG_HIST_SUB + k % LG_HIST_SUB + 1) << (e - 7u);
}

void lg_hist_add(uint32_t *h, uint64_t usec) {
        h[hist_index(usec)]++;
}

double lg_hist_ms(const uint32_t *h, unsigned pct) {
        uint64_t total = 0, seen = 0;
        for (size_t i = 0; i < LG_HIST_N; i++)
                total += h[i];
        uint64_t want = (total * pct + 99) / 100;
        for (size_t i = 0; i < LG_HIST_N && want > 0; i++) {
                seen += h[i];
                if (seen >= want)
                        return (double) hist_upper_usec(i) / 1000.0;
        }
        return 0;
}

double lg_hist_max_ms(const uint32_t *h) {
        for (size_t i = LG_HIST_N; i > 0; i--)
                if (h[i - 1])
                        return (double) hist_upper_usec(i - 1) / 1000.0;
        return 0;
}

static bool sustained(const lg_t *lg) {
        return lg->opt->duration_usec > 0;
}

/* Storm mode: the --timeout deadline, past which a gateway is lost. */
static uint64_t deadline(const lg_t *lg) {
        return lg->start + lg->opt->deadline_usec;
}

/* Close the connection and wipe what the exchange held; the gateway's state stays. */
static void gw_close(gw_t *g) {
        g->io = sd_event_source_disable_unref(g->io);
        g->conn = tls_conn_free(g->conn);
        g->ctx = tls_ctx_free(g->ctx);
        if (g->fd >= 0)
                close(g->fd);
        g->fd = -1;
        if (g->in)
                erase(g->in, g->in_len);
        free(g->in);
        g->in = NULL;
        g->in_len = g->in_cap = 0;
        if (g->out)
                erase(g->out, g->out_len);
        free(g->out);
        g->out = NULL;
        if (g->running) {
                g->running = false;
                g->lg->in_flight--;
        }
}

static void gw_finish(gw_t *g) {
        lg_t *lg = g->lg;
        gw_close(g);
        g->timer = sd_event_source_disable_unref(g->timer);
        erase(g->kpsa, sizeof g->kpsa);
        g->done = true;
        lg->finished++;
        if (lg->finished == lg->n_gws)
                (void) sd_event_exit(lg->event, 0);
}

/* A slot freed: start the next queued gateways. Not reentered: a start that fails at once
 * (no fd left) frees its slot again, and the loop here goes on rather than recursing. */
static void queue_pump(lg_t *lg) {
        if (lg->pumping)
                return;
        lg->pumping = true;
        while (lg->queue_head && (lg->opt->concurrency == 0 || lg->in_flight < lg->opt->concurrency)) {
                /* past the deadline, the queued wait for their timers, which count them lost */
                if (!sustained(lg) && now_usec() >= deadline(lg))
                        break;
                gw_t *g = lg->queue_head;
                lg->queue_head = g->queue_next;
                if (!lg->queue_head)
                        lg->queue_tail = NULL;
                g->queued = false;
                g->queue_next = NULL;
                if (!g->done) /* lost at the deadline while it waited */
                        gw_begin(g);
        }
        lg->pumping = false;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);
static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static void gw_arm(gw_t *g, uint64_t when) {
        g->timer = sd_event_source_disable_unref(g->timer);
        if (sd_event_add_time(g->lg->event, &g->timer, CLOCK_MONOTONIC, when, 1000, on_timer, g) < 0) {
                g->lg->res->lost++;
                gw_finish(g);
        }
}

/* The exchange failed: count it, then retry the step after a backoff, or give up. */
static void gw_fail(gw_t *g, lg_class_t c, unsigned retry_after, bool has_retry_after) {
        lg_t *lg = g->lg;
        const lg_options_t *o = lg->opt;
        gw_close(g);
        uint64_t now = now_usec();
        if (sustained(lg)) {
                if (now >= lg->win_start && now < lg->win_end)
                        lg->res->failures[c]++;
                gw_arm(g, now);
                queue_pump(lg);
                return;
        }
        lg->res->failures[c]++;
        if (c == LG_CLASS_TLS_AUTH || c == LG_CLASS_REFUSED || c == LG_CLASS_4XX) {
                lg->res->rejected++;
                lg->res->lost++;
                gw_finish(g);
                queue_pump(lg);
                return;
        }
        if (c == LG_CLASS_UNKNOWN) /* the MEF forgot the KeID: the agent enrols again */
                g->step = STEP_ENROL, g->fetch_next = 0;
        backoff_params_t p = {
                .min_usec = o->backoff_min_usec,
                .max_usec = o->backoff_max_usec,
                .retry_after_max_usec = o->retry_after_max_usec,
        };
        uint64_t delay;
        g->attempt++;
        if (has_retry_after) {
                delay = backoff_retry_after(&p, retry_after, backoff_random());
                lg->res->retry_after_waits++;
        } else
                delay = backoff_delay(&p, g->attempt, backoff_random());
        if (now + delay >= deadline(lg)) {
                lg->res->lost++;
                gw_finish(g);
        } else
                gw_arm(g, now + delay);
        queue_pump(lg);
}

static lg_class_t class_of_tls(int r) {
        if (r == -EACCES)
                return LG_CLASS_TLS_AUTH;
        if (r == -ETIMEDOUT)
                return LG_CLASS_TIMEOUT;
        return LG_CLASS_TLS;
}

static const lg_cred_t *gw_peer(const gw_t *g) {
        return g->step == STEP_FETCH ? &g->lg->opt->targets[g->fetch_target[g->fetch_next]] : g->cred;
}

/* The request of the current step. */
static int gw_request(gw_t *g) {
        lg_t *lg = g->lg;
        _cleanup_free_ char *target = NULL, *body = NULL;
        const char *method = "GET", *origin;
        int r;
        snprintf(g->ri, sizeof g->ri, "%016llx", lg->ri++);
        switch (g->step) {
        case STEP_ENROL: {
                msg_enrol_req_t m = {};
                snprintf(m.node_id, sizeof m.node_id, "%s", g->cred->id);
                r = msg_enrol_req_format(&m, &body);
                if (r < 0)
                        return r;
                method = "POST";
                origin = g->cred->id;
                r = asprintf(&target, "%s/enrolments", lg->opt->base);
                break;
        }
        case STEP_STATUS:
                origin = g->ke_id;
                r = asprintf(&target, "%s/enrolments/%s", lg->opt->base, g->ke_id);
                break;
        default:
                origin = gw_peer(g)->id;
                r = asprintf(&target, "%s/fetchCredentials/%s/" SUID, lg->opt->base, g->ke_id);
                break;
        }
        if (r < 0)
                return -ENOMEM;
        const char *headers[] = {
                "Host", lg->host_header,
                "X-M2M-Origin", origin,
                "X-M2M-RI", g->ri,
                "X-M2M-RVI", "3",
                "Accept", "application/json",
                "Connection", "close",
                body ? "Content-Type" : NULL, "application/json",
                NULL,
        };
        return http_format_request(method, target, headers, body, body ? strlen(body) : 0, &g->out, &g->out_len);
}

/* A new connection to the MEF in g->fd (in place of the one before, if any), watched for its
 * connect to complete. */
static int gw_connect(gw_t *g) {
        lg_t *lg = g->lg;
        g->io = sd_event_source_disable_unref(g->io);
        if (g->fd >= 0)
                close(g->fd);
        g->fd = socket(lg->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (g->fd < 0)
                return -errno;
        /* As msce-agent (proto/exchange.c): without it the client's Finished and its request
         * wait on the server's delayed ACK, 40 ms an exchange that no agent pays. */
        int one = 1;
        (void) setsockopt(g->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(g->fd, (struct sockaddr *) &lg->addr, lg->addr_len) < 0 && errno != EINPROGRESS)
                return -errno;
        return sd_event_add_io(lg->event, &g->io, g->fd, EPOLLOUT, on_io, g);
}

static void gw_begin(gw_t *g) {
        lg_t *lg = g->lg;
        const lg_cred_t *peer = gw_peer(g);
        tls_config_t tc = {
                .mode = TLS_MODE_PSK,
                .min_version = TLS_VERSION_1_2,
                .psk_identity = peer->psk_id,
                .psk = peer->key,
                .psk_len = peer->key_len,
        };
        g->running = true;
        lg->in_flight++;
        g->started = now_usec();
        g->handshaken = g->reconnecting = false;
        g->out_off = 0;
        http_parser_init(&g->parser, HTTP_RESPONSE);
        if (g->step == STEP_ENROL || sustained(lg))
                lg->res->exchanges[0]++;
        else
                lg->res->exchanges[g->step == STEP_STATUS ? 1 : 2]++;
        int r = tls_ctx_new_client(&tc, &g->ctx);
        if (r < 0)
                return gw_fail(g, LG_CLASS_TLS, 0, false);
        if (gw_connect(g) < 0)
                return gw_fail(g, LG_CLASS_CONNECT, 0, false);
        uint64_t until = g->started + lg->opt->exchange_usec;
        gw_arm(g, sustained(lg) ? until : MIN(until, deadline(lg)));
}

/* Schedule the gateway's step: now, or queued behind the connection limit. */
static void gw_go(gw_t *g) {
        lg_t *lg = g->lg;
        g->timer = sd_event_source_disable_unref(g->timer);
        if (lg->opt->concurrency == 0 || lg->in_flight < lg->opt->concurrency) {
                gw_begin(g);
                return;
        }
        g->queued = true;
        if (lg->queue_tail)
                lg->queue_tail->queue_next = g;
        else
                lg->queue_head = g;
        lg->queue_tail = g;
        if (!sustained(lg)) /* waiting for a slot does not stop the clock */
                gw_arm(g, deadline(lg));
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        gw_t *g = userdata;
        lg_t *lg = g->lg;
        if (!sustained(lg) && usec >= deadline(lg)) {
                /* in an exchange, waiting for a slot or for a retry: not done by the deadline */
                lg->res->lost++;
                gw_finish(g);
                queue_pump(lg);
                return 0;
        }
        if (g->running) { /* the exchange took too long */
                gw_fail(g, LG_CLASS_TIMEOUT, 0, false);
                return 0;
        }
        if (sustained(lg) && usec >= lg->win_end) {
                gw_finish(g);
                return 0;
        }
        if (g->power_on == 0) {
                g->power_on = usec;
                if (!lg->res->first_start || usec < lg->res->first_start)
                        lg->res->first_start = usec;
        }
        gw_go(g);
        return 0;
}

static int rsc_of(const http_msg_t *m) {
        unsigned long long v;
        const char *s = http_msg_header(m, "X-M2M-RSC");
        return s && parse_uint(s, 9999, &v) == 0 ? (int) v : 0;
}

/* A complete answer: check it against the step, advance or fail. */
static void gw_answer(gw_t *g, const http_msg_t *m) {
        lg_t *lg = g->lg;
        const lg_options_t *o = lg->opt;
        uint64_t now = now_usec();
        const char *ri = http_msg_header(m, "X-M2M-RI");
        if (sustained(lg)) {
                bool in = now >= lg->win_start && now < lg->win_end;
                if (m->status >= 200 && m->status < 300) {
                        if (in) {
                                lg->res->ok_in_window++;
                                lg_hist_add(lg->res->enrol_hist, now - g->started);
                        }
                        gw_close(g);
                        gw_arm(g, now);
                        queue_pump(lg);
                        return;
                }
                return gw_fail(g, m->status == 503 ? LG_CLASS_BUSY : m->status == 429 ? LG_CLASS_RATE :
                                  m->status >= 500 ? LG_CLASS_5XX : LG_CLASS_4XX, 0, false);
        }
        /* 503 (busy) and 429 (the node's enrolment rate limit): transient, after the
         * Retry-After, as msce-agent (agent/enrol.c response_check()) */
        if (m->status == 503 || m->status == 429) {
                unsigned ra = 0;
                bool capped;
                char sent[RETRY_AFTER_SENT_MAX];
                int r = retry_after_parse(http_msg_header(m, "Retry-After"), (unsigned) (o->retry_after_max_usec / 1000000u),
                                          &ra, &capped, sent);
                return gw_fail(g, m->status == 503 ? LG_CLASS_BUSY : LG_CLASS_RATE, ra, r > 0);
        }
        if (m->status >= 500)
                return gw_fail(g, LG_CLASS_5XX, 0, false);
        if (m->status == 403)
                return gw_fail(g, LG_CLASS_REFUSED, 0, false);
        if (m->status == 404 && g->step != STEP_ENROL)
                return gw_fail(g, LG_CLASS_UNKNOWN, 0, false);
        if (m->status >= 400)
                return gw_fail(g, LG_CLASS_4XX, 0, false);
        if (!ri || !streq(ri, g->ri) || m->status != (g->step == STEP_ENROL ? 201 : 200) ||
            rsc_of(m) != (g->step == STEP_ENROL ? 2001 : 2000))
                return gw_fail(g, LG_CLASS_MALFORMED, 0, false);

        switch (g->step) {
        case STEP_ENROL: {
                _cleanup_erase_(48) uint8_t ekm[KDF_EKM_LEN];
                _cleanup_erase_(32) uint8_t ke[KDF_KE_LEN];
                char ke_id[KDF_KEID_MAX + 1];
                msg_profile_t p;
                if (tls_conn_export(g->conn, KDF_EXPORTER_LABEL, ekm, sizeof ekm) < 0 ||
                    kdf_split_ekm(ekm, o->fqdn, ke, ke_id, sizeof ke_id) < 0)
                        return gw_fail(g, LG_CLASS_TLS, 0, false);
                if (msg_profile_parse(m->body, m->body_len, &p, NULL) < 0)
                        return gw_fail(g, LG_CLASS_MALFORMED, 0, false);
                if (!streq(p.ke_id, ke_id)) { /* key confirmation */
                        msg_profile_wipe(&p);
                        return gw_fail(g, LG_CLASS_KEY_MISMATCH, 0, false);
                }
                snprintf(g->ke_id, sizeof g->ke_id, "%s", p.ke_id);
                const uint8_t *ltk = p.has_ltk ? p.ltk : ke;
                size_t ltk_len = p.has_ltk ? p.ltk_len : sizeof ke;
                g->n_fetch = 0;
                for (size_t i = 0; i < p.n_targets; i++)
                        for (size_t t = 0; t < o->n_targets && g->n_fetch < LG_TARGETS_MAX; t++)
                                if (streq(p.targets[i].id, o->targets[t].id) &&
                                    kdf_kpsa(ltk, ltk_len, p.targets[i].id, g->kpsa[g->n_fetch]) == 0)
                                        g->fetch_target[g->n_fetch++] = t;
                msg_profile_wipe(&p);
                lg_hist_add(lg->res->enrol_hist, now - g->started);
                if (g->enrolled) /* after a 404: not a gateway more, nor another power-on */
                        lg->res->reenrolled++;
                else {
                        g->enrolled = true;
                        lg_hist_add(lg->res->ready_hist, now - g->power_on);
                        lg->res->enrolled++;
                        lg->res->last_enrolled = MAX(lg->res->last_enrolled, now);
                }
                g->step = STEP_STATUS;
                break;
        }
        case STEP_STATUS: {
                msg_status_t st;
                if (msg_status_parse(m->body, m->body_len, &st, NULL) < 0 || st.state != MSG_STATE_ACTIVE ||
                    !streq(st.ke_id, g->ke_id))
                        return gw_fail(g, LG_CLASS_MALFORMED, 0, false);
                g->step = g->n_fetch > 0 ? STEP_FETCH : STEP_DONE;
                g->fetch_next = 0;
                break;
        }
        default: {
                msg_credential_t cr;
                if (msg_credential_parse(m->body, m->body_len, &cr, NULL) < 0 || !cr.status)
                        return gw_fail(g, LG_CLASS_MALFORMED, 0, false);
                bool same = cr.key_len == KDF_KEY_LEN && memcmp(cr.key, g->kpsa[g->fetch_next], KDF_KEY_LEN) == 0;
                msg_credential_wipe(&cr);
                if (!same)
                        return gw_fail(g, LG_CLASS_KEY_MISMATCH, 0, false);
                if (++g->fetch_next >= g->n_fetch)
                        g->step = STEP_DONE;
                break;
        }
        }
        g->attempt = 0;
        gw_close(g);
        if (g->step == STEP_DONE) {
                lg->res->complete++;
                gw_finish(g);
        } else
                gw_arm(g, now);
        queue_pump(lg);
}

/* Read what is there; an answer once complete. */
static int gw_read(gw_t *g) {
        for (;;) {
                if (g->in_len + 1 >= g->in_cap) { /* answers are small: grow on demand */
                        if (g->in_cap >= IN_MAX)
                                return -EMSGSIZE;
                        int r = secret_buffer_grow(&g->in, &g->in_cap, g->in_len,
                                                   MIN(MAX(g->in_cap * 2, (size_t) 4096), (size_t) IN_MAX));
                        if (r < 0)
                                return r;
                }
                ssize_t n = tls_conn_read(g->conn, g->in + g->in_len, g->in_cap - 1 - g->in_len);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -EPIPE;
                g->in_len += (size_t) n;
                http_msg_t m = {};
                int r = http_parse(&g->parser, g->in, g->in_len, &m);
                if (r < 0)
                        return -EBADMSG;
                if (r > 0) {
                        gw_answer(g, &m);
                        http_msg_done(&m);
                        return 1;
                }
        }
}

static void gw_step(gw_t *g) {
        int r;
        if (!g->conn || g->reconnecting) {
                int e = 0;
                socklen_t l = sizeof e;
                if (getsockopt(g->fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0 || e != 0)
                        return gw_fail(g, LG_CLASS_CONNECT, 0, false);
                /* the SNI rule of the agent: none for an IP literal */
                r = g->reconnecting ? tls_conn_retry(g->conn, g->fd)
                                    : tls_conn_new_client(g->ctx, g->fd, g->lg->opt->host, &g->conn);
                g->reconnecting = false;
                if (r < 0)
                        return gw_fail(g, LG_CLASS_TLS, 0, false);
        }
        if (!g->handshaken) {
                r = tls_conn_handshake(g->conn);
                if (r == -EAGAIN)
                        goto wait;
                if (r == -ENOPROTOOPT) {
                        /* a TLS 1.2 MEF (proto/tls.h): as the agent, again on a new connection */
                        if (gw_connect(g) < 0)
                                return gw_fail(g, LG_CLASS_CONNECT, 0, false);
                        g->reconnecting = true;
                        return;
                }
                if (r < 0)
                        return gw_fail(g, class_of_tls(r), 0, false);
                g->handshaken = true;
                r = gw_request(g);
                if (r < 0)
                        return gw_fail(g, LG_CLASS_MALFORMED, 0, false);
        }
        while (g->out_off < g->out_len) {
                ssize_t n = tls_conn_write(g->conn, g->out + g->out_off, g->out_len - g->out_off);
                if (n == -EAGAIN)
                        goto wait;
                if (n < 0)
                        return gw_fail(g, LG_CLASS_TLS, 0, false);
                g->out_off += (size_t) n;
        }
        r = gw_read(g);
        if (r == -EAGAIN)
                goto wait;
        if (r < 0)
                return gw_fail(g, r == -EBADMSG || r == -EMSGSIZE || r == -EPIPE ? LG_CLASS_MALFORMED : LG_CLASS_TLS, 0,
                               false);
        return; /* answered: gw_answer() moved on */
wait:
        (void) sd_event_source_set_io_events(g->io, tls_conn_want(g->conn) == POLLOUT ? EPOLLOUT : EPOLLIN);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        gw_step(userdata);
        return 0;
}

/* The MEF's address for every gateway: its name's only one, else the first of them that takes
 * a connection within the exchange timeout, tried in turn as the agent tries them (so that a
 * black-holed first address, IPv6 dropped on the way, does not lose every gateway); the first
 * when none does (the gateways retry it, as against an MEF that is down). */
static int resolve(lg_t *lg) {
        const lg_options_t *o = lg->opt;
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *res = NULL;
        if (getaddrinfo(o->host, o->port, &hints, &res) != 0 || !res)
                return -EHOSTUNREACH;
        memcpy(&lg->addr, res->ai_addr, res->ai_addrlen);
        lg->addr_len = res->ai_addrlen;
        bool several = res->ai_next != NULL;
        freeaddrinfo(res);
        _cleanup_close_ int fd = -1;
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        if (several && tcp_connect_until(o->host, o->port, now_usec() + o->exchange_usec, &fd) == 0 &&
            getpeername(fd, (struct sockaddr *) &sa, &len) == 0) {
                lg->addr = sa;
                lg->addr_len = len;
        }
        bool v6 = strchr(o->host, ':') != NULL, dflt = streq(o->port, "443");
        snprintf(lg->host_header, sizeof lg->host_header, "%s%s%s%s%s", v6 ? "[" : "", o->host, v6 ? "]" : "",
                 dflt ? "" : ":", dflt ? "" : o->port);
        return 0;
}

int lg_run(const lg_options_t *opt, lg_result_t *res) {
        lg_t lg = { .opt = opt, .res = res };
        int r = resolve(&lg);
        if (r < 0)
                return r;
        lg.n_gws = sustained(&lg) ? MAX(opt->concurrency, 1u) : opt->n_gateways;
        if (opt->n_gateways == 0)
                return -EINVAL;
        lg.gws = calloc(lg.n_gws, sizeof *lg.gws);
        if (!lg.gws)
                return -ENOMEM;
        r = sd_event_new(&lg.event);
        if (r < 0) {
                free(lg.gws);
                return r;
        }
        lg.start = now_usec();
        lg.win_start = lg.start + opt->warmup_usec;
        lg.win_end = lg.win_start + opt->duration_usec;
        res->gateways = sustained(&lg) ? 0 : lg.n_gws;
        for (size_t i = 0; i < lg.n_gws; i++) {
                gw_t *g = &lg.gws[i];
                *g = (gw_t) { .lg = &lg, .cred = &opt->gateways[i % opt->n_gateways], .fd = -1 };
                uint64_t at = lg.start;
                if (!sustained(&lg) && opt->spread_usec > 0)
                        at += backoff_random() % (opt->spread_usec + 1);
                gw_arm(g, at);
        }
        if (lg.finished < lg.n_gws)
                r = sd_event_loop(lg.event);
        for (size_t i = 0; i < lg.n_gws; i++) {
                gw_close(&lg.gws[i]);
                lg.gws[i].timer = sd_event_source_disable_unref(lg.gws[i].timer);
        }
        erase_free(lg.gws, lg.n_gws * sizeof *lg.gws);
        sd_event_unref(lg.event);
        if (sustained(&lg))
                res->window_usec = opt->duration_usec;
        return r < 0 ? r : 0;
}

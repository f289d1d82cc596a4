/* SPDX-License-Identifier: MIT */
/* msce-loadgen's latency histograms (loadgen/loadgen.c): percentiles and the maximum keep the
 * magnitude of every value, from microseconds to the minutes a storm's power-on to enrolled
 * takes with its backoff, each within 0.8 % above it (a bucket's upper bound). And its engine
 * against a TLS 1.2-only server on loopback (a thread of the test), also behind a name whose
 * first address is a black hole. */
#include <wolfssl/options.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#include "loadgen/loadgen.h"
#include "proto/exchange.h"
#include "proto/http.h"
#include "tests/unit/addrs-fake.h"
#include "util/util.h"

#include <wolfssl/wolfcrypt/ecc.h>

static uint32_t hist[LG_HIST_N];

static void setup(void) {
        memset(hist, 0, sizeof hist);
}

TestSuite(loadgen_hist, .init = setup);

static void add(uint64_t usec, unsigned times) {
        for (unsigned i = 0; i < times; i++)
                lg_hist_add(hist, usec);
}

/* got (ms) for a value of usec: no less, and at most 0.8 % (one bucket) more */
static void near(double got_ms, uint64_t usec, const char *what) {
        double want = (double) usec / 1000.0;
        cr_assert(got_ms >= want && got_ms <= want * 1.008 + 0.001, "%s: %.3f ms for a value of %.3f ms", what,
                  got_ms, want);
}

Test(loadgen_hist, empty_is_zero) {
        cr_assert_eq(lg_hist_ms(hist, 50), 0);
        cr_assert_eq(lg_hist_max_ms(hist), 0);
}

/* A storm's power-on to enrolled: half the gateways at once, the rest after minutes of 503s and
 * backoff. p99 and max are minutes, not a cap. */
Test(loadgen_hist, minutes_keep_their_magnitude) {
        add(2 * 1000, 50);
        add(100 * USEC_PER_SEC, 49);
        add(250 * USEC_PER_SEC, 1);
        near(lg_hist_ms(hist, 99), 100 * USEC_PER_SEC, "p99");
        near(lg_hist_ms(hist, 100), 250 * USEC_PER_SEC, "p100");
        near(lg_hist_max_ms(hist), 250 * USEC_PER_SEC, "max");
        near(lg_hist_ms(hist, 50), 2 * 1000, "p50");
}

Test(loadgen_hist, every_scale_within_a_bucket) {
        static const uint64_t values[] = { 0,    1,     99,     100,    255,     256,      257,
                                           1000, 4321,  65535,  65536,  999999,  59999999, 60000000,
                                           86400ull * USEC_PER_SEC, (1ull << 40) - 1 };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                memset(hist, 0, sizeof hist);
                add(values[i], 1);
                near(lg_hist_max_ms(hist), values[i], "max");
                near(lg_hist_ms(hist, 50), values[i], "p50");
        }
}

/* Nearest rank: p99 of 1..100 ms is the 99th value. */
Test(loadgen_hist, nearest_rank) {
        for (uint64_t ms = 1; ms <= 100; ms++)
                add(ms * 1000, 1);
        near(lg_hist_ms(hist, 99), 99 * 1000, "p99");
        near(lg_hist_ms(hist, 50), 50 * 1000, "p50");
        near(lg_hist_ms(hist, 1), 1 * 1000, "p1");
}

/* ---- against a TLS 1.2-only MEF ---- */

#define PSK_ID "lg-test-psk"
static const uint8_t lg_psk[32] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };

static unsigned lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max) {
        if (!streq(identity, PSK_ID) || key_max < sizeof lg_psk)
                return 0;
        memcpy(key, lg_psk, sizeof lg_psk);
        return sizeof lg_psk;
}

typedef struct {
        int lfd;
        unsigned conns;
        bool answered;
} mef12_t;

/* A MEF that speaks TLS 1.2 only and answers the first request it reads with 403; it stops
 * then, or after 3 s without a connection. */
static void *mef12_thread(void *arg) {
        mef12_t *m = arg;
        tls_config_t cfg = { .mode = TLS_MODE_PSK, .min_version = TLS_VERSION_1_2, .max_version = TLS_VERSION_1_2,
                             .psk_lookup = lookup };
        tls_ctx_t *ctx = NULL;
        if (tls_ctx_new_server(&cfg, &ctx) < 0)
                return NULL;
        while (!m->answered) {
                struct pollfd p = { .fd = m->lfd, .events = POLLIN };
                if (poll(&p, 1, 3000) != 1)
                        break;
                _cleanup_close_ int fd = accept4(m->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0)
                        break;
                m->conns++;
                tls_conn_t *c = NULL;
                uint64_t until = now_usec() + 10 * 1000000ULL;
                if (tls_conn_new_server(ctx, fd, &c) == 0 && tls_conn_handshake_until(c, until) == 0) {
                        /* the whole request, then the answer: nothing unread to reset it */
                        char buf[4096];
                        size_t len = 0;
                        http_parser_t parser;
                        http_parser_init(&parser, HTTP_REQUEST);
                        http_msg_t req = {};
                        int r = 0;
                        while (r == 0 && len < sizeof buf) {
                                ssize_t n = tls_conn_read_until(c, buf + len, sizeof buf - len, until);
                                if (n <= 0)
                                        break;
                                len += (size_t) n;
                                r = http_parse(&parser, (uint8_t *) buf, len, &req);
                        }
                        if (r == 1) {
                                http_msg_done(&req);
                                static const char answer[] = "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                                                             "Connection: close\r\n\r\n";
                                m->answered = tls_conn_write_all_until(c, answer, sizeof answer - 1, until) == 0;
                                tls_conn_shutdown(c);
                        }
                }
                tls_conn_free(c);
        }
        tls_ctx_free(ctx);
        wc_ecc_fp_free(); /* thread-local (FP_ECC, HAVE_THREAD_LS): LSan would report it */
        return NULL;
}

/* One gateway against host (port): 4 s of storm, each exchange within xtimeout. */
static void run_one(const char *host, const char *port, uint64_t xtimeout, lg_result_t *res) {
        static lg_cred_t gw = { .id = "node-1", .psk_id = PSK_ID, .key_len = sizeof lg_psk };
        memcpy(gw.key, lg_psk, sizeof lg_psk);
        lg_options_t o = {
                .host = host,
                .port = port,
                .base = "/msce",
                .fqdn = "127.0.0.1",
                .gateways = &gw,
                .n_gateways = 1,
                .exchange_usec = xtimeout,
                .deadline_usec = 4 * 1000000ULL,
                .backoff_min_usec = 100 * 1000ULL,
                .backoff_max_usec = 1000 * 1000ULL,
                .retry_after_max_usec = 1000 * 1000ULL,
        };
        cr_assert_eq(lg_run(&o, res), 0);
}

/* The gateway reaches the MEF's answer (403 here): with wolfSSL 5.5.4 its handshake goes on
 * over TLS 1.2 on a new connection (-ENOPROTOOPT, proto/tls.h), as the agent's does; it was
 * counted as a TLS failure and retried the same way until lost. */
Test(loadgen_tls12, handshake_retry_on_new_connection) {
        mef12_t m = { .lfd = addrs_fake_listener(8, &addrs_fake[0]) };
        char port[8];
        snprintf(port, sizeof port, "%u", ntohs(addrs_fake[0].sin_port));
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, mef12_thread, &m), 0);
        static lg_result_t res;
        run_one("127.0.0.1", port, 10 * 1000000ULL, &res);
        pthread_join(th, NULL);
        close(m.lfd);
        cr_assert_eq(res.failures[LG_CLASS_TLS], 0, "TLS failures: %llu", (unsigned long long) res.failures[LG_CLASS_TLS]);
        cr_assert_eq(res.failures[LG_CLASS_REFUSED], 1);
        cr_assert(m.answered);
        cr_assert_eq(res.rejected, 1);
}

/* The MEF's name has two addresses, the first a black hole (IPv6 dropped on the way): the
 * gateway reaches the MEF at the second and has its answer, as the agent would within its
 * exchange timeout. Only the first was used: each exchange timed out on it until lost. */
Test(loadgen_tls12, next_address_after_black_hole) {
        int filler[2], hole = addrs_fake_black_hole(&addrs_fake[0], filler);
        mef12_t m = { .lfd = addrs_fake_listener(8, &addrs_fake[1]) };
        addrs_fake_n = 2;
        pthread_t th;
        cr_assert_eq(pthread_create(&th, NULL, mef12_thread, &m), 0);
        static lg_result_t res;
        run_one(ADDRS_FAKE_NAME, "1", 3 * 1000000ULL, &res);
        pthread_join(th, NULL);
        cr_assert_eq(res.failures[LG_CLASS_TIMEOUT], 0, "exchanges timed out: %llu",
                     (unsigned long long) res.failures[LG_CLASS_TIMEOUT]);
        cr_assert_eq(res.failures[LG_CLASS_REFUSED], 1);
        cr_assert(m.answered);
        close(m.lfd);
        close(filler[0]);
        close(filler[1]);
        close(hole);
}

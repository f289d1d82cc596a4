/* SPDX-License-Identifier: MIT */
/* One enrolment on loopback, msce against a bare wolfSSL reference, interleaved A B A C A B ...
 * (every exchange follows one on the other server, so both run equally warm or cold):
 *   A  enrol_run() (agent/enrol.h) against a running msce-mef: the real code path, in process
 *   B  bare wolfSSL client + server written on the wolfSSL API here: TLS 1.3 PSK, psk_dhe_ke
 *      with X25519, TLS13-AES128-GCM-SHA256, one request and one response of the enrolment's
 *      size; a new WOLFSSL_CTX per exchange (what a one-shot client pays)
 *   C  the same with one WOLFSSL_CTX for all exchanges (the floor)
 * then, interleaved D E F D E F ..., timed from outside (fork + exec + wait4: process start
 * included):
 *   D  msce-agent --once (enrol, seal with the host key, keyring, profile.json)
 *   E  this program's bare-client mode (B in its own process)
 *   F  msce-agent --check-config (process start and configuration only)
 * Run from bench-enrol.sh (meson test -C BUILD --benchmark --suite bench -v):
 *   bench-enrol compare AGENT CONF WORKDIR N [MEF_PID]
 *       CONF: psk agent configuration for a running MEF (MEF_PID: report its CPU per exchange);
 *       D removes CONF's sealed profile before each run
 *   bench-enrol bare-client PORT KEYFILE       one bare exchange (mode E)
 * The bare server is a forked child serving one connection at a time. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/ssl.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "agent/config.h"
#include "agent/enrol.h"
#include "keys/seal.h"
#include "tests/bench/bench-tls.h"
#include "tests/bench/msg-complete.h"

#define BARE_IDENTITY "bench-bare"
#define BARE_SUITE "TLS13-AES128-GCM-SHA256"
#define BARE_KEY_LEN 32u
#define MSG_MAX 8192u
#define WARMUP 5u
#define N_MAX 100000ull
#define IO_TIMEOUT_SEC 5

/* The sizes of a real exchange: msce-agent's request for node-1 and msce-mef's profile. */
#define BARE_REQUEST_BODY "{\"msce:enrolReq\":{\"nodeID\":\"node-1\"}}"
#define BARE_RESPONSE_BODY                                                                             \
        "{\"msce:profile\":{\"cseID\":\"/mn-cse-1\",\"cseBase\":\"https://in.example.net:8443/~/in-cse/" \
        "in-name\",\"keID\":\"fa0d806c82aae385ae7e74c7b520c815@127.0.0.1\",\"exp\":\"20271127T212025\","  \
        "\"targets\":[{\"id\":\"/in-cse\",\"kpsaID\":\"fa0d806c82aae385ae7e74c7b520c815.1@127.0.0.1\"}],"  \
        "\"poll\":86400}}"

static uint8_t bare_key[BARE_KEY_LEN];

/* ---- bare wolfSSL, both ends ---- */

static unsigned bare_client_psk(WOLFSSL *ssl, const char *hint, char *identity, unsigned id_max,
                                unsigned char *key, unsigned key_max, const char **suite) {
        if (id_max <= strlen(BARE_IDENTITY) || key_max < BARE_KEY_LEN)
                return 0;
        strcpy(identity, BARE_IDENTITY);
        memcpy(key, bare_key, BARE_KEY_LEN);
        *suite = BARE_SUITE;
        return BARE_KEY_LEN;
}

static unsigned bare_server_psk(WOLFSSL *ssl, const char *identity, unsigned char *key, unsigned key_max,
                                const char **suite) {
        if (!identity || !streq(identity, BARE_IDENTITY) || key_max < BARE_KEY_LEN)
                return 0;
        memcpy(key, bare_key, BARE_KEY_LEN);
        *suite = BARE_SUITE;
        return BARE_KEY_LEN;
}

static WOLFSSL_CTX *bare_ctx(bool server) {
        WOLFSSL_METHOD *method = server ? wolfTLSv1_3_server_method() : wolfTLSv1_3_client_method();
        WOLFSSL_CTX *ctx = bench_tls_ctx(method, BARE_SUITE);
        if (!ctx)
                return NULL;
        if (server) {
                wolfSSL_CTX_set_psk_server_tls13_callback(ctx, bare_server_psk);
                wolfSSL_CTX_no_ticket_TLSv13(ctx); /* as msce-mef: no session tickets */
        } else
                wolfSSL_CTX_set_psk_client_tls13_callback(ctx, bare_client_psk);
        return ctx;
}


/* Read one message with wolfSSL_read on a blocking socket. 0 or -1. */
static int bare_read_msg(WOLFSSL *ssl, char *buf, size_t size, size_t *ret_len) {
        size_t len = 0;
        for (unsigned i = 0; i < 64 && len < size - 1; i++) {
                int n = wolfSSL_read(ssl, buf + len, (int) (size - 1 - len));
                if (n <= 0)
                        return -1;
                len += (size_t) n;
                buf[len] = 0;
                if (msg_complete(buf, len)) {
                        *ret_len = len;
                        return 0;
                }
        }
        return -1;
}

static void socket_timeouts(int fd) {
        struct timeval tv = { .tv_sec = IO_TIMEOUT_SEC };
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int bare_connect(uint16_t port, int *ret_fd) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as msce-agent */
        socket_timeouts(fd);
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* Handshake, request, response, close_notify on a new WOLFSSL. */
static int bare_session(WOLFSSL_CTX *ctx, int fd, const char *req, int req_len) {
        char buf[MSG_MAX];
        size_t len;
        WOLFSSL *ssl = wolfSSL_new(ctx);
        if (!ssl)
                return -ENOMEM;
        int r = -EPROTO;
        if (wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS &&
            wolfSSL_UseKeyShare(ssl, WOLFSSL_ECC_X25519) == WOLFSSL_SUCCESS && wolfSSL_connect(ssl) == WOLFSSL_SUCCESS) {
                /* psk_dhe_ke over X25519 with the suite asked for, or the comparison is void */
                const char *curve = wolfSSL_get_curve_name(ssl), *cipher = wolfSSL_get_cipher_name(ssl);
                if (curve && streq(curve, "X25519") && cipher && streq(cipher, BARE_SUITE) &&
                    wolfSSL_write(ssl, req, req_len) == req_len && bare_read_msg(ssl, buf, sizeof buf, &len) == 0 &&
                    strncmp(buf, "HTTP/1.1 201 ", 13) == 0) {
                        (void) wolfSSL_shutdown(ssl);
                        r = 0;
                }
        }
        wolfSSL_free(ssl);
        return r;
}

/* One bare exchange: connect, handshake, request, response, close_notify. shared NULL: a new
 * context for this exchange. 0 or a negative errno. */
static int bare_exchange(WOLFSSL_CTX *shared, uint16_t port) {
        static const char req_fmt[] = "POST /msce/enrolments HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                                      "X-M2M-Origin: node-1\r\nX-M2M-RI: %s\r\nX-M2M-RVI: 3\r\n"
                                      "Accept: application/json\r\nConnection: close\r\n"
                                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s";
        uint8_t rnd[8];
        char ri[2 * sizeof rnd + 1], req[1024];
        int r = random_bytes(rnd, sizeof rnd);
        if (r < 0)
                return r;
        hex_encode(rnd, sizeof rnd, ri);
        int req_len = snprintf(req, sizeof req, req_fmt, port, ri, strlen(BARE_REQUEST_BODY), BARE_REQUEST_BODY);

        WOLFSSL_CTX *ctx = shared ? shared : bare_ctx(false);
        if (!ctx)
                return -ENOMEM;
        _cleanup_close_ int fd = -1;
        r = bare_connect(port, &fd);
        if (r == 0)
                r = bare_session(ctx, fd, req, req_len);
        if (!shared)
                wolfSSL_CTX_free(ctx);
        return r;
}

/* The bare server: one connection at a time, until ctl_fd closes or max connections. */
static _Noreturn void bare_server(int lfd, int ctl_fd, unsigned long long max) {
        static const char resp_fmt[] = "HTTP/1.1 201 Created\r\nX-M2M-RSC: 2001\r\nX-M2M-RI: 0123456789abcdef\r\n"
                                       "Content-Type: application/json\r\nConnection: close\r\n"
                                       "Content-Length: %zu\r\n\r\n%s";
        char resp[1024], buf[MSG_MAX];
        int resp_len = snprintf(resp, sizeof resp, resp_fmt, strlen(BARE_RESPONSE_BODY), BARE_RESPONSE_BODY);
        WOLFSSL_CTX *ctx = bare_ctx(true);
        if (!ctx)
                _exit(1);
        for (unsigned long long i = 0; i < max; i++) {
                struct pollfd p[2] = { { .fd = lfd, .events = POLLIN }, { .fd = ctl_fd, .events = POLLIN } };
                if (poll(p, 2, 60 * 1000) <= 0 || p[1].revents)
                        break;
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        continue;
                socket_timeouts(fd);
                WOLFSSL *ssl = wolfSSL_new(ctx);
                size_t len;
                if (ssl && wolfSSL_set_fd(ssl, fd) == WOLFSSL_SUCCESS && wolfSSL_accept(ssl) == WOLFSSL_SUCCESS &&
                    bare_read_msg(ssl, buf, sizeof buf, &len) == 0 && wolfSSL_write(ssl, resp, resp_len) == resp_len)
                        (void) wolfSSL_shutdown(ssl);
                if (ssl)
                        wolfSSL_free(ssl);
                close(fd);
        }
        wolfSSL_CTX_free(ctx);
        _exit(0);
}

/* ---- timing ---- */

typedef struct series {
        const char *name;
        uint64_t *us;       /* wall time of each successful run */
        size_t n;
        unsigned failed;
        uint64_t cpu_ns;    /* client CPU over the measured runs (this process, or the child) */
} series_t;

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted series, ms. */
static double pct_ms(const series_t *s, unsigned p) {
        size_t k = (s->n * p + 99) / 100;
        return s->us[k > 0 ? k - 1 : 0] / 1000.0;
}

static void series_print(series_t *s) {
        qsort(s->us, s->n, sizeof *s->us, cmp_u64);
        if (s->n == 0) {
                printf("  %-48s    (no successful run, %u failed)\n", s->name, s->failed);
                return;
        }
        printf("  %-48s %7.3f %7.3f %7.3f %7.3f %7.3f", s->name, pct_ms(s, 50), pct_ms(s, 90), pct_ms(s, 10),
               pct_ms(s, 100), s->cpu_ns / 1e6 / (double) (s->n + s->failed));
        if (s->failed)
                printf("  (%u failed)", s->failed);
        printf("\n");
}

static uint64_t process_cpu_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* the bare server is another process */
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* fork + exec argv with stdout/stderr to /dev/null; wall time in *ret_us, the child's CPU in
 * *ret_cpu_ns. 0 when it exited 0. */
static int run_process(char *const argv[], uint64_t *ret_us, uint64_t *ret_cpu_ns) {
        uint64_t t0 = now_usec();
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null < 0 || dup2(null, STDOUT_FILENO) < 0 || dup2(null, STDERR_FILENO) < 0)
                        _exit(127);
                execv(argv[0], argv);
                _exit(127);
        }
        int status;
        struct rusage ru;
        if (wait4(pid, &status, 0, &ru) < 0)
                return negative_errno();
        *ret_us = now_usec() - t0;
        *ret_cpu_ns = rusage_cpu_nsec(&ru);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -ECHILD;
}

static void record(series_t *s, int r, uint64_t us, uint64_t cpu_ns, bool measure) {
        if (!measure)
                return;
        s->cpu_ns += cpu_ns;
        if (r < 0)
                s->failed++;
        else
                s->us[s->n++] = us;
}

/* Times one in-process exchange: wall and this process's CPU. */
#define TIMED(s, m, expr)                                                        \
        do {                                                                     \
                uint64_t _t0 = now_usec(), _c0 = process_cpu_ns();               \
                int _r = (expr);                                                 \
                record((s), _r, now_usec() - _t0, process_cpu_ns() - _c0, (m));  \
        } while (0)

static int enrol_once(const agent_config_t *cfg, char *tls, size_t tls_size) {
        _cleanup_(stored_profile_wipe) stored_profile_t res;
        exchange_info_t info;
        static unsigned reported;
        int r = enrol_run(cfg, NULL, &res, &info);
        if (r < 0 && reported++ < 3)
                fprintf(stderr, "enrol_run: %s\n", info.failure.reason);
        else if (!tls[0])
                snprintf(tls, tls_size, "%s %s", info.tls_version, info.cipher);
        return r;
}

static int compare(const char *agent, const char *conf, const char *workdir, unsigned long long n, pid_t mef) {
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        char err[1024] = "", keyfile[4096], sealed[4096], self[4096], port_s[16];
        int r = agent_config_load(conf, 0, &cfg, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "%s\n", err[0] ? err : strerror(-r));
                return 1;
        }
        ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
        if (k <= 0)
                return 1;
        self[k] = 0;
        snprintf(sealed, sizeof sealed, "%s/%s", cfg.state_dir, SEAL_ENVELOPE_NAME);

        /* The bare side's key, also in a file for mode E (never in argv). */
        char hex[2 * BARE_KEY_LEN + 2];
        if (random_bytes(bare_key, sizeof bare_key) < 0)
                return 1;
        hex_encode(bare_key, sizeof bare_key, hex);
        strcat(hex, "\n");
        snprintf(keyfile, sizeof keyfile, "%s/bare.hex", workdir);
        r = file_write_atomic(keyfile, hex, strlen(hex), 0600);
        erase(hex, sizeof hex);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", keyfile, strerror(-r));
                return 1;
        }

        _cleanup_close_ int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t salen = sizeof sa;
        if (lfd < 0 || bind(lfd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(lfd, 16) < 0 ||
            getsockname(lfd, (struct sockaddr *) &sa, &salen) < 0) {
                perror("bare server socket");
                return 1;
        }
        uint16_t port = ntohs(sa.sin_port);
        snprintf(port_s, sizeof port_s, "%u", port);
        int ctl[2];
        if (pipe2(ctl, O_CLOEXEC) < 0)
                return 1;
        pid_t server = fork();
        if (server < 0)
                return 1;
        if (server == 0) {
                close(ctl[1]);
                bare_server(lfd, ctl[0], 3 * (n + WARMUP) + 16); /* B + C, E */
        }
        close(ctl[0]);

        WOLFSSL_CTX *shared = bare_ctx(false);
        if (!shared)
                return 1;
        series_t s[6] = {
                { "A  msce enrol_run() -> msce-mef" },
                { "B  bare wolfSSL, CTX per exchange" },
                { "C  bare wolfSSL, one CTX" },
                { "D  msce-agent --once (enrol + seal + keyring)" },
                { "E  bare-client process (B in own process)" },
                { "F  msce-agent --check-config (start + config)" },
        };
        bool oom = false;
        for (size_t i = 0; i < ELEMENTSOF(s); i++) {
                s[i].us = calloc(i == 0 ? 2 * n : n, sizeof(uint64_t));
                oom = oom || !s[i].us;
        }
        char *argv_once[] = { (char *) agent, (char *) "--once", (char *) "-c", (char *) conf, NULL };
        char *argv_check[] = { (char *) agent, (char *) "--check-config", (char *) "-c", (char *) conf, NULL };
        char *argv_bare[] = { self, (char *) "bare-client", port_s, keyfile, NULL };
        char tls[96] = "";
        uint64_t mef_cpu = 0, bare_cpu = 0;
        int rc = 0;

        /* In process: A B A C A B ... so that every exchange follows one on the other server and
         * both servers (and the client) run equally warm or cold. A gets 2N runs. */
        for (unsigned long long i = 0; i < 2 * (n + WARMUP) && !oom; i++) {
                bool m = i >= 2 * WARMUP;
                if (i == 2 * WARMUP) {
                        mef_cpu = mef > 0 ? process_cpu_nsec(mef) : 0;
                        bare_cpu = process_cpu_nsec(server);
                }
                TIMED(&s[0], m, enrol_once(&cfg, tls, sizeof tls));
                if (i % 2 == 0)
                        TIMED(&s[1], m, bare_exchange(NULL, port));
                else
                        TIMED(&s[2], m, bare_exchange(shared, port));
        }
        /* Server CPU per exchange served in the measured in-process runs (2N each). */
        mef_cpu = mef > 0 && mef_cpu ? process_cpu_nsec(mef) - mef_cpu : 0;
        bare_cpu = process_cpu_nsec(server) - bare_cpu;

        /* Processes: D E F D E F ... */
        for (unsigned long long i = 0; i < n + WARMUP && !oom; i++) {
                bool m = i >= WARMUP;
                uint64_t us = 0, cpu = 0;
                /* Each --once enrols: without a sealed profile there is nothing to restore. */
                if (unlink(sealed) < 0 && errno != ENOENT)
                        rc = 1;
                r = run_process(argv_once, &us, &cpu);
                record(&s[3], r, us, cpu, m);
                r = run_process(argv_bare, &us, &cpu);
                record(&s[4], r, us, cpu, m);
                r = run_process(argv_check, &us, &cpu);
                record(&s[5], r, us, cpu, m);
        }
        wolfSSL_CTX_free(shared);
        close(ctl[1]);
        (void) waitpid(server, NULL, 0);
        unlink(keyfile);

        printf("one enrolment on loopback, psk (%s, psk_dhe_ke X25519), interleaved A B A C ... (A: 2N) "
               "then D E F ..., N=%llu\n", tls[0] ? tls : "?", n);
        printf("  %-48s %7s %7s %7s %7s %7s\n", "(ms)", "median", "p90", "p10", "max", "cpu");
        printf("in process (cpu: the client's own):\n");
        for (size_t i = 0; i < 3; i++)
                series_print(&s[i]);
        printf("process (fork + exec + wait4, wall; cpu: the child's):\n");
        for (size_t i = 3; i < 6; i++)
                series_print(&s[i]);
        if (mef_cpu)
                printf("server CPU per exchange (in-process part): msce-mef %.3f ms, bare server %.3f ms\n",
                       mef_cpu / 1e6 / (double) (2 * n), bare_cpu / 1e6 / (double) (2 * n));
        for (size_t i = 1; i < 3 && s[0].n && s[i].n; i++)
                printf("ratio A/%c: median %.2f, p90 %.2f (target <= 1.25, issue 11)\n", (char) ('A' + i),
                       pct_ms(&s[0], 50) / pct_ms(&s[i], 50), pct_ms(&s[0], 90) / pct_ms(&s[i], 90));
        if (s[3].n && s[4].n)
                printf("ratio D/E: median %.2f, p90 %.2f (processes)\n", pct_ms(&s[3], 50) / pct_ms(&s[4], 50),
                       pct_ms(&s[3], 90) / pct_ms(&s[4], 90));
        for (size_t i = 0; i < ELEMENTSOF(s); i++) {
                if (s[i].failed || oom)
                        rc = 1;
                free(s[i].us);
        }
        return rc;
}

static int bare_client(const char *port_s, const char *keyfile) {
        unsigned long long port;
        size_t len = 0;
        if (parse_uint(port_s, 65535, &port) < 0 || port == 0)
                return 2;
        if (secret_hex_file_read(keyfile, BARE_KEY_LEN, BARE_KEY_LEN, bare_key, &len) < 0)
                return 1;
        int r = bare_exchange(NULL, (uint16_t) port);
        erase(bare_key, sizeof bare_key);
        return r < 0;
}

int main(int argc, char **argv) {
        signal(SIGPIPE, SIG_IGN); /* wolfSSL's default I/O writes without MSG_NOSIGNAL */
        if (wolfSSL_Init() != WOLFSSL_SUCCESS)
                return 1;
        unsigned long long n;
        unsigned long long mef = 0;
        if ((argc == 6 || argc == 7) && streq(argv[1], "compare") && parse_uint(argv[5], N_MAX, &n) == 0 &&
            n > 0 && (argc == 6 || parse_uint(argv[6], INT32_MAX, &mef) == 0))
                return compare(argv[2], argv[3], argv[4], n, (pid_t) mef);
        if (argc == 4 && streq(argv[1], "bare-client"))
                return bare_client(argv[2], argv[3]);
        fprintf(stderr, "usage: %s compare AGENT CONF WORKDIR N [MEF_PID] | bare-client PORT KEYFILE\n", argv[0]);
        return 2;
}

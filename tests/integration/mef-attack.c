/* SPDX-License-Identifier: MIT */
/* An attacker without credentials against msce-mef on loopback (issue 12), and the legitimate
 * client to measure beside it. Every mode stops by itself after SECONDS.
 *   mef-attack hold     PORT N SECONDS SOURCES   N idle connections, held (not reopened)
 *   mef-attack silent   PORT N SECONDS SOURCES   N idle connections, reopened when closed
 *   mef-attack dribble  PORT N SECONDS SOURCES   N connections sending a ClientHello 1 byte/s, reopened
 *   mef-attack garbage  PORT N SECONDS SOURCES   N connections sending 512 random bytes, reopened
 *   mef-attack wrongpsk PORT N SECONDS SOURCES   N processes, each handshaking in a loop with a
 *                                                 new PSK identity msce-test-attack-* and a random key
 *   mef-attack enrol    PORT NODE_ID PSK_ID KPM_FILE   one enrolment: prints "STATUS MS", exit 0 on 201
 * Attack connections come from 127.0.2.1 .. 127.0.2.SOURCES (the legitimate client from
 * 127.0.0.1); reopening is capped at RATE connections/s overall ($MEF_ATTACK_RATE, default
 * 1000). Prints one line of counts at the end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "proto/http.h"
#include "proto/exchange.h"
#include "util/util.h"

#define N_MAX 4096u
#define SOURCES_MAX 250u
#define GARBAGE_LEN 512u
#define IO_USEC (3u * 1000u * 1000u)

typedef enum mode {
        MODE_HOLD,
        MODE_SILENT,
        MODE_DRIBBLE,
        MODE_GARBAGE,
} mode_t_;

typedef struct slot {
        int fd;
        bool connected;
        uint64_t next_send; /* dribble */
        size_t sent;
        unsigned source;
} slot_t;

typedef struct stats {
        unsigned long long opened, closed_by_server, connect_errors, bytes_sent;
} stats_t;

static uint16_t port;
static unsigned n_sources;

static void source_addr(unsigned i, struct sockaddr_in *sa) {
        *sa = (struct sockaddr_in) { .sin_family = AF_INET };
        sa->sin_addr.s_addr = htonl((127u << 24) | (2u << 8) | (i % n_sources + 1));
}

/* A non-blocking socket from source i, connecting. */
static int open_from(unsigned i, bool blocking) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK), 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_in src, dst = { .sin_family = AF_INET, .sin_port = htons(port) };
        dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        source_addr(i, &src);
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (bind(fd, (struct sockaddr *) &src, sizeof src) < 0 ||
            (connect(fd, (struct sockaddr *) &dst, sizeof dst) < 0 && errno != EINPROGRESS)) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

static void fill_random(uint8_t *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) random();
}

/* What a dribbling client sends: the start of a plausible ClientHello, then noise. */
static uint8_t dribble_byte(size_t at) {
        static const uint8_t hello[] = { 0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03 };
        return at < sizeof hello ? hello[at] : (uint8_t) random();
}

static int flood(mode_t_ mode, unsigned n, unsigned seconds, unsigned rate) {
        _cleanup_free_ slot_t *slots = calloc(n, sizeof *slots);
        _cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
        if (!slots || ep < 0)
                return 1;
        stats_t st = {};
        uint64_t start = now_usec(), end = start + (uint64_t) seconds * 1000000u;
        double tokens = n; /* the first N at once */
        uint64_t last_refill = start;
        for (unsigned i = 0; i < n; i++) {
                slots[i].fd = -1;
                slots[i].source = i;
        }
        bool first_round_done = false;
        while (now_usec() < end) {
                uint64_t now = now_usec();
                tokens = MIN((double) n, tokens + (double) (now - last_refill) * rate / 1e6);
                last_refill = now;
                /* (re)open */
                for (unsigned i = 0; i < n && tokens >= 1; i++) {
                        slot_t *s = &slots[i];
                        if (s->fd >= 0 || (mode == MODE_HOLD && first_round_done))
                                continue;
                        s->fd = open_from(s->source, false);
                        tokens -= 1;
                        if (s->fd < 0) {
                                st.connect_errors++;
                                s->fd = -1;
                                continue;
                        }
                        st.opened++;
                        s->connected = false;
                        s->sent = 0;
                        s->next_send = now;
                        struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.u32 = i };
                        if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
                                close(s->fd);
                                s->fd = -1;
                        }
                }
                first_round_done = true;
                struct epoll_event evs[256];
                int k = epoll_wait(ep, evs, ELEMENTSOF(evs), 20);
                for (int j = 0; j < k; j++) {
                        slot_t *s = &slots[evs[j].data.u32];
                        if (s->fd < 0)
                                continue;
                        bool gone = evs[j].events & (EPOLLERR | EPOLLHUP | EPOLLRDHUP);
                        if (!gone && (evs[j].events & EPOLLIN)) {
                                uint8_t buf[4096];
                                ssize_t r = recv(s->fd, buf, sizeof buf, MSG_DONTWAIT);
                                gone = r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR);
                        }
                        if (!gone && !s->connected && (evs[j].events & EPOLLOUT)) {
                                s->connected = true;
                                struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.u32 = evs[j].data.u32 };
                                (void) epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                                if (mode == MODE_GARBAGE) {
                                        uint8_t junk[GARBAGE_LEN];
                                        fill_random(junk, sizeof junk);
                                        ssize_t w = send(s->fd, junk, sizeof junk, MSG_NOSIGNAL | MSG_DONTWAIT);
                                        if (w > 0)
                                                st.bytes_sent += (size_t) w;
                                }
                        }
                        if (gone) {
                                if (s->connected)
                                        st.closed_by_server++;
                                else
                                        st.connect_errors++;
                                close(s->fd);
                                s->fd = -1;
                        }
                }
                if (mode == MODE_DRIBBLE) {
                        now = now_usec();
                        for (unsigned i = 0; i < n; i++) {
                                slot_t *s = &slots[i];
                                if (s->fd < 0 || !s->connected || now < s->next_send)
                                        continue;
                                uint8_t b = dribble_byte(s->sent);
                                if (send(s->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT) == 1) {
                                        s->sent++;
                                        st.bytes_sent++;
                                }
                                s->next_send = now + 1000000u;
                        }
                }
        }
        unsigned open_now = 0;
        for (unsigned i = 0; i < n; i++)
                if (slots[i].fd >= 0) {
                        open_now++;
                        close(slots[i].fd);
                }
        printf("opened %llu closed-by-server %llu connect-errors %llu open-at-end %u bytes-sent %llu\n", st.opened,
               st.closed_by_server, st.connect_errors, open_now, st.bytes_sent);
        return 0;
}

/* One process: handshakes with a new identity each time until end. */
static void wrongpsk_loop(unsigned id, uint64_t end, unsigned long long *ret_tries, unsigned long long *ret_refused) {
        unsigned long long tries = 0, refused = 0;
        while (now_usec() < end) {
                char identity[64];
                uint8_t key[32];
                snprintf(identity, sizeof identity, "msce-test-attack-%u-%llu", id, tries);
                fill_random(key, sizeof key);
                tls_config_t cfg = {
                        .mode = TLS_MODE_PSK,
                        .min_version = TLS_VERSION_1_2,
                        .psk_identity = identity,
                        .psk = key,
                        .psk_len = sizeof key,
                };
                tls_ctx_t *ctx = NULL;
                tls_conn_t *c = NULL;
                int fd = -1;
                tries++;
                if (tls_ctx_new_client(&cfg, &ctx) < 0)
                        break;
                erase(key, sizeof key);
                fd = open_from(id + (unsigned) tries, false);
                if (fd >= 0) {
                        struct pollfd p = { .fd = fd, .events = POLLOUT };
                        (void) poll(&p, 1, 2000);
                        if (tls_conn_new_client(ctx, fd, "127.0.0.1", &c) >= 0) {
                                int r = tls_conn_handshake_until(c, now_usec() + IO_USEC);
                                if (r == -EACCES || r == -ECONNRESET || r == -EPROTO)
                                        refused++;
                        }
                }
                tls_conn_free(c);
                if (fd >= 0)
                        close(fd);
                tls_ctx_free(ctx);
        }
        *ret_tries = tries;
        *ret_refused = refused;
}

static int wrongpsk(unsigned procs, unsigned seconds) {
        uint64_t end = now_usec() + (uint64_t) seconds * 1000000u;
        pid_t pids[64];
        int pipes[64][2];
        procs = MIN(procs, 64u);
        for (unsigned p = 0; p < procs; p++) {
                if (pipe2(pipes[p], O_CLOEXEC) < 0)
                        return 1;
                pids[p] = fork();
                if (pids[p] < 0)
                        return 1;
                if (pids[p] == 0) {
                        srandom((unsigned) getpid());
                        unsigned long long t[2];
                        wrongpsk_loop(p, end, &t[0], &t[1]);
                        (void) !write(pipes[p][1], t, sizeof t);
                        _exit(0);
                }
                close(pipes[p][1]);
        }
        unsigned long long tries = 0, refused = 0;
        for (unsigned p = 0; p < procs; p++) {
                unsigned long long t[2] = {};
                if (read(pipes[p][0], t, sizeof t) == (ssize_t) sizeof t) {
                        tries += t[0];
                        refused += t[1];
                }
                close(pipes[p][0]);
                (void) waitpid(pids[p], NULL, 0);
        }
        printf("handshakes %llu refused %llu\n", tries, refused);
        return 0;
}

static int enrol(const char *node, const char *psk_id, const char *kpm_file) {
        uint8_t kpm[64];
        size_t kpm_len = 0;
        int r = secret_hex_file_read(kpm_file, 1, sizeof kpm, kpm, &kpm_len);
        if (r < 0) {
                fprintf(stderr, "%s: %s\n", kpm_file, strerror(-r));
                return 2;
        }
        uint64_t t0 = now_usec(), deadline = t0 + 30u * 1000000u;
        tls_config_t cfg = {
                .mode = TLS_MODE_PSK,
                .min_version = TLS_VERSION_1_2,
                .psk_identity = psk_id,
                .psk = kpm,
                .psk_len = kpm_len,
        };
        tls_ctx_t *ctx = NULL;
        tls_conn_t *c = NULL;
        int fd = -1, status = -1;
        char portstr[8];
        snprintf(portstr, sizeof portstr, "%u", port);
        r = tls_ctx_new_client(&cfg, &ctx);
        erase(kpm, sizeof kpm);
        if (r >= 0)
                r = tcp_connect_until("127.0.0.1", portstr, deadline, &fd);
        if (r >= 0)
                r = tls_conn_new_client(ctx, fd, "127.0.0.1", &c);
        if (r >= 0)
                r = tls_conn_handshake_until(c, deadline);
        char body[256], ri[32], host[32];
        snprintf(body, sizeof body, "{\"msce:enrolReq\":{\"nodeID\":\"%s\"}}", node);
        snprintf(ri, sizeof ri, "attack-%llx", (unsigned long long) t0);
        snprintf(host, sizeof host, "127.0.0.1:%u", port);
        const char *headers[] = { "Host", host, "X-M2M-Origin", node, "X-M2M-RI", ri, "X-M2M-RVI", "3",
                                  "Content-Type", "application/json", NULL };
        _cleanup_free_ uint8_t *req = NULL;
        size_t req_len = 0;
        if (r >= 0)
                r = http_format_request("POST", "/msce/enrolments", headers, body, strlen(body), &req, &req_len);
        if (r >= 0)
                r = tls_conn_write_all_until(c, req, req_len, deadline);
        static uint8_t in[HTTP_MSG_MAX];
        char why[160] = "";
        size_t len = 0;
        http_parser_t p;
        http_parser_init(&p, HTTP_RESPONSE);
        while (r >= 0) {
                ssize_t n = tls_conn_read_until(c, in + len, sizeof in - len, deadline);
                if (n <= 0) {
                        r = n < 0 ? (int) n : -EPIPE;
                        break;
                }
                len += (size_t) n;
                http_msg_t m = {};
                r = http_parse(&p, in, len, &m);
                if (r == 1) {
                        status = m.status;
                        /* a refusal says why (an error body: no key in it) */
                        if (status != 201 && m.body)
                                snprintf(why, sizeof why, " %.*s", (int) MIN(m.body_len, sizeof why - 2), (const char *) m.body);
                        http_msg_done(&m);
                        break;
                }
        }
        erase(in, sizeof in);
        tls_conn_free(c);
        if (fd >= 0)
                close(fd);
        tls_ctx_free(ctx);
        unsigned long long ms = (now_usec() - t0) / 1000u;
        if (status < 0)
                printf("error %llu %s\n", ms, strerror(-r));
        else
                printf("%d %llu%s\n", status, ms, why);
        return status == 201 ? 0 : 1;
}

int main(int argc, char **argv) {
        unsigned long long v, n = 0, secs = 0, sources = 1, rate = 1000;
        signal(SIGPIPE, SIG_IGN);
        srandom((unsigned) getpid());
        if (argc < 3 || parse_uint(argv[2], 65535, &v) < 0 || v == 0)
                goto usage;
        port = (uint16_t) v;
        if (argc == 6 && streq(argv[1], "enrol"))
                return enrol(argv[3], argv[4], argv[5]);
        if (argc != 6 || parse_uint(argv[3], N_MAX, &n) < 0 || n == 0 || parse_uint(argv[4], 600, &secs) < 0 ||
            secs == 0 || parse_uint(argv[5], SOURCES_MAX, &sources) < 0 || sources == 0)
                goto usage;
        n_sources = (unsigned) sources;
        const char *e = getenv("MEF_ATTACK_RATE");
        if (e && (parse_uint(e, 1000000, &rate) < 0 || rate == 0))
                goto usage;
        /* one fd per connection and then some */
        struct rlimit rl = { .rlim_cur = n + 64, .rlim_max = n + 64 };
        struct rlimit cur;
        if (getrlimit(RLIMIT_NOFILE, &cur) == 0 && cur.rlim_cur < rl.rlim_cur) {
                if (cur.rlim_max != RLIM_INFINITY && cur.rlim_max > rl.rlim_max)
                        rl.rlim_max = cur.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
                        fprintf(stderr, "mef-attack: cannot raise the open file limit to %llu: %m\n", n + 64);
                        return 1;
                }
        }
        if (streq(argv[1], "hold"))
                return flood(MODE_HOLD, (unsigned) n, (unsigned) secs, (unsigned) rate);
        if (streq(argv[1], "silent"))
                return flood(MODE_SILENT, (unsigned) n, (unsigned) secs, (unsigned) rate);
        if (streq(argv[1], "dribble"))
                return flood(MODE_DRIBBLE, (unsigned) n, (unsigned) secs, (unsigned) rate);
        if (streq(argv[1], "garbage"))
                return flood(MODE_GARBAGE, (unsigned) n, (unsigned) secs, (unsigned) rate);
        if (streq(argv[1], "wrongpsk"))
                return wrongpsk((unsigned) n, (unsigned) secs);
usage:
        fprintf(stderr,
                "usage: %s hold|silent|dribble|garbage|wrongpsk PORT N SECONDS SOURCES\n"
                "       %s enrol PORT NODE_ID PSK_ID KPM_FILE\n",
                argv[0], argv[0]);
        return 2;
}

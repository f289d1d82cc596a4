/* SPDX-License-Identifier: MIT */
/* Test tool: a scripted MEF for msce-agent's abuse tests (agent-abuse.sh). A proto/tls server in
 * psk mode that accepts connections, reads one enrolment request and answers it with the response
 * of a named scenario: a valid profile, or one that breaks a rule of the protocol (limits,
 * framing, headers, JSON, key confirmation, status codes, timing).
 *
 *   fake-mef SCENARIO --psk-identity ID --psk-hex-file FILE [--fqdn HOST] [--base /msce]
 *            [--port N] [-n COUNT] [--secrets-out FILE] [--status-polls POLL,...]
 *   fake-mef --list
 *
 * Listens on 127.0.0.1:PORT (0, the default: the kernel picks one) and prints "port=N" first.
 * The keID of a profile is computed like the MEF does (tls_conn_export + kdf_split_ekm with
 * --fqdn), so a scenario can send the right one or a wrong one. --secrets-out FILE (0600) gets
 * one line per key the agent may hold ("ke HEX", "ltk HEX", "kpsa KPSAID HEX"), for the test's
 * leak scan and key comparison. Exits 0 once COUNT connections were served as scripted (a peer
 * that gives up early is no error), 1 when a handshake or the request was not what an agent
 * sends, 2 on usage errors. status-polls: see fake-mef.h. */
#include "tests/integration/fake-mef.h"
#include "tests/integration/listen-loopback.h"

static const struct {
        const char *name;
        const char *summary;
        delivery_t delivery;
} scenarios[_S_MAX] = {
        [S_VALID] = { "valid", "201 with a valid profile (control)", SEND_ALL },
        [S_VALID_LTK] = { "valid-ltk", "201 with a valid profile and a transported 32-byte ltk", SEND_ALL },
        [S_VALID_HOLD] = { "valid-hold", "201 with a valid profile, then the connection is kept open", SEND_THEN_HOLD },
        [S_WRONG_KEID] = { "wrong-keid", "201, keID with one hex digit changed", SEND_ALL },
        [S_KEID_FQDN] = { "keid-fqdn", "201, keID with the right hex but another MEF-FQDN", SEND_ALL },
        [S_HEAD_8K] = { "head-8k", "201, status line + headers of exactly 8192 bytes", SEND_ALL },
        [S_HEAD_8K_1] = { "head-8k+1", "201, status line + headers of 8193 bytes", SEND_ALL },
        [S_BODY_64K] = { "body-64k", "201, profile padded with an ignored member to 65536 bytes", SEND_ALL },
        [S_BODY_64K_1] = { "body-64k+1", "201, body of 65537 bytes", SEND_ALL },
        [S_TRUNCATED] = { "truncated", "Content-Length 100 more than sent, then close_notify", SEND_ALL },
        [S_CLOSE] = { "close", "close_notify right after the request, no response", SEND_ALL },
        [S_CHUNKED] = { "chunked", "201 with a valid profile in three chunks", SEND_ALL },
        [S_CHUNK_BAD_SIZE] = { "chunk-bad-size", "chunked, chunk size 'zz'", SEND_ALL },
        [S_CHUNK_TOO_LARGE] = { "chunk-too-large", "chunked, one chunk size of 65537", SEND_ALL },
        [S_NO_CONTENT_LENGTH] = { "no-content-length", "201 with a body, no Content-Length, not chunked", SEND_ALL },
        [S_TWO_CONTENT_LENGTHS] = { "two-content-lengths", "two different Content-Length headers", SEND_ALL },
        [S_NO_RSC] = { "no-rsc", "201 without X-M2M-RSC", SEND_ALL },
        [S_RSC_MISMATCH] = { "rsc-mismatch", "HTTP 201 with X-M2M-RSC 4000", SEND_ALL },
        [S_WRONG_RI] = { "wrong-ri", "X-M2M-RI of another request", SEND_ALL },
        [S_BAD_JSON] = { "bad-json", "201 with a body that is not JSON", SEND_ALL },
        [S_NO_CSEID] = { "no-cseid", "profile without cseID", SEND_ALL },
        [S_POLL_STRING] = { "poll-string", "profile with poll as a string", SEND_ALL },
        [S_TOO_MANY_TARGETS] = { "too-many-targets", "profile with 17 targets", SEND_ALL },
        [S_LTK_8] = { "ltk-8", "profile with an 8-byte ltk", SEND_ALL },
        [S_EXPIRED] = { "expired", "profile whose exp has passed", SEND_ALL },
        [S_BUSY_503] = { "busy-503", "503/5000 with Retry-After: 7", SEND_ALL },
        [S_RATE_429] = { "rate-429", "429/4000 with Retry-After: 9 (msce-mef's per-node enrolment rate limit)", SEND_ALL },
        [S_ERROR_500] = { "error-500", "500/5000", SEND_ALL },
        [S_FORBIDDEN_403] = { "forbidden-403", "403/4103 with m2m:dbg", SEND_ALL },
        [S_BAD_REQUEST_400] = { "bad-request-400", "400/4000 with m2m:dbg", SEND_ALL },
        [S_GARBAGE] = { "garbage", "random bytes instead of HTTP (inside TLS)", SEND_ALL },
        [S_NOT_TLS] = { "not-tls", "an HTTP response in clear instead of the TLS handshake", SEND_ALL },
        [S_SILENT] = { "silent", "handshake, read the request, never answer", SEND_THEN_HOLD },
        [S_DRIP] = { "drip", "the valid response at one byte per 100 ms", SEND_DRIP },
        [S_EXTRA_BYTES] = { "extra-bytes", "a valid response followed by more bytes in the same record", SEND_ALL },
        [S_CONTINUE_100] = { "continue-100", "HTTP/1.1 100 Continue, then nothing", SEND_THEN_HOLD },
        [S_CSEID_SHELL] = { "cseid-shell", "cseID /mn-$(id)`id`;reboot", SEND_ALL },
        [S_CSEID_NO_SLASH] = { "cseid-no-slash", "cseID mn-781 (not SP-relative)", SEND_ALL },
        [S_CSEID_SPACE] = { "cseid-space", "cseID with a space", SEND_ALL },
        [S_TARGET_TRAVERSAL] = { "target-traversal", "target id /in-cse/../../x", SEND_ALL },
        [S_KPSAID_PASSWD] = { "kpsaid-passwd", "kpsaID ../../../../etc/passwd@mef", SEND_ALL },
        [S_CSEBASE_NO_URI] = { "csebase-no-uri", "cseBase in.example.net (no scheme)", SEND_ALL },
        [S_KEID_UPPER] = { "keid-upper", "the right keID in upper case", SEND_ALL },
        [S_BUSY_503_HUGE] = { "busy-503-huge", "503/5000 with Retry-After: 999999999999", SEND_ALL },
        [S_BUSY_503_30_DIGITS] = { "busy-503-30-digits", "503/5000 with a 30-digit Retry-After", SEND_ALL },
        [S_BUSY_503_ZERO] = { "busy-503-zero", "503/5000 with Retry-After: 0", SEND_ALL },
        [S_BUSY_503_DATE] = { "busy-503-date", "503/5000 with Retry-After as an HTTP-date", SEND_ALL },
        [S_CHUNKED_MAX] = { "chunked-max", "201, 8 KiB head, 128 KiB of 1-byte chunks, 8 KiB trailers: the framing limit", SEND_ALL },
        [S_CHUNKED_MAX_1] = { "chunked-max+1", "as chunked-max with 1 byte more in the chunks", SEND_ALL },
        [S_BUSY_503_NO_RI] = { "busy-503-no-ri", "503/5000 with Retry-After: 7, no X-M2M-RI (msce-mef's per-node connection cap)", SEND_ALL },
        [S_BUSY_503_WRONG_RI] = { "busy-503-wrong-ri", "503/5000 with Retry-After: 7 and the X-M2M-RI of another request", SEND_ALL },
        [S_POLL_HUGE] = { "poll-huge", "201, profile with poll 99999999999 (above the agent's range)", SEND_ALL },
        [S_POLL_ZERO] = { "poll-zero", "201, profile with poll 0 (below the agent's range)", SEND_ALL },
        [S_STATUS_POLLS] = { "status-polls", "201, profile with poll 11, then status checks answered as --status-polls says", SEND_ALL },
        [S_ERROR_500_NO_RI] = { "error-500-no-ri", "500/5000 with Retry-After: 7, no X-M2M-RI", SEND_ALL },
};

/* ---- keys the agent may hold, for the test's leak scan ---- */

static int secrets_write(const fake_t *f, const exch_t *e, const prof_t *p) {
        if (!f->secrets_out)
                return 0;
        _cleanup_close_ int fd = open(f->secrets_out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return negative_errno();
        _cleanup_(buf_done) buf_t b = {};
        char hex[2 * MSG_KEY_MAX + 1];
        hex_encode(e->ke, sizeof e->ke, hex);
        buf_printf(&b, "ke %s\n", hex);
        const uint8_t *ltk = e->ke;
        size_t ltk_len = sizeof e->ke;
        if (p->ltk_len > 0) {
                ltk = e->ltk;
                ltk_len = MIN(p->ltk_len, sizeof e->ltk);
        }
        hex_encode(ltk, ltk_len, hex);
        buf_printf(&b, "ltk %s\n", hex);
        for (unsigned i = 0; i < MIN(p->n_targets, MSG_TARGETS_MAX + 1u); i++) {
                char id[32];
                uint8_t kpsa[KDF_KEY_LEN];
                snprintf(id, sizeof id, "/target-%u", i + 1);
                /* an 8-byte ltk is refused by kdf: derive from Ke then, for the scan only */
                int r = kdf_kpsa(ltk_len >= MSG_KEY_MIN ? ltk : e->ke, ltk_len >= MSG_KEY_MIN ? ltk_len : sizeof e->ke,
                                 id, kpsa);
                if (r < 0)
                        return r;
                hex_encode(kpsa, sizeof kpsa, hex);
                erase(kpsa, sizeof kpsa);
                buf_printf(&b, "kpsa %s.%u@%s %s\n", e->rel, i + 1, f->fqdn, hex);
        }
        erase(hex, sizeof hex);
        if (b.oom)
                return -ENOMEM;
        if (write(fd, b.data, b.len) != (ssize_t) b.len)
                return -EIO;
        return 0;
}

/* ---- one connection ---- */

/* Read one request; check it is an enrolment as the agent sends it (for status-polls after its
 * enrolment: a status check of the KeID enrolled). */
static int request_read(const fake_t *f, tls_conn_t *c, exch_t *e) {
        _cleanup_free_ uint8_t *in = malloc(REQUEST_MAX);
        if (!in)
                return -ENOMEM;
        size_t len = 0;
        uint64_t deadline = now_usec() + IO_TIMEOUT_USEC;
        http_parser_t p;
        _cleanup_(http_msg_done) http_msg_t m = {};
        http_parser_init(&p, HTTP_REQUEST);
        for (;;) {
                if (len == REQUEST_MAX)
                        return -EMSGSIZE;
                ssize_t n = tls_conn_read_until(c, in + len, REQUEST_MAX - len, deadline);
                if (n < 0)
                        return (int) n;
                if (n == 0)
                        return -EPIPE;
                len += (size_t) n;
                int r = http_parse(&p, in, len, &m);
                if (r < 0)
                        return r;
                if (r == 1)
                        break;
        }
        char target[HTTP_TARGET_MAX + 1];
        snprintf(target, sizeof target, "%s/enrolments%s%s", f->base, e->status_poll ? "/" : "",
                 e->status_poll ? f->ke_id : "");
        const char *ri = http_msg_header(&m, "X-M2M-RI"), *origin = http_msg_header(&m, "X-M2M-Origin");
        msg_enrol_req_t er;
        bool status_ok = streq(m.method, "GET") && m.body_len == 0 && origin && streq(origin, f->ke_id);
        if (!streq(m.target, target) || !ri || strlen(ri) >= sizeof e->ri || !origin || !http_msg_header(&m, "Host") ||
            (e->status_poll ? !status_ok
                            : !streq(m.method, "POST") || msg_enrol_req_parse(m.body, m.body_len, &er, NULL) < 0)) {
                fprintf(stderr, "fake-mef: not an %s request: %s %s\n", e->status_poll ? "status" : "enrolment",
                        m.method, m.target);
                return -EBADMSG;
        }
        snprintf(e->ri, sizeof e->ri, "%s", ri);
        return 0;
}

/* Wait until the peer closes (or deadline): keeps the connection open for silent scenarios,
 * and lets the agent read everything before we close. -ETIMEDOUT: the deadline came first. */
static ssize_t drain(tls_conn_t *c, uint64_t deadline) {
        char buf[512];
        ssize_t n;
        while ((n = tls_conn_read_until(c, buf, sizeof buf, deadline)) > 0)
                ;
        return n;
}

static int send_bytes(tls_conn_t *c, const buf_t *out, delivery_t how) {
        if (how != SEND_DRIP)
                return out->len == 0 ? 0 : tls_conn_write_all_until(c, out->data, out->len, now_usec() + IO_TIMEOUT_USEC);
        for (size_t i = 0; i < out->len; i++) {
                int r = tls_conn_write_all_until(c, out->data + i, 1, now_usec() + IO_TIMEOUT_USEC);
                if (r < 0)
                        return r;
                (void) poll(NULL, 0, DRIP_INTERVAL_MSEC);
        }
        return 0;
}

static int serve_tls(fake_t *f, tls_ctx_t *ctx, int fd) {
        tls_conn_t *c = NULL;
        int r = tls_conn_new_server(ctx, fd, &c);
        if (r < 0)
                return r;
        _cleanup_erase_(48) uint8_t ekm[KDF_EKM_LEN];
        exch_t e = {};
        _cleanup_(buf_done) buf_t out = {};
        prof_t p = {};
        delivery_t how = scenarios[f->scenario].delivery;

        r = tls_conn_handshake_until(c, now_usec() + IO_TIMEOUT_USEC);
        if (r < 0) {
                fprintf(stderr, "fake-mef: handshake: %s\n", strerror(-r));
                goto finish;
        }
        r = tls_conn_export(c, KDF_EXPORTER_LABEL, ekm, sizeof ekm);
        if (r == 0)
                r = kdf_split_ekm(ekm, f->fqdn, e.ke, e.ke_id, sizeof e.ke_id);
        if (r == 0)
                r = random_bytes(e.ltk, sizeof e.ltk);
        if (r < 0) {
                fprintf(stderr, "fake-mef: keys: %s\n", strerror(-r));
                goto finish;
        }
        snprintf(e.rel, sizeof e.rel, "%.*s", (int) (2 * KDF_REL_KEID_LEN), e.ke_id);
        if (f->scenario == S_STATUS_POLLS && f->served > 0)
                e.status_poll = f->polls[MIN(f->served - 1, f->n_polls - 1)];
        r = request_read(f, c, &e);
        if (r < 0) {
                fprintf(stderr, "fake-mef: reading the request: %s\n", strerror(-r));
                goto finish;
        }
        r = build(f, &e, &out, &p);
        if (r == 0)
                r = secrets_write(f, &e, &p);
        if (r < 0) {
                fprintf(stderr, "fake-mef: building the response: %s\n", strerror(-r));
                goto finish;
        }
        if (f->scenario == S_STATUS_POLLS && !e.status_poll)
                snprintf(f->ke_id, sizeof f->ke_id, "%s", e.ke_id);
        int w = send_bytes(c, &out, how);
        if (e.status_poll) {
                printf("status poll=%s\n", e.status_poll);
                fflush(stdout);
        }
        /* The agent giving up while we send (drip, oversized answers) is what some scenarios
         * test: not an error here. */
        fprintf(stderr, "fake-mef: %s: %zu bytes to send%s%s\n", scenarios[f->scenario].name, out.len,
                w < 0 ? ", sending stopped: " : "", w < 0 ? strerror(-w) : "");
        if (how == SEND_THEN_HOLD) {
                /* what agent-abuse.sh checks: the agent closed first, without waiting for us */
                ssize_t d = drain(c, now_usec() + HOLD_TIMEOUT_USEC);
                fprintf(stderr, "fake-mef: hold: %s\n",
                        d == -ETIMEDOUT ? "the connection was still open at the hold deadline"
                                        : "the agent closed the connection");
        }
        else if (w == 0) {
                tls_conn_shutdown(c);
                drain(c, now_usec() + IO_TIMEOUT_USEC);
        }
finish:
        erase(&e, sizeof e);
        tls_conn_free(c);
        return r;
}

/* not-tls: answer the ClientHello with bytes in clear. */
static int serve_raw(const fake_t *f, int fd) {
        _cleanup_(buf_done) buf_t out = {};
        exch_t e = {};
        prof_t p = {};
        int r = build(f, &e, &out, &p);
        if (r < 0)
                return r;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        char hello[4096];
        if (poll(&pfd, 1, (int) (IO_TIMEOUT_USEC / 1000)) != 1 || read(fd, hello, sizeof hello) <= 0)
                return -EPIPE; /* no ClientHello */
        if (write(fd, out.data, out.len) != (ssize_t) out.len)
                return negative_errno();
        fprintf(stderr, "fake-mef: %s: sent %zu bytes\n", scenarios[f->scenario].name, out.len);
        (void) shutdown(fd, SHUT_WR);
        while (poll(&pfd, 1, (int) (IO_TIMEOUT_USEC / 1000)) == 1 && read(fd, hello, sizeof hello) > 0)
                ;
        return 0;
}

/* ---- main ---- */

static int usage(void) {
        fprintf(stderr, "usage: fake-mef SCENARIO --psk-identity ID --psk-hex-file FILE [--fqdn HOST] [--base /msce]\n"
                        "                [--port N] [-n COUNT] [--secrets-out FILE] [--status-polls POLL,...]\n"
                        "       fake-mef --list\n");
        return 2;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "psk-identity", required_argument, NULL, 'i' },
                { "psk-hex-file", required_argument, NULL, 'k' },
                { "fqdn", required_argument, NULL, 'f' },
                { "base", required_argument, NULL, 'b' },
                { "port", required_argument, NULL, 'p' },
                { "secrets-out", required_argument, NULL, 's' },
                { "status-polls", required_argument, NULL, 'P' },
                { "list", no_argument, NULL, 'l' },
                {},
        };
        fake_t f = { .fqdn = "127.0.0.1", .base = "/msce" };
        const char *psk_file = NULL, *port = "0";
        unsigned long long count = 1;
        int o;

        /* wolfSSL writes without MSG_NOSIGNAL; agents that give up must not kill us. */
        signal(SIGPIPE, SIG_IGN);
        while ((o = getopt_long(argc, argv, "n:", opts, NULL)) >= 0) {
                switch (o) {
                case 'i':
                        f.psk.identity = optarg;
                        break;
                case 'k':
                        psk_file = optarg;
                        break;
                case 'f':
                        f.fqdn = optarg;
                        break;
                case 'b':
                        f.base = optarg;
                        break;
                case 'p':
                        port = optarg;
                        break;
                case 's':
                        f.secrets_out = optarg;
                        break;
                case 'n':
                        if (parse_uint(optarg, 1000, &count) < 0 || count == 0)
                                return usage();
                        break;
                case 'P':
                        for (char *save = NULL, *t = strtok_r(optarg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                                if (f.n_polls == ELEMENTSOF(f.polls))
                                        return usage();
                                f.polls[f.n_polls++] = t;
                        }
                        break;
                case 'l':
                        for (size_t i = 0; i < _S_MAX; i++)
                                printf("%-20s %s\n", scenarios[i].name, scenarios[i].summary);
                        return 0;
                default:
                        return usage();
                }
        }
        if (argc - optind != 1 || !f.psk.identity || !psk_file)
                return usage();
        f.scenario = _S_MAX;
        for (size_t i = 0; i < _S_MAX; i++)
                if (streq(argv[optind], scenarios[i].name))
                        f.scenario = (scenario_id_t) i;
        if (f.scenario == _S_MAX) {
                fprintf(stderr, "fake-mef: unknown scenario '%s' (see --list)\n", argv[optind]);
                return 2;
        }
        if ((f.scenario == S_STATUS_POLLS) != (f.n_polls > 0))
                return usage();

        int r = secret_hex_file_read(psk_file, MSG_KEY_MIN, MSG_KEY_MAX, f.psk.key, &f.psk.len);
        if (r < 0) {
                fprintf(stderr, "fake-mef: %s: %s\n", psk_file, strerror(-r));
                return 2;
        }
        tls_config_t cfg = {
                .mode = TLS_MODE_PSK,
                .min_version = TLS_VERSION_1_2,
                .max_version = TLS_VERSION_1_3,
                .psk_lookup = test_psk_lookup,
                .psk_userdata = &f.psk,
        };
        tls_ctx_t *ctx = NULL;
        _cleanup_close_ int lfd = -1;
        r = tls_ctx_new_server(&cfg, &ctx);
        if (r < 0)
                fprintf(stderr, "fake-mef: TLS setup: %s\n", strerror(-r));
        else if ((r = listen_loopback(port, 8, true, &lfd)) < 0)
                fprintf(stderr, "fake-mef: listen on 127.0.0.1:%s: %s\n", port, strerror(-r));

        int failed = r < 0;
        for (unsigned long long i = 0; r >= 0 && i < count; i++) {
                _cleanup_close_ int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        fprintf(stderr, "fake-mef: accept: %m\n");
                        failed = 1;
                        break;
                }
                if (f.scenario == S_NOT_TLS)
                        r = serve_raw(&f, fd);
                else
                        r = serve_tls(&f, ctx, fd);
                if (r < 0)
                        failed = 1;
                else
                        f.served++;
                r = 0;
        }
        tls_ctx_free(ctx);
        erase(f.psk.key, sizeof f.psk.key);
        return failed ? 1 : 0;
}

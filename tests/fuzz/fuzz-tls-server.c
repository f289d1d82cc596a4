/* SPDX-License-Identifier: MIT */
/* The TLS record input of proto/tls.c: the fuzz input is what the peer sends, byte for byte,
 * fed through tls.c's own wolfSSL I/O callbacks over a socketpair (the public header only:
 * tls_ctx_new_*, tls_conn_new_*, tls_conn_handshake, tls_conn_read). This file is the server
 * (the MEF: the input is a client's flight); fuzz-tls-client.c includes it for the agent.
 * Byte 0 picks the context: bit 0 certificate mode (else PSK, identity "kpm-1"), bit 1 TLS 1.3
 * only, bit 2 TLS 1.2 only (client; the server's floor is bit 1). Every handshake must end,
 * with a documented errno. wolfSSL 5.5.4 as Debian builds it has no hook for the RNG seed
 * (wc_GenerateSeed reads /dev/urandom): our randoms and key shares differ between runs, so a
 * fuzzer cannot get past the first encrypted record of the peer; all before it is
 * deterministic. Cert mode uses a self-signed P-256 certificate made with openssl(1) at start
 * (skipped, psk only, when openssl is missing). */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz-util.h"
#include "proto/tls.h"
#include "util/util.h"

#ifndef FUZZ_TLS_CLIENT
#define FUZZ_TLS_CLIENT 0
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IDENTITY "kpm-1"
#define HOST "mef.test"
#define INPUT_MAX 65536u /* below the socket buffer: the input is written in one go */

static const uint8_t psk[32] = { 0x5a, 0x5a, 0x5a, 0x5a, 0x01, 0x02, 0x03, 0x04 };
static tls_ctx_t *ctxs[8];
static bool have_certs;
static char dir[PATH_MAX], cert[PATH_MAX], key[PATH_MAX];


static void cleanup(void) {
        for (size_t i = 0; i < ELEMENTSOF(ctxs); i++)
                ctxs[i] = tls_ctx_free(ctxs[i]);
        fuzz_rm_tree(dir);
}

static unsigned lookup(void *userdata, const char *identity, uint8_t *out, unsigned key_max) {
        if (!streq(identity, IDENTITY) || key_max < sizeof psk)
                return 0;
        memcpy(out, psk, sizeof psk);
        return sizeof psk;
}

static void setup(void) {
        fuzz_path(dir, "%s/fuzz-tls-XXXXXX", getenv("TMPDIR") ?: "/tmp");
        check(mkdtemp(dir));
        atexit(cleanup);
        fuzz_path(cert, "%s/cert.pem", dir);
        fuzz_path(key, "%s/key.pem", dir);
        char cmd[2 * PATH_MAX + 256];
        int n = snprintf(cmd, sizeof cmd,
                         "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 "
                         "-subj /CN=" HOST " -addext subjectAltName=DNS:" HOST " -keyout '%s' -out '%s' >/dev/null 2>&1",
                         key, cert);
        check(n > 0 && (size_t) n < sizeof cmd);
        have_certs = system(cmd) == 0;
        if (!have_certs)
                fprintf(stderr, "openssl failed or is missing: certificate mode not fuzzed\n");
}

static tls_ctx_t *ctx_get(unsigned sel) {
        sel &= 7;
        if (FUZZ_TLS_CLIENT && (sel & 6) == 6)
                sel &= ~4u; /* 1.3 only and 1.2 only: 1.3 */
        bool cert_mode = (sel & 1) && have_certs;
        if (!ctxs[sel]) {
                tls_config_t c = {
                        .mode = cert_mode ? TLS_MODE_CERT : TLS_MODE_PSK,
                        .min_version = sel & 2 ? TLS_VERSION_1_3 : TLS_VERSION_1_2,
                        .max_version = FUZZ_TLS_CLIENT && (sel & 4) ? TLS_VERSION_1_2 : 0,
                };
                if (FUZZ_TLS_CLIENT && !cert_mode) {
                        c.psk_identity = IDENTITY;
                        c.psk = psk;
                        c.psk_len = sizeof psk;
                } else if (!FUZZ_TLS_CLIENT && !cert_mode)
                        c.psk_lookup = lookup;
                if (cert_mode) {
                        c.cert_file = cert;
                        c.key_file = key;
                        c.ca_file = cert;
                }
                int r = FUZZ_TLS_CLIENT ? tls_ctx_new_client(&c, &ctxs[sel]) : tls_ctx_new_server(&c, &ctxs[sel]);
                check(r == 0);
        }
        return ctxs[sel];
}

/* Discards what we sent; with FUZZ_TLS_RECORD=FILE appends it there (how the seed corpus of
 * the other side is made: tests/fuzz/README.md). */
static void drain(int fd) {
        static FILE *record;
        static bool record_checked;
        if (!record_checked) {
                const char *p = getenv("FUZZ_TLS_RECORD");
                record = p ? fopen(p, "ae") : NULL;
                record_checked = true;
        }
        char buf[4096];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
                if (record)
                        check(fwrite(buf, 1, (size_t) n, record) == (size_t) n && fflush(record) == 0);
}

static bool errno_documented(int r) {
        switch (r) {
        case -EACCES:
        case -ECONNRESET:
        case -EPIPE:
        case -EPROTO:
                return true;
        case -EPROTONOSUPPORT:
        case -EPROTOTYPE:
        case -ENOKEY:
        case -EREMOTEIO:
        case -ENOPROTOOPT:
                return FUZZ_TLS_CLIENT;
        default:
                return false;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!dir[0])
                setup();
        if (size < 1 || size - 1 > INPUT_MAX)
                return 0;
        tls_ctx_t *ctx = ctx_get(data[0]);

        int sv[2];
        check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
        int peer_buf = (int) (2 * INPUT_MAX);
        (void) setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &peer_buf, sizeof peer_buf);
        if (size > 1)
                check(write(sv[1], data + 1, size - 1) == (ssize_t) (size - 1));
        check(shutdown(sv[1], SHUT_WR) == 0); /* then EOF: every handshake ends */

        tls_conn_t *c = NULL;
        check((FUZZ_TLS_CLIENT ? tls_conn_new_client(ctx, sv[0], HOST, &c) : tls_conn_new_server(ctx, sv[0], &c)) == 0);
        int r;
        unsigned rounds = 0;
        do {
                r = tls_conn_handshake(c);
                drain(sv[1]); /* what we sent */
                check(++rounds < 10000);
        } while (r == -EAGAIN);
        if (r == 0) {
                /* past a handshake: the rest is application data */
                char buf[1024];
                ssize_t n;
                do {
                        n = tls_conn_read(c, buf, sizeof buf);
                        drain(sv[1]);
                        check(++rounds < 10000);
                } while (n > 0 || n == -EAGAIN);
                check(n == 0 || errno_documented((int) n));
        } else if (!errno_documented(r)) {
                fprintf(stderr, "handshake: undocumented error %d (%s)\n", r, strerror(-r));
                abort();
        }
        tls_conn_free(c);
        close(sv[0]);
        close(sv[1]);
        return 0;
}

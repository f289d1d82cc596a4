/* SPDX-License-Identifier: MIT */
/* Test tool: one PSK handshake with proto/tls, then print what the exporter gives, for
 * comparison with an independent TLS stack (exporter-openssl.sh).
 *
 *   tls-probe client HOST PORT --psk-identity ID --psk-hex-file FILE [--tls 1.2|1.3]
 *   tls-probe server PORT --psk-identity ID --psk-hex-file FILE [--tls 1.2|1.3]
 *
 * Prints "version=... cipher=... ekm=<hex of the 48-byte exporter output>". The server
 * listens on 127.0.0.1; with PORT 0 it picks one and first prints "port=N". */
#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "keys/kdf.h"
#include "proto/exchange.h"
#include "tests/integration/listen-loopback.h"
#include "tests/integration/test-psk.h"
#include "util/util.h"

#define PROBE_TIMEOUT_USEC (15 * 1000 * 1000ULL)

static int report(tls_conn_t *c) {
        uint8_t ekm[KDF_EKM_LEN];
        char hex[2 * KDF_EKM_LEN + 1];
        int r = tls_conn_export(c, KDF_EXPORTER_LABEL, ekm, sizeof(ekm));
        if (r < 0)
                return r;
        hex_encode(ekm, sizeof(ekm), hex);
        printf("version=%s cipher=%s ekm=%s\n", tls_conn_version(c), tls_conn_cipher(c), hex);
        fflush(stdout);
        return 0;
}

static int run(tls_ctx_t *ctx, int fd, bool server, const char *host) {
        tls_conn_t *c = NULL;
        int r = server ? tls_conn_new_server(ctx, fd, &c) : tls_conn_new_client(ctx, fd, host, &c);
        if (r < 0)
                return r;
        uint64_t deadline = now_usec() + PROBE_TIMEOUT_USEC;
        r = tls_conn_handshake_until(c, deadline);
        if (r == 0)
                r = report(c);
        if (r == 0) {
                tls_conn_shutdown(c);
                /* Wait for the peer to close too, so it has printed its side. */
                char buf[256];
                while (tls_conn_read_until(c, buf, sizeof(buf), deadline) > 0)
                        ;
        }
        tls_conn_free(c);
        return r;
}

static int usage(void) {
        fprintf(stderr, "usage: tls-probe client HOST PORT --psk-identity ID --psk-hex-file FILE [--tls 1.2|1.3]\n"
                        "       tls-probe server PORT --psk-identity ID --psk-hex-file FILE [--tls 1.2|1.3]\n");
        return 2;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "psk-identity", required_argument, NULL, 'i' },
                { "psk-hex-file", required_argument, NULL, 'k' },
                { "tls", required_argument, NULL, 't' },
                {},
        };
        test_psk_t p = {};
        const char *psk_file = NULL;
        tls_version_t version = 0;
        int o;
        while ((o = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (o) {
                case 'i':
                        p.identity = optarg;
                        break;
                case 'k':
                        psk_file = optarg;
                        break;
                case 't':
                        if (streq(optarg, "1.2"))
                                version = TLS_VERSION_1_2;
                        else if (streq(optarg, "1.3"))
                                version = TLS_VERSION_1_3;
                        else
                                return usage();
                        break;
                default:
                        return usage();
                }
        }
        int nargs = argc - optind;
        if (nargs < 2 || !p.identity || !psk_file)
                return usage();
        bool server = streq(argv[optind], "server");
        if (!server && !streq(argv[optind], "client"))
                return usage();
        if ((server && nargs != 2) || (!server && nargs != 3))
                return usage();

        int r = secret_hex_file_read(psk_file, 1, sizeof p.key, p.key, &p.len);
        if (r < 0) {
                fprintf(stderr, "tls-probe: %s: %s\n", psk_file, strerror(-r));
                return 1;
        }
        tls_config_t cfg = {
                .mode = TLS_MODE_PSK,
                .min_version = version ? version : TLS_VERSION_1_2,
                .max_version = version ? version : TLS_VERSION_1_3,
        };
        if (server) {
                cfg.psk_lookup = test_psk_lookup;
                cfg.psk_userdata = &p;
        } else {
                cfg.psk_identity = p.identity;
                cfg.psk = p.key;
                cfg.psk_len = p.len;
        }
        tls_ctx_t *ctx = NULL;
        r = server ? tls_ctx_new_server(&cfg, &ctx) : tls_ctx_new_client(&cfg, &ctx);
        if (!server)
                erase(p.key, sizeof p.key); /* the client context holds its own copy */
        if (r < 0) {
                erase(p.key, sizeof p.key);
                fprintf(stderr, "tls-probe: TLS setup: %s\n", strerror(-r));
                return 1;
        }

        _cleanup_close_ int fd = -1;
        const char *what;
        if (server) {
                _cleanup_close_ int lfd = -1;
                r = listen_loopback(argv[optind + 1], 1, false, &lfd);
                struct pollfd pfd = { .fd = lfd, .events = POLLIN };
                if (r == 0 && poll(&pfd, 1, (int) (PROBE_TIMEOUT_USEC / 1000)) != 1)
                        r = -ETIMEDOUT;
                if (r == 0) {
                        fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                        if (fd < 0)
                                r = -errno;
                }
                what = "accept";
        } else {
                r = tcp_connect_until(argv[optind + 1], argv[optind + 2], now_usec() + PROBE_TIMEOUT_USEC, &fd);
                what = "connect";
        }
        if (r == 0) {
                what = "handshake";
                r = run(ctx, fd, server, server ? NULL : argv[optind + 1]);
        }
        erase(p.key, sizeof p.key);
        tls_ctx_free(ctx);
        if (r < 0) {
                fprintf(stderr, "tls-probe: %s: %s\n", what, strerror(-r));
                return 1;
        }
        return 0;
}

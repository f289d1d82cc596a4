/* SPDX-License-Identifier: MIT */
#pragma once
/* The peers of the TLS tests (test-tls-*.c, one executable): our client and server (and raw
 * wolfSSL ones) on 127.0.0.1, the server in a thread, with what each saw of the handshake. */
#include <wolfssl/options.h>
#include <criterion/criterion.h>

#include "keys/kdf.h"
#include "proto/exchange.h"
#include "proto/tls-internal.h"
#include "util/util.h"

#include <wolfssl/ssl.h>
#include <wolfssl/version.h>
#include <wolfssl/wolfcrypt/ecc.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>

#define IDENTITY "urn:dev:ops:kpm-0001"
/* Where wolfSSL releases behave differently, the expectation follows the one this is built
 * with: up to 5.5.4 (Debian 12), or newer (measured with Debian 13's 5.7.2; the versions between
 * are not). docs/interop.md, "wolfSSL 5.5 and 5.7". */
#define WOLFSSL_55 (LIBWOLFSSL_VERSION_HEX <= 0x05005004)
#define TIMEOUT_USEC (30 * 1000 * 1000ULL) /* a deadline for hangs, however loaded the machine */

/* Either end of a connection: its configuration and what it saw. */
typedef struct peer {
        tls_config_t cfg;
        const char *host;      /* client only */
        const char *raw_suite; /* a raw wolfSSL PSK peer offering only this suite */
        bool raw_no_dhe;       /* raw peer: psk_ke only (no (EC)DHE) */
        bool echo;
        int lfd;
        /* results */
        int r_ctx, r;
        char version[16], cipher[64], ciphers[512];
        uint8_t ekm[KDF_EKM_LEN];
        int r_ekm;
        char sni[256];
        bool has_sni;
        char identity[200];
        bool has_identity;
        char fp[65];
        int r_fp;
        char echoed[64];
        ssize_t r_read;        /* client with echo: last read result */
        int raw_certs;         /* raw client: certificates the server sent */
        int first_r;           /* two connections: the first one's result */
} peer_t;

extern const uint8_t good_psk[32]; /* IDENTITY's */

/* The test PKI (MSCE_TEST_CERTS; the test is skipped without it) and a file of it. */
void need_certs(void);
const char *cert(const char *name);
/* The server's PSK lookup: good_psk for IDENTITY. */
unsigned lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max);

/* Either peer's view of the handshake, recorded. */
void record(peer_t *p, tls_conn_t *c);
/* A loopback listener on a port of its own, and one connection from it (deadline TIMEOUT_USEC). */
int listen_any(char port[8]);
int accept_one(int lfd);
/* A loopback listener (returned) and a client connected to it (*ret_fd), nothing accepted yet. */
int listen_connected(int *ret_fd);
/* After a failed handshake: read what the client still sends, then close. */
void lingering_close(int fd);
/* Our server on p->lfd, and our client to port. */
void server_body(peer_t *p);
void client_run(peer_t *p, const char *port);
/* One connection: server (our server, or raw when srv->raw_suite) in a thread, client here;
 * or a raw wolfSSL TLS 1.3 PSK client against our server. */
void run_pair(peer_t *srv, peer_t *cli);
void run_raw_client(peer_t *srv, peer_t *cli);

/* One loopback connection with our server (scfg) and client (ccfg, host mef.test) on it, neither
 * stepped yet: the test drives each end. */
typedef struct conn_pair {
        int fd, lfd, afd; /* client, listener, server */
        tls_ctx_t *sctx, *cctx;
        tls_conn_t *s, *c;
} conn_pair_t;
void conn_pair_open(conn_pair_t *p, const tls_config_t *scfg, const tls_config_t *ccfg);
void conn_pair_close(conn_pair_t *p);

tls_config_t psk_client(tls_version_t min, tls_version_t max);
tls_config_t psk_server(tls_version_t min, tls_version_t max);
tls_config_t cert_client(tls_version_t max);
tls_config_t cert_server(tls_version_t max);
/* A server with a certificate and a PSK lookup (needs the test PKI). */
tls_config_t both_server(void);
void expect_same_ekm(const peer_t *s, const peer_t *c);

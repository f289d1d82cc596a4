/* SPDX-License-Identifier: MIT */
#pragma once
/* What the interoperability peers (peer-openssl.c on libssl, peer-gnutls.c on libgnutls) share:
 * the command line, sockets, the scripted HTTP of protocol section 3 and the key derivation of
 * section 2. Nothing here is msce code and nothing here does cryptography: the exporter and the
 * HMAC come from the peer's own TLS library, through the hooks below.
 *
 *   peer-X server [options]      the MEF's TLS end: listen on 127.0.0.1:0, print "PORT n", serve one
 *                                connection: handshake, read the enrol request, answer 201 with a
 *                                profile whose keID is the peer's own EKM[0..16) "@" FQDN
 *   peer-X client [options]      a gateway: connect to 127.0.0.1:PORT, handshake, send one request
 *                                (enrol, or fetch with -F KEID), print the answer
 * Options:
 *   -V 1.2|1.3|1.2-1.3     TLS versions                          (default 1.2-1.3)
 *   -s SUITES              TLS 1.2 suites, comma separated: psk-cbc psk-gcm ecdhe-psk-cbc
 *                          ecdsa-gcm ecdsa-cbc                   (default: all psk ones, or the
 *                          ecdsa ones with -c); TLS 1.3 is always TLS_AES_128_GCM_SHA256
 *   -g GROUPS              x25519,p256                           (default both, X25519 first)
 *   -k MODES               TLS 1.3 psk key exchange modes: dhe, ke or dhe,ke (default dhe)
 *   -i ID -p HEXFILE       PSK identity and key (hex in a file)
 *   -c CERT -K KEY -a CA   own certificate and key; CA: verify the peer (server: require a client
 *                          certificate; client: verify the server for -n NAME)
 *   -n NAME                client: SNI and the name the server certificate must carry
 *   -P PORT                client: the port to connect to
 *   -f FQDN                the MEF FQDN in KeIDs (default 127.0.0.1)
 *   -t TARGET              the enrolment target (default /in-cse)
 *   -N NODE                client: the node ID to enrol (default urn:dev:ops:interop)
 *   -F KEID                client: fetchCredentials/KEID/interop with -N as X-M2M-Origin
 *   -b BASE                the MEF base path (default /msce)
 * Output, one item per line on stdout (the driver greps them):
 *   PORT n | LIB name version | HANDSHAKE ok|failed ... | EKM hex | KEID id | KE hex | KPSA hex |
 *   REQUEST method path ri | STATUS code rsc | BODY json
 * Exit: 0 exchange done, 1 handshake failed, 2 usage or setup error, 3 HTTP exchange failed. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PEER_EKM_LEN 48
#define PEER_LABEL "EXPORTER-oneM2M-Bootstrap"
#define PEER_PSK_MAX 64

enum { PEER_V12 = 1, PEER_V13 = 2 };
enum {
        PEER_S_PSK_CBC = 1 << 0,
        PEER_S_PSK_GCM = 1 << 1,
        PEER_S_ECDHE_PSK_CBC = 1 << 2,
        PEER_S_ECDSA_GCM = 1 << 3,
        PEER_S_ECDSA_CBC = 1 << 4,
};
enum { PEER_G_X25519 = 1, PEER_G_P256 = 2 };
enum { PEER_K_DHE = 1, PEER_K_KE = 2 };

typedef struct peer_opts {
        bool server;
        unsigned versions;
        unsigned suites;
        unsigned groups;
        bool p256_first; /* -g p256,x25519 */
        unsigned psk_modes;
        const char *psk_identity;
        uint8_t psk[PEER_PSK_MAX];
        size_t psk_len;
        const char *cert, *key, *ca;
        const char *name;
        const char *port;
        const char *fqdn;
        const char *target;
        const char *node;
        const char *fetch_keid;
        const char *base;
} peer_opts_t;

/* The library's side, filled in by each peer. */
typedef struct peer_io {
        void *tls;
        ssize_t (*read)(void *tls, void *buf, size_t n);   /* 0: EOF, < 0: error */
        ssize_t (*write)(void *tls, const void *buf, size_t n);
} peer_io_t;
typedef int (*peer_hmac_sha256_t)(const uint8_t *key, size_t key_len, const void *data, size_t len,
                                  uint8_t out[32]);

int peer_parse_args(int argc, char **argv, peer_opts_t *o);
int peer_listen(void);                      /* prints PORT n; returns the listening fd */
#define PEER_ACCEPT_MAX 3
/* With a 20 s receive/send timeout; up to PEER_ACCEPT_MAX connections, a new one after each
 * failed handshake (see peer-common.c); exits instead of returning when done. */
int peer_accept(int lfd);
int peer_connect(const char *port);
void peer_hex(const uint8_t *b, size_t n, char *out);
/* Print EKM, KEID, KE and KPSA (HMAC-SHA-256(Ke, label || target) by the library). */
int peer_print_keys(const peer_opts_t *o, const uint8_t ekm[PEER_EKM_LEN], peer_hmac_sha256_t hmac);
/* server: read one request, print it, answer 201 with the profile for ekm */
int peer_serve(const peer_opts_t *o, const peer_io_t *io, const uint8_t ekm[PEER_EKM_LEN]);
/* client: send the request of -N/-F, read the answer, print STATUS and BODY */
int peer_request(const peer_opts_t *o, const peer_io_t *io);
/* After the handshake: peer_print_keys(), then peer_serve() or peer_request(); 2 when the keys
 * could not be printed, else what those return. */
int peer_exchange(const peer_opts_t *o, const peer_io_t *io, const uint8_t ekm[PEER_EKM_LEN], peer_hmac_sha256_t hmac);

/* SPDX-License-Identifier: MIT */
/* Shared part of the interoperability peers (peer-common.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "peer-common.h"

#define KPSA_LABEL "oneM2M Enrolment Key to Provisioned Secure Connection Key derivation"
#define IO_TIMEOUT_SEC 20
#define HTTP_MAX 65536

static int usage(const char *why) {
        fprintf(stderr, "peer: %s (see peer-common.h for the options)\n", why);
        return -1;
}

static int list_parse(const char *s, const char *const *names, const unsigned *bits, size_t n, unsigned *ret) {
        unsigned v = 0;
        char *dup = strdup(s), *save = NULL;
        if (!dup)
                return -1;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                size_t i = 0;
                while (i < n && strcmp(t, names[i]) != 0)
                        i++;
                if (i == n) {
                        fprintf(stderr, "peer: unknown item '%s'\n", t);
                        free(dup);
                        return -1;
                }
                v |= bits[i];
        }
        free(dup);
        if (!v)
                return -1;
        *ret = v;
        return 0;
}

static int psk_read(const char *path, peer_opts_t *o) {
        FILE *f = fopen(path, "re");
        char hex[2 * PEER_PSK_MAX + 4];
        if (!f || !fgets(hex, sizeof hex, f)) {
                if (f)
                        fclose(f);
                return usage("cannot read the PSK file");
        }
        fclose(f);
        size_t n = strcspn(hex, "\r\n");
        if (n % 2 || n / 2 < 1 || n / 2 > PEER_PSK_MAX)
                return usage("the PSK file holds no hex key");
        for (size_t i = 0; i < n / 2; i++) {
                unsigned b;
                if (!isxdigit((unsigned char) hex[2 * i]) || !isxdigit((unsigned char) hex[2 * i + 1]) ||
                    sscanf(hex + 2 * i, "%2x", &b) != 1)
                        return usage("the PSK file holds no hex key");
                o->psk[i] = (uint8_t) b;
        }
        o->psk_len = n / 2;
        return 0;
}

int peer_parse_args(int argc, char **argv, peer_opts_t *o) {
        static const char *const suite_names[] = { "psk-cbc", "psk-gcm", "ecdhe-psk-cbc", "ecdsa-gcm", "ecdsa-cbc" };
        static const unsigned suite_bits[] = { PEER_S_PSK_CBC, PEER_S_PSK_GCM, PEER_S_ECDHE_PSK_CBC,
                                               PEER_S_ECDSA_GCM, PEER_S_ECDSA_CBC };
        static const char *const group_names[] = { "x25519", "p256" };
        static const unsigned group_bits[] = { PEER_G_X25519, PEER_G_P256 };
        static const char *const mode_names[] = { "dhe", "ke" };
        static const unsigned mode_bits[] = { PEER_K_DHE, PEER_K_KE };

        *o = (peer_opts_t) {
                .versions = PEER_V12 | PEER_V13,
                .groups = PEER_G_X25519 | PEER_G_P256,
                .psk_modes = PEER_K_DHE,
                .fqdn = "127.0.0.1",
                .target = "/in-cse",
                .node = "urn:dev:ops:interop",
                .base = "/msce",
        };
        /* a peer that hangs up mid-handshake must not kill us before we print why */
        signal(SIGPIPE, SIG_IGN);
        if (argc < 2)
                return usage("server or client?");
        if (strcmp(argv[1], "server") == 0)
                o->server = true;
        else if (strcmp(argv[1], "client") != 0)
                return usage("server or client?");
        const char *psk_file = NULL;
        int c;
        optind = 2;
        while ((c = getopt(argc, argv, "V:s:g:k:i:p:c:K:a:n:P:f:t:N:F:b:")) != -1) {
                switch (c) {
                case 'V':
                        if (strcmp(optarg, "1.2") == 0)
                                o->versions = PEER_V12;
                        else if (strcmp(optarg, "1.3") == 0)
                                o->versions = PEER_V13;
                        else if (strcmp(optarg, "1.2-1.3") == 0)
                                o->versions = PEER_V12 | PEER_V13;
                        else
                                return usage("-V 1.2|1.3|1.2-1.3");
                        break;
                case 's':
                        if (list_parse(optarg, suite_names, suite_bits, 5, &o->suites) < 0)
                                return usage("bad -s");
                        break;
                case 'g':
                        if (list_parse(optarg, group_names, group_bits, 2, &o->groups) < 0)
                                return usage("bad -g");
                        o->p256_first = strncmp(optarg, "p256", 4) == 0;
                        break;
                case 'k':
                        if (list_parse(optarg, mode_names, mode_bits, 2, &o->psk_modes) < 0)
                                return usage("bad -k");
                        break;
                case 'i': o->psk_identity = optarg; break;
                case 'p': psk_file = optarg; break;
                case 'c': o->cert = optarg; break;
                case 'K': o->key = optarg; break;
                case 'a': o->ca = optarg; break;
                case 'n': o->name = optarg; break;
                case 'P': o->port = optarg; break;
                case 'f': o->fqdn = optarg; break;
                case 't': o->target = optarg; break;
                case 'N': o->node = optarg; break;
                case 'F': o->fetch_keid = optarg; break;
                case 'b': o->base = optarg; break;
                default: return usage("unknown option");
                }
        }
        if (optind != argc)
                return usage("unexpected argument");
        if (psk_file && psk_read(psk_file, o) < 0)
                return -1;
        if (!!psk_file != !!o->psk_identity)
                return usage("-i and -p go together");
        if (!!o->cert != !!o->key)
                return usage("-c and -K go together");
        if (!o->psk_identity && !o->cert && !(!o->server && o->ca))
                return usage("no credential: -i/-p or -c/-K");
        if (!o->server && !o->port)
                return usage("client needs -P PORT");
        if (!o->suites)
                o->suites = o->psk_identity ? PEER_S_PSK_CBC | PEER_S_PSK_GCM | PEER_S_ECDHE_PSK_CBC
                                            : PEER_S_ECDSA_GCM | PEER_S_ECDSA_CBC;
        return 0;
}

static void set_timeouts(int fd) {
        struct timeval tv = { .tv_sec = IO_TIMEOUT_SEC };
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int peer_listen(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 4) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &len) < 0) {
                perror("peer: listen");
                return -1;
        }
        printf("PORT %u\n", ntohs(a.sin_port));
        fflush(stdout);
        return fd;
}

static volatile sig_atomic_t stop_requested;

static void on_term(int sig) {
        (void) sig;
        stop_requested = 1;
}

/* Waits for the connection's child; SIGTERM only makes us stop accepting, never cuts a child
 * short (its output must be complete when the test reads it). */
static int child_wait(pid_t pid) {
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return 2;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 2;
}

/* As an MEF would, a server takes a new connection after a failed handshake (the client may
 * retry, e.g. msce-agent's TLS 1.2 retry): each connection but the last runs in a child, and
 * we go on only when it failed its handshake (exit 1). SIGTERM (the test is done with us)
 * ends the wait for another connection. */
int peer_accept(int lfd) {
        struct sigaction sa = { .sa_handler = on_term }; /* no SA_RESTART: accept() returns */
        (void) sigaction(SIGTERM, &sa, NULL);
        struct timeval tv = { .tv_sec = IO_TIMEOUT_SEC };
        (void) setsockopt(lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int last = 1;
        for (int attempt = 1; !stop_requested; attempt++) {
                int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0) {
                        if (errno == EINTR)
                                continue;
                        perror("peer: accept");
                        return -1;
                }
                set_timeouts(fd);
                if (attempt == PEER_ACCEPT_MAX)
                        return fd;
                fflush(stdout);
                pid_t pid = fork();
                if (pid < 0) {
                        perror("peer: fork");
                        return -1;
                }
                if (pid == 0) {
                        signal(SIGTERM, SIG_DFL);
                        return fd;
                }
                close(fd);
                last = child_wait(pid);
                if (last != 1)
                        exit(last);
        }
        exit(last);
}

int peer_connect(const char *port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 .sin_port = htons((uint16_t) atoi(port)) };
        if (fd < 0 || connect(fd, (struct sockaddr *) &a, sizeof a) < 0) {
                perror("peer: connect");
                return -1;
        }
        set_timeouts(fd);
        return fd;
}

void peer_hex(const uint8_t *b, size_t n, char *out) {
        for (size_t i = 0; i < n; i++)
                sprintf(out + 2 * i, "%02x", b[i]);
        out[2 * n] = 0;
}

int peer_print_keys(const peer_opts_t *o, const uint8_t ekm[PEER_EKM_LEN], peer_hmac_sha256_t hmac) {
        char hex[2 * PEER_EKM_LEN + 1];
        uint8_t msg[512], kpsa[32];
        size_t ll = strlen(KPSA_LABEL), tl = strlen(o->target);
        if (ll + tl > sizeof msg)
                return -1;
        memcpy(msg, KPSA_LABEL, ll);
        memcpy(msg + ll, o->target, tl);
        if (hmac(ekm + 16, 32, msg, ll + tl, kpsa) < 0) {
                fprintf(stderr, "peer: HMAC failed\n");
                return -1;
        }
        peer_hex(ekm, PEER_EKM_LEN, hex);
        printf("EKM %s\n", hex);
        peer_hex(ekm, 16, hex);
        printf("KEID %s@%s\n", hex, o->fqdn);
        peer_hex(ekm + 16, 32, hex);
        printf("KE %s\n", hex);
        peer_hex(kpsa, 32, hex);
        printf("KPSA %s\n", hex);
        fflush(stdout);
        return 0;
}

static int write_all(const peer_io_t *io, const char *p, size_t n) {
        while (n > 0) {
                ssize_t k = io->write(io->tls, p, n);
                if (k <= 0)
                        return -1;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

/* One HTTP/1.1 message: head up to CRLFCRLF, then Content-Length bytes. NUL-terminated; returns
 * the total length and the head length in *head. */
static ssize_t read_message(const peer_io_t *io, char *buf, size_t size, size_t *head) {
        size_t n = 0, need = 0;
        *head = 0;
        for (;;) {
                if (*head && n >= need)
                        break;
                if (n + 1 >= size)
                        return -1;
                ssize_t k = io->read(io->tls, buf + n, size - 1 - n);
                if (k <= 0)
                        return -1;
                n += (size_t) k;
                buf[n] = 0;
                char *end;
                if (!*head && (end = strstr(buf, "\r\n\r\n"))) {
                        *head = (size_t) (end - buf) + 4;
                        const char *cl = strcasestr(buf, "\r\nContent-Length:");
                        need = *head + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
                }
        }
        return (ssize_t) n;
}

/* The value of header NAME in head (up to CR), or "" */
static void header(const char *head, const char *name, char *out, size_t size) {
        char pat[64];
        snprintf(pat, sizeof pat, "\r\n%s:", name);
        const char *h = strcasestr(head, pat);
        out[0] = 0;
        if (!h)
                return;
        h += strlen(pat);
        h += strspn(h, " \t");
        size_t n = strcspn(h, "\r\n");
        if (n >= size)
                n = size - 1;
        memcpy(out, h, n);
        out[n] = 0;
}

int peer_serve(const peer_opts_t *o, const peer_io_t *io, const uint8_t ekm[PEER_EKM_LEN]) {
        static char buf[HTTP_MAX];
        size_t head;
        if (read_message(io, buf, sizeof buf, &head) < 0) {
                printf("REQUEST none\n");
                return 3;
        }
        char ri[128], method[16] = "", path[256] = "";
        header(buf, "X-M2M-RI", ri, sizeof ri);
        (void) sscanf(buf, "%15s %255s", method, path);
        printf("REQUEST %s %s %s\n", method, path, ri);
        printf("BODY %s\n", buf + head);

        char rel[33], exp[32], body[1024], resp[2048];
        peer_hex(ekm, 16, rel);
        time_t t = time(NULL) + 365 * 86400;
        strftime(exp, sizeof exp, "%Y%m%dT%H%M%S", gmtime(&t));
        int bn = snprintf(body, sizeof body,
                          "{\"msce:profile\":{\"cseID\":\"/mn-cse-interop\",\"cseBase\":\"https://in.example.net:8443/~/in-cse/in-name\","
                          "\"keID\":\"%s@%s\",\"exp\":\"%s\",\"targets\":[{\"id\":\"%s\",\"kpsaID\":\"%s.1@%s\"}],\"poll\":3600}}",
                          rel, o->fqdn, exp, o->target, rel, o->fqdn);
        int n = snprintf(resp, sizeof resp,
                         "HTTP/1.1 201 Created\r\nX-M2M-RI: %s\r\nX-M2M-RSC: 2001\r\nContent-Type: application/json\r\n"
                         "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                         ri, bn, body);
        fflush(stdout);
        if (strcmp(method, "POST") != 0 || !ri[0] || write_all(io, resp, (size_t) n) < 0)
                return 3;
        return 0;
}

int peer_request(const peer_opts_t *o, const peer_io_t *io) {
        static char buf[HTTP_MAX];
        char req[2048], body[512];
        int n;
        if (o->fetch_keid)
                n = snprintf(req, sizeof req,
                             "GET %s/fetchCredentials/%s/interop HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\n"
                             "X-M2M-RI: interop-fetch-%ld\r\nX-M2M-RVI: 3\r\nAccept: application/json\r\n\r\n",
                             o->base, o->fetch_keid, o->fqdn, o->node, (long) getpid());
        else {
                int bn = snprintf(body, sizeof body, "{\"msce:enrolReq\":{\"nodeID\":\"%s\"}}", o->node);
                n = snprintf(req, sizeof req,
                             "POST %s/enrolments HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\nX-M2M-RI: interop-%ld\r\n"
                             "X-M2M-RVI: 3\r\nAccept: application/json\r\nContent-Type: application/json\r\n"
                             "Content-Length: %d\r\n\r\n%s",
                             o->base, o->fqdn, o->node, (long) getpid(), bn, body);
        }
        if (n <= 0 || (size_t) n >= sizeof req || write_all(io, req, (size_t) n) < 0) {
                printf("STATUS none\n");
                return 3;
        }
        size_t head;
        if (read_message(io, buf, sizeof buf, &head) < 0) {
                printf("STATUS none\n");
                return 3;
        }
        int status = 0;
        char rsc[16];
        (void) sscanf(buf, "HTTP/1.1 %d", &status);
        header(buf, "X-M2M-RSC", rsc, sizeof rsc);
        printf("STATUS %d %s\n", status, rsc);
        printf("BODY %s\n", buf + head);
        return status >= 200 && status < 300 ? 0 : 3;
}

int peer_exchange(const peer_opts_t *o, const peer_io_t *io, const uint8_t ekm[PEER_EKM_LEN], peer_hmac_sha256_t hmac) {
        if (peer_print_keys(o, ekm, hmac) < 0)
                return 2;
        return o->server ? peer_serve(o, io, ekm) : peer_request(o, io);
}

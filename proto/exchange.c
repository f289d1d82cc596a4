/* SPDX-License-Identifier: MIT */
/* The client's exchange engine (proto/exchange.h): blocking, poll() on one socket, every step
 * under a deadline. */
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include "proto/exchange.h"
#include "util/net.h"
#include "util/util.h"

/* The largest response the parser takes (a chunked body of 128 KiB on the wire between a head
 * and trailers of 8 KiB: protocol.md's framing), so the buffer refuses nothing it accepts. */
#define RESPONSE_BUF_MAX ((size_t) HTTP_MSG_MAX)
#define READ_STEP ((size_t) 4096)
#define CONNECT_SHARE_MIN_USEC (1000 * 1000ULL)

/* poll() fd for events until the deadline: 0 when ready, -ETIMEDOUT, or an error. */
static int fd_wait(int fd, short events, uint64_t deadline) {
        for (;;) {
                uint64_t now = now_usec();
                if (now >= deadline)
                        return -ETIMEDOUT;
                int ms = (int) MIN((deadline - now + 999) / 1000, (uint64_t) INT_MAX);
                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, ms);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

static int conn_wait(tls_conn_t *c, uint64_t deadline) {
        return fd_wait(tls_conn_fd(c), (short) tls_conn_want(c), deadline);
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline, int *ret_fd) {
        _cleanup_close_ int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                                        ai->ai_protocol);
        if (fd < 0)
                return -errno;
        /* Requests and handshake flights are single writes: no reason to wait for ACKs. */
        int one = 1;
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

        if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                int r = fd_wait(fd, POLLOUT, deadline);
                if (r < 0)
                        return r;
                int err = 0;
                socklen_t len = sizeof(err);
                if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                        return -errno;
                if (err != 0)
                        return -err;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int tcp_connect_until(const char *host, const char *port, uint64_t deadline, int *ret_fd) {
        if (!host || !host[0] || !port || !port[0] || !ret_fd)
                return -EINVAL;
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_protocol = IPPROTO_TCP,
                .ai_flags = AI_NUMERICSERV,
        };
        struct addrinfo *res = NULL;
        int g = getaddrinfo(host, port, &hints, &res);
        if (g != 0)
                return gai_error_to_errno(g);
        size_t left = 0;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
                left++;
        int r = -EHOSTUNREACH;
        for (struct addrinfo *ai = res; ai && r != 0; ai = ai->ai_next, left--) {
                /* A share each (exchange.h): one that drops SYNs (IPv6 black-holed) must not take all the time. */
                uint64_t now = now_usec();
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                uint64_t share = MAX((deadline - now) / left, CONNECT_SHARE_MIN_USEC);
                r = connect_one(ai, left == 1 ? deadline : MIN(now + share, deadline), ret_fd);
        }
        freeaddrinfo(res);
        return r == -ENETUNREACH ? -EHOSTUNREACH : r;
}

/* The TLS 1.2 retry of tls_conn_handshake_until() (exchange.h): the new socket dup3()'d over the old fd. */
static int conn_reconnect(tls_conn_t *c, uint64_t deadline) {
        int old = tls_conn_fd(c);
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        if (getpeername(old, (struct sockaddr *) &sa, &len) < 0)
                return -errno;
        struct addrinfo ai = {
                .ai_family = sa.ss_family,
                .ai_socktype = SOCK_STREAM,
                .ai_protocol = IPPROTO_TCP,
                .ai_addrlen = len,
                .ai_addr = (struct sockaddr *) &sa,
        };
        _cleanup_close_ int fd = -1;
        int r = connect_one(&ai, deadline, &fd);
        if (r < 0)
                return r;
        if (dup3(fd, old, O_CLOEXEC) < 0)
                return -errno;
        return tls_conn_retry(c, old);
}

int tls_conn_handshake_until(tls_conn_t *c, uint64_t deadline) {
        for (;;) {
                int r = tls_conn_handshake(c);
                if (r == -ENOPROTOOPT)
                        r = conn_reconnect(c, deadline);
                else if (r == -EAGAIN)
                        r = conn_wait(c, deadline);
                else
                        return r;
                if (r < 0)
                        return r;
        }
}

int tls_conn_write_all_until(tls_conn_t *c, const void *buf, size_t n, uint64_t deadline) {
        const uint8_t *p = buf;
        while (n > 0) {
                ssize_t k = tls_conn_write(c, p, n);
                if (k == -EAGAIN)
                        k = conn_wait(c, deadline); /* 0 once writable: nothing written yet, try again */
                if (k < 0)
                        return (int) k;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

ssize_t tls_conn_read_until(tls_conn_t *c, void *buf, size_t n, uint64_t deadline) {
        for (;;) {
                ssize_t k = tls_conn_read(c, buf, n);
                if (k != -EAGAIN)
                        return k;
                int r = conn_wait(c, deadline);
                if (r < 0)
                        return r;
        }
}

/* Read until one complete response is parsed, into *buf: *size bytes, grown as the peer sends. */
static int response_parse(tls_conn_t *c, uint64_t deadline, uint8_t **buf, size_t *size, http_msg_t *ret) {
        http_parser_t parser;
        http_parser_init(&parser, HTTP_RESPONSE);
        for (size_t len = 0;;) {
                size_t want = MIN(MAX(2 * *size, READ_STEP), RESPONSE_BUF_MAX);
                if (len == *size && (*size == want || secret_buffer_grow(buf, size, len, want) < 0))
                        return *size == want ? -EMSGSIZE : -ENOMEM;
                ssize_t n = tls_conn_read_until(c, *buf + len, *size - len, deadline);
                if (n == 0) /* only reached while the parser wants more: a truncation */
                        return len == 0 ? -ENODATA : -EPIPE;
                if (n < 0)
                        return (int) n;
                len += (size_t) n;
                int r = http_parse(&parser, *buf, len, ret);
                if (r == 1)
                        return 0;
                if (r == -EMSGSIZE || r == -EFBIG)
                        return -EMSGSIZE;
                if (r < 0)
                        return -EBADMSG;
        }
}

int exchange_run(const exchange_spec_t *s, http_msg_t *ret, exchange_stage_t *ret_stage, char version[16],
                 char cipher[64]) {
        *ret_stage = EXCHANGE_STAGE_CONNECT;
        version[0] = cipher[0] = 0;
        _cleanup_close_ int fd = -1;
        int r = tcp_connect_until(s->host, s->port, s->connect_deadline, &fd);
        if (r < 0)
                return r;

        *ret_stage = EXCHANGE_STAGE_TLS;
        tls_conn_t *c = NULL;
        r = tls_conn_new_client(s->ctx, fd, s->host, &c);
        if (r >= 0)
                r = tls_conn_handshake_until(c, s->deadline);
        uint8_t *req = NULL, *resp = NULL;
        size_t req_len = 0, resp_size = 0;
        if (r >= 0) {
                snprintf(version, 16, "%s", tls_conn_version(c) ?: "");
                snprintf(cipher, 64, "%s", tls_conn_cipher(c) ?: "");
                r = s->request(c, s->userdata, &req, &req_len);
        }
        if (r >= 0) {
                *ret_stage = EXCHANGE_STAGE_REQUEST;
                r = tls_conn_write_all_until(c, req, req_len, s->deadline);
                if (r == -EPIPE) /* the MEF went away before the request: not a truncated response */
                        r = -ECONNRESET;
        }
        if (r >= 0) {
                *ret_stage = EXCHANGE_STAGE_RESPONSE;
                r = response_parse(c, s->deadline, &resp, &resp_size, ret);
                /* The request met the MEF's reset and nothing it sent before was left to read
                 * (tls_conn_read): lost while sending, as above. */
                if ((r == -ECONNRESET || r == -EPIPE) && tls_conn_write_lost(c)) {
                        *ret_stage = EXCHANGE_STAGE_REQUEST;
                        r = -ECONNRESET;
                }
        }
        if (r >= 0)
                *ret_stage = EXCHANGE_STAGE_NONE;
        erase_free(req, req_len); /* NULL is fine */
        erase_free(resp, resp_size); /* may hold a transported ltk: wiped whole */
        tls_conn_shutdown(c);
        tls_conn_free(c);
        return r;
}

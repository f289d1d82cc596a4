/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "mef/listen.h"
#include "util/util.h"

/* The IPv4 address of an IPv4 or v4-mapped IPv6 socket address, false for another. */
static bool addr_v4(const struct sockaddr_storage *sa, struct in_addr *ret) {
        if (sa->ss_family == AF_INET) {
                *ret = ((const struct sockaddr_in *) sa)->sin_addr;
                return true;
        }
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *) sa)->sin6_addr;
        if (sa->ss_family != AF_INET6 || !IN6_IS_ADDR_V4MAPPED(a6))
                return false;
        memcpy(&ret->s_addr, &a6->s6_addr[12], 4);
        return true;
}

/* Whether fd's address takes connections meant for other's, or other's for fd's: the same port,
 * and the same address or a wildcard covering the other's (an IPv6 wildcard covers IPv4 too
 * unless IPV6_V6ONLY). */
static bool listen_overlaps(int fd, int other) {
        struct sockaddr_storage a = {}, b = {};
        socklen_t la = sizeof a, lb = sizeof b;
        if (getsockname(fd, (struct sockaddr *) &a, &la) < 0 || getsockname(other, (struct sockaddr *) &b, &lb) < 0 ||
            mef_listen_port(fd) != mef_listen_port(other))
                return false;
        for (int i = 0; i < 2; i++) {
                const struct sockaddr_storage *x = i ? &b : &a, *y = i ? &a : &b;
                int xfd = i ? other : fd, v6only = 0;
                socklen_t len = sizeof v6only;
                struct in_addr x4, y4;
                if (x->ss_family == AF_INET6 &&
                    IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *) x)->sin6_addr) &&
                    (y->ss_family == AF_INET6 ||
                     getsockopt(xfd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &len) < 0 || !v6only))
                        return true;
                if (addr_v4(x, &x4) && addr_v4(y, &y4) && (x4.s_addr == INADDR_ANY || x4.s_addr == y4.s_addr))
                        return true;
        }
        return a.ss_family == AF_INET6 && b.ss_family == AF_INET6 &&
               IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *) &a)->sin6_addr,
                                  &((const struct sockaddr_in6 *) &b)->sin6_addr);
}

int mef_listen(const char *host, const char *port, unsigned backlog, bool reuseport, const mef_listen_apart_t *apart,
               int *ret_fd, char *err, size_t err_size) {
        if (host && (!*host || streq(host, "*")))
                host = NULL;
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
        };
        struct addrinfo *res = NULL;
        int g = getaddrinfo(host, port, &hints, &res);
        if (g != 0) {
                snprintf(err, err_size, "cannot resolve listen address %s:%s: %s", host ? host : "*", port,
                         gai_strerror(g));
                return -EADDRNOTAVAIL;
        }
        int r = -EADDRNOTAVAIL;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
                if (fd < 0) {
                        r = negative_errno();
                        continue;
                }
                int one = 1;
                if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
                    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
                    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
                        r = negative_errno();
                        close(fd);
                        continue;
                }
                /* Bound, not yet listening: with SO_REUSEPORT the kernel let it join our own
                 * listener's group, which would hand it that listener's connections. */
                if (apart && apart->fd >= 0 && listen_overlaps(fd, apart->fd)) {
                        close(fd);
                        freeaddrinfo(res);
                        snprintf(err, err_size, "cannot listen on %s:%s: %s is bound there too (port %u)",
                                 host ? host : "*", port, apart->name, mef_listen_port(apart->fd));
                        return -EADDRINUSE;
                }
                if (listen(fd, (int) backlog) < 0) {
                        r = negative_errno();
                        close(fd);
                        continue;
                }
                freeaddrinfo(res);
                *ret_fd = fd;
                return 0;
        }
        freeaddrinfo(res);
        snprintf(err, err_size, "cannot listen on %s:%s: %s", host ? host : "*", port, strerror(-r));
        return r;
}

unsigned mef_listen_port(int fd) {
        struct sockaddr_storage sa = {};
        socklen_t len = sizeof sa;
        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return 0;
        if (sa.ss_family == AF_INET)
                return ntohs(((struct sockaddr_in *) &sa)->sin_port);
        if (sa.ss_family == AF_INET6)
                return ntohs(((struct sockaddr_in6 *) &sa)->sin6_port);
        return 0;
}


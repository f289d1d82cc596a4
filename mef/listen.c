/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "mef/listen.h"
#include "util/util.h"

int mef_listen(const char *host, const char *port, unsigned backlog, bool reuseport, int *ret_fd, char *err,
               size_t err_size) {
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
                    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, (int) backlog) < 0) {
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


/* SPDX-License-Identifier: MIT */
#pragma once
/* The listening socket of the test servers (fake-mef.c, tls-probe.c): TCP on 127.0.0.1. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "util/util.h"

/* Listens on port (decimal; "0": the kernel picks one) with backlog, and prints "port=N" on
 * stdout (flushed) when the kernel picked it, or always with announce_fixed. */
static inline int listen_loopback(const char *port, int backlog, bool announce_fixed, int *ret_fd) {
        unsigned long long p;
        int r = parse_uint(port, 65535, &p);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        int one = 1;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) p),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, backlog) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &len) < 0)
                return negative_errno();
        if (p == 0 || announce_fixed) {
                printf("port=%u\n", ntohs(a.sin_port));
                fflush(stdout);
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

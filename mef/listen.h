/* SPDX-License-Identifier: MIT */
#pragma once
/* Listening sockets for msce-mef's listeners (the gateways' TLS port, the metrics port). */

#include <stdbool.h>
#include <stddef.h>

typedef struct mef_listen_apart {
        int fd;           /* one of our listening sockets, -1: none */
        const char *name; /* for the error: "[server] listen" */
} mef_listen_apart_t;

/* A non-blocking, close-on-exec TCP socket listening on host:port (host NULL, "" or "*":
 * every address; port "0": the kernel chooses). reuseport sets SO_REUSEPORT, so that several
 * processes may listen on the same address. apart (NULL: none): a listener of ours whose
 * address this one must not overlap (the same port, and the same address or a wildcard
 * covering it): checked once bound, before listening, since with SO_REUSEPORT on both the
 * kernel would let them share the port and spread connections over both; -EADDRINUSE then.
 * On failure err says why. */
int mef_listen(const char *host, const char *port, unsigned backlog, bool reuseport, const mef_listen_apart_t *apart,
               int *ret_fd, char *err, size_t err_size);
/* The port a socket is bound to, 0 when unknown. */
unsigned mef_listen_port(int fd);

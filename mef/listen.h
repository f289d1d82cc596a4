/* SPDX-License-Identifier: MIT */
#pragma once
/* Listening sockets for msce-mef's listeners (the gateways' TLS port, the metrics port). */

#include <stdbool.h>
#include <stddef.h>

/* A non-blocking, close-on-exec TCP socket listening on host:port (host NULL, "" or "*":
 * every address; port "0": the kernel chooses). reuseport sets SO_REUSEPORT, so that several
 * processes may listen on the same address. On failure err says why. */
int mef_listen(const char *host, const char *port, unsigned backlog, bool reuseport, int *ret_fd, char *err,
               size_t err_size);
/* The port a socket is bound to, 0 when unknown. */
unsigned mef_listen_port(int fd);

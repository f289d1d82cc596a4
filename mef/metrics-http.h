/* SPDX-License-Identifier: MIT */
#pragma once
/* The metrics listener: plain HTTP/1.1 on its own address ([metrics] listen), GET /metrics
 * only, one request per connection, a few connections at a time, each with a deadline. It
 * serves counters and fleet-level gauges, never a node's identity or a key, and has no
 * authentication: keep it on loopback or a management network. */

#include <systemd/sd-event.h>

#include "mef/listen.h"
#include "mef/metrics.h"
#include "mef/store-queue.h"

typedef struct metrics_http metrics_http_t;

/* Listen on host:port (port "0": the kernel chooses; metrics_http_port() tells). reuseport: the
 * socket has SO_REUSEPORT, so that every worker may listen on the same address (the supervisor
 * made sure no other process listens there, mef/workers.h); apart: the gateways' listener, whose
 * address it must not overlap (mef_listen(), -EADDRINUSE). queue: where a scrape's store gauges
 * are counted (NULL: none). On failure err says why. */
int metrics_http_new(sd_event *event, const char *host, const char *port, bool reuseport,
                     const mef_listen_apart_t *apart, mef_metrics_t *m, store_queue_t *queue, metrics_http_t **ret, char *err, size_t err_size);
unsigned metrics_http_port(const metrics_http_t *h);
metrics_http_t *metrics_http_free(metrics_http_t *h);

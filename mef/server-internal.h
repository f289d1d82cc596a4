/* SPDX-License-Identifier: MIT */
#pragma once
/* What mef/server.c and the gateways' port (mef/server-exchange.c) share. */

#include "mef/admin.h"
#include "mef/conn.h"
#include "mef/metrics-http.h"
#include "mef/psk-cache.h"
#include "mef/ratelimit.h"
#include "mef/retention.h"

typedef struct server {
        const mef_config_t *cfg;
        mef_store_t *store;               /* the loop's own: PSK lookups in the handshake */
        store_queue_t *queue;             /* the rest */
        retention_t *retention;           /* NULL: [audit] keep unset */
        mef_metrics_t *metrics;           /* NULL: not counted */
        metrics_http_t *metrics_http;     /* NULL: [metrics] listen unset */
        admin_t *admin;                   /* NULL: [admin] listen unset, or not this worker */
        psk_cache_t *psks;                /* for handshakes while the store is unreachable */
        sd_event *event;
        listener_t gateways;              /* the gateways' port */
        ratelimit_t *enrol_limit;         /* NULL: [limits] enrolments_per_node = 0 */
        ratelimit_t *refusal_audit;       /* mef_refusal_audit_new() */
        logbook_t *logbook;
        sd_event_source *logbook_timer;
        sd_event_source *trim_timer;
} server_t;

extern const listener_ops_t server_exchange_ops;
/* The gateways' PSKs: nodes' Kpm, targets' PSK (tls_psk_lookup_t; userdata: the conn_t). */
unsigned server_psk_lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max);

/* SPDX-License-Identifier: MIT */
#pragma once
/* /etc/msce/mef.conf (INI, util/ini.h). */

#include <stddef.h>
#include <stdio.h>

#include "mef/store.h"
#include "proto/tls.h"
#include "util/parse.h"

#define MEF_CONFIG_DEFAULT "/etc/msce/mef.conf"
#define MEF_STORE_DEFAULT "/var/lib/msce-mef/mef.db"
#define MEF_MASTER_KEY_DEFAULT "/var/lib/msce-mef/master.key"

typedef enum store_sync {
        STORE_SYNC_NORMAL,
        STORE_SYNC_FULL,
} store_sync_t;

typedef struct mef_config {
        char *listen_host;           /* [server] listen = host:port, default 127.0.0.1:8443 */
        char *listen_port;           /* follows listen_host: the loader sets both */
        char *fqdn;                  /* [server] fqdn: used in KeID/kpsaID; default: listen host */
        char *base;                  /* [server] base = /msce (the path of the MEF URI) */
        unsigned workers;            /* [server] workers = N|auto: 1 (default) serves in-process, 0 = auto */
        usec_t worker_start_timeout_usec; /* [server] worker_start_timeout = 90000 (ms): to READY=1 (mef/workers.h) */
        tls_version_t tls_min;       /* [tls] min_version = 1.2|1.3 */
        char *cert_file;             /* [tls] certificate, key, client_ca: cert mode */
        char *key_file;
        char *client_ca_file;
        store_backend_t store_backend; /* [store] backend = sqlite|postgresql */
        char *store_path;            /* [store] path (SQLite), master_key */
        char *master_key_path;
        char *store_uri;             /* [store] uri (PostgreSQL; never with a password) */
        char *store_password_file;   /* [store] password_file: the database password, 0600 */
        /* [store] threads = auto (1 on SQLite, 5 on PostgreSQL): store connections serving
         * requests off the event loop;
         * [store] busy_timeout = 1000 (ms): how long a request waits for a locked database
         * before it is answered 503 with Retry-After */
        unsigned store_threads;
        usec_t store_busy_timeout_usec;
        /* [store] synchronous = full|normal (SQLite; full: STORE_OPEN_SYNC_FULL) */
        store_sync_t store_sync;
        unsigned max_connections;    /* [limits] max_connections = 64 (authenticated peers) */
        /* [limits] max_unauthenticated = 64: connections without a credential yet (handshake
         * under way, or done without one), apart from max_connections; of them at most
         * max_unauthenticated_per_source = 8 (capped at max_unauthenticated) per IPv4 address
         * or IPv6 /64 */
        unsigned max_unauthenticated;
        unsigned max_unauthenticated_per_source;
        usec_t first_byte_timeout_usec; /* [limits] first_byte_timeout = 2000 ms (capped at handshake_timeout) */
        unsigned listen_backlog;     /* [limits] listen_backlog = 512 (the kernel caps it at somaxconn) */
        usec_t handshake_timeout_usec; /* [limits] handshake_timeout = 5000 ms */
        usec_t request_timeout_usec;   /* [limits] request_timeout = 10000 ms */
        unsigned retry_after;          /* [limits] retry_after = 5 (seconds, sent with 503) */
        /* [limits] enrolments_per_node = 20 per 1min: enrolments of one node in a window that
         * opens with its first; more get 429 + Retry-After ("0": no limit, both 0) */
        unsigned enrolments_per_node;
        unsigned enrolment_window_s;  /* follows enrolments_per_node: the loader sets both */
        /* [limits] connections_per_node = 4: connections one node identity (KpmID or
         * certificate) holds in service at once; more are answered 503 at once (0: no cap;
         * targets never capped) */
        unsigned connections_per_node;
        unsigned default_lifetime;   /* [defaults] lifetime = 31536000 (node add default) */
        unsigned default_poll;       /* [defaults] poll = 86400 */
        /* [audit] keep = 90d: audit rows and spent enrolments older than that are pruned;
         * forever (0): nothing is */
        usec_t audit_keep_usec;
        char *metrics_host;          /* [metrics] listen = host:port; NULL (default): no metrics */
        char *metrics_port;          /* follows metrics_host */
        /* [admin] listen = host:port (NULL, the default: no admin API); certificate, key: the
         * admin server's own; ca: the operators' CA, which every client certificate must chain to */
        char *admin_host;
        char *admin_port;            /* follows admin_host */
        char *admin_cert_file;
        char *admin_key_file;
        char *admin_ca_file;
} mef_config_t;

/* Defaults, then the file when it exists (path NULL: MEF_CONFIG_DEFAULT; a missing default
 * file is fine, a missing explicit one is -ENOENT). On error err names file, line and field. */
int mef_config_load(const char *path, mef_config_t *ret, char *err, size_t err_size);
/* The same from the text of a file in memory (len bytes, NULs included), named name in errors:
 * the fuzzers' entry point. */
int mef_config_parse_buffer(const char *name, const char *data, size_t len, mef_config_t *ret, char *err,
                            size_t err_size);
void mef_config_done(mef_config_t *c);
/* Every key as INI on f, defaults included; the output loads back to the same configuration. */
void mef_config_dump(const mef_config_t *c, FILE *f);

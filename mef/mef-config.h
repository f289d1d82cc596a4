/* SPDX-License-Identifier: MIT */
#pragma once
/* /etc/msce/mef.conf (INI, libinih). */

#include "proto/tls.h"

#define MEF_CONFIG_DEFAULT "/etc/msce/mef.conf"
#define MEF_STORE_DEFAULT "/var/lib/msce-mef/mef.db"
#define MEF_MASTER_KEY_DEFAULT "/var/lib/msce-mef/master.key"

typedef struct mef_config {
        char *listen_host;           /* [server] listen = host:port, default 127.0.0.1:8443 */
        char *listen_port;
        char *fqdn;                  /* [server] fqdn: used in KeID/kpsaID; default: listen host */
        char *base;                  /* [server] base = /msce (the path of the MEF URI) */
        tls_version_t tls_min;       /* [tls] min_version = 1.2|1.3 */
        char *cert_file;             /* [tls] certificate, key, client_ca: cert mode */
        char *key_file;
        char *client_ca_file;
        char *store_path;            /* [store] path, master_key */
        char *master_key_path;
        unsigned max_connections;    /* [limits] max_connections = 64 (authenticated peers) */
        /* [limits] max_unauthenticated = 64: connections without a credential yet (handshake
         * under way, or done without one), apart from max_connections; of them at most
         * max_unauthenticated_per_source = 8 (capped at max_unauthenticated) per IPv4 address
         * or IPv6 /64 */
        unsigned max_unauthenticated;
        unsigned max_unauthenticated_per_source;
        unsigned first_byte_timeout_ms; /* [limits] first_byte_timeout = 2000 (capped at handshake_timeout) */
        unsigned listen_backlog;     /* [limits] listen_backlog = 512 (the kernel caps it at somaxconn) */
        unsigned handshake_timeout_ms; /* [limits] handshake_timeout = 5000 */
        unsigned request_timeout_ms;   /* [limits] request_timeout = 10000 */
        unsigned retry_after;          /* [limits] retry_after = 5 (seconds, sent with 503) */
        /* [limits] enrolments_per_node = 20 per 1min: enrolments of one node in a window that
         * opens with its first; more get 429 + Retry-After ("0": no limit, both 0) */
        unsigned enrolments_per_node;
        unsigned enrolment_window_s;
        unsigned default_lifetime;   /* [defaults] lifetime = 31536000 (node add default) */
        unsigned default_poll;       /* [defaults] poll = 86400 */
} mef_config_t;

/* Defaults, then the file when it exists (path NULL: MEF_CONFIG_DEFAULT; a missing default
 * file is fine, a missing explicit one is -ENOENT). On error err names file, line and field. */
int mef_config_load(const char *path, mef_config_t *ret, char *err, size_t err_size);
void mef_config_done(mef_config_t *c);

/* SPDX-License-Identifier: MIT */
/* msce-mef configuration: the key table (util/ini.h reads the file by it), then the checks that
 * span keys. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mef/mef-config.h"
#include "mef/store.h"
#include "proto/ids.h"
#include "util/ini-types.h"
#include "util/util.h"

#define FQDN_MAX 253u
#define BASE_MAX 255u

/* host:port or [ipv6]:port into the host field at the key's offset and the port field that
 * follows it (listen_host/listen_port, metrics_host/metrics_port). */
static char **listen_fields(const void *base, const ini_key_t *k) {
        return (char **) ((char *) base + k->offset);
}

static int listen_parse(void *base, const ini_key_t *k, const char *v, char why[INI_WHY_MAX]) {
        char **hp = listen_fields(base, k);
        const char *host, *colon;
        size_t host_len;
        snprintf(why, INI_WHY_MAX, "expected host:port or [ipv6]:port, port 0..65535 (0: the kernel picks)");
        if (v[0] == '[') {
                const char *close = strchr(v, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                host = v + 1;
                host_len = (size_t) (close - host);
                colon = close + 1;
        } else {
                colon = strrchr(v, ':');
                if (!colon || memchr(v, ':', (size_t) (colon - v)))
                        return -EINVAL; /* an IPv6 literal needs brackets */
                host = v;
                host_len = (size_t) (colon - v);
        }
        if (host_len == 0 || host_len > FQDN_MAX)
                return -EINVAL;
        for (size_t i = 0; i < host_len; i++)
                if (!isalnum((unsigned char) host[i]) && !strchr(".-:%_", host[i]))
                        return -EINVAL;
        unsigned long long port;
        if (parse_uint(colon + 1, 65535, &port) < 0)
                return -EINVAL;
        char *h = strndup(host, host_len);
        char *p = strdup(colon + 1);
        if (!h || !p) {
                free(h);
                free(p);
                return -ENOMEM;
        }
        free(hp[0]);
        free(hp[1]);
        hp[0] = h;
        hp[1] = p;
        return 0;
}

static void listen_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        char **hp = listen_fields(base, k);
        if (!hp[0]) {
                snprintf(buf, size, "%s", "");
                return;
        }
        bool v6 = strchr(hp[0], ':');
        snprintf(buf, size, "%s%s%s:%s", v6 ? "[" : "", hp[0], v6 ? "]" : "", hp[1] ?: "");
}

static void listen_done(void *base, const ini_key_t *k) {
        char **hp = listen_fields(base, k);
        free(hp[0]);
        free(hp[1]);
        hp[0] = hp[1] = NULL;
}

static const ini_type_t listen_type = { listen_parse, listen_print, listen_done };

/* it becomes the host part of every KeID: the KeID rules apply */
static int fqdn_check(const char *s, const char **ret_why) {
        if (ids_check_host(s, NULL) == 0)
                return 0;
        *ret_why = "expected a host name (RFC 1123) or an IP address (IPv6 without brackets)";
        return -EINVAL;
}

static int base_check(const char *v, const char **ret_why) {
        if (v[0] == '/' && strlen(v) <= BASE_MAX && id_is_valid(v, BASE_MAX) && !strpbrk(v, "?#%"))
                return 0;
        *ret_why = "expected an absolute path such as /msce";
        return -EINVAL;
}

/* "/msce/" and "/msce" name one base */
static void base_normalize(char *s) {
        size_t n = strlen(s);
        while (n > 0 && s[n - 1] == '/')
                s[--n] = 0;
}

/* The root is kept as "" and printed as "/" (an empty base is no value). */
static void base_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        const char *v = *INI_CFIELD(base, k, char *);
        snprintf(buf, size, "%s", v && *v ? v : "/");
}

static const ini_type_t base_type = { ini_string_parse, base_print, ini_string_done };

/* keep = forever (stored as 0: nothing is pruned) or a duration */
static int keep_parse(void *base, const ini_key_t *k, const char *v, char why[INI_WHY_MAX]) {
        if (streq(v, "forever")) {
                *INI_FIELD(base, k, usec_t) = 0;
                return 0;
        }
        int r = ini_type_duration.parse(base, k, v, why);
        if (r == -EINVAL && !why[0])
                snprintf(why, INI_WHY_MAX, "expected forever or a duration such as 90d");
        return r;
}

static void keep_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        if (*INI_CFIELD(base, k, usec_t) == 0)
                snprintf(buf, size, "forever");
        else
                ini_type_duration.print(base, k, buf, size);
}

static const ini_type_t keep_type = { keep_parse, keep_print, NULL };

/* Read as libpq will read it when connecting (store_pg_uri_check()). A password here would sit
 * in a file many can read, and in the log line of a store that does not open: it goes in
 * password_file. What libpq cannot parse would fail every start, and so would a connect_timeout
 * that is not a number (libpq reads it at each connection). */
static int uri_check(const char *v, const char **ret_why) {
        int r = !*v || strlen(v) > 1024 || strpbrk(v, "\r\n") ? -EINVAL : store_pg_uri_check(v);
        if (r == -EACCES) {
                *ret_why = "must not carry a password: put it in password_file";
                return -EINVAL;
        }
        if (r == -ELIBACC) {
                static char lib_why[INI_WHY_MAX]; /* the configuration is read by one thread */
                snprintf(lib_why, sizeof lib_why, STORE_PG_LIB_HINT ": %s", store_pg_lib_error());
                *ret_why = lib_why;
                return -EINVAL;
        }
        if (r == -EDOM) {
                *ret_why = "connect_timeout must be a whole number of seconds";
                return -EINVAL;
        }
        if (r < 0) {
                *ret_why = "expected a PostgreSQL connection URI (postgresql://...) or key=value string";
                return -EINVAL;
        }
        return 0;
}

static const int store_backends[] = { STORE_BACKEND_SQLITE, STORE_BACKEND_POSTGRESQL };

/* "N per DURATION" (DURATION: a number with s, min, h or d; "1min" or "1 min"), or "0" (off). */
static int parse_rate(const char *v, unsigned *ret_n, unsigned *ret_window_s) {
        static const struct {
                const char *unit;
                unsigned s;
        } units[] = { { "s", 1 }, { "min", 60 }, { "h", 3600 }, { "d", 86400 } };
        unsigned long long n, w;
        char num[16], dur[32], unit[8] = "", rest;
        if (streq(v, "0")) {
                *ret_n = *ret_window_s = 0;
                return 0;
        }
        int k = sscanf(v, "%15s per %31s %7s %c", num, dur, unit, &rest);
        if ((k != 2 && k != 3) || parse_uint(num, 1000000, &n) < 0 || n < 1)
                return -EINVAL;
        size_t digits = strspn(dur, "0123456789");
        if (!unit[0])
                snprintf(unit, sizeof unit, "%s", dur + digits);
        else if (dur[digits])
                return -EINVAL;
        dur[digits] = 0;
        if (parse_uint(dur, 1000000, &w) < 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(unit, units[i].unit)) {
                        w *= units[i].s;
                        if (w < 1 || w > 7u * 86400u)
                                return -ERANGE;
                        *ret_n = (unsigned) n;
                        *ret_window_s = (unsigned) w;
                        return 0;
                }
        return -EINVAL;
}

/* enrolments_per_node into the count at the key's offset and the window (s) that follows it */
static int rate_parse(void *base, const ini_key_t *k, const char *v, char why[INI_WHY_MAX]) {
        unsigned *f = INI_FIELD(base, k, unsigned);
        if (parse_rate(v, &f[0], &f[1]) < 0) {
                snprintf(why, INI_WHY_MAX, "expected \"N per DURATION\" (N 1..1000000, DURATION 1s..7d: s, min, h, d) or 0 (off)");
                return -EINVAL;
        }
        return 0;
}

static void rate_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        const unsigned *f = INI_CFIELD(base, k, unsigned);
        if (f[0] == 0)
                snprintf(buf, size, "0");
        else if (f[1] % 86400 == 0)
                snprintf(buf, size, "%u per %ud", f[0], f[1] / 86400);
        else if (f[1] % 3600 == 0)
                snprintf(buf, size, "%u per %uh", f[0], f[1] / 3600);
        else if (f[1] % 60 == 0)
                snprintf(buf, size, "%u per %umin", f[0], f[1] / 60);
        else
                snprintf(buf, size, "%u per %us", f[0], f[1]);
}

static const ini_type_t rate_type = { rate_parse, rate_print, NULL };

#define F(f) offsetof(mef_config_t, f)
#define STRING(...) (&(const ini_string_t) { __VA_ARGS__ })
#define UINT(lo, hi, unit) (&(const ini_uint_t) { lo, hi, unit })
#define FILE_PATH STRING(ini_check_file_path)
static const int tls_versions[] = { TLS_VERSION_1_2, TLS_VERSION_1_3 };

/* The keys unset by default take an empty value as unset (INI_EMPTY_UNSETS), as agent.conf's do
 * (issue 11: one set of line rules). */
static const ini_key_t keys[] = {
        { "server", "listen", &listen_type, F(listen_host), "127.0.0.1:8443" },
        { "server", "fqdn", &ini_type_string, F(fqdn), NULL, STRING(fqdn_check, ini_ascii_lower), INI_EMPTY_UNSETS },
        { "server", "base", &base_type, F(base), "/msce", STRING(base_check, base_normalize) },
        /* auto: as many as CPUs (mef/workers.h) */
        { "server", "workers", &ini_type_uint_auto, F(workers), "1", UINT(1, 256, "") },
        { "server", "worker_start_timeout", &ini_type_msec, F(worker_start_timeout_usec), "90000",
          UINT(1000, 3600000, " ms") },
        { "tls", "min_version", &ini_type_enum, F(tls_min), "1.2",
          &(const ini_enum_t) { (const char *const[]) { "1.2", "1.3" }, tls_versions, 2 } },
        { "tls", "certificate", &ini_type_string, F(cert_file), NULL, FILE_PATH, INI_EMPTY_UNSETS },
        { "tls", "key", &ini_type_string, F(key_file), NULL, FILE_PATH, INI_EMPTY_UNSETS },
        { "tls", "client_ca", &ini_type_string, F(client_ca_file), NULL, FILE_PATH, INI_EMPTY_UNSETS },
        { "store", "backend", &ini_type_enum, F(store_backend), "sqlite",
          &(const ini_enum_t) { (const char *const[]) { "sqlite", "postgresql" }, store_backends, 2 } },
        { "store", "path", &ini_type_string, F(store_path), MEF_STORE_DEFAULT, FILE_PATH },
        { "store", "uri", &ini_type_string, F(store_uri), NULL, STRING(uri_check), INI_EMPTY_UNSETS },
        { "store", "password_file", &ini_type_string, F(store_password_file), NULL, FILE_PATH, INI_EMPTY_UNSETS },
        { "store", "master_key", &ini_type_string, F(master_key_path), MEF_MASTER_KEY_DEFAULT, FILE_PATH },
        /* auto: 1 on SQLite, 5 on PostgreSQL (validate()) */
        { "store", "threads", &ini_type_uint_auto, F(store_threads), "auto", UINT(1, 64, "") },
        { "store", "busy_timeout", &ini_type_msec, F(store_busy_timeout_usec), "1000", UINT(10, 60000, " ms") },
        { "store", "synchronous", &ini_type_enum, F(store_sync), "full",
          &(const ini_enum_t) { (const char *const[]) { "normal", "full" }, NULL, 2 } },
        { "limits", "max_connections", &ini_type_uint, F(max_connections), "64", UINT(1, 4096, "") },
        { "limits", "max_unauthenticated", &ini_type_uint, F(max_unauthenticated), "64", UINT(1, 4096, "") },
        { "limits", "max_unauthenticated_per_source", &ini_type_uint, F(max_unauthenticated_per_source), "8",
          UINT(1, 4096, "") },
        { "limits", "listen_backlog", &ini_type_uint, F(listen_backlog), "512", UINT(16, 65535, "") },
        { "limits", "first_byte_timeout", &ini_type_msec, F(first_byte_timeout_usec), "2000", UINT(100, 120000, " ms") },
        { "limits", "handshake_timeout", &ini_type_msec, F(handshake_timeout_usec), "5000", UINT(100, 120000, " ms") },
        { "limits", "request_timeout", &ini_type_msec, F(request_timeout_usec), "10000", UINT(100, 120000, " ms") },
        { "limits", "enrolments_per_node", &rate_type, F(enrolments_per_node), "20 per 1min" },
        { "limits", "connections_per_node", &ini_type_uint, F(connections_per_node), "4", UINT(0, 4096, "") },
        { "limits", "retry_after", &ini_type_uint, F(retry_after), "5", UINT(1, 3600, " s") },
        { "defaults", "lifetime", &ini_type_uint, F(default_lifetime), "31536000",
          UINT(STORE_LIFETIME_MIN, STORE_LIFETIME_MAX, " s") },
        { "metrics", "listen", &listen_type, F(metrics_host), NULL, NULL, INI_EMPTY_UNSETS },
        { "admin", "listen", &listen_type, F(admin_host), NULL, NULL, INI_EMPTY_UNSETS },
        { "admin", "certificate", &ini_type_string, F(admin_cert_file), NULL, FILE_PATH, INI_EMPTY_UNSETS },
        { "admin", "key", &ini_type_string, F(admin_key_file), NULL, FILE_PATH, INI_EMPTY_UNSETS },
        { "admin", "ca", &ini_type_string, F(admin_ca_file), NULL, FILE_PATH, INI_EMPTY_UNSETS },
        { "audit", "keep", &keep_type, F(audit_keep_usec), "90d",
          &(const ini_duration_t) { 86400ull * 1000000, 36500ull * 86400 * 1000000, "out of range (1d..36500d)", true } },
        { "defaults", "poll", &ini_type_uint, F(default_poll), "86400" /* MSG_POLL_DEFAULT */, UINT(STORE_POLL_MIN, STORE_POLL_MAX, " s") },
};

/* Whether the listen host, read as the bind reads it (getaddrinfo: "0", "[::0]" and "0x0" too),
 * is an unspecified address, or an IPv4-mapped one (the kernel binds it as 0.0.0.0). A name is
 * not: it is resolved when bound. */
static bool host_is_wildcard(const char *h) {
        struct addrinfo hints = { .ai_flags = AI_PASSIVE | AI_NUMERICHOST, .ai_socktype = SOCK_STREAM }, *res = NULL;
        if (getaddrinfo(h, NULL, &hints, &res) != 0)
                return false;
        bool any = false;
        for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
                if (ai->ai_family == AF_INET)
                        any |= ((const struct sockaddr_in *) ai->ai_addr)->sin_addr.s_addr == htonl(INADDR_ANY);
                else if (ai->ai_family == AF_INET6) {
                        const struct in6_addr *a = &((const struct sockaddr_in6 *) ai->ai_addr)->sin6_addr;
                        any |= IN6_IS_ADDR_UNSPECIFIED(a) ||
                               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 0 && a->s6_addr[13] == 0 &&
                                a->s6_addr[14] == 0 && a->s6_addr[15] == 0);
                }
        freeaddrinfo(res);
        return any;
}

/* Two listeners on one host:port, as written (host names case-insensitively, ports by value;
 * port 0, chosen by the kernel, is no clash). With [server] workers > 1 every worker's sockets
 * have SO_REUSEPORT, so the kernel would accept such a pair and spread one port's connections
 * over both listeners; the server also refuses overlaps that only show once bound
 * (mef_listen_overlap()). */
static bool listen_same(const char *host_a, const char *port_a, const char *host_b, const char *port_b) {
        unsigned long long a, b;
        if (!host_a || !host_b || parse_uint(port_a, 65535, &a) < 0 || parse_uint(port_b, 65535, &b) < 0)
                return false;
        return a != 0 && a == b && strcasecmp(host_a, host_b) == 0;
}

/* The first of the listeners at offsets (host fields, each followed by its port) that takes the
 * address of one before it, reported against it. */
static int listen_distinct(ini_t *ini, const mef_config_t *cfg) {
        static const struct {
                size_t offset;
                const char *key;
        } listeners[] = {
                { F(listen_host), "[server] listen" },
                { F(metrics_host), "[metrics] listen" },
                { F(admin_host), "[admin] listen" },
        };
        for (size_t i = 1; i < ELEMENTSOF(listeners); i++)
                for (size_t j = 0; j < i; j++) {
                        char *const *a = (char *const *) ((const char *) cfg + listeners[i].offset);
                        char *const *b = (char *const *) ((const char *) cfg + listeners[j].offset);
                        if (!listen_same(a[0], a[1], b[0], b[1]))
                                continue;
                        bool v6 = strchr(a[0], ':');
                        return ini_fail_key(ini, -EINVAL, listeners[i].offset,
                                            "%s%s%s:%s is also %s: each listener needs its own port", v6 ? "[" : "",
                                            a[0], v6 ? "]" : "", a[1], listeners[j].key);
                }
        return 0;
}

/* Checks that involve more than one key; reported against the file (no line). */
static int validate(ini_t *ini, mef_config_t *cfg) {
        bool fqdn_set = ini_is_set(ini, F(fqdn));
        if (cfg->key_file && !cfg->cert_file)
                return ini_fail_key(ini, -EINVAL, F(cert_file), "required when key is set");
        if (cfg->cert_file && !cfg->key_file)
                return ini_fail_key(ini, -EINVAL, F(key_file), "required when certificate is set");
        if (cfg->store_backend == STORE_BACKEND_POSTGRESQL && !cfg->store_uri)
                return ini_fail_key(ini, -EINVAL, F(store_uri), "required when backend is postgresql");
        if (cfg->client_ca_file && !cfg->cert_file)
                return ini_fail_key(ini, -EINVAL, F(cert_file), "required when client_ca is set");
        if (cfg->admin_host && !cfg->admin_cert_file)
                return ini_fail_key(ini, -EINVAL, F(admin_cert_file), "required when listen is set");
        if (cfg->admin_host && !cfg->admin_key_file)
                return ini_fail_key(ini, -EINVAL, F(admin_key_file), "required when listen is set");
        if (cfg->admin_host && !cfg->admin_ca_file)
                /* the operators' CA: without it anyone reaching the port would be served */
                return ini_fail_key(ini, -EINVAL, F(admin_ca_file), "required when listen is set");
        int r = listen_distinct(ini, cfg);
        if (r < 0)
                return r;
        if (!fqdn_set && host_is_wildcard(cfg->listen_host))
                /* KeIDs name the MEF by the host the agents were given: a wildcard is none */
                return ini_fail_key(ini, -EINVAL, F(fqdn), "required when listen is a wildcard address");
        if (!fqdn_set && ids_check_host(cfg->listen_host, NULL) < 0)
                /* the default is the listen host, which may be no KeID host (a zone index) */
                return ini_fail_key(ini, -EINVAL, F(fqdn),
                                    "required when the listen host is not a host name or IP address");
        if (cfg->store_threads == 0)
                /* SQLite takes one writer at a time: a second connection only invalidates the
                 * first one's page cache and contends for the lock (bench-mef-load: 10 % more
                 * CPU per enrolment). PostgreSQL serves connections side by side, and each
                 * COMMIT waits for a WAL flush that it makes once for every transaction waiting
                 * then: 5, so that more commits share a flush (bench-mef-pg: 12-20 % more
                 * enrolments/s than with 3; 8 and 12 were slower than 5, contending). */
                cfg->store_threads = cfg->store_backend == STORE_BACKEND_POSTGRESQL ? 5 : 1;
        if (!cfg->fqdn) {
                cfg->fqdn = strdup(cfg->listen_host);
                if (!cfg->fqdn)
                        return -ENOMEM;
                ini_ascii_lower(cfg->fqdn);
        }
        return 0;
}

void mef_config_done(mef_config_t *c) {
        if (!c)
                return;
        ini_fields_done(keys, ELEMENTSOF(keys), c);
        *c = (mef_config_t) { 0 };
}

void mef_config_dump(const mef_config_t *c, FILE *f) {
        ini_dump(keys, ELEMENTSOF(keys), c, f);
}

static void mef_config_donep(mef_config_t *c) {
        mef_config_done(c);
}

/* Defaults, then data (when not NULL) or the file at path (when it exists or explicit). */
static int load(const char *path, bool explicit, const char *data, size_t len, mef_config_t *ret, char *err,
                size_t err_size) {
        if (!ret)
                return -EINVAL;
        _cleanup_(mef_config_donep) mef_config_t cfg = { 0 };
        _cleanup_(ini_freep) ini_t *ini = NULL;
        int r = ini_new(keys, ELEMENTSOF(keys), &cfg, path, INI_KEYS_ONCE, err, err_size, &ini);
        if (r < 0)
                return r;
        if (data)
                r = ini_parse_buffer(ini, path, data, len);
        else if (explicit || access(path, F_OK) == 0 || errno != ENOENT)
                r = ini_parse_file(ini, path);
        if (r == 0)
                r = validate(ini, &cfg);
        if (r < 0)
                return r;
        *ret = cfg;
        cfg = (mef_config_t) { 0 };
        return 0;
}

int mef_config_load(const char *path, mef_config_t *ret, char *err, size_t err_size) {
        return load(path ?: MEF_CONFIG_DEFAULT, path != NULL, NULL, 0, ret, err, err_size);
}

int mef_config_parse_buffer(const char *name, const char *data, size_t len, mef_config_t *ret, char *err,
                            size_t err_size) {
        return load(name, true, data ?: "", data ? len : 0, ret, err, err_size);
}

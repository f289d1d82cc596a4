/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <ini.h>
#include <limits.h>

#include "mef/mef-config.h"
#include "proto/ids.h"
#include "mef/store.h"
#include "util/util.h"

#define FQDN_MAX 253u
#define BASE_MAX 255u
#define MS_MIN 100u
#define MS_MAX 120000u

typedef struct parse_ctx {
        const char *path;
        FILE *f;
        unsigned line;        /* of the line inih handles now */
        bool at_line_start;   /* the previous read ended a line */
        mef_config_t *cfg;
        bool fqdn_set;
        unsigned error_line;  /* 0: no error yet */
        char *err;
        size_t err_size;
        unsigned seen[32];    /* line each known key was set on (duplicates are errors) */
} parse_ctx_t;

static void mef_config_error(parse_ctx_t *c, unsigned line, const char *section, const char *key,
                             const char *reason) {
        if (c->error_line)
                return; /* the first error is the one reported */
        c->error_line = line ?: UINT_MAX;
        if (!c->err || !c->err_size)
                return;
        char where[32] = "";
        if (line)
                snprintf(where, sizeof where, ":%u", line);
        if (section)
                snprintf(c->err, c->err_size, "%s%s: [%s] %s: %s", c->path, where, section, key, reason);
        else
                snprintf(c->err, c->err_size, "%s%s: %s", c->path, where, reason);
}

/* fgets for inih that counts lines itself: the handler has no line number in this build. */
static char *reader(char *str, int num, void *stream) {
        parse_ctx_t *c = stream;
        if (!fgets(str, num, c->f))
                return NULL;
        if (c->at_line_start)
                c->line++;
        size_t n = strlen(str);
        c->at_line_start = n > 0 && str[n - 1] == '\n';
        if (!c->at_line_start && !feof(c->f)) {
                /* inih would parse the rest as another line: refuse it instead */
                char reason[64];
                snprintf(reason, sizeof reason, "line too long (at most %d characters)", num - 2);
                mef_config_error(c, c->line, NULL, NULL, reason);
                return NULL;
        }
        return str;
}

static int set_string(char **field, const char *value) {
        char *s = strdup(value);
        if (!s)
                return -ENOMEM;
        free(*field);
        *field = s;
        return 0;
}

static bool path_is_valid(const char *v) {
        return v[0] && strlen(v) < PATH_MAX;
}

static int parse_listen(const char *v, char **ret_host, char **ret_port) {
        const char *host, *colon;
        size_t host_len;
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
        free(*ret_host);
        free(*ret_port);
        *ret_host = h;
        *ret_port = p;
        return 0;
}

static char *ascii_lower(char *s) {
        for (char *p = s; *p; p++)
                *p = (char) tolower((unsigned char) *p);
        return s;
}

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

typedef enum key_kind {
        KEY_LISTEN,
        KEY_FQDN,
        KEY_BASE,
        KEY_TLS_VERSION,
        KEY_PATH,
        KEY_UINT,
        KEY_RATE,
} key_kind_t;

typedef struct key_def {
        const char *section;
        const char *name;
        key_kind_t kind;
        size_t offset;          /* of the field in mef_config_t */
        unsigned min, max;      /* KEY_UINT */
        const char *unit;
} key_def_t;

#define FIELD(f) offsetof(mef_config_t, f)

static const key_def_t keys[] = {
        { "server", "listen", KEY_LISTEN, 0, 0, 0, NULL },
        { "server", "fqdn", KEY_FQDN, FIELD(fqdn), 0, 0, NULL },
        { "server", "base", KEY_BASE, FIELD(base), 0, 0, NULL },
        { "tls", "min_version", KEY_TLS_VERSION, FIELD(tls_min), 0, 0, NULL },
        { "tls", "certificate", KEY_PATH, FIELD(cert_file), 0, 0, NULL },
        { "tls", "key", KEY_PATH, FIELD(key_file), 0, 0, NULL },
        { "tls", "client_ca", KEY_PATH, FIELD(client_ca_file), 0, 0, NULL },
        { "store", "path", KEY_PATH, FIELD(store_path), 0, 0, NULL },
        { "store", "master_key", KEY_PATH, FIELD(master_key_path), 0, 0, NULL },
        { "limits", "max_connections", KEY_UINT, FIELD(max_connections), 1, 4096, "" },
        { "limits", "max_unauthenticated", KEY_UINT, FIELD(max_unauthenticated), 1, 4096, "" },
        { "limits", "max_unauthenticated_per_source", KEY_UINT, FIELD(max_unauthenticated_per_source), 1, 4096, "" },
        { "limits", "listen_backlog", KEY_UINT, FIELD(listen_backlog), 16, 65535, "" },
        { "limits", "first_byte_timeout", KEY_UINT, FIELD(first_byte_timeout_ms), MS_MIN, MS_MAX, " ms" },
        { "limits", "handshake_timeout", KEY_UINT, FIELD(handshake_timeout_ms), MS_MIN, MS_MAX, " ms" },
        { "limits", "request_timeout", KEY_UINT, FIELD(request_timeout_ms), MS_MIN, MS_MAX, " ms" },
        { "limits", "retry_after", KEY_UINT, FIELD(retry_after), 1, 3600, " s" },
        { "limits", "enrolments_per_node", KEY_RATE, FIELD(enrolments_per_node), 0, 0, NULL },
        { "defaults", "lifetime", KEY_UINT, FIELD(default_lifetime), STORE_LIFETIME_MIN, STORE_LIFETIME_MAX, " s" },
        { "defaults", "poll", KEY_UINT, FIELD(default_poll), STORE_POLL_MIN, STORE_POLL_MAX, " s" },
};

_Static_assert(ELEMENTSOF(keys) <= ELEMENTSOF(((parse_ctx_t *) NULL)->seen), "seen[] too small");

/* NULL to accept, or a reason (possibly formatted into buf). */
static const char *apply(parse_ctx_t *c, const key_def_t *k, const char *value, char *buf, size_t size) {
        mef_config_t *cfg = c->cfg;
        char *base = (char *) cfg;
        unsigned long long u;

        switch (k->kind) {
        case KEY_LISTEN: {
                int r = parse_listen(value, &cfg->listen_host, &cfg->listen_port);
                if (r == -ENOMEM)
                        return "out of memory";
                return r < 0 ? "expected host:port or [ipv6]:port, port 1..65535" : NULL;
        }
        case KEY_FQDN:
                /* it becomes the host part of every KeID: the KeID rules apply */
                if (ids_check_host(value, NULL) < 0)
                        return "expected a host name (RFC 1123) or an IP address (IPv6 without brackets)";
                c->fqdn_set = true;
                break;
        case KEY_BASE:
                if (value[0] != '/' || strlen(value) > BASE_MAX || !id_is_valid(value, BASE_MAX) ||
                    strpbrk(value, "?#%"))
                        return "expected an absolute path such as /msce";
                break;
        case KEY_TLS_VERSION:
                if (streq(value, "1.2"))
                        cfg->tls_min = TLS_VERSION_1_2;
                else if (streq(value, "1.3"))
                        cfg->tls_min = TLS_VERSION_1_3;
                else
                        return "expected 1.2 or 1.3";
                return NULL;
        case KEY_PATH:
                if (!path_is_valid(value))
                        return "expected a file path";
                break;
        case KEY_UINT:
                if (parse_uint(value, UINT_MAX, &u) < 0 || u < k->min || u > k->max) {
                        snprintf(buf, size, "expected an integer from %u to %u%s", k->min, k->max, k->unit);
                        return buf;
                }
                *(unsigned *) (base + k->offset) = (unsigned) u;
                return NULL;
        case KEY_RATE:
                if (parse_rate(value, &cfg->enrolments_per_node, &cfg->enrolment_window_s) < 0)
                        return "expected \"N per DURATION\" (N 1..1000000, DURATION 1s..7d: s, min, h, d) or 0 (off)";
                return NULL;
        }

        /* string fields */
        char **field = (char **) (base + k->offset);
        if (set_string(field, value) < 0)
                return "out of memory";
        if (k->kind == KEY_FQDN)
                ascii_lower(*field);
        if (k->kind == KEY_BASE) {
                size_t n = strlen(*field);
                while (n > 0 && (*field)[n - 1] == '/') /* "/msce/" and "/msce" name one base */
                        (*field)[--n] = 0;
        }
        return NULL;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        parse_ctx_t *c = user;
        bool section_known = false;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!streq(section, keys[i].section))
                        continue;
                section_known = true;
                if (!streq(name, keys[i].name))
                        continue;
                if (c->seen[i]) {
                        char reason[64];
                        snprintf(reason, sizeof reason, "set twice (first on line %u)", c->seen[i]);
                        mef_config_error(c, c->line, section, name, reason);
                        return 0;
                }
                c->seen[i] = c->line;
                char buf[96];
                const char *reason = apply(c, &keys[i], value, buf, sizeof buf);
                if (reason) {
                        mef_config_error(c, c->line, section, name, reason);
                        return 0;
                }
                return 1;
        }
        mef_config_error(c, c->line, section, name,
                         section_known ? "unknown key" : section[0] ? "unknown section" : "key outside of a section");
        return 0;
}

static int defaults(mef_config_t *c) {
        *c = (mef_config_t) {
                .listen_host = strdup("127.0.0.1"),
                .listen_port = strdup("8443"),
                .base = strdup("/msce"),
                .tls_min = TLS_VERSION_1_2,
                .store_path = strdup(MEF_STORE_DEFAULT),
                .master_key_path = strdup(MEF_MASTER_KEY_DEFAULT),
                .max_connections = 64,
                .max_unauthenticated = 64,
                .max_unauthenticated_per_source = 8,
                .listen_backlog = 512,
                .first_byte_timeout_ms = 2000,
                .handshake_timeout_ms = 5000,
                .request_timeout_ms = 10000,
                .retry_after = 5,
                .enrolments_per_node = 20,
                .enrolment_window_s = 60,
                .default_lifetime = 31536000,
                .default_poll = MSG_POLL_DEFAULT,
        };
        if (!c->listen_host || !c->listen_port || !c->base || !c->store_path || !c->master_key_path)
                return -ENOMEM;
        return 0;
}

static bool host_is_wildcard(const char *h) {
        return streq(h, "0.0.0.0") || streq(h, "::") || streq(h, "0:0:0:0:0:0:0:0");
}

/* Checks that involve more than one key; reported against the file (no line). */
static void validate(parse_ctx_t *c) {
        mef_config_t *cfg = c->cfg;
        if (cfg->key_file && !cfg->cert_file)
                mef_config_error(c, 0, "tls", "certificate", "required when key is set");
        else if (cfg->cert_file && !cfg->key_file)
                mef_config_error(c, 0, "tls", "key", "required when certificate is set");
        else if (cfg->client_ca_file && !cfg->cert_file)
                mef_config_error(c, 0, "tls", "certificate", "required when client_ca is set");
        else if (!c->fqdn_set && host_is_wildcard(cfg->listen_host))
                /* KeIDs name the MEF by the host the agents were given: a wildcard is none */
                mef_config_error(c, 0, "server", "fqdn", "required when listen is a wildcard address");
        else if (!c->fqdn_set && ids_check_host(cfg->listen_host, NULL) < 0)
                /* the default is the listen host, which may be no KeID host (a zone index) */
                mef_config_error(c, 0, "server", "fqdn", "required when the listen host is not a host name or IP address");
}

void mef_config_done(mef_config_t *c) {
        if (!c)
                return;
        free(c->listen_host);
        free(c->listen_port);
        free(c->fqdn);
        free(c->base);
        free(c->cert_file);
        free(c->key_file);
        free(c->client_ca_file);
        free(c->store_path);
        free(c->master_key_path);
        *c = (mef_config_t) { 0 };
}

static void mef_config_donep(mef_config_t *c) {
        mef_config_done(c);
}

int mef_config_load(const char *path, mef_config_t *ret, char *err, size_t err_size) {
        bool explicit = path != NULL;
        const char *p = path ?: MEF_CONFIG_DEFAULT;
        if (!ret)
                return -EINVAL;
        if (err && err_size)
                err[0] = 0;

        _cleanup_(mef_config_donep) mef_config_t cfg = { 0 };
        int r = defaults(&cfg);
        if (r < 0)
                return r;

        parse_ctx_t c = {
                .path = p,
                .at_line_start = true,
                .cfg = &cfg,
                .err = err,
                .err_size = err_size,
        };

        _cleanup_fclose_ FILE *f = fopen(p, "re");
        if (!f && (errno != ENOENT || explicit)) {
                r = negative_errno();
                if (err && err_size)
                        snprintf(err, err_size, "%s: %s", p, strerror(-r));
                return r;
        }
        if (f) {
                c.f = f;
                int line = ini_parse_stream(reader, &c, handler, &c);
                if (line == -2)
                        return -ENOMEM;
                if (line > 0 && (!c.error_line || (unsigned) line < c.error_line)) {
                        /* inih's own syntax error comes before any error of ours */
                        c.error_line = 0;
                        mef_config_error(&c, (unsigned) line, NULL, NULL,
                                         "syntax error (expected [section] or key = value)");
                }
                if (ferror(f) && !c.error_line) {
                        if (err && err_size)
                                snprintf(err, err_size, "%s: read error", p);
                        return -EIO;
                }
                if (line != 0 && !c.error_line)
                        mef_config_error(&c, line > 0 ? (unsigned) line : 0, NULL, NULL, "parse error");
        }
        if (!c.error_line)
                validate(&c);
        if (c.error_line)
                return -EINVAL;

        if (!cfg.fqdn) {
                cfg.fqdn = strdup(cfg.listen_host);
                if (!cfg.fqdn)
                        return -ENOMEM;
                ascii_lower(cfg.fqdn);
        }

        *ret = cfg;
        cfg = (mef_config_t) { 0 };
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* msce-agent configuration: defaults, the main file, drop-ins, then validation.
 *
 * inih is driven through ini_parse_stream() with our own line reader so that every error can
 * name its line, lines longer than inih's buffer are refused (inih would silently split them),
 * NUL bytes are refused, and section headers are checked even when the section is empty.
 * Continuation lines (an indented line after a key) are refused: inih would append them to the
 * previous key, which nobody expects from a systemd-style file. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "agent/config.h"
#include "proto/ids.h"
#include "util/util.h"

#define URI_MAX 1024u
#define PATH_VALUE_MAX 4095u
#define PSK_FILE_MAX (2u * MSG_KEY_MAX + 2u) /* hex plus "\r\n" */
#define PEM_FILE_MAX (1024u * 1024u)
#define DROPINS_MAX 128u

enum {
        K_NODE_ID,
        K_LATITUDE,
        K_LONGITUDE,
        K_ALTITUDE,
        K_MEF_URI,
        K_MEF_MODE,
        K_PSK_IDENTITY,
        K_PSK_FILE,
        K_PSK_CREDENTIAL,
        K_CERTIFICATE,
        K_KEY,
        K_TRUST_ANCHORS,
        K_TLS_MIN,
        K_TLS_MAX,
        K_USER,
        K_SEAL_BACKEND,
        K_TCTI,
        K_PCRS,
        K_STATE_DIR,
        K_RUNTIME_DIR,
        K_LED_STATUS,
        K_LED_ERROR,
        K_CONNECT_TIMEOUT,
        K_EXCHANGE_TIMEOUT,
        K_BACKOFF_MIN,
        K_BACKOFF_MAX,
        K_REJECTED_RETRY,
        K_INITIAL_DELAY_MAX,
        K_RETRY_AFTER_MAX,
        K_CLOCK_WAIT_MAX,
        _K_MAX,
};

static const struct {
        const char *section;
        const char *name;
} keys[_K_MAX] = {
        [K_NODE_ID] = { "node", "id" },
        [K_LATITUDE] = { "node", "latitude" },
        [K_LONGITUDE] = { "node", "longitude" },
        [K_ALTITUDE] = { "node", "altitude" },
        [K_MEF_URI] = { "mef", "uri" },
        [K_MEF_MODE] = { "mef", "mode" },
        [K_PSK_IDENTITY] = { "mef", "psk_identity" },
        [K_PSK_FILE] = { "mef", "psk_file" },
        [K_PSK_CREDENTIAL] = { "mef", "psk_credential" },
        [K_CERTIFICATE] = { "mef", "certificate" },
        [K_KEY] = { "mef", "key" },
        [K_TRUST_ANCHORS] = { "mef", "trust_anchors" },
        [K_TLS_MIN] = { "mef", "tls_min_version" },
        [K_TLS_MAX] = { "mef", "tls_max_version" },
        [K_USER] = { "consumer", "user" },
        [K_SEAL_BACKEND] = { "seal", "backend" },
        [K_TCTI] = { "seal", "tcti" },
        [K_PCRS] = { "seal", "pcrs" },
        [K_STATE_DIR] = { "seal", "state_dir" },
        [K_RUNTIME_DIR] = { "seal", "runtime_dir" },
        [K_LED_STATUS] = { "leds", "status" },
        [K_LED_ERROR] = { "leds", "error" },
        [K_CONNECT_TIMEOUT] = { "timing", "connect_timeout" },
        [K_EXCHANGE_TIMEOUT] = { "timing", "exchange_timeout" },
        [K_BACKOFF_MIN] = { "timing", "backoff_min" },
        [K_BACKOFF_MAX] = { "timing", "backoff_max" },
        [K_REJECTED_RETRY] = { "timing", "rejected_retry" },
        [K_INITIAL_DELAY_MAX] = { "timing", "initial_delay_max" },
        [K_RETRY_AFTER_MAX] = { "timing", "retry_after_max" },
        [K_CLOCK_WAIT_MAX] = { "timing", "clock_wait_max" },
};

static const char *const sections[] = { "node", "mef", "consumer", "seal", "leds", "timing" };

/* Where a key got its effective value. */
typedef struct origin {
        const char *file; /* points into load_state.files */
        unsigned line;    /* 0: default */
} origin_t;

typedef struct load_state {
        agent_config_t *c;
        FILE *f;
        const char *file;
        unsigned line;
        bool indented;      /* current line starts with whitespace */
        bool key_in_section; /* a key was seen since the last section header */
        char *files[1 + DROPINS_MAX];
        size_t n_files;
        origin_t origin[_K_MAX];
        int error;          /* first error, negative errno */
        unsigned error_line;
        char *err;
        size_t err_size;
        unsigned flags;     /* AGENT_CONFIG_* */
} load_state_t;

static void _printf_(3, 4) fail(load_state_t *s, int error, const char *fmt, ...) {
        if (s->error < 0)
                return; /* keep the first */
        s->error = error;
        s->error_line = s->line;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->err, s->err_size, fmt, ap);
        va_end(ap);
}

/* "FILE:LINE: [section] key: reason" for the key's origin, or "MAIN: [section] key: reason". */
static void _printf_(4, 5) fail_key(load_state_t *s, int error, int k, const char *fmt, ...) {
        char reason[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        const origin_t *o = &s->origin[k];
        if (o->line > 0)
                fail(s, error, "%s:%u: [%s] %s: %s", o->file, o->line, keys[k].section, keys[k].name, reason);
        else
                fail(s, error, "%s: [%s] %s: %s", s->c->path, keys[k].section, keys[k].name, reason);
}

static const char *const seal_backend_table[_SEAL_BACKEND_MAX] = {
        [SEAL_AUTO] = "auto",
        [SEAL_TPM2] = "tpm2",
        [SEAL_HOST] = "host",
};

const char *seal_backend_to_string(seal_backend_t b) {
        if (b < 0 || b >= _SEAL_BACKEND_MAX)
                return NULL;
        return seal_backend_table[b];
}

seal_backend_t seal_backend_from_string(const char *s) {
        for (int i = 0; s && i < _SEAL_BACKEND_MAX; i++)
                if (streq(s, seal_backend_table[i]))
                        return (seal_backend_t) i;
        return _SEAL_BACKEND_INVALID;
}

/* Durations: plain milliseconds, or a number with one suffix: ms, s, min, h ("90s", "5min"). */
static int duration_parse(const char *s, unsigned *ret) {
        size_t digits = strspn(s, "0123456789");
        if (digits == 0 || digits > 10)
                return -EINVAL;
        char num[11];
        memcpy(num, s, digits);
        num[digits] = 0;
        unsigned long long v;
        int r = parse_uint(num, UINT_MAX, &v);
        if (r < 0)
                return r;
        const char *unit = s + digits;
        unsigned long long mult;
        if (streq(unit, "") || streq(unit, "ms"))
                mult = 1;
        else if (streq(unit, "s"))
                mult = 1000;
        else if (streq(unit, "min"))
                mult = 60000;
        else if (streq(unit, "h"))
                mult = 3600000;
        else
                return -EINVAL;
        if (v > UINT_MAX / mult)
                return -ERANGE;
        *ret = (unsigned) (v * mult);
        return 0;
}

/* The largest unit that represents ms exactly, so the dump reads well and parses back. */
static void duration_format(unsigned ms, char out[24]) {
        if (ms == 0)
                snprintf(out, 24, "0");
        else if (ms % 3600000 == 0)
                snprintf(out, 24, "%uh", ms / 3600000);
        else if (ms % 60000 == 0)
                snprintf(out, 24, "%umin", ms / 60000);
        else if (ms % 1000 == 0)
                snprintf(out, 24, "%us", ms / 1000);
        else
                snprintf(out, 24, "%ums", ms);
}

/* Shortest %g form that reads back as the same double: deterministic and exact. */
static void double_format(double v, char out[32]) {
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(out, 32, "%.*g", prec, v);
                if (strtod(out, NULL) == v)
                        return;
        }
}

static int double_parse(const char *s, double *ret) {
        if (!*s || isspace((unsigned char) *s) || strlen(s) > 32)
                return -EINVAL;
        /* Plain decimals only: no hex floats, inf or nan. */
        if (s[strspn(s, "0123456789.+-eE")] != 0)
                return -EINVAL;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (*end || errno != 0 || !isfinite(v))
                return -EINVAL;
        *ret = v;
        return 0;
}

static bool printable(const char *s, size_t max) {
        size_t n = 0;
        for (; s[n]; n++)
                if ((unsigned char) s[n] < 0x20 || (unsigned char) s[n] > 0x7e)
                        return false;
        return n >= 1 && n <= max;
}

static bool absolute_path_ok(const char *s) {
        if (s[0] != '/' || !printable(s, PATH_VALUE_MAX))
                return false;
        /* No ".." component: paths are meant literally. */
        for (const char *p = s; (p = strstr(p, "..")); p += 2)
                if (p[-1] == '/' && (p[2] == '/' || p[2] == 0))
                        return false;
        return true;
}

static bool user_name_ok(const char *s) {
        size_t n = strlen(s);
        if (n < 1 || n > 32 || !(isalpha((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || strchr("_.-", s[i])))
                        return false;
        return true;
}

/* "" (PCR binding off) or "<bank>:<n>[,<n>...]" with PCRs 0..23, e.g. "sha256:0,7". */
/* A systemd credential name: a file name in $CREDENTIALS_DIRECTORY. */
static bool credential_name_ok(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 255 || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("_.-", *p))
                        return false;
        return true;
}

static bool pcrs_ok(const char *s) {
        if (!*s)
                return true;
        const char *colon = strchr(s, ':');
        if (!colon)
                return false;
        size_t bl = (size_t) (colon - s);
        static const char *const banks[] = { "sha1", "sha256", "sha384", "sha512" };
        bool bank = false;
        for (size_t i = 0; i < ELEMENTSOF(banks); i++)
                if (strlen(banks[i]) == bl && strncmp(s, banks[i], bl) == 0)
                        bank = true;
        if (!bank)
                return false;
        unsigned seen = 0;
        const char *p = colon + 1;
        for (;;) {
                size_t d = strspn(p, "0123456789");
                if (d == 0 || d > 2)
                        return false;
                unsigned n = (unsigned) (p[0] - '0');
                if (d == 2)
                        n = n * 10 + (unsigned) (p[1] - '0');
                if (n > 23 || (seen & (1u << n)))
                        return false;
                seen |= 1u << n;
                p += d;
                if (*p == 0)
                        return true;
                if (*p != ',')
                        return false;
                p++;
        }
}

static bool path_char_ok(char c) {
        return isalnum((unsigned char) c) || strchr("-._~!$&'()*+,;=:@%/", c);
}

typedef struct uri_parts {
        char *host, *port, *base, *canonical;
} uri_parts_t;

static void uri_parts_done(uri_parts_t *u) {
        free(u->host);
        free(u->port);
        free(u->base);
        free(u->canonical);
        *u = (uri_parts_t) {};
}

/* https://host[:port][/base]: host is a DNS name, IPv4 or [IPv6] (lowercased, stored without
 * brackets), port 1..65535 (default 443), base without trailing slash. */
static int uri_parse(const char *uri, uri_parts_t *ret, const char **why) {
        _cleanup_(uri_parts_done) uri_parts_t u = {};
        if (strlen(uri) > URI_MAX)
                return *why = "too long", -EINVAL;
        if (strncasecmp(uri, "https://", 8) != 0)
                return *why = "must be https://host[:port][/base]", -EINVAL;
        const char *a = uri + 8;
        size_t alen = strcspn(a, "/?#");
        if (strpbrk(a, "?#"))
                return *why = "query and fragment are not allowed", -EINVAL;
        if (memchr(a, '@', alen))
                return *why = "user information is not allowed", -EINVAL;

        const char *port = NULL;
        size_t hlen;
        if (a[0] == '[') {
                const char *close = memchr(a, ']', alen);
                if (!close)
                        return *why = "invalid IPv6 address", -EINVAL;
                hlen = (size_t) (close - a - 1);
                u.host = strndup(a + 1, hlen);
                if (!u.host)
                        return -ENOMEM;
                struct in6_addr a6;
                if (hlen == 0 || hlen > 45 || inet_pton(AF_INET6, u.host, &a6) != 1)
                        return *why = "invalid IPv6 address", -EINVAL;
                if (close + 1 < a + alen) {
                        if (close[1] != ':')
                                return *why = "invalid host", -EINVAL;
                        port = close + 2;
                }
        } else {
                const char *colon = memchr(a, ':', alen);
                hlen = colon ? (size_t) (colon - a) : alen;
                u.host = strndup(a, hlen);
                if (!u.host)
                        return -ENOMEM;
                for (char *p = u.host; *p; p++)
                        *p = (char) tolower((unsigned char) *p);
                /* the host becomes the KeID's MEF-FQDN: the KeID rules apply */
                if (ids_check_host(u.host, NULL) < 0)
                        return *why = "invalid host (a DNS name, an IPv4 address or [IPv6])", -EINVAL;
                if (colon)
                        port = colon + 1;
        }
        for (char *p = u.host; *p; p++)
                *p = (char) tolower((unsigned char) *p);

        unsigned long long pn = 443;
        if (port) {
                char buf[8];
                size_t plen = (size_t) (a + alen - port);
                if (plen == 0 || plen >= sizeof buf)
                        return *why = "invalid port (1..65535)", -EINVAL;
                memcpy(buf, port, plen);
                buf[plen] = 0;
                if (parse_uint(buf, 65535, &pn) < 0 || pn == 0)
                        return *why = "invalid port (1..65535)", -EINVAL;
        }
        if (asprintf(&u.port, "%llu", pn) < 0)
                return -ENOMEM;

        const char *path = a + alen;
        size_t plen = strlen(path);
        while (plen > 0 && path[plen - 1] == '/')
                plen--;
        u.base = strndup(path, plen);
        if (!u.base)
                return -ENOMEM;
        for (const char *p = u.base; *p; p++)
                if (!path_char_ok(*p))
                        return *why = "invalid character in the path", -EINVAL;
        for (const char *seg = u.base; *seg; ) {
                seg++; /* skip '/' */
                size_t l = strcspn(seg, "/");
                if (l == 0 || (l == 1 && seg[0] == '.') || (l == 2 && seg[0] == '.' && seg[1] == '.'))
                        return *why = "empty, '.' or '..' path segment", -EINVAL;
                seg += l;
        }

        bool v6 = strchr(u.host, ':');
        if (asprintf(&u.canonical, "https://%s%s%s%s%s%s", v6 ? "[" : "", u.host, v6 ? "]" : "",
                     pn == 443 ? "" : ":", pn == 443 ? "" : u.port, u.base) < 0)
                return -ENOMEM;
        *ret = u;
        u = (uri_parts_t) {};
        return 0;
}

static int tls_version_parse(const char *s, tls_version_t *ret) {
        if (streq(s, "1.2"))
                *ret = TLS_VERSION_1_2;
        else if (streq(s, "1.3"))
                *ret = TLS_VERSION_1_3;
        else
                return -EINVAL;
        return 0;
}

static const char *tls_version_str(tls_version_t v) {
        return v == TLS_VERSION_1_2 ? "1.2" : "1.3";
}

static int set_string(char **field, const char *value) {
        char *d = strdup(value);
        if (!d)
                return -ENOMEM;
        free(*field);
        *field = d;
        return 0;
}

/* An empty value resets an optional key to unset, so a dump parses back to the same config. */
static int set_optional(char **field, const char *value) {
        if (!*value) {
                free(*field);
                *field = NULL;
                return 0;
        }
        return set_string(field, value);
}

typedef struct timing_limit {
        size_t offset;
        unsigned min, max;
        const char *why;
} timing_limit_t;

#define TIMING(k, field, lo, hi, range) \
        [k - K_CONNECT_TIMEOUT] = { offsetof(agent_config_t, field), lo, hi, "out of range (" range ")" }
static const timing_limit_t timing_limits[] = {
        TIMING(K_CONNECT_TIMEOUT, connect_timeout_ms, 100, 300000, "100ms..5min"),
        TIMING(K_EXCHANGE_TIMEOUT, exchange_timeout_ms, 1000, 600000, "1s..10min"),
        TIMING(K_BACKOFF_MIN, backoff_min_ms, 100, 3600000, "100ms..1h"),
        TIMING(K_BACKOFF_MAX, backoff_max_ms, 1000, 86400000, "1s..24h"),
        TIMING(K_REJECTED_RETRY, rejected_retry_ms, 1000, 604800000, "1s..168h"),
        TIMING(K_INITIAL_DELAY_MAX, initial_delay_max_ms, 0, 3600000, "0..1h"),
        /* stored in seconds */
        TIMING(K_RETRY_AFTER_MAX, retry_after_max_s, 1000, 86400000, "1s..24h"),
        TIMING(K_CLOCK_WAIT_MAX, clock_wait_max_ms, 0, 86400000, "0..24h"),
};

/* Parses one value into c. Returns 0, -ENOMEM, or -EINVAL with *why set. */
static int key_parse(agent_config_t *c, int k, const char *v, const char **why) {
        int r;
        switch (k) {
        case K_NODE_ID:
                if (ids_check_node_id(v, why) < 0)
                        return -EINVAL; /* *why: the M2M-Node-ID rule it breaks */
                return set_string(&c->node_id, v);
        case K_LATITUDE:
        case K_LONGITUDE:
        case K_ALTITUDE: {
                double *field = k == K_LATITUDE ? &c->loc.lat : k == K_LONGITUDE ? &c->loc.lon : &c->loc.alt;
                double lim = k == K_LATITUDE ? 90 : k == K_LONGITUDE ? 180 : 100000;
                if (!*v) { /* unset */
                        *field = 0;
                        return 0;
                }
                double d;
                if (double_parse(v, &d) < 0)
                        return *why = "not a decimal number", -EINVAL;
                if (d < -lim || d > lim)
                        return *why = k == K_LATITUDE ? "out of range (-90..90)" :
                                      k == K_LONGITUDE ? "out of range (-180..180)" : "out of range (-100000..100000 m)",
                               -EINVAL;
                *field = d;
                return 0;
        }
        case K_MEF_URI: {
                _cleanup_(uri_parts_done) uri_parts_t u = {};
                r = uri_parse(v, &u, why);
                if (r < 0)
                        return r;
                free(c->mef_uri);
                free(c->mef_host);
                free(c->mef_port);
                free(c->mef_base);
                c->mef_uri = TAKE_PTR(u.canonical);
                c->mef_host = TAKE_PTR(u.host);
                c->mef_port = TAKE_PTR(u.port);
                c->mef_base = TAKE_PTR(u.base);
                return 0;
        }
        case K_MEF_MODE: {
                tls_mode_t m = streq(v, "psk") ? TLS_MODE_PSK : streq(v, "cert") ? TLS_MODE_CERT : _TLS_MODE_INVALID;
                if (m < 0)
                        return *why = "must be psk or cert", -EINVAL;
                c->mode = m;
                return 0;
        }
        case K_PSK_IDENTITY:
                if (*v && !id_is_valid(v, MSG_ID_MAX))
                        return *why = "must be 1..255 printable ASCII characters without spaces", -EINVAL;
                return set_optional(&c->psk_identity, v);
        case K_PSK_FILE:
        case K_CERTIFICATE:
        case K_KEY:
        case K_TRUST_ANCHORS: {
                char **field = k == K_PSK_FILE ? &c->psk_file : k == K_CERTIFICATE ? &c->cert_file :
                               k == K_KEY ? &c->key_file : &c->ca_file;
                if (*v && !absolute_path_ok(v))
                        return *why = "must be an absolute path", -EINVAL;
                return set_optional(field, v);
        }
        case K_PSK_CREDENTIAL:
                if (*v && !credential_name_ok(v))
                        return *why = "must be a credential name (1..255 of A-Z a-z 0-9 _ . -, not . or ..)", -EINVAL;
                return set_string(&c->psk_credential, v);
        case K_TLS_MIN:
        case K_TLS_MAX:
                if (tls_version_parse(v, k == K_TLS_MIN ? &c->tls_min : &c->tls_max) < 0)
                        return *why = "must be 1.2 or 1.3", -EINVAL;
                return 0;
        case K_USER:
                if (!user_name_ok(v))
                        return *why = "must be a user name (1..32 of A-Z a-z 0-9 _ . -, not starting with a digit, '.' or '-')", -EINVAL;
                return set_string(&c->service_user, v);
        case K_SEAL_BACKEND: {
                seal_backend_t b = seal_backend_from_string(v);
                if (b < 0)
                        return *why = "must be auto, tpm2 or host", -EINVAL;
                c->seal_backend = b;
                return 0;
        }
        case K_TCTI:
                if (!printable(v, 255))
                        return *why = "must be 1..255 printable ASCII characters", -EINVAL;
                return set_string(&c->tcti, v);
        case K_PCRS:
                if (!pcrs_ok(v))
                        return *why = "must be empty (off) or <bank>:<pcr>[,<pcr>...] with PCRs 0..23, e.g. sha256:0,7", -EINVAL;
                return set_string(&c->pcrs, v);
        case K_STATE_DIR:
        case K_RUNTIME_DIR:
                if (!absolute_path_ok(v))
                        return *why = "must be an absolute path", -EINVAL;
                return set_string(k == K_STATE_DIR ? &c->state_dir : &c->runtime_dir, v);
        case K_LED_STATUS:
        case K_LED_ERROR:
                if (*v && !printable(v, 255))
                        return *why = "must be at most 255 printable ASCII characters", -EINVAL;
                return set_optional(k == K_LED_STATUS ? &c->led_status : &c->led_error, v);
        case K_CONNECT_TIMEOUT ... K_CLOCK_WAIT_MAX: {
                const timing_limit_t *lim = &timing_limits[k - K_CONNECT_TIMEOUT];
                unsigned ms;
                if (duration_parse(v, &ms) < 0)
                        return *why = "not a duration (milliseconds, or a number with ms, s, min or h)", -EINVAL;
                if (ms < lim->min || ms > lim->max)
                        return *why = lim->why, -EINVAL;
                if (k == K_RETRY_AFTER_MAX) {
                        if (ms % 1000)
                                return *why = "must be a whole number of seconds", -EINVAL;
                        ms /= 1000;
                }
                *(unsigned *) ((char *) c + lim->offset) = ms;
                return 0;
        }
        }
        return -EINVAL;
}

static bool section_known(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(sections); i++)
                if (streq(name, sections[i]))
                        return true;
        return false;
}

static int handler(void *user, const char *section, const char *name, const char *value) {
        load_state_t *s = user;
        if (s->indented && s->key_in_section) {
                fail(s, -EINVAL, "%s:%u: [%s] %s: continuation lines are not supported (remove the indentation)",
                     s->file, s->line, section, name);
                return 1;
        }
        s->key_in_section = true;
        if (!*section) {
                fail(s, -EINVAL, "%s:%u: %s: key outside of any section", s->file, s->line, name);
                return 1;
        }
        if (!section_known(section))
                return 1; /* reported by the reader at the section header */
        for (int k = 0; k < _K_MAX; k++) {
                if (!streq(section, keys[k].section) || !streq(name, keys[k].name))
                        continue;
                const char *why = NULL;
                int r = key_parse(s->c, k, value, &why);
                if (r == -ENOMEM)
                        fail(s, r, "%s:%u: [%s] %s: out of memory", s->file, s->line, section, name);
                else if (r < 0)
                        fail(s, r, "%s:%u: [%s] %s: %s", s->file, s->line, section, name, why);
                else if (!*value)
                        s->origin[k] = (origin_t) {}; /* reset to unset/default */
                else
                        s->origin[k] = (origin_t) { .file = s->file, .line = s->line };
                return 1;
        }
        fail(s, -EINVAL, "%s:%u: [%s] %s: unknown key", s->file, s->line, section, name);
        return 1;
}

/* fgets-style reader for inih that counts lines and checks what inih does not. */
static char *reader(char *str, int num, void *stream) {
        load_state_t *s = stream;
        _cleanup_free_ char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, s->f);
        if (n < 0)
                return NULL;
        s->line++;
        s->indented = false;
        str[0] = 0; /* a refused line reaches inih as an empty one */
        if (memchr(line, 0, (size_t) n)) {
                fail(s, -EINVAL, "%s:%u: contains a NUL byte", s->file, s->line);
                return str;
        }
        size_t content = (size_t) n;
        if (content > 0 && line[content - 1] == '\n')
                content--;
        if (content > 0 && line[content - 1] == '\r')
                content--;
        if (num < 3 || content > (size_t) num - 3) { /* inih needs room for "\r\n\0" */
                fail(s, -EINVAL, "%s:%u: line too long (at most %d characters)", s->file, s->line, num - 3);
                return str;
        }
        memcpy(str, line, (size_t) n + 1);
        s->indented = line[0] == ' ' || line[0] == '\t';
        const char *p = line + strspn(line, " \t");
        if (*p == '[') {
                s->key_in_section = false;
                size_t l = strcspn(p + 1, "]");
                if (p[1 + l] == ']') {
                        char name[64];
                        snprintf(name, sizeof name, "%.*s", (int) MIN(l, sizeof name - 1), p + 1);
                        if (!section_known(name))
                                fail(s, -EINVAL, "%s:%u: [%s]: unknown section", s->file, s->line, name);
                }
        }
        return str;
}

static int parse_file(load_state_t *s, const char *path) {
        if (s->n_files >= ELEMENTSOF(s->files)) {
                fail(s, -E2BIG, "%s: too many drop-in files (at most %u)", path, DROPINS_MAX);
                return -E2BIG;
        }
        char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        s->files[s->n_files++] = copy;

        _cleanup_fclose_ FILE *f = fopen(path, "re");
        if (!f) {
                int r = negative_errno();
                fail(s, r, "%s: cannot open: %s", path, strerror(-r));
                return r;
        }
        struct stat st;
        if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
                fail(s, -EINVAL, "%s: not a regular file", path);
                return -EINVAL;
        }
        s->f = f;
        s->file = copy;
        s->line = 0;
        s->indented = s->key_in_section = false;
        int r = ini_parse_stream(reader, s, handler, s);
        s->f = NULL;
        if (r > 0 && (s->error >= 0 || (unsigned) r < s->error_line)) {
                /* inih's own syntax error came first: replace ours. */
                s->error = 0;
                s->line = (unsigned) r;
                fail(s, -EINVAL, "%s:%d: syntax error (expected [section] or key = value)", copy, r);
        } else if (r < 0 && s->error >= 0)
                fail(s, -ENOMEM, "%s: out of memory", copy);
        return s->error;
}

static int dropin_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".conf");
}

static int name_cmp(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

static int parse_dropins(load_state_t *s, const char *path) {
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s.d", path) < 0)
                return -ENOMEM;
        struct dirent **list = NULL;
        int n = scandir(dir, &list, dropin_filter, name_cmp);
        if (n < 0) {
                int r = negative_errno();
                if (r == -ENOENT)
                        return 0;
                fail(s, r, "%s: cannot read drop-in directory: %s", dir, strerror(-r));
                return r;
        }
        int r = 0;
        for (int i = 0; i < n; i++) {
                if (r == 0) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", dir, list[i]->d_name) < 0)
                                r = -ENOMEM;
                        else
                                r = parse_file(s, p);
                }
                free(list[i]);
        }
        free(list);
        return r;
}

static const char *file_error(int r) {
        switch (r) {
        case -ENOENT:
                return "does not exist";
        case -EACCES:
                return "is not readable (permission denied)";
        case -EPERM:
                return "is readable by group or others (chmod 0600)";
        case -EBADFD:
        case -EISDIR:
                return "is not a regular file";
        case -ENODATA:
                return "is empty";
        case -EFBIG:
                return "is too large";
        default:
                return strerror(-r);
        }
}

/* Refuse FIFOs and devices before opening: opening a FIFO would block. */
static int regular_file_check(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return negative_errno();
        return S_ISREG(st.st_mode) ? 0 : -EBADFD;
}

static int check_psk_file(load_state_t *s, int k, const char *path) {
        _cleanup_secret_ secret_t sec = {};
        int r = regular_file_check(path);
        if (r == 0)
                r = secret_file_read(path, PSK_FILE_MAX, &sec);
        if (r == -EFBIG) {
                fail_key(s, -EINVAL, k, "%s is too large (the Kpm is 16..64 bytes as hex)", path);
                return -EINVAL;
        }
        if (r < 0) {
                fail_key(s, r, k, "%s %s", path, file_error(r));
                return r;
        }
        size_t len = sec.len;
        if (len > 0 && sec.data[len - 1] == '\n')
                len--;
        if (len > 0 && sec.data[len - 1] == '\r')
                len--;
        if (len / 2 > MSG_KEY_MAX) {
                fail_key(s, -EINVAL, k, "%s: the Kpm is longer than %u bytes", path, MSG_KEY_MAX);
                return -EINVAL;
        }
        char hex[PSK_FILE_MAX + 1];
        uint8_t key[MSG_KEY_MAX];
        size_t klen = 0;
        memcpy(hex, sec.data, len);
        hex[len] = 0;
        /* hex_decode stops at a NUL: refuse one rather than decode a shorter key. */
        r = memchr(hex, 0, len) ? -EINVAL : hex_decode(hex, key, sizeof key, &klen);
        erase(hex, sizeof hex);
        erase(key, sizeof key);
        if (r < 0) {
                fail_key(s, -EINVAL, k, "%s does not hold the Kpm as hex", path);
                return -EINVAL;
        }
        if (klen < MSG_KEY_MIN) {
                fail_key(s, -EINVAL, k, "%s: the Kpm is %zu bytes, at least %u are needed", path, klen,
                         MSG_KEY_MIN);
                return -EINVAL;
        }
        return 0;
}

static int check_key_file(load_state_t *s) {
        const char *path = s->c->key_file;
        _cleanup_secret_ secret_t sec = {};
        int r = regular_file_check(path);
        if (r == 0)
                r = secret_file_read(path, PEM_FILE_MAX, &sec);
        if (r < 0) {
                fail_key(s, r, K_KEY, "%s %s", path, file_error(r));
                return r;
        }
        if (!memmem(sec.data, sec.len, "-----BEGIN ", 11) || !memmem(sec.data, sec.len, "PRIVATE KEY-----", 16)) {
                fail_key(s, -EINVAL, K_KEY, "%s is not a PEM private key", path);
                return -EINVAL;
        }
        return 0;
}

static int check_pem_file(load_state_t *s, int k, const char *path) {
        _cleanup_free_ char *data = NULL;
        int r = regular_file_check(path);
        if (r == 0)
                r = file_read_all(path, PEM_FILE_MAX, &data, NULL);
        if (r < 0) {
                fail_key(s, r, k, "%s %s", path, file_error(r));
                return r;
        }
        if (!strstr(data, "-----BEGIN CERTIFICATE-----")) {
                fail_key(s, -EINVAL, k, "%s holds no PEM certificate", path);
                return -EINVAL;
        }
        return 0;
}

/* $CREDENTIALS_DIRECTORY/<psk_credential> when it is there and not empty: *ret (NULL when not). */
static int credential_find(const agent_config_t *c, char **ret) {
        *ret = NULL;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir || !c->psk_credential || !*c->psk_credential)
                return 0;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, c->psk_credential) < 0)
                return -ENOMEM;
        /* Blank (msce-agent.service's SetCredential= fallback is a newline): none. */
        struct stat st;
        if (stat(path, &st) < 0)
                return 0;
        if (S_ISREG(st.st_mode) && st.st_size <= 2) {
                _cleanup_free_ char *text = NULL;
                if (file_read_all(path, 2, &text, NULL) < 0 || strspn(text, "\r\n") == strlen(text))
                        return 0;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

/* The credential in systemd's credential store, where LoadCredentialEncrypted= finds it. */
static int credstore_find(const agent_config_t *c, char **ret) {
        static const char *const dirs[] = {
                "/etc/credstore.encrypted", "/run/credstore.encrypted", "/usr/lib/credstore.encrypted",
                "/etc/credstore",           "/run/credstore",           "/usr/lib/credstore",
        };
        *ret = NULL;
        if (!c->psk_credential || !*c->psk_credential)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", dirs[i], c->psk_credential) < 0)
                        return -ENOMEM;
                /* /etc/credstore* are root's (0700): another user cannot see into them, and
                 * takes a credential there as given (the service gets the blank fallback and
                 * says so at its start when it is not). */
                if (access(path, F_OK) == 0 || errno == EACCES) {
                        *ret = TAKE_PTR(path);
                        return 0;
                }
        }
        return 0;
}

static int validate(load_state_t *s) {
        agent_config_t *c = s->c;
        origin_t *o = s->origin;

        if (!c->node_id)
                fail_key(s, -EINVAL, K_NODE_ID, "required");
        if (!c->mef_uri)
                fail_key(s, -EINVAL, K_MEF_URI, "required");
        if (o[K_LATITUDE].line && !o[K_LONGITUDE].line)
                fail_key(s, -EINVAL, K_LATITUDE, "longitude is missing (give both or neither)");
        if (o[K_LONGITUDE].line && !o[K_LATITUDE].line)
                fail_key(s, -EINVAL, K_LONGITUDE, "latitude is missing (give both or neither)");
        if (o[K_ALTITUDE].line && !o[K_LATITUDE].line)
                fail_key(s, -EINVAL, K_ALTITUDE, "needs latitude and longitude");
        if (c->tls_min > c->tls_max)
                fail_key(s, -EINVAL, o[K_TLS_MIN].line ? K_TLS_MIN : K_TLS_MAX,
                         "tls_min_version %s is above tls_max_version %s", tls_version_str(c->tls_min),
                         tls_version_str(c->tls_max));
        if (c->backoff_min_ms > c->backoff_max_ms)
                fail_key(s, -EINVAL, o[K_BACKOFF_MIN].line ? K_BACKOFF_MIN : K_BACKOFF_MAX,
                         "backoff_min is above backoff_max");
        /* The Kpm: the systemd credential when the service manager passes one (not empty:
         * msce-agent.service's SetCredential= fallback is empty), else psk_file. */
        _cleanup_free_ char *credential = NULL;
        if (c->mode == TLS_MODE_PSK && credential_find(c, &credential) < 0)
                return fail(s, -ENOMEM, "%s: out of memory", c->path), -ENOMEM;
        if (c->mode == TLS_MODE_PSK) {
                if (!c->psk_identity)
                        fail_key(s, -EINVAL, K_PSK_IDENTITY, "required (mode = psk)");
                /* Outside the service (an operator's --check-config, mscectl check) the credential
                 * is only in the credential store: valid, read when systemd starts the agent. */
                if (!c->psk_file && !credential && credstore_find(c, &c->kpm_credstore) < 0)
                        return fail(s, -ENOMEM, "%s: out of memory", c->path), -ENOMEM;
                if (!c->psk_file && !credential && !c->kpm_credstore)
                        fail_key(s, -EINVAL, K_PSK_FILE, "required (mode = psk) when systemd passes no credential %s",
                                 c->psk_credential[0] ? c->psk_credential : "(psk_credential is empty)");
        } else {
                if (!c->cert_file)
                        fail_key(s, -EINVAL, K_CERTIFICATE, "required (mode = cert)");
                if (!c->key_file)
                        fail_key(s, -EINVAL, K_KEY, "required (mode = cert)");
                if (!c->ca_file)
                        fail_key(s, -EINVAL, K_TRUST_ANCHORS, "required (mode = cert)");
        }
        if (s->error < 0)
                return s->error;

        /* An unset coordinate is 0 in the struct: loc is complete only with both. */
        c->has_loc = o[K_LATITUDE].line && o[K_LONGITUDE].line;
        c->loc.has_alt = c->has_loc && o[K_ALTITUDE].line;

        bool from_credential = credential;
        if (c->mode == TLS_MODE_PSK && c->kpm_credstore && !c->psk_file && !credential)
                return 0; /* nothing to read here */
        if (c->mode == TLS_MODE_PSK) {
                c->kpm_path = credential ? TAKE_PTR(credential) : strdup(c->psk_file);
                if (!c->kpm_path)
                        return fail(s, -ENOMEM, "%s: out of memory", c->path), -ENOMEM;
        }
        if (s->flags & AGENT_CONFIG_NO_SECRETS)
                return 0;
        if (c->mode == TLS_MODE_PSK)
                return check_psk_file(s, from_credential ? K_PSK_CREDENTIAL : K_PSK_FILE, c->kpm_path);
        int r = check_key_file(s);
        if (r == 0)
                r = check_pem_file(s, K_CERTIFICATE, c->cert_file);
        if (r == 0)
                r = check_pem_file(s, K_TRUST_ANCHORS, c->ca_file);
        return r;
}

static int defaults(agent_config_t *c, const char *path) {
        *c = (agent_config_t) {
                .mode = TLS_MODE_PSK,
                .tls_min = TLS_VERSION_1_2,
                .tls_max = TLS_VERSION_1_3,
                .seal_backend = SEAL_AUTO,
                .connect_timeout_ms = 10000,
                .exchange_timeout_ms = 30000,
                .backoff_min_ms = 1000,
                .backoff_max_ms = 600000,
                .rejected_retry_ms = 3600000,
                .initial_delay_max_ms = 0,
                .retry_after_max_s = 3600,
                .clock_wait_max_ms = 300000,
        };
        c->path = strdup(path);
        c->service_user = strdup("cse");
        c->psk_credential = strdup(AGENT_PSK_CREDENTIAL_DEFAULT);
        c->tcti = strdup("device:/dev/tpmrm0");
        c->pcrs = strdup("");
        c->state_dir = strdup("/var/lib/msce");
        c->runtime_dir = strdup("/run/msce");
        if (!c->path || !c->service_user || !c->psk_credential || !c->tcti || !c->pcrs || !c->state_dir || !c->runtime_dir)
                return -ENOMEM;
        return 0;
}

int agent_config_load(const char *path, agent_config_t *ret, char *err, size_t err_size) {
        return agent_config_load_flags(path, 0, ret, err, err_size);
}

int agent_config_load_flags(const char *path, unsigned flags, agent_config_t *ret, char *err, size_t err_size) {
        char dummy[1];
        if (!err || err_size == 0) {
                err = dummy;
                err_size = sizeof dummy;
        }
        err[0] = 0;
        if (!ret)
                return -EINVAL;
        if (!path)
                path = AGENT_CONFIG_DEFAULT;

        _cleanup_(agent_config_done) agent_config_t c = {};
        load_state_t s = { .c = &c, .err = err, .err_size = err_size, .flags = flags };
        int r = defaults(&c, path);
        if (r < 0) {
                snprintf(err, err_size, "%s: out of memory", path);
                return r;
        }
        r = parse_file(&s, path);
        if (r == 0)
                r = parse_dropins(&s, path);
        if (r == 0)
                r = validate(&s);
        for (size_t i = 0; i < s.n_files; i++)
                free(s.files[i]);
        if (r < 0)
                return r;
        *ret = c;
        c = (agent_config_t) {};
        return 0;
}

void agent_config_done(agent_config_t *c) {
        if (!c)
                return;
        char **strings[] = {
                &c->path, &c->node_id, &c->mef_uri, &c->mef_host, &c->mef_port, &c->mef_base,
                &c->psk_identity, &c->psk_file, &c->psk_credential, &c->kpm_path, &c->kpm_credstore, &c->cert_file, &c->key_file, &c->ca_file,
                &c->service_user, &c->tcti, &c->pcrs, &c->state_dir, &c->runtime_dir,
                &c->led_status, &c->led_error,
        };
        for (size_t i = 0; i < ELEMENTSOF(strings); i++) {
                free(*strings[i]);
                *strings[i] = NULL;
        }
}

/* "key = value", or "key =" for an empty value (no trailing blank in golden files). */
static void kv(FILE *f, const char *name, const char *value) {
        if (value && *value)
                fprintf(f, "%s = %s\n", name, value);
        else
                fprintf(f, "%s =\n", name);
}

void agent_config_dump(const agent_config_t *c, FILE *f) {
        char lat[32] = "", lon[32] = "", alt[32] = "", d[24];

        if (c->has_loc) {
                double_format(c->loc.lat, lat);
                double_format(c->loc.lon, lon);
                if (c->loc.has_alt)
                        double_format(c->loc.alt, alt);
        }
        fprintf(f, "[node]\n");
        kv(f, "id", c->node_id);
        kv(f, "latitude", lat);
        kv(f, "longitude", lon);
        kv(f, "altitude", alt);

        fprintf(f, "\n[mef]\n");
        kv(f, "uri", c->mef_uri);
        kv(f, "mode", c->mode == TLS_MODE_CERT ? "cert" : "psk");
        kv(f, "psk_identity", c->psk_identity);
        kv(f, "psk_file", c->psk_file);
        kv(f, "psk_credential", c->psk_credential);
        kv(f, "certificate", c->cert_file);
        kv(f, "key", c->key_file);
        kv(f, "trust_anchors", c->ca_file);
        kv(f, "tls_min_version", tls_version_str(c->tls_min));
        kv(f, "tls_max_version", tls_version_str(c->tls_max));

        fprintf(f, "\n[consumer]\n");
        kv(f, "user", c->service_user);

        fprintf(f, "\n[seal]\n");
        kv(f, "backend", seal_backend_to_string(c->seal_backend));
        kv(f, "tcti", c->tcti);
        kv(f, "pcrs", c->pcrs);
        kv(f, "state_dir", c->state_dir);
        kv(f, "runtime_dir", c->runtime_dir);

        fprintf(f, "\n[leds]\n");
        kv(f, "status", c->led_status);
        kv(f, "error", c->led_error);

        fprintf(f, "\n[timing]\n");
        const struct {
                const char *name;
                unsigned ms;
        } t[] = {
                { "connect_timeout", c->connect_timeout_ms },
                { "exchange_timeout", c->exchange_timeout_ms },
                { "backoff_min", c->backoff_min_ms },
                { "backoff_max", c->backoff_max_ms },
                { "rejected_retry", c->rejected_retry_ms },
                { "initial_delay_max", c->initial_delay_max_ms },
                { "retry_after_max", c->retry_after_max_s * 1000u },
                { "clock_wait_max", c->clock_wait_max_ms },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                duration_format(t[i].ms, d);
                kv(f, t[i].name, d);
        }
}

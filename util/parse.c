/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/ids.h"
#include "util/parse.h"
#include "util/util.h"

#define URI_MAX 1024u

static int why(const char **ret_why, const char *reason) {
        if (ret_why)
                *ret_why = reason;
        return -EINVAL;
}

int duration_parse(const char *s, usec_t *ret) {
        size_t digits = strspn(s, "0123456789");
        if (digits == 0 || digits > 10)
                return -EINVAL;
        char num[11];
        memcpy(num, s, digits);
        num[digits] = 0;
        unsigned long long v;
        int r = parse_uint(num, 9999999999ull, &v);
        if (r < 0)
                return r;
        static const struct {
                const char *suffix;
                usec_t usec;
        } units[] = {
                { "", 1000 }, { "ms", 1000 }, { "s", 1000000 }, { "min", 60000000 }, { "h", 3600000000ull },
                { "d", 86400000000ull },
        };
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(s + digits, units[i].suffix)) {
                        if (v > UINT64_MAX / units[i].usec)
                                return -ERANGE;
                        *ret = v * units[i].usec;
                        return 0;
                }
        return -EINVAL;
}

void duration_format(usec_t usec, char out[32]) {
        static const struct {
                const char *suffix;
                usec_t usec;
        } units[] = {
                { "h", 3600000000ull }, { "min", 60000000 }, { "s", 1000000 }, { "ms", 1000 },
        };
        usec_t ms = usec / 1000 * 1000;
        if (ms == 0) {
                snprintf(out, 32, "0");
                return;
        }
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (ms % units[i].usec == 0) {
                        snprintf(out, 32, "%llu%s", (unsigned long long) (ms / units[i].usec), units[i].suffix);
                        return;
                }
}

int double_parse(const char *s, double *ret) {
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

void double_format(double v, char out[32]) {
        for (int prec = 1; prec <= 17; prec++) {
                snprintf(out, 32, "%.*g", prec, v);
                if (strtod(out, NULL) == v)
                        return;
        }
}

bool printable_ok(const char *s, size_t max) {
        const char *p = s;
        while ((unsigned char) *p >= 0x20 && (unsigned char) *p <= 0x7e)
                p++;
        size_t n = (size_t) (p - s);
        return *p == 0 && n >= 1 && n <= max;
}

int path_check(const char *s, unsigned flags, const char **ret_why) {
        if (!(flags & PATH_ABSOLUTE))
                return printable_ok(s, PATH_MAX - 1) ? 0 : why(ret_why, "expected a file path");
        if (s[0] != '/' || !printable_ok(s, PATH_MAX - 1))
                return why(ret_why, "must be an absolute path");
        /* No ".." component: paths are meant literally. */
        for (const char *p = s; (p = strstr(p, "..")); p += 2)
                if (p[-1] == '/' && (p[2] == '/' || p[2] == 0))
                        return why(ret_why, "must be an absolute path");
        return 0;
}

int user_name_check(const char *s, const char **ret_why) {
        size_t n = strlen(s);
        bool ok = n >= 1 && n <= 32 && (isalpha((unsigned char) s[0]) || s[0] == '_');
        for (size_t i = 1; ok && i < n; i++)
                ok = isalnum((unsigned char) s[i]) || strchr("_.-", s[i]);
        return ok ? 0 : why(ret_why, "must be a user name (1..32 of A-Z a-z 0-9 _ . -, not starting with a digit, '.' or '-')");
}

int credential_name_check(const char *s, const char **ret_why) {
        if (!*s)
                return 0;
        bool ok = strlen(s) <= 255 && !streq(s, ".") && !streq(s, "..");
        for (const char *p = s; ok && *p; p++)
                ok = isalnum((unsigned char) *p) || strchr("_.-", *p);
        return ok ? 0 : why(ret_why, "must be a credential name (1..255 of A-Z a-z 0-9 _ . -, not . or ..)");
}

static const char *const pcr_banks[_PCR_BANK_MAX] = {
        [PCR_BANK_SHA1] = "sha1",
        [PCR_BANK_SHA256] = "sha256",
        [PCR_BANK_SHA384] = "sha384",
        [PCR_BANK_SHA512] = "sha512",
};

int pcr_list_parse(const char *s, pcr_list_t *ret, const char **ret_why) {
        static const char bad[] = "must be empty (off) or <bank>:<pcr>[,<pcr>...] with PCRs 0..23, e.g. sha256:0,7";
        pcr_list_t l = {};
        for (const char *p = s; *p; ) {
                size_t n = strcspn(p, ":");
                int bank = -1;
                for (int i = 0; i < _PCR_BANK_MAX; i++)
                        if (strlen(pcr_banks[i]) == n && strncmp(p, pcr_banks[i], n) == 0)
                                bank = i;
                if (p[n] != ':' || bank < 0)
                        return why(ret_why, bad);
                for (size_t i = 0; i < l.n; i++)
                        if (l.sel[i].bank == (pcr_bank_t) bank)
                                return why(ret_why, "a bank is named twice");
                l.sel[l.n].bank = (pcr_bank_t) bank;
                uint32_t *mask = &l.sel[l.n++].mask;
                p += n + 1;
                for (;;) {
                        size_t d = strspn(p, "0123456789");
                        if (d == 0 || d > 2)
                                return why(ret_why, bad);
                        unsigned i = (unsigned) (p[0] - '0');
                        if (d == 2)
                                i = i * 10 + (unsigned) (p[1] - '0');
                        if (i > PCR_INDEX_MAX || (*mask & (1u << i)))
                                return why(ret_why, bad);
                        *mask |= 1u << i;
                        p += d;
                        if (*p != ',')
                                break;
                        p++;
                }
                if (*p == '+' && p[1])
                        p++;
                else if (*p)
                        return why(ret_why, bad);
        }
        if (ret)
                *ret = l;
        return 0;
}

int pcr_list_check(const char *s, const char **ret_why) {
        return pcr_list_parse(s, NULL, ret_why);
}

static bool uri_path_char_ok(char c) {
        return isalnum((unsigned char) c) || strchr("-._~!$&'()*+,;=:@%/", c);
}

void https_uri_done(https_uri_t *u) {
        free(u->host);
        free(u->port);
        free(u->base);
        free(u->canonical);
        *u = (https_uri_t) {};
}

static void ascii_lower(char *s) {
        for (; *s; s++)
                *s = (char) tolower((unsigned char) *s);
}

int https_uri_parse(const char *s, https_uri_t *ret, const char **ret_why) {
        _cleanup_(https_uri_done) https_uri_t u = {};
        if (strlen(s) > URI_MAX)
                return why(ret_why, "too long");
        if (strncasecmp(s, "https://", 8) != 0)
                return why(ret_why, "must be https://host[:port][/base]");
        const char *a = s + 8;
        size_t alen = strcspn(a, "/?#");
        if (strpbrk(a, "?#"))
                return why(ret_why, "query and fragment are not allowed");
        if (memchr(a, '@', alen))
                return why(ret_why, "user information is not allowed");

        const char *port = NULL;
        if (a[0] == '[') {
                const char *close = memchr(a, ']', alen);
                if (!close)
                        return why(ret_why, "invalid IPv6 address");
                size_t hlen = (size_t) (close - a - 1);
                u.host = strndup(a + 1, hlen);
                if (!u.host)
                        return -ENOMEM;
                struct in6_addr a6;
                if (hlen == 0 || hlen > 45 || inet_pton(AF_INET6, u.host, &a6) != 1)
                        return why(ret_why, "invalid IPv6 address");
                if (close + 1 < a + alen) {
                        if (close[1] != ':')
                                return why(ret_why, "invalid host");
                        port = close + 2;
                }
        } else {
                const char *colon = memchr(a, ':', alen);
                u.host = strndup(a, colon ? (size_t) (colon - a) : alen);
                if (!u.host)
                        return -ENOMEM;
                /* the host becomes the KeID's MEF-FQDN: the KeID rules apply */
                if (ids_check_host(u.host, NULL) < 0)
                        return why(ret_why, "invalid host (a DNS name, an IPv4 address or [IPv6])");
                if (colon)
                        port = colon + 1;
        }
        ascii_lower(u.host);

        unsigned long long pn = 443;
        if (port) {
                char buf[8];
                size_t plen = (size_t) (a + alen - port);
                if (plen == 0 || plen >= sizeof buf)
                        return why(ret_why, "invalid port (1..65535)");
                memcpy(buf, port, plen);
                buf[plen] = 0;
                if (parse_uint(buf, 65535, &pn) < 0 || pn == 0)
                        return why(ret_why, "invalid port (1..65535)");
        }
        if (asprintf(&u.port, "%llu", pn) < 0) {
                u.port = NULL;
                return -ENOMEM;
        }

        const char *path = a + alen;
        size_t plen = strlen(path);
        while (plen > 0 && path[plen - 1] == '/')
                plen--;
        u.base = strndup(path, plen);
        if (!u.base)
                return -ENOMEM;
        for (const char *p = u.base; *p; p++)
                if (!uri_path_char_ok(*p))
                        return why(ret_why, "invalid character in the path");
        for (const char *seg = u.base; *seg; ) {
                seg++; /* skip '/' */
                size_t l = strcspn(seg, "/");
                if (l == 0 || (l == 1 && seg[0] == '.') || (l == 2 && seg[0] == '.' && seg[1] == '.'))
                        return why(ret_why, "empty, '.' or '..' path segment");
                seg += l;
        }

        bool v6 = strchr(u.host, ':');
        if (asprintf(&u.canonical, "https://%s%s%s%s%s%s", v6 ? "[" : "", u.host, v6 ? "]" : "",
                     pn == 443 ? "" : ":", pn == 443 ? "" : u.port, u.base) < 0) {
                u.canonical = NULL;
                return -ENOMEM;
        }
        *ret = u;
        u = (https_uri_t) {};
        return 0;
}

bool id_is_valid(const char *s, size_t max) {
        size_t n = 0;
        for (; s[n]; n++)
                if ((unsigned char) s[n] < 0x21 || (unsigned char) s[n] > 0x7e)
                        return false;
        return n >= 1 && n <= max;
}

int parse_uint(const char *s, unsigned long long max, unsigned long long *ret) {
        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        unsigned long long v = 0;
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                unsigned d = (unsigned) (*p - '0');
                if (d > max || v > (max - d) / 10) /* d > max: max - d would wrap */
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

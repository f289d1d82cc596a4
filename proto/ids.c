/* SPDX-License-Identifier: MIT */
/* oneM2M identifiers by their syntax (proto/ids.h). Nothing here allocates, logs or depends on
 * anything but libc: the module is fuzzed (tests/fuzz/fuzz-ids.c). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/ids.h"

#define STR_(x) #x
#define STR(x) STR_(x)

static int fail(const char **ret_why, int r, const char *why) {
        if (ret_why)
                *ret_why = why;
        return r;
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_alnum(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool is_hex(char c) {
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* RFC 3986 unreserved */
static bool is_unreserved(char c) {
        return is_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* Length up to max + 1 and the rules every kind shares: not empty, not too long, no space, no
 * other control character, ASCII only. */
static int common(const char *s, size_t max, const char *too_long, size_t *ret_n, const char **ret_why) {
        if (!s)
                return fail(ret_why, -EINVAL, "missing");
        size_t n = strnlen(s, max + 1);
        if (n == 0)
                return fail(ret_why, -EINVAL, "empty");
        if (n > max)
                return fail(ret_why, -E2BIG, too_long);
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];
                if (c == ' ')
                        return fail(ret_why, -EINVAL, "contains a space");
                if (c < 0x20 || c == 0x7f)
                        return fail(ret_why, -EINVAL, "contains a control character");
                if (c > 0x7f)
                        return fail(ret_why, -EINVAL, "contains a non-ASCII character");
        }
        *ret_n = n;
        return 0;
}

/* s (n bytes, not NUL-terminated) is an address of family af in text form. */
static bool is_inet(int af, const char *s, size_t n) {
        char buf[64];
        struct in6_addr a;
        if (n >= sizeof buf)
                return false;
        memcpy(buf, s, n);
        buf[n] = 0;
        return inet_pton(af, buf, &a) == 1;
}

static bool is_dot_segment(const char *s, size_t n) {
        return (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

/* ---- CSE-ID and target ID ---- */

#define CSE_ID_RULE "not a CSE-ID ('/' and A-Z a-z 0-9 - . _ ~)"
#define TARGET_RULE "not a target ID (/<CSE-ID> or /<CSE-ID>/<resource>, A-Z a-z 0-9 - . _ ~)"

/* /<CSE-ID>, or for a target ID /<CSE-ID>[/<resource>]; each segment 1*unreserved, not "." or "..". */
static int sp_relative_check(const char *s, size_t max, const char *too_long, bool target, const char **ret_why) {
        size_t n;
        int r = common(s, max, too_long, &n, ret_why);
        if (r < 0)
                return r;
        if (s[0] != '/')
                return fail(ret_why, -EINVAL, target ? "not an SP-relative target ID (must start with '/')"
                                                     : "not an SP-relative CSE-ID (must start with '/')");
        if (!target && memchr(s + 1, '/', n - 1))
                return fail(ret_why, -EINVAL, "not a CSE-ID ('/' inside)");
        const char *p = s + 1, *end = s + n;
        for (unsigned seg = 0; p <= end; seg++) {
                if (seg == 2)
                        return fail(ret_why, -EINVAL, "more than two segments (/<CSE-ID>/<resource>)");
                const char *slash = memchr(p, '/', (size_t) (end - p));
                size_t l = slash ? (size_t) (slash - p) : (size_t) (end - p);
                if (l == 0)
                        return fail(ret_why, -EINVAL, "empty segment");
                if (is_dot_segment(p, l))
                        return fail(ret_why, -EINVAL, "'.' or '..' segment");
                for (size_t i = 0; i < l; i++)
                        if (!is_unreserved(p[i]))
                                return fail(ret_why, -EINVAL, target ? TARGET_RULE : CSE_ID_RULE);
                p += l + 1;
        }
        return 0;
}

int ids_check_cse_id(const char *s, const char **ret_why) {
        return sp_relative_check(s, IDS_CSE_ID_MAX, "too long (max " STR(IDS_CSE_ID_MAX) ")", false, ret_why);
}

int ids_check_target_id(const char *s, const char **ret_why) {
        return sp_relative_check(s, IDS_TARGET_ID_MAX, "too long (max " STR(IDS_TARGET_ID_MAX) ")", true, ret_why);
}

/* ---- M2M-Node-ID ---- */

#define NODE_RULE "not an M2M-Node-ID (A-Z a-z 0-9 - . _ ~ : @)"

/* urn:<NID>:<NSS> (RFC 8141), s starting with "urn:" */
static int urn_check(const char *s, size_t n, const char **ret_why) {
        static const char rule[] = "not a URN (urn:<NID>:<NSS>, NID 2..32 letters, digits, '-')";
        const char *nid = s + 4, *end = s + n;
        const char *colon = memchr(nid, ':', (size_t) (end - nid));
        if (!colon)
                return fail(ret_why, -EINVAL, rule);
        size_t l = (size_t) (colon - nid);
        if (l < 2 || l > 32 || nid[0] == '-' || nid[l - 1] == '-')
                return fail(ret_why, -EINVAL, rule);
        for (size_t i = 0; i < l; i++)
                if (!is_alnum(nid[i]) && nid[i] != '-')
                        return fail(ret_why, -EINVAL, rule);
        if (colon + 1 == end)
                return fail(ret_why, -EINVAL, rule);
        return 0;
}

/* digits and dots only: an OID */
static int oid_check(const char *s, size_t n, const char **ret_why) {
        static const char rule[] = "not an OID (at least two arcs of digits separated by single dots)";
        unsigned arcs = 0;
        size_t l = 0;
        for (size_t i = 0; i <= n; i++) {
                if (i == n || s[i] == '.') {
                        if (l == 0)
                                return fail(ret_why, -EINVAL, rule);
                        arcs++;
                        l = 0;
                } else
                        l++;
        }
        return arcs >= 2 ? 0 : fail(ret_why, -EINVAL, rule);
}

int ids_check_node_id(const char *s, const char **ret_why) {
        size_t n;
        int r = common(s, IDS_NODE_ID_MAX, "too long (max " STR(IDS_NODE_ID_MAX) ")", &n, ret_why);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (!is_unreserved(s[i]) && s[i] != ':' && s[i] != '@')
                        return fail(ret_why, -EINVAL, s[i] == '/' ? "not an M2M-Node-ID (contains '/')" : NODE_RULE);
        if (!is_alnum(s[0]))
                return fail(ret_why, -EINVAL, "not an M2M-Node-ID (must start with a letter or a digit)");
        if (n >= 4 && strncasecmp(s, "urn:", 4) == 0)
                return urn_check(s, n, ret_why);
        if (strspn(s, "0123456789.") == n && memchr(s, '.', n))
                return oid_check(s, n, ret_why);
        return 0;
}

/* ---- hosts ---- */

#define HOST_RULE "not a host name or IP address (RFC 1123: labels of letters, digits, '-')"

static int host_check(const char *s, size_t n, bool lower, const char **ret_why) {
        if (n == 0)
                return fail(ret_why, -EINVAL, "empty host");
        if (n > IDS_HOST_MAX)
                return fail(ret_why, -E2BIG, "host too long (max " STR(IDS_HOST_MAX) ")");
        if (memchr(s, ':', n)) {
                for (size_t i = 0; i < n; i++) {
                        if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
                                return fail(ret_why, -EINVAL, "not an IPv6 address");
                        if (lower && s[i] >= 'A' && s[i] <= 'F')
                                return fail(ret_why, -EINVAL, "host not in lower case");
                }
                return is_inet(AF_INET6, s, n) ? 0 : fail(ret_why, -EINVAL, "not an IPv6 address");
        }
        const char *label = s, *end = s + n;
        for (;;) {
                const char *dot = memchr(label, '.', (size_t) (end - label));
                size_t l = dot ? (size_t) (dot - label) : (size_t) (end - label);
                if (l == 0)
                        return fail(ret_why, -EINVAL, "host has an empty label");
                if (l > 63)
                        return fail(ret_why, -EINVAL, "host has a label longer than 63 characters");
                for (size_t i = 0; i < l; i++) {
                        if (!is_alnum(label[i]) && label[i] != '-')
                                return fail(ret_why, -EINVAL, HOST_RULE);
                        if (lower && label[i] >= 'A' && label[i] <= 'Z')
                                return fail(ret_why, -EINVAL, "host not in lower case");
                }
                if (label[0] == '-' || label[l - 1] == '-')
                        return fail(ret_why, -EINVAL, "host has a label starting or ending with '-'");
                if (!dot) {
                        /* An all-numeric last label makes an IPv4 address or nothing. */
                        if (strspn(label, "0123456789") >= l && !is_inet(AF_INET, s, n))
                                return fail(ret_why, -EINVAL, "not an IPv4 address");
                        return 0;
                }
                label = dot + 1;
        }
}

int ids_check_host(const char *s, const char **ret_why) {
        size_t n;
        int r = common(s, IDS_HOST_MAX, "too long (max " STR(IDS_HOST_MAX) ")", &n, ret_why);
        return r < 0 ? r : host_check(s, n, false, ret_why);
}

/* ---- KeID and kpsaID ---- */

#define KEID_RULE "not a KeID (lower-case hex, '@', a host name)"
#define KPSAID_RULE "not a kpsaID (lower-case hex, optional .<n>, '@', a host name)"

static int rel_id_check(const char *s, size_t max, bool kpsa, const char **ret_why) {
        const char *rule = kpsa ? KPSAID_RULE : KEID_RULE;
        size_t n;
        int r = common(s, max, kpsa ? "too long (max " STR(IDS_KPSA_ID_MAX) ")" : "too long (max " STR(IDS_KE_ID_MAX) ")",
                       &n, ret_why);
        if (r < 0)
                return r;
        const char *at = memchr(s, '@', n);
        if (!at)
                return fail(ret_why, -EINVAL, rule);
        size_t h = strspn(s, "0123456789abcdef"); /* stops at the '@' at the latest */
        if (h == 0 || h > IDS_REL_ID_MAX)
                return fail(ret_why, -EINVAL, rule);
        const char *p = s + h;
        if (kpsa && *p == '.') {
                p++;
                size_t d = strspn(p, "0123456789");
                if (d == 0 || d > 3 || p[0] == '0')
                        return fail(ret_why, -EINVAL, rule);
                p += d;
        }
        if (p != at)
                return fail(ret_why, -EINVAL, rule);
        const char *why = NULL;
        r = host_check(at + 1, n - (size_t) (at + 1 - s), true, &why);
        if (r < 0)
                return fail(ret_why, r, kpsa ? "not a kpsaID: the part after '@' is not a lower-case host name or IP address"
                                             : "not a KeID: the part after '@' is not a lower-case host name or IP address");
        return 0;
}

int ids_check_ke_id(const char *s, const char **ret_why) {
        return rel_id_check(s, IDS_KE_ID_MAX, false, ret_why);
}

int ids_check_kpsa_id(const char *s, const char **ret_why) {
        return rel_id_check(s, IDS_KPSA_ID_MAX, true, ret_why);
}

/* ---- cseBase ---- */

#define URI_RULE "not an absolute URI with scheme http, https, coap, coaps, mqtt, mqtts, ws or wss"

int ids_check_cse_base(const char *s, const char **ret_why) {
        static const char *const schemes[] = { "http", "https", "coap", "coaps", "mqtt", "mqtts", "ws", "wss" };
        size_t n;
        int r = common(s, IDS_CSE_BASE_MAX, "too long (max " STR(IDS_CSE_BASE_MAX) ")", &n, ret_why);
        if (r < 0)
                return r;
        const char *colon = memchr(s, ':', n);
        if (!colon)
                return fail(ret_why, -EINVAL, URI_RULE);
        size_t sl = (size_t) (colon - s);
        bool known = false;
        for (size_t i = 0; i < sizeof schemes / sizeof schemes[0] && !known; i++)
                known = strlen(schemes[i]) == sl && strncasecmp(s, schemes[i], sl) == 0;
        if (!known || colon[1] != '/' || colon[2] != '/')
                return fail(ret_why, -EINVAL, URI_RULE);

        const char *end = s + n, *a = colon + 3;
        if (memchr(s, '?', n) || memchr(s, '#', n))
                return fail(ret_why, -EINVAL, "query or fragment not allowed");
        const char *path = memchr(a, '/', (size_t) (end - a));
        if (!path)
                path = end;
        if (memchr(a, '@', (size_t) (path - a)))
                return fail(ret_why, -EINVAL, "user information not allowed");

        /* authority: host [":" port] */
        const char *host = a, *port = NULL;
        size_t hl;
        if (a < path && a[0] == '[') {
                const char *close = memchr(a, ']', (size_t) (path - a));
                if (!close)
                        return fail(ret_why, -EINVAL, "not an IPv6 address");
                host = a + 1;
                hl = (size_t) (close - host);
                if (hl == 0 || !memchr(host, ':', hl))
                        return fail(ret_why, -EINVAL, "not an IPv6 address");
                if (close + 1 < path) {
                        if (close[1] != ':')
                                return fail(ret_why, -EINVAL, URI_RULE);
                        port = close + 2;
                }
        } else {
                const char *c = memchr(a, ':', (size_t) (path - a));
                hl = c ? (size_t) (c - a) : (size_t) (path - a);
                if (c)
                        port = c + 1;
                if (hl > 0 && memchr(host, ':', hl))
                        return fail(ret_why, -EINVAL, URI_RULE);
        }
        if (hl == 0)
                return fail(ret_why, -EINVAL, "no host");
        const char *why = NULL;
        if (host_check(host, hl, false, &why) < 0)
                return fail(ret_why, -EINVAL, why);
        if (port) {
                /* digits up to the path (strtoul() reads exactly those once they are all digits) */
                size_t pl = (size_t) (path - port);
                unsigned long v = strtoul(port, NULL, 10);
                if (pl == 0 || pl > 5 || strspn(port, "0123456789") < pl || v == 0 || v > 65535)
                        return fail(ret_why, -EINVAL, "invalid port (1..65535)");
        }

        /* path-abempty: *( "/" segment ), segment = *pchar */
        for (const char *p = path; p < end;) {
                p++; /* '/' */
                const char *slash = memchr(p, '/', (size_t) (end - p));
                size_t l = slash ? (size_t) (slash - p) : (size_t) (end - p);
                if (is_dot_segment(p, l))
                        return fail(ret_why, -EINVAL, "'.' or '..' path segment");
                for (size_t i = 0; i < l; i++) {
                        char c = p[i];
                        if (c == '%') {
                                if (i + 2 >= l || !is_hex(p[i + 1]) || !is_hex(p[i + 2]))
                                        return fail(ret_why, -EINVAL, "bad percent-encoding");
                                i += 2;
                        } else if (!is_unreserved(c) && !strchr("!$&'()*+,;=:@", c)) /* c is not NUL (common()) */
                                return fail(ret_why, -EINVAL, "character not allowed in a URI path (RFC 3986)");
                }
                p += l;
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* A certificate's dNSName against the MEF host, RFC 9525 6.3 (proto/tls-name.h). */
#include "proto/tls-name.h"

#include <string.h>
#include <strings.h>

/* The labels of a name of n bytes, or 0 when it is none: empty, an empty label, a byte outside
 * printable ASCII, or a '*' (the one wildcard allowed is taken off before). */
static size_t name_labels(const char *s, size_t n) {
        size_t labels = 1, len = 0;
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) s[i];
                if (ch == '.') {
                        if (len == 0)
                                return 0;
                        labels++;
                        len = 0;
                } else if (ch <= ' ' || ch >= 0x7f || ch == '*')
                        return 0;
                else
                        len++;
        }
        return len > 0 ? labels : 0;
}

bool tls_name_match(const char *presented, size_t len, const char *host) {
        if (!presented || !host)
                return false;
        size_t hlen = strlen(host);
        if (name_labels(host, hlen) == 0)
                return false;
        if (len >= 2 && presented[0] == '*' && presented[1] == '.') {
                /* "*" stands for the host's first label, and what follows must be two labels or
                 * more: "*.example.net" names mef.example.net, "*.net" names nothing. */
                const char *rest = presented + 2;
                size_t rlen = len - 2;
                const char *dot = memchr(host, '.', hlen);
                return name_labels(rest, rlen) >= 2 && dot && (size_t) (host + hlen - (dot + 1)) == rlen &&
                       strncasecmp(rest, dot + 1, rlen) == 0;
        }
        return len == hlen && name_labels(presented, len) > 0 && strncasecmp(presented, host, len) == 0;
}

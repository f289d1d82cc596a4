/* SPDX-License-Identifier: MIT */
/* tls_name_match() (proto/tls-name.h) on arbitrary bytes: the host is the input up to its first
 * NUL, the presented dNSName all that follows (NULs included). A match must keep what the
 * agent's name check builds on: printable ASCII without a NUL, no '*' in the host, and either
 * the same name without regard to case or one wildcard as the whole left-most label with the
 * same labels as the host after it, two or more. And case never decides. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/tls-name.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t count(const char *s, size_t n, char c) {
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
                k += s[i] == c;
        return k;
}

static char lower(char c) {
        return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static void check_match(const char *p, size_t plen, const char *host) {
        size_t hlen = strlen(host);
        if (plen == 0 || hlen == 0 || memchr(host, '*', hlen))
                abort();
        for (size_t i = 0; i < plen; i++)
                if ((unsigned char) p[i] <= 0x20 || (unsigned char) p[i] >= 0x7f)
                        abort();
        if (count(p, plen, '.') != count(host, hlen, '.'))
                abort();
        size_t stars = count(p, plen, '*');
        if (stars == 0) {
                if (plen != hlen)
                        abort();
                for (size_t i = 0; i < plen; i++)
                        if (lower(p[i]) != lower(host[i]))
                                abort();
                return;
        }
        /* "*." then two labels or more, the host's after its first label */
        const char *dot = strchr(host, '.');
        if (stars != 1 || plen < 2 || p[0] != '*' || p[1] != '.' || count(p, plen, '.') < 2 || !dot || dot == host ||
            strlen(dot) != plen - 1)
                abort();
        for (size_t i = 1; i < plen; i++)
                if (lower(p[i]) != lower(dot[i - 1]))
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t hlen = nul ? (size_t) (nul - data) : size;
        size_t plen = nul ? size - hlen - 1 : 0;
        char *host = malloc(hlen + 1), *p = calloc(1, plen ? plen : 1), *pl = calloc(1, plen ? plen : 1);
        if (!host || !p || !pl)
                abort();
        memcpy(host, data, hlen);
        host[hlen] = 0;
        if (plen)
                memcpy(p, nul + 1, plen);
        for (size_t i = 0; i < plen; i++)
                pl[i] = lower(p[i]);
        bool m = tls_name_match(p, plen, host);
        if (m)
                check_match(p, plen, host);
        if (tls_name_match(pl, plen, host) != m)
                abort();
        free(host);
        free(p);
        free(pl);
        return 0;
}

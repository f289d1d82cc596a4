/* SPDX-License-Identifier: MIT */
/* Built without libpq (meson -Dpostgresql=disabled): [store] backend = postgresql is refused. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "mef/store-db.h"
#include "mef/store.h"

const char *store_pg_lib_error(void) {
        return NULL;
}

int db_pg_open(const store_location_t *loc, db_t **ret, store_reason_t *reason) {
        return -EOPNOTSUPP;
}

static int hex_digit(char c) {
        return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Without libpq's parser, the forms it takes by text: user:password@ in a URI, and a password
 * keyword with or without spaces before its '=', percent-encoded or not. */
int store_pg_uri_check(const char *uri) {
        if (!uri || strlen(uri) > 4096)
                return -EINVAL;
        if (strncmp(uri, "postgresql://", 13) == 0 || strncmp(uri, "postgres://", 11) == 0) {
                const char *auth = strstr(uri, "://") + 3;
                size_t n = strcspn(auth, "/?");
                const char *at = memchr(auth, '@', n);
                if (at && memchr(auth, ':', (size_t) (at - auth)))
                        return -EACCES;
        }
        char text[4097];
        size_t n = 0;
        for (const char *p = uri; *p; p++)
                if (p[0] == '%' && hex_digit(p[1]) >= 0 && hex_digit(p[2]) >= 0) {
                        text[n++] = (char) (hex_digit(p[1]) * 16 + hex_digit(p[2]));
                        p += 2;
                } else
                        text[n++] = *p;
        text[n] = 0;
        for (const char *p = text; (p = strstr(p, "password")); p += 8) {
                const char *q = p + 8;
                q += strspn(q, " \t\n\r\f\v");
                if (*q == '=')
                        return -EACCES;
        }
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* The PostgreSQL engine's URI (mef/store-pg-internal.h): libpq's own parse of it, what msce-mef
 * takes from it (connect_timeout, the host lists), and the lists rotated for each reconnect. */
#include <limits.h>

#include "mef/store-pg-internal.h"
#include "mef/store.h"
#include "util/util.h"

/* libpq's reading of an integer option (parse_int_param()): decimal, with spaces around it. */
static int pg_uri_int(const char *v, int *ret) {
        char *end;
        errno = 0;
        long n = strtol(v, &end, 10);
        if (end == v || errno != 0 || n < INT_MIN || n > INT_MAX)
                return -EDOM;
        end += strspn(end, " \t\n\r\f\v");
        if (*end)
                return -EDOM;
        *ret = (int) n;
        return 0;
}

/* libpq's reading of uri (to PQconninfoFree()): 0, or -EINVAL when it cannot parse it. */
static int pg_uri_options(const char *uri, PQconninfoOption **ret) {
        if (!uri)
                return -EINVAL;
        char *err = NULL;
        *ret = sym_PQconninfoParse(uri, &err);
        if (!*ret) {
                sym_PQfreemem(err);
                return -EINVAL;
        }
        return 0;
}

/* The elements of a libpq list (host, hostaddr, port): comma-separated, no escapes. */
static unsigned pg_list_count(const char *list) {
        unsigned k = 1;
        for (const char *c = list; *c; c++)
                k += *c == ',';
        return k;
}

/* list (of count elements) from its element start on, then the ones before it: NULL when
 * that is list itself (start 0). */
static char *pg_list_rotate(const char *list, unsigned count, unsigned start) {
        start %= count;
        if (start == 0)
                return NULL;
        const char *c = list;
        for (unsigned i = 0; i < start; i++)
                c = strchr(c, ',') + 1;
        size_t n = strlen(list), head = (size_t) (c - list), tail = n - head;
        char *out = malloc(n + 1);
        if (!out)
                return NULL;
        memcpy(out, c, tail);
        out[tail] = ',';
        memcpy(out + tail + 1, list, head - 1);
        out[n] = 0;
        return out;
}

const char *const pg_uri_host_keys[3] = { "host", "hostaddr", "port" };

void pg_uri_hosts_done(pg_uri_hosts_t *h) {
        for (size_t i = 0; i < ELEMENTSOF(h->values); i++) {
                free(h->values[i]);
                h->values[i] = NULL;
        }
}

int pg_uri_hosts(const pg_uri_t *u, unsigned start, pg_uri_hosts_t *ret) {
        pg_uri_hosts_t h = { { NULL } };
        /* one list per host, rotated alike; one that is not (a single port: every host's) stays */
        for (size_t i = 0; i < ELEMENTSOF(u->lists); i++)
                if (u->lists[i] && u->n_hosts > 1 && start % u->n_hosts != 0 &&
                    pg_list_count(u->lists[i]) == u->n_hosts) {
                        h.values[i] = pg_list_rotate(u->lists[i], u->n_hosts, start);
                        if (!h.values[i]) {
                                pg_uri_hosts_done(&h);
                                return -ENOMEM;
                        }
                }
        *ret = h;
        return 0;
}

void pg_uri_done(pg_uri_t *u) {
        for (size_t i = 0; i < ELEMENTSOF(u->lists); i++) {
                free(u->lists[i]);
                u->lists[i] = NULL;
        }
}

int pg_uri_parse(const char *uri, pg_uri_t *ret) {
        PQconninfoOption *opts;
        int r = pg_lib_load();
        if (r < 0)
                return r;
        if (pg_uri_options(uri, &opts) < 0)
                return -EINVAL;
        _cleanup_(pg_uri_done) pg_uri_t u = { .n_hosts = 1, .connect_timeout_sec = CONNECT_TIMEOUT_SEC };
        for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (!o->val)
                        continue;
                if (streq(o->keyword, "password") && *o->val)
                        r = -EACCES;
                for (size_t i = 0; i < ELEMENTSOF(pg_uri_host_keys); i++)
                        if (*o->val && streq(o->keyword, pg_uri_host_keys[i])) {
                                if (i < 2) /* host, hostaddr */
                                        u.n_hosts = MAX(u.n_hosts, pg_list_count(o->val));
                                if (ret && !u.lists[i] && !(u.lists[i] = strdup(o->val)))
                                        r = r < 0 ? r : -ENOMEM;
                        }
                if (streq(o->keyword, "connect_timeout") && *o->val) {
                        int sec;
                        if (pg_uri_int(o->val, &sec) < 0)
                                r = r < 0 ? r : -EDOM;
                        else if (sec > 0)
                                u.connect_timeout_sec = (unsigned) MAX(sec, 2); /* libpq's minimum */
                }
        }
        sym_PQconninfoFree(opts);
        if (r == 0 && ret) {
                *ret = u;
                u = (pg_uri_t) { 0 }; /* stolen */
        }
        return r;
}

int store_pg_uri_check(const char *uri) {
        return pg_uri_parse(uri, NULL);
}

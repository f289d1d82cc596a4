/* SPDX-License-Identifier: MIT */
/* pg_uri_parse(): what msce-mef takes from the store's URI for its own deadlines - how many
 * hosts it names, its connect_timeout, read as libpq reads it, and its host lists; pg_uri_hosts():
 * those lists beginning at a given host, for an attempt that passes over a silent one. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mef/store-pg-internal.h"
#include "mef/store.h"
#include "util/util.h"

/* its numbers (its lists freed) */
static pg_uri_t parsed(const char *uri) {
        pg_uri_t u = { 0 };
        cr_assert_eq(pg_uri_parse(uri, &u), 0, "%s", uri);
        pg_uri_done(&u);
        return u;
}

Test(store_pg_uri, connect_timeout_absent_is_ours) {
        pg_uri_t u = parsed("postgresql://mef@db.example.net/msce");
        cr_assert_eq(u.n_hosts, 1);
        cr_assert_eq(u.connect_timeout_sec, CONNECT_TIMEOUT_SEC);
        cr_assert_eq(parsed("host=db user=mef").connect_timeout_sec, CONNECT_TIMEOUT_SEC);
        /* 0 (or less) is no limit for libpq: msce-mef keeps its own */
        cr_assert_eq(parsed("postgresql://db/msce?connect_timeout=0").connect_timeout_sec, CONNECT_TIMEOUT_SEC);
        cr_assert_eq(parsed("host=db connect_timeout=-3").connect_timeout_sec, CONNECT_TIMEOUT_SEC);
}

Test(store_pg_uri, connect_timeout_given) {
        cr_assert_eq(parsed("postgresql://db/msce?connect_timeout=2").connect_timeout_sec, 2);
        cr_assert_eq(parsed("postgresql://db/msce?sslmode=disable&connect_timeout=30").connect_timeout_sec, 30);
        cr_assert_eq(parsed("host=db connect_timeout=12 user=mef").connect_timeout_sec, 12);
        cr_assert_eq(parsed("host=db connect_timeout=' 7 '").connect_timeout_sec, 7);
        /* libpq's minimum */
        cr_assert_eq(parsed("postgresql://db/msce?connect_timeout=1").connect_timeout_sec, 2);
}

Test(store_pg_uri, several_hosts) {
        pg_uri_t u = parsed("postgresql://db1:5432,db2:5433,db3/msce?connect_timeout=3");
        cr_assert_eq(u.n_hosts, 3);
        cr_assert_eq(u.connect_timeout_sec, 3);
        u = parsed("host=db1,db2 user=mef");
        cr_assert_eq(u.n_hosts, 2);
        cr_assert_eq(u.connect_timeout_sec, CONNECT_TIMEOUT_SEC);
        cr_assert_eq(parsed("hostaddr=10.0.0.1,10.0.0.2,10.0.0.3,10.0.0.4 connect_timeout=9").n_hosts, 4);
}

Test(store_pg_uri, connect_timeout_not_a_number) {
        static const char *const bad[] = {
                "postgresql://db/msce?connect_timeout=5s",
                "postgresql://db/msce?connect_timeout=2.5",
                "host=db connect_timeout=soon",
                "host=db connect_timeout=99999999999999999999",
        };
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                pg_uri_t u = { .n_hosts = 77 };
                cr_assert_eq(pg_uri_parse(bad[i], &u), -EDOM, "%s", bad[i]);
                cr_assert_eq(u.n_hosts, 77, "ret touched on failure: %s", bad[i]);
                cr_assert_eq(store_pg_uri_check(bad[i]), -EDOM, "%s", bad[i]);
        }
        /* a password still reads as one */
        cr_assert_eq(pg_uri_parse("host=db password=x connect_timeout=x", NULL), -EACCES);
}

/* pg_uri_hosts(u, start) as "host|hostaddr|port", "-" for a list left as it is (NULL) */
static void rotated_are(const pg_uri_t *u, unsigned start, const char *want) {
        pg_uri_hosts_t h = { { NULL } };
        cr_assert_eq(pg_uri_hosts(u, start, &h), 0);
        char got[256];
        snprintf(got, sizeof got, "%s|%s|%s", h.values[0] ? h.values[0] : "-", h.values[1] ? h.values[1] : "-",
                 h.values[2] ? h.values[2] : "-");
        pg_uri_hosts_done(&h);
        cr_assert_str_eq(got, want, "from %u", start);
}

/* rotated_are() of uri, parsed first */
static void hosts_are(const char *uri, unsigned start, const char *want) {
        pg_uri_t u = { 0 };
        cr_assert_eq(pg_uri_parse(uri, &u), 0, "%s", uri);
        rotated_are(&u, start, want);
        pg_uri_done(&u);
}

Test(store_pg_uri, hosts_from_the_next) {
        /* host and port pair up, rotated alike (a port not given stays empty: the default) */
        const char *uri = "postgresql://db1:5432,db2:5433,db3/msce?target_session_attrs=read-write";
        hosts_are(uri, 1, "db2,db3,db1|-|5433,,5432");
        hosts_are(uri, 2, "db3,db1,db2|-|,5432,5433");
        /* from the first: the URI's own lists; past the last: round again */
        hosts_are(uri, 0, "-|-|-");
        hosts_are(uri, 4, "db2,db3,db1|-|5433,,5432");
        /* a single port is every host's; hostaddr pairs with host */
        hosts_are("host=a,b,c hostaddr=10.0.0.1,10.0.0.2,10.0.0.3 port=6432", 2, "c,a,b|10.0.0.3,10.0.0.1,10.0.0.2|-");
        hosts_are("hostaddr=10.0.0.1,10.0.0.2 port=1,2", 1, "-|10.0.0.2,10.0.0.1|2,1");
        /* a unix socket's directory, an IPv6 address */
        hosts_are("postgresql:///msce?host=127.0.0.1,/run/pg&port=7,5432", 1, "/run/pg,127.0.0.1|-|5432,7");
        hosts_are("postgresql://[::1]:5433,db2/msce", 1, "db2,::1|-|,5433");
        /* one host: nothing to rotate; lists libpq refuses (3 hosts, 2 ports) left for it to say so */
        hosts_are("postgresql://db1:5432/msce", 1, "-|-|-");
        hosts_are("host=a,b,c port=1,2", 1, "b,c,a|-|-");
        pg_uri_t u = { .n_hosts = 77 };
        cr_assert_eq(pg_uri_parse("host=a,b bogus=1", &u), -EINVAL);
        cr_assert_eq(u.n_hosts, 77);
}

/* The lists are the store's own copies: each connection attempt rotates them, long after the
 * string the URI came in is gone, and without parsing it again. */
Test(store_pg_uri, hosts_outlive_the_string) {
        char *uri = strdup("postgresql://db1:5432,db2:5433,db3/msce?hostaddr=10.0.0.1,10.0.0.2,10.0.0.3");
        cr_assert_not_null(uri);
        pg_uri_t u = { 0 };
        cr_assert_eq(pg_uri_parse(uri, &u), 0);
        memset(uri, 'x', strlen(uri));
        free(uri);
        cr_assert_eq(u.n_hosts, 3);
        cr_assert_str_eq(u.lists[0], "db1,db2,db3");
        cr_assert_str_eq(u.lists[1], "10.0.0.1,10.0.0.2,10.0.0.3");
        cr_assert_str_eq(u.lists[2], "5432,5433,");
        rotated_are(&u, 2, "db3,db1,db2|10.0.0.3,10.0.0.1,10.0.0.2|,5432,5433");
        rotated_are(&u, 1, "db2,db3,db1|10.0.0.2,10.0.0.3,10.0.0.1|5433,,5432");
        pg_uri_done(&u);
        cr_assert_null(u.lists[0]);
        pg_uri_done(&u); /* again: nothing left to free */
        /* without ret: nothing kept (LSan; many times, so that a leak is not all still on the stack) */
        for (int i = 0; i < 64; i++)
                cr_assert_eq(store_pg_uri_check("host=a,b,c hostaddr=10.0.0.1,10.0.0.2,10.0.0.3 port=1,2,3"), 0);
}

/* password_file: the password is the file less its line end. One with a second line is refused
 * before any connection, naming the file and nothing of its content; before, the two lines went
 * to the server as the password (28P01). The URI's socket directory does not exist: a password
 * that passes fails to connect instead. */
static int open_with_password_says(const char *content, size_t len, const char *says, store_reason_t *why) {
        char pw[] = "/tmp/test-store-pg-uri.XXXXXX";
        int fd = mkstemp(pw);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, content, len), (ssize_t) len);
        close(fd);
        store_location_t loc = { .backend = STORE_BACKEND_POSTGRESQL,
                                 .uri = "postgresql:///msce?host=/nonexistent-test-store-pg-uri&connect_timeout=2",
                                 .password_file = pw };
        mef_store_t *s = NULL;
        int r = store_open_at(&loc, "/nonexistent-test-store-pg-uri/master.key", 0, &s, why);
        cr_assert_null(s);
        if (r == -EINVAL) {
                cr_assert_not_null(strstr(why->text, pw), "%s", why->text);
                cr_assert_not_null(strstr(why->text, says), "%s", why->text);
        }
        unlink(pw);
        return r;
}

static int open_with_password(const char *content, store_reason_t *why) {
        return open_with_password_says(content, strlen(content), "more than one line", why);
}

Test(store_pg_uri, password_file_of_two_lines) {
        store_reason_t why;
        cr_assert_eq(open_with_password("right\nwrong\n", &why), -EINVAL, "%s", why.text);
        cr_assert_null(strstr(why.text, "right"));
        cr_assert_null(strstr(why.text, "wrong"));
        cr_assert_eq(open_with_password("right\r\nwrong", &why), -EINVAL, "%s", why.text);
        cr_assert_eq(open_with_password("sec\rret\n", &why), -EINVAL, "%s", why.text);
        /* one line, with or without its line end: read, then the connection fails */
        cr_assert_neq(open_with_password("secret\r\n", &why), -EINVAL, "%s", why.text);
        cr_assert_neq(open_with_password("secret", &why), -EINVAL, "%s", why.text);
}

/* A NUL byte in the password: refused like a second line, naming the file (before, a bare
 * -EINVAL: "Invalid argument", which file and why unsaid). */
Test(store_pg_uri, password_file_with_a_nul_byte) {
        static const char pw[] = "pw\0hunter2\n";
        store_reason_t why;
        cr_assert_eq(open_with_password_says(pw, sizeof pw - 1, "holds a NUL byte", &why), -EINVAL, "%s", why.text);
        cr_assert_null(strstr(why.text, "hunter2"), "%s", why.text);
}

/* A password file that cannot be read: the reason names it (before, "Permission denied" or "No
 * such file or directory" alone, which file unsaid). Missing, readable by group, empty: as root
 * no mode bits refuse a read (EACCES), and each takes the same path. */
Test(store_pg_uri, password_file_unreadable) {
        char pw[] = "/tmp/test-store-pg-uri.XXXXXX";
        int fd = mkstemp(pw);
        cr_assert_geq(fd, 0);
        close(fd);
        store_location_t loc = { .backend = STORE_BACKEND_POSTGRESQL,
                                 .uri = "postgresql:///msce?host=/nonexistent-test-store-pg-uri&connect_timeout=2",
                                 .password_file = pw };
        struct {
                mode_t mode; /* 0: the file removed */
                int r;
                const char *says;
        } cases[] = { { 0640, -EPERM, NULL }, { 0600, -ENODATA, " is empty" }, { 0, -ENOENT, "" } };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (cases[i].mode)
                        cr_assert_eq(chmod(pw, cases[i].mode), 0);
                else
                        cr_assert_eq(unlink(pw), 0);
                store_reason_t why;
                mef_store_t *s = NULL;
                int r = store_open_at(&loc, "/nonexistent-test-store-pg-uri/master.key", 0, &s, &why);
                cr_assert_null(s);
                cr_assert_eq(r, cases[i].r, "%d: %s", r, why.text);
                if (!cases[i].says) { /* the caller's mode hint names it, with its mode (mef-store-files) */
                        cr_assert_str_empty(why.text);
                        continue;
                }
                char want[128];
                snprintf(want, sizeof want, "password_file %s%s", pw, cases[i].says);
                cr_assert_eq(strncmp(why.text, want, strlen(want)), 0, "%s", why.text);
        }
}

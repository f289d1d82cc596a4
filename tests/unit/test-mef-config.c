/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <limits.h>
#include <sys/stat.h>

#include "mef/mef-config.h"
#include "mef/store.h"
#include "util/util.h"

static char dir[] = "/tmp/test-mef-config.XXXXXX";
static char conf[PATH_MAX];

static void setup(void) {
        cr_assert_not_null(mkdtemp(dir));
        snprintf(conf, sizeof conf, "%s/mef.conf", dir);
}

static void teardown(void) {
        unlink(conf);
        rmdir(dir);
}

TestSuite(mef_config, .init = setup, .fini = teardown);

static void write_conf(const char *text) {
        FILE *f = fopen(conf, "we");
        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
}

static void load_ok(const char *text, mef_config_t *c) {
        char err[512] = "";
        write_conf(text);
        cr_assert_eq(mef_config_load(conf, c, err, sizeof err), 0, "%s", err);
}

/* The error must be "FILE:LINE: [section] key: ..." (line 0: "FILE: [section] key: ..."). */
static void load_fails(const char *text, unsigned line, const char *section_key, const char *reason) {
        char err[512] = "", want[PATH_MAX + 256];
        mef_config_t c = { .max_connections = 4242 };
        write_conf(text);
        cr_assert_eq(mef_config_load(conf, &c, err, sizeof err), -EINVAL, "accepted:\n%s", text);
        cr_assert_eq(c.max_connections, 4242, "ret touched on failure");
        if (line)
                snprintf(want, sizeof want, "%s:%u: %s: ", conf, line, section_key);
        else
                snprintf(want, sizeof want, "%s: %s: ", conf, section_key);
        cr_assert_eq(strncmp(err, want, strlen(want)), 0, "got '%s', want prefix '%s'", err, want);
        if (reason)
                cr_assert_not_null(strstr(err, reason), "'%s' lacks '%s'", err, reason);
        /* a refused password is not repeated in the message (it goes to the journal) */
        if (strstr(text, "secret"))
                cr_assert_null(strstr(err, "secret"), "the message repeats the password: %s", err);
}

static void check_defaults(const mef_config_t *c) {
        cr_assert_str_eq(c->listen_host, "127.0.0.1");
        cr_assert_str_eq(c->listen_port, "8443");
        cr_assert_str_eq(c->fqdn, "127.0.0.1");
        cr_assert_str_eq(c->base, "/msce");
        cr_assert_eq(c->tls_min, TLS_VERSION_1_2);
        cr_assert_null(c->cert_file);
        cr_assert_null(c->key_file);
        cr_assert_null(c->client_ca_file);
        cr_assert_str_eq(c->store_path, MEF_STORE_DEFAULT);
        cr_assert_str_eq(c->master_key_path, MEF_MASTER_KEY_DEFAULT);
        cr_assert_eq(c->max_connections, 64);
        cr_assert_eq(c->max_unauthenticated, 64);
        cr_assert_eq(c->max_unauthenticated_per_source, 8);
        cr_assert_eq(c->listen_backlog, 512);
        cr_assert_eq(c->first_byte_timeout_usec, 2000000);
        cr_assert_eq(c->handshake_timeout_usec, 5000000);
        cr_assert_eq(c->request_timeout_usec, 10000000);
        cr_assert_eq(c->retry_after, 5);
        cr_assert_eq(c->connections_per_node, 4);
        cr_assert_eq(c->default_lifetime, 31536000);
        cr_assert_eq(c->default_poll, 86400);
        cr_assert_eq(c->workers, 1);
}

/* Texts the loader refuses, by class (the test that loads them): the text, the line (0: none),
 * "[section] key" and a part of the reason (NULL: any). */
static const struct {
        const char *cls, *text;
        unsigned line;
        const char *section_key, *reason;
} fails_cases[] = {
        { "admin", "[admin]\nlisten = 127.0.0.1:9443\ncertificate = /a.pem\nkey = /a.key\n", 0, "[admin] ca", "required when listen is set" },
        { "admin", "[admin]\nlisten = 127.0.0.1:9443\nkey = /a.key\nca = /ops.pem\n", 0, "[admin] certificate", "required" },
        { "admin", "[admin]\nlisten = 127.0.0.1:9443\ncertificate = /a.pem\nca = /ops.pem\n", 0, "[admin] key", "required" },
        { "admin", "[admin]\nlisten = 9443\n", 2, "[admin] listen", "host:port" },
        { "errors_name_file_line_and_key", "[server]\nfqdn = bad_name!\n", 2, "[server] fqdn", NULL },
        { "errors_name_file_line_and_key", "[server]\nfqdn = -mef.example\n", 2, "[server] fqdn", "host name (RFC 1123)" },
        { "errors_name_file_line_and_key", "[server]\nfqdn = [::1]\n", 2, "[server] fqdn", "IPv6 without brackets" },
        { "errors_name_file_line_and_key", "[server]\nbase = msce\n", 2, "[server] base", "absolute path" },
        { "errors_name_file_line_and_key", "[server]\nbase = /a b\n", 2, "[server] base", NULL },
        { "errors_name_file_line_and_key", "[tls]\nmin_version = 1.1\n", 2, "[tls] min_version", "1.2 or 1.3" },
        /* empty: an error for a key with a default (an optional key is unset: empty_unsets) */
        { "errors_name_file_line_and_key", "[store]\nmaster_key =\n", 2, "[store] master_key", "file path" },
        { "errors_name_file_line_and_key", "[store]\npath = /a\n\n[limits]\n; comment\nretry_after = soon\n", 6, "[limits] retry_after", "1 to 3600" },
        { "errors_name_file_line_and_key", "[limits]\nmax_connections = -1\n", 2, "[limits] max_connections", NULL },
        { "errors_name_file_line_and_key", "[limits]\nmax_connections = 99999999999999999999\n", 2, "[limits] max_connections", NULL },
        { "errors_name_file_line_and_key", "[server]\nbase = /a\nbase = /b\n", 3, "[server] base", "set twice" },
        { "unknown_keys_and_sections", "[server]\nlisten = 127.0.0.1:1\nlisten_port = 8443\n", 3, "[server] listen_port", "unknown key" },
        { "unknown_keys_and_sections", "[limits]\nmax_connection = 5\n", 2, "[limits] max_connection", "unknown key" },
        { "unknown_keys_and_sections", "[limits]\nlisten_backlog = 512\nmax_unauthenticated = 0\n", 3, "[limits] max_unauthenticated", "expected an integer from 1 to 4096" },
        { "unknown_keys_and_sections", "[limits]\nfirst_byte_timeout = 1s\n", 2, "[limits] first_byte_timeout", "ms" },
        { "unknown_keys_and_sections", "[limits]\nlisten_backlog = 8\n", 2, "[limits] listen_backlog", "from 16 to 65535" },
        { "unknown_keys_and_sections", "[server]\nlisten_backlog = 512\n", 2, "[server] listen_backlog", "unknown key" },
        { "unknown_keys_and_sections", "\n[serve]\nlisten = 127.0.0.1:1\n", 2, "[serve]", "unknown section" },
        { "unknown_keys_and_sections", "listen = 127.0.0.1:1\n", 1, "listen", "outside of any section" },
        /* keys are case-sensitive, like everything else here */
        { "unknown_keys_and_sections", "[server]\nLISTEN = 127.0.0.1:1\n", 2, "[server] LISTEN", "unknown key" },
        { "cross_checks", "[tls]\ncertificate = /a.pem\n", 0, "[tls] key", "required" },
        { "cross_checks", "[tls]\nkey = /a.key\n", 0, "[tls] certificate", "required" },
        { "cross_checks", "[tls]\nclient_ca = /ca.pem\n", 0, "[tls] certificate", "required" },
        { "cross_checks", "[server]\nlisten = [::]:443\n", 0, "[server] fqdn", "wildcard" },
        { "cross_checks", "[server]\nlisten = 0.0.0.0:443\n", 0, "[server] fqdn", "wildcard" },
        /* other spellings of a wildcard, as the bind reads them: the fqdn defaulted to the text */
        { "cross_checks", "[server]\nlisten = [::0]:443\n", 0, "[server] fqdn", "wildcard" },
        { "cross_checks", "[server]\nlisten = [0::]:443\n", 0, "[server] fqdn", "wildcard" },
        { "cross_checks", "[server]\nlisten = 0:443\n", 0, "[server] fqdn", "wildcard" },
        { "cross_checks", "[server]\nlisten = 0.0:443\n", 0, "[server] fqdn", "wildcard" },
        { "cross_checks", "[server]\nlisten = 0x0:443\n", 0, "[server] fqdn", "wildcard" },
        { "cross_checks", "[server]\nlisten = [::ffff:0.0.0.0]:443\n", 0, "[server] fqdn", "wildcard" },
        /* the listen host is the default fqdn: it must be a KeID host then */
        { "cross_checks", "[server]\nlisten = [fe80::1%eth0]:443\n", 0, "[server] fqdn", "not a host name or IP address" },
        { "cross_checks", "[server]\nlisten = in_x:443\n", 0, "[server] fqdn", "not a host name or IP address" },
        { "store_keys", "[store]\nbackend = mysql\n", 2, "[store] backend", "sqlite or postgresql" },
        { "store_keys", "[store]\nbackend = postgresql\n", 0, "[store] uri", "required" },
        /* the password has a file of its own */
        { "store_keys", "[store]\nuri = postgresql://mef:secret@db/msce\n", 2, "[store] uri", "password_file" },
        { "store_keys", "[store]\nuri = host=db user=mef password=secret\n", 2, "[store] uri", "password_file" },
        /* libpq takes spaces around '=' and percent-encoded query keywords: so must the check */
        { "store_keys", "[store]\nuri = host=db user=mef password = secret\n", 2, "[store] uri", "password_file" },
        { "store_keys", "[store]\nuri = host=db password\t=secret user=mef\n", 2, "[store] uri", "password_file" },
        { "store_keys", "[store]\nuri = postgresql://mef@db/msce?pass%77ord=secret\n", 2, "[store] uri", "password_file" },
#if HAVE_LIBPQ
        /* what libpq cannot parse would fail every start */
        { "store_keys", "[store]\nuri = msce\n", 2, "[store] uri", "connection URI" },
        { "store_keys", "[store]\nuri = host='db\n", 2, "[store] uri", "connection URI" },
        /* libpq would refuse it at each connection; msce-mef's own deadlines read it too */
        { "store_keys", "[store]\nuri = postgresql://db/msce?connect_timeout=5s\n", 2, "[store] uri", "connect_timeout must be a whole number" },
        { "store_keys", "[store]\nuri = host=db connect_timeout=soon\n", 2, "[store] uri", "connect_timeout must be a whole number" },
#endif
        { "store_keys", "[store]\nthreads = 0\n", 2, "[store] threads", NULL },
        { "store_keys", "[store]\nbusy_timeout = 5\n", 2, "[store] busy_timeout", NULL },
        { "store_keys", "[store]\nsynchronous = off\n", 2, "[store] synchronous", "normal or full" },
};

static void load_fails_all(const char *cls) {
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(fails_cases); i++)
                if (streq(fails_cases[i].cls, cls)) {
                        load_fails(fails_cases[i].text, fails_cases[i].line, fails_cases[i].section_key,
                                   fails_cases[i].reason);
                        n++;
                }
        cr_assert_gt(n, 0, "no cases for %s", cls);
}

/* No two listeners on one host:port: with workers every socket has SO_REUSEPORT, and the kernel
 * would spread the gateways' connections over the metrics or admin listener. */
#define ADMIN_AT(addr) "[admin]\nlisten = " addr "\ncertificate = /a.pem\nkey = /a.key\nca = /ops.pem\n"
Test(mef_config, listeners_on_one_port) {
        load_fails("[server]\nlisten = 127.0.0.1:8443\nworkers = 2\n[metrics]\nlisten = 127.0.0.1:8443\n", 5,
                   "[metrics] listen", "127.0.0.1:8443 is also [server] listen");
        load_fails("[metrics]\nlisten = 127.0.0.1:8443\n", 2, "[metrics] listen", "also [server] listen");
        load_fails("[server]\nlisten = LocalHost:9000\n[metrics]\nlisten = localhost:09000\n", 4,
                   "[metrics] listen", "also [server] listen");
        load_fails(ADMIN_AT("127.0.0.1:8443"), 2, "[admin] listen", "127.0.0.1:8443 is also [server] listen");
        load_fails("[metrics]\nlisten = [::1]:9465\n" ADMIN_AT("[::1]:9465"), 4, "[admin] listen",
                   "[::1]:9465 is also [metrics] listen");
        /* port 0: each gets a port of its own from the kernel; another host or port is no clash */
        mef_config_t c = { 0 };
        load_ok("[server]\nlisten = 127.0.0.1:0\n[metrics]\nlisten = 127.0.0.1:0\n" ADMIN_AT("127.0.0.1:0"), &c);
        mef_config_done(&c);
        load_ok("[metrics]\nlisten = 127.0.0.2:8443\n" ADMIN_AT("127.0.0.1:8444"), &c);
        mef_config_done(&c);
}

Test(mef_config, empty_file_is_defaults) {
        mef_config_t c = { 0 };
        load_ok("; nothing\n# at all\n\n", &c);
        check_defaults(&c);
        mef_config_done(&c);
        cr_assert_null(c.listen_host);
        mef_config_done(&c); /* twice is fine */
        mef_config_done(NULL);
}

Test(mef_config, missing_default_file_is_defaults) {
        struct stat st;
        if (stat(MEF_CONFIG_DEFAULT, &st) == 0)
                cr_skip_test(MEF_CONFIG_DEFAULT " exists on this machine");
        mef_config_t c = { 0 };
        char err[256] = "";
        cr_assert_eq(mef_config_load(NULL, &c, err, sizeof err), 0, "%s", err);
        check_defaults(&c);
        mef_config_done(&c);
}

Test(mef_config, missing_explicit_file) {
        mef_config_t c = { .max_connections = 7 };
        char err[512] = "", missing[PATH_MAX + 16];
        snprintf(missing, sizeof missing, "%s/nope.conf", dir);
        cr_assert_eq(mef_config_load(missing, &c, err, sizeof err), -ENOENT);
        cr_assert_eq(c.max_connections, 7);
        cr_assert_not_null(strstr(err, missing), "%s", err);
}

Test(mef_config, full_file) {
        mef_config_t c = { 0 };
        load_ok("[server]\n"
                "listen = 192.0.2.1:9443\n"
                "fqdn = MEF.Example.NET\n"
                "base = /enrol/v1/\n"
                "[tls]\n"
                "min_version = 1.3\n"
                "certificate = /etc/msce/mef.pem\n"
                "key = /etc/msce/mef.key\n"
                "client_ca = /etc/msce/devices-ca.pem\n"
                "[store]\n"
                "path = /srv/mef/db.sqlite\n"
                "master_key = /srv/mef/master.key\n"
                "[limits]\n"
                "max_connections = 4096\n"
                "max_unauthenticated = 300\n"
                "max_unauthenticated_per_source = 3\n"
                "listen_backlog = 2048\n"
                "first_byte_timeout = 750\n"
                "handshake_timeout = 100\n"
                "request_timeout = 120000\n"
                "retry_after = 3600\n"
                "connections_per_node = 16\n"
                "[defaults]\n"
                "lifetime = 60\n"
                "poll = 10 ; inline comment\n",
                &c);
        cr_assert_str_eq(c.listen_host, "192.0.2.1");
        cr_assert_str_eq(c.listen_port, "9443");
        cr_assert_str_eq(c.fqdn, "mef.example.net", "fqdn is lower-cased: KeIDs use it");
        cr_assert_str_eq(c.base, "/enrol/v1");
        cr_assert_eq(c.tls_min, TLS_VERSION_1_3);
        cr_assert_str_eq(c.cert_file, "/etc/msce/mef.pem");
        cr_assert_str_eq(c.key_file, "/etc/msce/mef.key");
        cr_assert_str_eq(c.client_ca_file, "/etc/msce/devices-ca.pem");
        cr_assert_str_eq(c.store_path, "/srv/mef/db.sqlite");
        cr_assert_str_eq(c.master_key_path, "/srv/mef/master.key");
        cr_assert_eq(c.max_connections, 4096);
        cr_assert_eq(c.max_unauthenticated, 300);
        cr_assert_eq(c.max_unauthenticated_per_source, 3);
        cr_assert_eq(c.listen_backlog, 2048);
        cr_assert_eq(c.first_byte_timeout_usec, 750000, "kept as given; the server caps it at handshake_timeout");
        cr_assert_eq(c.handshake_timeout_usec, 100000);
        cr_assert_eq(c.request_timeout_usec, 120000000);
        cr_assert_eq(c.retry_after, 3600);
        cr_assert_eq(c.connections_per_node, 16);
        cr_assert_eq(c.default_lifetime, 60);
        cr_assert_eq(c.default_poll, 10);
        mef_config_done(&c);
}

Test(mef_config, listen_forms) {
        mef_config_t c = { 0 };
        load_ok("[server]\nlisten = [::1]:8443\n", &c);
        cr_assert_str_eq(c.listen_host, "::1");
        cr_assert_str_eq(c.listen_port, "8443");
        cr_assert_str_eq(c.fqdn, "::1", "fqdn defaults to the listen host");
        mef_config_done(&c);
        load_ok("[server]\nlisten = MEF.example.net:443\n", &c);
        cr_assert_str_eq(c.listen_host, "MEF.example.net");
        cr_assert_str_eq(c.fqdn, "mef.example.net");
        mef_config_done(&c);
        load_ok("[server]\nlisten = 0.0.0.0:443\nfqdn = mef.example.net\n", &c);
        cr_assert_str_eq(c.listen_host, "0.0.0.0");
        cr_assert_str_eq(c.fqdn, "mef.example.net");
        mef_config_done(&c);
        /* an address that only looks like one: not a wildcard, its own fqdn */
        load_ok("[server]\nlisten = 10.0.0.1:443\n", &c);
        cr_assert_str_eq(c.fqdn, "10.0.0.1");
        mef_config_done(&c);
        load_ok("[server]\nlisten = [::1]:443\n", &c);
        mef_config_done(&c);
        load_ok("[server]\nbase = /\n", &c);
        cr_assert_str_eq(c.base, "");
        mef_config_done(&c);
}

/* [metrics] listen: off unless set; the same host:port forms as [server] listen. */
Test(mef_config, metrics_listen) {
        mef_config_t c = { 0 };
        load_ok("", &c);
        cr_assert_null(c.metrics_host);
        cr_assert_null(c.metrics_port);
        mef_config_done(&c);
        load_ok("[metrics]\nlisten = 127.0.0.1:9465\n", &c);
        cr_assert_str_eq(c.metrics_host, "127.0.0.1");
        cr_assert_str_eq(c.metrics_port, "9465");
        cr_assert_str_eq(c.listen_port, "8443", "the gateways' port is unchanged");
        mef_config_done(&c);
        load_fails("[metrics]\nlisten = 9465\n", 2, "[metrics] listen", "host:port");
        load_fails("[metrics]\nlisten = 127.0.0.1:1\nlisten = 127.0.0.1:2\n", 3, "[metrics] listen", "set twice");
}

/* [admin]: off unless listen is set; then the server's certificate and key and the operators'
 * CA are all required (without ca anyone reaching the port would be served). */
Test(mef_config, admin) {
        mef_config_t c = { 0 };
        load_ok("", &c);
        cr_assert_null(c.admin_host);
        mef_config_done(&c);
        load_ok("[admin]\nlisten = [::1]:9443\ncertificate = /etc/msce/a.pem\nkey = /etc/msce/a.key\n"
                "ca = /etc/msce/ops.pem\n", &c);
        cr_assert_str_eq(c.admin_host, "::1");
        cr_assert_str_eq(c.admin_port, "9443");
        cr_assert_str_eq(c.admin_ca_file, "/etc/msce/ops.pem");
        mef_config_done(&c);
        load_fails_all("admin");
}

/* [audit] keep: a duration of 1d..36500d (90d by default), or forever. */
Test(mef_config, audit_keep) {
        mef_config_t c = { 0 };
        load_ok("", &c);
        cr_assert_eq(c.audit_keep_usec, 90ull * 86400 * 1000000);
        mef_config_done(&c);
        load_ok("[audit]\nkeep = 400d\n", &c);
        cr_assert_eq(c.audit_keep_usec, 400ull * 86400 * 1000000);
        mef_config_done(&c);
        load_ok("[audit]\nkeep = forever\n", &c);
        cr_assert_eq(c.audit_keep_usec, 0);
        mef_config_done(&c);
        load_fails("[audit]\nkeep = 1h\n", 2, "[audit] keep", "1d..36500d");
        load_fails("[audit]\nkeep = always\n", 2, "[audit] keep", NULL);
}

Test(mef_config, bad_listen) {
        static const char *const bad[] = {
                "127.0.0.1",      "127.0.0.1:",   ":8443",        "127.0.0.1:65536",
                "::1:8443",       "[::1]8443",    "[::1:8443",    "[]:8443",     "host name:80",
                "127.0.0.1:+80",  "127.0.0.1:8x",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char text[256];
                snprintf(text, sizeof text, "[server]\n\nlisten = %s\n", bad[i]);
                load_fails(text, 3, "[server] listen", "host:port");
        }
}

Test(mef_config, errors_name_file_line_and_key) {
        load_fails_all("errors_name_file_line_and_key");
}

Test(mef_config, unknown_keys_and_sections) {
        load_fails_all("unknown_keys_and_sections");
}

Test(mef_config, first_error_wins) {
        load_fails("[limits]\nretry_after = 0\nmax_connections = 0\n", 2, "[limits] retry_after", NULL);
}

Test(mef_config, syntax_errors) {
        char err[512] = "", want[PATH_MAX + 32];
        mef_config_t c = { 0 };
        write_conf("[server]\nlisten = 127.0.0.1:1\n[tls\n");
        cr_assert_eq(mef_config_load(conf, &c, err, sizeof err), -EINVAL);
        snprintf(want, sizeof want, "%s:3: ", conf);
        cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);

        write_conf("[server]\njust words\nfqdn = x y\n");
        cr_assert_eq(mef_config_load(conf, &c, err, sizeof err), -EINVAL);
        snprintf(want, sizeof want, "%s:2: ", conf);
        cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);

        /* a line longer than inih's buffer is refused, not split into two lines */
        char text[4096];
        int n = snprintf(text, sizeof text, "[store]\npath = /");
        memset(text + n, 'a', 2100);
        strcpy(text + n + 2100, "\n");
        write_conf(text);
        cr_assert_eq(mef_config_load(conf, &c, err, sizeof err), -EINVAL);
        snprintf(want, sizeof want, "%s:2: ", conf);
        cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);
        cr_assert_not_null(strstr(err, "too long"), "%s", err);
}

/* Each bound: the limit itself is accepted, one beyond is refused. */
Test(mef_config, bounds) {
        static const struct {
                const char *section, *key;
                unsigned long long min, max;
                size_t offset;
                bool usec; /* a usec_t field given in ms */
        } b[] = {
                { "limits", "max_connections", 1, 4096, offsetof(mef_config_t, max_connections) },
                { "limits", "max_unauthenticated", 1, 4096, offsetof(mef_config_t, max_unauthenticated) },
                { "limits", "max_unauthenticated_per_source", 1, 4096,
                  offsetof(mef_config_t, max_unauthenticated_per_source) },
                { "limits", "listen_backlog", 16, 65535, offsetof(mef_config_t, listen_backlog) },
                { "limits", "first_byte_timeout", 100, 120000, offsetof(mef_config_t, first_byte_timeout_usec), true },
                { "limits", "handshake_timeout", 100, 120000, offsetof(mef_config_t, handshake_timeout_usec), true },
                { "limits", "request_timeout", 100, 120000, offsetof(mef_config_t, request_timeout_usec), true },
                { "limits", "retry_after", 1, 3600, offsetof(mef_config_t, retry_after) },
                { "defaults", "lifetime", 60, 10ull * 366 * 86400, offsetof(mef_config_t, default_lifetime) },
                { "defaults", "poll", 10, 366ull * 86400, offsetof(mef_config_t, default_poll) },
        };
        cr_assert_eq(b[8].max, STORE_LIFETIME_MAX);
        cr_assert_eq(b[9].max, STORE_POLL_MAX);
        for (size_t i = 0; i < ELEMENTSOF(b); i++) {
                char text[256], sk[64];
                unsigned long long ok[] = { b[i].min, b[i].max };
                for (size_t j = 0; j < 2; j++) {
                        mef_config_t c = { 0 };
                        snprintf(text, sizeof text, "[%s]\n%s = %llu\n", b[i].section, b[i].key, ok[j]);
                        load_ok(text, &c);
                        const void *field = (char *) &c + b[i].offset;
                        unsigned long long got = b[i].usec ? *(const usec_t *) field / 1000 : *(const unsigned *) field;
                        cr_assert_eq(got, ok[j], "%s", text);
                        mef_config_done(&c);
                }
                snprintf(sk, sizeof sk, "[%s] %s", b[i].section, b[i].key);
                snprintf(text, sizeof text, "[%s]\n%s = %llu\n", b[i].section, b[i].key, b[i].min - 1);
                load_fails(text, 2, sk, "expected an integer");
                snprintf(text, sizeof text, "[%s]\n%s = %llu\n", b[i].section, b[i].key, b[i].max + 1);
                load_fails(text, 2, sk, "expected an integer");
        }
}

Test(mef_config, workers) {
        mef_config_t c = { 0 };
        load_ok("[server]\nworkers = auto\n", &c);
        cr_assert_eq(c.workers, 0);
        mef_config_done(&c);
        load_ok("[server]\nworkers = 256\n", &c);
        cr_assert_eq(c.workers, 256);
        mef_config_done(&c);
        load_fails("[server]\nworkers = 0\n", 2, "[server] workers", "expected auto or an integer from 1 to 256");
        load_fails("[server]\nworkers = 257\n", 2, "[server] workers", "expected auto");
        load_fails("[server]\nworkers = all\n", 2, "[server] workers", "expected auto");
        load_ok("[server]\nworkers = 2\n", &c);
        cr_assert_eq(c.worker_start_timeout_usec, 90u * USEC_PER_SEC, "systemd's default TimeoutStartSec");
        mef_config_done(&c);
        load_ok("[server]\nworker_start_timeout = 1000\n", &c);
        cr_assert_eq(c.worker_start_timeout_usec, USEC_PER_SEC);
        mef_config_done(&c);
        load_fails("[server]\nworker_start_timeout = 999\n", 2, "[server] worker_start_timeout", "expected");
}

Test(mef_config, cross_checks) {
        load_fails_all("cross_checks");
        mef_config_t c = { 0 };
        load_ok("[tls]\ncertificate = /a.pem\nkey = /a.key\n", &c);
        cr_assert_null(c.client_ca_file);
        mef_config_done(&c);
}

/* The dump (from the key table) loads back to the same configuration. */
Test(mef_config, dump_round_trip) {
        mef_config_t c = { 0 }, c2 = { 0 };
        load_ok("[server]\nlisten = [::1]:8443\nbase = /a/b/\n[tls]\ncertificate = /c.pem\nkey = /k.pem\n"
                "[limits]\nfirst_byte_timeout = 750\n[defaults]\npoll = 600\n",
                &c);
        char *d1 = NULL, *d2 = NULL;
        size_t n1 = 0, n2 = 0;
        FILE *f = open_memstream(&d1, &n1);
        mef_config_dump(&c, f);
        fclose(f);
        cr_assert_not_null(strstr(d1, "[server]\nlisten = [::1]:8443\nfqdn = ::1\nbase = /a/b\n"), "%s", d1);
        cr_assert_not_null(strstr(d1, "first_byte_timeout = 750\n"), "%s", d1);
        cr_assert_not_null(strstr(d1, "\nclient_ca =\n"), "%s", d1); /* unset, and reads back so */
        load_ok(d1, &c2);
        f = open_memstream(&d2, &n2);
        mef_config_dump(&c2, f);
        fclose(f);
        cr_assert_str_eq(d1, d2);
        free(d1);
        free(d2);
        mef_config_done(&c);
        mef_config_done(&c2);

        /* the root base is kept as "" and dumped as "/" */
        load_ok("[server]\nbase = /\n", &c);
        cr_assert_str_eq(c.base, "");
        f = open_memstream(&d1, &n1);
        mef_config_dump(&c, f);
        fclose(f);
        cr_assert_not_null(strstr(d1, "\nbase = /\n"), "%s", d1);
        free(d1);
        mef_config_done(&c);
}

/* An empty value unsets a key whose default is unset, as in agent.conf (issue 11: the same line
 * rules everywhere); before, each of them refused it ("certificate =": exit 78). */
Test(mef_config, empty_unsets) {
        mef_config_t c;
        load_ok("[server]\nfqdn =\n[tls]\ncertificate =\nkey =\nclient_ca =\n"
                "[store]\nuri =\npassword_file =\n[metrics]\nlisten =\n"
                "[admin]\nlisten =\ncertificate =\nkey =\nca =\n",
                &c);
        cr_assert_str_eq(c.fqdn, "127.0.0.1", "the default: the listen host");
        cr_assert_null(c.cert_file);
        cr_assert_null(c.key_file);
        cr_assert_null(c.client_ca_file);
        cr_assert_null(c.store_uri);
        cr_assert_null(c.store_password_file);
        cr_assert_null(c.metrics_host);
        cr_assert_null(c.metrics_port);
        cr_assert_null(c.admin_host);
        cr_assert_null(c.admin_cert_file);
        cr_assert_null(c.admin_key_file);
        cr_assert_null(c.admin_ca_file);
        mef_config_done(&c);
        /* the keys with a default still need a value */
        load_fails("[server]\nlisten =\n", 2, "[server] listen", NULL);
        load_fails("[server]\nbase =\n", 2, "[server] base", NULL);
        load_fails("[limits]\nretry_after =\n", 2, "[limits] retry_after", NULL);
        /* unset is unset: what needs the key still does */
        load_fails("[store]\nbackend = postgresql\nuri =\n", 0, "[store] uri", "required when backend is postgresql");
        /* set once, even to nothing */
        load_fails("[tls]\ncertificate =\ncertificate = /c.pem\n", 3, "[tls] certificate", "set twice");
}

/* The longest [store] uri (1024 characters, a PostgreSQL URI with several hosts and its
 * parameters) fits on its line: the line limit was 197 characters. */
Test(mef_config, uri_of_1024_characters) {
        char uri[1026], text[1200];
        int n = snprintf(uri, sizeof uri, "postgresql://mef@db1:5432,db2:5432,db3:5432/msce?sslmode=verify-full"
                                          "&sslrootcert=/etc/msce/");
        memset(uri + n, 'a', 1024 - n);
        uri[1024] = 0;
        snprintf(text, sizeof text, "[store]\nbackend = postgresql\nuri = %s\n", uri);
        mef_config_t c;
        load_ok(text, &c);
        cr_assert_str_eq(c.store_uri, uri);
        mef_config_done(&c);
        strcpy(uri + 1024, "a");
        snprintf(text, sizeof text, "[store]\nbackend = postgresql\nuri = %s\n", uri);
        load_fails(text, 3, "[store] uri", "expected a PostgreSQL connection URI");
}

/* The mef.conf examples of the docs (their ```ini blocks, but for cse-integration.md's, which
 * are systemd units) load: a "# comment" after a value is part of it, and made [admin] listen
 * of admin-api.md's example fail. The files they name need not exist to load. */
Test(mef_config, docs_examples) {
        static const char *const docs[] = { "docs/admin-api.md", "docs/operations.md" };
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", MSCE_SOURCE_ROOT, docs[i]);
                _cleanup_free_ char *md = NULL;
                int r = file_read_all(path, 1 << 20, &md, NULL);
                cr_assert_eq(r, 0, "%s: %s", path, strerror(-r));
                unsigned blocks = 0;
                for (char *p = md; (p = strstr(p, "\n```ini\n")); blocks++) {
                        p += strlen("\n```ini\n");
                        char *end = strstr(p, "\n```\n");
                        cr_assert_not_null(end, "%s: an ini block without its end", docs[i]);
                        mef_config_t c;
                        char err[512] = "";
                        r = mef_config_parse_buffer(docs[i], p, (size_t) (end - p) + 1, &c, err, sizeof err);
                        cr_assert_eq(r, 0, "%s, block %u: %s", docs[i], blocks + 1, err);
                        mef_config_done(&c);
                        p = end;
                }
                cr_assert_gt(blocks, 0, "%s: no ```ini block", docs[i]);
        }
}

/* The line rules of util/ini.h, which the MEF loader shares with agent.conf since issue 11. */
Test(mef_config, shared_line_rules) {
        load_fails("[server]\nbase = /a\n  fqdn = mef.example\n", 3, "[server] base",
                   "continuation lines are not supported");
        load_fails("[server] base = /a\n", 1, "[server]", "text after the section header");
        char err[512] = "";
        mef_config_t c = { 0 };
        static const char nul[] = "[server]\nbase = /a\0b\n";
        cr_assert_eq(mef_config_parse_buffer("mem.conf", nul, sizeof nul - 1, &c, err, sizeof err), -EINVAL);
        cr_assert_str_eq(err, "mem.conf:2: contains a NUL byte");
        static const char ok[] = "[server]\r\nfqdn = MEF.example ; the name in KeIDs\r\n[limits]\nretry_after: 7\n";
        cr_assert_eq(mef_config_parse_buffer("mem.conf", ok, sizeof ok - 1, &c, err, sizeof err), 0, "%s", err);
        cr_assert_str_eq(c.fqdn, "mef.example");
        cr_assert_eq(c.retry_after, 7);
        mef_config_done(&c);
}

Test(mef_config, store_keys) {
        mef_config_t c;
        load_ok("", &c);
        cr_assert_eq(c.store_backend, STORE_BACKEND_SQLITE);
        cr_assert_eq(c.store_threads, 1, "auto: one writer on SQLite");
        cr_assert_eq(c.store_busy_timeout_usec, 1000000);
        cr_assert_eq(c.store_sync, STORE_SYNC_FULL, "every commit on disk unless told otherwise");
        cr_assert_null(c.store_uri);
        cr_assert_null(c.store_password_file);
        mef_config_done(&c);

        load_ok("[store]\nbackend = postgresql\nuri = postgresql://mef@db.example.net/msce?sslmode=verify-full\n"
                "password_file = /etc/msce/db.password\nthreads = 4\nbusy_timeout = 250\n",
                &c);
        cr_assert_eq(c.store_backend, STORE_BACKEND_POSTGRESQL);
        cr_assert_str_eq(c.store_uri, "postgresql://mef@db.example.net/msce?sslmode=verify-full");
        cr_assert_str_eq(c.store_password_file, "/etc/msce/db.password");
        cr_assert_eq(c.store_threads, 4);
        cr_assert_eq(c.store_busy_timeout_usec, 250000);
        mef_config_done(&c);

        load_ok("[store]\nsynchronous = normal\n", &c);
        cr_assert_eq(c.store_sync, STORE_SYNC_NORMAL);
        mef_config_done(&c);

        load_ok("[store]\nbackend = postgresql\nuri = postgresql://mef@db.example.net/msce\nthreads = auto\n", &c);
        cr_assert_eq(c.store_threads, 5, "auto: connections side by side on PostgreSQL");
        mef_config_done(&c);

        load_fails_all("store_keys");
}

/* [limits] enrolments_per_node = N per DURATION, or 0. */
Test(mef_config, enrolments_per_node) {
        mef_config_t c;
        load_ok("", &c);
        cr_assert_eq(c.enrolments_per_node, 20);
        cr_assert_eq(c.enrolment_window_s, 60);
        mef_config_done(&c);
        static const struct {
                const char *v;
                unsigned n, w;
        } ok[] = {
                { "3 per 1h", 3, 3600 },  { "3 per 1 h", 3, 3600 }, { "1 per 30s", 1, 30 },
                { "100 per 7d", 100, 604800 }, { "5  per  2min", 5, 120 }, { "0", 0, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                char text[128];
                snprintf(text, sizeof text, "[limits]\nenrolments_per_node = %s\n", ok[i].v);
                load_ok(text, &c);
                cr_assert_eq(c.enrolments_per_node, ok[i].n, "%s", ok[i].v);
                cr_assert_eq(c.enrolment_window_s, ok[i].w, "%s", ok[i].v);
                mef_config_done(&c);
        }
        static const char *const bad[] = { "3", "3 per", "3 per 1", "3 per 1 week", "0 per 1h", "-1 per 1h",
                                           "3 per 8d", "3 per 0s", "3 per 1h x", "3 every 1h", "3 per 1hh" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char text[128];
                snprintf(text, sizeof text, "[limits]\nenrolments_per_node = %s\n", bad[i]);
                load_fails(text, 2, "[limits] enrolments_per_node", "N per DURATION");
        }
}

/* [limits] connections_per_node: 0 (no cap) to 4096. */
Test(mef_config, connections_per_node) {
        static const unsigned ok[] = { 0, 1, 4096 };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                mef_config_t c;
                char text[128];
                snprintf(text, sizeof text, "[limits]\nconnections_per_node = %u\n", ok[i]);
                load_ok(text, &c);
                cr_assert_eq(c.connections_per_node, ok[i], "%s", text);
                mef_config_done(&c);
        }
        load_fails("[limits]\nconnections_per_node = 4097\n", 2, "[limits] connections_per_node", "0 to 4096");
        load_fails("[limits]\nconnections_per_node = -1\n", 2, "[limits] connections_per_node", "0 to 4096");
}

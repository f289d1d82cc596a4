/* SPDX-License-Identifier: MIT */
/* agent/config.c: golden dumps, drop-ins, and one test per error class (file, line, key).
 * Secret files are created at run time in a temporary directory with the modes under test;
 * the fixtures in tests/unit/config/ say @DIR@ where that directory goes. */
#include <criterion/criterion.h>

#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>

#include "agent/config.h"
#include "util/util.h"

#define KPM_HEX "00112233445566778899aabbccddeeff0102030405060708"
#define PEM_CERT "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
#define PEM_KEY "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

static char dir[64]; /* short: keeps -Wformat-truncation quiet */

/* The fixtures: $MSCE_TEST_SRCDIR/config, else next to this source file. __FILE__ is relative
 * to the top build directory (three levels above this executable) when meson compiles it. */
static void fixture_path(const char *name, char *out) {
        const char *env = getenv("MSCE_TEST_SRCDIR");
        if (env) {
                snprintf(out, PATH_MAX, "%s/config/%s", env, name);
                return;
        }
        char src[PATH_MAX];
        snprintf(src, sizeof src, "%s", __FILE__);
        char *srcdir = dirname(src);
        if (srcdir[0] == '/') {
                snprintf(out, PATH_MAX, "%s/config/%s", srcdir, name);
                return;
        }
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        cr_assert_gt(n, 0);
        exe[n] = 0;
        char *top = dirname(dirname(dirname(exe)));
        snprintf(out, PATH_MAX, "%s/%s/config/%s", top, srcdir, name);
}

static char *read_text(const char *path) {
        char *s = NULL;
        int r = file_read_all(path, 1 << 20, &s, NULL);
        cr_assert_eq(r, 0, "cannot read %s: %s", path, strerror(-r));
        return s;
}

/* Replace every occurrence of from by to; returns a new heap string. */
static char *replace(const char *s, const char *from, const char *to) {
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        cr_assert_not_null(f);
        size_t fl = strlen(from);
        for (const char *p; (p = strstr(s, from)); s = p + fl)
                fprintf(f, "%.*s%s", (int) (p - s), s, to);
        fputs(s, f);
        fclose(f);
        return out;
}

static void write_file(const char *name, const char *content, mode_t mode, char *ret_path) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        _cleanup_free_ char *text = replace(content, "@DIR@", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0, "%s: %m", path);
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        cr_assert_eq(fchmod(fd, mode), 0);
        close(fd);
        if (ret_path)
                snprintf(ret_path, PATH_MAX, "%s", path);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(p);
}

static void setup(void) {
        snprintf(dir, sizeof dir, "/tmp/test-config-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
        write_file("kpm.hex", KPM_HEX "\n", 0600, NULL);
        write_file("device.key", PEM_KEY, 0600, NULL);
        write_file("device.crt", PEM_CERT, 0644, NULL);
        write_file("mef-ca.crt", PEM_CERT, 0644, NULL);
}

static void teardown(void) {
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *dump(const agent_config_t *c) {
        char *out = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&out, &size);
        cr_assert_not_null(f);
        agent_config_dump(c, f);
        fclose(f);
        return out;
}

/* Load name.conf.in from the fixtures and compare the dump with name.expected byte for byte. */
static void check_golden(const char *name) {
        char in[PATH_MAX], exp[PATH_MAX], conf[PATH_MAX], in_name[64], exp_name[64], conf_name[64];
        snprintf(in_name, sizeof in_name, "%s.conf.in", name);
        snprintf(exp_name, sizeof exp_name, "%s.expected", name);
        snprintf(conf_name, sizeof conf_name, "%s.conf", name);
        fixture_path(in_name, in);
        fixture_path(exp_name, exp);

        _cleanup_free_ char *tmpl = read_text(in);
        write_file(conf_name, tmpl, 0644, conf);

        agent_config_t c;
        char err[1024];
        int r = agent_config_load(conf, 0, &c, err, sizeof err);
        cr_assert_eq(r, 0, "%s: %s", name, err);
        _cleanup_free_ char *got = dump(&c);
        _cleanup_free_ char *got_rel = replace(got, dir, "@DIR@");
        _cleanup_free_ char *want = read_text(exp);
        cr_assert_str_eq(got_rel, want, "%s: dump differs:\n%s", name, got_rel);
        cr_assert_null(strstr(got, KPM_HEX), "the Kpm must never be dumped");

        /* The dump is a configuration too, and reads back to the same dump. */
        char again[PATH_MAX];
        write_file("again.conf", got, 0644, again);
        agent_config_t c2;
        r = agent_config_load(again, 0, &c2, err, sizeof err);
        cr_assert_eq(r, 0, "%s: dump does not load: %s", name, err);
        _cleanup_free_ char *got2 = dump(&c2);
        cr_assert_str_eq(got2, got);
        agent_config_done(&c2);
        agent_config_done(&c);
}

TestSuite(config, .init = setup, .fini = teardown);

Test(config, golden_psk_minimal) {
        check_golden("psk-minimal");
}

Test(config, golden_cert_full) {
        check_golden("cert-full");
}

Test(config, parsed_fields) {
        char conf[PATH_MAX];
        write_file("agent.conf",
                   "[node]\nid = n1\nlatitude = -33.5\nlongitude = 151.25\n"
                   "[mef]\nuri = https://MEF.Example.net:08443\npsk_identity = k\npsk_file = @DIR@/kpm.hex\n"
                   "[timing]\nconnect_timeout = 2min\nexchange_timeout = 10min\nretry_after_max = 90s\n",
                   0644, conf);
        agent_config_t c;
        char err[1024];
        cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s", err);
        cr_assert_str_eq(c.mef_host, "mef.example.net");
        cr_assert_str_eq(c.mef_port, "8443");
        cr_assert_str_eq(c.mef_base, "");
        cr_assert_str_eq(c.mef_uri, "https://mef.example.net:8443");
        cr_assert(c.has_loc);
        cr_assert(!c.loc.has_alt);
        cr_assert_float_eq(c.loc.lat, -33.5, 1e-12);
        cr_assert_float_eq(c.loc.lon, 151.25, 1e-12);
        cr_assert_eq(c.mode, TLS_MODE_PSK);
        cr_assert_eq(c.connect_timeout_usec, 120000000u);
        cr_assert_eq(c.retry_after_max_usec, 90000000u);
        cr_assert_eq(c.tls_min, TLS_VERSION_1_2);
        cr_assert_eq(c.tls_max, TLS_VERSION_1_3);
        agent_config_done(&c);
        agent_config_done(&c); /* idempotent */
        agent_config_done(NULL);
}

Test(config, ipv6_and_ipv4_hosts) {
        static const struct {
                const char *uri, *host, *port, *base;
        } cases[] = {
                { "https://[::1]:4433/x/", "::1", "4433", "/x" },
                { "https://192.0.2.7", "192.0.2.7", "443", "" },
                { "https://a-b.example/", "a-b.example", "443", "" },
                { "https://h:65535/a/b", "h", "65535", "/a/b" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[512], conf[PATH_MAX], err[1024];
                snprintf(text, sizeof text, "[node]\nid = n\n[mef]\nuri = %s\npsk_identity = k\npsk_file = @DIR@/kpm.hex\n",
                         cases[i].uri);
                write_file("agent.conf", text, 0644, conf);
                agent_config_t c;
                cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s: %s", cases[i].uri, err);
                cr_assert_str_eq(c.mef_host, cases[i].host);
                cr_assert_str_eq(c.mef_port, cases[i].port);
                cr_assert_str_eq(c.mef_base, cases[i].base);
                agent_config_done(&c);
        }
}

static void check_error(const char *text, int want_r, const char *want);

/* The longest [mef] uri (1024 characters) fits on its line; one more is too long. Before the line
 * limit became 2048 (from 197) no uri over 191 characters could be given. */
Test(config, uri_of_1024_characters) {
        char uri[1026], text[2048], conf[PATH_MAX], err[1024];
        int n = snprintf(uri, sizeof uri, "https://mef.example.net/");
        memset(uri + n, 'a', 1024 - n);
        uri[1024] = 0;
        snprintf(text, sizeof text, "[node]\nid = n\n[mef]\nuri = %s\npsk_identity = k\npsk_file = @DIR@/kpm.hex\n", uri);
        write_file("agent.conf", text, 0644, conf);
        agent_config_t c;
        cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s", err);
        cr_assert_str_eq(c.mef_uri, uri);
        cr_assert_eq(strlen(c.mef_base), 1024 - strlen("https://mef.example.net"));
        agent_config_done(&c);
        strcpy(uri + 1024, "a");
        snprintf(text, sizeof text, "[node]\nid = n\n[mef]\nuri = %s\npsk_identity = k\npsk_file = @DIR@/kpm.hex\n", uri);
        check_error(text, -EINVAL, "@DIR@/agent.conf:4: [mef] uri: too long");
}

/* The KpmID goes into the ClientHello: TLS_PSK_ID_MAX characters load, one more is refused here,
 * naming the file, the key and the limit, rather than at every handshake. */
Test(config, psk_identity_tls_limit) {
        char id[TLS_PSK_ID_MAX + 2], text[512], conf[PATH_MAX], err[1024];
        memset(id, 'k', TLS_PSK_ID_MAX);
        id[TLS_PSK_ID_MAX] = 0;
        snprintf(text, sizeof text, "[node]\nid = n\n[mef]\nuri = https://mef.example\npsk_identity = %s\npsk_file = @DIR@/kpm.hex\n", id);
        write_file("agent.conf", text, 0644, conf);
        agent_config_t c;
        cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s", err);
        cr_assert_eq(strlen(c.psk_identity), TLS_PSK_ID_MAX);
        agent_config_done(&c);
        strcpy(id + TLS_PSK_ID_MAX, "k");
        snprintf(text, sizeof text, "[node]\nid = n\n[mef]\nuri = https://mef.example\npsk_identity = %s\npsk_file = @DIR@/kpm.hex\n", id);
        check_error(text, -EINVAL, "@DIR@/agent.conf:5: [mef] psk_identity: must be 1..127 printable ASCII characters "
                                   "without spaces (the longest PSK identity TLS takes)");
}

Test(config, dropins_override_in_lexical_order) {
        char conf[PATH_MAX], d[128];
        write_file("agent.conf",
                   "[node]\nid = main\n[mef]\nuri = https://mef.example\npsk_identity = k\npsk_file = @DIR@/kpm.hex\n"
                   "[timing]\nbackoff_max = 1h\n",
                   0644, conf);
        snprintf(d, sizeof d, "%s/agent.conf.d", dir);
        cr_assert_eq(mkdir(d, 0755), 0);
        write_file("agent.conf.d/20-late.conf", "[node]\nid = from-20\n", 0644, NULL);
        write_file("agent.conf.d/10-early.conf", "[node]\nid = from-10\n[seal]\nbackend = host\n", 0644, NULL);
        write_file("agent.conf.d/30-ignored.conf.disabled", "[node]\nid = ignored\n", 0644, NULL);
        write_file("agent.conf.d/.40-hidden.conf", "[node]\nid = hidden\n", 0644, NULL);

        agent_config_t c;
        char err[1024];
        cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s", err);
        cr_assert_str_eq(c.node_id, "from-20");
        cr_assert_eq(c.seal_backend, SEAL_HOST);
        cr_assert_eq(c.backoff_max_usec, 3600000000u);
        cr_assert_str_eq(c.path, conf);
        agent_config_done(&c);

        /* An error in a drop-in names the drop-in. */
        write_file("agent.conf.d/25-bad.conf", "[timing]\n\nbackoff_min = soon\n", 0644, NULL);
        cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), -EINVAL);
        char want[PATH_MAX];
        snprintf(want, sizeof want,
                 "%s/25-bad.conf:3: [timing] backoff_min: not a duration (milliseconds, or a number with ms, s, min, h or d)",
                 d);
        cr_assert_str_eq(err, want);
}

/* A valid psk config; cases append lines to it (later values override). 6 lines. */
#define BASE "[node]\nid = n1\n[mef]\nuri = https://mef.example/msce\npsk_identity = k\npsk_file = @DIR@/kpm.hex\n"

/* Load text as DIR/agent.conf, expect failure r with exactly want (with @DIR@ substituted). */
static void check_error(const char *text, int want_r, const char *want) {
        char conf[PATH_MAX], err[1024];
        write_file("agent.conf", text, 0644, conf);
        agent_config_t c = { .node_id = (char *) "untouched" };
        int r = agent_config_load(conf, 0, &c, err, sizeof err);
        _cleanup_free_ char *expected = replace(want, "@DIR@", dir);
        cr_assert_eq(r, want_r, "%s: got %d (%s)", want, r, err);
        cr_assert_str_eq(err, expected);
        cr_assert_str_eq(c.node_id, "untouched", "ret must not be touched on failure");
        cr_assert_null(strstr(err, KPM_HEX));
}

/* Texts agent_config_load refuses, by class (the test that loads them): text, error, message. */
static const struct {
        const char *cls, *text;
        int r;
        const char *want;
} error_cases[] = {
        { "bad_number", BASE "[timing]\nconnect_timeout = 10x\n", -EINVAL,
          "@DIR@/agent.conf:8: [timing] connect_timeout: not a duration (milliseconds, or a number with ms, s, min, h or d)" },
        { "bad_number", BASE "[timing]\nconnect_timeout = 99999999999\n", -EINVAL,
          "@DIR@/agent.conf:8: [timing] connect_timeout: not a duration (milliseconds, or a number with ms, s, min, h or d)" },
        { "bad_number", BASE "[timing]\nconnect_timeout = 50ms\n", -EINVAL,
          "@DIR@/agent.conf:8: [timing] connect_timeout: out of range (100ms..5min)" },
        { "bad_number", BASE "[timing]\nexchange_timeout = 11min\n", -EINVAL,
          "@DIR@/agent.conf:8: [timing] exchange_timeout: out of range (1s..10min)" },
        { "bad_number", BASE "[timing]\nretry_after_max = 1500\n", -EINVAL,
          "@DIR@/agent.conf:8: [timing] retry_after_max: must be a whole number of seconds" },
        { "bad_number", BASE "[node]\nlatitude = 91\nlongitude = 0\n", -EINVAL,
          "@DIR@/agent.conf:8: [node] latitude: out of range (-90..90)" },
        { "bad_number", BASE "[node]\nlatitude = 1\nlongitude = nan\n", -EINVAL,
          "@DIR@/agent.conf:9: [node] longitude: not a decimal number" },
        { "backoff_order", BASE "[timing]\nbackoff_min = 10min\nbackoff_max = 5min\n", -EINVAL,
          "@DIR@/agent.conf:8: [timing] backoff_min: backoff_min is above backoff_max" },
        { "unknown_key_and_section", BASE "[node]\ncolour = blue\n", -EINVAL,
          "@DIR@/agent.conf:8: [node] colour: unknown key" },
        { "unknown_key_and_section", BASE "[nodes]\n", -EINVAL, "@DIR@/agent.conf:7: [nodes]: unknown section" },
        { "unknown_key_and_section", "id = n1\n" BASE, -EINVAL, "@DIR@/agent.conf:1: id: key outside of any section" },
        { "unknown_key_and_section", BASE "[node]\nno equals sign\n", -EINVAL,
          "@DIR@/agent.conf:8: syntax error (expected [section] or key = value)" },
        { "unknown_key_and_section", BASE "[node]\nid = n2\n  latitude = 3\n", -EINVAL,
          "@DIR@/agent.conf:9: [node] id: continuation lines are not supported (remove the indentation)" },
        { "bad_uri", BASE "[mef]\nuri = http://mef.example\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: must be https://host[:port][/base]" },
        { "bad_uri", BASE "[mef]\nuri = mef.example\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: must be https://host[:port][/base]" },
        { "bad_uri", BASE "[mef]\nuri = https://\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid host (a DNS name, an IPv4 address or [IPv6])" },
        { "bad_uri", BASE "[mef]\nuri = https://mef_example\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid host (a DNS name, an IPv4 address or [IPv6])" },
        { "bad_uri", BASE "[mef]\nuri = https://-mef.example\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid host (a DNS name, an IPv4 address or [IPv6])" },
        { "bad_uri", BASE "[mef]\nuri = https://999.1.1.1\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid host (a DNS name, an IPv4 address or [IPv6])" },
        { "bad_uri", BASE "[mef]\nuri = https://mef.example:0\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid port (1..65535)" },
        { "bad_uri", BASE "[mef]\nuri = https://mef.example:65536\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid port (1..65535)" },
        { "bad_uri", BASE "[mef]\nuri = https://mef.example:\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid port (1..65535)" },
        { "bad_uri", BASE "[mef]\nuri = https://mef.example:44x\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid port (1..65535)" },
        { "bad_uri", BASE "[mef]\nuri = https://[::1/x\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid IPv6 address" },
        { "bad_uri", BASE "[mef]\nuri = https://[zz::1]\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid IPv6 address" },
        { "bad_uri", BASE "[mef]\nuri = https://user@mef.example\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: user information is not allowed" },
        { "bad_uri", BASE "[mef]\nuri = https://mef.example/a?b\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: query and fragment are not allowed" },
        { "bad_uri", BASE "[mef]\nuri = https://mef.example/a/../b\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: empty, '.' or '..' path segment" },
        { "bad_uri", BASE "[mef]\nuri = https://mef.example/a//b\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: empty, '.' or '..' path segment" },
        { "bad_uri", BASE "[mef]\nuri = https://mef.example/a b\n", -EINVAL, "@DIR@/agent.conf:8: [mef] uri: invalid character in the path" },
        { "missing_required", "[mef]\nuri = https://mef.example\npsk_identity = k\npsk_file = @DIR@/kpm.hex\n", -EINVAL,
          "@DIR@/agent.conf: [node] id: required" },
        { "missing_required", "[node]\nid = n1\n", -EINVAL, "@DIR@/agent.conf: [mef] uri: required" },
        { "missing_required", "[node]\nid = n1\n[mef]\nuri = https://mef.example\npsk_file = @DIR@/kpm.hex\n", -EINVAL,
          "@DIR@/agent.conf: [mef] psk_identity: required (mode = psk)" },
        { "missing_required", BASE "[node]\nid =\n", -EINVAL, "@DIR@/agent.conf:8: [node] id: empty" },
        { "missing_required", BASE "[node]\nid = node 1\n", -EINVAL,
          "@DIR@/agent.conf:8: [node] id: contains a space" },
        { "missing_required", BASE "[node]\nid = ../../x\n", -EINVAL,
          "@DIR@/agent.conf:8: [node] id: not an M2M-Node-ID (contains '/')" },
        { "missing_required", BASE "[node]\nid = urn:x:1\n", -EINVAL,
          "@DIR@/agent.conf:8: [node] id: not a URN (urn:<NID>:<NSS>, NID 2..32 letters, digits, '-')" },
        { "missing_required", BASE "[mef]\nmode = x509\n", -EINVAL,
          "@DIR@/agent.conf:8: [mef] mode: must be psk or cert" },
        { "location_incomplete", BASE "[node]\nlatitude = 48.8\n", -EINVAL,
          "@DIR@/agent.conf:8: [node] latitude: longitude is missing (give both or neither)" },
        { "location_incomplete", BASE "[node]\nlongitude = 2.2\n", -EINVAL,
          "@DIR@/agent.conf:8: [node] longitude: latitude is missing (give both or neither)" },
        { "location_incomplete", BASE "[node]\naltitude = 35\n", -EINVAL,
          "@DIR@/agent.conf:8: [node] altitude: needs latitude and longitude" },
        { "tls_versions", BASE "[mef]\ntls_min_version = 1.3\ntls_max_version = 1.2\n", -EINVAL,
          "@DIR@/agent.conf:8: [mef] tls_min_version: tls_min_version 1.3 is above tls_max_version 1.2" },
        { "tls_versions", BASE "[mef]\ntls_max_version = 1.1\n", -EINVAL,
          "@DIR@/agent.conf:8: [mef] tls_max_version: must be 1.2 or 1.3" },
        { "other_values", BASE "[seal]\nbackend = tpm\n", -EINVAL,
          "@DIR@/agent.conf:8: [seal] backend: must be auto, tpm2 or host" },
        { "other_values", BASE "[seal]\npcrs = sha256:0,24\n", -EINVAL,
          "@DIR@/agent.conf:8: [seal] pcrs: must be empty (off) or <bank>:<pcr>[,<pcr>...] with PCRs 0..23, e.g. sha256:0,7" },
        { "other_values", BASE "[seal]\nstate_dir = var/lib\n", -EINVAL,
          "@DIR@/agent.conf:8: [seal] state_dir: must be an absolute path" },
        { "other_values", BASE "[consumer]\nuser = -x\n", -EINVAL,
          "@DIR@/agent.conf:8: [consumer] user: must be a user name (1..32 of A-Z a-z 0-9 _ . -, not starting with a digit, '.' or '-')" },
};

static void check_errors(const char *cls) {
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(error_cases); i++)
                if (streq(error_cases[i].cls, cls)) {
                        check_error(error_cases[i].text, error_cases[i].r, error_cases[i].want);
                        n++;
                }
        cr_assert_gt(n, 0, "no cases for %s", cls);
}

Test(config, error_bad_number) {
        check_errors("bad_number");
}

Test(config, error_backoff_order) {
        check_errors("backoff_order");
}

/* [timing] clock_wait_max: 0..24h, 0 meaning "do not wait" (the default 5min is in the golden
 * dumps). One millisecond past the bound is refused with file, line and key. */
Test(config, clock_wait_max) {
        check_error(BASE "[timing]\nclock_wait_max = 25h\n", -EINVAL,
                    "@DIR@/agent.conf:8: [timing] clock_wait_max: out of range (0..24h)");
        check_error(BASE "[timing]\nclock_wait_max = 86400001\n", -EINVAL,
                    "@DIR@/agent.conf:8: [timing] clock_wait_max: out of range (0..24h)");
        check_error(BASE "[timing]\n\nclock_wait_max = -1s\n", -EINVAL,
                    "@DIR@/agent.conf:9: [timing] clock_wait_max: not a duration (milliseconds, or a number with ms, s, min, h or d)");

        static const struct {
                const char *value;
                unsigned ms;
                const char *dumped;
        } cases[] = {
                { "0", 0, "clock_wait_max = 0\n" },
                { "24h", 86400000u, "clock_wait_max = 24h\n" },
                { "86400000ms", 86400000u, "clock_wait_max = 24h\n" },
                { "90s", 90000u, "clock_wait_max = 90s\n" },
                { "1500", 1500u, "clock_wait_max = 1500ms\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[512], conf[PATH_MAX], err[1024];
                snprintf(text, sizeof text, BASE "[timing]\nclock_wait_max = %s\n", cases[i].value);
                write_file("agent.conf", text, 0644, conf);
                agent_config_t c;
                cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s: %s", cases[i].value, err);
                cr_assert_eq(c.clock_wait_max_usec, cases[i].ms * 1000ull, "%s: %llu us", cases[i].value,
                             (unsigned long long) c.clock_wait_max_usec);
                _cleanup_free_ char *d = dump(&c);
                cr_assert(strstr(d, cases[i].dumped), "%s: dump lacks %s", cases[i].value, cases[i].dumped);
                agent_config_done(&c);
        }

        /* Not given: the default; an empty value is not a duration (no silent reset). */
        char conf[PATH_MAX], err[1024];
        write_file("agent.conf", BASE, 0644, conf);
        agent_config_t c;
        cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s", err);
        cr_assert_eq(c.clock_wait_max_usec, 300000000u);
        agent_config_done(&c);
        check_error(BASE "[timing]\nclock_wait_max =\n", -EINVAL,
                    "@DIR@/agent.conf:8: [timing] clock_wait_max: not a duration (milliseconds, or a number with ms, s, min, h or d)");
}

Test(config, error_unknown_key_and_section) {
        check_errors("unknown_key_and_section");
}

Test(config, error_line_too_long) {
        /* "user = " and 2042 characters are the 2049 of a line one too long */
        char text[4096];
        snprintf(text, sizeof text, BASE "[consumer]\nuser = %02042d\n", 0);
        check_error(text, -EINVAL, "@DIR@/agent.conf:8: line too long (at most 2048 characters)");
}

Test(config, error_bad_uri) {
        check_errors("bad_uri");
}

Test(config, error_missing_required) {
        check_errors("missing_required");
}

Test(config, error_missing_main_file) {
        char path[PATH_MAX], err[1024], want[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/none.conf", dir);
        agent_config_t c;
        cr_assert_eq(agent_config_load(path, 0, &c, err, sizeof err), -ENOENT);
        snprintf(want, sizeof want, "%s: cannot open: No such file or directory", path);
        cr_assert_str_eq(err, want);
}

Test(config, error_location_incomplete) {
        check_errors("location_incomplete");
}

Test(config, error_psk_file_mode) {
        write_file("kpm.hex", KPM_HEX "\n", 0644, NULL);
        check_error(BASE, -EPERM,
                    "@DIR@/agent.conf:6: [mef] psk_file: @DIR@/kpm.hex is readable by group or others (chmod 0600)");
        write_file("kpm.hex", KPM_HEX "\n", 0640, NULL);
        check_error(BASE, -EPERM,
                    "@DIR@/agent.conf:6: [mef] psk_file: @DIR@/kpm.hex is readable by group or others (chmod 0600)");
}

/* The check accepts exactly the Kpm files the agent's reader (secret_hex_file_read()) does: it
 * once took one line end at most, where the reader takes any number. */
Test(config, psk_file_check_agrees_with_reader) {
        static const char *const contents[] = {
                KPM_HEX, KPM_HEX "\n", KPM_HEX "\r\n", KPM_HEX "\n\n", KPM_HEX "\r\n\r\n", KPM_HEX "\n\r",
                KPM_HEX " \n", " " KPM_HEX, KPM_HEX "\n" KPM_HEX, "\n", "\r\n", KPM_HEX "0\n",
                "00112233445566778899aabbccddeeff", "00112233445566778899aabbccddee\n",
                "0011223344556677889900112233445566778899001122334455667788990011223344556677889900112233445566"
                "7788990011223344556677889900112233\n", /* 64 bytes */
                "0011223344556677889900112233445566778899001122334455667788990011223344556677889900112233445566"
                "778899001122334455667788990011223344\n", /* 65 */
        };
        char conf[PATH_MAX], kpm[PATH_MAX], err[1024];
        write_file("agent.conf", BASE, 0644, conf);
        size_t accepted = 0;
        for (size_t i = 0; i < ELEMENTSOF(contents); i++) {
                write_file("kpm.hex", contents[i], 0600, kpm);
                uint8_t key[MSG_KEY_MAX];
                size_t len = 0;
                bool read = secret_hex_file_read(kpm, MSG_KEY_MIN, MSG_KEY_MAX, key, &len) == 0;
                agent_config_t c;
                int r = agent_config_load(conf, 0, &c, err, sizeof err);
                if (r == 0)
                        agent_config_done(&c);
                cr_assert_eq(r == 0, read, "content %zu: the check says %d (%s), the reader %s", i, r, err,
                             read ? "reads it" : "refuses it");
                accepted += read;
        }
        cr_assert_eq(accepted, 8);
}

Test(config, error_psk_file_content) {
        write_file("kpm.hex", "00112233445566778899aabbccddee\n", 0600, NULL); /* 15 bytes */
        check_error(BASE, -EINVAL, "@DIR@/agent.conf:6: [mef] psk_file: @DIR@/kpm.hex: the Kpm is 15 bytes, at least 16 are needed");
        write_file("kpm.hex", "0011223344556677889g aabbccddeeff\n", 0600, NULL);
        check_error(BASE, -EINVAL, "@DIR@/agent.conf:6: [mef] psk_file: @DIR@/kpm.hex does not hold the Kpm as hex");
        char big[200];
        memset(big, 'a', 130);
        big[130] = 0;
        write_file("kpm.hex", big, 0600, NULL); /* 65 bytes */
        check_error(BASE, -EINVAL, "@DIR@/agent.conf:6: [mef] psk_file: @DIR@/kpm.hex: the Kpm is longer than 64 bytes");
        memset(big, 'a', 180);
        big[180] = 0;
        write_file("kpm.hex", big, 0600, NULL);
        check_error(BASE, -EINVAL, "@DIR@/agent.conf:6: [mef] psk_file: @DIR@/kpm.hex is too large (the Kpm is 16..64 bytes as hex)");
        write_file("kpm.hex", "", 0600, NULL);
        check_error(BASE, -ENODATA, "@DIR@/agent.conf:6: [mef] psk_file: @DIR@/kpm.hex is empty");
        check_error(BASE "[mef]\npsk_file = @DIR@/missing.hex\n", -ENOENT,
                    "@DIR@/agent.conf:8: [mef] psk_file: @DIR@/missing.hex does not exist");
        check_error(BASE "[mef]\npsk_file = @DIR@\n", -EBADFD,
                    "@DIR@/agent.conf:8: [mef] psk_file: @DIR@ is not a regular file");
        check_error(BASE "[mef]\npsk_file = kpm.hex\n", -EINVAL, "@DIR@/agent.conf:8: [mef] psk_file: must be an absolute path");
        /* 16 and 64 bytes, CRLF: fine */
        write_file("kpm.hex", "00112233445566778899AABBCCDDEEFF\r\n", 0600, NULL);
        char conf[PATH_MAX], err[1024];
        write_file("agent.conf", BASE, 0644, conf);
        agent_config_t c;
        cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s", err);
        agent_config_done(&c);
        memset(big, 'f', 128);
        big[128] = 0;
        write_file("kpm.hex", big, 0600, NULL);
        cr_assert_eq(agent_config_load(conf, 0, &c, err, sizeof err), 0, "%s", err);
        agent_config_done(&c);
}

#define CERT_BASE                                                                                   \
        "[node]\nid = n1\n[mef]\nuri = https://mef.example\nmode = cert\ncertificate = @DIR@/device.crt\n" \
        "key = @DIR@/device.key\n"

Test(config, error_cert_mode) {
        check_error(CERT_BASE, -EINVAL, "@DIR@/agent.conf: [mef] trust_anchors: required (mode = cert)");
        check_error(CERT_BASE "trust_anchors = @DIR@/nope.crt\n", -ENOENT,
                    "@DIR@/agent.conf:8: [mef] trust_anchors: @DIR@/nope.crt does not exist");
        check_error(CERT_BASE "trust_anchors = @DIR@/device.key\n", -EINVAL,
                    "@DIR@/agent.conf:8: [mef] trust_anchors: @DIR@/device.key holds no PEM certificate");
        write_file("device.key", PEM_KEY, 0604, NULL);
        check_error(CERT_BASE "trust_anchors = @DIR@/mef-ca.crt\n", -EPERM,
                    "@DIR@/agent.conf:7: [mef] key: @DIR@/device.key is readable by group or others (chmod 0600)");
        write_file("device.key", PEM_CERT, 0600, NULL);
        check_error(CERT_BASE "trust_anchors = @DIR@/mef-ca.crt\n", -EINVAL,
                    "@DIR@/agent.conf:7: [mef] key: @DIR@/device.key is not a PEM private key");
}

Test(config, error_tls_versions) {
        check_errors("tls_versions");
}

Test(config, error_other_values) {
        check_errors("other_values");
}

Test(config, enums) {
        cr_assert_str_eq(seal_backend_to_string(SEAL_TPM2), "tpm2");
        cr_assert_eq(seal_backend_from_string("host"), SEAL_HOST);
        cr_assert_eq(seal_backend_from_string("nope"), _SEAL_BACKEND_INVALID);
        cr_assert_null(seal_backend_to_string(_SEAL_BACKEND_MAX));
}

Test(config, error_nul_byte) {
        char path[PATH_MAX], err[1024], want[PATH_MAX + 64];
        static const char text[] = "[node]\nid = n1\0x\n";
        snprintf(path, sizeof path, "%s/agent.conf", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, text, sizeof text - 1), (ssize_t) sizeof text - 1);
        close(fd);
        agent_config_t c;
        cr_assert_eq(agent_config_load(path, 0, &c, err, sizeof err), -EINVAL);
        snprintf(want, sizeof want, "%s:2: contains a NUL byte", path);
        cr_assert_str_eq(err, want);
}

/* The fuzzers' entry point: one file's text from memory, nothing else read. */
Test(config, parse_buffer) {
        static const char text[] = "[node]\nid = n1\n[mef]\nuri = https://mef.example\npsk_identity = k\n"
                                   "psk_file = /nonexistent/kpm.hex\n[timing]\nbackoff_min = 2s\n";
        agent_config_t c;
        char err[1024];
        cr_assert_eq(agent_config_parse_buffer("mem.conf", text, sizeof text - 1, AGENT_CONFIG_NO_SECRETS, &c, err,
                                               sizeof err),
                     0, "%s", err);
        cr_assert_eq(c.backoff_min_usec, 2000000u);
        cr_assert_str_eq(c.path, "mem.conf");
        agent_config_done(&c);
        static const char nul[] = "[node]\nid = n\0 1\n";
        cr_assert_eq(agent_config_parse_buffer("mem.conf", nul, sizeof nul - 1, AGENT_CONFIG_NO_SECRETS, &c, err,
                                               sizeof err),
                     -EINVAL);
        cr_assert_str_eq(err, "mem.conf:2: contains a NUL byte");
}

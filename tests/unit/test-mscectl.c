/* SPDX-License-Identifier: MIT */
/* mscectl's pure parts: state.json / profile.json parsing, times, shell quoting and the
 * profile --env lines, the /proc comm check, the permission-bit check and a setup refused
 * before it writes. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "ctl/check.h"
#include "ctl/env.h"
#include "ctl/runtime.h"
#include "ctl/setup.h"
#include "util/util.h"

static int state_parse(const char *json, ctl_state_t *s, char *err) {
        return ctl_state_parse(json, strlen(json), s, err, 256);
}

static int profile_parse(const char *json, ctl_profile_t *p, char *err) {
        return ctl_profile_parse(json, strlen(json), p, err, 256);
}

Test(state, full) {
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        char err[256] = "";
        /* As agent/manager.c writes it, plus a member a later agent might add. */
        int r = state_parse("{\"state\":\"ready\",\"status\":\"Ready: KeID ab@mef\",\"since\":\"2026-11-27T20:30:00Z\","
                            "\"last_error\":null,\"next_attempt\":1790000000,\"backend\":\"tpm2\",\"keID\":\"ab@mef\","
                            "\"exp\":\"20271127T203000\",\"node\":\"node-1\",\"mef\":\"https://mef/msce\",\"pid\":4242,"
                            "\"reloads\":3,\"reloads_begun\":5,\"reload_done\":4,"
                            "\"reload_error\":\"x.conf:2: [timing] backoff_min: not a duration\","
                            "\"future\":[1,2]}",
                            &s, err);
        cr_assert_eq(r, 0, "%s", err);
        cr_assert_str_eq(s.state, "ready");
        cr_assert_str_eq(s.status, "Ready: KeID ab@mef");
        cr_assert_str_eq(s.node, "node-1");
        cr_assert_str_eq(s.mef, "https://mef/msce");
        cr_assert_str_eq(s.since, "2026-11-27T20:30:00Z");
        cr_assert_null(s.last_error);
        cr_assert_str_eq(s.next_attempt, "1790000000");
        cr_assert_str_eq(s.backend, "tpm2");
        cr_assert_str_eq(s.ke_id, "ab@mef");
        cr_assert_str_eq(s.exp, "20271127T203000");
        cr_assert_eq(s.pid, 4242);
        cr_assert_eq(s.reloads, 3);
        cr_assert_eq(s.reloads_begun, 5);
        cr_assert_eq(s.reload_done, 4);
        cr_assert_str_eq(s.reload_error, "x.conf:2: [timing] backoff_min: not a duration");
}

Test(state, minimal) {
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        char err[256];
        cr_assert_eq(state_parse("{\"state\":\"enrolling\"}", &s, err), 0);
        cr_assert_str_eq(s.state, "enrolling");
        cr_assert_eq(s.pid, 0);
        cr_assert_eq(s.reloads, -1, "no \"reloads\": an agent that does not count them");
        cr_assert_eq(s.reloads_begun, -1, "no \"reloads_begun\": an agent that does not number them");
        cr_assert_eq(s.reload_done, -1);
        cr_assert_null(s.reload_error);
        cr_assert_null(s.since);
        cr_assert_null(s.ke_id);
}

/* C1 too (U+009B is a CSI to a terminal that takes it); the rest of UTF-8 stays. */
Test(state, control_characters_in_last_error_are_masked) {
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        char err[256];
        cr_assert_eq(state_parse("{\"state\":\"backoff\",\"last_error\":\"a\\u001b[2Jb\\nc\\u009b1m\\u00e9\\u007f\"}",
                                 &s, err),
                     0);
        cr_assert_str_eq(s.last_error, "a?[2Jb?c??1m\xc3\xa9?");
}

/* jansson's error text quotes the bytes near the error: a control byte of a malformed file
 * (outside a string, where nothing masks it) must not reach the terminal, nor a C1 one. */
Test(state, malformed_json_error_has_no_control_bytes) {
        const char *docs[] = { "{\"state\":\x1b[2J\"ready\"}", "\x1b]0;title\x07", "{\"state\":\xc2\x9b\x32J}",
                               "{\"state\":\"ready\"}\x1b[2J" };
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                for (int profile = 0; profile < 2; profile++) {
                        _cleanup_(ctl_state_done) ctl_state_t s = {};
                        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
                        char err[256] = "";
                        int r = profile ? profile_parse(docs[i], &p, err) : state_parse(docs[i], &s, err);
                        cr_expect_eq(r, -EBADMSG, "doc %zu", i);
                        cr_expect(strstr(err, "not JSON (line 1 column "), "doc %zu: %s", i, err);
                        for (const char *c = err; *c; c++)
                                cr_expect((unsigned char) *c >= 0x20 && (unsigned char) *c < 0x7f,
                                          "doc %zu: byte 0x%02x in the error", i, (unsigned char) *c);
                }
        }
}

Test(state, rejected) {
        static const struct {
                const char *json;
                const char *why; /* part of the message */
        } cases[] = {
                { "", "not JSON" },
                { "{\"state\":", "not JSON" },
                { "[\"ready\"]", "not a JSON object" },
                { "{}", "\"state\" is missing" },
                { "{\"state\":\"\"}", "\"state\" is missing" },
                { "{\"state\":null}", "\"state\" is missing" },
                { "{\"state\":7}", "\"state\" is not a string" },
                { "{\"state\":\"a\\nb\"}", "control characters" },
                { "{\"state\":\"ready\",\"pid\":\"12\"}", "\"pid\"" },
                { "{\"state\":\"ready\",\"pid\":0}", "\"pid\"" },
                { "{\"state\":\"ready\",\"pid\":-5}", "\"pid\"" },
                { "{\"state\":\"ready\",\"pid\":4294967296}", "\"pid\"" },
                { "{\"state\":\"ready\",\"reloads\":-1}", "\"reloads\" is not a count" },
                { "{\"state\":\"ready\",\"reloads\":\"2\"}", "\"reloads\" is not a count" },
                { "{\"state\":\"ready\",\"reloads_begun\":-1}", "\"reloads_begun\" is not a count" },
                { "{\"state\":\"ready\",\"reload_done\":1.5}", "\"reload_done\" is not a count" },
                { "{\"state\":\"ready\",\"reload_error\":5}", "\"reload_error\" is not a string" },
                { "{\"state\":\"ready\",\"since\":-1}", "\"since\" is negative" },
                { "{\"state\":\"ready\",\"since\":true}", "\"since\" is not a string" },
                { "{\"state\":\"ready\",\"exp\":\"1969-12-31T23:59:59Z\"}",
                  "\"exp\" 1969-12-31T23:59:59Z is outside 1970..9999" },
                { "{\"state\":\"ready\",\"exp\":253402300800000000}", "\"exp\" 253402300800000000 is outside" },
                { "{\"state\":\"ready\",\"exp\":\"soon\"}", "\"exp\" is not a time" },
                { "{\"state\":\"ready\",\"state\":\"ready\"}", "not JSON" },
                { "{\"state\":\"re\\u0000dy\"}", "NUL" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ctl_state_t s = { .pid = 99 };
                char err[256] = "";
                int r = state_parse(cases[i].json, &s, err);
                cr_expect_eq(r, -EBADMSG, "case %zu (%s): %d", i, cases[i].json, r);
                cr_expect(strstr(err, cases[i].why), "case %zu: '%s' lacks '%s'", i, err, cases[i].why);
                cr_expect_eq(s.pid, 99, "case %zu: output touched on failure", i);
                cr_expect_null(s.state);
        }
}

Test(state, limits) {
        /* A last_error of CTL_FIELD_MAX bytes is fine, one more is refused. */
        char *json = malloc(CTL_FIELD_MAX + 64);
        cr_assert_not_null(json);
        for (size_t extra = 0; extra <= 1; extra++) {
                int n = snprintf(json, CTL_FIELD_MAX + 64, "{\"state\":\"x\",\"last_error\":\"");
                memset(json + n, 'e', CTL_FIELD_MAX + extra);
                strcpy(json + n + CTL_FIELD_MAX + extra, "\"}");
                ctl_state_t s = {};
                char err[256] = "";
                int r = state_parse(json, &s, err);
                if (extra) {
                        cr_expect_eq(r, -EBADMSG);
                        cr_expect(strstr(err, "longer than"), "%s", err);
                } else {
                        cr_expect_eq(r, 0, "%s", err);
                        cr_expect_eq(strlen(s.last_error), CTL_FIELD_MAX);
                }
                ctl_state_done(&s);
        }
        free(json);

        /* Whole documents above CTL_JSON_MAX are refused before parsing. */
        size_t big = CTL_JSON_MAX + 1;
        char *doc = malloc(big);
        cr_assert_not_null(doc);
        memset(doc, ' ', big);
        memcpy(doc, "{\"state\":\"x\"}", 13);
        ctl_state_t s = {};
        char err[256] = "";
        cr_expect_eq(ctl_state_parse(doc, big, &s, err, sizeof err), -EBADMSG);
        cr_expect(strstr(err, "larger than"), "%s", err);
        cr_expect_eq(ctl_state_parse(doc, big - 1, &s, err, sizeof err), 0, "%s", err);
        ctl_state_done(&s);
        free(doc);
}

#define PROFILE_OK                                                                                        \
        "{\"cseID\":\"/mn-cse-1\",\"cseBase\":\"https://in.example.net:8443/~/in-cse/in-name\","          \
        "\"keID\":\"3f2a@mef.example.net\",\"exp\":\"20271127T203000\","                                 \
        "\"targets\":[{\"id\":\"/in-cse\",\"kpsaID\":\"k1@mef\"},{\"id\":\"/maf-1\",\"kpsaID\":\"k'2@mef\"}]," \
        "\"poll\":86400}"

Test(profile, full) {
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        char err[256] = "";
        cr_assert_eq(profile_parse(PROFILE_OK, &p, err), 0, "%s", err);
        cr_assert_str_eq(p.cse_id, "/mn-cse-1");
        cr_assert_str_eq(p.cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        cr_assert_str_eq(p.ke_id, "3f2a@mef.example.net");
        cr_assert_str_eq(p.exp, "20271127T203000");
        cr_assert_eq(p.n_targets, 2);
        cr_assert_str_eq(p.targets[1].id, "/maf-1");
        cr_assert_str_eq(p.targets[1].kpsa_id, "k'2@mef");
        cr_assert_eq(p.poll, 86400);
}

Test(profile, rejected) {
        static const struct {
                const char *json;
                const char *why;
        } cases[] = {
                { "{\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\"}", "\"cseID\" is missing" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\"}", "\"exp\" is missing" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"2027-11-27\"}", "\"exp\" is not" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"19691231T235959\"}",
                  "\"exp\" 19691231T235959 is outside 1970..9999" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"00000101T000000\"}",
                  "\"exp\" 00000101T000000 is outside" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\\nX=1\",\"keID\":\"k\",\"exp\":\"20271127T203000\"}",
                  "control characters" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\",\"targets\":{}}",
                  "not an array" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\",\"targets\":[1]}",
                  "not an object" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\","
                  "\"targets\":[{\"id\":\"/in\"}]}",
                  "needs \"id\" and \"kpsaID\"" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\","
                  "\"targets\":[{\"id\":\"/in cse\",\"kpsaID\":\"k\"}]}",
                  "without spaces" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\",\"poll\":-1}",
                  "\"poll\"" },
                { "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\",\"poll\":\"60\"}",
                  "\"poll\"" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ctl_profile_t p = {};
                char err[256] = "";
                cr_expect_eq(profile_parse(cases[i].json, &p, err), -EBADMSG, "case %zu", i);
                cr_expect(strstr(err, cases[i].why), "case %zu: '%s' lacks '%s'", i, err, cases[i].why);
                cr_expect_null(p.cse_id, "case %zu: output touched on failure", i);
        }
}

Test(profile, target_limit) {
        /* MSG_TARGETS_MAX targets parse, one more is refused. */
        for (unsigned n = MSG_TARGETS_MAX; n <= MSG_TARGETS_MAX + 1; n++) {
                char json[4096];
                size_t o = (size_t) snprintf(json, sizeof json,
                                             "{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\","
                                             "\"targets\":[");
                for (unsigned i = 0; i < n; i++)
                        o += (size_t) snprintf(json + o, sizeof json - o, "%s{\"id\":\"/t%u\",\"kpsaID\":\"k%u\"}",
                                               i ? "," : "", i, i);
                snprintf(json + o, sizeof json - o, "]}");
                ctl_profile_t p = {};
                char err[256] = "";
                int r = profile_parse(json, &p, err);
                if (n == MSG_TARGETS_MAX) {
                        cr_expect_eq(r, 0, "%s", err);
                        cr_expect_eq(p.n_targets, MSG_TARGETS_MAX);
                } else
                        cr_expect_eq(r, -EBADMSG);
                ctl_profile_done(&p);
        }
}

/* Evaluate NAME=<quoted> in sh and return what $NAME holds. */
static char *sh_eval(const char *quoted) {
        _cleanup_free_ char *script = NULL;
        cr_assert(asprintf(&script, "V=%s; printf '%%s' \"$V\"", quoted) >= 0);
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                dup2(fds[1], STDOUT_FILENO);
                close(fds[0]);
                close(fds[1]);
                execl("/bin/sh", "sh", "-c", script, (char *) NULL);
                _exit(127);
        }
        close(fds[1]);
        char *out = calloc(1, 4096);
        cr_assert_not_null(out);
        size_t n = 0;
        ssize_t k;
        while ((k = read(fds[0], out + n, 4095 - n)) > 0)
                n += (size_t) k;
        close(fds[0]);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        return out;
}

Test(env, quote) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "plain", "'plain'" },
                { "", "''" },
                /* with a quote: double quotes, which systemd's EnvironmentFile= reads as sh does */
                { "it's", "\"it's\"" },
                { "''", "\"''\"" },
                { "it's $HOME `id` \"x\" \\n", "\"it's \\$HOME \\`id\\` \\\"x\\\" \\\\n\"" },
                { "$HOME `id` \"x\" \\n ;|&", "'$HOME `id` \"x\" \\n ;|&'" },
                { "https://in.example.net:8443/~/in-cse/in-name", "'https://in.example.net:8443/~/in-cse/in-name'" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *q = NULL, *back = NULL;
                cr_assert_eq(ctl_shell_quote(cases[i].in, &q), 0);
                cr_expect_str_eq(q, cases[i].out);
                back = sh_eval(q);
                cr_expect_str_eq(back, cases[i].in, "sh reads back '%s' for '%s'", back, cases[i].in);
        }
}

Test(env, quote_refuses_control_characters) {
        const char *bad[] = { "a\nb", "a\rb", "\t", "x\x1b[2J", "del\x7f" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char *q = (char *) 0x1;
                cr_expect_eq(ctl_shell_quote(bad[i], &q), -EINVAL, "case %zu", i);
                cr_expect_eq(q, (char *) 0x1, "case %zu: output touched", i);
        }
}

static char *env_text(const ctl_profile_t *p, int *ret) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        cr_assert_not_null(f);
        *ret = ctl_profile_env(p, f);
        fclose(f);
        return buf;
}

Test(env, profile_lines) {
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        char err[256];
        cr_assert_eq(profile_parse(PROFILE_OK, &p, err), 0);
        int r;
        _cleanup_free_ char *text = env_text(&p, &r);
        cr_assert_eq(r, 0);
        cr_expect_str_eq(text, "MSCE_CSE_ID='/mn-cse-1'\n"
                               "MSCE_CSE_BASE='https://in.example.net:8443/~/in-cse/in-name'\n"
                               "MSCE_KEID='3f2a@mef.example.net'\n"
                               "MSCE_EXP='20271127T203000'\n"
                               "MSCE_POLL='86400'\n"
                               "MSCE_TARGET_IDS='/in-cse /maf-1'\n"
                               "MSCE_KPSA_IDS=\"k1@mef k'2@mef\"\n");
}

Test(env, no_targets_no_poll) {
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        char err[256];
        cr_assert_eq(profile_parse("{\"cseID\":\"c\",\"cseBase\":\"b\",\"keID\":\"k\",\"exp\":\"20271127T203000\"}", &p,
                                   err),
                     0);
        int r;
        _cleanup_free_ char *text = env_text(&p, &r);
        cr_assert_eq(r, 0);
        cr_expect_str_eq(text, "MSCE_CSE_ID='c'\nMSCE_CSE_BASE='b'\nMSCE_KEID='k'\nMSCE_EXP='20271127T203000'\n"
                               "MSCE_TARGET_IDS=''\nMSCE_KPSA_IDS=''\n");
}

Test(env, all_or_nothing) {
        /* A value that cannot be quoted (only possible in a hand-made struct): no line at all. */
        ctl_profile_t p = { .cse_id = (char *) "c", .cse_base = (char *) "b\nX=1", .ke_id = (char *) "k",
                            .exp = (char *) "20271127T203000" };
        int r;
        _cleanup_free_ char *text = env_text(&p, &r);
        cr_expect_eq(r, -EINVAL);
        cr_expect_str_eq(text, "");
}

static char proc_root[] = "/tmp/test-mscectl-proc-XXXXXX";

static void proc_setup(void) {
        cr_assert_not_null(mkdtemp(proc_root));
        const struct {
                const char *pid, *comm;
        } procs[] = { { "100", "msce-agent\n" }, { "200", "sleep\n" }, { "300", "msce-agent-x\n" } };
        for (size_t i = 0; i < ELEMENTSOF(procs); i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s", proc_root, procs[i].pid);
                cr_assert_eq(mkdir(path, 0755), 0);
                strcat(path, "/comm");
                cr_assert_eq(file_write_atomic(path, procs[i].comm, strlen(procs[i].comm), 0644), 0);
        }
}

static void proc_teardown(void) {
        const char *pids[] = { "100", "200", "300" };
        for (size_t i = 0; i < ELEMENTSOF(pids); i++) {
                char path[PATH_MAX];
                snprintf(path, sizeof path, "%s/%s/comm", proc_root, pids[i]);
                unlink(path);
                snprintf(path, sizeof path, "%s/%s", proc_root, pids[i]);
                rmdir(path);
        }
        rmdir(proc_root);
}

Test(proc, comm, .init = proc_setup, .fini = proc_teardown) {
        cr_expect_eq(ctl_proc_comm_is(proc_root, 100, "msce-agent"), 1);
        cr_expect_eq(ctl_proc_comm_is(proc_root, 200, "msce-agent"), 0);
        cr_expect_eq(ctl_proc_comm_is(proc_root, 300, "msce-agent"), 0);
        cr_expect_eq(ctl_proc_comm_is(proc_root, 400, "msce-agent"), -ESRCH, "a gone process");
        cr_expect_eq(ctl_proc_comm_is(proc_root, 0, "msce-agent"), -EINVAL);
        cr_expect_eq(ctl_proc_comm_is(proc_root, -1, "msce-agent"), -EINVAL);
        /* and the real thing */
        cr_expect_eq(ctl_proc_comm_is("/proc", getpid(), "msce-agent"), 0);
}

Test(runtime, read) {
        char dir[] = "/tmp/test-mscectl-rt-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", dir, CTL_STATE_FILE);
        char *text = NULL;
        size_t len;
        cr_expect_eq(ctl_runtime_read(dir, CTL_STATE_FILE, &text, &len), -ENOENT);
        cr_assert_eq(file_write_atomic(path, "{\"state\":\"ready\"}\n", 18, 0644), 0);
        cr_assert_eq(ctl_runtime_read(dir, CTL_STATE_FILE, &text, &len), 0);
        cr_expect_eq(len, 18);
        cr_expect_str_eq(text, "{\"state\":\"ready\"}\n");
        free(text);
        unlink(path);
        rmdir(dir);
}

/* A Kpm path that is a symlink: setup refuses to replace it before anything is written, and
 * the drop-in directory it made on the way is gone again ("nothing was changed"). */
Test(setup, unreadable_previous_leaves_no_directory) {
        char dir[] = "/tmp/test-mscectl-setup-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char config[PATH_MAX], kpm_in[PATH_MAX], kpm[PATH_MAX], dropin_dir[PATH_MAX];
        snprintf(config, sizeof config, "%s/agent.conf", dir);
        snprintf(kpm_in, sizeof kpm_in, "%s/kpm.hex", dir);
        snprintf(kpm, sizeof kpm, "%s/%s", dir, CTL_SETUP_KPM);
        snprintf(dropin_dir, sizeof dropin_dir, "%s/agent.conf.d", dir);
        cr_assert_eq(file_write_atomic(config, "", 0, 0644), 0);
        cr_assert_eq(file_write_atomic(kpm_in, "00112233445566778899aabbccddeeff\n", 33, 0600), 0);
        cr_assert_eq(symlink(kpm_in, kpm), 0);
        struct passwd *pw = getpwuid(geteuid());
        cr_assert_not_null(pw);
        ctl_setup_opts_t o = { .config = config, .node_id = "node-1", .mef_uri = "https://mef.example.net/msce",
                               .psk_identity = "kpm-1", .kpm_file = kpm_in, .agent_user = pw->pw_name };
        char err[1536] = "";
        bool refused = true;
        cr_expect_eq(ctl_setup_run(&o, err, sizeof err, NULL, NULL, &refused), -EBADFD, "%s", err);
        cr_expect_not(refused);
        cr_expect(access(dropin_dir, F_OK) < 0 && errno == ENOENT, "%s left behind", dropin_dir);
        struct stat st;
        cr_expect(lstat(kpm, &st) == 0 && S_ISLNK(st.st_mode), "the symlink replaced");
        unlink(kpm);
        unlink(kpm_in);
        unlink(config);
        rmdir(dropin_dir);
        rmdir(dir);
}

typedef struct setup_run {
        ctl_setup_opts_t o;
        char err[1536];
        bool refused;
        int r;
} setup_run_t;

static void *setup_thread(void *arg) {
        setup_run_t *s = arg;
        s->r = ctl_setup_run(&s->o, s->err, sizeof s->err, NULL, NULL, &s->refused);
        return NULL;
}

/* The configuration's directory removed while setup runs (after its stat(), while it reads the
 * Kpm from a FIFO): setup makes the drop-in directory alone, not that parent again, which its
 * undo would then leave behind (mkdir -p did, 0755). A writer's open() of the FIFO returns once
 * setup has opened it to read: past the stat(). */
Test(setup, vanished_config_directory_is_not_made_again, .timeout = 30) {
        char dir[] = "/tmp/test-mscectl-setup-gone-XXXXXX";
        cr_assert_not_null(mkdtemp(dir));
        char etc[PATH_MAX], config[PATH_MAX], fifo[PATH_MAX], dropin_dir[PATH_MAX], kpm[PATH_MAX];
        cr_assert_eq(path_join(dir, "etc", etc) | path_join(etc, "agent.conf", config) |
                             path_join(dir, "kpm.fifo", fifo) | path_join(etc, "agent.conf.d", dropin_dir) |
                             path_join(etc, CTL_SETUP_KPM, kpm),
                     0);
        cr_assert_eq(mkdir(etc, 0755), 0);
        cr_assert_eq(file_write_atomic(config, "", 0, 0644), 0);
        cr_assert_eq(mkfifo(fifo, 0600), 0);
        struct passwd *pw = getpwuid(geteuid());
        cr_assert_not_null(pw);
        setup_run_t s = { .o = { .config = config, .node_id = "node-1", .mef_uri = "https://mef.example.net/msce",
                                 .psk_identity = "kpm-1", .kpm_file = fifo, .agent_user = pw->pw_name } };
        pthread_t t;
        cr_assert_eq(pthread_create(&t, NULL, setup_thread, &s), 0);
        int fd = open(fifo, O_WRONLY | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(unlink(config), 0);
        cr_assert_eq(rmdir(etc), 0);
        cr_assert_eq(write(fd, "00112233445566778899aabbccddeeff\n", 33), 33);
        close(fd);
        cr_assert_eq(pthread_join(t, NULL), 0);
        cr_expect_eq(s.r, -ENOENT, "%d: %s", s.r, s.err);
        cr_expect(strstr(s.err, "cannot create"), "%s", s.err);
        cr_expect_not(s.refused);
        struct stat st = {};
        cr_expect(stat(etc, &st) < 0 && errno == ENOENT, "%s made again (mode %o) and left behind", etc,
                  (unsigned) st.st_mode & 07777);
        unlink(kpm);
        rmdir(dropin_dir);
        rmdir(etc);
        unlink(fifo);
        rmdir(dir);
}

Test(time, parse) {
        static const struct {
                const char *s;
                time_t t;
        } ok[] = {
                { "20261127T203000", 1795811400 },
                { "2026-11-27T20:30:00Z", 1795811400 },
                { "2026-11-27T20:30:00", 1795811400 },
                { "2026-11-27 20:30:00", 1795811400 },
                { "2026-11-27T20:30:00+00:00", 1795811400 },
                { "1795811400", 1795811400 },
                { "1795811400123456", 1795811400 }, /* microseconds */
                { "0", 0 },
                /* the range's ends: 1970-01-01T00:00:00Z .. 9999-12-31T23:59:59Z */
                { "1970-01-01T00:00:00Z", 0 },
                { "19700101T000000", 0 },
                { "9999-12-31T23:59:59Z", 253402300799 },
                { "99991231T235959", 253402300799 },
                { "253402300799000000", 253402300799 },
        };
        for (size_t i = 0; i < ELEMENTSOF(ok); i++) {
                time_t t = -1;
                cr_expect_eq(ctl_time_parse(ok[i].s, &t), 0, "%s", ok[i].s);
                cr_expect_eq(t, ok[i].t, "%s: %lld", ok[i].s, (long long) t);
        }
        const char *bad[] = {
                "",      "now", "2026-11-27T20:30:00+01:00", "2026-02-30T00:00:00Z", "2026-13-01T00:00:00Z",
                "2026-11-27T24:00:00Z", "20261127 203000", "-5", "1e9", "123456789012345678901",
                "2026-11-27T20:30:00ZZ",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                time_t t = 77;
                cr_expect_eq(ctl_time_parse(bad[i], &t), -EINVAL, "'%s'", bad[i]);
                cr_expect_eq(t, 77, "'%s': output touched", bad[i]);
        }
        /* Well-formed but outside the range: before 1970 as -1 (which timegm() also returns for
         * an error), -2 and year 0; microseconds past 9999; more than 64 bits. */
        const char *range[] = {
                "1969-12-31T23:59:59Z", "1969-12-31 23:59:58", "19691231T235959", "0000-01-01T00:00:00Z",
                "00000101T000000",      "253402300800000000",  "99999999999999999999",
        };
        for (size_t i = 0; i < ELEMENTSOF(range); i++) {
                time_t t = 77;
                cr_expect_eq(ctl_time_parse(range[i], &t), -ERANGE, "'%s'", range[i]);
                cr_expect_eq(t, 77, "'%s': output touched", range[i]);
        }
}

Test(time, relative) {
        static const struct {
                long long delta; /* t - now */
                const char *want;
        } cases[] = {
                { 0, "now" },
                { -5, "5s ago" },
                { 120, "in 2min" },
                { -125, "2min 5s ago" },
                { -(3 * 3600 + 2 * 60 + 9), "3h 2min ago" },
                { 7200, "in 2h" },
                { -(86400 + 3600), "1 day 1h ago" },
                { 364LL * 86400, "in 364 days" },
        };
        time_t now = 1795811400;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char out[48];
                ctl_time_relative((time_t) (now + cases[i].delta), now, out);
                cr_expect_str_eq(out, cases[i].want, "delta %lld", cases[i].delta);
        }
}

Test(access, permission_bits) {
        gid_t groups[] = { 997, 109 }; /* msce, tss */
        /* owner */
        cr_expect(ctl_access_ok(997, 0, 0100600, 997, groups, 2, R_OK | W_OK));
        cr_expect(!ctl_access_ok(997, 0, 0100400, 997, groups, 2, W_OK));
        /* a root-owned 0600 secret: root's bits do not apply to the agent's user */
        cr_expect(!ctl_access_ok(0, 0, 0100600, 997, groups, 2, R_OK));
        /* group: /dev/tpmrm0 tss 0660 */
        cr_expect(ctl_access_ok(102, 109, 020660, 997, groups, 2, R_OK | W_OK));
        cr_expect(!ctl_access_ok(102, 109, 020660, 997, groups, 1, R_OK), "not a member of tss");
        /* owner bits win over group bits, as in the kernel */
        cr_expect(!ctl_access_ok(997, 997, 0100060, 997, groups, 2, R_OK));
        /* others */
        cr_expect(ctl_access_ok(0, 0, 0100644, 997, groups, 2, R_OK));
        cr_expect(!ctl_access_ok(0, 0, 0100644, 997, groups, 2, W_OK));
        /* directories need x */
        cr_expect(ctl_access_ok(997, 997, 040700, 997, groups, 2, R_OK | W_OK | X_OK));
        cr_expect(!ctl_access_ok(997, 997, 040600, 997, groups, 2, R_OK | W_OK | X_OK));
}

Test(health, per_state) {
        char buf[32];
        cr_assert_eq(ctl_health_of(NULL, false, false), CTL_HEALTH_NO_STATE);
        cr_assert_eq(ctl_health_of("ready", true, false), CTL_HEALTH_READY);
        cr_assert_eq(ctl_health_of("ready", false, false), CTL_HEALTH_NOT_RUNNING);
        cr_assert_eq(ctl_health_of("ready", true, true), CTL_HEALTH_EXPIRED);
        cr_assert_eq(ctl_health_of("backoff", true, false), CTL_HEALTH_BACKOFF);
        cr_assert_eq(ctl_health_of("backoff", true, true), CTL_HEALTH_EXPIRED);
        /* the refusals say why the profile could not be renewed: before EXPIRED */
        cr_assert_eq(ctl_health_of("rejected", true, true), CTL_HEALTH_REJECTED);
        cr_assert_eq(ctl_health_of("revoked", true, false), CTL_HEALTH_REVOKED);
        cr_assert_eq(ctl_health_of("incompatible", true, false), CTL_HEALTH_INCOMPATIBLE);
        /* the agent exits on a configuration error */
        cr_assert_eq(ctl_health_of("configuration-error", false, false), CTL_HEALTH_CONFIG);
        cr_assert_eq(ctl_health_of("configuration-error", false, true), CTL_HEALTH_CONFIG);
        /* no agent renews an expired profile: EXPIRED, with or without state.json */
        cr_assert_eq(ctl_health_of("ready", false, true), CTL_HEALTH_EXPIRED);
        cr_assert_eq(ctl_health_of(NULL, false, true), CTL_HEALTH_EXPIRED);
        cr_assert_eq(ctl_health_of("enrol", true, false), CTL_HEALTH_BUSY);
        cr_assert_str_eq(ctl_health_label(CTL_HEALTH_BUSY, "enrol", buf), "ENROLLING");
        cr_assert_str_eq(ctl_health_label(CTL_HEALTH_BUSY, "something-new", buf), "SOMETHING-NEW");
        cr_assert_str_eq(ctl_health_label(CTL_HEALTH_EXPIRED, "ready", buf), "EXPIRED");
        int codes[_CTL_HEALTH_MAX];
        for (int h = 0; h < _CTL_HEALTH_MAX; h++) {
                codes[h] = ctl_health_exit(h);
                for (int k = 0; k < h; k++)
                        cr_assert_neq(codes[h], codes[k], "exit codes %d and %d are equal", h, k);
                cr_assert(codes[h] != 1 && codes[h] != 2, "1 and 2 are failure and usage");
        }
        cr_assert_eq(ctl_health_exit(CTL_HEALTH_READY), 0);
}

Test(logs, argv) {
        const char *av[24];
        ctl_logs_opts_t o = { .follow = true, .lines = "10", .file = "/x/system.journal" };
        cr_assert_eq(ctl_logs_argv(&o, av, 24), 0);
        const char *want[] = { "journalctl", "--unit=msce-agent.service", "--catalog", "--no-pager",
                               "--file=/x/system.journal", "--follow", "--lines", "10", NULL };
        for (size_t i = 0; i < sizeof want / sizeof *want; i++)
                cr_assert_eq(av[i] == NULL, want[i] == NULL);
        for (size_t i = 0; want[i]; i++)
                cr_assert_str_eq(av[i], want[i]);
        cr_assert_eq(ctl_logs_argv(&o, av, 4), -E2BIG);
}

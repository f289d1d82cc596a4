/* SPDX-License-Identifier: MIT */
/* msce-mef's operator commands (mef/cli*.c) through mef_cli_run(), against a store in a
 * temporary directory (SQLite): a change the store committed is told done, though a read after
 * fails; a restore whose COMMIT lost its answer keeps its key and store. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <unistd.h>

#include "mef/cli.h"
#include "mef/ops.h"
#include "util/util.h"
#include "store-fault.h"
#include "store-tmp.h"

#define FP "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static char tmpdir[] = "/tmp/test-mef-cli-XXXXXX";
static char out_path[sizeof tmpdir + 16], err_path[sizeof tmpdir + 16];
static mef_config_t cfg;

/* cfg: the store NAME.db with the master key NAME.key in tmpdir. */
static void config_at(const char *name) {
        char ini[512], err[256];
        mef_config_done(&cfg);
        snprintf(ini, sizeof ini, "[store]\npath = %s/%s.db\nmaster_key = %s/%s.key\n", tmpdir, name, tmpdir, name);
        cr_assert_eq(mef_config_parse_buffer("test", ini, strlen(ini), &cfg, err, sizeof err), 0, "%s", err);
}

static void setup(void) {
        cr_assert_not_null(mkdtemp(tmpdir));
        config_at("mef");
        snprintf(out_path, sizeof out_path, "%s/stdout", tmpdir);
        snprintf(err_path, sizeof err_path, "%s/stderr", tmpdir);
}

static void teardown(void) {
        mef_config_done(&cfg);
        store_tmp_remove(tmpdir);
}

TestSuite(mef_cli, .init = setup, .fini = teardown);

/* fd (stdout, stderr) into path from now; the one it was before. */
static int redirect(int fd, const char *path) {
        int saved = dup(fd), to = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert(saved >= 0 && to >= 0 && dup2(to, fd) == fd);
        close(to);
        return saved;
}

static void restore_fd(int fd, int saved) {
        cr_assert_eq(dup2(saved, fd), fd);
        close(saved);
}

/* One command (the arguments after "msce-mef", NULL-terminated), its stdout into out_path and
 * its stderr into err_path; its exit status. */
static int run(const char *const *args) {
        char *argv[16] = { (char *) "msce-mef" };
        int argc = 1;
        for (; args[argc - 1]; argc++) {
                cr_assert_lt(argc, (int) ELEMENTSOF(argv));
                argv[argc] = (char *) args[argc - 1];
        }
        fflush(stdout);
        fflush(stderr);
        int out = redirect(STDOUT_FILENO, out_path), err = redirect(STDERR_FILENO, err_path);
        int r = mef_cli_run(&cfg, argc, argv);
        fflush(stdout);
        fflush(stderr);
        restore_fd(STDOUT_FILENO, out);
        restore_fd(STDERR_FILENO, err);
        return r;
}

/* The node as `node show --json` prints it now, without its enrolments (nor their cursor). */
static json_t *node_now(const char *id) {
        cr_assert_eq(run((const char *const[]) { "--json", "node", "show", id, NULL }), 0);
        json_t *j = json_load_file(out_path, 0, NULL);
        cr_assert_not_null(j);
        json_object_del(j, "enrolments");
        json_object_del(j, "enrolmentsNext");
        return j;
}

/* Told a failure, an operator would add again (and meet "exists already") or revoke twice. */
Test(mef_cli, change_committed_is_told_done_when_a_read_after_it_fails) {
        cr_assert_eq(run((const char *const[]) { "init", NULL }), 0);
        static const struct {
                const char *args[12], *state;
        } steps[] = {
                { { "--json", "node", "add", "urn:dev:ops:c1", "--cse-id", "/mn-c1", "--cse-base",
                    "https://in.example.net/b", "--cert-fp", FP },
                  "active" },
                { { "--json", "node", "reenrol", "urn:dev:ops:c1" }, "reenrol" },
                { { "--json", "node", "revoke", "urn:dev:ops:c1" }, "revoked" },
                { { "--json", "node", "activate", "urn:dev:ops:c1" }, "active" },
        };
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                store_fault_armed = true;
                int st = run(steps[i].args);
                cr_assert(store_fault_committed, "node %s: nothing committed", steps[i].args[2]);
                cr_assert_eq(st, 0, "node %s: exit status %d", steps[i].args[2], st);
                store_fault_armed = store_fault_committed = false;
                json_t *j = json_load_file(out_path, 0, NULL), *now = node_now("urn:dev:ops:c1");
                cr_assert_str_eq(json_string_value(json_object_get(j, "state")), steps[i].state);
                cr_assert(json_equal(j, now), "node %s: printed and stored differ", steps[i].args[2]);
                json_decref(j);
                json_decref(now);
        }

        /* and without --json: the add is told, not a failure */
        store_fault_armed = true;
        cr_assert_eq(run((const char *const[]) { "node", "add", "urn:dev:ops:c2", "--cse-id", "/mn-c2", "--cse-base",
                                                  "https://in.example.net/b", "--cert-fp", FP, NULL }),
                     1, "a second node of one certificate is refused");
        cr_assert_not(store_fault_committed);
        char fp2[] = FP;
        fp2[0] = 'f';
        cr_assert_eq(run((const char *const[]) { "node", "add", "urn:dev:ops:c2", "--cse-id", "/mn-c2", "--cse-base",
                                                  "https://in.example.net/b", "--cert-fp", fp2, NULL }),
                     0);
        cr_assert(store_fault_committed);
}

/* msce-mef(8): a revoked node's new enrolments are refused until node activate; node reenrol,
 * which an enrolment ends by setting the node active, must not lift that. */
Test(mef_cli, reenrol_of_a_revoked_node_is_refused) {
        cr_assert_eq(run((const char *const[]) { "init", NULL }), 0);
        cr_assert_eq(run((const char *const[]) { "node", "add", "urn:dev:ops:v1", "--cse-id", "/mn-v1", "--cse-base",
                                                  "https://in.example.net/b", "--cert-fp", FP, NULL }),
                     0);
        cr_assert_eq(run((const char *const[]) { "node", "revoke", "urn:dev:ops:v1", NULL }), 0);
        cr_assert_eq(run((const char *const[]) { "node", "reenrol", "urn:dev:ops:v1", NULL }), 1);
        _cleanup_free_ char *said = NULL;
        size_t len;
        cr_assert_eq(file_read_all(err_path, 4096, &said, &len), 0);
        cr_assert_str_eq(said, "msce-mef: node reenrol: node urn:dev:ops:v1 is revoked: node activate first\n");
        json_t *now = node_now("urn:dev:ops:v1");
        cr_assert_str_eq(json_string_value(json_object_get(now, "state")), "revoked");
        json_decref(now);
        cr_assert_eq(run((const char *const[]) { "node", "activate", "urn:dev:ops:v1", NULL }), 0);
        cr_assert_eq(run((const char *const[]) { "node", "reenrol", "urn:dev:ops:v1", NULL }), 0);
        now = node_now("urn:dev:ops:v1");
        cr_assert_str_eq(json_string_value(json_object_get(now, "state")), "reenrol");
        json_decref(now);
}

/* A restore whose COMMIT went out and whose answer was lost (PostgreSQL's connection gone, its
 * bound passed) may have taken: the rows are then in the store, sealed under the key the restore
 * installed. Taking that key away (and PostgreSQL's check value) would leave them unopenable. */
Test(mef_cli, restore_keeps_its_key_when_its_commit_is_unanswered) {
        cr_assert_eq(run((const char *const[]) { "init", NULL }), 0);
        cr_assert_eq(run((const char *const[]) { "node", "add", "urn:dev:ops:r1", "--cse-id", "/mn-r1", "--cse-base",
                                                  "https://in.example.net/b", "--cert-fp", FP, NULL }),
                     0);
        json_t *before = node_now("urn:dev:ops:r1");
        char pass[sizeof tmpdir + 16], backup[sizeof tmpdir + 16], key[sizeof tmpdir + 16];
        snprintf(pass, sizeof pass, "%s/pass", tmpdir);
        snprintf(backup, sizeof backup, "%s/backup", tmpdir);
        snprintf(key, sizeof key, "%s/copy.key", tmpdir);
        int fd = open(pass, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        cr_assert(fd >= 0 && write(fd, "restore test\n", 13) == 13);
        close(fd);
        cr_assert_eq(run((const char *const[]) { "backup", backup, "--passphrase-file", pass, "--kdf-iterations",
                                                  "100000", NULL }),
                     0);

        config_at("copy");
        store_fault_answer_lost = true;
        int st = run((const char *const[]) { "restore", backup, "--passphrase-file", pass, NULL });
        store_fault_answer_lost = false;
        cr_assert_neq(st, 0, "the restore is told failed");
        _cleanup_free_ char *said = NULL;
        size_t len;
        cr_assert_eq(file_read_all(err_path, 4096, &said, &len), 0);
        cr_assert_not_null(strstr(said, "whether the restore took is unknown"), "%s", said);
        cr_assert_not_null(strstr(said, "restore --force"), "%s", said);
        cr_assert_eq(access(key, R_OK), 0, "the key file the restore installed stays");
        json_t *now = node_now("urn:dev:ops:r1"); /* its rows open under it */
        cr_assert(json_equal(before, now));
        json_decref(now);

        /* what the message says to do */
        cr_assert_eq(run((const char *const[]) { "restore", backup, "--passphrase-file", pass, "--force", NULL }), 0);
        now = node_now("urn:dev:ops:r1");
        cr_assert(json_equal(before, now));
        json_decref(now);
        json_decref(before);
}

/* The store of cfg ("mef", config_at()), opened past the CLI; its path into db. */
static mef_store_t *store_of_config(char db[static sizeof tmpdir + 16]) {
        char mk[sizeof tmpdir + 16];
        snprintf(db, sizeof tmpdir + 16, "%s/mef.db", tmpdir);
        snprintf(mk, sizeof mk, "%s/mef.key", tmpdir);
        mef_store_t *s = NULL;
        cr_assert_eq(store_open(db, mk, false, &s), 0);
        return s;
}

/* sql on the store's file db, behind the store's back. */
static void sql_behind(const char *db, const char *sql) {
        sqlite3 *raw = NULL;
        cr_assert_eq(sqlite3_open_v2(db, &raw, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(raw));
        sqlite3_close(raw);
}

/* What the last run() printed on stdout, for the caller to free. */
static char *printed(void) {
        char *out = NULL;
        size_t len;
        cr_assert_eq(file_read_all(out_path, 1 << 20, &out, &len), 0);
        return out;
}

/* A node enrolling in a loop keeps thousands of enrolments: node show lists the newest
 * OPS_NODE_ENROLMENTS_MAX (as GET /admin/v1/nodes/{id}), then how to list the rest, and the
 * command it names lists exactly those. */
Test(mef_cli, node_show_bounds_the_enrolments) {
        enum { EXTRA = 2, N = OPS_NODE_ENROLMENTS_MAX + EXTRA };
        const char *id = "urn:dev:ops:loop-1";
        cr_assert_eq(run((const char *const[]) { "init", NULL }), 0);
        cr_assert_eq(run((const char *const[]) { "node", "add", id, "--cse-id", "/mn-loop-1", "--cse-base",
                                                  "https://in.example.net/b", "--cert-fp", FP, NULL }),
                     0);
        char db[sizeof tmpdir + 16];
        mef_store_t *s = store_of_config(db);
        cr_assert_eq(store_begin(s), 0);
        uint8_t key[32] = {};
        for (int i = 0; i < N; i++) {
                /* each one second after the one before, retired but the newest */
                store_enrolment_t e = { .state = i == N - 1 ? ENROLMENT_ACTIVE : ENROLMENT_RETIRED,
                                        .created = 1700000000 + i, .exp = 1800000000 };
                snprintf(e.ke_id, sizeof e.ke_id, "%032x@mef.example.net", i);
                snprintf(e.node_id, sizeof e.node_id, "%s", id);
                cr_assert_eq(store_enrolment_add(s, &e, key, sizeof key), 0);
        }
        cr_assert_eq(store_commit(s), 0);
        store_close(s);

        cr_assert_eq(run((const char *const[]) { "node", "show", id, NULL }), 0);
        _cleanup_free_ char *out = NULL;
        size_t len;
        cr_assert_eq(file_read_all(out_path, 1 << 20, &out, &len), 0);
        char want[128];
        snprintf(want, sizeof want, "Enrolments:      the newest %u, then more (listed below)\n",
                 OPS_NODE_ENROLMENTS_MAX);
        cr_assert_not_null(strstr(out, want), "%.300s", out);
        char newest[64], oldest_shown[64], first_left[64];
        snprintf(newest, sizeof newest, "%032x@", N - 1);
        snprintf(oldest_shown, sizeof oldest_shown, "%032x@", EXTRA);
        snprintf(first_left, sizeof first_left, "%032x@", EXTRA - 1);
        cr_assert_not_null(strstr(out, newest));
        cr_assert_not_null(strstr(out, oldest_shown));
        cr_assert_null(strstr(out, first_left), "more than the newest %u shown", OPS_NODE_ENROLMENTS_MAX);
        size_t rows = 0;
        for (const char *p = out; (p = strstr(p, "@mef.example.net")); p++)
                rows++;
        cr_assert_eq(rows, OPS_NODE_ENROLMENTS_MAX);
        snprintf(want, sizeof want, "\nThe rest: msce-mef enrolments %s --after ", id);
        const char *rest = strstr(out, want);
        cr_assert_not_null(rest, "no pointer to the rest: %s", out + len - MIN(len, 300u));
        char after[64];
        cr_assert_eq(sscanf(rest + strlen(want), "%63s", after), 1);

        /* --json: the same, and the cursor as the API's enrolmentsNext */
        cr_assert_eq(run((const char *const[]) { "--json", "node", "show", id, NULL }), 0);
        json_t *j = json_load_file(out_path, 0, NULL);
        cr_assert_not_null(j);
        cr_assert_eq(json_array_size(json_object_get(j, "enrolments")), OPS_NODE_ENROLMENTS_MAX);
        cr_assert_str_eq(json_string_value(json_object_get(j, "enrolmentsNext")), after);
        json_decref(j);

        /* the command named lists the rest, and only those */
        cr_assert_eq(run((const char *const[]) { "--json", "enrolments", id, "--after", after, NULL }), 0);
        j = json_load_file(out_path, 0, NULL);
        cr_assert_not_null(j);
        cr_assert_eq(json_array_size(j), EXTRA);
        const char *ke = json_string_value(json_object_get(json_array_get(j, 0), "keID"));
        cr_assert(ke && strncmp(ke, first_left, strlen(first_left)) == 0, "%s", ke);
        json_decref(j);
}

/* Nodes whose KpmID is over TLS_PSK_ID_MAX (an older store; put there behind the store's back):
 * node show says this one can never enrol, and what serve logs at start names the first
 * OPS_LONG_KPM_IDS_NAMED and counts the rest. */
Test(mef_cli, long_kpm_ids_are_said) {
        cr_assert_eq(run((const char *const[]) { "init", NULL }), 0);
        char id[32], cse[32], psk[32], hex[sizeof tmpdir + 32];
        for (int i = 0; i < 8; i++) {
                snprintf(id, sizeof id, "urn:dev:ops:k%d", i);
                snprintf(cse, sizeof cse, "/mn-k%d", i);
                snprintf(psk, sizeof psk, "kpm-%d", i);
                snprintf(hex, sizeof hex, "%s/k%d.hex", tmpdir, i);
                cr_assert_eq(run((const char *const[]) { "node", "add", id, "--cse-id", cse, "--cse-base",
                                                          "https://in.example.net/b", "--psk-id", psk, "--generate-psk",
                                                          hex, NULL }),
                             0);
        }
        char db[sizeof tmpdir + 16];
        mef_store_t *s = store_of_config(db);
        char said[OPS_LONG_KPM_IDS_NAMED * (MSG_ID_MAX + 2) + 512];
        cr_assert_eq(ops_long_kpm_ids_said(s, said, sizeof said), 0);
        cr_assert_str_eq(said, "");
        /* k1..k7: 7 over the limit, k0 stays */
        sql_behind(db, "UPDATE nodes SET kpm_id = kpm_id || printf('%.128c', 'k') WHERE node_id <> 'urn:dev:ops:k0'");
        cr_assert_eq(ops_long_kpm_ids_said(s, said, sizeof said), 1);
        cr_assert_str_eq(said, "7 nodes with a KpmID longer than 127 characters (added before that limit), which no TLS "
                               "handshake can offer, can never enrol: urn:dev:ops:k1, urn:dev:ops:k2, urn:dev:ops:k3, "
                               "urn:dev:ops:k4, urn:dev:ops:k5 and 2 more; give each a shorter one (node remove, node "
                               "add --psk-id, and the agent's psk_identity)");
        store_close(s);

        cr_assert_eq(run((const char *const[]) { "node", "show", "urn:dev:ops:k3", NULL }), 0);
        _cleanup_free_ char *out = printed();
        cr_assert_not_null(strstr(out, "\nWarning:         the KpmID is longer than 127 characters"), "%s", out);
        cr_assert_eq(run((const char *const[]) { "node", "show", "urn:dev:ops:k0", NULL }), 0);
        free(out);
        out = printed();
        cr_assert_null(strstr(out, "Warning:"), "%s", out);
}

/* The audit table is for a terminal: a control byte (C1 too: U+009B is a CSI to a terminal that
 * takes it) or a byte that is not UTF-8 prints as '?', the rest of UTF-8 as it is. The store
 * keeps the controls (store_audit() makes text UTF-8 only); the byte that is not UTF-8 is put
 * there behind its back (a row from before store_audit() made it so). */
Test(mef_cli, audit_table_masks_what_a_terminal_should_not_take) {
        cr_assert_eq(run((const char *const[]) { "init", NULL }), 0);
        char db[sizeof tmpdir + 16];
        mef_store_t *s = store_of_config(db);
        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_audit(s, "cli:test", "node-import", "/srv/a\x1b[2J\xc2\x9b" "31m\x7f.csv", "x"), 0);
        cr_assert_eq(store_commit(s), 0);
        store_close(s);
        /* "f\xc3\xa1brica \xff" */
        sql_behind(db, "UPDATE audit SET detail = CAST(x'66c3a1627269636120ff' AS TEXT) WHERE action = 'node-import'");

        cr_assert_eq(run((const char *const[]) { "audit", "--action", "node-import", NULL }), 0);
        _cleanup_free_ char *out = printed();
        cr_assert_not_null(strstr(out, "/srv/a?[2J??31m?.csv"), "%s", out);
        cr_assert_not_null(strstr(out, "f\xc3\xa1" "brica ?\n"), "%s", out);
}

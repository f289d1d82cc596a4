/* SPDX-License-Identifier: MIT */
/* msce-mef's operator commands (mef/cli*.c) through mef_cli_run(), against a store in a
 * temporary directory: a change the store committed is told done, though a read after fails. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <unistd.h>

#include "mef/cli.h"
#include "util/util.h"
#include "store-fault.h"
#include "store-tmp.h"

#define FP "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static char tmpdir[] = "/tmp/test-mef-cli-XXXXXX";
static char out_path[sizeof tmpdir + 16];
static mef_config_t cfg;

static void setup(void) {
        char ini[512], err[256];
        cr_assert_not_null(mkdtemp(tmpdir));
        snprintf(ini, sizeof ini, "[store]\npath = %s/mef.db\nmaster_key = %s/master.key\n", tmpdir, tmpdir);
        cr_assert_eq(mef_config_parse_buffer("test", ini, strlen(ini), &cfg, err, sizeof err), 0, "%s", err);
        snprintf(out_path, sizeof out_path, "%s/stdout", tmpdir);
}

static void teardown(void) {
        mef_config_done(&cfg);
        store_tmp_remove(tmpdir);
}

TestSuite(mef_cli, .init = setup, .fini = teardown);

/* One command (the arguments after "msce-mef", NULL-terminated), its stdout into out_path; its
 * exit status. */
static int run(const char *const *args) {
        char *argv[16] = { (char *) "msce-mef" };
        int argc = 1;
        for (; args[argc - 1]; argc++) {
                cr_assert_lt(argc, (int) ELEMENTSOF(argv));
                argv[argc] = (char *) args[argc - 1];
        }
        fflush(stdout);
        int saved = dup(STDOUT_FILENO), fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert(saved >= 0 && fd >= 0 && dup2(fd, STDOUT_FILENO) == STDOUT_FILENO);
        close(fd);
        int r = mef_cli_run(&cfg, argc, argv);
        fflush(stdout);
        cr_assert_eq(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
        close(saved);
        return r;
}

/* The node as `node show --json` prints it now, without its enrolments. */
static json_t *node_now(const char *id) {
        cr_assert_eq(run((const char *const[]) { "--json", "node", "show", id, NULL }), 0);
        json_t *j = json_load_file(out_path, 0, NULL);
        cr_assert_not_null(j);
        json_object_del(j, "enrolments");
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

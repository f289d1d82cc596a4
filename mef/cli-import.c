/* SPDX-License-Identifier: MIT */
/* The bulk lifecycle from the factory line: node import FILE (CSV with a header row, or JSON
 * Lines) in one transaction (mef/ops-import.c), node export (never a key), node revoke --from FILE. */
#include <inttypes.h>

#include "mef/cli-internal.h"
#include "mef/ops-import.h"
#include "proto/ids.h"

#define EXPORT_PAGE 1000u

/* ---- node import ---- */

int cmd_node_import(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option dry_run_opt = { "dry-run", no_argument, NULL, 'n' };
        const char *cmd = "node import", *dry_run_arg = NULL;
        int r = cli_own_option(c, cmd, def, argc, argv, ":hn", &dry_run_opt, &dry_run_arg);
        if (r >= 0)
                return r;
        if ((r = cli_positionals(cmd, argc, argv, 1, "FILE")))
                return r;
        const char *path = argv[optind];
        bool dry_run = dry_run_arg != NULL;

        _cleanup_(import_reader_done) import_reader_t rd = { .print_errors = true };
        if ((r = import_reader_open(&rd, path)) < 0)
                return cli_failf("%s: %s: %s", cmd, path, strerror(-r));
        const char *why = import_reader_start(&rd, &r);
        if (why)
                return cli_failf("%s: %s:%u: %s", cmd, path, rd.lineno, why);
        if (r < 0)
                return cli_failf("%s: %s: %s", cmd, path, strerror(-r));
        if ((r = cli_open(c, false)))
                return r;

        json_t *errors = c->json ? json_array() : NULL;
        ops_import_result_t res;
        r = ops_import_run(c->store, c->cfg, cli_actor(), path, &rd, dry_run, errors, &res);
        if (r < 0) {
                json_decref(errors);
                if (rd.lineno)
                        return cli_failf("%s: %s:%u: %s (nothing imported)", cmd, path, rd.lineno, cli_strerror(r));
                return cli_failf("%s: %s: %s (nothing imported)", cmd, path, cli_strerror(r));
        }
        if (res.n_errors - res.n_loose > IMPORT_ERRORS_SHOWN)
                fprintf(stderr, "msce-mef: %s: %u more bad rows not shown\n", path,
                        res.n_errors - res.n_loose - IMPORT_ERRORS_SHOWN);
        bool changed = res.n_errors == 0 && !dry_run;
        if (c->json) {
                json_t *j = json_pack("{s:s, s:b, s:b, s:I, s:I, s:I, s:o}", "file", path, "dryRun", dry_run,
                                      "imported", res.imported, "rows", (json_int_t) res.rows, "added",
                                      (json_int_t) (changed ? res.added : 0), "unchanged", (json_int_t) res.unchanged,
                                      "errors", errors ?: json_array());
                if (j && !changed)
                        json_object_set_new(j, "wouldAdd", json_integer(res.added));
                r = cli_json_print(j);
                return r ? r : res.n_errors ? MEF_EXIT_FAILURE : 0;
        }
        if (res.n_loose)
                return cli_failf("%s: %s: %u of %u rows are bad (%u for the file's mode): nothing imported", cmd, path,
                                 res.n_errors, res.rows, res.n_loose);
        if (res.n_errors)
                return cli_failf("%s: %s: %u of %u rows are bad: nothing imported", cmd, path, res.n_errors, res.rows);
        if (dry_run)
                printf("Dry run: %u rows, %u would be added, %u unchanged; nothing was changed.\n", res.rows, res.added,
                       res.unchanged);
        else
                printf("Imported %u rows: %u added, %u unchanged.\n", res.rows, res.added, res.unchanged);
        return 0;
}

/* ---- node export ---- */

static int export_option(const char *cmd, int o, const char *arg, cli_page_t *p, void *userdata) {
        if (o != 'f')
                return -1;
        if (!streq(arg, "csv") && !streq(arg, "jsonl"))
                return cli_usage_error(cmd, "--format: expected csv or jsonl");
        *(bool *) userdata = streq(arg, "csv");
        return 0;
}

int cmd_node_export(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS, PAGE_OPTIONS, { "format", required_argument, NULL, 'f' }, {}
        };
        const char *cmd = "node export";
        cli_page_t p = { .page.state = -1 };
        bool csv = false;
        int r = cli_page_options(c, cmd, def, argc, argv, &p, opts, export_option, &csv);
        if (r >= 0)
                return r;
        if ((r = cli_page_nodes_begin(c, cmd, argc, argv, &p)))
                return r;
        if (csv)
                fputs(OPS_EXPORT_CSV_HEADER, stdout);
        /* page by page: memory stays one page whatever the fleet */
        size_t want = p.page.limit, done = 0;
        char after[MSG_ID_MAX + 1] = "";
        if (p.page.after)
                snprintf(after, sizeof after, "%s", p.page.after);
        for (;;) {
                _cleanup_free_ store_node_t *list = NULL;
                size_t n = 0;
                p.page.after = after[0] ? after : NULL;
                p.page.limit = want ? MIN(want - done, (size_t) EXPORT_PAGE) : EXPORT_PAGE;
                r = store_node_page(c->store, &p.page, &list, &n);
                if (r < 0)
                        return cli_fail(cmd, r);
                for (size_t i = 0; i < n; i++)
                        if ((r = ops_node_export(stdout, &list[i], csv)) < 0)
                                return cli_fail(cmd, r);
                done += n;
                if (n < p.page.limit || (want && done >= want))
                        break;
                snprintf(after, sizeof after, "%s", list[n - 1].node_id);
        }
        if (fflush(stdout) != 0)
                return cli_fail(cmd, -EIO);
        return 0;
}

/* ---- node revoke [--from FILE] ---- */

/* The node IDs of FILE: an import or export file (its nodeID), or one node ID a line. */
static int revoke_from(cli_t *c, const char *cmd, const char *path) {
        _cleanup_(import_reader_done) import_reader_t rd = { .print_errors = true };
        int r = import_reader_open(&rd, path);
        if (r < 0)
                return cli_failf("%s: %s: %s", cmd, path, strerror(-r));
        /* a first line without a comma or '{' is a node ID, not a header */
        r = import_line_next(&rd);
        if (r <= 0)
                return cli_failf("%s: %s: %s", cmd, path, r == 0 ? "empty file" : strerror(-r));
        bool plain = rd.line[0] != '{' && !strchr(rd.line, ',') && !streq(rd.line, "nodeID");
        if (fseek(rd.f, 0, SEEK_SET) < 0)
                return cli_fail(cmd, negative_errno());
        rd.lineno = 0;
        const char *why = NULL;
        if (!plain && (why = import_reader_start(&rd, &r)))
                return cli_failf("%s: %s:%u: %s", cmd, path, rd.lineno, why);
        if ((r = cli_open(c, false)))
                return r;
        if ((r = store_begin(c->store)) < 0)
                return cli_fail(cmd, r);
        unsigned n_errors = 0, revoked = 0, unchanged = 0;
        import_record_t rec;
        for (;;) {
                if (plain) {
                        r = import_line_next(&rd);
                        why = r == -E2BIG ? "line too long" : NULL;
                        r = r == -E2BIG ? 1 : r;
                        memset(&rec, 0, sizeof rec);
                        rec.v[F_NODE_ID] = rd.line;
                } else
                        r = import_reader_next(&rd, &rec, &why);
                if (r <= 0)
                        break;
                const char *id = rec.v[F_NODE_ID];
                if (!why && !id)
                        why = "nodeID: missing";
                if (!why && ids_check_node_id(id, &why) < 0) {
                        char msg[128];
                        snprintf(msg, sizeof msg, "nodeID: %s", why);
                        import_row_error(&n_errors, &rd, NULL, "%s", msg);
                        continue;
                }
                store_node_t n;
                if (!why && (r = store_node_get(c->store, id, &n)) < 0) {
                        if (r != -ENOENT)
                                break;
                        why = "no such node";
                }
                if (why) {
                        import_row_error(&n_errors, &rd, NULL, "%s", why);
                        continue;
                }
                if (n.state == NODE_REVOKED) {
                        unchanged++;
                        continue;
                }
                char detail[64];
                snprintf(detail, sizeof detail, "state %s -> revoked (from a file)", node_state_to_string(n.state));
                r = store_node_set_state(c->store, id, NODE_REVOKED);
                if (r == 0)
                        r = store_enrolment_set_state_for_node(c->store, id, ENROLMENT_REVOKED);
                if (r == 0)
                        r = store_audit(c->store, cli_actor(), "node-revoke", id, detail);
                if (r < 0)
                        break;
                revoked++;
        }
        if (r == 0 && n_errors == 0)
                r = store_commit(c->store);
        if (r < 0 || n_errors) {
                store_rollback(c->store);
                if (r < 0)
                        return cli_failf("%s: %s:%u: %s (nothing revoked)", cmd, path, rd.lineno, cli_strerror(r));
                return cli_failf("%s: %s: %u bad lines: nothing revoked", cmd, path, n_errors);
        }
        if (c->json) {
                json_t *j = json_pack("{s:s, s:I, s:I}", "file", path, "revoked", (json_int_t) revoked, "unchanged",
                                      (json_int_t) unchanged);
                return cli_json_print(j);
        }
        printf("Revoked %u nodes and their active enrolments (%u were revoked already).\n", revoked, unchanged);
        return 0;
}

int cmd_node_revoke(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option from_opt = { "from", required_argument, NULL, 'f' };
        const char *cmd = "node revoke", *from = NULL;
        int r = cli_own_option(c, cmd, def, argc, argv, ":h", &from_opt, &from);
        if (r >= 0)
                return r;
        if (!from)
                return cmd_node_change(c, def, argc, argv);
        r = cli_positionals(cmd, argc, argv, 0, NULL);
        return r ? r : revoke_from(c, cmd, from);
}

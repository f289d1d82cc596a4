/* SPDX-License-Identifier: MIT */
/* enrolments: the keys the MEF issued (never the keys themselves). */
#include "mef/cli-internal.h"

json_t *cli_enrolments_json(const store_enrolment_t *list, size_t n) {
        return ops_json_array(list, n, sizeof *list, ops_enrolment_json);
}

int cli_enrolments_table(const store_enrolment_t *list, size_t n) {
        _cleanup_(cli_table_free) cli_table_t t = { .n_cols = 6 };
        int r = cli_table_row(&t, "KE_ID", "NODE_ID", "STATE", "CREATED", "EXPIRES", "LTK");
        for (size_t i = 0; r == 0 && i < n; i++) {
                char created[32], exp[32];
                ops_time_format(list[i].created, created);
                ops_time_format(list[i].exp, exp);
                r = cli_table_row(&t, list[i].ke_id, list[i].node_id, ops_enrolment_state(&list[i]),
                              created, exp, list[i].ltk_transported ? "transported" : "Ke");
        }
        return cli_table_print(&t, r, "table");
}

/* ---- enrolments, audit ---- */

int cmd_enrolments(cli_t *c, const command_t *def, int argc, char **argv) {
        const char *cmd = "enrolments";
        cli_page_t p = { .page.state = -1 };
        int r = cli_page_options(c, cmd, def, argc, argv, &p, NULL, NULL, NULL);
        if (r >= 0)
                return r;
        if (argc - optind > 1)
                return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
        const char *node_id = argc > optind ? argv[optind] : NULL;
        if (p.state && ops_enrolment_state_filter(p.state, &p.page) < 0)
                return cli_usage_error(cmd, "--state: expected active, expired, retired, revoked or deregistered");
        if ((r = cli_open(c, false)))
                return r;
        if (node_id) {
                _cleanup_free_ store_node_t *n = NULL;
                if ((r = cli_node_get(c, cmd, node_id, &n)))
                        return r;
        }
        _cleanup_free_ store_enrolment_t *list = NULL;
        size_t n = 0;
        r = store_enrolment_page(c->store, node_id, &p.page, &list, &n);
        if (r == -ENOENT)
                return cli_failf("%s: --after %s: no such enrolment", cmd, p.page.after);
        if (r < 0)
                return cli_fail(cmd, r);
        cli_page_next(&p, n, n ? list[n - 1].ke_id : NULL);
        if (c->json)
                return cli_json_print(cli_enrolments_json(list, n));
        return cli_enrolments_table(list, n);
}

/* SPDX-License-Identifier: MIT */
/* enrolments: the keys the MEF issued (never the keys themselves). */
#include "mef/cli-internal.h"

json_t *cli_enrolments_json(const store_enrolment_t *list, size_t n) {
        return ops_json_array(list, n, sizeof *list, ops_enrolment_json);
}

static const char *const enrolment_header[] = { "KE_ID", "NODE_ID", "STATE", "CREATED", "EXPIRES", "LTK" };

static int enrolment_cells(cli_table_t *t, const void *row) {
        const store_enrolment_t *e = row;
        char created[32], exp[32];
        ops_time_format(e->created, created);
        ops_time_format(e->exp, exp);
        return cli_table_row(t, e->ke_id, e->node_id, ops_enrolment_state(e), created, exp,
                             e->ltk_transported ? "transported" : "Ke");
}

int cli_enrolments_table(const store_enrolment_t *list, size_t n) {
        _cleanup_(cli_table_free) cli_table_t t = { .n_cols = ELEMENTSOF(enrolment_header) };
        int r = cli_table_row_array(&t, enrolment_header);
        for (size_t i = 0; r == 0 && i < n; i++)
                r = enrolment_cells(&t, &list[i]);
        return cli_table_print(&t, r, "table");
}

/* userdata: the node ID, or NULL for every node's */
static int enrolment_page_fetch(cli_t *c, const store_page_t *p, void **ret, size_t *ret_n, const void *userdata) {
        return store_enrolment_page(c->store, userdata, p, (store_enrolment_t **) ret, ret_n);
}

/* where the next page goes on from: the row's place, which stays valid if the row goes */
static void enrolment_key(const void *row, char buf[CLI_LIST_KEY_MAX]) {
        _Static_assert(STORE_ENROLMENT_CURSOR_MAX <= CLI_LIST_KEY_MAX, "a cursor fits");
        store_enrolment_cursor(row, buf);
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
        cli_list_t list = { .n_cols = ELEMENTSOF(enrolment_header), .header = enrolment_header,
                            .row_size = sizeof(store_enrolment_t), .fetch = enrolment_page_fetch,
                            .key = enrolment_key, .to_json = ops_enrolment_json, .to_cells = enrolment_cells,
                            .userdata = node_id };
        r = cli_list_print(c, &list, &p);
        if (r == -ENOENT && p.page.after) /* a KeID given that names none */
                return cli_failf("%s: --after %s: no such enrolment", cmd, p.page.after);
        return r < 0 ? cli_fail(cmd, r) : 0;
}

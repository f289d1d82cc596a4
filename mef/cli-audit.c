/* SPDX-License-Identifier: MIT */
/* audit: the trail of changes and exchanges, newest first. */
#include <inttypes.h>

#include "mef/cli-internal.h"

static int audit_option(const char *cmd, int o, const char *arg, cli_page_t *p, void *userdata) {
        switch (o) {
        case 'n': /* -n N: the short form of --limit */
                return cli_page_option(cmd, OPT_LIMIT, arg, p);
        case 'a':
                p->page.action = arg;
                return 0;
        case OPT_STATE:
                return cli_usage_error(cmd, "--state: audit rows have none (--action filters them)");
        default:
                return -1;
        }
}

static int audit_page_fetch(cli_t *c, const store_page_t *p, void **ret, size_t *ret_n, const void *userdata) {
        return store_audit_page(c->store, p, (store_audit_entry_t **) ret, ret_n);
}

static void audit_key(const void *row, char buf[CLI_LIST_KEY_MAX]) {
        snprintf(buf, CLI_LIST_KEY_MAX, "%" PRId64, ((const store_audit_entry_t *) row)->id);
}

static int audit_cells(cli_table_t *t, const void *row) {
        const store_audit_entry_t *e = row;
        char id[24], ts[32];
        snprintf(id, sizeof id, "%" PRId64, e->id);
        ops_time_format(e->ts, ts);
        return cli_table_row(t, id, ts, e->actor, e->action, e->subject, e->detail);
}

int cmd_audit(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS, PAGE_OPTIONS, { "action", required_argument, NULL, 'a' }, {}
        };
        static const char *const header[] = { "ID", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAIL" };
        static const cli_list_t list = { .n_cols = ELEMENTSOF(header), .header = header,
                                         .row_size = sizeof(store_audit_entry_t), .fetch = audit_page_fetch,
                                         .key = audit_key, .id_key = true, .to_json = ops_audit_json,
                                         .to_cells = audit_cells };
        const char *cmd = "audit";
        cli_page_t p = { .page.state = -1 };
        int r = cli_page_options(c, cmd, def, argc, argv, &p, opts, audit_option, NULL);
        if (r >= 0)
                return r;
        if ((r = cli_positionals(cmd, argc, argv, 0, NULL)))
                return r;
        if (p.page.after) {
                unsigned long long id;
                if (parse_uint(p.page.after, INT64_MAX, &id) < 0 || id == 0)
                        return cli_usage_error(cmd, "--after: expected an audit row's ID");
                p.page.after_id = (int64_t) id;
                p.page.after = NULL;
        }
        if ((r = cli_open(c, false)))
                return r;
        r = cli_list_print(c, &list, &p);
        return r < 0 ? cli_fail(cmd, r) : 0;
}

/* prune: what the serving MEF does every hour ([audit] keep), now. */
int cmd_prune(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = cli_simple_options(c, "prune", def, argc, argv, 0, NULL);
        if (r >= 0)
                return r;
        if (c->cfg->audit_keep_usec == 0)
                return cli_failf("prune: [audit] keep = forever: nothing is pruned");
        if ((r = cli_open(c, false)))
                return r;
        char keep[32], detail[128];
        duration_format(c->cfg->audit_keep_usec, keep);
        store_pruned_t p;
        r = store_prune(c->store, (int64_t) time(NULL) - (int64_t) (c->cfg->audit_keep_usec / 1000000u), &p);
        if (r < 0)
                /* what went before stays pruned: each step is a transaction of its own */
                return cli_failf("prune: %s (after %llu audit rows and %llu spent enrolments older than %s)",
                                 cli_strerror(r), (unsigned long long) p.audit, (unsigned long long) p.enrolments, keep);
        snprintf(detail, sizeof detail, "older than %s: %llu audit rows, %llu spent enrolments", keep,
                 (unsigned long long) p.audit, (unsigned long long) p.enrolments);
        (void) store_audit(c->store, cli_actor(), "prune", "-", detail);
        if (c->json) {
                json_t *o = json_pack("{s:I, s:I, s:s}", "audit", (json_int_t) p.audit, "enrolments",
                                      (json_int_t) p.enrolments, "keep", keep);
                return cli_json_print(o) ? MEF_EXIT_FAILURE : 0;
        }
        printf("Pruned %llu audit rows and %llu spent enrolments older than %s.\n", (unsigned long long) p.audit,
               (unsigned long long) p.enrolments, keep);
        return 0;
}

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

int cmd_audit(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS, PAGE_OPTIONS, { "action", required_argument, NULL, 'a' }, {}
        };
        const char *cmd = "audit";
        cli_page_t p = { .page.state = -1 };
        char last[24] = "";
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
        _cleanup_free_ store_audit_entry_t *list = NULL;
        size_t n = 0;
        r = store_audit_page(c->store, &p.page, &list, &n);
        if (r < 0)
                return cli_fail(cmd, r);
        if (n)
                snprintf(last, sizeof last, "%" PRId64, list[n - 1].id);
        cli_page_next(&p, n, last);
        if (c->json)
                return cli_json_print(ops_json_array(list, n, sizeof *list, ops_audit_json));
        _cleanup_(cli_table_free) cli_table_t t = { .n_cols = 6 };
        r = cli_table_row(&t, "ID", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAIL");
        for (size_t i = 0; r == 0 && i < n; i++) {
                char id[24], ts[32];
                snprintf(id, sizeof id, "%" PRId64, list[i].id);
                ops_time_format(list[i].ts, ts);
                r = cli_table_row(&t, id, ts, list[i].actor, list[i].action, list[i].subject, list[i].detail);
        }
        return cli_table_print(&t, r, cmd);
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
                                 strerror(-r), (unsigned long long) p.audit, (unsigned long long) p.enrolments, keep);
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

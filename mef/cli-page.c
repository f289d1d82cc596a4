/* SPDX-License-Identifier: MIT */
/* --state, --since, --limit, --after: the keyset paging options of node list, enrolments and audit. */
#include "mef/cli-internal.h"
#include "util/parse.h"


int cli_page_option(const char *cmd, int o, const char *arg, cli_page_t *p) {
        switch (o) {
        case OPT_STATE:
                p->state = arg;
                return 0;
        case OPT_SINCE:
                if (ops_since_parse(arg, &p->page.since) < 0)
                        return cli_usage_error(cmd, "--since: expected YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or a duration back from now (7d)");
                return 0;
        case OPT_LIMIT:
                if (ops_limit_parse(arg, &p->page.limit) < 0)
                        return cli_usage_error(cmd, "--limit: expected a number from 1 to %u", OPS_PAGE_LIMIT_MAX);
                return 0;
        case OPT_AFTER:
                p->page.after = arg;
                return 0;
        default:
                return -1;
        }
}

int cli_page_options(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, cli_page_t *p,
                     const struct option *opts, cli_extra_option_t extra, void *userdata) {
        static const struct option page_opts[] = { COMMON_OPTIONS, PAGE_OPTIONS, {} };
        int o, r;
        optind = 0;
        while ((o = cli_next_option(c, def, argc, argv, opts ? ":hn:f:a:" : ":h", opts ?: page_opts)) >= 0) {
                r = extra ? extra(cmd, o, optarg, p, userdata) : -1;
                if (r < 0)
                        r = cli_page_option(cmd, o, optarg, p);
                if (r > 0)
                        return r;
                if (r < 0)
                        return cli_option_error(cmd, o, argv);
        }
        return o == CLI_OPT_HELP ? 0 : -1;
}

int cli_page_nodes_begin(cli_t *c, const char *cmd, int argc, char **argv, cli_page_t *p) {
        int r = cli_positionals(cmd, argc, argv, 0, NULL);
        if (r)
                return r;
        if (p->state && (p->page.state = node_state_from_string(p->state)) < 0)
                return cli_usage_error(cmd, "--state: expected active, reenrol or revoked");
        return cli_open(c, false);
}

void cli_page_next(const cli_page_t *p, size_t n, const char *last) {
        /* a full page: there may be more; where to go on, on stderr so stdout stays the list */
        if (p->page.limit && n == p->page.limit && last)
                fprintf(stderr, "msce-mef: more may follow: --after %s\n", last);
}

/* One page of l's rows: printed as JSON items or table rows. */
static int list_page_print(cli_t *c, const cli_list_t *l, cli_table_t *t, const void *list, size_t n, size_t done) {
        int r = 0;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const void *row = (const uint8_t *) list + i * l->row_size;
                r = c->json ? cli_json_item_print(l->to_json(row), done + i == 0) : l->to_cells(t, row);
        }
        if (r >= 0 && !c->json) {
                r = cli_table_print(t, 0, "table");
                cli_table_clear(t);
        }
        return r;
}

int cli_list_print(cli_t *c, const cli_list_t *l, const cli_page_t *p) {
        store_page_t page = p->page;
        size_t want = page.limit, done = 0;
        char last[CLI_LIST_KEY_MAX] = "";
        _cleanup_(cli_table_free) cli_table_t t = { .n_cols = l->n_cols };
        int r = c->json ? 0 : cli_table_row_array(&t, l->header);
        while (r >= 0) {
                _cleanup_free_ void *list = NULL;
                size_t n = 0;
                page.limit = want ? MIN(want - done, (size_t) CLI_LIST_PAGE) : CLI_LIST_PAGE;
                r = l->fetch(c, &page, &list, &n, l->userdata);
                if (r >= 0)
                        r = list_page_print(c, l, &t, list, n, done);
                if (r < 0)
                        break;
                done += n;
                if (n > 0) {
                        l->key((const uint8_t *) list + (n - 1) * l->row_size, last);
                        unsigned long long id = 0;
                        if (l->id_key)
                                (void) parse_uint(last, INT64_MAX, &id);
                        page.after_id = (int64_t) id;
                        page.after = l->id_key ? NULL : last;
                }
                if (n < page.limit || (want && done >= want))
                        break;
        }
        if (c->json && r >= 0)
                fputs(done ? "\n]\n" : "[]\n", stdout);
        if (r >= 0)
                cli_page_next(p, done, done ? last : NULL);
        return r;
}

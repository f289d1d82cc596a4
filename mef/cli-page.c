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

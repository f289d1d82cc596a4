/* SPDX-License-Identifier: MIT */
/* audit: the trail of changes and exchanges, newest first. */
#include <inttypes.h>

#include "mef/cli-internal.h"

#define AUDIT_LIMIT_MAX 1000000u

int cmd_audit(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = { COMMON_OPTIONS, { "limit", required_argument, NULL, 'n' }, {} };
        const char *cmd = "audit";
        unsigned long long limit = 0;
        int o, r;
        optind = 0;
        while ((o = cli_next_option(c, def, argc, argv, ":hn:", opts)) >= 0)
                switch (o) {
                case 'n':
                        if (parse_uint(optarg, AUDIT_LIMIT_MAX, &limit) < 0 || limit == 0)
                                return cli_usage_error(cmd, "--limit: expected a number from 1 to %u", AUDIT_LIMIT_MAX);
                        break;
                default:
                        return cli_option_error(cmd, o, argv);
                }
        if (o == CLI_OPT_HELP)
                return 0;
        if ((r = cli_positionals(cmd, argc, argv, 0, NULL)))
                return r;
        if ((r = cli_open(c, false)))
                return r;
        _cleanup_free_ store_audit_entry_t *list = NULL;
        size_t n = 0;
        r = store_audit_list(c->store, (size_t) limit, &list, &n);
        if (r < 0)
                return cli_fail(cmd, r);
        if (c->json) {
                json_t *a = json_array();
                for (size_t i = 0; a && i < n; i++) {
                        json_t *e = json_object();
                        bool ok = e != NULL;
                        if (e) {
                                cli_jset(e, "id", json_integer(list[i].id), &ok);
                                cli_jset(e, "time", cli_jtime(list[i].ts), &ok);
                                cli_jset(e, "actor", cli_jstr(list[i].actor), &ok);
                                cli_jset(e, "action", cli_jstr(list[i].action), &ok);
                                cli_jset(e, "subject", cli_jstr(list[i].subject), &ok);
                                cli_jset(e, "detail", cli_jstr(list[i].detail), &ok);
                        }
                        if (!ok || json_array_append_new(a, e) < 0) {
                                if (ok)
                                        e = NULL; /* json_array_append_new took it */
                                json_decref(e);
                                json_decref(a);
                                a = NULL;
                        }
                }
                return cli_json_print(a);
        }
        _cleanup_(cli_table_free) cli_table_t t = { .n_cols = 6 };
        r = cli_table_row(&t, "ID", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAIL");
        for (size_t i = 0; r == 0 && i < n; i++) {
                char id[24], ts[32];
                snprintf(id, sizeof id, "%" PRId64, list[i].id);
                cli_time_format(list[i].ts, ts);
                r = cli_table_row(&t, id, ts, list[i].actor, list[i].action, list[i].subject, list[i].detail);
        }
        return cli_table_print(&t, r, cmd);
}

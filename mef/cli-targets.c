/* SPDX-License-Identifier: MIT */
/* target add, list, remove. */
#include "mef/cli-internal.h"
#include "proto/ids.h"

/* ---- target ---- */

int cmd_target_add(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                CREDENTIAL_OPTIONS,
                {}
        };
        const char *cmd = "target add";
        credential_opts_t co = { 0 };
        int o, r;
        optind = 0;
        while ((o = cli_next_option(c, def, argc, argv, ":h", opts)) >= 0)
                if (!credential_option(&co, o, optarg))
                        return cli_option_error(cmd, o, argv);
        if ((r = cli_options_end(cmd, o, argc, argv, 1, "TARGET_ID")) >= 0)
                return r;
        const char *id = argv[optind];
        const char *why = NULL;
        if (ids_check_target_id(id, &why) < 0)
                return cli_usage_error(cmd, "TARGET_ID: %s", why);
        if ((r = credential_check(cmd, &co)))
                return r;
        if ((r = cli_open(c, false)))
                return r;

        _cleanup_(credential_done) credential_t cr = { 0 };
        if ((r = credential_load(&co, &cr)))
                return r;
        store_target_t t = { 0 };
        snprintf(t.id, sizeof t.id, "%s", id);
        memcpy(t.psk_id, cr.psk_id, sizeof t.psk_id);
        memcpy(t.cert_fp, cr.cert_fp, sizeof t.cert_fp);
        t.created = (int64_t) time(NULL);

        char detail[512];
        credential_detail(&cr, detail, sizeof detail);
        r = store_begin(c->store);
        if (r == 0)
                r = cli_change_end(c, store_target_add(c->store, &t, cr.key_len ? cr.key : NULL, cr.key_len),
                                   "target-add", id, detail);
        if (r < 0)
                return credential_add_failed(cmd, id, &cr, r, "target ID, PSK identity or certificate");
        if (c->json)
                return cli_json_print(ops_target_json(&t));
        credential_added_print("target", id, detail, &cr, "PSK", "");
        return 0;
}

int cmd_target_list(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = cli_simple_begin(c, "target list", def, argc, argv, 0, NULL);
        if (r >= 0)
                return r;
        _cleanup_free_ store_target_t *list = NULL;
        size_t n = 0;
        r = store_target_list(c->store, &list, &n);
        if (r < 0)
                return cli_fail("target list", r);
        if (c->json)
                return cli_json_print(ops_json_array(list, n, sizeof *list, ops_target_json));
        _cleanup_(cli_table_free) cli_table_t t = { .n_cols = 4 };
        r = cli_table_row(&t, "TARGET_ID", "AUTH", "IDENTITY", "CREATED");
        for (size_t i = 0; r == 0 && i < n; i++) {
                char created[32];
                ops_time_format(list[i].created, created);
                r = cli_table_row(&t, list[i].id, list[i].psk_id[0] ? "psk" : "cert",
                              list[i].psk_id[0] ? list[i].psk_id : list[i].cert_fp, created);
        }
        return cli_table_print(&t, r, "target list");
}

int cmd_target_remove(cli_t *c, const command_t *def, int argc, char **argv) {
        const char *cmd = "target remove";
        int r = cli_simple_begin(c, cmd, def, argc, argv, 1, "TARGET_ID");
        if (r >= 0)
                return r;
        const char *id = argv[optind];
        r = store_begin(c->store);
        if (r == 0) {
                r = cli_change_end(c, store_target_remove(c->store, id), "target-remove", id, NULL);
        }
        if (r == -ENOENT)
                return cli_failf("%s %s: no such target", cmd, id);
        if (r < 0)
                return cli_failf("%s %s: %s", cmd, id, cli_strerror(r));
        if (c->json)
                return cli_removed_print(id);
        printf("Removed target %s.\n", id);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* node add, list, show, remove, reenrol, revoke, activate. */
#include <inttypes.h>

#include "mef/cli-internal.h"
#include "proto/ids.h"
#include "proto/tls.h"

/* ---- node ---- */

/* enr: the newest of the node's enrolments (NULL: none shown), next the cursor of the rest
 * (ops_node_enrolments()). */
static int node_print(cli_t *c, const store_node_t *n, const store_enrolment_t *enr, size_t n_enr, const char *next) {
        bool long_kpm_id = strlen(n->kpm_id) > TLS_PSK_ID_MAX;
        if (c->json) {
                if (long_kpm_id)
                        fprintf(stderr, "msce-mef: warning: node %s: its KpmID is longer than %u characters, which no "
                                        "TLS handshake can offer: it can never enrol (give it a shorter one: " OPS_LONG_KPM_ID_FIX
                                        ")\n",
                                n->node_id, TLS_PSK_ID_MAX);
                json_t *o = ops_node_json(n);
                /* as GET /admin/v1/nodes/{id} has them */
                if (o && enr &&
                    (json_object_set_new(o, "enrolments", cli_enrolments_json(enr, n_enr)) < 0 ||
                     json_object_set_new(o, "enrolmentsNext", next[0] ? json_string(next) : json_null()) < 0)) {
                        json_decref(o);
                        o = NULL;
                }
                return cli_json_print(o);
        }
        char created[32], targets[MSG_TARGETS_MAX * (MSG_ID_MAX + 2) + 1] = "";
        ops_time_format(n->created, created);
        for (size_t i = 0; i < n->n_targets; i++) {
                if (i)
                        strcat(targets, ", ");
                strcat(targets, n->targets[i]);
        }
        printf("Node ID:         %s\n", n->node_id);
        if (n->kpm_id[0])
                printf("Authentication:  psk, KpmID %s\n", n->kpm_id);
        else
                printf("Authentication:  cert, SHA-256 %s\n", n->cert_fp);
        if (long_kpm_id)
                printf("Warning:         the KpmID is longer than %u characters, which no TLS handshake can offer:\n"
                       "                 this node can never enrol (give it a shorter one: " OPS_LONG_KPM_ID_FIX ")\n",
                       TLS_PSK_ID_MAX);
        printf("CSE-ID:          %s\n", n->cse_id);
        printf("CSEBase:         %s\n", n->cse_base);
        printf("Targets:         %s\n", n->n_targets ? targets : "-");
        printf("Poll:            %" PRIu32 " s\n", n->poll);
        printf("Lifetime:        %" PRIu32 " s\n", n->lifetime);
        printf("LTK transported: %s\n", n->ltk_transported ? "yes" : "no");
        printf("State:           %s\n", node_state_to_string(n->state));
        printf("Created:         %s\n", created);
        char seen[32];
        ops_time_format(n->last_seen, seen);
        printf("Status checks:   %" PRIu64 " (last %s)\n", n->status_checks, n->last_seen ? seen : "never");
        if (enr) {
                if (next[0])
                        printf("Enrolments:      the newest %zu, then more (listed below)\n", n_enr);
                else
                        printf("Enrolments:      %zu\n", n_enr);
                if (n_enr) {
                        putchar('\n');
                        int r = cli_enrolments_table(enr, n_enr);
                        if (r == 0 && next[0])
                                printf("\nThe rest: msce-mef enrolments %s --after %s\n", n->node_id, next);
                        return r;
                }
        }
        return 0;
}

int cmd_node_add(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                { "cse-id", required_argument, NULL, 'i' },
                { "cse-base", required_argument, NULL, 'b' },
                CREDENTIAL_OPTIONS,
                { "target", required_argument, NULL, 't' },
                { "poll", required_argument, NULL, 'p' },
                { "lifetime", required_argument, NULL, 'l' },
                { "ltk-transported", no_argument, NULL, 'L' },
                {}
        };
        const char *cmd = "node add";
        _cleanup_free_ store_node_t *n = calloc(1, sizeof *n);
        if (!n)
                return cli_fail(cmd, -ENOMEM);
        n->poll = c->cfg->default_poll;
        n->lifetime = c->cfg->default_lifetime;
        n->state = NODE_ACTIVE;
        credential_opts_t co = { 0 };
        const char *cse_id = NULL, *cse_base = NULL, *why = NULL;
        int o, r;

        optind = 0;
        while ((o = cli_next_option(c, def, argc, argv, ":h", opts)) >= 0)
                switch (o) {
                case 'i':
                        cse_id = optarg;
                        break;
                case 'b':
                        cse_base = optarg;
                        break;
                case 't':
                        if (ids_check_target_id(optarg, &why) < 0)
                                return cli_usage_error(cmd, "--target: %s", why);
                        for (size_t i = 0; i < n->n_targets; i++)
                                if (streq(n->targets[i], optarg))
                                        return cli_usage_error(cmd, "--target %s given twice", optarg);
                        if (n->n_targets >= MSG_TARGETS_MAX)
                                return cli_usage_error(cmd, "at most %u --target", MSG_TARGETS_MAX);
                        snprintf(n->targets[n->n_targets++], sizeof n->targets[0], "%s", optarg);
                        break;
                case 'p':
                        if ((r = cli_parse_seconds(cmd, "--poll", optarg, STORE_POLL_MIN, STORE_POLL_MAX, &n->poll)))
                                return r;
                        break;
                case 'l':
                        if ((r = cli_parse_seconds(cmd, "--lifetime", optarg, STORE_LIFETIME_MIN, STORE_LIFETIME_MAX,
                                               &n->lifetime)))
                                return r;
                        break;
                case 'L':
                        n->ltk_transported = true;
                        break;
                default:
                        if (!credential_option(&co, o, optarg))
                                return cli_option_error(cmd, o, argv);
                }
        if ((r = cli_options_end(cmd, o, argc, argv, 1, "NODE_ID")) >= 0)
                return r;
        const char *node_id = argv[optind];
        if (ids_check_node_id(node_id, &why) < 0)
                return cli_usage_error(cmd, "NODE_ID: %s", why);
        if (!cse_id || !cse_base)
                return cli_usage_error(cmd, "missing %s", !cse_id ? "--cse-id" : "--cse-base");
        if (ids_check_cse_id(cse_id, &why) < 0)
                return cli_usage_error(cmd, "--cse-id: %s", why);
        if (ids_check_cse_base(cse_base, &why) < 0)
                return cli_usage_error(cmd, "--cse-base: %s", why);
        if ((r = credential_check(cmd, &co)))
                return r;
        snprintf(n->node_id, sizeof n->node_id, "%s", node_id);
        snprintf(n->cse_id, sizeof n->cse_id, "%s", cse_id);
        snprintf(n->cse_base, sizeof n->cse_base, "%s", cse_base);

        if ((r = cli_open(c, false)))
                return r;
        /* The KpmID or fingerprint of an existing row is caught by the store; checking here
         * first keeps --generate-psk from writing a file for nothing in the common case. */
        store_node_t existing;
        if (store_node_get(c->store, node_id, &existing) == 0)
                return cli_failf("%s %s: node exists already", cmd, node_id);
        if (store_node_by_cse_id(c->store, cse_id, &existing) == 0)
                return cli_failf("%s %s: --cse-id: CSE-ID already assigned to node %s", cmd, node_id, existing.node_id);

        _cleanup_(credential_done) credential_t cr = { 0 };
        if ((r = credential_load(&co, &cr)))
                return r;
        memcpy(n->kpm_id, cr.psk_id, sizeof n->kpm_id);
        memcpy(n->cert_fp, cr.cert_fp, sizeof n->cert_fp);

        char detail[512];
        credential_detail(&cr, detail, sizeof detail);
        /* the time the store would give it: what is printed is this row, not a read after the
         * commit (which may fail once the node is added) */
        n->created = (int64_t) time(NULL);
        r = store_begin(c->store);
        if (r == 0)
                r = cli_change_end(c, store_node_add(c->store, n, cr.key_len ? cr.key : NULL, cr.key_len), "node-add",
                                   node_id, detail);
        const char *field = "node ID, KpmID or certificate";
        if ((r == -EEXIST || r == -EADDRINUSE) && store_node_conflict(c->store, n, &field) > 0)
                r = -EEXIST; /* named now, whichever it was */
        if (r < 0)
                return credential_add_failed(cmd, node_id, &cr, r, field);

        /* naming a target before it is registered is allowed, but likely a typo */
        _cleanup_free_ store_target_t *targets = NULL;
        size_t n_targets = 0;
        if (n->n_targets && store_target_list(c->store, &targets, &n_targets) == 0)
                for (size_t i = 0; i < n->n_targets; i++) {
                        bool found = false;
                        for (size_t j = 0; j < n_targets && !found; j++)
                                found = streq(targets[j].id, n->targets[i]);
                        if (!found)
                                fprintf(stderr, "msce-mef: warning: target %s is not registered (see 'msce-mef target add')\n",
                                        n->targets[i]);
                }

        if (c->json)
                return node_print(c, n, NULL, 0, NULL);
        credential_added_print("node", node_id, detail, &cr, "Kpm",
                               ": install it on the device as the agent's psk_file");
        return 0;
}

static int node_page_fetch(cli_t *c, const store_page_t *p, void **ret, size_t *ret_n, const void *userdata) {
        return store_node_page(c->store, p, (store_node_t **) ret, ret_n);
}

static void node_key(const void *row, char buf[CLI_LIST_KEY_MAX]) {
        snprintf(buf, CLI_LIST_KEY_MAX, "%s", ((const store_node_t *) row)->node_id);
}

static int node_cells(cli_table_t *t, const void *row) {
        const store_node_t *e = row;
        char poll[16], lifetime[16], targets[MSG_TARGETS_MAX * (MSG_ID_MAX + 1) + 1] = "";
        snprintf(poll, sizeof poll, "%" PRIu32, e->poll);
        snprintf(lifetime, sizeof lifetime, "%" PRIu32, e->lifetime);
        for (size_t j = 0; j < e->n_targets; j++) {
                if (j)
                        strcat(targets, ",");
                strcat(targets, e->targets[j]);
        }
        return cli_table_row(t, e->node_id, e->kpm_id[0] ? "psk" : "cert", e->kpm_id[0] ? e->kpm_id : e->cert_fp,
                             e->cse_id, node_state_to_string(e->state), poll, lifetime, targets);
}

int cmd_node_list(cli_t *c, const command_t *def, int argc, char **argv) {
        static const char *const header[] = { "NODE_ID", "AUTH", "IDENTITY", "CSE_ID", "STATE", "POLL", "LIFETIME",
                                              "TARGETS" };
        static const cli_list_t list = { .n_cols = ELEMENTSOF(header), .header = header,
                                         .row_size = sizeof(store_node_t), .fetch = node_page_fetch, .key = node_key,
                                         .to_json = ops_node_json, .to_cells = node_cells };
        const char *cmd = "node list";
        cli_page_t p = { .page.state = -1 };
        int r = cli_page_options(c, cmd, def, argc, argv, &p, NULL, NULL, NULL);
        if (r >= 0)
                return r;
        if ((r = cli_page_nodes_begin(c, cmd, argc, argv, &p)))
                return r;
        r = cli_list_print(c, &list, &p);
        return r < 0 ? cli_fail(cmd, r) : 0;
}

int cli_node_get(cli_t *c, const char *cmd, const char *node_id, store_node_t **ret) {
        _cleanup_free_ store_node_t *n = calloc(1, sizeof *n);
        int r = n ? store_node_get(c->store, node_id, n) : -ENOMEM;
        if (r == -ENOENT)
                return cli_failf("%s %s: no such node", cmd, node_id);
        if (r < 0)
                return cli_failf("%s %s: %s", cmd, node_id, cli_strerror(r));
        *ret = TAKE_PTR(n);
        return 0;
}

int cmd_node_show(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = cli_simple_begin(c, "node show", def, argc, argv, 1, "NODE_ID");
        if (r >= 0)
                return r;
        const char *node_id = argv[optind];
        _cleanup_free_ store_node_t *n = NULL;
        if ((r = cli_node_get(c, "node show", node_id, &n)))
                return r;
        _cleanup_free_ store_enrolment_t *enr = NULL;
        size_t n_enr = 0;
        char next[STORE_ENROLMENT_CURSOR_MAX];
        r = ops_node_enrolments(c->store, node_id, &enr, &n_enr, next);
        if (r < 0)
                return cli_fail("node show", r);
        static const store_enrolment_t none;
        return node_print(c, n, enr ?: &none, n_enr, next);
}

/* remove, reenrol, revoke, activate: NODE_ID only. */
int cmd_node_change(cli_t *c, const command_t *def, int argc, char **argv) {
        _cleanup_free_ char *cmd = NULL;
        if (asprintf(&cmd, "node %s", def->name) < 0)
                return cli_fail("node", -ENOMEM);
        int r = cli_simple_begin(c, cmd, def, argc, argv, 1, "NODE_ID");
        if (r >= 0)
                return r;
        const char *node_id = argv[optind];
        _cleanup_free_ store_node_t *n = calloc(1, sizeof *n);
        if (!n)
                return cli_fail(cmd, -ENOMEM);

        /* n: the node as changed, printed without reading it again after the commit */
        char detail[64];
        r = ops_node_change(c->store, cli_actor(), node_id, ops_node_change_from_string(def->name), detail,
                            sizeof detail, n);
        if (r == -ENOENT)
                return cli_failf("%s %s: no such node", cmd, node_id);
        if (r == -EPERM)
                return cli_failf("%s: node %s is revoked: node activate first", cmd, node_id);
        if (r < 0)
                return cli_failf("%s %s: %s", cmd, node_id, cli_strerror(r));

        if (streq(def->name, "remove")) {
                if (c->json)
                        return cli_removed_print(node_id);
                printf("Removed node %s and its enrolments.\n", node_id);
                return 0;
        }
        if (c->json)
                return node_print(c, n, NULL, 0, NULL);
        printf("Node %s: %s.\n", node_id, detail);
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* What the files of msce-mef's command line (mef/cli*.c) share; mef/cli.h is its interface.
 * The cli_fail* and usage helpers print "msce-mef: ..." to stderr and return the exit status. */

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>

#include "util/util.h"
#include "mef/cli.h"
#include "mef/ops.h"
#include "mef/store.h"
#include "proto/msg.h"

/* The audit trail's actor of a command: "cli:<user>", the Unix user who ran it (through sudo,
 * the user who called sudo: SUDO_USER, as root only). */
const char *cli_actor(void);

typedef struct cli {
        const mef_config_t *cfg;
        bool json;
        mef_store_t *store;
        /* the last cli_change_end()'s COMMIT failed without its answer (store_commit_unknown()):
         * the change may have taken */
        bool commit_unknown;
} cli_t;

typedef struct command {
        const char *name;
        const char *usage; /* after "Usage: msce-mef " */
        const char *help;
} command_t;

/* ---- messages (cli.c) ---- */
/* strerror(-r), with the database server's reason when the store has one for r
 * (store_error_reason()). */
const char *cli_strerror(int r);
/* "msce-mef: what: cli_strerror(r)" */
int cli_fail(const char *what, int r);
int cli_failf(const char *fmt, ...) _printf_(1, 2);
int cli_usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);
/* getopt's '?' and ':' as a usage error. */
int cli_option_error(const char *cmd, int c, char **argv);
void cli_help_print(const char *usage, const char *help);

/* ---- the store (cli.c) ---- */
int cli_open(cli_t *c, bool create);
/* Finish a change that returned r after store_begin(): roll it back, or commit it with its audit row. */
int cli_change_end(cli_t *c, int r, const char *action, const char *subject, const char *detail);

/* ---- options (cli.c) ---- */
#define OPT_HELP 'h'
#define OPT_JSON 0x100
#define COMMON_OPTIONS { "help", no_argument, NULL, OPT_HELP }, { "json", no_argument, NULL, OPT_JSON }
#define CREDENTIAL_OPTIONS                                  \
        { "psk-id", required_argument, NULL, 'k' },         \
        { "psk-file", required_argument, NULL, 'f' },       \
        { "generate-psk", required_argument, NULL, 'g' },   \
        { "cert", required_argument, NULL, 'c' },           \
        { "cert-fp", required_argument, NULL, 'F' }

/* Keyset paging (cli-page.c): --state S --since T --limit N --after KEY on the list commands. */
#define OPT_STATE 0x101
#define OPT_SINCE 0x102
#define OPT_LIMIT 0x103
#define OPT_AFTER 0x104
#define PAGE_OPTIONS                                                                                \
        { "state", required_argument, NULL, OPT_STATE }, { "since", required_argument, NULL, OPT_SINCE }, \
        { "limit", required_argument, NULL, OPT_LIMIT }, { "after", required_argument, NULL, OPT_AFTER }
#define PAGE_HELP                                                                                        \
        "  --limit N             at most N rows; a full page ends with the --after to give for the next\n" \
        "  --after KEY           the rows after KEY, the last row of the previous page\n"                \
        "  --since T             created (audit: logged) at or after T: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or\n" \
        "                        a duration back from now (7d)\n"
typedef struct cli_page {
        store_page_t page;
        const char *state; /* as given: each command maps it */
} cli_page_t;
/* Takes PAGE_OPTIONS option o into p: 0, the exit status of a usage error, or -1 when o is not one. */
int cli_page_option(const char *cmd, int o, const char *arg, cli_page_t *p);
/* A command's own option o besides the paging ones: 0 taken, >0 the exit status, -1 not its. */
typedef int (*cli_extra_option_t)(const char *cmd, int o, const char *arg, cli_page_t *p, void *userdata);
/* The options of a listing command: opts (NULL: only COMMON_OPTIONS and PAGE_OPTIONS; short
 * options -n, -f, -a may be among them), the paging ones into p, the others to extra. -1 to go
 * on, or the exit status to return now (0 after --help). */
int cli_page_options(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, cli_page_t *p,
                     const struct option *opts, cli_extra_option_t extra, void *userdata);
/* After cli_page_options() for a listing of nodes: no positionals, --state as a node state into
 * p->page.state, then the store opened. 0, or the exit status. */
int cli_page_nodes_begin(cli_t *c, const char *cmd, int argc, char **argv, cli_page_t *p);
/* After a page of n rows whose last key is last: tells how to go on when the page was full. */
void cli_page_next(const cli_page_t *p, size_t n, const char *last);

/* A listing (node list, enrolments, audit) printed as it is read, a page of at most
 * CLI_LIST_PAGE rows at a time: a table (its header once, each column as wide as its widest
 * cell so far) or one JSON array. Memory stays one page whatever the store holds, and no read
 * transaction stays open while stdout waits (a pager). */
#define CLI_LIST_PAGE 1000u
typedef struct cli_table cli_table_t; /* below, with the output */
#define CLI_LIST_KEY_MAX 320u /* a KeID, a node ID or an audit row's id, as --after takes it */
typedef struct cli_list {
        size_t n_cols;
        const char *const *header;
        size_t row_size;
        /* at most p->limit rows from p's position: a heap array of row_size items into *ret */
        int (*fetch)(cli_t *c, const store_page_t *p, void **ret, size_t *ret_n, const void *userdata);
        /* row's key as --after takes it */
        void (*key)(const void *row, char buf[CLI_LIST_KEY_MAX]);
        bool id_key; /* audit: the key is an id, p->after_id */
        json_t *(*to_json)(const void *row);
        /* the table's cells of row */
        int (*to_cells)(cli_table_t *t, const void *row);
        const void *userdata;
} cli_list_t;
/* The rows of p (all, or at most p->page.limit), then cli_page_next()'s hint: 0, or the store's
 * error (-ENOENT: no row has key p->page.after) with what was printed so far left as it is. */
int cli_list_print(cli_t *c, const cli_list_t *l, const cli_page_t *p);

/* The positional arguments after getopt; want = how many exactly. */
int cli_positionals(const char *cmd, int argc, char **argv, int want, const char *what);
int cli_parse_seconds(const char *cmd, const char *opt, const char *v, unsigned min, unsigned max, uint32_t *ret);
/* The next option of the command's own, --help and --json taken care of: as getopt_long(),
 * -1 at the end, CLI_OPT_HELP once --help has been printed (the command returns 0). */
#define CLI_OPT_HELP (-2)
int cli_next_option(cli_t *c, const command_t *def, int argc, char **argv, const char *shortopts,
                    const struct option *opts);
/* After the loop over cli_next_option() ended with o: -1 to go on with exactly want positionals,
 * or the exit status to return now (0 after --help, or a usage error). */
int cli_options_end(const char *cmd, int o, int argc, char **argv, int want, const char *what);
/* The options of a command that has only --help and --json; the simple one also wants that
 * many positionals, and _begin opens the store too. Each returns -1 to go on, or the exit
 * status to return now (0 after --help). */
int cli_common_options(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv);
/* The same for a command with one option of its own, own (its val the short option, if shortopts
 * has it besides ":h"): *ret_value is its argument when given ("" for a flag), else untouched. */
int cli_own_option(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, const char *shortopts,
                   const struct option *own, const char **ret_value);
int cli_simple_options(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, int want,
                       const char *what);
int cli_simple_begin(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, int want,
                     const char *what);

/* ---- output (cli-output.c) ---- */

struct cli_table {
        size_t n_cols, n_cells, alloc;
        char **cells;
        size_t width[16]; /* of each column as printed so far */
};
void cli_table_free(cli_table_t *t);
/* The rows printed go; the widths stay, for the next part of the same table. */
void cli_table_clear(cli_table_t *t);
/* n_cols values; NULL or "" prints "-", control bytes (C1 too) and bytes that are not UTF-8 '?'. */
int cli_table_row(cli_table_t *t, ...);
int cli_table_row_array(cli_table_t *t, const char *const *cells);
/* Prints t, each column as wide as its widest cell so far, or the error r that stopped filling
 * it (what failed: what); the exit status. */
int cli_table_print(cli_table_t *t, int r, const char *what);

/* Prints and releases j; NULL (out of memory) is an error. */
int cli_json_print(json_t *j);
/* j as the next item of an array printed as cli_json_print() prints one (first: the first
 * item, which opens it; the caller closes it with "\n]\n", or prints "[]\n" for none). Takes j. */
int cli_json_item_print(json_t *j, bool first);
/* {"removed": id} for the remove commands. */
int cli_removed_print(const char *id);

/* ---- credentials (cli-keys.c) ---- */
/* The credential options node add and target add share. */
typedef struct credential_opts {
        const char *psk_id, *psk_file, *generate_psk, *cert, *cert_fp;
} credential_opts_t;

typedef struct credential {
        char psk_id[MSG_ID_MAX + 1];
        char cert_fp[STORE_FP_LEN + 1];
        uint8_t key[MSG_KEY_MAX]; /* secret: credential_done */
        size_t key_len;
        const char *generated; /* file written: removed when the change fails */
} credential_t;

/* Takes the CREDENTIAL_OPTIONS option o into co; false when o is not one of them. */
bool credential_option(credential_opts_t *co, int o, const char *arg);
int credential_check(const char *cmd, const credential_opts_t *o);
/* Reads, generates or computes the credential; the generated file is created last. */
int credential_load(const credential_opts_t *o, credential_t *cr);
void credential_done(credential_t *cr);
void credential_detail(const credential_t *cr, char *buf, size_t size);
/* A failed node add or target add: a generated key file opens nothing, so it goes. */
int credential_add_failed(const char *cmd, const char *id, const credential_t *cr, int r, const char *in_use);
void credential_added_print(const char *what, const char *id, const char *detail, const credential_t *cr,
                            const char *key_name, const char *key_hint);

/* ---- nodes, enrolments (cli-nodes.c, cli-enrolments.c) ---- */
/* The node, in a new buffer; an error (printed) when there is none: the exit status. */
int cli_node_get(cli_t *c, const char *cmd, const char *node_id, store_node_t **ret);
json_t *cli_enrolments_json(const store_enrolment_t *list, size_t n);
int cli_enrolments_table(const store_enrolment_t *list, size_t n);

/* ---- the commands ---- */
int cmd_init(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_node_add(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_node_list(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_node_show(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_node_change(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_node_import(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_node_export(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_node_revoke(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_target_add(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_target_list(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_target_remove(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_enrolments(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_audit(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_prune(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_backup(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_restore(cli_t *c, const command_t *def, int argc, char **argv);
int cmd_rekey(cli_t *c, const command_t *def, int argc, char **argv);

/* SPDX-License-Identifier: MIT */
/* msce-mef's command line: messages, option helpers, the store, and the command table. */
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "mef/cli-internal.h"
#include "mef/store-open.h"

/* ---- messages ---- */

/* The command's cli_t while it runs (mef_cli_run()), for the store's reason in a message. */
static const cli_t *cli_running;

/* strerror(-r) in the words of a refusal whose reason (store_error_reason()) is why (NULL: none). */
static const char *cli_strerror_why(int r, const store_reason_t *why) {
        static char buf[STORE_SAID_MAX];
        r = r < 0 ? r : -r;
        if (!why || !why->text[0])
                return strerror(-r);
        /* -EIO: the errno of every refusal that has no better one */
        const char *head = r == -EIO ? "refused" : strerror(-r);
        char schema[96];
        if (r == -EPROTONOSUPPORT) {
                snprintf(schema, sizeof schema, "the store's schema is not the one this msce-mef knows (version %d)",
                         STORE_SCHEMA_VERSION);
                head = schema;
        }
        return store_said(buf, sizeof buf, head, why);
}

const char *cli_strerror(int r) {
        r = r < 0 ? r : -r;
        return cli_strerror_why(r, cli_running ? store_error_reason(cli_running->store, r) : NULL);
}

int cli_fail(const char *what, int r) {
        fprintf(stderr, "msce-mef: %s: %s\n", what, cli_strerror(r));
        return MEF_EXIT_FAILURE;
}

int cli_failf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("msce-mef: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return MEF_EXIT_FAILURE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "msce-mef: %s: ", cmd);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\nTry 'msce-mef %s --help'.\n", cmd);
        va_end(ap);
        return MEF_EXIT_USAGE;
}

/* getopt's '?' and ':' as a usage error. */
int cli_option_error(const char *cmd, int c, char **argv) {
        if (c == ':')
                return cli_usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        if (optopt) /* 0 for an unknown long option */
                return cli_usage_error(cmd, "unknown option '-%c'", optopt);
        return cli_usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

void cli_help_print(const char *usage, const char *help) {
        printf("Usage: msce-mef %s\n\n%s", usage, help);
}

/* ---- store ---- */

static int cli_open_flags(cli_t *c, unsigned flags) {
        const char *name = mef_store_name(c->cfg);
        store_reason_t why;
        char said[STORE_SAID_MAX];
        int r = mef_store_open(c->cfg, flags, &c->store, &why);
        /* PostgreSQL refused the connection, or a statement of the open: its reason */
        if (r < 0 && why.text[0] && r != -EPROTO && r != -EUSERS)
                return cli_failf("open store %s: %s", name, cli_strerror_why(r, &why));
        switch (r) {
        case 0:
                return 0;
        case -ENOENT: {
                struct stat st;
                if (!(flags & STORE_OPEN_CREATE) && c->cfg->store_backend == STORE_BACKEND_SQLITE &&
                    stat(c->cfg->store_path, &st) == 0 && st.st_size == 0)
                        return cli_failf("open store %s: an empty file, not a store (nothing was written to it): "
                                         "'msce-mef init' makes one there",
                                         name);
                /* A store with data whose key is gone: init would not (and must not) make a new
                 * key for it, so pointing at init again would loop. With CREATE this is the only
                 * -ENOENT; without, a SQLite file that exists tells it apart from no store. */
                if (access(c->cfg->master_key_path, F_OK) < 0 && errno == ENOENT &&
                    ((flags & STORE_OPEN_CREATE) ||
                     (c->cfg->store_backend == STORE_BACKEND_SQLITE && access(c->cfg->store_path, F_OK) == 0)))
                        return cli_failf("master key %s is missing, but store %s exists: its keys are sealed under "
                                         "that master key and nothing else opens them. Put the key file back "
                                         "(from your backup, 0400, owned by the MEF's user); 'msce-mef init' does "
                                         "not replace the key of an existing store. Without the key, move the store "
                                         "aside, run 'msce-mef init' and add every node and target again (their "
                                         "agents re-enrol).",
                                         c->cfg->master_key_path, name);
                return cli_failf("open store %s (master key %s): %s (run 'msce-mef init' first)", name,
                                 c->cfg->master_key_path, strerror(ENOENT));
        }
        case -EPERM: {
                char hint[PATH_MAX + 200];
                return cli_failf("open store %s: %s", name, mef_store_mode_hint(c->cfg, hint, sizeof hint));
        }
        case -EBADMSG:
                return cli_failf("master key %s: does not open store %s (wrong key file)", c->cfg->master_key_path, name);
        case -EINVAL:
                return cli_failf("master key %s: not %u bytes, or [store] uri carries a password",
                                 c->cfg->master_key_path, STORE_MASTER_KEY_LEN);
        case -EPROTONOSUPPORT:
                return cli_failf("open store %s: schema written by a newer msce-mef (this one knows version %d)", name,
                                 STORE_SCHEMA_VERSION);
        case -ESTALE:
                return cli_failf("open store %s: schema older than this msce-mef: run 'msce-mef migrate'", name);
        case -EOPNOTSUPP:
                return cli_failf("open store %s: this msce-mef is built without PostgreSQL support", name);
        case -EPROTO:
                return cli_failf("open store %s: %s", name, store_said(said, sizeof said, STORE_POOLER_HINT, &why));
        case -EUCLEAN:
                return cli_failf("open store %s: " STORE_DAMAGED_HINT, name);
        case -EUSERS:
                return cli_failf("open store %s: %s", name, store_said(said, sizeof said, STORE_TOO_MANY_HINT, &why));
        case -EACCES:
        case -EROFS: {
                char hint[PATH_MAX + 160];
                if (mef_store_access_hint(c->cfg, hint, sizeof hint))
                        return cli_failf("open store %s: %s", name, hint);
                return cli_failf("open store %s: %s", name, strerror(-r));
        }
        default:
                return cli_failf("open store %s: %s", name, strerror(-r));
        }
}

int cli_open(cli_t *c, bool create) {
        return cli_open_flags(c, create ? STORE_OPEN_CREATE : 0);
}

/* ---- migrate ---- */

static int cmd_migrate(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = cli_simple_options(c, "migrate", def, argc, argv, 0, NULL);
        if (r >= 0)
                return r;
        r = cli_open_flags(c, STORE_OPEN_MIGRATE);
        if (r)
                return r;
        int from, to;
        r = store_migrate(c->store, &from, &to);
        if (r < 0)
                return cli_fail("migrate", r);
        if (from != to) {
                char detail[64];
                snprintf(detail, sizeof detail, "schema %d -> %d", from, to);
                (void) store_audit(c->store, cli_actor(), "migrate", mef_store_name(c->cfg), detail);
        }
        printf("%s: schema version %d%s\n", mef_store_name(c->cfg), to, from == to ? " (up to date)" : "");
        if (from != to)
                printf("migrated from version %d\n", from);
        return 0;
}

const char *cli_actor(void) {
        static char actor[STORE_AUDIT_ACTOR_MAX + 1];
        if (actor[0])
                return actor;
        const char *sudo = getuid() == 0 ? getenv("SUDO_USER") : NULL;
        struct passwd *pw = getpwuid(getuid());
        if (sudo && *sudo && id_is_valid(sudo, 64))
                snprintf(actor, sizeof actor, "cli:%s (sudo)", sudo);
        else if (pw && pw->pw_name)
                snprintf(actor, sizeof actor, "cli:%s", pw->pw_name);
        else
                snprintf(actor, sizeof actor, "cli:uid %u", (unsigned) getuid());
        return actor;
}

/* Run a change and its audit row as one transaction. */
static int cli_audit_commit(cli_t *c, const char *action, const char *subject, const char *detail) {
        int r = store_audit(c->store, cli_actor(), action, subject, detail);
        if (r == 0) {
                r = store_commit(c->store);
                c->commit_unknown = store_commit_unknown(r);
        }
        if (r < 0)
                store_rollback(c->store);
        return r;
}

/* Finish a change that returned r after store_begin(): roll it back, or commit it with its audit row. */
int cli_change_end(cli_t *c, int r, const char *action, const char *subject, const char *detail) {
        c->commit_unknown = false;
        if (r < 0) {
                store_rollback(c->store);
                return r;
        }
        return cli_audit_commit(c, action, subject, detail);
}

/* ---- option parsing ---- */

/* The positional arguments after getopt; want = how many exactly. */
int cli_positionals(const char *cmd, int argc, char **argv, int want, const char *what) {
        if (argc - optind < want)
                return cli_usage_error(cmd, "missing %s", what ?: "argument");
        if (argc - optind > want)
                return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind + want]);
        return 0;
}

int cli_options_end(const char *cmd, int o, int argc, char **argv, int want, const char *what) {
        if (o == CLI_OPT_HELP)
                return 0;
        int r = cli_positionals(cmd, argc, argv, want, what);
        return r ? r : -1;
}

int cli_parse_seconds(const char *cmd, const char *opt, const char *v, unsigned min, unsigned max,
                         uint32_t *ret) {
        unsigned long long u;
        if (parse_uint(v, max, &u) < 0 || u < min)
                return cli_usage_error(cmd, "%s: expected seconds from %u to %u", opt, min, max);
        *ret = (uint32_t) u;
        return 0;
}

int cli_next_option(cli_t *c, const command_t *def, int argc, char **argv, const char *shortopts,
                    const struct option *opts) {
        for (;;) {
                int o = getopt_long(argc, argv, shortopts, opts, NULL);
                if (o == OPT_HELP) {
                        cli_help_print(def->usage, def->help);
                        return CLI_OPT_HELP;
                }
                if (o != OPT_JSON)
                        return o;
                c->json = true;
        }
}

int cli_own_option(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, const char *shortopts,
                   const struct option *own, const char **ret_value) {
        const struct option opts[] = { COMMON_OPTIONS, own ? *own : (struct option) {}, {} };
        int o;
        optind = 0;
        while ((o = cli_next_option(c, def, argc, argv, shortopts, opts)) >= 0)
                if (own && o == own->val)
                        *ret_value = own->has_arg == no_argument ? "" : optarg;
                else
                        return cli_option_error(cmd, o, argv);
        return o == CLI_OPT_HELP ? 0 : -1;
}

int cli_common_options(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv) {
        return cli_own_option(c, cmd, def, argc, argv, ":h", NULL, NULL);
}

int cli_simple_options(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, int want,
                       const char *what) {
        int r = cli_common_options(c, cmd, def, argc, argv);
        if (r >= 0)
                return r;
        r = cli_positionals(cmd, argc, argv, want, what);
        return r ? r : -1;
}

int cli_simple_begin(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, int want,
                     const char *what) {
        int r = cli_simple_options(c, cmd, def, argc, argv, want, what);
        if (r >= 0)
                return r;
        r = cli_open(c, false);
        return r ? r : -1;
}

/* ---- dispatch ---- */

typedef int (*command_fn_t)(cli_t *c, const command_t *def, int argc, char **argv);

#define CREDENTIAL_HELP                                                                                  \
        "  --psk-id ID           PSK identity (the KpmID for a node) ...\n"                               \
        "    --psk-file FILE     ... with the key read from FILE: 16..64 bytes as hex, one line, mode 0600\n" \
        "    --generate-psk FILE ... with 32 new random bytes written as hex to FILE (must not exist)\n"   \
        "  --cert FILE.pem       authenticate by this certificate (its SHA-256 fingerprint is stored)\n"    \
        "  --cert-fp HEX         authenticate by a certificate with this SHA-256 fingerprint\n"

static const struct {
        const char *group; /* NULL: a top-level command */
        const char *name;
        command_fn_t run;
        const char *usage;
        const char *help;
} commands[] = {
        { NULL, "init", cmd_init, "init",
          "Create the store and its master key (0400) as configured in [store]. Harmless when they exist.\n" },
        { "node", "add", cmd_node_add,
          "node add NODE_ID --cse-id ID --cse-base URI\n"
          "        (--psk-id KPMID (--psk-file FILE | --generate-psk FILE) | --cert FILE.pem | --cert-fp HEX)\n"
          "        [--target ID]... [--poll S] [--lifetime S] [--ltk-transported]",
          "Allow a node (the M2M-Node-ID an agent enrols with) and fix its profile.\n\n"
          "  --cse-id ID           the CSE-ID its CSE must use\n"
          "  --cse-base URI        the <CSEBase> its CSE registers with\n" CREDENTIAL_HELP
          "  --target ID           an enrolment target (IN-CSE, MAF) it gets a key for; repeatable, at most 16\n"
          "  --poll S              status check interval in seconds (default from [defaults] poll)\n"
          "  --lifetime S          how long an enrolment is valid (default from [defaults] lifetime)\n"
          "  --ltk-transported     send a generated Long Term Key (\"ltk\") instead of using Ke\n"
          "Keys are only read from or written to files, never given on the command line.\n" },
        { "node", "list", cmd_node_list, "node list [--state S] [--since T] [--limit N] [--after NODE_ID]",
          "List the nodes by node ID.\n\n"
          "  --state S             active, reenrol or revoked only\n" PAGE_HELP },
        { "node", "import", cmd_node_import, "node import [--dry-run] FILE",
          "Add the nodes of FILE, CSV with a header row or JSON Lines (see msce-mef(8)), in one\n"
          "transaction: every bad row is reported with its line number and nothing is imported\n"
          "unless all are good. A node that exists with the same fields (and Kpm) is left as it is,\n"
          "so importing a file again changes nothing; one that differs is a bad row.\n\n"
          "  --dry-run             check every row against the store, change nothing\n" },
        { "node", "export", cmd_node_export,
          "node export [--format jsonl|csv] [--state S] [--since T] [--limit N] [--after NODE_ID]",
          "Print the nodes as node import reads them (JSON Lines, or CSV with a header row). No key\n"
          "is ever exported: a psk node's row has its kpmID only, its Kpm stays in the factory's files.\n" },
        { "node", "show", cmd_node_show, "node show NODE_ID", "Show a node and its enrolments.\n" },
        { "node", "remove", cmd_node_change, "node remove NODE_ID", "Remove a node and all its enrolments.\n" },
        { "node", "reenrol", cmd_node_change, "node reenrol NODE_ID",
          "Ask the node to enrol again: its next status check answers \"reenrol\".\n"
          "A revoked node is refused (exit 1): 'node activate' it first.\n" },
        { "node", "revoke", cmd_node_revoke, "node revoke (NODE_ID | --from FILE)",
          "Revoke the node and its active enrolments: status checks answer \"revoked\" and its agent\n"
          "removes its keys; new enrolments are refused until 'node activate'.\n\n"
          "  --from FILE           every node of FILE, in one transaction: one node ID a line, or an\n"
          "                        import or export file (its nodeID); an unknown node revokes none\n" },
        { "node", "activate", cmd_node_change, "node activate NODE_ID",
          "Put a node back to state active (after reenrol or revoke).\n" },
        { "target", "add", cmd_target_add,
          "target add TARGET_ID (--psk-id ID (--psk-file FILE | --generate-psk FILE) | --cert FILE.pem | --cert-fp HEX)",
          "Allow an enrolment target (IN-CSE, MAF) to fetch the credentials of nodes that name it.\n\n" CREDENTIAL_HELP },
        { "target", "list", cmd_target_list, "target list", "List the enrolment targets.\n" },
        { "target", "remove", cmd_target_remove, "target remove TARGET_ID", "Remove an enrolment target.\n" },
        { NULL, "enrolments", cmd_enrolments, "enrolments [--state S] [--since T] [--limit N] [--after KEID] [NODE_ID]",
          "List enrolments (of one node, or all), newest first. Keys are never shown.\n\n"
          "  --state S             active, expired, retired, revoked or deregistered only\n" PAGE_HELP },
        { NULL, "audit", cmd_audit, "audit [--action A] [--since T] [--limit N] [--after ID]",
          "Show the audit trail, newest first: every change by this CLI and every exchange the server\n"
          "handled.\n\n"
          "  --action A            rows of this action only (node-add, node-import, enrol, ...)\n" PAGE_HELP },
        { NULL, "migrate", cmd_migrate, "migrate",
          "Bring the store's schema to this msce-mef's version (serve and init do it too). Refused when\n"
          "the schema is newer than this msce-mef.\n" },
        { NULL, "prune", cmd_prune, "prune",
          "Remove audit rows, and enrolments that no longer serve, older than [audit] keep (default 90d):\n"
          "what the serving MEF does at start and every hour. Status checks are not audit rows: each\n"
          "node counts its own (node show).\n" },
        { NULL, "backup", cmd_backup, "backup DIR [--passphrase-file FILE | --recipient PUBKEY] [--kdf-iterations N]",
          "Write a consistent backup of the store into DIR (created 0700 if missing; its files are created\n"
          "0600 and never overwritten) while the MEF serves: every row, secrets still encrypted under the\n"
          "master key, the master key wrapped under a passphrase (PBKDF2-HMAC-SHA256, AES-256-GCM), and a\n"
          "manifest. The passphrase is read from FILE (owner-only, one line) or asked on the terminal.\n"
          "  --kdf-iterations N   PBKDF2 iterations (default 600000)\n"
          "  --recipient PUBKEY   wrap the master key for this P-256 public key (PEM) instead of a\n"
          "                       passphrase: the backup host holds nothing that opens the backup\n" },
        { NULL, "restore", cmd_restore,
          "restore DIR [--passphrase-file FILE | --identity KEY] [--expect-master-key ID] [--force]",
          "Restore a backup into the configured store: checks the manifest, unwraps the master key into\n"
          "[store] master_key (which must be absent or hold that key) and writes every row in one\n"
          "transaction. Refuses a store with nodes, targets, enrolments or audit rows unless --force\n"
          "(which replaces them). Stop the MEF of that store first.\n"
          "  --expect-master-key ID   refuse a backup whose master key has another ID (init, backup\n"
          "                           and rekey print it): one made with another key, or by someone else\n" },
        { NULL, "rekey", cmd_rekey, "rekey [--prepare]",
          "Rotate the master key while the MEF serves: a new key, written to the key file's path + \".new\"\n"
          "(or the one --prepare put there), takes over in one short transaction, every secret is\n"
          "re-encrypted under it, 1,000 to a transaction, and it replaces the key file. A serving msce-mef\n"
          "reads the new key by itself and opens secrets under either meanwhile. The next rekey finishes\n"
          "one that stopped.\n"
          "  --prepare   only write the new key file, to copy to every other host of the store first\n" },
};

static void group_usage(FILE *f, const char *group) {
        fprintf(f, "Usage:\n");
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].group && streq(commands[i].group, group)) {
                        const char *nl = strchr(commands[i].usage, '\n');
                        int len = nl ? (int) (nl - commands[i].usage) : (int) strlen(commands[i].usage);
                        fprintf(f, "  msce-mef %.*s%s\n", len, commands[i].usage, nl ? " ..." : "");
                }
        fprintf(f, "\nRun 'msce-mef %s COMMAND --help' for a command's options.\n", group);
}

void mef_cli_usage(FILE *f) {
        fprintf(f,
                "Usage: msce-mef [--config FILE] [--json] [COMMAND ...]\n\n"
                "The reference M2M Enrolment Function (MEF) of msce.\n\n"
                "Commands:\n"
                "  serve                      run the MEF (the default)\n"
                "  init                       create the store and its master key\n"
                "  node add|list|show|import|export|remove|reenrol|revoke|activate ...\n"
                "                             manage the nodes allowed to enrol\n"
                "  target add|list|remove ... manage enrolment targets (IN-CSE, MAF)\n"
                "  enrolments [NODE_ID]       list enrolments, newest first (--limit/--after pages)\n"
                "  audit [--limit N]          show the audit trail, newest first (--limit/--after pages)\n"
                "  prune                      remove what is older than [audit] keep\n"
                "  migrate                    bring the store's schema to this version\n"
                "  backup DIR | restore DIR   a backup (master key wrapped) and its restore\n"
                "  rekey                      rotate the master key while serving\n\n"
                "Options:\n"
                "  -c, --config FILE  configuration (default " MEF_CONFIG_DEFAULT ")\n"
                "      --json         print JSON instead of tables\n"
                "  -h, --help         show this help; 'msce-mef COMMAND --help' for a command\n"
                "      --version      show the version\n");
}

int mef_cli_parse_globals(int argc, char **argv, mef_cli_globals_t *ret) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' },
                { "json", no_argument, NULL, OPT_JSON },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                {}
        };
        mef_cli_globals_t g = { 0 };
        int o;
        optind = 0;
        /* '+': stop at the command, whose options are its own */
        while ((o = getopt_long(argc, argv, "+:c:h", opts, NULL)) >= 0)
                switch (o) {
                case 'c':
                        g.config_path = optarg;
                        break;
                case OPT_JSON:
                        g.json = true;
                        break;
                case 'h':
                        g.help = true;
                        break;
                case 'V':
                        g.version = true;
                        break;
                default:
                        fprintf(stderr, "msce-mef: %s '%s'\nTry 'msce-mef --help'.\n",
                                o == ':' ? "option needs a value:" : "unknown option", argv[optind - 1]);
                        return -EINVAL;
                }
        g.command = optind;
        *ret = g;
        return 0;
}

static void cli_done(cli_t *c) {
        cli_running = NULL;
        c->store = store_close(c->store);
}

/* A command's output must have reached stdout: a full disk or a closed descriptor makes a
 * command that printed its list or its result fail, not exit 0 with the output lost. A command
 * that failed already said why. */
static int cli_stdout_end(int r) {
        int e = fflush(stdout) != 0 ? errno : ferror(stdout) ? EIO : 0;
        if (e == 0 || r != 0)
                return r;
        return cli_fail("writing to stdout", e);
}

int mef_cli_run(const mef_config_t *cfg, int argc, char **argv) {
        mef_cli_globals_t g;
        if (mef_cli_parse_globals(argc, argv, &g) < 0)
                return MEF_EXIT_USAGE;
        if (g.command >= argc) {
                mef_cli_usage(stderr);
                return MEF_EXIT_USAGE;
        }
        _cleanup_(cli_done) cli_t c = { .cfg = cfg, .json = g.json };
        cli_running = &c;
        char **av = argv + g.command;
        int ac = argc - g.command;
        const char *group = NULL;

        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (commands[i].group && streq(commands[i].group, av[0]))
                        group = commands[i].group;
        if (group) {
                if (ac < 2) {
                        fprintf(stderr, "msce-mef: %s: missing command\n", group);
                        group_usage(stderr, group);
                        return MEF_EXIT_USAGE;
                }
                if (streq(av[1], "--help") || streq(av[1], "-h")) {
                        group_usage(stdout, group);
                        return cli_stdout_end(0);
                }
                av++;
                ac--;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (!commands[i].group != !group || (group && !streq(commands[i].group, group)) ||
                    !streq(commands[i].name, av[0]))
                        continue;
                command_t def = { commands[i].name, commands[i].usage, commands[i].help };
                return cli_stdout_end(commands[i].run(&c, &def, ac, av));
        }
        if (group) {
                fprintf(stderr, "msce-mef: %s: unknown command '%s'\n", group, av[0]);
                group_usage(stderr, group);
        } else
                fprintf(stderr, "msce-mef: unknown command '%s'\nTry 'msce-mef --help'.\n", av[0]);
        return MEF_EXIT_USAGE;
}

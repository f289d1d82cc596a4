/* SPDX-License-Identifier: MIT */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <ctype.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "mef/cli.h"
#include "proto/ids.h"
#include "mef/store-open.h"
#include "mef/store.h"

#define ACTOR "cli"
#define PSK_GENERATED_LEN 32u
#define PSK_FILE_MAX (2u * MSG_KEY_MAX + 1u) /* hex and one newline */
#define AUDIT_LIMIT_MAX 1000000u

typedef struct cli {
        const mef_config_t *cfg;
        bool json;
        mef_store_t *store;
} cli_t;

typedef struct command {
        const char *name;
        const char *usage; /* after "Usage: msce-mef " */
        const char *help;
} command_t;

/* ---- messages ---- */

static int fail(const char *what, int r) {
        fprintf(stderr, "msce-mef: %s: %s\n", what, strerror(r < 0 ? -r : r));
        return MEF_EXIT_FAILURE;
}

static int failf(const char *fmt, ...) _printf_(1, 2);
static int failf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("msce-mef: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return MEF_EXIT_FAILURE;
}

static int usage_error(const char *cmd, const char *fmt, ...) _printf_(2, 3);
static int usage_error(const char *cmd, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "msce-mef: %s: ", cmd);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\nTry 'msce-mef %s --help'.\n", cmd);
        va_end(ap);
        return MEF_EXIT_USAGE;
}

/* getopt's '?' and ':' as a usage error. */
static int option_error(const char *cmd, int c, char **argv) {
        if (c == ':')
                return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        if (optopt) /* 0 for an unknown long option */
                return usage_error(cmd, "unknown option '-%c'", optopt);
        return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
}

static void help_print(const char *usage, const char *help) {
        printf("Usage: msce-mef %s\n\n%s", usage, help);
}

/* ---- output ---- */

/* A copy safe for a terminal: control bytes become '?'. */
static char *printable(const char *s) {
        char *p = strdup(s ?: "");
        for (char *q = p; q && *q; q++)
                if ((unsigned char) *q < 0x20 || *q == 0x7f)
                        *q = '?';
        return p;
}

static void time_format_human(int64_t t, char out[32]) {
        struct tm tm;
        time_t tt = (time_t) t;
        if (t <= 0 || !gmtime_r(&tt, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(out, 32, "-");
}

typedef struct table {
        size_t n_cols, n_cells, alloc;
        char **cells;
} table_t;

static void table_free(table_t *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
}

static int table_add(table_t *t, const char *v) {
        if (t->n_cells == t->alloc) {
                size_t na = t->alloc ? t->alloc * 2 : 64;
                char **p = reallocarray(t->cells, na, sizeof *p);
                if (!p)
                        return -ENOMEM;
                t->cells = p;
                t->alloc = na;
        }
        char *s = printable(v && v[0] ? v : "-");
        if (!s)
                return -ENOMEM;
        t->cells[t->n_cells++] = s;
        return 0;
}

/* n_cols values. */
static int table_row(table_t *t, ...) {
        va_list ap;
        int r = 0;
        va_start(ap, t);
        for (size_t i = 0; i < t->n_cols && r == 0; i++)
                r = table_add(t, va_arg(ap, const char *));
        va_end(ap);
        return r;
}

static void table_print(const table_t *t) {
        size_t width[16] = { 0 };
        for (size_t i = 0; i < t->n_cells; i++)
                width[i % t->n_cols] = MAX(width[i % t->n_cols], strlen(t->cells[i]));
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t col = i % t->n_cols;
                if (col == t->n_cols - 1)
                        printf("%s\n", t->cells[i]);
                else
                        printf("%-*s  ", (int) width[col], t->cells[i]);
        }
}

static json_t *jstr(const char *s) {
        json_t *j = json_string(s ?: "");
        if (j)
                return j;
        /* not UTF-8 (only possible in audit text): show it, mangled but safe */
        _cleanup_free_ char *p = printable(s);
        for (char *q = p; q && *q; q++)
                if ((unsigned char) *q >= 0x80)
                        *q = '?';
        return p ? json_string(p) : NULL;
}

static json_t *jtime(int64_t t) {
        char buf[32];
        time_format_human(t, buf);
        return json_string(buf);
}

static int json_print(json_t *j) {
        if (!j)
                return fail("json", -ENOMEM);
        int r = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (r < 0)
                return fail("json", -EIO);
        putchar('\n');
        return 0;
}

/* Each json_object_set_new below reports failure through this. */
static void jset(json_t *o, const char *k, json_t *v, bool *ok) {
        if (!v || json_object_set_new(o, k, v) < 0)
                *ok = false;
}

static json_t *node_json(const void *row) {
        const store_node_t *n = row;
        json_t *o = json_object(), *t = json_array();
        bool ok = o && t;
        for (size_t i = 0; ok && i < n->n_targets; i++)
                ok = json_array_append_new(t, json_string(n->targets[i])) == 0;
        if (!ok) {
                json_decref(o);
                json_decref(t);
                return NULL;
        }
        jset(o, "nodeID", json_string(n->node_id), &ok);
        if (n->kpm_id[0]) {
                jset(o, "auth", json_string("psk"), &ok);
                jset(o, "kpmID", json_string(n->kpm_id), &ok);
        } else {
                jset(o, "auth", json_string("cert"), &ok);
                jset(o, "certFingerprint", json_string(n->cert_fp), &ok);
        }
        jset(o, "cseID", json_string(n->cse_id), &ok);
        jset(o, "cseBase", json_string(n->cse_base), &ok);
        jset(o, "targets", t, &ok);
        jset(o, "poll", json_integer(n->poll), &ok);
        jset(o, "lifetime", json_integer(n->lifetime), &ok);
        jset(o, "ltkTransported", json_boolean(n->ltk_transported), &ok);
        jset(o, "state", json_string(node_state_to_string(n->state)), &ok);
        jset(o, "created", jtime(n->created), &ok);
        if (!ok) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static json_t *target_json(const void *row) {
        const store_target_t *t = row;
        json_t *o = json_object();
        bool ok = o != NULL;
        if (!ok)
                return NULL;
        jset(o, "id", json_string(t->id), &ok);
        if (t->psk_id[0]) {
                jset(o, "auth", json_string("psk"), &ok);
                jset(o, "pskID", json_string(t->psk_id), &ok);
        } else {
                jset(o, "auth", json_string("cert"), &ok);
                jset(o, "certFingerprint", json_string(t->cert_fp), &ok);
        }
        jset(o, "created", jtime(t->created), &ok);
        if (!ok) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static json_t *enrolment_json(const void *row) {
        const store_enrolment_t *e = row;
        json_t *o = json_object();
        bool ok = o != NULL;
        if (!ok)
                return NULL;
        jset(o, "keID", json_string(e->ke_id), &ok);
        jset(o, "nodeID", json_string(e->node_id), &ok);
        jset(o, "state", json_string(enrolment_state_to_string(e->state)), &ok);
        jset(o, "created", jtime(e->created), &ok);
        jset(o, "exp", jtime(e->exp), &ok);
        jset(o, "ltkTransported", json_boolean(e->ltk_transported), &ok);
        if (!ok) {
                json_decref(o);
                return NULL;
        }
        return o;
}

/* A JSON array of the n items (each size bytes) of list; NULL when out of memory. */
static json_t *json_array_of(const void *list, size_t n, size_t size, json_t *(*to_json)(const void *row)) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, to_json((const uint8_t *) list + i * size)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

static json_t *enrolments_json(const store_enrolment_t *list, size_t n) {
        return json_array_of(list, n, sizeof *list, enrolment_json);
}

/* {"removed": id} for the remove commands. */
static int removed_print(const char *id) {
        json_t *o = json_object();
        bool ok = o != NULL;
        if (o)
                jset(o, "removed", json_string(id), &ok);
        if (!ok) {
                json_decref(o);
                o = NULL;
        }
        return json_print(o) ? MEF_EXIT_FAILURE : 0;
}

static int enrolments_table(const store_enrolment_t *list, size_t n) {
        _cleanup_(table_free) table_t t = { .n_cols = 6 };
        int r = table_row(&t, "KE_ID", "NODE_ID", "STATE", "CREATED", "EXPIRES", "LTK");
        for (size_t i = 0; r == 0 && i < n; i++) {
                char created[32], exp[32];
                time_format_human(list[i].created, created);
                time_format_human(list[i].exp, exp);
                r = table_row(&t, list[i].ke_id, list[i].node_id, enrolment_state_to_string(list[i].state),
                              created, exp, list[i].ltk_transported ? "transported" : "Ke");
        }
        if (r < 0)
                return fail("table", r);
        table_print(&t);
        return 0;
}

/* ---- store ---- */

static int cli_open_flags(cli_t *c, unsigned flags) {
        const char *name = mef_store_name(c->cfg);
        int r = mef_store_open(c->cfg, flags, &c->store);
        switch (r) {
        case 0:
                return 0;
        case -ENOENT:
                return failf("open store %s (master key %s): %s (run 'msce-mef init' first)", name,
                             c->cfg->master_key_path, strerror(ENOENT));
        case -EPERM:
                return failf("master key %s or password file: readable by group or others (chmod 0400 it)",
                             c->cfg->master_key_path);
        case -EBADMSG:
                return failf("master key %s: does not open store %s (wrong key file)", c->cfg->master_key_path, name);
        case -EINVAL:
                return failf("master key %s: not %u bytes, or [store] uri carries a password", c->cfg->master_key_path,
                             STORE_MASTER_KEY_LEN);
        case -EPROTONOSUPPORT:
                return failf("open store %s: schema written by a newer msce-mef (this one knows version %d)", name,
                             STORE_SCHEMA_VERSION);
        case -ESTALE:
                return failf("open store %s: schema older than this msce-mef: run 'msce-mef migrate'", name);
        case -EOPNOTSUPP:
                return failf("open store %s: this msce-mef is built without PostgreSQL support", name);
        default:
                return failf("open store %s: %s", name, strerror(-r));
        }
}

static int cli_open(cli_t *c, bool create) {
        return cli_open_flags(c, create ? STORE_OPEN_CREATE : 0);
}

/* Run a change and its audit row as one transaction. */
static int cli_audit_commit(cli_t *c, const char *action, const char *subject, const char *detail) {
        int r = store_audit(c->store, ACTOR, action, subject, detail);
        if (r == 0)
                r = store_commit(c->store);
        if (r < 0)
                store_rollback(c->store);
        return r;
}

/* Finish a change that returned r after store_begin(): roll it back, or commit it with its audit row. */
static int cli_change_end(cli_t *c, int r, const char *action, const char *subject, const char *detail) {
        if (r < 0) {
                store_rollback(c->store);
                return r;
        }
        return cli_audit_commit(c, action, subject, detail);
}

/* ---- key material from files ---- */

/* Kpm as hex on one line (16..64 bytes), owner-only file. */
static int psk_file_read(const char *path, uint8_t key[MSG_KEY_MAX], size_t *ret_len) {
        _cleanup_secret_ secret_t s = { 0 };
        int r = secret_file_read(path, PSK_FILE_MAX, &s);
        if (r == -EFBIG || r == -ENODATA)
                return -EINVAL;
        if (r < 0)
                return r;
        size_t n = s.len;
        if (s.data[n - 1] == '\n')
                n--;
        _cleanup_erase_(64) uint8_t buf[MSG_KEY_MAX];
        char hex[PSK_FILE_MAX + 1];
        memcpy(hex, s.data, n);
        hex[n] = 0;
        size_t len = 0;
        r = hex_decode(hex, buf, sizeof buf, &len);
        erase(hex, sizeof hex);
        if (r < 0 || len < MSG_KEY_MIN)
                return -EINVAL;
        memcpy(key, buf, len);
        *ret_len = len;
        return 0;
}

/* 32 random bytes as hex into a new owner-only file; refuses an existing one. */
static int psk_file_generate(const char *path, uint8_t key[PSK_GENERATED_LEN]) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return negative_errno();
        char hex[2 * PSK_GENERATED_LEN + 2];
        int r = random_bytes(key, PSK_GENERATED_LEN);
        if (r == 0 && fchmod(fd, 0600) < 0)
                r = negative_errno();
        if (r == 0) {
                hex_encode(key, PSK_GENERATED_LEN, hex);
                hex[2 * PSK_GENERATED_LEN] = '\n';
                ssize_t n = write(fd, hex, sizeof hex - 1);
                if (n != (ssize_t) sizeof hex - 1)
                        r = n < 0 ? negative_errno() : -EIO;
        }
        erase(hex, sizeof hex);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0) {
                erase(key, PSK_GENERATED_LEN);
                unlink(path);
        }
        return r;
}

static int cert_fingerprint(const char *path, char out[STORE_FP_LEN + 1]) {
        if (access(path, R_OK) < 0)
                return negative_errno();
        WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_file(path, WOLFSSL_FILETYPE_PEM);
        if (!x)
                return -EBADMSG;
        int sz = 0;
        const unsigned char *der = wolfSSL_X509_get_der(x, &sz);
        uint8_t h[WC_SHA256_DIGEST_SIZE];
        int r = der && sz > 0 && wc_Sha256Hash(der, (word32) sz, h) == 0 ? 0 : -EBADMSG;
        wolfSSL_X509_free(x);
        if (r == 0)
                hex_encode(h, sizeof h, out);
        return r;
}

/* "AB:CD:..." (openssl x509 -fingerprint) or plain hex, to lowercase hex. */
static int cert_fp_normalise(const char *in, char out[STORE_FP_LEN + 1]) {
        size_t n = 0;
        for (const char *p = in; *p; p++) {
                if (*p == ':')
                        continue;
                if (!isxdigit((unsigned char) *p) || n >= STORE_FP_LEN)
                        return -EINVAL;
                out[n++] = (char) tolower((unsigned char) *p);
        }
        if (n != STORE_FP_LEN)
                return -EINVAL;
        out[n] = 0;
        return 0;
}

static int psk_error(const char *path, int r) {
        if (r == -EPERM)
                return failf("psk file %s: readable by group or others (chmod 0600 it)", path);
        if (r == -EINVAL)
                return failf("psk file %s: expected %u..%u bytes as hex on one line", path, MSG_KEY_MIN, MSG_KEY_MAX);
        return failf("psk file %s: %s", path, strerror(-r));
}

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

static void credential_done(credential_t *cr) {
        erase(cr->key, sizeof cr->key);
        cr->key_len = 0;
}

static int credential_check(const char *cmd, const credential_opts_t *o) {
        int modes = !!o->psk_id + !!o->cert + !!o->cert_fp;
        if (modes != 1)
                return usage_error(cmd, "give exactly one of --psk-id, --cert, --cert-fp");
        if (o->psk_id && !!o->psk_file + !!o->generate_psk != 1)
                return usage_error(cmd, "--psk-id needs exactly one of --psk-file, --generate-psk");
        if (!o->psk_id && (o->psk_file || o->generate_psk))
                return usage_error(cmd, "--psk-file and --generate-psk need --psk-id");
        if (o->psk_id && !id_is_valid(o->psk_id, MSG_ID_MAX))
                return usage_error(cmd, "--psk-id: expected 1..%u printable ASCII characters without spaces", MSG_ID_MAX);
        if (o->cert_fp) {
                char fp[STORE_FP_LEN + 1];
                if (cert_fp_normalise(o->cert_fp, fp) < 0)
                        return usage_error(cmd, "--cert-fp: expected a SHA-256 fingerprint (64 hex digits)");
        }
        return 0;
}

/* Reads, generates or computes the credential; the generated file is created last. */
static int credential_load(const credential_opts_t *o, credential_t *cr) {
        int r;
        if (o->psk_id) {
                snprintf(cr->psk_id, sizeof cr->psk_id, "%s", o->psk_id);
                if (o->psk_file) {
                        r = psk_file_read(o->psk_file, cr->key, &cr->key_len);
                        return r < 0 ? psk_error(o->psk_file, r) : 0;
                }
                r = psk_file_generate(o->generate_psk, cr->key);
                if (r == -EEXIST)
                        return failf("psk file %s: exists already (not overwritten)", o->generate_psk);
                if (r < 0)
                        return failf("psk file %s: %s", o->generate_psk, strerror(-r));
                cr->key_len = PSK_GENERATED_LEN;
                cr->generated = o->generate_psk;
                return 0;
        }
        if (o->cert) {
                r = cert_fingerprint(o->cert, cr->cert_fp);
                if (r == -EBADMSG)
                        return failf("certificate %s: not a PEM certificate", o->cert);
                return r < 0 ? failf("certificate %s: %s", o->cert, strerror(-r)) : 0;
        }
        return cert_fp_normalise(o->cert_fp, cr->cert_fp) < 0 ? MEF_EXIT_USAGE : 0;
}

static void credential_detail(const credential_t *cr, char *buf, size_t size) {
        if (cr->psk_id[0])
                snprintf(buf, size, "psk id=%s%s", cr->psk_id, cr->generated ? " (generated)" : "");
        else
                snprintf(buf, size, "cert fp=%s", cr->cert_fp);
}

/* A failed node add or target add: a generated key file opens nothing, so it goes. */
static int credential_add_failed(const char *cmd, const char *id, const credential_t *cr, int r, const char *in_use) {
        if (cr->generated)
                unlink(cr->generated);
        if (r == -EEXIST)
                return failf("%s %s: %s already in use", cmd, id, in_use);
        if (r == -EADDRINUSE) /* only nodes have a CSE-ID */
                return failf("%s %s: --cse-id: CSE-ID already assigned to another node", cmd, id);
        return failf("%s %s: %s", cmd, id, strerror(-r));
}

static void credential_added_print(const char *what, const char *id, const char *detail, const credential_t *cr,
                                   const char *key_name, const char *key_hint) {
        printf("Added %s %s (%s).\n", what, id, detail);
        if (cr->generated)
                printf("Wrote its %s to %s%s.\n", key_name, cr->generated, key_hint);
}

/* ---- option parsing ---- */

#define OPT_HELP 'h'
#define OPT_JSON 0x100
#define COMMON_OPTIONS { "help", no_argument, NULL, OPT_HELP }, { "json", no_argument, NULL, OPT_JSON }
#define CREDENTIAL_OPTIONS                                  \
        { "psk-id", required_argument, NULL, 'k' },         \
        { "psk-file", required_argument, NULL, 'f' },       \
        { "generate-psk", required_argument, NULL, 'g' },   \
        { "cert", required_argument, NULL, 'c' },           \
        { "cert-fp", required_argument, NULL, 'F' }

/* Takes the CREDENTIAL_OPTIONS option o into co; false when o is not one of them. */
static bool credential_option(credential_opts_t *co, int o, const char *arg) {
        switch (o) {
        case 'k':
                co->psk_id = arg;
                return true;
        case 'f':
                co->psk_file = arg;
                return true;
        case 'g':
                co->generate_psk = arg;
                return true;
        case 'c':
                co->cert = arg;
                return true;
        case 'F':
                co->cert_fp = arg;
                return true;
        default:
                return false;
        }
}

/* The positional arguments after getopt; want = how many exactly. */
static int positionals(const char *cmd, int argc, char **argv, int want, const char *what) {
        if (argc - optind < want)
                return usage_error(cmd, "missing %s", what ?: "argument");
        if (argc - optind > want)
                return usage_error(cmd, "unexpected argument '%s'", argv[optind + want]);
        return 0;
}

static int parse_seconds(const char *cmd, const char *opt, const char *v, unsigned min, unsigned max,
                         uint32_t *ret) {
        unsigned long long u;
        if (parse_uint(v, max, &u) < 0 || u < min)
                return usage_error(cmd, "%s: expected seconds from %u to %u", opt, min, max);
        *ret = (uint32_t) u;
        return 0;
}

/* Options of a command that has only --help and --json, and want positionals.
 * -1 to go on, or the exit status to return now (0 after --help). */
static int simple_options(cli_t *c, const char *cmd, const command_t *def, int argc, char **argv, int want,
                          const char *what) {
        static const struct option opts[] = { COMMON_OPTIONS, {} };
        int o;
        optind = 0;
        while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0)
                switch (o) {
                case OPT_HELP:
                        help_print(def->usage, def->help);
                        return 0;
                case OPT_JSON:
                        c->json = true;
                        break;
                default:
                        return option_error(cmd, o, argv);
                }
        int r = positionals(cmd, argc, argv, want, what);
        return r ? r : -1;
}

/* ---- migrate ---- */

static int cmd_migrate(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = simple_options(c, "migrate", def, argc, argv, 0, NULL);
        if (r >= 0)
                return r;
        r = cli_open_flags(c, STORE_OPEN_MIGRATE);
        if (r)
                return r;
        int from, to;
        r = store_migrate(c->store, &from, &to);
        if (r < 0)
                return fail("migrate", r);
        if (from != to) {
                char detail[64];
                snprintf(detail, sizeof detail, "schema %d -> %d", from, to);
                (void) store_audit(c->store, ACTOR, "migrate", mef_store_name(c->cfg), detail);
        }
        printf("%s: schema version %d%s\n", mef_store_name(c->cfg), to, from == to ? " (up to date)" : "");
        if (from != to)
                printf("migrated from version %d\n", from);
        return 0;
}

/* ---- init ---- */

static int cmd_init(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = simple_options(c, "init", def, argc, argv, 0, NULL);
        if (r >= 0)
                return r;
        bool existed = access(c->cfg->store_path, F_OK) == 0;
        r = cli_open(c, true);
        if (r)
                return r;
        if (!existed) {
                r = store_audit(c->store, ACTOR, "init", c->cfg->store_path, NULL);
                if (r < 0)
                        return fail("audit", r);
        }
        if (c->json) {
                json_t *o = json_object();
                bool ok = o != NULL;
                if (o) {
                        jset(o, "store", json_string(c->cfg->store_path), &ok);
                        jset(o, "masterKey", json_string(c->cfg->master_key_path), &ok);
                        jset(o, "created", json_boolean(!existed), &ok);
                }
                if (!ok) {
                        json_decref(o);
                        o = NULL;
                }
                return json_print(o) ? MEF_EXIT_FAILURE : 0;
        }
        if (existed)
                printf("Store %s exists already; master key %s opens it.\n", c->cfg->store_path,
                       c->cfg->master_key_path);
        else
                printf("Created store %s with master key %s.\n", c->cfg->store_path, c->cfg->master_key_path);
        return 0;
}

/* ---- node ---- */

static int node_print(cli_t *c, const store_node_t *n, const store_enrolment_t *enr, size_t n_enr) {
        if (c->json) {
                json_t *o = node_json(n);
                if (o && enr && json_object_set_new(o, "enrolments", enrolments_json(enr, n_enr)) < 0) {
                        json_decref(o);
                        o = NULL;
                }
                return json_print(o) ? MEF_EXIT_FAILURE : 0;
        }
        char created[32], targets[MSG_TARGETS_MAX * (MSG_ID_MAX + 2) + 1] = "";
        time_format_human(n->created, created);
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
        printf("CSE-ID:          %s\n", n->cse_id);
        printf("CSEBase:         %s\n", n->cse_base);
        printf("Targets:         %s\n", n->n_targets ? targets : "-");
        printf("Poll:            %" PRIu32 " s\n", n->poll);
        printf("Lifetime:        %" PRIu32 " s\n", n->lifetime);
        printf("LTK transported: %s\n", n->ltk_transported ? "yes" : "no");
        printf("State:           %s\n", node_state_to_string(n->state));
        printf("Created:         %s\n", created);
        if (enr) {
                printf("Enrolments:      %zu\n", n_enr);
                if (n_enr) {
                        putchar('\n');
                        return enrolments_table(enr, n_enr);
                }
        }
        return 0;
}

static int cmd_node_add(cli_t *c, const command_t *def, int argc, char **argv) {
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
                return fail(cmd, -ENOMEM);
        n->poll = c->cfg->default_poll;
        n->lifetime = c->cfg->default_lifetime;
        n->state = NODE_ACTIVE;
        credential_opts_t co = { 0 };
        const char *cse_id = NULL, *cse_base = NULL, *why = NULL;
        int o, r;

        optind = 0;
        while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0)
                switch (o) {
                case OPT_HELP:
                        help_print(def->usage, def->help);
                        return 0;
                case OPT_JSON:
                        c->json = true;
                        break;
                case 'i':
                        cse_id = optarg;
                        break;
                case 'b':
                        cse_base = optarg;
                        break;
                case 't':
                        if (ids_check_target_id(optarg, &why) < 0)
                                return usage_error(cmd, "--target: %s", why);
                        for (size_t i = 0; i < n->n_targets; i++)
                                if (streq(n->targets[i], optarg))
                                        return usage_error(cmd, "--target %s given twice", optarg);
                        if (n->n_targets >= MSG_TARGETS_MAX)
                                return usage_error(cmd, "at most %u --target", MSG_TARGETS_MAX);
                        snprintf(n->targets[n->n_targets++], sizeof n->targets[0], "%s", optarg);
                        break;
                case 'p':
                        if ((r = parse_seconds(cmd, "--poll", optarg, STORE_POLL_MIN, STORE_POLL_MAX, &n->poll)))
                                return r;
                        break;
                case 'l':
                        if ((r = parse_seconds(cmd, "--lifetime", optarg, STORE_LIFETIME_MIN, STORE_LIFETIME_MAX,
                                               &n->lifetime)))
                                return r;
                        break;
                case 'L':
                        n->ltk_transported = true;
                        break;
                default:
                        if (!credential_option(&co, o, optarg))
                                return option_error(cmd, o, argv);
                }
        if ((r = positionals(cmd, argc, argv, 1, "NODE_ID")))
                return r;
        const char *node_id = argv[optind];
        if (ids_check_node_id(node_id, &why) < 0)
                return usage_error(cmd, "NODE_ID: %s", why);
        if (!cse_id || !cse_base)
                return usage_error(cmd, "missing %s", !cse_id ? "--cse-id" : "--cse-base");
        if (ids_check_cse_id(cse_id, &why) < 0)
                return usage_error(cmd, "--cse-id: %s", why);
        if (ids_check_cse_base(cse_base, &why) < 0)
                return usage_error(cmd, "--cse-base: %s", why);
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
                return failf("%s %s: node exists already", cmd, node_id);
        if (store_node_by_cse_id(c->store, cse_id, &existing) == 0)
                return failf("%s %s: --cse-id: CSE-ID already assigned to node %s", cmd, node_id, existing.node_id);

        _cleanup_(credential_done) credential_t cr = { 0 };
        if ((r = credential_load(&co, &cr)))
                return r;
        memcpy(n->kpm_id, cr.psk_id, sizeof n->kpm_id);
        memcpy(n->cert_fp, cr.cert_fp, sizeof n->cert_fp);

        char detail[512];
        credential_detail(&cr, detail, sizeof detail);
        r = store_begin(c->store);
        if (r == 0)
                r = cli_change_end(c, store_node_add(c->store, n, cr.key_len ? cr.key : NULL, cr.key_len), "node-add",
                                   node_id, detail);
        if (r < 0)
                return credential_add_failed(cmd, node_id, &cr, r, "node ID, KpmID or certificate");

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

        r = store_node_get(c->store, node_id, n);
        if (r < 0)
                return fail(cmd, r);
        if (c->json)
                return node_print(c, n, NULL, 0);
        credential_added_print("node", node_id, detail, &cr, "Kpm",
                               ": install it on the device as the agent's psk_file");
        return 0;
}

static int cmd_node_list(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = simple_options(c, "node list", def, argc, argv, 0, NULL);
        if (r >= 0)
                return r;
        if ((r = cli_open(c, false)))
                return r;
        _cleanup_free_ store_node_t *list = NULL;
        size_t n = 0;
        r = store_node_list(c->store, &list, &n);
        if (r < 0)
                return fail("node list", r);
        if (c->json)
                return json_print(json_array_of(list, n, sizeof *list, node_json)) ? MEF_EXIT_FAILURE : 0;
        _cleanup_(table_free) table_t t = { .n_cols = 8 };
        r = table_row(&t, "NODE_ID", "AUTH", "IDENTITY", "CSE_ID", "STATE", "POLL", "LIFETIME", "TARGETS");
        for (size_t i = 0; r == 0 && i < n; i++) {
                const store_node_t *e = &list[i];
                char poll[16], lifetime[16], targets[MSG_TARGETS_MAX * (MSG_ID_MAX + 1) + 1] = "";
                snprintf(poll, sizeof poll, "%" PRIu32, e->poll);
                snprintf(lifetime, sizeof lifetime, "%" PRIu32, e->lifetime);
                for (size_t j = 0; j < e->n_targets; j++) {
                        if (j)
                                strcat(targets, ",");
                        strcat(targets, e->targets[j]);
                }
                r = table_row(&t, e->node_id, e->kpm_id[0] ? "psk" : "cert", e->kpm_id[0] ? e->kpm_id : e->cert_fp,
                              e->cse_id, node_state_to_string(e->state), poll, lifetime, targets);
        }
        if (r < 0)
                return fail("node list", r);
        table_print(&t);
        return 0;
}

static int node_get_or_fail(cli_t *c, const char *cmd, const char *node_id, store_node_t *ret) {
        int r = store_node_get(c->store, node_id, ret);
        if (r == -ENOENT)
                return failf("%s %s: no such node", cmd, node_id);
        return r < 0 ? failf("%s %s: %s", cmd, node_id, strerror(-r)) : 0;
}

static int cmd_node_show(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = simple_options(c, "node show", def, argc, argv, 1, "NODE_ID");
        if (r >= 0)
                return r;
        if ((r = cli_open(c, false)))
                return r;
        const char *node_id = argv[optind];
        _cleanup_free_ store_node_t *n = calloc(1, sizeof *n);
        if (!n)
                return fail("node show", -ENOMEM);
        if ((r = node_get_or_fail(c, "node show", node_id, n)))
                return r;
        _cleanup_free_ store_enrolment_t *enr = NULL;
        size_t n_enr = 0;
        r = store_enrolment_list(c->store, node_id, &enr, &n_enr);
        if (r < 0)
                return fail("node show", r);
        static const store_enrolment_t none;
        return node_print(c, n, enr ?: &none, n_enr);
}

/* remove, reenrol, revoke, activate: NODE_ID only. */
static int cmd_node_change(cli_t *c, const command_t *def, int argc, char **argv) {
        _cleanup_free_ char *cmd = NULL;
        if (asprintf(&cmd, "node %s", def->name) < 0)
                return fail("node", -ENOMEM);
        int r = simple_options(c, cmd, def, argc, argv, 1, "NODE_ID");
        if (r >= 0)
                return r;
        if ((r = cli_open(c, false)))
                return r;
        const char *node_id = argv[optind];
        _cleanup_free_ store_node_t *n = calloc(1, sizeof *n);
        if (!n)
                return fail(cmd, -ENOMEM);
        if ((r = node_get_or_fail(c, cmd, node_id, n)))
                return r;

        char action[32], detail[64] = "";
        snprintf(action, sizeof action, "node-%s", def->name);
        node_state_t to = streq(def->name, "reenrol") ? NODE_REENROL
                        : streq(def->name, "revoke")  ? NODE_REVOKED
                                                      : NODE_ACTIVE;
        if (!streq(def->name, "remove"))
                snprintf(detail, sizeof detail, "state %s -> %s", node_state_to_string(n->state),
                         node_state_to_string(to));

        r = store_begin(c->store);
        if (r == 0) {
                if (streq(def->name, "remove"))
                        r = store_node_remove(c->store, node_id);
                else
                        r = store_node_set_state(c->store, node_id, to);
                if (r == 0 && to == NODE_REVOKED && !streq(def->name, "remove"))
                        /* its keys stop working now, not at their expiry */
                        r = store_enrolment_set_state_for_node(c->store, node_id, ENROLMENT_REVOKED);
                r = cli_change_end(c, r, action, node_id, detail[0] ? detail : NULL);
        }
        if (r < 0)
                return failf("%s %s: %s", cmd, node_id, strerror(-r));

        if (streq(def->name, "remove")) {
                if (c->json)
                        return removed_print(node_id);
                printf("Removed node %s and its enrolments.\n", node_id);
                return 0;
        }
        r = store_node_get(c->store, node_id, n);
        if (r < 0)
                return fail(cmd, r);
        if (c->json)
                return node_print(c, n, NULL, 0);
        printf("Node %s: %s.\n", node_id, detail);
        return 0;
}

/* ---- target ---- */

static int cmd_target_add(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS,
                CREDENTIAL_OPTIONS,
                {}
        };
        const char *cmd = "target add";
        credential_opts_t co = { 0 };
        int o, r;
        optind = 0;
        while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0)
                switch (o) {
                case OPT_HELP:
                        help_print(def->usage, def->help);
                        return 0;
                case OPT_JSON:
                        c->json = true;
                        break;
                default:
                        if (!credential_option(&co, o, optarg))
                                return option_error(cmd, o, argv);
                }
        if ((r = positionals(cmd, argc, argv, 1, "TARGET_ID")))
                return r;
        const char *id = argv[optind];
        const char *why = NULL;
        if (ids_check_target_id(id, &why) < 0)
                return usage_error(cmd, "TARGET_ID: %s", why);
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
                return json_print(target_json(&t)) ? MEF_EXIT_FAILURE : 0;
        credential_added_print("target", id, detail, &cr, "PSK", "");
        return 0;
}

static int cmd_target_list(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = simple_options(c, "target list", def, argc, argv, 0, NULL);
        if (r >= 0)
                return r;
        if ((r = cli_open(c, false)))
                return r;
        _cleanup_free_ store_target_t *list = NULL;
        size_t n = 0;
        r = store_target_list(c->store, &list, &n);
        if (r < 0)
                return fail("target list", r);
        if (c->json)
                return json_print(json_array_of(list, n, sizeof *list, target_json)) ? MEF_EXIT_FAILURE : 0;
        _cleanup_(table_free) table_t t = { .n_cols = 4 };
        r = table_row(&t, "TARGET_ID", "AUTH", "IDENTITY", "CREATED");
        for (size_t i = 0; r == 0 && i < n; i++) {
                char created[32];
                time_format_human(list[i].created, created);
                r = table_row(&t, list[i].id, list[i].psk_id[0] ? "psk" : "cert",
                              list[i].psk_id[0] ? list[i].psk_id : list[i].cert_fp, created);
        }
        if (r < 0)
                return fail("target list", r);
        table_print(&t);
        return 0;
}

static int cmd_target_remove(cli_t *c, const command_t *def, int argc, char **argv) {
        const char *cmd = "target remove";
        int r = simple_options(c, cmd, def, argc, argv, 1, "TARGET_ID");
        if (r >= 0)
                return r;
        if ((r = cli_open(c, false)))
                return r;
        const char *id = argv[optind];
        r = store_begin(c->store);
        if (r == 0) {
                r = cli_change_end(c, store_target_remove(c->store, id), "target-remove", id, NULL);
        }
        if (r == -ENOENT)
                return failf("%s %s: no such target", cmd, id);
        if (r < 0)
                return failf("%s %s: %s", cmd, id, strerror(-r));
        if (c->json)
                return removed_print(id);
        printf("Removed target %s.\n", id);
        return 0;
}

/* ---- enrolments, audit ---- */

static int cmd_enrolments(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = { COMMON_OPTIONS, {} };
        const char *cmd = "enrolments";
        int o, r;
        optind = 0;
        while ((o = getopt_long(argc, argv, ":h", opts, NULL)) >= 0)
                switch (o) {
                case OPT_HELP:
                        help_print(def->usage, def->help);
                        return 0;
                case OPT_JSON:
                        c->json = true;
                        break;
                default:
                        return option_error(cmd, o, argv);
                }
        if (argc - optind > 1)
                return usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
        const char *node_id = argc > optind ? argv[optind] : NULL;
        if ((r = cli_open(c, false)))
                return r;
        if (node_id) {
                _cleanup_free_ store_node_t *n = calloc(1, sizeof *n);
                if (!n)
                        return fail(cmd, -ENOMEM);
                if ((r = node_get_or_fail(c, cmd, node_id, n)))
                        return r;
        }
        _cleanup_free_ store_enrolment_t *list = NULL;
        size_t n = 0;
        r = store_enrolment_list(c->store, node_id, &list, &n);
        if (r < 0)
                return fail(cmd, r);
        if (c->json)
                return json_print(enrolments_json(list, n)) ? MEF_EXIT_FAILURE : 0;
        return enrolments_table(list, n);
}

static int cmd_audit(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = { COMMON_OPTIONS, { "limit", required_argument, NULL, 'n' }, {} };
        const char *cmd = "audit";
        unsigned long long limit = 0;
        int o, r;
        optind = 0;
        while ((o = getopt_long(argc, argv, ":hn:", opts, NULL)) >= 0)
                switch (o) {
                case OPT_HELP:
                        help_print(def->usage, def->help);
                        return 0;
                case OPT_JSON:
                        c->json = true;
                        break;
                case 'n':
                        if (parse_uint(optarg, AUDIT_LIMIT_MAX, &limit) < 0 || limit == 0)
                                return usage_error(cmd, "--limit: expected a number from 1 to %u", AUDIT_LIMIT_MAX);
                        break;
                default:
                        return option_error(cmd, o, argv);
                }
        if ((r = positionals(cmd, argc, argv, 0, NULL)))
                return r;
        if ((r = cli_open(c, false)))
                return r;
        _cleanup_free_ store_audit_entry_t *list = NULL;
        size_t n = 0;
        r = store_audit_list(c->store, (size_t) limit, &list, &n);
        if (r < 0)
                return fail(cmd, r);
        if (c->json) {
                json_t *a = json_array();
                for (size_t i = 0; a && i < n; i++) {
                        json_t *e = json_object();
                        bool ok = e != NULL;
                        if (e) {
                                jset(e, "id", json_integer(list[i].id), &ok);
                                jset(e, "time", jtime(list[i].ts), &ok);
                                jset(e, "actor", jstr(list[i].actor), &ok);
                                jset(e, "action", jstr(list[i].action), &ok);
                                jset(e, "subject", jstr(list[i].subject), &ok);
                                jset(e, "detail", jstr(list[i].detail), &ok);
                        }
                        if (!ok || json_array_append_new(a, e) < 0) {
                                if (ok)
                                        e = NULL; /* json_array_append_new took it */
                                json_decref(e);
                                json_decref(a);
                                a = NULL;
                        }
                }
                return json_print(a) ? MEF_EXIT_FAILURE : 0;
        }
        _cleanup_(table_free) table_t t = { .n_cols = 6 };
        r = table_row(&t, "ID", "TIME", "ACTOR", "ACTION", "SUBJECT", "DETAIL");
        for (size_t i = 0; r == 0 && i < n; i++) {
                char id[24], ts[32];
                snprintf(id, sizeof id, "%" PRId64, list[i].id);
                time_format_human(list[i].ts, ts);
                r = table_row(&t, id, ts, list[i].actor, list[i].action, list[i].subject, list[i].detail);
        }
        if (r < 0)
                return fail(cmd, r);
        table_print(&t);
        return 0;
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
        { NULL, "migrate", cmd_migrate, "migrate",
          "Bring the store's schema to this msce-mef's version (serve and init do it too). Refused when\n"
          "the schema is newer than this msce-mef.\n" },
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
        { "node", "list", cmd_node_list, "node list", "List the nodes.\n" },
        { "node", "show", cmd_node_show, "node show NODE_ID", "Show a node and its enrolments.\n" },
        { "node", "remove", cmd_node_change, "node remove NODE_ID", "Remove a node and all its enrolments.\n" },
        { "node", "reenrol", cmd_node_change, "node reenrol NODE_ID",
          "Ask the node to enrol again: its next status check answers \"reenrol\".\n" },
        { "node", "revoke", cmd_node_change, "node revoke NODE_ID",
          "Revoke the node and its active enrolments: status checks answer \"revoked\" and its agent\n"
          "removes its keys; new enrolments are refused until 'node activate'.\n" },
        { "node", "activate", cmd_node_change, "node activate NODE_ID",
          "Put a node back to state active (after reenrol or revoke).\n" },
        { "target", "add", cmd_target_add,
          "target add TARGET_ID (--psk-id ID (--psk-file FILE | --generate-psk FILE) | --cert FILE.pem | --cert-fp HEX)",
          "Allow an enrolment target (IN-CSE, MAF) to fetch the credentials of nodes that name it.\n\n" CREDENTIAL_HELP },
        { "target", "list", cmd_target_list, "target list", "List the enrolment targets.\n" },
        { "target", "remove", cmd_target_remove, "target remove TARGET_ID", "Remove an enrolment target.\n" },
        { NULL, "enrolments", cmd_enrolments, "enrolments [NODE_ID]",
          "List enrolments (of one node, or all), newest first. Keys are never shown.\n" },
        { NULL, "audit", cmd_audit, "audit [--limit N]",
          "Show the audit trail, newest first: every change by this CLI and every exchange the server\n"
          "handled. --limit N shows the newest N rows only.\n" },
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
                "  migrate                    bring the store's schema to this version\n"
                "  node add|list|show|remove|reenrol|revoke|activate ...\n"
                "                             manage the nodes allowed to enrol\n"
                "  target add|list|remove ... manage enrolment targets (IN-CSE, MAF)\n"
                "  enrolments [NODE_ID]       list enrolments, newest first\n"
                "  audit [--limit N]          show the audit trail, newest first\n\n"
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
        c->store = store_close(c->store);
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
                        return 0;
                }
                av++;
                ac--;
        }
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (!commands[i].group != !group || (group && !streq(commands[i].group, group)) ||
                    !streq(commands[i].name, av[0]))
                        continue;
                command_t def = { commands[i].name, commands[i].usage, commands[i].help };
                return commands[i].run(&c, &def, ac, av);
        }
        if (group) {
                fprintf(stderr, "msce-mef: %s: unknown command '%s'\n", group, av[0]);
                group_usage(stderr, group);
        } else
                fprintf(stderr, "msce-mef: unknown command '%s'\nTry 'msce-mef --help'.\n", av[0]);
        return MEF_EXIT_USAGE;
}

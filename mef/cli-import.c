/* SPDX-License-Identifier: MIT */
/* The bulk lifecycle from the factory line: node import FILE (CSV with a header row, or JSON
 * Lines) in one transaction, node export (never a key), node revoke --from FILE. */
#include <inttypes.h>
#include <sys/stat.h>

#include "mef/cli-internal.h"
#include "proto/ids.h"
#include "util/fs.h"
#include "util/hex.h"

#define IMPORT_LINE_MAX 16384u   /* a row: 16 targets of 255 and a cseBase of 1024 fit easily */
#define IMPORT_ERRORS_SHOWN 1000u /* then only counted */
#define EXPORT_PAGE 1000u

/* The fields of a row, by name: the CSV header and the JSON keys are the same words. */
enum {
        F_NODE_ID, F_KPM_ID, F_KPM, F_KPM_FILE, F_CERT_FP, F_CSE_ID, F_CSE_BASE, F_TARGETS, F_POLL, F_LIFETIME,
        F_LTK, F_STATE, _F_MAX,
};
static const char *const field_names[_F_MAX] = {
        [F_NODE_ID] = "nodeID",     [F_KPM_ID] = "kpmID",       [F_KPM] = "kpm",
        [F_KPM_FILE] = "kpmFile",   [F_CERT_FP] = "certFingerprint", [F_CSE_ID] = "cseID",
        [F_CSE_BASE] = "cseBase",   [F_TARGETS] = "targets",    [F_POLL] = "poll",
        [F_LIFETIME] = "lifetime",  [F_LTK] = "ltkTransported", [F_STATE] = "state",
};

static int field_index(const char *name) {
        for (int i = 0; i < _F_MAX; i++)
                if (streq(field_names[i], name))
                        return i;
        return -1;
}

/* One row's values by field (NULL: absent or empty), pointing into the line or the JSON. */
typedef struct record {
        const char *v[_F_MAX];
        char targets[MSG_TARGETS_MAX * (MSG_ID_MAX + 1) + 1]; /* a JSON array, joined by spaces */
        char number[2][24];                                     /* JSON numbers as text */
} record_t;

/* ---- reading a file ---- */

typedef struct reader {
        const char *path;
        FILE *f;
        char *line;
        size_t alloc;
        unsigned lineno;
        bool jsonl;
        bool group_readable;
        int cols[_F_MAX + 8]; /* CSV: field of each column, -1: ignored */
        size_t n_cols;
        json_t *json;          /* JSONL: the current row */
} reader_t;

static void reader_done(reader_t *rd) {
        if (rd->line)
                erase(rd->line, rd->alloc); /* rows may hold a Kpm as hex */
        free(rd->line);
        json_decref(rd->json);
        if (rd->f)
                fclose(rd->f);
}

/* A CSV line split in place at commas; "..." quoting with "" for a quote. -EINVAL for a bad quote. */
static int csv_split(char *line, char **fields, size_t max, size_t *ret_n) {
        size_t n = 0;
        char *p = line;
        for (;;) {
                if (n == max)
                        return -E2BIG;
                char *out = p, *start = p;
                if (*p == '"') {
                        p++;
                        for (;;) {
                                if (!*p)
                                        return -EINVAL;
                                if (*p == '"' && p[1] == '"') {
                                        *out++ = '"';
                                        p += 2;
                                } else if (*p == '"') {
                                        p++;
                                        break;
                                } else
                                        *out++ = *p++;
                        }
                        if (*p && *p != ',')
                                return -EINVAL;
                } else {
                        while (*p && *p != ',') {
                                if (*p == '"')
                                        return -EINVAL;
                                out++, p++;
                        }
                }
                bool last = !*p;
                *out = 0;
                fields[n++] = start;
                if (last)
                        break;
                p++;
        }
        *ret_n = n;
        return 0;
}

/* The next non-empty line into rd->line, without its line end: 1, 0 at the end, or -errno. */
static int line_next(reader_t *rd) {
        for (;;) {
                ssize_t n = getline(&rd->line, &rd->alloc, rd->f);
                if (n < 0)
                        return ferror(rd->f) ? -EIO : 0;
                rd->lineno++;
                if ((size_t) n > IMPORT_LINE_MAX)
                        return -E2BIG;
                while (n > 0 && (rd->line[n - 1] == '\n' || rd->line[n - 1] == '\r'))
                        rd->line[--n] = 0;
                if ((size_t) n != strlen(rd->line))
                        return -EBADMSG;
                if (n > 0 && rd->line[0] != '#')
                        return 1;
        }
}

static void row_error(unsigned *n_errors, const reader_t *rd, json_t *errors, const char *fmt, ...) _printf_(4, 5);
static void row_error(unsigned *n_errors, const reader_t *rd, json_t *errors, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (++*n_errors <= IMPORT_ERRORS_SHOWN)
                fprintf(stderr, "msce-mef: %s:%u: %s\n", rd->path, rd->lineno, msg);
        if (errors)
                (void) json_array_append_new(errors, json_pack("{s:I, s:s}", "line", (json_int_t) rd->lineno,
                                                               "error", msg));
}

static int reader_open(reader_t *rd, const char *path) {
        rd->path = path;
        rd->f = fopen(path, "re");
        if (!rd->f)
                return negative_errno();
        struct stat st;
        if (fstat(fileno(rd->f), &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        rd->group_readable = st.st_mode & 0077;
        return 0;
}

/* The header (CSV) or nothing (JSONL): the format is told by the first line. 0, or the message. */
static const char *reader_start(reader_t *rd, int *ret) {
        *ret = line_next(rd);
        if (*ret <= 0)
                return *ret == 0 ? "empty file" : NULL;
        if (rd->line[0] == '{') {
                rd->jsonl = true;
                rd->lineno--;
                if (fseek(rd->f, 0, SEEK_SET) < 0) /* read again as a row */
                        return *ret = negative_errno(), NULL;
                rd->lineno = 0;
                return NULL;
        }
        char *cols[ELEMENTSOF(rd->cols)];
        if (csv_split(rd->line, cols, ELEMENTSOF(cols), &rd->n_cols) < 0)
                return *ret = -EINVAL, "header: not a CSV header row (nodeID,kpmID,...)";
        bool seen[_F_MAX] = {};
        for (size_t i = 0; i < rd->n_cols; i++) {
                int f = field_index(cols[i]);
                if (f < 0 || seen[f]) {
                        static char msg[128];
                        snprintf(msg, sizeof msg, "header: %s column '%.40s'", f < 0 ? "unknown" : "repeated", cols[i]);
                        *ret = -EINVAL;
                        return msg;
                }
                seen[f] = true;
                rd->cols[i] = f;
        }
        if (!seen[F_NODE_ID])
                return *ret = -EINVAL, "header: no nodeID column";
        *ret = 0;
        return NULL;
}

/* The next row into rec: 1, 0 at the end, -errno for a read error; a row that cannot be read
 * at all gives its rule in *ret_why (and 1). */
static int reader_next(reader_t *rd, record_t *rec, const char **ret_why) {
        memset(rec, 0, sizeof *rec);
        *ret_why = NULL;
        int r = line_next(rd);
        if (r == -E2BIG || r == -EBADMSG) {
                *ret_why = r == -E2BIG ? "line longer than 16384 bytes" : "line holds a NUL byte";
                return 1;
        }
        if (r <= 0)
                return r;
        if (!rd->jsonl) {
                char *vals[ELEMENTSOF(rd->cols)];
                size_t n;
                r = csv_split(rd->line, vals, ELEMENTSOF(vals), &n);
                if (r < 0 || n != rd->n_cols) {
                        *ret_why = r < 0 ? "bad CSV quoting" : "not as many fields as the header";
                        return 1;
                }
                for (size_t i = 0; i < n; i++)
                        rec->v[rd->cols[i]] = vals[i][0] ? vals[i] : NULL;
                return 1;
        }
        json_decref(rd->json);
        rd->json = json_loads(rd->line, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(rd->json)) {
                *ret_why = "not a JSON object";
                return 1;
        }
        const char *k;
        json_t *v;
        json_object_foreach(rd->json, k, v) {
                int f = field_index(k);
                if (f < 0) {
                        *ret_why = "unknown key (nodeID, kpmID, kpm, kpmFile, certFingerprint, cseID, cseBase, "
                                   "targets, poll, lifetime, ltkTransported, state)";
                        return 1;
                }
                if (json_is_null(v))
                        continue;
                if (f == F_TARGETS) {
                        size_t i;
                        json_t *t;
                        if (!json_is_array(v) || json_array_size(v) > MSG_TARGETS_MAX) {
                                *ret_why = "targets: expected an array of at most 16 target IDs";
                                return 1;
                        }
                        json_array_foreach(v, i, t) {
                                const char *s = json_string_value(t);
                                if (!s || strlen(s) > MSG_ID_MAX || strchr(s, ' ')) {
                                        *ret_why = "targets: expected an array of at most 16 target IDs";
                                        return 1;
                                }
                                if (i)
                                        strcat(rec->targets, " ");
                                strcat(rec->targets, s);
                        }
                        rec->v[f] = rec->targets;
                } else if ((f == F_POLL || f == F_LIFETIME) && json_is_integer(v)) {
                        char *out = rec->number[f == F_LIFETIME];
                        snprintf(out, sizeof rec->number[0], "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                        rec->v[f] = out;
                } else if (f == F_LTK && json_is_boolean(v))
                        rec->v[f] = json_is_true(v) ? "true" : "false";
                else if (json_is_string(v))
                        rec->v[f] = json_string_value(v)[0] ? json_string_value(v) : NULL;
                else {
                        static char msg[64];
                        snprintf(msg, sizeof msg, "%s: wrong JSON type", field_names[f]);
                        *ret_why = msg;
                        return 1;
                }
        }
        return 1;
}

/* A Kpm in a JSON value is wiped before the object goes. */
static void reader_row_done(reader_t *rd, record_t *rec) {
        if (rd->jsonl && rec->v[F_KPM])
                erase((char *) rec->v[F_KPM], strlen(rec->v[F_KPM]));
}

/* ---- a row to a node ---- */

typedef struct row {
        store_node_t n;
        uint8_t kpm[MSG_KEY_MAX]; /* secret */
        size_t kpm_len;
} row_t;

static void row_done(row_t *row) {
        erase(row, sizeof *row);
}

static bool flag_parse(const char *v, bool *ret) {
        if (streq(v, "true") || streq(v, "yes") || streq(v, "1"))
                return *ret = true, true;
        if (streq(v, "false") || streq(v, "no") || streq(v, "0"))
                return *ret = false, true;
        return false;
}

/* The rule the row breaks (static text, or msg), or NULL with row filled. */
static const char *row_parse(const cli_t *c, const reader_t *rd, const record_t *rec, row_t *row, char *msg,
                             size_t size) {
        const char *const *v = rec->v, *why;
        store_node_t *n = &row->n;
        memset(row, 0, sizeof *row);
        n->poll = c->cfg->default_poll;
        n->lifetime = c->cfg->default_lifetime;
        n->state = NODE_ACTIVE;

#define RULE(field, check)                                                      \
        do {                                                                    \
                if ((check) < 0) {                                              \
                        snprintf(msg, size, "%s: %s", field_names[field], why); \
                        return msg;                                             \
                }                                                               \
        } while (0)
        if (!v[F_NODE_ID])
                return "nodeID: missing";
        RULE(F_NODE_ID, ids_check_node_id(v[F_NODE_ID], &why));
        if (!v[F_CSE_ID] || !v[F_CSE_BASE])
                return !v[F_CSE_ID] ? "cseID: missing" : "cseBase: missing";
        RULE(F_CSE_ID, ids_check_cse_id(v[F_CSE_ID], &why));
        RULE(F_CSE_BASE, ids_check_cse_base(v[F_CSE_BASE], &why));
        snprintf(n->node_id, sizeof n->node_id, "%s", v[F_NODE_ID]);
        snprintf(n->cse_id, sizeof n->cse_id, "%s", v[F_CSE_ID]);
        snprintf(n->cse_base, sizeof n->cse_base, "%s", v[F_CSE_BASE]);

        if (!!v[F_KPM_ID] + !!v[F_CERT_FP] != 1)
                return "give exactly one of kpmID, certFingerprint";
        if (v[F_KPM_ID]) {
                if (!id_is_valid(v[F_KPM_ID], MSG_ID_MAX))
                        return "kpmID: expected 1..255 printable ASCII characters without spaces";
                if (!!v[F_KPM] + !!v[F_KPM_FILE] != 1)
                        return "kpmID needs exactly one of kpm (hex), kpmFile (a path)";
                snprintf(n->kpm_id, sizeof n->kpm_id, "%s", v[F_KPM_ID]);
                if (v[F_KPM]) {
                        if (rd->group_readable)
                                return "kpm: the file holds keys and is readable by group or others (chmod 0600 it)";
                        if (hex_key_parse(v[F_KPM], strlen(v[F_KPM]), MSG_KEY_MIN, MSG_KEY_MAX, row->kpm,
                                          &row->kpm_len) < 0)
                                return "kpm: expected 16..64 bytes as hex";
                } else {
                        int r = secret_hex_file_read(v[F_KPM_FILE], MSG_KEY_MIN, MSG_KEY_MAX, row->kpm, &row->kpm_len);
                        if (r == -EPERM)
                                return "kpmFile: readable by group or others (chmod 0600 it)";
                        if (r < 0) {
                                snprintf(msg, size, "kpmFile: %s", r == -EINVAL || r == -EFBIG || r == -ENODATA
                                                                           ? "expected 16..64 bytes as hex on one line"
                                                                           : strerror(-r));
                                return msg;
                        }
                }
        } else {
                if (v[F_KPM] || v[F_KPM_FILE])
                        return "kpm and kpmFile go with kpmID, not certFingerprint";
                if (cli_cert_fp_normalise(v[F_CERT_FP], n->cert_fp) < 0)
                        return "certFingerprint: expected a SHA-256 fingerprint (64 hex digits)";
        }

        if (v[F_TARGETS]) {
                _cleanup_free_ char *t = strdup(v[F_TARGETS]);
                if (!t)
                        return "out of memory";
                char *save = NULL;
                for (char *id = strtok_r(t, " ;", &save); id; id = strtok_r(NULL, " ;", &save)) {
                        RULE(F_TARGETS, ids_check_target_id(id, &why));
                        for (size_t i = 0; i < n->n_targets; i++)
                                if (streq(n->targets[i], id))
                                        return "targets: a target given twice";
                        if (n->n_targets >= MSG_TARGETS_MAX)
                                return "targets: at most 16";
                        snprintf(n->targets[n->n_targets++], sizeof n->targets[0], "%s", id);
                }
        }
        unsigned long long u;
        if (v[F_POLL]) {
                if (parse_uint(v[F_POLL], STORE_POLL_MAX, &u) < 0 || u < STORE_POLL_MIN) {
                        snprintf(msg, size, "poll: expected seconds from %u to %u", STORE_POLL_MIN, STORE_POLL_MAX);
                        return msg;
                }
                n->poll = (uint32_t) u;
        }
        if (v[F_LIFETIME]) {
                if (parse_uint(v[F_LIFETIME], STORE_LIFETIME_MAX, &u) < 0 || u < STORE_LIFETIME_MIN) {
                        snprintf(msg, size, "lifetime: expected seconds from %u to %u", STORE_LIFETIME_MIN,
                                 STORE_LIFETIME_MAX);
                        return msg;
                }
                n->lifetime = (uint32_t) u;
        }
        if (v[F_LTK] && !flag_parse(v[F_LTK], &n->ltk_transported))
                return "ltkTransported: expected true or false";
        if (v[F_STATE] && (n->state = node_state_from_string(v[F_STATE])) < 0)
                return "state: expected active, reenrol or revoked";
        return NULL;
#undef RULE
}

/* Compares all n bytes, whatever differs first: the time says nothing about a key. */
static bool key_equal(const uint8_t *a, const uint8_t *b, size_t n) {
        uint8_t d = 0;
        for (size_t i = 0; i < n; i++)
                d |= a[i] ^ b[i];
        return d == 0;
}

/* The first field in which the stored node differs from the row's, or NULL when they are the same. */
static const char *row_differs(cli_t *c, const row_t *row, const store_node_t *old) {
        const store_node_t *n = &row->n;
        if (!streq(n->kpm_id, old->kpm_id))
                return "kpmID";
        if (!streq(n->cert_fp, old->cert_fp))
                return "certFingerprint";
        if (!streq(n->cse_id, old->cse_id))
                return "cseID";
        if (!streq(n->cse_base, old->cse_base))
                return "cseBase";
        bool same = n->n_targets == old->n_targets;
        for (size_t i = 0; same && i < n->n_targets; i++)
                same = streq(n->targets[i], old->targets[i]);
        if (!same)
                return "targets";
        if (n->poll != old->poll)
                return "poll";
        if (n->lifetime != old->lifetime)
                return "lifetime";
        if (n->ltk_transported != old->ltk_transported)
                return "ltkTransported";
        if (n->state != old->state)
                return "state";
        if (n->kpm_id[0]) {
                _cleanup_erase_(64) uint8_t kpm[MSG_KEY_MAX];
                size_t len = 0;
                store_node_t tmp;
                if (store_node_by_kpm_id(c->store, n->kpm_id, &tmp, kpm, &len) < 0 || len != row->kpm_len ||
                    !key_equal(kpm, row->kpm, len))
                        return "kpm";
        }
        return NULL;
}

/* ---- node import ---- */

int cmd_node_import(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = { COMMON_OPTIONS, { "dry-run", no_argument, NULL, 'n' }, {} };
        const char *cmd = "node import";
        bool dry_run = false;
        int o, r;
        optind = 0;
        while ((o = cli_next_option(c, def, argc, argv, ":hn", opts)) >= 0)
                if (o == 'n')
                        dry_run = true;
                else
                        return cli_option_error(cmd, o, argv);
        if (o == CLI_OPT_HELP)
                return 0;
        if ((r = cli_positionals(cmd, argc, argv, 1, "FILE")))
                return r;
        const char *path = argv[optind];

        _cleanup_(reader_done) reader_t rd = {};
        if ((r = reader_open(&rd, path)) < 0)
                return cli_failf("%s: %s: %s", cmd, path, strerror(-r));
        const char *why = reader_start(&rd, &r);
        if (why)
                return cli_failf("%s: %s:%u: %s", cmd, path, rd.lineno, why);
        if (r < 0)
                return cli_failf("%s: %s: %s", cmd, path, strerror(-r));
        if ((r = cli_open(c, false)))
                return r;

        json_t *errors = c->json ? json_array() : NULL;
        unsigned n_errors = 0, added = 0, unchanged = 0, rows = 0;
        r = store_begin(c->store);
        if (r < 0) {
                json_decref(errors);
                return cli_fail(cmd, r);
        }
        record_t rec;
        for (;;) {
                r = reader_next(&rd, &rec, &why);
                if (r <= 0)
                        break;
                rows++;
                char msg[384];
                _cleanup_(row_done) row_t row;
                if (!why)
                        why = row_parse(c, &rd, &rec, &row, msg, sizeof msg);
                reader_row_done(&rd, &rec);
                if (why) {
                        row_error(&n_errors, &rd, errors, "%s", why);
                        continue;
                }
                store_node_t old;
                r = store_node_get(c->store, row.n.node_id, &old);
                if (r == 0) {
                        const char *field = row_differs(c, &row, &old);
                        if (!field)
                                unchanged++;
                        else
                                row_error(&n_errors, &rd, errors,
                                          "node %s exists with another %s (remove it first to replace it)",
                                          row.n.node_id, field);
                        continue;
                }
                const char *field;
                if (r == -ENOENT)
                        r = store_node_conflict(c->store, &row.n, &field);
                if (r > 0) {
                        row_error(&n_errors, &rd, errors, "%s already in use", field);
                        continue;
                }
                if (r == 0)
                        r = store_node_add(c->store, &row.n, row.kpm_len ? row.kpm : NULL, row.kpm_len);
                if (r < 0)
                        break; /* the store failed, not the row */
                added++;
        }
        if (r == 0 && n_errors == 0 && !dry_run && added) {
                char detail[256];
                snprintf(detail, sizeof detail, "%u added, %u unchanged", added, unchanged);
                r = cli_change_end(c, 0, "node-import", path, detail);
        } else
                store_rollback(c->store);
        if (r < 0) {
                json_decref(errors);
                if (rd.lineno)
                        return cli_failf("%s: %s:%u: %s (nothing imported)", cmd, path, rd.lineno, strerror(-r));
                return cli_failf("%s: %s: %s (nothing imported)", cmd, path, strerror(-r));
        }
        if (n_errors > IMPORT_ERRORS_SHOWN)
                fprintf(stderr, "msce-mef: %s: %u more bad rows not shown\n", path, n_errors - IMPORT_ERRORS_SHOWN);
        bool changed = n_errors == 0 && !dry_run;
        if (c->json) {
                json_t *j = json_pack("{s:s, s:b, s:b, s:I, s:I, s:I, s:o}", "file", path, "dryRun", dry_run,
                                      "imported", changed && added, "rows", (json_int_t) rows, "added",
                                      (json_int_t) (changed ? added : 0), "unchanged", (json_int_t) unchanged,
                                      "errors", errors ?: json_array());
                if (j && !dry_run && !changed)
                        json_object_set_new(j, "wouldAdd", json_integer(added));
                if (j && dry_run)
                        json_object_set_new(j, "wouldAdd", json_integer(added));
                r = cli_json_print(j);
                return r ? r : n_errors ? MEF_EXIT_FAILURE : 0;
        }
        if (n_errors)
                return cli_failf("%s: %s: %u of %u rows are bad: nothing imported", cmd, path, n_errors, rows);
        if (dry_run)
                printf("Dry run: %u rows, %u would be added, %u unchanged; nothing was changed.\n", rows, added,
                       unchanged);
        else
                printf("Imported %u rows: %u added, %u unchanged.\n", rows, added, unchanged);
        return 0;
}

/* ---- node export ---- */

/* A CSV field, quoted when it holds a comma or a quote. */
static void csv_put(FILE *f, const char *v, bool last) {
        if (strpbrk(v, ",\"")) {
                fputc('"', f);
                for (const char *p = v; *p; p++) {
                        if (*p == '"')
                                fputc('"', f);
                        fputc(*p, f);
                }
                fputc('"', f);
        } else
                fputs(v, f);
        fputc(last ? '\n' : ',', f);
}

static int node_export_one(const store_node_t *n, bool csv) {
        if (csv) {
                char poll[16], lifetime[16], targets[MSG_TARGETS_MAX * (MSG_ID_MAX + 1) + 1] = "";
                for (size_t j = 0; j < n->n_targets; j++) {
                        if (j)
                                strcat(targets, " ");
                        strcat(targets, n->targets[j]);
                }
                snprintf(poll, sizeof poll, "%" PRIu32, n->poll);
                snprintf(lifetime, sizeof lifetime, "%" PRIu32, n->lifetime);
                const char *vals[] = { n->node_id, n->kpm_id, n->cert_fp, n->cse_id, n->cse_base, targets, poll,
                                       lifetime, n->ltk_transported ? "true" : "false", node_state_to_string(n->state) };
                for (size_t i = 0; i < ELEMENTSOF(vals); i++)
                        csv_put(stdout, vals[i], i == ELEMENTSOF(vals) - 1);
                return 0;
        }
        json_t *o = ops_node_json(n);
        if (!o)
                return -ENOMEM;
        /* what import reads back: no created, lastSeen, statusChecks or auth */
        json_object_del(o, "auth");
        json_object_del(o, "created");
        json_object_del(o, "lastSeen");
        json_object_del(o, "statusChecks");
        int r = json_dumpf(o, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (r < 0)
                return -EIO;
        putchar('\n');
        return 0;
}

static int export_option(const char *cmd, int o, const char *arg, cli_page_t *p, void *userdata) {
        if (o != 'f')
                return -1;
        if (!streq(arg, "csv") && !streq(arg, "jsonl"))
                return cli_usage_error(cmd, "--format: expected csv or jsonl");
        *(bool *) userdata = streq(arg, "csv");
        return 0;
}

int cmd_node_export(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = {
                COMMON_OPTIONS, PAGE_OPTIONS, { "format", required_argument, NULL, 'f' }, {}
        };
        const char *cmd = "node export";
        cli_page_t p = { .page.state = -1 };
        bool csv = false;
        int r = cli_page_options(c, cmd, def, argc, argv, &p, opts, export_option, &csv);
        if (r >= 0)
                return r;
        if ((r = cli_positionals(cmd, argc, argv, 0, NULL)) || (r = cli_page_node_state(cmd, &p)))
                return r;
        if ((r = cli_open(c, false)))
                return r;
        if (csv)
                printf("nodeID,kpmID,certFingerprint,cseID,cseBase,targets,poll,lifetime,ltkTransported,state\n");
        /* page by page: memory stays one page whatever the fleet */
        size_t want = p.page.limit, done = 0;
        char after[MSG_ID_MAX + 1] = "";
        if (p.page.after)
                snprintf(after, sizeof after, "%s", p.page.after);
        for (;;) {
                _cleanup_free_ store_node_t *list = NULL;
                size_t n = 0;
                p.page.after = after[0] ? after : NULL;
                p.page.limit = want ? MIN(want - done, (size_t) EXPORT_PAGE) : EXPORT_PAGE;
                r = store_node_page(c->store, &p.page, &list, &n);
                if (r < 0)
                        return cli_fail(cmd, r);
                for (size_t i = 0; i < n; i++)
                        if ((r = node_export_one(&list[i], csv)) < 0)
                                return cli_fail(cmd, r);
                done += n;
                if (n < p.page.limit || (want && done >= want))
                        break;
                snprintf(after, sizeof after, "%s", list[n - 1].node_id);
        }
        if (fflush(stdout) != 0)
                return cli_fail(cmd, -EIO);
        return 0;
}

/* ---- node revoke [--from FILE] ---- */

/* The node IDs of FILE: an import or export file (its nodeID), or one node ID a line. */
static int revoke_from(cli_t *c, const char *cmd, const char *path) {
        _cleanup_(reader_done) reader_t rd = {};
        int r = reader_open(&rd, path);
        if (r < 0)
                return cli_failf("%s: %s: %s", cmd, path, strerror(-r));
        /* a first line without a comma or '{' is a node ID, not a header */
        r = line_next(&rd);
        if (r <= 0)
                return cli_failf("%s: %s: %s", cmd, path, r == 0 ? "empty file" : strerror(-r));
        bool plain = rd.line[0] != '{' && !strchr(rd.line, ',') && !streq(rd.line, "nodeID");
        if (fseek(rd.f, 0, SEEK_SET) < 0)
                return cli_fail(cmd, negative_errno());
        rd.lineno = 0;
        const char *why = NULL;
        if (!plain && (why = reader_start(&rd, &r)))
                return cli_failf("%s: %s:%u: %s", cmd, path, rd.lineno, why);
        if ((r = cli_open(c, false)))
                return r;
        if ((r = store_begin(c->store)) < 0)
                return cli_fail(cmd, r);
        unsigned n_errors = 0, revoked = 0, unchanged = 0;
        record_t rec;
        for (;;) {
                if (plain) {
                        r = line_next(&rd);
                        why = r == -E2BIG ? "line too long" : NULL;
                        r = r == -E2BIG ? 1 : r;
                        memset(&rec, 0, sizeof rec);
                        rec.v[F_NODE_ID] = rd.line;
                } else
                        r = reader_next(&rd, &rec, &why);
                if (r <= 0)
                        break;
                const char *id = rec.v[F_NODE_ID];
                if (!why && !id)
                        why = "nodeID: missing";
                if (!why && ids_check_node_id(id, &why) < 0) {
                        char msg[128];
                        snprintf(msg, sizeof msg, "nodeID: %s", why);
                        row_error(&n_errors, &rd, NULL, "%s", msg);
                        continue;
                }
                store_node_t n;
                if (!why && (r = store_node_get(c->store, id, &n)) < 0) {
                        if (r != -ENOENT)
                                break;
                        why = "no such node";
                }
                if (why) {
                        row_error(&n_errors, &rd, NULL, "%s", why);
                        continue;
                }
                if (n.state == NODE_REVOKED) {
                        unchanged++;
                        continue;
                }
                char detail[64];
                snprintf(detail, sizeof detail, "state %s -> revoked (from a file)", node_state_to_string(n.state));
                r = store_node_set_state(c->store, id, NODE_REVOKED);
                if (r == 0)
                        r = store_enrolment_set_state_for_node(c->store, id, ENROLMENT_REVOKED);
                if (r == 0)
                        r = store_audit(c->store, cli_actor(), "node-revoke", id, detail);
                if (r < 0)
                        break;
                revoked++;
        }
        if (r == 0 && n_errors == 0)
                r = store_commit(c->store);
        if (r < 0 || n_errors) {
                store_rollback(c->store);
                if (r < 0)
                        return cli_failf("%s: %s:%u: %s (nothing revoked)", cmd, path, rd.lineno, strerror(-r));
                return cli_failf("%s: %s: %u bad lines: nothing revoked", cmd, path, n_errors);
        }
        if (c->json) {
                json_t *j = json_pack("{s:s, s:I, s:I}", "file", path, "revoked", (json_int_t) revoked, "unchanged",
                                      (json_int_t) unchanged);
                return cli_json_print(j);
        }
        printf("Revoked %u nodes and their active enrolments (%u were revoked already).\n", revoked, unchanged);
        return 0;
}

int cmd_node_revoke(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option opts[] = { COMMON_OPTIONS, { "from", required_argument, NULL, 'f' }, {} };
        const char *cmd = "node revoke", *from = NULL;
        int o;
        optind = 0;
        while ((o = cli_next_option(c, def, argc, argv, ":h", opts)) >= 0)
                if (o == 'f')
                        from = optarg;
                else
                        return cli_option_error(cmd, o, argv);
        if (o == CLI_OPT_HELP)
                return 0;
        if (!from)
                return cmd_node_change(c, def, argc, argv);
        int r = cli_positionals(cmd, argc, argv, 0, NULL);
        return r ? r : revoke_from(c, cmd, from);
}

/* SPDX-License-Identifier: MIT */
/* The bulk import (mef/ops-import.h): reading CSV or JSON Lines rows, each row's rules, and the
 * import of a whole file or request body in one transaction; export writes the rows it reads. */
#include <inttypes.h>
#include <sys/stat.h>

#include "mef/ops-import.h"
#include "proto/ids.h"
#include "proto/tls.h"
#include "util/fs.h"
#include "util/hex.h"
#include "util/json-alloc.h"
#include "util/string-table.h"

/* The fields of a row, by name: the CSV header and the JSON keys are the same words. */
static const char *const field_names[_F_MAX] = {
        [F_NODE_ID] = "nodeID",     [F_KPM_ID] = "kpmID",       [F_KPM] = "kpm",
        [F_KPM_FILE] = "kpmFile",   [F_CERT_FP] = "certFingerprint", [F_CSE_ID] = "cseID",
        [F_CSE_BASE] = "cseBase",   [F_TARGETS] = "targets",    [F_POLL] = "poll",
        [F_LIFETIME] = "lifetime",  [F_LTK] = "ltkTransported", [F_STATE] = "state",
};

static int field_index(const char *name) {
        return string_table_lookup(field_names, ELEMENTSOF(field_names), name);
}

void import_reader_done(import_reader_t *rd) {
        if (rd->line)
                erase(rd->line, rd->alloc); /* rows may hold a Kpm as hex */
        free(rd->line);
        json_decref(rd->json);
        if (rd->f)
                fclose(rd->f);
        erase_free(rd->stdio_buf, IMPORT_STDIO_BUF); /* after the close: the stream used it until then */
}

/* The stream reads into a buffer of ours: stdio's own, into which fopen() or fmemopen() copies
 * the rows, a Kpm with them, is freed by fclose() unwiped. Before any read; fully buffered
 * (unbuffered, a file would be read a byte at a time). */
static int reader_buffer(import_reader_t *rd) {
        rd->stdio_buf = malloc(IMPORT_STDIO_BUF);
        if (!rd->stdio_buf)
                return -ENOMEM;
        return setvbuf(rd->f, rd->stdio_buf, _IOFBF, IMPORT_STDIO_BUF) == 0 ? 0 : -ENOMEM;
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

/* One line into rd->line without its '\n': a buffer of IMPORT_LINE_MAX + 1 bytes of our own,
 * allocated at the first line and wiped by import_reader_done(). Never grown or moved (getline()
 * would free a shorter row's copy, a Kpm in it, unwiped), nor filled past the limit: a longer
 * line is read on to its end and dropped (-E2BIG). 1 with its length, 0 at the end, or -errno. */
static int line_read(import_reader_t *rd, size_t *ret_len) {
        if (!rd->line) {
                rd->line = malloc(IMPORT_LINE_MAX + 1);
                if (!rd->line)
                        return -ENOMEM;
                rd->alloc = IMPORT_LINE_MAX + 1;
        }
        size_t n = 0;
        bool too_long = false;
        int c;
        while ((c = getc_unlocked(rd->f)) != EOF && c != '\n') {
                if (n == IMPORT_LINE_MAX)
                        too_long = true;
                else
                        rd->line[n++] = (char) c;
        }
        rd->line[n] = 0;
        if (ferror(rd->f))
                return -EIO;
        if (c == EOF && n == 0)
                return 0;
        *ret_len = n;
        /* with its '\n', a line may hold IMPORT_LINE_MAX bytes */
        return too_long || (c == '\n' && n == IMPORT_LINE_MAX) ? -E2BIG : 1;
}

/* The next non-empty line into rd->line, without its line end: 1, 0 at the end, or -errno. */
int import_line_next(import_reader_t *rd) {
        for (;;) {
                size_t n = 0;
                int r = line_read(rd, &n);
                if (r == 0 || r == -EIO || r == -ENOMEM)
                        return r;
                rd->lineno++;
                if (r < 0)
                        return r;
                while (n > 0 && rd->line[n - 1] == '\r')
                        rd->line[--n] = 0;
                /* a byte order mark, as spreadsheets save UTF-8: not part of the first column's name */
                if (rd->lineno == 1 && n >= 3 && memcmp(rd->line, "\xEF\xBB\xBF", 3) == 0) {
                        memmove(rd->line, rd->line + 3, n - 2);
                        n -= 3;
                }
                if (n != strlen(rd->line))
                        return -EBADMSG;
                if (n > 0 && rd->line[0] != '#')
                        return 1;
        }
}

static void errors_add(json_t *errors, const import_reader_t *rd, const char *msg) {
        if (errors)
                (void) json_array_append_new(errors, json_pack("{s:I, s:s}", "line", (json_int_t) rd->lineno,
                                                               "error", msg));
}

void import_row_error(unsigned *n_errors, const import_reader_t *rd, json_t *errors, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (++*n_errors <= IMPORT_ERRORS_SHOWN && rd->print_errors)
                fprintf(stderr, "msce-mef: %s:%u: %s\n", rd->path, rd->lineno, msg);
        errors_add(errors, rd, msg);
}

int import_reader_open(import_reader_t *rd, const char *path) {
        rd->path = path;
        rd->f = fopen(path, "re");
        if (!rd->f)
                return negative_errno();
        int r = reader_buffer(rd);
        if (r < 0)
                return r;
        struct stat st;
        if (fstat(fileno(rd->f), &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        rd->mode = st.st_mode & 07777;
        return 0;
}

/* The header (CSV) or nothing (JSONL): the format is told by the first line. 0, or the message. */
const char *import_reader_start(import_reader_t *rd, int *ret) {
        *ret = import_line_next(rd);
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
                        static _Thread_local char msg[128];
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

/* The next row into rec: 1, 0 at the end, -errno for a read error or out of memory; a row that
 * cannot be read at all gives its rule in *ret_why (and 1). */
int import_reader_next(import_reader_t *rd, import_record_t *rec, const char **ret_why) {
        memset(rec, 0, sizeof *rec);
        *ret_why = NULL;
        int r = import_line_next(rd);
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
        json_error_t e = {};
        rd->json = json_loads(rd->line, JSON_REJECT_DUPLICATES, &e);
        if (!rd->json && json_load_out_of_memory(&e))
                return -ENOMEM; /* ours, not the row's */
        *ret_why = import_record_from_json(rd->json, rec);
        return 1;
}

void import_json_erase(json_t *o, const char *key) {
        json_t *v = json_object_get(o, key);
        if (json_is_string(v))
                erase((char *) json_string_value(v), json_string_length(v));
}

/* A Kpm in a JSON value is wiped before the object goes: taken from the object, not from rec,
 * which a row refused before its kpm was read (an unknown key first) does not point to. */
void import_record_done(import_reader_t *rd) {
        if (rd->jsonl)
                import_json_erase(rd->json, "kpm");
}

/* ---- a row to a node ---- */


void import_row_done(import_row_t *row) {
        erase(row, sizeof *row);
}

static bool flag_parse(const char *v, bool *ret) {
        if (streq(v, "true") || streq(v, "yes") || streq(v, "1"))
                return *ret = true, true;
        if (streq(v, "false") || streq(v, "no") || streq(v, "0"))
                return *ret = false, true;
        return false;
}

/* A row's kpm in a file group or others may read: the file's fault, not the row's */
static const char kpm_loose_rule[] = "kpm: the file holds keys and is readable by group or others (chmod 0600 it)";

/* The rule the row breaks (static text, or msg), or NULL with row filled. */
const char *import_row_parse(const mef_config_t *cfg, const import_reader_t *rd, const import_record_t *rec,
                             import_row_t *row, char *msg, size_t size) {
        const char *const *v = rec->v, *why;
        store_node_t *n = &row->n;
        memset(row, 0, sizeof *row);
        n->poll = cfg->default_poll;
        n->lifetime = cfg->default_lifetime;
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
                if (!id_is_valid(v[F_KPM_ID], TLS_PSK_ID_MAX)) {
                        snprintf(msg, size, "kpmID: expected 1..%u printable ASCII characters without spaces "
                                 "(the TLS PSK identity limit)", TLS_PSK_ID_MAX);
                        return msg;
                }
                if (!!v[F_KPM] + !!v[F_KPM_FILE] != 1)
                        return "kpmID needs exactly one of kpm (hex), kpmFile (a path)";
                snprintf(n->kpm_id, sizeof n->kpm_id, "%s", v[F_KPM_ID]);
                if (v[F_KPM]) {
                        if (rd->mode & 0077)
                                return kpm_loose_rule;
                        if (hex_key_parse(v[F_KPM], strlen(v[F_KPM]), MSG_KEY_MIN, MSG_KEY_MAX, row->kpm,
                                          &row->kpm_len) < 0)
                                return "kpm: expected 16..64 bytes as hex";
                } else if (rd->no_files)
                        return "kpmFile: not accepted here (give kpm as hex)";
                else {
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
                if (ops_cert_fp_normalise(v[F_CERT_FP], n->cert_fp) < 0)
                        return "certFingerprint: expected a SHA-256 fingerprint (64 hex digits)";
        }

        /* split into a copy of each ID, not of the list: no allocation, so no failure of our own
         * can be told as the row's (an ID one longer than allowed is enough to be refused) */
        for (const char *t = v[F_TARGETS] ?: ""; *(t += strspn(t, " ;"));) {
                size_t len = strcspn(t, " ;");
                char id[MSG_ID_MAX + 2] = {};
                snprintf(id, sizeof id, "%.*s", (int) MIN(len, sizeof id - 1), t);
                t += len;
                RULE(F_TARGETS, ids_check_target_id(id, &why));
                for (size_t i = 0; i < n->n_targets; i++)
                        if (streq(n->targets[i], id))
                                return "targets: a target given twice";
                if (n->n_targets >= MSG_TARGETS_MAX)
                        return "targets: at most 16";
                memcpy(n->targets[n->n_targets++], id, sizeof n->targets[0]); /* checked: fits */
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
static const char *import_row_field_differs(const import_row_t *row, const store_node_t *old) {
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
        return NULL;
}

/* 1 with the first field in which the stored node differs from the row's (its Kpm last), 0
 * when they are the same, or the store's failure reading its Kpm (not a row that differs). */
static int import_row_differs(mef_store_t *s, const import_row_t *row, const store_node_t *old, const char **ret_field) {
        const char *field = import_row_field_differs(row, old);
        if (!field && row->n.kpm_id[0]) {
                _cleanup_erase_(64) uint8_t kpm[MSG_KEY_MAX];
                size_t len = 0;
                store_node_t tmp;
                int r = store_node_by_kpm_id(s, row->n.kpm_id, &tmp, kpm, &len);
                if (r < 0 && r != -ENOENT)
                        return r;
                if (r < 0 || len != row->kpm_len || !key_equal(kpm, row->kpm, len))
                        field = "kpm";
        }
        *ret_field = field;
        return !!field;
}


/* a checked target ID fits rec->targets' share of it */
_Static_assert(IDS_TARGET_ID_MAX <= MSG_ID_MAX, "");

const char *import_record_from_json(json_t *o, import_record_t *rec) {
        if (!json_is_object(o))
                return "not a JSON object";
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v) {
                int f = field_index(k);
                if (f < 0) {
                        return "unknown key (nodeID, kpmID, kpm, kpmFile, certFingerprint, cseID, cseBase, "
                                   "targets, poll, lifetime, ltkTransported, state)";
                }
                if (json_is_null(v))
                        continue;
                if (f == F_TARGETS) {
                        size_t i;
                        json_t *t;
                        if (!json_is_array(v) || json_array_size(v) > MSG_TARGETS_MAX) {
                                return "targets: expected an array of at most 16 target IDs";
                        }
                        json_array_foreach(v, i, t) {
                                /* each element one target ID, checked here: joined, one holding
                                 * a ';' would be split into two by import_row_parse(), and ""
                                 * would vanish */
                                const char *s = json_string_value(t), *why;
                                if (!s)
                                        return "targets: expected an array of at most 16 target IDs";
                                if (ids_check_target_id(s, &why) < 0) {
                                        static _Thread_local char msg[160];
                                        snprintf(msg, sizeof msg, "targets[%zu]: %s", i, why);
                                        return msg;
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
                        static _Thread_local char msg[64];
                        snprintf(msg, sizeof msg, "%s: wrong JSON type", field_names[f]);
                        return msg;
                }
        }
        return NULL;
}

int import_reader_open_memory(import_reader_t *rd, const char *name, const void *data, size_t len) {
        rd->path = name;
        if (len == 0)
                return -ENODATA;
        rd->f = fmemopen((void *) data, len, "r");
        if (!rd->f)
                return negative_errno();
        return reader_buffer(rd);
}

int ops_import_run(mef_store_t *s, const mef_config_t *cfg, const char *actor, const char *name,
                   import_reader_t *rd, bool dry_run, json_t *errors, ops_import_result_t *ret) {
        ops_import_result_t res = {};
        const char *why;
        int r = store_begin(s);
        if (r >= 0) /* the master key read once for the whole transaction, not at each seal */
                r = store_key_hold(s);
        if (r < 0) {
                store_rollback(s);
                return r;
        }
        import_record_t rec;
        for (;;) {
                r = import_reader_next(rd, &rec, &why);
                if (r <= 0)
                        break;
                res.rows++;
                char msg[384];
                _cleanup_(import_row_done) import_row_t row;
                if (!why)
                        why = import_row_parse(cfg, rd, &rec, &row, msg, sizeof msg);
                import_record_done(rd);
                if (why == kpm_loose_rule) {
                        if (res.n_loose++ == 0 && rd->print_errors)
                                fprintf(stderr, "msce-mef: %s: mode %04o: the file holds keys and is readable by "
                                        "group or others (chmod 0600 it): every row with a kpm is refused\n",
                                        rd->path, (unsigned) rd->mode);
                        errors_add(errors, rd, why);
                        continue;
                }
                if (why) {
                        import_row_error(&res.n_errors, rd, errors, "%s", why);
                        continue;
                }
                /* a new node (most rows): the identity check, then the add */
                const char *field;
                r = store_node_conflict(s, &row.n, &field);
                store_node_t old;
                if (r > 0 && streq(field, STORE_CONFLICT_NODE_ID) && (r = store_node_get(s, row.n.node_id, &old)) == 0) {
                        r = import_row_differs(s, &row, &old, &field);
                        if (r < 0)
                                break; /* the store failed, not the row */
                        if (r == 0)
                                res.unchanged++;
                        else
                                import_row_error(&res.n_errors, rd, errors,
                                                 "node %s exists with another %s (remove it first to replace it)",
                                                 row.n.node_id, field);
                        continue;
                }
                if (r > 0) {
                        import_row_error(&res.n_errors, rd, errors, "%s already in use", field);
                        continue;
                }
                if (r == 0)
                        r = store_node_add(s, &row.n, row.kpm_len ? row.kpm : NULL, row.kpm_len);
                if (r < 0)
                        break; /* the store failed, not the row */
                res.added++;
        }
        res.n_errors += res.n_loose;
        if (r == 0 && res.n_errors == 0 && !dry_run && res.added) {
                char detail[256];
                snprintf(detail, sizeof detail, "%u added, %u unchanged", res.added, res.unchanged);
                r = store_audit(s, actor, "node-import", name, detail);
                if (r == 0)
                        r = store_commit(s);
                res.imported = r == 0;
        }
        if (!res.imported)
                store_rollback(s);
        if (r < 0)
                return r;
        *ret = res;
        return 0;
}

/* ---- export ---- */

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

int ops_node_export(FILE *f, const store_node_t *n, bool csv) {
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
                        csv_put(f, vals[i], i == ELEMENTSOF(vals) - 1);
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
        int r = json_dumpf(o, f, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        if (r < 0)
                return -EIO;
        fputc('\n', f);
        return 0;
}

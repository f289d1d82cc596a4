/* SPDX-License-Identifier: MIT */
#pragma once
/* The bulk import's rows (CSV with a header row, or JSON Lines) as the CLI's node import and the
 * admin API's import and node add read them: the same fields, rules and messages. */
#include <jansson.h>
#include <stdio.h>
#include <sys/types.h>

#include "mef/ops.h"
#include "util/util.h"

#define IMPORT_STDIO_BUF 8192u  /* the stream's buffer (glibc's own for fmemopen(): BUFSIZ) */
#define IMPORT_LINE_MAX 16384u   /* a row: 16 targets of 255 and a cseBase of 1024 fit easily */
#define IMPORT_ERRORS_SHOWN 1000u /* then only counted */

/* The fields of a row, by name: the CSV header and the JSON keys are the same words. */
enum {
        F_NODE_ID, F_KPM_ID, F_KPM, F_KPM_FILE, F_CERT_FP, F_CSE_ID, F_CSE_BASE, F_TARGETS, F_POLL, F_LIFETIME,
        F_LTK, F_STATE, _F_MAX,
};

/* One row's values by field (NULL: absent or empty), pointing into the line or the JSON. */
typedef struct import_record {
        const char *v[_F_MAX];
        char targets[MSG_TARGETS_MAX * (MSG_ID_MAX + 1) + 1]; /* a JSON array, joined by spaces */
        char number[2][24];                                     /* JSON numbers as text */
} import_record_t;

/* ---- reading a file ---- */

typedef struct import_reader {
        const char *path;
        FILE *f;
        char *stdio_buf;       /* f's buffer, IMPORT_STDIO_BUF bytes: rows pass through it; wiped at the end */
        char *line;            /* IMPORT_LINE_MAX + 1 bytes, never moved; wiped at the end */
        size_t alloc;
        unsigned lineno;
        bool jsonl;
        mode_t mode;           /* the file's permission bits (0: a request body) */
        bool no_files;         /* kpmFile refused (the admin API: no server paths) */
        bool print_errors;     /* bad rows on stderr too (the CLI) */
        int cols[_F_MAX + 8]; /* CSV: field of each column, -1: ignored */
        size_t n_cols;
        json_t *json;          /* JSONL: the current row */
} import_reader_t;

typedef struct import_row {
        store_node_t n;
        uint8_t kpm[MSG_KEY_MAX]; /* secret */
        size_t kpm_len;
} import_row_t;

void import_reader_done(import_reader_t *rd);
int import_reader_open(import_reader_t *rd, const char *path);
/* A request body: data stays the caller's while rd is in use. */
int import_reader_open_memory(import_reader_t *rd, const char *name, const void *data, size_t len);
/* The next non-empty line into rd->line, without its line end: 1, 0 at the end, or -errno. */
int import_line_next(import_reader_t *rd);
/* The header (CSV) or nothing (JSONL): the format is told by the first line. NULL, or the
 * message with *ret < 0. */
const char *import_reader_start(import_reader_t *rd, int *ret);
/* The next row into rec: 1, 0 at the end, -errno for a read error or out of memory; a row that
 * cannot be read at all gives its rule in *ret_why (and 1). */
int import_reader_next(import_reader_t *rd, import_record_t *rec, const char **ret_why);
/* One JSON object's fields into rec (pointing into o): NULL, or the rule it breaks. */
const char *import_record_from_json(json_t *o, import_record_t *rec);
/* The string member key of o (a kpm, a psk), if any, wiped in place: on every path, whatever
 * else the object holds or breaks. */
void import_json_erase(json_t *o, const char *key);
void import_record_done(import_reader_t *rd);
void import_row_done(import_row_t *row);
/* The rule the row breaks (static text, or msg), or NULL with row filled. */
const char *import_row_parse(const mef_config_t *cfg, const import_reader_t *rd, const import_record_t *rec,
                             import_row_t *row, char *msg, size_t size);
void import_row_error(unsigned *n_errors, const import_reader_t *rd, json_t *errors, const char *fmt, ...)
        _printf_(4, 5);

typedef struct ops_import_result {
        unsigned rows, added, unchanged, n_errors;
        unsigned n_loose; /* of n_errors: rows with a kpm in a file group or others may read */
        bool imported;    /* committed */
} ops_import_result_t;
/* Every row of rd in one transaction, committed (with one audit row by actor, subject name)
 * only when no row is bad and not dry_run; bad rows into errors ({line, error}). With
 * print_errors, a file too open for its kpm is said once, at its first row with one, and the
 * rows it makes bad are not printed each. <0: the store (or the reader: -EIO, -ENOMEM) failed
 * at rd->lineno, nothing imported. */
int ops_import_run(mef_store_t *s, const mef_config_t *cfg, const char *actor, const char *name,
                   import_reader_t *rd, bool dry_run, json_t *errors, ops_import_result_t *ret);

/* Export: a node as an import row (CSV after OPS_EXPORT_CSV_HEADER, or a JSON line), never a
 * key: no kpm, and none of what import does not read (auth, created, lastSeen, statusChecks). */
#define OPS_EXPORT_CSV_HEADER "nodeID,kpmID,certFingerprint,cseID,cseBase,targets,poll,lifetime,ltkTransported,state\n"
int ops_node_export(FILE *f, const store_node_t *n, bool csv);

/* SPDX-License-Identifier: MIT */
#pragma once
/* The INI layer of agent.conf, mef.conf and mscectl: one table row per key, one line reader.
 *
 * A program describes its configuration struct with a table of ini_key_t rows (section, key,
 * type, field offset, default in the file's own syntax, type parameters); the engine applies
 * the defaults, reads files or memory buffers line by line, calls the row's parser, remembers
 * where each key was set, frees the fields and prints the dump, all from the table. Adding a
 * key is one row and one field.
 *
 * Line rules, the same for every file (docs/configuration.md, "Syntax"):
 *   - "[section]", "key = value" (or "key: value"), blank lines, comments starting with '#' or
 *     ';', and " ;comment" after a value; leading and trailing white space is ignored; a UTF-8
 *     byte order mark at the start of a file is skipped; '#' inside a value is part of it;
 *   - refused, each with "FILE:LINE: reason": a NUL byte, a line longer than INI_LINE_MAX
 *     characters, an indented line after a key (a continuation line), a key outside a section,
 *     an unknown section or key, text after "]", a line that is neither a section nor a key,
 *     a value starting with ';' or '#' ("key = ;x": inih reads a comment, systemd a value),
 *     and with INI_KEYS_ONCE a key set twice in one file.
 * A section may be opened again; a key set again (in a later file, or without INI_KEYS_ONCE in
 * the same one) takes the last value. The first error is the one reported, as
 * "FILE:LINE: [section] key: reason". */

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Characters, without the line end: the longest key ("max_unauthenticated_per_source"), " = "
 * and the longest value any key takes (a 1024-character URI), with room for a comment. */
#define INI_LINE_MAX 2048u
#define INI_FILE_MAX (1024u * 1024u)
#define INI_WHY_MAX 256u

typedef struct ini_key ini_key_t;

/* A value type: parse writes the field(s) of the row in the struct at base and returns 0,
 * -ENOMEM, or -EINVAL with a reason in why (which never quotes the value); print writes the
 * value in the file's syntax ("" for unset); done frees the field (NULL: nothing to free).
 * Each gets the whole struct so a type may own more than one field. */
typedef struct ini_type {
        int (*parse)(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]);
        void (*print)(const void *base, const ini_key_t *k, char *buf, size_t size);
        void (*done)(void *base, const ini_key_t *k);
} ini_type_t;

/* An empty value unsets the key (its type's done, which zeroes it), not parsed: only for
 * types with a done. */
#define INI_EMPTY_UNSETS 1u

struct ini_key {
        const char *section;
        const char *name;
        const ini_type_t *type;
        size_t offset;      /* of the field in the configuration struct */
        const char *def;    /* the default in the file's syntax; NULL: zero (unset) */
        const void *arg;    /* the type's parameters, e.g. an ini_range_t */
        unsigned flags;     /* INI_EMPTY_UNSETS */
};

#define INI_FIELD(base, k, type) ((type *) ((char *) (base) + (k)->offset))
#define INI_CFIELD(base, k, type) ((const type *) ((const char *) (base) + (k)->offset))

typedef struct ini ini_t;

#define INI_KEYS_ONCE 1u /* a key set twice in one file is an error */

/* A loader over the table keys[n] and the struct at base, which the caller has zeroed and
 * which is given the defaults; flags INI_KEYS_ONCE. path names the main file in errors about keys that were not set ("PATH: [s] k:
 * reason"). Errors go to err (always NUL-terminated when err_size > 0). *ret is freed with
 * ini_free(); the struct's fields are the caller's (ini_fields_done()). */
int ini_new(const ini_key_t *keys, size_t n, void *base, const char *path, unsigned flags, char *err,
            size_t err_size, ini_t **ret);
ini_t *ini_free(ini_t *ini);
static inline void ini_freep(ini_t **p) {
        ini_free(*p);
}

/* Parses one file's text: name is used in errors. -EINVAL (syntax or value; err says where),
 * -ENOMEM. After an error the loader refuses further input with the same error. */
int ini_parse_buffer(ini_t *ini, const char *name, const char *data, size_t len);
/* Reads a regular file of at most INI_FILE_MAX bytes and parses it; -ENOENT, -EACCES, ... with
 * "PATH: cannot open: reason" in err. */
int ini_parse_file(ini_t *ini, const char *path);
/* path.d/<name>.conf in lexical order (names not starting with '.'), at most max files; a
 * missing directory is none. */
int ini_parse_dropins(ini_t *ini, const char *path, size_t max);

/* The row of the field at offset (the first when a row owns several fields); NULL: none. */
const ini_key_t *ini_key_at(const ini_t *ini, size_t offset);
/* Whether the key at offset was given a non-empty value in a file, and where. */
bool ini_is_set(const ini_t *ini, size_t offset);
/* Records error (negative errno) with "FILE:LINE: [section] key: reason" where the key at offset
 * was set, or "PATH: [section] key: reason" when it was not; keeps the first error. Returns
 * error. */
int ini_fail_key(ini_t *ini, int error, size_t offset, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Records error with "PATH: reason"; keeps the first. Returns error. */
int ini_fail(ini_t *ini, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The first error recorded, 0 when none. */
int ini_error(const ini_t *ini);

/* The longest value of key that "key = v" fits in a line (INI_LINE_MAX). */
size_t ini_value_max(const char *key);
/* Whether v, written as "key = v", reads back as v: 1..ini_value_max(key) printable characters,
 * not starting or ending with a blank (the reader trims them), no ';' or '#' (comments). */
bool ini_value_ok(const char *key, const char *v);

/* Frees every field of the table in the struct at base (each type's done); NULL is fine. */
void ini_fields_done(const ini_key_t *keys, size_t n, void *base);
/* Every key of the table, by section in table order, as "key = value" ("key =" when empty, and
 * "# key =" when empty would not read back: a key unset that has no default and no
 * INI_EMPTY_UNSETS). The output reads back to the same struct. */
void ini_dump(const ini_key_t *keys, size_t n, const void *base, FILE *f);

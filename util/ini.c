/* SPDX-License-Identifier: MIT */
/* The INI engine: one line reader for every configuration file, driven by the key table.
 * Its grammar is inih's (what the files had before): "key = value" or "key: value", comments
 * with '#' or ';' at the start and " ;" inside a line, white space trimmed; what inih did
 * silently (split long lines, join indented ones, take a key twice) is refused here, and so is
 * a value starting with ';' or '#', which inih and systemd read differently. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/ini.h"
#include "util/util.h"

typedef struct origin {
        const char *file; /* points into ini->files */
        unsigned line;    /* 0: not set in a file */
} origin_t;

struct ini {
        const ini_key_t *keys;
        size_t n;
        void *base;
        char *path;
        char **files;
        size_t n_files;
        origin_t *origin; /* per row */
        unsigned *seen;   /* per row: the line of the current file that set it */
        unsigned flags;   /* INI_KEYS_ONCE */
        int error;
        char *err;
        size_t err_size;
};

/* Keeps the first error, as "FILE: reason" or, with a line, "FILE:LINE: reason". */
static int record(ini_t *ini, int error, const char *file, unsigned line, const char *reason) {
        if (ini->error < 0)
                return ini->error;
        ini->error = error;
        if (ini->err_size > 0 && line > 0)
                snprintf(ini->err, ini->err_size, "%s:%u: %s", file, line, reason);
        else if (ini->err_size > 0)
                snprintf(ini->err, ini->err_size, "%s: %s", file, reason);
        return error;
}

#define REASON(buf, fmt)                               \
        char buf[INI_WHY_MAX + 256];                   \
        do {                                           \
                va_list ap;                            \
                va_start(ap, fmt);                     \
                vsnprintf(buf, sizeof buf, fmt, ap);   \
                va_end(ap);                            \
        } while (0)

static _printf_(4, 5) int fail_path(ini_t *ini, int error, const char *path, const char *fmt, ...) {
        REASON(reason, fmt);
        return record(ini, error, path, 0, reason);
}

int ini_fail(ini_t *ini, int error, const char *fmt, ...) {
        REASON(reason, fmt);
        return record(ini, error, ini->path, 0, reason);
}

/* In the file being read. */
static _printf_(4, 5) int fail_at(ini_t *ini, int error, unsigned line, const char *fmt, ...) {
        REASON(reason, fmt);
        return record(ini, error, ini->files[ini->n_files - 1], line, reason);
}

static size_t row_at(const ini_t *ini, size_t offset) {
        for (size_t i = 0; i < ini->n; i++)
                if (ini->keys[i].offset == offset)
                        return i;
        return SIZE_MAX;
}

const ini_key_t *ini_key_at(const ini_t *ini, size_t offset) {
        size_t i = row_at(ini, offset);
        return i == SIZE_MAX ? NULL : &ini->keys[i];
}

bool ini_is_set(const ini_t *ini, size_t offset) {
        size_t i = row_at(ini, offset);
        return i != SIZE_MAX && ini->origin[i].line > 0;
}

int ini_fail_key(ini_t *ini, int error, size_t offset, const char *fmt, ...) {
        size_t i = row_at(ini, offset);
        if (i == SIZE_MAX)
                return ini_fail(ini, error, "no such key (a bug)");
        REASON(reason, fmt);
        const ini_key_t *k = &ini->keys[i];
        const origin_t *o = &ini->origin[i];
        char where[INI_WHY_MAX + 512];
        snprintf(where, sizeof where, "[%s] %s: %s", k->section, k->name, reason);
        return record(ini, error, o->line > 0 ? o->file : ini->path, o->line, where);
}

int ini_error(const ini_t *ini) {
        return ini->error;
}

/* Runs the row's parser on value; the reason, if any, in why. */
static int apply(ini_t *ini, size_t i, const char *value, char why[INI_WHY_MAX]) {
        const ini_key_t *k = &ini->keys[i];
        why[0] = 0;
        if (!*value && (k->flags & INI_EMPTY_UNSETS)) {
                if (k->type->done)
                        k->type->done(ini->base, k);
                return 0;
        }
        int r = k->type->parse(ini->base, k, value, why);
        if (r == -ENOMEM)
                snprintf(why, INI_WHY_MAX, "out of memory");
        else if (r < 0 && !why[0])
                snprintf(why, INI_WHY_MAX, "invalid value");
        return r;
}

int ini_new(const ini_key_t *keys, size_t n, void *base, const char *path, unsigned flags, char *err,
            size_t err_size, ini_t **ret) {
        if (err && err_size > 0)
                err[0] = 0;
        _cleanup_(ini_freep) ini_t *ini = calloc(1, sizeof *ini);
        if (!ini)
                return -ENOMEM;
        *ini = (ini_t) { .keys = keys, .n = n, .base = base, .flags = flags, .err = err, .err_size = err ? err_size : 0 };
        ini->path = strdup(path);
        ini->origin = calloc(n, sizeof *ini->origin);
        ini->seen = calloc(n, sizeof *ini->seen);
        if (!ini->path || !ini->origin || !ini->seen)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                char why[INI_WHY_MAX];
                if (keys[i].def && apply(ini, i, keys[i].def, why) < 0)
                        return ini_fail(ini, -EINVAL, "[%s] %s: bad default: %s", keys[i].section, keys[i].name, why);
        }
        *ret = TAKE_PTR(ini);
        return 0;
}

ini_t *ini_free(ini_t *ini) {
        if (!ini)
                return NULL;
        for (size_t i = 0; i < ini->n_files; i++)
                free(ini->files[i]);
        free(ini->files);
        free(ini->path);
        free(ini->origin);
        free(ini->seen);
        free(ini);
        return NULL;
}

/* The first of chars, or of a ';' after white space (an inline comment), or the end. */
static char *find_stop(char *s, const char *chars) {
        bool was_space = false;
        for (; *s; s++) {
                if (chars && strchr(chars, *s))
                        break;
                if (was_space && *s == ';')
                        break;
                was_space = isspace((unsigned char) *s);
        }
        return s;
}

static char *rstrip(char *s) {
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                s[--n] = 0;
        return s;
}

/* The first row of section name, SIZE_MAX when the table has none. */
static size_t section_row(const ini_t *ini, const char *name) {
        for (size_t i = 0; i < ini->n; i++)
                if (streq(ini->keys[i].section, name))
                        return i;
        return SIZE_MAX;
}

typedef struct reader {
        unsigned line;
        size_t section;  /* first row of the current section; SIZE_MAX: none yet */
        size_t prev_key; /* row of the last key in this section; SIZE_MAX: none */
} reader_t;

static int parse_section(ini_t *ini, reader_t *rd, char *s) {
        static const char syntax[] = "syntax error (expected [section] or key = value)";
        char *end = find_stop(s + 1, "]");
        if (*end != ']')
                return fail_at(ini, -EINVAL, rd->line, syntax);
        *end = 0;
        const char *rest = end + 1;
        rest += strspn(rest, " \t\v\f\r");
        if (*rest && *rest != ';' && *rest != '#')
                return fail_at(ini, -EINVAL, rd->line, "[%s]: text after the section header", s + 1);
        size_t i = section_row(ini, s + 1);
        if (i == SIZE_MAX)
                return fail_at(ini, -EINVAL, rd->line, "[%s]: unknown section", s + 1);
        rd->section = i;
        rd->prev_key = SIZE_MAX;
        return 0;
}

static int parse_key(ini_t *ini, reader_t *rd, char *s) {
        char *sep = find_stop(s, "=:");
        if ((*sep != '=' && *sep != ':') || sep == s)
                return fail_at(ini, -EINVAL, rd->line, "syntax error (expected [section] or key = value)");
        *sep = 0;
        const char *name = rstrip(s);
        char *value = sep + 1;
        value += strspn(value, " \t\v\f\r");
        *find_stop(value, NULL) = 0;
        rstrip(value);
        if (rd->section == SIZE_MAX)
                return fail_at(ini, -EINVAL, rd->line, "%s: key outside of any section", name);
        const char *section = ini->keys[rd->section].section;
        size_t i = SIZE_MAX;
        for (size_t j = rd->section; j < ini->n && i == SIZE_MAX; j++)
                if (streq(ini->keys[j].section, section) && streq(ini->keys[j].name, name))
                        i = j;
        if (i == SIZE_MAX)
                return fail_at(ini, -EINVAL, rd->line, "[%s] %s: unknown key", section, name);
        /* "key = ;x": inih reads a comment (an empty value), systemd the value ";x"; an operator
         * may mean either, and silently taking one could set a value meant as a comment or unset
         * an optional key. No value of ours starts with either character (ini_value_ok()). */
        if (*value == ';' || *value == '#')
                return fail_at(ini, -EINVAL, rd->line,
                               "[%s] %s: a value cannot start with '%c' (it reads as a comment: put the comment on a "
                               "line of its own; an empty value unsets an optional key)",
                               section, name, *value);
        if (ini->seen[i] && (ini->flags & INI_KEYS_ONCE))
                return fail_at(ini, -EINVAL, rd->line, "[%s] %s: set twice (first on line %u)", section, name,
                               ini->seen[i]);
        ini->seen[i] = rd->line;
        rd->prev_key = i;
        char why[INI_WHY_MAX];
        int r = apply(ini, i, value, why);
        if (r < 0)
                return fail_at(ini, r, rd->line, "[%s] %s: %s", section, name, why);
        ini->origin[i] = *value ? (origin_t) { ini->files[ini->n_files - 1], rd->line } : (origin_t) {};
        return 0;
}

static int parse_line(ini_t *ini, reader_t *rd, char *line) {
        char *s = line + strspn(line, " \t\v\f\r");
        rstrip(s);
        if (!*s || *s == '#' || *s == ';')
                return 0;
        if (s > line && rd->prev_key != SIZE_MAX) {
                /* inih would append it to the previous key, which nobody expects of a
                 * systemd-style file */
                const ini_key_t *k = &ini->keys[rd->prev_key];
                return fail_at(ini, -EINVAL, rd->line, "[%s] %s: continuation lines are not supported (remove the indentation)",
                               k->section, k->name);
        }
        if (*s == '[')
                return parse_section(ini, rd, s);
        return parse_key(ini, rd, s);
}

int ini_parse_buffer(ini_t *ini, const char *name, const char *data, size_t len) {
        if (ini->error < 0)
                return ini->error;
        char **files = reallocarray(ini->files, ini->n_files + 1, sizeof *files);
        if (!files)
                return -ENOMEM;
        ini->files = files;
        if (!(files[ini->n_files] = strdup(name)))
                return -ENOMEM;
        ini->n_files++;
        memset(ini->seen, 0, ini->n * sizeof *ini->seen);

        reader_t rd = { .section = SIZE_MAX, .prev_key = SIZE_MAX };
        size_t pos = len >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
        while (pos < len) {
                const char *nl = memchr(data + pos, '\n', len - pos);
                size_t end = nl ? (size_t) (nl - data) : len;
                size_t n = end - pos;
                rd.line++;
                if (memchr(data + pos, 0, n))
                        return fail_at(ini, -EINVAL, rd.line, "contains a NUL byte");
                if (n > 0 && data[end - 1] == '\r')
                        n--;
                if (n > INI_LINE_MAX)
                        return fail_at(ini, -EINVAL, rd.line, "line too long (at most %u characters)", INI_LINE_MAX);
                char line[INI_LINE_MAX + 1];
                memcpy(line, data + pos, n);
                line[n] = 0;
                int r = parse_line(ini, &rd, line);
                if (r < 0)
                        return r;
                pos = nl ? end + 1 : len;
        }
        return 0;
}

int ini_parse_file(ini_t *ini, const char *path) {
        if (ini->error < 0)
                return ini->error;
        /* O_NONBLOCK: a FIFO is refused below instead of blocking the open */
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
        if (fd < 0) {
                int r = negative_errno();
                return fail_path(ini, r, path, "cannot open: %s", strerror(-r));
        }
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return fail_path(ini, -EINVAL, path, "not a regular file");
        if (st.st_size > (off_t) INI_FILE_MAX)
                return fail_path(ini, -EFBIG, path, "too large (at most %u bytes)", INI_FILE_MAX);
        _cleanup_free_ char *data = malloc((size_t) st.st_size + 1);
        if (!data)
                return -ENOMEM;
        size_t len = 0;
        int r = read_max(fd, data, (size_t) st.st_size, &len);
        if (r == -EFBIG) /* it grew while we read */
                return fail_path(ini, r, path, "changed while read");
        if (r < 0)
                return fail_path(ini, r, path, "cannot read: %s", strerror(-r));
        return ini_parse_buffer(ini, path, data, len);
}

static int dropin_filter(const struct dirent *d) {
        size_t n = strlen(d->d_name);
        return d->d_name[0] != '.' && n > 5 && streq(d->d_name + n - 5, ".conf");
}

static int name_cmp(const struct dirent **a, const struct dirent **b) {
        return strcmp((*a)->d_name, (*b)->d_name);
}

int ini_parse_dropins(ini_t *ini, const char *path, size_t max) {
        if (ini->error < 0)
                return ini->error;
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s.d", path) < 0)
                return -ENOMEM;
        struct dirent **list = NULL;
        int n = scandir(dir, &list, dropin_filter, name_cmp);
        if (n < 0) {
                int r = negative_errno();
                if (r == -ENOENT)
                        return 0;
                return fail_path(ini, r, dir, "cannot read drop-in directory: %s", strerror(-r));
        }
        int r = (size_t) n > max ? fail_path(ini, -E2BIG, dir, "too many drop-in files (at most %zu)", max) : 0;
        for (int i = 0; i < n; i++) {
                if (r == 0) {
                        _cleanup_free_ char *p = NULL;
                        if (asprintf(&p, "%s/%s", dir, list[i]->d_name) < 0)
                                r = -ENOMEM;
                        else
                                r = ini_parse_file(ini, p);
                }
                free(list[i]);
        }
        free(list);
        return r;
}

size_t ini_value_max(const char *key) {
        size_t k = strlen(key) + strlen(" = ");
        return k < INI_LINE_MAX ? INI_LINE_MAX - k : 0;
}

bool ini_value_ok(const char *key, const char *v) {
        size_t n = v ? strlen(v) : 0;
        if (n == 0 || n > ini_value_max(key) || *v == ' ' || v[n - 1] == ' ')
                return false;
        for (const char *p = v; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f || *p == ';' || *p == '#')
                        return false;
        return true;
}

void ini_fields_done(const ini_key_t *keys, size_t n, void *base) {
        if (!base)
                return;
        for (size_t i = 0; i < n; i++)
                if (keys[i].type->done)
                        keys[i].type->done(base, &keys[i]);
}

void ini_dump(const ini_key_t *keys, size_t n, const void *base, FILE *f) {
        for (size_t i = 0; i < n; i++) {
                bool first = true;
                for (size_t j = 0; j < i; j++)
                        if (streq(keys[j].section, keys[i].section))
                                first = false;
                if (!first)
                        continue; /* printed with its section */
                fprintf(f, "%s[%s]\n", i > 0 ? "\n" : "", keys[i].section);
                for (size_t j = i; j < n; j++) {
                        if (!streq(keys[j].section, keys[i].section))
                                continue;
                        char value[INI_LINE_MAX + 1] = "";
                        keys[j].type->print(base, &keys[j], value, sizeof value);
                        /* "key =" for an empty value: no trailing blank in golden files; a
                         * comment where an empty value would not read back (unset, no default) */
                        bool comment = !value[0] && !keys[j].def && !(keys[j].flags & INI_EMPTY_UNSETS);
                        fprintf(f, "%s%s =%s%s\n", comment ? "# " : "", keys[j].name, value[0] ? " " : "", value);
                }
        }
}

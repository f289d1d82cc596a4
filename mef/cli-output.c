/* SPDX-License-Identifier: MIT */
/* The CLI's tables and JSON: what the commands print. */
#include <stdarg.h>

#include "mef/cli-internal.h"

/* ---- output ---- */

/* A copy safe for a terminal: control bytes become '?'. */
static char *printable(const char *s) {
        char *p = strdup(s ?: "");
        for (char *q = p; q && *q; q++)
                if ((unsigned char) *q < 0x20 || *q == 0x7f)
                        *q = '?';
        return p;
}

void cli_time_format(int64_t t, char out[32]) {
        if (t <= 0)
                snprintf(out, 32, "-");
        else
                time_format_iso((time_t) t, out);
}

void cli_table_free(cli_table_t *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
}

static int cli_table_add(cli_table_t *t, const char *v) {
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
int cli_table_row(cli_table_t *t, ...) {
        va_list ap;
        int r = 0;
        va_start(ap, t);
        for (size_t i = 0; i < t->n_cols && r == 0; i++)
                r = cli_table_add(t, va_arg(ap, const char *));
        va_end(ap);
        return r;
}

int cli_table_print(const cli_table_t *t, int r, const char *what) {
        if (r < 0)
                return cli_fail(what, r);
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
        return 0;
}

json_t *cli_jstr(const char *s) {
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

json_t *cli_jtime(int64_t t) {
        char buf[32];
        cli_time_format(t, buf);
        return json_string(buf);
}

int cli_json_print(json_t *j) {
        if (!j)
                return cli_fail("json", -ENOMEM);
        int r = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        json_decref(j);
        if (r < 0)
                return cli_fail("json", -EIO);
        putchar('\n');
        return 0;
}

/* Each json_object_set_new below reports failure through this. */
void cli_jset(json_t *o, const char *k, json_t *v, bool *ok) {
        if (!v || json_object_set_new(o, k, v) < 0)
                *ok = false;
}

/* A JSON array of the n items (each size bytes) of list; NULL when out of memory. */
json_t *cli_json_array(const void *list, size_t n, size_t size, json_t *(*to_json)(const void *row)) {
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                if (json_array_append_new(a, to_json((const uint8_t *) list + i * size)) < 0) {
                        json_decref(a);
                        return NULL;
                }
        return a;
}

/* {"removed": id} for the remove commands. */
int cli_removed_print(const char *id) {
        json_t *o = json_object();
        bool ok = o != NULL;
        if (o)
                cli_jset(o, "removed", json_string(id), &ok);
        if (!ok) {
                json_decref(o);
                o = NULL;
        }
        return cli_json_print(o);
}

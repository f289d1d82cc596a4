/* SPDX-License-Identifier: MIT */
/* The CLI's tables and JSON: what the commands print. */
#include <stdarg.h>

#include "mef/cli-internal.h"
#include "util/text.h"

/* ---- output ---- */

void cli_table_free(cli_table_t *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
}

void cli_table_clear(cli_table_t *t) {
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        t->n_cells = 0;
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
        char *s = text_dup(v && v[0] ? v : "-", TEXT_PRINTABLE); /* for a terminal */
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

int cli_table_row_array(cli_table_t *t, const char *const *cells) {
        int r = 0;
        for (size_t i = 0; i < t->n_cols && r == 0; i++)
                r = cli_table_add(t, cells[i]);
        return r;
}

int cli_table_print(cli_table_t *t, int r, const char *what) {
        if (r < 0)
                return cli_fail(what, r);
        for (size_t i = 0; i < t->n_cells; i++)
                t->width[i % t->n_cols] = MAX(t->width[i % t->n_cols], strlen(t->cells[i]));
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t col = i % t->n_cols;
                if (col == t->n_cols - 1)
                        printf("%s\n", t->cells[i]);
                else
                        printf("%-*s  ", (int) t->width[col], t->cells[i]);
        }
        return 0;
}

/* j as an item of an array cli_json_print() would print, after first ones before it. Takes j. */
int cli_json_item_print(json_t *j, bool first) {
        char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(j);
        if (!text)
                return -ENOMEM;
        fputs(first ? "[\n  " : ",\n  ", stdout);
        for (const char *p = text; *p; p++) {
                putchar(*p);
                if (*p == '\n')
                        fputs("  ", stdout);
        }
        free(text);
        return 0;
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

/* {"removed": id} for the remove commands. */
int cli_removed_print(const char *id) {
        json_t *o = json_object();
        bool ok = o != NULL;
        if (o)
                ops_jset(o, "removed", json_string(id), &ok);
        if (!ok) {
                json_decref(o);
                o = NULL;
        }
        return cli_json_print(o);
}

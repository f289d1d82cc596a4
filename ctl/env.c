/* SPDX-License-Identifier: MIT */
/* Shell quoting for "mscectl profile --env" (ctl/env.h). */
#include "ctl/env.h"
#include "util/util.h"

int ctl_shell_quote(const char *s, char **ret) {
        /* In single quotes nothing is special to sh nor to EnvironmentFile=; but a quote cannot
         * be written there, and systemd does not read sh's '\'' (after \' it takes the rest of
         * the line as it is, quotes included). A value with a quote is double-quoted instead:
         * there both unescape exactly \" \\ \$ \` and take everything else as it is. */
        bool dq = strchr(s, '\'') != NULL;
        size_t n = 2;
        for (const char *p = s; *p; p++) {
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return -EINVAL;
                n += dq && strchr("\"\\$`", *p) ? 2 : 1;
        }
        char *d = malloc(n + 1);
        if (!d)
                return -ENOMEM;
        char *o = d;
        *o++ = dq ? '"' : '\'';
        for (const char *p = s; *p; p++) {
                if (dq && strchr("\"\\$`", *p))
                        *o++ = '\\';
                *o++ = *p;
        }
        *o++ = dq ? '"' : '\'';
        *o = 0;
        *ret = d;
        return 0;
}

/* Append s to the space-separated list *list. */
static int list_append(char **list, const char *s) {
        char *d;
        if (asprintf(&d, "%s%s%s", *list ?: "", *list ? " " : "", s) < 0)
                return -ENOMEM;
        free(*list);
        *list = d;
        return 0;
}

typedef struct env_line {
        const char *name;
        char *quoted;
} env_line_t;

int ctl_profile_env(const ctl_profile_t *p, FILE *f) {
        _cleanup_free_ char *ids = NULL, *kpsa = NULL, *poll = NULL;
        int r = 0;
        for (size_t i = 0; r == 0 && i < p->n_targets; i++) {
                r = list_append(&ids, p->targets[i].id);
                if (r == 0)
                        r = list_append(&kpsa, p->targets[i].kpsa_id);
        }
        if (r < 0)
                return r;
        if (p->poll && asprintf(&poll, "%u", p->poll) < 0)
                return -ENOMEM;

        env_line_t lines[] = {
                { "MSCE_CSE_ID", NULL },     { "MSCE_CSE_BASE", NULL },   { "MSCE_KEID", NULL },
                { "MSCE_EXP", NULL },        { "MSCE_POLL", NULL },       { "MSCE_TARGET_IDS", NULL },
                { "MSCE_KPSA_IDS", NULL },
        };
        const char *values[ELEMENTSOF(lines)] = {
                p->cse_id, p->cse_base, p->ke_id, p->exp, poll, ids ?: "", kpsa ?: "",
        };
        /* Quote everything first: all lines or none. */
        for (size_t i = 0; r == 0 && i < ELEMENTSOF(lines); i++)
                if (values[i])
                        r = ctl_shell_quote(values[i], &lines[i].quoted);
        for (size_t i = 0; r == 0 && i < ELEMENTSOF(lines); i++)
                if (lines[i].quoted)
                        fprintf(f, "%s=%s\n", lines[i].name, lines[i].quoted);
        for (size_t i = 0; i < ELEMENTSOF(lines); i++)
                free(lines[i].quoted);
        return r;
}

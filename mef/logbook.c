/* SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

#include "mef/logbook.h"
#include "util/hash.h"
#include "util/text.h"
#include "util/util.h"

#define WINDOW_DEFAULT_USEC (10u * 1000u * 1000u)
#define MAX_LINES_DEFAULT 10u
#define MAX_SOURCES_DEFAULT 256u
#define SOURCE_MAX 64u
#define IDENTITY_MAX 40u /* shown; longer ones are cut */
#define IDENTITIES_SHOWN 3u
#define LINE_MAX_LEN 1024u

typedef struct entry {
        bool used;
        bool logged;        /* last_line is set */
        uint64_t hash;
        char source[SOURCE_MAX];
        uint64_t last_line;
        uint64_t first_pending;
        uint64_t pending;   /* events since the last line */
        uint64_t counts[_LOGBOOK_KIND_MAX];
        int priority;       /* the most severe pending one */
        char identities[IDENTITIES_SHOWN][IDENTITY_MAX + 1];
        unsigned n_identities;
        uint64_t more_identities;
} entry_t;

struct logbook {
        logbook_config_t cfg;
        logbook_sink_t sink;
        void *userdata;
        bool window_started;
        uint64_t window_start;
        unsigned lines_in_window;
        unsigned rr; /* where the next flush starts: every source gets its turn */
        logbook_stats_t stats;
        entry_t other;
        entry_t entries[];
};

static const char *const kind_phrase[_LOGBOOK_KIND_MAX][2] = {
        [LOGBOOK_CLOSED] = { "closed during the handshake", "closed during the handshake" },
        [LOGBOOK_HANDSHAKE_FAILED] = { "TLS handshake failed", "TLS handshakes failed" },
        [LOGBOOK_TIMEOUT] = { "timed out", "timed out" },
        [LOGBOOK_EVICTED] = { "unauthenticated connection evicted", "unauthenticated connections evicted" },
        [LOGBOOK_REQUEST_FAILED] = { "request failed or refused", "requests failed or refused" },
        [LOGBOOK_OVERLOADED] = { "answered 503 (busy)", "answered 503 (busy)" },
};

int logbook_new(const logbook_config_t *cfg, logbook_sink_t sink, void *userdata, logbook_t **ret) {
        if (!sink || !ret)
                return -EINVAL;
        logbook_config_t c = cfg ? *cfg : (logbook_config_t) {};
        if (c.window_usec == 0)
                c.window_usec = WINDOW_DEFAULT_USEC;
        if (c.max_lines == 0)
                c.max_lines = MAX_LINES_DEFAULT;
        if (c.max_sources == 0)
                c.max_sources = MAX_SOURCES_DEFAULT;
        logbook_t *lb = calloc(1, sizeof *lb + (size_t) c.max_sources * sizeof lb->entries[0]);
        if (!lb)
                return -ENOMEM;
        lb->cfg = c;
        lb->sink = sink;
        lb->userdata = userdata;
        lb->other.used = true;
        snprintf(lb->other.source, sizeof lb->other.source, "other sources");
        *ret = lb;
        return 0;
}

logbook_t *logbook_free(logbook_t *lb) {
        free(lb);
        return NULL;
}

static void window_roll(logbook_t *lb, uint64_t now) {
        if (!lb->window_started || now - lb->window_start >= lb->cfg.window_usec) {
                lb->window_started = true;
                lb->window_start = now;
                lb->lines_in_window = 0;
        }
}

static bool entry_quiet(const logbook_t *lb, const entry_t *e, uint64_t now) {
        return e->pending == 0 && (!e->logged || now - e->last_line >= lb->cfg.window_usec);
}

/* The source's entry, a new one (in place of a quiet one if need be), or "other sources". */
static entry_t *entry_get(logbook_t *lb, const char *source, uint64_t now) {
        uint64_t h = hash_string(source);
        entry_t *spare = NULL;
        for (unsigned i = 0; i < lb->cfg.max_sources; i++) {
                entry_t *e = &lb->entries[i];
                if (e->used && e->hash == h && streq(e->source, source))
                        return e;
                if (!spare && (!e->used || entry_quiet(lb, e, now)))
                        spare = e;
        }
        if (!spare)
                return &lb->other;
        *spare = (entry_t) { .used = true, .hash = h };
        snprintf(spare->source, sizeof spare->source, "%s", source);
        return spare;
}

static void entry_count(entry_t *e, uint64_t now, logbook_kind_t kind, const char *identity, int priority) {
        if (e->pending == 0) {
                e->first_pending = now;
                e->priority = priority;
        }
        e->pending++;
        e->counts[kind]++;
        e->priority = MIN(e->priority, priority);
        if (!identity)
                return;
        char id[IDENTITY_MAX + 1];
        text_copy(identity, TEXT_ASCII, id, sizeof id);
        for (unsigned i = 0; i < e->n_identities; i++)
                if (streq(e->identities[i], id))
                        return;
        if (e->n_identities < IDENTITIES_SHOWN)
                memcpy(e->identities[e->n_identities++], id, sizeof id);
        else
                e->more_identities++;
}

_printf_(3, 4) static size_t append(char *buf, size_t n, const char *fmt, ...) {
        if (n >= LINE_MAX_LEN)
                return n;
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(buf + n, LINE_MAX_LEN - n, fmt, ap);
        va_end(ap);
        return m < 0 ? n : MIN(n + (size_t) m, (size_t) LINE_MAX_LEN - 1);
}

static void entry_summarise(logbook_t *lb, entry_t *e, uint64_t now) {
        char line[LINE_MAX_LEN];
        size_t n = append(line, 0, "%s: ", e->source);
        const char *sep = "";
        for (int k = 0; k < _LOGBOOK_KIND_MAX; k++) {
                if (e->counts[k] == 0)
                        continue;
                n = append(line, n, "%s%llu %s", sep, (unsigned long long) e->counts[k],
                           kind_phrase[k][e->counts[k] != 1]);
                sep = ", ";
        }
        uint64_t since = e->logged ? MIN(e->last_line, e->first_pending) : e->first_pending;
        n = append(line, n, " in the last %llu s", (unsigned long long) MAX((now - since + 999999u) / 1000000u, 1u));
        for (unsigned i = 0; i < e->n_identities; i++)
                n = append(line, n, "%s%s", i == 0 ? "; identities tried: " : ", ", e->identities[i]);
        if (e->more_identities > 0)
                n = append(line, n, " (and %llu more)", (unsigned long long) e->more_identities);
        lb->sink(lb->userdata, e->priority, line);
        lb->stats.lines++;

        e->logged = true;
        e->last_line = now;
        e->pending = 0;
        memset(e->counts, 0, sizeof e->counts);
        e->n_identities = 0;
        e->more_identities = 0;
}

void logbook_note(logbook_t *lb, uint64_t now, const char *source, logbook_kind_t kind, const char *identity,
                  int priority, const char *fmt, ...) {
        if (!lb || kind < 0 || kind >= _LOGBOOK_KIND_MAX)
                return;
        window_roll(lb, now);
        entry_t *e = entry_get(lb, source ?: "?", now);
        if (e != &lb->other && entry_quiet(lb, e, now) && lb->lines_in_window < lb->cfg.max_lines) {
                char line[LINE_MAX_LEN];
                va_list ap;
                va_start(ap, fmt);
                (void) vsnprintf(line, sizeof line, fmt, ap);
                va_end(ap);
                lb->sink(lb->userdata, priority, line);
                lb->stats.lines++;
                lb->lines_in_window++;
                e->logged = true;
                e->last_line = now;
                return;
        }
        entry_count(e, now, kind, identity, priority);
        lb->stats.aggregated++;
}

static bool entry_due(const logbook_t *lb, const entry_t *e, uint64_t now) {
        return e->pending > 0 && (!e->logged || now - e->last_line >= lb->cfg.window_usec);
}

void logbook_flush(logbook_t *lb, uint64_t now) {
        if (!lb)
                return;
        window_roll(lb, now);
        unsigned n = lb->cfg.max_sources;
        for (unsigned i = 0; i < n; i++) {
                unsigned at = (lb->rr + i) % n;
                entry_t *e = &lb->entries[at];
                if (!e->used)
                        continue;
                if (entry_quiet(lb, e, now) && e->logged) {
                        e->used = false; /* forgotten: its next event is logged as it comes */
                        continue;
                }
                if (!entry_due(lb, e, now))
                        continue;
                if (lb->lines_in_window >= lb->cfg.max_lines) {
                        lb->rr = at; /* this one goes first next time */
                        break;
                }
                entry_summarise(lb, e, now);
                lb->lines_in_window++;
        }
        if (entry_due(lb, &lb->other, now))
                entry_summarise(lb, &lb->other, now); /* one a window, outside of max_lines */
}

static void entry_merge(entry_t *into, const entry_t *from) {
        if (into->pending == 0) {
                into->first_pending = from->first_pending;
                into->priority = from->priority;
        }
        into->first_pending = MIN(into->first_pending, from->first_pending);
        into->priority = MIN(into->priority, from->priority);
        into->pending += from->pending;
        for (int k = 0; k < _LOGBOOK_KIND_MAX; k++)
                into->counts[k] += from->counts[k];
        into->more_identities += from->n_identities + from->more_identities;
}

void logbook_drain(logbook_t *lb, uint64_t now) {
        if (!lb)
                return;
        unsigned lines = 0;
        for (unsigned i = 0; i < lb->cfg.max_sources; i++) {
                entry_t *e = &lb->entries[i];
                if (!e->used || e->pending == 0)
                        continue;
                if (lines++ < lb->cfg.max_lines)
                        entry_summarise(lb, e, now);
                else {
                        entry_merge(&lb->other, e);
                        *e = (entry_t) {};
                }
        }
        if (lb->other.pending > 0) {
                lb->other.logged = false; /* "in the last" from its first event */
                entry_summarise(lb, &lb->other, now);
        }
}

uint64_t logbook_next(const logbook_t *lb) {
        uint64_t next = UINT64_MAX;
        if (!lb)
                return next;
        uint64_t budget_back = lb->lines_in_window >= lb->cfg.max_lines ? lb->window_start + lb->cfg.window_usec : 0;
        for (unsigned i = 0; i < lb->cfg.max_sources; i++) {
                const entry_t *e = &lb->entries[i];
                if (!e->used || e->pending == 0)
                        continue;
                uint64_t due = e->logged ? e->last_line + lb->cfg.window_usec : 0;
                next = MIN(next, MAX(due, budget_back));
        }
        const entry_t *o = &lb->other;
        if (o->pending > 0)
                next = MIN(next, o->logged ? o->last_line + lb->cfg.window_usec : 0);
        return next;
}

void logbook_get_stats(const logbook_t *lb, logbook_stats_t *ret) {
        *ret = lb ? lb->stats : (logbook_stats_t) {};
}

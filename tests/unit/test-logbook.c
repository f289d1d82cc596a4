/* SPDX-License-Identifier: MIT */
/* The bounded log, on a fake clock: one line per source per window (the first event as it
 * comes, a summary of the rest), identities listed (three, then a count), a cap overall,
 * sources beyond the table counted together, quiet sources forgotten, drain at the end. */
#include <criterion/criterion.h>
#include <syslog.h>

#include "mef/logbook.h"
#include "util/util.h"

#define S 1000000ull

typedef struct sink {
        unsigned n;
        char lines[4096][1024];
        int prio[4096];
} sink_t;

static sink_t out;

static void sink(void *userdata, int priority, const char *line) {
        sink_t *s = userdata;
        cr_assert_lt(s->n, ELEMENTSOF(s->lines));
        snprintf(s->lines[s->n], sizeof s->lines[0], "%s", line);
        s->prio[s->n++] = priority;
}

static logbook_t *new_book(unsigned max_lines, unsigned max_sources) {
        logbook_t *lb = NULL;
        logbook_config_t cfg = { .window_usec = 10 * S, .max_lines = max_lines, .max_sources = max_sources };
        memset(&out, 0, sizeof out);
        cr_assert_eq(logbook_new(&cfg, sink, &out, &lb), 0);
        return lb;
}

static void fail_from(logbook_t *lb, uint64_t now, const char *src, const char *identity) {
        logbook_note(lb, now, src, LOGBOOK_HANDSHAKE_FAILED, identity, LOG_WARNING,
                     "%s:4000: TLS handshake failed: authentication failed, identity %s", src, identity);
}

/* A flush at t: out.n lines in all, the last one want. */
static void flushed(logbook_t *lb, uint64_t t, unsigned n, const char *want) {
        logbook_flush(lb, t);
        cr_assert_eq(out.n, n);
        cr_assert_str_eq(out.lines[n - 1], want);
}

Test(logbook, one_line_per_source_per_window) {
        logbook_t *lb = new_book(20, 16);
        cr_assert_eq(logbook_next(lb), UINT64_MAX);
        /* t=100 s: the first one as it comes */
        fail_from(lb, 100 * S, "192.0.2.1", "kpm-a");
        cr_assert_eq(out.n, 1);
        cr_assert_str_eq(out.lines[0], "192.0.2.1:4000: TLS handshake failed: authentication failed, identity kpm-a");
        cr_assert_eq(logbook_next(lb), UINT64_MAX, "nothing waiting");
        /* 1000 more in the next 10 s: counted, one summary when the window since the line is over */
        static const char *const ids[] = { "kpm-a", "kpm-b", "kpm-c", "kpm-d", "kpm-e" };
        for (unsigned i = 0; i < 1000; i++) {
                fail_from(lb, 100 * S + (i + 1) * 9000u, "192.0.2.1", ids[i % 5]);
                if (i % 100 == 0)
                        logbook_note(lb, 100 * S + (i + 1) * 9000u, "192.0.2.1", LOGBOOK_TIMEOUT, NULL, LOG_INFO,
                                     "timed out");
        }
        cr_assert_eq(out.n, 1);
        cr_assert_eq(logbook_next(lb), 110 * S);
        logbook_flush(lb, 109 * S);
        cr_assert_eq(out.n, 1, "not before the window is over");
        flushed(lb, 110 * S, 2, "192.0.2.1: 1000 TLS handshakes failed, 10 timed out in the last 10 s; "
                "identities tried: kpm-a, kpm-b, kpm-c (and 400 more)");
        cr_assert_eq(out.prio[1], LOG_WARNING);
        logbook_stats_t st;
        logbook_get_stats(lb, &st);
        cr_assert_eq(st.lines, 2);
        cr_assert_eq(st.aggregated, 1010);
        /* the summary opened a new window: the next event waits for it */
        fail_from(lb, 111 * S, "192.0.2.1", "kpm-a");
        cr_assert_eq(out.n, 2);
        cr_assert_eq(logbook_next(lb), 120 * S);
        flushed(lb, 120 * S, 3, "192.0.2.1: 1 TLS handshake failed in the last 10 s; identities tried: kpm-a");
        /* quiet for a window: forgotten, the next event is a line of its own again */
        logbook_flush(lb, 131 * S);
        cr_assert_eq(logbook_next(lb), UINT64_MAX);
        fail_from(lb, 140 * S, "192.0.2.1", "kpm-z");
        cr_assert_eq(out.n, 4);
        cr_assert_not_null(strstr(out.lines[3], "identity kpm-z"));
        logbook_free(lb);
}

Test(logbook, sources_apart) {
        logbook_t *lb = new_book(20, 16);
        fail_from(lb, 5 * S, "192.0.2.1", "a");
        fail_from(lb, 5 * S, "192.0.2.2", "b");
        fail_from(lb, 6 * S, "192.0.2.1", "a");
        cr_assert_eq(out.n, 2, "each source has its own line");
        flushed(lb, 15 * S, 3, "192.0.2.1: 1 TLS handshake failed in the last 10 s; identities tried: a");
        logbook_free(lb);
}

/* Identities are only ever printable ASCII, cut at 40 characters. */
Test(logbook, identities_sanitized) {
        logbook_t *lb = new_book(20, 16);
        fail_from(lb, 0, "x", "first");
        fail_from(lb, 1, "x", "bad\nline\x1b[31m");
        fail_from(lb, 2, "x", "0123456789012345678901234567890123456789-cut");
        flushed(lb, 10 * S, 2, "x: 2 TLS handshakes failed in the last 10 s; identities tried: "
                "bad?line?[31m, 0123456789012345678901234567890123456789");
        logbook_free(lb);
}

/* Many sources: at most max_lines a window; the rest waits, every source gets its turn. */
Test(logbook, global_cap) {
        logbook_t *lb = new_book(5, 64);
        uint64_t t = 1000 * S;
        char src[32];
        for (unsigned r = 0; r < 3; r++)
                for (unsigned i = 0; i < 40; i++) {
                        snprintf(src, sizeof src, "10.0.0.%u", i);
                        fail_from(lb, t + r, src, "id");
                }
        cr_assert_eq(out.n, 5, "%u lines in the first window", out.n);
        /* one window later: 5 summaries; and so on, 5 a window, until all 40 have had theirs */
        unsigned windows = 0;
        bool seen[40] = {};
        while (logbook_next(lb) != UINT64_MAX) {
                uint64_t next = logbook_next(lb);
                cr_assert_geq(next, t);
                t = next;
                unsigned before = out.n;
                logbook_flush(lb, t);
                cr_assert_leq(out.n - before, 5);
                for (unsigned i = before; i < out.n; i++) {
                        unsigned a;
                        cr_assert_eq(sscanf(out.lines[i], "10.0.0.%u:", &a), 1, "%s", out.lines[i]);
                        seen[a] = true;
                }
                cr_assert_lt(++windows, 20);
        }
        for (unsigned i = 0; i < 40; i++)
                cr_assert(seen[i], "10.0.0.%u never summarised", i);
        logbook_free(lb);
}

/* Beyond the table: counted as "other sources", one line a window on top of max_lines. */
Test(logbook, other_sources) {
        logbook_t *lb = new_book(100, 4);
        char src[32];
        for (unsigned i = 0; i < 1000; i++) {
                snprintf(src, sizeof src, "2001:db8:%x::/64", i);
                logbook_note(lb, 50 * S, src, LOGBOOK_CLOSED, NULL, LOG_INFO, "%s closed", src);
        }
        cr_assert_eq(out.n, 4);
        cr_assert_eq(logbook_next(lb), 0, "other sources: due at once");
        flushed(lb, 50 * S, 5, "other sources: 996 closed during the handshake in the last 1 s");
        cr_assert_eq(out.prio[4], LOG_INFO);
        for (unsigned i = 0; i < 1000; i++) {
                snprintf(src, sizeof src, "2001:db8:%x::/64", i + 5000);
                logbook_note(lb, 51 * S, src, LOGBOOK_EVICTED, NULL, LOG_INFO, "%s evicted", src);
        }
        logbook_flush(lb, 55 * S);
        cr_assert_eq(out.n, 5, "one a window");
        flushed(lb, 60 * S, 6, "other sources: 1000 unauthenticated connections evicted in the last 10 s");
        logbook_free(lb);
}

Test(logbook, drain) {
        logbook_t *lb = new_book(2, 16);
        char src[32];
        for (unsigned r = 0; r < 2; r++)
                for (unsigned i = 0; i < 5; i++) {
                        snprintf(src, sizeof src, "10.9.0.%u", i);
                        fail_from(lb, 7 * S + r, src, "id");
                }
        cr_assert_eq(out.n, 2);
        logbook_drain(lb, 8 * S);
        /* two summaries (max_lines), the other three sources (6 events) in one line */
        cr_assert_eq(out.n, 5, "%u", out.n);
        cr_assert_not_null(strstr(out.lines[4], "other sources: 6 TLS handshakes failed"), "%s", out.lines[4]);
        logbook_free(lb);
        cr_assert_null(logbook_free(NULL));
        logbook_note(NULL, 0, "x", LOGBOOK_CLOSED, NULL, LOG_INFO, "ignored");
}

/* SPDX-License-Identifier: MIT */
/* mef/ops-import.c's line reader: rows that may hold a Kpm as hex are read into one buffer of
 * a fixed size, wiped at the end. It never grows or moves (getline() freed a shorter row's
 * buffer, the Kpm in it, unwiped when a later row was longer), and a line over the limit is not
 * read whole into memory before it is refused. */
#include <criterion/criterion.h>
#include <malloc.h>
#include <unistd.h>

#include "mef/ops-import.h"
#include "util/util.h"

#define KPM "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static char *repeat(char c, size_t n) {
        char *s = malloc(n + 1);
        cr_assert_not_null(s);
        memset(s, c, n);
        s[n] = 0;
        return s;
}

/* A short kpm row, a row ten times as long, a kpm row again: the same buffer throughout. */
Test(import, rows_share_one_buffer_that_never_grows) {
        _cleanup_free_ char *base = repeat('b', 8000), *text = NULL;
        cr_assert_gt(asprintf(&text,
                              "nodeID,kpmID,kpm,cseID,cseBase\n"
                              "urn:dev:ops:i1,k1," KPM ",/mn-1,https://in.example.net/b\n"
                              "urn:dev:ops:i2,k2," KPM ",/mn-2,https://in.example.net/%s\n"
                              "urn:dev:ops:i3,k3," KPM ",/mn-3,https://in.example.net/b\n",
                              base),
                     0);
        _cleanup_(import_reader_done) import_reader_t rd = {};
        cr_assert_eq(import_reader_open_memory(&rd, "test", text, strlen(text)), 0);
        int r;
        cr_assert_null(import_reader_start(&rd, &r));
        cr_assert_eq(r, 0);
        char *line = rd.line;
        size_t alloc = rd.alloc;
        cr_assert_leq(alloc, IMPORT_LINE_MAX + 1);
        for (unsigned i = 1; i <= 3; i++) {
                import_record_t rec;
                const char *why;
                cr_assert_eq(import_reader_next(&rd, &rec, &why), 1);
                cr_assert_null(why, "row %u: %s", i, why);
                cr_assert_str_eq(rec.v[F_KPM], KPM);
                cr_assert_eq(strlen(rec.v[F_CSE_BASE]), i == 2 ? 8000 + strlen("https://in.example.net/") : 24);
                cr_assert(rd.line == line && rd.alloc == alloc, "row %u: the line buffer moved or grew (%zu -> %zu)",
                          i, alloc, rd.alloc);
                import_record_done(&rd);
        }
        import_record_t rec;
        const char *why;
        cr_assert_eq(import_reader_next(&rd, &rec, &why), 0);
}

/* The limit counts the line end: 16383 bytes and '\n' are a row, 16384 and '\n' are not; a
 * line of a MiB is refused without being held, and the row after it is read. */
Test(import, long_lines_are_refused_without_being_held) {
        _cleanup_free_ char *fits = repeat('a', IMPORT_LINE_MAX - 1), *over = repeat('a', IMPORT_LINE_MAX),
                            *huge = repeat('a', 1u << 20), *text = NULL;
        cr_assert_gt(asprintf(&text, "nodeID\n%s\n%s\n%s\nurn:dev:ops:last", fits, over, huge), 0);
        _cleanup_(import_reader_done) import_reader_t rd = {};
        cr_assert_eq(import_reader_open_memory(&rd, "test", text, strlen(text)), 0);
        int r;
        cr_assert_null(import_reader_start(&rd, &r));
        static const struct {
                unsigned lineno;
                const char *why;
        } want[] = { { 2, NULL }, { 3, "line longer than 16384 bytes" }, { 4, "line longer than 16384 bytes" }, { 5, NULL } };
        for (size_t i = 0; i < ELEMENTSOF(want); i++) {
                import_record_t rec;
                const char *why;
                cr_assert_eq(import_reader_next(&rd, &rec, &why), 1);
                cr_assert_eq(rd.lineno, want[i].lineno);
                if (want[i].why)
                        cr_assert_str_eq(why ?: "(none)", want[i].why, "line %u", rd.lineno);
                else
                        cr_assert_null(why, "line %u: %s", rd.lineno, why);
                cr_assert_leq(rd.alloc, IMPORT_LINE_MAX + 1, "line %u: %zu bytes held", rd.lineno, rd.alloc);
        }
        cr_assert_str_eq(rd.line, "urn:dev:ops:last");
}

/* CRLF line ends, comments and blank lines; a NUL byte is refused. */
Test(import, line_ends_comments_and_nul) {
        static const char text[] = "nodeID\r\n# a comment\r\n\r\nurn:dev:ops:a\r\nurn:dev:\0ops:b\n";
        _cleanup_(import_reader_done) import_reader_t rd = {};
        cr_assert_eq(import_reader_open_memory(&rd, "test", text, sizeof text - 1), 0);
        int r;
        cr_assert_null(import_reader_start(&rd, &r));
        import_record_t rec;
        const char *why;
        cr_assert_eq(import_reader_next(&rd, &rec, &why), 1);
        cr_assert_null(why);
        cr_assert_eq(rd.lineno, 4);
        cr_assert_str_eq(rec.v[F_NODE_ID], "urn:dev:ops:a");
        cr_assert_eq(import_reader_next(&rd, &rec, &why), 1);
        cr_assert_str_eq(why ?: "(none)", "line holds a NUL byte");
        cr_assert_eq(import_reader_next(&rd, &rec, &why), 0);
}

/* stdio's own buffer: fmemopen() copies a request body into one, fopen() a file, Kpm and all.
 * fclose() and free() are replaced at link time (-Wl,--wrap; libmsce is static, so its calls
 * reach the wrappers, while glibc's free() of a buffer glibc allocated does not): the buffer a
 * stream held at its close must then be freed by the reader, seen here, with no Kpm left in it. */
#define NEEDLE "8899aabbccddeeff0011" /* a piece of KPM */

int __real_fclose(FILE *f);
int __wrap_fclose(FILE *f);
void __real_free(void *p);
void __wrap_free(void *p);

static bool armed;
static uintptr_t stream_buf;
static bool stream_held_kpm, stream_buf_freed;
static unsigned freed_with_kpm;

int __wrap_fclose(FILE *f) {
#ifdef __GLIBC__
        if (armed && f->_IO_buf_base) {
                stream_buf = (uintptr_t) f->_IO_buf_base;
                stream_held_kpm = memmem(f->_IO_buf_base, f->_IO_buf_end - f->_IO_buf_base, NEEDLE, strlen(NEEDLE));
        }
#endif
        return __real_fclose(f);
}

void __wrap_free(void *p) {
        if (armed && p) {
                if ((uintptr_t) p == stream_buf)
                        stream_buf_freed = true;
                if (memmem(p, malloc_usable_size(p), NEEDLE, strlen(NEEDLE)))
                        freed_with_kpm++;
        }
        __real_free(p);
}

static void read_all_and_close(import_reader_t *rd) {
        int r;
        cr_assert_null(import_reader_start(rd, &r));
        cr_assert_eq(r, 0);
        import_record_t rec;
        const char *why;
        while ((r = import_reader_next(rd, &rec, &why)) == 1) {
                cr_assert_null(why, "line %u: %s", rd->lineno, why);
                import_record_done(rd);
        }
        cr_assert_eq(r, 0);
        stream_buf = 0;
        stream_held_kpm = stream_buf_freed = false;
        freed_with_kpm = 0;
        armed = true;
        import_reader_done(rd);
        armed = false;
        cr_assert_neq(stream_buf, 0, "no stream buffer seen at the close: the test sees nothing");
        cr_assert(stream_held_kpm, "the stream's buffer never held the Kpm: the test sees nothing");
        cr_assert(stream_buf_freed, "the stream's buffer, holding a Kpm, was freed by stdio unwiped");
        cr_assert_eq(freed_with_kpm, 0u, "%u freed block(s) still held the Kpm", freed_with_kpm);
}

static const char kpm_rows[] = "nodeID,kpmID,kpm,cseID,cseBase\n"
                               "urn:dev:ops:w1,k1," KPM ",/mn-1,https://in.example.net/b\n"
                               "urn:dev:ops:w2,k2," KPM ",/mn-2,https://in.example.net/b\n";

Test(import, request_body_stream_buffer_is_wiped) {
#ifndef __GLIBC__
        cr_skip_test("reads glibc's FILE buffer fields");
#endif
        import_reader_t rd = {};
        cr_assert_eq(import_reader_open_memory(&rd, "test", kpm_rows, strlen(kpm_rows)), 0);
        read_all_and_close(&rd);
}

Test(import, file_stream_buffer_is_wiped) {
#ifndef __GLIBC__
        cr_skip_test("reads glibc's FILE buffer fields");
#endif
        char path[] = "/tmp/msce-test-import-wipe-XXXXXX";
        int fd = mkstemp(path);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, kpm_rows, strlen(kpm_rows)), (ssize_t) strlen(kpm_rows));
        close(fd);
        import_reader_t rd = {};
        int r = import_reader_open(&rd, path);
        unlink(path);
        cr_assert_eq(r, 0);
        read_all_and_close(&rd);
}

/* Out of memory is the reader's failure, not the row's: a bad row would be answered 422 (the
 * admin API) or told "rows are bad" (the CLI) when it was the MEF that failed. jansson's
 * allocations fail here (json_object() says nothing when it does), and strdup() is replaced at
 * link time, as the targets were once split in a copy (the row was then "out of memory"). */
static bool jansson_fails, strdup_fails;

static void *failing_malloc(size_t n) {
        return jansson_fails ? NULL : malloc(n);
}

char *__real_strdup(const char *s);
char *__wrap_strdup(const char *s);
char *__wrap_strdup(const char *s) {
        if (strdup_fails) {
                errno = ENOMEM;
                return NULL;
        }
        return __real_strdup(s);
}

/* A request body's reader, past its header. */
static void reader_started(import_reader_t *rd, const char *text) {
        cr_assert_eq(import_reader_open_memory(rd, "test", text, strlen(text)), 0);
        int r;
        cr_assert_null(import_reader_start(rd, &r));
        cr_assert_geq(r, 0);
}

Test(import, json_row_out_of_memory_is_the_readers_failure) {
        static const char text[] = "{\"nodeID\":\"urn:dev:ops:m1\"}\n";
        _cleanup_(import_reader_done) import_reader_t rd = {};
        reader_started(&rd, text);
        import_record_t rec;
        const char *why = NULL;
        json_set_alloc_funcs(failing_malloc, free);
        jansson_fails = true;
        int r = import_reader_next(&rd, &rec, &why);
        jansson_fails = false;
        json_set_alloc_funcs(malloc, free);
        cr_assert_eq(r, -ENOMEM, "%d, the row refused as: %s", r, why ?: "(none)");
}

Test(import, targets_are_split_without_allocating) {
        static const char text[] = "nodeID,certFingerprint,cseID,cseBase,targets\n"
                                   "urn:dev:ops:m2," KPM ",/mn-m2,https://in.example.net/b,/in-cse /in-cse/Cmaf01\n";
        _cleanup_(import_reader_done) import_reader_t rd = {};
        reader_started(&rd, text);
        import_record_t rec;
        const char *why;
        cr_assert_eq(import_reader_next(&rd, &rec, &why), 1);
        cr_assert_null(why);
        mef_config_t cfg = { .default_poll = 3600, .default_lifetime = 86400 };
        import_row_t row;
        char msg[384];
        strdup_fails = true;
        why = import_row_parse(&cfg, &rd, &rec, &row, msg, sizeof msg);
        strdup_fails = false;
        cr_assert_null(why, "a good row refused: %s", why);
        cr_assert_eq(row.n.n_targets, 2);
        cr_assert_str_eq(row.n.targets[1], "/in-cse/Cmaf01");
}

/* The first row of text through the reader and the import's rules: NULL with row filled, or
 * the rule it breaks (static text, or msg). */
static const char *first_row(const char *text, import_row_t *row, char *msg, size_t size) {
        static const mef_config_t cfg = { .default_poll = 3600, .default_lifetime = 86400 };
        _cleanup_(import_reader_done) import_reader_t rd = {};
        reader_started(&rd, text);
        import_record_t rec;
        const char *why;
        cr_assert_eq(import_reader_next(&rd, &rec, &why), 1);
        return why ?: import_row_parse(&cfg, &rd, &rec, row, msg, size);
}

/* msce-mef(8), FILE FORMATS: a CSV targets field holds its target IDs separated by spaces or
 * ';', either or both, as the documentation's examples have them. */
Test(import, csv_targets_separated_by_spaces_or_semicolons) {
        static const char *const fields[] = { "/in-cse;/in-cse/Cmaf01", "/in-cse /in-cse/Cmaf01",
                                              " ;/in-cse ; /in-cse/Cmaf01; ", "/in-cse;/in-cse" };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                _cleanup_free_ char *text = NULL;
                cr_assert_gt(asprintf(&text, "nodeID,certFingerprint,cseID,cseBase,targets\n"
                                             "urn:dev:ops:s%zu," KPM ",/mn-s,https://in.example.net/b,%s\n", i, fields[i]),
                             0);
                import_row_t row;
                char msg[384];
                const char *why = first_row(text, &row, msg, sizeof msg);
                if (i == ELEMENTSOF(fields) - 1) {
                        cr_expect_str_eq(why ?: "", "targets: a target given twice");
                        continue;
                }
                cr_assert_null(why, "'%s' refused: %s", fields[i], why);
                cr_expect_eq(row.n.n_targets, 2, "'%s'", fields[i]);
                cr_expect_str_eq(row.n.targets[0], "/in-cse");
                cr_expect_str_eq(row.n.targets[1], "/in-cse/Cmaf01");
        }
}

/* A JSON target is one target ID: joined with the others and split again, "/in-cse;/other"
 * became two targets and "" none; each is now refused, by its index. */
Test(import, json_targets_are_each_one_target_id) {
        static const struct {
                const char *targets, *why;
        } t[] = {
                { "[\"/in-cse;/other\"]", "targets[0]: not a target ID" },
                { "[\"/in-cse\",\"\"]", "targets[1]: empty" },
                { "[\"/in-cse\",\"in-cse\"]", "targets[1]: not an SP-relative target ID" },
                { "[\"/in-cse\",\"/in-cse/Cmaf01\"]", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                _cleanup_free_ char *text = NULL;
                cr_assert_gt(asprintf(&text,
                                      "{\"nodeID\":\"urn:dev:ops:j%zu\",\"certFingerprint\":\"" KPM "\","
                                      "\"cseID\":\"/mn-j\",\"cseBase\":\"https://in.example.net/b\",\"targets\":%s}\n",
                                      i, t[i].targets),
                             0);
                import_row_t row;
                char msg[384];
                const char *why = first_row(text, &row, msg, sizeof msg);
                if (!t[i].why) {
                        cr_assert_null(why, "%s refused: %s", t[i].targets, why);
                        cr_assert_eq(row.n.n_targets, 2);
                        cr_assert_str_eq(row.n.targets[1], "/in-cse/Cmaf01");
                        continue;
                }
                cr_assert_not_null(why, "%s accepted, %zu targets", t[i].targets, row.n.n_targets);
                cr_assert(!strncmp(why, t[i].why, strlen(t[i].why)), "%s: %s", t[i].targets, why);
        }
}

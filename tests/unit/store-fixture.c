/* SPDX-License-Identifier: MIT */
/* The store tests' fixture (store-fixture.h). */
#include <criterion/criterion.h>
#include <limits.h>
#include <sqlite3.h>
#if HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "tests/unit/store-fixture.h"
#include "util/util.h"

char dir[] = "/tmp/test-store.XXXXXX";
char db_path[PATH_MAX], key_path[PATH_MAX];
const char *pg_uri, *pg_password_file;

#if HAVE_LIBPQ
PGconn *pg_connect(void) {
        char pw[256] = "";
        FILE *f = fopen(pg_password_file, "re");
        cr_assert_not_null(f);
        cr_assert_not_null(fgets(pw, sizeof pw, f));
        fclose(f);
        pw[strcspn(pw, "\n")] = 0;
        const char *keys[] = { "dbname", "password", NULL }, *values[] = { pg_uri, pw, NULL };
        PGconn *c = PQconnectdbParams(keys, values, 1);
        erase(pw, sizeof pw);
        cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
        return c;
}

/* ?N in sql stands for $N; blob (bytea) is parameter 1. */
static void pg_exec(const char *sql, const void *blob, int blob_len) {
        char q[512];
        snprintf(q, sizeof q, "%s", sql);
        for (char *p = q; (p = strchr(p, '?'));)
                *p = '$';
        PGconn *c = pg_connect();
        const char *values[] = { blob };
        int lengths[] = { blob_len }, formats[] = { 1 };
        PGresult *res = blob ? PQexecParams(c, q, 1, NULL, values, lengths, formats, 1) : PQexec(c, q);
        cr_assert(PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK, "%s: %s", q,
                  PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
}

static int pg_blob_read(const char *sql, uint8_t *out, size_t size) {
        PGconn *c = pg_connect();
        PGresult *res = PQexecParams(c, sql, 0, NULL, NULL, NULL, NULL, 1);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
        cr_assert_eq(PQntuples(res), 1);
        int n = PQgetlength(res, 0, 0);
        cr_assert_leq((size_t) n, size);
        memcpy(out, PQgetvalue(res, 0, 0), (size_t) n);
        PQclear(res);
        PQfinish(c);
        return n;
}

long pg_count(const char *sql) {
        PGconn *c = pg_connect();
        PGresult *res = PQexec(c, sql);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
        long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        PQfinish(c);
        return n;
}

void pg_wait_lock_waiters(long n, const bool *done) {
        uint64_t end = now_usec() + 20000000u;
        while (!(done && __atomic_load_n(done, __ATOMIC_ACQUIRE)) &&
               pg_count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'msce-mef' "
                        "AND wait_event_type = 'Lock'") < n) {
                cr_assert_lt(now_usec(), end, "fewer than %ld store connections waited on a lock", n);
                usleep(10000);
        }
}

void pg_wait_lock_waiter(const bool *done) {
        pg_wait_lock_waiters(1, done);
}

char *pg_dump_text(void) {
        PGconn *c = pg_connect();
        PGresult *res = PQexec(c, "SELECT coalesce(string_agg(x, '|'), '') FROM ("
                                  " SELECT t::text AS x FROM nodes t UNION ALL SELECT t::text FROM targets t"
                                  " UNION ALL SELECT t::text FROM enrolments t UNION ALL SELECT t::text FROM meta t"
                                  " UNION ALL SELECT t::text FROM audit t) q");
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
        char *text = strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
        PQfinish(c);
        return text;
}
#endif

static void rm_rf(const char *path) {
        /* the tree is ours and two levels deep: no need for nftw */
        static const char *const names[] = { "db/mef.db", "db/mef.db-wal", "db/mef.db-shm", "db/mef.db-journal",
                                             "keys/master.key", "keys/other.key", "db", "keys" };
        char p[PATH_MAX];
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                snprintf(p, sizeof p, "%s/%s", path, names[i]);
                if (unlink(p) < 0 && errno == EISDIR)
                        rmdir(p);
                rmdir(p);
        }
        rmdir(path);
}

static void setup(void) {
        cr_assert_not_null(mkdtemp(dir));
        snprintf(db_path, sizeof db_path, "%s/db/mef.db", dir);
        snprintf(key_path, sizeof key_path, "%s/keys/master.key", dir);
        pg_uri = getenv("MSCE_TEST_PG_URI");
        pg_password_file = getenv("MSCE_TEST_PG_PASSWORD_FILE");
        if (pg_uri) {
#if HAVE_LIBPQ
                /* an empty database for each test */
                pg_exec("SET client_min_messages = warning; DROP SCHEMA public CASCADE; CREATE SCHEMA public", NULL, 0);
#else
                rm_rf(dir);
                cr_skip_test("MSCE_TEST_PG_URI given to a build without libpq");
#endif
        }
}

int open_db(unsigned flags, mef_store_t **ret) {
        if (pg_uri) {
                store_location_t loc = { .backend = STORE_BACKEND_POSTGRESQL, .uri = pg_uri,
                                         .password_file = pg_password_file };
                return store_open_at(&loc, key_path, flags, ret, NULL);
        }
        store_location_t loc = { .backend = STORE_BACKEND_SQLITE, .path = db_path };
        return store_open_at(&loc, key_path, flags, ret, NULL);
}

static void teardown(void) {
        rm_rf(dir);
}

/* Criterion runs no .fini after a skip: the directory goes before it. */
void pg_only(void) {
        if (pg_uri)
                return;
        rm_rf(dir);
        cr_skip_test("PostgreSQL only (tests/pg-run.sh)");
}

void sqlite_only(void) {
        if (!pg_uri)
                return;
        rm_rf(dir);
        cr_skip_test("SQLite only");
}

TestSuite(store, .init = setup, .fini = teardown);

mef_store_t *open_new(void) {
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), 0);
        cr_assert_not_null(s);
        return s;
}

void recognisable_key(uint8_t *k, size_t n, uint8_t seed) {
        for (size_t i = 0; i < n; i++)
                k[i] = (uint8_t) (0xA5 ^ (seed + 7 * i));
}

store_node_t psk_node(const char *id, const char *kpm_id) {
        store_node_t n = { .poll = 3600, .lifetime = 86400, .state = NODE_ACTIVE, .n_targets = 2 };
        snprintf(n.node_id, sizeof n.node_id, "%s", id);
        snprintf(n.kpm_id, sizeof n.kpm_id, "%s", kpm_id);
        snprintf(n.cse_id, sizeof n.cse_id, "/mn-%s", id);
        snprintf(n.cse_base, sizeof n.cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        snprintf(n.targets[0], sizeof n.targets[0], "/in-cse");
        snprintf(n.targets[1], sizeof n.targets[1], "/maf-01");
        return n;
}

void add_psk_nodes(mef_store_t *s, const char *ids, const uint8_t *kpm, size_t kpm_len) {
        for (const char *p = ids; *p; p++) {
                char id[2] = { *p, 0 }, kpm_id[8];
                snprintf(kpm_id, sizeof kpm_id, "kpm-%s", id);
                store_node_t n = psk_node(id, kpm_id);
                cr_assert_eq(store_node_add(s, &n, kpm, kpm_len), 0, "node %s", id);
        }
}

mef_store_t *open_psk_nodes(const char *ids, uint8_t kpm[32], uint8_t seed) {
        mef_store_t *s = open_new();
        recognisable_key(kpm, 32, seed);
        add_psk_nodes(s, ids, kpm, 32);
        return s;
}

store_node_t cert_node(const char *id, char c) {
        store_node_t n = { .poll = 60, .lifetime = 600, .state = NODE_ACTIVE, .ltk_transported = true };
        snprintf(n.node_id, sizeof n.node_id, "%s", id);
        memset(n.cert_fp, c, STORE_FP_LEN);
        n.cert_fp[STORE_FP_LEN] = 0;
        snprintf(n.cse_id, sizeof n.cse_id, "/mn-%s", id);
        snprintf(n.cse_base, sizeof n.cse_base, "https://in.example.net/base");
        return n;
}

store_enrolment_t enrolment(const char *ke_id, const char *node_id, int64_t created) {
        store_enrolment_t e = { .state = ENROLMENT_ACTIVE, .created = created, .exp = created + 86400 };
        snprintf(e.ke_id, sizeof e.ke_id, "%s", ke_id);
        snprintf(e.node_id, sizeof e.node_id, "%s", node_id);
        return e;
}

mef_store_t *open_keyed(uint8_t *kpm, size_t n, uint8_t seed) {
        recognisable_key(kpm, n, seed);
        return open_new();
}

store_enrolment_t enrolment_as(const char *ke_id, const char *node_id, int64_t created, enrolment_state_t state) {
        store_enrolment_t e = enrolment(ke_id, node_id, created);
        e.state = state;
        return e;
}

void assert_audit(mef_store_t *s, size_t want, const char *newest, const char *oldest) {
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        int r = store_audit_list(s, 0, &list, &n);
        bool ok = r == 0 && n == want && (!newest || streq(list[0].subject, newest)) &&
                  (!oldest || streq(list[n - 1].subject, oldest));
        free(list);
        cr_assert(ok, "%d, %zu audit rows (want %zu, %s .. %s)", r, n, want, newest ? newest : "-",
                  oldest ? oldest : "-");
}

mef_store_t *open_with(const char *ids, uint8_t seed, store_enrolment_t *const es[]) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32];
        recognisable_key(kpm, sizeof kpm, seed);
        recognisable_key(ke, sizeof ke, (uint8_t) (seed + 1));
        add_psk_nodes(s, ids, kpm, sizeof kpm);
        for (size_t i = 0; es[i]; i++)
                cr_assert_eq(store_enrolment_add(s, es[i], ke, sizeof ke), 0, "enrolment %s", es[i]->ke_id);
        return s;
}

void sql_exec(const char *sql, const void *blob, int blob_len) {
#if HAVE_LIBPQ
        if (pg_uri) {
                pg_exec(sql, blob, blob_len);
                return;
        }
#endif
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
        if (blob)
                cr_assert_eq(sqlite3_bind_blob(st, 1, blob, blob_len, SQLITE_TRANSIENT), SQLITE_OK);
        cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "%s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        sqlite3_close(db);
}

int blob_read(const char *sql, uint8_t *out, size_t size) {
#if HAVE_LIBPQ
        if (pg_uri)
                return pg_blob_read(sql, out, size);
#endif
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
        int n = sqlite3_column_bytes(st, 0);
        cr_assert_leq((size_t) n, size);
        memcpy(out, sqlite3_column_blob(st, 0), (size_t) n);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
}

char *sql_rows(const char *sql) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        cr_assert_not_null(f);
#if HAVE_LIBPQ
        if (pg_uri) {
                PGconn *c = pg_connect();
                PGresult *res = PQexec(c, sql);
                cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
                for (int i = 0; i < PQntuples(res); i++)
                        for (int j = 0; j < PQnfields(res); j++)
                                fprintf(f, "%s%c", PQgetvalue(res, i, j), j + 1 < PQnfields(res) ? '|' : '\n');
                PQclear(res);
                PQfinish(c);
                cr_assert_eq(fclose(f), 0);
                return text;
        }
#endif
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        /* read-write: SQLite leaves a write's CHECK out of its EXPLAIN on a read-only connection */
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                for (int j = 0; j < sqlite3_column_count(st); j++) {
                        const unsigned char *v = sqlite3_column_text(st, j);
                        fprintf(f, "%s%c", v ? (const char *) v : "", j + 1 < sqlite3_column_count(st) ? '|' : '\n');
                }
        cr_assert_eq(rc, SQLITE_DONE, "%s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        sqlite3_close(db);
        cr_assert_eq(fclose(f), 0);
        return text;
}

bool sql_ok(const char *sql) {
#if HAVE_LIBPQ
        if (pg_uri) {
                PGconn *c = pg_connect();
                PGresult *res = PQexec(c, sql);
                bool ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
                PQclear(res);
                PQfinish(c);
                return ok;
        }
#endif
        sqlite3 *db = NULL;
        cr_assert_eq(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        bool ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
        sqlite3_close(db);
        return ok;
}

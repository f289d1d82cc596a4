/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#if HAVE_LIBPQ
#include <libpq-fe.h>
#endif

#include "mef/store.h"
#include "util/util.h"

/* With MSCE_TEST_PG_URI (tests/pg-run.sh), every test runs on that PostgreSQL database instead
 * of a SQLite file: the same semantics are asserted on both engines. */
static char dir[] = "/tmp/test-store.XXXXXX";
static char db_path[PATH_MAX], key_path[PATH_MAX];
static const char *pg_uri, *pg_password_file;

#if HAVE_LIBPQ
static PGconn *pg_connect(void) {
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

/* Every row of every table as text (bytea as \x hex). */
static char *pg_dump_text(void) {
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
                cr_skip_test("MSCE_TEST_PG_URI given to a build without libpq");
#endif
        }
}

/* store_open() on the engine under test. */
static int open_db(unsigned flags, mef_store_t **ret) {
        if (pg_uri) {
                store_location_t loc = { .backend = STORE_BACKEND_POSTGRESQL, .uri = pg_uri,
                                         .password_file = pg_password_file };
                return store_open_at(&loc, key_path, flags, ret);
        }
        store_location_t loc = { .backend = STORE_BACKEND_SQLITE, .path = db_path };
        return store_open_at(&loc, key_path, flags, ret);
}

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

static void teardown(void) {
        rm_rf(dir);
}

TestSuite(store, .init = setup, .fini = teardown);

static mef_store_t *open_new(void) {
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), 0);
        cr_assert_not_null(s);
        return s;
}

/* A Kpm nobody would find in a database by chance. */
static void recognisable_key(uint8_t *k, size_t n, uint8_t seed) {
        for (size_t i = 0; i < n; i++)
                k[i] = (uint8_t) (0xA5 ^ (seed + 7 * i));
}

static store_node_t psk_node(const char *id, const char *kpm_id) {
        store_node_t n = { .poll = 3600, .lifetime = 86400, .state = NODE_ACTIVE, .n_targets = 2 };
        snprintf(n.node_id, sizeof n.node_id, "%s", id);
        snprintf(n.kpm_id, sizeof n.kpm_id, "%s", kpm_id);
        snprintf(n.cse_id, sizeof n.cse_id, "/mn-%s", id);
        snprintf(n.cse_base, sizeof n.cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        snprintf(n.targets[0], sizeof n.targets[0], "/in-cse");
        snprintf(n.targets[1], sizeof n.targets[1], "/maf-01");
        return n;
}

/* psk_node ID (KpmID kpm-ID) for each letter of ids, all with the same Kpm */
static void add_psk_nodes(mef_store_t *s, const char *ids, const uint8_t *kpm, size_t kpm_len) {
        for (const char *p = ids; *p; p++) {
                char id[2] = { *p, 0 }, kpm_id[8];
                snprintf(kpm_id, sizeof kpm_id, "kpm-%s", id);
                store_node_t n = psk_node(id, kpm_id);
                cr_assert_eq(store_node_add(s, &n, kpm, kpm_len), 0, "node %s", id);
        }
}

static store_node_t cert_node(const char *id, char c) {
        store_node_t n = { .poll = 60, .lifetime = 600, .state = NODE_ACTIVE, .ltk_transported = true };
        snprintf(n.node_id, sizeof n.node_id, "%s", id);
        memset(n.cert_fp, c, STORE_FP_LEN);
        n.cert_fp[STORE_FP_LEN] = 0;
        snprintf(n.cse_id, sizeof n.cse_id, "/mn-%s", id);
        snprintf(n.cse_base, sizeof n.cse_base, "https://in.example.net/base");
        return n;
}

static store_enrolment_t enrolment(const char *ke_id, const char *node_id, int64_t created) {
        store_enrolment_t e = { .state = ENROLMENT_ACTIVE, .created = created, .exp = created + 86400 };
        snprintf(e.ke_id, sizeof e.ke_id, "%s", ke_id);
        snprintf(e.node_id, sizeof e.node_id, "%s", node_id);
        return e;
}

/* ---- open, master key ---- */

Test(store, create_modes_and_reopen) {
        mef_store_t *s = open_new();
        struct stat st;
        cr_assert_eq(stat(key_path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0400, "master key mode %o", st.st_mode & 07777);
        cr_assert_eq(st.st_size, STORE_MASTER_KEY_LEN);
        char kdir[PATH_MAX];
        snprintf(kdir, sizeof kdir, "%s/keys", dir);
        cr_assert_eq(stat(kdir, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0700);
        if (!pg_uri) {
                cr_assert_eq(stat(db_path, &st), 0);
                cr_assert_eq(st.st_mode & 07777, 0600, "db mode %o", st.st_mode & 07777);
        }
        cr_assert_eq(store_audit(s, "cli", "init", NULL, NULL), 0);
        cr_assert_null(store_close(s));

        /* reopen without create, same key */
        s = NULL;
        cr_assert_eq(open_db(0, &s), 0);
        store_audit_entry_t *a = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(s, 0, &a, &n), 0);
        cr_assert_eq(n, 1);
        free(a);
        store_close(s);
        store_close(NULL);
}

Test(store, missing_without_create) {
        mef_store_t *s = (mef_store_t *) 0x1;
        cr_assert_eq(open_db(0, &s), -ENOENT);
        cr_assert_eq(s, (mef_store_t *) 0x1, "ret touched on failure");
        struct stat st;
        cr_assert_eq(stat(key_path, &st), -1, "nothing created without create");
}

Test(store, wrong_master_key) {
        store_close(open_new());
        /* replace the key with other random bytes */
        cr_assert_eq(chmod(key_path, 0600), 0);
        uint8_t k[STORE_MASTER_KEY_LEN];
        cr_assert_eq(random_bytes(k, sizeof k), 0);
        int fd = open(key_path, O_WRONLY | O_TRUNC | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, k, sizeof k), (ssize_t) sizeof k);
        close(fd);
        cr_assert_eq(chmod(key_path, 0400), 0);
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(0, &s), -EBADMSG);
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), -EBADMSG);
        cr_assert_null(s);
}

Test(store, master_key_group_readable) {
        store_close(open_new());
        cr_assert_eq(chmod(key_path, 0440), 0);
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(0, &s), -EPERM);
        cr_assert_eq(chmod(key_path, 0404), 0);
        cr_assert_eq(open_db(0, &s), -EPERM);
        cr_assert_null(s);
}

Test(store, existing_store_never_gets_a_new_key) {
        store_close(open_new());
        cr_assert_eq(unlink(key_path), 0);
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), -ENOENT);
        struct stat st;
        cr_assert_eq(stat(key_path, &st), -1, "a key that cannot open the store was created");
}

Test(store, master_key_wrong_size) {
        store_close(open_new());
        cr_assert_eq(chmod(key_path, 0600), 0);
        cr_assert_eq(truncate(key_path, 16), 0);
        mef_store_t *s = NULL;
        cr_assert_eq(open_db(0, &s), -EINVAL);
}

/* ---- states ---- */

Test(store, state_strings) {
        static const char *const ns[] = { "active", "reenrol", "revoked" };
        static const char *const es[] = { "active", "retired", "revoked", "deregistered" };
        for (int i = 0; i < _NODE_STATE_MAX; i++) {
                cr_assert_str_eq(node_state_to_string(i), ns[i]);
                cr_assert_eq(node_state_from_string(ns[i]), i);
        }
        for (int i = 0; i < _ENROLMENT_STATE_MAX; i++) {
                cr_assert_str_eq(enrolment_state_to_string(i), es[i]);
                cr_assert_eq(enrolment_state_from_string(es[i]), i);
        }
        cr_assert_null(node_state_to_string(_NODE_STATE_MAX));
        cr_assert_null(node_state_to_string(-1));
        cr_assert_eq(node_state_from_string("Active"), _NODE_STATE_INVALID);
        cr_assert_eq(node_state_from_string(NULL), _NODE_STATE_INVALID);
        cr_assert_eq(enrolment_state_from_string("retired "), _ENROLMENT_STATE_INVALID);
        cr_assert_null(enrolment_state_to_string(_ENROLMENT_STATE_MAX));
}

/* ---- nodes ---- */

Test(store, node_round_trip) {
        mef_store_t *s = open_new();
        uint8_t kpm[48], got[MSG_KEY_MAX];
        size_t len = 0;
        recognisable_key(kpm, sizeof kpm, 1);
        store_node_t n = psk_node("urn:dev:ops:1", "kpm-1");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        store_node_t c = cert_node("urn:dev:ops:2", 'a');
        cr_assert_eq(store_node_add(s, &c, NULL, 0), 0);

        store_node_t r;
        cr_assert_eq(store_node_get(s, "urn:dev:ops:1", &r), 0);
        cr_assert_str_eq(r.node_id, "urn:dev:ops:1");
        cr_assert_str_eq(r.kpm_id, "kpm-1");
        cr_assert_str_eq(r.cert_fp, "");
        cr_assert_str_eq(r.cse_id, "/mn-urn:dev:ops:1");
        cr_assert_str_eq(r.cse_base, n.cse_base);
        cr_assert_eq(r.n_targets, 2);
        cr_assert_str_eq(r.targets[0], "/in-cse");
        cr_assert_str_eq(r.targets[1], "/maf-01");
        cr_assert_eq(r.poll, 3600);
        cr_assert_eq(r.lifetime, 86400);
        cr_assert_eq(r.state, NODE_ACTIVE);
        cr_assert(!r.ltk_transported);
        cr_assert_gt(r.created, 1600000000, "created defaults to now");

        cr_assert_eq(store_node_by_kpm_id(s, "kpm-1", &r, got, &len), 0);
        cr_assert_str_eq(r.node_id, "urn:dev:ops:1");
        cr_assert_eq(len, sizeof kpm);
        cr_assert_arr_eq(got, kpm, sizeof kpm);

        cr_assert_eq(store_node_by_cert(s, c.cert_fp, &r), 0);
        cr_assert_str_eq(r.node_id, "urn:dev:ops:2");
        cr_assert_str_eq(r.kpm_id, "");
        cr_assert_str_eq(r.cert_fp, c.cert_fp);
        cr_assert_eq(r.n_targets, 0);
        cr_assert(r.ltk_transported);

        store_node_t untouched = { .poll = 77 };
        size_t len2 = 5;
        cr_assert_eq(store_node_get(s, "urn:dev:ops:3", &untouched), -ENOENT);
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-2", &untouched, got, &len2), -ENOENT);
        cr_assert_eq(store_node_by_cert(s, "ffff", &untouched), -ENOENT);
        cr_assert_eq(untouched.poll, 77);
        cr_assert_eq(len2, 5);

        store_node_t *list = NULL;
        size_t nl = 0;
        cr_assert_eq(store_node_list(s, &list, &nl), 0);
        cr_assert_eq(nl, 2);
        cr_assert_str_eq(list[0].node_id, "urn:dev:ops:1");
        cr_assert_str_eq(list[1].node_id, "urn:dev:ops:2");
        free(list);

        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", NODE_REENROL), 0);
        cr_assert_eq(store_node_get(s, "urn:dev:ops:1", &r), 0);
        cr_assert_eq(r.state, NODE_REENROL);
        cr_assert_eq(store_node_set_state(s, "nope", NODE_REVOKED), -ENOENT);
        cr_assert_eq(store_node_set_state(s, "urn:dev:ops:1", _NODE_STATE_MAX), -EINVAL);
        store_close(s);
}

Test(store, node_duplicates) {
        mef_store_t *s = open_new();
        uint8_t kpm[16];
        recognisable_key(kpm, sizeof kpm, 2);
        store_node_t n = psk_node("n1", "kpm-1");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), -EEXIST, "same node ID");
        store_node_t n2 = psk_node("n2", "kpm-1");
        cr_assert_eq(store_node_add(s, &n2, kpm, sizeof kpm), -EEXIST, "same KpmID");
        store_node_t c1 = cert_node("c1", 'b'), c2 = cert_node("c2", 'b');
        cr_assert_eq(store_node_add(s, &c1, NULL, 0), 0);
        cr_assert_eq(store_node_add(s, &c2, NULL, 0), -EEXIST, "same fingerprint");

        /* one TLS identity names one peer, node or target */
        store_target_t t = { .id = "/in-cse", .psk_id = "kpm-1" };
        cr_assert_eq(store_target_add(s, &t, kpm, sizeof kpm), -EEXIST);
        store_target_t tc = { .id = "/in-cse" };
        memcpy(tc.cert_fp, c1.cert_fp, sizeof tc.cert_fp);
        cr_assert_eq(store_target_add(s, &tc, NULL, 0), -EEXIST);
        store_target_t t2 = { .id = "/in-cse", .psk_id = "in-psk" };
        cr_assert_eq(store_target_add(s, &t2, kpm, sizeof kpm), 0);
        store_node_t n3 = psk_node("n3", "in-psk");
        cr_assert_eq(store_node_add(s, &n3, kpm, sizeof kpm), -EEXIST);

        store_node_t *list = NULL;
        size_t nl = 0;
        cr_assert_eq(store_node_list(s, &list, &nl), 0);
        cr_assert_eq(nl, 2);
        free(list);
        store_close(s);
}

Test(store, cse_id_assigned_once) {
        mef_store_t *s = open_new();
        uint8_t kpm[16];
        recognisable_key(kpm, sizeof kpm, 3);
        store_node_t n1 = psk_node("n1", "kpm-1"), n2 = psk_node("n2", "kpm-2"), c = cert_node("c1", 'c');
        cr_assert_eq(store_node_add(s, &n1, kpm, sizeof kpm), 0);
        snprintf(n2.cse_id, sizeof n2.cse_id, "%s", n1.cse_id);
        cr_assert_eq(store_node_add(s, &n2, kpm, sizeof kpm), -EADDRINUSE, "the CSE-ID of n1");
        snprintf(c.cse_id, sizeof c.cse_id, "%s", n1.cse_id);
        cr_assert_eq(store_node_add(s, &c, NULL, 0), -EADDRINUSE, "the CSE-ID of n1, for a cert node");
        /* which node holds it */
        store_node_t found;
        cr_assert_eq(store_node_by_cse_id(s, "/mn-n1", &found), 0);
        cr_assert_str_eq(found.node_id, "n1");
        cr_assert_eq(store_node_by_cse_id(s, "/mn-n2", &found), -ENOENT);
        /* case matters: CSE-IDs are compared as they are */
        snprintf(n2.cse_id, sizeof n2.cse_id, "/MN-N1");
        cr_assert_eq(store_node_add(s, &n2, kpm, sizeof kpm), 0);
        /* once n1 is gone its CSE-ID is free again */
        cr_assert_eq(store_node_remove(s, "n1"), 0);
        cr_assert_eq(store_node_add(s, &c, NULL, 0), 0);
        store_close(s);
}

Test(store, node_invalid) {
        mef_store_t *s = open_new();
        uint8_t kpm[MSG_KEY_MAX + 1] = { 0 };
        store_node_t n = psk_node("n1", "kpm-1");
        cr_assert_eq(store_node_add(s, &n, kpm, 15), -EINVAL, "short Kpm");
        cr_assert_eq(store_node_add(s, &n, kpm, MSG_KEY_MAX + 1), -EINVAL, "long Kpm");
        cr_assert_eq(store_node_add(s, &n, NULL, 0), -EINVAL, "psk without Kpm");
        store_node_t both = n;
        memset(both.cert_fp, 'a', STORE_FP_LEN);
        cr_assert_eq(store_node_add(s, &both, kpm, 32), -EINVAL, "psk and cert");
        store_node_t c = cert_node("c1", 'A');
        cr_assert_eq(store_node_add(s, &c, NULL, 0), -EINVAL, "uppercase fingerprint");
        c = cert_node("c1", 'a');
        c.cert_fp[10] = 0;
        cr_assert_eq(store_node_add(s, &c, NULL, 0), -EINVAL, "short fingerprint");
        store_node_t bad = n;
        strcpy(bad.node_id, "with space");
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        bad = n;
        bad.poll = STORE_POLL_MIN - 1;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        bad = n;
        bad.lifetime = STORE_LIFETIME_MAX + 1;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        bad = n;
        bad.n_targets = MSG_TARGETS_MAX + 1;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        bad = n;
        bad.targets[1][0] = 0;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL, "empty target");
        bad = n;
        bad.state = _NODE_STATE_MAX;
        cr_assert_eq(store_node_add(s, &bad, kpm, 32), -EINVAL);
        /* and the good one still goes in */
        cr_assert_eq(store_node_add(s, &n, kpm, MSG_KEY_MAX), 0);
        store_close(s);
}

Test(store, remove_cascades_enrolments) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32];
        recognisable_key(kpm, sizeof kpm, 3);
        recognisable_key(ke, sizeof ke, 4);
        add_psk_nodes(s, "ab", kpm, sizeof kpm);
        store_enrolment_t e1 = enrolment("11@mef", "a", 1000), e2 = enrolment("22@mef", "a", 2000),
                          e3 = enrolment("33@mef", "b", 3000);
        e1.state = ENROLMENT_RETIRED; /* one active enrolment per node */
        cr_assert_eq(store_enrolment_add(s, &e1, ke, sizeof ke), 0);
        cr_assert_eq(store_enrolment_add(s, &e2, ke, sizeof ke), 0);
        cr_assert_eq(store_enrolment_add(s, &e3, ke, sizeof ke), 0);

        cr_assert_eq(store_node_remove(s, "a"), 0);
        cr_assert_eq(store_node_remove(s, "a"), -ENOENT);
        store_enrolment_t got;
        cr_assert_eq(store_enrolment_get(s, "11@mef", &got, NULL, NULL), -ENOENT);
        cr_assert_eq(store_enrolment_get(s, "22@mef", &got, NULL, NULL), -ENOENT);
        cr_assert_eq(store_enrolment_get(s, "33@mef", &got, NULL, NULL), 0);
        store_enrolment_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_enrolment_list(s, NULL, &list, &n), 0);
        cr_assert_eq(n, 1);
        free(list);
        /* the KpmID is free again */
        add_psk_nodes(s, "a", kpm, sizeof kpm);
        store_close(s);
}

/* ---- targets ---- */

Test(store, targets) {
        mef_store_t *s = open_new();
        uint8_t psk[24], got[MSG_KEY_MAX];
        size_t len = 0;
        recognisable_key(psk, sizeof psk, 5);
        store_target_t t = { .id = "/in-cse", .psk_id = "in-cse-psk", .created = 1700000000 };
        cr_assert_eq(store_target_add(s, &t, psk, sizeof psk), 0);
        store_target_t c = { .id = "/maf-01" };
        memset(c.cert_fp, 'c', STORE_FP_LEN);
        cr_assert_eq(store_target_add(s, &c, NULL, 0), 0);
        cr_assert_eq(store_target_add(s, &t, psk, sizeof psk), -EEXIST);
        store_target_t bad = { .id = "/x", .psk_id = "p" };
        cr_assert_eq(store_target_add(s, &bad, psk, 8), -EINVAL);
        store_target_t none = { .id = "/x" };
        cr_assert_eq(store_target_add(s, &none, NULL, 0), -EINVAL, "neither psk nor cert");

        store_target_t r;
        cr_assert_eq(store_target_by_psk_id(s, "in-cse-psk", &r, got, &len), 0);
        cr_assert_str_eq(r.id, "/in-cse");
        cr_assert_eq(r.created, 1700000000);
        cr_assert_eq(len, sizeof psk);
        cr_assert_arr_eq(got, psk, sizeof psk);
        cr_assert_eq(store_target_by_cert(s, c.cert_fp, &r), 0);
        cr_assert_str_eq(r.id, "/maf-01");
        cr_assert_str_eq(r.psk_id, "");
        cr_assert_eq(store_target_by_psk_id(s, "nope", &r, got, &len), -ENOENT);

        store_target_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_target_list(s, &list, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(list[0].id, "/in-cse");
        cr_assert_str_eq(list[1].id, "/maf-01");
        free(list);
        cr_assert_eq(store_target_remove(s, "/in-cse"), 0);
        cr_assert_eq(store_target_remove(s, "/in-cse"), -ENOENT);
        cr_assert_eq(store_target_by_psk_id(s, "in-cse-psk", &r, got, &len), -ENOENT);
        store_close(s);
}

/* ---- enrolments ---- */

Test(store, enrolments) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke1[32], ke2[64], got[MSG_KEY_MAX];
        size_t len = 0;
        recognisable_key(kpm, sizeof kpm, 6);
        recognisable_key(ke1, sizeof ke1, 7);
        recognisable_key(ke2, sizeof ke2, 8);
        add_psk_nodes(s, "ab", kpm, sizeof kpm);

        store_enrolment_t e1 = enrolment("0001@mef.example", "a", 1000);
        store_enrolment_t e2 = enrolment("0002@mef.example", "a", 2000);
        store_enrolment_t e3 = enrolment("0003@mef.example", "b", 1500);
        e2.ltk_transported = true;
        cr_assert_eq(store_enrolment_add(s, &e1, ke1, sizeof ke1), 0);
        /* at most one active enrolment per node, whoever writes */
        cr_assert_eq(store_enrolment_add(s, &e2, ke2, sizeof ke2), -EEXIST);
        cr_assert_eq(store_enrolment_set_state(s, "0001@mef.example", ENROLMENT_RETIRED), 0);
        cr_assert_eq(store_enrolment_add(s, &e2, ke2, sizeof ke2), 0);
        cr_assert_eq(store_enrolment_add(s, &e3, ke1, sizeof ke1), 0);
        cr_assert_eq(store_enrolment_add(s, &e3, ke1, sizeof ke1), -EEXIST);
        store_enrolment_t orphan = enrolment("0004@mef.example", "nobody", 1);
        cr_assert_eq(store_enrolment_add(s, &orphan, ke1, sizeof ke1), -ENOENT, "unknown node");
        cr_assert_eq(store_enrolment_add(s, &e1, ke1, 8), -EINVAL);

        store_enrolment_t r;
        cr_assert_eq(store_enrolment_get(s, "0002@mef.example", &r, got, &len), 0);
        cr_assert_str_eq(r.node_id, "a");
        cr_assert_eq(r.state, ENROLMENT_ACTIVE);
        cr_assert_eq(r.created, 2000);
        cr_assert_eq(r.exp, 2000 + 86400);
        cr_assert(r.ltk_transported);
        cr_assert_eq(len, sizeof ke2);
        cr_assert_arr_eq(got, ke2, sizeof ke2);
        cr_assert_eq(store_enrolment_get(s, "0002@mef.example", &r, got, NULL), -EINVAL);
        cr_assert_eq(store_enrolment_get(s, "nope", &r, got, &len), -ENOENT);

        /* newest first */
        store_enrolment_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_enrolment_list(s, NULL, &list, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert_str_eq(list[0].ke_id, "0002@mef.example");
        cr_assert_str_eq(list[1].ke_id, "0003@mef.example");
        cr_assert_str_eq(list[2].ke_id, "0001@mef.example");
        free(list);
        cr_assert_eq(store_enrolment_list(s, "a", &list, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(list[0].ke_id, "0002@mef.example");
        cr_assert_str_eq(list[1].ke_id, "0001@mef.example");
        free(list);
        cr_assert_eq(store_enrolment_list(s, "nobody", &list, &n), 0);
        cr_assert_eq(n, 0);
        free(list);

        cr_assert_eq(store_enrolment_set_state(s, "0001@mef.example", ENROLMENT_RETIRED), 0);
        cr_assert_eq(store_enrolment_set_state(s, "nope", ENROLMENT_RETIRED), -ENOENT);
        cr_assert_eq(store_enrolment_set_state(s, "0001@mef.example", _ENROLMENT_STATE_MAX), -EINVAL);
        /* only active ones of that node change */
        cr_assert_eq(store_enrolment_set_state_for_node(s, "a", ENROLMENT_REVOKED), 0);
        cr_assert_eq(store_enrolment_get(s, "0001@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_RETIRED);
        cr_assert_eq(store_enrolment_get(s, "0002@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_REVOKED);
        cr_assert_eq(store_enrolment_get(s, "0003@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_ACTIVE);
        cr_assert_eq(store_enrolment_set_state_for_node(s, "nobody", ENROLMENT_REVOKED), 0);
        cr_assert_eq(store_enrolment_set_state(s, "0003@mef.example", ENROLMENT_DEREGISTERED), 0);
        cr_assert_eq(store_enrolment_get(s, "0003@mef.example", &r, NULL, NULL), 0);
        cr_assert_eq(r.state, ENROLMENT_DEREGISTERED);
        store_close(s);
}

Test(store, transaction_rollback) {
        mef_store_t *s = open_new();
        uint8_t kpm[32];
        recognisable_key(kpm, sizeof kpm, 9);
        store_node_t a = psk_node("a", "kpm-a"), b = psk_node("b", "kpm-b");
        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        cr_assert_eq(store_audit(s, "cli", "node-add", "a", NULL), 0);
        store_rollback(s);
        store_node_t r;
        cr_assert_eq(store_node_get(s, "a", &r), -ENOENT);
        store_audit_entry_t *list = NULL;
        size_t n = 9;
        cr_assert_eq(store_audit_list(s, 0, &list, &n), 0);
        cr_assert_eq(n, 0);
        free(list);
        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_node_add(s, &b, kpm, sizeof kpm), 0);
        cr_assert_eq(store_commit(s), 0);
        cr_assert_eq(store_node_get(s, "b", &r), 0);
        store_rollback(s); /* outside a transaction: harmless */
        store_close(s);
}

/* An enrolment as the MEF stores one (mef/handlers-enrol.c): the first error of the chain. */
static int enrol_exchange(mef_store_t *s, const store_enrolment_t *e, const uint8_t *ke, size_t n) {
        int r = store_begin(s);
        if (r >= 0)
                r = store_enrolment_set_state_for_node(s, e->node_id, ENROLMENT_RETIRED);
        if (r >= 0)
                r = store_enrolment_add(s, e, ke, n);
        if (r >= 0)
                r = store_audit(s, "peer", "enrol", e->ke_id, NULL);
        if (r >= 0)
                r = store_commit(s);
        if (r < 0)
                store_rollback(s);
        return r;
}

/* The audit rows: that many, the newest (when given) about newest and the oldest about oldest. */
static void assert_audit(mef_store_t *s, size_t want, const char *newest, const char *oldest) {
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        int r = store_audit_list(s, 0, &list, &n);
        bool ok = r == 0 && n == want && (!newest || streq(list[0].subject, newest)) &&
                  (!oldest || streq(list[n - 1].subject, oldest));
        free(list);
        cr_assert(ok, "%d, %zu audit rows (want %zu, %s .. %s)", r, n, want, newest ? newest : "-",
                  oldest ? oldest : "-");
}

static void assert_enrolment_state(mef_store_t *s, const char *ke_id, enrolment_state_t want) {
        store_enrolment_t r;
        cr_assert_eq(store_enrolment_get(s, ke_id, &r, NULL, NULL), 0, "%s", ke_id);
        cr_assert_eq(r.state, want, "%s: state %d", ke_id, r.state);
}

/* On PostgreSQL the INSERTs are queued (pipelined) and their error comes with the COMMIT: the
 * same -errno as at once on SQLite, and nothing of the exchange stays. */
Test(store, transaction_failed_write_leaves_store) {
        mef_store_t *s = open_new();
        uint8_t ke[32]; /* the nodes' Kpm too: nothing here reads a key back */
        recognisable_key(ke, sizeof ke, 10);
        add_psk_nodes(s, "ab", ke, sizeof ke);
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000), b1 = enrolment("b1@mef", "b", 1000);
        cr_assert_eq(enrol_exchange(s, &a1, ke, sizeof ke), 0);
        cr_assert_eq(enrol_exchange(s, &b1, ke, sizeof ke), 0);

        /* node b again, with a KeID that is a's */
        store_enrolment_t dup = enrolment("a1@mef", "b", 2000);
        cr_assert_eq(enrol_exchange(s, &dup, ke, sizeof ke), -EEXIST);
        store_enrolment_t orphan = enrolment("x1@mef", "nobody", 2000);
        cr_assert_eq(enrol_exchange(s, &orphan, ke, sizeof ke), -ENOENT);
        assert_enrolment_state(s, "b1@mef", ENROLMENT_ACTIVE); /* the retirement went back too */
        store_enrolment_t r;
        cr_assert_eq(store_enrolment_get(s, "a1@mef", &r, NULL, NULL), 0);
        cr_assert_str_eq(r.node_id, "a");
        assert_audit(s, 2, "b1@mef", "a1@mef"); /* only the exchanges that went through */

        /* a failure in the middle: the next calls of the transaction get it, the commit too */
        cr_assert_eq(store_begin(s), 0);
        int q = store_enrolment_add(s, &dup, ke, sizeof ke);
        cr_assert(q == 0 || q == -EEXIST, "%d", q); /* PostgreSQL: only queued */
        cr_assert_eq(store_enrolment_get(s, "b1@mef", &r, NULL, NULL), q == 0 ? -EEXIST : 0);
        cr_assert_eq(store_commit(s), q == 0 ? -EEXIST : 0);
        store_rollback(s);

        /* and the store goes on: a re-enrolment retires the previous one */
        store_enrolment_t b2 = enrolment("b2@mef", "b", 3000);
        cr_assert_eq(enrol_exchange(s, &b2, ke, sizeof ke), 0);
        assert_enrolment_state(s, "b1@mef", ENROLMENT_RETIRED);
        assert_enrolment_state(s, "b2@mef", ENROLMENT_ACTIVE);
        store_close(s);
}

/* PostgreSQL prepares statements on first use, inside the pipeline: an error before a prepare
 * leaves it unmade, and the statement's next use must prepare it again. */
Test(store, transaction_failed_at_first_use) {
        mef_store_t *s = open_new();
        uint8_t ke[32];
        recognisable_key(ke, sizeof ke, 12);
        add_psk_nodes(s, "ab", ke, sizeof ke);
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000);
        cr_assert_eq(store_enrolment_add(s, &a1, ke, sizeof ke), 0);
        /* the audit INSERT's first use comes after the failing enrolment INSERT */
        store_enrolment_t dup = enrolment("a1@mef", "b", 2000), b1 = enrolment("b1@mef", "b", 2000);
        cr_assert_eq(enrol_exchange(s, &dup, ke, sizeof ke), -EEXIST);
        cr_assert_eq(enrol_exchange(s, &b1, ke, sizeof ke), 0);
        assert_audit(s, 1, "b1@mef", NULL);
        store_close(s);
}

/* More queued statements than PostgreSQL's engine sends before reading their results (256):
 * they all land, or none when one fails. */
Test(store, transaction_long_queue) {
        mef_store_t *s = open_new();
        char subject[16];
        cr_assert_eq(store_begin(s), 0);
        for (int i = 0; i < 300; i++) {
                snprintf(subject, sizeof subject, "row-%d", i);
                cr_assert_eq(store_audit(s, "cli", "test", subject, NULL), 0);
        }
        cr_assert_eq(store_commit(s), 0);
        int r = store_begin(s);
        for (int i = 0; r >= 0 && i < 300; i++)
                r = i == 280 ? store_enrolment_set_state(s, "nope", ENROLMENT_RETIRED)
                             : store_audit(s, "cli", "test-2", "x", NULL);
        if (r >= 0)
                r = store_commit(s);
        cr_assert_eq(r, -ENOENT);
        store_rollback(s);
        assert_audit(s, 300, "row-299", "row-0"); /* the first transaction's only */
        store_close(s);
}

#if HAVE_LIBPQ
/* Rows of a query on the test's own connection: a count. */
static long pg_count(const char *sql) {
        PGconn *c = pg_connect();
        PGresult *res = PQexec(c, sql);
        cr_assert_eq(PQresultStatus(res), PGRES_TUPLES_OK, "%s", PQerrorMessage(c));
        long n = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        PQfinish(c);
        return n;
}

/* The connection lost in the middle of a pipelined transaction: the rest of it must not run on
 * a new connection outside it. It fails as transient up to its end, nothing of it is stored,
 * and the store reconnects after. */
Test(store, pg_connection_lost_in_transaction) {
        if (!pg_uri)
                cr_skip_test("PostgreSQL only (tests/pg-run.sh)");
        mef_store_t *s = open_new();
        uint8_t ke[32];
        recognisable_key(ke, sizeof ke, 13);
        add_psk_nodes(s, "a", ke, sizeof ke);
        store_enrolment_t a1 = enrolment("a1@mef", "a", 1000), a2 = enrolment("a2@mef", "a", 2000), got;
        cr_assert_eq(enrol_exchange(s, &a1, ke, sizeof ke), 0);

        cr_assert_eq(store_begin(s), 0);
        cr_assert_eq(store_enrolment_set_state_for_node(s, "a", ENROLMENT_RETIRED), 0);
        cr_assert_eq(pg_count("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = 'msce-mef'"), 1);
        uint64_t end = now_usec() + 10000000u;
        while (pg_count("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'msce-mef'") > 0)
                cr_assert_lt(now_usec(), end, "the store's backend did not end");
        int r = store_enrolment_add(s, &a2, ke, sizeof ke);
        cr_assert(store_error_is_transient(r), "%d", r);
        /* longer than a reconnect takes (twice a second): still refused */
        for (end = now_usec() + 1200000u; now_usec() < end; usleep(20000)) {
                r = store_enrolment_get(s, "a1@mef", &got, NULL, NULL);
                cr_assert(store_error_is_transient(r), "%d: a call of the lost transaction ran outside it", r);
        }
        r = store_commit(s);
        cr_assert(store_error_is_transient(r), "%d", r);
        store_rollback(s);

        end = now_usec() + 10000000u;
        while ((r = store_enrolment_get(s, "a1@mef", &got, NULL, NULL)) != 0) {
                cr_assert(store_error_is_transient(r), "%d", r);
                cr_assert_lt(now_usec(), end, "no reconnect");
                usleep(20000);
        }
        cr_assert_eq(got.state, ENROLMENT_ACTIVE, "the lost transaction's retirement stayed");
        cr_assert_eq(store_enrolment_get(s, "a2@mef", &got, NULL, NULL), -ENOENT);
        cr_assert_eq(enrol_exchange(s, &a2, ke, sizeof ke), 0);
        store_close(s);
}
#endif

/* ---- secrets at rest ---- */

static bool file_contains(const char *path, const uint8_t *needle, size_t n) {
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        if (file_read_all(path, 64u << 20, &buf, &len) < 0)
                return false;
        return len >= n && memmem(buf, len, needle, n) != NULL;
}

static void assert_nowhere(const uint8_t *needle, size_t n, const char *what) {
        static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };
        char p[PATH_MAX + 16];
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                snprintf(p, sizeof p, "%s%s", db_path, suffixes[i]);
                cr_assert(!file_contains(p, needle, n), "%s found in %s", what, p);
        }
}

#if HAVE_LIBPQ
/* PostgreSQL: the rows as text, bytea in hex: neither the bytes nor their hex may show. */
static void pg_assert_nowhere(const char *text, const uint8_t *needle, size_t n, const char *what) {
        char hex[2 * 32 + 1];
        cr_assert_leq(n, 32u);
        hex_encode(needle, n, hex);
        cr_assert_null(memmem(text, strlen(text), needle, n), "%s found in the database", what);
        cr_assert_null(strstr(text, hex), "%s found (hex) in the database", what);
}
#endif

Test(store, no_plaintext_keys_in_database) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], psk[32], ke[32];
        memcpy(kpm, "KPM-PLAINTEXT-MUST-NOT-BE-STORED", 32);
        memcpy(psk, "TARGET-PSK-MUST-NOT-BE-STORED!!!", 32);
        memcpy(ke, "ENROLMENT-KEY-MUST-NOT-BE-STORED", 32);
        store_node_t n = psk_node("n", "kpm-n");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        store_target_t t = { .id = "/in-cse", .psk_id = "in-psk" };
        cr_assert_eq(store_target_add(s, &t, psk, sizeof psk), 0);
        store_enrolment_t e = enrolment("abcd@mef", "n", 1000);
        cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);

        if (pg_uri) {
#if HAVE_LIBPQ
                store_close(s);
                _cleanup_free_ char *text = pg_dump_text();
                cr_assert_not_null(strstr(text, "kpm-n"), "the positive control: a KpmID is stored in clear");
                pg_assert_nowhere(text, kpm, 16, "Kpm");
                pg_assert_nowhere(text, psk, 16, "target PSK");
                pg_assert_nowhere(text, ke, 16, "enrolment key");
#endif
                return;
        }
        /* the positive control: the scan does find what is stored in clear */
        uint8_t id[] = "kpm-n";
        char wal[PATH_MAX + 8];
        snprintf(wal, sizeof wal, "%s-wal", db_path);
        cr_assert(file_contains(db_path, id, 5) || file_contains(wal, id, 5), "scan finds nothing at all");

        /* while open (data in the WAL), and after close (checkpointed into the file) */
        for (int pass = 0; pass < 2; pass++) {
                assert_nowhere(kpm, 16, "Kpm");
                assert_nowhere(psk, 16, "target PSK");
                assert_nowhere(ke, 16, "enrolment key");
                if (pass == 0)
                        s = store_close(s);
        }
        cr_assert(file_contains(db_path, id, 5), "checkpointed database lacks the KpmID");
}

static void sql_exec(const char *sql, const void *blob, int blob_len) {
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

static int blob_read(const char *sql, uint8_t *out, size_t size) {
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

Test(store, tampered_ciphertext_is_refused) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32], got[MSG_KEY_MAX], blob[256];
        size_t len = 0;
        recognisable_key(kpm, sizeof kpm, 10);
        recognisable_key(ke, sizeof ke, 11);
        add_psk_nodes(s, "ab", kpm, sizeof kpm);
        /* same ID as node b: only the AAD's table prefix tells their blobs apart */
        store_target_t t = { .id = "b", .psk_id = "in-psk" };
        cr_assert_eq(store_target_add(s, &t, kpm, sizeof kpm), 0);
        store_enrolment_t e = enrolment("abcd@mef", "a", 1000);
        cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);
        store_node_t r;
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-a", &r, got, &len), 0);

        /* one flipped ciphertext bit */
        int n = blob_read("SELECT kpm_enc FROM nodes WHERE node_id = 'a'", blob, sizeof blob);
        cr_assert_eq(n, 12 + 32 + 16, "nonce || ciphertext || tag");
        blob[12 + 5] ^= 0x01;
        sql_exec("UPDATE nodes SET kpm_enc = ?1 WHERE node_id = 'a'", blob, n);
        store_node_t untouched = { .poll = 42 };
        len = 7;
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-a", &untouched, got, &len), -EBADMSG);
        cr_assert_eq(untouched.poll, 42);
        cr_assert_eq(len, 7);

        /* a valid blob moved to another row: the AAD binds it to its node */
        n = blob_read("SELECT kpm_enc FROM nodes WHERE node_id = 'b'", blob, sizeof blob);
        sql_exec("UPDATE nodes SET kpm_enc = ?1 WHERE node_id = 'a'", blob, n);
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-a", &r, got, &len), -EBADMSG);
        cr_assert_eq(store_node_by_kpm_id(s, "kpm-b", &r, got, &len), 0);
        cr_assert_arr_eq(got, kpm, sizeof kpm);
        /* or to another table, even to a row with the same ID */
        sql_exec("UPDATE targets SET psk_enc = ?1", blob, n);
        store_target_t tr;
        cr_assert_eq(store_target_by_psk_id(s, "in-psk", &tr, got, &len), -EBADMSG);

        /* truncated blob, tampered tag */
        n = blob_read("SELECT key_enc FROM enrolments", blob, sizeof blob);
        blob[n - 1] ^= 0x80;
        sql_exec("UPDATE enrolments SET key_enc = ?1", blob, n);
        store_enrolment_t er;
        cr_assert_eq(store_enrolment_get(s, "abcd@mef", &er, got, &len), -EBADMSG);
        cr_assert_eq(store_enrolment_get(s, "abcd@mef", &er, NULL, NULL), 0, "the row itself is fine");
        sql_exec("UPDATE enrolments SET key_enc = ?1", blob, 20);
        cr_assert_eq(store_enrolment_get(s, "abcd@mef", &er, got, &len), -EBADMSG);

        /* the check value too: the store no longer opens */
        store_close(s);
        n = blob_read("SELECT value FROM meta WHERE name = 'check'", blob, sizeof blob);
        blob[0] ^= 1;
        sql_exec("UPDATE meta SET value = ?1 WHERE name = 'check'", blob, n);
        s = NULL;
        cr_assert_eq(open_db(0, &s), -EBADMSG);
}

/* ---- schema versions ---- */

Test(store, schema_newer_is_refused_older_is_migrated) {
        mef_store_t *s = open_new();
        store_close(s);
        s = NULL;
        sql_exec(pg_uri ? "UPDATE msce_schema SET version = 99" : "PRAGMA user_version = 99", NULL, 0);
        cr_assert_eq(open_db(0, &s), -EPROTONOSUPPORT);
        cr_assert_eq(open_db(STORE_OPEN_CREATE, &s), -EPROTONOSUPPORT);
        cr_assert_eq(open_db(STORE_OPEN_MIGRATE, &s), -EPROTONOSUPPORT);
        cr_assert_null(s);

        /* back to version 1: the one-active-enrolment index is what 2 added, the status tally and
         * the pruning indexes what 3 added, the bulk import and paging indexes 4 */
        sql_exec(pg_uri ? "UPDATE msce_schema SET version = 1" : "PRAGMA user_version = 1", NULL, 0);
        sql_exec("DROP INDEX enrolments_one_active", NULL, 0);
        sql_exec("DROP INDEX audit_ts", NULL, 0);
        sql_exec("DROP INDEX enrolments_exp", NULL, 0);
        sql_exec("DROP INDEX nodes_cse_id", NULL, 0);
        sql_exec("DROP INDEX enrolments_created", NULL, 0);
        sql_exec("ALTER TABLE nodes DROP COLUMN last_seen", NULL, 0);
        sql_exec("ALTER TABLE nodes DROP COLUMN status_checks", NULL, 0);
        cr_assert_eq(open_db(0, &s), -ESTALE);
        cr_assert_null(s);
        cr_assert_eq(open_db(STORE_OPEN_MIGRATE, &s), 0);
        int from = -1, to = -1;
        cr_assert_eq(store_migrate(s, &from, &to), 0);
        cr_assert_eq(from, 1);
        cr_assert_eq(to, STORE_SCHEMA_VERSION);
        cr_assert_eq(store_migrate(s, &from, &to), 0, "again: nothing to do");
        cr_assert_eq(from, STORE_SCHEMA_VERSION);
        store_close(s);
        s = NULL;
        cr_assert_eq(open_db(0, &s), 0);
        store_close(s);
}

/* ---- one active enrolment per node, whoever writes ---- */

#define RACE_ROUNDS 40

typedef struct racer {
        int id;
        int enrolled;
} racer_t;

/* What an enrolment does (mef/handlers-enrol.c): retire the node's active enrolment, add one. */
static void *race_enrol(void *userdata) {
        racer_t *rc = userdata;
        mef_store_t *s = NULL;
        if (open_db(0, &s) < 0)
                return NULL;
        uint8_t ke[32];
        recognisable_key(ke, sizeof ke, (uint8_t) rc->id);
        for (int i = 0; i < RACE_ROUNDS; i++) {
                char ke_id[64];
                snprintf(ke_id, sizeof ke_id, "%d-%d@mef", rc->id, i);
                store_enrolment_t e = enrolment(ke_id, "racy", 1000 + i);
                int r = store_begin(s);
                if (r == 0)
                        r = store_enrolment_set_state_for_node(s, "racy", ENROLMENT_RETIRED);
                if (r == 0)
                        r = store_enrolment_add(s, &e, ke, sizeof ke);
                if (r == 0)
                        r = store_commit(s);
                if (r < 0)
                        store_rollback(s); /* busy: as the server would answer 503 */
                else
                        rc->enrolled++;
        }
        store_close(s);
        return NULL;
}

Test(store, racing_enrolments_leave_one_active) {
        mef_store_t *s = open_new();
        uint8_t kpm[32];
        recognisable_key(kpm, sizeof kpm, 12);
        store_node_t n = psk_node("racy", "kpm-racy");
        cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        racer_t racers[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
                racers[i] = (racer_t) { .id = i + 1 };
                cr_assert_eq(pthread_create(&t[i], NULL, race_enrol, &racers[i]), 0);
        }
        int total = 0;
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                total += racers[i].enrolled;
        }
        cr_assert_gt(total, 0, "no enrolment went through");
        store_enrolment_t *list = NULL;
        size_t count = 0, active = 0;
        cr_assert_eq(store_enrolment_list(s, "racy", &list, &count), 0);
        for (size_t i = 0; i < count; i++)
                active += list[i].state == ENROLMENT_ACTIVE;
        free(list);
        cr_assert_eq(count, (size_t) total, "every committed enrolment is stored");
        cr_assert_eq(active, 1u, "%zu active enrolments after %d racing ones", active, total);
        store_close(s);
}

/* ---- audit ---- */

Test(store, audit_trail) {
        mef_store_t *s = open_new();
        cr_assert_eq(store_audit(s, "cli", "node-add", "urn:dev:1", "psk id=kpm-1"), 0);
        cr_assert_eq(store_audit(s, "kpm-1", "enrol", "urn:dev:1", NULL), 0);
        char big[4000];
        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = 0;
        big[STORE_AUDIT_DETAIL_MAX - 1] = (char) 0xc3; /* a 2-byte UTF-8 sequence across the cut */
        big[STORE_AUDIT_DETAIL_MAX] = (char) 0xa9;
        cr_assert_eq(store_audit(s, "cli", "status", NULL, big), 0);
        cr_assert_eq(store_audit(s, "", "x", NULL, NULL), -EINVAL);
        cr_assert_eq(store_audit(s, "cli", NULL, NULL, NULL), -EINVAL);

        store_audit_entry_t *list = NULL;
        size_t n = 0;
        cr_assert_eq(store_audit_list(s, 0, &list, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert_str_eq(list[0].action, "status");
        cr_assert_str_eq(list[0].subject, "");
        cr_assert_eq(strlen(list[0].detail), STORE_AUDIT_DETAIL_MAX - 1, "cut before the split sequence");
        cr_assert_str_eq(list[1].actor, "kpm-1");
        cr_assert_str_eq(list[1].action, "enrol");
        cr_assert_str_eq(list[1].detail, "");
        cr_assert_str_eq(list[2].actor, "cli");
        cr_assert_str_eq(list[2].subject, "urn:dev:1");
        cr_assert_str_eq(list[2].detail, "psk id=kpm-1");
        cr_assert_gt(list[0].id, list[1].id);
        cr_assert_gt(list[2].ts, 1600000000);
        free(list);
        cr_assert_eq(store_audit_list(s, 2, &list, &n), 0);
        cr_assert_eq(n, 2);
        cr_assert_str_eq(list[1].action, "enrol");
        free(list);
        store_close(s);
}

/* The metrics gauges: an active enrolment past its exp counts as expired, other states not at all. */
Test(store, counts_active_and_expired) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32];
        recognisable_key(kpm, sizeof kpm, 5);
        recognisable_key(ke, sizeof ke, 6);
        add_psk_nodes(s, "abc", kpm, sizeof kpm);
        store_enrolment_t live = enrolment("11@mef", "a", 10000), old = enrolment("22@mef", "b", 1000),
                          retired = enrolment("33@mef", "c", 10000);
        retired.state = ENROLMENT_RETIRED;
        cr_assert_eq(store_enrolment_add(s, &live, ke, sizeof ke), 0);
        cr_assert_eq(store_enrolment_add(s, &old, ke, sizeof ke), 0);
        cr_assert_eq(store_enrolment_add(s, &retired, ke, sizeof ke), 0);
        store_counts_t n;
        /* old expires at 1000 + 86400, live at 10000 + 86400 */
        cr_assert_eq(store_counts(s, 1000 + 86400, &n), 0);
        cr_assert_eq(n.nodes, 3);
        cr_assert_eq(n.enrolments_active, 1);
        cr_assert_eq(n.enrolments_expired, 1);
        cr_assert_eq(store_counts(s, 0, &n), 0);
        cr_assert_eq(n.enrolments_active, 2);
        cr_assert_eq(n.enrolments_expired, 0);
        cr_assert_eq(store_counts(NULL, 0, &n), -EINVAL);
        store_close(s);
}

/* Status checks are a tally on the node (schema 3), not rows. */
Test(store, node_seen_counts) {
        mef_store_t *s = open_new();
        uint8_t kpm[32];
        recognisable_key(kpm, sizeof kpm, 7);
        store_node_t a = psk_node("a", "kpm-a"), got;
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_get(s, "a", &got), 0);
        cr_assert_eq(got.status_checks, 0);
        cr_assert_eq(got.last_seen, 0);
        for (int i = 1; i <= 365; i++)
                cr_assert_eq(store_node_seen(s, "a", 1000 + 86400 * i), 0);
        cr_assert_eq(store_node_get(s, "a", &got), 0);
        cr_assert_eq(got.status_checks, 365);
        cr_assert_eq(got.last_seen, 1000 + 86400 * 365);
        cr_assert_eq(store_node_seen(s, "nobody", 1), -ENOENT);
        /* a year of daily polls wrote nothing to the trail */
        store_audit_entry_t *list = NULL;
        size_t n = 9;
        cr_assert_eq(store_audit_list(s, 0, &list, &n), 0);
        cr_assert_eq(n, 0);
        free(list);
        store_close(s);
}

/* Retention: old audit rows and spent enrolments go; active ones (expired or not) and those
 * still in their lifetime stay. */
Test(store, prune_by_age) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32];
        recognisable_key(kpm, sizeof kpm, 8);
        recognisable_key(ke, sizeof ke, 9);
        add_psk_nodes(s, "ab", kpm, sizeof kpm);
        store_enrolment_t old_retired = enrolment("11@mef", "a", 100), live = enrolment("22@mef", "a", 100),
                          new_revoked = enrolment("33@mef", "b", 100000);
        old_retired.state = ENROLMENT_RETIRED;
        new_revoked.state = ENROLMENT_REVOKED;
        cr_assert_eq(store_enrolment_add(s, &old_retired, ke, sizeof ke), 0);
        cr_assert_eq(store_enrolment_add(s, &live, ke, sizeof ke), 0); /* active, expired at 86500 */
        cr_assert_eq(store_enrolment_add(s, &new_revoked, ke, sizeof ke), 0);
        for (int i = 0; i < 5; i++)
                cr_assert_eq(store_audit(s, "cli:root", "node-add", "a", "x"), 0);

        store_pruned_t p;
        /* nothing before 0 */
        cr_assert_eq(store_prune(s, 0, &p), 0);
        cr_assert_eq(p.audit, 0);
        cr_assert_eq(p.enrolments, 0);
        /* the audit rows are from now; the retired enrolment expired at 86500 */
        cr_assert_eq(store_prune(s, 100000, &p), 0);
        cr_assert_eq(p.audit, 0);
        cr_assert_eq(p.enrolments, 1);
        store_enrolment_t got;
        cr_assert_eq(store_enrolment_get(s, "11@mef", &got, NULL, NULL), -ENOENT);
        cr_assert_eq(store_enrolment_get(s, "22@mef", &got, NULL, NULL), 0);
        cr_assert_eq(store_enrolment_get(s, "33@mef", &got, NULL, NULL), 0);
        /* everything up to a day ahead: the audit rows go too, the revoked one expires at 186400 */
        cr_assert_eq(store_prune(s, (int64_t) time(NULL) + 86400, &p), 0);
        cr_assert_eq(p.audit, 5);
        cr_assert_eq(p.enrolments, 1);
        cr_assert_eq(store_enrolment_get(s, "22@mef", &got, NULL, NULL), 0, "active enrolments are never pruned");
        store_close(s);
}

/* ---- keyset pages and conflicts (bulk lifecycle) ---- */

Test(store, node_pages_walk_every_row_once) {
        mef_store_t *s = open_new();
        uint8_t kpm[32];
        recognisable_key(kpm, sizeof kpm, 10);
        char id[32], kid[32];
        for (int i = 0; i < 23; i++) {
                snprintf(id, sizeof id, "n%02d", i);
                snprintf(kid, sizeof kid, "kpm-%02d", i);
                store_node_t n = psk_node(id, kid);
                n.created = 1000 + i;
                if (i % 4 == 0)
                        n.state = NODE_REVOKED;
                cr_assert_eq(store_node_add(s, &n, kpm, sizeof kpm), 0);
        }
        store_page_t p = { .limit = 5, .state = -1 };
        char after[MSG_ID_MAX + 1] = "";
        int seen = 0, pages = 0;
        for (;;) {
                store_node_t *list = NULL;
                size_t n = 0;
                p.after = after[0] ? after : NULL;
                cr_assert_eq(store_node_page(s, &p, &list, &n), 0);
                cr_assert_leq(n, 5);
                for (size_t i = 0; i < n; i++) {
                        snprintf(id, sizeof id, "n%02d", seen++);
                        cr_assert_str_eq(list[i].node_id, id, "in order, each once");
                }
                if (n)
                        snprintf(after, sizeof after, "%s", list[n - 1].node_id);
                free(list);
                pages++;
                if (n < 5)
                        break;
        }
        cr_assert_eq(seen, 23);
        cr_assert_eq(pages, 5);

        store_node_t *list = NULL;
        size_t n = 0;
        p = (store_page_t) { .state = NODE_REVOKED };
        cr_assert_eq(store_node_page(s, &p, &list, &n), 0);
        cr_assert_eq(n, 6);
        free(list);
        p = (store_page_t) { .state = -1, .since = 1020 };
        cr_assert_eq(store_node_page(s, &p, &list, &n), 0);
        cr_assert_eq(n, 3);
        cr_assert_str_eq(list[0].node_id, "n20");
        free(list);
        p = (store_page_t) { .state = 99 };
        cr_assert_eq(store_node_page(s, &p, &list, &n), -EINVAL);
        store_close(s);
}

Test(store, enrolment_pages_newest_first) {
        mef_store_t *s = open_new();
        uint8_t kpm[32], ke[32];
        recognisable_key(kpm, sizeof kpm, 11);
        recognisable_key(ke, sizeof ke, 12);
        store_node_t a = psk_node("a", "kpm-a");
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        char ke_id[32];
        /* same created twice over: the tie is broken by insertion order */
        for (int i = 0; i < 10; i++) {
                snprintf(ke_id, sizeof ke_id, "%02x@mef", i);
                store_enrolment_t e = enrolment(ke_id, "a", 5000 + i / 2);
                e.state = i == 9 ? ENROLMENT_ACTIVE : ENROLMENT_RETIRED;
                cr_assert_eq(store_enrolment_add(s, &e, ke, sizeof ke), 0);
        }
        store_enrolment_t *all = NULL;
        size_t n_all = 0;
        cr_assert_eq(store_enrolment_list(s, NULL, &all, &n_all), 0);
        cr_assert_eq(n_all, 10);
        store_page_t p = { .limit = 3, .state = -1 };
        char after[MSG_KEID_MAX + 1] = "";
        size_t seen = 0;
        for (;;) {
                store_enrolment_t *list = NULL;
                size_t n = 0;
                p.after = after[0] ? after : NULL;
                cr_assert_eq(store_enrolment_page(s, "a", &p, &list, &n), 0);
                for (size_t i = 0; i < n; i++)
                        cr_assert_str_eq(list[i].ke_id, all[seen++].ke_id, "the order of the full list");
                if (n)
                        snprintf(after, sizeof after, "%s", list[n - 1].ke_id);
                free(list);
                if (n < 3)
                        break;
        }
        cr_assert_eq(seen, 10);
        free(all);

        store_enrolment_t *list = NULL;
        size_t n = 0;
        p = (store_page_t) { .state = ENROLMENT_ACTIVE, .expired = 1, .now = 5004 + 86400 };
        cr_assert_eq(store_enrolment_page(s, NULL, &p, &list, &n), 0);
        cr_assert_eq(n, 1, "the active one, past its exp");
        free(list);
        p.expired = -1;
        cr_assert_eq(store_enrolment_page(s, NULL, &p, &list, &n), 0);
        cr_assert_eq(n, 0);
        free(list);
        p = (store_page_t) { .state = -1, .after = "ff@mef" };
        cr_assert_eq(store_enrolment_page(s, NULL, &p, &list, &n), -ENOENT);
        store_close(s);
}

Test(store, audit_pages_and_filters) {
        mef_store_t *s = open_new();
        for (int i = 0; i < 12; i++)
                cr_assert_eq(store_audit(s, "cli:root", i % 3 ? "node-add" : "prune", "x", NULL), 0);
        store_page_t p = { .limit = 5, .state = -1 };
        int64_t last = INT64_MAX;
        size_t seen = 0;
        for (;;) {
                store_audit_entry_t *list = NULL;
                size_t n = 0;
                cr_assert_eq(store_audit_page(s, &p, &list, &n), 0);
                for (size_t i = 0; i < n; i++) {
                        cr_assert_lt(list[i].id, last);
                        last = list[i].id;
                        seen++;
                }
                if (n)
                        p.after_id = list[n - 1].id;
                free(list);
                if (n < 5)
                        break;
        }
        cr_assert_eq(seen, 12);
        store_audit_entry_t *list = NULL;
        size_t n = 0;
        p = (store_page_t) { .action = "prune" };
        cr_assert_eq(store_audit_page(s, &p, &list, &n), 0);
        cr_assert_eq(n, 4);
        free(list);
        p = (store_page_t) { .since = (int64_t) time(NULL) + 3600 };
        cr_assert_eq(store_audit_page(s, &p, &list, &n), 0);
        cr_assert_eq(n, 0);
        free(list);
        store_close(s);
}

Test(store, node_conflict_names_the_field) {
        mef_store_t *s = open_new();
        uint8_t kpm[32];
        recognisable_key(kpm, sizeof kpm, 13);
        store_node_t a = psk_node("a", "kpm-a"), c = cert_node("c", 'c');
        cr_assert_eq(store_node_add(s, &a, kpm, sizeof kpm), 0);
        cr_assert_eq(store_node_add(s, &c, NULL, 0), 0);
        store_target_t t = { .id = "/in-cse", .psk_id = "kpm-t" };
        cr_assert_eq(store_target_add(s, &t, kpm, sizeof kpm), 0);
        const char *field = NULL;
        struct {
                store_node_t n;
                const char *field;
        } cases[] = {
                { psk_node("a", "kpm-other"), "node ID" },
                { psk_node("b", "kpm-a"), "KpmID" },
                { psk_node("b", "kpm-t"), "KpmID" },
                { cert_node("b", 'c'), "certificate" },
        };
        snprintf(cases[0].n.cse_id, sizeof cases[0].n.cse_id, "/mn-free");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = store_node_add(s, &cases[i].n, cases[i].n.kpm_id[0] ? kpm : NULL,
                                       cases[i].n.kpm_id[0] ? sizeof kpm : 0);
                cr_assert(r == -EEXIST || r == -EADDRINUSE, "case %zu: %d", i, r);
                cr_assert_eq(store_node_conflict(s, &cases[i].n, &field), 1, "case %zu", i);
                cr_assert_str_eq(field, cases[i].field, "case %zu", i);
        }
        store_node_t d = psk_node("d", "kpm-d");
        snprintf(d.cse_id, sizeof d.cse_id, "%s", a.cse_id);
        cr_assert_eq(store_node_add(s, &d, kpm, sizeof kpm), -EADDRINUSE);
        cr_assert_eq(store_node_conflict(s, &d, &field), 1);
        cr_assert_str_eq(field, "CSE-ID");
        store_node_t e = psk_node("e", "kpm-e");
        cr_assert_eq(store_node_conflict(s, &e, &field), 0);
        store_close(s);
}

/* SPDX-License-Identifier: MIT */
/* The keyring contract against the real kernel keyring: runs as root, creates two system users
 * of its own run (msce-t<PID>-kr, msce-t<PID>-kr2 through test-user.sh, PID this runner's: no
 * other run, build or worktree files keys for them) and removes them when it ends, and checks
 * what each uid can see from a fresh session keyring, the replacement without a gap, removal and
 * the quota error. The users come from keyring-users.c (main). */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <fcntl.h>
#include <grp.h>
#include <keyutils.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "keys/keyring.h"
#include "tests/integration/keyring-users.h"
#include "util/util.h"

#define MAXBYTES "/proc/sys/kernel/keys/maxbytes"
#define PERM_EXPECTED 0x3f0b0000u /* possessor all, user view|read|search */
#define EXIT_MISMATCH 200
#define EXIT_SETUP 201

static uid_t cse_uid, other_uid;
static gid_t cse_gid, other_gid;
static bool ready;
static char maxbytes_saved[32]; /* non-empty while MAXBYTES holds a test value */

/* ---- fixtures (in each test's worker) ---- */

static void setup(void) {
        const char *no = getenv(ENV_NO_USERS), *users = getenv(ENV_USERS);
        if (no && strncmp(no, "skip:", 5) == 0)
                cr_skip_test("%s", no + 5);
        cr_assert_null(no, "%s", no ? no + 5 : "");
        cr_assert_not_null(users, ENV_USERS " is not set: the runner made no users");
        char cse[33], other[33];
        cr_assert_eq(sscanf(users, "%32s %32s", cse, other), 2);
        cr_assert_eq(user_resolve(cse, &cse_uid, &cse_gid), 0, "test user %s", cse);
        cr_assert_eq(user_resolve(other, &other_uid, &other_gid), 0, "test user %s", other);
        cr_assert_geq(keyctl_join_session_keyring(NULL), 0, "join session: %m");
        cr_assert_eq(keyring_remove(cse_uid), 0);
        ready = true;
}

static void maxbytes_restore(void) {
        if (!maxbytes_saved[0])
                return;
        int fd = open(MAXBYTES, O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
                (void) !write(fd, maxbytes_saved, strlen(maxbytes_saved));
                close(fd);
        }
        maxbytes_saved[0] = '\0';
}

static void teardown(void) {
        maxbytes_restore();
        if (ready)
                (void) keyring_remove(cse_uid);
}

TestSuite(keyring, .fini = teardown, .timeout = 120);

/* A profile's worth of keys with random bytes. */
typedef struct keyset {
        uint8_t ltk[32];
        uint8_t kpsa[3][KEYRING_KPSA_LEN];
        char names[3][KEYRING_DESC_MAX];
        keyring_key_t keys[4];
        size_t n;
} keyset_t;

/* A kpsaID of len characters (proto/ids.h): hex 'a's, '@', a host of up to 253 characters in
 * labels of 63; valid up to KEYRING_KPSA_ID_MAX. */
static void long_kpsa_id(char *out, size_t len) {
        size_t host = len >= 255 ? 253 : len - 2, rel = len - 1 - host;
        memset(out, 'a', len);
        out[rel] = '@';
        for (size_t i = 63; i < host - 1; i += 64)
                out[rel + 1 + i] = '.';
        out[len] = '\0';
}

static void keyset_make(keyset_t *s, const char *const *kpsa_ids, size_t n_kpsa) {
        cr_assert_leq(n_kpsa, 3);
        cr_assert_eq(random_bytes(s->ltk, sizeof(s->ltk)), 0);
        s->keys[0] = (keyring_key_t) { KEYRING_LTK, s->ltk, sizeof(s->ltk) };
        for (size_t i = 0; i < n_kpsa; i++) {
                cr_assert_eq(random_bytes(s->kpsa[i], KEYRING_KPSA_LEN), 0);
                snprintf(s->names[i], sizeof(s->names[i]), KEYRING_KPSA "%s", kpsa_ids[i]);
                s->keys[1 + i] = (keyring_key_t) { s->names[i], s->kpsa[i], KEYRING_KPSA_LEN };
        }
        s->n = 1 + n_kpsa;
}

static void keyset_done(keyset_t *s) {
        erase(s, sizeof(*s));
}

static const char *const IDS_A[] = { "a1@mef.example.net", "a2@mef.example.net" };
static const char *const IDS_B[] = { "b1@mef.example.net" };

/* The fixture, and the key sets A (two targets) and B (one). */
static void setup_two(keyset_t *a, keyset_t *b) {
        setup();
        keyset_make(a, IDS_A, 2);
        keyset_make(b, IDS_B, 1);
}

/* Serials of every key of a set, as installed. */
static void keyset_serials(const keyset_t *s, key_serial_t *ret) {
        for (size_t i = 0; i < s->n; i++)
                cr_assert_eq(keyring_find(cse_uid, s->keys[i].name, &ret[i]), 0, "find %s", s->keys[i].name);
}

/* keyring_install() of s for the CSE user: the serials of its keys, and the keyring's. */
static key_serial_t install(const keyset_t *s, key_serial_t *serials) {
        key_serial_t r;
        cr_assert_eq(keyring_install(cse_uid, s->keys, s->n), 0);
        keyset_serials(s, serials);
        cr_assert_eq(keyring_find(cse_uid, NULL, &r), 0);
        return r;
}

/* Run fn in a child with the given ids (root when uid is 0) in a NEW session keyring joined
 * after dropping privileges, so it inherits no possession. Returns the child's exit code. */
typedef int (*child_fn_t)(const void *userdata);

static int run_as(uid_t uid, gid_t gid, child_fn_t fn, const void *userdata) {
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                if (uid != 0 && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
                                 setresuid(uid, uid, uid) < 0))
                        _exit(EXIT_SETUP);
                if (keyctl_join_session_keyring(NULL) < 0)
                        _exit(EXIT_SETUP);
                _exit(fn(userdata));
        }
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status), "child died with signal %d", WTERMSIG(status));
        cr_assert_neq(WEXITSTATUS(status), EXIT_SETUP, "child setup failed");
        return WEXITSTATUS(status);
}

/* ---- what a child does ---- */

/* The CSE recipe (docs/cse-integration.md): own persistent keyring into the session, search,
 * read; exit 0 when the bytes are exactly the expected ltk. */
static int child_cse_read_ltk(const void *userdata) {
        const keyset_t *s = userdata;
        uint8_t buf[KEYRING_LTK_MAX + 1];
        if (keyctl_get_persistent((uid_t) -1, KEY_SPEC_SESSION_KEYRING) < 0)
                return errno;
        long ring = keyctl_search(KEY_SPEC_SESSION_KEYRING, "keyring", KEYRING_NAME, 0);
        if (ring < 0)
                return errno;
        long k = keyctl_search((key_serial_t) ring, "user", KEYRING_PREFIX KEYRING_LTK, 0);
        if (k < 0)
                return errno;
        long n = keyctl_read((key_serial_t) k, (char *) buf, sizeof(buf));
        if (n < 0)
                return errno;
        int r = n == (long) sizeof(s->ltk) && memcmp(buf, s->ltk, sizeof(s->ltk)) == 0 ? 0 : EXIT_MISMATCH;
        erase(buf, sizeof(buf));
        return r;
}

/* Read one serial: exit 0 when readable, else the errno. */
static int child_read_serial(const void *userdata) {
        char buf[256]; /* a keyring's payload (its serials) is read in whole 4-byte entries */
        long n = keyctl_read(*(const key_serial_t *) userdata, buf, sizeof(buf));
        erase(buf, sizeof(buf));
        return n < 0 ? errno : 0;
}

/* A key that was retired: revoked, or already destroyed. Checked as its owner, the service user,
 * who could read it otherwise (root is denied before the kernel looks at the key's state). */
static void assert_retired(key_serial_t k) {
        int e = run_as(cse_uid, cse_gid, child_read_serial, &k);
        cr_assert(e == EKEYREVOKED || e == ENOKEY, "retired key %d: %s", k, e ? strerror(e) : "still readable");
}

static void assert_live(key_serial_t k) {
        int e = run_as(cse_uid, cse_gid, child_read_serial, &k);
        cr_assert_eq(e, 0, "key %d not readable by its owner: %s", k, strerror(e));
}

/* The other user: its own persistent keyring has no msce, the CSE's it may not open. */
static int child_other_search(const void *userdata) {
        uid_t victim = *(const uid_t *) userdata;
        if (keyctl_get_persistent(victim, KEY_SPEC_SESSION_KEYRING) >= 0)
                return EXIT_MISMATCH;
        if (errno != EPERM)
                return errno;
        if (keyctl_get_persistent((uid_t) -1, KEY_SPEC_SESSION_KEYRING) < 0)
                return errno;
        if (keyctl_search(KEY_SPEC_SESSION_KEYRING, "user", KEYRING_PREFIX KEYRING_LTK, 0) >= 0)
                return EXIT_MISMATCH;
        return errno;
}

/* Root without possession fails; after opening the persistent keyring (possession) it reads. */
static int child_root_possession(const void *userdata) {
        const key_serial_t *k = userdata;
        char buf[KEYRING_LTK_MAX + 1];
        if (keyctl_read(k[0], buf, sizeof(buf)) >= 0)
                return EXIT_MISMATCH;
        if (errno != EACCES)
                return errno;
        if (keyctl_get_persistent((uid_t) k[1], KEY_SPEC_SESSION_KEYRING) < 0)
                return 100;
        long n = keyctl_read(k[0], buf, sizeof(buf));
        erase(buf, sizeof(buf));
        return n == 32 ? 0 : 101;
}

/* ---- tests ---- */

Test(keyring, user_resolve) {
        uid_t u;
        gid_t g;
        cr_assert_eq(user_resolve("root", &u, &g), 0);
        cr_assert_eq(u, 0);
        cr_assert_eq(g, 0);
        cr_assert_eq(user_resolve("0", &u, NULL), 0);
        cr_assert_eq(u, 0);
        cr_assert_eq(user_resolve("msce-no-such-user", &u, &g), -ESRCH);
        cr_assert_eq(user_resolve("", &u, &g), -EINVAL);
        char longname[300];
        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        cr_assert_eq(user_resolve(longname, &u, &g), -EINVAL);
}

Test(keyring, strerror_names_the_quota_knobs) {
        cr_assert(strstr(keyring_strerror(-EDQUOT), "/proc/sys/kernel/keys/maxkeys"));
        cr_assert(strstr(keyring_strerror(-EDQUOT), "maxbytes"));
        cr_assert_str_eq(keyring_strerror(-ENOENT), "No such file or directory");
        cr_assert_not_null(keyring_strerror(-12345));
}

Test(keyring, rejects_bad_input_and_files_nothing) {
        setup();
        uint8_t k32[32] = { 1 }, k65[65] = { 0 };
        char id301[KEYRING_DESC_MAX], id300[KEYRING_DESC_MAX];
        strcpy(id301, KEYRING_KPSA);
        long_kpsa_id(id301 + 5, 301);
        strcpy(id300, KEYRING_KPSA);
        long_kpsa_id(id300 + 5, 300);

        const struct {
                keyring_key_t keys[2];
                size_t n;
        } bad[] = {
                { { { "kpsa:x", k32, 32 } }, 1 },                          /* no ltk */
                { { { "ltk", k32, 32 }, { "ltk", k32, 32 } }, 2 },         /* two ltk */
                { { { "ltk", k32, 15 } }, 1 },                             /* ltk too short */
                { { { "ltk", k65, 65 } }, 1 },                             /* ltk too long */
                { { { "ltk", k32, 32 }, { "kpsa:x", k32, 16 } }, 2 },      /* kpsa not 32 */
                { { { "ltk", k32, 32 }, { "kpsa:a b", k32, 32 } }, 2 },    /* space */
                { { { "ltk", k32, 32 }, { "kpsa:\x01", k32, 32 } }, 2 },   /* control */
                { { { "ltk", k32, 32 }, { "kpsa:", k32, 32 } }, 2 },       /* empty id */
                { { { "ltk", k32, 32 }, { "kpsa:../../../../etc/passwd@mef", k32, 32 } }, 2 }, /* not a kpsaID */
                { { { "ltk", k32, 32 }, { "kpsa:a@MEF", k32, 32 } }, 2 },  /* upper-case host */
                { { { "ltk", k32, 32 }, { id301, k32, 32 } }, 2 },         /* 301 chars */
                { { { "ltk", k32, 32 }, { "other", k32, 32 } }, 2 },       /* unknown name */
                { { { "ltk", NULL, 32 } }, 1 },                            /* no data */
                { { { "ltk", k32, 32 } }, 0 },                             /* n = 0 */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_assert_eq(keyring_install(cse_uid, bad[i].keys, bad[i].n), -EINVAL, "case %zu", i);
        keyring_key_t dup[3] = { { "ltk", k32, 32 }, { "kpsa:x", k32, 32 }, { "kpsa:x", k32, 32 } };
        cr_assert_eq(keyring_install(cse_uid, dup, 3), -EINVAL);
        keyring_key_t good[2] = { { "ltk", k32, 32 }, { id300, k32, 32 } };
        cr_assert_eq(keyring_install(0, good, 2), -EINVAL, "root as service user");
        cr_assert_eq(keyring_install((uid_t) -1, good, 2), -EINVAL);

        key_serial_t k;
        cr_assert_eq(keyring_find(cse_uid, NULL, &k), -ENOKEY, "a rejected install filed something");
        /* The longest valid kpsaID is accepted. */
        cr_assert_eq(keyring_install(cse_uid, good, 2), 0);
        cr_assert_eq(keyring_find(cse_uid, id300, &k), 0);
}

Test(keyring, owner_permissions_and_list) {
        setup();
        keyset_t a;
        keyset_make(&a, IDS_A, 2);
        cr_assert_eq(keyring_install(cse_uid, a.keys, a.n), 0);

        _cleanup_keyring_names_ char **names = NULL;
        cr_assert_eq(keyring_list(cse_uid, &names), 0);
        cr_assert_str_eq(names[0], "msce:kpsa:a1@mef.example.net");
        cr_assert_str_eq(names[1], "msce:kpsa:a2@mef.example.net");
        cr_assert_str_eq(names[2], "msce:ltk");
        cr_assert_null(names[3]);

        key_serial_t ids[4];
        keyset_serials(&a, ids);
        cr_assert_eq(keyring_find(cse_uid, NULL, &ids[3]), 0);
        for (size_t i = 0; i < 4; i++) {
                _cleanup_free_ char *d = NULL;
                char type[16];
                unsigned uid, gid, perm;
                cr_assert_geq(keyctl_describe_alloc(ids[i], &d), 0);
                cr_assert_eq(sscanf(d, "%15[^;];%u;%u;%x;", type, &uid, &gid, &perm), 4, "%s", d);
                cr_assert_eq(uid, cse_uid, "%s", d);
                cr_assert_eq(perm, PERM_EXPECTED, "%s", d);
                cr_assert_str_eq(type, i == 3 ? "keyring" : "user");
        }

        /* The "msce" keyring sits directly in the persistent keyring. */
        long p = keyctl_get_persistent(cse_uid, KEY_SPEC_SESSION_KEYRING);
        cr_assert_geq(p, 0);
        cr_assert_eq(keyctl_search((key_serial_t) p, "keyring", KEYRING_NAME, 0), ids[3]);
        keyset_done(&a);
}

Test(keyring, isolation) {
        setup();
        keyset_t a;
        keyset_make(&a, IDS_A, 2);
        cr_assert_eq(keyring_install(cse_uid, a.keys, a.n), 0);
        key_serial_t ltk;
        cr_assert_eq(keyring_find(cse_uid, KEYRING_LTK, &ltk), 0);

        /* The service user finds and reads exactly the installed bytes. */
        cr_assert_eq(run_as(cse_uid, cse_gid, child_cse_read_ltk, &a), 0);
        /* Another user cannot read it by serial, nor find it. */
        cr_assert_eq(run_as(other_uid, other_gid, child_read_serial, &ltk), EACCES);
        cr_assert_eq(run_as(other_uid, other_gid, child_other_search, &cse_uid), ENOKEY);
        /* Root without possession gets EACCES; with possession it reads. */
        key_serial_t arg[2] = { ltk, (key_serial_t) cse_uid };
        cr_assert_eq(run_as(0, 0, child_root_possession, arg), 0);
        keyset_done(&a);
}

Test(keyring, replacement_retires_old_keys) {
        keyset_t a, b;
        key_serial_t sa[3], sb[2], ra, rb, k;
        setup_two(&a, &b);

        ra = install(&a, sa);
        for (size_t i = 0; i < 3; i++)
                assert_live(sa[i]);
        assert_live(ra);
        rb = install(&b, sb);
        cr_assert_neq(ra, rb);

        _cleanup_keyring_names_ char **names = NULL;
        cr_assert_eq(keyring_list(cse_uid, &names), 0);
        cr_assert_str_eq(names[0], "msce:kpsa:b1@mef.example.net");
        cr_assert_str_eq(names[1], "msce:ltk");
        cr_assert_null(names[2]);
        cr_assert_eq(keyring_find(cse_uid, "kpsa:a1@mef.example.net", &k), -ENOKEY);

        for (size_t i = 0; i < 3; i++)
                assert_retired(sa[i]);
        assert_retired(ra);
        cr_assert_eq(run_as(cse_uid, cse_gid, child_cse_read_ltk, &b), 0);
        keyset_done(&a);
        keyset_done(&b);
}

Test(keyring, replaces_a_revoked_keyring) {
        setup();
        keyset_t a, b;
        key_serial_t ra, rb;
        keyset_make(&a, IDS_A, 2);
        keyset_make(&b, IDS_B, 1);
        cr_assert_eq(keyring_install(cse_uid, a.keys, a.n), 0);
        cr_assert_eq(keyring_find(cse_uid, NULL, &ra), 0);
        /* Someone (the CSE may: it possesses the keyring) revokes it: the dead link stays in the
         * persistent keyring until the key GC's delay has passed. */
        cr_assert_eq(keyctl_revoke(ra), 0);
        cr_assert_eq(keyring_find(cse_uid, NULL, &rb), -ENOKEY);
        cr_assert_eq(keyring_install(cse_uid, b.keys, b.n), 0);
        cr_assert_eq(keyring_find(cse_uid, NULL, &rb), 0);
        cr_assert_neq(ra, rb);
        cr_assert_eq(run_as(cse_uid, cse_gid, child_cse_read_ltk, &b), 0);
        keyset_done(&a);
        keyset_done(&b);
}

/* Shared between the replacing parent and the reading child. */
typedef struct reader_stats {
        atomic_int stop, started;
        atomic_long ok, search_enokey, search_other, read_retired, read_other, mismatch, max_run;
        atomic_int search_errno, read_errno; /* the last of each */
        uint8_t ltk[2][32];
} reader_stats_t;

static int child_reader(const void *userdata) {
        reader_stats_t *st = (reader_stats_t *) userdata;
        uint8_t buf[KEYRING_LTK_MAX + 1];
        long run = 0;

        if (keyctl_get_persistent((uid_t) -1, KEY_SPEC_SESSION_KEYRING) < 0)
                return errno;
        atomic_store(&st->started, 1);
        while (!atomic_load(&st->stop)) {
                long k = keyctl_search(KEY_SPEC_SESSION_KEYRING, "user", KEYRING_PREFIX KEYRING_LTK, 0);
                if (k < 0) {
                        atomic_fetch_add(errno == ENOKEY ? &st->search_enokey : &st->search_other, 1);
                        atomic_store(&st->search_errno, errno);
                        run++;
                        continue;
                }
                long n = keyctl_read((key_serial_t) k, (char *) buf, sizeof(buf));
                if (n < 0) {
                        /* Found, then retired before the read: the CSE retries the search. */
                        bool retired = errno == EKEYREVOKED || errno == ENOKEY;
                        atomic_fetch_add(retired ? &st->read_retired : &st->read_other, 1);
                        atomic_store(&st->read_errno, errno);
                        run++;
                        continue;
                }
                if (run > atomic_load(&st->max_run))
                        atomic_store(&st->max_run, run);
                run = 0;
                if (n == 32 && (memcmp(buf, st->ltk[0], 32) == 0 || memcmp(buf, st->ltk[1], 32) == 0))
                        atomic_fetch_add(&st->ok, 1);
                else
                        atomic_fetch_add(&st->mismatch, 1);
        }
        erase(buf, sizeof(buf));
        return 0;
}

/* Replaced keys are freed (and their quota released) some 20 ms after the replacement, after
 * an RCU grace period and the key GC: back to back, 50 installs of 4 keys exhaust the default
 * maxkeys of 200. Pace the replacements as a real agent would not even come close to. */
/* The reader and the replacer must run on different CPUs: on one CPU the reader only runs while
 * the replacer sleeps and would never look inside a replacement. (Checked: with an unlink of the
 * old keyring before the link of the new one, a gap of a few microseconds, the pinned reader sees
 * ENOKEY hundreds of times; unpinned it saw none in 3000 replacements.) */
static bool cpus_pick_two(cpu_set_t *ret_saved, int *ret_a, int *ret_b) {
        cr_assert_eq(sched_getaffinity(0, sizeof(*ret_saved), ret_saved), 0);
        int found = 0;
        for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
                if (CPU_ISSET(c, ret_saved))
                        *(found++ == 0 ? ret_a : ret_b) = c;
        return found == 2;
}

static void cpu_pin(int cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        cr_assert_eq(sched_setaffinity(0, sizeof(set), &set), 0);
}

#define REPLACEMENTS 200
#define REPLACEMENT_PAUSE_US 1000

Test(keyring, replacement_has_no_gap) {
        setup();
        cpu_set_t saved;
        int cpu_writer = -1, cpu_reader = -1;
        if (!cpus_pick_two(&saved, &cpu_writer, &cpu_reader))
                cr_skip_test("needs two CPUs: a reader sharing the replacer's CPU cannot observe a gap");
        keyset_t set[2];
        keyset_make(&set[0], IDS_A, 2);
        keyset_make(&set[1], IDS_B, 1);
        cr_assert_eq(keyring_install(cse_uid, set[0].keys, set[0].n), 0);

        reader_stats_t *st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq(st, MAP_FAILED);
        memset(st, 0, sizeof(*st));
        memcpy(st->ltk[0], set[0].ltk, 32);
        memcpy(st->ltk[1], set[1].ltk, 32);

        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                if (setgroups(0, NULL) < 0 || setresgid(cse_gid, cse_gid, cse_gid) < 0 ||
                    setresuid(cse_uid, cse_uid, cse_uid) < 0 || keyctl_join_session_keyring(NULL) < 0)
                        _exit(EXIT_SETUP);
                cpu_set_t one;
                CPU_ZERO(&one);
                CPU_SET(cpu_reader, &one);
                if (sched_setaffinity(0, sizeof(one), &one) < 0)
                        _exit(EXIT_SETUP);
                _exit(child_reader(st));
        }
        cpu_pin(cpu_writer);

        uint64_t t0 = now_usec();
        while (!atomic_load(&st->started) && now_usec() - t0 < 5000000)
                usleep(1000);
        int failed = 0;
        uint64_t t1 = now_usec();
        uint64_t spent = 0;
        for (int i = 1; i <= REPLACEMENTS && failed == 0; i++) {
                uint64_t t = now_usec();
                failed = keyring_install(cse_uid, set[i % 2].keys, set[i % 2].n);
                spent += now_usec() - t;
                usleep(REPLACEMENT_PAUSE_US);
        }
        uint64_t t2 = now_usec();
        atomic_store(&st->stop, 1);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert_eq(sched_setaffinity(0, sizeof(saved), &saved), 0);

        cr_log_info("%d replacements over %.1f ms (%.0f us per install); reader: %ld reads ok, %ld search ENOKEY, "
                    "%ld other search errors, %ld retired between search and read, %ld other read errors, "
                    "%ld wrong bytes, longest failure run %ld, last search errno %d, last read errno %d",
                    REPLACEMENTS, (t2 - t1) / 1000.0, (double) spent / REPLACEMENTS, atomic_load(&st->ok),
                    atomic_load(&st->search_enokey), atomic_load(&st->search_other),
                    atomic_load(&st->read_retired), atomic_load(&st->read_other), atomic_load(&st->mismatch),
                    atomic_load(&st->max_run), atomic_load(&st->search_errno), atomic_load(&st->read_errno));
        cr_assert_eq(failed, 0, "install failed: %s", keyring_strerror(failed));
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "reader failed");
        cr_assert_gt(atomic_load(&st->ok), 0, "the reader never read");
        cr_assert_eq(atomic_load(&st->search_enokey), 0, "the key was missing during a replacement");
        /* Was seen as 1 in 60 runs under load before keyring_install waited for an RCU grace
         * period before revoking: EKEYREVOKED from a search still walking the displaced ring. */
        cr_assert_eq(atomic_load(&st->search_other), 0, "a search failed during a replacement: %s",
                     strerror(atomic_load(&st->search_errno)));
        cr_assert_eq(atomic_load(&st->read_other), 0);
        cr_assert_eq(atomic_load(&st->mismatch), 0);
        /* A read can lose the race with the revocation that follows a replacement; searching
         * again then finds the new key (measured: one retry always sufficed; margin for load). */
        cr_assert_leq(atomic_load(&st->max_run), 3);
        munmap(st, sizeof(*st));
        keyset_done(&set[0]);
        keyset_done(&set[1]);
}

Test(keyring, removal_leaves_nothing) {
        keyset_t a, b;
        key_serial_t sa[3], sb[2], ra, rb, k;
        setup_two(&a, &b);
        ra = install(&a, sa);
        rb = install(&b, sb);
        for (size_t i = 0; i < 2; i++)
                assert_live(sb[i]);

        cr_assert_eq(keyring_remove(cse_uid), 0);
        long p = keyctl_get_persistent(cse_uid, KEY_SPEC_SESSION_KEYRING);
        cr_assert_geq(p, 0);
        errno = 0;
        cr_assert_lt(keyctl_search((key_serial_t) p, "keyring", KEYRING_NAME, 0), 0);
        cr_assert_eq(errno, ENOKEY);
        cr_assert_eq(keyring_find(cse_uid, NULL, &k), -ENOKEY);
        for (size_t i = 0; i < 3; i++)
                assert_retired(sa[i]);
        for (size_t i = 0; i < 2; i++)
                assert_retired(sb[i]);
        assert_retired(ra);
        assert_retired(rb);
        cr_assert_eq(run_as(cse_uid, cse_gid, child_cse_read_ltk, &b), ENOKEY);
        /* Idempotent. */
        cr_assert_eq(keyring_remove(cse_uid), 0);
        keyset_done(&a);
        keyset_done(&b);
}

/* qnkeys and qnbytes charged to uid, from /proc/key-users ("uid: usage n/ni qk/maxk qb/maxb"). */
static bool key_user_quota(uid_t uid, unsigned *ret_keys, unsigned *ret_bytes) {
        _cleanup_fclose_ FILE *f = fopen("/proc/key-users", "re");
        char line[256];
        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f)) {
                unsigned u, usage, n, ni, qk, mk, qb, mb;
                if (sscanf(line, " %u: %u %u/%u %u/%u %u/%u", &u, &usage, &n, &ni, &qk, &mk, &qb, &mb) == 8 &&
                    u == uid) {
                        *ret_keys = qk;
                        *ret_bytes = qb;
                        return true;
                }
        }
        *ret_keys = *ret_bytes = 0;
        return false;
}

/* Wait (up to 3 s) until uid is charged for exactly `keys` keys: freed keys release their quota
 * only after an RCU grace period and a pass of the key GC. */
static bool key_user_quota_settle(uid_t uid, unsigned keys, unsigned *ret_keys, unsigned *ret_bytes) {
        for (int i = 0; i < 300; i++) {
                key_user_quota(uid, ret_keys, ret_bytes);
                if (*ret_keys == keys)
                        return true;
                usleep(10000);
        }
        return false;
}

/* The user may own keys that are not ours (its user keyrings, say): wait until what earlier
 * tests left has been freed, i.e. the count has not changed for 200 ms. */
static unsigned key_user_quota_baseline(uid_t uid) {
        unsigned keys, bytes, last = UINT32_MAX, same = 0;
        for (int i = 0; i < 300 && same < 20; i++) {
                key_user_quota(uid, &keys, &bytes);
                same = keys == last ? same + 1 : 0;
                last = keys;
                usleep(10000);
        }
        cr_assert_geq(same, 20, "the key count of uid %u does not settle", (unsigned) uid);
        return last;
}

Test(keyring, quota_exhaustion_is_edquot_and_keeps_old_keys) {
        setup();
        int fd = open(MAXBYTES, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                cr_skip_test("%s is not writable (%m): cannot lower the key quota", MAXBYTES);
        ssize_t n = read(fd, maxbytes_saved, sizeof(maxbytes_saved) - 1);
        cr_assert_gt(n, 0);
        maxbytes_saved[n] = '\0';

        unsigned baseline = key_user_quota_baseline(cse_uid);
        keyset_t a;
        keyset_make(&a, IDS_A, 2);
        cr_assert_eq(keyring_install(cse_uid, a.keys, a.n), 0);
        key_serial_t ltk_a;
        cr_assert_eq(keyring_find(cse_uid, KEYRING_LTK, &ltk_a), 0);
        /* A's keyring and its 3 keys are charged to the user. */
        unsigned keys_before = 0, bytes_before = 0;
        cr_assert(key_user_quota_settle(cse_uid, baseline + 4, &keys_before, &bytes_before));

        /* A kpsa with the longest kpsaID (a 310-byte description) cannot fit 100 more bytes. */
        char big[KEYRING_DESC_MAX];
        strcpy(big, KEYRING_KPSA);
        long_kpsa_id(big + 5, KEYRING_KPSA_ID_MAX);
        keyset_t b;
        const char *const ids[] = { big + 5 };
        keyset_make(&b, ids, 1);

        char value[32];
        int m = snprintf(value, sizeof(value), "%u\n", bytes_before + 100);
        cr_assert_eq(pwrite(fd, value, (size_t) m, 0), m);
        int r = keyring_install(cse_uid, b.keys, b.n);
        maxbytes_restore(); /* before any assertion */
        close(fd);

        cr_assert_eq(r, -EDQUOT, "got %d (%s)", r, keyring_strerror(r));
        /* The old keys are untouched and still readable by the CSE. */
        key_serial_t k;
        cr_assert_eq(keyring_find(cse_uid, KEYRING_LTK, &k), 0);
        cr_assert_eq(k, ltk_a);
        cr_assert_eq(run_as(cse_uid, cse_gid, child_cse_read_ltk, &a), 0);
        /* Nothing of the failed install stays charged to the user. */
        unsigned keys_now = 0, bytes_now = 0;
        cr_assert(key_user_quota_settle(cse_uid, keys_before, &keys_now, &bytes_now), "%u keys charged", keys_now);
        /* the key garbage collector releases bytes a little after the count (seen here) */
        for (int i = 0; i < 300 && bytes_now != bytes_before; i++) {
                usleep(10000);
                key_user_quota(cse_uid, &keys_now, &bytes_now);
        }
        cr_assert_eq(bytes_now, bytes_before);
        keyset_done(&a);
        keyset_done(&b);
}

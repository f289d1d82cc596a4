/* SPDX-License-Identifier: MIT */
/* The master key file's name is made durable: after each creation of a key file (a new store's
 * key, a restore's, a rekey's "<key>.new") and after the rekey's rename, the key's directory is
 * fsynced - else a power cut can take the file back while the store already depends on it.
 * fsync() is seen at link time (-Wl,--wrap=fsync; libmsce is static, so the wrap reaches its
 * calls): each call's file is recorded by inode, in order. The key lives in a directory of its
 * own, apart from the database's, so that SQLite's syncs of its directory do not count. */
#include <criterion/criterion.h>
#include <limits.h>
#include <sys/stat.h>

#include "mef/store-backup.h"
#include "mef/store.h"
#include "store-tmp.h"
#include "util/util.h"

typedef struct synced {
        dev_t dev;
        ino_t ino;
} synced_t;

#define SYNCED_MAX 4096
static synced_t synced[SYNCED_MAX];
static size_t n_synced;

int __real_fsync(int fd);
int __wrap_fsync(int fd);
int __wrap_fsync(int fd) {
        struct stat st;
        if (fstat(fd, &st) == 0 && n_synced < SYNCED_MAX)
                synced[n_synced++] = (synced_t) { st.st_dev, st.st_ino };
        return __real_fsync(fd);
}

static char dir[] = "/tmp/test-store-key-sync.XXXXXX";
static char db[PATH_MAX], keys[PATH_MAX], key[PATH_MAX];

static void setup(void) {
        cr_assert_not_null(mkdtemp(dir));
        snprintf(db, sizeof db, "%s/db/mef.db", dir);
        snprintf(keys, sizeof keys, "%s/keys", dir);
        snprintf(key, sizeof key, "%s/keys/master.key", dir);
        n_synced = 0;
}

static void teardown(void) {
        store_tmp_remove(dir);
}

TestSuite(store_key_sync, .init = setup, .fini = teardown);

/* The last fsync of st's file at or after index from, or -1. */
static ssize_t last_sync_of(const struct stat *st, size_t from) {
        ssize_t found = -1;
        for (size_t i = from; i < n_synced; i++)
                if (synced[i].dev == st->st_dev && synced[i].ino == st->st_ino)
                        found = (ssize_t) i;
        return found;
}

/* The file at path was synced since index from, and its directory after it. */
static void assert_synced_with_dir(const char *path, size_t from) {
        struct stat f, d;
        cr_assert_eq(stat(path, &f), 0, "%s: %s", path, strerror(errno));
        cr_assert_eq(stat(keys, &d), 0);
        ssize_t file_at = last_sync_of(&f, from);
        cr_assert_geq(file_at, 0, "%s was not fsynced", path);
        cr_assert_geq(last_sync_of(&d, (size_t) file_at + 1), 0, "%s: its directory %s was not fsynced after it",
                      path, keys);
}

Test(store_key_sync, a_new_stores_key_file) {
        mef_store_t *s = NULL;
        cr_assert_eq(store_open(db, key, true, &s), 0);
        store_close(s);
        assert_synced_with_dir(key, 0);
}

Test(store_key_sync, a_restores_key_file) {
        uint8_t k[STORE_MASTER_KEY_LEN];
        memset(k, 0x5a, sizeof k);
        cr_assert_eq(store_master_key_install(key, k), 1);
        assert_synced_with_dir(key, 0);
}

Test(store_key_sync, a_rekeys_new_file_and_its_rename) {
        mef_store_t *s = NULL;
        cr_assert_eq(store_open(db, key, true, &s), 0);
        char pending[PATH_MAX];
        cr_assert_eq(store_rekey_pending_path(key, pending, sizeof pending), 0);

        size_t before = n_synced;
        cr_assert_eq(store_rekey_prepare(key), 0);
        assert_synced_with_dir(pending, before);

        struct stat pst;
        cr_assert_eq(stat(pending, &pst), 0);
        before = n_synced;
        store_rekey_result_t res = {};
        cr_assert_eq(store_rekey(s, &res), 0);
        store_close(s);
        /* the file renamed over the key path, then its directory synced */
        struct stat kst, d;
        cr_assert_eq(stat(key, &kst), 0);
        cr_assert_eq(kst.st_ino, pst.st_ino, "the prepared key was not renamed over the key path");
        cr_assert_eq(stat(keys, &d), 0);
        cr_assert_geq(last_sync_of(&d, before), 0, "the rename's directory %s was not fsynced", keys);
}

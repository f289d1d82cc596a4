/* SPDX-License-Identifier: MIT */
#pragma once
/* A store of a test's own in a new temporary directory (template: "/tmp/NAME-XXXXXX", changed
 * in place), created with its master key; store_tmp_remove() takes the directory away. */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>

#include "mef/store.h"

static inline mef_store_t *store_tmp_open(char *tmpdir) {
        mef_store_t *s = NULL;
        char db[256], mk[256];
        cr_assert_not_null(mkdtemp(tmpdir));
        snprintf(db, sizeof db, "%s/mef.db", tmpdir);
        snprintf(mk, sizeof mk, "%s/master.key", tmpdir);
        cr_assert_eq(store_open(db, mk, true, &s), 0);
        return s;
}

static inline int store_tmp_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static inline void store_tmp_remove(const char *tmpdir) {
        nftw(tmpdir, store_tmp_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

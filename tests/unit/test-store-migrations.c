/* SPDX-License-Identifier: MIT */
/* The released migrations of each engine, pinned by the SHA-256 of their SQL: a store that one
 * made must stay what the next ones expect (mef/store-schema.h), and their text is built from
 * macros that later migrations share (STORE_ENROLMENTS_COLUMNS...), where an edit would reach a
 * released one unseen. A migration gets its line here when it is released. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <criterion/criterion.h>
#include <wolfssl/wolfcrypt/hash.h>

#include "mef/store-db.h"
#include "util/hex.h"

static const char *const sqlite_released[] = {
        "5b0d4013e7a334a1988055ded523d23cc5ab56033c744bb60e95d7ac9f20cb40", /* 1 */
        "5188bdd3794dc63ac2089caa32a1cbb8ae168ad05894a1921ecf396e8d927796", /* 2 */
        "3e8cf57fa920bd6b418f285bd586016d97365676ec7374a03adb3ad9bc3ddf86", /* 3 */
        "85d672de03652e7eaf7f63029b5b879fecc45282e2d7cee7f3f20f9242ebf422", /* 4 */
        "03d5d070d65639a00cde9eefa232254b7ecc09b29fa1ad8800eb4e32becf6901", /* 5 */
};

#if HAVE_LIBPQ
static const char *const pg_released[] = {
        "37dce8ba46ea10db0903ea51dcff75661b609b068037df310593499b1a6ef573", /* 1 */
        "5188bdd3794dc63ac2089caa32a1cbb8ae168ad05894a1921ecf396e8d927796", /* 2 */
        "b6eb8962bd681f60a8edf51968ff2f1fe33ecaac6466dcd9a5e7eda5371636b1", /* 3 */
        "20db11e108c0aad7615d9fc5d07287cc5f6fc980a853ee4ad38f11b69bb552e1", /* 4 */
        "da7f90359b934ce3ba691d3cd413d5800b551e6fc00412c190174d80e386804d", /* 5 */
};
#endif

static void check_released(const char *engine, const char *const *migrations, int n, const char *const *released,
                           size_t n_released) {
        cr_assert_geq(n, (int) n_released, "%s: %d migrations, %zu of them released", engine, n, n_released);
        for (size_t i = 0; i < n_released; i++) {
                uint8_t h[WC_SHA256_DIGEST_SIZE];
                char hex[2 * WC_SHA256_DIGEST_SIZE + 1];
                cr_assert_eq(wc_Sha256Hash((const byte *) migrations[i], (word32) strlen(migrations[i]), h), 0);
                hex_encode(h, sizeof h, hex);
                cr_expect_str_eq(hex, released[i],
                                 "%s migration %zu changed (SHA-256 %s, released as %s): a released migration must "
                                 "not change; add a new one instead",
                                 engine, i + 1, hex, released[i]);
        }
}

Test(store_migrations, sqlite) {
        int n;
        const char *const *m = db_sqlite_migrations(&n);
        check_released("SQLite", m, n, sqlite_released, ELEMENTSOF(sqlite_released));
}

Test(store_migrations, postgresql) {
#if HAVE_LIBPQ
        int n;
        const char *const *m = db_pg_migrations(&n);
        check_released("PostgreSQL", m, n, pg_released, ELEMENTSOF(pg_released));
#else
        cr_skip_test("built without libpq (-Dpostgresql=disabled)");
#endif
}

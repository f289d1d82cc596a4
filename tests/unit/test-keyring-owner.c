/* SPDX-License-Identifier: MIT */
/* keys/keyring-owner.c: the record of the uid the keys were filed for, in a temporary directory:
 * written and read back, absent, and every kind of garbage refused (no privileges). */
#include <criterion/criterion.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys/keyring-owner.h"
#include "util/util.h"

static char dir[64];

static void setup(void) {
        snprintf(dir, sizeof dir, "/tmp/test-keyring-owner-XXXXXX");
        cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void) {
        char path[PATH_MAX];
        if (path_join(dir, KEYRING_OWNER_NAME, path) == 0)
                (void) unlink(path);
        (void) rmdir(dir);
}

TestSuite(keyring_owner, .init = setup, .fini = teardown);

static void put(const char *text, size_t len) {
        char path[PATH_MAX];
        cr_assert_eq(path_join(dir, KEYRING_OWNER_NAME, path), 0);
        cr_assert_eq(file_write_atomic(path, text, len, 0600), 0);
}

Test(keyring_owner, round_trip) {
        uid_t uid = 0;
        char name[64] = "untouched";
        cr_assert_eq(keyring_owner_read(dir, &uid, name, sizeof name), -ENOENT);
        cr_assert_str_eq(name, "untouched");

        /* a uid with a user: its name */
        uid_t me = geteuid() ?: 1; /* 0 is never recorded; as root take uid 1 (daemon, or none) */
        cr_assert_eq(keyring_owner_write(dir, me), 0);
        cr_assert_eq(keyring_owner_read(dir, &uid, name, sizeof name), 0);
        cr_assert_eq(uid, me);
        struct passwd *pw = getpwuid(me);
        char want[64];
        if (pw)
                snprintf(want, sizeof want, "%s", pw->pw_name);
        else
                snprintf(want, sizeof want, "uid %u", (unsigned) me);
        cr_assert_str_eq(name, want);

        /* a uid no user has (any more): the uid */
        uid_t gone = 4294960000u;
        if (getpwuid(gone))
                cr_skip_test("uid %u exists", (unsigned) gone);
        cr_assert_eq(keyring_owner_write(dir, gone), 0);
        cr_assert_eq(keyring_owner_read(dir, &uid, name, sizeof name), 0);
        cr_assert_eq(uid, gone);
        cr_assert_str_eq(name, "uid 4294960000");
        /* no name wanted: the uid alone */
        uid = 0;
        cr_assert_eq(keyring_owner_read(dir, &uid, NULL, 0), 0);
        cr_assert_eq(uid, gone);

        char path[PATH_MAX];
        struct stat st;
        cr_assert_eq(path_join(dir, KEYRING_OWNER_NAME, path), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(st.st_size, 11);
}

Test(keyring_owner, garbage) {
        static const struct {
                const char *text;
                size_t len;
        } cases[] = {
                { "", 0 },                   /* empty */
                { "\n", 1 },                 /* no number */
                { "1001", 4 },               /* no newline: a write cut short */
                { "garbage\n", 8 },
                { "-5\n", 3 },
                { "+5\n", 3 },
                { " 5\n", 3 },
                { "5 \n", 3 },
                { "0\n", 2 },                /* root: never a [consumer] user */
                { "4294967295\n", 11 },      /* (uid_t) -1 */
                { "99999999999\n", 12 },     /* beyond uid_t */
                { "1001\n1002\n", 10 },      /* two lines */
                { "10\0001\n", 5 },           /* a NUL inside */
                { "1234567890123456789\n", 20 }, /* longer than a uid can be */
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                put(cases[i].text, cases[i].len);
                uid_t uid = 7;
                char name[64] = "untouched";
                cr_assert_eq(keyring_owner_read(dir, &uid, name, sizeof name), -EBADMSG, "case %zu", i);
                cr_assert_eq(uid, 7, "case %zu", i);
                cr_assert_str_eq(name, "untouched", "case %zu", i);
        }
}

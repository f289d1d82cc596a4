/* SPDX-License-Identifier: MIT */
/* LD_PRELOAD shim for daemon-test.py: getpwnam_r() fails with EIO for the user that
 * MSCE_FAKE_NSS_FAIL names, as it does while sssd or LDAP does not answer (at boot); with
 * MSCE_FAKE_NSS_WHILE set, only while the file it names exists (the test makes the database
 * fail, then answer again). Every other name goes to the C library's. */
#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t size, struct passwd **res);

int getpwnam_r(const char *name, struct passwd *pw, char *buf, size_t size, struct passwd **res) {
        static int (*real)(const char *, struct passwd *, char *, size_t, struct passwd **);
        const char *fail = getenv("MSCE_FAKE_NSS_FAIL"), *while_there = getenv("MSCE_FAKE_NSS_WHILE");
        if (fail && strcmp(name, fail) == 0 && (!while_there || access(while_there, F_OK) == 0)) {
                *res = NULL;
                return EIO;
        }
        if (!real)
                real = (int (*)(const char *, struct passwd *, char *, size_t, struct passwd **)) dlsym(RTLD_NEXT,
                                                                                                        "getpwnam_r");
        return real ? real(name, pw, buf, size, res) : ENOSYS;
}

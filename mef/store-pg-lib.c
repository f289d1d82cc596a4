/* SPDX-License-Identifier: MIT */
/* libpq, loaded on first use (systemd's dlopen_*() style): an msce-mef on SQLite, the default,
 * never maps it nor what it pulls in (OpenSSL, GnuTLS, Kerberos, LDAP, SASL: some 30 libraries,
 * half of the process's resident memory). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include "mef/store-pg-internal.h"

#define PG_SYM_DEFINE(sym) typeof(&sym) sym_##sym;
PG_SYMS(PG_SYM_DEFINE)

static pthread_once_t pg_lib_once = PTHREAD_ONCE_INIT;
static int pg_lib_r;
static char pg_lib_why[256];

static void pg_lib_open(void) {
        void *dl = dlopen(PG_LIB_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                snprintf(pg_lib_why, sizeof pg_lib_why, "%s", dlerror());
                pg_lib_r = -ELIBACC;
                return;
        }
#define PG_SYM_LOAD(sym)                                                                    \
        if (pg_lib_r == 0 && !(sym_##sym = (typeof(&sym)) dlsym(dl, #sym))) {               \
                snprintf(pg_lib_why, sizeof pg_lib_why, "%s: no %s", PG_LIB_SONAME, #sym); \
                pg_lib_r = -ELIBACC;                                                        \
        }
        PG_SYMS(PG_SYM_LOAD)
        if (pg_lib_r < 0)
                dlclose(dl); /* the pointers resolved before the missing one are never called */
}

int pg_lib_load(void) {
        (void) pthread_once(&pg_lib_once, pg_lib_open);
        return pg_lib_r;
}

const char *store_pg_lib_error(void) {
        return pg_lib_r < 0 ? pg_lib_why : NULL;
}

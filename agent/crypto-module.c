/* SPDX-License-Identifier: MIT */
/* msce-agent's crypto table, from the module (agent/crypto.h). The module is looked for next
 * to the running executable first (a build tree), then in the package's library directory. */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "agent/crypto.h"

static const crypto_ops_t *loaded;

static void *module_open(char *err, size_t err_size) {
        char exe[PATH_MAX], path[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[MAX(n, 0)] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
                *slash = 0;
        if (!slash || snprintf(path, sizeof path, "%s/%s", exe, CRYPTO_MODULE_NAME) >= (int) sizeof path ||
            access(path, F_OK) < 0)
                snprintf(path, sizeof path, "%s/%s", MSCE_MODULE_DIR, CRYPTO_MODULE_NAME);
        void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (!h)
                snprintf(err, err_size, "cannot load the crypto module: %s", dlerror());
        return h;
}

int crypto_ops_get(const crypto_ops_t **ret, char *err, size_t err_size) {
        if (!loaded) {
                /* never closed: the process (a child, or msce-agent --once) is short-lived */
                void *h = module_open(err, err_size);
                if (!h)
                        return -ELIBACC;
                const crypto_ops_t *(*entry)(void) = (const crypto_ops_t *(*)(void)) dlsym(h, CRYPTO_ENTRY);
                const crypto_ops_t *ops = entry ? entry() : NULL;
                if (!ops || ops->size != sizeof(crypto_ops_t)) {
                        snprintf(err, err_size, "%s is not the crypto module of this msce-agent (%s)",
                                 CRYPTO_MODULE_NAME, entry ? "another version" : "no entry point");
                        dlclose(h);
                        return -ELIBBAD;
                }
                loaded = ops;
        }
        *ret = loaded;
        return 0;
}

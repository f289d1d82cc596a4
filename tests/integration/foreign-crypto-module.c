/* SPDX-License-Identifier: MIT */
/* A msce-agent-crypto.so of another version, for agent-crypto-module.sh: its table is not this
 * build's size, and its constructor appends the pid of each process that loads it to the file
 * MSCE_FOREIGN_MODULE_LOG names: the daemon must never be one of them (agent/crypto.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "agent/crypto.h"

const crypto_ops_t *msce_crypto_ops_v1(void);

__attribute__((constructor)) static void loaded(void) {
        const char *log = getenv("MSCE_FOREIGN_MODULE_LOG");
        if (!log)
                return;
        int fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0) {
                dprintf(fd, "%d\n", (int) getpid());
                close(fd);
        }
}

const crypto_ops_t *msce_crypto_ops_v1(void) {
        static const crypto_ops_t ops = { .size = sizeof(crypto_ops_t) + 1 };
        return &ops;
}

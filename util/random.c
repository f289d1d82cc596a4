/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <stdint.h>
#include <sys/random.h>

#include "util/macro.h"
#include "util/random.h"

int random_bytes(void *buf, size_t n) {
        uint8_t *p = buf;
        while (n) {
                ssize_t r = getrandom(p, n, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += r;
                n -= (size_t) r;
        }
        return 0;
}

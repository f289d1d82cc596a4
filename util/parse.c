/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>

#include "util/parse.h"

bool id_is_valid(const char *s, size_t max) {
        size_t n = 0;
        for (; s[n]; n++)
                if ((unsigned char) s[n] < 0x21 || (unsigned char) s[n] > 0x7e)
                        return false;
        return n >= 1 && n <= max;
}

int parse_uint(const char *s, unsigned long long max, unsigned long long *ret) {
        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        unsigned long long v = 0;
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                unsigned d = (unsigned) (*p - '0');
                if (d > max || v > (max - d) / 10) /* d > max: max - d would wrap */
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

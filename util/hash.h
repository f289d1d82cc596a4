/* SPDX-License-Identifier: MIT */
#pragma once
/* The one string hash of msce-mef's in-memory tables (keys are node identities and source
 * addresses, not chosen to collide: FNV-1a spreads them well enough, and costs a byte's work). */
#include <stdint.h>

static inline uint64_t hash_string(const char *s) {
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a, 64 bits */
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 0x100000001b3ull;
        return h;
}

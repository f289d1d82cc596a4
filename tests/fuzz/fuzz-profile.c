/* SPDX-License-Identifier: MIT */
/* profile_parse() on arbitrary bytes; whatever it accepts must serialize back to exactly the
 * same bytes (the format has one encoding per profile), or the parser accepted something the
 * writer would never produce. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keys/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        stored_profile_t p;
        if (profile_parse(data, size, &p) < 0)
                return 0;
        secret_t s = { 0 };
        if (profile_serialize(&p, &s) < 0)
                abort();
        if (s.len != size || memcmp(s.data, data, size) != 0)
                abort();
        secret_done(&s);
        stored_profile_wipe(&p);
        return 0;
}

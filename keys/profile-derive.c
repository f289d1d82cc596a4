/* SPDX-License-Identifier: MIT */
/* The profile to keep from an enrolment, with every target's Kpsa derived (keys/kdf.h): apart
 * from keys/profile.c, which needs no crypto library. */
#include "keys/kdf.h"
#include "keys/profile.h"

int profile_from_msg(const msg_profile_t *m, const char *node_id, const char *mef_uri, time_t obtained,
                     const uint8_t *ltk, size_t ltk_len, stored_profile_t *ret) {
        if (!ret)
                return -EINVAL;
        _cleanup_(stored_profile_wipe) stored_profile_t p;
        int r = profile_from_msg_fields(m, node_id, mef_uri, obtained, ltk, ltk_len, &p);
        if (r < 0)
                return r;
        for (size_t i = 0; i < p.n_targets; i++) {
                r = kdf_kpsa(p.ltk, p.ltk_len, p.targets[i].id, p.targets[i].kpsa);
                if (r < 0)
                        return r;
        }
        *ret = p;
        return 0;
}

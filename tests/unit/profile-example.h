/* SPDX-License-Identifier: MIT */
#pragma once
/* A stored profile with the protocol examples' values and n_targets targets, its keys counting
 * up (ltk from 0xa0, target i's Kpsa all 0x10 + i): for the profile, worker and seal tests. */
#include <stdio.h>
#include <string.h>

#include "keys/profile.h"

static inline void profile_example(stored_profile_t *p, size_t n_targets) {
        *p = (stored_profile_t) { 0 };
        strcpy(p->node_id, "urn:dev:ops:0004A3-MNGW-000123");
        strcpy(p->mef_uri, "https://mef.example.net:8443/msce");
        strcpy(p->cse_id, "/mn-cse-000123");
        strcpy(p->cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        strcpy(p->ke_id, "3f2a00112233445566778899aabbccdd@mef.example.net");
        strcpy(p->exp, "20271127T203000");
        p->poll = 3600;
        p->obtained = 1795000000;
        p->ltk_len = 32;
        for (size_t i = 0; i < p->ltk_len; i++)
                p->ltk[i] = (uint8_t) (0xa0 + i);
        p->n_targets = n_targets;
        for (size_t i = 0; i < n_targets; i++) {
                snprintf(p->targets[i].id, sizeof p->targets[i].id, "/target-%zu", i);
                snprintf(p->targets[i].kpsa_id, sizeof p->targets[i].kpsa_id, "3f2a.%zu@mef.example.net", i + 1);
                memset(p->targets[i].kpsa, (int) (0x10 + i), PROFILE_KPSA_LEN);
        }
}

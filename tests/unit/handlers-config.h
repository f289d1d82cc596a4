/* SPDX-License-Identifier: MIT */
#pragma once
/* The MEF configuration mef_handle() runs with in the handler tests (handlers-fixture.c) and in
 * tests/fuzz/fuzz-handlers.c. */
#include "mef/handlers.h"

#define FQDN "mef.example.net"

static inline mef_config_t handlers_config(void) {
        return (mef_config_t) {
                .fqdn = (char *) FQDN,
                .base = (char *) "/msce",
                .default_lifetime = 31536000,
                .default_poll = 86400,
                .retry_after = 5,
        };
}

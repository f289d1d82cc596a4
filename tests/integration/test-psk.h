/* SPDX-License-Identifier: MIT */
#pragma once
/* The one PSK of the test tools fake-mef.c and tls-probe.c: --psk-identity with the key read
 * from --psk-hex-file. A server offers it through test_psk_lookup(). */
#include <stdint.h>
#include <string.h>

#include "proto/msg.h"
#include "util/util.h"

typedef struct test_psk {
        const char *identity;
        uint8_t key[MSG_KEY_MAX]; /* secret: wiped by the tool */
        size_t len;
} test_psk_t;

/* tls_psk_lookup_t over a test_psk_t (psk_userdata): its key for its identity, none (0) else. */
static inline unsigned test_psk_lookup(void *userdata, const char *identity, uint8_t *key, unsigned key_max) {
        const test_psk_t *p = userdata;
        if (!streq(identity, p->identity) || p->len > key_max)
                return 0;
        memcpy(key, p->key, p->len);
        return (unsigned) p->len;
}

/* SPDX-License-Identifier: MIT */
/* tls_wire_feed() on arbitrary server bytes, whole and split at the first byte's value:
 * both must agree, and the results must be in range. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/tls-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        size_t cut = data[0] % size;
        tls_wire_t a, b;
        tls_wire_init(&a);
        tls_wire_feed(&a, data + 1, size - 1);
        tls_wire_init(&b);
        tls_wire_feed(&b, data + 1, cut > 0 ? cut - 1 : 0);
        tls_wire_feed(&b, data + (cut > 0 ? cut : 1), size - (cut > 0 ? cut : 1));
        if (a.server_hello != b.server_hello || a.hello_retry != b.hello_retry || a.alert != b.alert ||
            a.version != b.version || a.key_share != b.key_share || a.hs_len > sizeof a.hs)
                abort();
        if (a.alert < -1 || a.alert > 255)
                abort();
        (void) tls_wire_downgrade_sentinel(&a);
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* tls_hello_psk_identity() on arbitrary client bytes, into a small and a large buffer: 0 or 1,
 * out always terminated, an identity that is a piece of the input, and a small buffer never
 * finding what the large one does not. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "proto/tls-hello.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The result into out[0..out_size), checked against the input. */
static int identity(const uint8_t *data, size_t size, char *out, size_t out_size) {
        int r = tls_hello_psk_identity(data, size, out, out_size);
        check(r == 0 || r == 1);
        size_t len = strnlen(out, out_size);
        check(len < out_size);
        check(r == 1 || len == 0);
        check(r == 0 || (len > 0 && memmem(data, size, out, len)));
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char small[8], large[TLS_HELLO_PEEK_MAX];
        int r_small = identity(data, size, small, sizeof small);
        int r_large = identity(data, size, large, sizeof large);
        check(!r_small || (r_large && strcmp(small, large) == 0));
        return 0;
}

/* SPDX-License-Identifier: MIT */
#pragma once
/* Hex text: the form keys take in files (Kpm, PSKs) and fingerprints take in the store. */
#include <stddef.h>
#include <stdint.h>

#include "util/macro.h"

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* The value of one hex digit (either case), -1 for any other character. */
int hex_digit(char c);
/* Decode hex (either case); -EINVAL on bad input or when out is too small. */
int hex_decode(const char *in, uint8_t *out, size_t out_size, size_t *ret_len);
/* A key as hex text of n bytes (not NUL-terminated, may hold NULs), trailing line ends
 * ignored: min..max bytes into key (max bytes of room). -ENODATA when empty, -EINVAL for
 * anything else that is not such a key; key holds nothing on failure. */
int hex_key_parse(const char *text, size_t n, size_t min, size_t max, uint8_t *key, size_t *ret_len);

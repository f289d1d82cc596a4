/* SPDX-License-Identifier: MIT */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Base64 (RFC 4648, with padding, no line breaks). */
int b64_encode(const uint8_t *in, size_t n, char **ret);
int b64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_size, size_t *ret_len);

/* SPDX-License-Identifier: MIT */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* ASCII helpers used by the protocol: printable ASCII 0x21..0x7e, 1..max chars. */
bool id_is_valid(const char *s, size_t max);
/* Parse an unsigned decimal (no sign, no spaces) with an upper bound. */
int parse_uint(const char *s, unsigned long long max, unsigned long long *ret);

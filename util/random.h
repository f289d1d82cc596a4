/* SPDX-License-Identifier: MIT */
#pragma once
#include <stddef.h>

/* Random bytes from the kernel (getrandom). */
int random_bytes(void *buf, size_t n);

/* SPDX-License-Identifier: MIT */
/* The agent's side of fuzz-tls-server.c: the input is what a MEF sends. */
#define FUZZ_TLS_CLIENT 1
#include "fuzz-tls-server.c"

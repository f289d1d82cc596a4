/* SPDX-License-Identifier: MIT */
/* Fuzzes http_parse() on responses, answers to HEAD included: the same checks as for
 * requests. */
#define FUZZ_KIND HTTP_RESPONSE
#include "fuzz-http-request.c"

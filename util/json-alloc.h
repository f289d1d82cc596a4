/* SPDX-License-Identifier: MIT */
#pragma once
/* jansson's memory, wiped before it is freed: the parser's token buffers, the strings of json_t
 * values and the dump buffers all pass through jansson's allocator, and any of them may have
 * held a key (a credential's "key", an admin body's "kpm" or "psk"). Installed once, at the
 * start of each program that parses or formats keyed JSON, before any json_t exists (and before
 * it forks: the children inherit it). */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* free() for jansson: wipes the whole allocation (malloc_usable_size()), then frees it. */
void json_alloc_free(void *p);
/* Makes jansson allocate with malloc() and free with json_alloc_free(). */
void json_alloc_install(void);

/* After a load that failed with e zeroed before it: whether jansson ran out of memory rather
 * than met bad JSON (json_object() and json_array() failing set no message). */
static inline bool json_load_out_of_memory(const json_error_t *e) {
        return !e->text[0] || json_error_code(e) == json_error_out_of_memory;
}

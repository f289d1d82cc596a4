/* SPDX-License-Identifier: MIT */
/* jansson's allocator with a wiping free (util/json-alloc.h). Buffers that jansson frees itself
 * (the lexer's token buffer, a string buffer it grows by copying, a partial tree after a parse
 * error) cannot be wiped by their users: only the allocator sees them all. The whole usable
 * size is wiped, so a buffer's unused tail that held a longer string once is covered too. */
#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include "util/json-alloc.h"

void json_alloc_free(void *p) {
        if (!p)
                return;
        explicit_bzero(p, malloc_usable_size(p));
        free(p);
}

void json_alloc_install(void) {
        json_set_alloc_funcs(malloc, json_alloc_free);
}

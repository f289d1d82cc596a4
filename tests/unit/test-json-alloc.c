/* SPDX-License-Identifier: MIT */
/* util/json-alloc.c: with the allocator installed, no buffer jansson frees still holds a key.
 * free() is replaced at link time (-Wl,--wrap=free): json_alloc_free()'s call to it reaches
 * __wrap_free(), which looks for the key's text in the whole block before it is released. Without
 * the install (jansson's default free, not wrapped) nothing is seen, and with a free that does
 * not wipe the key is found: both fail. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <malloc.h>

#include "util/json-alloc.h"
#include "util/util.h"

/* 64 bytes of key as hex: longer than jansson's first string buffer (16), so it grows by copying. */
#define KEY_HEX "00112233445566778899aabbccddeeff0123456789abcdeffedcba9876543210" \
                "f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff"
#define NEEDLE "0123456789abcdef" /* a piece of it that every partial copy holds */

void __real_free(void *p);
void __wrap_free(void *p);

static bool armed;
static unsigned freed, with_key;

void __wrap_free(void *p) {
        if (armed && p) {
                freed++;
                if (memmem(p, malloc_usable_size(p), NEEDLE, strlen(NEEDLE)))
                        with_key++;
        }
        __real_free(p);
}

static void setup(void) {
        json_alloc_install();
        freed = with_key = 0;
}

TestSuite(json_alloc, .init = setup);

static void parse_and_free(const char *text) {
        armed = true;
        json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
        json_decref(j);
        armed = false;
}

Test(json_alloc, parsed_key_is_wiped) {
        parse_and_free("{\"credential\": {\"key\": \"" KEY_HEX "\", \"keyID\": \"k1\"}}");
        cr_assert_gt(freed, 0u, "jansson's buffers do not reach json_alloc_free()");
        cr_assert_eq(with_key, 0u, "%u freed block(s) still held the key", with_key);
}

/* The parse fails after the key: jansson frees the partial tree and its token buffer itself. */
Test(json_alloc, failed_parse_is_wiped) {
        parse_and_free("{\"kpm\": \"" KEY_HEX "\", \"nodeID\": ");
        cr_assert_gt(freed, 0u);
        cr_assert_eq(with_key, 0u, "%u freed block(s) still held the key", with_key);
}

/* A key formatted into a value and dumped (jansson's growing strbuffer), then freed. */
Test(json_alloc, formatted_key_is_wiped) {
        armed = true;
        json_t *o = json_pack("{s:s}", "key", KEY_HEX);
        char *text = json_dumps(o, JSON_COMPACT);
        cr_assert_not_null(text);
        json_decref(o);
        json_alloc_free(text);
        armed = false;
        cr_assert_gt(freed, 1u, "jansson's buffers do not reach json_alloc_free()");
        cr_assert_eq(with_key, 0u, "%u freed block(s) still held the key", with_key);
}

/* SPDX-License-Identifier: MIT */
/* 4-way set-associative: an identity's hash picks a set of 4; the least recently used of the set
 * makes room. O(1) per handshake, no allocation after psk_cache_new(). */
#include "mef/psk-cache.h"
#include "util/hash.h"
#include "util/util.h"

#define WAYS 4u
#define SETS (PSK_CACHE_SIZE / WAYS)

typedef struct entry {
        char identity[MSG_ID_MAX + 1]; /* "" when free */
        uint8_t key[MSG_KEY_MAX];
        size_t len;
        uint64_t used;
} entry_t;

struct psk_cache {
        entry_t e[SETS][WAYS];
};

static entry_t *set_of(psk_cache_t *c, const char *identity) {
        return c->e[hash_string(identity) % SETS];
}

static entry_t *find(psk_cache_t *c, const char *identity) {
        entry_t *set = set_of(c, identity);
        for (unsigned i = 0; i < WAYS; i++)
                if (set[i].identity[0] && streq(set[i].identity, identity))
                        return &set[i];
        return NULL;
}

int psk_cache_new(psk_cache_t **ret) {
        psk_cache_t *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *ret = c;
        return 0;
}

psk_cache_t *psk_cache_free(psk_cache_t *c) {
        if (c) {
                erase_free(c, sizeof *c);
        }
        return NULL;
}

void psk_cache_put(psk_cache_t *c, const char *identity, const uint8_t *key, size_t len, uint64_t now) {
        if (!c || !identity || !*identity || strlen(identity) > MSG_ID_MAX || len == 0 || len > MSG_KEY_MAX)
                return;
        entry_t *e = find(c, identity);
        if (!e) {
                entry_t *set = set_of(c, identity);
                e = &set[0];
                for (unsigned i = 1; i < WAYS && e->identity[0]; i++)
                        if (!set[i].identity[0] || set[i].used < e->used)
                                e = &set[i];
        }
        erase(e, sizeof *e);
        snprintf(e->identity, sizeof e->identity, "%s", identity);
        memcpy(e->key, key, len);
        e->len = len;
        e->used = now;
}

size_t psk_cache_get(psk_cache_t *c, const char *identity, uint8_t key[MSG_KEY_MAX], uint64_t now) {
        entry_t *e = c && identity ? find(c, identity) : NULL;
        if (!e)
                return 0;
        e->used = now;
        memcpy(key, e->key, e->len);
        return e->len;
}

void psk_cache_drop(psk_cache_t *c, const char *identity) {
        entry_t *e = c && identity ? find(c, identity) : NULL;
        if (e)
                erase(e, sizeof *e);
}

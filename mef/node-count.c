/* SPDX-License-Identifier: MIT */
/* Open addressing with linear probing in a power-of-two table at most half full, so a probe
 * ends soon; a key at 0 leaves by backward shift (the entries after it in its run move up when
 * that keeps them reachable), so no tombstones pile up as nodes come and go. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mef/node-count.h"
#include "util/hash.h"
#include "util/util.h"

typedef struct entry {
        uint64_t hash;
        char *key; /* NULL: free slot */
        unsigned count;
} entry_t;

struct node_count {
        entry_t *slots;
        size_t mask; /* slots - 1 */
        size_t n_keys;
};

static int slots_alloc(size_t keys, entry_t **ret, size_t *ret_mask) {
        size_t n = 4;
        while (n / 2 < keys) {
                if (n > SIZE_MAX / 2 / sizeof(entry_t))
                        return -ENOMEM;
                n *= 2;
        }
        entry_t *s = calloc(n, sizeof *s);
        if (!s)
                return -ENOMEM;
        *ret = s;
        *ret_mask = n - 1;
        return 0;
}

int node_count_new(size_t keys, node_count_t **ret) {
        if (keys < 1 || !ret)
                return -EINVAL;
        _cleanup_free_ node_count_t *t = calloc(1, sizeof *t);
        if (!t)
                return -ENOMEM;
        int r = slots_alloc(keys, &t->slots, &t->mask);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(t);
        return 0;
}

node_count_t *node_count_free(node_count_t *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i <= t->mask; i++)
                free(t->slots[i].key);
        free(t->slots);
        free(t);
        return NULL;
}

/* key's slot, or the free one that ends its run */
static size_t slot_find(const node_count_t *t, const char *key, uint64_t h) {
        size_t i = h & t->mask;
        while (t->slots[i].key && !(t->slots[i].hash == h && streq(t->slots[i].key, key)))
                i = (i + 1) & t->mask;
        return i;
}

unsigned node_count_get(const node_count_t *t, const char *key) {
        return t->slots[slot_find(t, key, hash_string(key))].count;
}

static int grow(node_count_t *t) {
        entry_t *slots;
        size_t mask;
        int r = slots_alloc((t->mask + 1) / 2 + 1, &slots, &mask);
        if (r < 0)
                return r;
        for (size_t i = 0; i <= t->mask; i++) {
                if (!t->slots[i].key)
                        continue;
                size_t j = t->slots[i].hash & mask;
                while (slots[j].key)
                        j = (j + 1) & mask;
                slots[j] = t->slots[i];
        }
        free(t->slots);
        t->slots = slots;
        t->mask = mask;
        return 0;
}

/* One more for key, whose hash is h and slot_find()'s answer i */
static int slot_add(node_count_t *t, const char *key, uint64_t h, size_t i) {
        if (t->slots[i].key) {
                t->slots[i].count++;
                return 0;
        }
        if (t->n_keys + 1 > (t->mask + 1) / 2) {
                int r = grow(t);
                if (r < 0)
                        return r;
                i = slot_find(t, key, h);
        }
        char *copy = strdup(key);
        if (!copy)
                return -ENOMEM;
        t->slots[i] = (entry_t) { .hash = h, .key = copy, .count = 1 };
        t->n_keys++;
        return 0;
}

int node_count_add(node_count_t *t, const char *key) {
        uint64_t h = hash_string(key);
        return slot_add(t, key, h, slot_find(t, key, h));
}

int node_count_add_below(node_count_t *t, const char *key, unsigned cap, unsigned *ret_count) {
        uint64_t h = hash_string(key);
        size_t i = slot_find(t, key, h);
        unsigned count = t->slots[i].count;
        int r = count < cap ? slot_add(t, key, h, i) : 0;
        if (r < 0)
                return r;
        if (ret_count)
                *ret_count = count;
        return count < cap;
}

/* Empties slot i: each later entry of the run moves into the hole when the hole lies between
 * its home slot and where it is, so every key stays reachable from its home. */
static void slot_delete(node_count_t *t, size_t i) {
        free(t->slots[i].key);
        for (size_t j = (i + 1) & t->mask; t->slots[j].key; j = (j + 1) & t->mask) {
                size_t home = t->slots[j].hash & t->mask;
                if (((j - home) & t->mask) >= ((j - i) & t->mask)) {
                        t->slots[i] = t->slots[j];
                        i = j;
                }
        }
        t->slots[i] = (entry_t) {};
}

int node_count_remove(node_count_t *t, const char *key) {
        size_t i = slot_find(t, key, hash_string(key));
        if (!t->slots[i].key)
                return -ENOENT;
        if (--t->slots[i].count == 0) {
                slot_delete(t, i);
                t->n_keys--;
        }
        return 0;
}

size_t node_count_size(const node_count_t *t) {
        return t->n_keys;
}

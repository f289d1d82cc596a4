/* SPDX-License-Identifier: MIT */
/* A flat table searched by a hash of the key first: enrolments and refusals are rare next to
 * what each one costs (a handshake; a store write), so a scan of a few thousand entries is
 * cheap and needs no rehashing or tombstones. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mef/ratelimit.h"
#include "util/hash.h"
#include "util/util.h"

typedef struct entry {
        uint64_t hash;
        char *key;          /* NULL: free slot */
        uint64_t opened;    /* the window's first event */
        unsigned count;     /* events in the window, refused ones not counted */
        unsigned refused;   /* refusals in the window */
        unsigned refused_before; /* in the key's window before this one */
} entry_t;

struct ratelimit {
        pthread_mutex_t lock; /* the MEF's store threads call it at once */
        unsigned limit;
        uint64_t window;
        size_t max_keys, n_keys;
        entry_t *entries;
};

int ratelimit_new(unsigned limit, uint64_t window, size_t max_keys, ratelimit_t **ret) {
        if (limit < 1 || window < 1 || max_keys < 1 || !ret)
                return -EINVAL;
        _cleanup_free_ ratelimit_t *rl = calloc(1, sizeof *rl);
        if (!rl)
                return -ENOMEM;
        rl->entries = calloc(max_keys, sizeof *rl->entries);
        if (!rl->entries)
                return -ENOMEM;
        pthread_mutex_init(&rl->lock, NULL);
        rl->limit = limit;
        rl->window = window;
        rl->max_keys = max_keys;
        *ret = TAKE_PTR(rl);
        return 0;
}

ratelimit_t *ratelimit_free(ratelimit_t *rl) {
        if (!rl)
                return NULL;
        for (size_t i = 0; i < rl->max_keys; i++)
                free(rl->entries[i].key);
        free(rl->entries);
        pthread_mutex_destroy(&rl->lock);
        free(rl);
        return NULL;
}

size_t ratelimit_size(ratelimit_t *rl) {
        if (!rl)
                return 0;
        pthread_mutex_lock(&rl->lock);
        size_t n = rl->n_keys;
        pthread_mutex_unlock(&rl->lock);
        return n;
}

static bool window_open(const ratelimit_t *rl, const entry_t *e, uint64_t now) {
        return now >= e->opened && now - e->opened < rl->window;
}

/* A slot for a new key: a free one, else the key whose window opened first (all windows are
 * equally long: a closed one, when there is one, is that one). */
static entry_t *slot_pick(ratelimit_t *rl) {
        entry_t *oldest = NULL;
        for (size_t i = 0; i < rl->max_keys; i++) {
                entry_t *e = &rl->entries[i];
                if (!e->key)
                        return e;
                if (!oldest || e->opened < oldest->opened)
                        oldest = e;
        }
        return oldest;
}

static entry_t *entry_find(ratelimit_t *rl, const char *key, uint64_t h) {
        for (size_t i = 0; i < rl->max_keys; i++)
                if (rl->entries[i].key && rl->entries[i].hash == h && streq(rl->entries[i].key, key))
                        return &rl->entries[i];
        return NULL;
}

static int take_locked(ratelimit_t *rl, const char *key, uint64_t now, unsigned *ret_refused) {
        uint64_t h = hash_string(key);
        entry_t *e = entry_find(rl, key, h);
        if (!e) {
                char *copy = strdup(key);
                if (!copy)
                        return -ENOMEM;
                e = slot_pick(rl);
                if (!e->key)
                        rl->n_keys++;
                free(e->key);
                *e = (entry_t) { .hash = h, .key = copy, .opened = now };
        } else if (!window_open(rl, e, now))
                *e = (entry_t) { .hash = e->hash, .key = e->key, .opened = now, .refused_before = e->refused };

        if (e->count < rl->limit) {
                /* told once: a refund may bring the count back to 0 */
                *ret_refused = e->count++ == 0 ? e->refused_before : 0;
                e->refused_before = 0;
                return 0;
        }
        if (e->refused < UINT_MAX)
                e->refused++;
        *ret_refused = e->refused;
        uint64_t left = e->opened + rl->window - now; /* > 0: the window is open */
        uint64_t s = (left + 999999u) / 1000000u;
        return (int) MIN(MAX(s, (uint64_t) 1), (uint64_t) INT32_MAX);
}

int ratelimit_take_counted(ratelimit_t *rl, const char *key, uint64_t now, unsigned *ret_refused) {
        if (!rl || !key)
                return -EINVAL;
        unsigned refused = 0;
        pthread_mutex_lock(&rl->lock);
        int r = take_locked(rl, key, now, &refused);
        pthread_mutex_unlock(&rl->lock);
        if (ret_refused)
                *ret_refused = refused;
        return r;
}

void ratelimit_refund(ratelimit_t *rl, const char *key, uint64_t taken) {
        if (!rl || !key)
                return;
        pthread_mutex_lock(&rl->lock);
        entry_t *e = entry_find(rl, key, hash_string(key));
        /* only the window that counted it (taken falls in it), not one opened since */
        if (e && e->count > 0 && window_open(rl, e, taken))
                e->count--;
        pthread_mutex_unlock(&rl->lock);
}

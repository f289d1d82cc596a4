/* SPDX-License-Identifier: MIT */
/* The per-node connection counts (mef/node-count.c): adds and removes, a key leaving at 0 and
 * coming back, keys whose hashes collide (runs that wrap around the table's end, removals in
 * the middle of a run), a table filled to its size and past it, adds below a cap, and random
 * use against a plain array that counts the same. */
#include <criterion/criterion.h>
#include <stdio.h>

#include "mef/node-count.h"
#include "util/hash.h"
#include "util/util.h"

/* Home slot bits the colliding keys share: every table up to this many slots puts them in one
 * run, starting at its last slot or at its first. */
#define HOME_BITS 0xfffu

static node_count_t *t;

static void teardown(void) {
        t = node_count_free(t);
}

TestSuite(node_count, .fini = teardown);

/* n keys "PREFIX-i" whose hashes end in the bits home: one home slot in any table up to HOME_BITS + 1 */
static void colliding_keys(const char *prefix, uint64_t home, char keys[][32], size_t n) {
        for (unsigned i = 0, found = 0; found < n; i++) {
                snprintf(keys[found], sizeof keys[found], "%s-%u", prefix, i);
                if ((hash_string(keys[found]) & HOME_BITS) == home)
                        found++;
        }
}

Test(node_count, adds_and_removes) {
        cr_assert_eq(node_count_new(0, &t), -EINVAL);
        cr_assert_eq(node_count_new(4, &t), 0);
        cr_assert_eq(node_count_get(t, "psk:a"), 0);
        cr_assert_eq(node_count_add(t, "psk:a"), 0);
        cr_assert_eq(node_count_add(t, "psk:a"), 0);
        cr_assert_eq(node_count_add(t, "cert:b"), 0);
        cr_assert_eq(node_count_get(t, "psk:a"), 2);
        cr_assert_eq(node_count_get(t, "cert:b"), 1);
        cr_assert_eq(node_count_get(t, "psk:c"), 0);
        cr_assert_eq(node_count_size(t), 2);

        cr_assert_eq(node_count_remove(t, "psk:a"), 0);
        cr_assert_eq(node_count_get(t, "psk:a"), 1);
        cr_assert_eq(node_count_size(t), 2);
        cr_assert_eq(node_count_remove(t, "psk:a"), 0);
        cr_assert_eq(node_count_get(t, "psk:a"), 0);
        cr_assert_eq(node_count_size(t), 1, "a key at 0 leaves");
        cr_assert_eq(node_count_remove(t, "psk:a"), -ENOENT, "never below 0");
        cr_assert_eq(node_count_remove(t, "psk:c"), -ENOENT);
        cr_assert_eq(node_count_get(t, "cert:b"), 1, "another key untouched");
}

Test(node_count, add_below_a_cap) {
        unsigned count = 99;
        cr_assert_eq(node_count_new(4, &t), 0);
        cr_assert_eq(node_count_add_below(t, "psk:a", 2, &count), 1, "an absent key: added");
        cr_assert_eq(count, 0);
        cr_assert_eq(node_count_get(t, "psk:a"), 1);
        cr_assert_eq(node_count_add_below(t, "psk:a", 2, &count), 1, "below the cap: counted");
        cr_assert_eq(count, 1);
        cr_assert_eq(node_count_get(t, "psk:a"), 2);
        for (int i = 0; i < 3; i++) {
                count = 99;
                cr_assert_eq(node_count_add_below(t, "psk:a", 2, &count), 0, "at the cap: refused");
                cr_assert_eq(count, 2, "the count it holds");
                cr_assert_eq(node_count_get(t, "psk:a"), 2, "unchanged");
        }
        cr_assert_eq(node_count_add_below(t, "psk:a", 1, NULL), 0, "above the cap: refused");
        cr_assert_eq(node_count_get(t, "psk:a"), 2);
        cr_assert_eq(node_count_add_below(t, "psk:a", 3, NULL), 1, "a higher cap: counted");
        cr_assert_eq(node_count_get(t, "psk:a"), 3);

        cr_assert_eq(node_count_add_below(t, "cert:b", 0, &count), 0, "cap 0: even an absent key refused");
        cr_assert_eq(count, 0);
        cr_assert_eq(node_count_get(t, "cert:b"), 0);
        cr_assert_eq(node_count_size(t), 1, "and not put in the table");
        cr_assert_eq(node_count_remove(t, "cert:b"), -ENOENT);
}

Test(node_count, back_from_zero) {
        cr_assert_eq(node_count_new(2, &t), 0);
        cr_assert_eq(node_count_add(t, "psk:stays"), 0);
        /* far more comings and goings than the table has slots: nothing piles up */
        for (int i = 0; i < 10000; i++) {
                cr_assert_eq(node_count_add(t, "psk:comes-and-goes"), 0);
                cr_assert_eq(node_count_get(t, "psk:comes-and-goes"), 1, "round %d: counts from 0 again", i);
                cr_assert_eq(node_count_size(t), 2);
                cr_assert_eq(node_count_remove(t, "psk:comes-and-goes"), 0);
                cr_assert_eq(node_count_get(t, "psk:comes-and-goes"), 0);
                cr_assert_eq(node_count_size(t), 1);
        }
        cr_assert_eq(node_count_get(t, "psk:stays"), 1);
}

/* Each key at its count in want[] (0: not in the table), and the table as big as that. */
static void counts_are(char keys[][32], const unsigned *want, size_t n) {
        size_t in = 0;
        for (size_t i = 0; i < n; i++) {
                cr_assert_eq(node_count_get(t, keys[i]), want[i], "%s", keys[i]);
                in += want[i] > 0;
        }
        cr_assert_eq(node_count_size(t), in);
}

Test(node_count, collisions) {
        /* 0-3 home at the last slot (their run wraps), 4-5 at slot 0 (behind the wrapped run),
         * 6 at slot 4 (where it sits inside that run: it never moves) */
        char k[7][32];
        colliding_keys("wrap", HOME_BITS, k, 4);
        colliding_keys("first", 0, k + 4, 2);
        colliding_keys("home4", 4, k + 6, 1);
        cr_assert_eq(node_count_new(8, &t), 0);
        const unsigned order[] = { 6, 0, 1, 2, 3, 4, 5 }, all[] = { 1, 2, 3, 4, 1, 1, 1 };
        for (size_t i = 0; i < ELEMENTSOF(order); i++)
                for (unsigned n = 0; n < all[order[i]]; n++)
                        cr_assert_eq(node_count_add(t, k[order[i]]), 0);
        counts_are(k, all, 7);

        /* the head of the run leaves: the rest (the wrapped keys and those behind them) shift
         * back and are still found */
        cr_assert_eq(node_count_remove(t, k[0]), 0);
        counts_are(k, (const unsigned[]) { 0, 2, 3, 4, 1, 1, 1 }, 7);

        /* one from the middle, then the other home's first, just before the key at its home */
        for (int n = 0; n < 3; n++)
                cr_assert_eq(node_count_remove(t, k[2]), 0);
        cr_assert_eq(node_count_remove(t, k[4]), 0);
        counts_are(k, (const unsigned[]) { 0, 2, 0, 4, 0, 1, 1 }, 7);

        /* and back in, counted from 0 */
        cr_assert_eq(node_count_add(t, k[0]), 0);
        cr_assert_eq(node_count_add(t, k[2]), 0);
        counts_are(k, (const unsigned[]) { 1, 2, 1, 4, 0, 1, 1 }, 7);
}

Test(node_count, full_and_past) {
        enum { N = 100 };
        char key[32];
        cr_assert_eq(node_count_new(N, &t), 0);
        /* as many keys as it was made for, then as many again: it grows, nothing is lost */
        for (int round = 0; round < 2; round++) {
                for (int i = round * N; i < (round + 1) * N; i++) {
                        snprintf(key, sizeof key, "psk:node-%d", i);
                        cr_assert_eq(node_count_add(t, key), 0);
                        cr_assert_eq(node_count_add(t, key), 0);
                }
                cr_assert_eq(node_count_size(t), (size_t) (round + 1) * N);
                for (int i = 0; i < (round + 1) * N; i++) {
                        snprintf(key, sizeof key, "psk:node-%d", i);
                        cr_assert_eq(node_count_get(t, key), 2, "%s", key);
                }
        }
        for (int i = 0; i < 2 * N; i++) {
                snprintf(key, sizeof key, "psk:node-%d", i);
                cr_assert_eq(node_count_remove(t, key), 0);
                cr_assert_eq(node_count_remove(t, key), 0);
                cr_assert_eq(node_count_get(t, key), 0);
        }
        cr_assert_eq(node_count_size(t), 0);
}

/* Random adds (plain, or below a cap from 0 to 4) and removes, half of them on keys of one
 * home, against a plain array. */
Test(node_count, random_against_model) {
        enum { KEYS = 48, ROUNDS = 20000 };
        char keys[KEYS][32];
        unsigned model[KEYS] = {};
        colliding_keys("same", 7, keys, KEYS / 2);
        for (int i = KEYS / 2; i < KEYS; i++)
                snprintf(keys[i], sizeof keys[i], "cert:%d", i);
        cr_assert_eq(node_count_new(1, &t), 0); /* grows on the way */
        uint64_t x = 0x9e3779b97f4a7c15ull;
        for (int round = 0; round < ROUNDS; round++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
                unsigned k = (unsigned) (x % KEYS);
                if (((x >> 32) & 1) && ((x >> 33) & 1)) {
                        /* as many adds as removes: keys reach 0 and come back often */
                        cr_assert_eq(node_count_add(t, keys[k]), 0);
                        model[k]++;
                } else if ((x >> 32) & 1) {
                        unsigned cap = (unsigned) ((x >> 34) % 5), count = 99;
                        cr_assert_eq(node_count_add_below(t, keys[k], cap, &count), model[k] < cap);
                        cr_assert_eq(count, model[k]);
                        model[k] += model[k] < cap;
                } else {
                        cr_assert_eq(node_count_remove(t, keys[k]), model[k] > 0 ? 0 : -ENOENT);
                        if (model[k] > 0)
                                model[k]--;
                }
                if (round % 4 == 0 || round == ROUNDS - 1)
                        counts_are(keys, model, KEYS);
                /* now and then every key to 0: the table empties and fills again */
                if (round % 5000 == 4999)
                        for (int i = 0; i < KEYS; i++)
                                for (; model[i] > 0; model[i]--)
                                        cr_assert_eq(node_count_remove(t, keys[i]), 0);
        }
}

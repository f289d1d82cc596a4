/* SPDX-License-Identifier: MIT */
#pragma once
/* A count per key, kept as what it counts comes and goes, so that reading one costs O(1)
 * expected rather than a scan of everything counted: each node identity's connections in
 * service or overflow (mef/conn-node-cap.c). A key is in the table while its count is above 0.
 * Bookkeeping only, for one thread (the event loop's). */
#include <stddef.h>

typedef struct node_count node_count_t;

/* Room for keys keys (>= 1) before the table first grows. */
int node_count_new(size_t keys, node_count_t **ret);
node_count_t *node_count_free(node_count_t *t);

/* key's count: 0 when it is not in the table. */
unsigned node_count_get(const node_count_t *t, const char *key);
/* One more for key: 0, or -ENOMEM with nothing counted. */
int node_count_add(node_count_t *t, const char *key);
/* One more for key if its count is below cap, in one lookup: 1 when counted, 0 when not (the
 * count at cap or above stays as it is, a key not in the table stays out), or -ENOMEM with
 * nothing counted. ret_count (may be NULL): key's count before the call. */
int node_count_add_below(node_count_t *t, const char *key, unsigned cap, unsigned *ret_count);
/* One less for key: 0 (at 0 it leaves the table), or -ENOENT when it is not counted. */
int node_count_remove(node_count_t *t, const char *key);
/* Keys in the table (tests). */
size_t node_count_size(const node_count_t *t);

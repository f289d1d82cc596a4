/* SPDX-License-Identifier: MIT */
/* The store failing after a commit, or its commit's answer lost (store-fault.h). */
#include <errno.h>

#include "mef/store.h"
#include "store-fault.h"

bool store_fault_armed, store_fault_committed, store_fault_answer_lost;

int __real_store_commit(mef_store_t *s);
int __real_store_node_get(mef_store_t *s, const char *node_id, store_node_t *ret);
int __wrap_store_commit(mef_store_t *s);
int __wrap_store_node_get(mef_store_t *s, const char *node_id, store_node_t *ret);

int __wrap_store_commit(mef_store_t *s) {
        int r = __real_store_commit(s);
        store_fault_committed = store_fault_committed || (r == 0 && store_fault_armed);
        return r == 0 && store_fault_answer_lost ? -ECONNRESET : r;
}

int __wrap_store_node_get(mef_store_t *s, const char *node_id, store_node_t *ret) {
        return store_fault_committed ? -EBUSY : __real_store_node_get(s, node_id, ret);
}

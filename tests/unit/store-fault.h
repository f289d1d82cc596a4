/* SPDX-License-Identifier: MIT */
#pragma once
/* store_commit() and store_node_get() replaced at link time (tests/unit/meson.build): once
 * store_fault_armed, every node read after a commit fails as a busy store's does, and
 * store_fault_committed says a commit was made. While store_fault_answer_lost, every commit is
 * made and then fails as one whose answer a lost connection took (-ECONNRESET). */
#include <stdbool.h>

extern bool store_fault_armed, store_fault_committed, store_fault_answer_lost;

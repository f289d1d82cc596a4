/* SPDX-License-Identifier: MIT */
#pragma once
/* Names for the values of an enum (0.._X_MAX - 1, _X_INVALID = -EINVAL), kept in one table
 * indexed by value: `static const char *const x_table[_X_MAX] = { [X_A] = "a", ... };` then
 * DEFINE_STRING_TABLE(x, x_t, x_table) defines x_to_string() (NULL out of range) and
 * x_from_string() (-EINVAL, i.e. _X_INVALID, for NULL or an unknown name). */
#include <errno.h>
#include <stddef.h>

#include "util/macro.h"

static inline int string_table_lookup(const char *const *table, size_t n, const char *s) {
        for (size_t i = 0; s && i < n; i++)
                if (table[i] && streq(table[i], s))
                        return (int) i;
        return -EINVAL;
}

#define DEFINE_STRING_TABLE_TO_STRING(name, type, table)                                \
        const char *name##_to_string(type v) {                                          \
                return (int) v >= 0 && (size_t) v < ELEMENTSOF(table) ? table[v] : NULL; \
        }

#define DEFINE_STRING_TABLE_FROM_STRING(name, type, table)                              \
        type name##_from_string(const char *s) {                                        \
                return (type) string_table_lookup(table, ELEMENTSOF(table), s);         \
        }

#define DEFINE_STRING_TABLE(name, type, table)                                          \
        DEFINE_STRING_TABLE_TO_STRING(name, type, table)                                \
        DEFINE_STRING_TABLE_FROM_STRING(name, type, table)

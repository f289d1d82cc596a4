/* SPDX-License-Identifier: MIT */
#pragma once
/* Intrusive doubly linked lists: each item has prev and next pointers, head points at the first
 * item (NULL: empty). A list that keeps its last item too updates that itself. */

/* item (its prev NULL, as calloc leaves it) becomes the first. */
#define LIST_PREPEND(head, item)                     \
        do {                                         \
                (item)->next = (head);               \
                if (head)                            \
                        (head)->prev = (item);       \
                (head) = (item);                     \
        } while (0)

/* item out of the list; its own prev and next are left as they were. */
#define LIST_REMOVE(head, item)                                  \
        do {                                                     \
                if ((item)->prev)                                \
                        (item)->prev->next = (item)->next;       \
                else                                             \
                        (head) = (item)->next;                   \
                if ((item)->next)                                \
                        (item)->next->prev = (item)->prev;       \
        } while (0)

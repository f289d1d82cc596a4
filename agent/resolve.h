/* SPDX-License-Identifier: MIT */
#pragma once
/* Name resolution that does not block an sd-event loop: getaddrinfo() in a detached helper
 * thread, the result delivered through an eventfd. IP literals are resolved at once. */

#include <netdb.h>
#include <systemd/sd-event.h>

typedef struct resolve resolve_t;

/* ai (TCP addresses, owned by the callee: freeaddrinfo()) on success, else NULL and r < 0. */
typedef void (*resolve_done_t)(resolve_t *q, int r, struct addrinfo *ai, void *userdata);

/* Returns 1 with *ret_ai set when host is an IP literal (nothing pending), 0 with *ret set when
 * the lookup runs (done is called from the loop), or a negative errno: -ENOENT the name does not
 * resolve, -EINVAL bad arguments, -ENOMEM, -EAGAIN no thread could be started. */
int resolve_start(sd_event *e, const char *host, const char *port, resolve_done_t done, void *userdata,
                  resolve_t **ret, struct addrinfo **ret_ai);

/* Cancel (done is not called) and free. The helper thread, if still running, finishes on its
 * own and frees what it holds. NULL is fine. Returns NULL. */
resolve_t *resolve_free(resolve_t *q);
static inline void resolve_freep(resolve_t **q) {
        resolve_free(*q);
}

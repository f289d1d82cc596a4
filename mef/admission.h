/* SPDX-License-Identifier: MIT */
#pragma once
/* Which unauthenticated connection gives way when there is no room for another.
 *
 * msce-mef keeps the connections that have not authenticated (TLS handshake under way, or done
 * without a credential) in a pool of their own, bounded in all and per source, apart from the
 * authenticated ones, which it never evicts. A new connection is never refused for want of
 * room in this pool: an older one goes instead (admission_victim), chosen so that a gateway's
 * handshake under way goes last:
 *  - a source at its bound gives up its oldest connection that has sent nothing for
 *    idle_grace; when it has none (handshakes under way, connections whose ClientHello is on
 *    its way: gateways behind one NAT address look like that), it may go over its bound as
 *    long as the pool has room;
 *  - a full pool makes the source holding the most give up one of its own: the oldest that has
 *    sent nothing yet, else its oldest.
 * A source is an IPv4 address or an IPv6 /64 (an IPv4-mapped IPv6 address is its IPv4 one).
 * Bookkeeping only (no I/O; callers pass CLOCK_MONOTONIC usec): each connection embeds an
 * admission_entry_t; age is the order of admission_add(). The cost of each call is linear in
 * max_total at most. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct source_key {
        uint8_t family; /* AF_INET, AF_INET6, or 0 (anything else: all one source) */
        uint8_t addr[8]; /* IPv4: 4 bytes; IPv6: the /64 */
} source_key_t;

/* "192.0.2.1", "2001:db8:1:2::/64" or "?", at most this long with its NUL */
#define SOURCE_KEY_STRLEN 48u

void source_key_from_sockaddr(const struct sockaddr_storage *sa, source_key_t *ret);
const char *source_key_format(const source_key_t *k, char *buf, size_t size);

typedef struct admission admission_t;
typedef struct admission_source admission_source_t;
typedef struct admission_entry admission_entry_t;

struct admission_entry {
        admission_entry_t *prev, *next; /* age order, oldest first */
        admission_source_t *source;     /* NULL: not in the pool */
        uint64_t since;                 /* added */
        bool idle;                      /* nothing received yet */
};

/* max_per_source <= max_total, both >= 1. */
int admission_new(unsigned max_total, unsigned max_per_source, uint64_t idle_grace, admission_t **ret);
admission_t *admission_free(admission_t *a);

/* NULL when a connection from key fits, else the entry to remove first (the caller closes its
 * connection, which removes it; then asks again). */
admission_entry_t *admission_victim(const admission_t *a, const source_key_t *key, uint64_t now);
/* Adds e (idle, youngest). -ENOBUFS when there is no room: remove the victim first. */
int admission_add(admission_t *a, admission_entry_t *e, const source_key_t *key, uint64_t now);
/* The connection received its first bytes. */
void admission_mark_active(admission_entry_t *e);
/* Takes e out of the pool; harmless when it is not in it. */
void admission_remove(admission_t *a, admission_entry_t *e);
static inline bool admission_contains(const admission_entry_t *e) {
        return e->source != NULL;
}

unsigned admission_count(const admission_t *a);
unsigned admission_count_source(const admission_t *a, const source_key_t *key);

/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "mef/admission.h"
#include "util/list.h"
#include "util/util.h"

struct admission_source {
        source_key_t key;
        unsigned count; /* 0: free slot */
};

struct admission {
        unsigned max_total, max_per_source;
        uint64_t idle_grace;
        unsigned count;
        unsigned n_slots;              /* slots in use or used before: the scan bound */
        admission_entry_t *oldest, *youngest;
        admission_source_t sources[];  /* max_total: a source holds at least one entry */
};

void source_key_from_sockaddr(const struct sockaddr_storage *sa, source_key_t *ret) {
        *ret = (source_key_t) {};
        if (sa->ss_family == AF_INET) {
                const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
                ret->family = AF_INET;
                memcpy(ret->addr, &in->sin_addr, 4);
        } else if (sa->ss_family == AF_INET6) {
                const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) sa;
                if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
                        ret->family = AF_INET;
                        memcpy(ret->addr, in6->sin6_addr.s6_addr + 12, 4);
                } else {
                        ret->family = AF_INET6;
                        memcpy(ret->addr, in6->sin6_addr.s6_addr, 8);
                }
        }
}

const char *source_key_format(const source_key_t *k, char *buf, size_t size) {
        char host[INET6_ADDRSTRLEN] = "?";
        if (k->family == AF_INET) {
                inet_ntop(AF_INET, k->addr, host, sizeof host);
                snprintf(buf, size, "%s", host);
        } else if (k->family == AF_INET6) {
                uint8_t a[16] = {};
                memcpy(a, k->addr, 8);
                inet_ntop(AF_INET6, a, host, sizeof host);
                snprintf(buf, size, "%s/64", host);
        } else
                snprintf(buf, size, "?");
        return buf;
}

static bool key_eq(const source_key_t *a, const source_key_t *b) {
        return a->family == b->family && memcmp(a->addr, b->addr, sizeof a->addr) == 0;
}

int admission_new(unsigned max_total, unsigned max_per_source, uint64_t idle_grace, admission_t **ret) {
        if (max_total == 0 || max_per_source == 0 || max_per_source > max_total || !ret)
                return -EINVAL;
        admission_t *a = calloc(1, sizeof *a + (size_t) max_total * sizeof a->sources[0]);
        if (!a)
                return -ENOMEM;
        a->max_total = max_total;
        a->max_per_source = max_per_source;
        a->idle_grace = idle_grace;
        *ret = a;
        return 0;
}

admission_t *admission_free(admission_t *a) {
        free(a);
        return NULL;
}

static admission_source_t *source_find(const admission_t *a, const source_key_t *key) {
        for (unsigned i = 0; i < a->n_slots; i++)
                if (a->sources[i].count > 0 && key_eq(&a->sources[i].key, key))
                        return (admission_source_t *) &a->sources[i];
        return NULL;
}

/* The oldest entry of source s (any source when NULL) that is idle, else the oldest one. */
static admission_entry_t *oldest_of(const admission_t *a, const admission_source_t *s) {
        admission_entry_t *first = NULL;
        for (admission_entry_t *e = a->oldest; e; e = e->next) {
                if (s && e->source != s)
                        continue;
                if (e->idle)
                        return e;
                if (!first)
                        first = e;
        }
        return first;
}

/* The oldest entry of s that has been idle for idle_grace, NULL when none has. */
static admission_entry_t *oldest_silent_of(const admission_t *a, const admission_source_t *s, uint64_t now) {
        for (admission_entry_t *e = a->oldest; e; e = e->next)
                if (e->source == s && e->idle)
                        return now - e->since >= a->idle_grace ? e : NULL;
        return NULL;
}

admission_entry_t *admission_victim(const admission_t *a, const source_key_t *key, uint64_t now) {
        const admission_source_t *s = source_find(a, key);
        if (s && s->count >= a->max_per_source) {
                admission_entry_t *e = oldest_silent_of(a, s, now);
                if (e)
                        return e;
                /* Handshakes under way, or connections just accepted whose ClientHello is on
                 * its way: many gateways behind one address (NAT) look like this. They stay
                 * unless the pool is full. */
        }
        if (a->count < a->max_total)
                return NULL;
        /* Full: the largest source gives up one of its own. A gateway's source holds one or a
         * few: an attacker must come from about max_total / max_per_source sources or more
         * before it is its turn. */
        const admission_source_t *largest = NULL;
        for (unsigned i = 0; i < a->n_slots; i++)
                if (!largest || a->sources[i].count > largest->count)
                        largest = &a->sources[i];
        return oldest_of(a, largest);
}

int admission_add(admission_t *a, admission_entry_t *e, const source_key_t *key, uint64_t now) {
        if (e->source)
                return -EALREADY;
        admission_source_t *s = source_find(a, key);
        if (a->count >= a->max_total || (s && s->count >= a->max_per_source && oldest_silent_of(a, s, now)))
                return -ENOBUFS;
        if (!s) {
                /* a free slot exists: fewer sources than entries, and count < max_total */
                for (unsigned i = 0; i < a->max_total && !s; i++)
                        if (a->sources[i].count == 0)
                                s = &a->sources[i];
                if (!s)
                        return -ENOBUFS;
                s->key = *key;
                a->n_slots = MAX(a->n_slots, (unsigned) (s - a->sources) + 1);
        }
        s->count++;
        a->count++;
        *e = (admission_entry_t) { .prev = a->youngest, .source = s, .since = now, .idle = true };
        if (a->youngest)
                a->youngest->next = e;
        else
                a->oldest = e;
        a->youngest = e;
        return 0;
}

void admission_mark_active(admission_entry_t *e) {
        e->idle = false;
}

void admission_remove(admission_t *a, admission_entry_t *e) {
        if (!a || !e || !e->source)
                return;
        if (!e->next)
                a->youngest = e->prev;
        LIST_REMOVE(a->oldest, e);
        e->source->count--;
        a->count--;
        while (a->n_slots > 0 && a->sources[a->n_slots - 1].count == 0)
                a->n_slots--;
        *e = (admission_entry_t) {};
}

unsigned admission_count(const admission_t *a) {
        return a ? a->count : 0;
}

unsigned admission_count_source(const admission_t *a, const source_key_t *key) {
        const admission_source_t *s = a ? source_find(a, key) : NULL;
        return s ? s->count : 0;
}

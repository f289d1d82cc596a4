/* SPDX-License-Identifier: MIT */
#pragma once
/* The PSKs the handshakes last found in the store, so that while the database is unreachable
 * (or busy) a known gateway still completes its handshake and is answered 503 with Retry-After
 * (which its agent retries on) rather than a handshake failure. Only used when the store fails
 * with a transient error; a PSK the store no longer has is dropped at once. A session keyed
 * from the cache never has its request served (mef/server-exchange.c answers it 503): an entry
 * may be stale, its key replaced on another instance or with the CLI. Bounded (PSK_CACHE_SIZE
 * entries, the least recently used go), keys wiped when replaced and on free. */

#include <stddef.h>
#include <stdint.h>

#include "proto/msg.h"

#define PSK_CACHE_SIZE 4096u

typedef struct psk_cache psk_cache_t;

int psk_cache_new(psk_cache_t **ret);
psk_cache_t *psk_cache_free(psk_cache_t *c);
void psk_cache_put(psk_cache_t *c, const char *identity, const uint8_t *key, size_t len, uint64_t now);
/* The key's length (copied into key), 0 when unknown. */
size_t psk_cache_get(psk_cache_t *c, const char *identity, uint8_t key[MSG_KEY_MAX], uint64_t now);
void psk_cache_drop(psk_cache_t *c, const char *identity);

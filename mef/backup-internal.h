/* SPDX-License-Identifier: MIT */
#pragma once
/* The JSON pieces the two master key wraps share (backup.c, backup-recipient.c). */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mef/store.h"

#define BACKUP_WRAP_AAD "msce-mef backup master key v1"
#define BACKUP_WRAP_CIPHER "aes-256-gcm"
#define BACKUP_NONCE_LEN 12u
#define BACKUP_TAG_LEN 16u
#define BACKUP_KEK_LEN 32u
#define BACKUP_SEALED_LEN (STORE_MASTER_KEY_LEN + BACKUP_TAG_LEN)

/* The master key sealed with AES-256-GCM under kek (additional data BACKUP_WRAP_AAD), and
 * opened: -EKEYREJECTED when the tag does not hold (another kek, or a changed file). */
int wrap_seal(const uint8_t kek[BACKUP_KEK_LEN], const uint8_t key[STORE_MASTER_KEY_LEN],
              const uint8_t nonce[BACKUP_NONCE_LEN], uint8_t sealed[BACKUP_SEALED_LEN]);
int wrap_open(const uint8_t kek[BACKUP_KEK_LEN], const uint8_t sealed[BACKUP_SEALED_LEN],
              const uint8_t nonce[BACKUP_NONCE_LEN], uint8_t key[STORE_MASTER_KEY_LEN]);

/* n <= 128 bytes as a hex string; NULL when longer or out of memory. */
json_t *hex_json(const uint8_t *p, size_t n);
/* o (taken) as indented JSON text. */
int json_take_text(json_t *o, char **ret);
/* A hex string member of exactly n bytes; -EBADMSG otherwise. */
int hex_member(json_t *o, const char *name, uint8_t *out, size_t n);
bool string_member_is(json_t *o, const char *name, const char *want);
/* At most BACKUP_SMALL_FILE_MAX bytes, duplicate keys refused; NULL when not JSON. */
json_t *json_parse_limited(const char *text, size_t len);

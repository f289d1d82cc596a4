/* SPDX-License-Identifier: MIT */
#pragma once
/* The provisioning profile as kept at rest (inside the sealed envelope, keys/seal.h): the
 * non-secret fields of msg_profile_t, what it was obtained for (node ID, MEF URI, when), the
 * Long Term Key and one Kpsa per target.
 *
 * Serialized form, version 1 (all integers big-endian, fields in this fixed order, no
 * optional fields, so one profile has exactly one encoding):
 *
 *     u8   version        = 1
 *     str  node_id        an M2M-Node-ID (proto/ids.h), 1..MSG_ID_MAX
 *     str  mef_uri        printable ASCII, 1..MSG_URI_MAX
 *     str  cse_id         a CSE-ID, 1..MSG_ID_MAX
 *     str  cse_base       a cseBase URI, 1..MSG_URI_MAX
 *     str  ke_id          a KeID, 1..MSG_KEID_MAX
 *     str  exp            exactly 15 bytes, "YYYYMMDDTHHMMSS" (valid date, UTC)
 *     u32  poll           MSG_POLL_MIN..MSG_POLL_MAX seconds
 *     u64  obtained       wall clock seconds since the epoch when the profile was obtained
 *                         (lifetime = exp - obtained: the agent renews at 80% of it), <= INT64_MAX
 *     u8   ltk_len        MSG_KEY_MIN..MSG_KEY_MAX
 *     ltk_len bytes       the Long Term Key (Ke, or the transported ltk)
 *     u8   n_targets      0..MSG_TARGETS_MAX
 *     n_targets times:
 *       str  id           a target ID, 1..MSG_ID_MAX
 *       str  kpsa_id      a kpsaID, 1..MSG_KEID_MAX
 *       32 bytes          Kpsa(id)
 *
 * where str = u16 length + that many bytes (no terminator). Nothing may follow the last
 * target. A later format bumps the version; version 1 parsers reject it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "keys/keyring.h"
#include "proto/msg.h"
#include "util/util.h"

#define PROFILE_VERSION 1u
#define PROFILE_KPSA_LEN 32u
/* Upper bound of a serialized profile: every field at its maximum. */
#define PROFILE_SERIALIZED_MAX                                                                     \
        (1u + (2u + MSG_ID_MAX) + (2u + MSG_URI_MAX) + (2u + MSG_ID_MAX) + (2u + MSG_URI_MAX) +    \
         (2u + MSG_KEID_MAX) + (2u + 15u) + 4u + 8u + 1u + MSG_KEY_MAX + 1u +                      \
         MSG_TARGETS_MAX * ((2u + MSG_ID_MAX) + (2u + MSG_KEID_MAX) + PROFILE_KPSA_LEN))

typedef struct stored_target {
        char id[MSG_ID_MAX + 1];
        char kpsa_id[MSG_KEID_MAX + 1];
        uint8_t kpsa[PROFILE_KPSA_LEN]; /* secret */
} stored_target_t;

typedef struct stored_profile {
        char node_id[MSG_ID_MAX + 1];
        char mef_uri[MSG_URI_MAX + 1];
        char cse_id[MSG_ID_MAX + 1];
        char cse_base[MSG_URI_MAX + 1];
        char ke_id[MSG_KEID_MAX + 1];
        char exp[16];     /* "YYYYMMDDTHHMMSS" */
        time_t exp_t;     /* set by profile_parse(); profile_serialize() writes exp only */
        uint32_t poll;
        time_t obtained;
        uint8_t ltk[MSG_KEY_MAX]; /* secret */
        size_t ltk_len;
        stored_target_t targets[MSG_TARGETS_MAX];
        size_t n_targets;
} stored_profile_t;

/* The keys of a profile as keyring_install() takes them: the ltk, then "kpsa:<kpsaID>" per
 * target. The names live in names[]; data points into the profile (no key bytes copied). */
typedef struct profile_keys {
        keyring_key_t keys[1 + MSG_TARGETS_MAX];
        char names[MSG_TARGETS_MAX][sizeof(KEYRING_KPSA) + MSG_KEID_MAX];
        size_t n;
} profile_keys_t;
/* -EINVAL when the keyring would refuse them (keyring_keys_validate(): a duplicate kpsaID, a
 * name or length out of range); *ret is filled either way. Every profile that
 * profile_from_msg(), profile_serialize() and profile_parse() accept passes. */
int profile_keys(const stored_profile_t *p, profile_keys_t *ret);

/* Fill *ret from a received profile: copies the non-secret fields and the given Long Term Key
 * (Ke, or m->ltk when the MEF transported one: the caller decides). The Kpsa are left zero: the
 * enrolment derives them (agent/enrol.c, keys/kdf.h). -EINVAL when a field is out of the range
 * profile_parse() accepts. */
int profile_from_msg(const msg_profile_t *m, const char *node_id, const char *mef_uri, time_t obtained,
                     const uint8_t *ltk, size_t ltk_len, stored_profile_t *ret);

/* Serialize into a wiped-on-free buffer. -EINVAL when a field is out of range or the keyring
 * would refuse its keys (the same checks as the parser, so what is written can always be read
 * back and installed), -ENOMEM. */
int profile_serialize(const stored_profile_t *p, secret_t *ret);

/* Strict parser: -EBADMSG on a wrong version, a length out of range, a truncated buffer,
 * trailing bytes, an invalid field or keys the keyring would refuse (profile_keys());
 * *ret is written only on success. */
int profile_parse(const uint8_t *buf, size_t len, stored_profile_t *ret);

/* Wipes the key bytes (and the rest). Accepts NULL. */
void stored_profile_wipe(stored_profile_t *p);

/* true when now is at or after exp (Ke and everything derived from it are invalid then). */
bool profile_is_expired(const stored_profile_t *p, time_t now);

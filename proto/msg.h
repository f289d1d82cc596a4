/* SPDX-License-Identifier: MIT */
#pragma once
/* The JSON messages of protocol section 3 (jansson). Parsers ignore unknown members and
 * reject wrong types and missing required members with a message naming the member
 * (written to err, e.g. "msce:profile.keID: missing" or "msce:profile.poll: not an integer").
 * Parsers never print and never put key bytes in err. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MSG_ID_MAX 255u      /* nodeID, cseID, target id (grammars: proto/ids.h) */
#define MSG_KEID_MAX 300u    /* KeID and kpsaID: 32 hex (+ .n) + '@' + FQDN (253) */
#define MSG_URI_MAX 1024u
#define MSG_TARGETS_MAX 16u
#define MSG_KEY_MIN 16u
#define MSG_KEY_MAX 64u
#define MSG_DBG_MAX 512u
/* Stable hints that start the MEF's m2m:dbg reason of a 403 ("<hint>: <text>"), for the agent
 * to say what the refusal means (docs/protocol.md, "Why the MEF refused"). */
#define MSG_HINT_NODE_UNREGISTERED "node-unregistered" /* the node ID sent is not the credential's node */
#define MSG_HINT_NODE_REVOKED "node-revoked"           /* the node is revoked at the MEF */
#define MSG_HINT_NOT_ENROLEE "not-enrolee"             /* the credential is not an enrolee node's */
#define MSG_ERR_MAX 256u
#define MSG_BODY_MAX 65536u  /* protocol section 6; larger bodies: -EMSGSIZE */
#define MSG_DEPTH_MAX 16u    /* nesting of objects/arrays; ours need 4 */
#define MSG_POLL_DEFAULT 86400u
#define MSG_POLL_MIN 10u
#define MSG_POLL_MAX (366u * 86400u)

typedef struct msg_loc {
        double lat, lon, alt; /* lat in [-90,90], lon in [-180,180] */
        bool has_alt;
} msg_loc_t;

typedef struct msg_enrol_req {
        char node_id[MSG_ID_MAX + 1];
        bool has_loc;
        msg_loc_t loc;
        char prev[MSG_KEID_MAX + 1]; /* "" when absent */
} msg_enrol_req_t;

typedef struct msg_target {
        char id[MSG_ID_MAX + 1];
        char kpsa_id[MSG_KEID_MAX + 1];
} msg_target_t;

typedef struct msg_profile {
        char cse_id[MSG_ID_MAX + 1];
        char cse_base[MSG_URI_MAX + 1];
        char ke_id[MSG_KEID_MAX + 1];
        char exp[16];   /* as received, basic ISO 8601 */
        time_t exp_t;   /* parsed */
        msg_target_t targets[MSG_TARGETS_MAX];
        size_t n_targets;
        uint32_t poll;  /* MSG_POLL_DEFAULT when absent; clamped into MSG_POLL_MIN..MSG_POLL_MAX */
        bool poll_clamped; /* ... it was: the sender's value is poll_sent (else 0) */
        int64_t poll_sent;
        bool has_ltk;
        uint8_t ltk[MSG_KEY_MAX]; /* secret: msg_profile_wipe() */
        size_t ltk_len;
} msg_profile_t;

typedef enum msg_state {
        MSG_STATE_ACTIVE,
        MSG_STATE_REENROL,
        MSG_STATE_REVOKED,
        _MSG_STATE_MAX,
        _MSG_STATE_INVALID = -22,
} msg_state_t;

typedef struct msg_status {
        char ke_id[MSG_KEID_MAX + 1];
        msg_state_t state;
        char exp[16];
        time_t exp_t;
        uint32_t poll;  /* as in msg_profile_t */
        bool poll_clamped;
        int64_t poll_sent;
} msg_status_t;

typedef struct msg_credential {
        bool status;
        uint8_t key[MSG_KEY_MAX]; /* secret */
        size_t key_len;
        char enrolee_id[MSG_ID_MAX + 1];
        char lifetime[16];
        time_t lifetime_t;
} msg_credential_t;

const char *msg_state_to_string(msg_state_t s);
msg_state_t msg_state_from_string(const char *s);

/* Formatters return a heap NUL-terminated compact JSON string (caller frees; for profile and
 * credential the caller must wipe it before freeing: they carry key bytes), -EINVAL when a
 * field is out of the range the parser accepts, -ENOMEM. Time fields (exp, lifetime) are
 * written from the string when it is non-empty, else from the time_t.
 * A credential with status false carries key/enroleeID/lifetime only when set; with status
 * true all three are required (TS-0003 8.3: the key is returned on success only). */
int msg_enrol_req_format(const msg_enrol_req_t *m, char **ret);
int msg_profile_format(const msg_profile_t *m, char **ret);
int msg_status_format(const msg_status_t *m, char **ret);
int msg_credential_format(const msg_credential_t *m, char **ret);
int msg_dbg_format(const char *reason, char **ret);

/* Parsers: body is not NUL-terminated; on error return -EBADMSG (bad JSON, wrong type,
 * missing member, value out of range, nesting deeper than MSG_DEPTH_MAX) with err filled,
 * -E2BIG (err filled) for a profile listing more than MSG_TARGETS_MAX targets (well formed, but
 * more than this end can hold: the same answer will come again), -EMSGSIZE when
 * len > MSG_BODY_MAX, -ENOMEM. err may be NULL. *ret is only written on success.
 * status.exp is required, status.poll optional (MSG_POLL_DEFAULT). A poll outside
 * MSG_POLL_MIN..MSG_POLL_MAX (the protocol sets no range) is clamped into it, not refused:
 * poll_clamped and poll_sent tell the caller, whose top layer warns. */
int msg_enrol_req_parse(const void *body, size_t len, msg_enrol_req_t *ret, char err[MSG_ERR_MAX]);
int msg_profile_parse(const void *body, size_t len, msg_profile_t *ret, char err[MSG_ERR_MAX]);
int msg_status_parse(const void *body, size_t len, msg_status_t *ret, char err[MSG_ERR_MAX]);
int msg_credential_parse(const void *body, size_t len, msg_credential_t *ret, char err[MSG_ERR_MAX]);
/* The reason of an error body, "" when the body is not {"m2m:dbg": "..."}. Never fails. */
void msg_dbg_parse(const void *body, size_t len, char out[MSG_DBG_MAX]);

void msg_profile_wipe(msg_profile_t *m);
void msg_credential_wipe(msg_credential_t *m);

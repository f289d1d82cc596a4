/* SPDX-License-Identifier: MIT */
#pragma once
/* oneM2M identifiers by their syntax (docs/protocol.md, "Identifiers"): one validator per
 * kind, shared by the agent (configuration, received profiles, keyring names) and the MEF
 * (configuration, command line, received requests).
 *
 * Pure functions over a NUL-terminated string: 0 when s is valid, else -EINVAL (-E2BIG when
 * it is too long) and, when ret_why is not NULL, a static string naming the rule broken, e.g.
 * "contains a space" or "not a KeID (lower-case hex, '@', a host name)". The string never
 * quotes the value, so callers can log it whatever s holds. *ret_why is untouched on success. */

#include <stdbool.h>
#include <stddef.h>

/* Plain numbers: the messages spell them (no 'u' suffix). */
#define IDS_CSE_ID_MAX 255     /* "/" + up to 254 characters */
#define IDS_NODE_ID_MAX 255
#define IDS_TARGET_ID_MAX 255
#define IDS_HOST_MAX 253       /* RFC 1035 text form without the final dot */
#define IDS_REL_ID_MAX 64      /* the hex relative part of a KeID or kpsaID (ours: 32) */
#define IDS_KE_ID_MAX 300      /* in all (ours: 32 + 1 + the MEF's FQDN) */
#define IDS_KPSA_ID_MAX 300
#define IDS_CSE_BASE_MAX 1024

/* SP-relative CSE-ID: "/" then 1..254 of the RFC 3986 unreserved characters A-Z a-z 0-9 - . _ ~,
 * no further "/", not "." or "..". */
int ids_check_cse_id(const char *s, const char **ret_why);

/* M2M-Node-ID: 1..255 of A-Z a-z 0-9 - . _ ~ : @, starting with a letter or a digit. When it
 * starts with "urn:" (any case) it must be a URN (RFC 8141: urn:<NID>:<NSS>, NID 2..32 letters,
 * digits and '-', not starting or ending with '-', NSS not empty); when it holds only digits and
 * dots it must be an OID (at least two arcs, no empty arc). */
int ids_check_node_id(const char *s, const char **ret_why);

/* Enrolment target ID: an SP-relative CSE-ID ("/in-cse") or an SP-relative resource ID one
 * level below a CSE ("/in-cse/Cmaf01": an AE or a MAF registered there). Each segment as a
 * CSE-ID's, at most 255 characters in all. */
int ids_check_target_id(const char *s, const char **ret_why);

/* Host part of a KeID or kpsaID, or a configured MEF FQDN: an RFC 1123 host name (labels of
 * 1..63 letters, digits and '-', not starting or ending with '-', 1..253 characters, the last
 * label not all digits), an IPv4 address in dotted-quad form or an IPv6 address (without
 * brackets), in any case (in a KeID or kpsaID: lower case only). */
int ids_check_host(const char *s, const char **ret_why);

/* KeID: 1..64 lower-case hex digits (RelativeKeID; the protocol's is 32), "@", a lower-case
 * host; at most 300 characters in all. */
int ids_check_ke_id(const char *s, const char **ret_why);

/* kpsaID: as a KeID, with an optional ".<n>" (n = 1..999, no leading zero) after the hex; at
 * most 300 characters in all. */
int ids_check_kpsa_id(const char *s, const char **ret_why);

/* cseBase: an absolute URI (RFC 3986) of at most 1024 characters with scheme http, https, coap,
 * coaps, mqtt, mqtts, ws or wss (any case), "//", a host (as ids_check_host, or an IPv6 address
 * in brackets) with an optional port 1..65535, and a path of RFC 3986 path characters without
 * "." or ".." segments; no user information, query or fragment. */
int ids_check_cse_base(const char *s, const char **ret_why);

/* SPDX-License-Identifier: MIT */
#pragma once
/* The MEF's certificate names the MEF: a dNSName against the host the agent connects to, by
 * RFC 9525 section 6.3 (docs/protocol.md, "The MEF's certificate name"). A pure function, so
 * that every rule has a unit test (tests/unit/test-tls-name.c); proto/tls-ctx.c calls it from
 * its verify callback, next to wolfSSL's own, looser, match. */

#include <stdbool.h>
#include <stddef.h>

/* Whether the presented identifier (a dNSName's len bytes, not NUL-terminated) names host (a
 * DNS name, NUL-terminated, as the configuration holds it):
 *  - label by label, as ASCII without regard to case (IDNA A-labels too: "xn--..." is ASCII);
 *  - a wildcard only as the whole left-most label ("*.example.net"), standing for exactly one
 *    label, and only with at least two labels to its right: "*.net" and "*.localhost" match
 *    nothing. Any other '*' ("*" alone, "m*.example.net", "*.*.net", "a.*.net") makes the
 *    identifier invalid: it matches nothing (RFC 9525: "MUST be ignored");
 *  - an empty label on either side (a leading, double or trailing dot) matches nothing, nor
 *    does a byte outside printable ASCII (an embedded NUL included). The agent's configuration
 *    refuses a host with a trailing dot, and wolfSSL's match does not take "mef.test." for
 *    "mef.test" either. */
bool tls_name_match(const char *presented, size_t len, const char *host);

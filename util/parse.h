/* SPDX-License-Identifier: MIT */
#pragma once
/* Typed value parsers shared by the configuration loaders (util/ini-types.h), the TPM code and
 * mscectl. Pure functions over NUL-terminated strings: 0 on success, -EINVAL (or -ERANGE, -ENOMEM
 * where noted) on failure with, when ret_why is not NULL, a static reason that never quotes the
 * value. Output parameters are untouched on failure. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint64_t usec_t;

/* A duration: plain milliseconds, or a number with one suffix of ms, s, min, h, d ("1500",
 * "90s", "5min", "90d"); at most 10 digits. */
int duration_parse(const char *s, usec_t *ret);
/* The largest of h, min, s, ms that represents usec exactly ("0" for 0), so that it parses back;
 * sub-millisecond rest is dropped. */
void duration_format(usec_t usec, char out[32]);

/* A plain decimal number (no hex floats, inf or nan), at most 32 characters. */
int double_parse(const char *s, double *ret);
/* The shortest %g form that reads back as the same double. */
void double_format(double v, char out[32]);

/* 1..max characters, each printable ASCII 0x20..0x7e. */
bool printable_ok(const char *s, size_t max);

#define PATH_ABSOLUTE 1u /* starts with '/', no ".." component */
/* A path of 1..PATH_MAX-1 printable characters; with PATH_ABSOLUTE an absolute one. */
int path_check(const char *s, unsigned flags, const char **ret_why);
/* A user name: 1..32 of A-Z a-z 0-9 _ . -, starting with a letter or '_'. */
int user_name_check(const char *s, const char **ret_why);
/* A systemd credential name (a file name in $CREDENTIALS_DIRECTORY), or "" (none). */
int credential_name_check(const char *s, const char **ret_why);

/* PCR selection: "" (none) or "<bank>:<n>[,<n>...][+<bank>:<n>...]", bank one of sha1, sha256,
 * sha384, sha512, each bank once, PCRs 0..23 each once per bank, e.g. "sha256:0,7". */
#define PCR_INDEX_MAX 23u
typedef enum pcr_bank {
        PCR_BANK_SHA1,
        PCR_BANK_SHA256,
        PCR_BANK_SHA384,
        PCR_BANK_SHA512,
        _PCR_BANK_MAX,
} pcr_bank_t;
typedef struct pcr_list {
        size_t n;
        struct {
                pcr_bank_t bank;
                uint32_t mask; /* bit i: PCR i */
        } sel[_PCR_BANK_MAX];
} pcr_list_t;
int pcr_list_parse(const char *s, pcr_list_t *ret, const char **ret_why);
int pcr_list_check(const char *s, const char **ret_why);

/* https://host[:port][/base]: host a DNS name, IPv4 or [IPv6] (proto/ids.h's host rules),
 * port 1..65535 (default 443), base of RFC 3986 path characters without empty, "." or ".."
 * segments; no user information, query or fragment; at most 1024 characters. ret gets the parts:
 * host lowercase (IPv6 without brackets), port in decimal, base "" or "/path" without trailing
 * slash, and the canonical form (no :443, no trailing slash). -ENOMEM. */
typedef struct https_uri {
        char *host, *port, *base, *canonical;
} https_uri_t;
int https_uri_parse(const char *s, https_uri_t *ret, const char **ret_why);
void https_uri_done(https_uri_t *u);

/* ASCII helpers used by the protocol: printable ASCII 0x21..0x7e, 1..max chars. */
bool id_is_valid(const char *s, size_t max);
/* Parse an unsigned decimal (no sign, no spaces) with an upper bound. */
int parse_uint(const char *s, unsigned long long max, unsigned long long *ret);

/* SPDX-License-Identifier: MIT */
#pragma once
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"

/* Lowercase hex of n bytes into out (2n+1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode hex (either case); -EINVAL on bad input or when out is too small. */
int hex_decode(const char *in, uint8_t *out, size_t out_size, size_t *ret_len);

/* Base64 (RFC 4648, with padding, no line breaks). */
int b64_encode(const uint8_t *in, size_t n, char **ret);
int b64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_size, size_t *ret_len);

/* Read a secret file (at most max bytes) into a wiped-on-free buffer.
 * -EPERM when the file is readable by group or others, -EFBIG when larger than max,
 * -ENODATA when empty. A trailing newline is not stripped: secrets are raw bytes unless
 * the caller decodes them. */
int secret_file_read(const char *path, size_t max, secret_t *ret);
/* Same check on an open fd: 0 when only the owner may read. */
int secret_fd_check_mode(int fd);

/* Read a whole small file (non-secret) into a NUL-terminated heap string. */
int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len);

/* Write data atomically: temp file in the same directory, fsync, rename, fsync dir. */
int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* "dir/name" into out; -ENAMETOOLONG when it does not fit in PATH_MAX. */
int path_join(const char *dir, const char *name, char out[PATH_MAX]);

/* oneM2M basic ISO 8601 UTC: "YYYYMMDDTHHMMSS". */
int time_parse_basic(const char *s, time_t *ret);
void time_format_basic(time_t t, char out[16]);

/* Random bytes from the kernel (getrandom). */
int random_bytes(void *buf, size_t n);

/* ASCII helpers used by the protocol: printable ASCII 0x21..0x7e, 1..max chars. */
bool id_is_valid(const char *s, size_t max);

/* Parse an unsigned decimal (no sign, no spaces) with an upper bound. */
int parse_uint(const char *s, unsigned long long max, unsigned long long *ret);

/* Monotonic clock in microseconds. */
uint64_t now_usec(void);

/* SPDX-License-Identifier: MIT */
#pragma once
/* Text from elsewhere (a peer, a file, a server, a library's message) made fit to show, log or
 * store: each byte that the chosen class does not keep becomes '?'. One byte for one byte, so the
 * rest stays where it was and readable, and a cut is the only change of length. */
#include <stddef.h>

typedef enum text_class {
        /* printable ASCII 0x20..0x7e: a log line, an HTTP reason, a header */
        TEXT_ASCII,
        /* that and well-formed UTF-8 but the C1 controls U+0080..U+009F: what a terminal may show
         * (a stray 0x9b, or U+009B, is a CSI to some) */
        TEXT_PRINTABLE,
        /* any well-formed UTF-8 (RFC 3629), controls included: what JSON and a UTF8 PostgreSQL
         * database take; not for a terminal */
        TEXT_UTF8,
        _TEXT_CLASS_MAX,
} text_class_t;

/* in (NUL-terminated, NULL reads as "") into out (size >= 1 bytes; out may be in),
 * NUL-terminated, each byte outside class a '?'; cut at size - 1 bytes, never inside a character
 * it keeps. Returns out. */
char *text_copy(const char *in, text_class_t class, char *out, size_t size);
/* s (not NULL) itself made so; returns s. */
char *text_clean(char *s, text_class_t class);
/* A malloc'd copy made so (NULL reads as ""); NULL when out of memory. */
char *text_dup(const char *s, text_class_t class);

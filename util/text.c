/* SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/text.h"

/* The length of the well-formed UTF-8 sequence (RFC 3629) at p, 0 for none; reads no further
 * than the first byte that breaks it, so never past the NUL. */
static size_t utf8_sequence_len(const unsigned char *p) {
        unsigned char c = p[0], lo = 0x80, hi = 0xbf;
        size_t n;
        if (c < 0x80)
                return 1;
        if (c >= 0xc2 && c <= 0xdf)
                n = 2;
        else if (c >= 0xe0 && c <= 0xef) {
                n = 3;
                lo = c == 0xe0 ? 0xa0 : 0x80; /* not overlong */
                hi = c == 0xed ? 0x9f : 0xbf; /* no surrogate */
        } else if (c >= 0xf0 && c <= 0xf4) {
                n = 4;
                lo = c == 0xf0 ? 0x90 : 0x80; /* not overlong */
                hi = c == 0xf4 ? 0x8f : 0xbf; /* at most U+10FFFF */
        } else
                return 0;
        if (p[1] < lo || p[1] > hi)
                return 0;
        for (size_t i = 2; i < n; i++)
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
        return n;
}

/* How many bytes of the character at p class keeps: 0 when it keeps none. */
static size_t kept_len(const unsigned char *p, text_class_t class) {
        bool control = p[0] < 0x20 || p[0] == 0x7f;
        if (class == TEXT_ASCII)
                return !control && p[0] < 0x80;
        if (class == TEXT_PRINTABLE && (control || (p[0] == 0xc2 && p[1] < 0xa0)))
                return 0; /* C0, DEL, C1 (U+0080..U+009F is c2 80..c2 9f) */
        return utf8_sequence_len(p);
}

char *text_copy(const char *in, text_class_t class, char *out, size_t size) {
        const unsigned char *p = (const unsigned char *) (in ?: "");
        size_t o = 0;
        while (*p) {
                size_t n = kept_len(p, class);
                if (o + (n ?: 1) > size - 1)
                        break;
                if (n == 0)
                        out[o++] = '?';
                /* byte by byte: out may be in, never ahead of it */
                for (size_t i = 0; i < n; i++)
                        out[o++] = (char) p[i];
                p += n ?: 1;
        }
        out[o] = 0;
        return out;
}

char *text_clean(char *s, text_class_t class) {
        return text_copy(s, class, s, SIZE_MAX);
}

char *text_dup(const char *s, text_class_t class) {
        char *d = strdup(s ?: "");
        return d ? text_clean(d, class) : NULL;
}

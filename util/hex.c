/* SPDX-License-Identifier: MIT */
#include "util/hex.h"

void hex_encode(const uint8_t *in, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = 0;
}

int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* n hex digits (n even, n / 2 <= room in out) into out; wiped on failure. */
static int decode(const char *in, size_t n, uint8_t *out) {
        for (size_t i = 0; i < n / 2; i++) {
                int hi = hex_digit(in[2 * i]), lo = hex_digit(in[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        erase(out, i);
                        return -EINVAL;
                }
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        return 0;
}

int hex_decode(const char *in, uint8_t *out, size_t out_size, size_t *ret_len) {
        size_t n = strlen(in);
        if (n % 2 || n / 2 > out_size || decode(in, n, out) < 0)
                return -EINVAL;
        *ret_len = n / 2;
        return 0;
}

int hex_key_parse(const char *text, size_t n, size_t min, size_t max, uint8_t *key, size_t *ret_len) {
        while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
                n--;
        if (n == 0)
                return -ENODATA;
        if (n % 2 || n / 2 < min || n / 2 > max || decode(text, n, key) < 0)
                return -EINVAL;
        *ret_len = n / 2;
        return 0;
}

/* SPDX-License-Identifier: MIT */
/* Base64 with wolfSSL's coder, kept apart from util.c so that what does not need wolfSSL can
 * be linked without it (msce-agent, agent/crypto.h). */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/coding.h>

#include <ctype.h>

#include "util.h"

int b64_encode(const uint8_t *in, size_t n, char **ret) {
        word32 outlen = (word32) ((n + 2) / 3 * 4 + 1);
        char *out = malloc(outlen);
        if (!out)
                return -ENOMEM;
        if (Base64_Encode_NoNl(in, (word32) n, (byte *) out, &outlen) != 0) {
                free(out);
                return -EINVAL;
        }
        out[outlen] = 0;
        *ret = out;
        return 0;
}

int b64_decode(const char *in, size_t in_len, uint8_t *out, size_t out_size, size_t *ret_len) {
        /* wolfSSL's decoder tolerates whitespace; the protocol does not. */
        if (in_len == 0 || in_len % 4)
                return -EINVAL;
        for (size_t i = 0; i < in_len; i++)
                if (!(isalnum((unsigned char) in[i]) || in[i] == '+' || in[i] == '/' || in[i] == '='))
                        return -EINVAL;
        /* '=' only as final padding: wolfSSL stops at the first one and would ignore the rest
         * ("QUJDRA==QUJD" decoded as 4 bytes). */
        const char *pad = memchr(in, '=', in_len);
        if (pad && (pad < in + in_len - 2 || (pad == in + in_len - 2 && in[in_len - 1] != '=')))
                return -EINVAL;
        if (in_len / 4 * 3 > out_size + 2)
                return -EMSGSIZE;
        _cleanup_secret_ secret_t tmp = { .data = malloc(in_len / 4 * 3), .len = in_len / 4 * 3 };
        if (!tmp.data)
                return -ENOMEM;
        word32 outlen = (word32) tmp.len;
        int r = Base64_Decode((const byte *) in, (word32) in_len, tmp.data, &outlen);
        if (r != 0 || outlen > out_size)
                return r != 0 ? -EINVAL : -EMSGSIZE;
        memcpy(out, tmp.data, outlen);
        *ret_len = outlen;
        return 0;
}

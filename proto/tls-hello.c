/* SPDX-License-Identifier: MIT */
/* The first PSK identity of a ClientHello (proto/tls-hello.h), RFC 8446 4.1.2 and 4.2.11. */
#include <stdbool.h>
#include <string.h>

#include "proto/tls-hello.h"

#define REC_HANDSHAKE 22
#define REC_PLAINTEXT_MAX 16384u /* RFC 8446 5.1 */
#define HS_CLIENT_HELLO 1
#define EXT_PRE_SHARED_KEY 41

/* What is left to read: every step checks it against n before it reads, then narrows it. */
typedef struct {
        const uint8_t *p;
        size_t n;
} cursor_t;

static bool skip(cursor_t *c, size_t k, const uint8_t **ret) {
        if (c->n < k)
                return false;
        if (ret)
                *ret = c->p;
        c->p += k;
        c->n -= k;
        return true;
}

/* A big-endian number of w bytes. */
static bool number(cursor_t *c, size_t w, size_t *ret) {
        const uint8_t *p;
        if (!skip(c, w, &p))
                return false;
        *ret = 0;
        for (size_t i = 0; i < w; i++)
                *ret = *ret << 8 | p[i];
        return true;
}

/* A vector of min..max bytes behind a w-byte length, as a cursor of its own. */
static bool vector(cursor_t *c, size_t w, size_t min, size_t max, cursor_t *ret) {
        size_t len;
        if (!number(c, w, &len) || len < min || len > max || !skip(c, len, &ret->p))
                return false;
        ret->n = len;
        return true;
}

/* Whether the next byte(s) of c hold the number want. */
static bool expect(cursor_t *c, size_t w, size_t want) {
        size_t v;
        return number(c, w, &v) && v == want;
}

/* The pre_shared_key extension's data of a ClientHello body that c holds exactly. */
static bool find_psk_extension(cursor_t c, cursor_t *ret) {
        cursor_t v, ext;
        if (!skip(&c, 2 + 32, NULL) || !vector(&c, 1, 0, 32, &v) || !vector(&c, 2, 2, 0xfffe, &v) || v.n % 2 != 0 ||
            !vector(&c, 1, 1, 0xff, &v) || !vector(&c, 2, 8, 0xffff, &ext) || c.n != 0)
                return false;
        while (ext.n > 0) {
                size_t type;
                if (!number(&ext, 2, &type) || !vector(&ext, 2, 0, 0xffff, ret))
                        return false;
                /* RFC 8446 4.2.11: the last one; anywhere else the ClientHello is malformed */
                if (type == EXT_PRE_SHARED_KEY)
                        return ext.n == 0;
        }
        return false;
}

int tls_hello_psk_identity(const uint8_t *p, size_t n, char *out, size_t out_size) {
        cursor_t c = { p, n }, rec, hello, psk, ids, id;
        if (!out || out_size == 0)
                return 0;
        out[0] = '\0';
        if (!p)
                return 0;
        /* one record (legacy version unread), one whole ClientHello in it */
        if (!expect(&c, 1, REC_HANDSHAKE) || !skip(&c, 2, NULL) || !vector(&c, 2, 1, REC_PLAINTEXT_MAX, &rec) ||
            !expect(&rec, 1, HS_CLIENT_HELLO) || !vector(&rec, 3, 0, 0xffffff, &hello) ||
            !find_psk_extension(hello, &psk))
                return 0;
        /* identities<7..2^16-1> first: PskIdentity is identity<1..2^16-1> and a 4-byte age */
        if (!vector(&psk, 2, 7, 0xffff, &ids) || !vector(&ids, 2, 1, 0xffff, &id) || !skip(&ids, 4, NULL))
                return 0;
        if (id.n >= out_size || memchr(id.p, '\0', id.n))
                return 0;
        memcpy(out, id.p, id.n);
        out[id.n] = '\0';
        return 1;
}

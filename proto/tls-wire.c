/* SPDX-License-Identifier: MIT */
/* What a TLS server's first records say (proto/tls-wire.h). */
#include <string.h>

#include "proto/tls-wire.h"
#include "util/macro.h"

#define REC_CHANGE_CIPHER_SPEC 20
#define REC_ALERT 21
#define REC_HANDSHAKE 22
#define HS_SERVER_HELLO 2
#define EXT_PRE_SHARED_KEY 41
#define EXT_SUPPORTED_VERSIONS 43
#define EXT_KEY_SHARE 51

/* RFC 8446 4.1.3: SHA-256("HelloRetryRequest") as ServerHello.random marks an HRR. */
static const uint8_t hrr_random[TLS_WIRE_RANDOM_LEN] = {
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
        0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
};

void tls_wire_init(tls_wire_t *w) {
        *w = (tls_wire_t) { .alert = -1 };
}

static uint16_t be16(const uint8_t *p) {
        return (uint16_t) ((p[0] << 8) | p[1]);
}

/* One ServerHello body; false when malformed. */
static bool parse_server_hello(tls_wire_t *w, const uint8_t *p, size_t n) {
        size_t i = 2 + TLS_WIRE_RANDOM_LEN;
        if (n < i + 1)
                return false;
        uint16_t version = be16(p);
        bool hrr = memcmp(p + 2, hrr_random, TLS_WIRE_RANDOM_LEN) == 0;
        size_t sid = p[i++];
        if (n < i + sid + 3)
                return false;
        i += sid;
        uint16_t suite = be16(p + i);
        i += 3; /* suite, compression */
        bool key_share = false, psk = false;
        if (i < n) {
                if (n < i + 2 || be16(p + i) != n - i - 2)
                        return false;
                for (i += 2; i < n;) {
                        if (n - i < 4 || be16(p + i + 2) > n - i - 4)
                                return false;
                        uint16_t type = be16(p + i), len = be16(p + i + 2);
                        const uint8_t *d = p + i + 4;
                        if (type == EXT_SUPPORTED_VERSIONS && len == 2)
                                version = be16(d);
                        else if (type == EXT_KEY_SHARE)
                                key_share = true;
                        else if (type == EXT_PRE_SHARED_KEY)
                                psk = true;
                        i += 4u + len;
                }
        }
        if (hrr) {
                w->hello_retry = true;
                return true;
        }
        w->server_hello = true;
        w->version = version;
        w->suite = suite;
        memcpy(w->random, p + 2, TLS_WIRE_RANDOM_LEN);
        w->key_share = key_share;
        w->pre_shared_key = psk;
        w->done = true;
        return true;
}

/* Parse the complete handshake messages in w->hs. */
static void parse_handshake(tls_wire_t *w) {
        while (!w->done && w->hs_len >= 4) {
                size_t len = ((size_t) w->hs[1] << 16) | ((size_t) w->hs[2] << 8) | w->hs[3];
                if (w->hs[0] != HS_SERVER_HELLO || len > sizeof w->hs - 4) {
                        w->done = true;
                        return;
                }
                if (w->hs_len < 4 + len)
                        return;
                if (!parse_server_hello(w, w->hs + 4, len)) {
                        w->done = true;
                        return;
                }
                memmove(w->hs, w->hs + 4 + len, w->hs_len - 4 - len);
                w->hs_len -= 4 + len;
        }
}

void tls_wire_feed(tls_wire_t *w, const uint8_t *p, size_t n) {
        while (n > 0 && !w->done) {
                if (w->rec_left == 0) {
                        size_t k = MIN(sizeof w->hdr - w->hdr_len, n);
                        memcpy(w->hdr + w->hdr_len, p, k);
                        w->hdr_len += k;
                        p += k;
                        n -= k;
                        if (w->hdr_len < sizeof w->hdr)
                                return;
                        w->hdr_len = 0;
                        w->rec_type = w->hdr[0];
                        w->rec_left = be16(w->hdr + 3);
                        if (w->hdr[1] != 3 || w->rec_left == 0 ||
                            (w->rec_type != REC_HANDSHAKE && w->rec_type != REC_ALERT &&
                             w->rec_type != REC_CHANGE_CIPHER_SPEC) ||
                            (w->rec_type == REC_ALERT && w->rec_left != 2)) {
                                w->done = true; /* not plaintext TLS we can follow */
                                return;
                        }
                        w->hs_len = w->rec_type == REC_ALERT ? 0 : w->hs_len;
                        continue;
                }
                size_t k = MIN(w->rec_left, n);
                if (w->rec_type == REC_HANDSHAKE || w->rec_type == REC_ALERT) {
                        /* What fits, then the rest once parsed: the ServerHello starts a record
                         * that may go on with the Certificate (TLS 1.2) far beyond hs. Full and
                         * still unparsed: a message longer than hs (parse_handshake). */
                        size_t room = sizeof w->hs - w->hs_len;
                        if (room == 0) {
                                w->done = true;
                                return;
                        }
                        k = MIN(k, room);
                        memcpy(w->hs + w->hs_len, p, k);
                        w->hs_len += k;
                }
                w->rec_left -= k;
                p += k;
                n -= k;
                if (w->rec_type == REC_HANDSHAKE)
                        parse_handshake(w);
                else if (w->rec_type == REC_ALERT && w->rec_left == 0) {
                        w->alert = w->hs[1];
                        w->done = true;
                }
        }
}

bool tls_wire_downgrade_sentinel(const tls_wire_t *w) {
        static const uint8_t downgrd[7] = { 'D', 'O', 'W', 'N', 'G', 'R', 'D' };
        const uint8_t *tail = w->random + TLS_WIRE_RANDOM_LEN - 8;
        return w->server_hello && w->version <= 0x0303 && memcmp(tail, downgrd, sizeof downgrd) == 0 &&
               (tail[7] == 0 || tail[7] == 1);
}

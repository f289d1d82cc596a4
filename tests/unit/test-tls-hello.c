/* SPDX-License-Identifier: MIT */
/* proto/tls-hello.c: the identity in a ClientHello that wolfSSL wrote, every prefix of it, and
 * hand-built records that break one rule each. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <criterion/criterion.h>
#include <wolfssl/ssl.h>

#include "proto/tls-hello.h"

#define SUITE "TLS13-AES128-GCM-SHA256"
#define IDENTITY "kpm-hello-1"

/* What the client sends before it waits for the server. */
typedef struct {
        uint8_t b[4096];
        size_t n;
} sent_t;

static int send_capture(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
        sent_t *s = ctx;
        if (sz < 0 || (size_t) sz > sizeof s->b - s->n)
                return WOLFSSL_CBIO_ERR_GENERAL;
        memcpy(s->b + s->n, buf, (size_t) sz);
        s->n += (size_t) sz;
        return sz;
}

static int recv_nothing(WOLFSSL *ssl, char *buf, int sz, void *ctx) {
        return WOLFSSL_CBIO_ERR_WANT_READ;
}

static unsigned psk_cb(WOLFSSL *ssl, const char *hint, char *identity, unsigned id_max, unsigned char *key,
                       unsigned key_max, const char **suite) {
        if (id_max < sizeof IDENTITY || key_max < 32)
                return 0;
        memcpy(identity, IDENTITY, sizeof IDENTITY);
        memset(key, 0x5a, 32);
        *suite = SUITE;
        return 32;
}

/* The first flight of a wolfSSL TLS 1.3 client, with a PSK or without. */
static void wolfssl_client_hello(bool psk, sent_t *s) {
        cr_assert_eq(wolfSSL_Init(), WOLFSSL_SUCCESS);
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
        cr_assert_not_null(ctx);
        cr_assert_eq(wolfSSL_CTX_set_cipher_list(ctx, SUITE), WOLFSSL_SUCCESS);
        wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
        if (psk)
                wolfSSL_CTX_set_psk_client_tls13_callback(ctx, psk_cb);
        wolfSSL_CTX_SetIOSend(ctx, send_capture);
        wolfSSL_CTX_SetIORecv(ctx, recv_nothing);
        WOLFSSL *ssl = wolfSSL_new(ctx);
        cr_assert_not_null(ssl);
        s->n = 0;
        wolfSSL_SetIOWriteCtx(ssl, s);
        cr_assert_eq(wolfSSL_connect(ssl), WOLFSSL_FATAL_ERROR);
        cr_assert_eq(wolfSSL_get_error(ssl, WOLFSSL_FATAL_ERROR), WOLFSSL_ERROR_WANT_READ);
        cr_assert_gt(s->n, 5u);
        wolfSSL_free(ssl);
        wolfSSL_CTX_free(ctx);
        wolfSSL_Cleanup();
}

/* The result for p[0..n) with an out of out_size; a 0 must leave out "". */
static int parse(const uint8_t *p, size_t n, char *out, size_t out_size) {
        memset(out, 'x', out_size);
        int r = tls_hello_psk_identity(p, n, out, out_size);
        cr_assert(r == 0 || r == 1, "result %d", r);
        if (r == 0 && out_size > 0)
                cr_assert_eq(out[0], '\0', "length %zu: out not emptied", n);
        return r;
}

Test(tls_hello, wolfssl_psk_client) {
        sent_t s;
        char out[256];
        wolfssl_client_hello(true, &s);
        cr_assert_eq(parse(s.b, s.n, out, sizeof out), 1);
        cr_assert_str_eq(out, IDENTITY);
        /* exactly fitting, then one byte short */
        cr_assert_eq(parse(s.b, s.n, out, sizeof IDENTITY), 1);
        cr_assert_str_eq(out, IDENTITY);
        cr_assert_eq(parse(s.b, s.n, out, sizeof IDENTITY - 1), 0);
        cr_assert_eq(parse(s.b, s.n, out, 1), 0);
        /* no output buffer, no input */
        cr_assert_eq(tls_hello_psk_identity(s.b, s.n, out, 0), 0);
        cr_assert_eq(tls_hello_psk_identity(s.b, s.n, NULL, sizeof out), 0);
        cr_assert_eq(parse(NULL, s.n, out, sizeof out), 0);
}

Test(tls_hello, wolfssl_prefixes) {
        sent_t s;
        char out[256];
        wolfssl_client_hello(true, &s);
        for (size_t i = 0; i < s.n; i++) {
                /* an exact-size copy, so that a sanitizer sees a read past the end */
                uint8_t *copy = malloc(i ? i : 1);
                cr_assert_not_null(copy);
                memcpy(copy, s.b, i);
                cr_assert_eq(parse(copy, i, out, sizeof out), 0, "prefix of %zu bytes", i);
                free(copy);
        }
}

Test(tls_hello, wolfssl_without_psk) {
        sent_t s;
        char out[256];
        wolfssl_client_hello(false, &s);
        cr_assert_eq(s.b[0], 22);
        cr_assert_eq(s.b[5], 1, "a ClientHello");
        cr_assert_eq(parse(s.b, s.n, out, sizeof out), 0);
}

/* ---- hand-built records ---- */

typedef struct {
        uint8_t b[17000];
        size_t n;
} rec_t;

static void put(rec_t *r, size_t width, size_t v) {
        for (size_t i = width; i > 0; i--)
                r->b[r->n++] = (uint8_t) (v >> (8 * (i - 1)));
}

static void put_fill(rec_t *r, uint8_t c, size_t k) {
        memset(r->b + r->n, c, k);
        r->n += k;
}

static void set(rec_t *r, size_t at, size_t width, size_t v) {
        size_t n = r->n;
        r->n = at;
        put(r, width, v);
        r->n = n;
}

/* What a hand-built ClientHello holds besides the defaults. */
typedef struct {
        const char *id;      /* the identity offered, "abc" when NULL */
        size_t id_len;
        bool empty_first;    /* an empty identity before it */
        size_t session_id;   /* legacy_session_id length */
        size_t suites;       /* cipher_suites length, 2 when 0 */
        size_t pad;          /* a padding extension of this many bytes before the pre_shared_key */
        bool ext_after_psk;  /* an empty extension after the pre_shared_key */
        size_t trailer;      /* bytes after the extensions, inside the ClientHello */
} spec_t;

/* Where the fields are in the default ClientHello. */
#define OFF_REC_LEN 3
#define OFF_HS_TYPE 5
#define OFF_HS_LEN 6
#define OFF_EXT_LEN 50
#define OFF_PSK (52 + 7) /* after supported_versions */
#define OFF_IDS_LEN (OFF_PSK + 4)
#define OFF_ID (OFF_PSK + 8)

static void psk_identity(rec_t *r, const void *id, size_t id_len) {
        put(r, 2, id_len);
        memcpy(r->b + r->n, id, id_len);
        r->n += id_len;
        put(r, 4, 0x01020304); /* obfuscated_ticket_age */
}

static void hello(rec_t *r, const spec_t *s) {
        const char *id = s->id ? s->id : "abc";
        size_t id_len = s->id ? s->id_len : 3, suites = s->suites ? s->suites : 2;
        r->n = 0;
        put(r, 1, 22);
        put(r, 2, 0x0301);
        put(r, 2, 0); /* record length, below */
        put(r, 1, 1);
        put(r, 3, 0); /* ClientHello length, below */
        put(r, 2, 0x0303);
        put_fill(r, 0x42, 32); /* random */
        put(r, 1, s->session_id);
        put_fill(r, 0x5e, s->session_id);
        put(r, 2, suites);
        put_fill(r, 0x13, suites);
        put(r, 1, 1);
        put(r, 1, 0); /* compression: null */
        size_t ext_len = r->n;
        put(r, 2, 0);
        put(r, 2, 43); /* supported_versions: TLS 1.3 */
        put(r, 2, 3);
        put(r, 1, 2);
        put(r, 2, 0x0304);
        if (s->pad) {
                put(r, 2, 21);
                put(r, 2, s->pad - 4);
                put_fill(r, 0, s->pad - 4);
        }
        put(r, 2, 41);
        size_t psk_len = r->n;
        put(r, 2, 0);
        size_t ids_len = r->n;
        put(r, 2, 0);
        if (s->empty_first)
                psk_identity(r, "", 0);
        psk_identity(r, id, id_len);
        set(r, ids_len, 2, r->n - ids_len - 2);
        put(r, 2, 33); /* binders: one of 32 bytes */
        put(r, 1, 32);
        put_fill(r, 0xbb, 32);
        set(r, psk_len, 2, r->n - psk_len - 2);
        if (s->ext_after_psk) {
                put(r, 2, 21);
                put(r, 2, 0);
        }
        set(r, ext_len, 2, r->n - ext_len - 2);
        put_fill(r, 0, s->trailer);
        set(r, OFF_REC_LEN, 2, r->n - 5);
        set(r, OFF_HS_LEN, 3, r->n - 9);
}

/* Whether the ClientHello s, changed at `at` to the width-byte value v (width 0: unchanged),
 * yields identity want (NULL: none). */
static void check_hello(const spec_t *s, size_t at, size_t width, size_t v, const char *want, const char *what) {
        static rec_t r;
        char out[256];
        hello(&r, s);
        if (width)
                set(&r, at, width, v);
        cr_assert_eq(parse(r.b, r.n, out, sizeof out), !!want, "%s", what);
        if (want)
                cr_assert_str_eq(out, want, "%s", what);
}

#define ACCEPTED(want, what, ...) check_hello(&(spec_t) { __VA_ARGS__ }, 0, 0, 0, want, what)
#define REFUSED(what, ...) check_hello(&(spec_t) { __VA_ARGS__ }, 0, 0, 0, NULL, what)
#define REFUSED_AS(at, width, v, what) check_hello(&(spec_t) {}, at, width, v, NULL, what)

Test(tls_hello, hand_built) {
        ACCEPTED("abc", "the default");
        ACCEPTED("abc", "a session id of 32", .session_id = 32);
        ACCEPTED("abc", "padding first", .pad = 100);
        REFUSED("a session id of 33", .session_id = 33);
        REFUSED("odd cipher_suites length", .suites = 3);
        REFUSED("bytes after the extensions", .trailer = 1);
        REFUSED("pre_shared_key not last", .ext_after_psk = true);
        REFUSED("empty identity", .id = "", .id_len = 0);
        REFUSED("empty first identity", .empty_first = true);
        REFUSED("NUL in the identity", .id = "ab\0cd", .id_len = 5);

        REFUSED_AS(0, 1, 23, "application data");
        REFUSED_AS(OFF_HS_TYPE, 1, 2, "a ServerHello");
        REFUSED_AS(OFF_REC_LEN, 2, 0x68 + 1, "record length beyond n");
        REFUSED_AS(OFF_HS_LEN, 3, 0x64 + 1, "ClientHello beyond the record");
        REFUSED_AS(OFF_EXT_LEN, 2, 0x39 - 1, "extensions end before the ClientHello");
        REFUSED_AS(OFF_PSK + 2, 2, 0x2e + 1, "pre_shared_key overruns the extensions");
        REFUSED_AS(OFF_PSK, 2, 42, "no pre_shared_key");
        REFUSED_AS(OFF_IDS_LEN, 2, 0, "no identities");
        REFUSED_AS(OFF_ID - 2, 2, 200, "identity beyond the identities");
        check_hello(&(spec_t) { .id = "abcdefgh", .id_len = 8 }, OFF_IDS_LEN, 2, 2 + 8, NULL,
                    "identity without its ticket age");

        /* the ClientHello ends before the record does: the rest is not ours to judge */
        static rec_t r;
        char out[8];
        hello(&r, &(spec_t) {});
        cr_assert_eq(r.b[OFF_REC_LEN + 1], 0x68, "the offsets above");
        r.n++;
        set(&r, OFF_REC_LEN, 2, r.n - 5);
        cr_assert_eq(parse(r.b, r.n, out, sizeof out), 1);
        cr_assert_str_eq(out, "abc");
}

Test(tls_hello, long_identity) {
        static rec_t r;
        char id[300], out[sizeof id + 1];
        memset(id, 'i', sizeof id);
        hello(&r, &(spec_t) { .id = id, .id_len = sizeof id });
        cr_assert_eq(parse(r.b, r.n, out, sizeof id), 0);
        cr_assert_eq(parse(r.b, r.n, out, sizeof out), 1);
        cr_assert_eq(strlen(out), sizeof id);
}

Test(tls_hello, record_size_limit) {
        static rec_t r;
        char out[16];
        /* a padding extension brings the record to exactly 16384 bytes, then one more */
        hello(&r, &(spec_t) {});
        size_t pad = 16384 - (r.n - 5);
        hello(&r, &(spec_t) { .pad = pad });
        cr_assert_eq(r.n - 5, 16384u);
        cr_assert_eq(parse(r.b, r.n, out, sizeof out), 1);
        hello(&r, &(spec_t) { .pad = pad + 1 });
        cr_assert_eq(r.n - 5, 16385u);
        cr_assert_eq(parse(r.b, r.n, out, sizeof out), 0);
}

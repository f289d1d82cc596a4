/* SPDX-License-Identifier: MIT */
/* The wolfSSL reference contexts of the benches (bench-enrol.c, bench-mef-load.c). Include after
 * <wolfssl/options.h> and <wolfssl/ssl.h>. */
#pragma once

/* A TLS 1.3 context of method with suite and X25519 only, as msce-mef offers; NULL on failure. */
static inline WOLFSSL_CTX *bench_tls_ctx(WOLFSSL_METHOD *method, const char *suite) {
        WOLFSSL_CTX *ctx = wolfSSL_CTX_new(method);
        int groups[] = { WOLFSSL_ECC_X25519 };
        if (!ctx)
                return NULL;
        if (wolfSSL_CTX_set_cipher_list(ctx, suite) != WOLFSSL_SUCCESS ||
            wolfSSL_CTX_set_groups(ctx, groups, 1) != WOLFSSL_SUCCESS) {
                wolfSSL_CTX_free(ctx);
                return NULL;
        }
        (void) wolfSSL_CTX_clear_mode(ctx, SSL_MODE_AUTO_RETRY); /* as proto/tls-ctx.c */
        return ctx;
}

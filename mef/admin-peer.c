/* SPDX-License-Identifier: MIT */
/* The operator's name from the admin client's certificate: proto/tls.h gives a peer's
 * fingerprint only, so this reads the verified leaf through the TLS internals. */
#include "proto/tls-internal.h"
#include "mef/admin-api.h"

int admin_peer_cn(tls_conn_t *c, char *out, size_t size) {
        if (!c || !c->done || !out || size == 0)
                return -EINVAL;
        WOLFSSL_X509_CHAIN *chain = wolfSSL_get_peer_chain(c->ssl);
        if (!chain || wolfSSL_get_chain_count(chain) < 1)
                return -ENOKEY;
        const unsigned char *der = wolfSSL_get_chain_cert(chain, 0);
        int len = wolfSSL_get_chain_length(chain, 0);
        if (!der || len <= 0)
                return -ENOKEY;
        WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_buffer(der, len, WOLFSSL_FILETYPE_ASN1);
        if (!x)
                return -EBADMSG;
        int r = -ENOKEY;
        WOLFSSL_X509_NAME *name = wolfSSL_X509_get_subject_name(x);
        if (name && wolfSSL_X509_NAME_get_text_by_NID(name, NID_commonName, out, (int) size) > 0)
                r = 0;
        wolfSSL_X509_free(x);
        return r;
}

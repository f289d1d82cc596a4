/* SPDX-License-Identifier: MIT */
/* Handshake failure classes (proto/tls-classify.h, docs/protocol.md). */
#include <wolfssl/options.h>
#include "proto/tls-classify.h"

#include <errno.h>
#include <wolfssl/ssl.h>
#include <wolfssl/error-ssl.h>
#include <wolfssl/wolfcrypt/error-crypt.h>

static bool alert_is_auth(int code) {
        switch (code) {
        case bad_certificate:
        case unsupported_certificate:
        case certificate_revoked:
        case certificate_expired:
        case certificate_unknown:
        case unknown_ca:
        case access_denied:
        case decrypt_error:
        case unknown_psk_identity:
        case certificate_required:
                return true;
        default:
                return false;
        }
}

static bool error_is_auth(int e, bool handshake) {
        switch (e) {
        /* PSK: unknown identity, wrong key (binder, Finished or, in TLS 1.2, the MAC of the
         * first protected record fails). After the handshake a bad record is just bad. */
        case VERIFY_MAC_ERROR:
        case DECRYPT_ERROR:
                return handshake;
        case PSK_KEY_ERROR:
        case BAD_BINDER:
        case VERIFY_FINISHED_ERROR:
        /* certificates */
        case ASN_NO_SIGNER_E:
        case ASN_SELF_SIGNED_E:
        case ASN_SIG_CONFIRM_E:
        case ASN_SIG_OID_E:
        case ASN_SIG_KEY_E:
        case ASN_SIG_HASH_E:
        case ASN_AFTER_DATE_E:
        case ASN_BEFORE_DATE_E:
        case ASN_PATHLEN_SIZE_E:
        case ASN_PATHLEN_INV_E:
        case ASN_NAME_INVALID_E:
        /* a certificate not for this use (extended or plain key usage, an unknown critical
         * extension), revoked, or behind too long a chain */
        case EXTKEYUSE_AUTH_E:
        case KEYUSE_SIGNATURE_E:
        case KEYUSE_ENCIPHER_E:
        case ASN_CRIT_EXT_E:
        case CRL_CERT_REVOKED:
        case OCSP_CERT_REVOKED:
        case MAX_CHAIN_ERROR:
        case DOMAIN_NAME_MISMATCH:
        case IPADDR_MISMATCH:
        case VERIFY_CERT_ERROR:
        case VERIFY_SIGN_ERROR:
        case NO_PEER_CERT:
                return true;
        default:
                return false;
        }
}

/* An alert the MEF sent during the handshake. */
static int classify_alert(const tls_failure_t *f) {
        int a = f->alert_rx;
        if (!f->client)
                return alert_is_auth(a) || a == handshake_failure || (f->handshake && a == bad_record_mac)
                               ? -EACCES
                               : -EPROTO;
        switch (a) {
        case protocol_version:
        case insufficient_security:
                return -EPROTONOSUPPORT;
        case handshake_failure:
                /* Before its ServerHello a server has seen nothing but our offer: in TLS 1.2
                 * (identity and certificates come later) that means nothing in it was
                 * acceptable. A TLS 1.3 server without a certificate that does not know the
                 * identity has nothing to authenticate with either, and says the same. After
                 * the ServerHello it is about the credential. */
                if (!f->server_hello)
                        return f->psk13_offered ? -ENOKEY : -EPROTONOSUPPORT;
                /* TLS 1.2: before our ClientKeyExchange the server knows neither our identity
                 * nor our certificate: OpenSSL says this after its ServerHello when it has no
                 * group in common for ECDHE-PSK (measured). */
                if (f->version == 0x0303 && !f->second_flight)
                        return -EPROTONOSUPPORT;
                return -EACCES;
        case bad_record_mac:
                /* TLS 1.2 PSK: the server could not decrypt our Finished: wrong key */
                return f->handshake ? -EACCES : -EPROTO;
        case internal_error:
                /* GnuTLS 3.7 answers an unknown TLS 1.3 PSK identity with internal_error before
                 * its ServerHello (measured); it may also be a real fault: transient, said so. */
                return f->handshake && !f->server_hello && f->psk13_offered ? -EREMOTEIO : -EPROTO;
        case illegal_parameter:
                /* OpenSSL 3.0 answers a TLS 1.3 PSK binder that does not verify (wrong key)
                 * with illegal_parameter before its ServerHello (measured). */
                return f->handshake && !f->server_hello && f->psk13_offered ? -EACCES : -EPROTO;
        default:
                return alert_is_auth(a) ? -EACCES : -EPROTO;
        }
}

int tls_classify_failure(const tls_failure_t *f) {
        if (f->own_verify_failed || error_is_auth(f->error, f->handshake))
                return -EACCES;
        if (f->error == FATAL_ERROR)
                return classify_alert(f);
        if (!f->client || !f->handshake)
                return 0;
        /* A server below our floor (wolfSSL refuses it, with protocol_version). */
        if (f->error == VERSION_ERROR && f->server_hello && f->version && f->version < f->min_version)
                return -EPROTONOSUPPORT;
        /* A server that picked what we did not offer: broken, not incompatible. */
        return 0;
}

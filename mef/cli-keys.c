/* SPDX-License-Identifier: MIT */
/* Key material from files (Kpm, PSKs, certificate fingerprints), the credential options
 * node add and target add share, and init, which creates the store and its master key. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/ssl.h>
#include <wolfssl/wolfcrypt/hash.h>

#include <ctype.h>
#include <fcntl.h>

#include "mef/cli-internal.h"
#include "mef/store-backup.h"
#include "mef/store-open.h"
#include "proto/tls.h"

#define PSK_GENERATED_LEN 32u

/* ---- key material from files ---- */

/* Kpm as hex on one line (16..64 bytes), owner-only file; any bad content is -EINVAL. */
static int psk_file_read(const char *path, uint8_t key[MSG_KEY_MAX], size_t *ret_len) {
        int r = secret_hex_file_read(path, MSG_KEY_MIN, MSG_KEY_MAX, key, ret_len);
        return r == -EFBIG || r == -ENODATA ? -EINVAL : r;
}

/* 32 random bytes as hex into a new owner-only file; refuses an existing one. */
static int psk_file_generate(const char *path, uint8_t key[PSK_GENERATED_LEN]) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return negative_errno();
        char hex[2 * PSK_GENERATED_LEN + 2];
        int r = random_bytes(key, PSK_GENERATED_LEN);
        if (r == 0 && fchmod(fd, 0600) < 0)
                r = negative_errno();
        if (r == 0) {
                hex_encode(key, PSK_GENERATED_LEN, hex);
                hex[2 * PSK_GENERATED_LEN] = '\n';
                r = write_all(fd, hex, sizeof hex - 1);
        }
        erase(hex, sizeof hex);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0) {
                erase(key, PSK_GENERATED_LEN);
                unlink(path);
        }
        return r;
}

static int cert_fingerprint(const char *path, char out[STORE_FP_LEN + 1]) {
        if (access(path, R_OK) < 0)
                return negative_errno();
        WOLFSSL_X509 *x = wolfSSL_X509_load_certificate_file(path, WOLFSSL_FILETYPE_PEM);
        if (!x)
                return -EBADMSG;
        int sz = 0;
        const unsigned char *der = wolfSSL_X509_get_der(x, &sz);
        uint8_t h[WC_SHA256_DIGEST_SIZE];
        int r = der && sz > 0 && wc_Sha256Hash(der, (word32) sz, h) == 0 ? 0 : -EBADMSG;
        wolfSSL_X509_free(x);
        if (r == 0)
                hex_encode(h, sizeof h, out);
        return r;
}

static int psk_error(const char *path, int r) {
        if (r == -EPERM)
                return cli_failf("psk file %s: readable by group or others (chmod 0600 it)", path);
        if (r == -EINVAL)
                return cli_failf("psk file %s: expected %u..%u bytes as hex on one line", path, MSG_KEY_MIN, MSG_KEY_MAX);
        return cli_failf("psk file %s: %s", path, strerror(-r));
}

void credential_done(credential_t *cr) {
        erase(cr->key, sizeof cr->key);
        cr->key_len = 0;
}

int credential_check(const char *cmd, const credential_opts_t *o) {
        int modes = !!o->psk_id + !!o->cert + !!o->cert_fp;
        if (modes != 1)
                return cli_usage_error(cmd, "give exactly one of --psk-id, --cert, --cert-fp");
        if (o->psk_id && !!o->psk_file + !!o->generate_psk != 1)
                return cli_usage_error(cmd, "--psk-id needs exactly one of --psk-file, --generate-psk");
        if (!o->psk_id && (o->psk_file || o->generate_psk))
                return cli_usage_error(cmd, "--psk-file and --generate-psk need --psk-id");
        if (o->psk_id && !id_is_valid(o->psk_id, TLS_PSK_ID_MAX))
                return cli_usage_error(cmd,
                                       "--psk-id (%s): expected 1..%u printable ASCII characters without spaces "
                                       "(the TLS PSK identity limit)",
                                       streq(cmd, "node add") ? "the KpmID" : "the PSK identity", TLS_PSK_ID_MAX);
        if (o->cert_fp) {
                char fp[STORE_FP_LEN + 1];
                if (ops_cert_fp_normalise(o->cert_fp, fp) < 0)
                        return cli_usage_error(cmd, "--cert-fp: expected a SHA-256 fingerprint (64 hex digits)");
        }
        return 0;
}

/* Reads, generates or computes the credential; the generated file is created last. */
int credential_load(const credential_opts_t *o, credential_t *cr) {
        int r;
        if (o->psk_id) {
                snprintf(cr->psk_id, sizeof cr->psk_id, "%s", o->psk_id);
                if (o->psk_file) {
                        r = psk_file_read(o->psk_file, cr->key, &cr->key_len);
                        return r < 0 ? psk_error(o->psk_file, r) : 0;
                }
                r = psk_file_generate(o->generate_psk, cr->key);
                if (r == -EEXIST)
                        return cli_failf("psk file %s: exists already (not overwritten)", o->generate_psk);
                if (r < 0)
                        return cli_failf("psk file %s: %s", o->generate_psk, strerror(-r));
                cr->key_len = PSK_GENERATED_LEN;
                cr->generated = o->generate_psk;
                return 0;
        }
        if (o->cert) {
                r = cert_fingerprint(o->cert, cr->cert_fp);
                if (r == -EBADMSG)
                        return cli_failf("certificate %s: not a PEM certificate", o->cert);
                return r < 0 ? cli_failf("certificate %s: %s", o->cert, strerror(-r)) : 0;
        }
        return ops_cert_fp_normalise(o->cert_fp, cr->cert_fp) < 0 ? MEF_EXIT_USAGE : 0;
}

void credential_detail(const credential_t *cr, char *buf, size_t size) {
        if (cr->psk_id[0])
                snprintf(buf, size, "psk id=%s%s", cr->psk_id, cr->generated ? " (generated)" : "");
        else
                snprintf(buf, size, "cert fp=%s", cr->cert_fp);
}

/* A failed node add or target add: a generated key file opens nothing, so it goes. */
int credential_add_failed(const char *cmd, const char *id, const credential_t *cr, int r, const char *in_use) {
        if (cr->generated)
                unlink(cr->generated);
        if (r == -EEXIST)
                return cli_failf("%s %s: %s already in use", cmd, id, in_use);
        if (r == -EADDRINUSE) /* only nodes have a CSE-ID */
                return cli_failf("%s %s: --cse-id: CSE-ID already assigned to another node", cmd, id);
        return cli_failf("%s %s: %s", cmd, id, cli_strerror(r));
}

void credential_added_print(const char *what, const char *id, const char *detail, const credential_t *cr,
                                   const char *key_name, const char *key_hint) {
        printf("Added %s %s (%s).\n", what, id, detail);
        if (cr->generated)
                printf("Wrote its %s to %s%s.\n", key_name, cr->generated, key_hint);
}


/* Takes the CREDENTIAL_OPTIONS option o into co; false when o is not one of them. */
bool credential_option(credential_opts_t *co, int o, const char *arg) {
        switch (o) {
        case 'k':
                co->psk_id = arg;
                return true;
        case 'f':
                co->psk_file = arg;
                return true;
        case 'g':
                co->generate_psk = arg;
                return true;
        case 'c':
                co->cert = arg;
                return true;
        case 'F':
                co->cert_fp = arg;
                return true;
        default:
                return false;
        }
}

/* ---- init ---- */

static const char *const rekey_state_json[_STORE_REKEY_STATE_MAX] = {
        [STORE_REKEY_NONE] = NULL,
        [STORE_REKEY_PREPARED] = "prepared",
        [STORE_REKEY_UNDER_WAY] = "underway",
};

static json_t *json_string_or_null(const char *s) {
        return s && s[0] ? json_string(s) : json_null();
}

/* A rekey prepared or under way: the other key's ID, which backups carry when, what to do. */
static void init_rekey_print(const char *key_path, const store_key_ids_t *k) {
        if (k->rekey == STORE_REKEY_PREPARED)
                printf("A rekey to master key ID %s is prepared (%s.new): backups made now carry ID %s, those made "
                       "after msce-mef rekey ID %s: write that down too.\n",
                       k->next, key_path, k->current, k->next);
        else if (k->rekey == STORE_REKEY_UNDER_WAY && k->previous[0])
                printf("A rekey from master key ID %s (%s) to this key (%s.new) is under way: run msce-mef rekey to "
                       "finish it. Keep ID %s; backups made before the rekey carry ID %s.\n",
                       k->previous, key_path, key_path, k->current, k->previous);
        else if (k->rekey == STORE_REKEY_UNDER_WAY)
                printf("A rekey to this key (%s.new) is under way: run msce-mef rekey to finish it.\n", key_path);
}

int cmd_init(cli_t *c, const command_t *def, int argc, char **argv) {
        int r = cli_simple_options(c, "init", def, argc, argv, 0, NULL);
        if (r >= 0)
                return r;
        const char *name = mef_store_name(c->cfg);
        r = cli_open(c, true);
        if (r)
                return r;
        bool existed = !store_created(c->store);
        if (!existed) {
                r = store_audit(c->store, cli_actor(), "init", name, NULL);
                if (r < 0)
                        return cli_fail("audit", r);
        }
        /* the key a backup made now wraps: during a rekey, not always the key file's */
        store_key_ids_t k;
        r = store_master_key_ids(c->store, &k);
        if (r < 0)
                return cli_fail("master key ID", r);
        if (c->json) {
                json_t *o = json_object();
                bool ok = o != NULL;
                if (o) {
                        ops_jset(o, "store", json_string(name), &ok);
                        ops_jset(o, "masterKey", json_string(c->cfg->master_key_path), &ok);
                        ops_jset(o, "created", json_boolean(!existed), &ok);
                        ops_jset(o, "masterKeyId", json_string(k.current), &ok);
                        ops_jset(o, "rekey", json_string_or_null(rekey_state_json[k.rekey]), &ok);
                        ops_jset(o, "nextMasterKeyId", json_string_or_null(k.next), &ok);
                        ops_jset(o, "previousMasterKeyId", json_string_or_null(k.previous), &ok);
                }
                return cli_json_print(ops_jdone(o, ok));
        }
        if (existed)
                printf("Store %s exists already; master key %s opens it.\n", name, c->cfg->master_key_path);
        else
                printf("Created store %s with master key %s.\n", name, c->cfg->master_key_path);
        printf("Master key ID %s: write it down; restore --expect-master-key checks a backup against it.\n", k.current);
        init_rekey_print(c->cfg->master_key_path, &k);
        return 0;
}

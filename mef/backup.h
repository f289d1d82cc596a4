/* SPDX-License-Identifier: MIT */
#pragma once
/* The files of an msce-mef backup directory, without the store: the master key wrapped under a
 * passphrase (PBKDF2-HMAC-SHA256, AES-256-GCM) or for a recipient's P-256 public key (ECDH,
 * HKDF-SHA256, AES-256-GCM), and the manifest. Both parsers take untrusted
 * input (a backup may come from anywhere) and have limits; tests/fuzz/fuzz-backup.c. */
#include <stddef.h>
#include <stdint.h>

#include "mef/store-backup.h"
#include "mef/store.h"

#define BACKUP_FORMAT "msce-mef-backup"
/* 2: the manifest carries a MAC under the master key (version 1 had none, and is refused) */
#define BACKUP_FORMAT_VERSION 2
#define BACKUP_FILE_STORE "store.jsonl"
#define BACKUP_FILE_KEY "master-key.json"
#define BACKUP_FILE_MANIFEST "manifest.json"

#define BACKUP_KDF_ITERATIONS 600000u /* OWASP 2023 for PBKDF2-HMAC-SHA256 */
#define BACKUP_KDF_ITERATIONS_MIN 100000u
#define BACKUP_KDF_ITERATIONS_MAX 10000000u
#define BACKUP_PASSPHRASE_MIN 8u
#define BACKUP_PASSPHRASE_MAX 1024u
#define BACKUP_SMALL_FILE_MAX (64u * 1024u) /* manifest, wrapped key */
#define BACKUP_LINE_MAX (64u * 1024u)       /* a row of store.jsonl */
#define BACKUP_MAC_LEN 32u

/* The wrapped key as JSON text (caller frees). */
int backup_key_wrap(const uint8_t key[STORE_MASTER_KEY_LEN], const char *pass, size_t pass_len, uint32_t iterations,
                    char **ret);
/* -EBADMSG when text is not a wrapped key, -EKEYREJECTED when the passphrase does not open it. */
int backup_key_unwrap(const char *text, size_t len, const char *pass, size_t pass_len,
                      uint8_t key[STORE_MASTER_KEY_LEN]);

/* For a recipient: pem is its public key (SubjectPublicKeyInfo, "PUBLIC KEY"); -EINVAL when it
 * is not a P-256 key. The backup host never holds what opens the backup. */
int backup_key_wrap_recipient(const uint8_t key[STORE_MASTER_KEY_LEN], const char *pem, size_t pem_len, char **ret);
/* pem: the recipient's private key (SEC1 or PKCS#8). -EBADMSG when text is not a key wrapped for a
 * recipient, -EINVAL when pem is not a P-256 private key, -EKEYREJECTED when it is not the
 * recipient's (or the wrap was tampered with). */
int backup_key_unwrap_identity(const char *text, size_t len, const char *pem, size_t pem_len,
                               uint8_t key[STORE_MASTER_KEY_LEN]);
/* The SHA-256 of a public key's SubjectPublicKeyInfo DER, in hex (what `openssl pkey -pubin
 * -outform DER | sha256sum` prints): how backups name their recipient. */
int backup_recipient_fingerprint(const char *pem, size_t len, char hex[65]);

enum { BACKUP_WRAP_PASSPHRASE = 1, BACKUP_WRAP_RECIPIENT = 2 };
/* How a wrapped key file is wrapped (for a recipient: its fingerprint into recipient_hex when not
 * NULL); -EBADMSG when it is neither. */
int backup_key_kind(const char *text, size_t len, char recipient_hex[65]);

enum { BACKUP_STORE, BACKUP_KEY, _BACKUP_FILES };
extern const char *const backup_file_names[_BACKUP_FILES];

typedef struct backup_manifest {
        int version;
        int schema;
        int64_t created;
        char backend[16];
        uint64_t rows[STORE_DUMP_TABLES_MAX]; /* in store_dump_tables order */
        struct {
                uint64_t size;
                char sha256[65];
        } files[_BACKUP_FILES];
        uint8_t mac[BACKUP_MAC_LEN];
} backup_manifest_t;

int backup_manifest_format(const backup_manifest_t *m, char **ret);
/* -EBADMSG for anything but a manifest this msce-mef writes; -EPROTONOSUPPORT for a newer
 * format version, -EPROTO for version 1 (whose manifest has no MAC). */
int backup_manifest_parse(const char *text, size_t len, backup_manifest_t *ret);
/* The manifest's MAC: HMAC-SHA256 of every other member, under a key that HKDF-SHA256 derives
 * from the master key the backup wraps. Through the files' SHA-256 it covers every row of
 * store.jsonl (their order and tables too) and the wrapped key: whoever changes a byte of the
 * backup must know the master key to make a manifest that holds. seal fills m->mac; verify: 0,
 * or -EKEYREJECTED. */
int backup_manifest_seal(const uint8_t key[STORE_MASTER_KEY_LEN], backup_manifest_t *m);
int backup_manifest_verify(const uint8_t key[STORE_MASTER_KEY_LEN], const backup_manifest_t *m);

/* A line of store.jsonl: {"table": ..., "row": {...}}. table and row belong to *ret_root (json_decref it). */
int backup_line_parse(const char *text, size_t len, const char **ret_table, json_t **ret_row, json_t **ret_root);

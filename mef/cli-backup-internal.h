/* SPDX-License-Identifier: MIT */
#pragma once
/* What msce-mef backup (cli-backup.c) and restore (cli-restore.c) share: the passphrase, their
 * options, the rows counted per table, a SHA-256 as hex. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/wolfcrypt/sha256.h>

#include "mef/backup.h"
#include "mef/cli-internal.h"
#include "mef/store-backup.h"

typedef struct passphrase {
        char text[BACKUP_PASSPHRASE_MAX + 3];
        size_t len;
} passphrase_t;

/* Wipes p. */
void passphrase_done(passphrase_t *p);
/* From an owner-only file (one line), or asked on the terminal (twice when confirm). Never from
 * argv or the environment. Prints its own error. */
int passphrase_get(const char *file, bool confirm, passphrase_t *p);

/* What backup and restore are told: each takes the options its opts name, then DIR. */
typedef struct backup_args {
        const char *dir;
        const char *pass_file;
        const char *recipient; /* backup: the public key file */
        const char *identity;  /* restore: the private key file */
        const char *expect_id; /* restore: the master key ID the backup must have */
        uint32_t iterations;
        bool force;
} backup_args_t;

/* The options of backup, or with restore of restore. As cli_simple_options(): -1 to go on with
 * *ret, or the exit status to return now. */
int backup_args_parse(cli_t *c, const command_t *def, bool restore, int argc, char **argv,
                      backup_args_t *ret);

/* One more row of table, counted in store_dump_tables order. */
void rows_count(uint64_t rows[STORE_DUMP_TABLES_MAX], const char *table);
/* sha's digest as 64 hex digits and a NUL: 0 or -EIO. */
int sha256_hex_final(wc_Sha256 *sha, char out[65]);

/* SPDX-License-Identifier: MIT */
/* restore: a backup (cli-backup.c) into a fresh store, checked whole before anything is
 * written: the master key unwrapped, its ID when the operator names one, the manifest's MAC, each
 * file's size and SHA-256, every row. */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <fcntl.h>
#include <inttypes.h>

#include "mef/cli-backup-internal.h"
#include "mef/store-open.h"

/* The master key out of the backup's wrapped key file, with what the wrap asks for: the
 * passphrase, or the recipient's private key (an owner-only file). Prints its own error. */
static int restore_key_unwrap(const char *dir, const char *text, size_t len, const char *pass_file,
                              const char *identity, uint8_t key[STORE_MASTER_KEY_LEN]) {
        char recipient[65];
        int kind = backup_key_kind(text, len, recipient);
        if (kind < 0)
                return cli_failf("restore %s: %s: not a wrapped master key", dir, BACKUP_FILE_KEY);
        if (kind == BACKUP_WRAP_RECIPIENT && (!identity || pass_file))
                return cli_failf("restore %s: the master key is wrapped for recipient key SHA256:%s: give its "
                                 "private key with --identity FILE",
                                 dir, recipient);
        if (kind == BACKUP_WRAP_PASSPHRASE && identity)
                return cli_failf("restore %s: the master key is wrapped under a passphrase, not for a recipient "
                                 "key: drop --identity",
                                 dir);
        int r;
        if (kind == BACKUP_WRAP_RECIPIENT) {
                _cleanup_secret_ secret_t pem = { 0 };
                r = secret_file_read(identity, 8192, &pem);
                if (r == -EPERM)
                        return cli_failf("identity %s: readable by group or others (chmod 0600 it)", identity);
                if (r < 0)
                        return cli_failf("identity %s: %s", identity, strerror(-r));
                r = backup_key_unwrap_identity(text, len, (const char *) pem.data, pem.len, key);
                if (r == -EINVAL)
                        return cli_failf("identity %s: not a P-256 private key in PEM", identity);
                if (r == -EKEYREJECTED)
                        return cli_failf("restore %s: identity %s is not recipient key SHA256:%s (nothing was "
                                         "changed)",
                                         dir, identity, recipient);
        } else {
                _cleanup_(passphrase_done) passphrase_t pass = {};
                r = passphrase_get(pass_file, false, &pass);
                if (r)
                        return r;
                r = backup_key_unwrap(text, len, pass.text, pass.len, key);
                if (r == -EKEYREJECTED)
                        return cli_failf("restore %s: wrong passphrase: it does not open the master key in %s "
                                         "(nothing was changed)",
                                         dir, BACKUP_FILE_KEY);
        }
        if (r < 0)
                return cli_failf("restore %s: %s: %s", dir, BACKUP_FILE_KEY,
                                 r == -EBADMSG ? "not a wrapped master key" : strerror(-r));
        return 0;
}


/* Bytes of n: their size and SHA-256 as the manifest says. */
static int text_verify(const char *text, size_t n, uint64_t size, const char *sha) {
        uint8_t h[WC_SHA256_DIGEST_SIZE];
        char hex[65];
        if (wc_Sha256Hash((const byte *) text, (word32) n, h) != 0)
                return -EIO;
        hex_encode(h, sizeof h, hex);
        return n == size && streq(hex, sha) ? 0 : -EBADMSG;
}

/* The file's size and SHA-256 as the manifest says. */
static int file_verify(const char *dir, const char *name, uint64_t size, const char *sha) {
        char path[PATH_MAX];
        int r = path_join(dir, name, path);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        wc_Sha256 h;
        if (wc_InitSha256(&h) != 0)
                return -EIO;
        uint64_t total = 0;
        uint8_t buf[16384];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0) {
                total += (uint64_t) n;
                if (wc_Sha256Update(&h, buf, (word32) n) != 0)
                        n = -1;
        }
        char hex[65];
        r = n < 0 ? -EIO : sha256_hex_final(&h, hex);
        wc_Sha256Free(&h);
        if (r < 0)
                return r;
        return total == size && streq(hex, sha) ? 0 : -EBADMSG;
}

/* The master key file: created from the backup's key (1), or already holding that key (0). */
static int restore_rows(cli_t *c, const char *dir, const backup_manifest_t *m, uint64_t rows[STORE_DUMP_TABLES_MAX]) {
        char path[PATH_MAX];
        int r = path_join(dir, BACKUP_FILE_STORE, path);
        if (r < 0)
                return cli_fail(dir, r);
        FILE *f = fopen(path, "re");
        if (!f)
                return cli_failf("restore %s: %s: %s", dir, BACKUP_FILE_STORE, strerror(errno));
        _cleanup_free_ char *line = NULL;
        size_t alloc = 0;
        ssize_t n;
        unsigned long lineno = 0;
        /* the bytes restored, not those checked before: the manifest's MAC covers their hash */
        wc_Sha256 sha;
        uint64_t size = 0;
        if (wc_InitSha256(&sha) != 0) {
                fclose(f);
                return cli_fail("sha256", -EIO);
        }
        r = 0;
        while (r == 0 && (n = getline(&line, &alloc, f)) > 0) {
                lineno++;
                size += (uint64_t) n;
                if (wc_Sha256Update(&sha, (const byte *) line, (word32) n) != 0)
                        r = -EIO;
                if (r < 0)
                        break;
                const char *table = NULL;
                json_t *row = NULL, *root = NULL;
                r = backup_line_parse(line, (size_t) n, &table, &row, &root);
                if (r == 0)
                        r = store_restore_row(c->store, table, row);
                if (r == 0)
                        rows_count(rows, table);
                json_decref(root);
        }
        bool read_error = ferror(f);
        fclose(f);
        char hex[65] = "";
        int h = sha256_hex_final(&sha, hex);
        wc_Sha256Free(&sha);
        if (r == 0 && (read_error || h < 0))
                return cli_failf("restore %s: %s: %s", dir, BACKUP_FILE_STORE, strerror(read_error ? EIO : -h));
        if (r == 0 && (size != m->files[BACKUP_STORE].size || !streq(hex, m->files[BACKUP_STORE].sha256)))
                return cli_failf("restore %s: %s changed while it was restored (size or SHA-256 differs from the "
                                 "manifest): nothing was restored",
                                 dir, BACKUP_FILE_STORE);
        if (r == -EKEYREJECTED)
                return cli_failf("restore %s: %s line %lu: a secret the master key in the backup does not open",
                                 dir, BACKUP_FILE_STORE, lineno);
        if (r < 0)
                return cli_failf("restore %s: %s line %lu: %s", dir, BACKUP_FILE_STORE, lineno,
                                 (r == -EBADMSG || r == -EINVAL) && !store_error_reason(c->store, r)
                                         ? "not a row of this schema"
                                         : cli_strerror(r));
        if (memcmp(rows, m->rows, sizeof m->rows) != 0)
                return cli_failf("restore %s: %s holds other row counts than the manifest", dir, BACKUP_FILE_STORE);
        return 0;
}

/* What a restore made, to take away again when it fails: the key file, and on SQLite the store
 * files that were not there (or a database file that was empty). */
typedef struct restore_made {
        bool key;
        store_sqlite_files_t files;
} restore_made_t;

/* Closes the store. A store that was there before is left as it was (rows rolled back); one this
 * restore created is removed (SQLite: its files; PostgreSQL: its check value, the empty tables
 * staying) and only then the key file it installed, which the store would otherwise need. */
static void restore_made_undo(cli_t *c, const restore_made_t *m) {
        bool sqlite = c->cfg->store_backend == STORE_BACKEND_SQLITE;
        bool keep_key = !sqlite && c->store && store_created(c->store) && store_restore_forget_key(c->store) < 0;
        c->store = store_close(c->store);
        if (sqlite)
                (void) store_sqlite_files_undo(c->cfg->store_path, &m->files);
        if (m->key && !keep_key) {
                (void) unlink(c->cfg->master_key_path);
                (void) fsync_parent_dir(c->cfg->master_key_path);
        }
}

/* The rows into the store (opened, created when missing), in one transaction with the audit row;
 * the counts in rows and detail. 0, or the exit status (said). */
static int restore_into(cli_t *c, const backup_args_t *a, const backup_manifest_t *m,
                        uint64_t rows[STORE_DUMP_TABLES_MAX], char detail[128]) {
        int r = cli_open(c, true);
        if (r)
                return r;
        uint64_t in_use;
        r = store_rows_in_use(c->store, &in_use);
        if (r < 0)
                return cli_fail("restore", r);
        if (in_use > 0 && !a->force)
                return cli_failf("restore %s: store %s is not empty (%" PRIu64 " nodes, targets, enrolments and "
                                 "audit rows): --force replaces them",
                                 a->dir, mef_store_name(c->cfg), in_use);
        r = store_begin(c->store);
        if (r < 0)
                return cli_fail("restore", r);
        if (a->force)
                r = store_restore_clear(c->store);
        if (r < 0) {
                store_rollback(c->store);
                return cli_fail("restore", r);
        }
        r = restore_rows(c, a->dir, m, rows);
        if (r) {
                store_rollback(c->store);
                return r;
        }
        r = store_restore_finish(c->store);
        snprintf(detail, 128, "%" PRIu64 " nodes, %" PRIu64 " targets, %" PRIu64 " enrolments", rows[0], rows[1],
                 rows[2]);
        r = cli_change_end(c, r, "restore", a->dir, detail);
        if (r < 0 && c->commit_unknown)
                return cli_failf("restore %s: committing it: %s; whether the restore took is unknown, so the "
                                 "master key %s and the store stay as they are: run msce-mef restore --force %s "
                                 "again (it takes that key)",
                                 a->dir, cli_strerror(r), c->cfg->master_key_path, a->dir);
        return r < 0 ? cli_fail("restore", r) : 0;
}

int cmd_restore(cli_t *c, const command_t *def, int argc, char **argv) {
        backup_args_t a;
        int r = backup_args_parse(c, def, true, argc, argv, &a);
        if (r >= 0)
                return r;
        const char *dir = a.dir;

        char path[PATH_MAX];
        _cleanup_free_ char *text = NULL;
        size_t len;
        r = path_join(dir, BACKUP_FILE_MANIFEST, path);
        if (r == 0)
                r = file_read_all(path, BACKUP_SMALL_FILE_MAX, &text, &len);
        if (r < 0)
                return cli_failf("restore %s: %s: %s (not a complete backup)", dir, BACKUP_FILE_MANIFEST,
                                 strerror(-r));
        backup_manifest_t m;
        r = backup_manifest_parse(text, len, &m);
        if (r == -EPROTONOSUPPORT)
                return cli_failf("restore %s: written by a newer msce-mef (backup format)", dir);
        if (r == -EPROTO)
                return cli_failf("restore %s: backup format 1, whose manifest has no MAC: nothing tells its rows "
                                 "from changed ones. Restore it with the msce-mef that wrote it, or make a new "
                                 "backup",
                                 dir);
        if (r < 0)
                return cli_failf("restore %s: %s: not a backup manifest", dir, BACKUP_FILE_MANIFEST);
        /* an older schema whose rows are those of this one restores, into a store of this one */
        if (m.schema > STORE_SCHEMA_VERSION)
                return cli_failf("restore %s: store schema %d, newer than this msce-mef's %d: restore with an "
                                 "msce-mef at least as new as the one that wrote it",
                                 dir, m.schema, STORE_SCHEMA_VERSION);
        if (m.schema < STORE_DUMP_SCHEMA_MIN)
                return cli_failf("restore %s: store schema %d, this msce-mef writes %d and reads backups of %d and "
                                 "later: restore with the msce-mef that wrote it, then upgrade",
                                 dir, m.schema, STORE_SCHEMA_VERSION, STORE_DUMP_SCHEMA_MIN);
        free(text);
        text = NULL;
        /* the wrapped key checked as read, and read once */
        const char *checking = BACKUP_FILE_KEY;
        r = path_join(dir, BACKUP_FILE_KEY, path);
        if (r == 0)
                r = file_read_all(path, BACKUP_SMALL_FILE_MAX, &text, &len);
        if (r == 0)
                r = text_verify(text, len, m.files[BACKUP_KEY].size, m.files[BACKUP_KEY].sha256);
        if (r == 0) {
                checking = BACKUP_FILE_STORE;
                r = file_verify(dir, BACKUP_FILE_STORE, m.files[BACKUP_STORE].size, m.files[BACKUP_STORE].sha256);
        }
        if (r < 0)
                return cli_failf("restore %s: %s: %s", dir, checking,
                                 r == -EBADMSG ? "size or SHA-256 differs from the manifest (damaged)" : strerror(-r));

        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        r = restore_key_unwrap(dir, text, len, a.pass_file, a.identity, key);
        if (r)
                return r;
        /* the MAC below tells only that whoever wrote the backup held its key; with --recipient
         * anyone can make a key, so the operator names the one meant (its ID: not the key) */
        char id[STORE_MASTER_KEY_ID_HEX];
        r = store_master_key_id(key, id);
        if (r < 0)
                return cli_failf("restore %s: master key ID: %s", dir, strerror(-r));
        if (a.expect_id && !streq(id, a.expect_id))
                return cli_failf("restore %s: its master key is ID %s, not ID %s (--expect-master-key): refused, "
                                 "nothing was changed; a backup made with another key, or by someone else",
                                 dir, id, a.expect_id);
        /* the manifest (and through its hashes every byte of the backup) as the MEF that holds
         * this key wrote it */
        r = backup_manifest_verify(key, &m);
        if (r == -EKEYREJECTED)
                return cli_failf("restore %s: %s does not hold under the backup's master key (its MAC): the backup "
                                 "was changed after it was written (nothing was changed)",
                                 dir, BACKUP_FILE_MANIFEST);
        if (r < 0)
                return cli_failf("restore %s: %s: %s", dir, BACKUP_FILE_MANIFEST, strerror(-r));

        restore_made_t made = {};
        r = c->cfg->store_backend == STORE_BACKEND_SQLITE ? store_sqlite_files_note(c->cfg->store_path, &made.files) : 0;
        if (r < 0)
                return cli_failf("restore %s: store %s: %s", dir, mef_store_name(c->cfg), strerror(-r));
        r = store_master_key_install(c->cfg->master_key_path, key);
        if (r == -EEXIST)
                return cli_failf("restore %s: master key %s exists and is not the backup's: restore into a fresh "
                                 "MEF (move the old store and key aside first)",
                                 dir, c->cfg->master_key_path);
        if (r < 0)
                return cli_failf("restore %s: master key %s: %s", dir, c->cfg->master_key_path, strerror(-r));
        made.key = r > 0;
        uint64_t rows[STORE_DUMP_TABLES_MAX] = {};
        char detail[128];
        r = restore_into(c, &a, &m, rows, detail);
        /* what this restore made goes again, so that the same command can run once more; not
         * after a COMMIT whose answer was lost: the rows may be in, sealed under that key */
        if (r && !c->commit_unknown)
                restore_made_undo(c, &made);
        if (r)
                return r;
        printf("Restored %s into %s: %s, %" PRIu64 " audit rows.\n", dir, mef_store_name(c->cfg), detail, rows[3]);
        printf("Master key ID %s.\n", id);
        return 0;
}

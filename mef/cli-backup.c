/* SPDX-License-Identifier: MIT */
/* backup: a consistent logical dump of the store with its master key wrapped under a passphrase
 * or for a recipient's public key (restore: cli-restore.c; rekey: cli-rekey.c). */
#include <wolfssl/options.h>
/* util.h before the other wolfSSL headers: wolfmath.h defines MIN/MAX only when unset. */
#include "util/util.h"

#include <wolfssl/wolfcrypt/hash.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>

#include "mef/cli-backup-internal.h"
#include "mef/store-open.h"
#include "util/string-table.h"

void passphrase_done(passphrase_t *p) {
        erase(p, sizeof *p);
}

/* One line from the terminal, not echoed. */
static int tty_read_line(int fd, const char *prompt, passphrase_t *p) {
        struct termios old, quiet;
        if (tcgetattr(fd, &old) < 0)
                return negative_errno();
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t) ECHO;
        if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0)
                return negative_errno();
        int r = write_all(fd, prompt, strlen(prompt));
        p->len = 0;
        for (char ch; r == 0;) {
                ssize_t n = read(fd, &ch, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0 || ch == '\n')
                        break;
                if (p->len >= sizeof p->text - 1)
                        r = -E2BIG;
                else
                        p->text[p->len++] = ch;
        }
        (void) tcsetattr(fd, TCSAFLUSH, &old);
        (void) write_all(fd, "\n", 1);
        return r;
}

int passphrase_get(const char *file, bool confirm, passphrase_t *p) {
        if (file) {
                _cleanup_secret_ secret_t s = { 0 };
                int r = secret_file_read(file, BACKUP_PASSPHRASE_MAX + 2, &s);
                if (r == -EPERM)
                        return cli_failf("passphrase file %s: readable by group or others (chmod 0600 it)", file);
                if (r == -EFBIG)
                        return cli_failf("passphrase file %s: longer than %u bytes", file, BACKUP_PASSPHRASE_MAX);
                if (r < 0 && r != -ENODATA)
                        return cli_failf("passphrase file %s: %s", file, strerror(-r));
                p->len = r < 0 ? 0 : s.len;
                memcpy(p->text, s.data, p->len);
                if (p->len && p->text[p->len - 1] == '\n')
                        p->len--;
                if (p->len && p->text[p->len - 1] == '\r')
                        p->len--;
        } else {
                _cleanup_close_ int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (fd < 0)
                        return cli_failf("no --passphrase-file given and no terminal to ask for the passphrase on");
                int r = tty_read_line(fd, "Backup passphrase: ", p);
                if (r == 0 && confirm) {
                        _cleanup_(passphrase_done) passphrase_t again = {};
                        r = tty_read_line(fd, "Again: ", &again);
                        if (r == 0 && (again.len != p->len || memcmp(again.text, p->text, p->len) != 0))
                                return cli_failf("the passphrases differ");
                }
                if (r < 0)
                        return cli_failf("passphrase: %s", strerror(-r));
        }
        if (p->len < BACKUP_PASSPHRASE_MIN || p->len > BACKUP_PASSPHRASE_MAX)
                return cli_failf("passphrase: expected %u to %u bytes", BACKUP_PASSPHRASE_MIN, BACKUP_PASSPHRASE_MAX);
        return 0;
}

/* How the master key is wrapped: for the recipient's public key when pem is set, else under
 * the passphrase. */
typedef struct key_wrap {
        passphrase_t pass;
        uint32_t iterations;
        char *pem;
        size_t pem_len;
        char recipient[65]; /* its fingerprint */
} key_wrap_t;

static void key_wrap_done(key_wrap_t *w) {
        free(w->pem);
        erase(w, sizeof *w);
}

/* ---- backup ---- */

typedef struct backup_writer {
        const char *dir;
        int fd;
        wc_Sha256 sha;
        uint64_t size;
        backup_manifest_t m;
        uint8_t check[256];
        size_t check_len;
        char key_id[STORE_MASTER_KEY_ID_HEX]; /* of the key wrapped */
} backup_writer_t;

/* A new file of the backup: 0600 whatever the umask, never an existing one. */
/* path is set once the file exists: what a failed backup removes, never a file it did not create. */
static int backup_file_create(const char *dir, const char *name, char path[PATH_MAX]) {
        char p[PATH_MAX];
        int r = path_join(dir, name, p);
        if (r < 0)
                return r;
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return negative_errno();
        if (fchmod(fd, 0600) < 0) {
                r = negative_errno();
                close(fd);
                unlink(p);
                return r;
        }
        memcpy(path, p, sizeof p);
        return fd;
}

int sha256_hex_final(wc_Sha256 *sha, char out[65]) {
        uint8_t h[WC_SHA256_DIGEST_SIZE];
        if (wc_Sha256Final(sha, h) != 0)
                return -EIO;
        hex_encode(h, sizeof h, out);
        return 0;
}

void rows_count(uint64_t rows[STORE_DUMP_TABLES_MAX], const char *table) {
        int i = string_table_lookup(store_dump_tables, STORE_DUMP_TABLES_MAX, table);
        if (i >= 0)
                rows[i]++;
}

static int dump_row(const char *table, json_t *row, void *userdata) {
        backup_writer_t *w = userdata;
        rows_count(w->m.rows, table);
        if (streq(table, "meta")) { /* the check value: the key wrapped must open it */
                const char *hex = json_string_value(json_object_get(row, "value"));
                if (!hex || hex_decode(hex, w->check, sizeof w->check, &w->check_len) < 0)
                        return -EBADMSG;
        }
        json_t *line = json_pack("{s:s, s:O}", "table", table, "row", row);
        char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
        json_decref(line);
        if (!text)
                return -ENOMEM;
        size_t n = strlen(text);
        text[n] = '\n'; /* replaces the NUL: written by length */
        int r = write_all(w->fd, text, n + 1);
        if (r == 0 && wc_Sha256Update(&w->sha, (const byte *) text, (word32) (n + 1)) != 0)
                r = -EIO;
        w->size += n + 1;
        free(text);
        return r;
}

/* The key the dump's check value opens: the key file's, or - a rekey between its commit and its
 * rename - the pending one's. */
static int backup_key_read(const cli_t *c, const backup_writer_t *w, uint8_t key[STORE_MASTER_KEY_LEN]) {
        char pending[PATH_MAX];
        int r = store_rekey_pending_path(c->cfg->master_key_path, pending, sizeof pending);
        if (r < 0)
                return r;
        const char *paths[] = { c->cfg->master_key_path, pending };
        for (size_t i = 0; i < ELEMENTSOF(paths); i++) {
                _cleanup_secret_ secret_t s = { 0 };
                if (secret_file_read(paths[i], STORE_MASTER_KEY_LEN, &s) < 0 || s.len != STORE_MASTER_KEY_LEN ||
                    store_key_opens_check(s.data, w->check, w->check_len) < 0)
                        continue;
                memcpy(key, s.data, STORE_MASTER_KEY_LEN);
                return 0;
        }
        return -EKEYREJECTED;
}

static int file_write_hashed(const char *dir, const char *name, const char *text, uint64_t *ret_size,
                             char sha[65], char path[PATH_MAX]) {
        int fd = backup_file_create(dir, name, path);
        if (fd < 0)
                return fd;
        size_t n = strlen(text);
        int r = write_all(fd, text, n);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        close(fd);
        if (r == 0 && sha) {
                uint8_t h[WC_SHA256_DIGEST_SIZE];
                r = wc_Sha256Hash((const byte *) text, (word32) n, h) == 0 ? 0 : -EIO;
                hex_encode(h, sizeof h, sha);
        }
        if (ret_size)
                *ret_size = n;
        return r;
}

static int backup_write(cli_t *c, const char *dir, const key_wrap_t *kw, backup_writer_t *w,
                        char paths[3][PATH_MAX]) {
        int r = wc_InitSha256(&w->sha) == 0 ? 0 : -EIO;
        if (r < 0)
                return cli_fail("sha256", r);
        w->fd = backup_file_create(dir, BACKUP_FILE_STORE, paths[0]);
        if (w->fd < 0)
                return cli_failf("backup %s: %s: %s", dir, BACKUP_FILE_STORE, strerror(-w->fd));
        store_dump_stop_t stop = { 0 };
        r = store_dump(c->store, dump_row, w, &stop);
        if (r == 0 && fsync(w->fd) < 0)
                r = negative_errno();
        close(w->fd);
        if (r == 0)
                r = sha256_hex_final(&w->sha, w->m.files[BACKUP_STORE].sha256);
        wc_Sha256Free(&w->sha);
        if (r == -EBADMSG && stop.table)
                return cli_failf("backup %s: the key of %s row %s opens under no master key of this store "
                                 "(a damaged row; a restore would refuse it): no backup taken",
                                 dir, stop.table, stop.id);
        if (r < 0)
                return cli_failf("backup %s: reading the store: %s", dir, cli_strerror(r));
        w->m.files[BACKUP_STORE].size = w->size;

        _cleanup_erase_(32) uint8_t key[STORE_MASTER_KEY_LEN];
        r = backup_key_read(c, w, key);
        if (r < 0)
                return cli_failf("backup %s: master key %s does not open the store just read (a rekey ran "
                                 "meanwhile?): run the backup again",
                                 dir, c->cfg->master_key_path);
        r = store_master_key_id(key, w->key_id);
        if (r < 0)
                return cli_failf("backup %s: master key ID: %s", dir, strerror(-r));
        _cleanup_free_ char *wrapped = NULL;
        r = kw->pem ? backup_key_wrap_recipient(key, kw->pem, kw->pem_len, &wrapped)
                    : backup_key_wrap(key, kw->pass.text, kw->pass.len, kw->iterations, &wrapped);
        if (r == 0)
                r = file_write_hashed(dir, BACKUP_FILE_KEY, wrapped, &w->m.files[BACKUP_KEY].size,
                                      w->m.files[BACKUP_KEY].sha256, paths[1]);
        if (r < 0)
                return cli_failf("backup %s: %s: %s", dir, BACKUP_FILE_KEY, strerror(-r));

        w->m.version = BACKUP_FORMAT_VERSION;
        w->m.schema = STORE_SCHEMA_VERSION;
        w->m.created = (int64_t) time(NULL);
        snprintf(w->m.backend, sizeof w->m.backend, "%s", store_backend_to_string(c->cfg->store_backend));
        _cleanup_free_ char *manifest = NULL;
        r = backup_manifest_seal(key, &w->m); /* what a restore checks under the key it unwraps */
        if (r == 0)
                r = backup_manifest_format(&w->m, &manifest);
        /* last: a directory with a manifest is a complete backup */
        if (r == 0)
                r = file_write_hashed(dir, BACKUP_FILE_MANIFEST, manifest, NULL, NULL, paths[2]);
        if (r == 0)
                r = fsync_dir(dir);
        if (r < 0)
                return cli_failf("backup %s: %s: %s", dir, BACKUP_FILE_MANIFEST, strerror(-r));
        return 0;
}

int backup_args_parse(cli_t *c, const command_t *def, bool restore, int argc, char **argv,
                      backup_args_t *ret) {
        static const struct option backup_opts[] = {
                COMMON_OPTIONS,
                { "passphrase-file", required_argument, NULL, 'p' },
                { "kdf-iterations", required_argument, NULL, 'i' },
                { "recipient", required_argument, NULL, 'r' },
                {},
        };
        static const struct option restore_opts[] = {
                COMMON_OPTIONS,
                { "passphrase-file", required_argument, NULL, 'p' },
                { "identity", required_argument, NULL, 'I' },
                { "force", no_argument, NULL, 'f' },
                { "expect-master-key", required_argument, NULL, 'E' },
                {},
        };
        const char *cmd = restore ? "restore" : "backup";
        backup_args_t a = { .iterations = BACKUP_KDF_ITERATIONS };
        int o;
        optind = 0;
        const struct option *opts = restore ? restore_opts : backup_opts;
        while ((o = cli_next_option(c, def, argc, argv, restore ? ":hf" : ":h", opts)) >= 0)
                switch (o) {
                case 'p':
                        a.pass_file = optarg;
                        break;
                case 'r':
                        a.recipient = optarg;
                        break;
                case 'I':
                        a.identity = optarg;
                        break;
                case 'i': {
                        unsigned long long u;
                        if (parse_uint(optarg, BACKUP_KDF_ITERATIONS_MAX, &u) < 0 || u < BACKUP_KDF_ITERATIONS_MIN)
                                return cli_usage_error(cmd, "--kdf-iterations: expected %u to %u",
                                                       BACKUP_KDF_ITERATIONS_MIN, BACKUP_KDF_ITERATIONS_MAX);
                        a.iterations = (uint32_t) u;
                        break;
                }
                case 'f':
                        a.force = true;
                        break;
                case 'E':
                        if (!store_master_key_id_is_valid(optarg))
                                return cli_usage_error(cmd, "--expect-master-key: expected a master key ID, 32 "
                                                            "lowercase hex digits (what init and backup print)");
                        a.expect_id = optarg;
                        break;
                default:
                        return cli_option_error(cmd, o, argv);
                }
        int r = cli_options_end(cmd, o, argc, argv, 1, "DIR");
        if (r >= 0)
                return r;
        a.dir = argv[optind];
        *ret = a;
        return -1;
}

int cmd_backup(cli_t *c, const command_t *def, int argc, char **argv) {
        backup_args_t a;
        int r = backup_args_parse(c, def, false, argc, argv, &a);
        if (r >= 0)
                return r;
        const char *dir = a.dir;
        _cleanup_(key_wrap_done) key_wrap_t kw = { .iterations = a.iterations };
        if (a.recipient && a.pass_file)
                return cli_usage_error("backup", "--recipient and --passphrase-file: one or the other");
        if (a.recipient) {
                r = file_read_all(a.recipient, 8192, &kw.pem, &kw.pem_len);
                if (r < 0)
                        return cli_failf("recipient %s: %s", a.recipient, strerror(-r));
                if (backup_recipient_fingerprint(kw.pem, kw.pem_len, kw.recipient) < 0)
                        return cli_failf("recipient %s: not a P-256 public key in PEM (openssl pkey -pubout)",
                                         a.recipient);
        } else {
                r = passphrase_get(a.pass_file, true, &kw.pass);
                if (r)
                        return r;
        }
        r = cli_open(c, false);
        if (r)
                return r;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return cli_failf("backup %s: %s", dir, strerror(errno));

        backup_writer_t w = { .dir = dir, .fd = -1 };
        char paths[3][PATH_MAX] = {};
        r = backup_write(c, dir, &kw, &w, paths);
        if (r) {
                for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                        if (paths[i][0])
                                unlink(paths[i]);
                return r;
        }
        char detail[128];
        snprintf(detail, sizeof detail, "%" PRIu64 " nodes, %" PRIu64 " targets, %" PRIu64 " enrolments",
                 w.m.rows[0], w.m.rows[1], w.m.rows[2]);
        r = store_audit(c->store, cli_actor(), "backup", dir, detail);
        if (r < 0)
                return cli_fail("audit", r);
        printf("Backed up %s to %s: %s, %" PRIu64 " audit rows; the master key wrapped %s%s.\n",
               mef_store_name(c->cfg), dir, detail, w.m.rows[3],
               kw.pem ? "for recipient key SHA256:" : "under the passphrase", kw.pem ? kw.recipient : "");
        printf("Master key ID %s: restore with --expect-master-key %s to refuse a backup of any other key.\n",
               w.key_id, w.key_id);
        return 0;
}

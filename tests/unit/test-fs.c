/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "util/macro.h"
#include "util/fs.h"

/* ---- files ---- */

static char dir[] = "/tmp/test-fs.XXXXXX";

static void dir_setup(void) {
        cr_assert_not_null(mkdtemp(dir));
}

static void dir_teardown(void) {
        DIR *d = opendir(dir);
        if (d) {
                struct dirent *e;
                while ((e = readdir(d))) {
                        char p[PATH_MAX];
                        if (e->d_name[0] == '.')
                                continue;
                        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
                        unlink(p);
                }
                closedir(d);
        }
        rmdir(dir);
}

static void write_file(const char *name, const void *data, size_t len, mode_t mode, char path[PATH_MAX]) {
        snprintf(path, PATH_MAX, "%s/%s", dir, name);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, data, len), (ssize_t) len);
        cr_assert_eq(fchmod(fd, mode), 0);
}

static unsigned count_entries(void) {
        unsigned n = 0;
        DIR *d = opendir(dir);
        cr_assert_not_null(d);
        struct dirent *e;
        while ((e = readdir(d)))
                if (!streq(e->d_name, ".") && !streq(e->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

TestSuite(files, .init = dir_setup, .fini = dir_teardown);

Test(files, secret_refuses_wide_modes) {
        static const mode_t modes[] = { 0640, 0604, 0644, 0620, 0602, 0610, 0601, 0666 };
        char path[PATH_MAX];
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                secret_t s = { .data = (unsigned char *) "sentinel", .len = 8 };
                write_file("key", "0123456789abcdef", 16, modes[i], path);
                cr_assert_eq(secret_file_read(path, 64, &s), -EPERM, "mode %o accepted", modes[i]);
                cr_assert_eq(s.len, 8, "ret touched on failure");
        }
        _cleanup_secret_ secret_t ok = {};
        write_file("key", "0123456789abcdef", 16, 0400, path);
        cr_assert_eq(secret_file_read(path, 64, &ok), 0);
        cr_assert_eq(ok.len, 16);
}

Test(files, secret_sizes) {
        char path[PATH_MAX];
        static const char data[] = "0123456789abcdef\n"; /* 17 bytes, newline kept */
        secret_t s = {};

        write_file("key", data, 17, 0600, path);
        cr_assert_eq(secret_file_read(path, 16, &s), -EFBIG);
        cr_assert_null(s.data);
        cr_assert_eq(secret_file_read(path, 17, &s), 0);
        cr_assert_eq(s.len, 17);
        cr_assert_arr_eq(s.data, data, 17);
        secret_done(&s);
        cr_assert_null(s.data);
        cr_assert_eq(secret_file_read(path, 4096, &s), 0);
        cr_assert_eq(s.len, 17);
        secret_done(&s);

        write_file("empty", "", 0, 0600, path);
        cr_assert_eq(secret_file_read(path, 16, &s), -ENODATA);

        snprintf(path, sizeof path, "%s/missing", dir);
        cr_assert_eq(secret_file_read(path, 16, &s), -ENOENT);
        cr_assert_eq(secret_file_read(dir, 16, &s), -EBADFD, "a directory is not a secret file");
}

Test(files, secret_binary) {
        char path[PATH_MAX];
        uint8_t data[64];
        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (255 - i * 3);
        data[10] = 0;
        write_file("bin", data, sizeof data, 0600, path);
        _cleanup_secret_ secret_t s = {};
        cr_assert_eq(secret_file_read(path, 64, &s), 0);
        cr_assert_eq(s.len, 64);
        cr_assert_arr_eq(s.data, data, 64);
}

Test(files, read_all) {
        char path[PATH_MAX];
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;
        write_file("text", "hello\n", 6, 0644, path);
        cr_assert_eq(file_read_all(path, 5, &buf, &n), -EFBIG);
        cr_assert_null(buf);
        cr_assert_eq(file_read_all(path, 6, &buf, &n), 0);
        cr_assert_eq(n, 6);
        cr_assert_str_eq(buf, "hello\n");
}

/* Each record of a SOCK_SEQPACKET pair comes in a read of its own: read_max() must go on after
 * a short read, stop at the end, and tell exactly max bytes from more. */
Test(files, read_max) {
        static const struct {
                const char *records[3];
                size_t max;
                int r;
                size_t len;
        } cases[] = {
                { { NULL }, 4, 0, 0 },
                { { "ab", "cd" }, 4, 0, 4 },   /* exactly max, in two reads */
                { { "ab", "c" }, 4, 0, 3 },
                { { "ab", "cd", "e" }, 4, -EFBIG, 5 }, /* one more than max */
                { { "abcdef" }, 4, -EFBIG, 5 }, /* never more than max + 1 in buf */
                { { "a" }, 0, -EFBIG, 1 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int sv[2];
                cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
                for (size_t k = 0; k < ELEMENTSOF(cases[i].records) && cases[i].records[k]; k++)
                        cr_assert_eq(write_all(sv[1], cases[i].records[k], strlen(cases[i].records[k])), 0);
                cr_assert_eq(shutdown(sv[1], SHUT_WR), 0);
                char buf[8];
                memset(buf, 'x', sizeof buf);
                size_t len = 99;
                cr_assert_eq(read_max(sv[0], buf, cases[i].max, &len), cases[i].r, "case %zu", i);
                cr_assert_eq(len, cases[i].len, "case %zu", i);
                cr_assert_eq(buf[cases[i].max + 1], 'x', "case %zu: wrote past max + 1", i);
                close(sv[0]);
                close(sv[1]);
        }
        size_t len = 99;
        char buf[2];
        cr_assert_eq(read_max(-1, buf, 1, &len), -EBADF);
        cr_assert_eq(len, 0);
}

Test(files, write_atomic) {
        char path[PATH_MAX];
        struct stat st;
        _cleanup_free_ char *buf = NULL;
        size_t n = 0;

        snprintf(path, sizeof path, "%s/state", dir);
        cr_assert_eq(file_write_atomic(path, "first", 5, 0640), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0640);
        cr_assert_eq(file_read_all(path, 100, &buf, &n), 0);
        cr_assert_str_eq(buf, "first");
        free(TAKE_PTR(buf));

        /* replace, with another mode */
        cr_assert_eq(file_write_atomic(path, "second!", 7, 0600), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(file_read_all(path, 100, &buf, &n), 0);
        cr_assert_eq(n, 7);
        cr_assert_str_eq(buf, "second!");
        cr_assert_eq(count_entries(), 1, "temporary file left behind");

        /* empty content is a valid write */
        cr_assert_eq(file_write_atomic(path, "", 0, 0600), 0);
        cr_assert_eq(stat(path, &st), 0);
        cr_assert_eq(st.st_size, 0);
        cr_assert_eq(count_entries(), 1);
}

Test(files, write_atomic_failure_leaves_nothing) {
        char path[PATH_MAX];
        /* rename onto a non-empty directory fails after the temp file was written */
        snprintf(path, sizeof path, "%s/sub", dir);
        cr_assert_eq(mkdir(path, 0700), 0);
        char inner[PATH_MAX];
        snprintf(inner, sizeof inner, "%s/sub/x", dir);
        cr_assert_eq(file_write_atomic(inner, "x", 1, 0600), 0);
        cr_assert_lt(file_write_atomic(path, "data", 4, 0600), 0);
        cr_assert_eq(count_entries(), 1, "temporary file left behind");
        unlink(inner);
        rmdir(path);

        snprintf(path, sizeof path, "%s/missing/state", dir);
        cr_assert_eq(file_write_atomic(path, "data", 4, 0600), -ENOENT);
        cr_assert_eq(count_entries(), 0);
}


Test(files, staged_write) {
        char path[PATH_MAX];
        _cleanup_free_ char *buf = NULL;
        snprintf(path, sizeof path, "%s/state", dir);
        cr_assert_eq(file_write_atomic(path, "old", 3, 0644), 0);

        /* staged: the old file is what a reader sees until the commit */
        _cleanup_(file_staged_done) file_staged_t f = {};
        cr_assert_eq(file_stage(path, "new", 3, 0644, &f), 0);
        cr_assert_eq(count_entries(), 2);
        cr_assert_eq(file_read_all(path, 100, &buf, NULL), 0);
        cr_assert_str_eq(buf, "old");
        free(TAKE_PTR(buf));
        cr_assert_eq(file_staged_commit(&f), 0);
        cr_assert_eq(file_read_all(path, 100, &buf, NULL), 0);
        cr_assert_str_eq(buf, "new");
        cr_assert_eq(count_entries(), 1);
        file_staged_done(&f); /* after a commit: nothing to remove */
        cr_assert_eq(count_entries(), 1);

        /* not committed: done removes the temporary, the old file stays */
        cr_assert_eq(file_stage(path, "other", 5, 0644, &f), 0);
        file_staged_done(&f);
        cr_assert_eq(count_entries(), 1);
        free(TAKE_PTR(buf));
        cr_assert_eq(file_read_all(path, 100, &buf, NULL), 0);
        cr_assert_str_eq(buf, "new");

        /* a failed commit keeps the temporary for done */
        cr_assert_eq(unlink(path), 0);
        cr_assert_eq(mkdir(path, 0700), 0);
        char inner[PATH_MAX];
        snprintf(inner, sizeof inner, "%s/state/x", dir);
        cr_assert_eq(file_write_atomic(inner, "x", 1, 0600), 0);
        cr_assert_eq(file_stage(path, "data", 4, 0644, &f), 0);
        cr_assert_lt(file_staged_commit(&f), 0);
        cr_assert_eq(count_entries(), 2);
        file_staged_done(&f);
        cr_assert_eq(count_entries(), 1);
        unlink(inner);
        rmdir(path);

        snprintf(path, sizeof path, "%s/missing/state", dir);
        cr_assert_eq(file_stage(path, "data", 4, 0644, &f), -ENOENT);
}

Test(files, secret_hex) {
        char path[PATH_MAX];
        uint8_t k[16];
        size_t n = 0;
        write_file("k1", "000102030405060708090a0b0c0d0e0f\n", 33, 0600, path);
        cr_assert_eq(secret_hex_file_read(path, 16, 16, k, &n), 0);
        cr_assert_eq(n, 16);
        cr_assert_eq(k[15], 15);
        write_file("k2", "000102030405060708090a0b0c0d0e0f\n", 33, 0644, path);
        cr_assert_eq(secret_hex_file_read(path, 16, 16, k, &n), -EPERM);
        write_file("k3", "0001", 4, 0600, path);
        cr_assert_eq(secret_hex_file_read(path, 16, 16, k, &n), -EINVAL);
        write_file("k4", "", 0, 0600, path);
        cr_assert_eq(secret_hex_file_read(path, 16, 16, k, &n), -ENODATA);
        char big[100];
        memset(big, 'a', sizeof big);
        write_file("k5", big, sizeof big, 0600, path);
        cr_assert_eq(secret_hex_file_read(path, 16, 16, k, &n), -EFBIG);
}

/* A systemd credential of a unit with User= is 0440 (+ an ACL for the user) on systemd >= 254:
 * the group read bit is accepted there, and only there; others' bits and group write never. */
Test(files, secret_credential_modes) {
        static const struct {
                mode_t mode;
                int plain, credential;
        } cases[] = {
                { 0400, 0, 0 },           { 0600, 0, 0 },           { 0440, -EPERM, 0 },
                { 0640, -EPERM, 0 },      { 0444, -EPERM, -EPERM }, { 0404, -EPERM, -EPERM },
                { 0460, -EPERM, -EPERM }, { 0410, -EPERM, -EPERM },
        };
        char path[PATH_MAX], name[16];
        uint8_t k[16];
        size_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                snprintf(name, sizeof name, "c%zu", i);
                write_file(name, "000102030405060708090a0b0c0d0e0f\n", 33, cases[i].mode, path);
                cr_assert_eq(secret_hex_file_read(path, 16, 16, k, &n), cases[i].plain, "%o", cases[i].mode);
                cr_assert_eq(secret_hex_file_read_flags(path, 16, 16, SECRET_CREDENTIAL, k, &n), cases[i].credential,
                             "%o", cases[i].mode);
        }
}

Test(files, write_all_pipe) {
        int p[2];
        signal(SIGPIPE, SIG_IGN); /* this test's own process */
        cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
        cr_assert_eq(write_all(p[1], "abc", 3), 0);
        char buf[4] = "";
        cr_assert_eq(read(p[0], buf, sizeof buf), 3);
        cr_assert_str_eq(buf, "abc");
        close(p[0]);
        cr_assert_eq(write_all(p[1], "x", 1), -EPIPE, "a closed reader is an error, not a loop");
        close(p[1]);
}

Test(files, mkdir_parents) {
        char path[PATH_MAX], sub[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/a/b/leaf", dir);
        mode_t mask = umask(0077); /* msce-agent.service's UMask= */
        cr_assert_eq(mkdir_parents(path, 0755), 0);
        umask(mask);
        snprintf(sub, sizeof sub, "%s/a/b", dir);
        cr_assert_eq(stat(sub, &st), 0);
        cr_assert(S_ISDIR(st.st_mode));
        cr_assert_eq(st.st_mode & 0777, 0755, "new parents get exactly mode, whatever the umask: %o", st.st_mode & 0777);
        cr_assert_eq(stat(path, &st), -1, "the last component is not made");
        cr_assert_eq(mkdir_parents(path, 0700), 0, "parents already there are fine");
        snprintf(path, sizeof path, "%s/a/b/", dir);
        cr_assert_eq(mkdir_parents(path, 0700), 0, "a trailing slash names b itself");
        cr_assert_eq(mkdir_parents("", 0700), 0);
        cr_assert_eq(mkdir_parents("relative-leaf", 0700), 0);

        char file[PATH_MAX];
        write_file("f", "x", 1, 0600, file);
        snprintf(path, sizeof path, "%s/f/x/leaf", dir);
        cr_assert_eq(mkdir_parents(path, 0700), -ENOTDIR, "a file in the way");
        unlink(file);

        char longer[PATH_MAX + 1];
        memset(longer, 'x', sizeof longer);
        longer[sizeof longer - 1] = 0;
        cr_assert_eq(mkdir_parents(longer, 0700), -ENAMETOOLONG);

        rmdir(sub);
        snprintf(sub, sizeof sub, "%s/a", dir);
        cr_assert_eq(rmdir(sub), 0);
}

/* mkdir(path, 0755) by f under the unit's UMask=0077 */
static int mkdir_umask_077(int (*f)(const char *, mode_t), const char *path) {
        mode_t mask = umask(0077);
        int r = f(path, 0755);
        umask(mask);
        return r;
}

static void expect_mode(const char *path, mode_t mode, const char *what) {
        struct stat st;
        cr_assert_eq(stat(path, &st), 0, "%s", what);
        cr_assert_eq(st.st_mode & 0777, mode, "%s: %o", what, st.st_mode & 0777);
}

/* The runtime directory the agent makes (custody, state.json): the CSE must reach profile.json
 * in it under the unit's UMask=0077. */
Test(files, mkdir_p) {
        char path[PATH_MAX], sub[PATH_MAX], file[PATH_MAX];
        snprintf(path, sizeof path, "%s/r/un", dir);
        cr_assert_eq(mkdir_umask_077(mkdir_p, path), 0);
        snprintf(sub, sizeof sub, "%s/r", dir);
        expect_mode(sub, 0755, "a new parent");
        expect_mode(path, 0755, "the directory");
        cr_assert_eq(chmod(path, 0750), 0);
        cr_assert_eq(mkdir_p(path, 0755), 0, "there already");
        expect_mode(path, 0750, "one there already is left as it is");
        write_file("r/un/f", "x", 1, 0600, file);
        cr_assert_eq(mkdir_p(file, 0755), -ENOTDIR, "a file in the way");
        unlink(file);
        cr_assert_eq(rmdir(path), 0);
        cr_assert_eq(rmdir(sub), 0);
}

/* mscectl setup's drop-in directory: whether it made it (its undo removes only that), made
 * with exactly the mode whatever the umask, never a missing parent. */
Test(files, mkdir_exact) {
        char path[PATH_MAX], orphan[PATH_MAX], file[PATH_MAX];
        snprintf(path, sizeof path, "%s/d", dir);
        cr_assert_eq(mkdir_umask_077(mkdir_exact, path), 1, "made here");
        expect_mode(path, 0755, "the directory");
        cr_assert_eq(mkdir_exact(path, 0700), 0, "there already");
        expect_mode(path, 0755, "one there already is left as it is");
        snprintf(orphan, sizeof orphan, "%s/no/d", dir);
        cr_assert_eq(mkdir_exact(orphan, 0755), -ENOENT, "no parent made");
        write_file("f", "x", 1, 0600, file);
        cr_assert_eq(mkdir_exact(file, 0755), -ENOTDIR, "a file in the way");
        unlink(file);
        cr_assert_eq(rmdir(path), 0);
}

/* The buffer is as large as the file, not as max: msce-loadgen reads its credentials with a max
 * of 400 MB, which was allocated whole for a file of a few lines. */
Test(files, secret_buffer_is_the_files_size) {
        char path[PATH_MAX];
        write_file("key", "0123456789abcdef\n", 17, 0600, path);
        _cleanup_secret_ secret_t s = {};
        cr_assert_eq(secret_file_read(path, 400u << 20, &s), 0);
        cr_assert_eq(s.len, 17);
        cr_assert_lt(malloc_usable_size(s.data), 4096, "%zu bytes for a file of 17", malloc_usable_size(s.data));
}

/* A file that holds more than its size says (/proc's are of size 0, owner-only: auxv) is read
 * whole all the same, growing the buffer, and still refused when it holds more than max. */
Test(files, secret_file_longer_than_its_size) {
        struct stat st;
        cr_assert_eq(stat("/proc/self/auxv", &st), 0);
        cr_assert_eq(st.st_size, 0);
        char *all = NULL;
        size_t len = 0;
        cr_assert_eq(file_read_all("/proc/self/auxv", 1u << 20, &all, &len), 0);
        cr_assert_gt(len, 16);
        _cleanup_secret_ secret_t s = {};
        cr_assert_eq(secret_file_read("/proc/self/auxv", 1u << 20, &s), 0);
        cr_assert_eq(s.len, len);
        cr_assert_arr_eq(s.data, all, len); /* the same process: the same vector */
        secret_t small = {};
        cr_assert_eq(secret_file_read("/proc/self/auxv", len - 1, &small), -EFBIG);
        cr_assert_null(small.data);
        free(all);
}

/* SPDX-License-Identifier: MIT */
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>

#include "util/fs.h"
#include "util/hex.h"

int read_max(int fd, void *buf, size_t max, size_t *len) {
        uint8_t *p = buf;
        *len = 0;
        for (;;) {
                ssize_t n = read(fd, p + *len, max + 1 - *len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return 0;
                *len += (size_t) n;
                if (*len > max)
                        return -EFBIG;
        }
}

/* ret_size: the size the file says it has (NULL: not wanted) */
static int fd_check_mode(int fd, mode_t refused, off_t *ret_size) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_mode & refused)
                return -EPERM;
        if (ret_size)
                *ret_size = st.st_size;
        return 0;
}

int secret_fd_check_mode(int fd) {
        return fd_check_mode(fd, S_IRWXG | S_IRWXO, NULL);
}

int secret_file_read(const char *path, size_t max, secret_t *ret) {
        return secret_file_read_flags(path, max, 0, ret);
}

int secret_file_read_flags(const char *path, size_t max, secret_flags_t flags, secret_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        off_t st_size;
        int r = fd_check_mode(fd, flags & SECRET_CREDENTIAL ? S_IRWXO | S_IWGRP | S_IXGRP : S_IRWXG | S_IRWXO,
                              &st_size);
        if (r < 0)
                return r;
        /* A buffer for the file's size, not for max (msce-loadgen's is 400 MB), grown up to max
         * when the file holds more than its size said (grown since the fstat(), or a /proc file
         * of size 0); each holds one byte more, to tell "more than max" from "exactly max". */
        _cleanup_secret_ secret_t s = {};
        size_t size = 0, want = (uintmax_t) st_size < max ? (size_t) st_size : max;
        for (;;) {
                if (secret_buffer_grow(&s.data, &size, s.len, want + 1) < 0)
                        return -ENOMEM;
                size_t n;
                r = read_max(fd, s.data + s.len, want - s.len, &n);
                s.len += n;
                if (r != -EFBIG || want == max)
                        break;
                want = want < max / 2 ? MIN(max, MAX(2 * want, (size_t) 4096)) : max;
        }
        if (r < 0)
                return r;
        if (s.len == 0)
                return -ENODATA;
        *ret = s;
        s.data = NULL;
        s.len = 0;
        return 0;
}

int secret_hex_file_read(const char *path, size_t min, size_t max, uint8_t *key, size_t *ret_len) {
        return secret_hex_file_read_flags(path, min, max, 0, key, ret_len);
}

int secret_hex_file_read_flags(const char *path, size_t min, size_t max, secret_flags_t flags, uint8_t *key,
                               size_t *ret_len) {
        _cleanup_secret_ secret_t s = {};
        int r = secret_file_read_flags(path, 2 * max + 2, flags, &s);
        if (r < 0)
                return r;
        return hex_key_parse((const char *) s.data, s.len, min, max, key, ret_len);
}

int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        _cleanup_free_ char *buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        int r = read_max(fd, buf, max, &len);
        if (r < 0)
                return r;
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int write_all(int fd, const void *data, size_t len) {
        const uint8_t *p = data;
        while (len) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0) /* no progress and no error: do not spin */
                        return -EIO;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int fsync_dir(const char *dir) {
        _cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
                return negative_errno();
        return 0;
}

int fsync_parent_dir(const char *path) {
        char dir[PATH_MAX];
        if (snprintf(dir, sizeof dir, "%s", path) >= (int) sizeof dir)
                return -ENAMETOOLONG;
        return fsync_dir(dirname(dir));
}

int file_stage(const char *path, const void *data, size_t len, unsigned mode, file_staged_t *ret) {
        file_staged_t f = {};
        if (snprintf(f.tmp, sizeof f.tmp, "%s.tmp.XXXXXX", path) >= (int) sizeof f.tmp ||
            snprintf(f.path, sizeof f.path, "%s", path) >= (int) sizeof f.path)
                return -ENAMETOOLONG;
        _cleanup_close_ int fd = mkostemp(f.tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int r = 0;
        if (fchmod(fd, mode) < 0)
                r = negative_errno();
        if (r == 0)
                r = write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(f.tmp);
                return r;
        }
        *ret = f;
        return 0;
}

int file_staged_commit(file_staged_t *f) {
        if (!f->tmp[0])
                return -EINVAL;
        if (rename(f->tmp, f->path) < 0)
                return negative_errno(); /* the temporary stays for file_staged_done() */
        f->tmp[0] = 0;
        return fsync_parent_dir(f->path);
}

void file_staged_done(file_staged_t *f) {
        if (f && f->tmp[0])
                (void) unlink(f->tmp);
        if (f)
                f->tmp[0] = 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode) {
        _cleanup_(file_staged_done) file_staged_t f = {};
        int r = file_stage(path, data, len, mode, &f);
        return r < 0 ? r : file_staged_commit(&f);
}

/* Exactly mode, not narrowed by the umask: a unit's UMask=0077 would hide a directory the CSE
 * must reach. */
int mkdir_exact(const char *path, mode_t mode) {
        if (mkdir(path, mode) < 0) {
                if (errno != EEXIST)
                        return negative_errno();
                struct stat st;
                if (stat(path, &st) < 0)
                        return negative_errno();
                return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
        }
        if (chmod(path, mode) < 0) {
                int r = negative_errno();
                (void) rmdir(path);
                return r;
        }
        return 1;
}

int mkdir_parents(const char *path, mode_t mode) {
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf)
                return -ENAMETOOLONG;
        /* from the second character on: a leading "/" is the root, always there */
        for (char *p = buf[0] ? buf + 1 : buf; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                int r = mkdir_exact(buf, mode);
                if (r < 0)
                        return r;
                *p = '/';
        }
        return 0;
}

int mkdir_p(const char *path, mode_t mode) {
        int r = mkdir_parents(path, 0755);
        if (r >= 0)
                r = mkdir_exact(path, mode);
        return r < 0 ? r : 0;
}

int path_join(const char *dir, const char *name, char out[PATH_MAX]) {
        if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
                return -ENAMETOOLONG;
        return 0;
}

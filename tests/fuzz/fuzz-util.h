/* SPDX-License-Identifier: MIT */
#pragma once
/* What several fuzz targets need: an abort that libFuzzer reports, a temporary tree removed at
 * exit, and a file holding the input for loaders that read a path. */
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define check(x)                 \
        do {                     \
                if (!(x))        \
                        abort(); \
        } while (0)

/* The input up to its first NUL as a string (heap; NULL: out of memory). Not strndup(): the
 * input has no NUL after its last byte, and strndup() may look there (ASan's strict string
 * checks report it). */
static inline char *fuzz_string(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (s) {
                memcpy(s, data, size);
                s[size] = 0;
        }
        return s;
}

static inline int fuzz_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

/* buf (PATH_MAX bytes) as printf(fmt, ...). A path that does not fit (a long $TMPDIR) stops the
 * fuzzer saying so: cut short, its XXXXXX would be gone and mkdtemp() would fail for no
 * visible reason. */
__attribute__((format(printf, 2, 3))) static inline void fuzz_path(char *buf, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, PATH_MAX, fmt, ap);
        va_end(ap);
        if (n < 0 || n >= PATH_MAX) {
                fprintf(stderr, "fuzz: a path of %d bytes, longer than PATH_MAX - 1 (a long TMPDIR?): %.80s...\n", n,
                        buf);
                exit(EXIT_FAILURE);
        }
}

/* Removes dir and all below it; "" is left alone. */
static inline void fuzz_rm_tree(const char *dir) {
        if (dir[0])
                (void) nftw(dir, fuzz_rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

/* The configuration loaders read a path: the fuzz input goes into a memfd, which they open as
 * /proc/self/fd/N (a regular file, no disk, no drop-in directory next to it). */
/* The path of a memfd now holding exactly data[0..size); aborts when the memfd cannot be
 * made or written. */
static inline const char *memfile_set(const void *data, size_t size) {
        static int fd = -1;
        static char path[64];
        if (fd < 0) {
                fd = memfd_create("fuzz-config", MFD_CLOEXEC);
                if (fd < 0)
                        abort();
                snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        }
        if (ftruncate(fd, 0) < 0 || (size > 0 && pwrite(fd, data, size, 0) != (ssize_t) size))
                abort();
        return path;
}

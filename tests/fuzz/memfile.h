/* SPDX-License-Identifier: MIT */
#pragma once
/* The configuration loaders read a path: the fuzz input goes into a memfd, which they open as
 * /proc/self/fd/N (a regular file, no disk, no drop-in directory next to it). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* SPDX-License-Identifier: MIT */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_ __attribute__((warn_unused_result))
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Take ownership out of a cleanup variable (steal-on-success). */
#define TAKE_PTR(p)                                  \
        ({                                           \
                __typeof__(p) _p_ = (p);             \
                (p) = NULL;                          \
                _p_;                                 \
        })
#define TAKE_FD(fd)                                  \
        ({                                           \
                int _fd_ = (fd);                     \
                (fd) = -1;                           \
                _fd_;                                \
        })

/* Secrets: wipe before the memory goes away. */
static inline void erase(void *p, size_t n) {
        if (p && n)
                explicit_bzero(p, n);
}

/* A heap buffer of n bytes that held a secret: wiped, then freed. NULL is fine. */
static inline void erase_free(void *p, size_t n) {
        erase(p, n);
        free(p);
}

/* A heap buffer holding a secret: wiped and freed by _cleanup_secret_. */
typedef struct secret {
        unsigned char *data;
        size_t len;
} secret_t;

static inline void secret_done(secret_t *s) {
        if (!s)
                return;
        erase_free(s->data, s->len);
        s->data = NULL;
        s->len = 0;
}
#define _cleanup_secret_ _cleanup_(secret_done)

/* Grow a heap buffer holding a secret to new_size, moving its first len bytes: the old copy is
 * wiped and freed, not left behind as realloc() would. */
static inline int secret_buffer_grow(uint8_t **buf, size_t *size, size_t len, size_t new_size) {
        uint8_t *p = malloc(new_size);
        if (!p)
                return -ENOMEM;
        if (*buf) {
                memcpy(p, *buf, len);
                erase_free(*buf, *size);
        }
        *buf = p;
        *size = new_size;
        return 0;
}

/* A fixed buffer with a secret on the stack: wiped on scope exit. */
#define _cleanup_erase_(n) _cleanup_(erase_##n)
#define DEFINE_ERASE(n)                                         \
        static inline void erase_##n(void *p) {                 \
                erase(p, n);                                    \
        }
DEFINE_ERASE(16)
DEFINE_ERASE(32)
DEFINE_ERASE(48)
DEFINE_ERASE(64)

static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

static inline int streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

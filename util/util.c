/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "util.h"

void hex_encode(const uint8_t *in, size_t n, char *out) {
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[in[i] >> 4];
                out[2 * i + 1] = digits[in[i] & 15];
        }
        out[2 * n] = 0;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

int hex_decode(const char *in, uint8_t *out, size_t out_size, size_t *ret_len) {
        size_t n = strlen(in);
        if (n % 2 || n / 2 > out_size)
                return -EINVAL;
        for (size_t i = 0; i < n / 2; i++) {
                int hi = unhex(in[2 * i]), lo = unhex(in[2 * i + 1]);
                if (hi < 0 || lo < 0) {
                        erase(out, i);
                        return -EINVAL;
                }
                out[i] = (uint8_t) (hi << 4 | lo);
        }
        *ret_len = n / 2;
        return 0;
}

int secret_fd_check_mode(int fd) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_mode & (S_IRWXG | S_IRWXO))
                return -EPERM;
        return 0;
}

int secret_file_read(const char *path, size_t max, secret_t *ret) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        int r = secret_fd_check_mode(fd);
        if (r < 0)
                return r;
        _cleanup_secret_ secret_t s = { .data = malloc(max + 1), .len = 0 };
        if (!s.data)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, s.data + s.len, max + 1 - s.len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                s.len += (size_t) n;
                if (s.len > max)
                        return -EFBIG;
        }
        if (s.len == 0)
                return -ENODATA;
        *ret = s;
        s.data = NULL;
        s.len = 0;
        return 0;
}

int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        _cleanup_free_ char *buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        size_t len = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, max + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > max)
                        return -EFBIG;
        }
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int write_all(int fd, const void *data, size_t len) {
        const uint8_t *p = data;
        while (len) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode) {
        char tmp[PATH_MAX], dir[PATH_MAX];
        if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= (int) sizeof tmp)
                return -ENAMETOOLONG;
        snprintf(dir, sizeof dir, "%s", path);
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        int r = 0;
        if (fchmod(fd, mode) < 0)
                r = negative_errno();
        if (r == 0)
                r = write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = negative_errno();
        if (r == 0 && rename(tmp, path) < 0)
                r = negative_errno();
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        _cleanup_close_ int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return negative_errno();
        return 0;
}

int time_parse_basic(const char *s, time_t *ret) {
        if (strlen(s) != 15 || s[8] != 'T')
                return -EINVAL;
        for (int i = 0; i < 15; i++)
                if (i != 8 && !isdigit((unsigned char) s[i]))
                        return -EINVAL;
        struct tm tm = { 0 };
#define NUM(off, n) ({ int _v = 0; for (int _i = 0; _i < (n); _i++) _v = _v * 10 + (s[(off) + _i] - '0'); _v; })
        tm.tm_year = NUM(0, 4) - 1900;
        tm.tm_mon = NUM(4, 2) - 1;
        tm.tm_mday = NUM(6, 2);
        tm.tm_hour = NUM(9, 2);
        tm.tm_min = NUM(11, 2);
        tm.tm_sec = NUM(13, 2);
#undef NUM
        if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
            tm.tm_min > 59 || tm.tm_sec > 60)
                return -EINVAL;
        struct tm check = tm;
        errno = 0;
        time_t t = timegm(&tm);
        if (t == (time_t) -1 && errno == EOVERFLOW)
                return -EINVAL;
        /* 20270231 or T120060 normalise to another date or time: refuse. (t == -1 alone is
         * 19691231T235959, a valid time.) */
        if (tm.tm_year != check.tm_year || tm.tm_mon != check.tm_mon || tm.tm_mday != check.tm_mday ||
            tm.tm_hour != check.tm_hour || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
                return -EINVAL;
        *ret = t;
        return 0;
}

void time_format_basic(time_t t, char out[16]) {
        /* "" when t is outside years 0000..9999: gmtime_r() may fail, and strftime() leaves
         * out unterminated when the text does not fit (and does not pad years below 1000). */
        struct tm tm;
        out[0] = 0;
        if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 || tm.tm_year > 9999 - 1900)
                return;
        char buf[64];
        if (snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec) == 15)
                memcpy(out, buf, 16);
}

int random_bytes(void *buf, size_t n) {
        uint8_t *p = buf;
        while (n) {
                ssize_t r = getrandom(p, n, 0);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                p += r;
                n -= (size_t) r;
        }
        return 0;
}

bool id_is_valid(const char *s, size_t max) {
        size_t n = 0;
        for (; s[n]; n++)
                if ((unsigned char) s[n] < 0x21 || (unsigned char) s[n] > 0x7e)
                        return false;
        return n >= 1 && n <= max;
}

int parse_uint(const char *s, unsigned long long max, unsigned long long *ret) {
        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        unsigned long long v = 0;
        for (const char *p = s; *p; p++) {
                if (!isdigit((unsigned char) *p))
                        return -EINVAL;
                unsigned d = (unsigned) (*p - '0');
                if (d > max || v > (max - d) / 10) /* d > max: max - d would wrap */
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

int path_join(const char *dir, const char *name, char out[PATH_MAX]) {
        if (snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX)
                return -ENAMETOOLONG;
        return 0;
}

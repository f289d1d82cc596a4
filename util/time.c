/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util/macro.h"
#include "util/time.h"

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

static void format(time_t t, bool iso, char out[TIME_TEXT_MAX]) {
        struct tm tm;
        if (!gmtime_r(&t, &tm) ||
            (iso ? strftime(out, TIME_TEXT_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm)
                 : strftime(out, TIME_TEXT_MAX, "%Y-%m-%d %H:%M:%S UTC", &tm)) == 0)
                snprintf(out, TIME_TEXT_MAX, "@%lld", (long long) t);
}

void time_format_utc(time_t t, char out[TIME_TEXT_MAX]) {
        format(t, false, out);
}

void time_format_iso(time_t t, char out[TIME_TEXT_MAX]) {
        format(t, true, out);
}

uint64_t rusage_cpu_nsec(const struct rusage *ru) {
        return ((uint64_t) ru->ru_utime.tv_sec + (uint64_t) ru->ru_stime.tv_sec) * 1000000000u +
               ((uint64_t) ru->ru_utime.tv_usec + (uint64_t) ru->ru_stime.tv_usec) * 1000u;
}

/* /proc/PID/schedstat counts the main thread only: a server's store threads would be missed. */
uint64_t process_cpu_nsec(pid_t pid) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/task", (int) pid);
        _cleanup_closedir_ DIR *d = opendir(path);
        if (!d)
                return 0;
        uint64_t sum = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
                unsigned long long ns;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "/proc/%d/task/%.16s/schedstat", (int) pid, de->d_name);
                _cleanup_fclose_ FILE *f = fopen(path, "re");
                if (f && fscanf(f, "%llu", &ns) == 1)
                        sum += ns;
        }
        return sum;
}

uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void sleep_usec(usec_t usec) {
        struct timespec ts = { .tv_sec = (time_t) (usec / USEC_PER_SEC),
                               .tv_nsec = (long) (usec % USEC_PER_SEC * 1000u) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

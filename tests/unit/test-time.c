/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util/macro.h"
#include "util/time.h"

/* ---- time ---- */

Test(time, parse_valid) {
        time_t t = 0;
        cr_assert_eq(time_parse_basic("20271127T203000", &t), 0);
        cr_assert_eq(t, 1827347400);
        cr_assert_eq(time_parse_basic("19700101T000000", &t), 0);
        cr_assert_eq(t, 0);
        cr_assert_eq(time_parse_basic("19691231T235959", &t), 0);
        cr_assert_eq(t, -1);
        cr_assert_eq(time_parse_basic("20280229T000000", &t), 0, "leap day");
        cr_assert_eq(t, 1835395200);
        cr_assert_eq(time_parse_basic("99991231T235959", &t), 0);
        cr_assert_eq(t, 253402300799);
        cr_assert_eq(time_parse_basic("20000229T120000", &t), 0, "2000 is a leap year");
}

Test(time, parse_invalid) {
        static const char *const bad[] = {
                "20270230T000000", /* Feb 30 */
                "20270229T000000", /* not a leap year */
                "21000229T000000", /* 2100 is not a leap year */
                "20270431T000000", /* April 31 */
                "20271301T000000", /* month 13 */
                "20270001T000000", /* month 0 */
                "20270100T000000", /* day 0 */
                "20270132T000000", /* day 32 */
                "20270101T240000", /* hour 24 */
                "20270101T126000", /* minute 60 */
                "20270101T120060", /* second 60 would normalise to 12:01:00 */
                "20271231T235960",
                "20270101T12000",  /* 14 chars */
                "20270101T1200000",
                "2027-01-01T12:00",
                "20270101t120000", "20270101 120000", "20270101Z120000",
                "2027O101T120000", /* letter O */
                "20270101T12000a", "+0270101T120000", "-0270101T120000", " 0270101T120000",
                "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                time_t t = 42;
                cr_assert_eq(time_parse_basic(bad[i], &t), -EINVAL, "'%s' accepted", bad[i]);
                cr_assert_eq(t, 42);
        }
}

Test(time, round_trip) {
        static const time_t ts[] = { 0, -1, 1, 59, 951782400, 1827347400, 1835395200, 253402300799, -62167219200 };
        for (size_t i = 0; i < ELEMENTSOF(ts); i++) {
                char s[16];
                time_t t = 42;
                time_format_basic(ts[i], s);
                cr_assert_eq(strlen(s), 15, "%lld -> '%s'", (long long) ts[i], s);
                cr_assert_eq(time_parse_basic(s, &t), 0, "'%s'", s);
                cr_assert_eq(t, ts[i]);
        }
        char s[16];
        time_format_basic(1827347400, s);
        cr_assert_str_eq(s, "20271127T203000");
        time_format_basic(-62167219200, s);
        cr_assert_str_eq(s, "00000101T000000");
}

Test(time, format_out_of_range) {
        char s[16];
        memset(s, 'x', sizeof s);
        time_format_basic(253402300800, s); /* year 10000 */
        cr_assert_str_eq(s, "");
        memset(s, 'x', sizeof s);
        time_format_basic(-62167219201, s); /* year -1 */
        cr_assert_str_eq(s, "");
}


Test(time, format_utc_iso) {
        char out[TIME_TEXT_MAX];
        time_format_utc(1795811400, out);
        cr_expect_str_eq(out, "2026-11-27 20:30:00 UTC");
        time_format_iso(1795811400, out);
        cr_expect_str_eq(out, "2026-11-27T20:30:00Z");
        time_format_utc(0, out);
        cr_expect_str_eq(out, "1970-01-01 00:00:00 UTC");
        time_format_iso((time_t) 1 << 60, out); /* no year of four digits */
        cr_expect_eq(out[0], '@');
}

static uint64_t thread_cpu_nsec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static sem_t spun, release;

/* Burns 50 ms of its own CPU time, then stays alive (a thread that ended is not counted). */
static void *spinner(void *arg) {
        volatile unsigned long spin = 0;
        uint64_t t0 = thread_cpu_nsec();
        while (thread_cpu_nsec() - t0 < 50000000u)
                spin++;
        sem_post(&spun);
        sem_wait(&release);
        return NULL;
}

Test(time, cpu_nsec) {
        struct rusage ru = { .ru_utime = { 1, 500000 }, .ru_stime = { 0, 250 } };
        cr_assert_eq(rusage_cpu_nsec(&ru), 1500250000u);
        cr_assert_eq(process_cpu_nsec(-1), 0, "no such process: unknown");
        uint64_t t0 = process_cpu_nsec(getpid());
        if (t0 == 0)
                cr_skip_test("no /proc/PID/task/TID/schedstat here (a kernel without CONFIG_SCHED_INFO)");
        /* The work of another thread counts: the MEF's store threads do much of an enrolment. */
        uint64_t mine0 = thread_cpu_nsec();
        pthread_t t;
        cr_assert_eq(sem_init(&spun, 0, 0), 0);
        cr_assert_eq(sem_init(&release, 0, 0), 0);
        cr_assert_eq(pthread_create(&t, NULL, spinner, NULL), 0);
        while (sem_wait(&spun) < 0 && errno == EINTR)
                ;
        uint64_t t1 = process_cpu_nsec(getpid()), mine = thread_cpu_nsec() - mine0;
        sem_post(&release);
        pthread_join(t, NULL);
        /* the spinner's count may lag by the tick it has not been charged yet */
        cr_assert_geq(t1 - t0, 40000000u, "process %llu ns (this thread %llu ns): the spinner's 50 ms are missing",
                      (unsigned long long) (t1 - t0), (unsigned long long) mine);
}

Test(time, monotonic) {
        usec_t t1 = now_usec();
        usleep(2000);
        usec_t t2 = now_usec();
        cr_assert_geq(t2 - t1, 2 * USEC_PER_MSEC);
}

static void on_alarm(int sig) {
}

/* a whole second and its microseconds, the rest slept after a signal (SA_RESTART does not restart
 * nanosleep) */
Test(time, sleep_usec) {
        struct sigaction sa = { .sa_handler = on_alarm }, old;
        cr_assert_eq(sigaction(SIGALRM, &sa, &old), 0);
        struct itimerval it = { .it_value = { .tv_usec = 100000 } };
        cr_assert_eq(setitimer(ITIMER_REAL, &it, NULL), 0);
        usec_t t1 = now_usec();
        sleep_usec(USEC_PER_SEC + 250 * USEC_PER_MSEC);
        usec_t t2 = now_usec();
        sigaction(SIGALRM, &old, NULL);
        cr_assert_geq(t2 - t1, USEC_PER_SEC + 250 * USEC_PER_MSEC, "slept %llu us", (unsigned long long) (t2 - t1));
}

/* SPDX-License-Identifier: MIT */
/* The metrics listener (mef/metrics-http.c) on a loop of the test's own. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mef/accept-pause.h"
#include "mef/metrics-http.h"
#include "util/time.h"
#include "util/util.h"

#define HANG_USEC (30u * 1000u * 1000u) /* a deadline for a hang, never a speed requirement */

/* A blocking TCP connection to 127.0.0.1:port, the request sent (it waits in the backlog). */
static int connect_and_send(unsigned port, const char *request) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof sa), 0, "connect: %m");
        cr_assert_eq(send(fd, request, strlen(request), MSG_NOSIGNAL), (ssize_t) strlen(request));
        return fd;
}

/* Out of file descriptors, accept() fails with EMFILE and leaves the scrape queued: the
 * listening socket stays readable (level-triggered). The listener must pause, accepting again
 * only once per ACCEPT_PAUSE_USEC, not at every turn of the loop (the worker at 100 % CPU).
 * criterion runs the test in a process of its own, so the lowered RLIMIT_NOFILE stays here.
 * Deterministic: each pause lasts at least ACCEPT_PAUSE_USEC, so over any elapsed time the
 * loop dispatches at most one accept and one pause end per pause (the bound holds however slow
 * the machine); the old code dispatched the accept at each of the 1000 turns, which would pass
 * only if they took over 50 s. */
Test(metrics_http, accept_pauses_when_out_of_fds) {
        sd_event *e = NULL;
        mef_metrics_t *m = NULL;
        metrics_http_t *h = NULL;
        char err[256] = "";
        cr_assert_eq(sd_event_new(&e), 0);
        cr_assert_eq(mef_metrics_new(&m), 0);
        cr_assert_eq(metrics_http_new(e, "127.0.0.1", "0", NULL, m, NULL, &h, err, sizeof err), 0, "%s", err);
        int c = connect_and_send(metrics_http_port(h), "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");

        /* no fd left: the lowest free one is at the limit */
        struct rlimit saved, low;
        cr_assert_eq(getrlimit(RLIMIT_NOFILE, &saved), 0);
        int lowest = fcntl(c, F_DUPFD_CLOEXEC, 0);
        cr_assert_geq(lowest, 0);
        close(lowest);
        low = (struct rlimit) { .rlim_cur = (rlim_t) lowest, .rlim_max = saved.rlim_max };
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
        cr_assert_lt(fcntl(c, F_DUPFD_CLOEXEC, 0), 0, "an fd is still free");

        unsigned turns = 1000, dispatched = 0;
        uint64_t began = now_usec();
        for (unsigned i = 0; i < turns; i++) {
                int r = sd_event_run(e, 0);
                cr_assert_geq(r, 0);
                dispatched += r > 0;
        }
        uint64_t elapsed = now_usec() - began;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
        uint64_t most = 2u * (1u + elapsed / ACCEPT_PAUSE_USEC);
        cr_assert_leq(dispatched, most,
                      "the loop dispatched %u times in %u turns (%llu ms) with accept failing: at most %llu "
                      "(one accept and one pause end per %u ms)",
                      dispatched, turns, (unsigned long long) (elapsed / 1000u), (unsigned long long) most,
                      ACCEPT_PAUSE_USEC / 1000u);
        cr_assert_geq(dispatched, 1, "accept was never tried");

        /* fds again: the queued scrape is answered once the pause ends */
        struct pollfd p = { .fd = c, .events = POLLIN };
        uint64_t hang = now_usec() + HANG_USEC;
        while (poll(&p, 1, 0) == 0 && now_usec() < hang)
                cr_assert_geq(sd_event_run(e, 100u * 1000u), 0);
        char buf[64] = "";
        cr_assert_gt(recv(c, buf, sizeof buf - 1, 0), 0, "no answer after the pause");
        cr_assert_eq(strncmp(buf, "HTTP/1.1 200", 12), 0, "%s", buf);

        close(c);
        metrics_http_free(h);
        mef_metrics_free(m);
        sd_event_unref(e);
}

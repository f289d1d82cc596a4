/* SPDX-License-Identifier: MIT */
/* proto/exchange.c's connect over several addresses: a name with the loopback listeners the
 * test chose, in its order, some of them black holes (tests/unit/addrs-fake.h). */
#include <criterion/criterion.h>
#include <sys/socket.h>

#include "proto/exchange.h"
#include "tests/unit/addrs-fake.h"
#include "util/util.h"

#define NAME ADDRS_FAKE_NAME
#define SEC 1000000ULL

static in_port_t peer_port(int fd) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        cr_assert_eq(getpeername(fd, (struct sockaddr *) &sa, &len), 0);
        return sa.sin_port;
}

/* The first address drops SYNs, the second answers: the first gets its share of the time, not
 * all of it, and the connection goes to the second well before the deadline. */
Test(exchange, next_address_after_black_hole) {
        int filler[2], hole = addrs_fake_black_hole(&addrs_fake[0], filler);
        int good = addrs_fake_listener(8, &addrs_fake[1]);
        addrs_fake_n = 2;
        int fd = -1;
        uint64_t start = now_usec();
        int r = tcp_connect_until(NAME, "1", start + 3 * SEC, &fd);
        uint64_t took = now_usec() - start;
        cr_assert_eq(r, 0, "connect: %s after %llu ms", strerror(-r), (unsigned long long) took / 1000);
        cr_assert_eq(peer_port(fd), addrs_fake[1].sin_port, "connected to the second address");
        cr_assert_geq(took, 1 * SEC, "the first address had its share (a second at least)");
        cr_assert_lt(took, 3 * SEC);
        close(fd);
        close(good);
        close(filler[0]);
        close(filler[1]);
        close(hole);
}

/* Every address black-holed: -ETIMEDOUT, at the deadline and not later. */
Test(exchange, all_black_holes_time_out_at_deadline) {
        int filler[2][2], hole[2];
        for (size_t i = 0; i < 2; i++)
                hole[i] = addrs_fake_black_hole(&addrs_fake[i], filler[i]);
        addrs_fake_n = 2;
        int fd = -1;
        uint64_t start = now_usec();
        cr_assert_eq(tcp_connect_until(NAME, "1", start + 2 * SEC, &fd), -ETIMEDOUT);
        uint64_t took = now_usec() - start;
        cr_assert_geq(took, 2 * SEC);
        /* not the kernel's SYN retries (about two minutes): a bound loose enough for a loaded machine */
        cr_assert_lt(took, 10 * SEC, "took %llu ms", (unsigned long long) took / 1000);
        cr_assert_eq(fd, -1);
        for (size_t i = 0; i < 2; i++) {
                close(filler[i][0]);
                close(filler[i][1]);
                close(hole[i]);
        }
}

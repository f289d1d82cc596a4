/* SPDX-License-Identifier: MIT */
/* proto/exchange.c's connect over several addresses: getaddrinfo() is replaced at link time
 * (libmsce is static, so --wrap reaches exchange.o's call) by one that answers NAME with the
 * loopback listeners the test chose, in its order. A listener whose accept queue is full drops
 * SYNs (Linux: tcp_conn_request), as a black-holed address does, without privileges. */
#include <criterion/criterion.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "proto/exchange.h"
#include "util/util.h"

#define NAME "two.msce-test.invalid"
#define SEC 1000000ULL

static struct sockaddr_in addrs[2];
static struct addrinfo ais[2];
static size_t n_ais;

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
void __real_freeaddrinfo(struct addrinfo *res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
void __wrap_freeaddrinfo(struct addrinfo *res);

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
        if (!node || !streq(node, NAME))
                return __real_getaddrinfo(node, service, hints, res);
        for (size_t i = 0; i < n_ais; i++)
                ais[i] = (struct addrinfo) {
                        .ai_family = AF_INET,
                        .ai_socktype = SOCK_STREAM,
                        .ai_protocol = IPPROTO_TCP,
                        .ai_addrlen = sizeof addrs[i],
                        .ai_addr = (struct sockaddr *) &addrs[i],
                        .ai_next = i + 1 < n_ais ? &ais[i + 1] : NULL,
                };
        *res = &ais[0];
        return 0;
}

void __wrap_freeaddrinfo(struct addrinfo *res) {
        if (res != &ais[0])
                __real_freeaddrinfo(res);
}

/* A loopback listener with backlog; its address in *sa. */
static int listener(int backlog, struct sockaddr_in *sa) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        *sa = (struct sockaddr_in) { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof *sa;
        cr_assert_eq(bind(fd, (struct sockaddr *) sa, len), 0);
        cr_assert_eq(listen(fd, backlog), 0);
        cr_assert_eq(getsockname(fd, (struct sockaddr *) sa, &len), 0);
        return fd;
}

/* A listener that drops every further SYN: backlog 1 holds two connections, never accepted
 * (ret_fillers keep them open), and the accept queue full drops the next SYN. Backlog 0 would
 * need SYN cookies for the first (net.ipv4.tcp_syncookies = 0: that connect would hang). */
static int black_hole(struct sockaddr_in *sa, int ret_fillers[static 2]) {
        int fd = listener(1, sa);
        for (size_t i = 0; i < 2; i++) {
                ret_fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                cr_assert_eq(connect(ret_fillers[i], (struct sockaddr *) sa, sizeof *sa), 0);
        }
        struct pollfd p = { .fd = fd, .events = POLLIN }; /* in the accept queue */
        cr_assert_eq(poll(&p, 1, 30000), 1);
        return fd;
}

static in_port_t peer_port(int fd) {
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        cr_assert_eq(getpeername(fd, (struct sockaddr *) &sa, &len), 0);
        return sa.sin_port;
}

/* The first address drops SYNs, the second answers: the first gets its share of the time, not
 * all of it, and the connection goes to the second well before the deadline. */
Test(exchange, next_address_after_black_hole) {
        int filler[2], hole = black_hole(&addrs[0], filler);
        int good = listener(8, &addrs[1]);
        n_ais = 2;
        int fd = -1;
        uint64_t start = now_usec();
        int r = tcp_connect_until(NAME, "1", start + 3 * SEC, &fd);
        uint64_t took = now_usec() - start;
        cr_assert_eq(r, 0, "connect: %s after %llu ms", strerror(-r), (unsigned long long) took / 1000);
        cr_assert_eq(peer_port(fd), addrs[1].sin_port, "connected to the second address");
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
                hole[i] = black_hole(&addrs[i], filler[i]);
        n_ais = 2;
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

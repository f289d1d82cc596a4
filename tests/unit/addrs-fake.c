/* SPDX-License-Identifier: MIT */
/* The replaced getaddrinfo() and the listeners of tests/unit/addrs-fake.h. */
#include <criterion/criterion.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include "tests/unit/addrs-fake.h"
#include "util/util.h"

struct sockaddr_in addrs_fake[2];
size_t addrs_fake_n;
static struct addrinfo ais[2];

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
void __real_freeaddrinfo(struct addrinfo *res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
void __wrap_freeaddrinfo(struct addrinfo *res);

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
        if (!node || !streq(node, ADDRS_FAKE_NAME))
                return __real_getaddrinfo(node, service, hints, res);
        for (size_t i = 0; i < addrs_fake_n; i++)
                ais[i] = (struct addrinfo) {
                        .ai_family = AF_INET,
                        .ai_socktype = SOCK_STREAM,
                        .ai_protocol = IPPROTO_TCP,
                        .ai_addrlen = sizeof addrs_fake[i],
                        .ai_addr = (struct sockaddr *) &addrs_fake[i],
                        .ai_next = i + 1 < addrs_fake_n ? &ais[i + 1] : NULL,
                };
        *res = &ais[0];
        return 0;
}

void __wrap_freeaddrinfo(struct addrinfo *res) {
        if (res != &ais[0])
                __real_freeaddrinfo(res);
}

int addrs_fake_listener(int backlog, struct sockaddr_in *sa) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        *sa = (struct sockaddr_in) { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof *sa;
        cr_assert_eq(bind(fd, (struct sockaddr *) sa, len), 0);
        cr_assert_eq(listen(fd, backlog), 0);
        cr_assert_eq(getsockname(fd, (struct sockaddr *) sa, &len), 0);
        return fd;
}

/* Backlog 1 holds two connections, never accepted (the fillers keep them open), and the accept
 * queue full drops the next SYN. Backlog 0 would need SYN cookies for the first
 * (net.ipv4.tcp_syncookies = 0: that connect would hang). */
int addrs_fake_black_hole(struct sockaddr_in *sa, int ret_fillers[static 2]) {
        int fd = addrs_fake_listener(1, sa);
        for (size_t i = 0; i < 2; i++) {
                ret_fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                cr_assert_eq(connect(ret_fillers[i], (struct sockaddr *) sa, sizeof *sa), 0);
        }
        struct pollfd p = { .fd = fd, .events = POLLIN }; /* in the accept queue */
        cr_assert_eq(poll(&p, 1, 30000), 1);
        return fd;
}

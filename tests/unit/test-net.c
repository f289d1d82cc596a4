/* SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <errno.h>
#include <netdb.h>

#include "util/net.h"

Test(net, gai_errors) {
        cr_assert_eq(gai_error_to_errno(0), 0);
        cr_assert_eq(gai_error_to_errno(EAI_NONAME), -ENOENT);
        cr_assert_eq(gai_error_to_errno(EAI_AGAIN), -ENOENT);
        cr_assert_eq(gai_error_to_errno(EAI_MEMORY), -ENOMEM);
        cr_assert_eq(gai_error_to_errno(EAI_SERVICE), -EINVAL);
        cr_assert_eq(gai_error_to_errno(EAI_BADFLAGS), -EINVAL);
        errno = ECONNREFUSED;
        cr_assert_eq(gai_error_to_errno(EAI_SYSTEM), -ECONNREFUSED);
        errno = 0;
        cr_assert_eq(gai_error_to_errno(EAI_SYSTEM), -EIO, "EAI_SYSTEM without errno is still an error");
}

Test(net, numeric_lookup) {
        /* resolving a literal address touches no DNS: the mapping of a real call */
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV }, *res = NULL;
        cr_assert_eq(gai_error_to_errno(getaddrinfo("127.0.0.1", "1", &hints, &res)), 0);
        freeaddrinfo(res);
        cr_assert_eq(gai_error_to_errno(getaddrinfo("not an address", "1", &hints, &res)), -ENOENT);
}

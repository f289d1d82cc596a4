/* SPDX-License-Identifier: MIT */
#include <netdb.h>

#include "util/macro.h"
#include "util/net.h"

int gai_error_to_errno(int eai) {
        switch (eai) {
        case 0:
                return 0;
        case EAI_SYSTEM:
                return negative_errno();
        case EAI_MEMORY:
                return -ENOMEM;
        case EAI_SERVICE:
        case EAI_BADFLAGS:
                return -EINVAL;
        default:
                return -ENOENT;
        }
}

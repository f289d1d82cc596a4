/* SPDX-License-Identifier: MIT */
#pragma once
/* getaddrinfo()'s EAI_* codes as -errno: -ENOENT for a name that does not resolve, -ENOMEM,
 * -EINVAL for bad arguments, errno for EAI_SYSTEM (call it before anything changes errno). */
int gai_error_to_errno(int eai);

/* SPDX-License-Identifier: MIT */
#pragma once
/* MESSAGE_ID= of the agent's important journal entries, explained in systemd/msce.catalog
 * (journalctl -x). Fixed forever: scripts and monitoring match on them. */

#define MSCE_MESSAGE_ENROLLED "2606ed3f512648db851c350a30b0459f"     /* enrolled, keys handed over */
#define MSCE_MESSAGE_RESTORED "73a291f16a924c6f9b4b436007f9155a"     /* sealed profile restored */
#define MSCE_MESSAGE_REJECTED "2cb98f4f31094b2f8bf3bb2921618b95"     /* the MEF refused us */
#define MSCE_MESSAGE_INCOMPATIBLE "94d2a0fcf7d8453f90d143cd68ab6326" /* no common TLS version, suite or group; more targets than a profile holds */
#define MSCE_MESSAGE_REVOKED "9d47e33c1b8b46be87c91d8b24bd5fa2"      /* the MEF revoked the enrolment */
#define MSCE_MESSAGE_UNSEAL_FAILED "e1763842334b4597bbfb8a9a2e34db44" /* sealed profile unusable */
#define MSCE_MESSAGE_EXPIRED "29dc1906d6694507841754fe7f988e38"      /* profile expired unrenewed */

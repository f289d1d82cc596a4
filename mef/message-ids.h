/* SPDX-License-Identifier: MIT */
#pragma once
/* MESSAGE_ID= of msce-mef's important journal entries, explained in systemd/msce-mef.catalog
 * (journalctl -x). Fixed forever: scripts and monitoring match on them. */

#define MEF_MESSAGE_STARTED "8ebdf2c05deb443c9bf2e51d71822f32"     /* listening, ready */
#define MEF_MESSAGE_ENROLLED "5bf0bbfa4c5848f9a223f2089188fed7"    /* a node enrolled (201) */
#define MEF_MESSAGE_REFUSED "c2dd3d2e36474688800a9c0166243fd5"     /* an authenticated peer refused (4xx) */
#define MEF_MESSAGE_FETCHED "70a5a2b919f94d37918eb017d4edbcdf"     /* a target fetched a Kpsa */
#define MEF_MESSAGE_DEREGISTERED "7e1e118e93d54f258a906b24dc86e6ef" /* a node deregistered */
#define MEF_MESSAGE_FAILED "1d2f3c15aa94471faef66b4cbf104a0d"      /* an exchange failed on our side (5xx) */

/* SPDX-License-Identifier: MIT */
#pragma once
/* msce-agent exit codes (sysexits.h values, so service managers and scripts can tell them
 * apart). Shown in --help. */

#define AGENT_EXIT_OK 0          /* enrolled (--once), configuration valid (--check-config) */
#define AGENT_EXIT_USAGE 64      /* EX_USAGE: bad command line */
#define AGENT_EXIT_SOFTWARE 70   /* EX_SOFTWARE: internal error (out of memory, ...) */
#define AGENT_EXIT_TRANSIENT 75  /* EX_TEMPFAIL: MEF unreachable, timeout, 5xx, bad response: retry */
#define AGENT_EXIT_INCOMPATIBLE 76 /* EX_PROTOCOL: no common TLS version, suite or group with the MEF */
#define AGENT_EXIT_REJECTED 77   /* EX_NOPERM: the MEF refused the credential or the request */
#define AGENT_EXIT_CONFIG 78     /* EX_CONFIG: configuration or bootstrap credential unusable */

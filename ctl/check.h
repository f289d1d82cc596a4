/* SPDX-License-Identifier: MIT */
#pragma once
/* "mscectl check": everything the agent needs, each finding printed as
 *     OK    topic: what was found
 *     WARN  topic: what was found
 *           fix: one line saying what to do
 *     FAIL  ...
 * Nothing is changed: no enrolment, no key is filed (a TLS handshake with the MEF is made and
 * closed without a request). */

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define CTL_AGENT_USER "msce" /* User= of msce-agent.service */

typedef struct ctl_check_opts {
        const char *config;      /* NULL: /etc/msce/agent.conf */
        const char *agent_user;  /* the user the agent runs as; NULL: CTL_AGENT_USER */
        const char *runtime_dir; /* NULL: [seal] runtime_dir of the configuration */
        bool network;            /* resolve, connect and handshake with the MEF */
        bool json;               /* --output json: {"checks": [{id, result, message, fix}], ...} */
        bool warnings_as_errors; /* count WARN findings as failures */
        char **dont_run;         /* check ids to skip (ctl_check_list()) */
        size_t n_dont_run;
} ctl_check_opts_t;

/* Returns the number of FAIL findings (with warnings_as_errors, plus the WARN ones; 0: the
 * agent has what it needs). */
unsigned ctl_check_run(const ctl_check_opts_t *o, FILE *f);

/* The checks, id and what each looks at, as text lines or a JSON array. */
int ctl_check_list(bool json, FILE *f);
bool ctl_check_known(const char *id);

/* Plain permission bits, no capabilities (the agent has no CAP_DAC_*): may uid, member of
 * groups[0..n), open a file of owner, group and mode for want (R_OK, W_OK, X_OK or'ed)? */
bool ctl_access_ok(uid_t owner, gid_t group, mode_t mode, uid_t uid, const gid_t *groups, size_t n, int want);

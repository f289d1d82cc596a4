/* SPDX-License-Identifier: MIT */
#pragma once
/* "mscectl setup": the quick setup of a gateway. The bootstrap credential and a drop-in with
 * the node's identity and the MEF go where the agent reads them, with the owners and modes
 * the agent wants; what msce-agent --check-config would refuse is refused and leaves nothing
 * behind. "mscectl logs": the journalctl command line for the agent. */

#include <stdbool.h>
#include <stddef.h>

#define CTL_SETUP_DROPIN "50-setup.conf"
#define CTL_SETUP_KPM "msce.kpm"   /* next to the main configuration file */

typedef struct ctl_setup_opts {
        const char *config;       /* main configuration file; NULL: /etc/msce/agent.conf */
        const char *node_id;      /* required */
        const char *mef_uri;      /* required */
        const char *psk_identity; /* required */
        const char *kpm_file;     /* required: the Kpm as hex, any mode; "-": standard input */
        const char *cse_user;     /* [consumer] user, NULL: not written (the default) */
        const char *agent_user;   /* owner of the installed Kpm; NULL: CTL_AGENT_USER */
} ctl_setup_opts_t;

/* 0, or a negative errno with err saying why (nothing changed then). On success ret_dropin
 * and ret_kpm (PATH_MAX each, may be NULL) name the files written. *ret_refused (may be NULL)
 * says whether a failure is a refusal, whatever its errno: an option or the Kpm refused, the
 * agent's user missing, or the result refused as msce-agent --check-config refuses it, or
 * overridden (mscectl's exit 11); false for a failure to read or write (exit 1). */
int ctl_setup_run(const ctl_setup_opts_t *o, char *err, size_t err_size, char *ret_dropin, char *ret_kpm,
                  bool *ret_refused);

typedef struct ctl_logs_opts {
        bool follow;       /* -f */
        const char *lines; /* -n N */
        const char *since; /* --since TIME */
        const char *file;  /* --file PATH: a journal file instead of the system journal */
        bool json;         /* --output json */
} ctl_logs_opts_t;

/* The journalctl argv (NULL-terminated, into argv[0..max)), -E2BIG when max is too small. */
int ctl_logs_argv(const ctl_logs_opts_t *o, const char **argv, size_t max);

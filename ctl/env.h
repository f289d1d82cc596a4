/* SPDX-License-Identifier: MIT */
#pragma once
/* "mscectl profile --env": the non-secret profile as NAME='value' lines that both sh(1) and
 * systemd's EnvironmentFile= read back to the same values. Never key bytes. */

#include <stdio.h>

#include "ctl/runtime.h"

/* 'value' (so $, `, \ and " stay literal); a value holding a ' as "value" with \ before each
 * " \ $ and ` (systemd does not read sh's '\''). -EINVAL for control characters (a newline
 * would end the line for EnvironmentFile=), -ENOMEM. */
int ctl_shell_quote(const char *s, char **ret);

/* MSCE_CSE_ID, MSCE_CSE_BASE, MSCE_KEID, MSCE_EXP, MSCE_POLL (when known), MSCE_TARGET_IDS and
 * MSCE_KPSA_IDS (space-separated, in the same order; IDs have no spaces). -EINVAL when a value
 * cannot be quoted, -ENOMEM; nothing is written then. */
int ctl_profile_env(const ctl_profile_t *p, FILE *f);

/* SPDX-License-Identifier: MIT */
#pragma once
/* What mscectl's files share: its options, exit codes, usage errors and the runtime files
 * (ctl/mscectl.c: the commands that act; mscectl-status.c: status and profile, which only read;
 * reload.c: reload, which waits for the agent). */
#include <stdbool.h>

#include "ctl/runtime.h"
#include "util/macro.h"

#define EXIT_USAGE 2
#define EXIT_NOT_RUNNING 3 /* status: not running or not ready; reprovision, reload: not running */
#define EXIT_NO_DATA 4     /* status: no state.json; profile: no profile.json */
#define EXIT_CONFIG 11     /* setup: refused, as msce-agent --check-config would */
#define EXIT_EXPIRED 10    /* profile --env: the profile expired (as status: ctl_health_exit()) */

typedef struct globals {
        const char *config;      /* --config */
        const char *runtime_dir; /* --runtime-dir */
} globals_t;

/* "mscectl: <message>" and the pointer to --help on stderr; returns EXIT_USAGE. */
int usage_error(const char *fmt, ...) _printf_(1, 2);
/* getopt_long() returned o (':' or '?') for the option at argv[optind - 1] of cmd ("" for none). */
int option_error(const char *cmd, int o, char **argv);
/* --runtime-dir, else the configuration's [seal] runtime_dir, else (it does not load) /run/msce;
 * why (NULL: said on stderr instead) gets the reason it did not load, "" when it did. */
int runtime_dir_get(const globals_t *g, char **ret, char *why, size_t why_size);
/* Does the configuration fail to load as msce-agent loads it at its start (credential files
 * read)? 1 with err saying why; 0 when it loads, or when that is not known here: the default
 * configuration absent (not installed), a file that this user (not root) may not read. The same
 * load gives *ret_dir as runtime_dir_get() does, which says on stderr only a reason not in err. */
int config_refused(const globals_t *g, char **ret_dir, char *err, size_t err_size);
/* state.json: 1 loaded, 0 absent, negative errno (printed). */
int state_load(const char *dir, ctl_state_t *ret);
/* profile.json as text and parsed: 1 loaded, 0 absent, negative errno (printed). */
int profile_load(const char *dir, char **ret_text, ctl_profile_t *ret);

int cmd_status(const globals_t *g, int argc, char **argv);
int cmd_profile(const globals_t *g, int argc, char **argv);
int cmd_reload(const globals_t *g, int argc, char **argv);

/* SPDX-License-Identifier: MIT */
#pragma once
/* msce-mef's operator commands (init, node, target, enrolments, audit). The top layer: it
 * prints results to stdout and errors to stderr as "msce-mef: <what>: <reason>". Keys are
 * only ever read from or written to files; they never appear in argv or in any output. */

#include <stdbool.h>
#include <stdio.h>

#include "mef/mef-config.h"

#define MEF_EXIT_FAILURE 1
#define MEF_EXIT_USAGE 2
#define MEF_EXIT_CONFIG 78 /* EX_CONFIG */

typedef struct mef_cli_globals {
        const char *config_path; /* --config FILE; NULL: MEF_CONFIG_DEFAULT */
        bool json;               /* --json */
        bool help;               /* --help */
        bool version;            /* --version */
        int command;             /* argv index of the command; argc when there is none */
} mef_cli_globals_t;

/* The options before the command: [--config FILE] [--json] [--help] [--version].
 * -EINVAL on a usage error, which has been printed. */
int mef_cli_parse_globals(int argc, char **argv, mef_cli_globals_t *ret);
void mef_cli_usage(FILE *f);

/* Run the command of argv (as main received it, global options included). Returns an exit
 * status: 0, MEF_EXIT_FAILURE, or MEF_EXIT_USAGE. "serve" is main's, not handled here. */
int mef_cli_run(const mef_config_t *cfg, int argc, char **argv);

/* SPDX-License-Identifier: MIT */
#pragma once
/* What the files of "mscectl check" share: the checker, its findings, and each check
 * (ctl/check-files.c: files, directories and devices the agent uses; check-system.c: clock,
 * consumer keys, TPM, sealed profile, LEDs, preflight; check-mef.c: the MEF over the network;
 * check-agent.c: the running agent and its profile.json). Not for use outside ctl/check*.c. */
#include <stdarg.h>
#include <sys/stat.h>
#include <jansson.h>

#include "agent/config.h"
#include "ctl/check.h"
#include "util/util.h"

#define GROUPS_MAX 64

typedef enum level {
        L_OK,
        L_WARN,
        L_FAIL,
} level_t;

typedef struct checker {
        FILE *f;
        unsigned fails;
        unsigned warns;
        const ctl_check_opts_t *o;
        const char *id;   /* the check running now (ctl_check_list()) */
        json_t *results;  /* --output json: the findings, printed at the end */
        /* the agent's identity, for permission checks */
        const char *user;
        uid_t uid;
        gid_t groups[GROUPS_MAX];
        size_t n_groups;
} checker_t;


/* One finding: printed, or kept for --output json; fix is shown for WARN and FAIL. */
void _printf_(4, 5) check_report(checker_t *c, level_t l, const char *fix, const char *fmt, ...);

/* ---- ctl/check-files.c ---- */
/* May the agent's user open st for want (R_OK, W_OK, X_OK or'ed)? */
bool check_agent_can(const checker_t *c, const struct stat *st, int want);
const char *check_user_name(uid_t uid, char buf[32]);
const char *check_group_name(gid_t gid, char buf[32]);
void check_config_files(checker_t *c, const agent_config_t *cfg);
void check_credentials(checker_t *c, const agent_config_t *cfg);
void check_dir(checker_t *c, const char *what, const char *dir, const char *unit_dir, mode_t mode);
/* A device node the agent opens read-write; fix: what to do when it may not. */
void check_device(checker_t *c, const char *what, const char *path, const char *fix);

/* ---- ctl/check-system.c ---- */
void check_clock(checker_t *c);
void check_service_user(checker_t *c, const agent_config_t *cfg);
void check_tpm(checker_t *c, const agent_config_t *cfg);
void check_sealed(checker_t *c, const agent_config_t *cfg);
void check_led(checker_t *c, const char *key, const char *spec);
void check_preflight(checker_t *c, agent_config_t *cfg);

/* ---- ctl/check-mef.c ---- */
void check_mef(checker_t *c, const agent_config_t *cfg);

/* ---- ctl/check-agent.c ---- */
void check_agent(checker_t *c, const char *runtime_dir);
void check_profile(checker_t *c, const char *runtime_dir);

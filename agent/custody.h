/* SPDX-License-Identifier: MIT */
#pragma once
/* Custody of the provisioning profile: the sealed copy at rest (keys/seal.h), the keys in the
 * service user's keyring (keys/keyring.h) and the non-secret <runtime_dir>/profile.json, kept in
 * step. No logging here: every failure comes back with a class (what the caller should do) and
 * a reason naming the file, user or backend involved, never key bytes (agent/outcome.h). */

#include <stdbool.h>
#include <sys/types.h>

#include "agent/config.h"
#include "agent/outcome.h"
#include "keys/profile.h"
#include "keys/seal.h"

#define CUSTODY_PROFILE_JSON "profile.json"

/* What a custody call did: its failure (agent/outcome.h; the restore classes ABSENT,
 * MISMATCH, EXPIRED, UNUSABLE, else CONFIG or FAILED), and for a store whether the new profile
 * is sealed. Every call needs one. */
typedef struct custody_info {
        failure_t failure;
        bool sealed;          /* store: the new profile is sealed (even when a later step failed) */
        seal_method_t method; /* the backend of the profile loaded or stored */
        char ke_id[MSG_KEID_MAX + 1]; /* its KeID, also when refused (expired): "" when none */
} custody_info_t;

/* The TPM is there, but not the agent's to open (hw/tpm2.h -EACCES): its setup, said as
 * "<what>the TPM <node, else at tcti> is not accessible to uid N: ..." (returns -EACCES). what
 * ends with ": " and names the configuration file when it is the configuration's fault. */
int custody_tpm_denied(failure_t *f, outcome_t o, const char *what, const char *tcti);

/* The free space custody_space_check() wants in the state and runtime directories. */
#define CUSTODY_SPACE_MIN (16u * 1024u)

/* The user msce-agent.service runs as (User=): never a valid [consumer] user. */
#define CUSTODY_AGENT_USER "msce"

/* Everything local an enrolment depends on, checked before anything is sent to the MEF (an
 * enrolment whose profile cannot be kept leaves an orphan KeID at the MEF): the service user
 * (exists, not root, not the agent's own user: CUSTODY_AGENT_USER or the effective uid), the
 * state and runtime directories (a directory the agent can write and that group and others
 * cannot, owned by the agent, msce or root; or a missing one whose nearest existing parent the
 * agent can write), and with [seal] backend = tpm2 a build with TPM support and, for a
 * device: TCTI, the device node. Creates and changes nothing. OUTCOME_CONFIG and a reason of
 * the form "FILE: [section] key: ..." on failure; OUTCOME_FAILED when the user database cannot
 * answer now (retry later). agent_user: the user the agent runs as (NULL:
 * CUSTODY_AGENT_USER; mscectl check --agent-user gives another). */
int custody_preflight(const agent_config_t *cfg, const char *agent_user, custody_info_t *info);

/* Right before an enrolment: OUTCOME_FAILED (-ENOSPC, retry later) when the state or runtime
 * directory has less than CUSTODY_SPACE_MIN bytes free, so that no enrolment is made whose
 * profile could not be written. A restore needs no such room. */
int custody_space_check(const agent_config_t *cfg, custody_info_t *info);

/* Take the agent's lock (flock on the state directory, created 0700 when missing): one agent
 * per state directory. -EBUSY when another agent holds it for 1 s (the child processes of a
 * killed agent hold it until they die, which takes milliseconds). ret_fd is the lock; close it to
 * release (a killed agent releases it too). */
int custody_lock(const agent_config_t *cfg, int *ret_fd, custody_info_t *info);
/* The same lock, when the state directory exists, creating and cleaning nothing (the start of a
 * configuration that failed custody_preflight(): may it write the runtime files?): -ENOENT when
 * the directory does not exist, -EBUSY when another agent holds it, open()'s or flock()'s error. */
int custody_lock_existing(const agent_config_t *cfg, int *ret_fd);

/* Restoring the sealed profile, around an asynchronous unseal (agent/sealing.h): finish takes
 * what the unseal gave (r, err, the profile and method; err as sealing_result() gives it: the
 * crypto module's error, or the TPM's response code when the TPM failed, which the reason then
 * names beside the TPM), checks the profile is not expired and belongs to cfg (node ID and MEF
 * URI), writes profile.json's temporary file, installs its keys
 * for the service user and renames profile.json into place - in that order. A failure before
 * the keys are installed changes nothing. When only the rename fails, the keys installed stay
 * (they are the sealed profile's, which a retry installs again), unless the service user had
 * none before: then they are taken out again. info says why; *ret_profile (may be NULL) holds
 * key bytes: stored_profile_wipe(). */
int custody_restore_finish(const agent_config_t *cfg, int r, const char *err, stored_profile_t *p,
                           seal_method_t method, stored_profile_t *ret_profile, custody_info_t *info);

/* Keeping a new enrolment, around an asynchronous seal (agent/sealing.h): begin checks the
 * service user and creates the state directory (nothing is written when it fails) and gives
 * the sealed profile's identity (*ret_envelope); finish takes the sealing's result and that
 * identity. The seal comes first (when it fails before its rename nothing changed: the old
 * sealed profile and keys stay), then the keys and profile.json as a restore installs them
 * (custody_restore_finish()). When a step after the rename fails (the seal's own last steps
 * too), the error is returned with info->sealed set: the next restore completes it. */
int custody_store_begin(const agent_config_t *cfg, ino_t *ret_envelope, custody_info_t *info);
int custody_store_finish(const agent_config_t *cfg, int r, const char *err, ino_t envelope, const stored_profile_t *profile,
                         seal_method_t method, stored_profile_t *ret_profile, custody_info_t *info);

/* Remove the keys and profile.json, and with sealed the sealed profile (and host.key) too
 * (without it they stay: a store under way may be writing them, or a clock ahead took a valid
 * one for expired; the next store overwrites them). The keys go first; when that fails for now
 * (OUTCOME_FAILED: the user database not answering, the keyring) nothing else is removed, for
 * the caller to retry; else every step is tried. The first error is returned. */
int custody_remove(const agent_config_t *cfg, bool sealed, custody_info_t *info);

/* Another [consumer] user than the uid the keys were filed for (KEYRING_OWNER_NAME in the state
 * directory, which outlives a restart; ret_old: its user, if any): its keys go as custody_remove()
 * takes them out, and the record names cfg's user. 1 when keys were removed, 0 when none were; info
 * says why on failure (keys may remain), or that the record was not a uid or cannot be written. */
#define CUSTODY_USER_MAX 257
int custody_user_leave(const agent_config_t *cfg, char ret_old[static CUSTODY_USER_MAX], custody_info_t *info);

/* Are the keys of p (its Long Term Key and the Kpsa of each target; NULL: a Long Term Key)
 * still in the keyring? 0 yes, -ENOKEY when one is not (reinstall from the sealed profile),
 * other errors with info. Also keeps the persistent keyring from expiring. */
int custody_check(const agent_config_t *cfg, const stored_profile_t *p, custody_info_t *info);

/* Is there a sealed profile (the file, not opened)? -ENOENT when not, else 0 (also when that
 * cannot be told: the unsealing says why). */
int custody_sealed_exists(const agent_config_t *cfg);

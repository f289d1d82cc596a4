/* SPDX-License-Identifier: MIT */
#pragma once
/* The agent's client side of the exchanges (protocol 3.1-3.3) on the exchange engine
 * (proto/exchange.h), blocking: they run in the exchange child (agent/worker.h), mscectl and the
 * tests. Classification as protocol section 5 says. No logging here: results carry a
 * human-readable reason for the top layer. */

#include <stdint.h>

#include "agent/config.h"
#include "agent/outcome.h"
#include "keys/kdf.h"
#include "keys/profile.h"
#include "proto/exchange.h"
#include "proto/msg.h"


/* Enrol (3.1): prev is the KeID being replaced or NULL. Returns 0 with *ret the profile to keep
 * (caller must stored_profile_wipe()), or a negative errno with info->outcome and info->reason
 * set. The key's path: the exporter's EKM -> Ke and KeID (keys/kdf.h) -> key confirmation (the
 * profile's keID must equal the KeID derived here, else -EBADMSG, transient per protocol
 * section 5) -> the Long Term Key (the transported one, else Ke) -> one Kpsa per target. */
int enrol_run(const agent_config_t *cfg, const char *prev, stored_profile_t *ret, exchange_info_t *info);

/* Status check (3.2). 404/4004: -ENOENT with outcome OUTCOME_UNKNOWN_KEID (agent/outcome.h). */
int enrol_status(const agent_config_t *cfg, const char *ke_id, msg_status_t *ret, exchange_info_t *info);

/* Deregister (3.3). 404/4004 as for enrol_status(): the MEF has no active enrolment of that KeID. */
int enrol_deregister(const agent_config_t *cfg, const char *ke_id, exchange_info_t *info);


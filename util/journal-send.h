/* SPDX-License-Identifier: MIT */
#pragma once
/* One structured journal entry through sd_journal_sendv(), for the top layers of msce-agent
 * and msce-mef. Callers never pass key bytes. */

#include <stddef.h>

#define JOURNAL_FIELDS_MAX 16u

/* MESSAGE=message, PRIORITY=priority, SYSLOG_IDENTIFIER=identifier, then every "NAME", value
 * pair of kv (NULL-terminated; a pair whose value is NULL or "" is left out). Fields beyond
 * JOURNAL_FIELDS_MAX are dropped. Returns what sd_journal_sendv() returns. */
int journal_send(int priority, const char *identifier, const char *message, const char *const *kv);

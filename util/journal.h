/* SPDX-License-Identifier: MIT */
#pragma once
#include <stdbool.h>
#include <stddef.h>

/* true when stderr is connected to journald: JOURNAL_STREAM=<dev>:<inode> names the stream
 * systemd connected, and since it is inherited it only counts while it still describes
 * stderr. */
bool journal_stderr_is_journal(void);

#define JOURNAL_FIELDS_MAX 16u

/* One structured entry through sd_journal_sendv(), for the top layers of msce-agent and
 * msce-mef: MESSAGE=message, PRIORITY=priority, SYSLOG_IDENTIFIER=identifier, then every
 * "NAME", value pair of kv (NULL-terminated; a pair whose value is NULL or "" is left out).
 * Fields beyond JOURNAL_FIELDS_MAX are dropped. Callers never pass key bytes. Returns what
 * sd_journal_sendv() returns. */
int journal_send(int priority, const char *identifier, const char *message, const char *const *kv);

/* SPDX-License-Identifier: MIT */
#pragma once
#include <stdbool.h>

/* true when stderr is connected to journald: JOURNAL_STREAM=<dev>:<inode> names the stream
 * systemd connected, and since it is inherited it only counts while it still describes
 * stderr. */
bool journal_stderr_is_journal(void);

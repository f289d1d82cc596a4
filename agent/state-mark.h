/* SPDX-License-Identifier: MIT */
#pragma once
/* Marks: small files in the state directory that outlive the agent (a stop, a crash, a power
 * cut), each the wall clock time it was set on its first line, then what its user adds; no
 * secret, mode 0600.
 *
 * ENROL_MARK_NAME: an enrolment may be under way. The MEF commits a new enrolment, retiring the
 * node's others, before it answers: an agent stopped, killed or reloaded between that commit and
 * installing the new profile restores a KeID the MEF no longer knows. The mark makes the next
 * restore ask the MEF about what it restored at once rather than a poll interval later.
 *
 * REVOKED_MARK_NAME: the MEF revoked the enrolment (then the KeID and the MEF's URI, a line
 * each). The contract (3.2) has the agent stay unprovisioned until an operator acts: while the
 * mark is there the agent starts REVOKED, without a restore or an enrolment, and the acts of an
 * operator (SIGUSR1 and mscectl reprovision, a reload, mscectl factory-reset, msce-agent --once
 * --reenrol) remove it. */
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define ENROL_MARK_NAME "enrolling"
#define REVOKED_MARK_NAME "revoked"

/* Atomically and durably (file_write_atomic()), text after the time line (NULL: none):
 * -errno when it cannot be written. */
int state_mark_set(const char *state_dir, const char *name, const char *text);
/* 0 also when there was none; -errno when it cannot be removed. */
int state_mark_clear(const char *state_dir, const char *name);
/* Whether the mark is there: one that cannot be looked at counts as there. */
bool state_mark_present(const char *state_dir, const char *name);
/* The time it was set, and the text after it (NUL-terminated, cut at size - 1, empty if none).
 * -ENOENT when there is none, -EBADMSG when its first line is not a time; ret_* untouched on
 * failure. */
int state_mark_read(const char *state_dir, const char *name, time_t *ret_time, char *ret_text, size_t size);

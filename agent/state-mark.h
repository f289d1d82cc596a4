/* SPDX-License-Identifier: MIT */
#pragma once
/* The mark that an enrolment may be under way, a file in the state directory (one line, the
 * wall clock time it began; no secret, mode 0600). The MEF commits a new enrolment, retiring
 * the node's others, before it answers: an agent stopped, killed or reloaded between that
 * commit and installing the new profile restores a KeID the MEF no longer knows. The mark
 * outlives the agent so that the next restore asks the MEF about what it restored at once
 * rather than a poll interval later. */
#include <stdbool.h>

#define ENROL_MARK_NAME "enrolling"

/* Atomically (file_write_atomic()): -errno when it cannot be written. */
int enrol_mark_set(const char *state_dir);
/* 0 also when there was none; -errno when it cannot be removed. */
int enrol_mark_clear(const char *state_dir);
/* Whether the mark is there: one that cannot be looked at counts as there (it costs one
 * status check). */
bool enrol_mark_present(const char *state_dir);

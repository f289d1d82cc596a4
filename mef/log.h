/* SPDX-License-Identifier: MIT */
#pragma once
/* msce-mef's logging (top layer only): stderr, with sd-daemon priority prefixes when stderr is
 * connected to the journal (JOURNAL_STREAM matches), "msce-mef: " otherwise. One write(2) per
 * line, so lines from one process never interleave. Callers never pass key bytes. */

#include "util/macro.h"

void log_info(const char *fmt, ...) _printf_(1, 2);
void log_warning(const char *fmt, ...) _printf_(1, 2);
void log_error(const char *fmt, ...) _printf_(1, 2);
/* errno is set to -error for the duration of the call so "%m" works; returns error. */
int log_error_errno(int error, const char *fmt, ...) _printf_(2, 3);
int log_warning_errno(int error, const char *fmt, ...) _printf_(2, 3);

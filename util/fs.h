/* SPDX-License-Identifier: MIT */
#pragma once
/* Files: secrets read only from owner-only files, small files whole, atomic writes. */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/macro.h"

/* Read a secret file (at most max bytes) into a wiped-on-free buffer.
 * -EPERM when the file is readable by group or others, -EFBIG when larger than max,
 * -ENODATA when empty. A trailing newline is not stripped: secrets are raw bytes unless
 * the caller decodes them. */
int secret_file_read(const char *path, size_t max, secret_t *ret);
/* SECRET_CREDENTIAL: a systemd credential ($CREDENTIALS_DIRECTORY). For a unit with User=,
 * systemd >= 254 gives the file mode 0440 with an ACL for that user (the group bits show the
 * ACL's mask) in a directory only the service reaches: group bits are not refused there,
 * others' still are. */
typedef enum secret_flags {
        SECRET_CREDENTIAL = 1 << 0,
} secret_flags_t;
int secret_file_read_flags(const char *path, size_t max, secret_flags_t flags, secret_t *ret);
/* Same check on an open fd: 0 when only the owner may read. */
int secret_fd_check_mode(int fd);
/* A key of min..max bytes kept as hex on one line in an owner-only file (a Kpm, a PSK):
 * secret_file_read() then hex_key_parse(). Errors as theirs (-EFBIG when the file is much
 * larger than such a key could be). */
int secret_hex_file_read(const char *path, size_t min, size_t max, uint8_t *key, size_t *ret_len);
int secret_hex_file_read_flags(const char *path, size_t min, size_t max, secret_flags_t flags, uint8_t *key,
                               size_t *ret_len);

/* All of fd up to end of file into buf, which has room for max + 1 bytes (the extra byte tells
 * "exactly max" from "more"): again after EINTR and short reads; -EFBIG when there is more than
 * max, -errno when read(2) fails. *len counts what buf holds at every return, also on failure:
 * for a secret, what its owner wipes. */
int read_max(int fd, void *buf, size_t max, size_t *len);
/* Read a whole small file (non-secret) into a NUL-terminated heap string. */
int file_read_all(const char *path, size_t max, char **ret, size_t *ret_len);
/* Write all of data, again after EINTR and short writes; -EIO when write() makes no progress. */
int write_all(int fd, const void *data, size_t len);
/* fsync a directory, so that the names just created, renamed or removed in it survive a power
 * cut (fsync of a file makes its data durable, not its directory entry). */
int fsync_dir(const char *dir);
/* fsync_dir() of the directory holding path ("." for a bare name). */
int fsync_parent_dir(const char *path);
/* Write data atomically: temp file in the same directory, fsync, rename, fsync dir. */
int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode);
/* The same in two steps, for a caller that changes something else in between and wants the
 * likely failures (ENOSPC, EROFS, EIO) before it does: file_stage() writes and fsyncs the
 * temporary file "<path>.tmp.XXXXXX", file_staged_commit() renames it over path and fsyncs the
 * directory, file_staged_done() (a cleanup; also after a failed commit) removes a temporary
 * that was not renamed. Nothing is left behind when file_stage() fails. */
typedef struct file_staged {
        char tmp[PATH_MAX]; /* "" once renamed or removed */
        char path[PATH_MAX];
} file_staged_t;
int file_stage(const char *path, const void *data, size_t len, unsigned mode, file_staged_t *ret);
int file_staged_commit(file_staged_t *f);
void file_staged_done(file_staged_t *f);
/* mkdir of path alone, with exactly mode whatever the umask: 1 when made here, 0 when a
 * directory (or a symlink to one) is there already, -ENOTDIR when something else is; a
 * negative errno otherwise, and then nothing made. */
int mkdir_exact(const char *path, mode_t mode);
/* mkdir -p of the directories above path's last component, each new one with exactly mode,
 * whatever the umask (those already there are left as they are); the last component itself is
 * not made. */
int mkdir_parents(const char *path, mode_t mode);
/* mkdir -p of path: the new parents 0755, path itself (when new) exactly mode; -ENOTDIR when
 * something else is there. */
int mkdir_p(const char *path, mode_t mode);
/* "dir/name" into out; -ENAMETOOLONG when it does not fit in PATH_MAX. */
int path_join(const char *dir, const char *name, char out[PATH_MAX]);

/* SPDX-License-Identifier: MIT */
#pragma once
/* The uid the keys (keys/keyring.h) were filed for, recorded in the agent's state directory: a
 * restart with another [consumer] user must take them from the previous one, and nothing else
 * tells which persistent keyring holds them. One line, the decimal uid; a reboot keeps the file
 * and loses the keyring (kernel memory), so the record says where keys may be, not that they are. */
#include <stddef.h>
#include <sys/types.h>

#define KEYRING_OWNER_NAME "keyring.owner"

/* 0 with *ret_uid, and the user's name in ret_name (size bytes; "uid N" when no user has it;
 * ret_name NULL: no name service lookup);
 * -ENOENT when there is no record, -EBADMSG when it is not a uid (empty, garbage, 0 or -1),
 * another -errno when it cannot be read. ret_name is not touched on failure. */
int keyring_owner_read(const char *dir, uid_t *ret_uid, char *ret_name, size_t size);
/* Atomically (file_write_atomic(), mode 0600): the old record or the new one, never a part. */
int keyring_owner_write(const char *dir, uid_t uid);

/* SPDX-License-Identifier: MIT */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "keys/keyring-owner.h"
#include "keys/keyring.h"
#include "util/util.h"

#define OWNER_MAX 16u /* "4294967294\n" with room to tell garbage from a uid */

int keyring_owner_read(const char *dir, uid_t *ret_uid, char *ret_name, size_t size) {
        char path[PATH_MAX];
        int r = path_join(dir, KEYRING_OWNER_NAME, path);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = NULL;
        size_t len;
        r = file_read_all(path, OWNER_MAX, &text, &len);
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        unsigned long long v;
        if (len < 2 || text[len - 1] != '\n' || strlen(text) != len)
                return -EBADMSG;
        text[len - 1] = 0;
        if (parse_uint(text, (uid_t) -2, &v) < 0 || v == 0)
                return -EBADMSG;
        if (ret_name && user_name((uid_t) v, ret_name, size) < 0)
                snprintf(ret_name, size, "uid %llu", v);
        *ret_uid = (uid_t) v;
        return 0;
}

int keyring_owner_write(const char *dir, uid_t uid) {
        char path[PATH_MAX], text[OWNER_MAX];
        int r = path_join(dir, KEYRING_OWNER_NAME, path);
        if (r < 0)
                return r;
        int len = snprintf(text, sizeof text, "%u\n", (unsigned) uid);
        return file_write_atomic(path, text, (size_t) len, 0600);
}

/* SPDX-License-Identifier: MIT */
/* Every validator of proto/ids.h on arbitrary bytes. The first byte picks nothing: all kinds see
 * the input (up to its first NUL). Whatever a validator accepts must hold the properties every
 * caller builds on (no space, control, non-ASCII or "..", bounded length), and a refusal must
 * name a rule. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef int (*check_t)(const char *s, const char **ret_why);

static void check(check_t f, const char *s, size_t max, bool slash_ok, bool dotdot_ok) {
        const char *why = NULL;
        int r = f(s, &why);
        if (r < 0) {
                if (!why || !*why || (r != -EINVAL && r != -E2BIG))
                        abort();
                return;
        }
        if (r != 0 || why)
                abort();
        size_t n = strlen(s);
        if (n == 0 || n > max)
                abort();
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || (unsigned char) s[i] >= 0x7f)
                        abort();
        if (!slash_ok && strchr(s, '/'))
                abort();
        if (!dotdot_ok && (strstr(s, "/../") || strstr(s, "/./") ||
                           (n >= 3 && strcmp(s + n - 3, "/..") == 0) || (n >= 2 && strcmp(s + n - 2, "/.") == 0)))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = malloc(size + 1);
        if (!s)
                return 0;
        memcpy(s, data, size);
        s[size] = 0;
        check(ids_check_cse_id, s, IDS_CSE_ID_MAX, true, false);
        check(ids_check_target_id, s, IDS_TARGET_ID_MAX, true, false);
        check(ids_check_node_id, s, IDS_NODE_ID_MAX, false, false);
        check(ids_check_host, s, IDS_HOST_MAX, false, false);
        check(ids_check_ke_id, s, IDS_KE_ID_MAX, false, false);
        check(ids_check_kpsa_id, s, IDS_KPSA_ID_MAX, false, false);
        check(ids_check_cse_base, s, IDS_CSE_BASE_MAX, true, false);
        /* a CSE-ID has exactly one '/', at the start */
        if (ids_check_cse_id(s, NULL) == 0 && (s[0] != '/' || strchr(s + 1, '/')))
                abort();
        /* KeIDs are lower case: they are compared byte for byte */
        if (ids_check_ke_id(s, NULL) == 0 || ids_check_kpsa_id(s, NULL) == 0)
                for (const char *p = s; *p; p++)
                        if (*p >= 'A' && *p <= 'Z')
                                abort();
        /* a KeID is a kpsaID without .<n> */
        if (ids_check_ke_id(s, NULL) == 0 && ids_check_kpsa_id(s, NULL) != 0)
                abort();
        free(s);
        return 0;
}

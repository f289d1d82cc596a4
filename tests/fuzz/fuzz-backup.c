/* SPDX-License-Identifier: MIT */
/* The readers of a backup directory (mef/backup.h) on arbitrary bytes: the manifest, a line of
 * store.jsonl, the wrapped master key. A manifest that parses formats back to one that parses
 * to the same; nothing crashes or leaks. The first byte picks the reader. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mef/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        const char *text = (const char *) data + 1;
        size_t n = size - 1;
        switch (data[0] % 3) {
        case 0: {
                backup_manifest_t m, again;
                if (backup_manifest_parse(text, n, &m) == 0) {
                        char *t = NULL;
                        if (backup_manifest_format(&m, &t) < 0 || backup_manifest_parse(t, strlen(t), &again) < 0 ||
                            memcmp(&m, &again, sizeof m) != 0)
                                abort();
                        free(t);
                }
                break;
        }
        case 1: {
                const char *table;
                json_t *row, *root;
                if (backup_line_parse(text, n, &table, &row, &root) == 0) {
                        if (!table || !json_is_object(row))
                                abort();
                        json_decref(root);
                }
                break;
        }
        default: {
                uint8_t key[STORE_MASTER_KEY_LEN];
                int r = backup_key_unwrap(text, n, "fuzzing passphrase", 18, key);
                if (r != 0 && r != -EBADMSG && r != -EKEYREJECTED)
                        abort();
                break;
        }
        }
        return 0;
}

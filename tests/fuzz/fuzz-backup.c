/* SPDX-License-Identifier: MIT */
/* The readers of a backup directory (mef/backup.h) on arbitrary bytes: the manifest, a line of
 * store.jsonl, the wrapped master key. A manifest that parses formats back to one that parses
 * to the same; nothing crashes or leaks. The first byte picks the reader (0xf0 and above: the
 * key wrapped for a recipient, opened with a fixed P-256 identity). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mef/backup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* made with `openssl ecparam -name prime256v1 -genkey -noout` for this target only */
static const char identity[] = "-----BEGIN EC PRIVATE KEY-----\n"
                               "MHcCAQEEIDe2nwGNGYY/EAB6zvVbkh7gOnqoyYKMFAX3+IAIVsJ9oAoGCCqGSM49\n"
                               "AwEHoUQDQgAECvscNwnWBroise+5DLnNAWTzSuLJC+A3rHHmO1RdjMvz/knMG/nS\n"
                               "/1nSSUt6utj+ouPoA6swbwKwzDmm3yrhUg==\n"
                               "-----END EC PRIVATE KEY-----\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        const char *text = (const char *) data + 1;
        size_t n = size - 1;
        switch (data[0] >= 0xf0 ? 3 : data[0] % 3) {
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
        case 2: {
                uint8_t key[STORE_MASTER_KEY_LEN];
                int r = backup_key_unwrap(text, n, "fuzzing passphrase", 18, key);
                if (r != 0 && r != -EBADMSG && r != -EKEYREJECTED)
                        abort();
                break;
        }
        default: {
                uint8_t key[STORE_MASTER_KEY_LEN];
                char fpr[65];
                int kind = backup_key_kind(text, n, fpr);
                int r = backup_key_unwrap_identity(text, n, identity, sizeof identity - 1, key);
                if (r != 0 && r != -EBADMSG && r != -EKEYREJECTED)
                        abort();
                if ((r == 0 || r == -EKEYREJECTED) && kind != BACKUP_WRAP_RECIPIENT)
                        abort(); /* the two readers agree on what a recipient wrap is */
                break;
        }
        }
        return 0;
}

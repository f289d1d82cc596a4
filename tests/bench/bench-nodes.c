/* SPDX-License-Identifier: MIT */
/* Bulk node creation for the fleet benchmarks: N psk nodes named node-I (KpmID kpm-I, target
 * /in-cse, a random 32-byte Kpm) added through the store API in transactions of 1000, much
 * faster than N runs of msce-mef node add. Writes msce-loadgen's gateway file (owner-only).
 *   bench-nodes DB MASTER_KEY N GATEWAYS_FILE */
#include <fcntl.h>

#include "mef/store.h"
#include "util/util.h"

#define BATCH 1000u

int main(int argc, char **argv) {
        unsigned long long n;
        if (argc != 5 || parse_uint(argv[3], 10000000, &n) < 0 || n == 0) {
                fprintf(stderr, "usage: %s DB MASTER_KEY N GATEWAYS_FILE\n", argv[0]);
                return 2;
        }
        mef_store_t *s = NULL;
        int r = store_open(argv[1], argv[2], true, &s);
        if (r < 0) {
                fprintf(stderr, "store %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        int fd = open(argv[4], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        _cleanup_fclose_ FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
        if (!f) {
                fprintf(stderr, "%s: %m\n", argv[4]);
                store_close(s);
                return 1;
        }
        for (unsigned long long i = 1; i <= n && r >= 0; i++) {
                store_node_t node = { .n_targets = 1, .poll = 86400, .lifetime = 31536000, .state = NODE_ACTIVE };
                uint8_t kpm[32];
                char hex[2 * sizeof kpm + 1];
                snprintf(node.node_id, sizeof node.node_id, "node-%llu", i);
                snprintf(node.kpm_id, sizeof node.kpm_id, "kpm-%llu", i);
                snprintf(node.cse_id, sizeof node.cse_id, "/mn-cse-%llu", i);
                snprintf(node.cse_base, sizeof node.cse_base, "https://in.example.net:8443/~/in-cse/in-name");
                snprintf(node.targets[0], sizeof node.targets[0], "/in-cse");
                if ((i - 1) % BATCH == 0)
                        r = store_begin(s);
                if (r >= 0)
                        r = random_bytes(kpm, sizeof kpm);
                if (r >= 0)
                        r = store_node_add(s, &node, kpm, sizeof kpm);
                if (r >= 0 && (i % BATCH == 0 || i == n))
                        r = store_commit(s);
                for (size_t k = 0; k < sizeof kpm; k++)
                        snprintf(hex + 2 * k, 3, "%02x", kpm[k]);
                if (r >= 0)
                        fprintf(f, "node-%llu kpm-%llu %s\n", i, i, hex);
                erase(kpm, sizeof kpm);
                erase(hex, sizeof hex);
        }
        if (r < 0)
                fprintf(stderr, "node add: %s\n", strerror(-r));
        store_close(s);
        return r < 0 || fflush(f) != 0 ? 1 : 0;
}

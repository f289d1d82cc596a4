/* SPDX-License-Identifier: MIT */
/* Restore-to-keys-loaded, our side of bench-restore.sh: open the sealed profile and put the
 * Long Term Key into a fresh session keyring, as the agent's RESTORE state does.
 *
 *   bench-restore store DIR host|tpm2 [TCTI]   seal a profile with a random key into DIR
 *   bench-restore load DIR TCTI N              N restores in this process; prints
 *                                              "median_us P10_us P90_us"
 *   bench-restore once DIR TCTI                one restore (timed from outside, process included)
 *
 * TCTI "" means the default. Key bytes are never printed. */
#include <keyutils.h>
#include <stdio.h>
#include <stdlib.h>

#include "keys/seal.h"
#include "util/util.h"

#define KEY_DESC "msce:ltk"

static int restore(const seal_opts_t *o, key_serial_t keyring, key_serial_t *ret_key) {
        _cleanup_(stored_profile_wipe) stored_profile_t p;
        int r = seal_load(o, &p, NULL);
        if (r < 0)
                return r;
        key_serial_t k = add_key("user", KEY_DESC, p.ltk, p.ltk_len, keyring);
        if (k < 0)
                return negative_errno();
        *ret_key = k;
        return 0;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static int do_store(const char *dir, const char *method, const char *tcti) {
        seal_opts_t o = { .state_dir = dir, .method = seal_method_from_string(method), .tcti = tcti };
        if (o.method != SEAL_METHOD_HOST && o.method != SEAL_METHOD_TPM2) {
                fprintf(stderr, "method must be host or tpm2\n");
                return 2;
        }
        _cleanup_(stored_profile_wipe) stored_profile_t p = {
                .node_id = "urn:dev:ops:bench",
                .mef_uri = "https://mef.example.net/msce",
                .cse_id = "/mn-cse-bench",
                .cse_base = "https://in.example.net/~/in-cse",
                .ke_id = "00112233445566778899aabbccddeeff@mef.example.net",
                .exp = "20991231T000000",
                .poll = 3600,
                .ltk_len = 32,
        };
        int r = random_bytes(p.ltk, p.ltk_len);
        if (r == 0)
                r = seal_store(&o, &p, NULL);
        if (r < 0) {
                fprintf(stderr, "seal_store: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 4 && streq(argv[1], "store"))
                return do_store(argv[2], argv[3], argc > 4 ? argv[4] : NULL);
        if (argc < 4 || (!streq(argv[1], "load") && !streq(argv[1], "once"))) {
                fprintf(stderr, "usage: %s store DIR host|tpm2 [TCTI] | load DIR TCTI N | once DIR TCTI\n", argv[0]);
                return 2;
        }
        seal_opts_t o = { .state_dir = argv[2], .method = SEAL_METHOD_AUTO, .tcti = argv[3] };
        unsigned long long n = 1;
        if (streq(argv[1], "load") && (argc < 5 || parse_uint(argv[4], 100000, &n) < 0 || n == 0)) {
                fprintf(stderr, "N must be 1..100000\n");
                return 2;
        }

        key_serial_t keyring = keyctl_join_session_keyring(NULL);
        if (keyring < 0) {
                perror("keyctl_join_session_keyring");
                return 1;
        }
        _cleanup_free_ uint64_t *t = calloc(n, sizeof *t);
        if (!t)
                return 1;
        for (unsigned long long i = 0; i < n; i++) {
                key_serial_t k;
                uint64_t t0 = now_usec();
                int r = restore(&o, keyring, &k);
                t[i] = now_usec() - t0;
                if (r < 0) {
                        fprintf(stderr, "restore: %s\n", strerror(-r));
                        return 1;
                }
                /* A fresh start for the next round: the key is not found by the next add_key. */
                (void) keyctl_unlink(k, keyring);
        }
        if (streq(argv[1], "load")) {
                qsort(t, n, sizeof *t, cmp_u64);
                printf("%llu %llu %llu\n", (unsigned long long) t[n / 2], (unsigned long long) t[n / 10],
                       (unsigned long long) t[n * 9 / 10]);
        }
        return 0;
}

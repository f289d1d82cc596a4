/* SPDX-License-Identifier: MIT */
/* The sealed profile against swtpm instances (one per test). */
#include "tests/integration/seal-fixture.h"

/* ---- swtpm ---- */

Test(seal, tpm2_round_trip) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);

        /* the hw layer alone */
        uint8_t secret[32], out[64];
        _cleanup_free_ uint8_t *blob = NULL;
        size_t blob_len = 0, n = 0;
        cr_assert_eq(random_bytes(secret, sizeof secret), 0);
        cr_assert_eq(tpm2_probe(tpm_a.tcti), 0);
        cr_assert_eq(tpm2_seal(tpm_a.tcti, NULL, secret, sizeof secret, &blob, &blob_len), 0);
        cr_assert_null(memmem(blob, blob_len, secret, sizeof secret));
        cr_assert_eq(tpm2_unseal(tpm_a.tcti, blob, blob_len, out, sizeof out, &n), 0);
        cr_assert_eq(n, sizeof secret);
        cr_assert_arr_eq(out, secret, sizeof secret);
        cr_assert_eq(tpm2_unseal(tpm_a.tcti, blob, blob_len, out, 16, &n), -ENOBUFS);
        cr_assert_eq(tpm2_seal(tpm_a.tcti, "sha256:99", secret, sizeof secret, &(uint8_t *) { NULL }, &n), -EINVAL);
        cr_assert_eq(tpm2_seal(tpm_a.tcti, "md5:1", secret, sizeof secret, &(uint8_t *) { NULL }, &n), -EINVAL);
        cr_assert_eq(tpm2_seal(tpm_a.tcti, "sha256:1,", secret, sizeof secret, &(uint8_t *) { NULL }, &n), -EINVAL);
        cr_assert_eq(tpm2_seal(tpm_a.tcti, "sha256:1+sha256:2", secret, sizeof secret, &(uint8_t *) { NULL }, &n),
                     -EINVAL);
        cr_assert_eq(tpm2_unseal(tpm_a.tcti, blob, blob_len - 1, out, sizeof out, &n), -EBADMSG);

        /* the envelope */
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = tpm_a.tcti };
        stored_profile_t p, q;
        seal_method_t m = SEAL_METHOD_AUTO;
        fill(&p, "/mn-cse-tpm", 4);
        round_trip(&o, false, &p, SEAL_METHOD_TPM2);
        cr_assert_eq(count_entries(state_dir), 1, "tpm2 needs no host.key");
        cr_assert_not(dir_contains(state_dir, p.ltk, p.ltk_len));
        /* the envelope names its backend: a host-configured load still opens it */
        o.method = SEAL_METHOD_HOST;
        cr_assert_eq(seal_load(&o, &q, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_TPM2);
}

Test(seal, tpm2_other_tpm_refuses) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);
        swtpm_start(&tpm_b);
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = tpm_a.tcti };
        stored_profile_t p, q;
        fill(&p, "/mn-cse-tpm", 1);
        cr_assert_eq(seal_store(&o, &p, NULL), 0);

        o.tcti = tpm_b.tcti;
        int r = seal_load(&o, &q, NULL);
        cr_assert(r == -EKEYREJECTED || r == -EBADMSG, "load under another TPM: %d", r);
        o.tcti = tpm_a.tcti;
        cr_assert_eq(seal_load(&o, &q, NULL), 0);
        cr_assert(same_profile(&p, &q));
}

Test(seal, tpm2_pcr_binding) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = tpm_a.tcti, .pcrs = "sha256:16" };
        stored_profile_t p, q;
        fill(&p, "/mn-cse-pcr", 1);
        cr_assert_eq(seal_store(&o, &p, NULL), 0);
        cr_assert_eq(seal_load(&o, &q, NULL), 0);
        cr_assert(same_profile(&p, &q));

        /* the unbound blob in the same TPM is not affected by the extend */
        uint8_t secret[32] = { 1, 2, 3 }, out[32];
        _cleanup_free_ uint8_t *unbound = NULL;
        size_t ul, n;
        cr_assert_eq(tpm2_seal(tpm_a.tcti, NULL, secret, sizeof secret, &unbound, &ul), 0);

        char arg[128];
        snprintf(arg, sizeof arg, "16:sha256=%064d", 1);
        char *argv[] = { "tpm2_pcrextend", "-T", tpm_a.tcti, arg, NULL };
        cr_assert_eq(run(argv, NULL, 0), 0, "tpm2_pcrextend failed");

        cr_assert_eq(seal_load(&o, &q, NULL), -EKEYREJECTED);
        cr_assert_eq(tpm2_unseal(tpm_a.tcti, unbound, ul, out, sizeof out, &n), 0);
        cr_assert_arr_eq(out, secret, sizeof secret);
}

Test(seal, auto_picks_backend) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);
        stored_profile_t p, q;
        seal_method_t m;
        fill(&p, "/mn-cse-auto", 0);

        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_AUTO, .tcti = tpm_a.tcti };
        cr_assert_eq(seal_store(&o, &p, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_TPM2);
        cr_assert_eq(seal_load(&o, &q, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_TPM2);

        /* a closed port: nothing answers */
        char closed[64];
        int port = closed_port_pair();
        snprintf(closed, sizeof closed, "swtpm:host=127.0.0.1,port=%d", port);
        cr_assert_eq(tpm2_probe(closed), -ENODEV);
        o.tcti = closed;
        cr_assert_eq(seal_load(&o, &q, NULL), -ENODEV, "a tpm2 envelope without its TPM");
        o.method = SEAL_METHOD_TPM2;
        cr_assert_eq(seal_store(&o, &p, NULL), -ENODEV);
        o.method = SEAL_METHOD_AUTO;
        cr_assert_eq(seal_store(&o, &p, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_HOST);
        cr_assert_eq(seal_load(&o, &q, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_HOST);
        cr_assert(same_profile(&p, &q));
}

Test(seal, tpm2_corrupted_blob_fails_cleanly) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = tpm_a.tcti, .pcrs = "sha256:0" };
        stored_profile_t p, q;
        size_t len;
        _cleanup_free_ char *orig = sealed_envelope(&o, false, &p, "/mn-cse-tpm", 1, &len);
        _cleanup_free_ char *buf = malloc(len);
        size_t blob_end = 28 + ((size_t) (uint8_t) orig[8] << 24 | (size_t) (uint8_t) orig[9] << 16 |
                                (size_t) (uint8_t) orig[10] << 8 | (uint8_t) orig[11]);
        cr_assert_lt(blob_end, len);
        unsigned rejected = 0, bad = 0;
        for (size_t i = 28; i < blob_end; i += 3) {
                memcpy(buf, orig, len);
                buf[i] ^= 0x41;
                envelope_write(buf, len);
                int r = seal_load(&o, &q, NULL);
                cr_assert(r == -EKEYREJECTED || r == -EBADMSG, "flipped blob byte %zu: %d", i, r);
                rejected += r == -EKEYREJECTED;
                bad += r == -EBADMSG;
        }
        cr_assert_gt(rejected, 0, "the TPM saw some altered blobs");
        cr_assert_gt(bad, 0, "the parser caught some altered blobs");
        envelope_write(orig, len);
        cr_assert_eq(seal_load(&o, &q, NULL), 0);
}

Test(seal, tpm2_no_handle_leaks) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);
        stored_profile_t p, q;
        fill(&p, "/mn-cse-leak", 1);
        for (int i = 0; i < 20; i++) {
                seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = tpm_a.tcti,
                                  .pcrs = i % 2 ? "sha256:0,7" : NULL };
                cr_assert_eq(seal_store(&o, &p, NULL), 0, "cycle %d", i);
                cr_assert_eq(seal_load(&o, &q, NULL), 0, "cycle %d", i);
        }
        /* failing paths flush too */
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = tpm_a.tcti };
        char arg[128];
        snprintf(arg, sizeof arg, "7:sha256=%064d", 2);
        char *ext[] = { "tpm2_pcrextend", "-T", tpm_a.tcti, arg, NULL };
        cr_assert_eq(run(ext, NULL, 0), 0);
        for (int i = 0; i < 5; i++)
                cr_assert_eq(seal_load(&o, &q, NULL), -EKEYREJECTED); /* last store was PCR-bound */

        char out[4096];
        char *transient[] = { "tpm2_getcap", "-T", tpm_a.tcti, "handles-transient", NULL };
        cr_assert_eq(run(transient, out, sizeof out), 0);
        cr_assert_eq(out[strspn(out, " \n")], 0, "transient handles left: %s", out);
        char *sessions[] = { "tpm2_getcap", "-T", tpm_a.tcti, "handles-loaded-session", NULL };
        cr_assert_eq(run(sessions, out, sizeof out), 0);
        cr_assert_eq(out[strspn(out, " \n")], 0, "sessions left: %s", out);
}

Test(seal, isolated_tpm2) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = tpm_a.tcti, .pcrs = "sha256:0" };
        stored_profile_t p, q;
        fill(&p, "/mn-cse-iso-tpm", 4);
        round_trip(&o, true, &p, SEAL_METHOD_TPM2);
        cr_assert_eq(count_entries(state_dir), 1, "tpm2 needs no host.key");
        /* in-process opens the child's envelope */
        memset(&q, 0, sizeof q);
        cr_assert_eq(seal_load(&o, &q, NULL), 0);
        cr_assert(same_profile(&p, &q));

        /* altered: refused by the TPM or the parser, in the child */
        _cleanup_free_ char *orig = NULL;
        size_t len;
        envelope_read(&orig, &len);
        _cleanup_free_ char *buf = malloc(len);
        const size_t at[] = { 0, 5, 40, len - 20, len - 1 };
        for (size_t k = 0; k < ELEMENTSOF(at); k++) {
                memcpy(buf, orig, len);
                buf[at[k]] ^= 0x41;
                envelope_write(buf, len);
                memset(&q, 0x5a, sizeof q);
                int r = load_isolated(&o, &q, NULL);
                cr_assert(r == -EBADMSG || r == -EKEYREJECTED, "flipped byte %zu: %d", at[k], r);
                cr_assert_eq(((uint8_t *) &q)[0], 0x5a, "ret written on failure");
        }
        envelope_write(orig, len);
        cr_assert_eq(load_isolated(&o, &q, NULL), 0);

        /* no TPM answering */
        char closed[64];
        snprintf(closed, sizeof closed, "swtpm:host=127.0.0.1,port=%d", closed_port_pair());
        o.tcti = closed;
        cr_assert_eq(load_isolated(&o, &q, NULL), -ENODEV);
        cr_assert_eq(store_isolated(&o, &p, NULL), -ENODEV);
}

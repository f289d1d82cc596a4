/* SPDX-License-Identifier: MIT */
/* The sealed profile on swtpm instances (one per test, on AF_UNIX sockets in its own directory):
 * the tpm2 backend, auto, PCR binding, handles, direct TCTIs, the words of a failure. The
 * fixture and helpers: seal-fixture.c; the host backend and the files: test-seal.c. */
#include "tests/integration/seal-fixture.h"
#include "agent/custody.h"
#include "ctl/check.h"
#include "hw/tpm2-names.h"

/* ---- swtpm ---- */

/* swtpm A started (the test skipped without swtpm); the tpm2 backend's options on it, with pcrs
 * (NULL: none). */
static seal_opts_t tpm2_opts(const char *pcrs) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);
        return (seal_opts_t) { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = tpm_a.tcti, .pcrs = pcrs };
}

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
        seal_opts_t o = tpm2_opts(NULL);
        swtpm_start(&tpm_b);
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
        seal_opts_t o = tpm2_opts("sha256:16");
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

/* pcrs naming a bank the TPM has not allocated (here sha1, dropped as many firmwares do): PolicyPCR
 * skips such PCRs, so sealing succeeded with a policy bound to nothing, unsealed whatever was
 * measured. It is refused now, and no envelope is written; an enrolment is refused first. */
Test(seal, tpm2_pcrs_of_an_inactive_bank_refused) {
        seal_opts_t o = tpm2_opts("sha1:7");
        if (!have_program("tpm2_pcrallocate") || !have_program("tpm2_startup") || !have_program("swtpm_ioctl"))
                skip("tpm2_pcrallocate, tpm2_startup or swtpm_ioctl not installed");
        char ctrl[PATH_MAX];
        path_in(tpm_a.dir, "tpm.ctrl", ctrl);
        char *alloc[] = { "tpm2_pcrallocate", "-T", tpm_a.tcti, "sha1:none+sha256:all", NULL };
        char *reset[] = { "swtpm_ioctl", "--unix", ctrl, "-i", NULL };
        char *startup[] = { "tpm2_startup", "-T", tpm_a.tcti, "-c", NULL };
        cr_assert_eq(run(alloc, NULL, 0), 0);
        cr_assert_eq(run(reset, NULL, 0), 0); /* the allocation takes effect at the next startup */
        cr_assert_eq(run(startup, NULL, 0), 0);

        uint8_t secret[32] = { 1, 2, 3 };
        size_t n;
        cr_assert_eq(tpm2_seal(tpm_a.tcti, "sha1:7", secret, sizeof secret, &(uint8_t *) { NULL }, &n), -ENXIO);
        cr_assert_eq(tpm2_seal(tpm_a.tcti, "sha256:7+sha1:7", secret, sizeof secret, &(uint8_t *) { NULL }, &n), -ENXIO);
        stored_profile_t p;
        fill(&p, "/mn-cse-bank", 1);
        cr_assert_eq(seal_store(&o, &p, NULL), -ENXIO);
        cr_assert_eq(count_entries(state_dir), 0);
        o.pcrs = "sha256:7";
        cr_assert_eq(seal_store(&o, &p, NULL), 0);

        /* the same before an enrolment, so that none is made whose profile cannot be sealed */
        int pcrs = 0;
        cr_assert_eq(tpm2_probe_pcrs(tpm_a.tcti, "sha1:7", &pcrs), 0);
        cr_assert_eq(pcrs, -ENXIO);
        pcrs = 1;
        cr_assert_eq(tpm2_probe_pcrs(tpm_a.tcti, "sha256:0,7", &pcrs), 0);
        cr_assert_eq(pcrs, 0);
        pcrs = 1;
        /* nothing to check (and nothing asked: tests/unit/test-tpm2-device.c) */
        cr_assert_eq(tpm2_probe_pcrs(tpm_a.tcti, "", &pcrs), 0);
        cr_assert_eq(pcrs, 0);
        pcrs = 1;
        cr_assert_eq(tpm2_probe_pcrs("device:/nonexistent/tpmrm0", "", &pcrs), -ENODEV);
        cr_assert_eq(pcrs, 1, "untouched when no TPM answers");
        char text[512], err[512];
        snprintf(text, sizeof text,
                 "[node]\nid = urn:dev:ops:gw-pcr\n[mef]\nuri = https://127.0.0.1:1\npsk_identity = kpm-pcr\n"
                 "psk_file = /nonexistent/kpm.hex\n[seal]\nbackend = tpm2\ntcti = %s\npcrs = sha1:7\n",
                 tpm_a.tcti);
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        cr_assert_eq(agent_config_parse_buffer("t.conf", text, strlen(text), AGENT_CONFIG_NO_SECRETS, &cfg, err, sizeof err),
                     0, "%s", err);
        exchange_info_t info;
        cr_assert_eq(enrol_run(&cfg, NULL, &p, &info), -ENXIO, "%s", info.failure.reason);
        cr_assert_eq(info.failure.outcome, OUTCOME_CONFIG);
        cr_assert_not_null(strstr(info.failure.reason, "[seal] pcrs = sha1:7"), "%s", info.failure.reason);
}

Test(seal, auto_picks_backend) {
        skip_without_swtpm();
        swtpm_start(&tpm_a);
        stored_profile_t p, q;
        fill(&p, "/mn-cse-auto", 0);

        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_AUTO, .tcti = tpm_a.tcti };
        round_trip(&o, false, &p, SEAL_METHOD_TPM2);

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
        round_trip(&o, false, &p, SEAL_METHOD_HOST);
}

/* auto seals with the host key when there is no TPM, not when the TPM is there and fails: one
 * reset and not yet started (swtpm_ioctl -i: every command answers TPM_RC_INITIALIZE, as a busy
 * or failing TPM answers with its error) made the profile go to host.key for good, silently. */
Test(seal, auto_does_not_replace_a_failing_tpm) {
        skip_without_swtpm();
        if (!have_program("tpm2_startup") || !have_program("swtpm_ioctl"))
                skip("tpm2_startup or swtpm_ioctl not installed");
        swtpm_start(&tpm_a);
        char ctrl[PATH_MAX];
        path_in(tpm_a.dir, "tpm.ctrl", ctrl);
        char *reset[] = { "swtpm_ioctl", "--unix", ctrl, "-i", NULL };
        cr_assert_eq(run(reset, NULL, 0), 0);
        int r = tpm2_probe(tpm_a.tcti);
        cr_assert(r < 0 && r != -ENODEV, "probe of a TPM not started: %d", r);

        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_AUTO, .tcti = tpm_a.tcti };
        stored_profile_t p;
        fill(&p, "/mn-cse-auto", 1);
        cr_assert_eq(seal_store(&o, &p, NULL), r);
        cr_assert_eq(count_entries(state_dir), 0, "nothing sealed with the host key");

        char *startup[] = { "tpm2_startup", "-T", tpm_a.tcti, "-c", NULL };
        cr_assert_eq(run(startup, NULL, 0), 0);
        round_trip(&o, false, &p, SEAL_METHOD_TPM2);
}

/* backend = tpm2 probes the TPM before an enrolment. No TPM is the configuration's fault (exit
 * 78, no restart); a TPM that is there but fails (here: reset, not started) is a retry. It was
 * a configuration error too, "no TPM answers", and the unit stopped for good. auto probes too
 * now, and does not enrol while the TPM fails. */
Test(seal, enrol_retries_a_failing_tpm) {
        skip_without_swtpm();
        if (!have_program("swtpm_ioctl"))
                skip("swtpm_ioctl not installed");
        swtpm_start(&tpm_a);
        char ctrl[PATH_MAX], text[512], err[512];
        path_in(tpm_a.dir, "tpm.ctrl", ctrl);
        char *reset[] = { "swtpm_ioctl", "--unix", ctrl, "-i", NULL };
        cr_assert_eq(run(reset, NULL, 0), 0);
        snprintf(text, sizeof text,
                 "[node]\nid = urn:dev:ops:gw-tpm\n[mef]\nuri = https://127.0.0.1:1\npsk_identity = kpm-tpm\n"
                 "psk_file = /nonexistent/kpm.hex\n[seal]\nbackend = tpm2\ntcti = %s\nstate_dir = %s\n",
                 tpm_a.tcti, state_dir);
        _cleanup_(agent_config_done) agent_config_t cfg = {};
        cr_assert_eq(agent_config_parse_buffer("t.conf", text, strlen(text), AGENT_CONFIG_NO_SECRETS, &cfg, err, sizeof err),
                     0, "%s", err);
        stored_profile_t p;
        exchange_info_t info;
        int r = enrol_run(&cfg, NULL, &p, &info);
        cr_assert(r < 0 && r != -ENODEV, "enrol_run: %d", r);
        cr_assert_eq(info.failure.outcome, OUTCOME_TRANSIENT, "%s: %s", outcome_to_string(info.failure.outcome),
                     info.failure.reason);
        cr_assert_not_null(strstr(info.failure.reason, "the TPM at"), "%s", info.failure.reason);

        /* auto: the same, rather than enrol and then fail to seal (seal_store() no longer falls
         * back to the host key for a TPM that fails) */
        cfg.seal_backend = SEAL_AUTO;
        cr_assert_lt(enrol_run(&cfg, NULL, &p, &info), 0);
        cr_assert_eq(info.failure.outcome, OUTCOME_TRANSIENT, "%s", info.failure.reason);
        cr_assert_not_null(strstr(info.failure.reason, "the TPM at"), "%s", info.failure.reason);
}

Test(seal, tpm2_corrupted_blob_fails_cleanly) {
        seal_opts_t o = tpm2_opts("sha256:0");
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
        seal_opts_t o = tpm2_opts("sha256:0");
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

/* Without a resource manager (swtpm's socket TCTI, a /dev/tpmN node), what a process loaded
 * stays in the TPM after it ends: a sealing child killed on its timeout left its objects there,
 * and once the 3 object slots were taken every seal failed with TPM_RC_OBJECT_MEMORY. tpm2-tools
 * leave their objects the same way: fill the TPM, then seal. Sessions too: a saved one
 * (tpm2_startauthsession saves its context) and a loaded one (a raw StartAuthSession). */
Test(seal, tpm2_direct_tcti_flushes_leftovers) {
        seal_opts_t o = tpm2_opts(NULL);
        cr_assert_not(tpm2_tcti_is_resource_manager(o.tcti));
        if (!have_program("tpm2_createprimary") || !have_program("tpm2_startauthsession") || !have_program("tpm2_send"))
                skip("tpm2_createprimary, tpm2_startauthsession or tpm2_send not installed");
        unsigned made = 0;
        bool full = false;
        for (unsigned i = 0; i < 16 && !full; i++) {
                char ctx[PATH_MAX];
                snprintf(ctx, sizeof ctx, "%s/left%u.ctx", tpm_a.dir, i);
                char *argv[] = { "tpm2_createprimary", "-T", tpm_a.tcti, "-C", "o", "-c", ctx, NULL };
                if (run(argv, NULL, 0) == 0)
                        made++;
                else
                        full = true;
        }
        cr_assert(made > 0 && full, "the TPM takes %u primaries and is %sfull", made, full ? "" : "not ");
        char session[PATH_MAX];
        snprintf(session, sizeof session, "%s/left.session", tpm_a.dir);
        char *start[] = { "tpm2_startauthsession", "-T", tpm_a.tcti, "-S", session, NULL };
        cr_assert_eq(run(start, NULL, 0), 0);
        /* a session left loaded, as a process killed before it flushed or saved one leaves it */
        static const uint8_t raw[43] = {
                0x80, 0x01, 0, 0, 0, 43, 0, 0, 0x01, 0x76, /* TPM_ST_NO_SESSIONS, size, StartAuthSession */
                0x40, 0, 0, 0x07, 0x40, 0, 0, 0x07,        /* tpmKey, bind: TPM_RH_NULL */
                0, 16, [36] = 0, 0,                        /* nonceCaller: 16 zero bytes; no salt */
                0x00, 0x00, 0x10, 0x00, 0x0b,              /* TPM_SE_HMAC, TPM_ALG_NULL, TPM_ALG_SHA256 */
        };
        char cmd[PATH_MAX];
        snprintf(cmd, sizeof cmd, "%s/start-session.cmd", tpm_a.dir);
        _cleanup_close_ int fd = open(cmd, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, raw, sizeof raw), (ssize_t) sizeof raw);
        char *send[] = { "tpm2_send", "-T", tpm_a.tcti, cmd, NULL };
        char out[512];
        cr_assert_eq(run(send, out, sizeof out), 0);
        char *loaded[] = { "tpm2_getcap", "-T", tpm_a.tcti, "handles-loaded-session", NULL };
        cr_assert_eq(run(loaded, out, sizeof out), 0);
        cr_assert(strncmp(out, "- 0x2", 5) == 0 && strchr(out, '\n') == out + strlen(out) - 1,
                  "one session left loaded: %s", out);

        /* as the agent does it, in a child */
        stored_profile_t p, q;
        fill(&p, "/mn-cse-full", 1);
        round_trip(&o, true, &p, SEAL_METHOD_TPM2);

        /* nothing left behind: neither the leftovers nor the seal's own */
        static const char *const kinds[] = { "handles-transient", "handles-loaded-session", "handles-saved-session" };
        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                char *getcap[] = { "tpm2_getcap", "-T", tpm_a.tcti, (char *) kinds[i], NULL };
                cr_assert_eq(run(getcap, out, sizeof out), 0);
                cr_assert_str_eq(out, "", "%s: %s", kinds[i], out);
        }
        cr_assert_eq(load_isolated(&o, &q, NULL), 0);
        cr_assert(same_profile(&p, &q));
}

/* What the agent says when sealing fails, as custody words the sealing child's result. */
static void sealing_failure(const seal_opts_t *o, bool store, stored_profile_t *p, failure_t *ret) {
        agent_config_t cfg = { .path = (char *) "agent.conf", .state_dir = (char *) o->state_dir,
                               .tcti = (char *) o->tcti, .seal_backend = SEAL_TPM2 };
        char err[256] = "";
        custody_info_t ci;
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof path, "%s/profile.sealed", o->state_dir);
        ino_t envelope = stat(path, &st) == 0 ? st.st_ino : 0; /* as custody_store_begin() gives it */
        int r = sealing_run(o, store ? p : NULL, store ? NULL : p, NULL, err, sizeof err);
        cr_assert_lt(r, 0, "the %s did not fail", store ? "seal" : "unseal");
        cr_assert_eq(store ? custody_store_finish(&cfg, r, err, envelope, p, _SEAL_METHOD_INVALID, NULL, &ci)
                           : custody_restore_finish(&cfg, r, err, p, _SEAL_METHOD_INVALID, NULL, &ci),
                     r);
        *ret = ci.failure;
}

/* tpm2_opts(NULL), for a test that needs owner_password_set() */
static seal_opts_t tpm2_opts_changeauth(void) {
        seal_opts_t o = tpm2_opts(NULL);
        if (!have_program("tpm2_changeauth"))
                skip("tpm2_changeauth not installed");
        return o;
}

/* swtpm A's owner hierarchy gets a password, read from a file (not in argv): the storage primary
 * cannot be made any more, so seal and unseal fail with a TPM_RC_ code. */
static void owner_password_set(void) {
        char pw[PATH_MAX], auth[PATH_MAX + 8];
        path_in(tpm_a.dir, "owner.pw", pw);
        cr_assert_eq(file_write_atomic(pw, "not-empty", 9, 0600), 0);
        snprintf(auth, sizeof auth, "file:%s", pw);
        char *argv[] = { "tpm2_changeauth", "-T", tpm_a.tcti, "-c", "owner", auth, NULL };
        cr_assert_eq(run(argv, NULL, 0), 0, "tpm2_changeauth failed");
}

/* A TPM that refuses (here its owner hierarchy has a password, so the storage primary cannot be
 * made) was worded as a disk failure: "cannot write the sealed profile in DIR: Input/output
 * error". It names the TPM and its response code now; a file that cannot be written, the file. */
Test(seal, tpm2_failure_names_the_tpm_a_file_failure_the_file) {
        seal_opts_t o = tpm2_opts_changeauth();
        stored_profile_t p;
        fill(&p, "/mn-cse-words", 1);
        char want[512];
        failure_t f;

        /* the TPM seals, the envelope cannot replace a directory */
        char env[PATH_MAX], inside[PATH_MAX];
        path_in(state_dir, SEAL_ENVELOPE_NAME, env);
        path_in(env, "x", inside);
        cr_assert_eq(mkdir(env, 0700), 0);
        cr_assert_eq(file_write_atomic(inside, "x", 1, 0600), 0);
        sealing_failure(&o, true, &p, &f);
        cr_assert_eq(f.outcome, OUTCOME_FAILED);
        snprintf(want, sizeof want, "cannot write the sealed profile in %s: ", state_dir);
        cr_assert(strncmp(f.reason, want, strlen(want)) == 0 && !strstr(f.reason, "TPM"), "%s", f.reason);
        cr_assert_eq(unlink(inside), 0);
        cr_assert_eq(rmdir(env), 0);
        cr_assert_eq(store_isolated(&o, &p, NULL), 0);

        owner_password_set();

        sealing_failure(&o, true, &p, &f);
        cr_assert_eq(f.outcome, OUTCOME_FAILED);
        snprintf(want, sizeof want, "the TPM at %s failed to seal the profile: TPM_RC_", tpm_a.tcti);
        cr_assert(strncmp(f.reason, want, strlen(want)) == 0, "%s", f.reason);
        cr_assert(strstr(f.reason, "(0x"), "%s", f.reason);

        stored_profile_t q = {};
        sealing_failure(&o, false, &q, &f);
        cr_assert_eq(f.outcome, OUTCOME_FAILED);
        snprintf(want, sizeof want, "the TPM at %s failed to unseal the profile %s/%s: TPM_RC_", tpm_a.tcti, state_dir,
                 SEAL_ENVELOPE_NAME);
        cr_assert(strncmp(f.reason, want, strlen(want)) == 0, "%s", f.reason);
}

/* mscectl check's finding for the sealed profile of o (all other checks left out), into out. */
static void check_sealed_profile(const seal_opts_t *o, char *out, size_t size) {
        static char *const others[] = { "agent-user", "config-files", "credentials", "clock", "state-dir", "runtime-dir",
                                        "preflight", "consumer", "tpm", "leds", "agent", "profile" };
        char kpm[PATH_MAX], conf[PATH_MAX], text[1024];
        path_in(tpm_a.dir, "kpm.hex", kpm);
        path_in(tpm_a.dir, "agent.conf", conf);
        static const char hex[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        cr_assert_eq(file_write_atomic(kpm, hex, sizeof hex - 1, 0600), 0);
        int n = snprintf(text, sizeof text,
                         "[node]\nid = n1\n[mef]\nuri = https://mef.example/msce\npsk_identity = k\npsk_file = %s\n"
                         "[seal]\nbackend = %s\ntcti = %s\nstate_dir = %s\n",
                         kpm, o->method == SEAL_METHOD_HOST ? "host" : "tpm2", tpm_a.tcti, o->state_dir);
        cr_assert_eq(file_write_atomic(conf, text, (size_t) n, 0600), 0);
        ctl_check_opts_t co = { .config = conf, .dont_run = (char **) others, .n_dont_run = ELEMENTSOF(others) };
        FILE *f = fmemopen(out, size, "w");
        cr_assert_not_null(f);
        (void) ctl_check_run(&co, f);
        cr_assert_eq(fclose(f), 0);
}

/* mscectl check said of a TPM that fails to unseal "sealed profile: DIR/profile.sealed does not
 * open: Input/output error", and "fix: nothing: the agent enrols again", which the agent does not
 * do: it retries with backoff (OUTCOME_FAILED). It names the TPM and its code now, and says that;
 * a profile the agent does enrol over (host.key gone) keeps "the agent enrols again", even after
 * a TPM call that left a response code behind. */
Test(seal, mscectl_check_names_the_tpm_that_fails_to_unseal) {
        seal_opts_t o = tpm2_opts_changeauth();
        stored_profile_t p;
        fill(&p, "/mn-cse-check", 1);
        cr_assert_eq(store_isolated(&o, &p, NULL), 0);
        owner_password_set();

        char out[4096], want[512];
        check_sealed_profile(&o, out, sizeof out);
        snprintf(want, sizeof want, "FAIL  sealed profile: the TPM at %s failed to unseal the profile %s/%s: TPM_RC_",
                 tpm_a.tcti, state_dir, SEAL_ENVELOPE_NAME);
        cr_assert(strstr(out, want), "%s", out);
        cr_assert(strstr(out, "fix: clear what the TPM's code names") && strstr(out, "msce-agent does not enrol again"),
                  "%s", out);
        cr_assert_null(strstr(out, "enrols again ("), "%s", out);

        /* a host envelope whose host.key is gone, after a seal the TPM refused in this process */
        uint8_t secret[32] = { 1 }, *blob = NULL;
        size_t blob_len = 0;
        cr_assert_lt(tpm2_seal(tpm_a.tcti, NULL, secret, sizeof secret, &blob, &blob_len), 0);
        cr_assert_neq(tpm2_last_rc(), 0u);
        seal_opts_t h = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        cr_assert_eq(seal_store(&h, &p, NULL), 0);
        char key[PATH_MAX];
        path_in(state_dir, SEAL_HOST_KEY_NAME, key);
        cr_assert_eq(unlink(key), 0);
        check_sealed_profile(&h, out, sizeof out);
        cr_assert(strstr(out, "WARN  sealed profile: ") && strstr(out, "its key is not available"), "%s", out);
        cr_assert(strstr(out, "fix: nothing: the agent enrols again"), "%s", out);
        cr_assert_null(strstr(out, "TPM_RC_"), "%s", out);
}

/* SPDX-License-Identifier: MIT */
/* The sealed profile against the real things: files on disk, a full filesystem in a private
 * mount namespace (swtpm instances: test-seal-tpm.c). The fixture and helpers: seal-fixture.c. */
#include "tests/integration/seal-fixture.h"
#include "agent/custody.h"
#include "hw/tpm2-names.h"

/* ---- host backend ---- */

/* The host backend's options; nothing to load from the empty state directory, then a round trip
 * of p (filled for cse_id with 3 targets), in-process or in a child. */
static seal_opts_t host_first_round_trip(bool isolated, const char *cse_id, stored_profile_t *p) {
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        stored_profile_t q;
        seal_method_t m = SEAL_METHOD_AUTO;
        fill(p, cse_id, 3);
        cr_assert_eq(isolated ? load_isolated(&o, &q, &m) : seal_load(&o, &q, &m), -ENOENT);
        round_trip(&o, isolated, p, SEAL_METHOD_HOST);
        return o;
}

Test(seal, host_round_trip) {
        stored_profile_t p, q;
        seal_opts_t o = host_first_round_trip(false, "/mn-cse-1", &p);

        char key[PATH_MAX], env[PATH_MAX];
        struct stat st;
        path_in(state_dir, SEAL_HOST_KEY_NAME, key);
        path_in(state_dir, SEAL_ENVELOPE_NAME, env);
        cr_assert_eq(stat(key, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0400);
        cr_assert_eq(st.st_size, 32);
        cr_assert_eq(stat(env, &st), 0);
        cr_assert_eq(st.st_mode & 07777, 0600);
        cr_assert_eq(count_entries(state_dir), 2, "only host.key and the envelope, no temporary files");

        /* No key byte in the clear anywhere in the state directory. */
        cr_assert_not(dir_contains(state_dir, p.ltk, p.ltk_len));
        for (size_t i = 0; i < p.n_targets; i++)
                cr_assert_not(dir_contains(state_dir, p.targets[i].kpsa, PROFILE_KPSA_LEN));
        /* and the scan does read the files */
        cr_assert(dir_contains(state_dir, (const uint8_t *) "MSCE", 4));

        /* A second write: new DEK and nonce, same host.key. */
        _cleanup_free_ char *k1 = NULL, *e1 = NULL, *k2 = NULL, *e2 = NULL;
        size_t kl1, el1, kl2, el2;
        cr_assert_eq(file_read_all(key, 64, &k1, &kl1), 0);
        cr_assert_eq(file_read_all(env, 1u << 20, &e1, &el1), 0);
        cr_assert_eq(seal_store(&o, &p, NULL), 0);
        cr_assert_eq(file_read_all(key, 64, &k2, &kl2), 0);
        cr_assert_eq(file_read_all(env, 1u << 20, &e2, &el2), 0);
        cr_assert_eq(kl1, kl2);
        cr_assert_arr_eq(k1, k2, kl1);
        cr_assert_eq(el1, el2);
        cr_assert_arr_neq(e1, e2, el1);
        cr_assert_eq(seal_load(&o, &q, NULL), 0);
        cr_assert(same_profile(&p, &q));

        /* remove: envelope and key gone, then nothing to load */
        cr_assert_eq(seal_remove(&o), 1);
        cr_assert_eq(count_entries(state_dir), 0);
        cr_assert_eq(seal_remove(&o), 0);
        cr_assert_eq(seal_load(&o, &q, NULL), -ENOENT);
}

Test(seal, opts_and_names) {
        stored_profile_t p, q;
        fill(&p, "/mn-cse-1", 0);
        cr_assert_eq(seal_store(NULL, &p, NULL), -EINVAL);
        cr_assert_eq(seal_store(&(seal_opts_t) { .state_dir = NULL }, &p, NULL), -EINVAL);
        cr_assert_eq(seal_store(&(seal_opts_t) { .state_dir = state_dir, .method = 7 }, &p, NULL), -EINVAL);
        cr_assert_eq(seal_load(&(seal_opts_t) { .state_dir = state_dir, .method = -1 }, &q, NULL), -EINVAL);
        p.ltk_len = 3;
        cr_assert_eq(seal_store(&(seal_opts_t) { .state_dir = state_dir, .method = SEAL_METHOD_HOST }, &p, NULL),
                     -EINVAL);
        cr_assert_eq(count_entries(state_dir), 0, "nothing written for an invalid profile");
        cr_assert_str_eq(seal_method_to_string(SEAL_METHOD_TPM2), "tpm2");
        cr_assert_eq(seal_method_from_string("host"), SEAL_METHOD_HOST);
        cr_assert_eq(seal_method_from_string("auto"), SEAL_METHOD_AUTO);
        cr_assert_eq(seal_method_from_string("tpm"), _SEAL_METHOD_INVALID);
        cr_assert_null(seal_method_to_string(_SEAL_METHOD_MAX));
}

/* The envelope orig (len bytes) altered, in-process or in a child: refused with -EBADMSG, and
 * ret untouched. Byte i xored with x; or cut to cut bytes; or one byte more. */
static void load_refused(const seal_opts_t *o, bool isolated, const char *buf, size_t len, const char *what) {
        stored_profile_t q;
        envelope_write(buf, len);
        memset(&q, 0x5a, sizeof q);
        cr_assert_eq(isolated ? load_isolated(o, &q, NULL) : seal_load(o, &q, NULL), -EBADMSG, "%s", what);
        cr_assert_eq(((uint8_t *) &q)[0], 0x5a, "%s: ret written on failure", what);
}

static void flipped_refused(const seal_opts_t *o, bool isolated, const char *orig, size_t len, size_t i, uint8_t x) {
        _cleanup_free_ char *buf = malloc(len);
        char what[64];
        memcpy(buf, orig, len);
        buf[i] ^= (char) x;
        snprintf(what, sizeof what, "byte %zu xored with %#x", i, x);
        load_refused(o, isolated, buf, len, what);
}

static void cut_refused(const seal_opts_t *o, bool isolated, const char *orig, size_t cut) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu", cut);
        load_refused(o, isolated, orig, cut, what);
}

static void longer_refused(const seal_opts_t *o, bool isolated, const char *orig, size_t len) {
        _cleanup_free_ char *buf = malloc(len + 1);
        memcpy(buf, orig, len);
        buf[len] = 0;
        load_refused(o, isolated, buf, len + 1, "one byte too many");
}

Test(seal, corrupted_envelope_rejected) {
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        stored_profile_t p, q;
        size_t len;
        _cleanup_free_ char *orig = sealed_envelope(&o, false, &p, "/mn-cse-1", 2, &len);

        /* every byte, every bit of the first header bytes */
        for (size_t i = 0; i < len; i++)
                for (unsigned bit = 0; bit < (i < 28 ? 8u : 1u); bit++)
                        flipped_refused(&o, false, orig, len, i, (uint8_t) (i < 28 ? 1u << bit : 0xffu));
        /* every truncation, and one byte too many */
        for (size_t i = 0; i < len; i++)
                cut_refused(&o, false, orig, i);
        longer_refused(&o, false, orig, len);
        /* a huge file is refused without being parsed */
        _cleanup_free_ char *big = calloc(1, 1u << 16);
        memcpy(big, orig, 28);
        envelope_write(big, 1u << 16);
        cr_assert_eq(seal_load(&o, &q, NULL), -EBADMSG);

        envelope_write(orig, len);
        cr_assert_eq(seal_load(&o, &q, NULL), 0);
        cr_assert(same_profile(&p, &q));
}

Test(seal, host_key_problems) {
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        stored_profile_t p, q;
        char key[PATH_MAX];
        path_in(state_dir, SEAL_HOST_KEY_NAME, key);
        fill(&p, "/mn-cse-1", 1);
        cr_assert_eq(seal_store(&o, &p, NULL), 0);
        _cleanup_free_ char *k = NULL;
        size_t kl;
        cr_assert_eq(file_read_all(key, 64, &k, &kl), 0);

        /* another host key: the wrap does not open */
        uint8_t other[32];
        cr_assert_eq(random_bytes(other, sizeof other), 0);
        cr_assert_eq(unlink(key), 0);
        cr_assert_eq(file_write_atomic(key, other, sizeof other, 0400), 0);
        cr_assert_eq(seal_load(&o, &q, NULL), -EBADMSG);
        /* readable by others: refused, and never replaced by a store */
        cr_assert_eq(chmod(key, 0444), 0);
        cr_assert_eq(seal_load(&o, &q, NULL), -EPERM);
        cr_assert_eq(seal_store(&o, &p, NULL), -EPERM);
        /* wrong length */
        cr_assert_eq(unlink(key), 0);
        cr_assert_eq(file_write_atomic(key, other, 31, 0400), 0);
        cr_assert_eq(seal_load(&o, &q, NULL), -EBADMSG);
        cr_assert_eq(seal_store(&o, &p, NULL), -EBADMSG);
        /* gone */
        cr_assert_eq(unlink(key), 0);
        cr_assert_eq(seal_load(&o, &q, NULL), -EKEYREJECTED);
        /* the original comes back: the envelope opens again */
        cr_assert_eq(file_write_atomic(key, k, kl, 0400), 0);
        cr_assert_eq(seal_load(&o, &q, NULL), 0);
        cr_assert(same_profile(&p, &q));
}

/* No TPM answering (a closed port), whatever the build: tpm2 is refused, auto falls back. */
Test(seal, tpm2_unavailable_falls_back) {
        char closed[64];
        snprintf(closed, sizeof closed, "swtpm:host=127.0.0.1,port=%d", closed_port_pair());
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_TPM2, .tcti = closed };
        stored_profile_t p;
        fill(&p, "/mn-cse-1", 1);
        int r = seal_store(&o, &p, NULL);
        cr_assert(r == -ENODEV || r == -EOPNOTSUPP, "tpm2 without a TPM: %d", r);
        cr_assert_eq(count_entries(state_dir), 0);
        o.method = SEAL_METHOD_AUTO;
        round_trip(&o, false, &p, SEAL_METHOD_HOST);
        /* a device node that is not there */
        r = tpm2_probe("device:/nonexistent/tpmrm0");
        cr_assert(r == -ENODEV || r == -EOPNOTSUPP, "probe of a missing device: %d", r);
}

/* ---- in a child process (agent/sealing.h, isolate) ----
 * The same envelope as in-process sealing; results and errors come back through the child. */

Test(seal, isolated_host_round_trip) {
        stored_profile_t p, q;
        seal_method_t m = SEAL_METHOD_AUTO;
        seal_opts_t o = host_first_round_trip(true, "/mn-cse-iso", &p);
        cr_assert_eq(count_entries(state_dir), 2);
        cr_assert_not(dir_contains(state_dir, p.ltk, p.ltk_len));

        /* what the child wrote opens in-process, and the other way round */
        memset(&q, 0, sizeof q);
        cr_assert_eq(seal_load(&o, &q, &m), 0);
        cr_assert(same_profile(&p, &q));
        stored_profile_t p2;
        fill(&p2, "/mn-cse-plain", 1);
        cr_assert_eq(seal_store(&o, &p2, NULL), 0);
        cr_assert_eq(load_isolated(&o, &q, NULL), 0);
        cr_assert(same_profile(&p2, &q));

        /* errors pass through the child unchanged */
        p2.ltk_len = 3;
        cr_assert_eq(store_isolated(&o, &p2, NULL), -EINVAL);
        cr_assert_eq(load_isolated(&o, &q, NULL), 0, "the invalid store left the envelope alone");
        char key[PATH_MAX];
        path_in(state_dir, SEAL_HOST_KEY_NAME, key);
        cr_assert_eq(chmod(key, 0444), 0);
        cr_assert_eq(load_isolated(&o, &q, NULL), -EPERM);
        cr_assert_eq(unlink(key), 0);
        memset(&q, 0x5a, sizeof q);
        cr_assert_eq(load_isolated(&o, &q, NULL), -EKEYREJECTED);
        cr_assert_eq(((uint8_t *) &q)[0], 0x5a, "ret written on failure");
        cr_assert_eq(load_isolated(&(seal_opts_t) { .state_dir = NULL }, &q, NULL), -EINVAL);
}

Test(seal, isolated_corrupted_envelope_rejected) {
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        stored_profile_t p, q;
        size_t len;
        _cleanup_free_ char *orig = sealed_envelope(&o, true, &p, "/mn-cse-iso", 2, &len);

        /* a child per load: every 5th byte (header, blob, ciphertext, tag) and the last one */
        for (size_t k = 0; k <= len / 5; k++)
                flipped_refused(&o, true, orig, len, k < len / 5 ? k * 5 : len - 1, 0x20);
        const size_t cuts[] = { 0, 3, 27, 28, len / 2, len - 1 };
        for (size_t k = 0; k < ELEMENTSOF(cuts); k++)
                cut_refused(&o, true, orig, cuts[k]);
        longer_refused(&o, true, orig, len);

        envelope_write(orig, len);
        cr_assert_eq(load_isolated(&o, &q, NULL), 0);
        cr_assert(same_profile(&p, &q));
}

/* ---- ENOSPC in a private mount namespace ---- */

enum {
        ENOSPC_OK = 0,
        ENOSPC_SKIP = 77,
        ENOSPC_MOUNT = 10,
        ENOSPC_FIRST_STORE,
        ENOSPC_FILL,
        ENOSPC_NOT_ENOSPC,
        ENOSPC_OLD_GONE,
        ENOSPC_OLD_CHANGED,
        ENOSPC_LEFTOVER,
        ENOSPC_AFTER_FREE,
};

static int enospc_child(void) {
        if (unshare(CLONE_NEWNS) < 0)
                return ENOSPC_SKIP;
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return ENOSPC_SKIP;
        if (mount("tmpfs", state_dir, "tmpfs", MS_NOSUID | MS_NODEV, "size=16k,mode=0700") < 0)
                return ENOSPC_MOUNT;

        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        stored_profile_t p, p2, q;
        fill(&p, "/mn-cse-old", 2);
        fill(&p2, "/mn-cse-new", 2);
        if (seal_store(&o, &p, NULL) < 0)
                return ENOSPC_FIRST_STORE;

        char filler[PATH_MAX];
        path_in(state_dir, "filler", filler);
        _cleanup_close_ int fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return ENOSPC_FILL;
        static const char zeros[4096];
        for (size_t chunk = sizeof zeros; chunk > 0; chunk /= 2)
                while (write(fd, zeros, chunk) == (ssize_t) chunk)
                        ;
        if (errno != ENOSPC)
                return ENOSPC_FILL;

        int r = seal_store(&o, &p2, NULL);
        if (r != -ENOSPC)
                return ENOSPC_NOT_ENOSPC;
        if (seal_load(&o, &q, NULL) < 0)
                return ENOSPC_OLD_GONE;
        if (!same_profile(&p, &q))
                return ENOSPC_OLD_CHANGED;
        if (count_entries(state_dir) != 3) /* host.key, envelope, filler */
                return ENOSPC_LEFTOVER;

        /* room again: the new profile goes in */
        if (ftruncate(fd, 0) < 0 || seal_store(&o, &p2, NULL) < 0 || seal_load(&o, &q, NULL) < 0 ||
            !same_profile(&p2, &q))
                return ENOSPC_AFTER_FREE;
        return ENOSPC_OK;
}

Test(seal, enospc_keeps_old_envelope) {
        if (geteuid() != 0)
                skip("needs root for a private mount namespace and tmpfs");
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0)
                _exit(enospc_child());
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFEXITED(status), "child crashed");
        if (WEXITSTATUS(status) == ENOSPC_SKIP)
                skip("cannot create a private mount namespace here");
        cr_assert_eq(WEXITSTATUS(status), ENOSPC_OK, "ENOSPC scenario failed at step %d", WEXITSTATUS(status));
}

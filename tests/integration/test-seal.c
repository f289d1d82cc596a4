/* SPDX-License-Identifier: MIT */
/* The sealed profile against the real things: files on disk, a full filesystem in a private
 * mount namespace, and swtpm instances (one per test, on AF_UNIX sockets in its own directory). */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "agent/sealing.h"
#include "tests/integration/sealing-loop.h"
#include "hw/tpm2.h"
#include "keys/seal.h"
#include "util/util.h"

/* ---- helpers ---- */

static void fill(stored_profile_t *p, const char *cse_id, size_t n_targets) {
        *p = (stored_profile_t) { 0 };
        strcpy(p->node_id, "urn:dev:ops:0004A3-MNGW-000123");
        strcpy(p->mef_uri, "https://mef.example.net:8443/msce");
        snprintf(p->cse_id, sizeof p->cse_id, "%s", cse_id);
        strcpy(p->cse_base, "https://in.example.net:8443/~/in-cse/in-name");
        strcpy(p->ke_id, "3f2a00112233445566778899aabbccdd@mef.example.net");
        strcpy(p->exp, "20271127T203000");
        p->poll = 3600;
        p->obtained = 1795000000;
        p->ltk_len = 32;
        cr_assert_eq(random_bytes(p->ltk, p->ltk_len), 0);
        p->n_targets = n_targets;
        for (size_t i = 0; i < n_targets; i++) {
                snprintf(p->targets[i].id, sizeof p->targets[i].id, "/target-%zu", i);
                snprintf(p->targets[i].kpsa_id, sizeof p->targets[i].kpsa_id, "3f2a.%zu@mef.example.net", i + 1);
                cr_assert_eq(random_bytes(p->targets[i].kpsa, PROFILE_KPSA_LEN), 0);
        }
}

static bool same_profile(const stored_profile_t *a, const stored_profile_t *b) {
        if (strcmp(a->node_id, b->node_id) || strcmp(a->mef_uri, b->mef_uri) || strcmp(a->cse_id, b->cse_id) ||
            strcmp(a->cse_base, b->cse_base) || strcmp(a->ke_id, b->ke_id) || strcmp(a->exp, b->exp) ||
            a->poll != b->poll || a->obtained != b->obtained || a->ltk_len != b->ltk_len ||
            memcmp(a->ltk, b->ltk, a->ltk_len) || a->n_targets != b->n_targets)
                return false;
        for (size_t i = 0; i < a->n_targets; i++)
                if (strcmp(a->targets[i].id, b->targets[i].id) || strcmp(a->targets[i].kpsa_id, b->targets[i].kpsa_id) ||
                    memcmp(a->targets[i].kpsa, b->targets[i].kpsa, PROFILE_KPSA_LEN))
                        return false;
        return true;
}

static char state_dir[64];

static void make_state_dir(void) {
        strcpy(state_dir, "/tmp/msce-seal-XXXXXX");
        cr_assert_not_null(mkdtemp(state_dir));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void rm_rf(const char *dir) {
        if (dir[0])
                nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void path_in(const char *dir, const char *name, char out[PATH_MAX]) {
        snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

/* true when needle occurs in any regular file of dir */
static bool dir_contains(const char *dir, const uint8_t *needle, size_t n) {
        DIR *d = opendir(dir);
        cr_assert_not_null(d);
        bool found = false;
        struct dirent *de;
        while (!found && (de = readdir(d))) {
                char p[PATH_MAX];
                struct stat st;
                path_in(dir, de->d_name, p);
                if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                _cleanup_free_ char *buf = NULL;
                size_t len = 0;
                cr_assert_eq(file_read_all(p, 1u << 20, &buf, &len), 0);
                found = memmem(buf, len, needle, n) != NULL;
        }
        closedir(d);
        return found;
}

static unsigned count_entries(const char *dir) {
        DIR *d = opendir(dir);
        cr_assert_not_null(d);
        unsigned n = 0;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static void envelope_read(char **ret, size_t *ret_len) {
        char p[PATH_MAX];
        path_in(state_dir, SEAL_ENVELOPE_NAME, p);
        cr_assert_eq(file_read_all(p, 1u << 20, ret, ret_len), 0);
}

/* Plain rewrite (no fsync: the corruption loops write hundreds of variants). */
static void envelope_write(const void *data, size_t len) {
        char p[PATH_MAX];
        path_in(state_dir, SEAL_ENVELOPE_NAME, p);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, data, len), (ssize_t) len);
}

static bool have_program(const char *name) {
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = strdup(path ? path : "/usr/bin:/bin");
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char p[PATH_MAX];
                snprintf(p, sizeof p, "%s/%s", d, name);
                if (access(p, X_OK) == 0)
                        return true;
        }
        return false;
}

/* Run argv; stdout into out (NUL-terminated, may be NULL); returns the exit status or -1. */
static int run(char *const argv[], char *out, size_t out_size) {
        int pfd[2];
        cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
                dup2(pfd[1], STDOUT_FILENO);
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        dup2(null, STDERR_FILENO);
                execvp(argv[0], argv);
                _exit(127);
        }
        close(pfd[1]);
        size_t len = 0;
        char sink[256];
        for (;;) {
                char *dst = out && len + 1 < out_size ? out + len : sink;
                size_t room = out && len + 1 < out_size ? out_size - len - 1 : sizeof sink;
                ssize_t n = read(pfd[0], dst, room);
                if (n <= 0)
                        break;
                if (dst != sink)
                        len += (size_t) n;
        }
        close(pfd[0]);
        if (out)
                out[len] = 0;
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- swtpm ---- */

typedef struct swtpm {
        pid_t pid;
        char dir[64];
        char tcti[96];
} swtpm_t;

static swtpm_t tpm_a, tpm_b;

/* Two TCP sockets bound on 127.0.0.1:P and P+1 (the swtpm TCTI's command and control ports),
 * P from the kernel. They stay bound for as long as the test needs the ports: a port number
 * that is looked up, closed and handed on can be taken by any other process in between. */
static int bound_pair(int fds[2]) {
        for (int attempt = 0; attempt < 100; attempt++) {
                fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                fds[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                cr_assert(fds[0] >= 0 && fds[1] >= 0);
                struct sockaddr_in sa = { .sin_family = AF_INET };
                socklen_t sl = sizeof sa;
                sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                cr_assert_eq(bind(fds[0], (struct sockaddr *) &sa, sizeof sa), 0);
                cr_assert_eq(getsockname(fds[0], (struct sockaddr *) &sa, &sl), 0);
                int port = ntohs(sa.sin_port);
                sa.sin_port = htons((uint16_t) (port + 1));
                if (port < 65535 && bind(fds[1], (struct sockaddr *) &sa, sizeof sa) == 0)
                        return port;
                close(fds[0]);
                close(fds[1]);
        }
        cr_assert_fail("no free port pair");
        return -1;
}

/* A port pair where nothing answers: bound, never listening (a connect is refused), for the
 * rest of this test process. */
static int closed_port_pair(void) {
        int fds[2];
        return bound_pair(fds);
}

static bool unix_connects(const char *path) {
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        bool ok = connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0;
        close(fd);
        return ok;
}

/* criterion does not run .fini for a skipped test: clean up first */
#define skip(...)                               \
        do {                                    \
                rm_rf(state_dir);               \
                cr_skip_test(__VA_ARGS__);      \
        } while (0)

static void skip_without_swtpm(void) {
        if (tpm2_probe("swtpm:host=127.0.0.1,port=1") == -EOPNOTSUPP)
                skip("built without TPM support (-Dtpm2=disabled)");
        if (!have_program("swtpm"))
                skip("swtpm not installed");
        if (!have_program("tpm2_pcrextend") || !have_program("tpm2_getcap"))
                skip("tpm2-tools not installed");
}

static void swtpm_start(swtpm_t *t) {
        char pidfile[96], state[96], server[160], ctrl[160];
        strcpy(t->dir, "/tmp/msce-swtpm-XXXXXX");
        cr_assert_not_null(mkdtemp(t->dir));
        /* AF_UNIX sockets in the test's own directory (the swtpm TCTI's path=, control socket
         * PATH.ctrl): no TCP port to choose, so nothing another process could take first */
        char sock[sizeof t->dir + 8], ctrl_path[sizeof sock + 8];
        snprintf(sock, sizeof sock, "%s/tpm", t->dir);
        snprintf(ctrl_path, sizeof ctrl_path, "%s.ctrl", sock);
        snprintf(pidfile, sizeof pidfile, "file=%s/pid", t->dir);
        snprintf(state, sizeof state, "dir=%s", t->dir);
        snprintf(server, sizeof server, "type=unixio,path=%s", sock);
        snprintf(ctrl, sizeof ctrl, "type=unixio,path=%s", ctrl_path);
        snprintf(t->tcti, sizeof t->tcti, "swtpm:path=%s", sock);
        char *argv[] = { "swtpm", "socket", "--tpm2", "--server", server, "--ctrl", ctrl, "--tpmstate", state,
                         "--flags", "not-need-init,startup-clear", "--daemon", "--pid", pidfile, NULL };
        cr_assert_eq(run(argv, NULL, 0), 0, "swtpm did not start");

        /* a deadline for a hang, not a speed requirement: 30 s however loaded the machine */
        char p[PATH_MAX];
        path_in(t->dir, "pid", p);
        uint64_t end = now_usec() + 30 * 1000000ULL;
        while (now_usec() < end) {
                _cleanup_free_ char *buf = NULL;
                unsigned long long v;
                if (file_read_all(p, 32, &buf, NULL) == 0) {
                        buf[strcspn(buf, "\n")] = 0;
                        if (parse_uint(buf, INT32_MAX, &v) == 0 && v > 1)
                                t->pid = (pid_t) v;
                }
                if (t->pid > 0 && unix_connects(sock) && unix_connects(ctrl_path))
                        return;
                usleep(10000);
        }
        cr_assert_fail("swtpm on %s does not answer after 30 s", sock);
}

static void swtpm_stop(swtpm_t *t) {
        if (t->pid > 0) {
                kill(t->pid, SIGTERM);
                uint64_t end = now_usec() + 10 * 1000000ULL;
                while (kill(t->pid, 0) == 0 && now_usec() < end)
                        usleep(10000);
                if (kill(t->pid, 0) == 0)
                        kill(t->pid, SIGKILL);
        }
        rm_rf(t->dir);
        *t = (swtpm_t) { 0 };
}

static void setup(void) {
        setenv("TSS2_LOG", "all+none", 1); /* the refusals below are expected */
        make_state_dir();
}

static void teardown(void) {
        swtpm_stop(&tpm_a);
        swtpm_stop(&tpm_b);
        rm_rf(state_dir);
}

TestSuite(seal, .init = setup, .fini = teardown);

/* ---- host backend ---- */

Test(seal, host_round_trip) {
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        stored_profile_t p, q;
        seal_method_t m = SEAL_METHOD_AUTO;
        fill(&p, "/mn-cse-1", 3);

        cr_assert_eq(seal_load(&o, &q, &m), -ENOENT);
        cr_assert_eq(seal_store(&o, &p, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_HOST);
        m = SEAL_METHOD_AUTO;
        cr_assert_eq(seal_load(&o, &q, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_HOST);
        cr_assert(same_profile(&p, &q));

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

Test(seal, corrupted_envelope_rejected) {
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        stored_profile_t p, q;
        fill(&p, "/mn-cse-1", 2);
        cr_assert_eq(seal_store(&o, &p, NULL), 0);
        _cleanup_free_ char *orig = NULL;
        size_t len;
        envelope_read(&orig, &len);
        _cleanup_free_ char *buf = malloc(len + 1);

        /* every byte, every bit of the first header bytes */
        for (size_t i = 0; i < len; i++) {
                for (unsigned bit = 0; bit < (i < 28 ? 8u : 1u); bit++) {
                        memcpy(buf, orig, len);
                        buf[i] ^= (char) (i < 28 ? 1u << bit : 0xffu);
                        envelope_write(buf, len);
                        memset(&q, 0x5a, sizeof q);
                        cr_assert_eq(seal_load(&o, &q, NULL), -EBADMSG, "flipped byte %zu bit %u", i, bit);
                        cr_assert_eq(((uint8_t *) &q)[0], 0x5a, "ret written on failure");
                }
        }
        /* every truncation, and one byte too many */
        for (size_t i = 0; i < len; i++) {
                envelope_write(orig, i);
                cr_assert_eq(seal_load(&o, &q, NULL), -EBADMSG, "truncated to %zu", i);
        }
        memcpy(buf, orig, len);
        buf[len] = 0;
        envelope_write(buf, len + 1);
        cr_assert_eq(seal_load(&o, &q, NULL), -EBADMSG);
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
        stored_profile_t p, q;
        seal_method_t m;
        fill(&p, "/mn-cse-1", 1);
        int r = seal_store(&o, &p, NULL);
        cr_assert(r == -ENODEV || r == -EOPNOTSUPP, "tpm2 without a TPM: %d", r);
        cr_assert_eq(count_entries(state_dir), 0);
        o.method = SEAL_METHOD_AUTO;
        cr_assert_eq(seal_store(&o, &p, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_HOST);
        cr_assert_eq(seal_load(&o, &q, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_HOST);
        cr_assert(same_profile(&p, &q));
        /* a device node that is not there */
        r = tpm2_probe("device:/nonexistent/tpmrm0");
        cr_assert(r == -ENODEV || r == -EOPNOTSUPP, "probe of a missing device: %d", r);
}

/* ---- in a child process (agent/sealing.h, isolate) ----
 * The same envelope as in-process sealing; results and errors come back through the child. */

static int store_isolated(const seal_opts_t *o, const stored_profile_t *p, seal_method_t *m) {
        char err[256] = "";
        return sealing_run(o, p, NULL, m, err, sizeof err);
}

static int load_isolated(const seal_opts_t *o, stored_profile_t *q, seal_method_t *m) {
        char err[256] = "";
        if (!q)
                return -EINVAL;
        return sealing_run(o, NULL, q, m, err, sizeof err);
}

Test(seal, isolated_host_round_trip) {
        seal_opts_t o = { .state_dir = state_dir, .method = SEAL_METHOD_HOST };
        stored_profile_t p, q;
        seal_method_t m = SEAL_METHOD_AUTO;
        fill(&p, "/mn-cse-iso", 3);

        cr_assert_eq(load_isolated(&o, &q, &m), -ENOENT);
        cr_assert_eq(store_isolated(&o, &p, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_HOST);
        m = SEAL_METHOD_AUTO;
        memset(&q, 0, sizeof q);
        cr_assert_eq(load_isolated(&o, &q, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_HOST);
        cr_assert(same_profile(&p, &q));
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
        fill(&p, "/mn-cse-iso", 2);
        cr_assert_eq(store_isolated(&o, &p, NULL), 0);
        _cleanup_free_ char *orig = NULL;
        size_t len;
        envelope_read(&orig, &len);
        _cleanup_free_ char *buf = malloc(len + 1);

        /* a child per load: every 5th byte (header, blob, ciphertext, tag) and the last one */
        for (size_t k = 0; k <= len / 5; k++) {
                size_t i = k < len / 5 ? k * 5 : len - 1;
                memcpy(buf, orig, len);
                buf[i] ^= 0x20;
                envelope_write(buf, len);
                memset(&q, 0x5a, sizeof q);
                cr_assert_eq(load_isolated(&o, &q, NULL), -EBADMSG, "flipped byte %zu", i);
                cr_assert_eq(((uint8_t *) &q)[0], 0x5a, "ret written on failure");
        }
        const size_t cuts[] = { 0, 3, 27, 28, len / 2, len - 1 };
        for (size_t k = 0; k < ELEMENTSOF(cuts); k++) {
                envelope_write(orig, cuts[k]);
                cr_assert_eq(load_isolated(&o, &q, NULL), -EBADMSG, "truncated to %zu", cuts[k]);
        }
        memcpy(buf, orig, len);
        buf[len] = 0;
        envelope_write(buf, len + 1);
        cr_assert_eq(load_isolated(&o, &q, NULL), -EBADMSG, "one byte too many");

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
        cr_assert_eq(seal_store(&o, &p, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_TPM2);
        m = SEAL_METHOD_AUTO;
        cr_assert_eq(seal_load(&o, &q, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_TPM2);
        cr_assert(same_profile(&p, &q));
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
        fill(&p, "/mn-cse-tpm", 1);
        cr_assert_eq(seal_store(&o, &p, NULL), 0);
        _cleanup_free_ char *orig = NULL;
        size_t len;
        envelope_read(&orig, &len);
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
        seal_method_t m = SEAL_METHOD_AUTO;
        fill(&p, "/mn-cse-iso-tpm", 4);
        cr_assert_eq(store_isolated(&o, &p, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_TPM2);
        m = SEAL_METHOD_AUTO;
        cr_assert_eq(load_isolated(&o, &q, &m), 0);
        cr_assert_eq(m, SEAL_METHOD_TPM2);
        cr_assert(same_profile(&p, &q));
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

/* SPDX-License-Identifier: MIT */
/* The sealing tests' fixture (seal-fixture.h). */
#include "tests/integration/seal-fixture.h"

void fill(stored_profile_t *p, const char *cse_id, size_t n_targets) {
        profile_example(p, n_targets);
        snprintf(p->cse_id, sizeof p->cse_id, "%s", cse_id);
        cr_assert_eq(random_bytes(p->ltk, p->ltk_len), 0);
        for (size_t i = 0; i < n_targets; i++)
                cr_assert_eq(random_bytes(p->targets[i].kpsa, PROFILE_KPSA_LEN), 0);
}

bool same_profile(const stored_profile_t *a, const stored_profile_t *b) {
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

char state_dir[64];

static void make_state_dir(void) {
        strcpy(state_dir, "/tmp/msce-seal-XXXXXX");
        cr_assert_not_null(mkdtemp(state_dir));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

void rm_rf(const char *dir) {
        if (dir[0])
                nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void path_in(const char *dir, const char *name, char out[PATH_MAX]) {
        snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

/* true when needle occurs in any regular file of dir */
bool dir_contains(const char *dir, const uint8_t *needle, size_t n) {
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

unsigned count_entries(const char *dir) {
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

void envelope_read(char **ret, size_t *ret_len) {
        char p[PATH_MAX];
        path_in(state_dir, SEAL_ENVELOPE_NAME, p);
        cr_assert_eq(file_read_all(p, 1u << 20, ret, ret_len), 0);
}

/* Plain rewrite (no fsync: the corruption loops write hundreds of variants). */
void envelope_write(const void *data, size_t len) {
        char p[PATH_MAX];
        path_in(state_dir, SEAL_ENVELOPE_NAME, p);
        _cleanup_close_ int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write(fd, data, len), (ssize_t) len);
}

bool have_program(const char *name) {
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
int run(char *const argv[], char *out, size_t out_size) {
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

swtpm_t tpm_a, tpm_b;

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
int closed_port_pair(void) {
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

void skip_without_swtpm(void) {
        if (tpm2_probe("swtpm:host=127.0.0.1,port=1") == -EOPNOTSUPP)
                skip("built without TPM support (-Dtpm2=disabled)");
        if (!have_program("swtpm"))
                skip("swtpm not installed");
        if (!have_program("tpm2_pcrextend") || !have_program("tpm2_getcap"))
                skip("tpm2-tools not installed");
}

void swtpm_start(swtpm_t *t) {
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

int store_isolated(const seal_opts_t *o, const stored_profile_t *p, seal_method_t *m) {
        char err[256] = "";
        return sealing_run(o, p, NULL, m, err, sizeof err);
}

int load_isolated(const seal_opts_t *o, stored_profile_t *q, seal_method_t *m) {
        char err[256] = "";
        if (!q)
                return -EINVAL;
        return sealing_run(o, NULL, q, m, err, sizeof err);
}

void round_trip(const seal_opts_t *o, bool isolated, const stored_profile_t *p, seal_method_t want) {
        stored_profile_t q = { 0 };
        seal_method_t m = SEAL_METHOD_AUTO;
        cr_assert_eq(isolated ? store_isolated(o, p, &m) : seal_store(o, p, &m), 0);
        cr_assert_eq(m, want);
        m = SEAL_METHOD_AUTO;
        cr_assert_eq(isolated ? load_isolated(o, &q, &m) : seal_load(o, &q, &m), 0);
        cr_assert_eq(m, want);
        cr_assert(same_profile(p, &q));
}

char *sealed_envelope(const seal_opts_t *o, bool isolated, stored_profile_t *p, const char *cse_id, size_t n_targets,
                      size_t *ret_len) {
        char *env = NULL;
        fill(p, cse_id, n_targets);
        cr_assert_eq(isolated ? store_isolated(o, p, NULL) : seal_store(o, p, NULL), 0);
        envelope_read(&env, ret_len);
        return env;
}

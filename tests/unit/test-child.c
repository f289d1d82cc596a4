/* SPDX-License-Identifier: MIT */
/* util/child.h: the reply round trip, every way a child can end, and what the child is left
 * with (fds, signal mask, capabilities, no_new_privs, death with its parent). What the child
 * sees is measured in the child and sent back in its payload: no assertion runs there. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/child.h"
#include "util/util.h"

/* Collect, waiting for the fd up to about 5 s; the child is killed if it does not answer. */
static int collect_wait(child_t *c, int *ret_result, uint8_t *payload, size_t max, size_t *ret_len) {
        for (int i = 0; i < 500; i++) {
                int r = child_collect(c, ret_result, payload, max, ret_len);
                if (r != -EAGAIN)
                        return r;
                struct pollfd p = { .fd = c->fd, .events = POLLIN };
                (void) poll(&p, 1, 10);
        }
        child_abort(c);
        return -ETIMEDOUT;
}

/* ---- the reply ---- */

typedef struct echo {
        const uint8_t *data;
        size_t len;
        int result;
} echo_t;

static int fn_echo(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        const echo_t *e = userdata;
        if (e->len > max)
                return -ENOBUFS;
        if (e->len > 0)
                memcpy(out, e->data, e->len);
        *out_len = e->len;
        return e->result;
}

Test(child, round_trip_sizes) {
        static uint8_t data[CHILD_PAYLOAD_MAX], got[CHILD_PAYLOAD_MAX];
        for (size_t i = 0; i < sizeof data; i++)
                data[i] = (uint8_t) (i * 7 + 3);
        const size_t sizes[] = { 0, 1, 100, CHILD_PAYLOAD_MAX - 1, CHILD_PAYLOAD_MAX };
        for (size_t k = 0; k < ELEMENTSOF(sizes); k++) {
                echo_t e = { .data = data, .len = sizes[k] };
                size_t len = 12345;
                memset(got, 0, sizeof got);
                cr_assert_eq(child_run(fn_echo, &e, got, sizeof got, &len, 0), 0, "size %zu", sizes[k]);
                cr_assert_eq(len, sizes[k]);
                cr_assert_arr_eq(got, data, len);
        }
}

Test(child, spawn_collect_round_trip) {
        uint8_t data[] = "hello from the child", got[64];
        echo_t e = { .data = data, .len = sizeof data };
        child_t c = CHILD_NULL;
        cr_assert_eq(child_spawn(fn_echo, &e, &c), 0);
        cr_assert_gt(c.pid, 0);
        cr_assert_geq(c.fd, 0);
        int result = 1;
        size_t len = 0;
        cr_assert_eq(collect_wait(&c, &result, got, sizeof got, &len), 0);
        cr_assert_eq(result, 0);
        cr_assert_eq(len, sizeof data);
        cr_assert_arr_eq(got, data, len);
        /* reaped and closed: a clean exit */
        cr_assert_eq(c.pid, 0);
        cr_assert_eq(c.fd, -1);
        char why[64];
        child_describe(&c, why, sizeof why);
        cr_assert_str_eq(why, "exited with 0");
        child_abort(&c); /* idempotent */
        cr_assert_eq(c.fd, -1);
}

Test(child, negative_result_passed_with_payload) {
        uint8_t data[] = { 9, 8, 7 }, got[16];
        echo_t e = { .data = data, .len = sizeof data, .result = -ENOENT };
        size_t len = 0;
        cr_assert_eq(child_run(fn_echo, &e, got, sizeof got, &len, 0), -ENOENT);
        cr_assert_eq(len, sizeof data);
        cr_assert_arr_eq(got, data, len);

        e = (echo_t) { .data = data, .len = 0, .result = -4095 };
        cr_assert_eq(child_run(fn_echo, &e, got, sizeof got, &len, 0), -4095);
        cr_assert_eq(len, 0);
}

/* A result the contract does not allow (positive, or beyond the errno range) is a reply of the
 * wrong shape. */
Test(child, result_out_of_range_rejected) {
        uint8_t got[16];
        size_t len = 0;
        echo_t e = { .result = 1 };
        cr_assert_eq(child_run(fn_echo, &e, got, sizeof got, &len, 0), -EMSGSIZE);
        e.result = -4096;
        cr_assert_eq(child_run(fn_echo, &e, got, sizeof got, &len, 0), -EMSGSIZE);
}

static int fn_overflow(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        memset(out, 0xee, max);
        *out_len = max + 1;
        return 0;
}

Test(child, overflow_is_eoverflow) {
        uint8_t got[64];
        size_t len = 999;
        cr_assert_eq(child_run(fn_overflow, NULL, got, sizeof got, &len, 0), -EOVERFLOW);
        cr_assert_eq(len, 0, "nothing of an overflowing payload is sent");
}

/* A reply longer than the caller's buffer: -EMSGSIZE, and the child is reaped. */
Test(child, reply_longer_than_max) {
        uint8_t data[100] = { 1 }, got[100];
        echo_t e = { .data = data, .len = sizeof data };
        child_t c = CHILD_NULL;
        cr_assert_eq(child_spawn(fn_echo, &e, &c), 0);
        int result = 1;
        size_t len = 77;
        cr_assert_eq(collect_wait(&c, &result, got, sizeof data - 1, &len), -EMSGSIZE);
        cr_assert_eq(result, 1, "ret_result untouched on failure");
        cr_assert_eq(len, 77, "ret_len untouched on failure");
        cr_assert_eq(c.pid, 0);
        cr_assert_eq(c.fd, -1);
        /* exactly max fits */
        cr_assert_eq(child_run(fn_echo, &e, got, sizeof data, &len, 0), 0);
        cr_assert_eq(len, sizeof data);
}

Test(child, bad_arguments) {
        child_t c = CHILD_NULL;
        int result;
        size_t len;
        uint8_t buf[4];
        cr_assert_eq(child_spawn(NULL, NULL, &c), -EINVAL);
        cr_assert_eq(child_spawn(fn_echo, NULL, NULL), -EINVAL);
        cr_assert_eq(child_collect(NULL, &result, buf, sizeof buf, &len), -EINVAL);
        cr_assert_eq(child_collect(&c, &result, buf, sizeof buf, &len), -EINVAL, "no child");
        child_abort(NULL);
        child_abort(&c);
        cr_assert_eq(c.fd, -1);
}

/* ---- ending without a reply ---- */

static int fn_abort(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        signal(SIGABRT, SIG_DFL);
        abort();
}

static int fn_segv(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        signal(SIGSEGV, SIG_DFL); /* not a sanitizer's handler: die of the signal itself */
        raise(SIGSEGV);
        _exit(99);
}

static int fn_exit(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        _exit(*(const int *) userdata);
}

static void assert_ends(child_fn_t fn, void *userdata, const char *expected) {
        child_t c = CHILD_NULL;
        cr_assert_eq(child_spawn(fn, userdata, &c), 0);
        int result = 1;
        uint8_t got[16];
        size_t len = 55;
        cr_assert_eq(collect_wait(&c, &result, got, sizeof got, &len), -ECHILD, "%s", expected);
        cr_assert_eq(result, 1);
        cr_assert_eq(len, 55);
        cr_assert_eq(c.pid, 0, "reaped");
        cr_assert_eq(c.fd, -1, "closed");
        char why[96];
        child_describe(&c, why, sizeof why);
        cr_assert(strncmp(why, expected, strlen(expected)) == 0, "'%s', expected '%s'", why, expected);
}

Test(child, crash_is_echild) {
        assert_ends(fn_abort, NULL, "killed by signal 6");
        assert_ends(fn_segv, NULL, "killed by signal 11");
        /* child_run says the same */
        size_t len;
        cr_assert_eq(child_run(fn_abort, NULL, NULL, 0, &len, 0), -ECHILD);
}

Test(child, exit_without_reply_is_echild) {
        int code = 7;
        assert_ends(fn_exit, &code, "exited with 7");
        code = 0;
        assert_ends(fn_exit, &code, "exited with 0");
}

/* ---- still running ---- */

static int fn_sleep(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        volatile int *ready = userdata;
        if (ready)
                *ready = 1;
        /* bounded, so a child that outlives a failed test goes away by itself */
        for (int i = 0; i < 300; i++)
                (void) usleep(100000);
        return -ENOTRECOVERABLE; /* not -ETIMEDOUT: child_run's own timeout must be told apart */
}

Test(child, collect_while_running_then_abort) {
        child_t c = CHILD_NULL;
        cr_assert_eq(child_spawn(fn_sleep, NULL, &c), 0);
        pid_t pid = c.pid;
        int result = 1;
        uint8_t got[16];
        size_t len = 55;
        for (int i = 0; i < 3; i++) {
                cr_assert_eq(child_collect(&c, &result, got, sizeof got, &len), -EAGAIN);
                (void) usleep(20000);
        }
        cr_assert_eq(result, 1);
        cr_assert_eq(len, 55);
        cr_assert_eq(c.pid, pid, "still running");
        cr_assert_eq(kill(pid, 0), 0);

        child_abort(&c);
        cr_assert_eq(c.pid, 0);
        cr_assert_eq(c.fd, -1);
        errno = 0;
        cr_assert_eq(kill(pid, 0), -1, "killed and reaped");
        cr_assert_eq(errno, ESRCH);
        char why[96];
        child_describe(&c, why, sizeof why);
        cr_assert(strncmp(why, "killed by signal 9", 18) == 0, "%s", why);
        child_abort(&c);
}

Test(child, run_timeout_kills_the_child) {
        uint8_t got[16];
        size_t len = 55;
        uint64_t t0 = now_usec();
        cr_assert_eq(child_run(fn_sleep, NULL, got, sizeof got, &len, 150), -ETIMEDOUT);
        /* Not before the timeout. No upper bound (a loaded machine may take long): -ETIMEDOUT
         * can only be child_run's own, the sleeper ends with another error after 30 s. */
        uint64_t took = now_usec() - t0;
        cr_assert(took >= 150000, "took %llu us", (unsigned long long) took);
        cr_assert_eq(len, 55, "no reply taken");
        /* reaped: no child of ours is left (the sleeper would run 30 s) */
        errno = 0;
        cr_assert_eq(waitpid(-1, NULL, WNOHANG), -1);
        cr_assert_eq(errno, ECHILD);
}

/* ---- what the child is left with ---- */

typedef struct fd_report {
        int fd3_is_socket;
        int n;
        int fds[32];
} fd_report_t;

static int fn_list_fds(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        fd_report_t rep = {};
        struct stat st;
        rep.fd3_is_socket = fstat(3, &st) == 0 && S_ISSOCK(st.st_mode);
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                int fd = atoi(de->d_name);
                if (fd == dirfd(d))
                        continue;
                if (rep.n < (int) ELEMENTSOF(rep.fds))
                        rep.fds[rep.n] = fd;
                rep.n++;
        }
        closedir(d);
        memcpy(out, &rep, sizeof rep);
        *out_len = sizeof rep;
        return 0;
}

Test(child, only_fds_0_to_3) {
        int extra = open("/dev/null", O_RDONLY); /* deliberately without O_CLOEXEC */
        cr_assert_geq(extra, 0);
        int high = fcntl(extra, F_DUPFD, 20);
        cr_assert_geq(high, 20);

        fd_report_t rep;
        size_t len = 0;
        cr_assert_eq(child_run(fn_list_fds, NULL, (uint8_t *) &rep, sizeof rep, &len, 0), 0);
        cr_assert_eq(len, sizeof rep);
        cr_assert(rep.fd3_is_socket, "fd 3 is the reply socket");
        cr_assert_leq(rep.n, 4, "%d fds open in the child", rep.n);
        bool has3 = false;
        for (int i = 0; i < rep.n; i++) {
                cr_assert(rep.fds[i] >= 0 && rep.fds[i] <= 3, "fd %d open in the child", rep.fds[i]);
                has3 = has3 || rep.fds[i] == 3;
        }
        cr_assert(has3);
        close(high);
        close(extra);
}

typedef struct mask_report {
        int ok;
        int usr1_blocked;
        int empty;
} mask_report_t;

static int fn_mask(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        sigset_t cur;
        sigemptyset(&cur);
        mask_report_t rep = { .ok = sigprocmask(SIG_SETMASK, NULL, &cur) == 0 };
        rep.usr1_blocked = sigismember(&cur, SIGUSR1);
        rep.empty = sigisemptyset(&cur);
        memcpy(out, &rep, sizeof rep);
        *out_len = sizeof rep;
        return 0;
}

Test(child, signal_mask_empty) {
        sigset_t usr1, old;
        sigemptyset(&usr1);
        sigaddset(&usr1, SIGUSR1);
        sigaddset(&usr1, SIGTERM);
        cr_assert_eq(sigprocmask(SIG_BLOCK, &usr1, &old), 0);

        mask_report_t rep = {};
        size_t len = 0;
        int r = child_run(fn_mask, NULL, (uint8_t *) &rep, sizeof rep, &len, 0);
        /* the parent's mask is its own business and stays */
        sigset_t now;
        cr_assert_eq(sigprocmask(SIG_SETMASK, &old, &now), 0);
        cr_assert(sigismember(&now, SIGUSR1));

        cr_assert_eq(r, 0);
        cr_assert_eq(len, sizeof rep);
        cr_assert(rep.ok);
        cr_assert_eq(rep.usr1_blocked, 0, "SIGUSR1 still blocked in the child");
        cr_assert_eq(rep.empty, 1, "the child's signal mask is not empty");
}

typedef struct status_report {
        int found;  /* bit per field found */
        int no_new_privs;
        uint64_t eff, prm, inh, bnd, amb;
} status_report_t;

static int status_read(status_report_t *rep) {
        *rep = (status_report_t) {};
        FILE *f = fopen("/proc/self/status", "re");
        if (!f)
                return -errno;
        char line[256];
        while (fgets(line, sizeof line, f)) {
                unsigned long long v;
                if (sscanf(line, "NoNewPrivs: %llu", &v) == 1)
                        rep->no_new_privs = (int) v, rep->found |= 1;
                else if (sscanf(line, "CapEff: %llx", &v) == 1)
                        rep->eff = v, rep->found |= 2;
                else if (sscanf(line, "CapPrm: %llx", &v) == 1)
                        rep->prm = v, rep->found |= 4;
                else if (sscanf(line, "CapInh: %llx", &v) == 1)
                        rep->inh = v, rep->found |= 8;
                else if (sscanf(line, "CapBnd: %llx", &v) == 1)
                        rep->bnd = v, rep->found |= 16;
                else if (sscanf(line, "CapAmb: %llx", &v) == 1)
                        rep->amb = v, rep->found |= 32;
        }
        fclose(f);
        return 0;
}

static int fn_status(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        status_report_t rep;
        int r = status_read(&rep);
        if (r < 0)
                return r;
        memcpy(out, &rep, sizeof rep);
        *out_len = sizeof rep;
        return 0;
}

#define CAP_BIT(c) (UINT64_C(1) << (c))
#define CAP_SETGID_ 6
#define CAP_SETUID_ 7
#define CAP_SETPCAP_ 8
#define CAP_SYS_ADMIN_ 21

Test(child, no_new_privs_and_caps_dropped) {
        const uint64_t dropped = CAP_BIT(CAP_SETGID_) | CAP_BIT(CAP_SETUID_) | CAP_BIT(CAP_SETPCAP_) |
                                 CAP_BIT(CAP_SYS_ADMIN_);
        status_report_t parent, child;
        cr_assert_eq(status_read(&parent), 0);
        cr_assert_eq(parent.found, 63, "fields of /proc/self/status");
        if (geteuid() == 0)
                cr_assert(parent.eff & CAP_BIT(CAP_SYS_ADMIN_), "root without CAP_SYS_ADMIN: %llx",
                          (unsigned long long) parent.eff);

        size_t len = 0;
        cr_assert_eq(child_run(fn_status, NULL, (uint8_t *) &child, sizeof child, &len, 0), 0);
        cr_assert_eq(len, sizeof child);
        cr_assert_eq(child.found, 63);
        cr_assert_eq(child.no_new_privs, 1);
        cr_assert_eq(child.eff & CAP_BIT(CAP_SYS_ADMIN_), 0, "CapEff %llx", (unsigned long long) child.eff);
        cr_assert_eq(child.eff & dropped, 0, "CapEff %llx", (unsigned long long) child.eff);
        cr_assert_eq(child.prm & dropped, 0, "CapPrm %llx", (unsigned long long) child.prm);
        cr_assert_eq(child.inh & dropped, 0, "CapInh %llx", (unsigned long long) child.inh);
        cr_assert_eq(child.amb, 0, "CapAmb %llx", (unsigned long long) child.amb);
        /* nothing else is taken: file access rights (CAP_DAC_OVERRIDE...) stay */
        cr_assert_eq(child.eff, parent.eff & ~dropped, "CapEff %llx from %llx", (unsigned long long) child.eff,
                     (unsigned long long) parent.eff);
        cr_assert_eq(child.prm, parent.prm & ~dropped);
        /* the bounding set can only shrink with CAP_SETPCAP */
        if (parent.eff & CAP_BIT(CAP_SETPCAP_))
                cr_assert_eq(child.bnd & dropped, 0, "CapBnd %llx", (unsigned long long) child.bnd);
        /* the parent keeps what it had */
        status_report_t after;
        cr_assert_eq(status_read(&after), 0);
        cr_assert_eq(after.eff, parent.eff);
        cr_assert_eq(after.no_new_privs, parent.no_new_privs);
}

typedef struct ids_report {
        uid_t ruid, euid, suid;
        gid_t rgid, egid, sgid;
        int n_groups;
        status_report_t status;
} ids_report_t;

static int fn_ids(void *userdata, uint8_t *out, size_t max, size_t *out_len) {
        ids_report_t rep = { .n_groups = getgroups(0, NULL) };
        if (getresuid(&rep.ruid, &rep.euid, &rep.suid) < 0 || getresgid(&rep.rgid, &rep.egid, &rep.sgid) < 0)
                return -errno;
        int r = status_read(&rep.status);
        if (r < 0)
                return r;
        memcpy(out, &rep, sizeof rep);
        *out_len = sizeof rep;
        return 0;
}

/* child_run_as(): the child is the user through and through (real, effective and saved IDs, no
 * supplementary group of root's) and holds no capability; the parent stays root. */
Test(child, run_as_another_user) {
        if (geteuid() != 0)
                cr_skip_test("switching users needs root");
        const uid_t uid = 65534 - 17; /* no account needed: the IDs are only numbers to the kernel */
        const gid_t gid = 65534 - 19;
        ids_report_t rep;
        size_t len = 0;
        cr_assert_eq(child_run_as(uid, gid, fn_ids, NULL, (uint8_t *) &rep, sizeof rep, &len, 0), 0);
        cr_assert_eq(len, sizeof rep);
        cr_assert(rep.ruid == uid && rep.euid == uid && rep.suid == uid, "uids %u %u %u", (unsigned) rep.ruid,
                  (unsigned) rep.euid, (unsigned) rep.suid);
        cr_assert(rep.rgid == gid && rep.egid == gid && rep.sgid == gid, "gids %u %u %u", (unsigned) rep.rgid,
                  (unsigned) rep.egid, (unsigned) rep.sgid);
        cr_assert_eq(rep.n_groups, 0);
        cr_assert_eq(rep.status.found, 63);
        cr_assert_eq(rep.status.eff | rep.status.prm | rep.status.amb, 0, "CapEff %llx CapPrm %llx",
                     (unsigned long long) rep.status.eff, (unsigned long long) rep.status.prm);
        cr_assert_eq(rep.status.no_new_privs, 1);
        cr_assert_eq(geteuid(), 0);
        cr_assert_eq(getegid(), 0);
}

/* The intermediate process spawns a child that marks itself running and sleeps, hands its
 * pid up, and exits; as a subreaper this test process inherits the orphan and can see how it
 * died: by the SIGKILL of PR_SET_PDEATHSIG. */
Test(child, dies_with_parent) {
        /* Every kernel msce supports has it; qemu-user (scripts/test-emulated.sh) does not
         * emulate this prctl and says EINVAL: the check cannot be made there. */
        if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 && errno == EINVAL)
                cr_skip_test("PR_SET_CHILD_SUBREAPER is not available here (EINVAL: qemu-user?)");
        cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
        volatile int *ready = mmap(NULL, sizeof(int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        cr_assert_neq((void *) ready, MAP_FAILED);
        *ready = 0;
        int pfd[2];
        cr_assert_eq(pipe2(pfd, O_CLOEXEC), 0);

        pid_t mid = fork();
        cr_assert_geq(mid, 0);
        if (mid == 0) {
                child_t c = CHILD_NULL;
                pid_t gpid = child_spawn(fn_sleep, (void *) ready, &c) == 0 ? c.pid : -1;
                /* wait until the grandchild runs fn: past its PR_SET_PDEATHSIG (a deadline
                 * for a hang only: 20 s, however loaded the machine) */
                uint64_t end = now_usec() + 20 * 1000000ULL;
                while (gpid > 0 && !*ready && now_usec() < end)
                        (void) usleep(1000);
                (void) !write(pfd[1], &gpid, sizeof gpid);
                _exit(0);
        }
        close(pfd[1]);
        pid_t gpid = -1;
        cr_assert_eq(read(pfd[0], &gpid, sizeof gpid), (ssize_t) sizeof gpid);
        close(pfd[0]);
        int st;
        cr_assert_eq(waitpid(mid, &st, 0), mid);
        cr_assert_gt(gpid, 0, "the intermediate could not spawn");
        cr_assert_eq(*ready, 1, "the grandchild never ran");

        /* The SIGKILL is sent when the parent exits; reaping it may take a while on a loaded
         * machine: 20 s is a deadline for "never", not a speed requirement. (fn_sleep itself
         * would end after 30 s, and then not by SIGKILL.) */
        pid_t w = 0;
        uint64_t end = now_usec() + 20 * 1000000ULL;
        while ((w = waitpid(gpid, &st, WNOHANG)) == 0 && now_usec() < end)
                (void) usleep(10000);
        if (w == 0) {
                (void) kill(gpid, SIGKILL);
                (void) waitpid(gpid, &st, 0);
                cr_assert_fail("the child outlived its parent by 20 s");
        }
        cr_assert_eq(w, gpid);
        cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
        errno = 0;
        cr_assert_eq(kill(gpid, 0), -1);
        cr_assert_eq(errno, ESRCH);
        munmap((void *) ready, sizeof(int));
}

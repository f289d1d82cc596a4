/* SPDX-License-Identifier: MIT */
/* Work in a short-lived, less privileged child process (util/child.h). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/child.h"
#include "util/macro.h"
#include "util/time.h"

#define CHILD_MAGIC 0x6d736365u /* "msce" */

typedef struct reply_header {
        uint32_t magic;
        int32_t result;
} reply_header_t;

/* The capabilities the agent holds for the keyring hand-over: no use to network or TPM code. */
static const int dropped_caps[] = { CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID, CAP_SETPCAP };

/* Fails (and the child gives up) when the capabilities are still there afterwards: a seccomp
 * filter that refuses capset() must not leave the network-facing child privileged. */
static int drop_privileges(void) {
        for (size_t i = 0; i < ELEMENTSOF(dropped_caps); i++)
                (void) prctl(PR_CAPBSET_DROP, dropped_caps[i], 0, 0, 0); /* EPERM without CAP_SETPCAP */
        (void) prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
        struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct d[2] = {};
        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        uint32_t mask[2] = { 0, 0 };
        for (size_t i = 0; i < ELEMENTSOF(dropped_caps); i++)
                mask[dropped_caps[i] / 32] |= 1u << (dropped_caps[i] % 32);
        bool held = false;
        for (unsigned w = 0; w < 2; w++) {
                held = held || (d[w].permitted & mask[w]) || (d[w].effective & mask[w]) || (d[w].inheritable & mask[w]);
                d[w].effective &= ~mask[w];
                d[w].permitted &= ~mask[w];
                d[w].inheritable &= ~mask[w];
        }
        if (held && syscall(SYS_capset, &h, d) < 0)
                return -errno;
        if (syscall(SYS_capget, &h, d) < 0)
                return -errno;
        for (unsigned w = 0; w < 2; w++)
                if ((d[w].permitted | d[w].effective) & mask[w])
                        return -EPERM;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        return 0;
}

/* Everything but 0-2 and 3 (the reply socket). */
static void close_others(void) {
        if (close_range(4, ~0u, 0) == 0)
                return;
        long max = sysconf(_SC_OPEN_MAX);
        for (long fd = 4; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
                (void) close((int) fd);
}

/* Who the child becomes before it runs fn (child_run_as()); NULL: it stays who the parent is. */
typedef struct child_user {
        uid_t uid;
        gid_t gid;
} child_user_t;

static _Noreturn void child_main(int fd, pid_t parent, const child_user_t *as, child_fn_t fn, void *userdata) {
        /* The parent's descriptors go first: one of them holds the agent's state-directory lock,
         * which a child must not keep once its parent is gone (agent/custody.c). */
        if (fd != 3) {
                if (dup2(fd, 3) < 0)
                        _exit(EXIT_FAILURE);
                fd = 3;
        }
        close_others();
        /* before PR_SET_PDEATHSIG, which a change of credentials clears */
        if (as && (setgroups(0, NULL) < 0 || setresgid(as->gid, as->gid, as->gid) < 0 ||
                   setresuid(as->uid, as->uid, as->uid) < 0))
                _exit(EXIT_FAILURE);
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
                _exit(EXIT_FAILURE);
        sigset_t none;
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        if (drop_privileges() < 0)
                _exit(EXIT_FAILURE);

        size_t cap = sizeof(reply_header_t) + CHILD_PAYLOAD_MAX;
        uint8_t *buf = calloc(1, cap);
        if (!buf)
                _exit(EXIT_FAILURE);
        size_t len = 0;
        int r = fn(userdata, buf + sizeof(reply_header_t), CHILD_PAYLOAD_MAX, &len);
        if (len > CHILD_PAYLOAD_MAX)
                len = 0, r = -EOVERFLOW;
        reply_header_t h = { .magic = CHILD_MAGIC, .result = r };
        memcpy(buf, &h, sizeof h);
        ssize_t n = send(fd, buf, sizeof h + len, MSG_NOSIGNAL);
        erase(buf, cap);
        _exit(n == (ssize_t) (sizeof h + len) ? EXIT_SUCCESS : EXIT_FAILURE);
}

static int spawn(const child_user_t *as, child_fn_t fn, void *userdata, child_t *ret) {
        if (!fn || !ret)
                return -EINVAL;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        /* The reply must fit in the socket buffer: the child sends it in one message. */
        int sz = (int) (sizeof(reply_header_t) + CHILD_PAYLOAD_MAX) * 2;
        (void) setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                int r = negative_errno();
                close(sv[0]);
                close(sv[1]);
                return r;
        }
        if (pid == 0) {
                close(sv[0]);
                child_main(sv[1], parent, as, fn, userdata);
        }
        close(sv[1]);
        int fl = fcntl(sv[0], F_GETFL);
        if (fl < 0 || fcntl(sv[0], F_SETFL, fl | O_NONBLOCK) < 0) {
                int r = negative_errno();
                child_t c = { .pid = pid, .fd = sv[0] };
                child_abort(&c);
                return r;
        }
        *ret = (child_t) { .pid = pid, .fd = sv[0], .status = 0 };
        return 0;
}

int child_spawn(child_fn_t fn, void *userdata, child_t *ret) {
        return spawn(NULL, fn, userdata, ret);
}

static void reap(child_t *c) {
        if (c->pid > 0) {
                int st = 0;
                while (waitpid(c->pid, &st, 0) < 0 && errno == EINTR)
                        ;
                c->status = st;
                c->pid = 0;
        }
        if (c->fd >= 0) {
                close(c->fd);
                c->fd = -1;
        }
}

void child_abort(child_t *c) {
        if (!c)
                return;
        if (c->pid > 0)
                (void) kill(c->pid, SIGKILL);
        reap(c);
}

int child_collect(child_t *c, int *ret_result, uint8_t *payload, size_t max, size_t *ret_len) {
        if (!c || c->fd < 0 || !ret_result || (max > 0 && !payload) || !ret_len)
                return -EINVAL;
        max = MIN(max, (size_t) CHILD_PAYLOAD_MAX);
        size_t cap = sizeof(reply_header_t) + max + 1; /* +1: a longer reply shows as truncated */
        uint8_t *buf = calloc(1, cap);
        if (!buf)
                return -ENOMEM;
        ssize_t n = recv(c->fd, buf, cap, MSG_DONTWAIT | MSG_TRUNC);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                free(buf);
                return -EAGAIN;
        }
        int r;
        reply_header_t h;
        if (n <= 0) {
                r = -ECHILD; /* ended (or the socket failed) without a reply */
                child_abort(c);
        } else if ((size_t) n < sizeof h || (size_t) n > cap - 1 ||
                   (memcpy(&h, buf, sizeof h), h.magic != CHILD_MAGIC) || h.result > 0 || h.result < -4095) {
                r = -EMSGSIZE;
                child_abort(c);
        } else {
                *ret_result = h.result;
                *ret_len = (size_t) n - sizeof h;
                if (*ret_len > 0)
                        memcpy(payload, buf + sizeof h, *ret_len);
                reap(c); /* it exits right after sending */
                r = 0;
        }
        erase_free(buf, cap);
        return r;
}

void child_describe(const child_t *c, char *buf, size_t size) {
        if (WIFSIGNALED(c->status))
                snprintf(buf, size, "killed by signal %d (%s)", WTERMSIG(c->status), strsignal(WTERMSIG(c->status)));
        else if (WIFEXITED(c->status))
                snprintf(buf, size, "exited with %d", WEXITSTATUS(c->status));
        else
                snprintf(buf, size, "ended");
}

static int run(const child_user_t *as, child_fn_t fn, void *userdata, uint8_t *payload, size_t max, size_t *ret_len,
               unsigned timeout_ms) {
        child_t c = CHILD_NULL;
        int r = spawn(as, fn, userdata, &c);
        if (r < 0)
                return r;
        /* in usec: a deadline in whole ms would expire up to 1 ms early */
        uint64_t deadline = timeout_ms ? now_usec() + (uint64_t) timeout_ms * 1000u : 0;
        for (;;) {
                int result;
                r = child_collect(&c, &result, payload, max, ret_len);
                if (r == 0)
                        return result;
                if (r != -EAGAIN)
                        return r;
                int wait = -1;
                if (deadline) {
                        uint64_t now = now_usec();
                        if (now >= deadline) {
                                child_abort(&c);
                                return -ETIMEDOUT;
                        }
                        wait = (int) MIN((deadline - now + 999u) / 1000u, (uint64_t) INT32_MAX);
                }
                struct pollfd p = { .fd = c.fd, .events = POLLIN };
                if (poll(&p, 1, wait) < 0 && errno != EINTR) {
                        r = negative_errno();
                        child_abort(&c);
                        return r;
                }
        }
}

int child_run(child_fn_t fn, void *userdata, uint8_t *payload, size_t max, size_t *ret_len, unsigned timeout_ms) {
        return run(NULL, fn, userdata, payload, max, ret_len, timeout_ms);
}

int child_run_as(uid_t uid, gid_t gid, child_fn_t fn, void *userdata, uint8_t *payload, size_t max, size_t *ret_len,
                 unsigned timeout_ms) {
        return run(&(child_user_t) { .uid = uid, .gid = gid }, fn, userdata, payload, max, ret_len, timeout_ms);
}

/* ---- on an event loop ---- */

struct child_watch {
        child_t child;
        sd_event_source *io, *timer;
        child_watch_done_t done;
        void *userdata;
};

static void watch_finish(child_watch_t *w, int r, int result, const uint8_t *payload, size_t len) {
        w->io = sd_event_source_disable_unref(w->io);
        w->timer = sd_event_source_disable_unref(w->timer);
        w->done(w, r, result, payload, len, w->userdata); /* last: may free w */
}

static int on_watch_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        child_watch_t *w = userdata;
        _cleanup_secret_ secret_t buf = { .data = malloc(CHILD_PAYLOAD_MAX), .len = CHILD_PAYLOAD_MAX };
        if (!buf.data) {
                child_abort(&w->child);
                watch_finish(w, -ENOMEM, 0, NULL, 0);
                return 0;
        }
        int result = 0;
        size_t len = 0;
        int r = child_collect(&w->child, &result, buf.data, buf.len, &len);
        if (r != -EAGAIN)
                watch_finish(w, r, result, r == 0 ? buf.data : NULL, r == 0 ? len : 0);
        return 0;
}

static int on_watch_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        child_watch_t *w = userdata;
        child_abort(&w->child);
        watch_finish(w, -ETIMEDOUT, 0, NULL, 0);
        return 0;
}

int child_watch_start(sd_event *e, child_fn_t fn, void *fn_userdata, uint64_t timeout_usec, child_watch_done_t done,
                      void *userdata, child_watch_t **ret) {
        if (!e || !fn || !done || !ret)
                return -EINVAL;
        _cleanup_(child_watch_freep) child_watch_t *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        *w = (child_watch_t) { .child = CHILD_NULL, .done = done, .userdata = userdata };
        int r = child_spawn(fn, fn_userdata, &w->child);
        if (r >= 0)
                r = sd_event_add_io(e, &w->io, w->child.fd, EPOLLIN, on_watch_io, w);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &w->timer, CLOCK_MONOTONIC, timeout_usec, 0, on_watch_timeout, w);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

child_watch_t *child_watch_free(child_watch_t *w) {
        if (!w)
                return NULL;
        w->io = sd_event_source_disable_unref(w->io);
        w->timer = sd_event_source_disable_unref(w->timer);
        child_abort(&w->child);
        free(w);
        return NULL;
}

void child_watch_describe(const child_watch_t *w, char *buf, size_t size) {
        child_describe(&w->child, buf, size);
}

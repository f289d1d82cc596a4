/* SPDX-License-Identifier: MIT */
#pragma once
/* Work done in a short-lived child process (fork, no exec): what it touches - TLS, HTTP and
 * JSON parsing of network input, the TPM libraries and the libcrypto they load - never maps
 * into the long-lived daemon, and its heap goes away when it exits. The child:
 *   - dies with its parent (PR_SET_PDEATHSIG SIGKILL);
 *   - has an empty signal mask (the daemon blocks its signals for sd-event; the dispositions are
 *     inherited: SIGPIPE stays ignored, as wolfSSL writes without MSG_NOSIGNAL), and no file
 *     descriptors but 0-2 and its reply socket;
 *   - loses the daemon's privileged capabilities (CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID,
 *     CAP_SETPCAP, also from the ambient and, where allowed, the bounding set) and runs with
 *     no_new_privs; file access rights stay. When that cannot be done (a seccomp filter refusing
 *     capset()), the child exits without a reply rather than run privileged;
 *   - sends exactly one reply: an int result and a payload of at most CHILD_PAYLOAD_MAX bytes, in
 *     one SOCK_SEQPACKET message, then _exit()s.
 * The caller validates the payload like any other input: the child parsed untrusted bytes. */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#define CHILD_PAYLOAD_MAX 16384u

/* Runs in the child. Writes at most max bytes to out and sets *out_len; returns 0 or a
 * negative errno (passed to the parent as the result). out is wiped after sending. */
typedef int (*child_fn_t)(void *userdata, uint8_t *out, size_t max, size_t *out_len);

typedef struct child {
        pid_t pid;
        int fd;     /* the parent's end: readable when the reply (or EOF) is there; nonblocking */
        int status; /* waitpid() status once reaped (pid is then 0), for saying why it ended */
} child_t;

#define CHILD_NULL ((child_t) { .pid = 0, .fd = -1, .status = 0 })

/* Fork and run fn in the child. On success *ret holds the running child. */
int child_spawn(child_fn_t fn, void *userdata, child_t *ret);

/* Read the reply and reap the child. Returns 0 with *ret_result (fn's return value) and the
 * payload (at most max bytes, *ret_len) or -EAGAIN when nothing is there yet (fd not readable
 * yet; the child still runs), or -ECHILD when the child ended without a reply (crash, kill)
 * and -EMSGSIZE for a reply of the wrong shape: then the child is killed and reaped too. */
int child_collect(child_t *c, int *ret_result, uint8_t *payload, size_t max, size_t *ret_len);

/* Kill (SIGKILL) and reap a child still running, close the fd. Idempotent. */
void child_abort(child_t *c);

/* "exited with 3", "killed by signal 11": for a reason text. */
void child_describe(const child_t *c, char *buf, size_t size);

/* spawn + wait + collect, blocking. Returns fn's result, or -ECHILD/-EMSGSIZE as above, or
 * -ETIMEDOUT (the child killed) when timeout_ms (0: none) passed first. */
int child_run(child_fn_t fn, void *userdata, uint8_t *payload, size_t max, size_t *ret_len, unsigned timeout_ms);

/* child_run(), the child first becoming uid and gid (no supplementary groups), for work done
 * as another user would do it. Needs the rights to switch (root); the child exits without a
 * reply (-ECHILD) when it cannot. */
int child_run_as(uid_t uid, gid_t gid, child_fn_t fn, void *userdata, uint8_t *payload, size_t max, size_t *ret_len,
                 unsigned timeout_ms);

/* A child watched on an sd-event loop, for a caller that must not block. done runs once, from
 * the loop: r is 0 with the reply (result, and the payload, valid during the call only, wiped
 * after), -ECHILD or -EMSGSIZE as child_collect() says, -ETIMEDOUT when timeout_usec passed
 * first (the child is killed), or -ENOMEM. done may free the watch. */
typedef struct child_watch child_watch_t;
typedef void (*child_watch_done_t)(child_watch_t *w, int r, int result, const uint8_t *payload, size_t len,
                                   void *userdata);
int child_watch_start(sd_event *e, child_fn_t fn, void *fn_userdata, uint64_t timeout_usec, child_watch_done_t done,
                      void *userdata, child_watch_t **ret);
/* Kills a child still running. NULL is fine. Returns NULL. */
child_watch_t *child_watch_free(child_watch_t *w);
static inline void child_watch_freep(child_watch_t **w) {
        child_watch_free(*w);
}
/* child_describe() of the watched child, once it ended. */
void child_watch_describe(const child_watch_t *w, char *buf, size_t size);

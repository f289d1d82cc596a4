/* SPDX-License-Identifier: MIT */
/* The worker supervisor. Workers report to it as they would to systemd: their sd_notify goes to
 * a private datagram socket (NOTIFY_SOCKET set in the child), so the server code is the same with
 * one process or many, and the supervisor alone talks to systemd (NotifyAccess=main). */
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "mef/cli.h"
#include "mef/log.h"
#include "mef/workers.h"
#include "util/util.h"

#define WORKERS_MAX 256u
_Static_assert(WORKERS_MAX <= MEF_METRICS_WORKERS, "a metrics slot for each worker");
#define RESTART_MIN_USEC (100u * 1000u)
#define RESTART_MAX_USEC (10u * 1000u * 1000u)
#define RESTART_RESET_USEC (30u * 1000u * 1000u) /* a worker that ran this long starts the backoff afresh */
#define NOTIFY_BATCH 16u /* datagrams read per wake-up: the loop has timers, signals and children too */

typedef struct supervisor supervisor_t;

typedef struct worker {
        supervisor_t *sup;
        unsigned index;
        pid_t pid;               /* 0 when not running */
        bool ready;
        uint64_t started;
        uint64_t last_ping;      /* WATCHDOG=1 or READY=1, when the watchdog is on */
        bool killed;             /* by the watchdog check or the start timeout, once */
        unsigned failures;       /* deaths in a row, for the restart delay */
        sd_event_source *child;
        sd_event_source *restart;
        sd_event_source *start;  /* the start timeout, until READY=1 */
} worker_t;

struct supervisor {
        const mef_config_t *cfg;
        mef_config_t wcfg;       /* what the workers get: cfg with the ports resolved */
        char port[8], metrics_port[8];
        mef_worker_fn_t fn;
        mef_metrics_t *metrics;  /* shared with the workers; NULL: off */
        sd_event *event;
        int notify_fd;
        int reserve_fd;          /* holds a kernel-chosen port while workers (re)bind it */
        int metrics_reserve_fd;  /* the same for the metrics port */
        /* the socket's directory ("": none made) and path, which must fit in sun_path */
        char notify_path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        char notify_dir[sizeof(((struct sockaddr_un *) NULL)->sun_path) - sizeof "/notify" + 1];
        worker_t *workers;
        unsigned n;
        uint64_t watchdog_usec;  /* systemd's, passed on to the workers; 0: off */
        bool announced, stopping;
        int status;              /* exit status */
};

unsigned mef_workers_count(const mef_config_t *cfg) {
        if (cfg->workers > 0)
                return MIN(cfg->workers, WORKERS_MAX);
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
                return MIN((unsigned) CPU_COUNT(&set), WORKERS_MAX);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 ? MIN((unsigned) n, WORKERS_MAX) : 1;
}

/* Bind (without listening) a socket to host (NULL, "" or "*": every address) and port, the first
 * of its addresses that binds: its fd, the port bound in ret_port. */
static int port_bind(const char *host, const char *port, bool reuseport, int *ret_fd, char ret_port[static 8]) {
        if (host && (!*host || streq(host, "*")))
                host = NULL;
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
        struct addrinfo *res = NULL;
        if (getaddrinfo(host, port, &hints, &res) != 0)
                return -EADDRNOTAVAIL;
        int r = -EADDRNOTAVAIL;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
                int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol), one = 1;
                struct sockaddr_storage sa;
                socklen_t len = sizeof sa;
                if (fd < 0)
                        continue;
                if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
                    (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
                    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || getsockname(fd, (struct sockaddr *) &sa, &len) < 0) {
                        r = negative_errno();
                        close(fd);
                        if (r == -EADDRINUSE)
                                break;
                        continue;
                }
                unsigned p = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *) &sa)->sin6_port)
                                                      : ntohs(((struct sockaddr_in *) &sa)->sin_port);
                snprintf(ret_port, 8, "%u", p);
                *ret_fd = fd;
                r = 0;
                break;
        }
        freeaddrinfo(res);
        return r;
}

/* Port 0: a SO_REUSEPORT socket bound for the kernel to pick the port, kept bound (in
 * *reserve_fd) so that the port stays ours while workers come and go, and every worker binds that
 * one port. A port given: bound once without SO_REUSEPORT and let go, so that another process
 * already listening there with SO_REUSEPORT (a second msce-mef of this user, with another store)
 * is found now: the workers' own SO_REUSEPORT binds would join its group and share the port's
 * connections with it. For the gateways' port and the metrics port alike. */
static int port_reserve(const char *host, const char *port, int *reserve_fd, char ret_port[static 8]) {
        if (!streq(port, "0")) {
                int fd = -1;
                int r = port_bind(host, port, false, &fd, ret_port);
                if (fd >= 0)
                        close(fd);
                return r;
        }
        return port_bind(host, "0", true, reserve_fd, ret_port);
}

#define NOTIFY_DIR_PREFIX "msce-mef-"

/* The directories of supervisors that were killed (SIGKILL: nothing removed them; outside
 * systemd, whose RuntimeDirectory= goes with the service) in base (base_len bytes): named as
 * notify_open() names them, this user's, holding a socket nothing is bound to any more (connect()
 * says ECONNREFUSED; a live supervisor's takes it). One still being made (no socket yet) stays.
 * In a sticky /tmp no other user can rename or replace this user's entries. */
static void notify_sweep(const char *base, int base_len) {
        char path[sizeof(((struct sockaddr_un *) NULL)->sun_path)];
        _cleanup_closedir_ DIR *d = NULL;
        if (snprintf(path, sizeof path, "%.*s", base_len, base) >= (int) sizeof path || !(d = opendir(path)))
                return;
        for (struct dirent *e; (e = readdir(d));) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                struct stat st;
                if (strncmp(e->d_name, NOTIFY_DIR_PREFIX, strlen(NOTIFY_DIR_PREFIX)) != 0 ||
                    strlen(e->d_name) != strlen(NOTIFY_DIR_PREFIX "XXXXXX") ||
                    fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
                    st.st_uid != geteuid())
                        continue;
                int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%.*s/%s/notify", base_len, base, e->d_name);
                if (n < 0 || (size_t) n >= sizeof sa.sun_path || lstat(sa.sun_path, &st) < 0 || !S_ISSOCK(st.st_mode))
                        continue;
                _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
                if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0 || errno != ECONNREFUSED)
                        continue;
                (void) unlink(sa.sun_path);
                (void) unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR);
        }
}

/* A datagram socket that passes the sender's credentials, bound to a path in a directory of its
 * own (mkdtemp: mode 0700), so that only this user's processes can send to it: an abstract
 * socket has no permission check, and any local user could flood it. In $RUNTIME_DIRECTORY
 * (the service's RuntimeDirectory=), else /tmp: not $TMPDIR, which may be too long for sun_path.
 * Killed supervisors' directories there are removed first (notify_sweep()). */
static int notify_open(supervisor_t *s) {
        const char *base = getenv("RUNTIME_DIRECTORY") ?: "/tmp";
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int one = 1;
        /* RUNTIME_DIRECTORY may list several, separated by colons: the first */
        int base_len = (int) strcspn(base, ":");
        notify_sweep(base, base_len);
        int n = snprintf(s->notify_dir, sizeof s->notify_dir, "%.*s/" NOTIFY_DIR_PREFIX "XXXXXX", base_len, base);
        if (n < 0 || (size_t) n >= sizeof s->notify_dir) {
                s->notify_dir[0] = 0;
                return -ENAMETOOLONG;
        }
        if (!mkdtemp(s->notify_dir)) {
                s->notify_dir[0] = 0;
                return negative_errno();
        }
        snprintf(s->notify_path, sizeof s->notify_path, "%s/notify", s->notify_dir);
        memcpy(sa.sun_path, s->notify_path, strlen(s->notify_path) + 1);
        s->notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s->notify_fd < 0)
                return negative_errno();
        if (bind(s->notify_fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
            setsockopt(s->notify_fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one) < 0)
                return negative_errno();
        return 0;
}

static worker_t *worker_by_pid(supervisor_t *s, pid_t pid) {
        for (unsigned i = 0; i < s->n; i++)
                if (s->workers[i].pid == pid && pid > 0)
                        return &s->workers[i];
        return NULL;
}

static unsigned workers_running(const supervisor_t *s) {
        unsigned n = 0;
        for (unsigned i = 0; s->workers && i < s->n; i++)
                n += s->workers[i].pid > 0;
        return n;
}

static void supervisor_stop(supervisor_t *s, int status) {
        if (!s->stopping) {
                s->stopping = true;
                s->status = status;
                (void) sd_notify(0, "STOPPING=1");
        }
        /* a setup that failed may not have made the workers or the loop yet */
        for (unsigned i = 0; s->workers && i < s->n; i++) {
                worker_t *w = &s->workers[i];
                w->restart = sd_event_source_disable_unref(w->restart);
                if (w->pid > 0)
                        (void) kill(w->pid, SIGTERM);
        }
        if (workers_running(s) == 0 && s->event)
                (void) sd_event_exit(s->event, 0);
}

static int on_child(sd_event_source *src, const siginfo_t *si, void *userdata);

/* As systemd does for a service, the watchdog runs from READY=1 on; before it, a (re)started
 * worker has [server] worker_start_timeout (systemd's default TimeoutStartSec, 90 s) to listen,
 * with or without a watchdog: one stuck in its setup (a store that does not answer, a disk that
 * hangs) is killed, and fails the start or is restarted as a worker that died. Not shorter by
 * default: opening the store can take seconds on a loaded host, and a worker killed for that
 * would be restarted into the same load, ever later. While stopping too: a worker stuck there
 * has SIGTERM blocked (its signalfd is not made yet) and would hold the stop up. */
#define START_ACCURACY_USEC (100u * 1000u)
static int on_start_timeout(sd_event_source *src, uint64_t usec, void *userdata) {
        worker_t *w = userdata;
        w->start = sd_event_source_disable_unref(w->start);
        if (w->pid <= 0 || w->ready || w->killed)
                return 0;
        log_error("worker %u (pid %d) not listening %llu ms after it started: killing it", w->index + 1, (int) w->pid,
                  (unsigned long long) ((now_usec() - w->started) / 1000u));
        (void) kill(w->pid, SIGKILL);
        w->killed = true;
        return 0;
}

static int worker_spawn(worker_t *w) {
        supervisor_t *s = w->sup;
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                /* the worker dies with the supervisor, whatever kills it */
                if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
                        _exit(MEF_EXIT_FAILURE);
                close(s->notify_fd);
                if (s->reserve_fd >= 0)
                        close(s->reserve_fd);
                if (s->metrics_reserve_fd >= 0)
                        close(s->metrics_reserve_fd);
                /* the supervisor pings systemd's watchdog; the worker pings the supervisor */
                char pid_s[16], usec_s[24];
                snprintf(pid_s, sizeof pid_s, "%d", (int) getpid());
                snprintf(usec_s, sizeof usec_s, "%llu", (unsigned long long) s->watchdog_usec);
                if (setenv("NOTIFY_SOCKET", s->notify_path, 1) < 0 ||
                    (s->watchdog_usec > 0 && (setenv("WATCHDOG_PID", pid_s, 1) < 0 || setenv("WATCHDOG_USEC", usec_s, 1) < 0)))
                        _exit(MEF_EXIT_FAILURE);
                if (s->watchdog_usec == 0) {
                        (void) unsetenv("WATCHDOG_PID");
                        (void) unsetenv("WATCHDOG_USEC");
                }
                /* its open connections counted apart, so that they go with it should it die */
                mef_metrics_use_slot(s->metrics, w->index + 1);
                /* the admin API ([admin] listen) and retention ([audit] keep) run in the first
                 * worker only: each pass is a chain of write transactions on the one store, and
                 * a pass in every worker deleted the same rows N times over, against the
                 * enrolments (a restarted worker 1 starts it again) */
                if (w->index > 0) {
                        s->wcfg.admin_host = NULL;
                        s->wcfg.audit_keep_usec = 0;
                }
                _exit(s->fn(&s->wcfg));
        }
        w->pid = pid;
        w->ready = w->killed = false;
        w->started = w->last_ping = now_usec();
        int r = sd_event_add_child(s->event, &w->child, pid, WEXITED, on_child, w);
        if (r >= 0)
                r = sd_event_add_time(s->event, &w->start, CLOCK_MONOTONIC,
                                      w->started + s->cfg->worker_start_timeout_usec, START_ACCURACY_USEC,
                                      on_start_timeout, w);
        if (r < 0) {
                w->child = sd_event_source_disable_unref(w->child);
                (void) kill(pid, SIGKILL);
                (void) waitpid(pid, NULL, 0);
                w->pid = 0;
        }
        return r;
}

static int on_restart(sd_event_source *src, uint64_t usec, void *userdata) {
        worker_t *w = userdata;
        w->restart = sd_event_source_disable_unref(w->restart);
        int r = worker_spawn(w);
        if (r < 0) {
                log_error_errno(r, "cannot restart worker %u: %m", w->index + 1);
                supervisor_stop(w->sup, MEF_EXIT_FAILURE);
        }
        return 0;
}

static void exit_describe(const siginfo_t *si, char *buf, size_t size) {
        if (si->si_code == CLD_EXITED)
                snprintf(buf, size, "exited with status %d", si->si_status);
        else
                snprintf(buf, size, "was killed by SIG%s", sigabbrev_np(si->si_status) ?: "?");
}

/* Whether SIGTERM or SIGINT waits for us (blocked: on_signal() reads it). */
static bool stop_pending(void) {
        sigset_t p;
        return sigpending(&p) == 0 && (sigismember(&p, SIGTERM) == 1 || sigismember(&p, SIGINT) == 1);
}

static int on_child(sd_event_source *src, const siginfo_t *si, void *userdata) {
        worker_t *w = userdata;
        supervisor_t *s = w->sup;
        char how[64];
        bool was_ready = w->ready;
        exit_describe(si, how, sizeof how);
        w->child = sd_event_source_disable_unref(w->child);
        w->start = sd_event_source_disable_unref(w->start);
        w->pid = 0;
        w->ready = false;
        /* the kernel closed its connections: the gauge must not count them on */
        mef_metrics_clear_slot(s->metrics, w->index + 1);
        if (s->stopping) {
                if (si->si_code != CLD_EXITED || si->si_status != 0)
                        log_warning("worker %u %s while stopping", w->index + 1, how);
                if (workers_running(s) == 0)
                        (void) sd_event_exit(s->event, 0);
                return 0;
        }
        if (si->si_code == CLD_EXITED && si->si_status == 0 && stop_pending()) {
                /* systemctl stop signals the whole cgroup: the worker's exit may come in before our
                 * own signal, which is pending then. A stop, not a failure to start nor a death to
                 * restart it after; without that signal (one worker's own SIGTERM) it is restarted. */
                log_info("worker %u (pid %d) stopped: stopping the others", w->index + 1, (int) si->si_pid);
                supervisor_stop(s, 0);
                return 0;
        }
        if (!s->announced) {
                /* a worker that cannot start (port taken, store unreadable) fails the service */
                log_error("worker %u %s before all workers were listening: stopping", w->index + 1, how);
                supervisor_stop(s, si->si_code == CLD_EXITED && si->si_status != 0 ? si->si_status : MEF_EXIT_FAILURE);
                return 0;
        }
        uint64_t now = now_usec();
        if (now - w->started >= RESTART_RESET_USEC)
                w->failures = 0;
        uint64_t delay = MIN(RESTART_MIN_USEC << MIN(w->failures, 16u), (uint64_t) RESTART_MAX_USEC);
        w->failures++;
        log_warning("worker %u (pid %d) %s%s: restarting it in %llu ms", w->index + 1, (int) si->si_pid, how,
                    was_ready ? "" : " before it was listening", (unsigned long long) (delay / 1000u));
        int r = sd_event_add_time(s->event, &w->restart, CLOCK_MONOTONIC, now + delay, 0, on_restart, w);
        if (r < 0) {
                log_error_errno(r, "cannot schedule the restart of worker %u: %m", w->index + 1);
                supervisor_stop(s, MEF_EXIT_FAILURE);
        }
        return 0;
}

static void announce(supervisor_t *s) {
        if (s->announced)
                return;
        for (unsigned i = 0; i < s->n; i++)
                if (!s->workers[i].ready)
                        return;
        s->announced = true;
        const char *host = s->cfg->listen_host && *s->cfg->listen_host ? s->cfg->listen_host : "*";
        bool v6 = strchr(host, ':') != NULL;
        log_info("%u workers listening on %s%s%s:%s", s->n, v6 ? "[" : "", host, v6 ? "]" : "", s->wcfg.listen_port);
        if (s->reserve_fd >= 0)
                /* the port was chosen by the kernel: tell whoever started us (tests), as serve does */
                printf("listening on %s%s%s:%s\n", v6 ? "[" : "", host, v6 ? "]" : "", s->wcfg.listen_port);
        if (s->metrics_reserve_fd >= 0) {
                bool mv6 = strchr(s->cfg->metrics_host, ':') != NULL;
                printf("metrics on %s%s%s:%s\n", mv6 ? "[" : "", s->cfg->metrics_host, mv6 ? "]" : "", s->wcfg.metrics_port);
        }
        fflush(stdout);
        (void) sd_notifyf(0, "READY=1\nSTATUS=Serving with %u workers", s->n);
}

/* A worker's sd_notify datagram: READY=1 is all we act on. At most NOTIFY_BATCH at a time: the
 * source is level-triggered, so the rest wait for the next iteration, after the signals,
 * children and timers that are due (however fast datagrams come). */
static int on_notify(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        supervisor_t *s = userdata;
        for (unsigned i = 0; i < NOTIFY_BATCH; i++) {
                char buf[4096];
                union {
                        struct cmsghdr h;
                        uint8_t b[CMSG_SPACE(sizeof(struct ucred))];
                } ctl = {};
                struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf - 1 };
                struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof ctl };
                ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (n < 0)
                        return 0; /* EAGAIN, or nothing we can do about it */
                buf[n] = 0;
                const struct ucred *cred = NULL;
                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                            c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                                cred = (const struct ucred *) CMSG_DATA(c);
                worker_t *w = cred ? worker_by_pid(s, cred->pid) : NULL;
                if (!w)
                        continue;
                for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                        if (streq(line, "READY=1")) {
                                w->ready = true, w->last_ping = now_usec();
                                w->start = sd_event_source_disable_unref(w->start);
                        } else if (streq(line, "WATCHDOG=1"))
                                w->last_ping = now_usec();
                if (w->ready)
                        announce(s);
        }
        return 0;
}

/* A worker that stopped pinging (stuck in a loop, or stopped) is killed: on_child restarts it. */
static int on_watchdog_check(sd_event_source *src, uint64_t usec, void *userdata) {
        supervisor_t *s = userdata;
        uint64_t now = now_usec();
        for (unsigned i = 0; i < s->n && !s->stopping; i++) {
                worker_t *w = &s->workers[i];
                if (w->pid <= 0 || w->killed)
                        continue;
                if (!w->ready || now - w->last_ping <= s->watchdog_usec)
                        continue;
                log_error("worker %u (pid %d) sent no watchdog ping in %llu ms: killing it", w->index + 1, (int) w->pid,
                          (unsigned long long) ((now - w->last_ping) / 1000u));
                (void) kill(w->pid, SIGKILL);
                w->killed = true;
        }
        (void) sd_event_source_set_time(src, now + s->watchdog_usec / 2);
        return 0;
}

static int on_signal(sd_event_source *src, const struct signalfd_siginfo *si, void *userdata) {
        supervisor_t *s = userdata;
        log_info("received %s: stopping %u workers", strsignal((int) si->ssi_signo), workers_running(s));
        supervisor_stop(s, s->stopping ? s->status : 0);
        return 0;
}

/* A stop signal goes before any worker's exit: sd-event reads the signal as it becomes pending,
 * so when a worker's exit 0 (systemctl stop signals the whole cgroup) is pending in the same
 * iteration, on_child() must see s->stopping; stop_pending() would no longer find it. */
static int stop_signal_add(supervisor_t *s, int sig) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *src = NULL;
        int r = sd_event_add_signal(s->event, &src, sig, on_signal, s);
        if (r >= 0)
                r = sd_event_source_set_priority(src, SD_EVENT_PRIORITY_IMPORTANT);
        if (r >= 0)
                r = sd_event_source_set_floating(src, true);
        return r;
}

static void supervisor_done(supervisor_t *s) {
        for (unsigned i = 0; s->workers && i < s->n; i++) {
                worker_t *w = &s->workers[i];
                w->restart = sd_event_source_disable_unref(w->restart);
                w->child = sd_event_source_disable_unref(w->child);
                w->start = sd_event_source_disable_unref(w->start);
                if (w->pid > 0) {
                        (void) kill(w->pid, SIGKILL);
                        (void) waitpid(w->pid, NULL, 0);
                }
        }
        free(s->workers);
        s->event = sd_event_unref(s->event);
        if (s->notify_fd >= 0)
                close(s->notify_fd);
        if (s->reserve_fd >= 0)
                close(s->reserve_fd);
        if (s->metrics_reserve_fd >= 0)
                close(s->metrics_reserve_fd);
        if (s->notify_dir[0]) {
                (void) unlink(s->notify_path);
                (void) rmdir(s->notify_dir);
        }
}

/* port_reserve() for one of our listeners; what: "" for the gateways', else which one. */
static int supervisor_reserve(const char *host, const char *port, const char *what, int *reserve_fd, char ret_port[static 8]) {
        int r = port_reserve(host, port, reserve_fd, ret_port);
        if (r == -EADDRINUSE)
                return log_error_errno(r, "cannot listen on %s port %s%s: in use (another msce-mef?)", host, port, what);
        if (r < 0)
                return log_error_errno(r, "cannot choose a port on %s%s: %m", host, what);
        return 0;
}

static int supervisor_setup(supervisor_t *s) {
        int r;
        if (s->cfg->listen_port) {
                r = supervisor_reserve(s->cfg->listen_host, s->cfg->listen_port, "", &s->reserve_fd, s->port);
                if (r < 0)
                        return r;
                s->wcfg.listen_port = s->port;
        }
        if (s->cfg->metrics_host && s->cfg->metrics_port) {
                r = supervisor_reserve(s->cfg->metrics_host, s->cfg->metrics_port, " ([metrics] listen)",
                                       &s->metrics_reserve_fd, s->metrics_port);
                if (r < 0)
                        return r;
                s->wcfg.metrics_port = s->metrics_port;
        }
        r = notify_open(s);
        if (r < 0)
                return log_error_errno(r, "cannot open the workers' notification socket: %m");
        s->workers = calloc(s->n, sizeof *s->workers);
        if (!s->workers)
                return log_error_errno(-ENOMEM, "cannot start workers: %m");
        r = sd_event_new(&s->event);
        if (r >= 0)
                r = stop_signal_add(s, SIGTERM);
        if (r >= 0)
                r = stop_signal_add(s, SIGINT);
        if (r >= 0)
                r = sd_event_add_io(s->event, NULL, s->notify_fd, EPOLLIN, on_notify, s);
        if (r >= 0)
                r = sd_event_set_watchdog(s->event, true);
        if (r >= 0 && sd_watchdog_enabled(false, &s->watchdog_usec) > 0 && s->watchdog_usec > 0) {
                sd_event_source *check = NULL;
                r = sd_event_add_time_relative(s->event, &check, CLOCK_MONOTONIC, s->watchdog_usec / 2, 0,
                                               on_watchdog_check, s);
                if (r >= 0)
                        r = sd_event_source_set_enabled(check, SD_EVENT_ON);
                if (r >= 0)
                        r = sd_event_source_set_floating(check, true);
                sd_event_source_unref(check);
        } else
                s->watchdog_usec = 0;
        if (r < 0)
                return log_error_errno(r, "cannot set up the supervisor's event loop: %m");
        for (unsigned i = 0; i < s->n; i++) {
                s->workers[i] = (worker_t) { .sup = s, .index = i };
                r = worker_spawn(&s->workers[i]);
                if (r < 0)
                        return log_error_errno(r, "cannot start worker %u: %m", i + 1);
        }
        return 0;
}

int mef_workers_run(const mef_config_t *cfg, mef_metrics_t *metrics, mef_worker_fn_t fn) {
        supervisor_t s = {
                .cfg = cfg,
                .wcfg = *cfg,
                .fn = fn,
                .metrics = metrics,
                .notify_fd = -1,
                .reserve_fd = -1,
                .metrics_reserve_fd = -1,
                .n = mef_workers_count(cfg),
        };
        sigset_t mask, old;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGCHLD);
        /* sd-event takes these through a signalfd and waitid: they must be blocked (workers
         * inherit the mask; the server blocks SIGTERM/SIGINT itself and never forks) */
        if (sigprocmask(SIG_BLOCK, &mask, &old) < 0)
                return log_error_errno(negative_errno(), "cannot block signals: %m"), MEF_EXIT_FAILURE;
        int r = supervisor_setup(&s);
        if (r < 0)
                supervisor_stop(&s, MEF_EXIT_FAILURE);
        if (workers_running(&s) > 0) {
                r = sd_event_loop(s.event);
                if (r < 0) {
                        log_error_errno(r, "supervisor event loop failed: %m");
                        s.status = MEF_EXIT_FAILURE;
                }
        }
        supervisor_done(&s);
        sigprocmask(SIG_SETMASK, &old, NULL);
        return s.status;
}

/* SPDX-License-Identifier: MIT */
/* state.json and profile.json as mscectl reads them (ctl/runtime.h). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>

#include "ctl/runtime.h"
#include "util/text.h"
#include "util/util.h"

static int _printf_(3, 4) bad(char *err, size_t err_size, const char *fmt, ...) {
        if (err && err_size) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(err, err_size, fmt, ap);
                va_end(ap);
        }
        return -EBADMSG;
}

static int json_parse(const char *text, size_t len, json_t **ret, char *err, size_t err_size) {
        if (len > CTL_JSON_MAX)
                return bad(err, err_size, "larger than %u bytes", CTL_JSON_MAX);
        json_error_t e;
        json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
        if (!o) {
                /* jansson's text quotes up to 20 bytes near the error as they are: no control
                 * or non-ASCII byte of the file reaches the terminal */
                return bad(err, err_size, "not JSON (line %d column %d: %s)", e.line, e.column,
                           text_clean(e.text, TEXT_ASCII));
        }
        if (!json_is_object(o)) {
                json_decref(o);
                return bad(err, err_size, "not a JSON object");
        }
        *ret = o;
        return 0;
}

static bool has_control(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return true;
        return false;
}

/* A string member that may be absent or null. strict: control characters are an error
 * (values that go into an environment file), else they become '?' (values that are printed,
 * C1 controls too). */
static int get_string(json_t *o, const char *key, size_t max, bool strict, char **ret, char *err,
                      size_t err_size) {
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return bad(err, err_size, "\"%s\" is not a string", key);
        size_t n = json_string_length(v);
        const char *s = json_string_value(v);
        if (n > max)
                return bad(err, err_size, "\"%s\" is longer than %zu bytes", key, max);
        if (memchr(s, 0, n))
                return bad(err, err_size, "\"%s\" contains a NUL", key);
        if (strict && has_control(s, n))
                return bad(err, err_size, "\"%s\" contains control characters", key);
        char *d = text_dup(s, TEXT_PRINTABLE); /* jansson's strings are UTF-8 */
        if (!d)
                return -ENOMEM;
        free(*ret);
        *ret = d;
        return 0;
}

/* A time member: a string (kept as it is), or a non-negative integer (kept in decimal). */
static int get_time(json_t *o, const char *key, char **ret, char *err, size_t err_size) {
        json_t *v = json_object_get(o, key);
        if (v && json_is_integer(v)) {
                json_int_t i = json_integer_value(v);
                if (i < 0)
                        return bad(err, err_size, "\"%s\" is negative", key);
                char *d;
                if (asprintf(&d, "%" JSON_INTEGER_FORMAT, i) < 0)
                        return -ENOMEM;
                free(*ret);
                *ret = d;
                return 0;
        }
        return get_string(o, key, 64, false, ret, err, err_size);
}

/* An integer member in [min, max] that may be absent or null (*ret untouched); what: what
 * it is not otherwise ("a process ID"). */
static int get_int(json_t *o, const char *key, json_int_t min, json_int_t max, const char *what, json_int_t *ret,
                   char *err, size_t err_size) {
        json_t *v = json_object_get(o, key);
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
                return bad(err, err_size, "\"%s\" is not %s", key, what);
        *ret = json_integer_value(v);
        return 0;
}

static int required(const char *v, const char *key, char *err, size_t err_size) {
        return v && v[0] ? 0 : bad(err, err_size, "\"%s\" is missing", key);
}

/* The expiry, which says whether the profile is still valid: a time ctl_time_parse() takes, or
 * an error (an expiry it cannot read must not pass for one not yet reached). */
static int exp_check(const char *v, char *err, size_t err_size) {
        time_t t;
        int r = ctl_time_parse(v, &t);
        if (r == -ERANGE) /* well-formed: only digits and separators to quote */
                return bad(err, err_size, "\"exp\" %s is outside 1970..9999", v);
        return r < 0 ? bad(err, err_size, "\"exp\" is not a time") : 0;
}

void ctl_state_done(ctl_state_t *s) {
        if (!s)
                return;
        free(s->state);
        free(s->status);
        free(s->node);
        free(s->mef);
        free(s->since);
        free(s->last_error);
        free(s->next_attempt);
        free(s->backend);
        free(s->ke_id);
        free(s->exp);
        free(s->reload_error);
        *s = (ctl_state_t) {};
}

int ctl_state_parse(const char *text, size_t len, ctl_state_t *ret, char *err, size_t err_size) {
        json_auto_t *o = NULL;
        int r = json_parse(text, len, &o, err, err_size);
        if (r < 0)
                return r;
        _cleanup_(ctl_state_done) ctl_state_t s = {};
        if ((r = get_string(o, "state", 64, true, &s.state, err, err_size)) < 0 ||
            (r = get_string(o, "status", CTL_FIELD_MAX, false, &s.status, err, err_size)) < 0 ||
            (r = get_string(o, "node", MSG_ID_MAX, false, &s.node, err, err_size)) < 0 ||
            (r = get_string(o, "mef", MSG_URI_MAX, false, &s.mef, err, err_size)) < 0 ||
            (r = get_time(o, "since", &s.since, err, err_size)) < 0 ||
            (r = get_string(o, "last_error", CTL_FIELD_MAX, false, &s.last_error, err, err_size)) < 0 ||
            (r = get_time(o, "next_attempt", &s.next_attempt, err, err_size)) < 0 ||
            (r = get_string(o, "backend", 64, true, &s.backend, err, err_size)) < 0 ||
            (r = get_string(o, "keID", MSG_KEID_MAX, true, &s.ke_id, err, err_size)) < 0 ||
            (r = get_time(o, "exp", &s.exp, err, err_size)) < 0 ||
            (r = get_string(o, "reload_error", CTL_FIELD_MAX, false, &s.reload_error, err, err_size)) < 0 ||
            (r = required(s.state, "state", err, err_size)) < 0 || (s.exp && (r = exp_check(s.exp, err, err_size)) < 0))
                return r;
        json_int_t pid = 0, reloads = -1, begun = -1, done = -1;
        if ((r = get_int(o, "pid", 1, INT_MAX, "a process ID", &pid, err, err_size)) < 0 ||
            (r = get_int(o, "reloads", 0, LLONG_MAX, "a count", &reloads, err, err_size)) < 0 ||
            (r = get_int(o, "reloads_begun", 0, LLONG_MAX, "a count", &begun, err, err_size)) < 0 ||
            (r = get_int(o, "reload_done", 0, LLONG_MAX, "a count", &done, err, err_size)) < 0)
                return r;
        s.pid = (pid_t) pid;
        s.reloads = reloads;
        s.reloads_begun = begun;
        s.reload_done = done;
        *ret = s;
        s = (ctl_state_t) {};
        return 0;
}

void ctl_profile_done(ctl_profile_t *p) {
        if (!p)
                return;
        free(p->cse_id);
        free(p->cse_base);
        free(p->ke_id);
        free(p->exp);
        for (size_t i = 0; i < p->n_targets; i++) {
                free(p->targets[i].id);
                free(p->targets[i].kpsa_id);
        }
        *p = (ctl_profile_t) {};
}

int ctl_profile_parse(const char *text, size_t len, ctl_profile_t *ret, char *err, size_t err_size) {
        json_auto_t *o = NULL;
        int r = json_parse(text, len, &o, err, err_size);
        if (r < 0)
                return r;
        _cleanup_(ctl_profile_done) ctl_profile_t p = {};
        if ((r = get_string(o, "cseID", MSG_ID_MAX, true, &p.cse_id, err, err_size)) < 0 ||
            (r = get_string(o, "cseBase", MSG_URI_MAX, true, &p.cse_base, err, err_size)) < 0 ||
            (r = get_string(o, "keID", MSG_KEID_MAX, true, &p.ke_id, err, err_size)) < 0 ||
            (r = get_string(o, "exp", 15, true, &p.exp, err, err_size)) < 0)
                return r;
        if ((r = required(p.cse_id, "cseID", err, err_size)) < 0 ||
            (r = required(p.cse_base, "cseBase", err, err_size)) < 0 ||
            (r = required(p.ke_id, "keID", err, err_size)) < 0 || (r = required(p.exp, "exp", err, err_size)) < 0)
                return r;
        time_t exp;
        if (time_parse_basic(p.exp, &exp) < 0)
                return bad(err, err_size, "\"exp\" is not YYYYMMDDTHHMMSS");
        if ((r = exp_check(p.exp, err, err_size)) < 0)
                return r;

        json_t *targets = json_object_get(o, "targets");
        if (targets && !json_is_null(targets)) {
                if (!json_is_array(targets))
                        return bad(err, err_size, "\"targets\" is not an array");
                if (json_array_size(targets) > MSG_TARGETS_MAX)
                        return bad(err, err_size, "more than %u targets", MSG_TARGETS_MAX);
                size_t i;
                json_t *t;
                json_array_foreach(targets, i, t) {
                        if (!json_is_object(t))
                                return bad(err, err_size, "target %zu is not an object", i);
                        ctl_target_t *d = &p.targets[p.n_targets++];
                        if ((r = get_string(t, "id", MSG_ID_MAX, true, &d->id, err, err_size)) < 0 ||
                            (r = get_string(t, "kpsaID", MSG_KEID_MAX, true, &d->kpsa_id, err, err_size)) < 0)
                                return r;
                        if (!id_is_valid(d->id ?: "", MSG_ID_MAX) || !id_is_valid(d->kpsa_id ?: "", MSG_KEID_MAX))
                                return bad(err, err_size, "target %zu needs \"id\" and \"kpsaID\" without spaces", i);
                }
        }
        json_int_t poll = 0;
        r = get_int(o, "poll", 0, MSG_POLL_MAX, "a number of seconds", &poll, err, err_size);
        if (r < 0)
                return r;
        p.poll = (unsigned) poll;
        *ret = p;
        p = (ctl_profile_t) {};
        return 0;
}

int ctl_runtime_read(const char *dir, const char *name, char **ret, size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        return file_read_all(path, CTL_JSON_MAX, ret, ret_len);
}

int ctl_runtime_load(const char *dir, ctl_state_t *state, ctl_profile_t *profile, char **ret_text, char *err,
                     size_t err_size) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        err[0] = 0;
        int r = ctl_runtime_read(dir, state ? CTL_STATE_FILE : CTL_PROFILE_FILE, &text, &len);
        if (r == 0)
                r = state ? ctl_state_parse(text, len, state, err, err_size)
                          : ctl_profile_parse(text, len, profile, err, err_size);
        if (r < 0 && !err[0])
                snprintf(err, err_size, "%s", strerror(-r));
        if (r == 0 && ret_text)
                *ret_text = TAKE_PTR(text);
        return r;
}

int ctl_proc_comm_is(const char *proc_root, pid_t pid, const char *comm) {
        if (pid <= 0)
                return -EINVAL;
        char path[PATH_MAX];
        if (snprintf(path, sizeof path, "%s/%d/comm", proc_root, (int) pid) >= (int) sizeof path)
                return -ENAMETOOLONG;
        _cleanup_free_ char *text = NULL;
        size_t n;
        int r = file_read_all(path, 64, &text, &n);
        if (r == -ENOENT)
                return -ESRCH; /* gone, or hidden from us (hidepid) */
        if (r < 0)
                return r;
        if (n > 0 && text[n - 1] == '\n')
                text[--n] = 0;
        return streq(text, comm);
}

ctl_agent_alive_t ctl_agent_alive(pid_t pid) {
        int r = ctl_proc_comm_is("/proc", pid, CTL_AGENT_COMM);
        if (r != -ESRCH && r != -EACCES)
                return r == 1 ? CTL_AGENT_SEEN : CTL_AGENT_GONE;
        /* No entry we may read, but /proc is mounted with hidepid and the process lives: under
         * another user (EPERM), or under ours but not ptraceable by us (kill() succeeds): msce-agent
         * is not dumpable and holds capabilities, so in its unit (ProtectProc=invisible) mscectl
         * reload, its ExecReload=, does not see it. Its name cannot be read; the pid is state.json's. */
        return kill(pid, 0) == 0 || errno == EPERM ? CTL_AGENT_HIDDEN : CTL_AGENT_GONE;
}

static bool digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!isdigit((unsigned char) s[i]))
                        return false;
        return true;
}

/* 9999-12-31T23:59:59Z, the last second of a year of four digits (time_format_basic()'s). */
#define CTL_TIME_MAX 253402300799ULL

int ctl_time_parse(const char *s, time_t *ret) {
        size_t n = strlen(s);
        if (n >= 1 && n <= 20 && digits(s, n)) {
                unsigned long long v;
                int r = parse_uint(s, ULLONG_MAX, &v);
                if (r < 0)
                        return r == -ERANGE ? r : -EINVAL;
                if (v > 100000000000ULL) /* past the year 5000 in seconds: microseconds */
                        v /= 1000000ULL;
                if (v > CTL_TIME_MAX || v != (unsigned long long) (time_t) v) /* a 32-bit time_t */
                        return -ERANGE;
                *ret = (time_t) v;
                return 0;
        }
        /* YYYY-MM-DDTHH:MM:SS[Z|+00:00] is read as YYYYMMDDTHHMMSS, whose parser checks the
         * digits and that no field is out of range (normalised into another day or hour) */
        char basic[16];
        if (n == 15)
                memcpy(basic, s, sizeof basic);
        else if ((n == 19 || (n == 20 && s[19] == 'Z') || (n == 25 && streq(s + 19, "+00:00"))) && s[4] == '-' &&
                 s[7] == '-' && (s[10] == 'T' || s[10] == ' ') && s[13] == ':' && s[16] == ':')
                snprintf(basic, sizeof basic, "%.4s%.2s%.2sT%.2s%.2s%.2s", s, s + 5, s + 8, s + 11, s + 14, s + 17);
        else
                return -EINVAL;
        time_t t;
        if (time_parse_basic(basic, &t) < 0)
                return -EINVAL;
        /* A well-formed time before 1970: no expiry or state time the agent writes (it keeps no
         * profile that has expired), and nothing to compute with; its years end at 9999. */
        if (t < 0)
                return -ERANGE;
        *ret = t;
        return 0;
}

void ctl_time_relative(time_t t, time_t now, char out[48]) {
        bool past = t <= now;
        unsigned long long d = past ? (unsigned long long) now - (unsigned long long) t
                                    : (unsigned long long) t - (unsigned long long) now;
        char span[40];
        if (d == 0) {
                snprintf(out, 48, "now");
                return;
        }
        if (d < 60)
                snprintf(span, sizeof span, "%llus", d);
        else if (d < 3600) {
                if (d % 60)
                        snprintf(span, sizeof span, "%llumin %llus", d / 60, d % 60);
                else
                        snprintf(span, sizeof span, "%llumin", d / 60);
        } else if (d < 86400) {
                if (d % 3600 / 60)
                        snprintf(span, sizeof span, "%lluh %llumin", d / 3600, d % 3600 / 60);
                else
                        snprintf(span, sizeof span, "%lluh", d / 3600);
        } else {
                unsigned long long days = d / 86400, h = d % 86400 / 3600;
                if (h)
                        snprintf(span, sizeof span, "%llu day%s %lluh", days, days == 1 ? "" : "s", h);
                else
                        snprintf(span, sizeof span, "%llu day%s", days, days == 1 ? "" : "s");
        }
        snprintf(out, 48, past ? "%s ago" : "in %s", span);
}

static bool state_is(const char *state, const char *name) {
        return state && strcasecmp(state, name) == 0;
}

ctl_health_t ctl_health_of(const char *state, bool running, bool expired) {
        /* The agent exits on a configuration error: its last state says why. */
        if (state_is(state, "configuration-error"))
                return CTL_HEALTH_CONFIG;
        /* No agent renews an expired profile (only msce-agent --once runs write no state.json). */
        if (!running && expired)
                return CTL_HEALTH_EXPIRED;
        if (!state)
                return CTL_HEALTH_NO_STATE;
        if (!running)
                return CTL_HEALTH_NOT_RUNNING;
        /* The refusals say why the profile could not be renewed: they come first. */
        if (state_is(state, "revoked"))
                return CTL_HEALTH_REVOKED;
        if (state_is(state, "rejected"))
                return CTL_HEALTH_REJECTED;
        if (state_is(state, "incompatible"))
                return CTL_HEALTH_INCOMPATIBLE;
        if (expired)
                return CTL_HEALTH_EXPIRED;
        if (state_is(state, "ready"))
                return CTL_HEALTH_READY;
        if (state_is(state, "backoff"))
                return CTL_HEALTH_BACKOFF;
        return CTL_HEALTH_BUSY;
}

const char *ctl_health_label(ctl_health_t h, const char *state, char buf[32]) {
        static const char *const labels[_CTL_HEALTH_MAX] = {
                [CTL_HEALTH_READY] = "READY",
                [CTL_HEALTH_NOT_RUNNING] = "NOT RUNNING",
                [CTL_HEALTH_NO_STATE] = "NO STATE",
                [CTL_HEALTH_BACKOFF] = "BACKOFF",
                [CTL_HEALTH_REJECTED] = "REJECTED",
                [CTL_HEALTH_REVOKED] = "REVOKED",
                [CTL_HEALTH_INCOMPATIBLE] = "INCOMPATIBLE",
                [CTL_HEALTH_EXPIRED] = "EXPIRED",
                [CTL_HEALTH_CONFIG] = "CONFIGURATION ERROR",
        };
        if (h < 0 || h >= _CTL_HEALTH_MAX)
                return "UNKNOWN";
        if (h != CTL_HEALTH_BUSY)
                return labels[h];
        static const char *const busy[][2] = {
                { "start", "STARTING" }, { "restore", "RESTORING" }, { "enrol", "ENROLLING" },
                { "waiting-for-time", "WAITING FOR THE TIME" }, { "stopping", "STOPPING" },
        };
        for (size_t i = 0; i < ELEMENTSOF(busy); i++)
                if (state_is(state, busy[i][0]))
                        return busy[i][1];
        size_t n = 0;
        for (; state && state[n] && n < 31; n++)
                buf[n] = (char) toupper((unsigned char) state[n]);
        buf[n] = 0;
        return n ? buf : "UNKNOWN";
}

int ctl_health_exit(ctl_health_t h) {
        static const int codes[_CTL_HEALTH_MAX] = {
                [CTL_HEALTH_READY] = 0,   [CTL_HEALTH_NOT_RUNNING] = 3, [CTL_HEALTH_NO_STATE] = 4,
                [CTL_HEALTH_BUSY] = 5,    [CTL_HEALTH_BACKOFF] = 6,     [CTL_HEALTH_REJECTED] = 7,
                [CTL_HEALTH_REVOKED] = 8, [CTL_HEALTH_INCOMPATIBLE] = 9, [CTL_HEALTH_EXPIRED] = 10,
                [CTL_HEALTH_CONFIG] = 11,
        };
        return h >= 0 && h < _CTL_HEALTH_MAX ? codes[h] : 1;
}

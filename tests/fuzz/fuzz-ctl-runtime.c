/* SPDX-License-Identifier: MIT */
/* mscectl's parsers of what the agent leaves in its runtime directory (ctl/runtime.h): byte 0
 * picks ctl_state_parse() (state.json), ctl_profile_parse() (profile.json) or ctl_time_parse()
 * (a time member, up to the first NUL); the rest is the input. What mscectl status, profile and
 * check print from them must not carry a control byte to the terminal: an accepted state or
 * profile has none in its strings, an error text none at all (it quotes no input byte but
 * printable ASCII). Every limit holds (at most 16 targets, each with a valid id and kpsaID,
 * an expiry from 1970 to 9999), and a failure leaves the output as it was. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl/runtime.h"
#include "fuzz-util.h"
#include "util/parse.h"
#include "util/time.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PATTERN 0x5a

/* NULL (absent), or a string of at most max bytes without a control byte */
static void check_str(const char *s, size_t max) {
        if (!s)
                return;
        size_t n = strlen(s);
        check(n <= max);
        for (size_t i = 0; i < n; i++)
                check((unsigned char) s[i] >= 0x20 && s[i] != 0x7f);
}

static void check_required(const char *s, size_t max) {
        check(s && s[0]);
        check_str(s, max);
}

static bool untouched(const void *p, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (((const uint8_t *) p)[i] != PATTERN)
                        return false;
        return true;
}

/* A failure: -EBADMSG saying why in printable ASCII, or -ENOMEM; the output as it was. */
static void check_failure(int r, const char *err, const void *out, size_t out_size) {
        check(r == -EBADMSG || r == -ENOMEM);
        check(untouched(out, out_size));
        if (r == -EBADMSG)
                check(err[0]);
        for (const char *p = err; *p; p++)
                check((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f);
}

static void fuzz_state(const char *text, size_t len) {
        ctl_state_t s;
        char err[512] = "";
        memset(&s, PATTERN, sizeof s);
        int r = ctl_state_parse(text, len, &s, err, sizeof err);
        if (r < 0) {
                check_failure(r, err, &s, sizeof s);
                return;
        }
        check(r == 0);
        check_required(s.state, 64);
        check_str(s.status, CTL_FIELD_MAX);
        check_str(s.node, MSG_ID_MAX);
        check_str(s.mef, MSG_URI_MAX);
        check_str(s.last_error, CTL_FIELD_MAX);
        check_str(s.backend, 64);
        check_str(s.ke_id, MSG_KEID_MAX);
        check_str(s.reload_error, CTL_FIELD_MAX);
        check_str(s.since, 64);
        check_str(s.next_attempt, 64);
        check_str(s.exp, 64);
        time_t t;
        check(!s.exp || ctl_time_parse(s.exp, &t) == 0); /* the expiry status computes with */
        check(s.pid >= 0 && s.reloads >= -1 && s.reloads_begun >= -1 && s.reload_done >= -1);
        ctl_state_done(&s);
}

static void fuzz_profile(const char *text, size_t len) {
        ctl_profile_t p;
        char err[512] = "";
        memset(&p, PATTERN, sizeof p);
        int r = ctl_profile_parse(text, len, &p, err, sizeof err);
        if (r < 0) {
                check_failure(r, err, &p, sizeof p);
                return;
        }
        check(r == 0);
        check_required(p.cse_id, MSG_ID_MAX);
        check_required(p.cse_base, MSG_URI_MAX);
        check_required(p.ke_id, MSG_KEID_MAX);
        check_required(p.exp, 15);
        time_t t;
        check(time_parse_basic(p.exp, &t) == 0 && ctl_time_parse(p.exp, &t) == 0);
        check(p.n_targets <= MSG_TARGETS_MAX);
        for (size_t i = 0; i < p.n_targets; i++) {
                check(p.targets[i].id && id_is_valid(p.targets[i].id, MSG_ID_MAX));
                check(p.targets[i].kpsa_id && id_is_valid(p.targets[i].kpsa_id, MSG_KEID_MAX));
                check_str(p.targets[i].id, MSG_ID_MAX);
                check_str(p.targets[i].kpsa_id, MSG_KEID_MAX);
        }
        check(p.poll <= MSG_POLL_MAX);
        ctl_profile_done(&p);
}

static bool all_digits(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < '0' || s[i] > '9')
                        return false;
        return n > 0;
}

/* Accepted: decimal seconds (or microseconds past 10^11), or a date and time that is one (no
 * field normalised into another day or hour): formatted back, the same digits; from 1970 to
 * 9999 only. -ERANGE: such a number or date outside them. */
static void fuzz_time(const char *s) {
        time_t t;
        memset(&t, PATTERN, sizeof t);
        int r = ctl_time_parse(s, &t);
        size_t n = strlen(s);
        if (r < 0) {
                check((r == -EINVAL || r == -ERANGE) && untouched(&t, sizeof t));
                /* a date's year first, as four digits: before 1970 */
                check(r != -ERANGE || all_digits(s, n) || (all_digits(s, 4) && strncmp(s, "1970", 4) < 0));
                return;
        }
        check(r == 0 && t >= 0 && (long long) t <= 253402300799LL);
        if (all_digits(s, n)) {
                unsigned long long v = strtoull(s, NULL, 10);
                check((unsigned long long) t == (v > 100000000000ULL ? v / 1000000ULL : v));
                return;
        }
        struct tm tm;
        char back[32];
        check(gmtime_r(&t, &tm) && tm.tm_year + 1900 >= 1970 && tm.tm_year + 1900 <= 9999);
        /* not strftime(): its %Y has no leading zeros before the year 1000 */
        snprintf(back, sizeof back, "%04d%02d%02dT%02d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                 tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (n == 15) {
                check(memcmp(back, s, 15) == 0);
                return;
        }
        check(n == 19 || n == 20 || n == 25);
        check(memcmp(back, s, 4) == 0 && memcmp(back + 4, s + 5, 2) == 0 && memcmp(back + 6, s + 8, 2) == 0 &&
              memcmp(back + 9, s + 11, 2) == 0 && memcmp(back + 11, s + 14, 2) == 0 && memcmp(back + 13, s + 17, 2) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        const char *text = (const char *) data + 1;
        size_t len = size - 1;
        switch (data[0] % 3) {
        case 0:
                fuzz_state(text, len);
                break;
        case 1:
                fuzz_profile(text, len);
                break;
        default: {
                char *s = fuzz_string((const uint8_t *) text, len);
                if (!s)
                        return 0;
                fuzz_time(s);
                free(s);
                break;
        }
        }
        return 0;
}

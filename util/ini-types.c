/* SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/ini-types.h"
#include "util/util.h"

/* -EINVAL with reason in why. */
static int refuse(char why[INI_WHY_MAX], const char *reason) {
        snprintf(why, INI_WHY_MAX, "%s", reason);
        return -EINVAL;
}

static int set_string(char **field, const char *value) {
        char *d = strdup(value);
        if (!d)
                return -ENOMEM;
        free(*field);
        *field = d;
        return 0;
}

void ini_string_done(void *base, const ini_key_t *k) {
        char **field = INI_FIELD(base, k, char *);
        free(*field);
        *field = NULL;
}

static void string_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        const char *v = *INI_CFIELD(base, k, char *);
        snprintf(buf, size, "%s", v ?: "");
}

int ini_string_parse(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]) {
        const ini_string_t *a = k->arg;
        const char *reason = NULL;
        if (a && a->check && a->check(value, &reason) < 0)
                return refuse(why, reason ?: "invalid value");
        char **field = INI_FIELD(base, k, char *);
        int r = set_string(field, value);
        if (r == 0 && a && a->normalize)
                a->normalize(*field);
        return r;
}

const ini_type_t ini_type_string = { ini_string_parse, string_print, ini_string_done };

static int uint_get(const ini_key_t *k, const char *value, char why[INI_WHY_MAX], unsigned *ret) {
        const ini_uint_t *a = k->arg;
        unsigned long long u;
        if (parse_uint(value, UINT_MAX, &u) < 0 || u < a->min || u > a->max) {
                snprintf(why, INI_WHY_MAX, "expected an integer from %u to %u%s", a->min, a->max, a->unit ?: "");
                return -EINVAL;
        }
        *ret = (unsigned) u;
        return 0;
}

static int uint_parse(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]) {
        return uint_get(k, value, why, INI_FIELD(base, k, unsigned));
}

static void uint_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        snprintf(buf, size, "%u", *INI_CFIELD(base, k, unsigned));
}

const ini_type_t ini_type_uint = { uint_parse, uint_print, NULL };

static int uint_auto_parse(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]) {
        if (streq(value, "auto")) {
                *INI_FIELD(base, k, unsigned) = 0;
                return 0;
        }
        const ini_uint_t *a = k->arg;
        int r = uint_get(k, value, why, INI_FIELD(base, k, unsigned));
        if (r == -EINVAL)
                snprintf(why, INI_WHY_MAX, "expected auto or an integer from %u to %u%s", a->min, a->max,
                         a->unit ?: "");
        return r;
}

static void uint_auto_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        unsigned u = *INI_CFIELD(base, k, unsigned);
        if (u == 0)
                snprintf(buf, size, "auto");
        else
                snprintf(buf, size, "%u", u);
}

const ini_type_t ini_type_uint_auto = { uint_auto_parse, uint_auto_print, NULL };

static int msec_parse(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]) {
        unsigned ms;
        int r = uint_get(k, value, why, &ms);
        if (r == 0)
                *INI_FIELD(base, k, usec_t) = (usec_t) ms * 1000u;
        return r;
}

static void msec_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        snprintf(buf, size, "%llu", (unsigned long long) (*INI_CFIELD(base, k, usec_t) / 1000u));
}

const ini_type_t ini_type_msec = { msec_parse, msec_print, NULL };

static int duration_parse_row(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]) {
        const ini_duration_t *a = k->arg;
        usec_t u;
        if (duration_parse(value, &u) < 0)
                return refuse(why, "not a duration (milliseconds, or a number with ms, s, min, h or d)");
        if (u < a->min || u > a->max)
                return refuse(why, a->range);
        if (a->whole_seconds && u % 1000000u)
                return refuse(why, "must be a whole number of seconds");
        *INI_FIELD(base, k, usec_t) = u;
        return 0;
}

static void duration_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        char d[32];
        duration_format(*INI_CFIELD(base, k, usec_t), d);
        snprintf(buf, size, "%s", d);
}

const ini_type_t ini_type_duration = { duration_parse_row, duration_print, NULL };

static int enum_parse(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]) {
        const ini_enum_t *a = k->arg;
        for (size_t i = 0; i < a->n; i++)
                if (streq(value, a->names[i])) {
                        *INI_FIELD(base, k, int) = a->values ? a->values[i] : (int) i;
                        return 0;
                }
        /* "must be a, b or c" */
        size_t len = (size_t) snprintf(why, INI_WHY_MAX, "must be ");
        for (size_t i = 0; i < a->n && len < INI_WHY_MAX; i++)
                len += (size_t) snprintf(why + len, INI_WHY_MAX - len, "%s%s", i == 0 ? "" : i + 1 == a->n ? " or " : ", ",
                                         a->names[i]);
        return -EINVAL;
}

static void enum_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        const ini_enum_t *a = k->arg;
        int v = *INI_CFIELD(base, k, int);
        for (size_t i = 0; i < a->n; i++)
                if (v == (a->values ? a->values[i] : (int) i)) {
                        snprintf(buf, size, "%s", a->names[i]);
                        return;
                }
        snprintf(buf, size, "%s", "");
}

const ini_type_t ini_type_enum = { enum_parse, enum_print, NULL };

int ini_double_parse(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]) {
        const ini_double_t *a = k->arg;
        double d;
        if (double_parse(value, &d) < 0)
                return refuse(why, "not a decimal number");
        if (d < a->min || d > a->max)
                return refuse(why, a->range);
        *INI_FIELD(base, k, double) = d;
        return 0;
}

void ini_double_done(void *base, const ini_key_t *k) {
        *INI_FIELD(base, k, double) = 0;
}

static void double_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        char d[32];
        double_format(*INI_CFIELD(base, k, double), d);
        snprintf(buf, size, "%s", d);
}

const ini_type_t ini_type_double = { ini_double_parse, double_print, ini_double_done };

static void uri_done(void *base, const ini_key_t *k) {
        const ini_uri_t *a = k->arg;
        const size_t offsets[] = { k->offset, a->host, a->port, a->base };
        for (size_t i = 0; i < ELEMENTSOF(offsets); i++) {
                char **field = (char **) ((char *) base + offsets[i]);
                free(*field);
                *field = NULL;
        }
}

static int uri_parse_row(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]) {
        const ini_uri_t *a = k->arg;
        _cleanup_(https_uri_done) https_uri_t u = {};
        const char *reason = NULL;
        int r = https_uri_parse(value, &u, &reason);
        if (r < 0) {
                snprintf(why, INI_WHY_MAX, "%s", reason ?: "invalid value");
                return r;
        }
        uri_done(base, k);
        *INI_FIELD(base, k, char *) = TAKE_PTR(u.canonical);
        *(char **) ((char *) base + a->host) = TAKE_PTR(u.host);
        *(char **) ((char *) base + a->port) = TAKE_PTR(u.port);
        *(char **) ((char *) base + a->base) = TAKE_PTR(u.base);
        return 0;
}

const ini_type_t ini_type_https_uri = { uri_parse_row, string_print, uri_done };

int ini_check_id(const char *s, const char **ret_why) {
        if (id_is_valid(s, 255))
                return 0;
        if (ret_why)
                *ret_why = "must be 1..255 printable ASCII characters without spaces";
        return -EINVAL;
}

int ini_check_printable(const char *s, const char **ret_why) {
        if (printable_ok(s, 255))
                return 0;
        if (ret_why)
                *ret_why = "must be 1..255 printable ASCII characters";
        return -EINVAL;
}

int ini_check_absolute_path(const char *s, const char **ret_why) {
        return path_check(s, PATH_ABSOLUTE, ret_why);
}

int ini_check_file_path(const char *s, const char **ret_why) {
        return path_check(s, 0, ret_why);
}

void ini_ascii_lower(char *s) {
        for (; *s; s++)
                *s = (char) tolower((unsigned char) *s);
}

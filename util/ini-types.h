/* SPDX-License-Identifier: MIT */
#pragma once
/* The value types of configuration rows (util/ini.h), with the parameters each takes in the
 * row's arg. Each names the field type it writes. */

#include "util/ini.h"
#include "util/parse.h"

/* char *: checked by check (NULL: any), then normalize (NULL: none) on the copy. */
typedef struct ini_string {
        int (*check)(const char *s, const char **ret_why);
        void (*normalize)(char *s);
} ini_string_t;
extern const ini_type_t ini_type_string;
int ini_string_parse(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]);
void ini_string_done(void *base, const ini_key_t *k);

/* unsigned: a decimal integer min..max; unit (" ms", " s" or "") follows max in errors. */
typedef struct ini_uint {
        unsigned min, max;
        const char *unit;
} ini_uint_t;
extern const ini_type_t ini_type_uint;
/* The same, or "auto" (stored and printed as 0 -> "auto"; min must be at least 1): what auto
 * means is the caller's to decide once the configuration is read. */
extern const ini_type_t ini_type_uint_auto;
/* usec_t from a decimal number of milliseconds (ini_uint_t in ms); printed in ms. */
extern const ini_type_t ini_type_msec;

/* usec_t from a duration (util/parse.h duration_parse) min..max, reason range when outside. */
typedef struct ini_duration {
        usec_t min, max;
        const char *range;
        bool whole_seconds;
} ini_duration_t;
extern const ini_type_t ini_type_duration;

/* int (an enum): values[i] for names[i]. */
typedef struct ini_enum {
        const char *const *names;
        const int *values;
        size_t n;
} ini_enum_t;
extern const ini_type_t ini_type_enum;

/* double: a decimal number min..max, reason range when outside. */
typedef struct ini_double {
        double min, max;
        const char *range;
} ini_double_t;
extern const ini_type_t ini_type_double;
int ini_double_parse(void *base, const ini_key_t *k, const char *value, char why[INI_WHY_MAX]);
void ini_double_done(void *base, const ini_key_t *k);

/* char *: an https URI (util/parse.h https_uri_parse) kept canonical; the parts go into the
 * char * fields at the offsets given. */
typedef struct ini_uri {
        size_t host, port, base;
} ini_uri_t;
extern const ini_type_t ini_type_https_uri;

/* Checks for ini_string_t. */
int ini_check_id(const char *s, const char **ret_why);        /* 1..255 printable, no space */
int ini_check_printable(const char *s, const char **ret_why); /* 1..255 printable */
int ini_check_absolute_path(const char *s, const char **ret_why);
int ini_check_file_path(const char *s, const char **ret_why);
void ini_ascii_lower(char *s);

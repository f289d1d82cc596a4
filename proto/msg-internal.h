/* SPDX-License-Identifier: MIT */
#pragma once
/* The JSON layer under the messages of proto/msg.c (proto/msg-json.c): jansson trees whose
 * strings are wiped before they are freed, bodies loaded within limits, and the field readers
 * (0: absent and optional, 1: present, -EBADMSG with err naming the member, never its value). */
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto/msg.h"
#include "util/util.h"

typedef enum str_kind {
        STR_NODE_ID,   /* M2M-Node-ID (proto/ids.h) */
        STR_CSE_ID,    /* SP-relative CSE-ID */
        STR_TARGET_ID, /* enrolment target ID */
        STR_KEID,      /* KeID */
        STR_KPSA_ID,   /* kpsaID */
        STR_URI,       /* cseBase */
} str_kind_t;

/* The JSON types a member may have, as a set of 1 << json_type. */
enum {
        J_STRING = 1u << JSON_STRING,
        J_INTEGER = 1u << JSON_INTEGER,
        J_NUMBER = J_INTEGER | 1u << JSON_REAL,
        J_BOOLEAN = 1u << JSON_TRUE | 1u << JSON_FALSE,
        J_OBJECT = 1u << JSON_OBJECT,
        J_ARRAY = 1u << JSON_ARRAY,
};

void mj_wipe_decrefp(json_t **j);
int mj_dump_owned(const json_t *root, int precision, char **ret);
int mj_set(json_t *o, const char *name, json_t *v);
json_t *mj_wrap(const char *wrapper, json_t *body);
_printf_(3, 4) int mj_fail(char *err, const char *path, const char *fmt, ...);
_printf_(4, 5) int mj_fail_member(char *err, const char *path, const char *name, const char *fmt, ...);
int mj_body_check(const char *p, size_t len, const char *what, char *err);
int mj_load(const void *body, size_t len, const char *wrapper, json_t **ret_root, json_t **ret_obj,
                char *err);
const char *mj_str_problem(const char *s, size_t n, str_kind_t k);
int mj_get(json_t *o, const char *path, const char *name, bool required, unsigned types, json_t **ret,
               char *err);
int mj_read_str(json_t *o, const char *path, const char *name, bool required, str_kind_t k, char *out,
                    char *err);
int mj_read_time(json_t *o, const char *path, const char *name, bool required, char out[16], time_t *ret_t,
                     char *err);
/* poll, clamped into MSG_POLL_MIN..MSG_POLL_MAX: *ret_clamped says whether it was, *ret_sent what
 * was sent then. */
int mj_read_poll(json_t *o, const char *path, uint32_t *ret, bool *ret_clamped, int64_t *ret_sent, char *err);
int mj_read_number(json_t *o, const char *path, const char *name, bool required, double lo, double hi,
                       double *ret, char *err);
int mj_read_key(json_t *o, const char *path, const char *name, bool required, uint8_t out[MSG_KEY_MAX],
                    size_t *ret_len, char *err);
#define _cleanup_json_ _cleanup_(mj_wipe_decrefp)

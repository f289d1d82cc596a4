/* SPDX-License-Identifier: MIT */
#pragma once
/* The helpers of the HTTP parser tests (test-http-*.c, one executable): a message fed whole, byte
 * by byte and in steps, which must agree. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <time.h>

#include "proto/http.h"
#include "tests/unit/http-input.h"
#include "util/util.h"

void msg_assert_equal(const http_msg_t *a, const http_msg_t *b);
/* Feeds data step bytes at a time; returns the first result that is not 0, or 0. */
int feed(http_kind_t kind, bool head, const void *data, size_t len, size_t step, http_msg_t *ret);
/* Parses all at once, byte by byte and 7 bytes at a time: the three must agree. */
int parse_x(http_kind_t kind, bool head, const void *data, size_t len, http_msg_t *ret);
int req(const char *s, http_msg_t *ret);
int resp(const char *s, http_msg_t *ret);
int req_buf(const buf_t *b);
/* Each request head + mid[i] + tail (C strings) parses to want. */
void assert_each_request(const char *head, const char *const *mid, size_t n, const char *tail, int want);
/* Every strict prefix of a valid message is "need more" and truncated at EOF. */
void assert_prefixes_incomplete(http_kind_t kind, const char *s);

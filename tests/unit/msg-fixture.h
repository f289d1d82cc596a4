/* SPDX-License-Identifier: MIT */
#pragma once
/* The fixture of the message tests (test-msg-*.c, one executable): the examples of protocol
 * section 3 and the helpers that parse, mutate and format them. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>

#include "proto/msg.h"
#include "util/util.h"

#define KEID "3f2a9c0d4e5b6a7980a1b2c3d4e5f601@mef.example.net"
#define KPSAID "3f2a9c0d4e5b6a7980a1b2c3d4e5f601.1@mef.example.net"
#define LTK_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=" /* bytes 0..31 */
#define KEY_B64 "ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4CBgoM=" /* bytes 100..131 */

#define EXP_T 1827347400 /* 20271127T203000 */

typedef enum kind { K_ENROL, K_PROFILE, K_STATUS, K_CREDENTIAL } kind_t;

/* The examples of protocol section 3 (valid values where the spec abbreviates), and the same as
 * our formatters must write them; examples[] by kind. */
extern const char enrol_example[];
extern const char profile_example[];
extern const char status_example[];
extern const char credential_example[];
extern const char enrol_compact[];
extern const char profile_compact[];
extern const char status_compact[];
extern const char credential_compact[];
extern const char *const examples[];
/* The kind of message a dotted path ("msce:profile.targets[0].id") is in. */
kind_t kind_of(const char *path);
/* Parses with the parser of kind k; on success formats the result into *ret_json (when not
 * NULL); checks that the output is untouched on failure. */
int parse_kind(kind_t k, const char *body, size_t len, char err[MSG_ERR_MAX], char **ret_json);
int parse_str(kind_t k, const char *body, char err[MSG_ERR_MAX], char **ret_json);
/* The JSON text with the member at path set to value (a JSON literal; NULL deletes it). */
char *mutate(const char *text, const char *path, const char *value);
/* The example with path set to value fails with "<path>: <reason>", or parses (and its
 * formatted result contains check, when set). */
void expect_error(const char *path, const char *value, const char *reason);
void expect_ok(const char *path, const char *value, const char *check);
/* A JSON string literal with the base64 of n bytes. */
char *key_of(size_t n);

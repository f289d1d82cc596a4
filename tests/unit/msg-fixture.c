/* SPDX-License-Identifier: MIT */
/* The message tests' fixture (msg-fixture.h). */
#include "tests/unit/msg-fixture.h"

/* The examples of protocol section 3, with valid values where the spec abbreviates. */
const char enrol_example[] =
        "{\"msce:enrolReq\": {\n"
        "  \"nodeID\": \"urn:dev:ops:0004A3-MNGW-000123\",\n"
        "  \"loc\": {\"lat\": 48.8584, \"lon\": 2.2945, \"alt\": 35.0},\n"
        "  \"prev\": \"" KEID "\"\n"
        "}}\n";
const char profile_example[] =
        "{\"msce:profile\": {\n"
        "  \"cseID\": \"/mn-cse-000123\",\n"
        "  \"cseBase\": \"https://in.example.net:8443/~/in-cse/in-name\",\n"
        "  \"keID\": \"" KEID "\",\n"
        "  \"exp\": \"20271127T203000\",\n"
        "  \"targets\": [{\"id\": \"/in-cse\", \"kpsaID\": \"" KPSAID "\"}],\n"
        "  \"poll\": 3600,\n"
        "  \"ltk\": \"" LTK_B64 "\"\n"
        "}}\n";
const char status_example[] =
        "{\"msce:status\": {\"keID\": \"" KEID "\", \"state\": \"active\", \"exp\": \"20271127T203000\", \"poll\": 3600}}";
const char credential_example[] =
        "{\"msce:credential\": {\"status\": true, \"key\": \"" KEY_B64 "\", \"enroleeID\": \"/mn-cse-000123\", "
        "\"lifetime\": \"20271127T203000\"}}";

/* The same, as our formatters must write them. */
const char enrol_compact[] =
        "{\"msce:enrolReq\":{\"nodeID\":\"urn:dev:ops:0004A3-MNGW-000123\",\"loc\":{\"lat\":48.8584,\"lon\":2.2945,"
        "\"alt\":35.0},\"prev\":\"" KEID "\"}}";
const char profile_compact[] =
        "{\"msce:profile\":{\"cseID\":\"/mn-cse-000123\",\"cseBase\":\"https://in.example.net:8443/~/in-cse/in-name\","
        "\"keID\":\"" KEID "\",\"exp\":\"20271127T203000\",\"targets\":[{\"id\":\"/in-cse\",\"kpsaID\":\"" KPSAID "\"}],"
        "\"poll\":3600,\"ltk\":\"" LTK_B64 "\"}}";
const char status_compact[] =
        "{\"msce:status\":{\"keID\":\"" KEID "\",\"state\":\"active\",\"exp\":\"20271127T203000\",\"poll\":3600}}";
const char credential_compact[] =
        "{\"msce:credential\":{\"status\":true,\"key\":\"" KEY_B64 "\",\"enroleeID\":\"/mn-cse-000123\","
        "\"lifetime\":\"20271127T203000\"}}";

const char *const examples[] = { enrol_example, profile_example, status_example, credential_example };

kind_t kind_of(const char *path) {
        if (!strncmp(path, "msce:enrolReq", 13))
                return K_ENROL;
        if (!strncmp(path, "msce:profile", 12))
                return K_PROFILE;
        if (!strncmp(path, "msce:status", 11))
                return K_STATUS;
        cr_assert(!strncmp(path, "msce:credential", 15), "bad path %s", path);
        return K_CREDENTIAL;
}

/* Parses with the parser of kind k; on success formats the result into *ret_json (when not
 * NULL) so that callers can check what was parsed. Checks *ret is untouched on failure. */
int parse_kind(kind_t k, const char *body, size_t len, char err[MSG_ERR_MAX], char **ret_json) {
        union {
                msg_enrol_req_t e;
                msg_profile_t p;
                msg_status_t s;
                msg_credential_t c;
        } u, sentinel;
        int r, f;
        char *json = NULL;

        memset(&u, 0xa5, sizeof u);
        memset(&sentinel, 0xa5, sizeof sentinel);
        strcpy(err, "untouched");
        switch (k) {
        case K_ENROL:
                r = msg_enrol_req_parse(body, len, &u.e, err);
                f = r < 0 ? 0 : msg_enrol_req_format(&u.e, &json);
                break;
        case K_PROFILE:
                r = msg_profile_parse(body, len, &u.p, err);
                f = r < 0 ? 0 : msg_profile_format(&u.p, &json);
                break;
        case K_STATUS:
                r = msg_status_parse(body, len, &u.s, err);
                f = r < 0 ? 0 : msg_status_format(&u.s, &json);
                break;
        default:
                r = msg_credential_parse(body, len, &u.c, err);
                f = r < 0 ? 0 : msg_credential_format(&u.c, &json);
                break;
        }
        if (r < 0) {
                cr_assert(memcmp(&u, &sentinel, sizeof u) == 0, "*ret written on failure");
                cr_assert_str_neq(err, "untouched", "err not set");
        } else {
                cr_assert_eq(f, 0, "parsed message does not format: %d", f);
                cr_assert_str_eq(err, "");
        }
        if (ret_json)
                *ret_json = json;
        else if (json) {
                erase_free(json, strlen(json));
        }
        return r;
}

int parse_str(kind_t k, const char *body, char err[MSG_ERR_MAX], char **ret_json) {
        return parse_kind(k, body, strlen(body), err, ret_json);
}

/* Sets the member at a dotted path ("msce:profile.targets[0].id") of the JSON text to value
 * (a JSON literal; NULL deletes it) and returns the new text. */
char *mutate(const char *text, const char *path, const char *value) {
        json_error_t e;
        json_t *root = json_loads(text, 0, &e), *cur = root;
        json_t *v = value ? json_loads(value, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e) : NULL;
        char buf[256], *save = NULL;
        cr_assert_not_null(root);
        cr_assert(!value || v, "bad literal %s", value);
        snprintf(buf, sizeof buf, "%s", path);
        for (char *tok = strtok_r(buf, ".", &save); tok;) {
                char *next = strtok_r(NULL, ".", &save), *br = strchr(tok, '[');
                long idx = -1;
                if (br) {
                        idx = strtol(br + 1, NULL, 10);
                        *br = 0;
                }
                if (next || idx >= 0) {
                        cur = json_object_get(cur, tok);
                        cr_assert_not_null(cur, "%s: no %s", path, tok);
                }
                if (!next) {
                        int r;
                        if (idx >= 0)
                                r = v ? json_array_set_new(cur, (size_t) idx, v) : json_array_remove(cur, (size_t) idx);
                        else
                                r = v ? json_object_set_new(cur, tok, v) : json_object_del(cur, tok);
                        cr_assert_eq(r, 0, "%s", path);
                        break;
                }
                if (idx >= 0) {
                        cur = json_array_get(cur, (size_t) idx);
                        cr_assert_not_null(cur);
                }
                tok = next;
        }
        char *out = json_dumps(root, JSON_COMPACT);
        cr_assert_not_null(out);
        json_decref(root);
        return out;
}

/* Expects the example with path set to value to fail with "<path>: <reason>". */
void expect_error(const char *path, const char *value, const char *reason) {
        kind_t k = kind_of(path);
        char err[MSG_ERR_MAX], want[MSG_ERR_MAX];
        _cleanup_free_ char *body = mutate(examples[k], path, value);
        snprintf(want, sizeof want, "%s: %s", path, reason);
        cr_assert_eq(parse_str(k, body, err, NULL), -EBADMSG, "%s = %s accepted", path, value ?: "(deleted)");
        cr_assert_str_eq(err, want, "%s = %s", path, value ?: "(deleted)");
}

/* Expects the example with path set to value to parse, and (when check is set) the
 * formatted result to contain check. */
void expect_ok(const char *path, const char *value, const char *check) {
        kind_t k = kind_of(path);
        char err[MSG_ERR_MAX];
        _cleanup_free_ char *body = mutate(examples[k], path, value), *json = NULL;
        cr_assert_eq(parse_str(k, body, err, &json), 0, "%s = %.60s: %s", path, value ?: "(deleted)", err);
        if (check)
                cr_assert_not_null(strstr(json, check), "%s = %.60s: '%s' not in %s", path, value, check, json);
}

/* A JSON string literal with the base64 of n bytes. */
char *key_of(size_t n) {
        uint8_t k[128];
        char *b64 = NULL, *s = NULL;
        for (size_t i = 0; i < n; i++)
                k[i] = (uint8_t) (i * 7 + 1);
        cr_assert_eq(b64_encode(k, n, &b64), 0);
        cr_assert_gt(asprintf(&s, "\"%s\"", b64), 0);
        free(b64);
        return s;
}

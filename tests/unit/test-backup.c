/* SPDX-License-Identifier: MIT */
/* The files of a backup without the store (mef/backup.h): the master key wrapped under a
 * passphrase or for a recipient key round-trips, a wrong passphrase or identity is told apart from
 * a damaged file, and the
 * manifest and row parsers refuse anything but what msce-mef writes, within their limits. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>

#include "mef/backup.h"
#include "mef/store-backup.h"
#include "util/util.h"

#define PASS "a long backup passphrase"
#define ITER BACKUP_KDF_ITERATIONS_MIN

static const uint8_t key[STORE_MASTER_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };

static int unwrap(const char *text, const char *pass, uint8_t out[STORE_MASTER_KEY_LEN]) {
        return backup_key_unwrap(text, strlen(text), pass, strlen(pass), out);
}

/* text with member name set to v (a JSON value), as a new string */
static char *with_member(const char *text, const char *name, json_t *v) {
        json_t *o = json_loads(text, 0, NULL);
        cr_assert_not_null(o);
        if (v)
                json_object_set_new(o, name, v);
        else
                json_object_del(o, name);
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return s;
}

Test(backup, wrap_round_trip_and_wrong_passphrase) {
        _cleanup_free_ char *w = NULL;
        cr_assert_eq(backup_key_wrap(key, PASS, strlen(PASS), ITER, &w), 0);
        cr_assert_null(strstr(w, "0102030405"), "key bytes in the clear");
        uint8_t out[STORE_MASTER_KEY_LEN] = {};
        cr_assert_eq(unwrap(w, PASS, out), 0);
        cr_assert_arr_eq(out, key, sizeof key);
        memset(out, 0, sizeof out);
        cr_assert_eq(unwrap(w, "a long backup passphrasE", out), -EKEYREJECTED);
        cr_assert_eq(unwrap(w, "short", out), -EKEYREJECTED);
        uint8_t zero[STORE_MASTER_KEY_LEN] = {};
        cr_assert_arr_eq(out, zero, sizeof zero, "a failed unwrap wrote the key");

        /* two wraps of one key differ (salt, nonce) */
        _cleanup_free_ char *w2 = NULL;
        cr_assert_eq(backup_key_wrap(key, PASS, strlen(PASS), ITER, &w2), 0);
        cr_assert_str_neq(w, w2);
        /* another valid iteration count derives another key: refused as a wrong passphrase */
        _cleanup_free_ char *it = with_member(w, "iterations", json_integer(ITER + 1));
        cr_assert_eq(unwrap(it, PASS, out), -EKEYREJECTED);
}

Test(backup, wrap_refuses_bad_arguments) {
        char *w = NULL;
        cr_assert_eq(backup_key_wrap(key, "short", 5, ITER, &w), -EINVAL);
        cr_assert_eq(backup_key_wrap(key, PASS, strlen(PASS), ITER - 1, &w), -EINVAL);
        cr_assert_eq(backup_key_wrap(key, PASS, strlen(PASS), BACKUP_KDF_ITERATIONS_MAX + 1, &w), -EINVAL);
        cr_assert_null(w);
}

Test(backup, unwrap_refuses_damaged_files) {
        _cleanup_free_ char *w = NULL;
        cr_assert_eq(backup_key_wrap(key, PASS, strlen(PASS), ITER, &w), 0);
        uint8_t out[STORE_MASTER_KEY_LEN];
        struct {
                const char *name;
                json_t *v;
        } bad[] = {
                { "iterations", json_integer(ITER - 1) },
                { "iterations", json_integer(BACKUP_KDF_ITERATIONS_MAX + 1) },
                { "iterations", json_string("100000") },
                { "kdf", json_string("scrypt") },
                { "cipher", json_string("aes-128-gcm") },
                { "format", json_string("something else") },
                { "salt", json_string("00") },
                { "salt", json_string("zz112233445566778899aabbccddeeff") },
                { "nonce", json_string("00112233445566778899aabb00") },
                { "sealed", json_null() },
                { "extra", json_true() },
                { "salt", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *t = with_member(w, bad[i].name, bad[i].v);
                cr_assert_eq(unwrap(t, PASS, out), -EBADMSG, "%s: %s", bad[i].name, t);
        }
        const char *junk[] = { "", "[]", "{", "null", "{\"format\": 1}" };
        for (size_t i = 0; i < ELEMENTSOF(junk); i++)
                cr_assert_eq(unwrap(junk[i], PASS, out), -EBADMSG, "%s", junk[i]);
        /* a flipped bit in the sealed key: the tag fails */
        json_t *o = json_loads(w, 0, NULL);
        char sealed[200];
        snprintf(sealed, sizeof sealed, "%s", json_string_value(json_object_get(o, "sealed")));
        json_decref(o);
        sealed[0] = sealed[0] == '0' ? '1' : '0';
        _cleanup_free_ char *t = with_member(w, "sealed", json_string(sealed));
        cr_assert_eq(unwrap(t, PASS, out), -EKEYREJECTED);
        /* too large */
        size_t n = BACKUP_SMALL_FILE_MAX + 1;
        _cleanup_free_ char *big = malloc(n);
        memset(big, ' ', n);
        cr_assert_eq(backup_key_unwrap(big, n, PASS, strlen(PASS), out), -EBADMSG);
}

static backup_manifest_t sample(void) {
        backup_manifest_t m = { .version = BACKUP_FORMAT_VERSION, .schema = 3, .created = 1796314309 };
        snprintf(m.backend, sizeof m.backend, "sqlite");
        for (size_t i = 0; i < STORE_DUMP_TABLES_MAX; i++)
                m.rows[i] = i * 1000 + 7;
        for (size_t i = 0; i < _BACKUP_FILES; i++) {
                m.files[i].size = 100 + i;
                memset(m.files[i].sha256, 'a' + (int) i, 64);
        }
        return m;
}

/* Keys made with OpenSSL (`openssl ecparam -genkey`, `openssl pkcs8 -topk8`, `openssl genpkey`):
 * A in SEC1 and PKCS#8, B another P-256 key, C a P-384 public key. */
static const char a_sec1[] =
        "-----BEGIN EC PRIVATE KEY-----\n"
        "MHcCAQEEIDe2nwGNGYY/EAB6zvVbkh7gOnqoyYKMFAX3+IAIVsJ9oAoGCCqGSM49\n"
        "AwEHoUQDQgAECvscNwnWBroise+5DLnNAWTzSuLJC+A3rHHmO1RdjMvz/knMG/nS\n"
        "/1nSSUt6utj+ouPoA6swbwKwzDmm3yrhUg==\n"
        "-----END EC PRIVATE KEY-----\n";
static const char a_pkcs8[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgN7afAY0Zhj8QAHrO\n"
        "9VuSHuA6eqjJgowUBff4gAhWwn2hRANCAAQK+xw3CdYGuiKx77kMuc0BZPNK4skL\n"
        "4DesceY7VF2My/P+Scwb+dL/WdJJS3q62P6i4+gDqzBvArDMOabfKuFS\n"
        "-----END PRIVATE KEY-----\n";
static const char a_pub[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAECvscNwnWBroise+5DLnNAWTzSuLJ\n"
        "C+A3rHHmO1RdjMvz/knMG/nS/1nSSUt6utj+ouPoA6swbwKwzDmm3yrhUg==\n"
        "-----END PUBLIC KEY-----\n";
static const char b_pkcs8[] =
        "-----BEGIN PRIVATE KEY-----\n"
        "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgggppYyCihDJqVHz5\n"
        "idDvTUIpg4a4WauuoROHrgnPOgehRANCAARZhyD6HUzBVZkDQ+7PYXJEcwBxErll\n"
        "V6H2nE+rl/kc4wRcg2T78cpWFiNDn5fsnY7NDRPwq/bGe/awlMyCmIPp\n"
        "-----END PRIVATE KEY-----\n";
static const char c_pub_p384[] =
        "-----BEGIN PUBLIC KEY-----\n"
        "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEmQsHfnMCLBOg1yRSLtLmHnzInWDwQeYT\n"
        "dQDN8l27fVFinNNsYYCj4dRNZq4LBazjbzULKdr8is/SSPEy4qrER6IVK1rQEbML\n"
        "WZYBhHPmVQKqROAfuZAjCLOtsjACSvgT\n"
        "-----END PUBLIC KEY-----\n";
/* `openssl pkey -pubin -in a_pub -outform DER | sha256sum` */
#define A_FINGERPRINT "a25e73000cc0d015cfdd704ee5b6cebd0b1f5634519838f346d112c9891b4f34"

static int unwrap_id(const char *text, const char *pem, uint8_t out[STORE_MASTER_KEY_LEN]) {
        return backup_key_unwrap_identity(text, strlen(text), pem, strlen(pem), out);
}

Test(backup, recipient_round_trip_and_wrong_identity) {
        char fpr[65];
        cr_assert_eq(backup_recipient_fingerprint(a_pub, strlen(a_pub), fpr), 0);
        cr_assert_str_eq(fpr, A_FINGERPRINT);
        _cleanup_free_ char *w = NULL;
        cr_assert_eq(backup_key_wrap_recipient(key, a_pub, strlen(a_pub), &w), 0);
        cr_assert_null(strstr(w, "0102030405"), "key bytes in the clear");
        cr_assert_not_null(strstr(w, A_FINGERPRINT));
        char kind_fpr[65] = "";
        cr_assert_eq(backup_key_kind(w, strlen(w), kind_fpr), BACKUP_WRAP_RECIPIENT);
        cr_assert_str_eq(kind_fpr, A_FINGERPRINT);

        uint8_t out[STORE_MASTER_KEY_LEN] = {}, zero[STORE_MASTER_KEY_LEN] = {};
        cr_assert_eq(unwrap_id(w, a_sec1, out), 0);
        cr_assert_arr_eq(out, key, sizeof key);
        memset(out, 0, sizeof out);
        cr_assert_eq(unwrap_id(w, a_pkcs8, out), 0);
        cr_assert_arr_eq(out, key, sizeof key);
        memset(out, 0, sizeof out);
        cr_assert_eq(unwrap_id(w, b_pkcs8, out), -EKEYREJECTED);
        cr_assert_eq(unwrap_id(w, a_pub, out), -EINVAL, "a public key is no identity");
        cr_assert_arr_eq(out, zero, sizeof zero, "a failed unwrap wrote the key");
        /* a recipient wrap is no passphrase wrap, and the other way round */
        cr_assert_eq(unwrap(w, PASS, out), -EBADMSG);
        _cleanup_free_ char *p = NULL;
        cr_assert_eq(backup_key_wrap(key, PASS, strlen(PASS), ITER, &p), 0);
        cr_assert_eq(backup_key_kind(p, strlen(p), NULL), BACKUP_WRAP_PASSPHRASE);
        cr_assert_eq(unwrap_id(p, a_sec1, out), -EBADMSG);
        /* two wraps of one key differ (ephemeral key, nonce) */
        _cleanup_free_ char *w2 = NULL;
        cr_assert_eq(backup_key_wrap_recipient(key, a_pub, strlen(a_pub), &w2), 0);
        cr_assert_str_neq(w, w2);
}

Test(backup, recipient_refuses_other_keys_and_damage) {
        char fpr[65];
        char *w = NULL;
        cr_assert_eq(backup_recipient_fingerprint(c_pub_p384, strlen(c_pub_p384), fpr), -EINVAL);
        cr_assert_eq(backup_key_wrap_recipient(key, c_pub_p384, strlen(c_pub_p384), &w), -EINVAL);
        cr_assert_eq(backup_key_wrap_recipient(key, "not a key", 9, &w), -EINVAL);
        cr_assert_null(w);
        cr_assert_eq(backup_key_kind("{}", 2, NULL), -EBADMSG);

        _cleanup_free_ char *good = NULL;
        cr_assert_eq(backup_key_wrap_recipient(key, a_pub, strlen(a_pub), &good), 0);
        uint8_t out[STORE_MASTER_KEY_LEN] = {};
        /* a point that is not on the curve is refused before any ECDH with it */
        char off_curve[2 * 65 + 1];
        memset(off_curve, '1', sizeof off_curve - 1);
        off_curve[0] = '0', off_curve[1] = '4', off_curve[sizeof off_curve - 1] = 0;
        _cleanup_free_ char *bad_point = with_member(good, "ephemeral", json_string(off_curve));
        cr_assert_eq(unwrap_id(bad_point, a_sec1, out), -EBADMSG);
        /* a sealed byte changed: the tag does not hold */
        json_t *o = json_loads(good, 0, NULL);
        char sealed[2 * 48 + 1];
        snprintf(sealed, sizeof sealed, "%s", json_string_value(json_object_get(o, "sealed")));
        json_decref(o);
        sealed[0] = sealed[0] == '0' ? '1' : '0';
        _cleanup_free_ char *bad_seal = with_member(good, "sealed", json_string(sealed));
        cr_assert_eq(unwrap_id(bad_seal, a_sec1, out), -EKEYREJECTED);
        /* a member more, a member less, another KEM */
        _cleanup_free_ char *extra = with_member(good, "extra", json_true());
        cr_assert_eq(unwrap_id(extra, a_sec1, out), -EBADMSG);
        _cleanup_free_ char *less = with_member(good, "nonce", NULL);
        cr_assert_eq(unwrap_id(less, a_sec1, out), -EBADMSG);
        _cleanup_free_ char *kem = with_member(good, "kem", json_string("ecdh-p384"));
        cr_assert_eq(unwrap_id(kem, a_sec1, out), -EBADMSG);
        uint8_t zero[STORE_MASTER_KEY_LEN] = {};
        cr_assert_arr_eq(out, zero, sizeof zero);
}

Test(backup, manifest_round_trip) {
        backup_manifest_t m = sample(), got;
        _cleanup_free_ char *t = NULL;
        cr_assert_eq(backup_manifest_format(&m, &t), 0);
        cr_assert_eq(backup_manifest_parse(t, strlen(t), &got), 0);
        cr_assert_eq(memcmp(&m, &got, sizeof m), 0);
}

Test(backup, manifest_refuses_what_msce_does_not_write) {
        backup_manifest_t m = sample(), got;
        _cleanup_free_ char *t = NULL;
        cr_assert_eq(backup_manifest_format(&m, &t), 0);
        struct {
                const char *name;
                json_t *v;
                int want;
        } bad[] = {
                { "version", json_integer(BACKUP_FORMAT_VERSION + 1), -EPROTONOSUPPORT },
                { "version", json_integer(1), -EPROTO }, /* no MAC */
                { "version", json_integer(0), -EBADMSG },
                { "mac", json_string("00"), -EBADMSG },
                { "mac", NULL, -EBADMSG },
                { "version", json_string("1"), -EBADMSG },
                { "schema", json_integer(-1), -EBADMSG },
                { "created", json_real(1.5), -EBADMSG },
                { "backend", json_string("mysql"), -EBADMSG },
                { "format", json_string("tar"), -EBADMSG },
                { "rows", json_pack("{s:i}", "nodes", 1), -EBADMSG },
                { "rows", json_pack("{s:i, s:i, s:i, s:i, s:i}", "nodes", -1, "targets", 0, "enrolments", 0, "audit",
                                    0, "meta", 1), -EBADMSG },
                { "rows", json_pack("{s:i, s:i, s:i, s:i, s:i}", "nodes", 0, "targets", 0, "enrolments", 0, "audit",
                                    0, "other", 1), -EBADMSG },
                { "files", json_pack("{s:{s:i, s:s}, s:{s:i, s:s}}", "store.jsonl", "size", 1, "sha256", "00",
                                     "master-key.json", "size", 1, "sha256", "00"), -EBADMSG },
                { "files", json_array(), -EBADMSG },
                { "extra", json_true(), -EBADMSG },
                { "files", NULL, -EBADMSG },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *b = with_member(t, bad[i].name, bad[i].v);
                cr_assert_eq(backup_manifest_parse(b, strlen(b), &got), bad[i].want, "%s: %s", bad[i].name, b);
        }
        const char *junk[] = { "", "[]", "{}", "{\"format\": \"msce-mef-backup\"}", "\"x\"" };
        for (size_t i = 0; i < ELEMENTSOF(junk); i++)
                cr_assert_eq(backup_manifest_parse(junk[i], strlen(junk[i]), &got), -EBADMSG, "%s", junk[i]);
        /* uppercase hex is not what msce writes */
        memset(m.files[0].sha256, 'A', 64);
        _cleanup_free_ char *up = NULL;
        cr_assert_eq(backup_manifest_format(&m, &up), 0);
        cr_assert_eq(backup_manifest_parse(up, strlen(up), &got), -EBADMSG);
}

/* The manifest's MAC holds under the key that sealed it, and under no other; a change to any
 * member (a row count, a file's size or SHA-256, the schema) breaks it. */
Test(backup, manifest_mac) {
        uint8_t mk[STORE_MASTER_KEY_LEN], other[STORE_MASTER_KEY_LEN];
        memset(mk, 0x11, sizeof mk);
        memset(other, 0x12, sizeof other);
        backup_manifest_t m = sample(), got;
        cr_assert_eq(backup_manifest_seal(mk, &m), 0);
        _cleanup_free_ char *t = NULL;
        cr_assert_eq(backup_manifest_format(&m, &t), 0);
        cr_assert_eq(backup_manifest_parse(t, strlen(t), &got), 0);
        cr_assert_eq(backup_manifest_verify(mk, &got), 0);
        cr_assert_eq(backup_manifest_verify(other, &got), -EKEYREJECTED);

        backup_manifest_t changed[6];
        for (size_t i = 0; i < ELEMENTSOF(changed); i++)
                changed[i] = got;
        changed[0].rows[2]++;
        changed[1].files[BACKUP_STORE].sha256[0] = 'f';
        changed[2].files[BACKUP_STORE].size++;
        changed[3].files[BACKUP_KEY].sha256[63] = '0';
        changed[4].schema++;
        changed[5].created--;
        for (size_t i = 0; i < ELEMENTSOF(changed); i++)
                cr_assert_eq(backup_manifest_verify(mk, &changed[i]), -EKEYREJECTED, "change %zu", i);
}

Test(backup, line_parse) {
        const char *table;
        json_t *row, *root;
        const char *good = "{\"table\":\"nodes\",\"row\":{\"node_id\":\"x\"}}";
        cr_assert_eq(backup_line_parse(good, strlen(good), &table, &row, &root), 0);
        cr_assert_str_eq(table, "nodes");
        cr_assert(json_is_object(row));
        json_decref(root);
        const char *bad[] = {
                "", "{}", "{\"table\":\"nodes\"}", "{\"table\":1,\"row\":{}}", "{\"table\":\"nodes\",\"row\":[]}",
                "{\"table\":\"nodes\",\"row\":{},\"x\":1}", "{\"table\":\"a\",\"table\":\"b\",\"row\":{}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                cr_assert_eq(backup_line_parse(bad[i], strlen(bad[i]), &table, &row, &root), -EBADMSG, "%s", bad[i]);
        cr_assert_eq(backup_line_parse(good, BACKUP_LINE_MAX + 1, &table, &row, &root), -EBADMSG);
}

/* A master key's ID is HKDF-SHA256 of the key (no salt, info "msce-mef master key id"), 16
 * bytes as lowercase hex; the vector for the key 01 02 .. 20 comes from OpenSSL, not from this code:
 *   openssl kdf -keylen 16 -kdfopt digest:SHA256 -kdfopt info:"msce-mef master key id" \
 *     -kdfopt hexkey:0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20 HKDF
 * (python3: hmac.new(hmac.new(bytes(32), key, "sha256").digest(), info + b"\x01", "sha256")). */
Test(backup, master_key_id_is_hkdf_of_the_key) {
        char id[STORE_MASTER_KEY_ID_HEX];
        cr_assert_eq(store_master_key_id(key, id), 0);
        cr_assert_str_eq(id, "817ae320b36bd13bbc9c3c67f4b6f70e");
        cr_assert(store_master_key_id_is_valid(id));

        /* the same from a key file; another key, another ID */
        char dir[] = "/tmp/test-backup-key-id.XXXXXX", path[PATH_MAX];
        cr_assert_not_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/master.key", dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
        cr_assert_geq(fd, 0);
        cr_assert_eq(write_all(fd, key, sizeof key), 0);
        close(fd);
        char from_file[STORE_MASTER_KEY_ID_HEX];
        cr_assert_eq(store_master_key_file_id(path, from_file), 0);
        cr_assert_str_eq(from_file, id);
        cr_assert_eq(unlink(path), 0);
        cr_assert_eq(store_master_key_file_id(path, from_file), -ENOENT);
        cr_assert_eq(rmdir(dir), 0);
        uint8_t other[STORE_MASTER_KEY_LEN];
        memcpy(other, key, sizeof other);
        other[0] ^= 1;
        cr_assert_eq(store_master_key_id(other, from_file), 0);
        cr_assert_str_neq(from_file, id);

        /* what --expect-master-key takes: 32 lowercase hex digits, nothing else */
        cr_assert_not(store_master_key_id_is_valid("817AE320B36BD13BBC9C3C67F4B6F70E"));
        cr_assert_not(store_master_key_id_is_valid("817ae320b36bd13bbc9c3c67f4b6f70"));
        cr_assert_not(store_master_key_id_is_valid("817ae320b36bd13bbc9c3c67f4b6f70e0"));
        cr_assert_not(store_master_key_id_is_valid("817ae320b36bd13bbc9c3c67f4b6f70g"));
        cr_assert_not(store_master_key_id_is_valid(""));
        cr_assert_not(store_master_key_id_is_valid(NULL));
}

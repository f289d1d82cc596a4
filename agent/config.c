/* SPDX-License-Identifier: MIT */
/* msce-agent configuration: the key table (util/ini.h reads the files by it), then the checks
 * that span keys and the credential files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/config.h"
#include "proto/ids.h"
#include "util/ini-types.h"
#include "util/string-table.h"
#include "util/util.h"

#define PSK_FILE_MAX (2u * MSG_KEY_MAX + 2u) /* hex plus "\r\n" */
#define PEM_FILE_MAX (1024u * 1024u)
#define DROPINS_MAX 128u

static const char *const seal_backend_table[_SEAL_BACKEND_MAX] = {
        [SEAL_AUTO] = "auto",
        [SEAL_TPM2] = "tpm2",
        [SEAL_HOST] = "host",
};

DEFINE_STRING_TABLE(seal_backend, seal_backend_t, seal_backend_table)

static const char *tls_version_str(tls_version_t v) {
        return v == TLS_VERSION_1_2 ? "1.2" : "1.3";
}

/* A coordinate prints only as part of a location (validate() sets has_loc). */
static void coord_print(const void *base, const ini_key_t *k, char *buf, size_t size) {
        const agent_config_t *c = base;
        bool set = k->offset == offsetof(agent_config_t, loc.alt) ? c->has_loc && c->loc.has_alt : c->has_loc;
        char d[32] = "";
        if (set)
                double_format(*INI_CFIELD(base, k, double), d);
        snprintf(buf, size, "%s", d);
}

static const ini_type_t coord = { ini_double_parse, coord_print, ini_double_done };

/* The KpmID goes into the ClientHello: TLS takes at most TLS_PSK_ID_MAX bytes, and a longer one
 * would pass here only to fail at every handshake. */
static int psk_identity_check(const char *s, const char **ret_why) {
        static char why[128]; /* the configuration loads on one thread */
        if (id_is_valid(s, TLS_PSK_ID_MAX))
                return 0;
        snprintf(why, sizeof why, "must be 1..%u printable ASCII characters without spaces (the longest PSK identity "
                 "TLS takes)", TLS_PSK_ID_MAX);
        if (ret_why)
                *ret_why = why;
        return -EINVAL;
}

#define F(f) offsetof(agent_config_t, f)
#define STRING(check) (&(const ini_string_t) { check, NULL })
#define MS 1000ull
#define DURATION(lo, hi, range, ...) \
        (&(const ini_duration_t) { (lo) * MS, (hi) * MS, "out of range (" range ")", __VA_ARGS__ })
#define ENUM(values, ...)                                                                      \
        (&(const ini_enum_t) { (const char *const[]) { __VA_ARGS__ }, values,                   \
                               ELEMENTSOF(((const char *const[]) { __VA_ARGS__ })) })
static const int tls_versions[] = { TLS_VERSION_1_2, TLS_VERSION_1_3 };
static const int tls_modes[] = { TLS_MODE_PSK, TLS_MODE_CERT };

/* One row per key, in the order of the dump; docs/configuration.md has the same table. */
static const ini_key_t keys[] = {
        { "node", "id", &ini_type_string, F(node_id), NULL, STRING(ids_check_node_id) },
        { "node", "latitude", &coord, F(loc.lat), NULL, &(const ini_double_t) { -90, 90, "out of range (-90..90)" },
          INI_EMPTY_UNSETS },
        { "node", "longitude", &coord, F(loc.lon), NULL,
          &(const ini_double_t) { -180, 180, "out of range (-180..180)" }, INI_EMPTY_UNSETS },
        { "node", "altitude", &coord, F(loc.alt), NULL,
          &(const ini_double_t) { -100000, 100000, "out of range (-100000..100000 m)" }, INI_EMPTY_UNSETS },
        { "mef", "uri", &ini_type_https_uri, F(mef_uri), NULL,
          &(const ini_uri_t) { F(mef_host), F(mef_port), F(mef_base) } },
        { "mef", "mode", &ini_type_enum, F(mode), "psk", ENUM(tls_modes, "psk", "cert") },
        { "mef", "psk_identity", &ini_type_string, F(psk_identity), NULL, STRING(psk_identity_check), INI_EMPTY_UNSETS },
        { "mef", "psk_file", &ini_type_string, F(psk_file), NULL, STRING(ini_check_absolute_path), INI_EMPTY_UNSETS },
        { "mef", "psk_credential", &ini_type_string, F(psk_credential), AGENT_PSK_CREDENTIAL_DEFAULT,
          STRING(credential_name_check) },
        { "mef", "certificate", &ini_type_string, F(cert_file), NULL, STRING(ini_check_absolute_path), INI_EMPTY_UNSETS },
        { "mef", "key", &ini_type_string, F(key_file), NULL, STRING(ini_check_absolute_path), INI_EMPTY_UNSETS },
        { "mef", "trust_anchors", &ini_type_string, F(ca_file), NULL, STRING(ini_check_absolute_path), INI_EMPTY_UNSETS },
        { "mef", "tls_min_version", &ini_type_enum, F(tls_min), "1.2", ENUM(tls_versions, "1.2", "1.3") },
        { "mef", "tls_max_version", &ini_type_enum, F(tls_max), "1.3", ENUM(tls_versions, "1.2", "1.3") },
        { "consumer", "user", &ini_type_string, F(service_user), "cse", STRING(user_name_check) },
        { "seal", "backend", &ini_type_enum, F(seal_backend), "auto", &(const ini_enum_t) { seal_backend_table, NULL, _SEAL_BACKEND_MAX } },
        { "seal", "tcti", &ini_type_string, F(tcti), "device:/dev/tpmrm0", STRING(ini_check_printable) },
        { "seal", "pcrs", &ini_type_string, F(pcrs), "", STRING(pcr_list_check) },
        { "seal", "state_dir", &ini_type_string, F(state_dir), "/var/lib/msce", STRING(ini_check_absolute_path) },
        { "seal", "runtime_dir", &ini_type_string, F(runtime_dir), "/run/msce", STRING(ini_check_absolute_path) },
        { "leds", "status", &ini_type_string, F(led_status), NULL, STRING(ini_check_printable), INI_EMPTY_UNSETS },
        { "leds", "error", &ini_type_string, F(led_error), NULL, STRING(ini_check_printable), INI_EMPTY_UNSETS },
        { "timing", "connect_timeout", &ini_type_duration, F(connect_timeout_usec), "10s",
          DURATION(100, 300000, "100ms..5min") },
        { "timing", "exchange_timeout", &ini_type_duration, F(exchange_timeout_usec), "30s",
          DURATION(1000, 600000, "1s..10min") },
        { "timing", "backoff_min", &ini_type_duration, F(backoff_min_usec), "1s", DURATION(100, 3600000, "100ms..1h") },
        { "timing", "backoff_max", &ini_type_duration, F(backoff_max_usec), "10min", DURATION(1000, 86400000, "1s..24h") },
        { "timing", "rejected_retry", &ini_type_duration, F(rejected_retry_usec), "1h",
          DURATION(1000, 604800000, "1s..168h") },
        { "timing", "initial_delay_max", &ini_type_duration, F(initial_delay_max_usec), "0",
          DURATION(0, 3600000, "0..1h") },
        { "timing", "retry_after_max", &ini_type_duration, F(retry_after_max_usec), "1h",
          DURATION(1000, 86400000, "1s..24h", .whole_seconds = true) },
        { "timing", "clock_wait_max", &ini_type_duration, F(clock_wait_max_usec), "5min", DURATION(0, 86400000, "0..24h") },
};

static const char *file_error(int r) {
        switch (r) {
        case -ENOENT:
                return "does not exist";
        case -EACCES:
                return "is not readable (permission denied)";
        case -EPERM:
                return "is readable by group or others (chmod 0600)";
        case -EBADFD:
        case -EISDIR:
                return "is not a regular file";
        case -ENODATA:
                return "is empty";
        case -EFBIG:
                return "is too large";
        default:
                return strerror(-r);
        }
}

/* Refuse FIFOs and devices before opening: opening a FIFO would block. */
static int regular_file_check(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return negative_errno();
        return S_ISREG(st.st_mode) ? 0 : -EBADFD;
}

static int check_psk_file(ini_t *ini, size_t k, const char *path, secret_flags_t flags) {
        _cleanup_secret_ secret_t sec = {};
        int r = regular_file_check(path);
        if (r == 0)
                r = secret_file_read_flags(path, PSK_FILE_MAX, flags, &sec);
        if (r == -EFBIG)
                return ini_fail_key(ini, -EINVAL, k, "%s is too large (the Kpm is 16..64 bytes as hex)", path);
        if (r < 0)
                return ini_fail_key(ini, r, k, "%s %s", path, file_error(r));
        /* as the agent reads it (secret_hex_file_read()), telling the reasons apart */
        uint8_t key[MSG_KEY_MAX + 1]; /* one more: a longer Kpm is told apart */
        size_t klen = 0;
        r = hex_key_parse((const char *) sec.data, sec.len, 1, sizeof key, key, &klen);
        erase(key, sizeof key);
        if (r < 0 && r != -ENODATA)
                return ini_fail_key(ini, -EINVAL, k, "%s does not hold the Kpm as hex", path);
        if (klen > MSG_KEY_MAX)
                return ini_fail_key(ini, -EINVAL, k, "%s: the Kpm is longer than %u bytes", path, MSG_KEY_MAX);
        if (klen < MSG_KEY_MIN)
                return ini_fail_key(ini, -EINVAL, k, "%s: the Kpm is %zu bytes, at least %u are needed", path, klen,
                                    MSG_KEY_MIN);
        return 0;
}

/* A PEM file of certificates, or for [mef] key the private key (owner-only, read as a secret). */
static int check_pem_file(ini_t *ini, size_t k, const char *path) {
        bool key = k == F(key_file);
        _cleanup_secret_ secret_t sec = {};
        _cleanup_free_ char *data = NULL;
        int r = regular_file_check(path);
        if (r == 0)
                r = key ? secret_file_read(path, PEM_FILE_MAX, &sec) : file_read_all(path, PEM_FILE_MAX, &data, NULL);
        if (r < 0)
                return ini_fail_key(ini, r, k, "%s %s", path, file_error(r));
        if (key && (!memmem(sec.data, sec.len, "-----BEGIN ", 11) || !memmem(sec.data, sec.len, "PRIVATE KEY-----", 16)))
                return ini_fail_key(ini, -EINVAL, k, "%s is not a PEM private key", path);
        if (!key && !strstr(data, "-----BEGIN CERTIFICATE-----"))
                return ini_fail_key(ini, -EINVAL, k, "%s holds no PEM certificate", path);
        return 0;
}

/* $CREDENTIALS_DIRECTORY/<psk_credential> when it is there and not empty: *ret (NULL when not). */
static int credential_find(const agent_config_t *c, char **ret) {
        *ret = NULL;
        const char *dir = getenv("CREDENTIALS_DIRECTORY");
        if (!dir || !*dir || !c->psk_credential || !*c->psk_credential)
                return 0;
        _cleanup_free_ char *path = NULL;
        if (asprintf(&path, "%s/%s", dir, c->psk_credential) < 0)
                return -ENOMEM;
        /* Blank (msce-agent.service's SetCredential= fallback is a newline): none. */
        struct stat st;
        if (stat(path, &st) < 0)
                return 0;
        if (S_ISREG(st.st_mode) && st.st_size <= 2) {
                _cleanup_free_ char *text = NULL;
                if (file_read_all(path, 2, &text, NULL) < 0 || strspn(text, "\r\n") == strlen(text))
                        return 0;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

/* The credential in systemd's credential store, where LoadCredentialEncrypted= finds it. */
static int credstore_find(const agent_config_t *c, char **ret) {
        static const char *const dirs[] = {
                "/etc/credstore.encrypted", "/run/credstore.encrypted", "/usr/lib/credstore.encrypted",
                "/etc/credstore",           "/run/credstore",           "/usr/lib/credstore",
        };
        *ret = NULL;
        if (!c->psk_credential || !*c->psk_credential)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *path = NULL;
                if (asprintf(&path, "%s/%s", dirs[i], c->psk_credential) < 0)
                        return -ENOMEM;
                /* /etc/credstore* are root's (0700): another user cannot see into them, and
                 * takes a credential there as given (the service gets the blank fallback and
                 * says so at its start when it is not). */
                if (access(path, F_OK) == 0 || errno == EACCES) {
                        *ret = TAKE_PTR(path);
                        return 0;
                }
        }
        return 0;
}

static int validate(ini_t *ini, agent_config_t *c, unsigned flags) {
        if (!c->node_id)
                ini_fail_key(ini, -EINVAL, F(node_id), "required");
        if (!c->mef_uri)
                ini_fail_key(ini, -EINVAL, F(mef_uri), "required");
        if (ini_is_set(ini, F(loc.lat)) && !ini_is_set(ini, F(loc.lon)))
                ini_fail_key(ini, -EINVAL, F(loc.lat), "longitude is missing (give both or neither)");
        if (ini_is_set(ini, F(loc.lon)) && !ini_is_set(ini, F(loc.lat)))
                ini_fail_key(ini, -EINVAL, F(loc.lon), "latitude is missing (give both or neither)");
        if (ini_is_set(ini, F(loc.alt)) && !ini_is_set(ini, F(loc.lat)))
                ini_fail_key(ini, -EINVAL, F(loc.alt), "needs latitude and longitude");
        if (c->tls_min > c->tls_max)
                ini_fail_key(ini, -EINVAL, ini_is_set(ini, F(tls_min)) ? F(tls_min) : F(tls_max),
                             "tls_min_version %s is above tls_max_version %s", tls_version_str(c->tls_min),
                             tls_version_str(c->tls_max));
        if (c->backoff_min_usec > c->backoff_max_usec)
                ini_fail_key(ini, -EINVAL,
                             ini_is_set(ini, F(backoff_min_usec)) ? F(backoff_min_usec) : F(backoff_max_usec),
                             "backoff_min is above backoff_max");
        /* The Kpm: the systemd credential when the service manager passes one (not empty:
         * msce-agent.service's SetCredential= fallback is empty), else psk_file. */
        _cleanup_free_ char *credential = NULL;
        if (c->mode == TLS_MODE_PSK) {
                if (credential_find(c, &credential) < 0)
                        return ini_fail(ini, -ENOMEM, "out of memory");
                if (!c->psk_identity)
                        ini_fail_key(ini, -EINVAL, F(psk_identity), "required (mode = psk)");
                /* Outside the service (an operator's --check-config, mscectl check) the credential
                 * is only in the credential store: valid, read when systemd starts the agent. */
                if (!c->psk_file && !credential && credstore_find(c, &c->kpm_credstore) < 0)
                        return ini_fail(ini, -ENOMEM, "out of memory");
                if (!c->psk_file && !credential && !c->kpm_credstore)
                        ini_fail_key(ini, -EINVAL, F(psk_file),
                                     "required (mode = psk) when systemd passes no credential %s",
                                     c->psk_credential[0] ? c->psk_credential : "(psk_credential is empty)");
        } else {
                if (!c->cert_file)
                        ini_fail_key(ini, -EINVAL, F(cert_file), "required (mode = cert)");
                if (!c->key_file)
                        ini_fail_key(ini, -EINVAL, F(key_file), "required (mode = cert)");
                if (!c->ca_file)
                        ini_fail_key(ini, -EINVAL, F(ca_file), "required (mode = cert)");
        }
        if (ini_error(ini) < 0)
                return ini_error(ini);

        /* An unset coordinate is 0 in the struct: loc is complete only with both. */
        c->has_loc = ini_is_set(ini, F(loc.lat)) && ini_is_set(ini, F(loc.lon));
        c->loc.has_alt = c->has_loc && ini_is_set(ini, F(loc.alt));

        if (c->kpm_credstore)
                return 0; /* nothing to read here: only found without psk_file or a credential */
        if (c->mode == TLS_MODE_PSK) {
                c->kpm_is_credential = credential;
                c->kpm_path = credential ? TAKE_PTR(credential) : strdup(c->psk_file);
                if (!c->kpm_path)
                        return ini_fail(ini, -ENOMEM, "out of memory");
        }
        if (flags & AGENT_CONFIG_NO_SECRETS)
                return 0;
        if (c->mode == TLS_MODE_PSK)
                return check_psk_file(ini, c->kpm_is_credential ? F(psk_credential) : F(psk_file), c->kpm_path,
                                      c->kpm_is_credential ? SECRET_CREDENTIAL : 0);
        int r = check_pem_file(ini, F(key_file), c->key_file);
        if (r == 0)
                r = check_pem_file(ini, F(cert_file), c->cert_file);
        if (r == 0)
                r = check_pem_file(ini, F(ca_file), c->ca_file);
        return r;
}

/* Defaults, then data (when not NULL) or the file at path and its drop-ins, then the checks. */
static int load(const char *path, const char *data, size_t len, unsigned flags, agent_config_t *ret, char *err,
                size_t err_size) {
        if (err && err_size > 0)
                err[0] = 0;
        if (!ret)
                return -EINVAL;
        _cleanup_(agent_config_done) agent_config_t c = { .path = strdup(path) };
        if (!c.path)
                return -ENOMEM;
        _cleanup_(ini_freep) ini_t *ini = NULL;
        int r = ini_new(keys, ELEMENTSOF(keys), &c, path, 0, err, err_size, &ini);
        if (r < 0)
                return r;
        if (data)
                r = ini_parse_buffer(ini, path, data, len);
        else {
                r = ini_parse_file(ini, path);
                if (r == 0)
                        r = ini_parse_dropins(ini, path, DROPINS_MAX);
        }
        if (r == 0)
                r = validate(ini, &c, flags);
        if (r < 0)
                return r;
        *ret = c;
        c = (agent_config_t) {};
        return 0;
}

int agent_config_load(const char *path, unsigned flags, agent_config_t *ret, char *err, size_t err_size) {
        return load(path ?: AGENT_CONFIG_DEFAULT, NULL, 0, flags, ret, err, err_size);
}

int agent_config_parse_buffer(const char *name, const char *data, size_t len, unsigned flags, agent_config_t *ret,
                              char *err, size_t err_size) {
        return load(name, data ?: "", data ? len : 0, flags, ret, err, err_size);
}

void agent_config_done(agent_config_t *c) {
        if (!c)
                return;
        ini_fields_done(keys, ELEMENTSOF(keys), c);
        free(c->path);
        free(c->kpm_path);
        free(c->kpm_credstore);
        c->path = c->kpm_path = c->kpm_credstore = NULL;
        c->kpm_is_credential = false;
}

void agent_config_dump(const agent_config_t *c, FILE *f) {
        ini_dump(keys, ELEMENTSOF(keys), c, f);
}

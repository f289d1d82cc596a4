/* SPDX-License-Identifier: MIT */
#pragma once
/* /etc/msce/agent.conf (INI, util/ini.h) plus agent.conf.d/<name>.conf drop-ins in lexical order.
 * Secrets are given only as file paths; the files are checked (owner-only) when loaded. */

#include <stdbool.h>
#include <stdio.h>

#include "proto/msg.h"
#include "proto/tls.h"
#include "util/parse.h"

#define AGENT_CONFIG_DEFAULT "/etc/msce/agent.conf"
#define AGENT_PSK_CREDENTIAL_DEFAULT "msce.kpm" /* LoadCredentialEncrypted= of msce-agent.service */

typedef enum seal_backend {
        SEAL_AUTO,
        SEAL_TPM2,
        SEAL_HOST,
        _SEAL_BACKEND_MAX,
        _SEAL_BACKEND_INVALID = -22,
} seal_backend_t;

typedef struct agent_config {
        char *path;                /* main file */
        /* [node] */
        char *node_id;             /* id = ..., required, printable ASCII <= 255 */
        bool has_loc;              /* latitude/longitude/altitude = ... */
        msg_loc_t loc;
        /* [mef] */
        char *mef_uri;             /* uri = https://host[:port]/base, required; kept canonical
                                    * (lowercase host, no :443, no trailing slash) */
        char *mef_host;            /* parsed; lowercase; an IPv6 literal without brackets */
        char *mef_port;            /* decimal, default 443 */
        char *mef_base;            /* "" or "/path" without trailing slash */
        tls_mode_t mode;           /* mode = psk|cert */
        char *psk_identity;        /* psk_identity = KpmID (psk mode, required) */
        char *psk_file;            /* psk_file = path to Kpm as hex (16..64 bytes), owner-only */
        char *psk_credential;      /* psk_credential = msce.kpm: the systemd credential holding the
                                    * Kpm; $CREDENTIALS_DIRECTORY/<it>, when there and not empty,
                                    * comes before psk_file; "" off */
        char *kpm_path;            /* not from the file: where the Kpm is read from (the credential
                                    * or psk_file; psk mode). NULL when the Kpm is only in systemd's
                                    * credential store (kpm_credstore): msce-agent.service passes it,
                                    * any other start cannot enrol (custody_preflight() says so) */
        bool kpm_is_credential;    /* kpm_path is systemd's credential (util/fs.h: SECRET_CREDENTIAL) */
        char *kpm_credstore;       /* the credential found in /etc/credstore.encrypted/... */
        char *cert_file;           /* certificate = PEM (cert mode) */
        char *key_file;            /* key = PEM, owner-only (cert mode) */
        char *ca_file;             /* trust_anchors = PEM (cert mode, required) */
        tls_version_t tls_min;     /* tls_min_version = 1.2|1.3 */
        tls_version_t tls_max;     /* tls_max_version = 1.2|1.3 (testing / interop) */
        /* [consumer] */
        char *service_user;        /* user = cse */
        /* [seal] */
        seal_backend_t seal_backend; /* backend = auto|tpm2|host */
        char *tcti;                /* tcti = device:/dev/tpmrm0 */
        char *pcrs;                /* pcrs = "" (off) or "sha256:0,7" */
        char *state_dir;           /* state_dir = /var/lib/msce */
        char *runtime_dir;         /* runtime_dir = /run/msce */
        /* [leds] kept as strings (printable, <= 255) until hw/leds parses them (hw/leds.h):
         * "gpiochipN:OFFSET[:active-low]" or "name:LINE_NAME[:active-low]", e.g. "gpiochip0:17" */
        char *led_status;          /* status = gpiochip0:17 */
        char *led_error;           /* error = name:LED_ERR:active-low */
        /* [timing]. Values: milliseconds, or a number with one suffix of ms, s, min, h, d ("1500",
         * "90s", "5min"); the dump uses the largest exact unit. */
        usec_t connect_timeout_usec;   /* connect_timeout = 10s */
        usec_t exchange_timeout_usec;  /* exchange_timeout = 30s (protocol section 6) */
        usec_t backoff_min_usec;       /* backoff_min = 1s */
        usec_t backoff_max_usec;       /* backoff_max = 10min */
        usec_t rejected_retry_usec;    /* rejected_retry = 1h */
        usec_t initial_delay_max_usec; /* initial_delay_max = 0 */
        usec_t retry_after_max_usec;   /* retry_after_max = 1h (whole seconds) */
        usec_t clock_wait_max_usec;    /* clock_wait_max = 5min: in cert mode, how long to wait for
                                        * the clock to pass the build time before verifying
                                        * certificates anyway (0: do not wait) */
        bool check_only;               /* not from the file: msce-agent --check-config, mscectl: a Kpm
                                        * only in the credential store is fine (nothing is sent) */
} agent_config_t;

/* Loads defaults, the file (NULL: AGENT_CONFIG_DEFAULT) and <file>.d/<name>.conf, then validates.
 * -ENOENT/-EACCES/-EINVAL/-EPERM...; err gets "FILE:LINE: [section] key: reason" (or
 * "FILE: [section] key: reason" for a missing required field). Secret files are checked for
 * existence, readability and mode (owner-only) but not kept in memory. flags: 0, or
 * AGENT_CONFIG_NO_SECRETS to skip reading the credential files (psk_file, key, certificate,
 * trust_anchors), for readers that need no secret, e.g. mscectl status as any user. */
#define AGENT_CONFIG_NO_SECRETS 1u
int agent_config_load(const char *path, unsigned flags, agent_config_t *ret, char *err, size_t err_size);
/* The same from the text of one file in memory (len bytes, NULs included; no drop-ins), named
 * name in errors: the fuzzers' entry point (with AGENT_CONFIG_NO_SECRETS nothing is read from
 * the disk but the credential directories' listings). */
int agent_config_parse_buffer(const char *name, const char *data, size_t len, unsigned flags, agent_config_t *ret,
                              char *err, size_t err_size);
void agent_config_done(agent_config_t *c);

/* The effective configuration as INI on f (secrets as paths). Every key is printed, defaults
 * included, an unset one as "key ="; the output loads back to the same configuration. */
void agent_config_dump(const agent_config_t *c, FILE *f);

const char *seal_backend_to_string(seal_backend_t b);
seal_backend_t seal_backend_from_string(const char *s);

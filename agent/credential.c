/* SPDX-License-Identifier: MIT */
/* The bootstrap credential and the seal options from the configuration (agent/credential.h). */
#include <fcntl.h>

#include "agent/credential.h"
#include "util/util.h"

int credential_tls_ctx(const agent_config_t *cfg, tls_ctx_t **ret, exchange_info_t *info) {
        tls_config_t tc = {
                .mode = cfg->mode,
                .min_version = cfg->tls_min,
                .max_version = cfg->tls_max,
        };
        int r;
        if (cfg->mode == TLS_MODE_PSK) {
                _cleanup_erase_(64) uint8_t kpm[MSG_KEY_MAX];
                size_t len = 0;

                if (!cfg->kpm_path)
                        return failure_set(&info->failure, OUTCOME_CONFIG, -ENOKEY,
                                           "%s: [mef] psk_credential: the Kpm is the systemd credential %s, which only "
                                           "msce-agent.service receives", cfg->path, cfg->psk_credential);
                r = secret_hex_file_read_flags(cfg->kpm_path, MSG_KEY_MIN, MSG_KEY_MAX,
                                               cfg->kpm_is_credential ? SECRET_CREDENTIAL : 0, kpm, &len);
                /* The credential when systemd passed one (agent/config.h), else psk_file. */
                const char *key = cfg->kpm_is_credential ? "psk_credential" : "psk_file";
                if (r == -EPERM)
                        return failure_set(&info->failure, OUTCOME_CONFIG, r,
                                           "%s: [mef] %s: %s is readable by group or others (chmod 0600)",
                                           cfg->path, key, cfg->kpm_path);
                if (r == -EINVAL)
                        return failure_set(&info->failure, OUTCOME_CONFIG, r,
                                           "%s: [mef] %s: %s does not hold a 16..64 byte Kpm as hex",
                                           cfg->path, key, cfg->kpm_path);
                if (r < 0)
                        return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [mef] %s: cannot read %s: %s",
                                           cfg->path, key, cfg->kpm_path, strerror(-r));
                tc.psk_identity = cfg->psk_identity;
                tc.psk = kpm;
                tc.psk_len = len;
                r = tls_ctx_new_client(&tc, ret);
                erase(&tc, sizeof tc);
        } else {
                /* wolfSSL loads the key whatever its mode: check it is still owner-only. */
                _cleanup_close_ int fd = open(cfg->key_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
                r = fd < 0 ? negative_errno() : secret_fd_check_mode(fd);
                if (r == -EPERM)
                        return failure_set(&info->failure, OUTCOME_CONFIG, r,
                                           "%s: [mef] key: %s is readable by group or others (chmod 0600)", cfg->path,
                                           cfg->key_file);
                if (r < 0)
                        return failure_set(&info->failure, OUTCOME_CONFIG, r, "%s: [mef] key: cannot read %s: %s", cfg->path,
                                           cfg->key_file, strerror(-r));
                tc.cert_file = cfg->cert_file;
                tc.key_file = cfg->key_file;
                tc.ca_file = cfg->ca_file;
                r = tls_ctx_new_client(&tc, ret);
        }
        if (r == -ENOMEM)
                return failure_set(&info->failure, OUTCOME_TRANSIENT, r, "out of memory setting up TLS");
        if (r < 0)
                return failure_set(&info->failure, OUTCOME_CONFIG, r,
                                   cfg->mode == TLS_MODE_PSK ? "%s: [mef]: cannot set up TLS with the PSK: %s"
                                                          : "%s: [mef]: cannot load certificate, key or trust anchors: %s",
                                   cfg->path, strerror(-r));
        return 0;
}

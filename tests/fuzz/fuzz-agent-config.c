/* SPDX-License-Identifier: MIT */
/* agent_config_load() on arbitrary bytes as /etc/msce/agent.conf (no secret files read:
 * AGENT_CONFIG_NO_SECRETS, so the input's paths are never opened). An accepted configuration
 * must hold its required fields, ranges and canonical forms, and agent_config_dump() must load
 * back to the same dump; a refusal must say why. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "agent/config.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* The dump as a heap string. */
static char *dump(const agent_config_t *c, size_t *ret_len) {
        char *s = NULL;
        size_t n = 0;
        FILE *f = open_memstream(&s, &n);
        check(f);
        agent_config_dump(c, f);
        check(fclose(f) == 0);
        *ret_len = n;
        return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* the service's credential directory would be read before psk_file */
        unsetenv("CREDENTIALS_DIRECTORY");

        char err[512];
        _cleanup_(agent_config_done) agent_config_t c = {};
        int r = agent_config_load(memfile_set(data, size), AGENT_CONFIG_NO_SECRETS, &c, err, sizeof err);
        if (r < 0) {
                check(err[0] && memchr(err, 0, sizeof err));
                return 0;
        }
        check(r == 0);
        check(c.node_id && c.mef_uri && c.mef_host && c.mef_port && c.mef_base);
        check(c.mode == TLS_MODE_PSK || c.mode == TLS_MODE_CERT);
        check(c.tls_min <= c.tls_max && c.backoff_min_usec <= c.backoff_max_usec);
        check(c.mode != TLS_MODE_PSK || c.psk_identity);
        check(c.mode != TLS_MODE_CERT || (c.cert_file && c.key_file && c.ca_file));
        check(c.mef_base[0] == 0 || (c.mef_base[0] == '/' && c.mef_base[strlen(c.mef_base) - 1] != '/'));
        for (const char *p = c.mef_host; *p; p++)
                check(!(*p >= 'A' && *p <= 'Z'));

        size_t n1 = 0, n2 = 0;
        _cleanup_free_ char *d1 = dump(&c, &n1);
        _cleanup_(agent_config_done) agent_config_t c2 = {};
        r = agent_config_load(memfile_set(d1, n1), AGENT_CONFIG_NO_SECRETS, &c2, err, sizeof err);
        if (r < 0) {
                fprintf(stderr, "the dump does not load back: %s\n%s", err, d1);
                abort();
        }
        _cleanup_free_ char *d2 = dump(&c2, &n2);
        if (n1 != n2 || memcmp(d1, d2, n1) != 0) {
                fprintf(stderr, "the dump loads back to another configuration:\n%s---\n%s", d1, d2);
                abort();
        }
        return 0;
}

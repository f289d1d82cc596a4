/* SPDX-License-Identifier: MIT */
/* mef_config_load() on arbitrary bytes as /etc/msce/mef.conf. An accepted configuration must
 * hold every field set and in range (what the server builds on without checking again); a
 * refusal must say why, and loading must be a function of the bytes alone. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-util.h"
#include "mef/mef-config.h"
#include "proto/ids.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char err[512] = "";
        mef_config_t c = {};
        int r = mef_config_load(memfile_set(data, size), &c, err, sizeof err);
        if (r < 0) {
                check(r == -EINVAL || r == -ENOMEM);
                check(err[0] && memchr(err, 0, sizeof err));
                check(!c.listen_host && !c.base); /* ret untouched on failure */
                return 0;
        }
        check(r == 0);
        check(c.listen_host && c.listen_port && c.fqdn && c.base && c.store_path && c.master_key_path);
        check(ids_check_host(c.fqdn, NULL) == 0);
        check(c.base[0] == '/' || c.base[0] == 0);
        check(!c.key_file == !c.cert_file && (!c.client_ca_file || c.cert_file));
        check(c.tls_min == TLS_VERSION_1_2 || c.tls_min == TLS_VERSION_1_3);
        check(c.max_connections > 0 && c.handshake_timeout_usec > 0 && c.request_timeout_usec > 0);
        mef_config_done(&c);
        return 0;
}

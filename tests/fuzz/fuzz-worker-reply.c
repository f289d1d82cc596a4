/* SPDX-License-Identifier: MIT */
/* worker_reply_parse() on arbitrary bytes: what an exchange child (which parsed network input)
 * sends the daemon. The first byte picks the op (bit 0) and whether the child reported success
 * or -EIO (bit 1); the rest is the payload. Whatever is accepted must be usable as C strings and
 * values in range, or the daemon would read past a field. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/worker.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_terminated(const char *s, size_t size) {
        if (!memchr(s, 0, size))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        worker_op_t op = (worker_op_t) (data[0] & 1);
        int result = data[0] & 2 ? -EIO : 0;
        exchange_info_t info;
        msg_status_t st;
        stored_profile_t p;
        int r = worker_reply_parse(op, result, data + 1, size - 1, &info, &st, &p);
        if (r < 0)
                return 0;
        if (r != 0)
                abort();
        check_terminated(info.tls_version, sizeof info.tls_version);
        check_terminated(info.cipher, sizeof info.cipher);
        check_terminated(info.failure.reason, sizeof info.failure.reason);
        check_terminated(info.retry_after_sent, sizeof info.retry_after_sent);
        if (info.failure.outcome < 0 || info.failure.outcome >= _OUTCOME_MAX || (result == 0) != (info.failure.outcome == OUTCOME_OK) ||
            info.stage < 0 || info.stage >= _EXCHANGE_STAGE_MAX)
                abort();
        if (result < 0)
                return 0;
        if (op == WORKER_STATUS) {
                check_terminated(st.ke_id, sizeof st.ke_id);
                check_terminated(st.exp, sizeof st.exp);
                if (st.state < 0 || st.state >= _MSG_STATE_MAX)
                        abort();
        } else {
                check_terminated(p.node_id, sizeof p.node_id);
                check_terminated(p.mef_uri, sizeof p.mef_uri);
                check_terminated(p.cse_id, sizeof p.cse_id);
                check_terminated(p.cse_base, sizeof p.cse_base);
                check_terminated(p.ke_id, sizeof p.ke_id);
                check_terminated(p.exp, sizeof p.exp);
                if (p.ltk_len > sizeof p.ltk || p.n_targets > MSG_TARGETS_MAX)
                        abort();
                for (size_t i = 0; i < p.n_targets; i++) {
                        check_terminated(p.targets[i].id, sizeof p.targets[i].id);
                        check_terminated(p.targets[i].kpsa_id, sizeof p.targets[i].kpsa_id);
                }
                stored_profile_wipe(&p);
        }
        return 0;
}

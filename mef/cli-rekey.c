/* SPDX-License-Identifier: MIT */
/* rekey: master key rotation while the MEF serves (mef/store-backup.h store_rekey()). */
#include <inttypes.h>

#include "mef/cli-internal.h"
#include "mef/store-backup.h"
#include "util/util.h"

int cmd_rekey(cli_t *c, const command_t *def, int argc, char **argv) {
        static const struct option prepare_opt = { "prepare", no_argument, NULL, 'P' };
        const char *prepare = NULL;
        int r = cli_own_option(c, "rekey", def, argc, argv, ":h", &prepare_opt, &prepare);
        if (r >= 0)
                return r;
        if ((r = cli_positionals("rekey", argc, argv, 0, NULL)))
                return r;
        char pending[PATH_MAX];
        r = store_rekey_pending_path(c->cfg->master_key_path, pending, sizeof pending);
        if (r < 0)
                return cli_fail(c->cfg->master_key_path, r);
        if (prepare) {
                r = store_rekey_prepare(c->cfg->master_key_path);
                if (r < 0)
                        return cli_failf("rekey --prepare: %s: %s", pending, strerror(-r));
                printf("The next master key is %s%s: copy it (mode 0400) to the same path on every other "
                       "msce-mef host of this store, then run msce-mef rekey on one of them.\n",
                       pending, r > 0 ? " (there already, kept)" : "");
                /* written: a key file that cannot be read back now costs only the line */
                char id[STORE_MASTER_KEY_ID_HEX];
                r = store_master_key_file_id(pending, id);
                if (r < 0)
                        fprintf(stderr, "msce-mef: rekey --prepare: reading the next key's ID: %s\n", strerror(-r));
                else
                        printf("Master key ID %s (the next key's): backups made after msce-mef rekey carry it.\n", id);
                return 0;
        }
        if ((r = cli_open(c, false)))
                return r;
        store_rekey_result_t k;
        r = store_rekey(c->store, &k);
        if (r == -EBUSY)
                return cli_failf("rekey: another rekey of %s is running", c->cfg->master_key_path);
        if (r < 0 && k.took_over)
                return cli_failf("rekey: %s: stopped after the new key %s took over (%" PRIu64 " secrets re-encrypted "
                                 "so far); the store opens with it and with %s until a rekey finishes: run msce-mef "
                                 "rekey again",
                                 cli_strerror(r), pending, k.resealed, c->cfg->master_key_path);
        if (r < 0 && k.commit_unknown)
                return cli_failf("rekey: committing the new key: %s; whether it took over is unknown, so it stays at "
                                 "%s: run msce-mef rekey again (it takes that key)",
                                 cli_strerror(r), pending);
        if (r < 0)
                return cli_failf("rekey: %s (nothing was changed)", cli_strerror(r));
        uint64_t n = k.resealed;
        char detail[64];
        snprintf(detail, sizeof detail, "%" PRIu64 " secrets", n);
        r = store_audit(c->store, cli_actor(), "rekey", c->cfg->master_key_path, detail);
        if (r < 0)
                return cli_fail("audit", r);
        /* Resumed with nothing left under the old key: only the rename was left to do. That is the
         * normal end on each other host of a store (the rekey ran on one), and the end of a
         * rekey here that stopped after its last secret: the store cannot tell the two apart. */
        if (k.resumed && n == 0)
                printf("The master key rotation was done already (by a rekey on another host of this store, or one "
                       "here that stopped just before its end): %s renamed over %s, no secret left to re-encrypt. "
                       "A serving msce-mef picks the new key up by itself.\n",
                       pending, c->cfg->master_key_path);
        else
                printf("Rotated the master key %s%s: %" PRIu64 " secrets re-encrypted. A serving msce-mef picks the "
                       "new key up by itself; backups made before keep their own wrapped key.\n",
                       c->cfg->master_key_path, k.resumed ? " (finishing the rekey that had stopped)" : "", n);
        /* the rekey is done either way: a key file that cannot be read now costs only the line */
        char id[STORE_MASTER_KEY_ID_HEX];
        r = store_master_key_file_id(c->cfg->master_key_path, id);
        if (r < 0)
                fprintf(stderr, "msce-mef: rekey: reading the new key's ID: %s\n", strerror(-r));
        else
                printf("Master key ID %s (the new key's): write it down; backups made from now on carry it.\n", id);
        return 0;
}

#!/usr/bin/env bash
# msce-mef migrate on a SQLite store: an older schema is refused by the operator commands
# (with the advice to migrate), brought forward by migrate (once), a newer one refused by every
# command, serve included. PostgreSQL's migrations: tests/unit/test-store-*.c (test-store) under pg-run.sh.
# Usage: mef-migrate.sh PATH/TO/msce-mef (TAP). Skipped without sqlite3.
set -euo pipefail
MEF=${1:?usage: mef-migrate.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds sqlite3
tmpdir mef-migrate
LIB_SHOW="$T/mefctl.out"
mef_conf
mefctl init || fail "init"
mefctl node list || fail "node list on a new store"

# back to schema 1 (what version 2 added: the one-active-enrolment index; 3: the status tally
# and the pruning indexes; 4: the indexes of bulk import and paging)
sqlite3 "$T/mef.db" 'DROP INDEX enrolments_one_active; DROP INDEX audit_ts; DROP INDEX enrolments_exp;
        DROP INDEX nodes_cse_id; DROP INDEX enrolments_created;
        ALTER TABLE nodes DROP COLUMN last_seen; ALTER TABLE nodes DROP COLUMN status_checks; PRAGMA user_version = 1;'
mefctl node list > /dev/null && fail "an older schema was accepted"
grep -q "msce-mef migrate" "$T/mefctl.out" || fail "no advice to migrate"
ok "older schema refused by node list: $(head -n1 "$T/mefctl.out")"
mefctl migrate || fail "migrate"
grep -q "migrated from version 1" "$T/mefctl.out" || fail "migrate said otherwise"
[ "$(sqlite3 "$T/mef.db" 'PRAGMA user_version')" = 4 ] || fail "user_version after migrate"
sqlite3 "$T/mef.db" "SELECT name FROM sqlite_master WHERE name = 'enrolments_one_active'" | grep -q . ||
        fail "migrate did not create the index"
mefctl migrate || fail "migrate again"
grep -q "up to date" "$T/mefctl.out" || fail "second migrate said otherwise"
mefctl node list || fail "node list after migrate"
mefctl audit || fail "audit"
[ "$(grep -c " migrate " "$T/mefctl.out")" = 1 ] || fail "migration not audited once"
ok "migrate: 1 -> 4 once, then up to date; audited"

sqlite3 "$T/mef.db" 'PRAGMA user_version = 99;'
for cmd in "node list" migrate serve; do
        # serve must refuse before it listens: 20 s is a deadline for a hang
        # shellcheck disable=SC2086
        timeout 20 "$MEF" --config "$MEF_CONF" $cmd > "$T/mefctl.out" 2>&1 && fail "$cmd accepted a newer schema"
        grep -qi "newer" "$T/mefctl.out" || fail "$cmd: no word of a newer schema"
done
ok "a newer schema is refused by node list, migrate and serve"
tap_done

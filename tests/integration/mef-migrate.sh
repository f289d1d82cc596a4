#!/usr/bin/env bash
# msce-mef migrate on a SQLite store: an older schema is refused by the operator commands
# (with the advice to migrate), brought forward by migrate (once), a newer one refused by every
# command, serve included. PostgreSQL's migrations: tests/unit/test-store-*.c (test-store) under pg-run.sh.
# A migration waits for the write lock another process holds past the busy timeout.
# Usage: mef-migrate.sh PATH/TO/msce-mef (TAP). Skipped without sqlite3 or python3.
set -euo pipefail
MEF=${1:?usage: mef-migrate.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds sqlite3 python3
tmpdir mef-migrate
LIB_SHOW="$T/mefctl.out"
mef_conf
mefctl init || fail "init"
mefctl node list || fail "node list on a new store"

# back to schema 1 (what version 2 added: the one-active-enrolment index; 3: the status tally
# and the pruning indexes; 4: the indexes of bulk import and paging; 5: the enrolments' state
# check as comparisons, schema 1 had an IN list)
# (through python3's sqlite3 module: the sqlite3 shell of SQLite >= 3.41, Debian 13's, runs in
# defensive mode, where writable_schema cannot change sqlite_schema)
python3 - "$T/mef.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.executescript("""
DROP INDEX enrolments_one_active; DROP INDEX audit_ts; DROP INDEX enrolments_exp;
DROP INDEX nodes_cse_id; DROP INDEX enrolments_created;
ALTER TABLE nodes DROP COLUMN last_seen; ALTER TABLE nodes DROP COLUMN status_checks;
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
        'CHECK (state = ''active'' OR state = ''retired'' OR state = ''revoked'' OR state = ''deregistered'')',
        'CHECK (state IN (''active'', ''retired'', ''revoked'', ''deregistered''))') WHERE name = 'enrolments';
PRAGMA writable_schema = OFF; PRAGMA user_version = 1;
""")
db.close()
PY
sqlite3 "$T/mef.db" "SELECT sql FROM sqlite_schema WHERE name = 'enrolments'" | grep -q "CHECK (state IN (" ||
        fail "schema 1's check"
mefctl node list > /dev/null && fail "an older schema was accepted"
grep -q "msce-mef migrate" "$T/mefctl.out" || fail "no advice to migrate"
ok "older schema refused by node list: $(head -n1 "$T/mefctl.out")"
mefctl migrate || fail "migrate"
grep -q "migrated from version 1" "$T/mefctl.out" || fail "migrate said otherwise"
[ "$(sqlite3 "$T/mef.db" 'PRAGMA user_version')" = 5 ] || fail "user_version after migrate"
sqlite3 "$T/mef.db" "SELECT name FROM sqlite_master WHERE name = 'enrolments_one_active'" | grep -q . ||
        fail "migrate did not create the index"
sqlite3 "$T/mef.db" "SELECT sql FROM sqlite_schema WHERE name = 'enrolments'" | grep -q "CHECK (state IN (" &&
        fail "migrate left the IN list of the enrolments' check"
[ "$(sqlite3 "$T/mef.db" 'PRAGMA integrity_check')" = ok ] || fail "integrity_check after migrate"
mefctl migrate || fail "migrate again"
grep -q "up to date" "$T/mefctl.out" || fail "second migrate said otherwise"
mefctl node list || fail "node list after migrate"
mefctl audit || fail "audit"
[ "$(grep -c " migrate " "$T/mefctl.out")" = 1 ] || fail "migration not audited once"
ok "migrate: 1 -> 5 once, then up to date; audited"

# Another process holds the write lock (as another instance's migration building an index over
# a large table would) for longer than the 5 s busy timeout of an open store: migrate waits for
# it instead of failing with "Device or resource busy" (the instance would not start).
sqlite3 "$T/mef.db" 'DROP INDEX nodes_cse_id; DROP INDEX enrolments_created; PRAGMA user_version = 3;'
rm -f "$T/locked" "$T/release"
python3 - "$T/mef.db" "$T/locked" "$T/release" << 'EOF' &
import os, sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]):
        time.sleep(0.05)
db.execute("COMMIT")
EOF
holder=$!
at_exit 'touch "$T/release"; stop_pid "$holder"'
wait_for 20 test -e "$T/locked" || fail "the lock holder did not start"
"$MEF" --config "$MEF_CONF" migrate > "$T/migrate.out" 2>&1 &
migrating=$!
wait_for 30 gone_or_older "$migrating" 7 || fail "migrate neither waited nor ended"
kill -0 "$migrating" 2> /dev/null || fail "migrate gave up on the lock: $(cat "$T/migrate.out")"
touch "$T/release"
wait "$holder" || fail "the lock holder failed"
wait "$migrating" || fail "migrate after the lock: $(cat "$T/migrate.out")"
grep -q "migrated from version 3" "$T/migrate.out" || fail "migrate said otherwise: $(cat "$T/migrate.out")"
[ "$(sqlite3 "$T/mef.db" 'PRAGMA user_version')" = 5 ] || fail "user_version after the wait"
ok "migrate waits for a write lock held past the busy timeout, then migrates 3 -> 5"

sqlite3 "$T/mef.db" 'PRAGMA user_version = 99;'
for cmd in "node list" migrate serve; do
        # serve must refuse before it listens: 20 s is a deadline for a hang
        # shellcheck disable=SC2086
        timeout 20 "$MEF" --config "$MEF_CONF" $cmd > "$T/mefctl.out" 2>&1 && fail "$cmd accepted a newer schema"
        grep -qi "newer" "$T/mefctl.out" || fail "$cmd: no word of a newer schema"
done
ok "a newer schema is refused by node list, migrate and serve"
tap_done

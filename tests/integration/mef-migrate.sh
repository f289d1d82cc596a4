#!/usr/bin/env bash
# msce-mef migrate on a SQLite store: an older schema is refused by the operator commands
# (with the advice to migrate), brought forward by migrate (once), a newer one refused by every
# command, serve included. PostgreSQL's migrations: tests/unit/test-store.c under pg-run.sh.
# Usage: mef-migrate.sh PATH/TO/msce-mef. Exit 77 (skip) without sqlite3.
set -euo pipefail
mef=${1:?usage: mef-migrate.sh PATH/TO/msce-mef}
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 is not installed"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
cat > "$tmp/mef.conf" <<EOF
[server]
listen = 127.0.0.1:0
fqdn = mef.test
[store]
path = $tmp/mef.db
master_key = $tmp/master.key
EOF
m() { "$mef" --config "$tmp/mef.conf" "$@"; }
m init >/dev/null
m node list >/dev/null || fail "node list on a new store"

# back to schema 1 (what version 2 added: the one-active-enrolment index; 3: the status tally
# and the pruning indexes; 4: the indexes of bulk import and paging)
sqlite3 "$tmp/mef.db" 'DROP INDEX enrolments_one_active; DROP INDEX audit_ts; DROP INDEX enrolments_exp;
        DROP INDEX nodes_cse_id; DROP INDEX enrolments_created;
        ALTER TABLE nodes DROP COLUMN last_seen; ALTER TABLE nodes DROP COLUMN status_checks; PRAGMA user_version = 1;'
out=$(m node list 2>&1) && fail "an older schema was accepted: $out"
grep -q "msce-mef migrate" <<<"$out" || fail "no advice to migrate: $out"
echo "ok: older schema refused by node list: $out"
out=$(m migrate) || fail "migrate: $out"
grep -q "migrated from version 1" <<<"$out" || fail "migrate said: $out"
[ "$(sqlite3 "$tmp/mef.db" 'PRAGMA user_version')" = 4 ] || fail "user_version after migrate"
sqlite3 "$tmp/mef.db" "SELECT name FROM sqlite_master WHERE name = 'enrolments_one_active'" | grep -q . ||
        fail "migrate did not create the index"
out=$(m migrate) || fail "migrate again"
grep -q "up to date" <<<"$out" || fail "second migrate said: $out"
m node list >/dev/null || fail "node list after migrate"
[ "$(m audit | grep -c migrate)" = 1 ] || fail "migration not audited once"
echo "ok: migrate: 1 -> 4 once, then up to date; audited"

sqlite3 "$tmp/mef.db" 'PRAGMA user_version = 99;'
for cmd in "node list" migrate serve; do
        rc=0
        out=$(timeout 20 "$mef" --config "$tmp/mef.conf" $cmd 2>&1) || rc=$?
        [ "$rc" != 0 ] || fail "$cmd accepted a newer schema"
        grep -qi "newer" <<<"$out" || fail "$cmd: no word of a newer schema: $out"
done
echo "ok: a newer schema is refused by node list, migrate and serve"

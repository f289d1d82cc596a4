#!/usr/bin/env bash
# msce-mef migrate on PostgreSQL while another instance holds the migration lock (the advisory
# lock every migration takes) for longer than the lock timeout of requests (5 s): as another
# instance's migration building an index over a large table would. migrate waits for it and then
# migrates, instead of failing (an instance starting meanwhile would not start).
# Usage: tests/pg-run.sh --tap bash mef-migrate-pg.sh PATH/TO/msce-mef (TAP).
set -euo pipefail
MEF=${1:?usage: mef-migrate-pg.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_pg
MEF_BACKEND=postgresql
tmpdir mef-migrate-pg
need_psql
LIB_SHOW="$T/out $T/migrate.out"

mef_conf
mefctl init || fail "init"
# back to schema 3: what 4 added is two indexes, 5 the enrolments' state check as comparisons
pg_sql "DROP INDEX nodes_cse_id; DROP INDEX enrolments_created; ALTER TABLE enrolments DROP CONSTRAINT
        enrolments_state_check, ADD CONSTRAINT enrolments_state_check
        CHECK (state IN ('active', 'retired', 'revoked', 'deregistered')); UPDATE msce_schema SET version = 3;" ||
        fail "schema 3"

# the lock, held by a psql session of its own until it reads the unlock
mkfifo "$T/holder.in"
pg_sql < "$T/holder.in" > "$T/holder.out" 2>&1 &
holder=$!
exec 3> "$T/holder.in"
at_exit 'exec 3>&-; stop_pid "$holder"'
echo 'SELECT pg_advisory_lock(1836278629);' >&3
held() { [ "$(pg_sql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" = 1 ]; }
wait_for 20 held || fail "the lock holder did not take the lock"

"$MEF" --config "$MEF_CONF" migrate > "$T/migrate.out" 2>&1 &
migrating=$!
wait_for 40 gone_or_older "$migrating" 12 || fail "migrate neither waited nor ended"
check "migrate waits for the migration lock held past the lock timeout" kill -0 "$migrating"
echo 'SELECT pg_advisory_unlock_all();' >&3
exec 3>&-
wait "$holder" || fail "the lock holder failed: $(cat "$T/holder.out")"
if wait "$migrating" && grep -q "migrated from version 3" "$T/migrate.out" &&
        [ "$(pg_sql 'SELECT version FROM msce_schema')" = 5 ]; then
        ok "then migrates 3 -> 5"
else
        not_ok "then migrates 3 -> 5: $(cat "$T/migrate.out")"
fi
check "the enrolments' state check as comparisons" [ "$(pg_sql "SELECT pg_get_constraintdef(oid) FROM pg_constraint
        WHERE conname = 'enrolments_state_check'")" = \
        "CHECK (((state = 'active'::text) OR (state = 'retired'::text) OR (state = 'revoked'::text) OR (state = 'deregistered'::text)))" ]
tap_done

#!/usr/bin/env bash
# A node import on PostgreSQL stays linear when the planner has no statistics (autovacuum off,
# nothing analyzed: what a bulk add meets before autovacuum catches up). Each statement the
# import runs once per row must read a few index and table blocks, not walk the table: counted
# by pg_stat_statements (blocks per call, in shared memory at each statement's end, so no
# timing and no waiting for the statistics collector). An import onto an empty store, then as
# many nodes again onto it; then the serving path on that store, still unanalyzed (the state a
# fleet's gateways meet when they come back right after an import or a restore): GATEWAYS of
# them enrol, check their status and have their Kpsa fetched by the target (msce-loadgen), and
# no statement of those exchanges may walk a table either.
# Why: the CSE-ID check of a node add once read "ORDER BY node_id LIMIT 1", which PostgreSQL
# served without statistics by walking the primary key and filtering on cse_id: every row for
# each new node, so 100,000 onto 100,000 did not finish in 15 minutes.
# Usage: pg-run.sh --tap bash mef-pg-import.sh PATH/TO/msce-mef PATH/TO/msce-loadgen (TAP;
# skipped without PostgreSQL).
set -euo pipefail
MEF=${1:?usage: mef-pg-import.sh PATH/TO/msce-mef PATH/TO/msce-loadgen}
LOADGEN=${2:?usage: mef-pg-import.sh PATH/TO/msce-mef PATH/TO/msce-loadgen}
. "$(dirname "$0")/lib.sh"
need_exec "$MEF" "$LOADGEN"
need_pg
[ -f "$MSCE_TEST_PG_BINDIR/../lib/pg_stat_statements.so" ] || skip_all "PostgreSQL's pg_stat_statements module is missing"
MEF_BACKEND=postgresql
tmpdir mef-pg-import
need_psql
umask 077
ROWS=${MEF_PG_IMPORT_ROWS:-6000}
GATEWAYS=${MEF_PG_IMPORT_GATEWAYS:-1500}
MAX_BLOCKS=40 # per call of a per-row statement; the walk measured on the old query: about ROWS

pg_restart_with "shared_preload_libraries = 'pg_stat_statements'" "autovacuum = off" ||
        fail "restarting PostgreSQL: $(cat "$T/pg-ctl.out")"
pg_sql "CREATE EXTENSION pg_stat_statements" || fail "CREATE EXTENSION pg_stat_statements"
[ "$(pg_sql 'SHOW autovacuum')" = off ] || fail "autovacuum is still on"
ok "PostgreSQL restarted with pg_stat_statements and without autovacuum"

mef_conf
m() { "$MEF" --config "$MEF_CONF" "$@" > "$T/out" 2> "$T/err"; }
m init || fail "msce-mef init: $(cat "$T/err")"
m target add /in-pgi --psk-id in-pgi-psk --generate-psk "$T/in.hex" || fail "target add: $(cat "$T/err")"
[ "$(pg_sql "SELECT count(*) FROM pg_stats WHERE tablename = 'nodes'")" = 0 ] || fail "nodes has statistics already"

# nodes.csv FIRST: ROWS nodes from FIRST on, half by PSK, half by certificate, each with the
# target; gateways: msce-loadgen's lines for the PSK ones
nodes_csv() {
        awk -v n="$ROWS" -v first="$1" -v gateways="$T/gateways" 'BEGIN {
                print "nodeID,kpmID,kpm,certFingerprint,cseID,cseBase,targets,poll,lifetime"
                for (i = first; i < first + n; i++) {
                        if (i % 2) {
                                printf "urn:dev:ops:pgi-%06d,kpm-pgi-%06d,%064x,,/mn-pgi-%06d,https://in.example.net/base,/in-pgi,3600,86400\n", i, i, i * 7919, i
                                printf "urn:dev:ops:pgi-%06d kpm-pgi-%06d %064x\n", i, i, i * 7919 > gateways
                        } else
                                printf "urn:dev:ops:pgi-%06d,,,%064x,/mn-pgi-%06d,https://in.example.net/base,/in-pgi,3600,86400\n", i, i, i
                }
        }' > "$T/nodes.csv"
}

# per_row WHAT N: no statement run at least N times since the last reset reads more than
# MAX_BLOCKS blocks per call; $T/per-row: those statements (calls|blocks|query)
per_row() {
        pg_sql "SELECT calls, round((shared_blks_hit + shared_blks_read)::numeric / calls, 1), query
             FROM pg_stat_statements WHERE calls >= $2 ORDER BY 2 DESC" > "$T/per-row" ||
                fail "reading pg_stat_statements"
        [ -s "$T/per-row" ] || fail "$1: no statement ran once per row"
        awk -F'|' -v max="$MAX_BLOCKS" '$2 + 0 > max { bad = 1 } END { exit bad }' "$T/per-row" ||
                fail "$1: a per-row statement reads more than $MAX_BLOCKS blocks a call (calls|blocks|query): $(cat "$T/per-row")"
}

# import FIRST: ROWS nodes from FIRST, then per_row
import() {
        nodes_csv "$1"
        pg_sql "SELECT pg_stat_statements_reset()" > /dev/null || fail "pg_stat_statements_reset"
        m node import "$T/nodes.csv" || fail "import from $1: $(cat "$T/err")"
        grep -q "$ROWS added" "$T/out" || fail "import from $1: $(cat "$T/out")"
        per_row "import from $1" "$ROWS"
        grep -q 'cse_id' "$T/per-row" || fail "import from $1: the CSE-ID check is not among: $(cat "$T/per-row")"
}
import 1
ok "$ROWS nodes imported into an empty store, each per-row statement at most $MAX_BLOCKS blocks a call"
import $((ROWS + 1))
ok "$ROWS more onto them, the same"

# the serving path: GATEWAYS of the PSK nodes enrol, check their status, and the target fetches
# each one's Kpsa
printf '/in-pgi in-pgi-psk %s\n' "$(cat "$T/in.hex")" > "$T/targets"
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"
pg_sql "SELECT pg_stat_statements_reset()" > /dev/null || fail "pg_stat_statements_reset"
"$LOADGEN" --gateways "$T/gateways" --targets "$T/targets" --count "$GATEWAYS" --concurrency 16 \
        --exchange-timeout 30 --timeout 300 "https://127.0.0.1:$PORT/msce" > "$T/lg" 2>&1 ||
        fail "msce-loadgen: $(cat "$T/lg")"
grep -q "gateways $GATEWAYS  enrolled $GATEWAYS  complete $GATEWAYS  lost 0" "$T/lg" || fail "msce-loadgen: $(cat "$T/lg")"
per_row "serving" "$GATEWAYS"
for what in 'INSERT INTO enrolments' 'UPDATE enrolments' 'FROM nodes WHERE kpm_id' 'FROM enrolments WHERE ke_id' 'last_seen'; do
        grep -q "$what" "$T/per-row" || fail "serving: '$what' is not among: $(cat "$T/per-row")"
done
ok "$GATEWAYS gateways enrolled, checked and fetched, each statement of theirs at most $MAX_BLOCKS blocks a call"
[ "$(pg_sql 'SELECT count(*) FROM nodes')" = $((2 * ROWS)) ] || fail "nodes: $(pg_sql 'SELECT count(*) FROM nodes'), want $((2 * ROWS))"
[ "$(pg_sql "SELECT count(*) FROM pg_stats WHERE tablename = 'nodes'")" = 0 ] || fail "nodes was analyzed meanwhile"
ok "$((2 * ROWS)) nodes, still without statistics after the imports and the exchanges"
tap_done

#!/usr/bin/env bash
# msce-mef on PostgreSQL after the database restarts (pg_ctl stop -m fast, then start): every
# store connection was open before the restart and idle since, and the server ended each (its
# FATAL and EOF are in the socket before pg_ctl stop returns). Once PostgreSQL accepts connections
# again, the first requests must all be served: a connection is checked before a request uses
# it and reconnected (the old code found it broken only by using it, and failed the first
# request on each: 503, or a handshake refused with internal_error when its PSK lookup found it).
# Deterministic: the first request after the restart comes to a connection the restart ended,
# whichever store thread takes it. Then PostgreSQL stopped: the 503's log line says why.
# Usage: pg-run.sh --tap bash mef-pg-restart.sh PATH/TO/msce-mef (TAP).
set -euo pipefail
MEF=${1:?usage: mef-pg-restart.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_exec "$MEF"
need_pg
need_cmds openssl
MEF_BACKEND=postgresql
TARGET=/in-pgr
tmpdir mef-pg-restart
need_psql

# threads = auto: 5 store threads, each with its connection; no metrics listener or admin API,
# whose store work would be another connection's
mef_conf "[limits]" "retry_after = 3"
mef_psk_setup urn:dev:ops:pgr-1 kpm-pgr-1 /mn-pgr-1 || fail "init, target add, node add"
mefctl node add urn:dev:ops:pgr-2 --cse-id /mn-pgr-2 --cse-base https://in.example.net/base --psk-id kpm-pgr-2 \
        --generate-psk "$T/kpm2.hex" --target "$TARGET" || fail "node add pgr-2"
kpm2=$(tr -d '\n' < "$T/kpm2.hex")
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"

enrol() { request POST /msce/enrolments urn:dev:ops:pgr-1 '{"msce:enrolReq": {"nodeID": "urn:dev:ops:pgr-1"}}' | psk_exchange "$kpm" kpm-pgr-1; }
status() { request GET "/msce/enrolments/$keid" "$keid" | psk_exchange "$kpm" kpm-pgr-1; }
answers 201 enrol || fail "enrol: $(cat "$T/out")"
keid=$(json_str keID < "$T/out")
# more requests than there are threads, one after another: connections used, and idle
for i in $(seq 10); do answers 200 status || fail "status $i before the restart: $(cat "$T/out")"; done
ok "served before the restart"

"$MSCE_TEST_PG_CTL" stop > /dev/null || fail "pg_ctl stop"
"$MSCE_TEST_PG_CTL" start > /dev/null || fail "pg_ctl start"
pg_up() { pg_sql "SELECT 1" > /dev/null 2>&1; }
wait_for 30 pg_up || fail "PostgreSQL does not accept connections after its start"
lines=$(wc -l < "$T/mef.err")

# an identity this instance never saw (no PSK cached): its handshake needs the store's lookup
request GET /msce/enrolments/x urn:dev:ops:pgr-2 | psk_exchange "$kpm2" kpm-pgr-2 > "$T/out"
[ -n "$(http_status < "$T/out")" ] ||
        fail "the first handshake after the restart (an identity never seen) failed: $(grep -a alert "$T/out" || tail -n3 "$T/mef.err")"
ok "the first handshake after the restart, its PSK looked up in the store, completes"
for i in $(seq 10); do
        answers 200 status || fail "status $i after the restart: $(http_status < "$T/out"), log: $(tail -n +$((lines + 1)) "$T/mef.err" | head -n3)"
done
! tail -n +$((lines + 1)) "$T/mef.err" | grep -a -- '-> 503' ||
        fail "a 503 after the restart: $(tail -n +$((lines + 1)) "$T/mef.err" | grep -a -- '-> 503' | head -n1)"
ok "after the restart: 10 status checks in a row, all 200, no 503"

# PostgreSQL stopped: the first 503's line says why (the old one ended "-> 503 (1 ms)"); the
# handshake completes from the PSK cached above, its lookup having found the store away
"$MSCE_TEST_PG_CTL" stop > /dev/null || fail "pg_ctl stop"
answers 503 status || fail "status with PostgreSQL stopped: $(cat "$T/out")"
wait_line 10 "$T/mef.err" ' -> 503 ' || fail "no log line of the 503"
grep -a -m1 ' -> 503 ' "$T/mef.err" > "$T/503" || :
# libpq's own failure (no SQLSTATE): said in its words, not a bare "Connection refused"
grep -qE -- '-> 503 \([0-9]+ ms\): store unavailable looking up the PSK identity \(a cached key used\): Connection refused: cannot connect to PostgreSQL: connection to server .* failed: .+' "$T/503" ||
        fail "the 503's line does not say why: $(cat "$T/503")"
ok "PostgreSQL stopped: the 503's line says why: $(sed 's/.* -> 503 /-> 503 /' "$T/503")"
"$MSCE_TEST_PG_CTL" start > /dev/null || fail "pg_ctl start"
wait_for 30 pg_up || fail "PostgreSQL does not accept connections after its start"
wait_for 10 answers 200 status || fail "status after the second start: $(cat "$T/out")"
ok "served again"

# PostgreSQL silent (its processes stopped) to a new msce-mef, its store connections open (made
# at its start): the store gives up on the exchange after its bound, twice the lock timeout, and
# the 503's line says so (the old one: "Connection timed out" alone)
mef_term_clean || fail "clean stop"
mef_start "$T/mef.conf.in" || fail "msce-mef did not start again"
answers 200 status || fail "status after msce-mef's start: $(cat "$T/out")"
at_exit '"$MSCE_TEST_PG_CTL" thaw 2> /dev/null'
"$MSCE_TEST_PG_CTL" freeze || fail "pg freeze"
answers 503 status || fail "status with PostgreSQL frozen: $(cat "$T/out")"
"$MSCE_TEST_PG_CTL" thaw || fail "pg thaw"
wait_line 10 "$T/mef.err" ' -> 503 ' || fail "no log line of the 503"
grep -a -m1 ' -> 503 ' "$T/mef.err" > "$T/503" || :
grep -qE -- '-> 503 \([0-9]+ ms\): .*Connection timed out: PostgreSQL did not answer within [0-9]+ ms \(twice the lock timeout\)' "$T/503" ||
        fail "the 503's line with PostgreSQL frozen does not say why: $(cat "$T/503")"
ok "PostgreSQL frozen: the 503's line says why: $(sed 's/.* -> 503 /-> 503 /' "$T/503")"
wait_for 10 answers 200 status || fail "status after the thaw: $(cat "$T/out")"
mef_term_clean || fail "clean stop"
ok "served again; clean stop"
tap_done

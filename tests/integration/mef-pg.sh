#!/usr/bin/env bash
# Two msce-mef instances on one PostgreSQL database (run under tests/pg-run.sh, which starts a
# server of this test's own):
#  - enrol through one, status and fetchCredentials through the other;
#  - the handshakes' PSK lookups run in a store thread, not on the event loop (TLS 1.3); a
#    connection whose handshake deadline passes while its lookup still runs goes, the thread
#    finishes and frees the lookup, the instance serves on (no sanitizer report); a scrape
#    meanwhile gets the counters without the store's gauges;
#  - a second enrolment (through the other) retires the first KeID: neither instance serves it;
#  - revoke through the CLI: the next status on each instance says revoked (nothing cached),
#    fetchCredentials refused on both;
#  - msce-mef rekey (the CLI) while an instance enrols: every rekey and enrolment succeeds;
#  - another host with its own copy of the key file follows a rekey made on this one when the
#    key was prepared (rekey --prepare) and copied there first; not copied, its log says why it
#    refuses handshakes, and it serves again once the key is copied;
#  - PostgreSQL stopped under load: requests get 503 + Retry-After (handshakes still complete;
#    one with an identity never seen fails, its log line saying the store was away); started again: both instances recover by themselves (same processes), nothing lost;
#  - a connection limit reached (a role's): serve and the CLI say so, not "Connection refused".
# Usage: pg-run.sh --tap bash mef-pg.sh PATH/TO/msce-mef (TAP). Skipped without openssl or
# PostgreSQL.
set -euo pipefail

MEF=${1:?usage: mef-pg.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl
need_pg

FQDN=mef.test
NODE=urn:dev:ops:pg-1
TARGET=/in-cse
MEF_BACKEND=postgresql
tmpdir mef-pg
need_psql
LIB_SHOW="$T/out $T/a/mef.err $T/b/mef.err $T/d/mef.err"

mef_conf "busy_timeout = 1000" "[limits]" "retry_after = 3" "[metrics]" "listen = 127.0.0.1:0"
mef_psk_setup "$NODE" kpm-pg-1 /mn-cse-pg || fail "init, target add, node add"
m() { "$MEF" --config "$MEF_CONF" "$@"; }

declare -A port pid mports
for n in a b; do
        mkdir "$T/$n"
        PORT=
        mef_start "$T/mef.conf.in" "$T/$n" || fail "msce-mef $n did not start"
        port[$n]=$PORT pid[$n]=$MEF_PID
        wait_line 10 "$T/$n/mef.out" '^metrics on ' || fail "msce-mef $n did not report its metrics port"
        mports[$n]=$(sed -n 's/^metrics on .*:\([0-9]*\)$/\1/p' "$T/$n/mef.out")
done

# exchange INSTANCE PSK IDENTITY < request: the transcript
exchange() {
        PORT=${port[$1]}
        psk_exchange "$2" "$3"
}
enrol() { request POST /msce/enrolments "$NODE" "{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}" | exchange "$1" "$kpm" kpm-pg-1; }
status() { request GET "/msce/enrolments/$2" "$2" | exchange "$1" "$kpm" kpm-pg-1; }
fetch() { request GET "/msce/fetchCredentials/$2/tls" "$TARGET" | exchange "$1" "$tpsk" in-cse-psk; }
served_by_both() { [ "$(status a "$1" | http_status)" = 200 ] && [ "$(status b "$1" | http_status)" = 200 ]; }

answers 201 enrol a || fail "enrol through a"
keid1=$(json_str keID < "$T/out")
status b "$keid1" > "$T/out"
grep -q '"state":"active"' "$T/out" || fail "status through b"
answers 200 fetch b "$keid1" || fail "fetch through b"
ok "enrol through one instance, status and fetchCredentials through the other"

# psk_lookups INSTANCE: "AHEAD/LOOP", where its handshakes' PSK lookups ran (metrics)
psk_lookups() {
        mport=${mports[$1]}
        scrape > "$T/metrics.txt"
        echo "$(metric "$T/metrics.txt" 'msce_mef_psk_lookups_total{where="ahead"}')/$(metric "$T/metrics.txt" \
                'msce_mef_psk_lookups_total{where="loop"}')"
}
[ "$(psk_lookups a)" = 1/0 ] || fail "PSK lookups of a (ahead/loop): $(psk_lookups a), expected 1/0"
[ "$(psk_lookups b)" = 2/0 ] || fail "PSK lookups of b (ahead/loop): $(psk_lookups b), expected 2/0"
# a TLS 1.2 ClientHello names no PSK (the identity comes later): the loop looks it up
request GET "/msce/enrolments/$keid1" "$keid1" | PORT=${port[b]} psk_exchange "$kpm" kpm-pg-1 1.2 > "$T/out"
grep -q '"state":"active"' "$T/out" || fail "TLS 1.2 status through b: $(cat "$T/out")"
[ "$(psk_lookups b)" = 2/1 ] || fail "PSK lookups of b after TLS 1.2 (ahead/loop): $(psk_lookups b), expected 2/1"
ok "handshakes' PSK lookups in a store thread ahead of wolfSSL (a 1, b 2), on the event loop only for TLS 1.2"

answers 201 enrol b || fail "second enrol through b"
keid2=$(json_str keID < "$T/out")
[ "$keid2" != "$keid1" ] || fail "the same KeID twice"
for n in a b; do
        answers 200 fetch $n "$keid1" && fail "retired KeID served by $n"
        answers 404 status $n "$keid1" || fail "retired KeID's status on $n is not 404"
done
active=$(m enrolments "$NODE" | grep -c ' active ' || true)
[ "$active" = 1 ] || fail "$active active enrolments after re-enrolling"
ok "re-enrolment through the other instance retires the first KeID on both; one active enrolment"

t0=$(ms)
mefctl node revoke "$NODE" || fail "revoke"
for n in a b; do
        status $n "$keid2" > "$T/out"
        grep -q '"state":"revoked"' "$T/out" || fail "status on $n after revoke"
        answers 200 fetch $n "$keid2" && fail "fetch of a revoked node's KeID on $n"
done
t1=$(ms)
ok "revoked through the CLI: the next status on each instance says revoked, fetch refused ($((t1 - t0)) ms for both)"

mefctl node activate "$NODE" || fail "activate"
answers 201 enrol a || fail "enrol after activate"
keid3=$(json_str keID < "$T/out")
rows_before=$(m enrolments | grep -c '@' || true)

# Load: status checks on both instances, one after another, each outcome counted.
load() {
        local i=0 n s
        while :; do
                n=$([ $((i % 2)) = 0 ] && echo a || echo b)
                status $n "$keid3" > "$T/load.out" 2>&1
                s=$(http_status < "$T/load.out")
                if [ "$s" = 503 ] && ! grep -qi '^Retry-After: 3' "$T/load.out"; then s=503-without-retry-after; fi
                echo "$(ms) ${s:-none}" >> "$T/load.log"
                i=$((i + 1))
        done
}
load &
load_pid=$!
at_exit 'stop_pid "$load_pid"'
wait_for 10 test -s "$T/load.log" || fail "no load"

"$MSCE_TEST_PG_CTL" stop > /dev/null || fail "pg_ctl stop"
stopped=$(ms)
# 503 + Retry-After from both while it is away
for n in a b; do
        answers 503 status $n "$keid3" || fail "status on $n with the database stopped"
        grep -qi '^Retry-After: 3' "$T/out" || fail "503 on $n without Retry-After"
done
answers 503 enrol b || fail "enrol with the database stopped"
ok "database stopped: status and enrol answered 503 + Retry-After by both instances"
# failures INSTANCE: "AUTHENTICATION/STORE_UNAVAILABLE", its failed handshakes by class
failures() {
        mport=${mports[$1]}
        scrape > "$T/metrics.txt"
        echo "$(metric "$T/metrics.txt" 'msce_mef_connection_failures_total{reason="authentication"}')/$(metric \
                "$T/metrics.txt" 'msce_mef_connection_failures_total{reason="store_unavailable"}')"
}
failed_before=$(failures b)
# an identity b has never seen (no key cached): the handshake fails, and b's line of it says the
# store was away, not an unknown identity (from an address of its own: the logbook logs a source's
# first failure at once, and counts the next ones of the window into a summary)
request GET /msce/enrolments/x x | PORT=${port[b]} psk_exchange "$kpm" kpm-pg-unseen 1.3 -bind 127.0.0.23:0 > "$T/out"
[ -z "$(http_status < "$T/out")" ] || fail "a handshake with an uncached identity completed with the store away"
# ... with internal_error (80: a fault of the server's, retried soon), not decrypt_error (51), which
# clients read as the credential refused (the agent waits rejected_retry, 1 h); TLS 1.2 too
grep -q "alert number 80" "$T/out" || fail "TLS 1.3, the store away: not internal_error: $(grep -a alert "$T/out")"
request GET /msce/enrolments/x x | PORT=${port[b]} psk_exchange "$kpm" kpm-pg-unseen 1.2 -bind 127.0.0.24:0 > "$T/out"
[ -z "$(http_status < "$T/out")" ] && grep -q "alert number 80" "$T/out" ||
        fail "TLS 1.2, the store away: not internal_error: $(grep -a alert "$T/out")"
# ... and b's line says the handshake was refused because the store was away, not that a
# credential failed ("authentication failed (unknown identity, ...)"); so does its metrics' class
unseen='TLS handshake refused, identity kpm-pg-unseen: store unavailable looking up the PSK identity \(no key cached\): '
wait_line 5 "$T/b/mef.err" "$unseen" || fail "b's line of the failed handshake does not name the store: $(grep -a kpm-pg-unseen "$T/b/mef.err")"
! grep -a 'identity kpm-pg-unseen' "$T/b/mef.err" | grep -q 'authentication failed' ||
        fail "b's line of a handshake the store could not look up says authentication failed: $(grep -a kpm-pg-unseen "$T/b/mef.err")"
[ "$(failures b)" = "${failed_before%/*}/$((${failed_before#*/} + 2))" ] ||
        fail "b's failed handshakes (authentication/store_unavailable): $(failures b), before $failed_before"
ok "database stopped: an uncached identity's handshake fails with internal_error (TLS 1.3 and 1.2), counted as store_unavailable, the line says why: $(grep -aE "$unseen" "$T/b/mef.err" | head -n1)"

"$MSCE_TEST_PG_CTL" start > /dev/null || fail "pg_ctl start"
started=$(ms)
wait_for 30 served_by_both "$keid3" || fail "the instances did not recover within 30 s of the database's return"
recovered=$(ms)
stop_pid "$load_pid"
for n in a b; do kill -0 "${pid[$n]}" 2> /dev/null || fail "instance $n exited"; done
ok "database back: both instances serve again $((recovered - started)) ms after it started (down $((started - stopped)) ms), same processes"

bad=$(awk '$2 != 200 && $2 != 503' "$T/load.log" | wc -l)
total=$(wc -l < "$T/load.log")
n503=$(awk '$2 == 503' "$T/load.log" | wc -l)
awk '$2 != 200 && $2 != 503 {print $2}' "$T/load.log" | sort | uniq -c > "$T/out"
[ "$bad" = 0 ] || fail "under load: $bad of $total answers neither 200 nor 503+Retry-After"
ok "under load: $total status checks, $n503 answered 503 + Retry-After, the rest 200"

# Each of b's five store threads has its own connection and finds it broken, or reconnects
# (at most once per 500 ms), at its own next job: one of them may still answer 503 +
# Retry-After, as designed, after another served the status checks above.
wait_for 10 answers 201 enrol b || fail "enrol after recovery"
keid4=$(json_str keID < "$T/out")
rows_after=$(m enrolments | grep -c '@' || true)
[ "$rows_after" = $((rows_before + 1)) ] || fail "enrolments before $rows_before, after $rows_after (expected one more)"
active=$(m enrolments "$NODE" | grep -c ' active ' || true)
[ "$active" = 1 ] || fail "$active active enrolments at the end"
ok "nothing lost: $rows_before enrolments kept, the one after recovery added, one active"

# The database gone silent (its processes stopped: no refusal, no answer): every exchange with
# it is bounded, so requests get 503 + Retry-After rather than waiting for TCP timeouts, and the
# handshakes go on; thawed, both instances serve again by themselves.
at_exit '"$MSCE_TEST_PG_CTL" thaw 2> /dev/null'
"$MSCE_TEST_PG_CTL" freeze || fail "pg freeze"
t0=$(ms)
for n in a b; do
        answers 503 status $n "$keid4" || fail "status on $n with the database frozen"
        grep -qi '^Retry-After: 3' "$T/out" || fail "503 on $n without Retry-After"
done
t1=$(ms)
"$MSCE_TEST_PG_CTL" thaw || fail "pg thaw"
wait_for 30 served_by_both "$keid4" || fail "the instances did not recover within 30 s of the database's thaw"
recovered=$(ms)
ok "database frozen: both instances answered 503 + Retry-After ($((t1 - t0)) ms for both), serve again $((recovered - t1)) ms after the thaw"

# A third instance whose handshake deadline (500 ms) comes before the store gives up on a frozen
# database (2 x busy_timeout): the connection goes while a thread still looks up its PSK
# identity; the lookup ends later with nobody waiting, and is freed then.
mkdir "$T/c"
sed 's/^\[limits\]$/[limits]\nhandshake_timeout = 500/' "$T/mef.conf.in" > "$T/c/mef.conf.in"
PORT=
mef_start "$T/c/mef.conf.in" "$T/c" || fail "msce-mef c did not start"
port[c]=$PORT pid[c]=$MEF_PID
wait_line 10 "$T/c/mef.out" '^metrics on ' || fail "msce-mef c did not report its metrics port"
mports[c]=$(sed -n 's/^metrics on .*:\([0-9]*\)$/\1/p' "$T/c/mef.out")
"$MSCE_TEST_PG_CTL" freeze || fail "pg freeze"
status c "$keid4" > "$T/out"
[ -z "$(http_status < "$T/out")" ] || fail "an answer from c with the database frozen: $(cat "$T/out")"
# the scrape's gauges wait for a thread that the frozen database holds: the counters come without
mport=${mports[c]}
scrape > "$T/metrics.txt"
grep -q '^HTTP/1.1 200 ' "$T/metrics.txt" || fail "c: no metrics with the database frozen: $(cat "$T/metrics.txt")"
grep -q '^msce_mef_nodes ' "$T/metrics.txt" && fail "c: store gauges with the database frozen"
[ "$(metric "$T/metrics.txt" 'msce_mef_connection_failures_total{reason="handshake_timeout"}')" = 1 ] ||
        fail "c: not one handshake timeout: $(grep failures_total "$T/metrics.txt")"
[ "$(metric "$T/metrics.txt" 'msce_mef_psk_lookups_total{where="ahead"}')" = 0 ] ||
        fail "c: the lookup was done before the deadline"
"$MSCE_TEST_PG_CTL" thaw || fail "pg thaw"
served_by_c() { [ "$(status c "$1" | http_status)" = 200 ]; }
wait_for 30 served_by_c "$keid4" || fail "c did not serve within 30 s of the thaw"
MEF_PID=${pid[c]} MEF_LOGS=$T/c
mef_term_clean || fail "c: clean stop"
ok "a handshake deadline that passes while its PSK lookup runs: closed, the lookup freed later, the instance serves on; metrics without the store's gauges meanwhile"

# kill -9 of one instance under load: GATEWAYS gateways enrol at once, each starting on one
# instance and moving to the other when it gets no answer (or 503); a gets SIGKILL while they
# run. Every gateway must end enrolled, with exactly one active enrolment per node.
GATEWAYS=12
for i in $(seq "$GATEWAYS"); do
        mefctl node add "urn:dev:ops:gw-$i" --cse-id "/mn-cse-gw-$i" --cse-base https://in.example.net:8443/~/in-cse/in-name \
                --psk-id "kpm-gw-$i" --generate-psk "$T/gw-$i.hex" || fail "node add gw-$i"
done
enrol_gw() { # I INSTANCE: one enrolment of gw-I through INSTANCE; 0 when answered 201
        [ "$(request POST /msce/enrolments "urn:dev:ops:gw-$1" "{\"msce:enrolReq\": {\"nodeID\": \"urn:dev:ops:gw-$1\"}}" |
                exchange "$2" "$(tr -d '\n' < "$T/gw-$1.hex")" "kpm-gw-$1" | http_status)" = 201 ]
}
gateway() { # I: enrol, trying the instances in turn; writes the attempts it took to gw-I.done
        local i=$1 n attempt
        n=$([ $((i % 2)) = 0 ] && echo a || echo b)
        for attempt in $(seq 40); do
                if enrol_gw "$i" "$n"; then
                        echo "$attempt" > "$T/gw-$i.done"
                        return 0
                fi
                n=$([ "$n" = a ] && echo b || echo a)
                sleep 0.1 # a retry's pause (as a gateway's backoff), not a wait for a condition
        done
        return 1
}
gw_pids=()
for i in $(seq "$GATEWAYS"); do gateway "$i" & gw_pids+=($!); done
# in the middle of it: once the first gateway is through
one_done() { compgen -G "$T/gw-*.done" > /dev/null; }
wait_for 60 one_done || fail "no gateway enrolled"
MEF_PID=${pid[a]}
mef_stop KILL
failed=0
for p in "${gw_pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" = 0 ] || fail "$failed of $GATEWAYS gateways did not enrol after instance a was killed"
retried=0
for i in $(seq "$GATEWAYS"); do
        [ "$(cat "$T/gw-$i.done")" -gt 1 ] && retried=$((retried + 1))
        active=$(m enrolments "urn:dev:ops:gw-$i" | grep -c ' active ' || true)
        [ "$active" = 1 ] || fail "gw-$i: $active active enrolments"
done
kill -0 "${pid[a]}" 2> /dev/null && fail "instance a survived SIGKILL"
ok "kill -9 of one instance under load: $GATEWAYS gateways enrolled ($retried after moving to the other), one active enrolment each"

# msce-mef rekey (the CLI) while instance b enrols: each gateway enrols ROUNDS times more and
# the CLI rekeys REKEYS times meanwhile. Every rekey must commit: an enrolment holds the check
# value before its node's row, so the two cannot deadlock. Every enrolment ends 201 (one sealed
# under a key a rekey has just replaced is stored again under the new one). A last rekey then
# opens every secret of the store, those sealed during the others included. The CLI's lock
# waits get their own busy_timeout: the instances' 1 s is for the 503 tests above.
ROUNDS=4 REKEYS=3
sed 's/^busy_timeout = .*/busy_timeout = 30000/' "$MEF_CONF" > "$T/rekey.conf"
rekey() { "$MEF" --config "$T/rekey.conf" rekey >> "$T/rekey.log" 2>&1; }
enrol_rounds() { # I: ROUNDS enrolments of gw-I through b, each retried until 201
        local i=$1 r
        for r in $(seq "$ROUNDS"); do
                for _ in $(seq 40); do
                        enrol_gw "$i" b && continue 2
                        sleep 0.1 # a retry's pause (as a gateway's backoff), not a wait for a condition
                done
                return 1
        done
        echo "$ROUNDS" > "$T/gw-$i.rounds"
}
gw_pids=()
for i in $(seq "$GATEWAYS"); do enrol_rounds "$i" & gw_pids+=($!); done
rekeys=0
for k in $(seq "$REKEYS"); do rekey && rekeys=$((rekeys + 1)); done
failed=0
for p in "${gw_pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$rekeys" = "$REKEYS" ] || fail "$((REKEYS - rekeys)) of $REKEYS rekeys under load failed: $(cat "$T/rekey.log")"
[ "$failed" = 0 ] || fail "$failed of $GATEWAYS gateways did not enrol $ROUNDS times during the rekeys"
rekey || fail "a rekey after the load: $(tail -n 3 "$T/rekey.log")"
for i in $(seq "$GATEWAYS"); do
        active=$(m enrolments "urn:dev:ops:gw-$i" | grep -c ' active ' || true)
        [ "$active" = 1 ] || fail "gw-$i: $active active enrolments"
done
ok "$REKEYS rekeys while $GATEWAYS gateways enrolled $ROUNDS times each through b: all committed, all 201, every secret opens after"

# Another host on the same database with its own copy of the key file (instance d, its
# key in $T/d): the next key prepared through the CLI and copied there first, a rekey made on
# this host; d serves on at once (enrolment, status, a target's fetch: every secret it opens or
# seals is under the new key), and a rekey on d only renames its copy.
mkdir "$T/d"
cp -p "$T/master.key" "$T/d/master.key"
sed "s|^master_key = .*|master_key = $T/d/master.key|" "$T/mef.conf.in" > "$T/d.conf.in"
PORT=
mef_start "$T/d.conf.in" "$T/d" || fail "msce-mef d did not start"
port[d]=$PORT pid[d]=$MEF_PID
wait_line 10 "$T/d/mef.out" '^metrics on ' || fail "msce-mef d did not report its metrics port"
mports[d]=$(sed -n 's/^metrics on .*:\([0-9]*\)$/\1/p' "$T/d/mef.out")
sed "s|^master_key = .*|master_key = $T/d/master.key|" "$T/rekey.conf" > "$T/d-rekey.conf"
"$MEF" --config "$T/rekey.conf" rekey --prepare > "$T/prepare.out" || fail "rekey --prepare: $(cat "$T/prepare.out")"
cp -p "$T/master.key.new" "$T/prepared.key"
cp -p "$T/master.key.new" "$T/d/master.key.new"
rekey || fail "rekey with the prepared key: $(tail -n 3 "$T/rekey.log")"
cmp -s "$T/master.key" "$T/prepared.key" || fail "the rekey did not take the prepared key"
answers 201 enrol d || fail "enrol through d after the rekey made elsewhere"
keid_d=$(json_str keID < "$T/out")
answers 200 status d "$keid_d" || fail "status through d"
answers 200 fetch d "$keid_d" || fail "fetch through d"
"$MEF" --config "$T/d-rekey.conf" rekey > "$T/d-rekey.out" 2>&1 || fail "rekey on d: $(cat "$T/d-rekey.out")"
grep -qF "The master key rotation was done already (by a rekey on another host of this store, or one here that stopped just before its end): $T/d/master.key.new renamed over $T/d/master.key" \
        "$T/d-rekey.out" || fail "rekey on d: $(cat "$T/d-rekey.out")"
cmp -s "$T/master.key" "$T/d/master.key" && [ ! -e "$T/d/master.key.new" ] || fail "d's key file is not the new key"
answers 200 status b "$keid_d" || fail "status through b of d's enrolment"
ok "another host with its own key file: the key prepared and copied there first, a rekey made elsewhere, it serves on (enrol, status, fetch); its own rekey only renames"

# The next rekey without the copy: d cannot open the gateway's Kpm and says so in its log (not
# just "unknown identity"); once the key is copied it serves again, with no restart.
"$MEF" --config "$T/rekey.conf" rekey --prepare > "$T/prepare.out" || fail "rekey --prepare: $(cat "$T/prepare.out")"
rekey || fail "a second rekey: $(tail -n 3 "$T/rekey.log")"
! answers 201 enrol d || fail "d enrolled with a key file that does not open the store"
grep -q 'TLS handshake refused, identity kpm-pg-1: the master key does not open this identity.s key: Bad message' \
        "$T/d/mef.err" || fail "d's log does not say why the handshake failed: $(grep -a kpm-pg-1 "$T/d/mef.err")"
# the operator's fault, not the gateway's: internal_error (80, retried soon), not decrypt_error
# (51, the credential refused), and counted as store_error, not as an authentication failure
request GET /msce/enrolments/x x | PORT=${port[d]} psk_exchange "$kpm" kpm-pg-1 1.3 > "$T/out"
[ -z "$(http_status < "$T/out")" ] && grep -q "alert number 80" "$T/out" ||
        fail "d, the master key not opening the Kpm: not internal_error: $(grep -a alert "$T/out")"
mport=${mports[d]}
scrape > "$T/metrics.txt"
[ "$(metric "$T/metrics.txt" 'msce_mef_connection_failures_total{reason="store_error"}')" = 2 ] &&
        [ "$(metric "$T/metrics.txt" 'msce_mef_connection_failures_total{reason="authentication"}')" = 0 ] ||
        fail "d's failed handshakes: $(grep -a connection_failures "$T/metrics.txt")"
cp -p "$T/master.key" "$T/d/master.key.new"
answers 201 enrol d || fail "enrol through d once the key is copied"
"$MEF" --config "$T/d-rekey.conf" rekey > "$T/d-rekey.out" 2>&1 || fail "rekey on d: $(cat "$T/d-rekey.out")"
cmp -s "$T/master.key" "$T/d/master.key" || fail "d's key file is not the second new key"
ok "a rekey elsewhere without the copy: d refuses with internal_error, its log names the master key as the cause (store_error); the key copied late, d serves again (same process)"
MEF_PID=${pid[d]} MEF_LOGS=$T/d
mef_term_clean || fail "clean stop of d"

MEF_PID=${pid[b]} MEF_LOGS=$T/b
mef_term_clean || fail "clean stop"
sanitizer_clean "$T/a/mef.err" || fail "sanitizer report in the log of instance a"
ok "clean stop"

# A connection limit (a role of its own: this test's msce is the superuser, whom no limit holds,
# and pg-run.sh fixes max_connections on the server's command line). PostgreSQL checks the limit
# only when a connection is made, so each step sets it against what is open then; a backend of
# a process that just ended may still count for a moment, which 6 against 9 leaves room for.
(umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/limited.pw")
pg_sql "CREATE ROLE mef_limited LOGIN CONNECTION LIMIT 6" || fail "CREATE ROLE"
printf "ALTER ROLE mef_limited PASSWORD '%s'" "$(cat "$T/limited.pw")" | pg_sql || fail "ALTER ROLE"
pg_sql "CREATE DATABASE mef_limited OWNER mef_limited" || fail "CREATE DATABASE"
uri=${MSCE_TEST_PG_URI/\/msce\?//mef_limited?}
limited() { # limited THREADS: $T/limited-THREADS.conf.in
        printf '[server]\nlisten = 127.0.0.1:@PORT@\nfqdn = %s\n[store]\nbackend = postgresql\nuri = %s\n' "$FQDN" "${uri/user=msce/user=mef_limited}"
        printf 'password_file = %s\nmaster_key = %s\nthreads = %s\n' "$T/limited.pw" "$T/limited.key" "$1"
}
limited 8 > "$T/limited-8.conf.in"
limited 2 > "$T/limited-2.conf.in"
TOO_MANY="PostgreSQL refused another connection (too many: its max_connections, or the connection limit of the role or the database)"
mef_configure "$T/limited-2.conf.in"
m init > "$T/init.out" 2>&1 || fail "init as mef_limited: $(cat "$T/init.out")"
grep -q "^Created store postgresql:///mef_limited?" "$T/init.out" || fail "init's message: $(cat "$T/init.out")"
m init > "$T/init.out" 2>&1 || fail "init again: $(cat "$T/init.out")"
grep -q "^Store postgresql:///mef_limited?.* exists already" "$T/init.out" || fail "init's message: $(cat "$T/init.out")"
mkdir "$T/e"
PORT=
! mef_start "$T/limited-8.conf.in" "$T/e" || fail "serve started with 9 connections, the limit 6"
grep -q "cannot open the store's connections for its 8 threads: $TOO_MANY" "$T/e/mef.err" ||
        fail "serve's message: $(cat "$T/e/mef.err")"
pg_sql "ALTER ROLE mef_limited CONNECTION LIMIT -1" || fail "ALTER ROLE"
PORT=
mef_start "$T/limited-2.conf.in" "$T/e" || fail "serve without a limit"
pg_sql "ALTER ROLE mef_limited CONNECTION LIMIT 1" || fail "ALTER ROLE"
! m node list > "$T/list.out" 2>&1 || fail "the CLI connected beyond the limit"
grep -q "open store .*: $TOO_MANY" "$T/list.out" || fail "the CLI's message: $(cat "$T/list.out")"
mef_term_clean || fail "clean stop of e"
ok "init names the database (and knows it exists); a connection limit reached: serve (9, the limit 6) exits and says so, the CLI (beside a serving msce-mef's 3, the limit 1) too"
tap_done

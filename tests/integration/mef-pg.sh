#!/usr/bin/env bash
# Two msce-mef instances on one PostgreSQL database (run under tests/pg-run.sh, which starts a
# server of this test's own):
#  - enrol through one, status and fetchCredentials through the other;
#  - a second enrolment (through the other) retires the first KeID: neither instance serves it;
#  - revoke through the CLI: the next status on each instance says revoked (nothing cached),
#    fetchCredentials refused on both;
#  - PostgreSQL stopped under load: requests get 503 + Retry-After (handshakes still complete);
#    started again: both instances recover by themselves (same processes), nothing lost.
# Usage: pg-run.sh mef-pg.sh PATH/TO/msce-mef. Exit 77 (skip) without openssl or PostgreSQL.
set -euo pipefail

mef=${1:?usage: mef-pg.sh PATH/TO/msce-mef}
command -v openssl >/dev/null || { echo "SKIP: openssl is not installed"; exit 77; }
[ -n "${MSCE_TEST_PG_URI:-}" ] || { echo "SKIP: run under tests/pg-run.sh (no PostgreSQL)"; exit 77; }

FQDN=mef.test
NODE=urn:dev:ops:pg-1
TARGET=/in-cse

tmp=$(mktemp -d)
pids=() load_pid=
cleanup() {
        [ -n "$load_pid" ] && { kill "$load_pid" 2>/dev/null || true; wait "$load_pid" 2>/dev/null || true; }
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
        echo "FAIL: $*"
        for n in a b; do echo "--- msce-mef $n log:"; tail -n 40 "$tmp/mef-$n.log" 2>/dev/null || true; done
        exit 1
}
ms() { date +%s%3N; }

cat > "$tmp/mef.conf" <<EOF
[server]
listen = 127.0.0.1:0
fqdn = $FQDN

[store]
backend = postgresql
uri = $MSCE_TEST_PG_URI
password_file = $MSCE_TEST_PG_PASSWORD_FILE
master_key = $tmp/master.key
busy_timeout = 1000

[limits]
retry_after = 3
EOF
m() { "$mef" --config "$tmp/mef.conf" "$@"; }
m init >/dev/null || fail "init"
m target add "$TARGET" --psk-id in-cse-psk --generate-psk "$tmp/tpsk.hex" >/dev/null || fail "target add"
m node add "$NODE" --cse-id /mn-cse-pg --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --psk-id kpm-pg-1 --generate-psk "$tmp/kpm.hex" --target "$TARGET" >/dev/null || fail "node add"
kpm=$(tr -d '\n' < "$tmp/kpm.hex")
tpsk=$(tr -d '\n' < "$tmp/tpsk.hex")

declare -A port
for n in a b; do
        "$mef" --config "$tmp/mef.conf" serve > "$tmp/mef-$n.out" 2> "$tmp/mef-$n.log" &
        pids+=($!)
        for _ in $(seq 600); do # 30 s: a deadline for a hang
                grep -qs 'listening on' "$tmp/mef-$n.out" && break
                kill -0 "${pids[-1]}" 2>/dev/null || fail "msce-mef $n exited at start"
                sleep 0.05
        done
        port[$n]=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/mef-$n.out")
        [ -n "${port[$n]}" ] || fail "msce-mef $n did not report its port"
done

# request METHOD TARGET ORIGIN [BODY]
request() {
        local body=${4:-}
        printf '%s %s HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\nX-M2M-RI: ri-%s\r\nX-M2M-RVI: 3\r\n' \
                "$1" "$2" "$FQDN" "$3" "$RANDOM"
        if [ -n "$body" ]; then
                printf 'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body"
        else
                printf '\r\n'
        fi
}
# exchange INSTANCE PSK IDENTITY < request: the transcript
exchange() {
        timeout 20 openssl s_client -connect "127.0.0.1:${port[$1]}" -psk "$2" -psk_identity "$3" -tls1_3 \
                -ciphersuites TLS_AES_128_GCM_SHA256 -ign_eof 2>&1 || true
}
http_status() { sed -n 's/^HTTP\/1.1 \([0-9]*\) .*/\1/p' | head -n1; }
json_str() { grep -o "\"$1\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4; }
enrol() { request POST /msce/enrolments "$NODE" "{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}" | exchange "$1" "$kpm" kpm-pg-1; }
status() { request GET "/msce/enrolments/$2" "$2" | exchange "$1" "$kpm" kpm-pg-1; }
fetch() { request GET "/msce/fetchCredentials/$2/tls" "$TARGET" | exchange "$1" "$tpsk" in-cse-psk; }

enrol a > "$tmp/enrol1.out"
[ "$(http_status < "$tmp/enrol1.out")" = 201 ] || fail "enrol through a: $(cat "$tmp/enrol1.out")"
keid1=$(json_str keID < "$tmp/enrol1.out")
status b "$keid1" > "$tmp/status1.out"
grep -q '"state":"active"' "$tmp/status1.out" || fail "status through b: $(cat "$tmp/status1.out")"
fetch b "$keid1" > "$tmp/fetch1.out"
[ "$(http_status < "$tmp/fetch1.out")" = 200 ] || fail "fetch through b: $(cat "$tmp/fetch1.out")"
echo "ok: enrol through one instance, status and fetchCredentials through the other"

enrol b > "$tmp/enrol2.out"
[ "$(http_status < "$tmp/enrol2.out")" = 201 ] || fail "second enrol through b: $(cat "$tmp/enrol2.out")"
keid2=$(json_str keID < "$tmp/enrol2.out")
[ "$keid2" != "$keid1" ] || fail "the same KeID twice"
for n in a b; do
        [ "$(fetch $n "$keid1" | http_status)" != 200 ] || fail "retired KeID served by $n"
        [ "$(status $n "$keid1" | http_status)" = 404 ] || fail "retired KeID's status on $n is not 404"
done
active=$(m enrolments "$NODE" | grep -c ' active ' || true)
[ "$active" = 1 ] || fail "$active active enrolments after re-enrolling: $(m enrolments "$NODE")"
echo "ok: re-enrolment through the other instance retires the first KeID on both; one active enrolment"

t0=$(ms)
m node revoke "$NODE" >/dev/null || fail "revoke"
for n in a b; do
        status $n "$keid2" > "$tmp/revoked-$n.out"
        grep -q '"state":"revoked"' "$tmp/revoked-$n.out" || fail "status on $n after revoke: $(cat "$tmp/revoked-$n.out")"
        [ "$(fetch $n "$keid2" | http_status)" != 200 ] || fail "fetch of a revoked node's KeID on $n"
done
t1=$(ms)
echo "ok: revoked through the CLI: the next status on each instance says revoked, fetch refused ($((t1 - t0)) ms for both)"

m node activate "$NODE" >/dev/null || fail "activate"
enrol a > "$tmp/enrol3.out"
[ "$(http_status < "$tmp/enrol3.out")" = 201 ] || fail "enrol after activate: $(cat "$tmp/enrol3.out")"
keid3=$(json_str keID < "$tmp/enrol3.out")
rows_before=$(m enrolments | grep -c '@' || true)

# Load: status checks on both instances, one after another, each outcome counted.
load() {
        local i=0 n
        while :; do
                n=$([ $((i % 2)) = 0 ] && echo a || echo b)
                s=$(status $n "$keid3" > "$tmp/load.$i" 2>&1; http_status < "$tmp/load.$i")
                if [ "$s" = 503 ] && ! grep -qi '^Retry-After: 3' "$tmp/load.$i"; then s=503-without-retry-after; fi
                echo "$(ms) ${s:-none}" >> "$tmp/load.log"
                rm -f "$tmp/load.$i"
                i=$((i + 1))
        done
}
load &
load_pid=$!
for _ in $(seq 200); do [ -s "$tmp/load.log" ] && break; sleep 0.05; done

"$MSCE_TEST_PG_CTL" stop >/dev/null || fail "pg_ctl stop"
stopped=$(ms)
# 503 + Retry-After from both while it is away
for n in a b; do
        s=$(status $n "$keid3" | tee "$tmp/down-$n.out" | http_status)
        [ "$s" = 503 ] || fail "status on $n with the database stopped: $(cat "$tmp/down-$n.out")"
        grep -qi '^Retry-After: 3' "$tmp/down-$n.out" || fail "503 on $n without Retry-After"
done
s=$(enrol b | tee "$tmp/down-enrol.out" | http_status)
[ "$s" = 503 ] || fail "enrol with the database stopped: $(cat "$tmp/down-enrol.out")"
echo "ok: database stopped: status and enrol answered 503 + Retry-After by both instances"

"$MSCE_TEST_PG_CTL" start >/dev/null || fail "pg_ctl start"
started=$(ms)
recovered=
for _ in $(seq 300); do # 30 s
        if [ "$(status a "$keid3" | http_status)" = 200 ] && [ "$(status b "$keid3" | http_status)" = 200 ]; then
                recovered=$(ms)
                break
        fi
        sleep 0.1
done
[ -n "$recovered" ] || fail "the instances did not recover within 30 s of the database's return"
kill "$load_pid"; wait "$load_pid" 2>/dev/null || true; load_pid=
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || fail "an instance exited"; done
echo "ok: database back: both instances serve again $((recovered - started)) ms after it started (down $((started - stopped)) ms), same processes"

bad=$(awk '$2 != 200 && $2 != 503' "$tmp/load.log" | wc -l)
total=$(wc -l < "$tmp/load.log")
n503=$(awk '$2 == 503' "$tmp/load.log" | wc -l)
[ "$bad" = 0 ] || fail "under load: $bad of $total answers neither 200 nor 503+Retry-After: $(awk '$2 != 200 && $2 != 503 {print $2}' "$tmp/load.log" | sort | uniq -c)"
echo "ok: under load: $total status checks, $n503 answered 503 + Retry-After, the rest 200"

enrol b > "$tmp/enrol4.out"
[ "$(http_status < "$tmp/enrol4.out")" = 201 ] || fail "enrol after recovery: $(cat "$tmp/enrol4.out")"
rows_after=$(m enrolments | grep -c '@' || true)
[ "$rows_after" = $((rows_before + 1)) ] || fail "enrolments before $rows_before, after $rows_after (expected one more)"
active=$(m enrolments "$NODE" | grep -c ' active ' || true)
[ "$active" = 1 ] || fail "$active active enrolments at the end"
echo "ok: nothing lost: $rows_before enrolments kept, the one after recovery added, one active"

# kill -9 of one instance under load: GATEWAYS gateways enrol at once, each starting on one
# instance and moving to the other when it gets no answer (or 503); a gets SIGKILL while they
# run. Every gateway must end enrolled, with exactly one active enrolment per node.
GATEWAYS=12
for i in $(seq "$GATEWAYS"); do
        m node add "urn:dev:ops:gw-$i" --cse-id "/mn-cse-gw-$i" --cse-base https://in.example.net:8443/~/in-cse/in-name \
                --psk-id "kpm-gw-$i" --generate-psk "$tmp/gw-$i.hex" >/dev/null || fail "node add gw-$i"
done
gateway() { # I: enrol, trying the instances in turn; prints the attempts it took
        local i=$1 n attempt key
        key=$(tr -d '\n' < "$tmp/gw-$i.hex")
        n=$([ $((i % 2)) = 0 ] && echo a || echo b)
        for attempt in $(seq 40); do
                if [ "$(request POST /msce/enrolments "urn:dev:ops:gw-$i" \
                        "{\"msce:enrolReq\": {\"nodeID\": \"urn:dev:ops:gw-$i\"}}" |
                        exchange "$n" "$key" "kpm-gw-$i" | http_status)" = 201 ]; then
                        echo "$attempt" > "$tmp/gw-$i.done"
                        return 0
                fi
                n=$([ "$n" = a ] && echo b || echo a)
                sleep 0.1
        done
        return 1
}
gw_pids=()
for i in $(seq "$GATEWAYS"); do gateway "$i" & gw_pids+=($!); done
# in the middle of it: once the first gateway is through
for _ in $(seq 600); do compgen -G "$tmp/gw-*.done" >/dev/null && break; sleep 0.02; done
kill -9 "${pids[0]}"
wait "${pids[0]}" 2>/dev/null || true
killed=${pids[0]}
pids=("${pids[1]}")
failed=0
for p in "${gw_pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
[ "$failed" = 0 ] || fail "$failed of $GATEWAYS gateways did not enrol after instance a was killed"
retried=0
for i in $(seq "$GATEWAYS"); do
        [ "$(cat "$tmp/gw-$i.done")" -gt 1 ] && retried=$((retried + 1))
        active=$(m enrolments "urn:dev:ops:gw-$i" | grep -c ' active ' || true)
        [ "$active" = 1 ] || fail "gw-$i: $active active enrolments: $(m enrolments "urn:dev:ops:gw-$i")"
done
kill -0 "$killed" 2>/dev/null && fail "instance a survived SIGKILL"
echo "ok: kill -9 of one instance under load: $GATEWAYS gateways enrolled ($retried after moving to the other), one active enrolment each"

for p in "${pids[@]}"; do kill -TERM "$p"; done
for p in "${pids[@]}"; do rc=0; wait "$p" || rc=$?; [ "$rc" = 0 ] || fail "msce-mef exited $rc on SIGTERM"; done
pids=()
# the sanitizer build: reports from the servers land in their logs
! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp"/mef-*.log || fail "sanitizer report in a msce-mef log"
echo "ok: clean stop"

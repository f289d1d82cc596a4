#!/usr/bin/env bash
# The per-node enrolment rate limit (issue 12 part 4), end to end against msce-mef with an
# independent TLS client (OpenSSL, PSK, TLS 1.3): with [limits] enrolments_per_node = 3 per 1h
# a node enrolling in a loop gets 201 three times, then 429 with a Retry-After of at most an
# hour, while another node still enrols and the looping node's status checks still answer;
# the audit trail holds one 429 line for the window, not one per refusal.
# Usage: mef-ratelimit.sh PATH/TO/msce-mef. Exit 77 (skip) without openssl.
set -euo pipefail

mef=${1:?usage: mef-ratelimit.sh PATH/TO/msce-mef}
command -v openssl >/dev/null || { echo "SKIP: openssl is not installed"; exit 77; }

FQDN=mef.test
tmp=$(mktemp -d)
mef_pid=
cleanup() {
        if [ -n "$mef_pid" ]; then kill "$mef_pid" 2>/dev/null || true; wait "$mef_pid" 2>/dev/null || true; fi
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
        echo "FAIL: $*"
        echo "--- msce-mef log:"; cat "$tmp/mef.log" 2>/dev/null || true
        exit 1
}

cat > "$tmp/mef.conf" <<EOF
[server]
listen = 127.0.0.1:0
fqdn = $FQDN

[store]
path = $tmp/mef.db
master_key = $tmp/master.key

[limits]
enrolments_per_node = 3 per 1h
EOF
m() { "$mef" --config "$tmp/mef.conf" "$@"; }
m init >/dev/null
for n in 1 2; do
        m node add "urn:dev:ops:loop-$n" --cse-id "/mn-cse-$n" --cse-base https://in.example.net:8443/~/in-cse/in-name \
                --psk-id "kpm-loop-$n" --generate-psk "$tmp/kpm-$n.hex" >/dev/null
done

"$mef" --config "$tmp/mef.conf" serve > "$tmp/mef.out" 2> "$tmp/mef.log" &
mef_pid=$!
for _ in $(seq 600); do # 30 s: a deadline for a hang
        grep -qs 'listening on' "$tmp/mef.out" "$tmp/mef.log" && break
        kill -0 "$mef_pid" 2>/dev/null || fail "msce-mef exited at start"
        sleep 0.05
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/mef.out")
[ -n "$port" ] || fail "msce-mef did not report its port"

# call N METHOD TARGET [BODY]: node N's request over TLS 1.3 with its PSK; the transcript on stdout
call() {
        local n=$1 body=${4:-} node="urn:dev:ops:loop-$1"
        {
                printf '%s %s HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\nX-M2M-RI: ri-%s\r\nX-M2M-RVI: 3\r\n' \
                        "$2" "$3" "$FQDN" "$node" "$RANDOM"
                if [ -n "$body" ]; then
                        printf 'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body"
                else
                        printf '\r\n'
                fi
        } > "$tmp/req"
        timeout 10 openssl s_client -connect "127.0.0.1:$port" -psk "$(tr -d '\n' < "$tmp/kpm-$n.hex")" \
                -psk_identity "kpm-loop-$n" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -ign_eof < "$tmp/req" 2>&1 || true
}
enrol() { call "$1" POST /msce/enrolments "{\"msce:enrolReq\": {\"nodeID\": \"urn:dev:ops:loop-$1\"}}"; }

for i in 1 2 3; do
        enrol 1 > "$tmp/out"
        grep -q '^HTTP/1.1 201 ' "$tmp/out" || fail "enrolment $i of node 1 not 201: $(cat "$tmp/out")"
done
keid=$(grep -o '"keID":"[^"]*"' "$tmp/out" | cut -d'"' -f4)
echo "ok: node 1 enrols 3 times"
for i in 4 5 6; do
        enrol 1 > "$tmp/out"
        grep -q '^HTTP/1.1 429 ' "$tmp/out" || fail "enrolment $i of node 1 not 429: $(cat "$tmp/out")"
        ra=$(sed -n 's/^Retry-After: \([0-9]*\)\r*$/\1/p' "$tmp/out")
        [ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 3600 ] || fail "429 without a Retry-After of 1..3600 s: $(cat "$tmp/out")"
done
echo "ok: node 1's enrolments 4-6 get 429, Retry-After $ra s"
enrol 2 > "$tmp/out"
grep -q '^HTTP/1.1 201 ' "$tmp/out" || fail "node 2 not enrolled while node 1 is limited: $(cat "$tmp/out")"
echo "ok: node 2 still enrols"
call 1 GET "/msce/enrolments/$keid" > "$tmp/out"
grep -q '"state":"active"' "$tmp/out" || fail "node 1's status check refused: $(cat "$tmp/out")"
echo "ok: node 1's status checks still answer"

m audit > "$tmp/audit"
n429=$(grep -c ' 429 ' "$tmp/audit" || true)
[ "$n429" -eq 1 ] || fail "$n429 audit lines for 429 (want one per window): $(cat "$tmp/audit")"
grep ' 429 ' "$tmp/audit" | grep -q 'urn:dev:ops:loop-1' || fail "the 429 audit line does not name node 1"
echo "ok: one audit line for the three refusals"

kill -TERM "$mef_pid"
rc=0; wait "$mef_pid" || rc=$?
mef_pid=
[ "$rc" -eq 0 ] || fail "msce-mef exited $rc on SIGTERM"
echo "ok: msce-mef stopped cleanly"

#!/usr/bin/env bash
# The per-node enrolment rate limit (issue 12 part 4), end to end against msce-mef with an
# independent TLS client (OpenSSL, PSK, TLS 1.3): with [limits] enrolments_per_node = 3 per 1h
# a node enrolling in a loop gets 201 three times, then 429 with a Retry-After of at most an
# hour, while another node still enrols and the looping node's status checks still answer;
# the audit trail holds one 429 line for the window, not one per refusal; a repeated refused
# request (404) is audited once a minute, its repeats logged per source, bounded.
# Usage: mef-ratelimit.sh PATH/TO/msce-mef (TAP). Skipped without openssl.
set -euo pipefail

MEF=${1:?usage: mef-ratelimit.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl

FQDN=mef.test
tmpdir mef-ratelimit
LIB_SHOW="$T/out $T/mef.err"

mef_conf "[limits]" "enrolments_per_node = 3 per 1h"
mefctl init || fail "init"
for n in 1 2; do
        mefctl node add "urn:dev:ops:loop-$n" --cse-id "/mn-cse-$n" --cse-base https://in.example.net:8443/~/in-cse/in-name \
                --psk-id "kpm-loop-$n" --generate-psk "$T/kpm-$n.hex" || fail "node add loop-$n"
done
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"

# call N METHOD TARGET [BODY]: node N's request over TLS 1.3 with its PSK; the transcript on stdout
call() {
        request "$2" "$3" "urn:dev:ops:loop-$1" "${4:-}" | psk_exchange "$(tr -d '\n' < "$T/kpm-$1.hex")" "kpm-loop-$1"
}
enrol() { call "$1" POST /msce/enrolments "{\"msce:enrolReq\": {\"nodeID\": \"urn:dev:ops:loop-$1\"}}"; }

for i in 1 2 3; do
        enrol 1 > "$T/out"
        [ "$(http_status < "$T/out")" = 201 ] || fail "enrolment $i of node 1 not 201"
done
keid=$(json_str keID < "$T/out")
ok "node 1 enrols 3 times"
for i in 4 5 6; do
        enrol 1 > "$T/out"
        [ "$(http_status < "$T/out")" = 429 ] || fail "enrolment $i of node 1 not 429"
        ra=$(sed -n 's/^Retry-After: \([0-9]*\)\r*$/\1/p' "$T/out")
        [ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 3600 ] || fail "429 without a Retry-After of 1..3600 s"
done
ok "node 1's enrolments 4-6 get 429, Retry-After $ra s"
enrol 2 > "$T/out"
[ "$(http_status < "$T/out")" = 201 ] || fail "node 2 not enrolled while node 1 is limited"
ok "node 2 still enrols"
request GET "/msce/enrolments/$keid" "$keid" | psk_exchange "$(tr -d '\n' < "$T/kpm-1.hex")" kpm-loop-1 > "$T/out"
grep -q '"state":"active"' "$T/out" || fail "node 1's status check refused"
ok "node 1's status checks still answer"

mefctl audit || fail "audit"
n429=$(grep -c ' 429 ' "$T/mefctl.out" || true)
[ "$n429" -eq 1 ] || { cp "$T/mefctl.out" "$T/out"; fail "$n429 audit lines for 429 (want one per window)"; }
grep ' 429 ' "$T/mefctl.out" | grep -q 'urn:dev:ops:loop-1' || fail "the 429 audit line does not name node 1"
ok "one audit line for the three refusals"

# Refusals of another kind are audited once a minute too: node 2 asking for no resource 5 times
# leaves one row.
for i in 1 2 3 4 5; do
        call 2 GET /msce/nope > "$T/out"
        [ "$(http_status < "$T/out")" = 404 ] || fail "GET /msce/nope $i not 404"
done
mefctl audit || fail "audit"
n404=$(grep -c 'no such resource' "$T/mefctl.out" || true)
[ "$n404" -eq 1 ] || { cp "$T/mefctl.out" "$T/out"; fail "$n404 audit lines for 5 refusals of one kind (want one)"; }
ok "one audit line for 5 refusals of one kind"

# The refusals not audited (two 429s, four 404s) are logged as the other failed requests of a
# source are: a line for the first in a 10 s window, the others counted in the window's summary.
# Every one is accounted for, and at least one by a summary, not a line of its own.
folded_logged() {
        direct=$(grep -ac 'like it from this peer in this window)$' "$T/mef.err" || true)
        summed=$(grep -aoE ': [0-9]+ requests? failed or refused in the last' "$T/mef.err" |
                awk '{ n += $2 } END { print n + 0 }')
        [ $((direct + summed)) -ge 6 ] && [ "$summed" -gt 0 ]
}
wait_for 30 folded_logged ||
        fail "the 6 refusals not audited: $direct lines of their own, $summed in summaries (want 6, some summarised)"
[ $((direct + summed)) -eq 6 ] || fail "$direct + $summed log entries for 6 refusals not audited"
grep -aq 'GET /msce/nope -> 404 .*[(]not audited: [1-4] like it from this peer in this window[)]$' "$T/mef.err" ||
        grep -aq 'POST /msce/enrolments -> 429 .*[(]not audited: [12] like it' "$T/mef.err" ||
        fail "no log line saying a refusal was not audited"
ok "the 6 refusals not audited: $direct logged, $summed summarised per source"

mef_term_clean || fail "msce-mef stopped cleanly"
ok "msce-mef stopped cleanly"
tap_done

#!/usr/bin/env bash
# The per-node connection cap ([limits] connections_per_node) end to end, with OpenSSL as the
# client (PSK, TLS 1.3): with max_connections = 4 (+ 5 overflow) and connections_per_node = 2,
# node A opens 6 connections that finish the handshake, send the start of a request line and
# hold it. Its first two are held (no answer); the other four are answered 503 + Retry-After +
# Connection: close at once, without their request, and the log says why; node B still
# enrols (201) meanwhile. Once A's holders close, A is served again: its count went with them.
# At the end A holds two connections again and its third is answered 503: every slot A took
# (the holders' closed mid-request, the served requests' gone to linger) was given back, once.
# A target is not capped: it holds 3 connections and its fetch is still served. A node with a
# certificate is capped by it: its third connection is answered 503 at once.
# Before the cap, A's six took four service and two overflow slots, held them for the whole
# request_timeout, and B was answered 503. request_timeout is 60 s: no answer here can be a
# deadline's. No fixed sleeps: every wait is for a client's output or a log line, with a 30 s
# deadline against hangs.
# Usage: mef-node-conns.sh PATH/TO/msce-mef (TAP). Skipped without openssl.
set -euo pipefail

MEF=${1:?usage: mef-node-conns.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl

FQDN=mef.test
HOLDERS=6
tmpdir mef-node-conns
LIB_SHOW="$T/out $T/mef.err"

# Certificates for node C: a CA, the MEF's certificate, C's.
pki_ca "$T"
pki_cert "$T" mef
pki_cert "$T" node-c

mef_conf "[tls]" "certificate = $T/mef.pem" "key = $T/mef.key" "client_ca = $T/ca.pem" \
        "[limits]" "max_connections = 4" "connections_per_node = 2" "request_timeout = 60000" "retry_after = 3"
TARGET=/in-cse-conncap
mefctl init || fail "init"
mefctl target add "$TARGET" --psk-id psk-conncap-target --generate-psk "$T/kpm-target.hex" || fail "target add"
for n in a b; do
        mefctl node add "urn:dev:ops:conncap-$n" --cse-id "/mn-cse-conncap-$n" \
                --cse-base https://in.example.net:8443/~/in-cse/in-name \
                --psk-id "kpm-conncap-$n" --generate-psk "$T/kpm-$n.hex" --target "$TARGET" ||
                fail "node add conncap-$n"
done
mefctl node add urn:dev:ops:conncap-c --cse-id /mn-cse-conncap-c --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --cert "$T/node-c.pem" || fail "node add conncap-c"
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"

# call N METHOD TARGET [BODY]: node N's request over TLS 1.3 with its PSK; the transcript on stdout
call() {
        request "$2" "$3" "urn:dev:ops:conncap-$1" "${4:-}" |
                psk_exchange "$(tr -d '\n' < "$T/kpm-$1.hex")" "kpm-conncap-$1"
}
enrol() { call "$1" POST /msce/enrolments "{\"msce:enrolReq\": {\"nodeID\": \"urn:dev:ops:conncap-$1\"}}"; }

# hold I [WHO [PSK_IDENTITY]]: a connection of WHO (default node a; cert: node C's
# certificate), reading the FIFO hold-I.in, which stays open (fd 10+I) until the end: after the
# handshake s_client sends what is written there, and waits.
holder_pids=()
at_exit 'for p in "${holder_pids[@]}"; do kill "$p" 2> /dev/null || :; done'
hold() {
        mkfifo "$T/hold-$1.in"
        eval "exec $((10 + $1))<>\"\$T/hold-$1.in\""
        if [ "${2:-}" = cert ]; then
                set -- "$1" -cert "$T/node-c.pem" -key "$T/node-c.key" -CAfile "$T/ca.pem"
        else
                set -- "$1" -psk "$(tr -d '\n' < "$T/kpm-${2:-a}.hex")" -psk_identity "${3:-kpm-conncap-a}"
        fi
        timeout 120 openssl s_client -connect "127.0.0.1:$PORT" "${@:2}" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -ign_eof \
                < "$T/hold-$1.in" > "$T/hold-$1.out" 2>&1 &
        holder_pids+=($!)
}
handshaken() { grep -qs 'Cipher is' "$T/hold-$1.out"; }
# hold_started I [WHO [PSK_IDENTITY]]: hold, past the handshake, the start of a request line sent
hold_started() {
        hold "$@"
        wait_for 30 handshaken "$1" || { cp "$T/hold-$1.out" "$T/out"; fail "held connection $1: no handshake"; }
        printf 'GET /msce/enrolments/held-%d HTT' "$1" > "$T/hold-$1.in"
}
answered() { grep -qs '^HTTP/1.1 ' "$T/hold-$1.out"; }
header() { tr -d '\r' < "$T/out" | grep -qix "$1"; } # header LINE: the transcript in $T/out has it

# One after the other, each past its handshake before the next: the first two are A's two.
for i in $(seq 1 $HOLDERS); do
        hold_started "$i"
done
ok "node A holds $HOLDERS connections past their handshake, each with the start of a request"

for i in $(seq 3 $HOLDERS); do
        wait_for 30 answered "$i" || { cp "$T/hold-$i.out" "$T/out"; fail "A's connection $i not answered"; }
        cp "$T/hold-$i.out" "$T/out"
        [ "$(http_status < "$T/out")" = 503 ] || fail "A's connection $i: not 503"
        header 'Retry-After: 3' || fail "A's connection $i: 503 without Retry-After: 3"
        header 'Connection: close' || fail "A's connection $i: 503 without Connection: close"
done
ok "A's connections 3-$HOLDERS are answered 503 + Retry-After at once, their requests unfinished"

enrol b > "$T/out"
[ "$(http_status < "$T/out")" = 201 ] || fail "node B not enrolled while A holds its connections"
keid_b=$(json_str keID < "$T/out")
ok "node B enrols meanwhile"

for i in 1 2; do
        ! answered "$i" || { cp "$T/hold-$i.out" "$T/out"; fail "A's held connection $i was answered"; }
done
ok "A's first two connections are still held"

wait_line 30 "$T/mef.err" 'psk:kpm-conncap-a holds 2 connections \(connections_per_node\): answering 503' "$MEF_PID" ||
        fail "no log line for the connections over the cap"
ok "the log says why"

# A's holders go: its count goes with them, and A is served again.
for i in 1 2; do
        kill "${holder_pids[$((i - 1))]}" 2> /dev/null || :
done
served_a() {
        request GET "/msce/enrolments/00@$FQDN" "00@$FQDN" | psk_exchange "$(tr -d '\n' < "$T/kpm-a.hex")" kpm-conncap-a > "$T/out"
        [ "$(http_status < "$T/out")" = 404 ]
}
wait_for 30 served_a || fail "node A not served after its holders closed"
ok "node A is served again once its holders have closed"

# The target: 3 connections held (its 3rd over a node's cap), and a fetch on a 4th is served.
for i in 7 8 9; do
        hold_started "$i" target psk-conncap-target
done
request GET "/msce/fetchCredentials/$keid_b/tls" "$TARGET" |
        psk_exchange "$(tr -d '\n' < "$T/kpm-target.hex")" psk-conncap-target > "$T/out"
[ "$(http_status < "$T/out")" = 200 ] || fail "the target's fetch beside its 3 held connections not 200"
for i in 7 8 9; do
        ! answered "$i" || { cp "$T/hold-$i.out" "$T/out"; fail "the target's held connection $i was answered"; }
done
ok "a target is not capped: 3 connections held and a fetch served"
holders_stop() {
        for p in "${holder_pids[@]}"; do kill "$p" 2> /dev/null || :; done
        holder_pids=() # reaped: their pids may be reused
}
holders_stop

# two_held_third_refused NAME WHO I J K: WHO's (hold's) connections I, J and K past their
# handshake, one after the other: K, over the cap of 2, is answered 503 at once; I and J are
# held (in service or overflow, either way unanswered while their request is unfinished).
two_held_third_refused() {
        local name=$1 who=$2 i
        for i in "$3" "$4" "$5"; do
                hold_started "$i" "$who"
        done
        wait_for 30 answered "$5" || { cp "$T/hold-$5.out" "$T/out"; fail "$name's third connection not answered"; }
        cp "$T/hold-$5.out" "$T/out"
        [ "$(http_status < "$T/out")" = 503 ] || fail "$name's third connection: not 503"
        for i in "$3" "$4"; do
                ! answered "$i" || { cp "$T/hold-$i.out" "$T/out"; fail "$name's held connection $i was answered"; }
        done
}

# Node C, by its certificate.
two_held_third_refused C cert 10 11 12
# (its log line is folded into the source's summary with A's: one source, within 10 s)
ok "a node with a certificate is capped too: its third connection is answered 503 at once"
holders_stop

# Node A again, its count back to 0: a slot kept after its connection closed (a holder's, a
# served request's) would have A's second connection answered 503.
two_held_third_refused A a 13 14 15
ok "node A holds its two connections again: every slot it took was given back"
holders_stop

mef_term_clean || fail "msce-mef stopped cleanly"
ok "msce-mef stopped cleanly"
tap_done

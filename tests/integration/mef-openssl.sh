#!/usr/bin/env bash
# msce-mef against an independent TLS stack (OpenSSL), for TLS 1.2 and TLS 1.3:
#  - enrol (3.1) with the node's PSK: the profile's keID must be the first 16 bytes of the
#    keying material OpenSSL exports (label EXPORTER-oneM2M-Bootstrap, no context, 48 bytes)
#    "@" the MEF's FQDN;
#  - status (3.2) of that KeID answers "active";
#  - fetchCredentials (3.4) with a target's own PSK: the key must be
#    HMAC-SHA-256(EKM[16..48), "oneM2M Enrolment Key ... derivation" || targetID), computed
#    here with `openssl dgst`: this checks the MEF's Ke end to end;
#  - certificate mode (the same MEF also has a certificate and a client CA): a device
#    certificate enrols with keID = exporter output, a client without one gets 403/4103;
#  - a wrong PSK gets no HTTP answer; SIGTERM stops the MEF with status 0;
#  - the metrics listener ([metrics] listen): counters at zero before, then moved by exactly
#    the traffic above (enrolments, status checks, fetches, handshake failures, gauges), no
#    node identity in them, 404/405 for anything but GET /metrics;
#  - a status request sent over a second after its handshake sees a re-enrol order made
#    meanwhile, and a fetch a target removed meanwhile (the handshake's read of the node or
#    target stands for a request for a second only).
# Usage: mef-openssl.sh PATH/TO/msce-mef (TAP). Skipped without openssl.
set -euo pipefail

mef=${1:?usage: mef-openssl.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl

FQDN=mef.test
NODE=urn:dev:ops:openssl-1
TARGET=/in-cse

tmpdir mef-openssl
tmp=$T
fail() {
        not_ok "$*"
        echo "# msce-mef log:"; sed 's/^/#   /' "$tmp/mef.err" 2>/dev/null || true
        tap_done
}

# Certificates for the cert-mode part: a CA, the MEF's certificate, a device certificate.
pki_ca "$tmp"
pki_cert "$tmp" mef "DNS:$FQDN,IP:127.0.0.1"
pki_cert "$tmp" dev

# MEF_TEST_PORT: a fixed port instead of 0 (the kernel's choice, read back from stdout).
PORT=${MEF_TEST_PORT:-}
mef_conf "[tls]" "certificate = $tmp/mef.pem" "key = $tmp/mef.key" "client_ca = $tmp/ca.pem" \
        "[metrics]" "listen = 127.0.0.1:0"
m() { "$mef" --config "$tmp/mef.conf" "$@"; }
m init >/dev/null
m target add "$TARGET" --psk-id in-cse-psk --generate-psk "$tmp/tpsk.hex" >/dev/null
m target add /maf-1 --psk-id maf-psk --generate-psk "$tmp/maf.hex" >/dev/null
m node add "$NODE" --cse-id /mn-cse-1 --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --psk-id kpm-openssl-1 --generate-psk "$tmp/kpm.hex" --target "$TARGET" --target /maf-1 >/dev/null
m node add urn:dev:ops:cert-1 --cse-id /mn-cse-cert-1 --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --cert "$tmp/dev.pem" --target "$TARGET" >/dev/null
kpm=$(tr -d '\n' < "$tmp/kpm.hex")
tpsk=$(tr -d '\n' < "$tmp/tpsk.hex")

MEF=$mef
mef_start "$tmp/mef.conf.in" || fail "msce-mef did not start"
port=$PORT
wait_line 10 "$tmp/mef.out" '^metrics on ' || fail "msce-mef did not report its metrics port"
mport=$(sed -n 's/^metrics on .*:\([0-9]*\)$/\1/p' "$tmp/mef.out")

scrape > "$tmp/m0.txt"
grep -q '^HTTP/1.1 200 ' "$tmp/m0.txt" || fail "metrics: not 200: $(cat "$tmp/m0.txt")"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$tmp/m0.txt" || fail "metrics: not the Prometheus text type"
[ "$(metric "$tmp/m0.txt" 'msce_mef_requests_total{exchange="enrol",code="201"}')" = 0 ] ||
        fail "metrics: enrolments before any"
[ "$(metric "$tmp/m0.txt" 'msce_mef_nodes')" = 2 ] || fail "metrics: msce_mef_nodes is not 2"
[ "$(metric "$tmp/m0.txt" 'msce_mef_enrolments{state="active"}')" = 0 ] || fail "metrics: active enrolments before any"
ok "metrics before traffic: 200, text format 0.0.4, counters at 0, 2 nodes"

# exchange VERSION PSK IDENTITY REQUEST-FILE: the whole s_client transcript (session summary
# with the exported keying material, then the HTTP response).
exchange() {
        psk_exchange "$2" "$3" "$1" $EKM_OPTS < "$4"
}

for version in 1.2 1.3; do
        request POST /msce/enrolments "$NODE" "{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}" > "$tmp/enrol.req"
        exchange "$version" "$kpm" kpm-openssl-1 "$tmp/enrol.req" > "$tmp/enrol.out"
        grep -Eq "Protocol *: TLSv$version|^(New|Reused), TLSv$version," "$tmp/enrol.out" ||
                fail "TLS $version: not negotiated: $(cat "$tmp/enrol.out")"
        grep -q '^HTTP/1.1 201 ' "$tmp/enrol.out" || fail "TLS $version: enrol not 201: $(cat "$tmp/enrol.out")"
        grep -qi '^X-M2M-RSC: 2001' "$tmp/enrol.out" || fail "TLS $version: enrol without RSC 2001"
        ekm=$(s_client_ekm "$tmp/enrol.out")
        [ ${#ekm} -eq 96 ] || fail "TLS $version: OpenSSL printed no 48-byte keying material"
        keid=$(json_str keID < "$tmp/enrol.out")
        [ "$keid" = "${ekm:0:32}@$FQDN" ] || fail "TLS $version: keID $keid is not EKM[0..16) ${ekm:0:32}@$FQDN"
        kpsa_id=$(json_str kpsaID < "$tmp/enrol.out")
        [ "$kpsa_id" = "${ekm:0:32}.1@$FQDN" ] || fail "TLS $version: kpsaID $kpsa_id"
        ok "TLS $version enrol: keID = exporter output ($keid)"

        request GET "/msce/enrolments/$keid" "$keid" > "$tmp/status.req"
        exchange "$version" "$kpm" kpm-openssl-1 "$tmp/status.req" > "$tmp/status.out"
        grep -q '"state":"active"' "$tmp/status.out" || fail "TLS $version: status: $(cat "$tmp/status.out")"
        ok "TLS $version status: active"
        psk_keid=$keid

        request GET "/msce/fetchCredentials/$keid/tls" "$TARGET" > "$tmp/fetch.req"
        exchange "$version" "$tpsk" in-cse-psk "$tmp/fetch.req" > "$tmp/fetch.out"
        grep -q '^HTTP/1.1 200 ' "$tmp/fetch.out" || fail "TLS $version: fetch not 200: $(cat "$tmp/fetch.out")"
        got=$(json_str key < "$tmp/fetch.out" | base64 -d | od -An -tx1 | tr -d ' \n')
        want=$(kpsa_of "$ekm" "$TARGET")
        [ ${#want} -eq 64 ] || fail "openssl dgst gave no HMAC"
        [ "$got" = "$want" ] || fail "TLS $version: fetched key $got is not HMAC-SHA-256(Ke, label||$TARGET) $want"
        ok "TLS $version fetchCredentials: key = HMAC-SHA-256(EKM[16..48), label || $TARGET)"
done

# Certificate mode (the MEF accepts both): the device certificate authenticates the node, the
# keID is still the exporter output; without a client certificate the answer is 403/4103.
# cert_exchange VERSION REQUEST-FILE [openssl options...]
cert_exchange() {
        local v=$1 req=$2
        shift 2
        timeout 10 openssl s_client -connect "127.0.0.1:$port" -servername "$FQDN" -CAfile "$tmp/ca.pem" \
                -verify_return_error "-tls${v/./_}" $EKM_OPTS \
                -ign_eof "$@" < "$req" 2>&1 || true
}
for version in 1.2 1.3; do
        request POST /msce/enrolments urn:dev:ops:cert-1 '{"msce:enrolReq": {"nodeID": "urn:dev:ops:cert-1"}}' \
                > "$tmp/cert.req"
        cert_exchange "$version" "$tmp/cert.req" -cert "$tmp/dev.pem" -key "$tmp/dev.key" > "$tmp/cert.out"
        grep -Eq "Protocol *: TLSv$version|^(New|Reused), TLSv$version," "$tmp/cert.out" ||
                fail "cert TLS $version: not negotiated: $(cat "$tmp/cert.out")"
        grep -q '^HTTP/1.1 201 ' "$tmp/cert.out" || fail "cert TLS $version: enrol not 201: $(cat "$tmp/cert.out")"
        ekm=$(s_client_ekm "$tmp/cert.out")
        keid=$(json_str keID < "$tmp/cert.out")
        [ ${#ekm} -eq 96 ] || fail "cert TLS $version: OpenSSL printed no 48-byte keying material"
        [ "$keid" = "${ekm:0:32}@$FQDN" ] || fail "cert TLS $version: keID $keid is not EKM[0..16) ${ekm:0:32}@$FQDN"
        ok "cert TLS $version enrol: keID = exporter output ($keid)"
done
cert_exchange 1.3 "$tmp/cert.req" > "$tmp/nocert.out"
if ! grep -q '^HTTP/1.1 403 ' "$tmp/nocert.out" || ! grep -qi '^X-M2M-RSC: 4103' "$tmp/nocert.out"; then
        fail "no client certificate: expected 403/4103: $(cat "$tmp/nocert.out")"
fi
ok "no client certificate: 403/4103"

# A wrong PSK is refused in the handshake: no HTTP answer at all.
request POST /msce/enrolments "$NODE" "{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}" > "$tmp/enrol.req"
exchange 1.3 "00112233445566778899aabbccddeeff" kpm-openssl-1 "$tmp/enrol.req" > "$tmp/wrong.out"
grep -q '^HTTP/1.1' "$tmp/wrong.out" && fail "a wrong PSK got an HTTP answer"
ok "wrong PSK refused"

# The traffic above, counted: 4 enrolments (psk and cert, TLS 1.2 and 1.3), 2 status checks,
# 2 fetches, one 403 and one handshake refused for its PSK. Connections close after their
# linger: wait for the gauge to come back to 0 (bounded), then read everything from one scrape.
connections_closed() {
        scrape > "$tmp/m1.txt"
        [ "$(metric "$tmp/m1.txt" msce_mef_connections_open)" = 0 ]
}
wait_for 10 connections_closed || fail "metrics: connections still open: $(grep connections_open "$tmp/m1.txt")"
want_metric() { # 'NAME{LABELS}' WANT
        local got
        got=$(metric "$tmp/m1.txt" "$1")
        [ "$got" = "$2" ] || fail "metrics: $1 is $got, expected $2"
}
want_metric 'msce_mef_requests_total{exchange="enrol",code="201"}' 4
want_metric 'msce_mef_requests_total{exchange="status",code="200"}' 2
want_metric 'msce_mef_requests_total{exchange="fetch",code="200"}' 2
want_metric 'msce_mef_requests_total{exchange="other",code="403"}' 1
want_metric 'msce_mef_request_duration_seconds_count{exchange="enrol"}' 4
want_metric 'msce_mef_request_duration_seconds_bucket{exchange="enrol",le="+Inf"}' 4
want_metric 'msce_mef_connection_failures_total{reason="authentication"}' 1
# SQLite: each PSK handshake's lookup on the loop (6 exchanges and the wrong PSK), none ahead
want_metric 'msce_mef_psk_lookups_total{where="loop"}' 7
want_metric 'msce_mef_psk_lookups_total{where="ahead"}' 0
want_metric 'msce_mef_enrolments{state="active"}' 2
want_metric 'msce_mef_enrolments{state="expired"}' 0
[ "$(metric "$tmp/m1.txt" msce_mef_store_duration_seconds_count)" -ge 8 ] || fail "metrics: store durations not counted"
# every request's store job ran in a thread's run (one, or several in one transaction)
batches=$(metric "$tmp/m1.txt" msce_mef_store_batches_total)
batch_jobs=$(metric "$tmp/m1.txt" msce_mef_store_batch_jobs_total)
[ "$batch_jobs" -ge "$(metric "$tmp/m1.txt" msce_mef_store_duration_seconds_count)" ] && [ "$batches" -ge 1 ] &&
        [ "$batches" -le "$batch_jobs" ] || fail "metrics: store runs $batches holding $batch_jobs jobs"
grep -qF -e "$NODE" -e cert-1 -e kpm-openssl "$tmp/m1.txt" && fail "metrics name a node"
ok "metrics after traffic: 4 enrolments, 2 status, 2 fetches, 1 403, 1 PSK refused, 2 active, 0 open"
scrape GET /other > "$tmp/m404.txt"
grep -q '^HTTP/1.1 404 ' "$tmp/m404.txt" || fail "metrics: GET /other not 404"
scrape POST /metrics > "$tmp/m405.txt"
grep -q '^HTTP/1.1 405 ' "$tmp/m405.txt" || fail "metrics: POST /metrics not 405"
ok "metrics listener: 404 elsewhere, 405 for POST"

# A request sent over a second after its handshake: the handshake's read of the node or
# target no longer stands for it, and an order made meanwhile is what it is answered.
# slow_exchange PSK IDENTITY REQUEST-FILE OUT COMMAND...: the handshake, COMMAND, then the
# request once the handshake is 1.1 s old. What is tested is an age, so the wait is for one.
older_than() { [ $(($(ms) - $1)) -ge "$2" ]; }
slow_exchange() {
        local psk=$1 id=$2 req=$3 out=$4 slow handshaken
        shift 4
        rm -f "$tmp/slow.in"
        mkfifo "$tmp/slow.in"
        psk_exchange "$psk" "$id" 1.3 < "$tmp/slow.in" > "$out" &
        slow=$!
        exec 5>"$tmp/slow.in"
        wait_line 10 "$out" '^(New|Reused), TLSv1.3|Protocol *: TLSv1.3' "$slow" ||
                fail "slow exchange: no handshake: $(cat "$out")"
        handshaken=$(ms)
        "$@" > /dev/null || fail "slow exchange: $* failed"
        wait_for 5 older_than "$handshaken" 1100
        cat "$req" >&5
        exec 5>&-
        wait "$slow" || :
}
request GET "/msce/enrolments/$psk_keid" "$psk_keid" > "$tmp/slow.req"
slow_exchange "$kpm" kpm-openssl-1 "$tmp/slow.req" "$tmp/slow.out" m node reenrol "$NODE"
grep -q '"state":"reenrol"' "$tmp/slow.out" || fail "slow status: $(cat "$tmp/slow.out")"
ok "status sent a second after its handshake: the re-enrol order made meanwhile"
request GET "/msce/fetchCredentials/$psk_keid/tls" "$TARGET" > "$tmp/slow.req"
slow_exchange "$tpsk" in-cse-psk "$tmp/slow.req" "$tmp/slow.out" m target remove "$TARGET"
grep -q '^HTTP/1.1 403 ' "$tmp/slow.out" && grep -q 'not an enrolment target' "$tmp/slow.out" ||
        fail "slow fetch: $(cat "$tmp/slow.out")"
ok "fetch sent a second after its handshake: the target removed meanwhile is refused"

mef_term_clean || fail "clean stop on SIGTERM"
ok "clean stop on SIGTERM"
tap_done

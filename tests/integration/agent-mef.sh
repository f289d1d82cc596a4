#!/bin/sh
# SPDX-License-Identifier: MIT
# msce-agent --once against the real msce-mef on loopback (TAP output), as root: the agent files
# the keys in the keyring of the service user msce-test-agent (created when missing).
# Usage: tests/integration/agent-mef.sh BUILDDIR   (MEF_TEST_PORT=N: listen on N instead of port 0)
# Covers: enrolment (psk with TLS 1.2 and 1.3 pinned, derived and transported Long Term Key, cert
# mode with TLS 1.2 and 1.3 pinned), wrong PSK, unknown PSK identity, node ID not matching the
# PSK, revoked node, untrusted MEF certificate -> 77; MEF down -> 75 (with a LED configured: no
# LED requested or warned about); bad configuration, Kpm or
# key file 0644 -> 78; the Kpm never appears in the agent's output; fetchCredentials returns the
# Kpsa the agent derived (the service user reads msce:kpsa:<kpsaID> with keyctl, the target
# fetches its key from the MEF with openssl s_client: equal) and a target not named for the
# KeID gets 403/4103 (protocol 3.4). Skipped (TAP) without root or keyctl/su; the fetch part needs openssl.
set -u

[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
AGENT=$B/msce-agent
MEF=$B/msce-mef
. "$(dirname "$0")/lib.sh"
need_exec "$AGENT" "$MEF"
need_root "msce-agent --once files keys in another user's keyring"
need_cmds keyctl su od
own_session "$@"
# Its own service user (msce-t<PID>-agent): another test's keys must not replace ours before we
# read them, nor a run of the same test in another build directory or worktree.
CSE_USER=$(test_user agent) || skip_all "cannot create a test user"
test_user_cleanup $CSE_USER
CSE_UID=$(id -u $CSE_USER)
tmpdir agent-mef

umask 077
# Certificates for the cert-mode cases (skipped when they cannot be made).
CERTS=$T/certs
if sh "$(dirname "$0")/gen-certs.sh" "$CERTS" > "$T/gen-certs.log" 2>&1; then
        HAVE_CERTS=1
        TLS_SECTION="[tls]
certificate = $CERTS/server.pem
key = $CERTS/server.key
client_ca = $CERTS/ca.pem"
else
        HAVE_CERTS=0
        TLS_SECTION=
fi
PORT=${MEF_TEST_PORT:-}
mef_conf "$TLS_SECTION"
mefctl init || { bail "msce-mef init failed"; }
CSE_BASE=https://in.example.net:8443/~/in-cse/in-name
# Targets with their own PSK, for fetchCredentials; /maf-x is named by no node.
mefctl target add /in-cse --psk-id in-cse-psk --generate-psk "$T/target-in-cse.hex" &&
        mefctl target add /maf-x --psk-id maf-x-psk --generate-psk "$T/target-maf-x.hex" ||
        bail "target add failed"
mefctl node add node-1 --cse-id /mn-cse-1 --cse-base $CSE_BASE --psk-id kpm-1 \
        --generate-psk "$T/kpm-1.hex" --target /in-cse || bail "node add failed"
mefctl node add node-2 --cse-id /mn-cse-2 --cse-base $CSE_BASE --psk-id kpm-2 \
        --generate-psk "$T/kpm-2.hex" || bail "node add failed"
mefctl node add node-3 --cse-id /mn-cse-3 --cse-base $CSE_BASE --psk-id kpm-3 \
        --generate-psk "$T/kpm-3.hex" --target /in-cse --target /maf-1 --ltk-transported \
        || bail "node add failed"
mefctl node revoke node-2 || bail "node revoke failed"
if [ $HAVE_CERTS = 1 ]; then
        mefctl node add node-c --cse-id /mn-cse-c --cse-base $CSE_BASE --cert "$CERTS/client.pem" \
                --target /in-cse || bail "node add --cert failed"
fi

mef_start "$T/mef.conf.in" || bail "msce-mef did not start" "$T/mef.err"

# Kpm values, in both cases, that must never show up in what the agent prints.
SECRETS=$(cat "$T"/kpm-*.hex | tr -d '\r')
SECRETS="$SECRETS
$(printf '%s\n' "$SECRETS" | tr a-f A-F)"

# custody NAME: where the agent keeps the profile of configuration NAME. Each configuration has
# its own state directory, so that every case enrols (a sealed profile would be restored).
custody() {
        agent_custody $CSE_USER "$T/$1/state" "$T/$1/run"
}

# conf NAME NODE KPMID KPMFILE [EXTRA [mef] LINES...]
conf() {
        name=$1 node=$2 kpmid=$3 kpmfile=$4
        shift 4
        {
                printf '[node]\nid = %s\nlatitude = 48.8584\nlongitude = 2.2945\n' "$node"
                printf '[mef]\nuri = https://127.0.0.1:%s/msce\npsk_identity = %s\npsk_file = %s\n' \
                        "$PORT" "$kpmid" "$kpmfile"
                for l in "$@"; do printf '%s\n' "$l"; done
                printf '[timing]\nconnect_timeout = 2s\nexchange_timeout = 10s\n'
                custody "$name"
        } > "$T/$name.conf"
}

# agent NAME WANT_EXIT: run --once, check the exit status and that no Kpm leaked.
agent() {
        "$AGENT" --once --config "$T/$1.conf" > "$T/out" 2> "$T/err"
        rc=$?
        if printf '%s\n' "$SECRETS" | grep -qF -f - "$T/out" "$T/err"; then
                not_ok "$1: a Kpm appears in the agent's output"
                return 1
        fi
        if [ $rc -ne "$2" ]; then
                not_ok "$1: exit $rc, expected $2"
                return 1
        fi
        return 0
}

conf enrol node-1 kpm-1 "$T/kpm-1.hex"
if agent enrol 0; then
        if grep -q '^  KeID: *[0-9a-f]\{32\}@127\.0\.0\.1$' "$T/out" &&
           grep -q '^  target: */in-cse kpsaID ' "$T/out" &&
           grep -q '^  long-term key: *derived (Ke)$' "$T/out" &&
           grep -q '^  CSE-ID: */mn-cse-1$' "$T/out"; then
                ok "enrol: exit 0, profile printed, KeID ends with @127.0.0.1"
        else
                not_ok "enrol: profile output"
        fi
fi
# fetch KEID TARGET PSK-ID PSK-FILE: fetchCredentials as that target, with openssl s_client (the
# target's test PSK goes on its command line: s_client takes it only there).
fetch() {
        printf 'GET /msce/fetchCredentials/%s/tls HTTP/1.1\r\nHost: 127.0.0.1\r\nX-M2M-Origin: %s\r\nX-M2M-RI: fetch-%s\r\nX-M2M-RVI: 3\r\nAccept: application/json\r\n\r\n' \
                "$1" "$2" "$$" > "$T/fetch.req"
        timeout 10 openssl s_client -connect "127.0.0.1:$PORT" -tls1_3 -psk "$(tr -d '\n' < "$4")" \
                -psk_identity "$3" -ign_eof -quiet < "$T/fetch.req" > "$T/fetch.out" 2> /dev/null
}

# check_fetch WHAT: after an enrolment of a node that names /in-cse (its profile in $T/out), the
# Kpsa the service user reads from msce:kpsa:<kpsaID> is the key /in-cse fetches from the MEF,
# and /maf-x, not named, gets 403/4103 (protocol 3.4).
check_fetch() {
        keid=$(sed -n 's/^  KeID: *//p' "$T/out")
        kpsa_id=$(sed -n 's|^  target: */in-cse kpsaID ||p' "$T/out")
        if ! command -v openssl > /dev/null 2>&1; then
                skip "fetchCredentials ($1): openssl is not installed"
                return
        fi
        if [ -z "$keid" ] || [ -z "$kpsa_id" ]; then
                not_ok "fetchCredentials ($1): no KeID or kpsaID for /in-cse in the agent's output"
                return
        fi
        agent_key=$(read_key $CSE_USER "kpsa:$kpsa_id")
        fetch "$keid" /in-cse in-cse-psk "$T/target-in-cse.hex"
        mef_key=$(sed -n 's/.*"key" *: *"\([^"]*\)".*/\1/p' "$T/fetch.out" | base64 -d 2> /dev/null |
                od -An -tx1 -v | tr -d ' \n')
        if [ ${#agent_key} -ne 64 ]; then
                not_ok "$1: $CSE_USER cannot read msce:kpsa:$kpsa_id: $(cat "$T/keyctl.err")"
        elif ! grep -q '^HTTP/1.1 200 ' "$T/fetch.out" || [ ${#mef_key} -ne 64 ]; then
                not_ok "$1: fetchCredentials by /in-cse: no 200 with a 32-byte key: $(head -c 600 "$T/fetch.out")"
        elif [ "$agent_key" != "$mef_key" ]; then
                not_ok "$1: fetchCredentials by /in-cse returns another key than the Kpsa the agent filed"
        else
                ok "$1: fetchCredentials by /in-cse returns the Kpsa $CSE_USER reads from msce:kpsa:$kpsa_id"
        fi
        fetch "$keid" /maf-x maf-x-psk "$T/target-maf-x.hex"
        if grep -q '^HTTP/1.1 403 ' "$T/fetch.out" && grep -qi '^X-M2M-RSC: 4103' "$T/fetch.out" &&
           grep -q 'target not named for that KeID' "$T/fetch.out" && ! grep -q '"key"' "$T/fetch.out"; then
                ok "$1: fetchCredentials by /maf-x, not named for the KeID: 403/4103 without a key"
        else
                not_ok "$1: fetchCredentials by /maf-x: $(head -c 600 "$T/fetch.out")"
        fi
}
check_fetch "psk, TLS 1.3, Long Term Key = Ke"

conf tls12 node-1 kpm-1 "$T/kpm-1.hex" "tls_max_version = 1.2"
agent tls12 0 && { grep -q '^  TLS: *TLSv1\.2 ' "$T/out" && ok "enrol with TLS 1.2 pinned" || not_ok "tls12: version"; }
check_fetch "psk, TLS 1.2"

conf tls13 node-1 kpm-1 "$T/kpm-1.hex" "tls_min_version = 1.3"
agent tls13 0 && { grep -q '^  TLS: *TLSv1\.3 ' "$T/out" && ok "enrol with TLS 1.3 pinned" || not_ok "tls13: version"; }

conf ltk node-3 kpm-3 "$T/kpm-3.hex"
if agent ltk 0; then
        grep -q '^  long-term key: *transported$' "$T/out" && [ "$(grep -c '^  target:' "$T/out")" -eq 2 ] &&
                ok "enrol with a transported Long Term Key and two targets" || not_ok "ltk: profile output"
fi
check_fetch "transported Long Term Key"

# A wrong Kpm of the same length for an existing identity.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/wrong.hex"
echo >> "$T/wrong.hex"
chmod 0600 "$T/wrong.hex"
conf wrongpsk node-1 kpm-1 "$T/wrong.hex"
agent wrongpsk 77 && { grep -q '(rejected)' "$T/err" && ok "wrong PSK: exit 77 (rejected)" || not_ok "wrongpsk: message"; }

conf unknownid node-1 kpm-nobody "$T/kpm-1.hex"
agent unknownid 77 && ok "unknown PSK identity: exit 77"

conf othernode node-3 kpm-1 "$T/kpm-1.hex"
agent othernode 77 && ok "node ID not the PSK's node: exit 77"

conf revoked node-2 kpm-2 "$T/kpm-2.hex"
agent revoked 77 && ok "revoked node: exit 77"

# certconf NAME TRUST_ANCHORS [EXTRA [mef] LINES...]
certconf() {
        name=$1 ca=$2
        shift 2
        {
                printf '[node]\nid = node-c\n[mef]\nuri = https://127.0.0.1:%s/msce\nmode = cert\n' "$PORT"
                printf 'certificate = %s\nkey = %s\ntrust_anchors = %s\n' "$CERTS/client.pem" "$CERTS/client.key" "$ca"
                for l in "$@"; do printf '%s\n' "$l"; done
                custody "$name"
        } > "$T/$name.conf"
}
if [ $HAVE_CERTS = 1 ]; then
        certconf cert "$CERTS/ca.pem"
        agent cert 0 && { grep -q '^  KeID: *[0-9a-f]\{32\}@127\.0\.0\.1$' "$T/out" && ok "enrol in cert mode" || not_ok "cert: profile output"; }
        certconf cert12 "$CERTS/ca.pem" "tls_max_version = 1.2"
        agent cert12 0 && { grep -q '^  TLS: *TLSv1\.2 .*ECDHE-ECDSA' "$T/out" && ok "enrol in cert mode with TLS 1.2 pinned (ECDHE-ECDSA)" || not_ok "cert12: version or suite"; }
        check_fetch "cert, TLS 1.2"
        certconf cert13 "$CERTS/ca.pem" "tls_min_version = 1.3"
        agent cert13 0 && { grep -q '^  TLS: *TLSv1\.3 ' "$T/out" && ok "enrol in cert mode with TLS 1.3 pinned" || not_ok "cert13: version"; }
        certconf rogueca "$CERTS/rogue-ca.pem"
        agent rogueca 77 && ok "cert mode, MEF certificate from an untrusted CA: exit 77"
        chmod 0644 "$CERTS/client.key"
        agent cert 78 && { grep -q 'key: .*readable by group or others' "$T/err" && ok "cert mode, key file 0644: exit 78" || not_ok "cert key mode: message"; }
        chmod 0600 "$CERTS/client.key"
else
        skip "cert mode: gen-certs.sh failed"
fi

cp "$T/kpm-1.hex" "$T/open.hex"
chmod 0644 "$T/open.hex"
conf badmode node-1 kpm-1 "$T/open.hex"
agent badmode 78 && { grep -q 'psk_file: .*readable by group or others' "$T/err" && ok "Kpm file 0644: exit 78" || not_ok "badmode: message"; }

printf '[node]\nid = node-1\n[mef]\nuri = http://127.0.0.1/\n' > "$T/badconf.conf"
agent badconf 78 && { grep -q 'badconf.conf:4: \[mef\] uri:' "$T/err" && ok "bad configuration: exit 78 naming file, line and key" || not_ok "badconf: message"; }

mef_stop
# A fresh state directory: with the enrol case's profile it would restore instead of connecting.
# And a LED on a chip that is not there: --once drives no LEDs (msce-agent(8)), so it neither
# requests the line nor warns that it cannot.
conf mefdown node-1 kpm-1 "$T/kpm-1.hex" '[leds]' 'status = gpiochip99:17'
agent mefdown 75 && { grep -q '(transient)' "$T/err" && ok "MEF down: exit 75 (transient)" || not_ok "mefdown: message"; }
if grep -q 'LEDs' "$T/err"; then
        not_ok "--once with [leds] configured: it tried to drive the LEDs: $(grep 'LEDs' "$T/err")"
else
        ok "--once with [leds] configured: no LED requested, nothing said about them"
fi

tap_done

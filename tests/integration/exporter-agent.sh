#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The real msce-agent against OpenSSL as the MEF's TLS end, TLS 1.2 and 1.3 (TAP output):
# openssl s_server -psk ... -keymatexport EXPORTER-oneM2M-Bootstrap -keymatexportlen 48 prints the
# keying material HEX; this script then writes, through s_server's stdin, an HTTP 201 whose
# profile has keID = lowercase(HEX[0..32)) "@127.0.0.1" and names the target /in-cse. Then:
#  - RelativeKeID: msce-agent --once accepts it (key confirmation: exit 0) and prints that KeID;
#  - Ke: the service user reads msce:ltk = HEX[32..96) and msce:kpsa:<kpsaID> =
#    HMAC-SHA-256(HEX[32..96), "oneM2M Enrolment Key to ... derivation" || "/in-cse"), computed
#    with openssl dgst.
# TLS 1.2 uses ECDHE-PSK-AES128-CBC-SHA256: Debian's wolfSSL has no static PSK suites
# (docs/protocol.md). The agent runs with its default versions (TLS 1.2..1.3) against a TLS
# 1.2-only, a TLS 1.3-only and a dual-version s_server, in psk and in cert mode (ECDSA; the test
# PKI of gen-certs.sh in MSCE_TEST_CERTS), plus once pinned to TLS 1.2 (issue 10: a TLS 1.2-only
# MEF was unreachable with the defaults). Then MEFs it has nothing in common with, or that
# refuse the key: exit status and message (docs/protocol.md "Handshake failures").
# Usage: exporter-agent.sh BUILDDIR. Skipped (TAP) without root, openssl, keyctl or su.
set -u

[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
AGENT=$B/msce-agent
# Its own service user (created below, per run): another test's keys must not replace ours.
FQDN=127.0.0.1
TARGET=/in-cse
LABEL="oneM2M Enrolment Key to Provisioned Secure Connection Key derivation"

. "$(dirname "$0")/lib.sh"
need_exec "$AGENT"
need_root "msce-agent --once files keys in another user's keyring"
need_cmds openssl keyctl su od mkfifo timeout
own_session "$@"
# A user of this run's own (msce-t<PID>-export): not shared with a run of the same test in
# another build directory or worktree.
CSE_USER=$(test_user export) || skip_all "cannot create a test user"
test_user_cleanup $CSE_USER
CSE_UID=$(id -u $CSE_USER)

umask 077
tmpdir exporter-agent
SPID=
APID=
at_exit 'exec 3>&-; stop_pid "$SPID"; stop_pid "$APID"'
LIB_SHOW="$T/s_server.out $T/agent.out $T/agent.err"

# A throwaway test Kpm: on openssl's command line only because s_server takes it there.
KPM=$(openssl rand -hex 32)
printf '%s\n' "$KPM" > "$T/kpm.hex"
ID=kpm-openssl-agent
# s_server quits on EOF on stdin: give it a FIFO we hold open, and write the response into it.
mkfifo "$T/in"
exec 3<> "$T/in"

# The CSE's recipe of docs/cse-integration.md as the service user: msce:NAME as lowercase hex.
key_of() { read_key "$CSE_USER" "$1"; }

# response RI REL-KEID: the 201 with the profile for RelativeKeID REL-KEID (lowercase hex).
response() {
        exp=$(date -u -d '+1 year' +%Y%m%dT%H%M%S)
        body="{\"msce:profile\":{\"cseID\":\"/mn-cse-openssl\",\"cseBase\":\"https://in.example.net:8443/~/in-cse/in-name\",\"keID\":\"$2@$FQDN\",\"exp\":\"$exp\",\"targets\":[{\"id\":\"$TARGET\",\"kpsaID\":\"$2.1@$FQDN\"}],\"poll\":3600}}"
        printf 'HTTP/1.1 201 Created\r\nX-M2M-RI: %s\r\nX-M2M-RSC: 2001\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
                "$1" "${#body}" "$body"
}

# start_server SERVER-OPTIONS...: s_server (its port in $port) for one connection, or two when
# the agent's first is refused and it must retry over TLS 1.2 only.
start_server() {
        rm -rf "$T/state" "$T/run" "$T"/*.out "$T"/*.err
        timeout 30 openssl s_server -accept 127.0.0.1:0 -keymatexport EXPORTER-oneM2M-Bootstrap \
                -keymatexportlen 48 "$@" < "$T/in" > "$T/s_server.out" 2>&1 &
        SPID=$!
        wait_line 30 "$T/s_server.out" '^ACCEPT' $SPID || return 1
        port=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$T/s_server.out")
}

# agent_conf MODE [EXTRA-LINE]: the agent's configuration for the server on $port.
agent_conf() {
        if [ "$1" = cert ]; then
                cred="mode = cert
certificate = $CERTS/client.pem
key = $CERTS/client.key
trust_anchors = $CERTS/ca.pem"
        else
                cred="psk_identity = $ID
psk_file = $T/kpm.hex"
        fi
        cat > "$T/agent.conf" << EOF
[node]
id = urn:dev:ops:openssl-agent
[mef]
uri = https://$FQDN:$port/msce
$cred
$2
$(agent_custody "$CSE_USER" "$T/state" "$T/run")
[timing]
connect_timeout = 5s
exchange_timeout = 15s
EOF
}

run() { # SERVER-VERSIONS(1.2|1.3|dual) MODE(psk|cert) [PIN-LINE]: enrol, then check the keys
        v=$1
        mode=$2
        case $v in
        1.2) sopts=(-tls1_2) ;;
        1.3) sopts=(-tls1_3) ;;
        *) sopts=() ;;
        esac
        if [ "$mode" = cert ]; then
                if [ -z "$CERTS" ]; then
                        ok "# SKIP TLS $v cert: no test PKI (MSCE_TEST_CERTS)"
                        return
                fi
                sopts+=(-cert "$CERTS/server.pem" -key "$CERTS/server.key" -CAfile "$CERTS/ca.pem" -Verify 1
                        -cipher ECDHE-ECDSA-AES128-SHA256 -ciphersuites TLS_AES_128_GCM_SHA256)
        else
                sopts+=(-nocert -psk "$KPM" -psk_identity "$ID" -cipher ECDHE-PSK-AES128-CBC-SHA256
                        -ciphersuites TLS_AES_128_GCM_SHA256)
        fi
        [ -n "${SGROUPS:-}" ] && sopts+=(-groups "$SGROUPS")
        want=$v
        [ "$v" = dual ] && want=1.3
        v="$v $mode${3:+ ($3)}${SGROUPS:+ (MEF groups $SGROUPS)}"
        # Up to three connections: TLS 1.3 offer, TLS 1.2 retry, P-256 retry (docs/protocol.md).
        if ! start_server "${sopts[@]}" -naccept 3; then
                not_ok "TLS $v: openssl s_server did not start"
                return
        fi
        agent_conf "$mode" "${3:-}"
        "$AGENT" --once -c "$T/agent.conf" > "$T/agent.out" 2> "$T/agent.err" &
        APID=$!
        # The keying material is printed after the handshake, the request when it arrives.
        if ! wait_line 30 "$T/s_server.out" '"msce:enrolReq"' $SPID; then
                not_ok "TLS $v: no enrolment request reached s_server"
                return
        fi
        ekm=$(sed -n 's/^ *Keying material: *\([0-9A-Fa-f]*\).*$/\1/p' "$T/s_server.out" | tr A-F a-f)
        ri=$(sed -n 's/^X-M2M-RI: *\([^[:space:]]*\).*$/\1/p' "$T/s_server.out" | head -n 1)
        if [ ${#ekm} -ne 96 ] || [ -z "$ri" ]; then
                not_ok "TLS $v: no 48-byte keying material or no X-M2M-RI in s_server's output"
                return
        fi
        rel=${ekm:0:32}
        ke=${ekm:32:64}
        # One write: s_server reads it in one piece and sends it on.
        response "$ri" "$rel" >&3
        wait $APID
        rc=$?
        APID=
        kill $SPID 2> /dev/null
        wait $SPID
        SPID=

        if [ $rc -ne 0 ]; then
                not_ok "TLS $v: msce-agent exit $rc (key confirmation against OpenSSL's exporter?)"
                return
        fi
        keid=$(sed -n 's/^  KeID: *//p' "$T/agent.out")
        tls=$(sed -n 's/^  TLS: *//p' "$T/agent.out")
        case $tls in
        "TLSv$want "*) ;;
        *) not_ok "TLS $v: the agent negotiated '$tls'"; return ;;
        esac
        if [ "$keid" = "$rel@$FQDN" ]; then
                ok "TLS $v ($tls): the agent accepts keID = OpenSSL's EKM[0..16) and prints KeID $keid"
        else
                not_ok "TLS $v: the agent prints KeID '$keid', OpenSSL's EKM[0..16) gives $rel@$FQDN"
        fi
        ltk=$(key_of ltk)
        if [ "$ltk" = "$ke" ]; then
                ok "TLS $v: msce:ltk (Ke) = OpenSSL's EKM[16..48)"
        else
                not_ok "TLS $v: msce:ltk is not OpenSSL's EKM[16..48) ($(cat "$T/keyctl.err"))"
        fi
        kpsa=$(key_of "kpsa:$rel.1@$FQDN")
        want=$(printf '%s%s' "$LABEL" "$TARGET" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$ke" |
                sed 's/^.*= *//')
        if [ ${#want} -ne 64 ]; then
                not_ok "TLS $v: openssl dgst gave no HMAC"
        elif [ "$kpsa" = "$want" ]; then
                ok "TLS $v: msce:kpsa:$rel.1@$FQDN = HMAC-SHA-256(EKM[16..48), label || $TARGET) by openssl dgst"
        else
                not_ok "TLS $v: msce:kpsa:$rel.1@$FQDN is not HMAC-SHA-256(EKM[16..48), label || $TARGET)"
        fi
        # Neither the Kpm nor Ke in what the agent printed.
        if grep -qiF -e "$KPM" -e "$ke" -e "$want" "$T/agent.out" "$T/agent.err"; then
                not_ok "TLS $v: key bytes in the agent's output"
        else
                ok "TLS $v: neither Kpm, Ke nor Kpsa (hex) in the agent's output"
        fi
}

# verdict NAME EXIT ERE: the agent as configured against the s_server started: exit status EXIT
# and a message matching ERE.
verdict() {
        "$AGENT" --once -c "$T/agent.conf" > "$T/agent.out" 2> "$T/agent.err"
        rc=$?
        kill $SPID 2> /dev/null
        wait $SPID
        SPID=
        if [ $rc -ne "$2" ]; then
                not_ok "$1: msce-agent exit $rc, want $2"
        elif ! grep -qE "$3" "$T/agent.err"; then
                not_ok "$1: the message does not match /$3/"
        else
                ok "$1: exit $rc"
        fi
}

# refuse NAME EXIT ERE SERVER-OPTIONS...: a psk agent with the default versions against an
# s_server it cannot agree with: exit status EXIT and a message matching ERE.
refuse() {
        name=$1 want_rc=$2 ere=$3
        shift 3
        if ! start_server -nocert -psk "$KPM" -psk_identity "$ID" -naccept 3 "$@"; then
                not_ok "$name: openssl s_server did not start"
                return
        fi
        agent_conf psk "${PIN:-}"
        verdict "$name" "$want_rc" "$ere"
}

# refuse_cert NAME CERT SERVER-OPTIONS...: a cert agent against an s_server presenting CERT of
# the test PKI (signed by the agent's trust anchor): a certificate the agent refuses, or a MEF
# that refuses the agent's: rejected (77), not retried fast.
refuse_cert() {
        name=$1 crt=$2
        shift 2
        if [ -z "$CERTS" ]; then
                ok "# SKIP $name: no test PKI (MSCE_TEST_CERTS)"
                return
        fi
        if ! start_server -cert "$CERTS/$crt.pem" -key "$CERTS/$crt.key" -naccept 1 "$@"; then
                not_ok "$name: openssl s_server did not start"
                return
        fi
        agent_conf cert ""
        verdict "$name" 77 "failed \(rejected\): TLS authentication failed: the MEF refused our certificate, or its own did not verify"
}

CERTS=${MSCE_TEST_CERTS:-}
[ -n "$CERTS" ] && [ -r "$CERTS/client.key" ] || CERTS=

run 1.2 psk
run 1.3 psk
run dual psk
run 1.2 psk "tls_max_version = 1.2"
SGROUPS=P-256 run 1.2 psk
SGROUPS=P-256 run 1.2 psk "tls_max_version = 1.2"
SGROUPS=P-256 run 1.3 psk
run 1.2 cert
run 1.3 cert
run dual cert

OFFER='TLS 1.2-1.3 \(1\.3: PSK with \(EC\)DHE\); suites TLS_AES_128_GCM_SHA256, TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256; groups X25519, P-256'
NONE="failed \(incompatible\): TLS: the MEF accepted none of what this agent offers \($OFFER\)"
# Before its ServerHello, handshake_failure from a TLS 1.2 server without a shared suite is the
# same as from a TLS 1.3 server that does not know the identity: both are named.
EITHER="$NONE, or it does not know PSK identity $ID \(before its ServerHello a TLS 1.3 MEF says both the same way\)$"
refuse "TLS 1.2 MEF with TLS_PSK_WITH_AES_128_CBC_SHA256 only" 76 "$EITHER" -tls1_2 -cipher PSK-AES128-CBC-SHA256
refuse "TLS 1.3 MEF with TLS_AES_256_GCM_SHA384 only" 76 "$EITHER" -tls1_3 -ciphersuites TLS_AES_256_GCM_SHA384
refuse "TLS 1.3 MEF with group P-384 only" 76 "$EITHER" -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -groups P-384
# TLS 1.2 ECDHE-PSK without a shared group: OpenSSL aborts after its ServerHello, before the
# identity is sent: not the credential, and nothing else to name.
refuse "TLS 1.2 MEF with group P-384 only" 76 "$NONE$" -tls1_2 -cipher ECDHE-PSK-AES128-CBC-SHA256 -groups P-384
# A TLS 1.3-only MEF and an agent pinned to TLS 1.2: protocol_version.
PIN="tls_max_version = 1.2" refuse "TLS 1.3 MEF, agent pinned to TLS 1.2" 76 \
        "failed \(incompatible\): TLS: the MEF accepted none of what this agent offers \(TLS 1\.2; " \
        -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
# Another key at the MEF: still rejected (77), over TLS 1.2 (bad_record_mac) and TLS 1.3.
KPM_AGENT=$KPM
KPM=$(openssl rand -hex 32)
refuse "TLS 1.2 MEF with another Kpm" 77 \
        "failed \(rejected\): TLS authentication failed: the MEF refused PSK identity $ID, or the keys differ" \
        -tls1_2 -cipher ECDHE-PSK-AES128-CBC-SHA256
refuse "TLS 1.3 MEF with another Kpm" 77 \
        "failed \(rejected\): TLS authentication failed: the MEF refused PSK identity $ID, or the keys differ" \
        -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256
KPM=$KPM_AGENT
# MEF certificates the agent's verification refuses although they chain to its trust anchor and
# name the MEF (wolfSSL: EXTKEYUSE_AUTH_E, ASN_CRIT_EXT_E): an authentication failure.
refuse_cert "TLS 1.2 MEF certificate for clientAuth only" clientauth-server -tls1_2
refuse_cert "TLS 1.3 MEF certificate for clientAuth only" clientauth-server -tls1_3
refuse_cert "TLS 1.2 MEF certificate with an unknown critical extension" critext-server -tls1_2
refuse_cert "TLS 1.3 MEF certificate with an unknown critical extension" critext-server -tls1_3
# keyUsage without digitalSignature: the key must not sign (RFC 8446 4.4.2.2). OpenSSL does not
# choose an ECDSA suite in TLS 1.2 with it (incompatible, 76), but signs in TLS 1.3.
refuse_cert "TLS 1.3 MEF certificate for key agreement only" keyagree-server -tls1_3
# A MEF that does not trust the device certificate (OpenSSL: unknown_ca). In TLS 1.3 the
# client's handshake is over before the MEF has judged its certificate: the alert comes where
# the response should.
refuse_cert "TLS 1.2 MEF that does not trust the device certificate" server -tls1_2 -Verify 1 -verify_return_error \
        -CAfile "$CERTS/rogue-ca.pem"
refuse_cert "TLS 1.3 MEF that does not trust the device certificate" server -tls1_3 -Verify 1 -verify_return_error \
        -CAfile "$CERTS/rogue-ca.pem"
# mscectl check against a TLS 1.3 MEF in cert mode: the MEF's verdict on the device certificate
# comes after the client's handshake is over; check said "OK" for one that refuses it.
check_tls() { # NAME WANT-ERE SERVER-OPTIONS... (SCERT: the MEF's certificate, default server)
        name=$1 want=$2 scert=${SCERT:-server}
        shift 2
        if [ -z "$CERTS" ]; then
                ok "# SKIP $name: no test PKI (MSCE_TEST_CERTS)"
                return
        fi
        if ! start_server -cert "$CERTS/$scert.pem" -key "$CERTS/$scert.key" -naccept 1 -tls1_3 -Verify 1 "$@"; then
                not_ok "$name: openssl s_server did not start"
                return
        fi
        agent_conf cert ""
        "$B/ctl/mscectl" --config "$T/agent.conf" check --agent-user root > "$T/check.out" 2>&1
        grep -qE "$want" "$T/check.out" && ok "$name" || not_ok "$name: $(grep 'MEF TLS' "$T/check.out")"
        stop_pid "$SPID"
        SPID=
}
check_tls "mscectl check: a TLS 1.3 MEF that does not trust the device certificate: FAIL" \
        '^FAIL +MEF TLS: authentication failed \(cert mode\)$' -verify_return_error -CAfile "$CERTS/rogue-ca.pem"
check_tls "mscectl check: a TLS 1.3 MEF that trusts it: OK" '^OK +MEF TLS: TLSv1\.3 .* \(cert mode\)$' \
        -verify_return_error -CAfile "$CERTS/ca.pem"
# A MEF named localhost whose certificate says so in its subject CN only, with no SAN: not
# the MEF's (RFC 9525 6.3; a device certificate from the same CA may have any CN).
FQDN=localhost refuse_cert "MEF certificate naming the MEF in its CN only" cn-dns-server
# A partial wildcard names nothing (RFC 9525 6.3: a wildcard only as the whole left-most label):
# DNS:local* is not localhost's, although wolfSSL's own match takes it.
FQDN=localhost refuse_cert "MEF certificate with a partial wildcard (DNS:local*)" wild-local-server
# mscectl check builds its TLS context as the agent does, with the same name check.
FQDN=localhost SCERT=wild-local-server check_tls \
        "mscectl check: a MEF certificate with a partial wildcard (DNS:local*): FAIL" \
        '^FAIL +MEF TLS: authentication failed \(cert mode\)$'
tap_done

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The interoperability matrix (issue 10): msce-agent and msce-mef each against two TLS stacks
# that are not wolfSSL, through small peers written on their APIs (peer-openssl.c on libssl,
# peer-gnutls.c on GnuTLS; options in peer-common.h). No msce code is in the checking path: the
# peers compute EKM, KeID, Ke and Kpsa from their own exporter and HMAC.
#   side mef: the peer is the MEF's TLS end and serves the scripted 201 (protocol section 3.1);
#             the real `msce-agent --once --config FILE` enrols. Enrolled: the agent's KeID (its
#             --once output) = the peer's EKM[0..16) "@127.0.0.1", the keyring key msce:ltk = the
#             peer's EKM[16..48) and msce:kpsa:<kpsaID> = the peer's HMAC-SHA-256(Ke, label ||
#             /in-cse), read by the CSE user as docs/cse-integration.md does.
#   side gw:  the peer is a gateway against the real `msce-mef serve`. Enrolled: the profile's
#             keID = the peer's EKM[0..16) "@mef.test", and the Kpsa the MEF hands to the target
#             /in-cse through fetchCredentials (3.4, the target's own PSK) = the peer's HMAC.
# Otherwise the cell must end in the expected refusal: exit code and message of the agent (side
# mef), or the peer's failure and the MEF's log line (side gw).
# Prints the matrix (cell, peer library, negotiated, result, exit, message) and fails when a cell
# deviates from EXPECT below. Usage: interop-matrix.sh BUILDDIR [CELL-ERE] (only matching cells).
# TAP, a test per cell. Skipped without root, keyctl, su, jq, openssl, the test certificates or any peer.
set -u

# ---- expectations: one cell a line, ";"-separated; easy to adjust --------------------------------
# peers:  all, openssl or gnutls (a peer-specific line replaces nothing: name cells apart), with
#         /5.5 or /5.7 when the cell holds only for the wolfSSL msce is built with: 5.5 = up to
#         5.5.4 (Debian 12), 5.7 = newer (Debian 13's 5.7.2; the versions between are not
#         measured). From MSCE_WOLFSSL_VERSION (meson: the wolfssl dependency's version).
# side:   mef (peer = server, agent = client) or gw (peer = client, msce-mef = server)
# auth:   psk | psk-wrong-key | psk-unknown-id | cert-ecdsa | cert-rsa
# peer:   the peer's options (peer-common.h): -V versions, -s TLS 1.2 suites, -g groups, -k TLS 1.3
#         psk modes; credentials are added from auth
# agent:  an extra agent [mef] line ("-": none; the agent's default versions 1.2..1.3)
# expect: enrolled | incompatible | rejected | transient | refused (side gw: the MEF answered no
#         enrolment)
# exit:   side mef: msce-agent's exit code; side gw: the peer's (1 handshake failed, 3 no answer)
# message: ERE the refusal must match (side mef: the agent's stderr; side gw: the MEF's log), or
#         for enrolled cells the negotiation the peer must report ("HANDSHAKE ok ..." line)
# note:   a known deviation the cell shows (docs/interop.md, "Known deviations"); printed as
#         FAIL(awaits NOTE) when such a cell deviates from its expectation:
#         k = wolfSSL 5.5.4 lists psk_ke (first) besides psk_dhe_ke in every TLS 1.3 PSK offer and no
#             option removes it; a server that follows the client's order (GnuTLS with plain PSK
#             allowed) picks psk_ke, which the agent refuses as incompatible (docs/protocol.md).
#             wolfSSL 5.7 offers psk_dhe_ke alone (wolfSSL_CTX_only_dhe_psk): those servers take
#             it, and a psk_ke-only server can only abort the handshake, which the agent cannot
#             tell from a refused key (its message names both)
#         u = a TLS 1.3 server that does not know the identity says so only ambiguously: OpenSSL
#             with handshake_failure before its ServerHello (also "nothing in common"), GnuTLS with
#             internal_error; the agent's message names both possibilities
EXPECT=$(cat <<'EOF'
# peers;side;auth        ;peer options                    ;agent                ;expect      ;rc;message or negotiation (ERE)                                     ;note
all    ;mef;psk           ;-V 1.2 -s ecdhe-psk-cbc         ;-                    ;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 .*kex=ecdhe-psk                    ;
all    ;mef;psk           ;-V 1.2 -s ecdhe-psk-cbc -g p256 ;-                    ;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 group=(secp256r1|SECP256R1)      ;
all    ;mef;psk           ;-V 1.2 -s ecdhe-psk-cbc -g x25519;-                   ;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 group=(x25519|X25519)            ;
all    ;mef;psk           ;-V 1.2                          ;-                    ;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256                                  ;
all    ;mef;psk           ;-V 1.2 -s psk-cbc               ;-                    ;incompatible;76;failed \(incompatible\): .*offer                                   ;
all    ;mef;psk           ;-V 1.2 -s psk-gcm               ;-                    ;incompatible;76;failed \(incompatible\): .*offer                                   ;
all    ;mef;psk           ;-V 1.2 -s psk-cbc,psk-gcm       ;-                    ;incompatible;76;failed \(incompatible\): .*offer                                   ;
all    ;mef;psk           ;-V 1.2 -s ecdhe-psk-cbc         ;tls_max_version = 1.2;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256                                  ;
all    ;mef;psk           ;-V 1.2 -s ecdhe-psk-cbc -g x25519;tls_max_version = 1.2;enrolled   ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 group=(x25519|X25519)            ;
all    ;mef;psk           ;-V 1.3                          ;-                    ;enrolled    ;0 ;TLS_AES_128_GCM_SHA256 group=(x25519|X25519) kex=psk_dhe_ke hrr=no      ;
all    ;mef;psk           ;-V 1.3 -g p256                  ;-                    ;enrolled    ;0 ;TLS_AES_128_GCM_SHA256 group=(secp256r1|SECP256R1) kex=psk_dhe_ke hrr=yes;
all    ;mef;psk           ;-V 1.3 -g x25519                ;-                    ;enrolled    ;0 ;TLS_AES_128_GCM_SHA256 group=(x25519|X25519) kex=psk_dhe_ke hrr=no      ;
gnutls/5.5;mef;psk        ;-V 1.3 -k ke                    ;-                    ;incompatible;76;failed \(incompatible\): .*without \(EC\)DHE \(psk_ke\)                 ;k
gnutls/5.7;mef;psk        ;-V 1.3 -k ke                    ;-                    ;rejected    ;77;failed \(rejected\): .*or it allows TLS 1.3 PSK only without \(EC\)DHE  ;k
openssl;mef;psk           ;-V 1.3 -k dhe,ke                ;-                    ;enrolled    ;0 ;kex=psk_dhe_ke                                                         ;
gnutls/5.5;mef;psk        ;-V 1.3 -k dhe,ke                ;-                    ;incompatible;76;failed \(incompatible\): .*without \(EC\)DHE \(psk_ke\)                 ;k
gnutls/5.7;mef;psk        ;-V 1.3 -k dhe,ke                ;-                    ;enrolled    ;0 ;TLS_AES_128_GCM_SHA256 .*kex=psk_dhe_ke                                ;
all    ;mef;psk           ;-V 1.3                          ;tls_max_version = 1.2;incompatible;76;failed \(incompatible\): .*offer                                   ;
openssl;mef;psk           ;-V 1.2-1.3                      ;-                    ;enrolled    ;0 ;TLSv?1.3 TLS_AES_128_GCM_SHA256 .*kex=psk_dhe_ke                       ;
gnutls/5.5;mef;psk        ;-V 1.2-1.3                      ;-                    ;incompatible;76;failed \(incompatible\): .*without \(EC\)DHE \(psk_ke\)                 ;k
gnutls/5.7;mef;psk        ;-V 1.2-1.3                      ;-                    ;enrolled    ;0 ;TLSv?1.3 TLS_AES_128_GCM_SHA256 .*kex=psk_dhe_ke                       ;
all    ;mef;psk           ;-V 1.2-1.3 -s ecdhe-psk-cbc     ;-                    ;enrolled    ;0 ;TLSv?1.3 TLS_AES_128_GCM_SHA256 group=(x25519|X25519) kex=psk_dhe_ke hrr=no;
openssl;mef;psk           ;-V 1.2-1.3 -g p256              ;-                    ;enrolled    ;0 ;TLSv?1.3 .*kex=psk_dhe_ke hrr=yes                                      ;
gnutls/5.5;mef;psk        ;-V 1.2-1.3 -g p256              ;-                    ;incompatible;76;failed \(incompatible\): .*without \(EC\)DHE \(psk_ke\)                 ;k
gnutls/5.7;mef;psk        ;-V 1.2-1.3 -g p256              ;-                    ;enrolled    ;0 ;TLSv?1.3 .*kex=psk_dhe_ke hrr=yes                                      ;
all    ;mef;psk-wrong-key ;-V 1.3                          ;-                    ;rejected    ;77;failed \(rejected\): TLS authentication failed                     ;
openssl;mef;psk-unknown-id;-V 1.3                          ;-                    ;incompatible;76;failed \(incompatible\): .*or it does not know PSK identity         ;u
gnutls ;mef;psk-unknown-id;-V 1.3                          ;-                    ;transient   ;75;failed \(transient\): .*internal_error.*does not know PSK identity  ;u
all    ;mef;psk-wrong-key ;-V 1.2 -s ecdhe-psk-cbc         ;tls_max_version = 1.2;rejected    ;77;failed \(rejected\): TLS authentication failed                     ;
all    ;mef;cert-ecdsa    ;-V 1.3                          ;-                    ;enrolled    ;0 ;TLSv?1.3 .*kex=ecdhe-cert .*peer-cert=yes                              ;
all    ;mef;cert-ecdsa    ;-V 1.2                          ;-                    ;enrolled    ;0 ;TLS_ECDHE_ECDSA_WITH_AES_128_(GCM|CBC)_SHA256 .*peer-cert=yes          ;
all    ;mef;cert-ecdsa    ;-V 1.2 -s ecdsa-cbc             ;-                    ;enrolled    ;0 ;TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 .*peer-cert=yes                ;
all    ;mef;cert-rsa      ;-V 1.3                          ;-                    ;enrolled    ;0 ;TLSv?1.3 .*kex=ecdhe-cert .*peer-cert=yes                              ;
all    ;mef;cert-rsa      ;-V 1.2                          ;-                    ;enrolled    ;0 ;TLS_ECDHE_ECDSA_WITH_AES_128_(GCM|CBC)_SHA256 .*peer-cert=yes          ;
all    ;gw ;psk           ;-V 1.2 -s ecdhe-psk-cbc         ;-                    ;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256                                  ;
all    ;gw ;psk           ;-V 1.2 -s ecdhe-psk-cbc -g p256 ;-                    ;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 group=(secp256r1|SECP256R1)      ;
all    ;gw ;psk           ;-V 1.2 -s ecdhe-psk-cbc -g x25519;-                   ;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256 group=(x25519|X25519)            ;
all    ;gw ;psk           ;-V 1.2                          ;-                    ;enrolled    ;0 ;TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256                                  ;
all    ;gw ;psk           ;-V 1.2 -s psk-cbc               ;-                    ;refused     ;1 ;TLS handshake failed                                                   ;
all    ;gw ;psk           ;-V 1.2 -s psk-gcm               ;-                    ;refused     ;1 ;TLS handshake failed                                                   ;
all    ;gw ;psk           ;-V 1.3                          ;-                    ;enrolled    ;0 ;TLS_AES_128_GCM_SHA256 group=(x25519|X25519) kex=psk_dhe_ke hrr=no      ;
all    ;gw ;psk           ;-V 1.3 -g p256                  ;-                    ;enrolled    ;0 ;TLS_AES_128_GCM_SHA256 group=(secp256r1|SECP256R1) kex=psk_dhe_ke       ;
all    ;gw ;psk           ;-V 1.3 -g p256,x25519           ;-                    ;enrolled    ;0 ;kex=psk_dhe_ke                                                         ;
gnutls/5.5;gw ;psk        ;-V 1.3 -k ke                    ;-                    ;refused     ;3 ;TLS handshake failed                                                   ;
gnutls/5.7;gw ;psk        ;-V 1.3 -k ke                    ;-                    ;refused     ;1 ;TLS handshake failed: protocol error                                   ;
all    ;gw ;psk           ;-V 1.3 -k dhe,ke                ;-                    ;enrolled    ;0 ;kex=psk_dhe_ke                                                         ;
all    ;gw ;psk           ;-V 1.2-1.3                      ;-                    ;enrolled    ;0 ;TLSv?1.3 TLS_AES_128_GCM_SHA256 .*kex=psk_dhe_ke                       ;
all    ;gw ;psk-wrong-key ;-V 1.3                          ;-                    ;refused     ;1 ;TLS handshake failed: authentication failed                            ;
all    ;gw ;psk-unknown-id;-V 1.3                          ;-                    ;refused     ;1 ;TLS handshake failed: authentication failed                            ;
all    ;gw ;psk-wrong-key ;-V 1.2 -s ecdhe-psk-cbc         ;-                    ;refused     ;1 ;TLS handshake failed: authentication failed                            ;
all    ;gw ;cert-ecdsa    ;-V 1.3                          ;-                    ;enrolled    ;0 ;TLSv?1.3 .*kex=ecdhe-cert .*peer-cert=yes                              ;
all    ;gw ;cert-ecdsa    ;-V 1.2                          ;-                    ;enrolled    ;0 ;TLS_ECDHE_ECDSA_WITH_AES_128_(GCM|CBC)_SHA256 .*peer-cert=yes          ;
all    ;gw ;cert-ecdsa    ;-V 1.2 -s ecdsa-cbc             ;-                    ;enrolled    ;0 ;TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256 .*peer-cert=yes                ;
all    ;gw ;cert-rsa      ;-V 1.3                          ;-                    ;enrolled    ;0 ;TLSv?1.3 .*kex=ecdhe-cert .*peer-cert=yes                              ;
all    ;gw ;cert-rsa      ;-V 1.2                          ;-                    ;enrolled    ;0 ;TLS_ECDHE_ECDSA_WITH_AES_128_(GCM|CBC)_SHA256 .*peer-cert=yes          ;
EOF
)

[ $# -ge 1 ] || { echo "usage: $0 BUILDDIR [CELL-ERE]" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
ONLY=${2:-}
AGENT=$B/msce-agent
MEF=$B/msce-mef
CERTS=${MSCE_TEST_CERTS:-$B/tests/integration/certs}
LABEL="oneM2M Enrolment Key to Provisioned Secure Connection Key derivation"
TARGET=/in-cse
GW_FQDN=mef.test

. "$(dirname "$0")/lib.sh"
need_exec "$AGENT" "$MEF"
need_root "msce-agent --once files keys in another user's keyring"
need_cmds keyctl su od jq base64 timeout openssl
[ -f "$CERTS/ca.pem" ] && [ -f "$CERTS/client-rsa.pem" ] || skip_all "no test certificates in $CERTS (gen-certs.sh)"
PEERS=()
for p in openssl gnutls; do
        if [ -x "$B/tests/integration/peer-$p" ]; then PEERS+=("$p")
        else echo "# peer-$p not built (library missing at configure time): its cells are skipped"; fi
done
[ ${#PEERS[@]} -gt 0 ] || skip_all "no peer built (needs libssl-dev or libgnutls28-dev)"
own_session "$@"
# A user of this run's own (msce-t<PID>-interop): not shared with a run of the same test in
# another build directory or worktree.
CSE_USER=$(test_user interop) || skip_all "cannot create a test user"
test_user_cleanup $CSE_USER
CSE_UID=$(id -u $CSE_USER)

umask 077
tmpdir msce-test-interop
LIB_SHOW= # a failed cell shows the peer's and the agent's output itself
PPID_=
at_exit 'stop_pid "$PPID_"'

# wait_for_line FILE ERE PID: until FILE has a line matching ERE (20 s), or PID is gone.
wait_for_line() { wait_line 20 "$@"; }
# reap PID: wait up to 5 s for PID to exit by itself, then kill it; the exit status in $?
reap() {
        local i
        for ((i = 0; i < 100; i++)); do
                kill -0 "$1" 2> /dev/null || break
                sleep 0.05
        done
        kill "$1" 2> /dev/null
        wait "$1"
}
# stop_peer PID: the agent is done, so a peer acting as the MEF takes no further connection
# (SIGTERM) and exits once the one it serves is over; its exit status in $?
stop_peer() {
        kill -TERM "$1" 2> /dev/null
        wait "$1"
}
hmac() { # HEXKEY TEXT: HMAC-SHA-256, by openssl dgst when a second opinion is wanted
        printf '%s' "$2" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$1" | sed 's/^.*= *//'
}
field() { sed -n "s/^$1 //p" "$2" | head -n 1; }

# ---- credentials ----
KPM_ID=msce-test-interop-kpm
openssl rand -hex 32 > "$T/kpm.hex"
openssl rand -hex 32 > "$T/wrong.hex"
KPM=$(tr -d '\n' < "$T/kpm.hex")

# The CSE's recipe of docs/cse-integration.md as the service user: msce:ltk and msce:kpsa:ID, hex.
read_keys() { # KPSA-ID: two lines, Ke and Kpsa
        su -s /bin/sh $CSE_USER -c 'keyctl session - /bin/sh -s' 2> "$T/keyctl.err" << KEYCTL
set -e
keyctl get_persistent @s > /dev/null
ring=\$(keyctl search @s keyring msce)
keyctl pipe "\$(keyctl search "\$ring" user msce:ltk)" | od -An -tx1 -v | tr -d ' \n'; echo
keyctl pipe "\$(keyctl search "\$ring" user "msce:kpsa:$1")" | od -An -tx1 -v | tr -d ' \n'; echo
KEYCTL
}

# ---- the MEF for side gw: psk and cert nodes, the target /in-cse with its own PSK ----
mef_setup() {
        FQDN=$GW_FQDN mef_conf "[tls]" "certificate = $CERTS/server.pem" "key = $CERTS/server.key" \
                "client_ca = $CERTS/ca.pem"
        local m=("$MEF" --config "$MEF_CONF")
        { "${m[@]}" init &&
          "${m[@]}" target add $TARGET --psk-id msce-test-interop-in-cse --generate-psk "$T/tpsk.hex" &&
          "${m[@]}" node add urn:dev:ops:interop-psk --cse-id /mn-cse-psk --cse-base https://in.example.net/~/in-cse \
                --psk-id $KPM_ID --psk-file "$T/kpm.hex" --target $TARGET &&
          "${m[@]}" node add urn:dev:ops:interop-ecdsa --cse-id /mn-cse-ecdsa --cse-base https://in.example.net/~/in-cse \
                --cert "$CERTS/client.pem" --target $TARGET &&
          "${m[@]}" node add urn:dev:ops:interop-rsa --cse-id /mn-cse-rsa --cse-base https://in.example.net/~/in-cse \
                --cert "$CERTS/client-rsa.pem" --target $TARGET; } > "$T/mefctl.log" 2>&1 ||
                { cat "$T/mefctl.log"; return 1; }
        mef_serve
}
# mef_serve: a fresh msce-mef process on the same store, for one cell: its log caps failure
# lines per source and overall per 10 s (bounded logs), and a cell must find its own line.
mef_serve() {
        mef_stop
        PORT=
        mef_start "$T/mef.conf.in" > /dev/null || return 1
        MEF_PORT=$PORT
}

# ---- one cell ----
# Sets: NEG (the peer's HANDSHAKE line), RESULT, RC, MSG, VERDICT
N_FAIL=0
ROWS=()
VERSIONS=()

cell_mef() { # PEER AUTH PEER-OPTS AGENT-EXTRA
        local peer=$1 auth=$2 popts=$3 extra=$4 cred=() acred=() l
        case $auth in
        psk) cred=(-i $KPM_ID -p "$T/kpm.hex") ;;
        psk-wrong-key) cred=(-i $KPM_ID -p "$T/wrong.hex") ;;
        psk-unknown-id) cred=(-i msce-test-interop-other -p "$T/kpm.hex") ;;
        cert-*) cred=(-c "$CERTS/server.pem" -K "$CERTS/server.key" -a "$CERTS/ca.pem") ;;
        esac
        case $auth in
        psk*) acred=("psk_identity = $KPM_ID" "psk_file = $T/kpm.hex") ;;
        cert-ecdsa) acred=("mode = cert" "certificate = $CERTS/client.pem" "key = $CERTS/client.key"
                           "trust_anchors = $CERTS/ca.pem") ;;
        cert-rsa) acred=("mode = cert" "certificate = $CERTS/client-rsa.pem" "key = $CERTS/client-rsa.key"
                         "trust_anchors = $CERTS/ca.pem") ;;
        esac
        rm -rf "$T/state" "$T/run" "$T/peer.out" "$T/agent.out" "$T/agent.err"
        # shellcheck disable=SC2086
        "$B/tests/integration/peer-$peer" server $popts "${cred[@]}" > "$T/peer.out" 2>&1 &
        PPID_=$!
        if ! wait_for_line "$T/peer.out" '^PORT [0-9]+$' $PPID_; then
                NEG=-; RESULT=error; RC=-; MSG="the peer did not start: $(tr '\n' ' ' < "$T/peer.out")"
                reap $PPID_; PPID_=
                return
        fi
        {
                printf '[node]\nid = urn:dev:ops:interop\n[mef]\nuri = https://127.0.0.1:%s/msce\n' "$(field PORT "$T/peer.out")"
                for l in "${acred[@]}"; do printf '%s\n' "$l"; done
                if [ "$extra" != - ]; then printf '%s\n' "$extra"; fi
                agent_custody $CSE_USER "$T/state" "$T/run"
                printf '[timing]\nconnect_timeout = 5s\nexchange_timeout = 15s\n'
        } > "$T/agent.conf"
        timeout 30 "$AGENT" --once --config "$T/agent.conf" > "$T/agent.out" 2> "$T/agent.err"
        RC=$?
        stop_peer $PPID_
        local prc=$?
        PPID_=
        # the last connection's: a TLS 1.2 retry comes after the first one's failure
        NEG=$(sed -n 's/^HANDSHAKE //p' "$T/peer.out" | tail -n 1)
        [ -n "$NEG" ] || NEG="- (peer exit $prc)"
        if [ $RC -ne 0 ]; then
                RESULT=refused
                case $RC in 75) RESULT=transient ;; 76) RESULT=incompatible ;; 77) RESULT=rejected ;; 78) RESULT=config ;; esac
                MSG=$(grep -m1 'failed (' "$T/agent.err" | sed 's/^msce-agent: enrolment with MEF [^ ]* //')
                [ -n "$MSG" ] || MSG=$(head -n 1 "$T/agent.err")
                return
        fi
        # enrolled: KeID, Ke and Kpsa against the peer's own exporter and HMAC
        local keid ke kpsa rel got
        keid=$(field KEID "$T/peer.out"); ke=$(field KE "$T/peer.out"); kpsa=$(field KPSA "$T/peer.out")
        rel=${keid%@*}
        RESULT=enrolled
        MSG="KeID $keid"
        if [ "$(sed -n 's/^  KeID: *//p' "$T/agent.out")" != "$keid" ]; then
                RESULT=mismatch; MSG="agent KeID '$(sed -n 's/^  KeID: *//p' "$T/agent.out")' != peer's $keid"; return
        fi
        mapfile -t got < <(read_keys "$rel.1@127.0.0.1")
        if [ "${got[0]:-}" != "$ke" ]; then
                RESULT=mismatch; MSG="msce:ltk != peer's EKM[16..48) ($(grep -v '^Joined' "$T/keyctl.err" | head -c 200))"; return
        fi
        if [ "${got[1]:-}" != "$kpsa" ] || [ "$kpsa" != "$(hmac "$ke" "$LABEL$TARGET")" ]; then
                RESULT=mismatch; MSG="msce:kpsa:$rel.1@127.0.0.1 != peer's HMAC-SHA-256(Ke, label || $TARGET)"; return
        fi
        if grep -qiF -e "$KPM" -e "$ke" -e "$kpsa" "$T/agent.out" "$T/agent.err"; then
                RESULT=leak; MSG="key bytes in the agent's output"; return
        fi
        MSG="KeID, msce:ltk, msce:kpsa = peer's; agent: $(sed -n 's/^  TLS: *//p' "$T/agent.out")"
}

cell_gw() { # PEER AUTH PEER-OPTS
        local peer=$1 auth=$2 popts=$3 cred=() node=urn:dev:ops:interop-psk log0
        case $auth in
        psk) cred=(-i $KPM_ID -p "$T/kpm.hex") ;;
        psk-wrong-key) cred=(-i $KPM_ID -p "$T/wrong.hex") ;;
        psk-unknown-id) cred=(-i msce-test-interop-other -p "$T/kpm.hex") ;;
        cert-ecdsa) cred=(-c "$CERTS/client.pem" -K "$CERTS/client.key" -a "$CERTS/ca.pem" -n $GW_FQDN)
                    node=urn:dev:ops:interop-ecdsa ;;
        cert-rsa) cred=(-c "$CERTS/client-rsa.pem" -K "$CERTS/client-rsa.key" -a "$CERTS/ca.pem" -n $GW_FQDN)
                  node=urn:dev:ops:interop-rsa ;;
        esac
        mef_serve || { RESULT=error; RC=-; NEG=-; MSG="msce-mef did not start: $(tail -n 3 "$T/mef.err")"; return; }
        log0=0
        # shellcheck disable=SC2086
        timeout 30 "$B/tests/integration/peer-$peer" client -P "$MEF_PORT" -f $GW_FQDN \
                -N $node $popts "${cred[@]}" > "$T/peer.out" 2>&1
        RC=$?
        NEG=$(field HANDSHAKE "$T/peer.out")
        [ -n "$NEG" ] || NEG=-
        local status
        status=$(field STATUS "$T/peer.out")
        if [ $RC -ne 0 ] || [ "${status%% *}" != 201 ]; then
                RESULT=refused
                # the MEF's line about this connection's failure (logged when it gives up on it; an
                # earlier cell's exchange line may come in between)
                local i line=
                for ((i = 0; i < 100; i++)); do
                        line=$(tail -n +$((log0 + 1)) "$T/mef.err" |
                                grep -m1 -E ': (TLS handshake failed|closed during|reading the request|timed out|writing)')
                        [ -n "$line" ] && break
                        sleep 0.05
                done
                MSG="MEF: ${line:-(nothing logged)}"
                MSG=$(sed 's/MEF: .*127\.[0-9.]*:[0-9]*: /MEF: /' <<< "$MSG")
                [ -n "$status" ] && MSG="$MSG; HTTP $status"
                return
        fi
        local keid kpsa body_keid key
        keid=$(field KEID "$T/peer.out"); kpsa=$(field KPSA "$T/peer.out")
        body_keid=$(field BODY "$T/peer.out" | jq -r '."msce:profile".keID')
        RESULT=enrolled
        if [ "$body_keid" != "$keid" ]; then
                RESULT=mismatch; MSG="MEF keID $body_keid != peer's EKM[0..16)@$GW_FQDN $keid"; return
        fi
        # the target fetches its Kpsa (TLS 1.3, its own PSK), through the same peer library
        timeout 30 "$B/tests/integration/peer-$peer" client -P "$MEF_PORT" -f $GW_FQDN -V 1.3 -N $TARGET -F "$keid" \
                -i msce-test-interop-in-cse -p "$T/tpsk.hex" > "$T/fetch.out" 2>&1
        key=$(field BODY "$T/fetch.out" | jq -r '."msce:credential".key' 2> /dev/null | base64 -d 2> /dev/null |
                od -An -tx1 -v | tr -d ' \n')
        if [ "$key" != "$kpsa" ] || [ "$kpsa" != "$(hmac "$(field KE "$T/peer.out")" "$LABEL$TARGET")" ]; then
                RESULT=mismatch; MSG="fetchCredentials key '$key' != peer's HMAC-SHA-256(Ke, label || $TARGET) $kpsa"
                return
        fi
        MSG="keID and fetched Kpsa = peer's"
}

# ---- run ----
declare -A LIBS
for peer in "${PEERS[@]}"; do
        LIBS[$peer]=$("$B/tests/integration/peer-$peer" 2> /dev/null | sed -n 's/^LIB //p' | awk '{ print $1, $2 }')
        VERSIONS+=("${LIBS[$peer]}")
done
# the wolfSSL msce is built with (meson sets it; by hand: pkg-config), for the /5.5 and /5.7 cells
WOLF=${MSCE_WOLFSSL_VERSION:-$(pkg-config --modversion wolfssl 2> /dev/null || echo unknown)}
case $WOLF in
[0-4].* | 5.[0-4].* | 5.5.[0-4]) WOLF_SERIES=5.5 ;;
unknown) skip "the wolfSSL version is unknown (MSCE_WOLFSSL_VERSION, pkg-config)" ;;
*) WOLF_SERIES=5.7 ;;
esac
echo "# msce: wolfSSL $WOLF (cells for $WOLF_SERIES); peers: ${VERSIONS[*]}"

mef_setup || bail "msce-mef did not start" "$T/mef.err"
start=$(date +%s%N)
while IFS=';' read -r peers side auth popts extra expect xrc xmsg fix; do
        peers=$(echo $peers); side=$(echo $side); auth=$(echo $auth); popts=$(echo $popts)
        extra=$(echo "$extra" | sed 's/^ *//; s/ *$//'); expect=$(echo $expect); xrc=$(echo $xrc)
        xmsg=$(echo "$xmsg" | sed 's/^ *//; s/ *$//'); fix=$(echo $fix)
        for peer in "${PEERS[@]}"; do
                case $peers in */*) [ "${peers#*/}" = "$WOLF_SERIES" ] || continue ;; esac
                [ "${peers%/*}" = all ] || [ "${peers%/*}" = "$peer" ] || continue
                name="$peer $side $auth $popts"
                [ "$extra" != - ] && name="$name; agent $extra"
                [ -n "$ONLY" ] && ! grep -qE -- "$ONLY" <<< "$name" && continue
                if [ $side = mef ]; then cell_mef $peer $auth "$popts" "$extra"; else cell_gw $peer $auth "$popts"; fi
                verdict=PASS
                # sanitizer builds: a report from the agent or a peer reaches our stderr (the wrapper
                # fails the test on it) and fails the cell
                if grep -lE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T"/peer.out "$T"/agent.err \
                        "$T"/fetch.out > "$T/san" 2> /dev/null; then
                        xargs cat < "$T/san" >&2
                        RESULT=sanitizer; MSG="sanitizer report in $(xargs -n1 basename < "$T/san" | tr '\n' ' ')"
                fi
                rm -f "$T/fetch.out"
                if [ "$RESULT" != "$expect" ] || [ "$RC" != "$xrc" ]; then verdict=FAIL
                elif [ "$expect" = enrolled ] && ! grep -qE -- "$xmsg" <<< "$NEG"; then verdict=FAIL; MSG="negotiated not /$xmsg/; $MSG"
                elif [ "$expect" != enrolled ] && ! grep -qE -- "$xmsg" <<< "$MSG"; then verdict=FAIL; MSG="message not /$xmsg/: $MSG"
                fi
                if [ $verdict = PASS ]; then ok "$name"; else not_ok "$name: $RESULT, exit $RC: $MSG"; fi
                if [ $verdict = FAIL ]; then
                        N_FAIL=$((N_FAIL + 1))
                        # a wrong key is never excused by a pending fix
                        case $RESULT in mismatch | leak | error | sanitizer) ;; *) [ -n "$fix" ] && verdict="FAIL(awaits $fix)" ;; esac
                        sed 's/^/#   peer: /' "$T/peer.out" | head -n 20
                        [ $side = mef ] && sed 's/^/#   agent: /' "$T/agent.err" | head -n 10
                fi
                neg=${NEG#ok }
                neg=${neg% peer-cert=no}
                ROWS+=("$(printf '%-50s | %-14s | %-80s | %-15s | %-12s | %-3s | %-16s | %s' "${name#$peer }" \
                        "${LIBS[$peer]}" "$neg" "$expect/$xrc" "$RESULT" "$RC" "$verdict" "$MSG")")
                echo "# ${ROWS[-1]}"
        done
done < <(grep -v -e '^ *$' -e '^#' <<< "$EXPECT")
elapsed=$((($(date +%s%N) - start) / 1000000))

{
        echo
        echo "Interoperability matrix: msce with wolfSSL $WOLF against $(IFS=,; echo "${VERSIONS[*]}" | sed 's/,/, /g'); ${#ROWS[@]} cells in $elapsed ms"
        printf '%-50s | %-14s | %-80s | %-15s | %-12s | %-3s | %-16s | %s\n' "cell (side auth peer-options)" "peer" \
                "negotiated (the peer's view)" "expected/rc" "result" "rc" "verdict" "message"
        printf '%s\n' "${ROWS[@]}"
        echo "$N_FAIL of ${#ROWS[@]} cells deviate"
} | sed 's/^/# /'
tap_done

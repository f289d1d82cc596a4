#!/bin/sh
# SPDX-License-Identifier: MIT
# The TLS exporter of proto/tls (through tls-probe) against OpenSSL's, TLS 1.2 and 1.3, both
# directions: (a) tls-probe client -> openssl s_server, (b) openssl s_client -> tls-probe
# server. Both ends must print the same 48-byte EXPORTER-oneM2M-Bootstrap value (RFC 5705,
# no context). Usage: exporter-openssl.sh PATH-TO-TLS-PROBE (TAP). Skipped without openssl.
set -u

probe=${1:-}
if [ -z "$probe" ] || [ ! -x "$probe" ]; then
        echo "usage: exporter-openssl.sh PATH-TO-TLS-PROBE" >&2
        exit 99
fi
. "$(dirname "$0")/lib.sh"
need_cmds openssl

umask 077
tmpdir exporter-openssl
tmp=$T
spid=
at_exit 'exec 3>&-; stop_pid "$spid"'

label=EXPORTER-oneM2M-Bootstrap
id=urn:dev:ops:kpm-probe
# A throwaway test key: on openssl's command line only because s_server/s_client take it there.
hex=$(openssl rand -hex 32)
printf '%s\n' "$hex" >"$tmp/psk.hex"
# s_server quits on EOF on stdin: give it a FIFO we hold open.
mkfifo "$tmp/in"
exec 3<>"$tmp/in"

LIB_SHOW= # bad shows them all
bad() { # a failed case, with every output of it
        not_ok "$*"
        for f in "$tmp"/*.out; do
                [ -f "$f" ] || continue
                echo "# ---- $(basename "$f")"
                sed 's/^/#     /' "$f"
        done
}

probe_ekm() { sed -n 's/.*ekm=\([0-9a-fA-F]*\).*/\1/p' "$1" | head -n 1 | tr a-f A-F; }
openssl_ekm() { sed -n 's/.*Keying material: *\([0-9a-fA-F]*\).*/\1/p' "$1" | head -n 1 | tr a-f A-F; }

compare() { # name probe-output openssl-output
        a=$(probe_ekm "$2")
        b=$(openssl_ekm "$3")
        if [ -z "$a" ]; then
                bad "$1: tls-probe printed no ekm"
        elif [ -z "$b" ]; then
                bad "$1: openssl printed no keying material"
        elif [ ${#a} -ne 96 ]; then
                bad "$1: ekm is ${#a} hex digits, not 96"
        elif [ "$a" != "$b" ]; then
                bad "$1: exporter mismatch: tls-probe $a, openssl $b"
        else
                ok "$1: $(sed -n 's/ ekm=.*//p' "$2" | head -n 1) ekm=$a"
        fi
}

for v in 1.2 1.3; do
        if [ "$v" = 1.2 ]; then
                # a suite this wolfSSL has (no static PSK suites in Debian's build)
                sopts="-tls1_2 -cipher ECDHE-PSK-AES128-CBC-SHA256"
                copts=$sopts
        else
                sopts="-tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256"
                copts="-tls1_3"
        fi

        # (a) tls-probe client -> openssl s_server on port 0: it binds, then prints the port
        # it got ("ACCEPT 127.0.0.1:PORT").
        rm -f "$tmp"/*.out
        started=0
        # shellcheck disable=SC2086
        timeout 30 openssl s_server -accept 127.0.0.1:0 -nocert -psk "$hex" -psk_identity "$id" \
                -keymatexport "$label" -keymatexportlen 48 $sopts -naccept 1 \
                <"$tmp/in" >"$tmp/s_server.out" 2>&1 &
        spid=$!
        if wait_line 30 "$tmp/s_server.out" '^ACCEPT' "$spid"; then
                port=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$tmp/s_server.out")
                [ -n "$port" ] && started=1
        fi
        if [ $started -eq 0 ]; then
                kill "$spid" 2>/dev/null
                wait "$spid" 2>/dev/null
                spid=
        fi
        if [ $started -eq 0 ]; then
                bad "TLS $v (a): openssl s_server did not start"
        else
                timeout 30 "$probe" client 127.0.0.1 "$port" --psk-identity "$id" \
                        --psk-hex-file "$tmp/psk.hex" --tls "$v" >"$tmp/tls-probe-client.out" 2>&1
                rc=$?
                wait "$spid"
                spid=
                if [ $rc -ne 0 ]; then
                        bad "TLS $v (a): tls-probe client exited with $rc"
                else
                        compare "TLS $v tls-probe client / openssl s_server" "$tmp/tls-probe-client.out" "$tmp/s_server.out"
                fi
        fi

        # (b) openssl s_client -> tls-probe server (port 0: it picks and prints one).
        rm -f "$tmp"/*.out
        timeout 30 "$probe" server 0 --psk-identity "$id" --psk-hex-file "$tmp/psk.hex" --tls "$v" \
                >"$tmp/tls-probe-server.out" 2>&1 &
        spid=$!
        if ! wait_line 30 "$tmp/tls-probe-server.out" '^port=' "$spid"; then
                bad "TLS $v (b): tls-probe server did not start"
        else
                port=$(sed -n 's/^port=//p' "$tmp/tls-probe-server.out")
                # shellcheck disable=SC2086
                timeout 30 openssl s_client -connect "127.0.0.1:$port" -psk "$hex" -psk_identity "$id" \
                        -keymatexport "$label" -keymatexportlen 48 $copts -ign_eof \
                        </dev/null >"$tmp/s_client.out" 2>&1
                wait "$spid"
                rc=$?
                spid=
                if [ $rc -ne 0 ]; then
                        bad "TLS $v (b): tls-probe server exited with $rc"
                else
                        compare "TLS $v openssl s_client / tls-probe server" "$tmp/tls-probe-server.out" "$tmp/s_client.out"
                fi
        fi
        [ -n "$spid" ] && kill "$spid" 2>/dev/null
        spid=
done

tap_done

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# msce-agent --once in the psk cells of the interoperability matrix (tests/integration/
# interop-matrix.sh), against the OpenSSL and GnuTLS peers as the MEF's TLS end:
#   - peak RSS (ru_maxrss of the agent and its worker, peak-rss.c), target <= 6 MiB;
#   - enrolment latency (fork + exec + wait: process start, configuration, handshake, request,
#     sealing, keyring) against the same peer's own client doing the bare handshake plus one
#     request of the enrolment's size (also fork + exec + wait), median of N interleaved runs.
# A cell where the agent does not enrol is reported with its exit code, not timed.
#   meson test -C BUILD --benchmark --suite bench -v interop
#   or: tests/bench/bench-interop.sh BUILD [N]     (N default 20, or $BENCH_N)
# Needs root (the agent puts keys into the keyring of a user of the run's own, msce-t<PID>-cse).
. "$(dirname "$0")/bench-session.sh"
B=$(cd "$1" && pwd)
n=${2:-${BENCH_N:-20}}
bench_need_root "keyring of another user"
AGENT=$B/msce-agent
RSS=$B/tests/bench/peak-rss
PEERS=()
for p in openssl gnutls; do [ -x "$B/tests/integration/peer-$p" ] && PEERS+=("$p"); done
[ ${#PEERS[@]} -gt 0 ] || { echo "no interop peer built: skipped"; exit 77; }

# the cells: peer options ; extra agent [mef] line ("-": default versions 1.2..1.3)
CELLS=(
        "-V 1.3 -g x25519;-"
        "-V 1.3 -g p256;-"
        "-V 1.3;-"
        "-V 1.3 -k dhe,ke;-"
        "-V 1.2-1.3 -s ecdhe-psk-cbc;-"
        "-V 1.2-1.3;-"
        "-V 1.2 -s ecdhe-psk-cbc;-"
        "-V 1.2 -s ecdhe-psk-cbc;tls_max_version = 1.2"
        "-V 1.2 -s ecdhe-psk-cbc -g x25519;tls_max_version = 1.2"
)

W=$(mktemp -d /var/tmp/msce-bench-interop-XXXXXX)
. "$(dirname "$0")/bench-lib.sh"
SPID=
cleanup() {
        [ -n "$SPID" ] && { kill "$SPID" 2> /dev/null; wait "$SPID" 2> /dev/null; }
        bench_drop_users
        rm -rf "$W"
}
trap cleanup EXIT
bench_cse_user
umask 077
head -c 32 /dev/urandom | od -An -tx1 -v | tr -d ' \n' > "$W/kpm.hex"

# server PEER OPTS: start the peer as a one-connection server, set PORT
server() {
        local i
        rm -f "$W/server.out" # no stale PORT from the previous run
        # shellcheck disable=SC2086
        "$B/tests/integration/peer-$1" server $2 -i kpm-bench -p "$W/kpm.hex" > "$W/server.out" 2>&1 &
        SPID=$!
        for ((i = 0; i < 400; i++)); do
                PORT=$(sed -n 's/^PORT //p' "$W/server.out" 2> /dev/null || true)
                [ -n "$PORT" ] && return 0
                sleep 0.01
        done
        echo "peer-$1 server did not start" >&2
        return 1
}
server_done() { wait "$SPID" 2> /dev/null || true; SPID=; }

agent_conf() { # PORT EXTRA
        {
                printf '[node]\nid = urn:dev:ops:bench\n[mef]\nuri = https://127.0.0.1:%s/msce\n' "$1"
                printf 'psk_identity = kpm-bench\npsk_file = %s\n' "$W/kpm.hex"
                [ "$2" != - ] && printf '%s\n' "$2"
                printf '[consumer]\nuser = %s\n[seal]\nbackend = host\nstate_dir = %s\nruntime_dir = %s\n' \
                        $CSE_USER "$W/state" "$W/run"
                printf '[timing]\nconnect_timeout = 5s\nexchange_timeout = 10s\n'
        } > "$W/agent.conf"
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR) printf "%s", a[int((NR + 1) / 2)]; else printf "-" }'; }
max() { sort -n | tail -n 1; }

echo "machine: $(nproc) cores, $(uname -r); N = $n runs per cell and side, interleaved"
printf '%-48s %-15s %9s %9s %6s %12s %12s  %s\n' "cell (peer options; agent)" peer "agent ms" "bare ms" ratio \
        "agent RSS" "max RSS" "negotiated"
worst=0
for cell in "${CELLS[@]}"; do
        popts=${cell%%;*}
        extra=${cell#*;}
        for peer in "${PEERS[@]}"; do
                lib=$("$B/tests/integration/peer-$peer" 2> /dev/null | sed -n 's/^LIB //p' | awk '{ print $1, $2 }' || true)
                : > "$W/agent.ms"; : > "$W/bare.ms"; : > "$W/agent.kib"
                failed=
                for ((i = 0; i < n; i++)); do
                        # msce-agent --once, fresh (no sealed profile: it enrols)
                        server $peer "$popts"
                        agent_conf "$PORT" "$extra"
                        rm -rf "$W/state"
                        read -r kib code ms < <("$RSS" -o "$W/agent.log" "$AGENT" --once --config "$W/agent.conf" || true)
                        server_done
                        if [ "$code" != 0 ]; then failed="agent exit $code: $(grep -m1 'failed (' "$W/agent.log" |
                                sed 's/^.*failed (/(/')"; break; fi
                        echo "$ms" >> "$W/agent.ms"; echo "$kib" >> "$W/agent.kib"
                        neg=$(sed -n 's/^HANDSHAKE ok //p' "$W/server.out" | sed 's/ peer-cert=no//')
                        # the same peer's client: handshake plus one request of the enrolment's size
                        server $peer "$popts"
                        read -r _ code ms < <("$RSS" -o "$W/bare.log" "$B/tests/integration/peer-$peer" client $popts \
                                -P "$PORT" -i kpm-bench -p "$W/kpm.hex" -N urn:dev:ops:bench || true)
                        server_done
                        [ "$code" = 0 ] || { failed="bare client exit $code"; break; }
                        echo "$ms" >> "$W/bare.ms"
                done
                label="$popts; ${extra/tls_max_version = /max }"
                if [ -n "$failed" ]; then
                        printf '%-48s %-15s %s\n' "$label" "$lib" "not timed: $failed"
                        continue
                fi
                am=$(median < "$W/agent.ms"); bm=$(median < "$W/bare.ms"); ak=$(median < "$W/agent.kib")
                mk=$(max < "$W/agent.kib")
                [ "$mk" -gt "$worst" ] && worst=$mk
                printf '%-48s %-15s %9s %9s %6s %7s KiB %7s KiB  %s\n' "$label" "$lib" "$am" "$bm" \
                        "$(awk -v a="$am" -v b="$bm" 'BEGIN { printf "%.1fx", a / b }')" "$ak" "$mk" "$neg"
        done
done
echo "largest agent peak RSS: $worst KiB ($(awk -v k="$worst" 'BEGIN { printf "%.2f", k / 1024 }') MiB; target <= 6 MiB = 6144 KiB)"

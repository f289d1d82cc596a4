#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# One enrolment on loopback (psk, TLS 1.3, X25519 key share), msce against a bare wolfSSL
# reference, interleaved in one run (tests/bench/bench-enrol.c says what A..F are), then the
# peak RSS (VmHWM, via wait4 in peak-rss.c) of msce-agent --once for psk/TLS 1.3 and TLS 1.2.
# Targets: A within 1.25x of C (issue 11); peak RSS <= 6 MiB.
#   meson test -C BUILD --benchmark --suite bench -v enrol
#   or: tests/bench/bench-enrol.sh BUILD [N]     (N default 200, or $BENCH_N; RSS runs: $BENCH_RSS_N, 5)
# Needs root (the agent puts keys into the keyring of a user of the run's own, msce-t<PID>-cse).
. "$(dirname "$0")/bench-session.sh"

B=$(cd "$1" && pwd)
n=${2:-${BENCH_N:-200}}
rss_n=${BENCH_RSS_N:-5}
bench_need_root "keyring of another user"

# /var/tmp: a disk file system on most systems, so the MEF's SQLite and the agent's fsyncs count
W=$(mktemp -d /var/tmp/msce-bench-enrol-XXXXXX)
. "$(dirname "$0")/bench-lib.sh"
trap bench_cleanup EXIT

bench_cse_user
# one node enrols 2N + N times: bench_mef_init turns the per-node rate limit off. The MEF's
# SQLite commits without a sync of their own unless BENCH_SYNC=full: msce-mef's default
# ([store] synchronous = full) adds one fsync of this disk to each enrolment that has no batch
# to share it with (0.9 ms on the development VM), which is the disk's latency, not the code
# path A/C measures.
BENCH_SYNC=${BENCH_SYNC:-normal}
bench_mef_init 1
bench_mef_start
bench_agent_conf "$W/agent.conf" 1 "$W/state"
bench_agent_conf "$W/agent12.conf" 1 "$W/state" "tls_max_version = 1.2"

echo "machine: $(nproc) cores, $(uname -r); MEF store on $(df -T "$W" | awk 'NR == 2 { print $2 }')"
"$B/tests/bench/bench-enrol" compare "$AGENT" "$W/agent.conf" "$W" "$n" "$MEF_PID"

# peak RSS of msce-agent --once: each run enrols (its sealed profile removed first)
peak() {
        local name=$1 mode=$2 i out kib=() rc=0
        shift 2
        for ((i = 0; i < rss_n; i++)); do
                [ "$mode" = fresh ] && rm -f "$W/state/profile.sealed"
                out=$("$B/tests/bench/peak-rss" -o "$W/rss.log" "$@") || { rc=1; cat "$W/rss.log"; }
                kib+=("${out%% *}")
        done
        printf '%s\n' "${kib[@]}" | sort -n | awk -v name="$name" '{ a[NR] = $1 } END {
                printf "  %-52s median %5d KiB (%.2f MiB), max %5d KiB\n", name,
                        a[int((NR + 1) / 2)], a[int((NR + 1) / 2)] / 1024, a[NR] }'
        return $rc
}
# what one run's memory is made of, by mapping (smaps when it exits)
breakdown() {
        local mode=$1
        shift
        [ "$mode" = fresh ] && rm -f "$W/state/profile.sealed"
        "$B/tests/bench/peak-rss" -m -o "$W/rss.log" "$@" | sed -n 's/^  /    /p'
}
echo "peak RSS (ru_maxrss of the child, $rss_n runs each; target <= 6 MiB = 6144 KiB)"
peak "msce-agent --once, psk, TLS 1.3 (negotiated)" fresh "$AGENT" --once -c "$W/agent.conf"
breakdown fresh "$AGENT" --once -c "$W/agent.conf"
peak "msce-agent --once, psk, TLS 1.2 (pinned)" fresh "$AGENT" --once -c "$W/agent12.conf"
breakdown fresh "$AGENT" --once -c "$W/agent12.conf"
peak "msce-agent --once --reenrol (restore + enrol), TLS 1.3" keep "$AGENT" --once --reenrol -c "$W/agent.conf"
peak "msce-agent --once, restore only (no network)" keep "$AGENT" --once -c "$W/agent.conf"
peak "msce-agent --check-config (floor: start + config)" keep "$AGENT" --check-config -c "$W/agent.conf"
breakdown keep "$AGENT" --check-config -c "$W/agent.conf"

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Where msce-mef's CPU goes per enrolment, beside the raw wolfSSL PSK server of bench-mef-load
# (issue 13: "report where the rest goes"). Same setup as bench-mef-load.sh (64 enrolling
# connections of msce-loadgen on CPU 0, the server on CPU 1), each server profiled on its own:
#   1. perf record (cpu-clock, 2 kHz, kernel call chains) of the server process for SECONDS: CPU
#      ms per exchange by shared object (wolfSSL, libc, SQLite, msce-mef, ...) and the kernel's by
#      the system call it ran in, both servers side by side; then the store's share (SQLite and
#      the system calls only it makes: pwrite64, pread64, fdatasync, fsync, fcntl) and what
#      msce-mef would cost per exchange against the raw server with a store that cost nothing;
#   2. strace -c of the server for SECONDS: system calls per exchange, by call.
# Counts come from the generator's own "ok" (exchanges answered). Needs perf and strace (skips
# without them) and root or perf_event_paranoid <= 1.
#   meson test -C BUILD --benchmark --suite bench -v mef-profile
#   or: tests/bench/bench-mef-profile.sh BUILD [SECONDS]     (default 8, or $BENCH_SECONDS)
set -euo pipefail
shopt -s inherit_errexit
trap 'echo "bench-mef-profile.sh: failed at line $LINENO" >&2' ERR

B=$(cd "$1" && pwd)
secs=${2:-${BENCH_SECONDS:-8}}
conns=64
LOADGEN=$B/msce-loadgen
for tool in perf strace taskset; do
        command -v $tool >/dev/null || { echo "SKIP: $tool is not installed"; exit 77; }
done

W=$(mktemp -d /var/tmp/msce-bench-profile-XXXXXX)
. "$(dirname "$0")/bench-lib.sh"
trap bench_cleanup EXIT

bench_mef_init "$conns"
bench_nodes_file "$conns"
bench_mef_start taskset -c 1
MEF_PORT=$PORT
bench_raw_start taskset -c 1

# load TARGET PORT PID: SECONDS of load, after the generator's 1 s warm-up; prints the number
# of exchanges answered in them.
load() {
        local line
        line=$(taskset -c 0 "$LOADGEN" --gateways "$W/nodes" --duration "$secs" --concurrency $conns \
                --exchange-timeout 10 --server-pid "$3" "https://127.0.0.1:$2/msce" | head -1)
        printf '  %-4s %s\n' "$1" "$line" >&2
        REPLY=$(awk '{ for (i = 1; i < NF; i++) if ($i == "ok") { print $(i + 1); exit } }' <<<"$line")
        [ "${REPLY:-0}" -gt 0 ] || { echo "no exchange answered by $1" >&2; return 1; }
        echo "$REPLY"
}

# profile TARGET PORT PID: perf, then strace, each over one load run: attached when the
# generator's warm-up second ends, for the SECONDS it counts.
declare -A ok_perf ok_strace
profile() {
        load "$1" "$2" "$3" >"$W/ok" &
        local l=$!
        sleep 1
        perf record -q -F 2000 -g -o "$W/$1.perf" -p "$3" -- sleep "$secs" >/dev/null 2>&1 || true
        wait $l
        ok_perf[$1]=$(cat "$W/ok")
        load "$1" "$2" "$3" >"$W/ok" &
        l=$!
        sleep 1
        timeout -s INT "$secs" strace -f -c -o "$W/$1.strace" -p "$3" 2>/dev/null || true
        wait $l
        ok_strace[$1]=$(cat "$W/ok")
}

echo "machine: $(nproc) cores, $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$conns connections in flight, generator on CPU 0, server on CPU 1; ${secs} s per run"
echo "runs (each server: one under perf, one under strace, which slows it):"
profile raw "$RAW_PORT" "$RAW_PID"
profile mef "$MEF_PORT" "$MEF_PID"

# side_by_side RAW_FILE MEF_FILE DECIMALS: lines "NAME VALUE" of each server as one table in
# msce-mef's order (then names only the raw server has), with the difference and the totals;
# rows below half the last decimal in both left out.
side_by_side() {
        awk -v d="$3" 'FNR == NR { raw[$1] = $2; next } { mef[$1] = $2; order[++n] = $1 }
        END {
                for (k in raw) if (!(k in mef)) { order[++n] = k; mef[k] = 0 }
                f = "  %-28s %8." d "f %8." d "f %+8." d "f\n"; min = 0.5 / 10 ^ d
                printf "  %-28s %8s %8s %8s\n", "", "raw", "msce-mef", "extra"
                for (i = 1; i <= n; i++) {
                        k = order[i]; r = (k in raw) ? raw[k] : 0
                        if (mef[k] < min && r < min) continue
                        printf f, k, r, mef[k], mef[k] - r
                        tr += r; tm += mef[k]
                }
                printf f, "total", tr, tm, tm - tr
                printf "  msce-mef / raw: %.2f\n", tm / tr
        }' "$1" "$2"
}

# CPU ms per exchange by shared object, the kernel's by system call: perf's samples (0.5 ms
# each at 2 kHz) / exchanges. A sample is the block of its call chain: its first frame's object,
# or in the kernel the first __x64_sys_/__do_sys_ frame ("kernel:other": interrupts, faults).
for t in raw mef; do
        perf script -i "$W/$t.perf" -F ip,sym,dso 2>/dev/null | awk -v n="${ok_perf[$t]}" '
                function flush() { if (key != "") count[key]++; key = ""; first = 1 }
                BEGIN { first = 1 }
                NF == 0 { flush(); next }
                {
                        dso = $NF; gsub(/[()]/, "", dso); sub(/.*\//, "", dso)
                        if (first) { key = dso == "[kernel.kallsyms]" ? "kernel:other" : dso; first = 0; next }
                        if (key == "kernel:other" && $2 ~ /^__(x64|do)_sys_/) { sub(/^__(x64|do)_sys_/, "", $2); key = "kernel:" $2 }
                }
                END { flush(); for (k in count) printf "%s %.4f\n", k, count[k] * 0.5 / n }' | sort -k2 -nr >"$W/$t.dso"
        awk -v n="${ok_strace[$t]}" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { printf "%s %.2f\n", $NF, $4 / n }' \
                "$W/$t.strace" >"$W/$t.calls"
done
echo
echo "CPU ms per exchange by shared object, the kernel's by system call (perf):"
side_by_side "$W/raw.dso" "$W/mef.dso" 3
# The store's share: SQLite, and the system calls the raw server never makes, which only the
# store makes in msce-mef (its files' writes, reads, syncs and locks).
awk 'FNR == NR { raw += $2; next }
        { mef += $2 }
        $1 ~ /^libsqlite3/ || $1 ~ /^kernel:(pwrite64|pread64|fdatasync|fsync|fcntl)$/ { store += $2 }
        END {
                printf "  the store (SQLite, pwrite64, pread64, fdatasync, fsync, fcntl): %.3f ms per exchange\n", store
                printf "  msce-mef without it: %.3f ms, %.2f x raw (%.0f %% of raw per CPU-second)\n",
                        mef - store, (mef - store) / raw, 100 * raw / (mef - store)
        }' "$W/raw.dso" "$W/mef.dso"
echo
echo "system calls per exchange (strace -c; futex and epoll_wait count waits, not work):"
side_by_side "$W/raw.calls" "$W/mef.calls" 2
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

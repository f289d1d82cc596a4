#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# msce-mef under 64 concurrent enrolling clients against a raw single-threaded wolfSSL PSK
# server (handshake + fixed small answer, tests/bench/bench-mef-load.c), in one run: rounds of
# raw, msce-mef, raw, msce-mef... each SECONDS long, with the same generator (msce-loadgen
# --duration: psk TLS 1.3, X25519, full enrolment request, response read). The server under test runs on CPU 1, the
# generator on CPU 0 (same processes and cores for both servers); each line gives enrolments/s,
# latency and the CPU share of the generator and of the server. Target: msce-mef >= 80% of raw
# per server CPU-second (issue 13).
#   meson test -C BUILD --benchmark --suite bench -v mef-load
#   or: tests/bench/bench-mef-load.sh BUILD [SECONDS [ROUNDS]]
#   ($BENCH_SECONDS default 10, $BENCH_ROUNDS 2, $BENCH_CONNS 64, $BENCH_PROCS 1 generator processes)
set -euo pipefail
shopt -s inherit_errexit
trap 'echo "bench-mef-load.sh: failed at line $LINENO" >&2' ERR

B=$(cd "$1" && pwd)
secs=${2:-${BENCH_SECONDS:-10}}
rounds=${3:-${BENCH_ROUNDS:-2}}
conns=${BENCH_CONNS:-64}
procs=${BENCH_PROCS:-1}
LOADGEN=$B/msce-loadgen

W=$(mktemp -d /var/tmp/msce-bench-load-XXXXXX)
. "$(dirname "$0")/bench-lib.sh"
trap bench_cleanup EXIT

# Pinning needs two CPUs; with one, both share it (said in the output).
pin_server=() pin_client=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
        pin_server=(taskset -c 1)
        pin_client=(taskset -c 0)
fi

bench_mef_init "$conns"
bench_nodes_file "$conns"
bench_mef_start "${pin_server[@]}"
MEF_PORT=$PORT

bench_raw_start "${pin_server[@]}"

echo "machine: $(nproc) cores, $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$conns connections in flight, $procs generator process(es) ${pin_client[*]:-unpinned}," \
        "server ${pin_server[*]:-unpinned}; ${secs} s per round after 1 s warm-up"
raw_rates=() mef_rates=() raw_cap=() mef_cap=()
for ((r = 1; r <= rounds; r++)); do
        for target in raw mef; do
                if [ $target = raw ]; then port=$RAW_PORT pid=$RAW_PID; else port=$MEF_PORT pid=$MEF_PID; fi
                line=$("${pin_client[@]}" "$LOADGEN" --gateways "$W/nodes" --duration "$secs" --concurrency "$conns" \
                        --procs "$procs" --exchange-timeout 10 --server-pid "$pid" "https://127.0.0.1:$port/msce" | head -1)
                printf '  round %d %-4s %s\n' "$r" "$target" "$line"
                rate=$(awk '{ print $2 }' <<<"$line")
                cap=$(sed -n 's/.*ok per server cpu-s \([0-9]*\).*/\1/p' <<<"$line")
                if [ $target = raw ]; then
                        raw_rates+=("$rate") raw_cap+=("${cap:-0}")
                else
                        mef_rates+=("$rate") mef_cap+=("${cap:-0}")
                fi
        done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
awk -v raw="${raw_rates[*]}" -v mef="${mef_rates[*]}" -v rawc="${raw_cap[*]}" -v mefc="${mef_cap[*]}" 'BEGIN {
        n = split(raw, a, " "); split(mef, b, " "); split(rawc, c, " "); split(mefc, d, " ")
        for (i = 1; i <= n; i++) { sr += a[i]; sm += b[i]; cr += c[i]; cm += d[i] }
        printf "msce-mef %.0f/s vs raw %.0f/s (mean of %d rounds): %.0f%% of raw (target >= 80%% per server CPU-second)\n",
                sm / n, sr / n, n, 100 * sm / sr
        if (cr > 0 && cm > 0)
                printf "per server CPU-second: msce-mef %.0f vs raw %.0f: %.0f%%\n", cm / n, cr / n, 100 * cm / cr
}'

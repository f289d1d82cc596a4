#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# msce-mef at fleet scale (issue 13), SQLite store on the root file system:
#  1. power-on storm: $BENCH_STORM_GATEWAYS (10000) gateways powering on within
#     $BENCH_STORM_SPREAD (10) s against workers = auto, each enrolling, checking its status and
#     having its Kpsa fetched by the target (msce-loadgen): enrolled, lost, time to the last
#     enrolment, latency percentiles;
#  2. scaling: enrolments/s with workers = 1 and workers = 2 ($BENCH_SECONDS each, 64
#     connections, msce-loadgen --duration with 2 processes, on the same cores);
#  3. memory: VmRSS/VmHWM of each worker with $BENCH_STORE_NODES (100000) nodes in the store
#     while 1000 connections are in flight ($BENCH_MEM_CONNS).
# The generator keeps at most $BENCH_STORM_CONCURRENCY (256) connections in flight over 2
# processes: a real fleet has a CPU per gateway, a generator sharing the MEF's 2 cores does not,
# and unbounded it starves every handshake into the MEF's timeouts (measured: 863 enrolments
# in 5 minutes). Gateways wait in the generator for a slot; power-on to enrolled includes it.
# The gateways come from one loopback address: the per-source admission limit is raised to the
# global one (real gateways come from many addresses). Backoff as msce-agent's but capped at
# $BENCH_BACKOFF_MAX ms (30000) so that the run ends in minutes.
#   meson test -C BUILD --benchmark --suite bench -v mef-fleet
#   or: tests/bench/bench-mef-fleet.sh BUILD [PART...]   (PART: any of storm scale memory)
set -euo pipefail
shopt -s inherit_errexit
trap 'echo "bench-mef-fleet.sh: failed at line $LINENO" >&2' ERR

B=$(cd "$1" && pwd)
. "$(dirname "$0")/bench-lib.sh"
bench_fleet_begin fleet
parts="${*:2}" # one argument "storm scale" or several
parts=${parts:-storm scale memory}
store_n=${BENCH_STORE_NODES:-100000}
mem_conns=${BENCH_MEM_CONNS:-1000}

# store NAME NODES: a store with NODES nodes and the target /in-cse; $W/NAME.gateways, $W/targets.
# (The duplicate CSE-ID check of each add uses the schema's nodes_cse_id index, since schema 4.)
store() {
        local name=$1 n=$2 t0
        t0=$(date +%s.%N)
        conf "$name" 1 64
        "$MEF" --config "$W/mef.conf" init >/dev/null
        "$NODES" "$W/$name.db" "$W/master.key" "$n" "$W/$name.gateways"
        bench_fleet_target
        echo "store $name: $n nodes in $(bench_seconds_since "$t0") s"
}

# conf STORE WORKERS MAX_CONNECTIONS. No per-node enrolment limit: the scale and memory parts
# enrol the same gateways back to back (with it they measured the 429s' Retry-After waits).
conf() {
        local unauth=$(($3 > 64 ? $3 : 64))
        cat >"$W/mef.conf" <<EOF
[server]
listen = 127.0.0.1:0
fqdn = 127.0.0.1
workers = $2
[store]
path = $W/$1.db
master_key = $W/master.key
synchronous = ${BENCH_SYNC:-full}
[limits]
max_connections = $3
max_unauthenticated = $unauth
max_unauthenticated_per_source = $unauth
enrolments_per_node = 0
EOF
}

# The serving processes: the workers, or msce-mef itself with one worker.
server_pids() {
        local kids
        kids=$(pgrep -P "$MEF_PID" || true)
        echo "${kids:-$MEF_PID}"
}

echo "machine: $(nproc) cores, $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ " $parts " == *" storm "* ]]; then
        store storm "$storm_n"
        conf storm auto 256
        bench_mef_start
        echo "storm: $storm_n gateways within $spread s, workers = auto ($(server_pids | wc -w) workers)," \
                "max_connections 256 per worker, backoff 1 s .. $((backoff_max / 1000)) s, at most $storm_conc" \
                "connections in flight"
        bench_storm "$W/storm.gateways"
        bench_stop_mef
fi

if [[ " $parts " == *" scale "* ]]; then
        [ -f "$W/storm.db" ] || store storm 1000
        declare -A rate
        for workers in 1 2; do
                conf storm "$workers" 64
                bench_mef_start
                pids=()
                for p in $(server_pids); do pids+=(--server-pid "$p"); done
                line=$(bench_rate "$W/storm.gateways" "${pids[@]}")
                echo "  workers $workers: $line"
                rate[$workers]=$(awk '{ print $2 }' <<<"$line")
                bench_stop_mef
        done
        awk -v a="${rate[1]}" -v b="${rate[2]}" 'BEGIN { printf "scaling: 2 workers %.0f/s vs 1 worker %.0f/s: x%.2f\n", b, a, b / a }'
fi

if [[ " $parts " == *" memory "* ]]; then
        store memory "$store_n"
        conf memory auto "$mem_conns"
        bench_mef_start
        "$LOADGEN" --gateways "$W/memory.gateways" --count "$mem_conns" --duration "$secs" \
                --concurrency "$mem_conns" --exchange-timeout 30 "https://127.0.0.1:$PORT/msce" | sed 's/^/  /' &
        lg=$!
        # sample while the load runs: the highest VmRSS seen, and VmHWM at the end
        declare -A peak
        end=$((SECONDS + secs + 1))
        while ((SECONDS < end)); do
                for p in $(server_pids); do
                        rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
                        ((rss > ${peak[$p]:-0})) && peak[$p]=$rss
                done
                sleep 0.5
        done
        wait "$lg" || true
        for p in $(server_pids); do
                hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$p/status")
                echo "memory: worker pid $p with $store_n nodes, $mem_conns connections in flight:" \
                        "VmRSS peak sampled $((${peak[$p]:-0} / 1024)) MiB, VmHWM $((hwm / 1024)) MiB (limit 64 MiB)"
        done
        bench_stop_mef
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

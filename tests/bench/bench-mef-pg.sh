#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# msce-mef on PostgreSQL against SQLite (issue 13), run under tests/pg-run.sh (a PostgreSQL of
# its own, fsync on, beside the SQLite file on the same disk):
#  1. rate: enrolments/s with workers = 1 on each engine, $BENCH_ROUNDS (2) rounds alternating
#     SQLite and PostgreSQL so that load from elsewhere falls on both, $BENCH_SECONDS (10) s
#     each, 64 connections from msce-loadgen --duration (2 processes); the PostgreSQL rate as a
#     share of SQLite's (target: at least 70 %); and the CPU each engine costs per enrolment:
#     msce-mef's, and on PostgreSQL its server's too (every process of it: backends, WAL writer,
#     checkpointer), which shares this machine's cores with msce-mef and the generator;
#  2. storm: $BENCH_STORM_GATEWAYS (10000) gateways powering on within $BENCH_STORM_SPREAD
#     (10) s against workers = auto on PostgreSQL, as bench-mef-fleet.sh does on SQLite;
#  3. remote (not by default; needs MSCE_TEST_PG_TCP=1 for pg-run.sh): the database
#     $BENCH_PG_DELAY_MS (1) ms away each way, through delay-relay (tests/integration), rate
#     as in 1 with [store] threads = auto and 8: what a database on another host costs.
# The PostgreSQL store is the SQLite one moved over with msce-mef backup + restore (the nodes
# are made by bench-nodes straight into SQLite).
#   meson test -C BUILD --benchmark --suite bench -v mef-pg
#   or: tests/pg-run.sh tests/bench/bench-mef-pg.sh BUILD [PART...]   (PART: any of rate storm)
#   or: MSCE_TEST_PG_TCP=1 tests/pg-run.sh tests/bench/bench-mef-pg.sh BUILD remote
set -euo pipefail
shopt -s inherit_errexit
trap 'echo "bench-mef-pg.sh: failed at line $LINENO" >&2' ERR
: "${MSCE_TEST_PG_URI:?run under tests/pg-run.sh}"

B=$(cd "$1" && pwd)
. "$(dirname "$0")/bench-lib.sh"
bench_fleet_begin pg
parts="${*:2}" # one argument "rate storm" or several
parts=${parts:-rate storm}
rounds=${BENCH_ROUNDS:-2}

# conf ENGINE WORKERS MAX_CONNECTIONS
conf() {
        local unauth=$(($3 > 64 ? $3 : 64))
        {
                printf '[server]\nlisten = 127.0.0.1:0\nfqdn = 127.0.0.1\nworkers = %s\n[store]\n' "$2"
                if [ "$1" = postgresql ]; then
                        printf 'backend = postgresql\nuri = %s\npassword_file = %s\nmaster_key = %s/pg.key\n' \
                                "$MSCE_TEST_PG_URI" "$MSCE_TEST_PG_PASSWORD_FILE" "$W"
                else
                        printf 'path = %s/sqlite.db\nmaster_key = %s/sqlite.key\n' "$W" "$W"
                fi
                printf '[limits]\nmax_connections = %s\nmax_unauthenticated = %s\n' "$3" "$unauth"
                printf 'max_unauthenticated_per_source = %s\nenrolments_per_node = 0\n' "$unauth"
        } > "$W/mef.conf"
}

# stores N: N nodes and the target /in-cse in SQLite (bench-nodes), then the same in
# PostgreSQL through a backup and a restore; $W/gateways, $W/targets.
stores() {
        local n=$1 t0
        t0=$(date +%s.%N)
        conf sqlite 1 64
        "$MEF" --config "$W/mef.conf" init > /dev/null
        "$NODES" "$W/sqlite.db" "$W/sqlite.key" "$n" "$W/gateways"
        bench_fleet_target
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$W/pass")
        "$MEF" --config "$W/mef.conf" backup --passphrase-file "$W/pass" --kdf-iterations 100000 "$W/bk" > /dev/null
        conf postgresql 1 64
        "$MEF" --config "$W/mef.conf" restore --passphrase-file "$W/pass" "$W/bk" > /dev/null
        echo "stores: $n nodes in SQLite and in PostgreSQL in $(bench_seconds_since "$t0") s"
}

# pg_cpu_ticks: CPU time (clock ticks) of the PostgreSQL server so far: its postmaster and every
# process under it (utime + stime, fields 14 and 15 of /proc/PID/stat).
pg_cpu_ticks() {
        local pm p t=0 f
        pm=$(head -n1 "$pg_dir/data/postmaster.pid")
        for p in "$pm" $(ps -o pid= --ppid "$pm"); do
                f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue # ended meanwhile
                read -r -a f <<<"$f"
                t=$((t + f[11] + f[12])) # after "pid (comm)": field 3 is f[0]
        done
        echo "$t"
}
pg_dir=${MSCE_TEST_PG_URI#*host=}
pg_dir=${pg_dir%%&*}
hz=$(getconf CLK_TCK)

echo "machine: $(nproc) cores, $(uname -r); load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
stores "$([[ " $parts " == *" storm "* ]] && echo "$storm_n" || echo 1000)"

if [[ " $parts " == *" rate "* ]]; then
        declare -A sum
        for ((round = 1; round <= rounds; round++)); do
                for engine in sqlite postgresql; do
                        conf "$engine" 1 64
                        bench_mef_start
                        t0=$(pg_cpu_ticks)
                        line=$(bench_rate "$W/gateways" --server-pid "$MEF_PID")
                        t1=$(pg_cpu_ticks)
                        echo "  round $round, $engine: $line"
                        sum[$engine]=$(awk -v s="${sum[$engine]:-0}" -v l="$line" 'BEGIN { split(l, f, " "); print s + f[2] }')
                        # msce-mef's CPU per enrolment (from its ok per server cpu-s), and the
                        # PostgreSQL server's over the same run (its work for SQLite: none)
                        ok=$(sed -n 's/.* ok \([0-9]*\) .*/\1/p' <<<"$line")
                        mef=$(sed -n 's/.*ok per server cpu-s \([0-9]*\).*/\1/p' <<<"$line")
                        awk -v ok="$ok" -v mef="$mef" -v t=$((t1 - t0)) -v hz="$hz" -v e="$engine" 'BEGIN {
                                printf "    CPU per enrolment: msce-mef %.0f us", 1e6 / mef
                                if (e == "postgresql")
                                        printf ", PostgreSQL server %.0f us", 1e6 * t / hz / ok
                                printf "\n" }'
                        bench_stop_mef
                done
        done
        awk -v s="${sum[sqlite]}" -v p="${sum[postgresql]}" -v n="$rounds" 'BEGIN {
                printf "rate: PostgreSQL %.0f/s vs SQLite %.0f/s (mean of %d rounds): %.0f %% (target at least 70 %%)\n",
                        p / n, s / n, n, 100 * p / s }'
fi

if [[ " $parts " == *" storm "* ]]; then
        conf postgresql auto 256
        bench_mef_start
        echo "storm on PostgreSQL: $storm_n gateways within $spread s, workers = auto ($(pgrep -P "$MEF_PID" | wc -l) workers)," \
                "backoff 1 s .. $((backoff_max / 1000)) s, at most $storm_conc connections in flight"
        bench_storm "$W/gateways"
        bench_stop_mef
fi
if [[ " $parts " == *" remote "* ]]; then
        : "${MSCE_TEST_PG_TCP:?remote: run under MSCE_TEST_PG_TCP=1 tests/pg-run.sh}"
        delay=${BENCH_PG_DELAY_MS:-1}
        echo "delay $delay" > "$W/relay.mode"
        "$B/tests/integration/delay-relay" --listen 127.0.0.1:0 --connect "127.0.0.1:$MSCE_TEST_PG_PORT" \
                --mode-file "$W/relay.mode" > "$W/relay.out" 2> /dev/null &
        relay_pid=$!
        trap 'kill "$relay_pid" 2> /dev/null; bench_stop_mef; rm -rf "$W"' EXIT
        bench_port "$W/relay.out" "$relay_pid" || { echo "delay-relay did not start" >&2; exit 1; }
        MSCE_TEST_PG_URI="postgresql://msce@127.0.0.1:$REPLY/msce"
        for threads in auto 8; do
                conf postgresql 1 64
                sed -i "s/^\[store\]$/[store]\nthreads = $threads/" "$W/mef.conf"
                bench_mef_start
                echo "  remote, $delay ms each way, [store] threads = $threads: $(bench_rate "$W/gateways" --server-pid "$MEF_PID")"
                bench_stop_mef
        done
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

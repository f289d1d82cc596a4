#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# msce-mef rekey on a fleet's store while the MEF serves: $BENCH_STORE_NODES (100000) nodes
# (bench-nodes), each enrolled once (msce-loadgen), so twice as many secrets; then 16 gateways
# enrol again and again for $BENCH_REKEY_LOAD (30) s and the rekey starts once they are answered. Reports how long
# the rekey took, the enrolments/s meanwhile, msce-loadgen's failures by class and the 503s the
# MEF logged. On SQLite, or with MSCE_TEST_PG_URI (under tests/pg-run.sh) on PostgreSQL as well,
# the same store moved there by a backup and a restore.
#   meson test -C BUILD --benchmark --suite bench -v mef-rekey
#   or: [tests/pg-run.sh] tests/bench/bench-mef-rekey.sh BUILD
set -euo pipefail
shopt -s inherit_errexit
trap 'echo "bench-mef-rekey.sh: failed at line $LINENO" >&2' ERR
B=$(cd "$1" && pwd)
. "$(dirname "$0")/bench-lib.sh"
bench_fleet_begin rekey
MEF=$B/msce-mef
n=${BENCH_STORE_NODES:-100000}
load=${BENCH_REKEY_LOAD:-30}

# conf ENGINE: $W/mef.conf, no per-node enrolment limit (the gateways enrol back to back)
conf() {
        {
                printf '[server]\nlisten = 127.0.0.1:0\nfqdn = 127.0.0.1\n[store]\n'
                if [ "$1" = postgresql ]; then
                        printf 'backend = postgresql\nuri = %s\npassword_file = %s\nmaster_key = %s/pg.key\n' \
                                "$MSCE_TEST_PG_URI" "$MSCE_TEST_PG_PASSWORD_FILE" "$W"
                else
                        printf 'path = %s/sqlite.db\nmaster_key = %s/sqlite.key\n' "$W" "$W"
                fi
                printf '[limits]\nmax_unauthenticated_per_source = 64\nenrolments_per_node = 0\n'
        } >"$W/mef.conf"
}

# rekey_under_load ENGINE
rekey_under_load() {
        conf "$1"
        bench_mef_start
        "$LOADGEN" --gateways "$W/gateways" --count 64 --concurrency 16 --duration "$load" --warmup 0 \
                --exchange-timeout 10 "https://127.0.0.1:$PORT/msce" >"$W/lg.out" 2>&1 &
        local lg=$! t0
        until grep -q ' -> 201' "$W/mef.err"; do # the load under way: the rekey runs inside it
                kill -0 "$lg" 2>/dev/null || { cat "$W/lg.out" >&2; return 1; }
                sleep 0.1
        done
        t0=$(date +%s.%N)
        "$MEF" --config "$W/mef.conf" rekey >"$W/rekey.out"
        local took
        took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        wait "$lg" || true
        bench_stop_mef
        echo "$1: $(sed 's/\. A serving.*//' "$W/rekey.out") in $took s, in ${load} s of load from just before it"
        echo "  $(head -n1 "$W/lg.out")"
        echo "  $(sed -n 2p "$W/lg.out"); 503 answers logged by the MEF: $(grep -c ' -> 503' "$W/mef.err" || true)"
}

t0=$(date +%s.%N)
conf sqlite
"$MEF" --config "$W/mef.conf" init >/dev/null
"$NODES" "$W/sqlite.db" "$W/sqlite.key" "$n" "$W/gateways"
bench_mef_start
"$LOADGEN" --gateways "$W/gateways" --concurrency 64 --timeout 1800 "https://127.0.0.1:$PORT/msce" >"$W/lg.out"
bench_stop_mef
echo "store: $n nodes, each enrolled, in $(bench_seconds_since "$t0") s"
if [ -n "${MSCE_TEST_PG_URI:-}" ]; then
        (umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/pass")
        "$MEF" --config "$W/mef.conf" backup --passphrase-file "$W/pass" --kdf-iterations 100000 "$W/bk" >/dev/null
fi
rekey_under_load sqlite
if [ -n "${MSCE_TEST_PG_URI:-}" ]; then
        conf postgresql
        "$MEF" --config "$W/mef.conf" restore --passphrase-file "$W/pass" "$W/bk" >/dev/null
        rekey_under_load postgresql
fi

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# msce-mef rekey (or, with BENCH_OP=import, a node import) on a fleet's store while the MEF
# serves: $BENCH_STORE_NODES (100000) nodes (bench-nodes), each enrolled once (msce-loadgen), so
# twice as many secrets; then 16 gateways enrol again and again for $BENCH_REKEY_LOAD (30) s and
# the operation starts once they are answered. Reports how long it took, the enrolments/s
# meanwhile, msce-loadgen's failures by class and the 503s the MEF logged. On SQLite, or with
# MSCE_TEST_PG_URI (under tests/pg-run.sh) on PostgreSQL as well, the same store moved there by a
# backup and a restore. The import: $BENCH_IMPORT_ROWS (100000) new nodes from one CSV file, or
# with BENCH_IMPORT_SLICE=K in files of K rows imported one after the other, $BENCH_IMPORT_PAUSE
# (0) s apart.
#   meson test -C BUILD --benchmark --suite bench -v mef-rekey
#   or: [tests/pg-run.sh] [BENCH_OP=import] tests/bench/bench-mef-rekey.sh BUILD
set -euo pipefail
shopt -s inherit_errexit
trap 'echo "bench-mef-rekey.sh: failed at line $LINENO" >&2' ERR
B=$(cd "$1" && pwd)
. "$(dirname "$0")/bench-lib.sh"
bench_fleet_begin rekey
MEF=$B/msce-mef
n=${BENCH_STORE_NODES:-100000}
load=${BENCH_REKEY_LOAD:-30}
op=${BENCH_OP:-rekey}
rows=${BENCH_IMPORT_ROWS:-100000}
slice=${BENCH_IMPORT_SLICE:-0}
pause=${BENCH_IMPORT_PAUSE:-0}

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

# the operation: msce-mef rekey, or the import of $W/import*.csv (prep_op ENGINE writes them: new
# names for each engine, imp-ENGINE-I)
prep_op() {
        [ "$op" = import ] || return 0
        umask 077 # the files hold keys: msce-mef refuses them readable by others
        rm -f "$W"/import*.csv
        awk -v n="$rows" -v e="$1" 'BEGIN {
                for (i = 1; i <= n; i++)
                        printf "imp-%s-%d,kpm-imp-%s-%d,%064x,,/mn-imp-%s-%d,https://in.example.net:8443/~/in-cse/in-name,/in-cse,86400,2592000\n", e, i, e, i, i * 7919, e, i
        }' >"$W/rows"
        if [ "$slice" -gt 0 ]; then split -l "$slice" -d -a 4 "$W/rows" "$W/import"; else mv "$W/rows" "$W/import"; fi
        local f
        for f in "$W"/import*; do
                { echo "nodeID,kpmID,kpm,certFingerprint,cseID,cseBase,targets,poll,lifetime"; cat "$f"; } >"$f.csv"
                rm -f "$f"
        done
}
run_op() {
        if [ "$op" = rekey ]; then
                "$MEF" --config "$W/mef.conf" rekey >"$W/rekey.out"
                return
        fi
        local f files=0
        for f in "$W"/import*.csv; do
                [ "$files" = 0 ] || sleep "$pause"
                "$MEF" --config "$W/mef.conf" node import "$f" >/dev/null
                files=$((files + 1))
        done
        echo "imported $rows nodes from $files file(s) ($pause s apart)" >"$W/rekey.out"
}

# under_load ENGINE
under_load() {
        conf "$1"
        prep_op "$1"
        bench_mef_start
        "$LOADGEN" --gateways "$W/gateways" --count 64 --concurrency 16 --duration "$load" --warmup 0 \
                --exchange-timeout 10 "https://127.0.0.1:$PORT/msce" >"$W/lg.out" 2>&1 &
        local lg=$! t0
        until grep -q ' -> 201' "$W/mef.err"; do # the load under way: the rekey runs inside it
                kill -0 "$lg" 2>/dev/null || { cat "$W/lg.out" >&2; return 1; }
                sleep 0.1
        done
        t0=$(date +%s.%N)
        run_op
        local took
        took=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
        wait "$lg" || true
        bench_stop_mef
        echo "$1: $(sed 's/\. A serving.*//' "$W/rekey.out") in $took s, in ${load} s of load from just before it"
        echo "  $(head -n1 "$W/lg.out")"
        echo "  $(sed -n 2p "$W/lg.out"); 503 answers logged by the MEF: $(awk '/ -> 503/ { n++ }
                match($0, /: [0-9]+ answered 503/) { split(substr($0, RSTART + 2), w, " "); n += w[1] }
                END { print n + 0 }' "$W/mef.err")"
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
under_load sqlite
if [ -n "${MSCE_TEST_PG_URI:-}" ]; then
        conf postgresql
        "$MEF" --config "$W/mef.conf" restore --passphrase-file "$W/pass" "$W/bk" >/dev/null
        under_load postgresql
fi

#!/usr/bin/env bash
# Bulk lifecycle at factory scale (issue 14): msce-mef node import of $BENCH_IMPORT_ROWS
# (100,000) rows, half psk with the Kpm as hex, half certificate fingerprints, generated here;
# the dry run, the import (one transaction), the re-import (all unchanged), node export, one
# keyset page from the middle of the fleet, and the store's size. Figures only, no assertions.
# Under tests/pg-run.sh (MSCE_TEST_PG_URI) on that PostgreSQL instead of SQLite.
#   usage: [tests/pg-run.sh] bench-import.sh PATH/TO/msce-mef
set -euo pipefail
mef=${1:?usage: bench-import.sh PATH/TO/msce-mef}
rows=${BENCH_IMPORT_ROWS:-100000}
work=$(mktemp -d /tmp/msce-bench-import-XXXXXX)
trap 'rm -rf "$work"' EXIT
umask 077
{
        printf '[server]\nlisten = 127.0.0.1:0\n[store]\nmaster_key = %s/master.key\n' "$work"
        if [ -n "${MSCE_TEST_PG_URI:-}" ]; then
                printf 'backend = postgresql\nuri = %s\npassword_file = %s\n' "$MSCE_TEST_PG_URI" \
                        "$MSCE_TEST_PG_PASSWORD_FILE"
        else
                printf 'path = %s/mef.db\n' "$work"
        fi
} > "$work/mef.conf"
m() { "$mef" --config "$work/mef.conf" "$@"; }
m init > /dev/null

awk -v n="$rows" 'BEGIN {
        print "nodeID,kpmID,kpm,certFingerprint,cseID,cseBase,targets,poll,lifetime"
        for (i = 1; i <= n; i++) {
                if (i % 2)
                        printf "urn:dev:ops:bench-%06d,kpm-bench-%06d,%064x,,/mn-bench-%06d,https://in.example.net:8443/~/in-cse/in-name,/in-cse,86400,2592000\n", i, i, i * 7919, i
                else
                        printf "urn:dev:ops:bench-%06d,,,%064x,/mn-bench-%06d,https://in.example.net:8443/~/in-cse/in-name,/in-cse /in-cse/Cmaf01,86400,2592000\n", i, i, i
        }
}' > "$work/nodes.csv"

# seconds (3 decimals) of "$@"
timed() {
        local t0 t1
        t0=$(date +%s%N)
        "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
        t1=$(date +%s%N)
        awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e9 }'
}
echo "store:               $([ -n "${MSCE_TEST_PG_URI:-}" ] && echo PostgreSQL || echo SQLite)"
echo "rows:                $rows ($(du -k "$work/nodes.csv" | cut -f1) KiB of CSV)"
echo "import --dry-run:    $(timed m node import --dry-run "$work/nodes.csv") s"
echo "import:              $(timed m node import "$work/nodes.csv") s   ($(cat "$work/out"))"
[ -n "${MSCE_TEST_PG_URI:-}" ] ||
        echo "store size:          $(du -ck "$work"/mef.db* | tail -1 | cut -f1) KiB (mef.db and any -wal/-shm)"
echo "re-import:           $(timed m node import "$work/nodes.csv") s   ($(cat "$work/out"))"
echo "export (jsonl):      $(timed m node export) s   ($(wc -l < "$work/out") rows)"
echo "page of 100 (mid):   $(timed m node list --limit 100 --after urn:dev:ops:bench-050000) s"
echo "node list (all):     $(timed m node list) s"
command -v /usr/bin/time > /dev/null && echo "peak RSS (dry run, again): $( { /usr/bin/time -f %M "$mef" --config "$work/mef.conf" node import --dry-run "$work/nodes.csv" > /dev/null; } 2>&1 | tail -1) KiB" || true

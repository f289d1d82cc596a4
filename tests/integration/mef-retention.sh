#!/usr/bin/env bash
# Retention ([audit] keep): a serving msce-mef prunes at start (then hourly, in a store thread)
# the audit rows older than keep and the enrolments that no longer serve whose lifetime ended
# before it; active enrolments (expired or not) and recent rows stay. "msce-mef prune" does the
# same on demand; keep = forever keeps everything. Rows are written with sqlite3 as a year of
# operation would have left them. A pass over a million rows goes in small transactions,
# behind the requests: gateways enrolling meanwhile (msce-loadgen) are all answered.
# Usage: mef-retention.sh PATH/TO/msce-mef PATH/TO/msce-loadgen (TAP). Skipped without the
# sqlite3 CLI or python3.
set -euo pipefail
mef=${1:?usage: mef-retention.sh PATH/TO/msce-mef PATH/TO/msce-loadgen}
loadgen=${2:?usage: mef-retention.sh PATH/TO/msce-mef PATH/TO/msce-loadgen}
. "$(dirname "$0")/lib.sh"
need_cmds sqlite3 python3
tmpdir mef-retention
tmp=$T
MEF=$mef
LIB_SHOW="$T/mef.err $T/out"

conf() { # KEEP [STORE_LINES [LIMITS_LINES]]
        cat > "$tmp/mef.conf.in" <<EOC
[server]
listen = 127.0.0.1:@PORT@
fqdn = mef.test

[store]
path = $tmp/mef.db
master_key = $tmp/master.key
${2:-}

[limits]
${3:-}

[audit]
keep = $1
EOC
        mef_configure "$tmp/mef.conf.in"
}
m() { "$mef" --config "$tmp/mef.conf" "$@"; }
q() { sqlite3 "$tmp/mef.db" "$1"; }

conf 90d
m init > /dev/null
m node add urn:dev:ops:ret-1 --cse-id /mn-ret-1 --cse-base https://in.example.net/base \
        --psk-id kpm-ret-1 --generate-psk "$tmp/kpm.hex" > /dev/null
now=$(date +%s)
old=$((now - 100 * 86400)) recent=$((now - 86400))
# 1000 rows from 100 days ago, 10 from yesterday; a retired enrolment that expired 100 days ago,
# an active one that did too (still the node's: never pruned), a revoked one still in its lifetime
q "WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 1000)
   INSERT INTO audit (ts, actor, action, subject, detail) SELECT $old, 'psk:kpm-ret-1', 'enrol', 'k', '201' FROM i;
   WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 10)
   INSERT INTO audit (ts, actor, action, subject, detail) SELECT $recent, 'cli:x', 'node-add', 's', 'd' FROM i;
   INSERT INTO enrolments (ke_id, node_id, key_enc, ltk_transported, state, created, exp) VALUES
     ('00aa@mef.test', 'urn:dev:ops:ret-1', x'00', 0, 'retired', $((old - 86400)), $old),
     ('00bb@mef.test', 'urn:dev:ops:ret-1', x'00', 0, 'active', $((old - 86400)), $old),
     ('00cc@mef.test', 'urn:dev:ops:ret-1', x'00', 0, 'revoked', $recent, $((now + 86400)));"
before=$(q "SELECT count(*) FROM audit")
[ "$before" -ge 1010 ] || fail "seeding: $before audit rows"
ok "a store as a year of operation leaves it: $before audit rows, 3 enrolments"

mef_start "$tmp/mef.conf.in" || fail "msce-mef did not start"
wait_line 30 "$tmp/mef.err" 'retention: pruned' "$MEF_PID" || fail "no pruning at start"
grep -q 'retention: pruned 1000 audit rows and 1 spent enrolments older than 2160h' "$tmp/mef.err" ||
        fail "pruning at start: $(grep retention "$tmp/mef.err")"
ok "serving msce-mef pruned at start: 1000 old audit rows, 1 spent enrolment"
[ "$(q "SELECT count(*) FROM audit WHERE ts < $((now - 90 * 86400))")" = 0 ] || fail "old audit rows left"
[ "$(q "SELECT count(*) FROM audit WHERE ts = $recent")" = 10 ] || fail "recent audit rows pruned"
[ "$(q "SELECT group_concat(ke_id) FROM (SELECT ke_id FROM enrolments ORDER BY ke_id)")" = "00bb@mef.test,00cc@mef.test" ] ||
        fail "enrolments after pruning: $(q 'SELECT ke_id, state FROM enrolments')"
ok "recent rows, the active (expired) and the revoked-in-lifetime enrolments stay"
mef_stop
out=$(m prune) || fail "msce-mef prune failed"
[ "$out" = "Pruned 0 audit rows and 0 spent enrolments older than 2160h." ] || fail "prune: $out"
m --json audit --limit 1 | grep -q '"action": *"prune"' || fail "prune not audited: $(m --json audit --limit 1)"
ok "msce-mef prune: nothing left to prune, and audited"

# On a store another process holds locked: a clear error after the CLI's lock wait, with what
# was pruned before it (nothing here). A recent row after the old one: the newest row is never
# pruned (SQLite would number the next row 1 again in an emptied trail).
q "INSERT INTO audit (ts, actor, action, subject, detail) VALUES ($old, 'x', 'y', 'z', 'w'), ($recent, 'x', 'y', 'z', 'w');"
sqlite_lock "$tmp/mef.db" || fail "could not lock the database"
if m prune > "$tmp/out" 2>&1; then fail "prune on a locked store succeeded"; fi
sqlite_unlock || fail "the lock holder failed"
grep -q 'prune: Device or resource busy (after 0 audit rows and 0 spent enrolments older than 2160h)' "$tmp/out" ||
        fail "prune on a locked store: $(cat "$tmp/out")"
[ "$(q "SELECT count(*) FROM audit WHERE ts = $old")" = 1 ] || fail "the locked prune removed a row"
out=$(m prune) || fail "msce-mef prune after the lock failed"
[ "$out" = "Pruned 1 audit rows and 0 spent enrolments older than 2160h." ] || fail "prune after the lock: $out"
ok "msce-mef prune on a locked store: a clear error, nothing lost; once free, it prunes"

# A million old rows (what a restart after a long stop, or a shorter keep, leaves to prune): in
# one transaction they hold the write lock about a second, and every enrolment meanwhile waits
# out busy_timeout (300 ms here) and is answered 503. In steps of STORE_PRUNE_STEP rows behind
# the requests, none is. One store thread: requests and the pass share it.
conf 90d "$(printf 'busy_timeout = 300\nthreads = 1')" "enrolments_per_node = 0"
(
        umask 077
        for i in 2 3 4 5; do
                m node add "urn:dev:ops:ret-$i" --cse-id "/mn-ret-$i" --cse-base https://in.example.net/base \
                        --psk-id "kpm-ret-$i" --generate-psk "$tmp/kpm-$i.hex" > /dev/null
                printf 'urn:dev:ops:ret-%s kpm-ret-%s %s\n' "$i" "$i" "$(tr -d '\n' < "$tmp/kpm-$i.hex")"
        done > "$tmp/gateways"
)
q "WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 1000000)
   INSERT INTO audit (ts, actor, action, subject, detail) SELECT $old + x / 100, 'psk:kpm-ret-2', 'fetch', 'urn:dev:ops:ret-2', 'target /in-cse' FROM i;
   INSERT INTO audit (ts, actor, action, subject, detail) VALUES ($recent, 'x', 'y', 'z', 'newest');"
mef_start "$tmp/mef.conf.in" || fail "msce-mef did not start"
# From before the pass starts (at most a second after start) to well into it.
"$loadgen" --gateways "$tmp/gateways" --duration 3 --warmup 0 --concurrency 4 --exchange-timeout 10 \
        "https://127.0.0.1:$PORT/msce" > "$tmp/out" 2>&1 || fail "msce-loadgen failed"
grep -q '^failures by class: none$' "$tmp/out" || fail "enrolments failed during the pass: $(cat "$tmp/out")"
wait_line 120 "$tmp/mef.err" 'retention: pruned 1000000 audit rows' "$MEF_PID" ||
        fail "the pass did not end: $(grep retention "$tmp/mef.err")"
! grep -q -- '-> 5[0-9][0-9]' "$tmp/mef.err" || fail "5xx answers: $(grep -- '-> 5' "$tmp/mef.err" | head -3)"
[ "$(q "SELECT count(*) FROM audit WHERE ts < $((now - 90 * 86400))")" = 0 ] || fail "old audit rows left"
ok "a million old audit rows pruned while 4 gateways enrolled again and again: $(sed -n 's/^ok\/s \([0-9]*\) *ok \([0-9]*\).*/\2 enrolments/p' "$tmp/out"), none failed"
mef_stop

conf forever
q "INSERT INTO audit (ts, actor, action, subject, detail) VALUES ($old, 'x', 'y', 'z', 'w');"
if m prune > "$tmp/out" 2>&1; then fail "prune with keep = forever succeeded"; fi
grep -q 'keep = forever: nothing is pruned' "$tmp/out" || fail "prune with keep = forever: $(cat "$tmp/out")"
[ "$(q "SELECT count(*) FROM audit WHERE ts = $old")" = 1 ] || fail "keep = forever pruned"
ok "[audit] keep = forever keeps everything"

# The newest row stays, however old: SQLite numbers a new row after the largest id left, and a
# trail emptied would start again at 1, below what a follower of "audit --after ID" last saw.
conf 90d
newest=$(q "SELECT max(id) FROM audit")
q "UPDATE audit SET ts = $old"
out=$(m prune) || fail "msce-mef prune of an old trail failed"
[ "$(q "SELECT group_concat(id) FROM audit WHERE ts = $old")" = "$newest" ] || fail "prune took the newest row: $out"
[ "$(q "SELECT min(id) FROM audit WHERE ts > $old")" -gt "$newest" ] || fail "a new row's id is not after $newest"
ok "prune keeps the newest audit row; the next one is numbered after it"
tap_done

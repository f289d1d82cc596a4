#!/usr/bin/env bash
# The store off the event loop (mef/store-queue.h): while another process holds an exclusive
# lock on the SQLite database (a backup script, a slow disk),
#  - an enrolment is answered 503 with Retry-After once [store] busy_timeout has passed, and
#    nothing of it is stored;
#  - meanwhile another connection's TLS handshake (and its 403 answer) completes;
#  - once the lock is gone the next enrolment succeeds, with the same MEF process.
# Usage: mef-store-lock.sh PATH/TO/msce-mef. Exit 77 (skip) without openssl or python3.
set -euo pipefail

mef=${1:?usage: mef-store-lock.sh PATH/TO/msce-mef}
command -v openssl >/dev/null || { echo "SKIP: openssl is not installed"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: python3 is not installed"; exit 77; }

FQDN=mef.test
NODE=urn:dev:ops:lock-1
BUSY_MS=2000

tmp=$(mktemp -d)
mef_pid= lock_pid=
cleanup() {
        [ -n "$lock_pid" ] && { kill "$lock_pid" 2>/dev/null || true; wait "$lock_pid" 2>/dev/null || true; }
        if [ -n "$mef_pid" ]; then kill "$mef_pid" 2>/dev/null || true; wait "$mef_pid" 2>/dev/null || true; fi
        rm -rf "$tmp"
}
trap cleanup EXIT
fail() {
        echo "FAIL: $*"
        echo "--- msce-mef log:"; cat "$tmp/mef.log" 2>/dev/null || true
        exit 1
}
ms() { date +%s%3N; }

cat > "$tmp/mef.conf" <<EOF
[server]
listen = 127.0.0.1:0
fqdn = $FQDN

[store]
path = $tmp/mef.db
master_key = $tmp/master.key
busy_timeout = $BUSY_MS

[limits]
retry_after = 7
EOF
m() { "$mef" --config "$tmp/mef.conf" "$@"; }
m init >/dev/null
m node add "$NODE" --cse-id /mn-cse-lock --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --psk-id kpm-lock-1 --generate-psk "$tmp/kpm.hex" >/dev/null
kpm=$(tr -d '\n' < "$tmp/kpm.hex")

"$mef" --config "$tmp/mef.conf" serve > "$tmp/mef.out" 2> "$tmp/mef.log" &
mef_pid=$!
for _ in $(seq 600); do # 30 s: a deadline for a hang
        grep -qs 'listening on' "$tmp/mef.out" && break
        kill -0 "$mef_pid" 2>/dev/null || fail "msce-mef exited at start"
        sleep 0.05
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/mef.out")
[ -n "$port" ] || fail "msce-mef did not report its port"

# exchange PSK IDENTITY REQUEST-FILE: the s_client transcript, then the HTTP response.
exchange() {
        timeout 20 openssl s_client -connect "127.0.0.1:$port" -psk "$1" -psk_identity "$2" -tls1_3 \
                -ciphersuites TLS_AES_128_GCM_SHA256 -ign_eof < "$3" 2>&1 || true
}
body="{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}"
printf 'POST /msce/enrolments HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\nX-M2M-RI: ri-1\r\nX-M2M-RVI: 3\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' \
        "$FQDN" "$NODE" "${#body}" "$body" > "$tmp/enrol.req"
rows() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from enrolments").fetchone()[0])' "$tmp/mef.db"; }

# Hold the write lock from another process until told to let go (its stdin closes).
mkfifo "$tmp/hold"
python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
' "$tmp/mef.db" < "$tmp/hold" > "$tmp/lock.out" &
lock_pid=$!
exec 3> "$tmp/hold"
for _ in $(seq 600); do
        grep -qs locked "$tmp/lock.out" && break
        kill -0 "$lock_pid" 2>/dev/null || fail "could not lock the database"
        sleep 0.05
done

t0=$(ms)
exchange "$kpm" kpm-lock-1 "$tmp/enrol.req" > "$tmp/locked.out" &
enrol_pid=$!
# Another connection while that enrolment waits for the store: its handshake (the PSK lookup
# reads the database, which the lock does not hold up in WAL mode) completes, and the
# enrolment is still waiting when it does.
for _ in $(seq 200); do grep -qs 'CONNECTED' "$tmp/locked.out" && break; sleep 0.01; done
t1=$(ms)
timeout 10 openssl s_client -connect "127.0.0.1:$port" -psk "$kpm" -psk_identity kpm-lock-1 -tls1_3 \
        -ciphersuites TLS_AES_128_GCM_SHA256 < /dev/null > "$tmp/handshake.out" 2>&1 || true
t2=$(ms)
grep -Eq 'Protocol *: TLSv1.3|^(New|Reused), TLSv1.3' "$tmp/handshake.out" || fail "handshake under the lock: $(cat "$tmp/handshake.out")"
grep -q "^HTTP/1.1" "$tmp/locked.out" && { cat "$tmp/locked.out"; fail "the enrolment was answered before the other handshake completed"; }
echo "ok: a handshake completes in $((t2 - t1)) ms while an enrolment waits for the locked store"

wait "$enrol_pid"
t3=$(ms)
grep -q '^HTTP/1.1 503 ' "$tmp/locked.out" || fail "enrol under the lock: not 503: $(cat "$tmp/locked.out")"
grep -qi '^Retry-After: 7' "$tmp/locked.out" || fail "503 without Retry-After: 7"
echo "ok: enrolment under the lock: 503 + Retry-After after $((t3 - t0)) ms (busy_timeout $BUSY_MS ms)"

exec 3>&-
wait "$lock_pid" || fail "the lock holder failed"
lock_pid=
[ "$(rows)" = 0 ] || fail "the refused enrolment left a row"
echo "ok: the refused enrolment stored nothing"

exchange "$kpm" kpm-lock-1 "$tmp/enrol.req" > "$tmp/after.out"
grep -q '^HTTP/1.1 201 ' "$tmp/after.out" || fail "enrol after the lock: not 201: $(cat "$tmp/after.out")"
[ "$(rows)" = 1 ] || fail "expected one enrolment row"
echo "ok: lock released: the next enrolment succeeds (same MEF process)"

kill -TERM "$mef_pid"
rc=0; wait "$mef_pid" || rc=$?
mef_pid=
[ "$rc" -eq 0 ] || fail "msce-mef exited $rc on SIGTERM"
# the sanitizer build: reports from the server land in its log
! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$tmp/mef.log" || fail "sanitizer report in the msce-mef log"
echo "ok: clean stop"

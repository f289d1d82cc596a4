#!/usr/bin/env bash
# The store off the event loop (mef/store-queue.h): while another process holds an exclusive
# lock on the SQLite database (a backup script, a slow disk),
#  - another connection's TLS handshake (and its 403 answer) completes while an enrolment waits
#    for the store (a MEF whose busy_timeout outlasts the test's lock: the enrolment cannot be
#    answered before the test lets go, however slow the machine), which then succeeds;
#  - with a short busy_timeout, an enrolment is answered 503 with Retry-After once it has
#    passed, and nothing of it is stored; the log line says why (the store was busy);
#  - a client that closes while its request waits does not keep the loop busy;
#  - once the lock is gone the next enrolment succeeds, with the same MEF process.
# Usage: mef-store-lock.sh PATH/TO/msce-mef (TAP). Skipped without openssl, python3 or ss.
set -euo pipefail

MEF=${1:?usage: mef-store-lock.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl python3 ss

FQDN=mef.test
NODE=urn:dev:ops:lock-1
BUSY_MS=2000
tmpdir mef-store-lock
LIB_SHOW="$T/out $T/mef.err"

# first the MEF that waits for the lock as long as the test holds it
mef_conf "busy_timeout = 60000" "threads = 1" "[limits]" "retry_after = 7" "request_timeout = 120000"
mefctl init || fail "init"
mefctl node add "$NODE" --cse-id /mn-cse-lock --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --psk-id kpm-lock-1 --generate-psk "$T/kpm.hex" || fail "node add"
kpm=$(tr -d '\n' < "$T/kpm.hex")
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"

request POST /msce/enrolments "$NODE" "{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}" > "$T/enrol.req"
enrol() { psk_exchange "$kpm" kpm-lock-1 < "$T/enrol.req"; }
rows() { python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from enrolments").fetchone()[0])' "$T/mef.db"; }

# Hold the write lock from another process until told to let go.
sqlite_lock "$T/mef.db" || fail "could not lock the database"

# The first enrolment's request goes in through a FIFO once its handshake is done, so that the
# test sees it sent: the client's socket has sent more than the handshake, and msce-mef's socket
# has received and read every byte of it. The loop reads the request and queues it for the store
# in one go, so the handshake below, on the same loop, completes with it queued or running.
tcp_of() { ss -tniH state established "( $1 = :$PORT )"; } # tcp_of sport|dport: one connection
tcp_num() { grep -o "$1:[0-9]*" | cut -d: -f2; }            # tcp_num FIELD < ss OUTPUT
client_sent() { tcp_of dport | tcp_num bytes_sent; }
request_read() {
        local srv sent
        srv=$(tcp_of sport) sent=$(client_sent)
        [ "${sent:-0}" -gt "$sent0" ] && [ "$(tcp_num bytes_received <<< "$srv")" = "$sent" ] &&
                [ "$(awk 'NR == 1 {print $1}' <<< "$srv")" = 0 ]
}
# enrol_read: an enrolment in the background (enrol_pid, its answer in locked.out), once
# msce-mef has read its request
enrol_read() {
        rm -f "$T/enrol.fifo"
        mkfifo "$T/enrol.fifo"
        # 3>&-: not a writer of the lock's FIFO (lib.sh sqlite_lock), which would hold the lock
        # past sqlite_unlock for as long as it runs
        psk_exchange "$kpm" kpm-lock-1 < "$T/enrol.fifo" > "$T/locked.out" 3>&- &
        enrol_pid=$!
        exec 4> "$T/enrol.fifo"
        wait_line 10 "$T/locked.out" 'Protocol *: TLSv1.3|^(New|Reused), TLSv1.3' "$enrol_pid" ||
                { cp "$T/locked.out" "$T/out"; fail "the enrolment's handshake under the lock"; }
        [ "$(tcp_of dport | grep -c '^[0-9]')" = 1 ] || fail "expected one client connection: $(tcp_of dport)"
        sent0=$(client_sent)
        cat "$T/enrol.req" >&4
        exec 4>&-
        wait_for 10 request_read || fail "msce-mef did not read the enrolment request: $(tcp_of sport; tcp_of dport)"
}
enrol_read
# Another connection while that enrolment waits for the store: its handshake (the PSK lookup
# reads the database, which the lock does not hold up in WAL mode) completes, and the
# enrolment is still waiting when it does: nothing answers it before the lock goes (a loop
# that waited for the store would hold this handshake until then, and answer the enrolment
# first).
t1=$(ms)
psk_exchange "$kpm" kpm-lock-1 1.3 -no_ign_eof < /dev/null > "$T/out"
t2=$(ms)
grep -Eq 'Protocol *: TLSv1.3|^(New|Reused), TLSv1.3' "$T/out" || fail "handshake under the lock"
if grep -q "^HTTP/1.1" "$T/locked.out"; then
        cp "$T/locked.out" "$T/out"
        fail "the enrolment was answered before the other handshake completed"
fi
ok "a handshake completes in $((t2 - t1)) ms while an enrolment waits for the locked store"
sqlite_unlock || fail "the lock holder failed"
wait "$enrol_pid"
cp "$T/locked.out" "$T/out"
[ "$(http_status < "$T/out")" = 201 ] && [ "$(rows)" = 1 ] || fail "the waiting enrolment after the lock: not 201"
ok "the lock released: the waiting enrolment is stored and answered 201"
mef_term_clean || fail "clean stop"

# Then a MEF that waits busy_timeout at most.
PORT=
mef_conf "busy_timeout = $BUSY_MS" "threads = 1" "[limits]" "retry_after = 7"
mef_start "$T/mef.conf.in" || fail "msce-mef did not start again"
sqlite_lock "$T/mef.db" || fail "could not lock the database again"
t0=$(ms)
enrol_read

# More behind it, queued for the one store thread: not kept waiting past busy_timeout either.
queued=()
for i in 1 2 3; do enrol > "$T/queued-$i.out" 3>&- & queued+=($!); done
wait "$enrol_pid"
t3=$(ms)
cp "$T/locked.out" "$T/out"
[ "$(http_status < "$T/out")" = 503 ] || fail "enrol under the lock: not 503"
grep -qi '^Retry-After: 7' "$T/out" || fail "503 without Retry-After: 7"
# Its cause: the enrolment's own wait for the lock, even when the retention job's first pass
# (within a second of start) took the one thread before it: that job waits 100 ms at most for
# a lock, and the request is not left to time out in the queue behind it.
wait_line 10 "$T/mef.err" "POST /msce/enrolments -> 503 .*: storing the enrolment: Device or resource busy$" ||
        fail "the log does not give the cause of the 503"
ok "enrolment under the lock: 503 + Retry-After after $((t3 - t0)) ms (busy_timeout $BUSY_MS ms), the cause logged"
for p in "${queued[@]}"; do wait "$p"; done
t4=$(ms)
for i in 1 2 3; do
        cp "$T/queued-$i.out" "$T/out"
        [ "$(http_status < "$T/out")" = 503 ] || fail "queued enrol $i: not 503"
done
ok "3 more enrolments queued behind it (one store thread): 503 + Retry-After, all within $((t4 - t0)) ms"

# A client that sends its enrolment and closes at once: its socket turns readable (close_notify,
# FIN) while the request waits for the store. The loop must turn it off then, not be woken by
# it again and again until the answer: msce-mef's CPU time across the wait stays well under the
# wall time it took (a spinning loop takes all of it).
socks() { find "/proc/$MEF_PID/fd" -lname 'socket:*' 2> /dev/null | wc -l; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$MEF_PID/stat"; }
socks_back() { [ "$(socks)" -le "$s0" ]; }
s0=$(socks) c0=$(cpu_ticks) t5=$(ms)
psk_exchange "$kpm" kpm-lock-1 1.3 -no_ign_eof < "$T/enrol.req" > "$T/closed.out"
grep -Eq 'Protocol *: TLSv1.3|^(New|Reused), TLSv1.3' "$T/closed.out" || fail "handshake of the closing client"
wait_for 30 socks_back || fail "the closed client's connection is still open: $(socks) sockets, $s0 before"
c1=$(cpu_ticks) t6=$(ms)
used_ms=$(((c1 - c0) * 1000 / $(getconf CLK_TCK)))
[ $((used_ms * 2)) -lt $((t6 - t5)) ] || fail "msce-mef used $used_ms ms of CPU in $((t6 - t5)) ms"
ok "a client gone while its request waits: closed, $used_ms ms of CPU in $((t6 - t5)) ms"

sqlite_unlock || fail "the lock holder failed"
[ "$(rows)" = 1 ] || fail "the refused enrolments left a row"
ok "the refused enrolments stored nothing"

enrol > "$T/out"
[ "$(http_status < "$T/out")" = 201 ] || fail "enrol after the lock: not 201"
[ "$(rows)" = 2 ] || fail "expected two enrolment rows"
ok "lock released: the next enrolment succeeds (same MEF process)"

mef_term_clean || fail "clean stop"
ok "clean stop"
tap_done

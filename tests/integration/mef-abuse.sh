#!/usr/bin/env bash
# msce-mef's server loop against misbehaving clients (protocol section 6: limits are errors,
# never a crash, a hang or a partial write). With max_connections = 4 (+ 5 overflow),
# handshake_timeout = 1 s and request_timeout = 2 s (1-3, each on a fresh MEF), then 60 s (4-7,
# so that a close there cannot be a deadline's):
#  1. silent TCP clients beyond every slot (from the client's own address, over its bound of
#     8 unauthenticated connections) do not keep a normal client from being served: they are
#     closed to make room (the accept queue is FIFO: the MEF has taken them before the client);
#  2. handshaken clients filling every service slot: the next one is answered 503 + Retry-After;
#  3. a TLS client that never sends its request is dropped at the request deadline;
#  4. garbage instead of a ClientHello is dropped at once;
#  4b. a partial ClientHello is cut at the handshake deadline, the log saying its 11 bytes;
#  5. a request head of exactly 8 KiB is served, 8 KiB + 1 is answered 4xx / RSC 4000 and
#     the connection closed (the client is not left waiting for a 60 s deadline); 65
#     headers in a short head are answered 431;
#  5c. an X-M2M-RI with a space or of 100 characters is echoed, one with a tab, a non-ASCII
#      byte or of 1025 characters refused 400/4000 with nothing enrolled;
#  5d. a status check or deregistration whose X-M2M-Origin is not the KeID is refused 403/4103,
#      audited, the enrolment still active;
#  6. a body over 64 KiB is answered 4xx / RSC 4000 and the connection closed;
#  6b. a 64 KiB body in 8-byte chunks (104 KiB on the wire, within the framing limits) is served;
#  7. 100 connect-and-close in a row, and 20 truncated ClientHellos;
# and the MEF still serves at the end and stops cleanly on SIGTERM. No fixed sleeps: every wait
# is for a line in the MEF's log or a client's output, with a 30 s deadline against hangs.
# Usage: mef-abuse.sh PATH/TO/msce-mef (TAP). Skipped without openssl or python3.
set -euo pipefail

MEF=${1:?usage: mef-abuse.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl python3

FQDN=mef.test
NODE=urn:dev:ops:abuse-1

tmpdir mef-abuse
tmp=$T
bg_pids=()
at_exit 'for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done'
fail() {
        not_ok "$*"
        echo "# msce-mef log:"; sed 's/^/#   /' "$tmp/mef.err" 2>/dev/null || true
        tap_done
}
alive() { kill -0 "$MEF_PID" 2>/dev/null || fail "msce-mef died ($1)"; }

# MEF_TEST_PORT: a fixed port instead of 0 (the kernel's choice, read back from stdout).
# abuse_conf TIMEOUT_MS: handshake_timeout TIMEOUT_MS, request_timeout twice that. One node
# fills the slots in 2.: no per-node cap (mef-node-conns.sh tests it).
abuse_conf() {
        mef_conf "[limits]" "max_connections = 4" "handshake_timeout = $1" "request_timeout = $(($1 * 2))" \
                "retry_after = 7" "connections_per_node = 0"
}
abuse_conf 1000

m() { "$MEF" --config "$MEF_CONF" "$@"; }
m init >/dev/null
m target add /in-cse --psk-id in-cse-psk --generate-psk "$tmp/tpsk.hex" >/dev/null
m node add "$NODE" --cse-id /mn-cse-1 --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --psk-id kpm-abuse-1 --generate-psk "$tmp/kpm.hex" --target /in-cse >/dev/null
kpm=$(tr -d '\n' < "$tmp/kpm.hex")

# wait_until DESCRIPTION COMMAND...: 30 s is a deadline for a hang, never a speed requirement.
wait_until() {
        local what=$1
        shift
        wait_for 30 "$@" || fail "$what: not after 30 s"
}
log_count() { grep -c -- "$1" "$tmp/mef.err" 2>/dev/null || true; } # log_count ERE
log_has() { [ "$(log_count "$1")" -ge "${2:-1}" ]; }                  # log_has ERE [N]

# mef_restart [TIMEOUT_MS]: a fresh MEF (the old one stopped), its log in mef.err (the previous
# ones kept as mef.err.N), its port in port.
starts=0
mef_restart() {
        mef_stop
        if [ -e "$tmp/mef.err" ]; then mv "$tmp/mef.err" "$tmp/mef.err.$starts"; fi
        starts=$((starts + 1))
        PORT=${MEF_TEST_PORT:-}
        abuse_conf "${1:-1000}"
        mef_start "$tmp/mef.conf.in" || fail "msce-mef did not start"
        port=$PORT
}
mef_restart 1000

body="{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}"
# enrol_request [PAD [RI]]: an enrol request; PAD bytes of an extra header pad the head.
enrol_request() {
        local pad=${1:-0} ri=${2:-$(printf 'ri-%05d' "$RANDOM")} # fixed length: the head sizes below count on it
        printf 'POST /msce/enrolments HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\nX-M2M-RI: %s\r\nX-M2M-RVI: 3\r\n' \
                "$FQDN" "$NODE" "$ri"
        [ "$pad" -gt 0 ] && printf 'X-Pad: %s\r\n' "$(head -c "$pad" /dev/zero | tr '\0' a)"
        printf 'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#body}" "$body"
}
# tls_send FILE [timeout]: send FILE over TLS 1.3 with the node's PSK, print what comes back;
# tls_rc: the client's exit status (124: it gave up at the timeout, the MEF never closed).
tls_rc=0
tls_send() {
        tls_rc=0
        timeout "${2:-30}" openssl s_client -connect "127.0.0.1:$port" -psk "$kpm" -psk_identity kpm-abuse-1 \
                -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -quiet -ign_eof < "$1" 2>/dev/null || tls_rc=$?
}
status_of() { sed -n 's/^HTTP\/1.1 \([0-9]*\) .*/\1/p' | head -n1; }
enrol_ok() {
        enrol_request > "$tmp/ok.req"
        tls_send "$tmp/ok.req" > "$tmp/ok.out"
        [ "$(status_of < "$tmp/ok.out")" = 201 ] || fail "$1: a normal enrol was not served: $(cat "$tmp/ok.out")"
}
# raw PYTHON-SNIPPET: raw TCP clients (port in PORT).
raw() { PORT=$port python3 -c "$1"; } # env: PORT (and READY where used)

enrol_ok "before"
ok "normal enrol"

# 1. Silent TCP clients: 4 in service + 5 overflow + 2 more in the backlog, held until killed.
# (python3 itself in the background, not the raw function: $! must be its pid, to kill it)
PORT=$port READY=$tmp/silent.ready python3 -c '
import os, socket, time
socks = [socket.create_connection(("127.0.0.1", int(os.environ["PORT"]))) for _ in range(11)]
open(os.environ["READY"], "w").close()
time.sleep(120)
' &
silent_pid=$!
bg_pids+=($silent_pid)
wait_until "silent clients connecting" test -e "$tmp/silent.ready"
enrol_ok "after silent clients"
# and they do not stay: evicted to make room, or closed at the first-byte deadline (1 s here)
wait_until "silent clients evicted or timed out" \
        grep -Eq 'without a byte to make room|timed out waiting for a ClientHello' "$tmp/mef.err"
ok "served while 11 silent clients held their sockets; they were closed"
alive "silent clients"
kill "$silent_pid" 2>/dev/null || true
wait "$silent_pid" 2>/dev/null || true

# 2. Handshaken clients in every service slot (a fresh MEF: nothing left of 1): the next one
# gets 503 + Retry-After. The clients read a FIFO that we hold open: they never send a request
# and never see EOF on stdin, until the MEF drops them (3.).
mef_restart 1000
mkfifo "$tmp/hold"
exec 7<>"$tmp/hold"
held=()
for i in 1 2 3 4; do
        timeout 60 openssl s_client -connect "127.0.0.1:$port" -psk "$kpm" -psk_identity kpm-abuse-1 \
                -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 < "$tmp/hold" > "$tmp/held-$i.out" 2>&1 &
        held+=($!)
        bg_pids+=($!)
done
# their handshakes are done when s_client prints the session's cipher
for i in 1 2 3 4; do
        wait_until "TLS client $i's handshake" grep -qs 'Cipher is' "$tmp/held-$i.out"
done
enrol_request > "$tmp/busy.req"
tls_send "$tmp/busy.req" > "$tmp/busy.out"
[ "$(status_of < "$tmp/busy.out")" = 503 ] || fail "overload: expected 503: $(cat "$tmp/busy.out")"
grep -qi '^Retry-After: 7' "$tmp/busy.out" || fail "503 without Retry-After: 7"
grep -qi '^X-M2M-RSC: 5000' "$tmp/busy.out" || fail "503 without RSC 5000"
ok "503 + Retry-After when every slot is in service"

# 3. Those four never sent a request: dropped at the 2 s request deadline.
# Each client's exit shows that the MEF closed it (its log folds the events of one address into
# a line per 10 s: the log is checked at the end).
for p in "${held[@]}"; do
        rc=0
        wait "$p" || rc=$?
        [ "$rc" -ne 124 ] || fail "a silent TLS client was not disconnected by the MEF"
done
exec 7>&-
enrol_ok "after silent TLS clients"
ok "silent TLS clients dropped at the request deadline"

# 4b. The start of a ClientHello, then silence (from an address of its own, so that its line
# is not folded into a summary): cut at the 1 s handshake deadline (this MEF's, before the
# 60 s one of 4-7), the log says how far it got.
raw '
import os, socket, time
s = socket.socket()
s.bind(("127.0.0.5", 0))
s.connect(("127.0.0.1", int(os.environ["PORT"])))
s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
s.settimeout(30)
try:
    d = s.recv(100)
except socket.timeout:
    raise SystemExit("partial ClientHello: still open after 30 s")
except ConnectionResetError:
    pass
' || fail "partial ClientHello"
grep -q '127.0.0.5:[0-9]*: timed out TLS handshake (11 bytes received)' "$tmp/mef.err" ||
        fail "handshake timeout without the bytes received"
ok "a partial ClientHello is cut at the handshake deadline, with its 11 bytes in the log"

# 4.-7. on a MEF with 60 s deadlines: a connection it closes here is closed for what was sent,
# not by a deadline (the clients give up after 30 s, and say so).
mef_restart 60000

# 4. Garbage instead of a ClientHello: closed at once, no HTTP answer.
raw '
import os, socket, time
for junk in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", os.urandom(65536), b"\x16\x03\x01\xff\xff" + os.urandom(100)):
    s = socket.create_connection(("127.0.0.1", int(os.environ["PORT"])))
    s.settimeout(30)
    t = time.time()
    try:
        s.sendall(junk)
    except OSError:
        pass
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                break
            got += d
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise SystemExit("garbage: connection still open after 30 s")
    if got.startswith(b"HTTP/"):
        raise SystemExit("garbage: got an HTTP answer")
    s.close()
' || fail "garbage instead of a ClientHello"
alive "garbage"
ok "garbage instead of a ClientHello dropped"

# 5. Head limit: exactly 8192 bytes is served, 8193 refused with a 4xx and RSC 4000.
len=$(enrol_request 1 | sed -n '1,/^\r$/p' | wc -c)
pad=$((8192 - len + 1)) # the 1-byte pad header line already counted 1 byte of padding
enrol_request "$pad" > "$tmp/head8k.req"
[ "$(sed -n '1,/^\r$/p' "$tmp/head8k.req" | wc -c)" -eq 8192 ] || fail "test bug: head is not 8192 bytes"
tls_send "$tmp/head8k.req" > "$tmp/head8k.out"
[ "$(status_of < "$tmp/head8k.out")" = 201 ] || fail "8 KiB head: $(head -c 300 "$tmp/head8k.out")"
enrol_request $((pad + 1)) > "$tmp/head8k1.req"
tls_send "$tmp/head8k1.req" 30 > "$tmp/head8k1.out"
[ "$tls_rc" -ne 124 ] || fail "8 KiB + 1 head: connection not closed after the answer (client gave up after 30 s)"
st=$(status_of < "$tmp/head8k1.out")
case "$st" in 4??) ;; *) fail "8 KiB + 1 head: status '$st'";; esac
grep -qi '^X-M2M-RSC: 4000' "$tmp/head8k1.out" || fail "8 KiB + 1 head without RSC 4000"
grep -q '"m2m:dbg"' "$tmp/head8k1.out" || fail "8 KiB + 1 head without m2m:dbg"
ok "8 KiB head served, 8 KiB + 1 answered $st"

# 5b. 65 headers in a small head: the header limit (431), not the body's (413).
{
        printf 'POST /msce/enrolments HTTP/1.1\r\nHost: %s\r\nContent-Length: 2\r\n' "$FQDN"
        for i in $(seq 63); do printf 'X-%d: %d\r\n' "$i" "$i"; done
        printf '\r\n{}'
} > "$tmp/headers65.req"
tls_send "$tmp/headers65.req" > "$tmp/headers65.out"
st=$(status_of < "$tmp/headers65.out")
[ "$st" = 431 ] || fail "65 headers in $(wc -c < "$tmp/headers65.req") bytes: status '$st', want 431"
ok "65 headers in $(wc -c < "$tmp/headers65.req") bytes answered 431"

# 5c. X-M2M-RI: an executed request has it echoed (a space, 100 characters); one that the HTTP
# parser passes but the MEF could not echo (a tab, a non-ASCII byte, 1025 characters) is refused
# 400/4000 before anything is enrolled.
for ri in "ri with a space" "$(head -c 100 /dev/zero | tr '\0' r)"; do
        enrol_request 0 "$ri" > "$tmp/ri.req"
        tls_send "$tmp/ri.req" > "$tmp/ri.out"
        [ "$(status_of < "$tmp/ri.out")" = 201 ] || fail "RI of ${#ri} characters: $(head -c 300 "$tmp/ri.out")"
        grep -qxF "X-M2M-RI: $ri"$'\r' "$tmp/ri.out" || fail "RI '$ri' not echoed: $(head -c 300 "$tmp/ri.out")"
done
enrolments() { m enrolments "$NODE" | grep -c '@' || true; }
before=$(enrolments)
for ri in $'ri\tx' $'caf\xc3\xa9' "$(head -c 1025 /dev/zero | tr '\0' r)"; do
        enrol_request 0 "$ri" > "$tmp/ri.req"
        tls_send "$tmp/ri.req" > "$tmp/ri.out"
        [ "$(status_of < "$tmp/ri.out")" = 400 ] && grep -qi '^X-M2M-RSC: 4000' "$tmp/ri.out" ||
                fail "RI of ${#ri} characters the MEF cannot echo: $(head -c 300 "$tmp/ri.out")"
done
[ "$(enrolments)" = "$before" ] || fail "RIs the MEF cannot echo: enrolled ($before enrolments before, $(enrolments) after)"
ok "X-M2M-RI with a space and of 100 characters echoed; with a tab, a non-ASCII byte or of 1025 characters 400/4000, nothing enrolled"

# 5d. A status check's and a deregistration's X-M2M-Origin is the KeID (protocol section 3): the
# node's ID or another KeID there is refused 403/4103 with its reason, audited, nothing changed.
enrol_ok "before the X-M2M-Origin checks"
keid=$(json_str keID < "$tmp/ok.out")
for method in GET DELETE; do
        for origin in "$NODE" "00@other.example"; do
                request "$method" "/msce/enrolments/$keid" "$origin" > "$tmp/origin.req"
                tls_send "$tmp/origin.req" > "$tmp/origin.out"
                [ "$(status_of < "$tmp/origin.out")" = 403 ] && grep -qi '^X-M2M-RSC: 4103' "$tmp/origin.out" &&
                        grep -q '"m2m:dbg":"X-M2M-Origin: not the KeID in the path"' "$tmp/origin.out" ||
                        fail "$method with X-M2M-Origin $origin: $(head -c 300 "$tmp/origin.out")"
        done
done
m enrolments "$NODE" | grep -F "$keid" | grep -qw active || fail "refused deregistrations: $keid no longer active"
for action in status deregister; do
        m audit --action "$action" | grep -F "$keid" | grep -q '403 X-M2M-Origin: not the KeID in the path' ||
                fail "no audit row for the $action refused for its X-M2M-Origin"
done
request GET "/msce/enrolments/$keid" "$keid" > "$tmp/origin.req"
tls_send "$tmp/origin.req" > "$tmp/origin.out"
grep -q '"state":"active"' "$tmp/origin.out" || fail "status with the KeID as X-M2M-Origin: $(head -c 300 "$tmp/origin.out")"
ok "status and deregister with the node's ID or another KeID as X-M2M-Origin: 403/4103, audited, still active"

# 6. Body over 64 KiB.
{
        printf 'POST /msce/enrolments HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\nX-M2M-RI: big\r\nX-M2M-RVI: 3\r\n' "$FQDN" "$NODE"
        printf 'Content-Type: application/json\r\nContent-Length: 65537\r\n\r\n'
        head -c 65537 /dev/zero | tr '\0' ' '
} > "$tmp/big.req"
tls_send "$tmp/big.req" 30 > "$tmp/big.out"
[ "$tls_rc" -ne 124 ] || fail "64 KiB + 1 body: connection not closed after the answer (client gave up after 30 s)"
st=$(status_of < "$tmp/big.out")
case "$st" in 4??) ;; *) fail "64 KiB + 1 body: status '$st'";; esac
grep -qi '^X-M2M-RSC: 4000' "$tmp/big.out" || fail "64 KiB + 1 body without RSC 4000"
ok "64 KiB + 1 body answered $st"
alive "big body"

# 6b. A chunked body within protocol.md's framing limits (64 KiB decoded, 128 KiB on the wire) in
# 8-byte chunks: 104 KiB on the wire, more than a head and a body of 64 KiB, is served.
CHUNKED_BODY="$body" python3 -c '
import os, sys
body = os.environ["CHUNKED_BODY"].encode()
body += b" " * (65536 - len(body))
wire = b"".join(b"8\r\n" + body[i:i + 8] + b"\r\n" for i in range(0, len(body), 8)) + b"0\r\n\r\n"
assert 64 * 1024 + 8192 < len(wire) <= 128 * 1024
sys.stdout.buffer.write(b"POST /msce/enrolments HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\nX-M2M-RI: chunked\r\n"
                        b"X-M2M-RVI: 3\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                        % (sys.argv[1].encode(), sys.argv[2].encode()) + wire)
' "$FQDN" "$NODE" > "$tmp/chunked.req"
tls_send "$tmp/chunked.req" > "$tmp/chunked.out"
st=$(status_of < "$tmp/chunked.out")
[ "$st" = 201 ] || fail "64 KiB body in 8-byte chunks ($(wc -c < "$tmp/chunked.req") bytes): status '$st': $(head -c 300 "$tmp/chunked.out")"
ok "64 KiB body in 8-byte chunks ($(wc -c < "$tmp/chunked.req") bytes) served"

# 7. 100 connect-and-close, then 20 truncated ClientHellos.
raw '
import os, socket
port = int(os.environ["PORT"])
for _ in range(100):
    socket.create_connection(("127.0.0.1", port)).close()
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    s.close()
' || fail "connect-and-close"
alive "connect-and-close"
ok "100 connect-and-close and 20 truncated ClientHellos"

enrol_ok "at the end"
ok "still serving"
mef_term_clean || fail "clean stop on SIGTERM"
ok "clean stop on SIGTERM"
# The events of 3 were logged on their own or counted in a summary (written at the latest when
# that MEF stopped: its log is mef.err.2 now).
grep -Eq 'timed out reading the request|[0-9]+ timed out' "$tmp/mef.err.2" ||
        fail "silent TLS clients were not timed out"
ok "the request deadline is in the log"
tap_done

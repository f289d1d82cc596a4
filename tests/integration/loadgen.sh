#!/bin/bash
# SPDX-License-Identifier: MIT
# msce-loadgen against a local msce-mef (issue 13): 200 gateways all at once against two
# workers (none lost, every one enrolled, status-checked and its Kpsa fetched by the target);
# 10 concurrent enrolments of one node across the workers (--allow-duplicate-nodes) leave exactly
# one active enrolment; a re-enrolment after a 404 is reported apart from the gateways enrolled;
# without the option, a node on two lines of the gateways file is refused;
# a MEF with one connection slot answers 503 + Retry-After and the gateways wait and still all
# enrol; 429 + Retry-After (the per-node enrolment rate limit) is waited out as well; a gateway
# with a wrong key is counted as lost (exit 1), and so is one queued for a connection slot past
# --timeout; --concurrency below --procs still limits; a dead worker is restarted, and so is one
# that stops pinging the watchdog; READY=1 comes from the supervisor once all listen; a target
# past line 256 of the targets file is fetched with its own PSK.
# Usage: loadgen.sh BUILD_DIR (TAP)
set -euo pipefail

B=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
MEF=$B/msce-mef
LOADGEN=$B/msce-loadgen
. "$(dirname "$0")/lib.sh"
need_exec "$MEF" "$LOADGEN"
need_cmds python3 pgrep
GW=${LOADGEN_TEST_GATEWAYS:-200}
GW20=$((GW < 20 ? GW : 20))

tmpdir msce-loadgen
LIB_SHOW="$T/lg.err"
fail() {
        not_ok "$*"
        tail -n 20 "$T/mef.err" 2> /dev/null | sed 's/^/#   mef.err: /'
        tap_done
}
# stop_mef: the MEF stopped; the sanitizer build's reports from the workers on stderr, for
# tests/sanitize-wrap.sh
stop_mef() {
        [ -n "$MEF_PID" ] || return 0
        mef_stop
        grep -E -A30 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/mef.err" >&2 || true
}
at_exit stop_mef

# conf EXTRA_SERVER_LINES EXTRA_LIMITS_LINES [ENROLMENTS_PER_NODE]: the MEF's configuration,
# its store in CONF_DIR (default $T)
conf() {
        local d=${CONF_DIR:-$T}
        cat >"$d/mef.conf.in" <<EOF
[server]
listen = 127.0.0.1:@PORT@
fqdn = 127.0.0.1
$1
$(mef_store "$d")
[limits]
max_unauthenticated = 512
max_unauthenticated_per_source = 512
# 20 gateways enrol one node at once, and retry after 503s: the per-node rate limit (20 a
# minute by default) would refuse the retries (429) and slow them down
enrolments_per_node = ${3:-0}
$2
EOF
        PORT= mef_configure "$d/mef.conf.in"
}
start_mef() {
        PORT=
        mef_start "$T/mef.conf.in" || fail "msce-mef did not start"
}
workers() { [ "$(pgrep -c -P "$MEF_PID")" = 2 ]; }

loadgen() {
        local rc=0
        "$LOADGEN" "$@" "https://127.0.0.1:$PORT/msce" >"$T/lg.out" 2>"$T/lg.err" || rc=$?
        sed "s/^/# /" "$T/lg.out"
        cat "$T/lg.err" >&2
        return $rc
}

conf "workers = 2" ""
"$MEF" --config "$MEF_CONF" init >/dev/null
# store_fill NODES_CSV: the target and the nodes of NODES_CSV in the store of MEF_CONF
store_fill() {
        "$MEF" --config "$MEF_CONF" target add /in-cse --psk-id in-cse-psk --psk-file "$T/in.hex" >/dev/null &&
                "$MEF" --config "$MEF_CONF" node import "$1" >"${CONF_DIR:-$T}/import.out" &&
                grep -q "^Imported $(($(wc -l <"$1") - 1)) rows: $(($(wc -l <"$1") - 1)) added," "${CONF_DIR:-$T}/import.out"
}
(
        umask 077
        # A Kpm of 32 random bytes (as --generate-psk makes) for every node, all in one import: one
        # process and one transaction, not one msce-mef run each (which took 30 s for 200)
        { od -An -v -N32 -tx1 /dev/urandom | tr -d ' \n'; echo; } >"$T/in.hex"
        printf '/in-cse in-cse-psk %s\n' "$(cat "$T/in.hex")" >"$T/targets"
        od -An -v -N$((32 * GW)) -tx1 /dev/urandom | tr -d ' \n' | fold -w 64 | awk '{ print "node-" NR " kpm-" NR " " $1 }' \
                >"$T/gateways"
        [[ $(wc -l <"$T/gateways") == "$GW" ]]
        {
                echo "nodeID,kpmID,kpm,cseID,cseBase,targets"
                awk '{ sub(/^node-/, "", $1); print "node-" $1 "," $2 "," $3 ",/mn-cse-" $1 ",https://in.example.net:8443/~/in-cse/in-name,/in-cse" }' \
                        "$T/gateways"
        } >"$T/nodes.csv"
        head -n 2 "$T/nodes.csv" >"$T/node-1.csv"
        store_fill "$T/nodes.csv"
        for ((i = 1; i <= 10; i++)); do head -1 "$T/gateways"; done >"$T/same-node"
        for ((i = 1; i <= 2; i++)); do sed -n 2p "$T/gateways"; done >"$T/node2-twice"
        sed -n 2p "$T/gateways" | sed 's/ [0-9a-f]*$/ 000102030405060708090a0b0c0d0e0f/' >"$T/wrong-key"
        { echo "# node-1 twice, after an empty line"; echo; sed -n 1,2p "$T/gateways"; sed -n 1p "$T/gateways"; } \
                >"$T/dup-node"
        # a NUL in line 2: the text would end there (and its erase ran past the copy)
        { sed -n 1p "$T/gateways"; printf 'node-x\0 kpm-x 00\n'; sed -n 2p "$T/gateways"; } >"$T/nul-line"
        # text after the key; an ID of 256 characters (its last one was read as the PSK identity,
        # the identity as the key, and the line taken); one entry more than msce-loadgen reads
        { sed -n 1p "$T/gateways"; sed -n 2p "$T/gateways" | sed 's/$/ junk/'; } >"$T/junk-line"
        { sed -n 1p "$T/gateways"; printf '%0256d %s\n' 0 "$(sed -n 2p "$T/gateways" | cut -d' ' -f3)"; } >"$T/long-id"
        { sed -n 1p "$T/gateways"; sed -n 2p "$T/gateways" | awk '{ printf "%s %0128d %s\n", $1, 0, $3 }'; } >"$T/long-psk-id"
        { echo "# a comment is no entry"; awk 'BEGIN { for (i = 0; i <= 1000000; i++) print "x" }'; } >"$T/many"
)
ok "$GW nodes and a target in the store"

# The per-node enrolment rate limit (its row is below, after the 503 one) waits out most of a 20 s
# window: it runs from here on, beside the other rows, with a MEF of its own (its own port) and a
# store of its own holding node-1; its results are judged in its row.
mkdir "$T/rl"
(
        LIB_AT_EXIT= LIB_MEF_PIDS=
        trap lib_exit EXIT
        trap 'exit 1' INT TERM HUP
        lg=
        at_exit 'stop_pid "$lg"'
        CONF_DIR=$T/rl
        conf "" "" "1 per 20s"
        "$MEF" --config "$MEF_CONF" init >/dev/null
        store_fill "$T/node-1.csv"
        PORT=
        mef_start "$T/rl/mef.conf.in" "$T/rl"
        for i in 1 2; do
                rc=0
                "$LOADGEN" --gateways "$T/gateways" --count 1 --timeout 60 "https://127.0.0.1:$PORT/msce" \
                        >"$T/rl/lg-$i.out" 2>"$T/rl/lg-$i.err" &
                lg=$!
                wait "$lg" || rc=$?
                lg=
                echo "$rc" >"$T/rl/rc-$i"
        done
        mef_stop
) >"$T/rl/run.log" 2>&1 &
rl=$!
at_exit 'stop_pid "$rl"'

start_mef
wait_for 30 workers || fail "expected 2 workers under pid $MEF_PID"
ok "msce-mef with 2 workers listening on port $PORT"

loadgen --gateways "$T/gateways" --targets "$T/targets" --backoff-max 2000 --timeout 120 ||
        fail "msce-loadgen lost gateways"
grep -q "^gateways $GW  enrolled $GW  complete $GW  lost 0 " "$T/lg.out" || fail "not all $GW gateways completed"
# exchanges count every attempt; those answered 503 (store threads or the MEF busy: retried after
# Retry-After) are the failures. What succeeded: one enrol, status and fetch per gateway.
ex=$(sed -n 's/^exchanges enrol \([0-9]*\)  status \([0-9]*\)  fetch \([0-9]*\) .*/\1 \2 \3/p' "$T/lg.out")
read -r n_enrol n_status n_fetch <<<"$ex"
# "failures by class: 503 24, tls-auth 1" (or "none"): the count is each item's last word
n_failed=$(sed -n 's/^failures by class: //p' "$T/lg.out" | awk -F, '{ n = 0; for (i = 1; i <= NF; i++) { k = split($i, w, " "); if (w[k] ~ /^[0-9]+$/) n += w[k] } print n }')
[[ -n $n_enrol ]] || fail "no exchange counts: $(cat "$T/lg.out")"
(( n_enrol >= GW && n_status >= GW && n_fetch >= GW )) || fail "fewer exchanges than gateways: $ex"
(( n_enrol + n_status + n_fetch - ${n_failed:-0} == 3 * GW )) ||
        fail "expected one successful enrol, status and fetch per gateway: $ex, failed ${n_failed:-0}"
ok "$GW gateways at once: all enrolled, status checked and fetched, 0 lost"

# A targets file of more than 256 lines: the target the profiles name on line 301, after 300 the
# MEF does not know. Its index was kept in 8 bits: 300 became 44, and the fetch went with another
# target's PSK (refused: every gateway lost).
(
        umask 077
        od -An -v -N$((32 * 300)) -tx1 /dev/urandom | tr -d ' \n' | fold -w 64 |
                awk '{ print "/decoy-" NR " decoy-psk-" NR " " $1 }' >"$T/targets-301"
        cat "$T/targets" >>"$T/targets-301"
)
loadgen --gateways "$T/gateways" --count 5 --targets "$T/targets-301" --backoff-max 2000 --timeout 60 ||
        fail "msce-loadgen lost gateways with the target on line 301 of the targets file"
grep -q "^gateways 5  enrolled 5  complete 5  lost 0 " "$T/lg.out" || fail "not all 5 gateways completed"
ok "the target on line 301 of the targets file: fetched with its own PSK"

# Concurrent enrolments of one node over both workers: the store's transaction keeps one active.
loadgen --gateways "$T/same-node" --allow-duplicate-nodes --backoff-max 2000 --timeout 120 || fail "concurrent enrolments of one node"
active=$("$MEF" --config "$MEF_CONF" enrolments node-1 | awk '$2 == "node-1" && $3 == "active"' | wc -l)
[[ $active == 1 ]] || fail "node-1 has $active active enrolments after 10 concurrent enrolments"
ok "10 concurrent enrolments of one node leave exactly one active enrolment"

# Two gateways of node-2, one connection at a time: A enrols, B enrols (the MEF supersedes A's
# enrolment), A's status check is answered 404, B's status check passes, then A enrols again and
# completes. Two gateways enrolled, one re-enrolment: not "enrolled 3" of 2 gateways.
loadgen --gateways "$T/node2-twice" --allow-duplicate-nodes --concurrency 1 --backoff-min 100 --backoff-max 200 --timeout 60 ||
        fail "two gateways of node-2 one after the other"
grep -q "^gateways 2  enrolled 2  complete 2  lost 0 " "$T/lg.out" || fail "expected 2 gateways enrolled once each"
grep -q "  re-enrolments 1$" "$T/lg.out" && grep -q "404 1" "$T/lg.out" || fail "expected a 404 and one re-enrolment"
ok "a re-enrolment after a 404 is counted apart from the gateways enrolled"

rc=0
loadgen --gateways "$T/wrong-key" --timeout 30 || rc=$?
[[ $rc == 1 ]] || fail "a gateway with a wrong key: exit $rc, want 1"
grep -q "lost 1  rejected 1" "$T/lg.out" && grep -q "tls-auth 1" "$T/lg.out" || fail "wrong key not reported"
ok "a gateway with a wrong key is lost and reported as tls-auth (exit 1)"

# A node on two lines of the gateways file is refused, naming the lines (empty ones counted): two
# gateways of one node would both complete while the MEF holds one enrolment.
rc=0
loadgen --gateways "$T/dup-node" --timeout 30 || rc=$?
[[ $rc == 2 ]] || fail "a node on two lines of the gateways file: exit $rc, want 2"
grep -q "dup-node: line 5: node node-1 is on line 3 already" "$T/lg.err" || fail "the repeated line was not named"
ok "a node on two lines of the gateways file is refused (exit 2), naming the lines"

rc=0
loadgen --gateways "$T/nul-line" --timeout 30 || rc=$?
[[ $rc == 2 ]] || fail "a NUL byte in the gateways file: exit $rc, want 2"
grep -q "nul-line: line 2: a NUL byte" "$T/lg.err" || fail "the NUL byte's line was not named"
rc=0
loadgen --gateways "$T/dup-node" --count=abc || rc=$?
[[ $rc == 2 ]] && grep -q "^msce-loadgen: --count: expected an integer" "$T/lg.err" ||
        fail "--count=abc: exit $rc, or the option not named"
ok "a gateways file with a NUL byte is refused naming its line; --count=abc names --count"

# The gateways file's rules, each refused naming its line (exit 2): text after the key and an ID
# over 255 characters were taken (the old code ran both files), entries past the millionth
# silently dropped.
for f in "junk-line:line 2: text after the key" "long-id:line 2: the ID is longer than 255 characters" \
        "long-psk-id:line 2: the PSK identity is longer than 127 characters" \
        "many:line 1000002: more than 1000000 entries"; do
        rc=0
        loadgen --gateways "$T/${f%%:*}" --timeout 30 2>/dev/null || rc=$?
        [[ $rc == 2 ]] || fail "gateways file ${f%%:*}: exit $rc, want 2"
        grep -qF "${f%%:*}: ${f#*:}" "$T/lg.err" || fail "gateways file ${f%%:*}: not refused as \"${f#*:}\""
done
ok "a gateways file with text after a key, an over-long ID or PSK identity or too many entries is refused naming the line"

# msce-loadgen holds every gateway's Kpm for its whole run: it is not dumpable (no core, no ptrace
# by its own user), which the kernel shows for a process of a user other than root as the files
# under its /proc entry owned by root. Run as nobody against a listener that takes the connection
# and never answers; the old code's were nobody's. Killed, it takes its generator process with
# it (the connection closes): the old code's went on until --timeout.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null && id nobody >/dev/null 2>&1; then
        ND=$(mktemp -d /tmp/msce-loadgen-nobody-XXXXXX)
        at_exit "rm -rf '$ND'"
        head -1 "$T/gateways" >"$ND/gw"
        chown -R nobody "$ND" && chmod 0700 "$ND" && chmod 0600 "$ND/gw"
        python3 -u -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print("port", s.getsockname()[1])
c, _ = s.accept(); print("accepted")
while c.recv(4096): pass
print("closed")
sys.stdin.read()' <&- >"$T/hole.out" 2>&1 &
        HOLE=$!
        at_exit "stop_pid $HOLE"
        wait_line 10 "$T/hole.out" '^port [0-9]+$' $HOLE || fail "the silent listener did not start"
        HPORT=$(sed -n 's/^port //p' "$T/hole.out")
        setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups "$LOADGEN" --gateways "$ND/gw" --timeout 60 \
                --exchange-timeout 60 "https://127.0.0.1:$HPORT/msce" >/dev/null 2>&1 &
        LG=$!
        wait_line 10 "$T/hole.out" '^accepted$' $HOLE || fail "msce-loadgen did not connect to the silent listener"
        owner=$(stat -c %U "/proc/$LG/environ")
        stop_pid "$LG"
        [[ $owner == root ]] || fail "msce-loadgen running as nobody is dumpable (/proc/$LG/environ owned by $owner)"
        ok "msce-loadgen is not dumpable (it holds every gateway's Kpm)"
        wait_line 10 "$T/hole.out" '^closed$' $HOLE || fail "msce-loadgen killed: its generator process went on"
        stop_pid "$HOLE"
        ok "msce-loadgen killed (SIGTERM): its generator process ends with it"
else
        skip "msce-loadgen not dumpable: needs root, setpriv and the user nobody"
fi

# --timeout holds for a gateway queued for a connection slot: with one slot, the first gateway's
# connection goes into a black hole (delay-relay) past the deadline; the second, queued behind
# it, is lost at the deadline rather than enrolled after it, when the first gives up.
echo blackhole >"$T/relay.mode"
"$B/tests/integration/delay-relay" --listen 127.0.0.1:0 --connect "127.0.0.1:$PORT" --mode-file "$T/relay.mode" \
        >"$T/relay.out" 2>"$T/relay.err" &
relay=$!
at_exit 'stop_pid "$relay"'
wait_for 10 grep -q "^listening on" "$T/relay.out" || fail "delay-relay did not start"
rc=0
"$LOADGEN" --gateways "$T/gateways" --count 2 --concurrency 1 --timeout 2 --exchange-timeout 4 \
        "https://$(sed -n 's/^listening on //p' "$T/relay.out")/msce" >"$T/lg.out" 2>"$T/lg.err" &
lg=$!
at_exit 'stop_pid "$lg"'
# the black hole for the first connection only: the second, if any, reaches the MEF
wait_for 10 grep -q "conn 1 accepted" "$T/relay.err" || fail "no connection through delay-relay"
echo pass >"$T/relay.mode"
wait "$lg" || rc=$?
sed "s/^/# /" "$T/lg.out"
stop_pid "$relay"
[[ $rc == 1 ]] || fail "a gateway queued past --timeout: exit $rc, want 1"
grep -q "^gateways 2  enrolled 0  complete 0  lost 2 " "$T/lg.out" || fail "a gateway queued past --timeout was not lost"
ok "--timeout applies to a gateway queued for a connection slot"

victim=$(pgrep -P "$MEF_PID" | head -1)
kill -9 "$victim"
restarted() { grep -q "restarting it" "$T/mef.err" && lib_gone "$victim" && workers; } # see replaced() below
wait_for 30 restarted || fail "the killed worker was not restarted"
loadgen --gateways "$T/gateways" --count "$GW20" --backoff-max 2000 --timeout 120 || fail "after a worker restart"
ok "a worker killed with SIGKILL is restarted and the MEF serves on"
stop_mef

# One connection slot and Retry-After 1: gateways are told 503 and wait before they retry.
conf "" $'max_connections = 1\nretry_after = 1'
start_mef
loadgen --gateways "$T/gateways" --count "$GW20" --backoff-max 2000 --timeout 120 || fail "lost gateways under 503"
waits=$(sed -n 's/.*waits on Retry-After \([0-9]*\)$/\1/p' "$T/lg.out")
busy=$(grep -o '503 [0-9]*' "$T/lg.out" | awk '{ print $2 }')
[[ ${waits:-0} -gt 0 && ${busy:-0} -gt 0 ]] || fail "expected 503 answers and waits on Retry-After"
grep -q "^gateways $GW20  enrolled $GW20  complete $GW20  lost 0 " "$T/lg.out" || fail "not all $GW20 gateways completed"
ok "503 + Retry-After: $busy answers, $waits waits, all $GW20 gateways enrolled"
stop_mef

# The per-node enrolment rate limit: one enrolment of a node in 20 s. node-1 enrols, then enrols
# again at once: 429 + Retry-After, which is transient as for msce-agent (wait, then enrol), not a
# rejection that loses the gateway. (20 s: the second run must start within the first's window,
# however slow the machine; the wait it then makes is what is left of it.) Run since the store
# was filled, beside the rows above (the subshell started there); here its outcome.
rl_rc=0
wait "$rl" || rl_rc=$?
rl=
# the sanitizer build's reports from its MEF's workers on stderr, for tests/sanitize-wrap.sh
grep -E -A30 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$T/rl/mef.err" >&2 || true
[[ $rl_rc == 0 && -s "$T/rl/rc-2" ]] || fail "the rate-limited MEF's run failed (exit $rl_rc): $(tail -n 20 "$T/rl/run.log" "$T/rl/mef.err")"
for i in 1 2; do
        sed "s/^/# /" "$T/rl/lg-$i.out"
        cat "$T/rl/lg-$i.err" >&2
done
[[ $(cat "$T/rl/rc-1") == 0 ]] || fail "node-1's first enrolment"
[[ $(cat "$T/rl/rc-2") == 0 ]] || fail "429 lost the gateway"
grep -q "^gateways 1  enrolled 1  complete 1  lost 0  rejected 0 " "$T/rl/lg-2.out" || fail "the gateway did not complete after 429"
limited=$(grep -o '429 [0-9]*' "$T/rl/lg-2.out" | awk '{ print $2 }')
waits=$(sed -n 's/.*waits on Retry-After \([0-9]*\)$/\1/p' "$T/rl/lg-2.out")
[[ ${limited:-0} -gt 0 && ${waits:-0} -gt 0 ]] || fail "expected 429 answers and waits on Retry-After"
ok "429 + Retry-After (enrolment rate limit): the gateway waited and enrolled, exit 0"

# --concurrency below --procs: the limit holds over all processes (each process takes a share,
# and a share of 0 was no limit). A server that accepts and never answers counts the connections
# held open at once; 8 gateways, 4 processes asked for, 2 connections.
python3 - "$T/hold.port" "$T/hold.most" <<'EOF' &
import os, select, signal, socket, sys
port_file, most_file = sys.argv[1:]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
conns, most = [], 0
def done(*_):
        with open(most_file + ".tmp", "w") as f:
                f.write("%d\n" % most)
        os.rename(most_file + ".tmp", most_file)
        sys.exit(0)
signal.signal(signal.SIGTERM, done)
with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
os.rename(port_file + ".tmp", port_file)
while True:
        r = select.select([s] + conns, [], [])[0]
        # closed ones first: a client closes its connection before it opens the next one
        for c in [c for c in conns if c in r]:
                try:
                        gone = not c.recv(4096)
                except OSError:
                        gone = True
                if gone:
                        conns.remove(c)
                        c.close()
        if s in r:
                conns.append(s.accept()[0])
                most = max(most, len(conns))
EOF
hold=$!
wait_for 10 test -s "$T/hold.port" || fail "the holding server did not start"
rc=0
"$LOADGEN" --gateways "$T/gateways" --count 8 --procs 4 --concurrency 2 --exchange-timeout 1 --timeout 2 \
        "https://127.0.0.1:$(cat "$T/hold.port")/msce" >"$T/lg.out" 2>"$T/lg.err" || rc=$?
sed "s/^/# /" "$T/lg.out"
kill -TERM "$hold"
wait "$hold" || :
[[ $rc == 1 ]] || fail "against a server that never answers: exit $rc, want 1"
most=$(cat "$T/hold.most")
[[ $most -ge 1 && $most -le 2 ]] || fail "--procs 4 --concurrency 2: $most connections at once"
grep -q "lost 8  rejected 0  (2 generator processes)" "$T/lg.out" || fail "expected 2 generator processes"
ok "--procs 4 --concurrency 2: 2 processes, at most $most connections at once"

# systemd's view: one READY=1 from the supervisor once both workers listen, STOPPING=1 on SIGTERM.
conf "workers = 2" ""
python3 - "$MEF" "$MEF_CONF" "$T/notify.sock" <<'EOF' || fail "sd_notify from the supervisor"
import os, socket, subprocess, sys
mef, conf, path = sys.argv[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(60)
p = subprocess.Popen([mef, "--config", conf, "serve"], env=dict(os.environ, NOTIFY_SOCKET=path),
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
got = [s.recv(4096).decode()]
kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
p.terminate()
while "STOPPING=1" not in got[-1]:
        got.append(s.recv(4096).decode())
rc = p.wait()
ok = got[0].startswith("READY=1") and len(kids) == 2 and rc == 0 and len(got) == 2
print("#", got, "workers:", len(kids), "exit:", rc)
sys.exit(0 if ok else 1)
EOF
ok "READY=1 once both workers listen, STOPPING=1 and exit 0 on SIGTERM"

# Under systemd's watchdog (3 s here), a worker that stops pinging the supervisor is killed and
# restarted: SIGSTOP stands for a worker stuck in a loop.
under_watchdog() { # the MEF as systemd runs it with WatchdogSec=3
        WATCHDOG_USEC=3000000 exec bash -c 'export WATCHDOG_PID=$$; exec "$0" "$@"' "$@"
}
MEF_WRAP=under_watchdog start_mef
wait_for 30 workers || fail "no workers under the watchdog"
stuck=$(pgrep -P "$MEF_PID" | head -1)
kill -STOP "$stuck"
# killed (SIGKILL reaches a stopped process) and replaced. pgrep counts a killed worker until the
# supervisor reaps it, so the count means a replacement only once the stuck one is gone; and the
# verdict is the wait's own, not a second sample taken while another restart may be under way.
replaced() { grep -q "pid $stuck) sent no watchdog ping" "$T/mef.err" && lib_gone "$stuck" && workers; }
if ! wait_for 30 replaced; then
        grep -q "pid $stuck) sent no watchdog ping" "$T/mef.err" || fail "a stopped worker was not killed by the watchdog"
        fail "the worker killed by the watchdog was not restarted"
fi
ok "a worker that stops pinging the watchdog is killed and restarted"
stop_mef
tap_done

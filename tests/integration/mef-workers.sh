#!/usr/bin/env bash
# Worker processes ([server] workers) and the metrics they share: connections a worker held when
# it died (SIGKILL: the watchdog's way, or a crash) leave msce_mef_connections_open with it.
# Two workers, the metrics listener on port 0 (each worker its own port, printed); three TCP
# connections held open on the gateways' port (first_byte_timeout 60 s), seen by the gauge; both
# workers killed and restarted by the supervisor; the connections are gone with them, and the
# gauge read through a restarted worker must come back to 0 (it stayed at 3: the dead workers'
# count was never taken off the shared gauge). Then the metrics listener on the gateways' port
# under another spelling of the address is refused. No fixed sleeps: each wait is for a condition,
# with a deadline. Last, retention runs in one worker, not in each.
# Usage: mef-workers.sh PATH/TO/msce-mef (TAP).
set -euo pipefail

MEF=${1:?usage: mef-workers.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds pgrep python3

tmpdir mef-workers
LIB_SHOW="$T/mef.err"

mef_conf "[server]" "workers = 2" "[limits]" "first_byte_timeout = 60000" "handshake_timeout = 60000" \
        "[metrics]" "listen = 127.0.0.1:0"
# ([server] twice: mef_conf wrote the first; keys once each, sections may repeat)
mefctl init || fail "init"
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"
at_exit 'mef_stop'
workers() { [ "$(pgrep -c -P "$MEF_PID")" = 2 ]; }
wait_for 30 workers || fail "expected 2 workers under pid $MEF_PID"
metrics_ports() { grep -c '^metrics on ' "$T/mef.out" 2> /dev/null || :; }
n_ports() { [ "$(metrics_ports)" -ge "$1" ]; }
wait_for 30 n_ports 2 || fail "the workers did not report their metrics ports"
# the newest worker's metrics port
newest_port() { mport=$(sed -n 's/^metrics on .*:\([0-9]*\)$/\1/p' "$T/mef.out" | tail -n1); }
newest_port
ok "2 workers, metrics on port $mport"

open_gauge() {
        scrape > "$T/m.txt"
        [ "$(metric "$T/m.txt" msce_mef_connections_open)" = "$1" ]
}
exec 4<>"/dev/tcp/127.0.0.1/$PORT" 5<>"/dev/tcp/127.0.0.1/$PORT" 6<>"/dev/tcp/127.0.0.1/$PORT"
wait_for 30 open_gauge 3 || fail "3 connections held, the gauge says $(metric "$T/m.txt" msce_mef_connections_open)"
ok "3 connections held open: msce_mef_connections_open 3"

victims=$(pgrep -P "$MEF_PID" | tr '\n' ' ')
# shellcheck disable=SC2086 # two pids
kill -9 $victims
gone() { for p in $victims; do lib_gone "$p" || return 1; done; }
restarted() { [ "$(grep -c 'restarting it' "$T/mef.err")" -ge 2 ] && gone && workers && n_ports 4; }
wait_for 30 restarted || fail "the killed workers were not both restarted"
exec 4>&- 5>&- 6>&-
newest_port
ok "both workers killed with SIGKILL and restarted (metrics now on port $mport)"

# the connections died with their workers: nobody holds one now
wait_for 10 open_gauge 0 ||
        fail "msce_mef_connections_open is $(metric "$T/m.txt" msce_mef_connections_open) with no connection open: the dead workers' count stayed"
ok "the gauge drops the connections of the workers that died"
# A second msce-mef with workers, another store, the same port: every worker socket has
# SO_REUSEPORT, so the kernel would let it join the first's group and take some of its gateways
# (it started and served). It must refuse to start.
mkdir -p "$T/second"
{
        printf '[server]\nlisten = 127.0.0.1:%s\nfqdn = 127.0.0.1\nbase = /msce\nworkers = 2\n' "$PORT"
        mef_store "$T/second"
} > "$T/second.conf"
"$MEF" --config "$T/second.conf" init > /dev/null 2>&1 || fail "init of the second store"
"$MEF" --config "$T/second.conf" serve > "$T/second.out" 2> "$T/second.err" &
second_pid=$!
at_exit 'stop_pid "$second_pid"'
wait_for 30 lib_gone "$second_pid" || fail "a second msce-mef serves on port $PORT beside the first"
st=0
wait "$second_pid" || st=$?
[ "$st" = 1 ] && grep -q "cannot listen on 127.0.0.1 port $PORT: in use" "$T/second.err" ||
        { sed 's/^/# /' "$T/second.err"; fail "a second msce-mef on the port: exit $st"; }
workers || fail "the first msce-mef lost its workers"
ok "a second msce-mef (workers, another store) on the first's port refuses to start (exit $st)"

mef_term_clean || fail "msce-mef did not stop cleanly"
ok "SIGTERM stops the supervisor and both workers, exit 0"

# The metrics listener on the gateways' port: with workers every socket has SO_REUSEPORT, and
# the kernel would let the metrics listener join the gateways' group and get some of their TLS
# connections. Written so that the loader's check (the same host:port twice) does not see it:
# the gateways on the wildcard address, metrics on 127.0.0.1. The workers must refuse to listen,
# so the MEF exits non-zero (it served on before). A port no socket of this test has had: the
# first MEF's port still has its killed workers' connections on 127.0.0.1 (FIN_WAIT, TIME_WAIT),
# and in one CI run the kernel refused the wildcard bind beside them ("Address already in use").
# The port: a free one below the kernel's ephemeral range, found from this run's pid, so that no
# other test's port 0 (the kernel's pick) can be given it between our check and the bind.
PORT2=$(python3 - $$ << 'EOF'
import socket, sys
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for i in range(lo - 1024):
    p = 1024 + (int(sys.argv[1]) + i) % (lo - 1024)
    try:
        socket.socket().bind(("0.0.0.0", p))
    except OSError:
        continue
    print(p)
    break
EOF
)
[ -n "$PORT2" ] || fail "no free port below the ephemeral range"
PORT=$PORT2
{
        printf '[server]\nlisten = 0.0.0.0:%s\nfqdn = 127.0.0.1\nbase = /msce\nworkers = 2\n' "$PORT"
        mef_store "$T"
        printf '[metrics]\nlisten = 127.0.0.1:%s\n' "$PORT"
} > "$T/clash.conf"
"$MEF" --config "$T/clash.conf" serve > "$T/clash.out" 2> "$T/clash.err" &
clash_pid=$!
at_exit 'stop_pid "$clash_pid"'
wait_for 30 lib_gone "$clash_pid" ||
        fail "msce-mef serves with [metrics] listen 127.0.0.1:$PORT inside [server] listen 0.0.0.0:$PORT"
st=0
wait "$clash_pid" || st=$?
[ "$st" != 0 ] || fail "msce-mef exited 0 with the metrics listener on the gateways' port"
grep -q "cannot listen on 127.0.0.1:$PORT: \[server\] listen is bound there too" "$T/clash.err" ||
        { sed 's/^/# /' "$T/clash.err"; fail "no error naming [server] listen"; }
ok "[metrics] listen inside [server] listen's address is refused (exit $st)"

# Retention ([audit] keep) runs in one worker: each pass is a chain of write transactions on the
# one store, and every worker ran its own (N passes per hour deleting the same rows). Its first
# pass starts with the worker's loop; on a store another process holds locked each pass that
# runs waits [store] busy_timeout and says 'paused' (then waits a minute). Two workers: one such
# line, not two (both came within a few ms of each other on the old code).
PORT=
mef_conf "busy_timeout = 300" "[server]" "workers = 2" "[audit]" "keep = 90d"
sqlite_lock "$T/mef.db" || fail "could not lock the database"
# the MEF must not hold the lock holder's FIFO open (fd 3), or sqlite_unlock would wait for it
unlocked_exec() { exec "$@" 3>&-; }
MEF_WRAP=unlocked_exec mef_start "$T/mef.conf.in" || fail "msce-mef did not start"
wait_line 30 "$T/mef.err" 'retention: .* paused after' "$MEF_PID" || fail "no retention pass hit the lock"
sqlite_unlock || fail "the lock holder failed"
mef_term_clean || fail "msce-mef did not stop cleanly"
passes=$(grep -c 'retention: .* paused after' "$T/mef.err" || :)
[ "$passes" = 1 ] || { grep retention "$T/mef.err" | sed 's/^/# /'; fail "$passes retention passes with 2 workers"; }
ok "with 2 workers one retention pass runs (worker 1's)"
tap_done

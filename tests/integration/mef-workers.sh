#!/usr/bin/env bash
# Worker processes ([server] workers) and the metrics they share: connections a worker held when
# it died (SIGKILL: the watchdog's way, or a crash) leave msce_mef_connections_open with it.
# Two workers, the metrics listener on port 0 (each worker its own port, printed); three TCP
# connections held open on the gateways' port (first_byte_timeout 60 s), seen by the gauge; both
# workers killed and restarted by the supervisor; the connections are gone with them, and the
# gauge read through a restarted worker must come back to 0 (it stayed at 3: the dead workers'
# count was never taken off the shared gauge). No fixed sleeps: each wait is for a condition,
# with a deadline.
# Usage: mef-workers.sh PATH/TO/msce-mef (TAP).
set -euo pipefail

MEF=${1:?usage: mef-workers.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds pgrep

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
mef_term_clean || fail "msce-mef did not stop cleanly"
ok "SIGTERM stops the supervisor and both workers, exit 0"
tap_done

#!/usr/bin/env bash
# Worker processes ([server] workers) and the metrics they share: connections a worker held when
# it died (SIGKILL: the watchdog's way, or a crash) leave msce_mef_connections_open with it.
# Two workers, the metrics listener on port 0 (the supervisor has the kernel choose one port, that
# every worker listens on, and prints it once; each worker bound a port of its own); three TCP
# connections held open on the gateways' port (first_byte_timeout 60 s), seen by the gauge; both
# workers killed and restarted by the supervisor; the connections are gone with them, and the
# gauge read through a restarted worker must come back to 0 (it stayed at 3: the dead workers'
# count was never taken off the shared gauge). The workers' notification socket cannot be
# reached by another user (it was an abstract socket anyone could flood). A second msce-mef on
# the first's gateway port, or on its metrics port (with workers or without), refuses to start
# (with the metrics port it started, and the kernel split the scrapes between the two). Then the
# metrics listener on the gateways' port under another spelling of the address is refused. No
# fixed sleeps: each wait is for a condition, with a deadline. Retention runs in one worker, not
# in each. Last, the notification directory a SIGKILLed supervisor left is removed at the next
# start, a live one's is not.
# Usage: mef-workers.sh PATH/TO/msce-mef (TAP).
set -euo pipefail

MEF=${1:?usage: mef-workers.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds pgrep python3
need_root "a user of its own, for the notification socket"

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
# each worker's metrics listener says so in the log: as many lines as workers started
metrics_listening() { grep -c 'metrics on http://' "$T/mef.err" 2> /dev/null || :; }
n_ports() { [ "$(metrics_listening)" -ge "$1" ]; }
wait_for 30 n_ports 2 || fail "the workers did not listen for metrics"
# the one port the supervisor chose (it prints it once all listen), and the one the workers name
wait_line 30 "$T/mef.out" '^metrics on ' "$MEF_PID" || fail "the supervisor did not print the metrics port"
mport=$(sed -n 's/^metrics on .*:\([0-9]*\)$/\1/p' "$T/mef.out")
[ "$(grep -c '^metrics on ' "$T/mef.out")" = 1 ] || fail "more than one metrics port printed: $(cat "$T/mef.out")"
wports=$(sed -n 's|.*metrics on http://[^ ]*:\([0-9]*\)/metrics.*|\1|p' "$T/mef.err" | sort -u | tr '\n' ' ')
[ "$wports" = "$mport " ] || fail "the workers listen for metrics on ports $wports, not $mport alone"
ok "2 workers, metrics on port $mport, the same in both"

# The workers' sd_notify socket, as another user: refused (EACCES: a directory of mode 0700).
# An abstract socket (@...) had no permission check: anyone could send, and flood the supervisor.
# It is the supervisor's one bound datagram socket (type 0002), found as anyone finds it: in
# /proc/net/unix ("@..." for an abstract one), by the inode of one of its fds.
inodes=$(find "/proc/$MEF_PID/fd" -type l -printf '%l\n' | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' | tr '\n' ' ')
nsock=$(awk -v inodes=" $inodes" 'NR > 1 && $5 == "0002" && NF >= 8 && index(inodes, " " $7 " ") { print $8 }' /proc/net/unix)
[ -n "$nsock" ] && [ "$(echo "$nsock" | wc -l)" = 1 ] || fail "the supervisor's notification socket: '$nsock'"
other=$(test_user notify) || fail "cannot create a test user"
test_user_cleanup "$other"
# python3 may live where that user cannot read (pyenv under /root): it drops to the user itself
python3 - "$nsock" "$(id -u "$other")" "$(id -g "$other")" > "$T/notify.out" 2>&1 << 'PY' ||
import errno, os, socket, sys
p, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.setgroups([])
os.setresgid(gid, gid, gid)
os.setresuid(uid, uid, uid)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
try:
    s.sendto(b"X=1", "\0" + p[1:] if p[0] == "@" else p)
except OSError as e:
    print("refused:", errno.errorcode.get(e.errno, e.errno))
    sys.exit(0 if e.errno in (errno.EACCES, errno.ECONNREFUSED, errno.ENOENT, errno.EPERM) else 1)
print("sent")
sys.exit(1)
PY
        fail "user $other could send to the supervisor's notification socket $nsock: $(cat "$T/notify.out")"
ok "the notification socket $nsock is not another user's to send to ($(cat "$T/notify.out"))"

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
ok "both workers killed with SIGKILL and restarted (metrics still on port $mport)"

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
# refused NAME ERE: msce-mef serve with $T/NAME.conf stops by itself (within 30 s; 2 if it
# serves on), with a status that is not 0 (in st, 1 if it serves on) and a line matching ERE
# in $T/NAME.err (3 if not, shown)
refused() {
        "$MEF" --config "$T/$1.conf" serve > "$T/$1.out" 2> "$T/$1.err" &
        local pid=$!
        at_exit "stop_pid $pid"
        st=1
        wait_for 30 lib_gone "$pid" || return 2
        st=0
        wait "$pid" || st=$?
        [ "$st" != 0 ] || return 1
        grep -qE -- "$2" "$T/$1.err" || { sed 's/^/# /' "$T/$1.err"; return 3; }
}
refused second "cannot listen on 127.0.0.1 port $PORT: in use" && [ "$st" = 1 ] ||
        fail "a second msce-mef on the port: exit $st (it serves on, or said nothing of the port)"
workers || fail "the first msce-mef lost its workers"
ok "a second msce-mef (workers, another store) on the first's port refuses to start (exit $st)"

# The same for the metrics port, with workers (they bound theirs with SO_REUSEPORT, and joined
# the first's) and without (one process's metrics socket had SO_REUSEPORT too): the kernel would
# split the scrapes between the two. Its gateways on a port of their own (0).
for nw in 2 1; do
        {
                printf '[server]\nlisten = 127.0.0.1:0\nfqdn = 127.0.0.1\nbase = /msce\nworkers = %s\n' "$nw"
                mef_store "$T/second"
                printf '[metrics]\nlisten = 127.0.0.1:%s\n' "$mport"
        } > "$T/third.conf"
        refused third "cannot listen on 127.0.0.1.*$mport.*in use" && [ "$st" = 1 ] ||
                fail "a second msce-mef (workers = $nw) on the metrics port $mport: exit $st (it serves on, or said nothing of the port)"
        ok "a second msce-mef (workers = $nw) on the first's metrics port refuses to start (exit $st)"
done
workers || fail "the first msce-mef lost its workers"

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
rc=0
refused clash "cannot listen on 127.0.0.1:$PORT: \[server\] listen is bound there too" || rc=$?
[ "$rc" != 2 ] || fail "msce-mef serves with [metrics] listen 127.0.0.1:$PORT inside [server] listen 0.0.0.0:$PORT"
[ "$rc" != 1 ] || fail "msce-mef exited 0 with the metrics listener on the gateways' port"
[ "$rc" = 0 ] || fail "no error naming [server] listen"
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

# A supervisor killed with SIGKILL (outside systemd) leaves its notification socket's directory
# behind (it did at each such death, in /tmp); the next start removes it, for nothing is bound to
# its socket any more, and leaves a live supervisor's. In a RUNTIME_DIRECTORY of this test's own
# (where the supervisor makes it under systemd), not the /tmp other tests share.
mkdir -m 0700 "$T/run"
in_run() { RUNTIME_DIRECTORY=$T/run exec "$@"; }
notify_dirs() { find "$T/run" -mindepth 1 -maxdepth 1 -name 'msce-mef-*' -printf '%f\n' | sort | tr '\n' ' '; }
mef_conf "[server]" "workers = 2"
MEF_WRAP=in_run mef_start "$T/mef.conf.in" || fail "msce-mef did not start"
wait_for 30 workers || fail "expected 2 workers under pid $MEF_PID"
killed=$(notify_dirs)
[ "$(wc -w <<< "$killed")" = 1 ] || fail "notification directories: '$killed', expected one"
victims=$(pgrep -P "$MEF_PID" | tr '\n' ' ')
mef_stop KILL
wait_for 30 gone || fail "the workers of the killed supervisor did not end"
[ "$(notify_dirs)" = "$killed" ] || fail "after SIGKILL: '$(notify_dirs)', expected '$killed' left behind"
# the next start, and a second msce-mef (another store, its own ports) while it serves
MEF_WRAP=in_run mef_start "$T/mef.conf.in" || fail "msce-mef did not start again"
wait_for 30 workers || fail "expected 2 workers under pid $MEF_PID"
{
        printf '[server]\nlisten = 127.0.0.1:0\nfqdn = 127.0.0.1\nbase = /msce\nworkers = 2\n'
        mef_store "$T/second"
} > "$T/beside.conf"
RUNTIME_DIRECTORY=$T/run "$MEF" --config "$T/beside.conf" serve > "$T/beside.out" 2> "$T/beside.err" &
beside=$!
at_exit "stop_pid $beside"
beside_workers() { [ "$(pgrep -c -P "$beside")" = 2 ]; }
wait_for 30 beside_workers || fail "expected 2 workers under the second msce-mef: $(cat "$T/beside.err")"
live=$(notify_dirs)
[ "$(wc -w <<< "$live")" = 2 ] && [ "${live#*"$killed"}" = "$live" ] ||
        fail "notification directories with two msce-mef serving: '$live' (the killed one's: $killed)"
workers || fail "the first msce-mef lost its workers"
ok "a killed supervisor's notification directory is removed at the next start, two live ones' kept ($live)"
stop_pid "$beside"
mef_term_clean || fail "msce-mef did not stop cleanly"
[ -z "$(notify_dirs)" ] || fail "notification directories left after SIGTERM: $(notify_dirs)"
tap_done

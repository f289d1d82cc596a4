#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The msce-agent daemon (issue 4), started directly with NOTIFY_SOCKET served here, against a
# private msce-mef on loopback:
#   1. start to READY=1 on a provisioned gateway (restore path: sealed profile present, no
#      network needed), median of N runs (from fork+exec to the READY=1 datagram), with VmRSS and
#      VmHWM at READY=1; runtime_dir on a tmpfs as /run is in service, and again on the disk;
#   2. memory while READY: VmRSS/VmHWM of an agent that restored, and of one that enrolled;
#   3. growth: the protocol's poll minimum is 10 s, so 10,000 status checks would take 28 hours.
#      Instead, for SECONDS, agent A is made to re-enrol back to back with SIGUSR1 (each cycle:
#      one TLS exchange with the MEF, sealing, keyring replacement: a superset of a status
#      check's work), while agent B (poll = 10 s) does the real status checks that fit. VmRSS is
#      sampled as it goes; the growth is VmRSS at the end minus VmRSS after a warm-up of 100
#      cycles.
# Target: VmRSS <= 4 MiB while READY, and no growth.
#   meson test -C BUILD --benchmark --suite bench -v agent-ready
#   or: tests/bench/bench-agent-ready.sh BUILD [SECONDS]   (default 120 or $BENCH_SECONDS;
#       restart runs: $BENCH_N, default 20)
# Needs root (the agents file keys for two users of the run's own, msce-t<PID>-cse and -cse2).
. "$(dirname "$0")/bench-session.sh"

B=$(cd "$1" && pwd)
secs=${2:-${BENCH_SECONDS:-120}}
n=${BENCH_N:-20}
bench_need_root "keyring of other users"
"$B/msce-agent" --help | grep -q 'runs as the daemon' || { echo "msce-agent has no daemon mode: skipped"; exit 77; }

# /var/tmp: a disk file system on most systems, so fsyncs count as in service
W=$(mktemp -d /var/tmp/msce-bench-ready-XXXXXX)
# runtime_dir (state.json, profile.json, written atomically with fsync) on a tmpfs, as /run is
# in service; the state directory stays on disk
R=$W
if [ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ]; then R=$(mktemp -d /dev/shm/msce-bench-ready-XXXXXX); fi
. "$(dirname "$0")/bench-lib.sh"
cleanup() {
        bench_stop_mef
        bench_drop_users
        rm -rf "$W"
        [ "$R" = "$W" ] || rm -rf "$R"
}
trap cleanup EXIT

# CSE users of this run's own (msce-t<PID>-cse, -cse2): no other run files keys for them
bench_cse_user
bench_user cse2
CSE2=$REPLY
bench_mef_init 2 "[defaults]
poll = 10"
bench_mef_start

# agent_conf NAME NODE USER [RUNTIME_BASE]: a daemon configuration with its own state and
# runtime directory.
agent_conf() {
        local rt=${4:-$R}/$1/run
        mkdir -p "$W/$1/state" "$rt"
        cat >"$W/$1.conf" <<EOF
[node]
id = node-$2
[mef]
uri = https://127.0.0.1:$PORT/msce
psk_identity = kpm-$2
psk_file = $W/kpm-$2.hex
[consumer]
user = $3
[seal]
backend = host
state_dir = $W/$1/state
runtime_dir = $rt
[timing]
connect_timeout = 2s
exchange_timeout = 10s
backoff_min = 200ms
backoff_max = 2s
EOF
}
agent_conf a 1 "$CSE_USER"
agent_conf b 2 "$CSE2"
agent_conf a-disk 1 "$CSE_USER" "$W"
sed -i "s|^state_dir = .*|state_dir = $W/a/state|" "$W/a-disk.conf"
# Provision A (the restore runs need a sealed profile).
"$AGENT" --once -c "$W/a.conf" >"$W/once.log" 2>&1 || { cat "$W/once.log"; exit 1; }

fstype() { df -T "$1" | awk 'NR == 2 { print $2 }'; }
echo "machine: $(nproc) cores, $(uname -r); state_dir on $(fstype "$W"), runtime_dir on $(fstype "$R")"
echo "msce-agent: $(stat -c %s "$AGENT") bytes, $(ldd "$AGENT" | wc -l) shared objects"
cat >"$W/driver.py" <<'EOF'
import os, signal, socket, statistics, subprocess, sys, time

agent, conf_a, conf_b, work, n, secs, conf_disk = sys.argv[1:8]
n, secs = int(n), float(secs)
TARGET_KIB = 4096


def status_kib(pid):
    d = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                d[k] = int(v.split()[0])
    return d


def smaps(pid):
    """Pss, Private and the Rss of each mapped object (KiB) from /proc/PID/smaps."""
    per, name, tot = {}, None, {"Pss": 0, "Private": 0}
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if not parts[0].endswith(":"):
                # "addr perms offset dev inode [path]"
                name = os.path.basename(parts[5]) if len(parts) > 5 else "[anon]"
            elif parts[0] == "Rss:":
                per[name] = per.get(name, 0) + int(parts[1])
            elif parts[0] == "Pss:":
                tot["Pss"] += int(parts[1])
            elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                tot["Private"] += int(parts[1])
    return tot, sorted(per.items(), key=lambda kv: -kv[1])


class Agent:
    """A daemon with its own NOTIFY_SOCKET; lines() returns the fields received so far."""

    def __init__(self, conf, name):
        path = os.path.join(work, name + ".sock")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self.sock.bind(path)
        env = dict(os.environ, NOTIFY_SOCKET=path, WATCHDOG_USEC="30000000")
        self.log = open(os.path.join(work, name + ".log"), "ab")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([agent, "-c", conf], env=env, stdout=self.log, stderr=self.log)

    def wait_for(self, pred, timeout):
        """Read notifications until pred(field) is true; returns (field, time) or raises."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError("no matching notification within %.0f s" % timeout)
            self.sock.settimeout(left)
            data = self.sock.recv(4096)
            now = time.monotonic()
            for field in data.decode("utf-8", "replace").split("\n"):
                if pred(field):
                    return field, now
            if self.proc.poll() is not None:
                raise RuntimeError("the agent exited with %d" % self.proc.returncode)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(10)
        self.sock.close()
        self.log.close()
        if rc != 0:
            raise RuntimeError("the agent exited with %d on SIGTERM" % rc)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def mib(k):
    return "%d KiB (%.2f MiB)" % (k, k / 1024)


ok = True

# 1. start to READY=1, restore path
def restore_runs(conf):
    times, rss, hwm = [], [], []
    for _ in range(n):
        a = Agent(conf, "restore")
        _, t = a.wait_for(lambda f: f == "READY=1", 10)
        times.append((t - a.t0) * 1000)
        s = status_kib(a.proc.pid)
        rss.append(s["VmRSS"])
        hwm.append(s["VmHWM"])
        a.stop()
    print("   median %.2f ms (p10 %.2f, p90 %.2f, min %.2f, max %.2f); at READY=1 VmRSS median %s, VmHWM median %s"
          % (statistics.median(times), pct(times, 0.1), pct(times, 0.9), min(times), max(times),
             mib(int(statistics.median(rss))), mib(int(statistics.median(hwm)))))


print("1. start to READY=1, provisioned gateway (restore, host-sealed profile), %d runs:" % n)
restore_runs(conf_a)
print("   the same with runtime_dir on the state directory's file system (state.json fsynced at every state change):")
restore_runs(conf_disk)

# 2./3. A restores and is then re-enrolled back to back; B enrols and polls every 10 s
a = Agent(conf_a, "a")
a.wait_for(lambda f: f == "READY=1", 10)
ready_a = status_kib(a.proc.pid)
b = Agent(conf_b, "b")
b.wait_for(lambda f: f == "READY=1", 30)
ready_b = status_kib(b.proc.pid)
print("2. while READY (steady state, before any cycle):")
print("   A (restored): VmRSS %s, VmHWM %s, RssAnon %d KiB, RssFile %d KiB"
      % (mib(ready_a["VmRSS"]), mib(ready_a["VmHWM"]), ready_a["RssAnon"], ready_a["RssFile"]))
print("   B (enrolled): VmRSS %s, VmHWM %s, RssAnon %d KiB, RssFile %d KiB"
      % (mib(ready_b["VmRSS"]), mib(ready_b["VmHWM"]), ready_b["RssAnon"], ready_b["RssFile"]))

tot, per = smaps(a.proc.pid)
print("   A: Pss %d KiB, private (clean + dirty) %d KiB; Rss by object: %s"
      % (tot["Pss"], tot["Private"], ", ".join("%s %d" % kv for kv in per[:8])))

b.sock.setblocking(False)
polls_b = 0
b_after_first_poll = None


def drain_b():
    global polls_b, b_after_first_poll
    while True:
        try:
            data = b.sock.recv(4096)
        except BlockingIOError:
            return
        for f in data.decode("utf-8", "replace").split("\n"):
            # every completed status check re-states READY ("... next check in 10 s")
            if f.startswith("STATUS=Ready: ") and "next check in" in f:
                polls_b += 1
                if polls_b == 1:
                    b_after_first_poll = status_kib(b.proc.pid)


cycles = failures = same_ke_id = 0
last_ke_id = None
samples = []          # (cycle, VmRSS)
warm = None
cycle_ms = []
start = time.monotonic()
last_sample = 0.0
while time.monotonic() - start < secs:
    t0 = time.monotonic()
    a.proc.send_signal(signal.SIGUSR1)
    # the cycle ends when A is READY again with a new KeID; a failure on the way is counted
    seen_fail = []

    def done(f):
        if f.startswith("STATUS=") and ("failed" in f or "unreachable" in f or "but" in f):
            seen_fail.append(f)
        return f.startswith("STATUS=Ready: ")

    try:
        f, _ = a.wait_for(done, 15)
    except Exception as e:
        print("   cycle %d: %s" % (cycles + 1, e))
        ok = False
        break
    cycle_ms.append((time.monotonic() - t0) * 1000)
    # "STATUS=Ready: KeID <keID>, ...": every cycle must end with a new KeID
    ke_id = f.split()[2].rstrip(",")
    if ke_id == last_ke_id:
        same_ke_id += 1
    last_ke_id = ke_id
    failures += len(seen_fail)
    if seen_fail and failures <= 3:
        print("   cycle %d: %s" % (cycles + 1, seen_fail[0]))
    cycles += 1
    if cycles == 100:
        warm = status_kib(a.proc.pid)["VmRSS"]
    now = time.monotonic()
    if now - last_sample >= 5:
        samples.append((cycles, status_kib(a.proc.pid)["VmRSS"]))
        last_sample = now
    drain_b()
elapsed = time.monotonic() - start
end_a = status_kib(a.proc.pid)
drain_b()
end_b = status_kib(b.proc.pid)
a.stop()
b.stop()

print("3. growth over %.0f s:" % elapsed)
print("   A: %d SIGUSR1 re-enrolment cycles (%.1f/s; cycle median %.1f ms, p90 %.1f ms), %d failed attempts on the way,"
      " %d cycles without a new KeID"
      % (cycles, cycles / elapsed, statistics.median(cycle_ms) if cycle_ms else 0, pct(cycle_ms, 0.9) if cycle_ms else 0,
         failures, same_ke_id))
if same_ke_id:
    ok = False
print("      VmRSS after 100 cycles %s, at the end %s: growth %+d KiB; VmHWM at the end %s"
      % (mib(warm or 0), mib(end_a["VmRSS"]), end_a["VmRSS"] - (warm or end_a["VmRSS"]), mib(end_a["VmHWM"])))
print("      VmRSS samples (cycle:KiB): " + " ".join("%d:%d" % s for s in samples))
if b_after_first_poll:
    print("   B: %d real status checks (poll 10 s): VmRSS after the first %s, at the end %s: growth %+d KiB"
          % (polls_b, mib(b_after_first_poll["VmRSS"]), mib(end_b["VmRSS"]), end_b["VmRSS"] - b_after_first_poll["VmRSS"]))
else:
    print("   B: no status check completed in %.0f s" % elapsed)
worst = max(ready_a["VmRSS"], ready_b["VmRSS"], end_a["VmRSS"], end_b["VmRSS"])
print("target VmRSS <= 4 MiB while READY: %s (worst %s)" % ("met" if worst <= TARGET_KIB else "NOT met", mib(worst)))
print("target no growth: %s" % ("met" if warm is not None and end_a["VmRSS"] - warm <= 64 else
                               "NOT met" if warm is not None else "not measured (fewer than 100 cycles)"))
sys.exit(0 if ok else 1)
EOF
python3 "$W/driver.py" "$AGENT" "$W/a.conf" "$W/b.conf" "$W" "$n" "$secs" "$W/a-disk.conf"

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# msce-agent as a daemon (TAP), as root, against the real msce-mef on loopback, with the
# service manager played by this script: an AF_UNIX datagram socket as NOTIFY_SOCKET, and for
# the journal a datagram socket at /run/systemd/journal/socket inside a private mount namespace.
# Checks the exact sd_notify sequence, READY=1 only once the key is readable by the CSE user,
# WATCHDOG=1, SIGHUP (good and bad configuration), SIGUSR1 (new KeID, no gap for a reader),
# the MEF's reenrol and revoke, backoff while the MEF is down, rejection, an unknown service
# user (exit 78), a MEF named by host name, the clock wait in cert mode (time() before the build
# time, daemon-fake-time.c), renewal at 80% and expiry of a 60 s profile (in a thread, with its
# own MEF and CSE user), SIGTERM (also in the middle of a TLS handshake), the journal entries
# and their fields, state.json, and measures the time to READY on the restore path and the
# agent's memory while ready.
# Usage: daemon-test.py BUILDDIR
import datetime
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

# Linux's SO_TIMESTAMP (= SCM_TIMESTAMP, struct timeval): Python 3.11 does not name it.
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)

# Users of this run's own (test-user.sh: msce-t<PID>-daemon, msce-t<PID>-expiry; PID the
# first process of the run, passed on through the keyctl session re-exec): a run of this test
# in another build directory or worktree at the same time never shares their keyrings.
TEST_USER_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-user.sh")
RUN_PID = os.environ.setdefault("DAEMON_TEST_PID", str(os.getpid()))
CSE_USER = f"msce-t{RUN_PID}-daemon"
EXPIRY_USER = f"msce-t{RUN_PID}-expiry"

build = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
AGENT = os.path.join(build or ".", "msce-agent")
MEF = os.path.join(build or ".", "msce-mef")

n_tests = 0
n_failed = 0


def tap(ok, name, detail=None):
    global n_tests, n_failed
    n_tests += 1
    if not ok:
        n_failed += 1
    print(f"{'ok' if ok else 'not ok'} {n_tests} - {name}", flush=True)
    if not ok and detail:
        for line in str(detail).splitlines()[-40:]:
            print("#   " + line, flush=True)
    return ok


def skip_all(why):
    print(f"1..0 # SKIP {why}")
    sys.exit(0)


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kw)


class Mef:
    def __init__(self, tmp):
        self.tmp = tmp
        self.port = None
        self.proc = None
        self.conf = os.path.join(tmp, "mef.conf")
        self.write_conf(8443)

    def write_conf(self, port):
        with open(self.conf, "w") as f:
            f.write(f"[server]\nlisten = 127.0.0.1:{port}\nfqdn = 127.0.0.1\nbase = /msce\n"
                    f"[store]\npath = {self.tmp}/mef.db\nmaster_key = {self.tmp}/master.key\n")

    def ctl(self, *args):
        p = run(MEF, "--config", self.conf, *args)
        if p.returncode != 0:
            raise RuntimeError(f"msce-mef {' '.join(args)}: {p.stdout}{p.stderr}")
        return p.stdout

    def start(self):
        # Port 0 the first time: msce-mef binds it and prints the port it got. A restart asks for
        # the same port again (the agents' configurations name it); no port is ever chosen before
        # it is bound (another process could take it in between). 30 s: a deadline for a hang.
        want = self.port or 0
        for _ in range(3):
            self.write_conf(want)
            out = open(os.path.join(self.tmp, "mef.out"), "w")
            err = open(os.path.join(self.tmp, "mef.err"), "w")
            self.proc = subprocess.Popen([MEF, "--config", self.conf, "serve"], stdout=out, stderr=err)
            end = time.monotonic() + 30
            while time.monotonic() < end:
                time.sleep(0.05)
                text = open(os.path.join(self.tmp, "mef.out")).read()
                m = re.search(r"^listening on 127\.0\.0\.1:(\d+)$", text, re.M)
                if m:
                    self.port = int(m.group(1))
                    return
                if want and "listening on" in open(os.path.join(self.tmp, "mef.err")).read():
                    self.port = want
                    return
                if self.proc.poll() is not None:
                    break
            self.stop()
            time.sleep(1)
        raise RuntimeError("msce-mef did not start: " + open(os.path.join(self.tmp, "mef.err")).read())

    def stop(self):
        if self.proc:
            self.proc.terminate()
            self.proc.wait()
            self.proc = None


class Agent:
    """msce-agent in daemon mode with NOTIFY_SOCKET pointing at us."""

    def __init__(self, tmp, conf, watchdog_usec=None, env=None, wrap=None):
        self.sock_path = os.path.join(tmp, f"notify-{time.monotonic_ns()}.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.sock_path)
        self.messages = []  # (seconds since start, "KEY=value")
        # The wall clock time each message was queued at our socket (SO_TIMESTAMP: the kernel's
        # time, not when this script got round to reading it, which on a loaded machine can be
        # much later), parallel to messages.
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
        self.sent = []
        self.out = open(os.path.join(tmp, "agent.log"), "a")
        e = dict(os.environ, NOTIFY_SOCKET=self.sock_path, **(env or {}))
        e.pop("JOURNAL_STREAM", None)
        argv = [AGENT, "--config", conf]
        if watchdog_usec:
            # WATCHDOG_PID must be the agent's pid: let a shell export its own and exec.
            e["WATCHDOG_USEC"] = str(watchdog_usec)
            argv = ["/bin/sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"'] + argv
        if wrap:
            argv = wrap + argv
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, env=e, stdout=self.out, stderr=self.out)
        self.pid = self.proc.pid

    def pump(self, timeout):
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(65536, socket.CMSG_SPACE(16))
        except socket.timeout:
            return False
        t = time.monotonic() - self.t0
        sent = time.time()
        for level, kind, value in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(value) >= 16:
                sec, usec = struct.unpack("qq", value[:16])
                sent = sec + usec / 1e6
        for line in data.decode().split("\n"):
            if line:
                self.messages.append((t, line))
                self.sent.append(sent)
        return True

    def wait_for(self, pred, timeout, start=0):
        """Index of the first message from start matching pred, waiting up to timeout s."""
        end = time.monotonic() + timeout
        i = start
        while True:
            while i < len(self.messages):
                if pred(self.messages[i][1]):
                    return i
                i += 1
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.pump(min(left, 0.05))

    def wait_count(self, pred, n, timeout, start=0):
        """True once n messages from start match pred, waiting up to timeout s."""
        end = time.monotonic() + timeout
        while sum(1 for _, m in self.messages[start:] if pred(m)) < n:
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.05))
        return True

    def drain(self, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.pump(end - time.monotonic())

    def texts(self, start=0, watchdog=False):
        return [m for _, m in self.messages[start:] if watchdog or m != "WATCHDOG=1"]

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=5):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.sock.close()
        os.unlink(self.sock_path)
        return self.proc.returncode

    def status_mem(self):
        fields = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    fields[k] = v.strip()
        return fields


# The CSE's view, from docs/cse-integration.md: its persistent keyring in a fresh session.
CSE_SCRIPT = r"""
keyctl get_persistent @s > /dev/null || exit 3
ring=$(keyctl search @s keyring msce 2> /dev/null) || { echo NORING; exit 0; }
keyctl rdescribe "$ring" > /dev/null || exit 3
for k in $(keyctl rlist "$ring"); do echo "KEY $(keyctl rdescribe "$k" | cut -d';' -f5-)"; done
ltk=$(keyctl search "$ring" user msce:ltk) && echo "LTK $(keyctl pipe "$ltk" | od -An -tx1 -v | tr -d ' \n')"
"""


def cse_keys(user=CSE_USER):
    """(names, ltk hex) as the CSE user sees them; (None, None) when there is no keyring."""
    p = subprocess.run(["su", "-s", "/bin/sh", user, "-c", "keyctl session - /bin/sh -s"], input=CSE_SCRIPT,
                       capture_output=True, text=True, timeout=30)
    if "NORING" in p.stdout or p.returncode != 0:
        return None, None
    names = sorted(line[4:] for line in p.stdout.splitlines() if line.startswith("KEY "))
    ltk = next((line[4:] for line in p.stdout.splitlines() if line.startswith("LTK ")), None)
    return names, ltk


def remove_keys(user=CSE_USER):
    uid = int(run("id", "-u", user).stdout)
    subprocess.run(["keyctl", "session", "-", "sh", "-c",
                    f"p=$(keyctl get_persistent @s {uid}) && r=$(keyctl search @s keyring msce) && "
                    "keyctl revoke $r && keyctl unlink $r $p"], capture_output=True, timeout=30)


def write_conf(path, port, state, run_dir, node="node-1", kpm_file=None, extra="", user=CSE_USER):
    n = node.split("-")[-1]
    with open(path, "w") as f:
        f.write(f"""[node]
id = {node}
[mef]
uri = https://127.0.0.1:{port}/msce
psk_identity = kpm-{n}
psk_file = {kpm_file}
[consumer]
user = {user}
[seal]
backend = host
state_dir = {state}
runtime_dir = {run_dir}
[timing]
connect_timeout = 2s
exchange_timeout = 30s
backoff_min = 200ms
backoff_max = 2s
{extra}""")



def maps_has(pid, names):
    """The mapped objects of pid whose file name contains one of names."""
    found = set()
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            path = line.split()[-1]
            found.update(n for n in names if n in os.path.basename(path))
    return sorted(found)


def children_of(pid):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    # "pid (comm) state ppid ...": comm may hold spaces, split after the last ')'
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return kids


def proc_status(pid):
    d = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            d[k] = v.strip()
    return d


CRYPTO_LIBS = ["libwolfssl", "libcrypto", "libtss2", "msce-agent-crypto"]

def silent_accept(srv, conns):
    """Accept connections on srv in a thread, keep them in conns, never answer."""
    def acceptor():
        try:
            while True:
                conns.append(srv.accept()[0])
        except OSError:
            pass

    threading.Thread(target=acceptor, daemon=True).start()


def seq_matches(msgs, patterns):
    """msgs match the regular expressions in order, one each, nothing else."""
    if len(msgs) != len(patterns):
        return False
    return all(re.fullmatch(p, m, re.S) for p, m in zip(patterns, msgs))


def eventually(pred, timeout=30):
    """pred() until it returns a true value or timeout s pass (a deadline for a hang, not a speed
    requirement); the last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(0.05)


def state_json_until(run_dir, pred, timeout=30):
    """state.json once pred(it) holds (state.json changes as the agent goes on: never judge it
    from one read), or the last one read when timeout s pass."""
    last = [None]

    def check():
        last[0] = state_json(run_dir)
        return last[0] is not None and pred(last[0])

    eventually(check, timeout)
    return last[0]


def state_json(run_dir):
    try:
        with open(os.path.join(run_dir, "state.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def kpsa_name(keid):
    """The keyring name of the first target's Kpsa: the MEF's kpsaID is <hex>.1@<fqdn>."""
    return "msce:kpsa:" + (keid or "").replace("@", ".1@")


def keid_of(msg):
    m = re.search(r"KeID ([0-9a-f]{32}@127\.0\.0\.1)", msg)
    return m.group(1) if m else None


# ---------------------------------------------------------------------------------------------

def main_scenario(tmp, mef, kpm, figures):
    state = os.path.join(tmp, "state")
    run_dir = os.path.join(tmp, "run")
    conf = os.path.join(tmp, "agent.conf")
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    remove_keys()
    tap(cse_keys() == (None, None), "no msce keyring for the CSE user before the agent starts")

    mef_url = f"https://127.0.0.1:{mef.port}/msce"
    a = Agent(tmp, conf, watchdog_usec=400000)
    i = a.wait_for(lambda m: m == "READY=1", 30)
    keys_at_ready = cse_keys() if i is not None else (None, None)
    msgs = a.texts()
    if "READY=1" in msgs:
        msgs = msgs[: msgs.index("READY=1") + 1]
    expected = [
        r"STATUS=Starting \(node node-1, MEF " + re.escape(mef_url) + r"\)",
        r"STATUS=Restoring the sealed profile from " + re.escape(state),
        r"STATUS=Enrolling with " + re.escape(mef_url),
        r"STATUS=Ready: KeID [0-9a-f]{32}@127\.0\.0\.1, expires \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, "
        r"next check in 10 s",
        r"READY=1",
    ]
    tap(i is not None and seq_matches(msgs, expected),
        "fresh start: STATUS Starting, Restoring, Enrolling with the MEF, Ready, then READY=1", "\n".join(a.texts()))
    keid1 = keid_of(msgs[3]) if len(msgs) > 3 else None
    names, ltk1 = keys_at_ready
    tap(ltk1 is not None and len(ltk1) == 64 and names is not None and kpsa_name(keid1) in names,
        "when READY=1 arrives the CSE user reads msce:ltk and its msce:kpsa key", f"{names} {keid1}")

    # Watchdog: WATCHDOG_USEC=400 ms -> a ping about every 200 ms. Wait for three (not: count
    # them in a fixed window, which a loaded machine can make too short).
    a.wait_count(lambda m: m == "WATCHDOG=1", 3, 30)
    pings = [t for t, m in a.messages if m == "WATCHDOG=1"]
    tap(len(pings) >= 3, f"WATCHDOG=1 sent with WATCHDOG_USEC/WATCHDOG_PID set ({len(pings)} so far)")

    st = state_json_until(run_dir, lambda st: st["state"] == "ready")
    tap(st is not None and st["state"] == "ready" and st["keID"] == keid1 and st["pid"] == a.pid and
        st["backend"] == "host" and st["last_error"] is None and st["status"].startswith("Ready: ")
        and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", st["since"] or "") and st["next_attempt"],
        "state.json: state ready, keID, backend host, pid, since, next_attempt", st)
    prof = json.load(open(os.path.join(run_dir, "profile.json")))
    tap(prof.get("keID") == keid1, "profile.json names the same KeID")
    mapped = maps_has(a.pid, CRYPTO_LIBS)
    tap(not mapped and not children_of(a.pid),
        "READY after enrolling: the daemon maps no crypto library (the exchange and sealing ran in "
        "child processes, now gone)", f"mapped: {mapped}, children: {children_of(a.pid)}")

    # SIGHUP with a valid configuration: RELOADING=1 ... READY=1. (From RELOADING=1 on: a
    # periodic status check's STATUS may come between the signal and it, on a slow machine.)
    start = len(a.messages)
    a.signal(signal.SIGHUP)
    r = a.wait_for(lambda m: m == "RELOADING=1", 30, start)
    j = a.wait_for(lambda m: m == "READY=1", 30, r) if r is not None else None
    msgs = [m for m in a.texts(r if r is not None else start) if m != "WATCHDOG=1"]
    if j is not None:
        msgs = msgs[: msgs.index("READY=1") + 1]
    tap(j is not None and msgs[0] == "RELOADING=1" and msgs[-1] == "READY=1" and
        any(m.startswith("STATUS=Ready: KeID " + keid1) for m in msgs),
        "SIGHUP: RELOADING=1, the sealed profile restored again, READY=1", "\n".join(msgs))

    # SIGHUP with a broken configuration: said so, the old one keeps running.
    good = open(conf).read()
    with open(conf, "w") as f:
        f.write(good.replace("[timing]", "[timing]\nbackoff_min = soon"))
    start = len(a.messages)
    a.signal(signal.SIGHUP)
    r = a.wait_for(lambda m: m == "RELOADING=1", 30, start)
    j = a.wait_for(lambda m: m == "READY=1", 30, r) if r is not None else None
    msgs = [m for m in a.texts(r if r is not None else start) if m != "WATCHDOG=1"]
    tap(j is not None and msgs[0] == "RELOADING=1" and
        any("reload failed, previous configuration kept" in m and "backoff_min: not a duration" in m for m in msgs)
        and a.proc.poll() is None and cse_keys()[1] == ltk1,
        "SIGHUP with a bad configuration: STATUS names the error, READY=1, keeps running with its keys",
        "\n".join(msgs))
    # state.json says it too (written before RELOADING's READY=1), for mscectl status.
    st = state_json(run_dir)
    tap(st is not None and st.get("state") == "ready" and "reload refused" in (st.get("last_error") or "")
        and "backoff_min: not a duration" in (st.get("last_error") or ""),
        "SIGHUP with a bad configuration: state.json last_error says the reload was refused", st)
    with open(conf, "w") as f:
        f.write(good)

    # SIGUSR1: a new KeID in the keyring, and a reader searching from its session keyring (one
    # search through the persistent keyring and "msce") never misses msce:ltk.
    reader = subprocess.Popen(
        ["su", "-s", "/bin/sh", CSE_USER, "-c", "keyctl session - /bin/sh -s"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    reader.stdin.write("keyctl get_persistent @s > /dev/null\n"
                       "while [ ! -e " + tmp + "/reader.stop ]; do\n"
                       "  keyctl search @s user msce:ltk > /dev/null 2>&1 && echo OK || echo GAP\n"
                       "done\n")
    reader.stdin.close()
    out = []
    reading = threading.Thread(target=lambda: out.extend(line.strip() for line in reader.stdout), daemon=True)
    reading.start()
    # The reader searches before the signal and goes on after the new KeID is in (counted in
    # searches, not in a fixed time that a loaded machine may fill with few of them).
    eventually(lambda: len(out) >= 3)
    start = len(a.messages)
    a.signal(signal.SIGUSR1)
    j = a.wait_for(lambda m: m.startswith("STATUS=Ready: KeID") and keid_of(m) != keid1, 30, start)
    n_at_ready = len(out)
    eventually(lambda: len(out) >= n_at_ready + 3)
    open(os.path.join(tmp, "reader.stop"), "w").close()
    reader.wait(30)
    reading.join(30)
    keid2 = keid_of(a.messages[j][1]) if j is not None else None
    names, ltk2 = cse_keys()
    tap(j is not None and keid2 and names == sorted(["msce:ltk", kpsa_name(keid2)]) and ltk2 != ltk1,
        "SIGUSR1: re-enrolled, the keyring holds the new KeID's keys", "\n".join(a.texts(start)) + f"\n{names}")
    tap(out.count("GAP") == 0 and out.count("OK") >= n_at_ready + 3 >= 6,
        f"no gap for a reader during the replacement ({out.count('OK')} searches, {out.count('GAP')} failed)")
    msgs = a.texts(start)
    tap(any(m.startswith("STATUS=Renewing KeID " + keid1) for m in msgs) and "READY=1" not in msgs,
        "SIGUSR1: STATUS says Renewing, no second READY=1", "\n".join(msgs))

    # The MEF asks for a re-enrolment at the next status check (poll 10 s).
    mef.ctl("node", "reenrol", "node-1")
    start = len(a.messages)
    j = a.wait_for(lambda m: m.startswith("STATUS=Ready: KeID") and keid_of(m) not in (keid1, keid2), 30, start)
    keid3 = keid_of(a.messages[j][1]) if j is not None else None
    tap(j is not None and kpsa_name(keid3) in (cse_keys()[0] or []),
        "the MEF says reenrol at a status check: a new KeID is in the keyring", "\n".join(a.texts(start)))

    # The keys vanish from the keyring (as when the persistent keyring expires unused): the next
    # poll puts them back from the sealed profile, same KeID. Every poll says Ready, and one that
    # looked before the keys went can say it after (on a slow machine its STATUS may even wait
    # unread in our socket): judged from the agent's log, in order, the reinstall and then Ready.
    log_path = os.path.join(tmp, "agent.log")
    mark = len(open(log_path).read())
    start = len(a.messages)
    removed_at = time.time()
    remove_keys()
    gone = cse_keys() == (None, None)

    def reinstalled():
        log = open(log_path).read()[mark:]
        i = log.find("are no longer in the keyring: reinstalling them from the sealed profile")
        return i >= 0 and f"Ready: KeID {keid3}," in log[i:]

    # reading our socket meanwhile: the agent's sd_notify blocks once ten datagrams wait in it
    end = time.monotonic() + 30
    while not reinstalled() and time.monotonic() < end:
        a.pump(0.05)
    done = reinstalled()
    names, _ = cse_keys()
    a.drain(0.1)
    readies = [f"{a.sent[k] - removed_at:+.1f} s" for k in range(start, len(a.messages))
               if a.messages[k][1].startswith("STATUS=Ready: KeID")]
    print(f"# Ready after the removal began at: {', '.join(readies) or 'none'}", flush=True)
    tap(gone and done and names and kpsa_name(keid3) in names,
        "keys removed behind the agent's back: reinstalled from the sealed profile at the next poll",
        "\n".join(a.texts(start)) + f"\n{names}\n" + open(log_path).read()[mark:])

    # The MEF forgets the KeID (another enrolment of the node retires it): 404 at the next
    # status check, and the agent enrols again.
    other = os.path.join(tmp, "other.conf")
    write_conf(other, mef.port, os.path.join(tmp, "state-other"), os.path.join(tmp, "run-other"),
               kpm_file=kpm["1"])
    p = run(AGENT, "--once", "-c", other)
    m_x = re.search(r"^  KeID: +(\S+)$", p.stdout, re.M)
    keid_x = m_x.group(1) if m_x else None
    start = len(a.messages)
    j = a.wait_for(lambda m: m.startswith("STATUS=Ready: KeID") and keid_of(m) not in (keid3, keid_x), 30, start)
    keid4 = keid_of(a.messages[j][1]) if j is not None else None
    log = open(os.path.join(tmp, "agent.log")).read()
    tap(p.returncode == 0 and keid_x and j is not None and f"no longer knows KeID {keid3}: re-enrolling" in log
        and kpsa_name(keid4) in (cse_keys()[0] or []),
        "the MEF no longer knows the KeID (404): re-enrolled, the new keys in the keyring",
        p.stdout + p.stderr + "\n".join(a.texts(start)))

    # Revocation at the next status check: keys, sealed profile and profile.json go.
    mef.ctl("node", "activate", "node-1")
    mef.ctl("node", "revoke", "node-1")
    start = len(a.messages)
    j = a.wait_for(lambda m: m.startswith("STATUS=Revoked by MEF"), 30, start)
    eventually(lambda: cse_keys() == (None, None) and not os.path.exists(os.path.join(state, "profile.sealed"))
               and not os.path.exists(os.path.join(run_dir, "profile.json")), 10)
    st = state_json_until(run_dir, lambda st: st["state"] == "revoked", 10)
    tap(j is not None and cse_keys() == (None, None) and not os.path.exists(os.path.join(state, "profile.sealed"))
        and not os.path.exists(os.path.join(run_dir, "profile.json")) and st and st["state"] == "revoked"
        and st["keID"] is None,
        "the MEF revokes: keys, sealed profile and profile.json removed, state.json says revoked",
        "\n".join(a.texts(start)) + f"\n{st}")
    a.drain(1.0)
    tap(a.proc.poll() is None and not any(m.startswith("STATUS=Enrolling") for m in a.texts(j or 0)),
        "revoked: stays unprovisioned, running, without retrying")

    # An operator acts: the node is allowed again, SIGUSR1 enrols.
    mef.ctl("node", "activate", "node-1")
    start = len(a.messages)
    a.signal(signal.SIGUSR1)
    j = a.wait_for(lambda m: m.startswith("STATUS=Ready: KeID"), 30, start)
    tap(j is not None and cse_keys()[1] is not None, "after revocation, SIGUSR1 enrols again",
        "\n".join(a.texts(start)))

    figures["rss_ready"] = a.status_mem()

    # SIGTERM: STOPPING=1 and exit 0 (how fast is not asserted: 30 s is a deadline for a hang).
    start = len(a.messages)
    t = time.monotonic()
    a.signal(signal.SIGTERM)
    try:
        rc = a.proc.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t
    a.wait_for(lambda m: m == "STOPPING=1", 5, start)
    tap(rc == 0 and "STOPPING=1" in a.texts(start),
        f"SIGTERM: STOPPING=1 and exit 0 (in {took * 1000:.0f} ms)", a.texts(start))
    a.stop()
    return conf, state, run_dir


def restore_scenario(tmp, mef, conf, state, run_dir, figures):
    # With a sealed profile and the MEF down: READY=1 without the network; time it.
    mef.stop()
    times = []
    ok = True
    # /run is a tmpfs in production: keep state.json and profile.json on one here too.
    shm = tempfile.mkdtemp(prefix="daemon-test-run-", dir="/dev/shm") if os.path.isdir("/dev/shm") else None
    if shm:
        os.chmod(shm, 0o755)
        text = open(conf).read().replace(f"runtime_dir = {run_dir}", f"runtime_dir = {shm}")
        conf = os.path.join(tmp, "restore.conf")
        with open(conf, "w") as f:
            f.write(text)
    for _ in range(9):
        remove_keys()
        a = Agent(tmp, conf)
        i = a.wait_for(lambda m: m == "READY=1", 30)
        if i is None:
            ok = False
        else:
            times.append(a.messages[i][0])
        if i is not None and len(times) == 1:
            ok = ok and cse_keys()[1] is not None and any(m.startswith("STATUS=Ready") for m in a.texts())
            ok = ok and not any(m.startswith("STATUS=Enrolling") for m in a.texts())
            a.drain(0.3)
            figures["rss_restored"] = a.status_mem()
        a.stop()
    if shm:
        shutil.rmtree(shm, ignore_errors=True)
    times.sort()
    figures["ready_restore_ms"] = [round(t * 1000, 1) for t in times]
    tap(ok and len(times) == 9, "sealed profile, MEF down: READY=1 from the restore alone "
        f"(median {times[len(times) // 2] * 1000:.1f} ms from exec)" if times else "restore: no READY=1")
    mef.start()


def backoff_scenario(tmp, mef, kpm):
    # MEF down on a fresh state: backoff with growing delays, then READY once it is back.
    port = mef.port
    mef.stop()
    state = os.path.join(tmp, "state-backoff")
    run_dir = os.path.join(tmp, "run-backoff")
    conf = os.path.join(tmp, "backoff.conf")
    # A LED on a chip that does not exist: said once, and no reason to stop.
    write_conf(conf, port, state, run_dir, kpm_file=kpm["1"], extra="[leds]\nstatus = gpiochip99:17\n")
    remove_keys()
    a = Agent(tmp, conf)
    # Three failed attempts, however long each takes (backoff 200 ms .. 2 s, slower under ASan).
    unreachable = lambda: [m for m in a.texts() if m.startswith("STATUS=MEF unreachable")]
    i = a.wait_for(lambda m: m.startswith("STATUS=MEF unreachable"), 10)
    deadline = time.monotonic() + 30
    while len(unreachable()) < 3 and time.monotonic() < deadline:
        a.pump(0.05)
    fails = unreachable()
    tap(i is not None and re.fullmatch(r"STATUS=MEF unreachable \(connection refused\); retrying in \d+ ms", fails[0])
        and len(fails) >= 3 and "READY=1" not in a.texts(),
        f"MEF down: STATUS 'MEF unreachable (connection refused); retrying in ...', {len(fails)} attempts, "
        "no READY=1", "\n".join(f"{t:.3f} {m}" for t, m in a.messages))
    # state.json changes with every attempt (enrol, then backoff): each snapshot must be whole and
    # consistent with its state, and the backoff one must show up (the agent spends most of its
    # time there). The retry that follows a backoff keeps last_error and clears next_attempt.
    snaps, bad, st = [], [], None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(os.path.join(run_dir, "state.json")) as f:
                text = f.read()
        except OSError as e:
            bad.append(f"unreadable: {e}")
            break
        try:
            cur = json.loads(text)
        except ValueError:
            bad.append(f"not JSON (torn write?): {text!r}")
            break
        snaps.append((round(time.monotonic() - a.t0, 3), cur["state"], cur["next_attempt"], cur["last_error"]))
        if (cur["state"] == "backoff") != (cur["next_attempt"] is not None) or \
                cur["state"] not in ("enrol", "backoff") or "Connection refused" not in (cur["last_error"] or ""):
            bad.append(f"inconsistent: {cur}")
            break
        if cur["state"] == "backoff":
            st = cur
            break
        time.sleep(0.01)  # poll interval, not a wait for an outcome
    tap(st is not None and not bad, "state.json: backoff, last_error, next_attempt; every snapshot consistent",
        "\n".join(bad + [str(x) for x in snaps[-20:]]))
    mef.start()
    j = a.wait_for(lambda m: m == "READY=1", 10)
    tap(j is not None and cse_keys()[1] is not None, "the MEF back: enrolled, READY=1", "\n".join(a.texts()))
    a.stop()
    log = open(os.path.join(tmp, "agent.log")).read()
    tap(log.count("Cannot drive the LEDs ([leds] status = gpiochip99:17") == 1,
        "a LED that cannot be driven: one warning, the agent carries on")


def rejected_scenario(tmp, mef, kpm):
    state = os.path.join(tmp, "state-rejected")
    run_dir = os.path.join(tmp, "run-rejected")
    conf = os.path.join(tmp, "rejected.conf")
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["wrong"])
    a = Agent(tmp, conf)
    i = a.wait_for(lambda m: m.startswith("STATUS=Rejected by MEF"), 30)
    tap(i is not None and "retrying in 1 h" in a.messages[i][1] and "PSK identity kpm-1" in a.messages[i][1],
        "wrong Kpm: STATUS 'Rejected by MEF: ...; retrying in 1 h'", "\n".join(a.texts()))
    st = state_json_until(run_dir, lambda st: st["state"] == "rejected")
    tap(st is not None and st["state"] == "rejected", "state.json: rejected", st)
    a.stop()

    # A configuration error the agent finds only when using it: exit 78.
    conf = os.path.join(tmp, "nouser.conf")
    write_conf(conf, mef.port, os.path.join(tmp, "state-nouser"), run_dir, kpm_file=kpm["1"])
    with open(conf) as f:
        text = f.read().replace(f"user = {CSE_USER}", "user = msce-test-nosuchuser")
    with open(conf, "w") as f:
        f.write(text)
    a = Agent(tmp, conf)
    try:
        rc = a.proc.wait(30)
    except subprocess.TimeoutExpired:
        rc = None
    a.wait_for(lambda m: "no such user 'msce-test-nosuchuser'" in m, 5)
    tap(rc == 78 and any("no such user 'msce-test-nosuchuser'" in m for m in a.texts()),
        "an unknown service user: exit 78 with a STATUS naming it", f"exit {rc}\n" + "\n".join(a.texts()))
    st = state_json(run_dir)
    tap(st is not None and st["state"] == "configuration-error" and "no such user" in (st["last_error"] or "")
        and not os.path.exists(os.path.join(tmp, "state-nouser")),
        "an unknown service user: checked before anything is sent or created; state.json: configuration-error", st)
    a.stop()


def incompatible_scenario(tmp, kpm):
    """A TLS 1.2 MEF whose only suite this wolfSSL lacks: state incompatible, slow retry."""
    if not shutil.which("openssl"):
        tap(True, "# SKIP incompatible: no openssl")
        return
    # Port 0: s_server prints "ACCEPT 127.0.0.1:PORT" once it listens (not with -quiet).
    srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0", "-nocert",
                            "-tls1_2", "-cipher", "PSK-AES128-CBC-SHA256", "-psk", open(kpm["1"]).read().strip(),
                            "-psk_identity", "kpm-1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
    try:
        port, out, end = None, b"", time.monotonic() + 30
        while port is None and time.monotonic() < end and srv.poll() is None:
            if select.select([srv.stdout], [], [], 0.1)[0]:
                out += os.read(srv.stdout.fileno(), 4096)
                m = re.search(rb"^ACCEPT 127\.0\.0\.1:(\d+)$", out, re.M)
                port = int(m.group(1)) if m else None
        if port is None:
            tap(False, "incompatible: openssl s_server did not start")
            return
        state = os.path.join(tmp, "state-incompatible")
        run_dir = os.path.join(tmp, "run-incompatible")
        conf = os.path.join(tmp, "incompatible.conf")
        write_conf(conf, port, state, run_dir, kpm_file=kpm["1"])
        a = Agent(tmp, conf)
        i = a.wait_for(lambda m: m.startswith("STATUS=Incompatible with MEF"), 10)
        tap(i is not None and "the MEF accepted none of what this agent offers (TLS 1.2-1.3" in a.messages[i][1]
            and "retrying in 1 h" in a.messages[i][1],
            "TLS 1.2 MEF with TLS_PSK_WITH_AES_128_CBC_SHA256 only: STATUS 'Incompatible with MEF: TLS: the MEF "
            "accepted none of what this agent offers (...); retrying in 1 h'", "\n".join(a.texts()))
        st = state_json(run_dir)
        tap(st is not None and st["state"] == "incompatible" and "accepted none" in (st["last_error"] or "")
            and st["next_attempt"] is not None, "state.json: incompatible, last_error, next_attempt", st)
        a.stop()
    finally:
        srv.kill()
        srv.wait()


def resolver_scenario(tmp, mef, kpm):
    # A host name goes through the resolver thread; the MEF calls itself 127.0.0.1, so the key
    # confirmation fails (transient) after a complete exchange.
    conf = os.path.join(tmp, "name.conf")
    write_conf(conf, mef.port, os.path.join(tmp, "state-name"), os.path.join(tmp, "run-name"), kpm_file=kpm["1"])
    with open(conf) as f:
        text = f.read().replace("https://127.0.0.1:", "https://localhost:")
    with open(conf, "w") as f:
        f.write(text)
    a = Agent(tmp, conf)
    i = a.wait_for(lambda m: m.startswith("STATUS=Enrolment failed"), 30)
    tap(i is not None and "key confirmation failed" in a.messages[i][1] and "@localhost" in a.messages[i][1],
        "a MEF named by host name: resolved off the loop, exchange complete, KeID checked against the name",
        "\n".join(a.texts()))
    a.stop()


def expiry_scenario(tmp):
    """Renewal at 80% of a 60 s lifetime with the MEF gone, then the expiry: keys removed and
    enrolling. Runs in a thread beside the others, with its own MEF and CSE user; returns the
    results to report."""
    results = []
    user = EXPIRY_USER
    os.makedirs(tmp)
    mef = Mef(tmp)
    a = None
    try:
        mef.ctl("init")
        kpm = os.path.join(tmp, "kpm-e.hex")
        mef.ctl("node", "add", "node-e", "--cse-id", "/mn-cse-e", "--cse-base", "https://in.example.net/~/in-cse",
                "--psk-id", "kpm-e", "--generate-psk", kpm, "--target", "/in-cse", "--poll", "3600",
                "--lifetime", "60")
        mef.start()
        remove_keys(user)
        conf = os.path.join(tmp, "expiry.conf")
        run_dir = os.path.join(tmp, "run")
        state = os.path.join(tmp, "state")
        write_conf(conf, mef.port, state, run_dir, node="node-e", kpm_file=kpm, user=user,
                   extra="backoff_min = 1s\nbackoff_max = 4s\n")
        a = Agent(tmp, conf)
        i = a.wait_for(lambda m: m == "READY=1", 30)
        mef.stop()
        # The expiry time the agent works with (state.json "exp", whole seconds), against the
        # kernel's timestamps of the STATUS messages (Agent.sent): timers never fire early, so
        # "not before" is exact however loaded the machine; "not too late" is checked as an
        # order of events (renewal, backoff, then expiry), never as a time window.
        st = state_json_until(run_dir, lambda st: st["state"] == "ready" and st["exp"]) if i is not None else None
        exp = (datetime.datetime.strptime(st["exp"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp() if st and st.get("exp") else None)
        results.append((i is not None and exp is not None and cse_keys(user)[1] is not None,
                        "expiry: enrolled for 60 s, READY=1", f"{st}"))
        j = a.wait_for(lambda m: m.startswith("STATUS=Renewing KeID"), 90, i or 0)
        # renewal at 80% of a lifetime of 60 s: 12 s before exp (15 s when the agent's obtained
        # time is a second after the MEF's issue time, whole seconds)
        before = exp - a.sent[j] if j is not None and exp else -1
        k = a.wait_for(lambda m: m.startswith("STATUS=MEF unreachable") and "stays in place until" in m, 30, j or 0)
        keys_during = cse_keys(user)[1] is not None
        e = a.wait_for(lambda m: m.startswith("STATUS=") and "stays in place" not in m and
                       not m.startswith("STATUS=Renewing"), 90, k or 0)
        results.append((j is not None and 0 < before <= 16 and k is not None and keys_during and
                        (e is None or j < k < e),
                        f"renewal at 80% of the lifetime ({before:.1f} s before the expiry), the MEF gone: backoff, "
                        "the keys stay in place", "\n".join(a.texts())))
        late = a.sent[e] - exp if e is not None and exp else -1
        gone = eventually(lambda: cse_keys(user) == (None, None) and
                          not os.path.exists(os.path.join(state, "profile.sealed")) and
                          re.search(r"KeID \S+ expired at .* without renewal: removing its keys and enrolling",
                                    open(os.path.join(tmp, "agent.log")).read()), 30)
        log = open(os.path.join(tmp, "agent.log")).read()
        results.append((e is not None and late >= 0 and gone,
                        f"expiry passed without renewal (STATUS {late:.1f} s after exp, never before): keys and "
                        "sealed profile removed, enrolling",
                        "\n".join(a.texts()) + "\n" + log[-2000:]))
    except Exception as ex:  # reported, not raised: this runs in a thread
        results.append((False, "expiry scenario", repr(ex)))
    finally:
        if a:
            a.stop()
        mef.stop()
        remove_keys(user)
    return results


def clock_scenario(tmp, mef, kpm):
    # Cert mode with the wall clock before the build time (time() from daemon-fake-time.c):
    # wait, boundedly, for the time before verifying the MEF's certificate.
    lib = os.environ.get("MSCE_FAKE_TIME_LIB") or os.path.join(build, "tests/integration/libdaemon-fake-time.so")
    certs = os.path.join(tmp, "certs")
    gen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen-certs.sh")
    if not os.path.exists(lib) or run("sh", gen, certs).returncode != 0:
        print(f"ok {n_tests + 1} # SKIP clock wait: {'daemon-fake-time not built' if not os.path.exists(lib) else 'no certificates (openssl)'}",
              flush=True)
        globals()["n_tests"] += 1
        return
    conf = os.path.join(tmp, "clock.conf")
    with open(conf, "w") as f:
        f.write(f"""[node]
id = node-c
[mef]
uri = https://127.0.0.1:{mef.port}/msce
mode = cert
certificate = {certs}/client.pem
key = {certs}/client.key
trust_anchors = {certs}/ca.pem
[consumer]
user = {CSE_USER}
[seal]
backend = host
state_dir = {tmp}/state-clock
runtime_dir = {tmp}/run-clock
[timing]
clock_wait_max = 2s
backoff_min = 10s
""")
    env = {"LD_PRELOAD": lib, "ASAN_OPTIONS": "verify_asan_link_order=0"}
    a = Agent(tmp, conf, env=env)
    i = a.wait_for(lambda m: m.startswith("STATUS=Waiting for time synchronisation"), 30)
    j = a.wait_for(lambda m: m.startswith("STATUS=Enrolling with"), 30, i or 0) if i is not None else None
    # between the two STATUS messages as the kernel queued them (not as this script read them):
    # at least clock_wait_max; how much longer is the machine's business (30 s: a hang)
    waited = a.sent[j] - a.sent[i] if j is not None else None
    tap(i is not None and "at most 2 s" in a.messages[i][1] and waited is not None and waited >= 1.9,
        f"cert mode, clock before the build time: STATUS 'Waiting for time synchronisation', then an attempt "
        f"after {waited or 0:.1f} s (clock_wait_max = 2s)", "\n".join(a.texts()))
    a.stop()

    # psk mode needs no clock: the same fake time, no wait.
    conf = os.path.join(tmp, "clock-psk.conf")
    write_conf(conf, mef.port, os.path.join(tmp, "state-clock-psk"), os.path.join(tmp, "run-clock-psk"),
               kpm_file=kpm["1"])
    a = Agent(tmp, conf, env=env)
    i = a.wait_for(lambda m: m == "READY=1", 30)
    tap(i is not None and not any("Waiting for time" in m for m in a.texts()),
        "psk mode, the same clock: no wait, READY=1", "\n".join(a.texts()))
    a.stop()


def hang_scenario(tmp, kpm):
    # A TCP server that accepts and never answers: SIGTERM in the middle of the handshake.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    conns = []
    silent_accept(srv, conns)
    conf = os.path.join(tmp, "hang.conf")
    write_conf(conf, port, os.path.join(tmp, "state-hang"), os.path.join(tmp, "run-hang"), kpm_file=kpm["1"],
               extra="exchange_timeout = 60s\n")
    a = Agent(tmp, conf)
    i = a.wait_for(lambda m: m.startswith("STATUS=Enrolling"), 30)
    eventually(lambda: conns, 30)

    def client_hello_in():  # the ClientHello is out, nothing comes back
        try:
            return conns[0].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, IndexError):
            return b""

    eventually(client_hello_in, 30)
    kids = children_of(a.pid)
    kid = proc_status(kids[0]) if len(kids) == 1 else {}
    cap_eff = int(kid.get("CapEff", "0"), 16)
    dropped = (1 << 21) | (1 << 7) | (1 << 6)  # CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID
    tap(len(kids) == 1 and kid.get("NoNewPrivs") == "1" and cap_eff & dropped == 0 and
        "libwolfssl" in maps_has(kids[0], CRYPTO_LIBS) and not maps_has(a.pid, CRYPTO_LIBS),
        "mid-handshake: the TLS runs in one child process with no_new_privs and without CAP_SYS_ADMIN, "
        "CAP_SETUID, CAP_SETGID; the daemon maps no crypto library",
        f"children {kids}, NoNewPrivs {kid.get('NoNewPrivs')}, CapEff {kid.get('CapEff')}")
    t = time.monotonic()
    start = len(a.messages)
    a.signal(signal.SIGTERM)
    try:
        rc = a.proc.wait(30)  # exchange_timeout is 60 s: an exit before it is the point
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t
    a.wait_for(lambda m: m == "STOPPING=1", 5, start)
    tap(i is not None and conns and rc == 0 and "STOPPING=1" in a.texts(start),
        f"SIGTERM in the middle of a TLS handshake: STOPPING=1 and exit 0 (in {took * 1000:.0f} ms)",
        f"exit {rc}\n" + "\n".join(a.texts()))
    gone = eventually(lambda: not any(os.path.exists(f"/proc/{k}") for k in kids), 30)
    tap(bool(kids) and gone, "after SIGTERM the exchange's child process is gone too", f"children were {kids}")
    a.stop()
    srv.close()
    for c in conns:
        c.close()


def tpm_hang_scenario(tmp, mef, kpm):
    # Sealing runs in a child on the loop: a TPM that never answers (a listener that accepts and
    # stays silent) holds neither the watchdog nor SIGTERM.
    cfg_h = os.path.join(build, "msce-config.h")
    if "#define HAVE_TPM2 1" not in open(cfg_h).read():
        tap(True, "# SKIP a TPM that never answers: this build has no TPM support")
        return
    lsn, conns = [], []
    for _ in range(50):  # two consecutive free ports: the swtpm TCTI's command and control ports
        a, b = socket.socket(), socket.socket()
        try:
            a.bind(("127.0.0.1", 0))
            b.bind(("127.0.0.1", a.getsockname()[1] + 1))
            lsn = [a, b]
            break
        except OSError:
            a.close()
            b.close()
    port = lsn[0].getsockname()[1]
    for l in lsn:
        l.listen(8)
        silent_accept(l, conns)
    conf = os.path.join(tmp, "tpmhang.conf")
    write_conf(conf, mef.port, os.path.join(tmp, "state-tpmhang"), os.path.join(tmp, "run-tpmhang"),
               kpm_file=kpm["1"])
    with open(conf) as f:
        text = f.read().replace("backend = host", f"backend = tpm2\ntcti = swtpm:host=127.0.0.1,port={port}")
    with open(conf, "w") as f:
        f.write(text)
    a = Agent(tmp, conf, watchdog_usec=400000)
    end = time.monotonic() + 30
    while not conns and time.monotonic() < end and a.proc.poll() is None:
        a.pump(0.05)
    start = len(a.messages)
    # WATCHDOG_USEC 400 ms: a ping every 100-200 ms; a loop blocked on the TPM sends none. Wait
    # for two after the TPM connection (not: count them in a window a loaded machine can fill
    # with fewer); 30 s without is the failure.
    a.wait_count(lambda m: m == "WATCHDOG=1", 2, 30, start)
    pings = sum(1 for m in a.texts(start, watchdog=True) if m == "WATCHDOG=1")
    kids = children_of(a.pid)
    t = time.monotonic()
    a.signal(signal.SIGTERM)
    try:
        rc = a.proc.wait(30)  # a loop blocked on the TPM would never exit
    except subprocess.TimeoutExpired:
        rc = None
    took = time.monotonic() - t
    gone = eventually(lambda: not any(os.path.exists(f"/proc/{k}") for k in kids), 30)
    tap(conns and len(kids) == 1 and pings >= 2 and rc == 0 and gone,
        f"a TPM that never answers while sealing: the watchdog goes on ({pings} pings), "
        f"SIGTERM exits (in {took * 1000:.0f} ms), the sealing child is gone",
        f"connections {len(conns)}, children {kids}, exit {rc}\n" + "\n".join(a.texts()))
    a.stop()
    for c in conns + lsn:
        c.close()


# ---- journal capture (runs in a private mount namespace, see main) ----

def journal_parse(datagram):
    """Native journal protocol: KEY=value lines, or KEY\\n<le64 length><data>\\n."""
    fields, i = {}, 0
    while i < len(datagram):
        nl = datagram.index(b"\n", i)
        line = datagram[i:nl]
        if b"=" in line:
            k, _, v = line.partition(b"=")
            fields[k.decode()] = v
            i = nl + 1
        else:
            (n,) = struct.unpack("<Q", datagram[nl + 1:nl + 9])
            fields[line.decode()] = datagram[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
    return fields


def journal_child(tmp, conf, result_path):
    """Inside the namespace: bind the journal socket, run the agent until READY, collect."""
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/systemd"], check=True)
    os.makedirs("/run/systemd/journal")
    js = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    js.bind("/run/systemd/journal/socket")
    js.settimeout(0.05)
    entries = []
    a = Agent(tmp, conf)
    end = time.monotonic() + 30
    ready = False
    while time.monotonic() < end and not ready:
        a.pump(0.02)
        ready = "READY=1" in a.texts()
        try:
            while True:
                entries.append(journal_parse(js.recv(1 << 20)))
        except socket.timeout:
            pass
    a.drain(0.2)
    try:
        while True:
            entries.append(journal_parse(js.recv(1 << 20)))
    except socket.timeout:
        pass
    a.stop()
    raw = {"ready": ready, "entries": [{k: v.hex() for k, v in e.items()} for e in entries]}
    with open(result_path, "w") as f:
        json.dump(raw, f)


def journal_scenario(tmp, mef, kpm):
    state = os.path.join(tmp, "state-journal")
    run_dir = os.path.join(tmp, "run-journal")
    conf = os.path.join(tmp, "journal.conf")
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    result = os.path.join(tmp, "journal.json")
    p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                        "--journal-child", build, tmp, conf, result], capture_output=True, text=True, timeout=120)
    if p.returncode != 0 or not os.path.exists(result):
        tap(False, "journal capture in a private mount namespace", p.stdout + p.stderr)
        return
    raw = json.load(open(result))
    entries = [{k: bytes.fromhex(v) for k, v in e.items()} for e in raw["entries"]]
    enrolled = [e for e in entries if e.get("MESSAGE_ID") == b"2606ed3f512648db851c350a30b0459f"]
    e = enrolled[0] if enrolled else {}
    keid = e.get("MSCE_KEID", b"").decode()
    tap(raw["ready"] and len(enrolled) == 1 and e.get("PRIORITY") == b"6" and
        e.get("MSCE_STATE") == b"enrol" and e.get("MSCE_NODE_ID") == b"node-1" and
        re.fullmatch(r"[0-9a-f]{32}@127\.0\.0\.1", keid) and
        e.get("MSCE_MEF") == f"https://127.0.0.1:{mef.port}/msce".encode() and
        e.get("SYSLOG_IDENTIFIER") == b"msce-agent" and keid.encode() in e.get("MESSAGE", b""),
        "journal: the enrolled entry has MESSAGE_ID, PRIORITY and MSCE_STATE/NODE_ID/KEID/MEF",
        "\n".join(str(x) for x in entries))
    states = [x.get("MSCE_STATE") for x in entries]
    tap(b"start" in states and b"ready" in states and all("MESSAGE" in x and "MSCE_STATE" in x for x in entries),
        f"journal: every entry has a MESSAGE and MSCE_STATE ({len(entries)} entries)",
        "\n".join(f"{x.get('MSCE_STATE')} {x.get('MESSAGE')}" for x in entries))

    # No key bytes: the ltk the CSE reads and the Kpm values, raw, hex and base64.
    import base64
    ltk = cse_keys()[1]
    secrets = []
    for h in [ltk] + [open(kpm[k]).read().strip() for k in ("1", "wrong")]:
        if h:
            b = bytes.fromhex(h)
            secrets += [b, h.encode(), h.upper().encode(), base64.b64encode(b)[:-4]]
    blob = b"".join(k.encode() + b"=" + v + b"\n" for x in entries for k, v in x.items())
    tap(ltk is not None and not any(s in blob for s in secrets), "journal: no key bytes in any entry")


def catalog_check():
    """systemd/msce.catalog has one complete entry per id of agent/message-ids.h, and journalctl
    reads it."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ids = re.findall(r'#define (MSCE_MESSAGE_\w+) "([0-9a-f]{32})"', open(os.path.join(root, "agent/message-ids.h")).read())
    text = open(os.path.join(root, "systemd/msce.catalog")).read()
    entries = dict(re.findall(r"^-- ([0-9a-f]{32})\n(.*?)(?=^-- |\Z)", text, re.M | re.S))
    bad = [name for name, i in ids if i not in entries or not re.search(r"^Subject: \S", entries[i], re.M)
           or "\nDefined-By: msce\n" not in entries[i] or "\nDocumentation: " not in entries[i]
           or len(entries[i].split("\n\n", 1)[-1].strip()) < 100]
    ok = len(ids) == 7 and len(set(i for _, i in ids)) == 7 and set(entries) == set(i for _, i in ids) and not bad
    listed = ""
    if shutil.which("journalctl"):
        r = tempfile.mkdtemp(prefix="daemon-test-catalog-")
        os.makedirs(os.path.join(r, "usr/lib/systemd/catalog"))
        os.makedirs(os.path.join(r, "var/lib/systemd/catalog"))
        shutil.copy(os.path.join(root, "systemd/msce.catalog"), os.path.join(r, "usr/lib/systemd/catalog"))
        run("journalctl", f"--root={r}", "--update-catalog")
        listed = run("journalctl", f"--root={r}", "--list-catalog").stdout
        shutil.rmtree(r, ignore_errors=True)
        ok = ok and all(f"{i} msce: " in listed for _, i in ids)
    tap(ok, f"systemd/msce.catalog: an entry (Subject, Defined-By, Documentation, text) for each of the "
        f"{len(ids)} MESSAGE_IDs{', read by journalctl' if listed else ''}", f"ids {ids}\nbad {bad}\n{listed}")


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--journal-child":
        global AGENT, MEF
        AGENT = os.path.join(sys.argv[2], "msce-agent")
        journal_child(sys.argv[3], sys.argv[4], sys.argv[5])
        return
    if not build:
        print("usage: daemon-test.py BUILDDIR", file=sys.stderr)
        sys.exit(2)
    if os.geteuid() != 0:
        skip_all("needs root (keyring of another user, mount namespace)")
    for p in (AGENT, MEF):
        if not os.access(p, os.X_OK):
            skip_all(f"{p} not built")
    for c in ("keyctl", "su", "unshare", "mount", "od"):
        if not shutil.which(c):
            skip_all(f"{c} is missing")
    for u, tag in ((CSE_USER, "daemon"), (EXPIRY_USER, "expiry")):
        if run("id", "-u", u).returncode != 0 and \
                run("sh", TEST_USER_SH, "add", RUN_PID, tag).stdout.strip() != u:
            skip_all(f"cannot create user {u}")
    # A session keyring of our own.
    if not os.environ.get("MSCE_TEST_SESSION"):
        os.environ["MSCE_TEST_SESSION"] = "1"
        os.execvp("keyctl", ["keyctl", "session", "-", sys.executable, os.path.abspath(__file__)] + sys.argv[1:])

    tmp = tempfile.mkdtemp(prefix="daemon-test-")
    os.chmod(tmp, 0o755)
    os.umask(0o077)
    mef = Mef(tmp)
    figures = {}
    try:
        mef.ctl("init")
        kpm = {"1": os.path.join(tmp, "kpm-1.hex"), "wrong": os.path.join(tmp, "wrong.hex")}
        mef.ctl("node", "add", "node-1", "--cse-id", "/mn-cse-1", "--cse-base", "https://in.example.net/~/in-cse",
                "--psk-id", "kpm-1", "--generate-psk", kpm["1"], "--target", "/in-cse", "--poll", "10")
        with open(kpm["wrong"], "w") as f:
            f.write(os.urandom(32).hex() + "\n")
        mef.start()

        expiry = []
        slow = threading.Thread(target=lambda: expiry.extend(expiry_scenario(os.path.join(tmp, "expiry"))))
        slow.start()
        conf, state, run_dir = main_scenario(tmp, mef, kpm, figures)
        restore_scenario(tmp, mef, conf, state, run_dir, figures)
        backoff_scenario(tmp, mef, kpm)
        rejected_scenario(tmp, mef, kpm)
        incompatible_scenario(tmp, kpm)
        resolver_scenario(tmp, mef, kpm)
        clock_scenario(tmp, mef, kpm)
        hang_scenario(tmp, kpm)
        tpm_hang_scenario(tmp, mef, kpm)
        journal_scenario(tmp, mef, kpm)
        catalog_check()
        slow.join()
        for ok, name, detail in expiry:
            tap(ok, name, detail)

        log = "".join(open(os.path.join(d, f)).read() for d, _, fs in os.walk(tmp) for f in fs if f == "agent.log")
        tap(not re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:", log),
            "no sanitizer report from any agent run", log)
        print(f"# figures: {json.dumps(figures)}")
    finally:
        mef.stop()
        remove_keys()
        run("sh", TEST_USER_SH, "del", CSE_USER, EXPIRY_USER)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{n_tests}")
    sys.exit(1 if n_failed else 0)


if __name__ == "__main__":
    main()

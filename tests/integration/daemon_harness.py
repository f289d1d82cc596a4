# SPDX-License-Identifier: MIT
# The harness of daemon-test.py (TAP output, the MEF and the agent as processes, the service
# manager's notify socket, users, keys and configurations), imported by it and by its scenario
# modules.
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

# Linux's SO_TIMESTAMP (= SCM_TIMESTAMP, struct timeval): Python 3.11 does not name it.
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)

# Users of this run's own (test-user.sh: msce-t<PID>-daemon, -daemon2, -expiry, -expiry2,
# -expiry3, -expiry4 and -refused; PID the first process of the run, passed on through the keyctl session re-exec): a
# run of this test in another build directory or worktree at the same time never shares their
# keyrings.
TEST_USER_SH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "test-user.sh")
RUN_PID = os.environ.setdefault("DAEMON_TEST_PID", str(os.getpid()))
CSE_USER = f"msce-t{RUN_PID}-daemon"
CSE2_USER = f"msce-t{RUN_PID}-daemon2"  # [consumer] user changed on reload
EXPIRY_USER = f"msce-t{RUN_PID}-expiry"
EXPIRY2_USER = f"msce-t{RUN_PID}-expiry2"
EXPIRY3_USER = f"msce-t{RUN_PID}-expiry3"
EXPIRY4_USER = f"msce-t{RUN_PID}-expiry4"
REFUSED_USER = f"msce-t{RUN_PID}-refused"

build = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else None
AGENT = os.path.join(build or ".", "msce-agent")
MEF = os.path.join(build or ".", "msce-mef")
MSCECTL = os.path.join(build or ".", "ctl", "mscectl")

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



def tap_skip(name):
    global n_tests
    n_tests += 1
    print(f"ok {n_tests} # SKIP {name}", flush=True)


def skip_all(why):
    print(f"1..0 # SKIP {why}")
    sys.exit(0)


def run(*args, **kw):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kw)


class Mef:
    def __init__(self, tmp, extra=""):
        self.tmp = tmp
        self.port = None
        self.proc = None
        self.extra = extra  # more of msce-mef's configuration ([limits] ...)
        self.conf = os.path.join(tmp, "mef.conf")
        self.write_conf(8443)

    def write_conf(self, port):
        with open(self.conf, "w") as f:
            f.write(f"[server]\nlisten = 127.0.0.1:{port}\nfqdn = 127.0.0.1\nbase = /msce\n"
                    f"[store]\npath = {self.tmp}/mef.db\nmaster_key = {self.tmp}/master.key\n{self.extra}")

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


def eventually(pred, timeout=30, wait=time.sleep):
    """pred() until it returns a true value or timeout s pass (a deadline for a hang, not a speed
    requirement); the last value. wait(0.05) between: Agent.pump to read the agent's notify
    socket meanwhile (its sd_notify blocks once ten datagrams wait in it)."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        wait(0.05)


def state_json_until(run_dir, pred, timeout=30, wait=time.sleep):
    """state.json once pred(it) holds (state.json changes as the agent goes on: never judge it
    from one read), or the last one read when timeout s pass; wait as for eventually()."""
    last = [None]

    def check():
        last[0] = state_json(run_dir)
        return last[0] is not None and pred(last[0])

    eventually(check, timeout, wait)
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

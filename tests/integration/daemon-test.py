#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# msce-agent as a daemon (TAP), as root, against the real msce-mef on loopback, with the
# service manager played by this script: an AF_UNIX datagram socket as NOTIFY_SOCKET, and for
# the journal a datagram socket at /run/systemd/journal/socket inside a private mount namespace.
# Checks the exact sd_notify sequence, READY=1 only once the key is readable by the CSE user,
# WATCHDOG=1, SIGHUP through mscectl reload (good and bad configuration, another runtime_dir,
# another [consumer] user; that user changed across a restart too),
# SIGUSR1 (new KeID, no gap for a reader; during a reload's restore with the MEF down),
# the MEF's reenrol and revoke, backoff while the MEF is down, rejection, an unknown service
# user (exit 78), the Kpm file gone while ready (exit 78, not a re-enrolment), a MEF named by
# host name, the clock wait in cert mode (time() before the build
# time, daemon-fake-time.c), renewal at 80% and expiry of a 60 s profile (in threads, each with
# its own MEF and CSE user; also with a renewal sealed but not installed, during a Retry-After, and
# a renewal refused because the MEF revoked the node), a revocation while the user database does
# not answer (daemon-fake-nss.c), a clock ahead at a restore,
# mscectl factory-reset while it runs (the MEF down: its KeID not kept in place), keys removed
# from the keyring put back in every state (and SIGUSR1 then a renewal), a restart whose sealed
# profile does not open (the keys it finds removed), SIGUSR1 while sealing an enrolment (that goes
# on),
# SIGTERM (also in the middle of a TLS handshake, and while sealing an enrolment the MEF committed:
# the restart re-enrols at once), mscectl reprovision then reload, the journal entries
# and their fields, state.json, and measures the time to READY on the restore path and the
# agent's memory while ready.
# The scenarios of a node's life are in daemon_lifecycle.py, the harness in daemon_harness.py.
# Usage: daemon-test.py BUILDDIR
import errno
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import daemon_harness  # noqa: E402
from daemon_harness import *  # noqa: E402,F401,F403
from daemon_lifecycle import *  # noqa: E402,F401,F403


def clock_scenario(tmp, mef, kpm):
    # Cert mode with the wall clock before the build time (time() from daemon-fake-time.c):
    # wait, boundedly, for the time before verifying the MEF's certificate.
    lib = os.environ.get("MSCE_FAKE_TIME_LIB") or os.path.join(build, "tests/integration/libdaemon-fake-time.so")
    certs = os.path.join(tmp, "certs")
    gen = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen-certs.sh")
    if not os.path.exists(lib) or run("sh", gen, certs).returncode != 0:
        tap_skip(f"clock wait: {'daemon-fake-time not built' if not os.path.exists(lib) else 'no certificates (openssl)'}")
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

    # A reload while waiting: its restore finds nothing and the wait goes on, said again (the old
    # agent said "Restoring ..." until the wait was over, in STATUS=, state.json and the LEDs).
    with open(conf) as f:
        text = f.read().replace("clock_wait_max = 2s", "clock_wait_max = 1h").replace("-clock", "-clock-hup")
    conf = os.path.join(tmp, "clock-hup.conf")
    with open(conf, "w") as f:
        f.write(text)
    a = Agent(tmp, conf, env=env)
    i = a.wait_for(lambda m: m.startswith("STATUS=Waiting for time synchronisation"), 30)
    if i is not None:
        a.signal(signal.SIGHUP)
    r = a.wait_for(lambda m: m.startswith("STATUS=Restoring"), 30, i) if i is not None else None
    j = a.wait_for(lambda m: m.startswith("STATUS=Waiting for time synchronisation"), 10, r) if r is not None else None
    st = state_json_until(os.path.join(tmp, "run-clock-hup"), lambda st: st["state"] == "waiting-for-time"
                          and st["reload_done"] == 1, 10, a.pump) if j is not None else None
    tap(j is not None and re.search(r"at most (1 h|59 min|60 min)\)$", a.messages[j][1]) and st is not None
        and st["state"] == "waiting-for-time" and st["reload_done"] == 1,
        "SIGHUP while waiting for the time: after the restore, STATUS and state.json say waiting again "
        "(for what is left of clock_wait_max)", "\n".join(a.texts()) + f"\n{st}")
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


def once_term_scenario(tmp, kpm):
    # msce-agent --once stopped by SIGTERM in the middle of its enrolment (a MEF that accepts and
    # never answers): it has not provisioned anything, so `msce-agent --once && start-cse` must not
    # go on. The old agent exited 0 and said nothing.
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []
    silent_accept(srv, conns)
    state = os.path.join(tmp, "state-once-term")
    conf = os.path.join(tmp, "once-term.conf")
    write_conf(conf, srv.getsockname()[1], state, os.path.join(tmp, "run-once-term"), kpm_file=kpm["1"],
               extra="exchange_timeout = 60s\n")
    p = subprocess.Popen([AGENT, "--once", "-c", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def client_hello_in():  # the enrolment is under way: its ClientHello is out
        try:
            return conns[0].recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, IndexError):
            return b""

    sent = eventually(client_hello_in, 30)
    p.send_signal(signal.SIGTERM)
    try:
        out, err = p.communicate(timeout=30)  # exchange_timeout is 60 s
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    tap(sent and p.returncode == 75 and out == "" and
        "msce-agent: interrupted (signal SIGTERM) during the enrolment with MEF" in err and
        not os.path.exists(os.path.join(state, "profile.sealed")),
        "--once interrupted by SIGTERM while enrolling: exit 75, stderr says so, nothing on stdout, nothing sealed",
        f"exit {p.returncode}\nstdout {out}\nstderr {err}")
    srv.close()
    for c in conns:
        c.close()


def start_failures_scenario(tmp, kpm):
    # What a failure at start exits with, for msce-agent.service (RestartPreventExitStatus=78):
    # only what an operator must fix is 78. The old agent exited 78 for both below.
    import resource
    state = os.path.join(tmp, "state-start-fail")
    run_dir = os.path.join(tmp, "run-start-fail")
    # The user database not answering (sssd or LDAP at boot, daemon-fake-nss.c): transient, 75,
    # and systemd restarts the daemon; --once alike.
    lib = os.environ.get("MSCE_FAKE_NSS_LIB") or os.path.join(build, "tests/integration/libdaemon-fake-nss.so")
    if not os.path.exists(lib):
        tap_skip("the user database failing: daemon-fake-nss not built")
    else:
        user = "msce-test-nss-down"
        conf = os.path.join(tmp, "nss-down.conf")
        write_conf(conf, 1, state, run_dir, kpm_file=kpm["1"], user=user)
        env = dict(os.environ, LD_PRELOAD=lib, MSCE_FAKE_NSS_FAIL=user, ASAN_OPTIONS="verify_asan_link_order=0")
        env.pop("NOTIFY_SOCKET", None)
        daemon = run(AGENT, "-c", conf, env=env)
        once = run(AGENT, "--once", "-c", conf, env=env)
        why = f"[consumer] user: cannot resolve '{user}': Input/output error"
        tap(daemon.returncode == 75 and why in daemon.stderr and once.returncode == 75 and why in once.stderr
            and state_json(run_dir) is None,
            "the user database cannot look up the service user (EIO): daemon and --once exit 75, not 78",
            f"daemon: exit {daemon.returncode} {daemon.stderr}\n--once: exit {once.returncode} {once.stderr}")
    # The event loop or its signals cannot be set up (no file descriptor left): internal, 70.
    # The limit that fails there depends on what the agent inherits: try them in turn.
    conf = os.path.join(tmp, "fd-limit.conf")
    write_conf(conf, 1, state, run_dir, kpm_file=kpm["1"])
    seen = []
    for n in range(3, 16):
        def limit(n=n):
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        p = subprocess.Popen([AGENT, "-c", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             preexec_fn=limit, env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"})
        err = ""
        for line in p.stderr:  # until it exits, or runs: then it is past the set-up, stop it
            err += line
            if "Starting (node" in line:
                p.terminate()
        p.stderr.close()
        rc = p.wait(30)
        if re.search(r"cannot (create the event loop|watch SIGTERM, SIGINT, SIGHUP and SIGUSR1)", err):
            seen.append((n, rc, err.strip()))
        elif rc != 127:  # 127: too few to load the libraries
            break
    tap(seen and all(rc == 70 for _, rc, _ in seen),
        "no file descriptor for the event loop or its signals: exit 70 (internal), not 78",
        "\n".join(f"nofile {n}: exit {rc}: {e}" for n, rc, e in seen) or "the limit never hit the event loop")


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


EXPIRED_ID = b"29dc1906d6694507841754fe7f988e38"


def journal_child(tmp, conf, result_path, fake_time=None):
    """Inside the namespace: bind the journal socket, run the agent until READY, collect. With
    fake_time (the daemon-fake-time.c library: time() past the profile's expiry), until the
    restore's expired entry instead."""
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run/systemd"], check=True)
    os.makedirs("/run/systemd/journal")
    js = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    js.bind("/run/systemd/journal/socket")
    js.settimeout(0.05)
    entries = []
    env = fake_time and {"LD_PRELOAD": fake_time, "ASAN_OPTIONS": "verify_asan_link_order=0",
                         "MSCE_FAKE_TIME": "4102444800"}  # 2100-01-01
    a = Agent(tmp, conf, env=env)
    end = time.monotonic() + 30
    ready = False
    while time.monotonic() < end and not ready:
        a.pump(0.02)
        ready = any(e.get("MESSAGE_ID") == EXPIRED_ID for e in entries) if fake_time else "READY=1" in a.texts()
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


def journal_capture(tmp, conf, result, *fake_time):
    """journal_child() in a private mount namespace: its result, None (reported) on failure."""
    p = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, os.path.abspath(__file__),
                        "--journal-child", build, tmp, conf, result, *fake_time], capture_output=True, text=True,
                       timeout=120)
    if p.returncode != 0 or not os.path.exists(result):
        tap(False, "journal capture in a private mount namespace", p.stdout + p.stderr)
        return None
    raw = json.load(open(result))
    raw["entries"] = [{k: bytes.fromhex(v) for k, v in e.items()} for e in raw["entries"]]
    return raw


def journal_scenario(tmp, mef, kpm):
    state = os.path.join(tmp, "state-journal")
    run_dir = os.path.join(tmp, "run-journal")
    conf = os.path.join(tmp, "journal.conf")
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    raw = journal_capture(tmp, conf, os.path.join(tmp, "journal.json"))
    if not raw:
        return
    entries = raw["entries"]
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

    # Restarted with time() past its expiry: the restore's expired entry names the expired KeID
    # (no profile is in place then: MSCE_KEID does not come from one).
    lib = os.environ.get("MSCE_FAKE_TIME_LIB") or os.path.join(build, "tests/integration/libdaemon-fake-time.so")
    if not os.path.exists(lib):
        return tap_skip("journal: the expired entry (daemon-fake-time not built)")
    raw = journal_capture(tmp, conf, os.path.join(tmp, "journal-expired.json"), lib)
    if raw:
        x = [e for e in raw["entries"] if e.get("MESSAGE_ID") == EXPIRED_ID]
        tap(keid and len(x) == 1 and x[0].get("MSCE_KEID") == keid.encode() and x[0].get("PRIORITY") == b"4" and
            x[0].get("ERRNO") == str(errno.EKEYEXPIRED).encode() and keid.encode() in x[0].get("MESSAGE", b""),
            f"journal: restoring the profile past its expiry, the expired entry has MSCE_KEID={keid}, PRIORITY, ERRNO",
            "\n".join(str(e) for e in raw["entries"]))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--journal-child":
        daemon_harness.AGENT = os.path.join(sys.argv[2], "msce-agent")
        journal_child(*sys.argv[3:])
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
    for u, tag in ((CSE_USER, "daemon"), (CSE2_USER, "daemon2"), (EXPIRY_USER, "expiry"), (EXPIRY2_USER, "expiry2"),
                   (EXPIRY3_USER, "expiry3"), (EXPIRY4_USER, "expiry4"), (REFUSED_USER, "refused")):
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
        expiry2 = []
        slow2 = threading.Thread(target=lambda: expiry2.extend(expiry_in_enrolment_scenario(os.path.join(tmp, "expiry2"))))
        slow2.start()
        expiry3 = []
        slow3 = threading.Thread(
            target=lambda: expiry3.extend(expiry_after_renewal_sealed_scenario(os.path.join(tmp, "expiry3"))))
        slow3.start()
        expiry4 = []
        slow4 = threading.Thread(target=lambda: expiry4.extend(expiry_in_retry_after_scenario(os.path.join(tmp, "expiry4"))))
        slow4.start()
        refused = []
        slow5 = threading.Thread(target=lambda: refused.extend(renewal_refused_revoked_scenario(os.path.join(tmp, "refused"))))
        slow5.start()
        conf, state, run_dir = main_scenario(tmp, mef, kpm, figures)
        restore_scenario(tmp, mef, conf, state, run_dir, figures)
        reload_reprovision_scenario(tmp, mef, conf, state, run_dir)
        interrupted_enrolment_scenario(tmp, mef, kpm)
        user_change_scenario(tmp, mef, kpm)
        user_restart_scenario(tmp, mef, kpm)
        backoff_scenario(tmp, mef, kpm)
        keys_in_place_scenario(tmp, mef, kpm)
        factory_reset_scenario(tmp, mef, kpm)
        restart_unsealed_scenario(tmp, mef, kpm)
        usr1_while_sealing_scenario(tmp, mef, kpm)
        rejected_scenario(tmp, mef, kpm)
        kpm_missing_scenario(tmp, mef)
        removal_retry_scenario(tmp, mef)
        clock_ahead_restore_scenario(tmp, mef)
        incompatible_scenario(tmp, kpm)
        resolver_scenario(tmp, mef, kpm)
        clock_scenario(tmp, mef, kpm)
        hang_scenario(tmp, kpm)
        once_term_scenario(tmp, kpm)
        start_failures_scenario(tmp, kpm)
        tpm_hang_scenario(tmp, mef, kpm)
        journal_scenario(tmp, mef, kpm)
        slow.join()
        slow2.join()
        slow3.join()
        slow4.join()
        slow5.join()
        for ok, name, detail in expiry + expiry2 + expiry3 + expiry4 + refused:
            tap(ok, name, detail)

        log = "".join(open(os.path.join(d, f)).read() for d, _, fs in os.walk(tmp) for f in fs if f == "agent.log")
        tap(not re.search(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:", log),
            "no sanitizer report from any agent run", log)
        print(f"# figures: {json.dumps(figures)}")
    finally:
        mef.stop()
        remove_keys()
        run("sh", TEST_USER_SH, "del", CSE_USER, CSE2_USER, EXPIRY_USER, EXPIRY2_USER, EXPIRY3_USER, EXPIRY4_USER,
            REFUSED_USER)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"1..{daemon_harness.n_tests}")
    sys.exit(1 if daemon_harness.n_failed else 0)


if __name__ == "__main__":
    main()

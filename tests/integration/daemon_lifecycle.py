# SPDX-License-Identifier: MIT
# daemon-test.py's scenarios of a node's life: fresh start, signals, reenrol and revoke (also
# across a restart and --once, until an operator acts), restore
# with the MEF down, a reload whose restore SIGUSR1 cancels, backoff, rejection, an incompatible
# MEF, a MEF by host name, a stop while sealing an enrolment the MEF committed and a reload after
# SIGUSR1, and renewal and expiry of a short profile (also while an enrolment is under way, after a
# renewal sealed its profile but could not install it, and during the MEF's Retry-After), a
# renewal refused with the node-revoked hint (its status checked at once: revoked), mscectl
# factory-reset while it runs with the MEF down, the Kpm file gone while ready, a restart whose
# sealed profile does not open, SIGUSR1 while an enrolment is sealed, a removal retried until the
# user database answers, and a clock ahead at a restore (the sealed profile kept).
import datetime
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from daemon_harness import *  # noqa: F401,F403 (the harness is this module's vocabulary)


def fifo_writer(path):
    """A write end of the FIFO at path once a reader has it open, else None."""
    try:
        return os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None


def sealed_to_fifo(sealed):
    """Put a FIFO in place of the sealed profile at sealed: an unsealing process blocks opening
    it (until a writer comes, or it is killed). Returns what sealed_back() needs."""
    envelope = open(sealed, "rb").read()
    sst = os.stat(sealed)
    os.unlink(sealed)
    os.mkfifo(sealed, 0o600)
    os.chown(sealed, sst.st_uid, sst.st_gid)
    return envelope, sst


def sealed_back(sealed, saved):
    """The sealed profile sealed_to_fifo() took, in place of the FIFO again."""
    envelope, sst = saved
    back = sealed + ".back"
    with open(back, "wb") as f:
        f.write(envelope)
    os.chmod(back, sst.st_mode & 0o7777)
    os.chown(back, sst.st_uid, sst.st_gid)
    os.rename(back, sealed)


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

    # SIGHUP with a valid configuration, sent by mscectl reload (msce-agent.service's ExecReload=):
    # it returns once the reload is complete, so what the agent logs and counts for it is already
    # there then. Then RELOADING=1 ... READY=1. (From RELOADING=1 on: a periodic status check's
    # STATUS may come between the signal and it, on a slow machine.)
    start = len(a.messages)
    log_before = len(open(os.path.join(tmp, "agent.log")).read())
    reloads = (state_json(run_dir) or {}).get("reloads")
    p = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30")
    st = state_json(run_dir)
    log = open(os.path.join(tmp, "agent.log")).read()[log_before:]
    tap(p.returncode == 0 and reloads == 0 and st is not None and st.get("reloads") == 1 and
        st.get("reloads_begun") == 1 and st.get("reload_done") == 1 and
        st.get("reload_error") is None and st.get("state") == "ready" and "Configuration reloaded from" in log and
        "reloaded its configuration: Ready: KeID" in p.stdout,
        "mscectl reload: exit 0 once the reload is complete (state.json reloads 0 -> 1, reload 1 begun and done, "
        "journal line there)",
        f"exit {p.returncode} {p.stdout} {p.stderr}\nreloads before {reloads}, state.json {st}\n{log}")
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
    p = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30")
    st = state_json(run_dir)
    tap(p.returncode == 1 and "reload refused, previous configuration kept: " in p.stderr and
        "backoff_min: not a duration" in p.stderr and st is not None and st.get("reloads") == 2 and
        st.get("reloads_begun") == 2 and st.get("reload_done") == 2 and
        "backoff_min: not a duration" in (st.get("reload_error") or ""),
        "mscectl reload with a bad configuration: exit 1, the reason on stderr (state.json reloads 2, reload_error)",
        f"exit {p.returncode} {p.stdout} {p.stderr}\nstate.json {st}")
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

    # Another runtime_dir: refused, it needs a restart. The old code took it: state.json went to the
    # new directory, and mscectl reload, watching the old one, failed after its timeout.
    moved = run_dir + "-moved"
    with open(conf, "w") as f:
        f.write(good.replace(f"runtime_dir = {run_dir}\n", f"runtime_dir = {moved}\n"))
    start = len(a.messages)
    p = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "20")
    st = state_json(run_dir)
    why = "[seal] runtime_dir cannot change on reload"
    tap(p.returncode == 1 and why in p.stderr and "restart msce-agent" in p.stderr and st is not None and
        st.get("reload_done") == 3 and why in (st.get("reload_error") or "") and not os.path.exists(moved),
        "mscectl reload with another runtime_dir: refused at once (exit 1: restart to move it), state.json stays",
        f"exit {p.returncode} {p.stdout} {p.stderr}\nstate.json {st}")
    # its READY=1 (sent before state.json says the reload is complete) is read before SIGUSR1's messages
    r = a.wait_for(lambda m: m == "RELOADING=1", 30, start)
    tap(r is not None and a.wait_for(lambda m: m == "READY=1", 30, r) is not None,
        "SIGHUP with another runtime_dir: READY=1 again, the agent stays", "\n".join(a.texts(start)))
    # As the unit's ExecReload= runs it: mscectl reads runtime_dir from the edited file and finds no
    # state.json there. It says why and does not signal (the old message named no cause).
    p = run(MSCECTL, "--config", conf, "reload", "--pid", str(a.pid), "--timeout", "20")
    st2 = state_json(run_dir)
    tap(p.returncode == 1 and f"{moved}/state.json does not name msce-agent pid {a.pid}" in p.stderr and
        "not signalled" in p.stderr and "[seal] runtime_dir changed" in p.stderr and "restart" in p.stderr and
        st2 is not None and st2.get("reloads_begun") == 3,
        "mscectl reload --pid reading the edited runtime_dir: exit 1, not signalled, says a restart is needed",
        f"exit {p.returncode} {p.stdout} {p.stderr}\nstate.json {st2}")
    with open(conf, "w") as f:
        f.write(good)

    # A refusal during an older reload's restore stays the answer: SIGHUP A (good) restores, and
    # while its unsealing is under way SIGHUP B (a broken file) is refused at once, as reload 5;
    # A settling afterwards must not clear B's reload_error (the old reload_settle() did, so
    # state.json said the newest reload was fine). The sealed profile is a FIFO meanwhile: the
    # unsealing process blocks opening it until the test writes the envelope into it, so A is
    # under way for as long as the test wants, with no timing involved.
    sealed = os.path.join(state, "profile.sealed")
    saved = sealed_to_fifo(sealed)
    envelope = saved[0]
    before = state_json(run_dir) or {}
    start = len(a.messages)
    a.signal(signal.SIGHUP)
    state_json_until(run_dir, lambda st: st.get("reloads_begun") == 4 and st.get("state") == "restore")
    with open(conf, "w") as f:
        f.write(good.replace("[timing]", "[timing]\nbackoff_min = later"))
    a.signal(signal.SIGHUP)
    st_b = state_json_until(run_dir, lambda st: st.get("reload_done") == 5)
    with open(conf, "w") as f:
        f.write(good)
    w = eventually(lambda: fifo_writer(sealed))  # the unsealing process has it open
    if w is not None:
        os.write(w, envelope)
        os.close(w)
    st = state_json_until(run_dir, lambda st: st.get("reloads") == before.get("reloads", -9) + 2)
    # READY=1 for B's refusal and for A's settling, both sent before state.json counts A
    readies = a.wait_count(lambda m: m == "READY=1", 2, 30, start)
    tap(readies and w is not None and st_b is not None and st_b.get("state") == "restore" and st is not None and
        st.get("state") == "ready" and st.get("reloads_begun") == 5 and st.get("reload_done") == 5 and
        "backoff_min: not a duration" in (st.get("reload_error") or ""),
        "SIGHUP refused during an older reload's restore: once that restore settles, reload_done and "
        "reload_error still name the refused one",
        f"before {before}\nwhile restoring {st_b}\nafter {st}\n" + "\n".join(a.texts(start)))
    sealed_back(sealed, saved)

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
        i = log.find("are no longer in the keyring (no msce:ltk): reinstalling them from the sealed profile")
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

    # Gone again, and this time they cannot be put back (profile.json cannot be written: a
    # directory stands in its place). Without its keys the agent is not Ready: STATUS says why and
    # it tries again after a backoff, twice here with nothing Ready in between (it used to check
    # with the MEF and say Ready until the next poll); once the path is free they are back.
    pj = os.path.join(run_dir, "profile.json")
    mark = len(open(log_path).read())
    start = len(a.messages)
    os.unlink(pj)
    os.makedirs(os.path.join(pj, "in-the-way"))
    remove_keys()
    cannot = lambda m: m.startswith(f"STATUS=Cannot reinstall the keys of KeID {keid3}: cannot write {pj}")
    i = a.wait_for(cannot, 30, start)
    k = a.wait_for(cannot, 30, i + 1) if i is not None else None
    between = a.texts(i, watchdog=True)[1:k - i] if k is not None else []
    keys_meanwhile = cse_keys()
    st = state_json(run_dir)
    shutil.rmtree(pj)
    j = a.wait_for(lambda m: m.startswith(f"STATUS=Ready: KeID {keid3},"), 30, k) if k is not None else None
    tap(k is not None and not any(m.startswith("STATUS=Ready") for m in between) and keys_meanwhile == (None, None)
        and (st or {}).get("state") == "backoff" and j is not None and kpsa_name(keid3) in (cse_keys()[0] or []),
        "keys gone and not reinstallable: STATUS 'Cannot reinstall the keys ...; retrying', state backoff, no Ready "
        "without them; back once profile.json can be written",
        "\n".join(a.texts(start)) + f"\n{st}\n" + open(log_path).read()[mark:])

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

    # A restart alone (a power cut, the watchdog, a crash) is no operator's act: the agent starts
    # revoked again, and sends the MEF nothing, although the MEF would enrol the node by now.
    # state.json is the restarted agent's, and mscectl status says REVOKED (exit 8).
    mef.ctl("node", "activate", "node-1")
    mef_err = os.path.join(tmp, "mef.err")
    requests = lambda: len(re.findall(r" -> \d{3} \(", open(mef_err).read()))
    enrolments = lambda: mef.ctl("--json", "enrolments", "node-1").count('"keID"')
    before, enrolled = requests(), enrolments()
    a.stop()
    # msce-agent --once alike: exit 77 (as a refusal), nothing sent.
    once = run(AGENT, "--once", "-c", conf)
    tap(once.returncode == 77 and "revoked by MEF" in once.stderr and "not enrolling until an operator acts" in once.stderr
        and requests() == before and os.path.exists(os.path.join(state, "revoked")),
        "revoked, then msce-agent --once: exit 77, nothing sent to the MEF, the mark stays",
        f"{once.returncode}\n{once.stdout}{once.stderr}")
    a = Agent(tmp, conf, watchdog_usec=400000)
    j = a.wait_for(lambda m: m.startswith("STATUS=Revoked by MEF"), 30)
    st = state_json_until(run_dir, lambda st: st["pid"] == a.pid and st["state"] == "revoked", 10)
    status = run(MSCECTL, "--runtime-dir", run_dir, "status")
    a.drain(1.5)
    tap(j is not None and before > 0 and requests() == before and enrolments() == enrolled
        and not any(m.startswith("STATUS=Enrolling") or m == "READY=1" for m in a.texts())
        and a.proc.poll() is None and st and st["keID"] is None and "revoked by MEF" in (st["last_error"] or "")
        and status.returncode == 8 and "REVOKED" in status.stdout and cse_keys() == (None, None)
        and a.messages[j][1].endswith("waiting for an operator (SIGUSR1 or reload)"),
        "revoked, then restarted: starts revoked (state.json, STATUS=, mscectl status exit 8), no request "
        "reaches the MEF, no READY=1",
        "\n".join(a.texts()) + f"\n{st}\n{status.returncode} {status.stdout}{status.stderr}\n"
        f"MEF requests {before} -> {requests()}, enrolments {enrolled} -> {enrolments()}")

    # An operator acts: SIGUSR1 enrols (the node is allowed again at the MEF).
    start = len(a.messages)
    a.signal(signal.SIGUSR1)
    j = a.wait_for(lambda m: m.startswith("STATUS=Ready: KeID"), 30, start)
    k = a.wait_for(lambda m: m == "READY=1", 10, start)
    tap(j is not None and k is not None and cse_keys()[1] is not None and requests() > before
        and not os.path.exists(os.path.join(state, "revoked")),
        "after revocation and a restart, SIGUSR1 enrols again (READY=1, the mark gone)",
        "\n".join(a.texts(start)))

    # Revoked again: a reload (after fixing the configuration, say) enrols too.
    mef.ctl("node", "revoke", "node-1")
    mef.ctl("node", "activate", "node-1")
    start = len(a.messages)
    j = a.wait_for(lambda m: m.startswith("STATUS=Revoked by MEF"), 30, start)
    if j is not None:
        a.signal(signal.SIGHUP)
    k = a.wait_for(lambda m: m.startswith("STATUS=Ready: KeID"), 30, j) if j is not None else None
    tap(j is not None and a.messages[j][1].endswith("waiting for an operator (SIGUSR1 or reload)")
        and k is not None and cse_keys()[1] is not None and not os.path.exists(os.path.join(state, "revoked")),
        "revoked: STATUS names SIGUSR1 or reload; a reload (SIGHUP) enrols again, the mark gone",
        "\n".join(a.texts(start)))

    # Revoked once more, stopped: msce-agent --once --reenrol is an operator's act: it enrols, and
    # the daemon started after it restores that profile.
    mef.ctl("node", "revoke", "node-1")
    mef.ctl("node", "activate", "node-1")
    start = len(a.messages)
    j = a.wait_for(lambda m: m.startswith("STATUS=Revoked by MEF"), 30, start)
    a.stop()
    once = run(AGENT, "--once", "--reenrol", "-c", conf)
    a = Agent(tmp, conf, watchdog_usec=400000)
    k = a.wait_for(lambda m: m == "READY=1", 30)
    tap(j is not None and once.returncode == 0 and "enrolled with MEF" in once.stdout
        and not os.path.exists(os.path.join(state, "revoked")) and k is not None
        and not any(m.startswith("STATUS=Enrolling") for m in a.texts()),
        "revoked, stopped, msce-agent --once --reenrol: enrols, the mark gone; the daemon restores that profile",
        f"{once.returncode}\n{once.stdout}{once.stderr}\n" + "\n".join(a.texts()))

    # Revoked, stopped, and the mark names another MEF than the one configured now (the
    # configuration changed since; the old MEF's URI written into the mark here): that is an
    # operator's act too, that MEF did not revoke it for this one: the start enrols.
    mef.ctl("node", "revoke", "node-1")
    mef.ctl("node", "activate", "node-1")
    start = len(a.messages)
    j = a.wait_for(lambda m: m.startswith("STATUS=Revoked by MEF"), 30, start)
    a.stop()
    mark = os.path.join(state, "revoked")
    lines = open(mark).read().split("\n")
    other = lines[:2] + ["https://old-mef.example.net:8443/msce"] + lines[3:]
    with open(mark, "w") as f:
        f.write("\n".join(other))
    before = requests()
    a = Agent(tmp, conf, watchdog_usec=400000)
    k = a.wait_for(lambda m: m == "READY=1", 30)
    log = open(os.path.join(tmp, "agent.log")).read()
    tap(j is not None and k is not None and requests() > before and cse_keys()[1] is not None
        and not os.path.exists(mark) and lines[2] == mef_url
        and f"by MEF https://old-mef.example.net:8443/msce before this start" in log
        and f"MEF {mef_url} is configured now, not revoked there" in log,
        "revoked by a MEF other than the one configured now: the start enrols, the mark gone",
        f"mark {lines}\n" + "\n".join(a.texts()) + log[-2000:])

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


def reload_reprovision_scenario(tmp, mef, conf, state, run_dir):
    # SIGUSR1 during a reload's restore, the MEF down: the enrolment cancels the restore and fails
    # (backoff), and the reload is complete all the same, its configuration in force. The old agent
    # settled a reload only from its restore: mscectl reload timed out and no READY=1 followed
    # RELOADING=1. The sealed profile is a FIFO meanwhile (as in main_scenario): the restore's
    # unsealing process blocks opening it, under way until SIGUSR1 cancels it.
    mef.stop()
    sealed = os.path.join(state, "profile.sealed")
    a = Agent(tmp, conf)
    p = saved = None
    try:
        i = a.wait_for(lambda m: m == "READY=1", 30)
        saved = sealed_to_fifo(sealed)
        start = len(a.messages)
        p = subprocess.Popen([MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        st_r = state_json_until(run_dir, lambda st: st.get("reloads_begun") == 1 and st.get("state") == "restore")
        a.signal(signal.SIGUSR1)
        try:
            out, err = p.communicate(timeout=60)  # its own --timeout 30 ends it first
        except subprocess.TimeoutExpired:
            out, err = "", "mscectl reload still running after 60 s"
        st = state_json(run_dir)
        r = a.wait_for(lambda m: m == "RELOADING=1", 30, start)
        j = a.wait_for(lambda m: m == "READY=1", 30, r) if r is not None else None
        tap(i is not None and st_r is not None and st_r.get("state") == "restore" and p.returncode == 0 and
            "reloaded its configuration" in out and st is not None and
            st.get("reloads_begun") == 1 and st.get("reload_done") == 1 and st.get("reloads") == 1 and
            st.get("reload_error") is None and j is not None and a.proc.poll() is None,
            "SIGUSR1 during a reload's restore, the MEF down: the reload is complete (mscectl reload exit 0, "
            "reload_done 1, READY=1 after RELOADING=1)",
            "\n".join(a.texts(start)) + f"\nwhile restoring {st_r}\nafter {st}\nexit {p.returncode} {out} {err}")
    finally:
        if p and p.poll() is None:
            p.kill()
            p.wait()
        a.stop()
        if saved:
            sealed_back(sealed, saved)
        mef.start()


def user_change_scenario(tmp, mef, kpm):
    # [consumer] user changed from A to B and reloaded: B reads the keys, A no longer can (it is
    # the CSE no longer; the old agent installed them for B and left them with A too).
    state = os.path.join(tmp, "state-user")
    run_dir = os.path.join(tmp, "run-user")
    conf = os.path.join(tmp, "user.conf")
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    remove_keys()
    remove_keys(CSE2_USER)
    a = Agent(tmp, conf)
    i = a.wait_for(lambda m: m == "READY=1", 30)
    names_a, ltk_a = cse_keys() if i is not None else (None, None)
    tap(ltk_a is not None and cse_keys(CSE2_USER) == (None, None),
        "[consumer] user A: A reads msce:ltk, B has no keys", "\n".join(a.texts()))
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"], user=CSE2_USER)
    log_before = len(open(os.path.join(tmp, "agent.log")).read())
    p = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30")
    log = open(os.path.join(tmp, "agent.log")).read()[log_before:]
    names_b, ltk_b = cse_keys(CSE2_USER)
    tap(p.returncode == 0 and ltk_a is not None and ltk_b == ltk_a and names_b == names_a,
        "[consumer] user changed to B, reloaded: B reads the same msce:ltk and Kpsa",
        f"exit {p.returncode} {p.stdout} {p.stderr}\n{names_a} {names_b}\n{log}")
    tap(cse_keys() == (None, None) and
        f"[consumer] user changed from {CSE_USER} to {CSE2_USER}: the keys of {CSE_USER} are removed" in log,
        "[consumer] user changed to B, reloaded: A's keys are removed from its keyring, and the journal says so",
        f"A sees {cse_keys()}\n{log}")

    # Back to A and to a new state directory (no sealed profile there), the MEF down: the record of
    # B goes along to the new directory, so B's keys go (they stayed); and A has no keys, so no
    # profile is said to be in place while the enrolment backs off (B's KeID stayed in state.json).
    write_conf(conf, mef.port, os.path.join(tmp, "state-user-2"), run_dir, kpm_file=kpm["1"])
    mef.stop()
    try:
        log_before = len(open(os.path.join(tmp, "agent.log")).read())
        p = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30")
        st = state_json_until(run_dir, lambda st: st.get("state") == "backoff")
        log = open(os.path.join(tmp, "agent.log")).read()[log_before:]
        tap(p.returncode == 0 and cse_keys(CSE2_USER) == (None, None) and
            f"[consumer] user changed from {CSE2_USER} to {CSE_USER}: the keys of {CSE2_USER} are removed" in log,
            "[consumer] user back to A with a new state directory, reloaded: B's keys are removed",
            f"exit {p.returncode} {p.stdout} {p.stderr}\nB sees {cse_keys(CSE2_USER)}\n{log}")
        tap(st is not None and st.get("state") == "backoff" and st.get("keID") is None and cse_keys() == (None, None),
            "... its enrolment failing: no KeID said to be in place, A has no keys", f"{st}\n{log}")
    finally:
        a.stop()
        mef.start()
        remove_keys()
        remove_keys(CSE2_USER)


def user_restart_scenario(tmp, mef, kpm):
    # [consumer] user changed from A to B with the agent stopped, then started (a restart, not a
    # reload): B reads the keys, A no longer can. The record in the state directory names A; the
    # old agent had nothing that named the previous user and left the keys with A too. Then a
    # record that is not a uid (a warning; the start goes on and replaces it), and one that names
    # a user without keys, as after a reboot (the keyring is kernel memory): nothing said.
    state = os.path.join(tmp, "state-user-restart")
    run_dir = os.path.join(tmp, "run-user-restart")
    conf = os.path.join(tmp, "user-restart.conf")
    record = os.path.join(state, "keyring.owner")
    log_path = os.path.join(tmp, "agent.log")
    uid_a, uid_b = (run("id", "-u", u).stdout.strip() for u in (CSE_USER, CSE2_USER))

    def start():
        before = len(open(log_path).read())
        agent = Agent(tmp, conf)
        i = agent.wait_for(lambda m: m == "READY=1", 30)
        agent.stop()
        return i is not None, open(log_path).read()[before:]

    def read_record():
        return open(record).read() if os.path.exists(record) else None

    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    remove_keys()
    remove_keys(CSE2_USER)
    ready, log = start()
    names_a, ltk_a = cse_keys()
    tap(ready and ltk_a is not None and cse_keys(CSE2_USER) == (None, None) and read_record() == f"{uid_a}\n",
        "[consumer] user A, started: A reads msce:ltk, B has no keys, the record names A",
        f"record {read_record()!r}\n{log}")

    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"], user=CSE2_USER)
    ready, log = start()
    names_b, ltk_b = cse_keys(CSE2_USER)
    tap(ready and ltk_a is not None and ltk_b == ltk_a and names_b == names_a,
        "[consumer] user changed to B while stopped, started: B reads the same msce:ltk and Kpsa",
        f"{names_a} {names_b}\n{log}")
    tap(cse_keys() == (None, None) and read_record() == f"{uid_b}\n" and
        f"[consumer] user changed from {CSE_USER} to {CSE2_USER}: the keys of {CSE_USER} are removed" in log,
        "[consumer] user changed to B while stopped, started: A's keys are removed, the journal says so, "
        "the record names B", f"A sees {cse_keys()}, record {read_record()!r}\n{log}")

    with open(record, "w") as f:
        f.write("garbage\n")
    ready, log = start()
    tap(ready and cse_keys(CSE2_USER)[1] == ltk_a and read_record() == f"{uid_b}\n" and
        f"[consumer] user {CSE2_USER}: {record}: not a uid, taken as absent" in log,
        "a record that is not a uid: a warning, the start goes on, the record is replaced",
        f"record {read_record()!r}\n{log}")

    with open(record, "w") as f:
        f.write(f"{uid_a}\n")
    ready, log = start()
    tap(ready and cse_keys() == (None, None) and cse_keys(CSE2_USER)[1] == ltk_a and
        read_record() == f"{uid_b}\n" and "[consumer] user" not in log,
        "a record naming a user without keys (after a reboot): nothing removed, nothing said, the record names B",
        f"record {read_record()!r}\n{log}")

    # --once with the user changed back to A: it says what it did to B's keys, though it is
    # quiet but for its result otherwise; and, the mark of an interrupted enrolment there, that
    # the KeID it restores (without the network) may be retired
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    with open(os.path.join(state, "enrolling"), "w") as f:
        f.write("1\n")
    p = run(AGENT, "--once", "-c", conf)
    tap(p.returncode == 0 and cse_keys(CSE2_USER) == (None, None) and cse_keys()[1] == ltk_a and
        read_record() == f"{uid_a}\n" and
        f"msce-agent: [consumer] user changed from {CSE2_USER} to {CSE_USER}: the keys of {CSE2_USER} are removed" in p.stderr,
        "--once with the user changed back to A: B's keys are removed, its stderr says so, the record names A",
        f"exit {p.returncode}, record {read_record()!r}\n{p.stdout}{p.stderr}")
    tap(p.returncode == 0 and "restored (KeID" in p.stdout and
        re.search(r"^msce-agent: an enrolment was interrupted \(.*/enrolling\): the MEF may have retired KeID \S+$",
                  p.stderr, re.M),
        "--once restoring with an enrolment's mark there: restored, and its stderr says the KeID may be retired",
        f"exit {p.returncode}\n{p.stdout}{p.stderr}")
    remove_keys()
    remove_keys(CSE2_USER)


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
    # The line is requested again in the background (1 s, doubling) for as long as the agent
    # runs: those retries fail alike and say nothing more.
    warned = re.findall(r"Cannot drive the LEDs \(\[leds\] status = gpiochip99:17\)[^\n]*", log)
    tap(len(warned) == 1 and warned[0].endswith("; trying again"),
        "a LED that cannot be driven: one warning, retried without another, the agent carries on", "\n".join(warned))


def persistent_linked(uid):
    """The serial of uid's persistent keyring when linked in our session keyring (which the
    agents share: it links it there whenever it looks the keys up), else None."""
    out = run("keyctl", "show", "@s").stdout
    m = re.search(rf"^\s*(\d+) .*keyring: _persistent\.{uid}$", out, re.M)
    return m.group(1) if m else None


def unlink_key(uid, name):
    """Unlink the key name ("msce:kpsa:...") from uid's msce keyring, as root in a session of its
    own (which possesses the keyring once it has linked the persistent keyring); True when done."""
    return subprocess.run(["keyctl", "session", "-", "sh", "-c",
                           f"keyctl get_persistent @s {uid} > /dev/null && r=$(keyctl search @s keyring msce) && "
                           f"k=$(keyctl search $r user {name}) && keyctl unlink $k $r"],
                          capture_output=True, timeout=30).returncode == 0


def proc_state(pid):
    """The state letter of /proc/PID/stat ("S", "T", ...), None when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def keys_in_place_scenario(tmp, mef, kpm):
    # The persistent keyring expires unused (3 days), the poll may be far longer: the agent
    # refreshes it on a timer of its own, at a third of persistent_keyring_expiry, whatever the
    # state. That sysctl is global: the agent reads 3 s from a file bound over it in a mount
    # namespace of its own (the kernel's expiry stays), so its timer fires every second. Seen as
    # the persistent keyring's link in the agent's session keyring coming back: several times
    # within a few status polls (10 s apart), and while a renewal is retried in backoff. That
    # timer puts keys that went back from the sealed profile in every state: a Kpsa alone while
    # ready, all of them during a status check the MEF does not answer (at once, the check made
    # again) and while a renewal is retried in backoff, and when SIGUSR1 finds them gone with the
    # sealed profile still there (a renewal, not the fresh start of a factory reset). The old agent
    # looked at msce:ltk only, put keys back while ready with nothing under way only (after that
    # status check, a refresh later: a day by default), and dropped the profile on SIGUSR1. Then
    # reloads: a sealed profile that does not open leaves the profile in place (its keys, its
    # expiry); one for another MEF has its keys removed at once. The old agent refreshed only at
    # each poll and retry, and any such restore dropped the profile's expiry with its keys.
    state, run_dir, conf = (os.path.join(tmp, n) for n in ("state-inplace", "run-inplace", "inplace.conf"))
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    remove_keys()
    expiry = os.path.join(tmp, "inplace-expiry")
    with open(expiry, "w") as f:
        f.write("3\n")
    wrap = ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'mount --bind "$0" /proc/sys/kernel/keys/persistent_keyring_expiry && exec "$@"', expiry]
    a = Agent(tmp, conf, wrap=wrap)
    uid = int(run("id", "-u", CSE_USER).stdout)

    def refreshed():
        # the unlink's own success says the link was gone (looking again could already find the
        # agent's next refresh, which comes every second); then the agent links it back
        serial = persistent_linked(uid)
        return bool(serial) and run("keyctl", "unlink", serial, "@s").returncode == 0 and \
            bool(eventually(lambda: persistent_linked(uid), 15, a.pump))

    try:
        i = a.wait_for(lambda m: m == "READY=1", 30)
        seen = 0
        while i is not None and seen < 6 and refreshed():
            seen += 1
        polls = sum(m.startswith("STATUS=Ready") for m in a.texts(i or 0))
        tap(seen == 6 and polls <= 3, "while ready, the persistent keyring is refreshed between status polls "
            "(a third of persistent_keyring_expiry)", f"ready {i}, {seen} refreshes, {polls} status polls\n" +
            "\n".join(a.texts()))

        keid = (state_json(run_dir) or {}).get("keID")
        names, ltk = cse_keys()
        kpsa = kpsa_name(keid)
        gone = kpsa in (names or []) and unlink_key(uid, kpsa)
        back = eventually(lambda: kpsa in (cse_keys()[0] or []), 15, a.pump) if gone else None
        tap(gone and back and cse_keys() == (names, ltk), "while ready, a Kpsa gone alone from the keyring is put back",
            f"KeID {keid}, {kpsa} unlinked: {gone}, keys now {cse_keys()[0]}\n" + "\n".join(a.texts()))

        # the MEF silent: a status check hangs until exchange_timeout (30 s)
        mef.stop()
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", mef.port))
        srv.listen(8)
        conns = []
        silent_accept(srv, conns)
        try:
            hung = eventually(lambda: conns, 30, a.pump)  # the next poll's
            start = len(a.messages)
            remove_keys()
            back = eventually(lambda: cse_keys()[1], 20, a.pump)
            again = eventually(lambda: len(conns) > 1, 20, a.pump) if back else None
            failed = [m for m in a.texts(start) if "status check failed" in m]
            tap(hung and back == ltk and again and not failed,
                "keys gone during a status check the MEF does not answer: put back at once, the check made again",
                f"connections {len(conns)}, keys back {back is not None}, failed checks {failed}\n" +
                "\n".join(a.texts(start)))
        finally:
            srv.shutdown(socket.SHUT_RDWR)  # not listening any more, its accept() woken (close() alone does neither)
            srv.close()
            for c in conns:
                c.close()

        a.signal(signal.SIGUSR1)
        j = a.wait_for(lambda m: m.startswith("STATUS=MEF unreachable") and "stays in place" in m, 30, i or 0)
        tap(j is not None and refreshed(), "a renewal retried in backoff: the persistent keyring is still refreshed",
            f"ready {i}, backoff {j}\n" + "\n".join(a.texts()))

        start = len(a.messages)
        remove_keys()
        back = eventually(lambda: cse_keys()[1], 15, a.pump)
        st = state_json(run_dir) or {}
        tap(back == ltk and st.get("keID") == keid and st.get("state") in ("backoff", "enrol") and
            not any(m == "READY=1" or m.startswith("STATUS=Ready") for m in a.texts(start)),
            "keys gone while a renewal is retried in backoff: put back from the sealed profile, still in backoff",
            f"keys back {back is not None}, state.json {st}\n" + "\n".join(a.texts(start)))

        # the sealed profile a FIFO meanwhile: no put-back can end before the signal
        log_path = os.path.join(tmp, "agent.log")
        log_start = len(open(log_path).read())
        sealed = os.path.join(state, "profile.sealed")
        saved = sealed_to_fifo(sealed)
        try:
            remove_keys()
            start = len(a.messages)
            a.signal(signal.SIGUSR1)
            k = a.wait_for(lambda m: m.startswith(("STATUS=Renewing KeID", "STATUS=Enrolling with")), 30, start)
        finally:
            sealed_back(sealed, saved)
        back = eventually(lambda: cse_keys()[1], 15, a.pump)
        log = open(log_path).read()[log_start:]
        tap(k is not None and a.messages[k][1].startswith(f"STATUS=Renewing KeID {keid}") and back == ltk and
            "factory reset?" not in log and (state_json(run_dir) or {}).get("keID") == keid,
            "SIGUSR1 with the keys gone, the sealed profile there: a renewal of the profile in place, its keys put back",
            f"keys back {back is not None}\n" + "\n".join(a.texts(start)) + "\n" + log[-2000:])

        good = open(sealed, "rb").read()
        with open(sealed, "r+b") as f:
            f.write(b"XXXX")
        start = len(a.messages)
        p = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30")
        r = a.wait_for(lambda m: m == "RELOADING=1", 30, start)  # the retries before it say nothing here
        k = a.wait_for(lambda m: m.startswith("STATUS=MEF unreachable"), 30, r) if r is not None else None
        tap(p.returncode == 0 and k is not None and "stays in place until" in a.messages[k][1] and
            cse_keys()[1] is not None and os.path.exists(os.path.join(run_dir, "profile.json")),
            "reload, the sealed profile corrupted: the profile in place stays (keys, profile.json, its expiry)",
            f"exit {p.returncode} {p.stdout} {p.stderr}\n" + "\n".join(a.texts(start)))

        with open(sealed, "wb") as f:
            f.write(good)
        with open(conf) as f:
            text = f.read().replace(f"127.0.0.1:{mef.port}/", "127.0.0.2:9/")
        with open(conf, "w") as f:
            f.write(text)
        start = len(a.messages)
        p = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30")
        r = a.wait_for(lambda m: m == "RELOADING=1", 30, start)  # the retries before it say nothing here
        k = a.wait_for(lambda m: m.startswith("STATUS=MEF unreachable"), 30, r) if r is not None else None
        tap(p.returncode == 0 and k is not None and "stays in place" not in a.messages[k][1] and
            cse_keys() == (None, None) and not os.path.exists(os.path.join(run_dir, "profile.json")) and
            os.path.exists(sealed),
            "reload to another MEF: the previous profile's keys and profile.json removed at once, enrolling",
            f"exit {p.returncode} {p.stdout} {p.stderr} keys {cse_keys()}\n" + "\n".join(a.texts(start)))
    finally:
        a.stop()
        mef.start()


def factory_reset_scenario(tmp, mef, kpm):
    # mscectl factory-reset while the agent runs removes the keys, the sealed profile and
    # profile.json, then sends SIGUSR1; the MEF down, that enrolment fails. The KeID removed is in
    # place no longer: a fresh enrolment (Enrolling, not Renewing), no "stays in place", no keID,
    # expiry or backend in state.json, none in mscectl status. The old agent renewed it and kept
    # it as in place, its keys gone. The MEF back: enrolled anew.
    state, run_dir, conf = (os.path.join(tmp, n) for n in ("state-reset", "run-reset", "reset.conf"))
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    remove_keys()
    a = Agent(tmp, conf)
    stopped = False
    try:
        i = a.wait_for(lambda m: m == "READY=1", 30)
        old = (state_json(run_dir) or {}).get("keID")
        mef.stop()
        stopped = True
        start = len(a.messages)
        p = run(MSCECTL, "--config", conf, "factory-reset", "--yes")
        j = a.wait_for(lambda m: m.startswith("STATUS=MEF unreachable"), 30, start)
        st = state_json_until(run_dir, lambda s: s["state"] == "backoff", 30, a.pump)
        status = run(MSCECTL, "--runtime-dir", run_dir, "status")
        log = open(os.path.join(tmp, "agent.log")).read()
        texts = a.texts(start)
        tap(i is not None and old and p.returncode == 0 and j is not None and
            "stays in place" not in a.messages[j][1] and
            any(m.startswith("STATUS=Enrolling with ") for m in texts) and
            not any(m.startswith("STATUS=Renewing") for m in texts) and
            st is not None and st["state"] == "backoff" and
            all(st.get(k) is None for k in ("keID", "exp", "backend")) and
            not re.search(r"^ *(KeID|Expires|Sealing):", status.stdout, re.M) and
            f"The keys of KeID {old} are gone from the keyring, and its sealed profile (factory reset?): "
            "enrolling anew" in log,
            "factory-reset while running, the MEF down: the KeID removed is not kept in place, enrolling anew",
            f"ready {i}, KeID {old}, exit {p.returncode} {p.stdout} {p.stderr}\nstate.json {st}\n"
            f"{status.stdout}\n" + "\n".join(texts))
        mef.start()
        stopped = False
        k = a.wait_for(lambda m: m.startswith("STATUS=Ready"), 30, start)  # READY=1 was said before
        new = (state_json(run_dir) or {}).get("keID")
        tap(k is not None and new and new != old and cse_keys()[1] is not None,
            "factory-reset while running: the MEF back, enrolled as a new KeID",
            f"KeID {old} -> {new}\n" + "\n".join(a.texts(start)))
    finally:
        a.stop()
        if stopped:
            mef.start()


def restart_unsealed_scenario(tmp, mef, kpm):
    # A restart (not a reboot: the keyring outlives the agent) that finds the sealed profile
    # corrupted, the MEF down: the keys still in the keyring, which no profile in place vouches
    # for (nothing would remove them at their expiry), are removed with profile.json, and the
    # agent enrols. The old agent left them readable, their expiry watched by nothing.
    state, run_dir, conf = (os.path.join(tmp, n) for n in ("state-unsealed", "run-unsealed", "unsealed.conf"))
    write_conf(conf, mef.port, state, run_dir, kpm_file=kpm["1"])
    remove_keys()
    log_path = os.path.join(tmp, "agent.log")
    a = Agent(tmp, conf)
    i = a.wait_for(lambda m: m == "READY=1", 30)
    ltk = cse_keys()[1]
    rc = a.stop()
    kept = cse_keys()[1]
    with open(os.path.join(state, "profile.sealed"), "r+b") as f:
        f.write(b"XXXX")
    mef.stop()
    log_start = len(open(log_path).read())
    b = Agent(tmp, conf)
    try:
        j = b.wait_for(lambda m: m.startswith("STATUS=MEF unreachable"), 30)
        log = open(log_path).read()[log_start:]
        tap(i is not None and ltk and rc == 0 and kept == ltk and j is not None and
            "stays in place" not in b.messages[j][1] and cse_keys() == (None, None) and
            not os.path.exists(os.path.join(run_dir, "profile.json")) and "keys removed, enrolling" in log,
            "restarted, the sealed profile corrupted, the MEF down: the keys left in the keyring are removed",
            f"ready {i}, stop {rc}, keys kept over the stop {kept == ltk}, now {cse_keys()}\n" +
            "\n".join(b.texts()) + "\n" + log[-2000:])
    finally:
        b.stop()
        mef.start()


def usr1_while_sealing_scenario(tmp, mef, kpm):
    # SIGUSR1 while the agent seals an enrolment the MEF has committed (host.key a FIFO: the
    # sealing process blocks opening it, after the commit): the enrolment under way is the one
    # asked for, and its seal goes on (host.key put back and the process stopped and continued,
    # which makes it open the file again): READY with the KeID the MEF committed, its only active
    # one. The old agent killed that seal and enrolled again, the committed KeID lost.
    kpm_s = os.path.join(tmp, "kpm-s.hex")
    mef.ctl("node", "add", "node-s", "--cse-id", "/mn-cse-s", "--cse-base", "https://in.example.net/~/in-cse",
            "--psk-id", "kpm-s", "--generate-psk", kpm_s, "--target", "/in-cse", "--poll", "3600")
    state, run_dir, conf = (os.path.join(tmp, n) for n in ("state-usr1seal", "run-usr1seal", "usr1seal.conf"))
    write_conf(conf, mef.port, state, run_dir, node="node-s", kpm_file=kpm_s)
    remove_keys()
    log_path = os.path.join(tmp, "agent.log")
    ready = lambda st: st.get("state") == "ready" and st.get("keID")
    host_key = os.path.join(state, "host.key")
    a = Agent(tmp, conf)
    saved = None
    try:
        i = a.wait_for(lambda m: m == "READY=1", 30)
        keid1 = (state_json_until(run_dir, ready, wait=a.pump) or {}).get("keID") if i is not None else None
        saved = sealed_to_fifo(host_key)
        log_start = len(open(log_path).read())
        a.signal(signal.SIGUSR1)
        committed = eventually(lambda: [k for k in active_keids(mef, "node-s") if k != keid1], 30, a.pump)

        def sealing():  # the child blocked opening host.key
            for kid in children_of(a.pid):
                try:
                    if open(f"/proc/{kid}/wchan").read() == "wait_for_partner":
                        return kid
                except OSError:
                    pass
            return None

        kid = eventually(sealing, 30, a.pump)
        a.signal(signal.SIGUSR1)
        seen = eventually(lambda: open(log_path).read()[log_start:].count("Re-enrolment requested (SIGUSR1)") == 2,
                          30, a.pump)
        sealed_back(host_key, saved)
        saved = None
        if kid:
            try:
                os.kill(kid, signal.SIGSTOP)
                eventually(lambda: proc_state(kid) in ("T", None), 30, a.pump)
                os.kill(kid, signal.SIGCONT)
            except ProcessLookupError:  # killed (the old agent)
                pass
        keid2 = committed[0] if committed else None
        st = state_json_until(run_dir, lambda st: ready(st) and st["keID"] != keid1, wait=a.pump)
        log = open(log_path).read()[log_start:]
        tap(keid1 and keid2 and kid and seen and st and st.get("keID") == keid2 and
            active_keids(mef, "node-s") == [keid2] and "An enrolment is under way" in log,
            "SIGUSR1 while sealing an enrolment the MEF committed: that seal goes on, READY with the committed KeID",
            f"KeIDs {keid1} {keid2}, sealing process {kid}, state.json {st}, active {active_keids(mef, 'node-s')}\n"
            + "\n".join(a.texts()) + "\n" + log[-3000:])
    finally:
        if saved:
            sealed_back(host_key, saved)
        a.stop()


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

    # A second msce-agent on the same directories whose configuration the preflight refuses (as
    # root by hand, the Kpm only in the credential store, alike): it exits 78 and leaves the
    # running agent's state.json alone. The old one wrote its own there (configuration-error,
    # its pid) for mscectl and monitoring to read while the first ran on.
    second = os.path.join(tmp, "rejected-second.conf")
    with open(conf) as f:
        text = f.read().replace(f"user = {CSE_USER}", "user = msce-test-nosuchuser")
    with open(second, "w") as f:
        f.write(text)
    p = run(AGENT, "-c", second)
    st2 = state_json(run_dir)
    tap(p.returncode == 78 and "no such user 'msce-test-nosuchuser'" in p.stderr and st2 is not None
        and st2["pid"] == a.pid and st2["state"] == "rejected" and a.proc.poll() is None,
        "a second agent refused by the preflight, the state directory held: exit 78, the running agent's "
        "state.json untouched", f"exit {p.returncode}\n{p.stderr}\n{st2}")
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


def kpm_missing_scenario(tmp, mef):
    # The Kpm file gone while READY (moved away by hand, a deployment that replaces it): the next
    # status check cannot set up its TLS, a configuration error: the agent stops with 78 and says
    # why, its KeID still active at the MEF, its keys in place. The old agent took that file's
    # ENOENT for the MEF's 404 ("no longer knows KeID ...: re-enrolling") and started a renewal,
    # which retires a good KeID whenever the file is back before the enrolment reads it.
    kpm_k = os.path.join(tmp, "kpm-k.hex")
    mef.ctl("node", "add", "node-k", "--cse-id", "/mn-cse-k", "--cse-base", "https://in.example.net/~/in-cse",
            "--psk-id", "kpm-k", "--generate-psk", kpm_k, "--target", "/in-cse", "--poll", "10")
    run_dir = os.path.join(tmp, "run-kpm-missing")
    conf = os.path.join(tmp, "kpm-missing.conf")
    write_conf(conf, mef.port, os.path.join(tmp, "state-kpm-missing"), run_dir, node="node-k", kpm_file=kpm_k)
    remove_keys()
    log_path = os.path.join(tmp, "agent.log")
    mark = len(open(log_path).read()) if os.path.exists(log_path) else 0
    a = Agent(tmp, conf)
    i = a.wait_for(lambda m: m == "READY=1", 30)
    st = state_json_until(run_dir, lambda st: st["state"] == "ready" and st["keID"], wait=a.pump) if i is not None else None
    keid = (st or {}).get("keID")
    start = len(a.messages)
    os.rename(kpm_k, kpm_k + ".away")
    # the status check 10 s later; 60 s: a deadline for a hang
    ended = eventually(lambda: a.proc.poll() is not None, 60, a.pump)
    a.drain(0.2)
    log = open(log_path).read()[mark:]
    st = state_json(run_dir) or {}
    why = f"{conf}: [mef] psk_file: cannot read {kpm_k}: No such file or directory"
    tap(keid and ended and a.proc.returncode == 78 and f"STATUS=Configuration error: {why}" in a.texts(start)
        and st.get("state") == "configuration-error" and (st.get("last_error") or "").endswith(why)
        and "no longer knows" not in log and "Renewing KeID" not in log and active_keids(mef, "node-k") == [keid]
        and kpsa_name(keid) in (cse_keys()[0] or []),
        "the Kpm file gone while ready: the status check ends in a configuration error (exit 78, STATUS, "
        "state.json), no re-enrolment, the KeID still active at the MEF and its keys in the keyring",
        f"exit {a.proc.returncode}, KeID {keid}, active {active_keids(mef, 'node-k')}, state.json {st}\n"
        + "\n".join(a.texts(start)) + "\n" + log[-3000:])
    a.stop()


def preload_env(var, name, env):
    """env and LD_PRELOAD of the test library that the variable var names (else the build's
    name); None when it is not built."""
    lib = os.environ.get(var) or os.path.join(build, "tests/integration", name)
    return os.path.exists(lib) and dict(env, LD_PRELOAD=lib,
                                        ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0")


def own_node(tmp, mef, n, *node_args):
    """node-N added at mef (its Kpm generated), an agent configuration for it (CSE_USER, whose
    keys are removed): (conf, state_dir, runtime_dir)."""
    kpm = os.path.join(tmp, f"kpm-{n}.hex")
    mef.ctl("node", "add", f"node-{n}", "--cse-id", f"/mn-cse-{n}", "--cse-base", "https://in.example.net/~/in-cse",
            "--psk-id", f"kpm-{n}", "--generate-psk", kpm, "--target", "/in-cse", *node_args)
    conf, state, run_dir = (os.path.join(tmp, f"{x}-{n}") for x in ("agent.conf", "state", "run"))
    write_conf(conf, mef.port, state, run_dir, node=f"node-{n}", kpm_file=kpm)
    remove_keys()
    return conf, state, run_dir


def removal_retry_scenario(tmp, mef):
    # The MEF revokes while the user database does not answer (daemon-fake-nss.c: the [consumer]
    # user's lookup fails with EIO while a file is there): the keys cannot be removed yet. STATUS
    # says so and the removal is tried again with backoff; the sealed profile and profile.json,
    # which name the keys, stay until they are gone. Once the database answers: all removed. The
    # old agent said "keys removed", deleted the sealed profile and profile.json, left the keys
    # with the CSE and never tried again.
    down = os.path.join(tmp, "nss-down")
    env = preload_env("MSCE_FAKE_NSS_LIB", "libdaemon-fake-nss.so",
                      {"MSCE_FAKE_NSS_FAIL": CSE_USER, "MSCE_FAKE_NSS_WHILE": down})
    if not env:
        return tap_skip("a removal that fails is retried: daemon-fake-nss not built")
    conf, state, run_dir = own_node(tmp, mef, "n", "--poll", "10")
    sealed, pj = os.path.join(state, "profile.sealed"), os.path.join(run_dir, "profile.json")
    a = Agent(tmp, conf, env=env)
    try:
        i = a.wait_for(lambda m: m == "READY=1", 30)
        open(down, "w").close()
        mef.ctl("node", "revoke", "node-n")
        failing = lambda m: m.startswith("STATUS=Revoked by MEF") and "the keys cannot be removed yet" in m and \
            f"cannot resolve '{CSE_USER}': Input/output error" in m and ", retrying in " in m
        j = a.wait_for(failing, 30, i or 0)  # the next status check (poll 10 s)
        k = a.wait_for(failing, 30, j + 1) if j is not None else None  # and tried again
        keys = cse_keys()[1] is not None
        kept = os.path.exists(sealed) and os.path.exists(pj)
        st = state_json(run_dir)
        tap(i is not None and k is not None and keys and kept and (st or {}).get("state") == "revoked" and
            os.path.exists(os.path.join(state, "revoked")),
            "revoked while the user database does not answer: STATUS says the keys cannot be removed yet and "
            "the removal is retried; the sealed profile and profile.json stay while the keys do",
            f"ready {i}, failing {j} {k}, keys readable {keys}, files kept {kept}, state.json {st}\n" +
            "\n".join(a.texts()))
        os.unlink(down)
        n = a.wait_for(lambda m: m.startswith("STATUS=Revoked by MEF") and m.endswith(
            ": keys removed; waiting for an operator (SIGUSR1 or reload)"), 60, k or 0) if k is not None else None
        gone = eventually(lambda: cse_keys() == (None, None) and not os.path.exists(sealed) and
                          not os.path.exists(pj), 30, a.pump)
        tap(n is not None and gone,
            "the user database answers again: the retry removes keys, sealed profile and profile.json; STATUS says "
            "keys removed", f"removed {n}, all gone {gone}\n" + "\n".join(a.texts(k or 0)))
        a.stop()

        # Again, its retry an hour away, and an operator reloads once the database answers (the
        # node allowed again): the revoked profile's keys and sealed profile go first, the reload
        # enrols anew. Restored, the revoked KeID would be READY again until the next status check.
        conf, state, run_dir = own_node(tmp, mef, "m", "--poll", "10")
        with open(conf) as f:
            text = f.read().replace("backoff_min = 200ms", "backoff_min = 1h").replace("backoff_max = 2s",
                                                                                       "backoff_max = 1h")
        with open(conf, "w") as f:
            f.write(text)
        sealed, pj = os.path.join(state, "profile.sealed"), os.path.join(run_dir, "profile.json")
        a = Agent(tmp, conf, env=env)
        i = a.wait_for(lambda m: m == "READY=1", 30)
        old = (state_json_until(run_dir, lambda st: st["state"] == "ready" and st["keID"], wait=a.pump) or {}).get(
            "keID") if i is not None else None
        open(down, "w").close()
        mef.ctl("node", "revoke", "node-m")
        j = a.wait_for(lambda m: failing(m) and m.endswith("retrying in 1 h; waiting for an operator (SIGUSR1 or reload)"),
                       30, i or 0)
        mef.ctl("node", "activate", "node-m")
        os.unlink(down)
        p = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30") if j is not None else None
        st = state_json_until(run_dir, lambda st: st["state"] == "ready" and st["keID"] not in (None, old), 30,
                              a.pump) if j is not None else None
        log = open(os.path.join(tmp, "agent.log")).read()
        tap(old and j is not None and p.returncode == 0 and st and st["state"] == "ready" and
            st["keID"] not in (None, old) and f"Restored KeID {old}" not in log and
            "Removed the keys of user" in log.split("Reloading the configuration (SIGHUP)")[-1],
            "keys not removable yet, the retry an hour away: a reload once the database answers removes them and "
            "the revoked sealed profile first, then enrols anew (never restores the revoked KeID)",
            f"revoked KeID {old}, failing {j}, reload {p and p.returncode}, state.json {st}\n" +
            "\n".join(a.texts()) + "\n" + log[-3000:])
    finally:
        a.stop()
        if os.path.exists(down):
            os.unlink(down)
        remove_keys()


def clock_ahead_restore_scenario(tmp, mef):
    # A clock ahead at start (daemon-fake-time.c: two days on) finds a valid sealed profile
    # expired: its keys go, the sealed profile and host.key stay (the next store replaces them);
    # with the right clock again, the MEF still down, it restores. The old agent deleted both, and
    # the next start had nothing to restore. msce-agent --once, which restores as the daemon does.
    env = preload_env("MSCE_FAKE_TIME_LIB", "libdaemon-fake-time.so",
                      dict(os.environ, MSCE_FAKE_TIME=str(int(time.time()) + 2 * 86400)))
    if not env:
        return tap_skip("clock ahead at a restore: daemon-fake-time not built")
    conf, state, run_dir = own_node(tmp, mef, "t", "--lifetime", "3600")
    files = [os.path.join(state, f) for f in ("profile.sealed", "host.key")]
    enrolled = run(AGENT, "--once", "-c", conf)
    m_k = re.search(r"^  KeID: +(\S+)$", enrolled.stdout, re.M)
    keid = m_k.group(1) if m_k else None
    before = [open(f, "rb").read() if os.path.exists(f) else None for f in files]
    mef.stop()
    try:
        ahead = run(AGENT, "--once", "-c", conf, env=env)
        after = [open(f, "rb").read() if os.path.exists(f) else None for f in files]
        keys = cse_keys()
        tap(enrolled.returncode == 0 and keid and ahead.returncode == 75 and
            f"cannot restore (expired): the sealed profile (KeID {keid}) expired at" in ahead.stderr and
            keys == (None, None) and None not in before and after == before,
            "--once with the clock two days ahead, the MEF down: the profile taken for expired, its keys removed, "
            "profile.sealed and host.key kept unchanged; exit 75",
            f"enrolled: exit {enrolled.returncode} {enrolled.stdout}{enrolled.stderr}\n"
            f"ahead: exit {ahead.returncode} {ahead.stderr}\nkeys {keys}, files kept {after == before}")
        back = run(AGENT, "--once", "-c", conf)
        tap(back.returncode == 0 and f"restored (KeID {keid}, no network needed)" in back.stdout and
            cse_keys()[1] is not None,
            "then the right clock, the MEF still down: --once restores the same KeID (keys back)",
            f"exit {back.returncode}\n{back.stdout}{back.stderr}")
    finally:
        mef.start()
        remove_keys()


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


def short_profile_tmp(tmp, user):
    os.makedirs(tmp)
    remove_keys(user)
    return tmp


def short_profile_setup(tmp, mef, n, user, extra):
    """A MEF (started) with node-N, a lifetime of 60 s, and an agent configuration for it;
    (conf, state_dir, runtime_dir)."""
    mef.ctl("init")
    kpm = os.path.join(tmp, f"kpm-{n}.hex")
    mef.ctl("node", "add", f"node-{n}", "--cse-id", f"/mn-cse-{n}", "--cse-base", "https://in.example.net/~/in-cse",
            "--psk-id", f"kpm-{n}", "--generate-psk", kpm, "--target", "/in-cse", "--poll", "3600",
            "--lifetime", "60")
    mef.start()
    conf = os.path.join(tmp, "expiry.conf")
    run_dir = os.path.join(tmp, "run")
    state = os.path.join(tmp, "state")
    write_conf(conf, mef.port, state, run_dir, node=f"node-{n}", kpm_file=kpm, user=user, extra=extra)
    return conf, state, run_dir


def expiry_scenario(tmp):
    """Renewal at 80% of a 60 s lifetime with the MEF gone, then the expiry: keys removed and
    enrolling. Runs in a thread beside the others, with its own MEF and CSE user; returns the
    results to report."""
    results = []
    user = EXPIRY_USER
    mef = Mef(short_profile_tmp(tmp, user))
    a = None
    try:
        conf, state, run_dir = short_profile_setup(tmp, mef, "e", user, "backoff_min = 1s\nbackoff_max = 4s\n")
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
        # the sealed profile stays for the next store to replace (a clock ahead takes a valid one
        # for expired: agent/states.c restore_done())
        gone = eventually(lambda: cse_keys(user) == (None, None) and
                          not os.path.exists(os.path.join(run_dir, "profile.json")) and
                          re.search(r"KeID \S+ expired at .* without renewal: removing its keys(.|\n)*"
                                    r"the sealed profile \(KeID \S+\) expired at .*: keys removed, enrolling",
                                    open(os.path.join(tmp, "agent.log")).read()), 30)
        log = open(os.path.join(tmp, "agent.log")).read()
        results.append((e is not None and late >= 0 and gone and os.path.exists(os.path.join(state, "profile.sealed")),
                        f"expiry passed without renewal (STATUS {late:.1f} s after exp, never before): keys and "
                        "profile.json removed, the sealed profile kept for the next store, enrolling",
                        "\n".join(a.texts()) + "\n" + log[-2000:]))
    except Exception as ex:  # reported, not raised: this runs in a thread
        results.append((False, "expiry scenario", repr(ex)))
    finally:
        if a:
            a.stop()
        mef.stop()
        remove_keys(user)
    return results


def expiry_in_enrolment_scenario(tmp):
    """The expiry while the renewal's exchange is under way (a relay that stops passing bytes):
    the keys go, the sealed profile stays for that enrolment to replace (manager_on_expiry()).
    Its own MEF, CSE user and relay, in a thread beside the others; returns the results."""
    results = []
    user = EXPIRY2_USER
    mef = Mef(short_profile_tmp(tmp, user))
    a = relay = None
    try:
        conf, state, run_dir = short_profile_setup(tmp, mef, "f", user, "")
        mode = os.path.join(tmp, "relay.mode")
        relay = subprocess.Popen([os.path.join(build, "tests", "integration", "delay-relay"), "--listen",
                                  "127.0.0.1:0", "--connect", f"127.0.0.1:{mef.port}", "--mode-file", mode],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        port = re.search(r":(\d+)$", relay.stdout.readline().strip()).group(1)
        with open(conf) as f:  # through the relay, and an exchange that outlasts the 12 s from renewal to expiry
            text = f.read().replace(f"127.0.0.1:{mef.port}/", f"127.0.0.1:{port}/").replace(
                "exchange_timeout = 30s", "exchange_timeout = 90s")
        with open(conf, "w") as f:
            f.write(text)
        a = Agent(tmp, conf)
        i = a.wait_for(lambda m: m == "READY=1", 30)
        with open(mode, "w") as f:
            f.write("blackhole\n")
        sealed = os.path.join(state, "profile.sealed")
        before = os.path.exists(sealed) and open(sealed, "rb").read()
        j = a.wait_for(lambda m: m.startswith("STATUS=Renewing KeID"), 90, i or 0)
        expired = eventually(lambda: re.search(r"KeID \S+ expired at .* without renewal",
                                               open(os.path.join(tmp, "agent.log")).read()), 90)
        keys_gone = eventually(lambda: cse_keys(user) == (None, None), 30)
        after = os.path.exists(sealed) and open(sealed, "rb").read()
        still = a.proc.poll() is None  # and its exchange, blackholed with 90 s to go, under way
        results.append((i is not None and j is not None and expired and keys_gone and before and after == before and still,
                        "expiry during a renewal's exchange: the keys removed, the sealed profile left unchanged "
                        "for the enrolment under way",
                        f"ready {i}, renewing {j}, expired {bool(expired)}, keys gone {keys_gone}, sealed "
                        f"{'unchanged' if before and after == before else 'changed or gone'}, exchange still under "
                        f"way {still}\n" + "\n".join(a.texts()) + open(os.path.join(tmp, "agent.log")).read()[-2000:]))
    except Exception as ex:  # reported, not raised: this runs in a thread
        results.append((False, "expiry in enrolment scenario", repr(ex)))
    finally:
        if a:
            a.stop()
        if relay:
            relay.terminate()
            relay.wait()
        mef.stop()
        remove_keys(user)
    return results


def in_thread(tmp, user, name, scenario):
    """scenario(tmp, mef, results, agents) with a MEF of its own (not started) and user's keys
    removed, in a thread beside the other scenarios: its results to report, an exception one of
    them (not raised); then the agents it started and the MEF are stopped, user's keys removed."""
    results, agents = [], []
    mef = Mef(short_profile_tmp(tmp, user))
    try:
        scenario(tmp, mef, results, agents)
    except Exception as ex:
        results.append((False, name, repr(ex)))
    finally:
        for a in agents:
            a.stop()
        mef.stop()
        remove_keys(user)
    return results


def expiry_after_renewal_sealed_scenario(tmp):
    """A renewal that sealed its profile but cannot install it (profile.json is a directory: the
    rename into place fails, after the seal) retries the restore until the old profile expires;
    the expiry removes the old keys and restores the renewal's sealed profile, no third enrolment.
    The old manager_on_expiry() removed that sealed profile too and enrolled again. Its own MEF
    and CSE user (in_thread())."""
    return in_thread(tmp, EXPIRY3_USER, "expiry after a renewal's seal scenario", expiry_after_renewal_sealed)


def expiry_after_renewal_sealed(tmp, mef, results, agents):
    user = EXPIRY3_USER
    conf, state, run_dir = short_profile_setup(tmp, mef, "g", user, "")
    log_path = os.path.join(tmp, "agent.log")
    a = Agent(tmp, conf)
    agents.append(a)
    i = a.wait_for(lambda m: m == "READY=1", 30)
    ready = lambda st: st["state"] == "ready" and st["keID"]
    st = state_json_until(run_dir, ready, wait=a.pump) if i is not None else None
    keid1 = (st or {}).get("keID")
    pj = os.path.join(run_dir, "profile.json")
    os.unlink(pj)
    os.makedirs(os.path.join(pj, "in-the-way"))
    j = a.wait_for(lambda m: m.startswith("STATUS=Enrolled as KeID") and "and sealed the profile, but" in m,
                   90, i or 0)
    keid2 = keid_of(a.messages[j][1]) if j is not None else None
    # Held past the expiry: an install has failed since, with no profile in place (state.json names
    # no KeID; before the expiry, the old one).
    expired = eventually(lambda: re.search(rf"KeID {keid1} expired at .* without renewal: removing its keys",
                                           open(log_path).read()), 90, a.pump) if keid1 else None
    failing = lambda st: st["state"] == "backoff" and st["keID"] is None and \
        f"cannot write {pj}" in (st["last_error"] or "")
    held = state_json_until(run_dir, failing, wait=a.pump)
    results.append((keid1 and keid2 and keid2 != keid1 and f"cannot write {pj}" in a.messages[j][1] and
                    expired and held and failing(held),
                    "a renewal sealed its profile but cannot install it (profile.json a directory): still "
                    "failing after the old profile's expiry",
                    f"KeIDs {keid1} {keid2}, expired {bool(expired)}, state.json {held}\n" +
                    "\n".join(a.texts()) + "\n" + open(log_path).read()[-2000:]))
    shutil.rmtree(pj)
    st = state_json_until(run_dir, ready, wait=a.pump)
    names = cse_keys(user)[0] or []
    log = open(log_path).read()
    prof = json.load(open(pj)) if os.path.isfile(pj) else {}
    results.append((keid2 and st and ready(st) and st["keID"] == keid2 and kpsa_name(keid2) in names and
                    prof.get("keID") == keid2 and f"Restored KeID {keid2} from the sealed profile" in log,
                    "once profile.json can be written: READY with the renewal's KeID, restored from its sealed "
                    "profile (keys, profile.json)",
                    f"renewal {keid2}, state.json {st}, keys {names}, profile.json {prof}\n" + log[-2000:]))
    enrolled = json.loads(mef.ctl("--json", "enrolments", "node-g"))
    results.append((keid1 and keid2 and sorted(e["keID"] for e in enrolled) == sorted([keid1, keid2]),
                    "the MEF saw two enrolments of the node (the first and the renewal), no third",
                    json.dumps(enrolled, indent=1)))


def active_keids(mef, node):
    return [e["keID"] for e in json.loads(mef.ctl("--json", "enrolments", node)) if e["state"] == "active"]


def interrupted_enrolment_scenario(tmp, mef, kpm):
    # The MEF commits an enrolment (retiring the node's others) before it answers. A stop while
    # the agent seals what it got (host.key a FIFO: the sealing process blocks on it, after the
    # MEF's commit) leaves the old sealed profile, whose KeID is retired. After the restart the
    # agent asks the MEF at once and re-enrols; the old one stayed READY with the retired KeID
    # until the next poll (an hour here). Then SIGUSR1 and SIGHUP (mscectl reprovision, then
    # reload) with the MEF down: the reload keeps the request and enrols once the MEF is back;
    # the old one dropped the request and stayed READY with the old KeID.
    kpm_i = os.path.join(tmp, "kpm-i.hex")
    mef.ctl("node", "add", "node-i", "--cse-id", "/mn-cse-i", "--cse-base", "https://in.example.net/~/in-cse",
            "--psk-id", "kpm-i", "--generate-psk", kpm_i, "--target", "/in-cse", "--poll", "3600")
    state = os.path.join(tmp, "state-interrupted")
    run_dir = os.path.join(tmp, "run-interrupted")
    conf = os.path.join(tmp, "interrupted.conf")
    write_conf(conf, mef.port, state, run_dir, node="node-i", kpm_file=kpm_i)
    remove_keys()
    log_path = os.path.join(tmp, "agent.log")
    ready = lambda st: st.get("state") == "ready" and st.get("keID")
    a = Agent(tmp, conf)
    b = w = saved = None
    host_key = os.path.join(state, "host.key")
    try:
        i = a.wait_for(lambda m: m == "READY=1", 30)
        keid1 = (state_json_until(run_dir, ready, wait=a.pump) or {}).get("keID") if i is not None else None
        saved = sealed_to_fifo(host_key)
        a.signal(signal.SIGUSR1)
        committed = eventually(lambda: [k for k in active_keids(mef, "node-i") if k != keid1], 30, a.pump)
        w = eventually(lambda: fifo_writer(host_key), 30, a.pump)  # the sealing process has it open
        rc = a.stop()
        os.close(w)
        w = None
        sealed_back(host_key, saved)
        saved = None
        keid2 = committed[0] if committed else None
        tap(keid1 and keid2 and w is None and rc == 0 and active_keids(mef, "node-i") == [keid2],
            "SIGTERM while sealing an enrolment the MEF committed: the MEF holds the new KeID, the old one "
            "retired", f"KeIDs {keid1} {keid2}, exit {rc}\n" + "\n".join(a.texts()))
        start = len(open(log_path).read())
        b = Agent(tmp, conf)
        j = b.wait_for(lambda m: m == "READY=1", 30)
        now_active = lambda st: ready(st) and st["keID"] not in (keid1, keid2) and \
            active_keids(mef, "node-i") == [st["keID"]]
        st = state_json_until(run_dir, now_active, wait=b.pump)
        log = open(log_path).read()[start:]
        keid3 = (st or {}).get("keID")
        tap(j is not None and st and now_active(st) and kpsa_name(keid3) in (cse_keys()[0] or []) and
            "An enrolment was interrupted" in log and f"no longer knows KeID {keid1}" in log and
            not os.path.exists(os.path.join(state, "enrolling")),
            "restarted after that: READY=1, the status of the restored KeID asked at once (not a poll later), "
            "re-enrolled: READY with a KeID the MEF says active, the mark removed",
            f"KeIDs {keid1} {keid2}, state.json {st}, active {active_keids(mef, 'node-i')}\n" +
            "\n".join(b.texts()) + "\n" + log[-3000:])

        # mscectl reprovision; mscectl reload, the MEF down (so the request's enrolment cannot
        # have ended before the reload cancels it)
        mef.stop()
        start = len(b.messages)
        p1 = run(MSCECTL, "--runtime-dir", run_dir, "reprovision")
        k = b.wait_for(lambda m: m.startswith("STATUS=MEF unreachable"), 30, start)
        p2 = run(MSCECTL, "--runtime-dir", run_dir, "reload", "--timeout", "30")
        r = b.wait_for(lambda m: m == "RELOADING=1", 30, start)
        again = b.wait_for(lambda m: m.startswith("STATUS=Renewing KeID"), 30, r or start) if r is not None else None
        mef.start()
        st = state_json_until(run_dir, lambda st: now_active(st) and st["keID"] != keid3, wait=b.pump)
        tap(p1.returncode == 0 and k is not None and p2.returncode == 0 and again is not None and st and
            now_active(st) and st["keID"] != keid3,
            "mscectl reprovision, then reload (the MEF down): the reload keeps the request, re-enrolled once "
            "the MEF is back (a KeID the MEF says active)",
            f"reprovision {p1.returncode} {p1.stderr}, reload {p2.returncode} {p2.stdout} {p2.stderr}\n"
            f"state.json {st}, active {active_keids(mef, 'node-i')}\n" + "\n".join(b.texts(start)))
    finally:
        if w is not None:
            os.close(w)
        if saved:
            sealed_back(host_key, saved)
        if a.proc.poll() is None:
            a.stop()
        if b:
            b.stop()
        if not mef.proc:
            mef.start()


def expiry_in_retry_after_scenario(tmp):
    """The expiry during a backoff the MEF asked for (a renewal refused 429 by [limits]
    enrolments_per_node, its Retry-After capped at retry_after_max = 20s, past the expiry): the
    enrolment that follows the expiry waits for that time. The old agent enrolled at the expiry.
    Its own MEF and CSE user (in_thread())."""
    return in_thread(tmp, EXPIRY4_USER, "expiry in a Retry-After scenario", expiry_in_retry_after)


def expiry_in_retry_after(tmp, mef, results, agents):
    user = EXPIRY4_USER
    mef.extra = "[limits]\nenrolments_per_node = 1 per 10min\n"
    conf, state, run_dir = short_profile_setup(tmp, mef, "h", user, "retry_after_max = 20s\n")
    log_path = os.path.join(tmp, "agent.log")
    a = Agent(tmp, conf)
    agents.append(a)
    i = a.wait_for(lambda m: m == "READY=1", 30)
    # the renewal (at 80% of 60 s) refused: retrying in 20 s, which is past the expiry
    j = a.wait_for(lambda m: m.startswith("STATUS=MEF failed (429, Retry-After") and "retrying in 20 s" in m, 90,
                   i or 0) if i is not None else None
    deadline = a.sent[j] + 20 if j is not None else None
    # a reload meanwhile: its restore re-arms the renewal, already due; it waits for the deadline
    # too (the old agent renewed at once, and was refused again)
    r = None
    if j is not None:
        a.proc.send_signal(signal.SIGHUP)
        r = a.wait_for(lambda m: m == "RELOADING=1", 30, j)
    reloaded = a.wait_for(lambda m: m == "READY=1", 30, r) if r is not None else None
    expired = eventually(lambda: re.search(r"KeID \S+ expired at .* without renewal: removing its keys",
                                           open(log_path).read()), 60, a.pump) if j is not None else None
    k = a.wait_for(lambda m: re.fullmatch(r"STATUS=Enrolling with \S+", m) is not None, 60, j) if expired else None
    early = deadline - a.sent[k] if k is not None else None
    # the timer never fires early: the attempt is at the deadline or later (2 s: the deadline is
    # taken from when this test read the failure's STATUS, which went out after the timer was
    # armed and may have been read late on a loaded machine; the old agent was 20 s early)
    renewed_early = [f"{a.sent[n]:.3f} {m}" for n, (_, m) in enumerate(a.messages)
                     if n > j and m.startswith("STATUS=Renewing KeID") and a.sent[n] < deadline - 2] \
        if j is not None else None
    results.append((reloaded is not None and renewed_early == [],
                    "a reload during the MEF's Retry-After: no renewal before its time",
                    f"renewed early: {renewed_early}\n" +
                    "\n".join(f"{a.sent[n]:.3f} {m}" for n, (_, m) in enumerate(a.messages) if m != "WATCHDOG=1")))
    results.append((k is not None and early < 2 and
                    any(m.startswith("STATUS=Enrolling with") and "as it asked (Retry-After)" in m
                        for m in a.texts(j)),
                    "expiry during the MEF's Retry-After: the enrolment after it waits until then "
                    f"({-early if early is not None else 0:.1f} s after the deadline)",
                    "\n".join(f"{a.sent[n]:.3f} {m}" for n, (_, m) in enumerate(a.messages) if m != "WATCHDOG=1")
                    + "\n" + open(log_path).read()[-2000:]))


def renewal_refused_revoked_scenario(tmp):
    """The MEF revokes the node after the last status check (poll 3600 s); the renewal at 80% of a
    60 s lifetime is refused with its node-revoked hint: the status check that follows at once
    finds the KeID revoked, and the agent goes to REVOKED before the expiry (keys, sealed profile
    and profile.json removed, the mark written). The old agent stayed REJECTED with the revoked
    keys readable until the expiry, retrying only the enrolment. Its own MEF and CSE user
    (in_thread())."""
    return in_thread(tmp, REFUSED_USER, "renewal refused, node revoked scenario", renewal_refused_revoked)


def renewal_refused_revoked(tmp, mef, results, agents):
    user = REFUSED_USER
    conf, state, run_dir = short_profile_setup(tmp, mef, "r", user, "")
    a = Agent(tmp, conf)
    agents.append(a)
    i = a.wait_for(lambda m: m == "READY=1", 30)
    st = state_json_until(run_dir, lambda st: st["state"] == "ready" and st["exp"], wait=a.pump) if i is not None \
        else None
    exp = (datetime.datetime.strptime(st["exp"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() if st and st.get("exp") else None)
    keys = cse_keys(user)[1] is not None
    mef.ctl("node", "revoke", "node-r")
    j = a.wait_for(lambda m: m.startswith("STATUS=Rejected by MEF") and "is revoked at this MEF" in m, 90, i or 0) \
        if i is not None else None
    k = a.wait_for(lambda m: m.startswith("STATUS=Revoked by MEF"), 30, j) if j is not None else None
    gone = eventually(lambda: cse_keys(user) == (None, None) and
                      not os.path.exists(os.path.join(state, "profile.sealed")) and
                      not os.path.exists(os.path.join(run_dir, "profile.json")), 30, a.pump) if k is not None else None
    st = state_json_until(run_dir, lambda st: st["state"] == "revoked", 10, a.pump) if k is not None else None
    results.append((keys and j is not None and "checking its status now" in a.messages[j][1] and k is not None and
                    exp and a.sent[k] < exp and gone and st and st["state"] == "revoked" and st["keID"] is None and
                    os.path.exists(os.path.join(state, "revoked")),
                    "renewal refused with the node-revoked hint, a profile in place: its status checked at once, "
                    "revoked before the expiry (keys, sealed profile, profile.json removed; the mark written)",
                    f"ready {i}, rejected {j}, revoked {k} ({exp - a.sent[k] if k is not None and exp else 0:.1f} s "
                    f"before exp), all gone {gone}, state.json {st}\n" + "\n".join(a.texts())))

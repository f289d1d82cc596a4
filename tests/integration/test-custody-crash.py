#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Crash consistency of enrol-and-store (run by test-custody.sh, root, MEF up):
# kill -9 `msce-agent --once --reenrol` after a random delay, then `msce-agent --once` must
# restore a valid profile (the old or the new one), or enrol when none was ever stored: exit 0
# every time, never "corrupted" (seal_load's -EBADMSG) nor any other unusable profile.
# Usage: test-custody-crash.py AGENT CONFIG STATE_DIR ITERATIONS
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time

agent, conf, state, iterations = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
KEID = re.compile(r"^  KeID: *(\S+)$", re.M)


def run(*args):
    p = subprocess.run([agent, *args, "-c", conf], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def fail(msg, out="", err=""):
    print(msg)
    for line in (out + err).splitlines():
        print("#   " + line)
    sys.exit(1)


# How long a whole --reenrol takes here, to spread the kills over all of it.
durations = []
for _ in range(5):
    t = time.monotonic()
    rc, out, err = run("--once", "--reenrol")
    durations.append(time.monotonic() - t)
    if rc != 0:
        fail(f"calibration run: exit {rc}", out, err)
window = statistics.median(durations) * 1.2

rc, out, err = run("--once")
if rc != 0 or not out.startswith("restored"):
    fail(f"restore before the loop: exit {rc}", out, err)
current = KEID.search(out).group(1)

same = changed = 0
start = time.monotonic()


def kill_once(i, window):
    global same, changed, current
    p = subprocess.Popen([agent, "--once", "--reenrol", "-c", conf], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    time.sleep(random.uniform(0, window))
    p.send_signal(signal.SIGKILL)
    p.wait()
    rc, out, err = run("--once")
    if rc != 0:
        fail(f"iteration {i}: --once after kill -9 exited {rc}", out, err)
    if "corrupted" in err or "(unusable)" in err or not out.startswith("restored"):
        fail(f"iteration {i}: the profile did not restore after kill -9", out, err)
    keid = KEID.search(out).group(1)
    if keid == current:
        same += 1
    else:
        changed += 1
    current = keid


for i in range(iterations):
    kill_once(i, window)
# The calibration was made under the load of its moment, and the load changes (other tests,
# other builds): until the kills have landed on both sides of the store, move the window
# towards the side that was missed (at most ITERATIONS more kills, not a time limit).
extra = 0
while (same == 0 or changed == 0) and extra < iterations:
    window = window * 1.5 if changed == 0 else window * 0.7
    kill_once(iterations + extra, window)
    extra += 1
if extra:
    print(f"# {extra} more kills, the window moved to 0..{window * 1000:.0f} ms")

leftovers = [f for f in os.listdir(state) if ".tmp." in f]
if leftovers:
    fail(f"temporary files left in {state}: {leftovers}")
print(f"{iterations} kills over 0..{window * 1000:.0f} ms in {time.monotonic() - start:.1f} s: "
      f"old profile restored {same} times, new profile {changed} times")
if same == 0 or changed == 0:
    fail("the kills did not land both before and after the new profile was stored")

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A stand-in msce-agent (its comm) for mscectl.sh: two operators reload at once. Operator A's reload
# (number 5) is under way when operator B runs mscectl reload; it completes right after B's look at
# state.json, before the agent takes B's SIGHUP, which starts reload 6 (refused: B's file is
# broken). The state.json writes are the real agent's in that order (agent/manager.c on_hup,
# agent/states.c reload_settle). mscectl must report reload 6, not A's.
# Usage: reload-race-agent.py RUNTIME_DIR; prints "ready" once state.json is in place.
import ctypes
import json
import os
import signal
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.prctl(15, b"msce-agent", 0, 0, 0)  # PR_SET_NAME: mscectl knows the agent by its comm
rt = sys.argv[1]
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})


def write(**members):
    st = {"state": "ready", "pid": os.getpid(), "reload_error": None, **members}
    with open(os.path.join(rt, ".state.tmp"), "w") as f:
        json.dump(st, f)
    os.rename(os.path.join(rt, ".state.tmp"), os.path.join(rt, "state.json"))


write(state="restore", status="Reloading (operator A)", reloads=4, reloads_begun=5, reload_done=4)
print("ready", flush=True)
signal.sigwait({signal.SIGHUP})

# Reload 5 settles (queued before B's SIGHUP).
IN_CLOSE_NOWRITE = 0x10
ifd = libc.inotify_init1(0)
if ifd < 0 or libc.inotify_add_watch(ifd, rt.encode(), IN_CLOSE_NOWRITE) < 0:
    sys.exit("inotify: " + os.strerror(ctypes.get_errno()))
write(status="Ready: operator A's configuration", reloads=5, reloads_begun=5, reload_done=5)
# Until mscectl has read that: two reads of state.json ended after the rename (one of them may have
# opened the file before it), so one read it. mscectl that took it for its own has exited then.
reads = 0
while reads < 2:
    buf = os.read(ifd, 4096)
    while buf:
        _, _, _, n = struct.unpack_from("iIII", buf)
        name = buf[16:16 + n].rstrip(b"\0")
        reads += name == b"state.json"
        buf = buf[16 + n:]

# B's SIGHUP: reload 6, numbered before the files are read, refused.
write(state="ready", status="Ready: operator A's configuration", reloads=5, reloads_begun=6, reload_done=5)
write(status="Ready: operator A's configuration", reloads=6, reloads_begun=6, reload_done=6,
      reload_error="agent.conf:9: [timing] backoff_min: not a duration (operator B's edit)")
print("done", flush=True)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
signal.sigwait({signal.SIGTERM})

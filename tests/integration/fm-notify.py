#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# A NOTIFY_SOCKET listener standing in for systemd (fault-matrix.sh, bench-agent-ready.sh):
# binds an AF_UNIX datagram socket at PATH and appends every sd_notify() field to LOG, one a
# line, as "MONOTONIC PID FIELD=VALUE" (MONOTONIC: CLOCK_MONOTONIC seconds when the datagram
# was queued at the socket, from the kernel's SO_TIMESTAMP: not when this script got round to
# reading it, which on a loaded machine can be much later; PID: the sender, from
# SCM_CREDENTIALS, as systemd's NotifyAccess= checks it). Runs until SIGTERM.
#   usage: fm-notify.py PATH LOG
import os
import signal
import socket
import struct
import sys
import time

# Linux's SO_TIMESTAMP (= SCM_TIMESTAMP, struct timeval): Python 3.11 does not name it.
SO_TIMESTAMP = getattr(socket, "SO_TIMESTAMP", 29)


def main():
    if len(sys.argv) != 3:
        print("usage: fm-notify.py PATH LOG", file=sys.stderr)
        return 2
    path, log = sys.argv[1], sys.argv[2]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMP, 1)
    s.bind(path)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    creds_size = struct.calcsize("3i")
    with open(log, "a", buffering=1) as out:
        out.write("%.6f 0 LISTENING=1\n" % time.monotonic())
        while True:
            data, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(creds_size) + socket.CMSG_SPACE(16))
            now = time.monotonic()
            wall = time.time()
            pid = 0
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", payload[:creds_size])[0]
                elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMP and len(payload) >= 16:
                    sec, usec = struct.unpack("qq", payload[:16])
                    now -= max(0.0, wall - (sec + usec / 1e6))  # how long it waited to be read
            for line in data.decode("utf-8", "replace").split("\n"):
                if line:
                    out.write("%.6f %d %s\n" % (now, pid, line))


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Looks at the agent's keys the way the CSE does (docs/cse-integration.md): as USER, in a fresh
# session keyring, with USER's persistent keyring linked into it. Started as root; drops to USER
# first, then joins a new session keyring (so nothing of root's possession is inherited).
# Key bytes are read to prove they are readable, never printed.
#
#   fm-keys.py USER list
#       prints "SERIAL DESCRIPTION" for every key in the "msce" keyring and exits 0, after
#       checking that msce:ltk can be read (16..64 bytes); prints "none" and exits 1 when there
#       is no "msce" keyring; exits 2 when msce:ltk is missing or unreadable.
#   fm-keys.py USER watch
#       until SIGTERM, every millisecond: search the "msce" keyring and msce:ltk, read it. stdout
#       gets a line at every change, "START_MONOTONIC END_MONOTONIC present SERIAL" or
#       "... absent ERRNO", and at the end a summary line "summary checks=N present=N
#       absent_after_present=N read_retries=N read_failures=N serials=S1,S2,...". A search that
#       fails once the key has been seen is "absent_after_present"; a read that loses the race
#       with a replacement (EKEYREVOKED/ENOKEY after a successful search) is searched and read
#       once more, as the CSE is told to, and only a second failure counts as a read failure.
#       At the end also "first_present START" and "last_absent_before_present START" (0: none),
#       so a test can tell whether the key was still missing after a READY=1 was received.
import ctypes
import ctypes.util
import errno
import os
import pwd
import signal
import sys
import time

KEY_SPEC_SESSION_KEYRING = -3

lib = ctypes.CDLL(ctypes.util.find_library("keyutils") or "libkeyutils.so.1", use_errno=True)
lib.keyctl_join_session_keyring.argtypes = [ctypes.c_char_p]
lib.keyctl_join_session_keyring.restype = ctypes.c_int32
lib.keyctl_get_persistent.argtypes = [ctypes.c_int, ctypes.c_int32]
lib.keyctl_get_persistent.restype = ctypes.c_long
lib.keyctl_search.argtypes = [ctypes.c_int32, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int32]
lib.keyctl_search.restype = ctypes.c_long
lib.keyctl_read.argtypes = [ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t]
lib.keyctl_read.restype = ctypes.c_long
lib.keyctl_describe.argtypes = [ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t]
lib.keyctl_describe.restype = ctypes.c_long

BUF = ctypes.create_string_buffer(4096)


def check(r):
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def become(user):
    pw = pwd.getpwnam(user)
    os.setgroups([])
    os.setgid(pw.pw_gid)
    os.setuid(pw.pw_uid)
    check(lib.keyctl_join_session_keyring(None))
    check(lib.keyctl_get_persistent(-1, KEY_SPEC_SESSION_KEYRING))


def find_ring():
    return check(lib.keyctl_search(KEY_SPEC_SESSION_KEYRING, b"keyring", b"msce", 0))


def find_ltk():
    ring = find_ring()
    return check(lib.keyctl_search(ring, b"user", b"msce:ltk", 0))


def read_len(serial):
    n = check(lib.keyctl_read(serial, BUF, len(BUF)))
    ctypes.memset(BUF, 0, len(BUF))
    return n


def cmd_list():
    try:
        ring = find_ring()
    except OSError as e:
        if e.errno in (errno.ENOKEY, errno.EKEYREVOKED, errno.EKEYEXPIRED):
            print("none")
            return 1
        raise
    n = check(lib.keyctl_read(ring, BUF, len(BUF)))
    serials = [int.from_bytes(BUF.raw[i:i + 4], sys.byteorder, signed=True) for i in range(0, min(n, 4096), 4)]
    for s in serials:
        d = ctypes.create_string_buffer(512)
        if lib.keyctl_describe(s, d, len(d)) < 0:
            continue
        # "type;uid;gid;perm;description"
        desc = d.value.decode("utf-8", "replace").split(";", 4)
        print(s, desc[4] if len(desc) == 5 else "?")
    try:
        n = read_len(find_ltk())
    except OSError as e:
        print("msce:ltk not readable: %s" % e.strerror)
        return 2
    if not 16 <= n <= 64:
        print("msce:ltk has %d bytes" % n)
        return 2
    return 0


def cmd_watch():
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    checks = present = absent_after = retries = read_failures = 0
    serials = []
    last_state = None
    first_present = last_absent_before = 0.0
    out = sys.stdout
    while not stop:
        t0 = time.monotonic()
        checks += 1
        state = None
        for attempt in (1, 2):
            try:
                serial = find_ltk()
            except OSError as e:
                state = ("absent", e.errno)
                break
            try:
                read_len(serial)
                state = ("present", serial)
                break
            except OSError as e:
                if attempt == 1 and e.errno in (errno.EKEYREVOKED, errno.ENOKEY):
                    retries += 1
                    continue
                read_failures += 1
                state = ("unreadable", e.errno)
        t1 = time.monotonic()
        if state[0] == "present":
            if not present:
                first_present = t0
            present += 1
            if state[1] not in serials:
                serials.append(state[1])
        else:
            if not present:
                last_absent_before = t0
            else:
                absent_after += 1
        if state != last_state:
            out.write("%.6f %.6f %s %s\n" % (t0, t1, state[0], state[1]))
            out.flush()
            last_state = state
        time.sleep(0.001)
    out.write("first_present %.6f\n" % first_present)
    out.write("last_absent_before_present %.6f\n" % last_absent_before)
    out.write("summary checks=%d present=%d absent_after_present=%d read_retries=%d read_failures=%d serials=%s\n"
              % (checks, present, absent_after, retries, read_failures, ",".join(map(str, serials))))
    return 0


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("list", "watch"):
        print("usage: fm-keys.py USER list|watch", file=sys.stderr)
        return 64
    become(sys.argv[1])
    if sys.argv[2] == "list":
        return cmd_list()
    return cmd_watch()


if __name__ == "__main__":
    sys.exit(main())

#!/bin/sh
# SPDX-License-Identifier: MIT
# msce-agent --once custody end to end (TAP), as root, against the real msce-mef on loopback:
# enrol, restore with the MEF down, the CSE user reads msce:ltk with keyctl and another user
# cannot, a corrupted envelope or a profile for another node is re-enrolled, kill -9 at random
# points during enrol-and-store never leaves a broken profile (test-custody-crash.py), ENOSPC in
# the state directory keeps the old profile, and no key byte is ever in the state directory, the
# runtime directory or the agent's output.
# Usage: test-custody.sh BUILDDIR [CRASH_ITERATIONS]
set -u

[ $# -ge 1 ] || { echo "usage: $0 BUILDDIR [CRASH_ITERATIONS]" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
ITER=${2:-250}
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT=$B/msce-agent
MEF=$B/msce-mef
# Two users of this run's own (test-user.sh: msce-t<PID>-cse, msce-t<PID>-other), so that a run
# of the same test in another build directory or worktree cannot touch their keyrings.
# CUSTODY_CSE_USER=an-existing-user uses that one instead of the first.
. "$HERE/lib.sh"
need_root "keyring, other users"
need_exec "$AGENT" "$MEF"
need_cmds keyctl python3 su unshare mount od
own_session "$@"
if [ -n "${CUSTODY_CSE_USER:-}" ]; then
        id -u "$CUSTODY_CSE_USER" > /dev/null 2>&1 || skip_all "no user $CUSTODY_CSE_USER"
        CSE_USER=$CUSTODY_CSE_USER
        at_exit 'keyring_clear $(id -u $CSE_USER)'
else
        CSE_USER=$(test_user cse) || skip_all "cannot create a test user"
        test_user_cleanup $CSE_USER
fi
OTHER_USER=$(test_user other) || skip_all "cannot create a test user"
test_user_cleanup $OTHER_USER

tmpdir test-custody
chmod 0755 "$T"

umask 077
mkdir "$T/logs"
# one node enrols here far faster than an agent would: no per-node rate limit
mef_conf "[limits]" "enrolments_per_node = 0"
mefctl init || bail "msce-mef init failed"
CSE_BASE=https://in.example.net:8443/~/in-cse/in-name
mefctl node add node-1 --cse-id /mn-cse-1 --cse-base $CSE_BASE --psk-id kpm-1 \
        --generate-psk "$T/kpm-1.hex" --target /in-cse --target /maf-1 || bail "node add failed"
mefctl node add node-2 --cse-id /mn-cse-2 --cse-base $CSE_BASE --psk-id kpm-2 \
        --generate-psk "$T/kpm-2.hex" || bail "node add failed"

# The MEF on port 0 the first time; a restart asks for the same port again, as the agents'
# configurations name it (lib.sh mef_start).
mef_start "$T/mef.conf.in" "$T/logs" || bail "msce-mef did not start" "$T/logs/mef.err"

# conf NAME NODE STATE_DIR: a host-sealed agent configuration.
conf() {
        n=${2#node-}
        cat > "$T/$1.conf" <<EOF
[node]
id = $2
[mef]
uri = https://127.0.0.1:$PORT/msce
psk_identity = kpm-$n
psk_file = $T/kpm-$n.hex
$(agent_custody "$CSE_USER" "$3" "$T/run")
[timing]
connect_timeout = 2s
exchange_timeout = 10s
EOF
}
STATE=$T/state
conf agent node-1 "$STATE"
conf node2 node-2 "$STATE"

# agent WANT_EXIT ARGS...: run the agent, keep every output for the secret scan.
RUNS=0
agent() {
        want=$1
        shift
        "$AGENT" "$@" > "$T/out" 2> "$T/err"
        rc=$?
        RUNS=$((RUNS + 1))
        cat "$T/out" "$T/err" > "$T/logs/run-$RUNS"
        [ $rc -eq "$want" ] && return 0
        not_ok "msce-agent $*: exit $rc, expected $want"
        return 1
}

# The CSE's recipe from docs/cse-integration.md, run as USER in a fresh session keyring:
# prints the Long Term Key as hex (and leaves its serial in $T/serial).
read_ltk() {
        su -s /bin/sh "$1" -c 'keyctl session - /bin/sh -s' 2> "$T/err" > "$T/out.2" <<'EOF'
set -e
keyctl get_persistent @s > /dev/null
ring=$(keyctl search @s keyring msce)
ltk=$(keyctl search "$ring" user msce:ltk)
echo "$ltk"
keyctl pipe "$ltk" | od -An -tx1 -v | tr -d ' \n'
EOF
        rc=$?
        head -n 1 "$T/out.2" > "$T/serial"
        tail -n +2 "$T/out.2" > "$T/out"
        return $rc
}
# Another USER tries to read the key with that serial, from a fresh session keyring.
read_serial() {
        su -s /bin/sh "$1" -c "keyctl session - keyctl pipe $2" 2> "$T/err" > "$T/out"
}

keid_of() { sed -n 's/^  KeID: *//p' "$T/out"; }

# 1. First run: nothing sealed yet, enrol.
if agent 0 --once -c "$T/agent.conf"; then
        grep -q '^enrolled with MEF ' "$T/out" && grep -q 'cannot restore (absent)' "$T/err" &&
                grep -q '^  sealed: .*(host)$' "$T/out" && [ -s "$STATE/profile.sealed" ] &&
                ok "first --once enrols (nothing sealed yet) and seals with the host key" ||
                not_ok "first --once: output or sealed profile"
fi
KEID1=$(keid_of)

# 2. MEF down: the second run restores without the network.
mef_stop
if agent 0 --once -c "$T/agent.conf"; then
        [ "$(keid_of)" = "$KEID1" ] && grep -q '^restored ' "$T/out" &&
                ok "second --once restores KeID $KEID1 with the MEF stopped" || not_ok "restore: output"
fi

# 3. profile.json: non-secret, world-readable, the restored KeID.
if [ "$(stat -c %a "$T/run/profile.json")" = 644 ] &&
   python3 - "$T/run/profile.json" "$KEID1" <<'EOF'
import json, sys
p = json.load(open(sys.argv[1]))
assert p["keID"] == sys.argv[2] and p["cseID"] == "/mn-cse-1", p
assert sorted(t["id"] for t in p["targets"]) == ["/in-cse", "/maf-1"], p
assert all(t["kpsaID"].endswith("@127.0.0.1") for t in p["targets"]) and p["poll"] > 0, p
assert set(p) == {"cseID", "cseBase", "keID", "exp", "targets", "poll"}, p
EOF
then
        ok "profile.json is 0644 and holds cseID, cseBase, keID, exp, targets, poll only"
else
        not_ok "profile.json"
fi

# 4. The CSE user reads msce:ltk; another user is refused.
LTKS=
if read_ltk $CSE_USER && [ "$(wc -c < "$T/out")" -eq 64 ]; then
        LTKS=$(cat "$T/out")
        ok "$CSE_USER reads the 32-byte msce:ltk with keyctl"
else
        not_ok "$CSE_USER cannot read msce:ltk"
fi
SERIAL=$(cat "$T/serial" 2> /dev/null)
if [ -z "$SERIAL" ]; then
        not_ok "no serial of msce:ltk to try as $OTHER_USER"
elif read_serial $OTHER_USER "$SERIAL"; then
        not_ok "$OTHER_USER can read $CSE_USER's msce:ltk (key $SERIAL)"
elif grep -q 'Permission denied' "$T/err"; then
        ok "$OTHER_USER is refused $CSE_USER's msce:ltk (key $SERIAL): permission denied"
else
        not_ok "$OTHER_USER: unexpected error"
fi

# 5. A corrupted envelope: said so, then re-enrolled.
mef_start "$T/mef.conf.in" "$T/logs" || bail "msce-mef did not restart" "$T/logs/mef.err"
python3 - "$STATE/profile.sealed" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x40
open(p, "wb").write(bytes(b))
EOF
if agent 0 --once -c "$T/agent.conf"; then
        KEID2=$(keid_of)
        grep -q 'cannot restore (unusable): the sealed profile .* is corrupted, truncated or not a valid profile' "$T/err" &&
                grep -q '^enrolled with MEF ' "$T/out" && [ "$KEID2" != "$KEID1" ] &&
                ok "a corrupted envelope is reported and re-enrolled" || not_ok "corrupted envelope: output"
fi
read_ltk $CSE_USER && LTKS="$LTKS $(cat "$T/out")"

# 6. A profile for another node: not restored, re-enrolled.
if agent 0 --once -c "$T/node2.conf" && agent 0 --once -c "$T/agent.conf"; then
        grep -q 'cannot restore (mismatch): the sealed profile was obtained for node ID node-2, the configuration says node-1' \
                "$T/err" && grep -q '^enrolled with MEF ' "$T/out" &&
                ok "a profile for another node ID is not restored: re-enrolled" || not_ok "mismatch: output"
fi
read_ltk $CSE_USER && LTKS="$LTKS $(cat "$T/out")"

# 7. --reenrol: a new KeID even though the profile restores.
KEIDA=$(sed -n 's/.*"keID": "\(.*\)".*/\1/p' "$T/run/profile.json")
if agent 0 --once --reenrol -c "$T/agent.conf"; then
        KEIDB=$(keid_of)
        [ -n "$KEIDB" ] && [ "$KEIDB" != "$KEIDA" ] && grep -q "restored KeID $KEIDA; re-enrolling" "$T/err" &&
                grep -q "\"keID\": \"$KEIDB\"" "$T/run/profile.json" &&
                ok "--reenrol replaces KeID $KEIDA by $KEIDB" || not_ok "--reenrol: output"
fi
read_ltk $CSE_USER && LTKS="$LTKS $(cat "$T/out")"

# 8. kill -9 at random points during enrol-and-store.
CRASH=$T/crash
mkdir "$CRASH"
conf crash node-1 "$CRASH/state"
if python3 "$HERE/test-custody-crash.py" "$AGENT" "$T/crash.conf" "$CRASH/state" "$ITER" > "$T/out" 2> "$T/err"; then
        ok "kill -9 at $ITER random points during --once --reenrol: the next --once always restores ($(tail -n 1 "$T/out"))"
else
        not_ok "crash consistency"
fi
cat "$T/out" "$T/err" > "$T/logs/crash"

# 9. ENOSPC in the state directory: a clear error before any enrolment (none is made that could
# not be kept), exit 75, the old profile still restores.
SMALL=$T/small
mkdir "$SMALL"
conf small node-1 "$SMALL/state"
cat > "$T/enospc.sh" <<EOF
set -u
mount -t tmpfs -o size=64k,mode=0700 tmpfs "$SMALL" || exit 3
"$AGENT" --once -c "$T/small.conf" > "$T/enospc-1.out" 2> "$T/enospc-1.err"
echo "first=\$?"
dd if=/dev/zero of="$SMALL/fill" bs=4096 > /dev/null 2>&1
"$AGENT" --once --reenrol -c "$T/small.conf" > "$T/enospc-2.out" 2> "$T/enospc-2.err"
echo "reenrol=\$?"
"$AGENT" --once -c "$T/small.conf" > "$T/enospc-3.out" 2> "$T/enospc-3.err"
echo "restore=\$?"
EOF
unshare -m --propagation private sh "$T/enospc.sh" > "$T/out" 2> "$T/err"
cat "$T"/enospc-*.out "$T"/enospc-*.err > "$T/logs/enospc" 2> /dev/null
if grep -q '^first=0$' "$T/out" && grep -q '^reenrol=75$' "$T/out" && grep -q '^restore=0$' "$T/out" &&
   grep -q "not enrolling: no space left in $SMALL/state" "$T/enospc-2.err" &&
   grep -q 'the previous profile stays in place' "$T/enospc-2.err" &&
   grep -q '^restored ' "$T/enospc-3.out"; then
        ok "ENOSPC in the state directory: exit 75 naming it, and the old profile restores"
else
        not_ok "ENOSPC"
        sed 's/^/#   /' "$T"/enospc-*.out "$T"/enospc-*.err 2> /dev/null
fi

# 10. No key byte anywhere: the Kpm values and every ltk the CSE read, as raw bytes, hex (both
# cases) and base64, in the state directories, the runtime directory and all outputs.
if [ -z "$LTKS" ]; then
        not_ok "no Long Term Key was read: cannot scan for it"
elif python3 - "$T" $LTKS <<'EOF'
import base64, glob, os, sys
root, secrets = sys.argv[1], []
kpms = [open(f).read().strip() for f in glob.glob(os.path.join(root, "kpm-*.hex"))]
assert kpms
for h in kpms + sys.argv[2:]:
    raw = bytes.fromhex(h)
    secrets += [raw, h.lower().encode(), h.upper().encode(), base64.b64encode(raw)[:-4]]
places = [os.path.join(root, d) for d in ("state", "run", "logs", "crash", "small")]
found = []
for place in places:
    for dirpath, _, files in os.walk(place):
        for f in files:
            data = open(os.path.join(dirpath, f), "rb").read()
            found += [os.path.join(dirpath, f) for s in secrets if s in data]
if found:
    print("key bytes in:", *sorted(set(found)))
    sys.exit(1)
EOF
then
        ok "no Kpm and no Long Term Key byte in the state or runtime directories or any output ($(echo $LTKS | wc -w) ltk values)"
else
        not_ok "key bytes found"
fi

# 11. Under the sanitizer build: no report from any agent run.
if grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T"/logs/* > "$T/out" 2> /dev/null; then
        not_ok "sanitizer reports in the agent's output"
else
        ok "no sanitizer report in the agent's output"
fi

tap_done

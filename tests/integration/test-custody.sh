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
CSE_USER=
OTHER_USER=
TEST_USER_SH=$HERE/test-user.sh

skip() { echo "1..0 # SKIP $1"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root (keyring, other users)"
for p in "$AGENT" "$MEF"; do [ -x "$p" ] || skip "$p not built"; done
for c in keyctl python3 su unshare mount od; do
        command -v $c > /dev/null 2>&1 || skip "$c is missing"
done
# A session keyring of our own: nothing leaks into or from the caller's.
if [ -z "${MSCE_TEST_SESSION:-}" ]; then
        # keyctl says "Joined session keyring" on stderr: only that is dropped.
        MSCE_TEST_SESSION=1 exec keyctl session - /bin/sh -c 'exec 2>&3 3>&-; exec /bin/sh "$0" "$@"' \
                "$0" "$@" 3>&2 2> /dev/null
fi
if [ -n "${CUSTODY_CSE_USER:-}" ]; then
        id -u "$CUSTODY_CSE_USER" > /dev/null 2>&1 || skip "no user $CUSTODY_CSE_USER"
else
        CSE_USER=$(sh "$TEST_USER_SH" add $$ cse) || skip "cannot create a test user"
fi
OTHER_USER=$(sh "$TEST_USER_SH" add $$ other) || { sh "$TEST_USER_SH" del $CSE_USER; skip "cannot create a test user"; }
CSE_USER=${CUSTODY_CSE_USER:-$CSE_USER}

T=$(mktemp -d /tmp/test-custody-XXXXXX) || exit 2
chmod 0755 "$T"
MEF_PID=
cleanup() {
        [ -n "$MEF_PID" ] && kill "$MEF_PID" 2> /dev/null && wait "$MEF_PID" 2> /dev/null
        # Take our keys out of the test user's persistent keyring.
        keyctl session - sh -c "p=\$(keyctl get_persistent @s $(id -u $CSE_USER)) &&
                r=\$(keyctl search @s keyring msce 2> /dev/null) && keyctl revoke \$r && keyctl unlink \$r \$p" \
                > /dev/null 2>&1
        if [ -n "${CUSTODY_CSE_USER:-}" ]; then sh "$TEST_USER_SH" del $OTHER_USER; else sh "$TEST_USER_SH" del $CSE_USER $OTHER_USER; fi
        rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

N=0
FAILED=0
ok() { N=$((N + 1)); echo "ok $N - $1"; }
not_ok() {
        N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $1"
        for f in "$T/out" "$T/err"; do [ -s "$f" ] && sed 's/^/#   /' "$f"; done
        return 0
}

umask 077
mkdir "$T/logs"
cat > "$T/mef.conf.in" <<EOF
[server]
listen = 127.0.0.1:@PORT@
fqdn = 127.0.0.1
base = /msce
[store]
path = $T/mef.db
master_key = $T/master.key
# one node enrols here far faster than an agent would: no per-node rate limit
[limits]
enrolments_per_node = 0
EOF
sed 's/@PORT@/8443/' "$T/mef.conf.in" > "$T/mef.conf"
mefctl() { "$MEF" --config "$T/mef.conf" "$@" > "$T/mefctl.out" 2>&1 || { sed 's/^/# /' "$T/mefctl.out"; return 1; }; }
mefctl init || { echo "Bail out! msce-mef init failed"; exit 1; }
CSE_BASE=https://in.example.net:8443/~/in-cse/in-name
mefctl node add node-1 --cse-id /mn-cse-1 --cse-base $CSE_BASE --psk-id kpm-1 \
        --generate-psk "$T/kpm-1.hex" --target /in-cse --target /maf-1 || { echo "Bail out! node add failed"; exit 1; }
mefctl node add node-2 --cse-id /mn-cse-2 --cse-base $CSE_BASE --psk-id kpm-2 \
        --generate-psk "$T/kpm-2.hex" || { echo "Bail out! node add failed"; exit 1; }

# The MEF on port 0 the first time (it binds, then prints the port it got); a restart asks for
# the same port again, as the agents' configurations name it. No port is chosen before it is
# bound: a free port looked up here could be taken by another process before the MEF binds it.
PORT=
mef_start() {
        want=${PORT:-0}
        for attempt in 1 2 3; do
                sed "s/@PORT@/$want/" "$T/mef.conf.in" > "$T/mef.conf"
                "$MEF" --config "$T/mef.conf" serve > "$T/logs/mef.out" 2> "$T/logs/mef.err" &
                MEF_PID=$!
                end=$(($(date +%s) + 30)) # a deadline for a hang, not a speed requirement
                while [ "$(date +%s)" -lt $end ]; do
                        got=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$T/logs/mef.out" 2> /dev/null)
                        [ -z "$got" ] && [ "$want" != 0 ] && grep -qs 'listening on' "$T/logs/mef.err" && got=$want
                        if [ -n "$got" ]; then
                                PORT=$got
                                return 0
                        fi
                        kill -0 "$MEF_PID" 2> /dev/null || break
                        sleep 0.1
                done
                echo "# msce-mef did not start on port $want (attempt $attempt):"
                sed 's/^/#   /' "$T/logs/mef.err"
                kill "$MEF_PID" 2> /dev/null
                wait "$MEF_PID" 2> /dev/null
                MEF_PID=
                sleep 1
        done
        return 1
}
mef_stop() {
        kill "$MEF_PID" 2> /dev/null
        wait "$MEF_PID" 2> /dev/null
        MEF_PID=
}
mef_start || { echo "Bail out! msce-mef did not start"; sed 's/^/# /' "$T/logs/mef.err"; exit 1; }

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
[consumer]
user = $CSE_USER
[seal]
backend = host
state_dir = $3
runtime_dir = $T/run
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
mef_start || { echo "Bail out! msce-mef did not restart"; exit 1; }
python3 - "$STATE/profile.sealed" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x40
open(p, "wb").write(bytes(b))
EOF
if agent 0 --once -c "$T/agent.conf"; then
        KEID2=$(keid_of)
        grep -q 'cannot restore (unusable): the sealed profile .* is corrupted or truncated' "$T/err" &&
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

echo "1..$N"
[ $FAILED -eq 0 ]

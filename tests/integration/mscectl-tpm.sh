#!/bin/bash
# SPDX-License-Identifier: MIT
# mscectl and a TPM that never answers (TAP output): check and factory-reset ask the TPM in a
# child with the agent's deadline (ctl/tpm.h, 20 s), so a TCTI that connects and never answers
# is a FAIL, or a refusal that removes nothing, within it, and never hangs mscectl (it did: ESYS
# waits for as long as the TCTI gives no answer). The "TPM" is tss2's cmd TCTI running a
# program that reads the commands and never answers. Each run has a timeout of its own (exit 124:
# the hang). Also check as an unprivileged user: the findings it cannot make are WARN lines
# saying so (keys, TPM, sealed profile), exit 0, 1 with --warnings-as-errors.
# Usage: tests/integration/mscectl-tpm.sh BUILDDIR
set -u

[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
CTL=$B/ctl/mscectl
. "$(dirname "$0")/lib.sh"
need_root "factory-reset, a user of its own"
need_exec "$CTL"
need_cmds keyctl setpriv timeout
own_session "$@" # factory-reset unlinks the CSE user's keys through our session

U=$(test_user tpmu) || bail "cannot create a test user"
test_user_cleanup "$U"
tmpdir test-mscectl-tpm
chmod 0755 "$T" # for the unprivileged user's run
umask 077
# The silent "TPM"s started: each reads until the TCTI's end closes, so it ends with the child
# that asked it; any left is stopped at exit.
at_exit 'for p in $(cat "$T/silent.pids" 2> /dev/null); do lib_comm_is $p cat && kill $p; done'
printf 'echo $$ >> "%s/silent.pids"\nexec cat > /dev/null\n' "$T" > "$T/silent-tpm"
SILENT="cmd:sh $T/silent-tpm"

mkdir -m 0700 "$T/state" "$T/run"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/kpm.hex"
# conf FILE TCTI STATE_DIR KPM
conf() {
        cat > "$1" << EOF
[node]
id = node-1
[mef]
uri = https://127.0.0.1:1/msce
psk_identity = kpm-1
psk_file = $4
[consumer]
user = $U
[seal]
backend = tpm2
tcti = $2
state_dir = $3
runtime_dir = $T/run
EOF
}
conf "$T/silent.conf" "$SILENT" "$T/state" "$T/kpm.hex"

# A profile sealed by a TPM, as far as mscectl can tell before it asks the TPM: the envelope
# (keys/seal.c) with a blob tpm2_unseal() unmarshals (hw/tpm2.c: a keyed-hash object,
# fixedTPM|fixedParent, sha256, no PCRs); the TPM would be asked to load it next.
sealed() {
        { printf 'MSCE\1\1\0\0\0\0\0\27\0\0\0\1' && head -c 12 /dev/zero &&
          printf '\1\0\16\0\10\0\13\0\0\0\22\0\0\0\20\0\0\0\0\0\0\0\0*' && head -c 16 /dev/zero; } > "$1/profile.sealed"
}
PROFILE='{"cseID": "/mn-cse-1", "cseBase": "https://in.example.net/~/in-cse/in-name",
 "keID": "00112233445566778899aabbccddeeff@mef.example.net", "exp": "20991127T203000",
 "targets": [{"id": "/in-cse", "kpsaID": "k1@mef.example.net"}], "poll": 3600}'

# run WANT LIMIT ARGS...: mscectl ARGS under timeout LIMIT; not_ok on a hang (124) or another exit
run() {
        lib_want=$1 lib_limit=$2
        shift 2
        timeout "$lib_limit" "$CTL" "$@" > "$T/out" 2> "$T/err"
        RC=$?
        [ $RC -ne 124 ] || { not_ok "mscectl $*: still waiting after $lib_limit s (hangs)"; return 1; }
        [ $RC -eq "$lib_want" ] || { not_ok "mscectl $*: exit $RC, expected $lib_want"; return 1; }
}
err_has() { grep -qE -- "$1" "$T/err"; }
ONLY_TPM=--dont-run=config-files,credentials,clock,state-dir,runtime-dir,preflight,consumer,leds,agent,profile
SILENT_RE=$(printf '%s' "$SILENT" | sed 's/[.[\*^$]/\\&/g')

# ---- check: the TPM check and the sealed profile's unseal, each within the deadline ----
sealed "$T/state"
if run 1 60 --config "$T/silent.conf" check --no-network --agent-user root "$ONLY_TPM"; then
        if out_has 'this build has no TPM support'; then
                skip "check, a TPM that does not answer: built without TPM support"
        elif out_has '^FAIL  TPM: none answers'; then
                skip "check, a TPM that does not answer: tss2's cmd TCTI (libtss2-tcti-cmd) not installed"
        else
                out_has "^FAIL  TPM: the TPM at $SILENT_RE did not answer within 20 s$" &&
                out_has "^FAIL  sealed profile: not opened: the TPM at $SILENT_RE did not answer within 20 s$" &&
                        ok "check, a TPM that does not answer: FAIL for the TPM and the sealed profile, exit 1" ||
                        not_ok "check, a TPM that does not answer: findings"
        fi
fi

# ---- factory-reset --deregister: the KeID cannot be read, nothing removed, no MEF asked ----
printf '%s\n' "$PROFILE" > "$T/run/profile.json"
if run 1 60 --config "$T/silent.conf" factory-reset --deregister --yes; then
        err_has "^mscectl: factory-reset: the TPM at $SILENT_RE did not answer within 20 s: cannot read the KeID of the sealed profile in " &&
        err_has '^mscectl: nothing was removed; retry, or reset without --deregister$' &&
        [ -s "$T/state/profile.sealed" ] && [ -s "$T/run/profile.json" ] && ! out_has 'Deregistered' &&
                ok "factory-reset --deregister, a TPM that does not answer: refused, exit 1, nothing removed" ||
                not_ok "factory-reset --deregister, a TPM that does not answer"
fi

# ---- factory-reset without --deregister: no TPM asked, everything removed ----
# (a hang deadline: the TPM's would be 20 s)
if run 0 15 --config "$T/silent.conf" factory-reset --yes; then
        [ ! -e "$T/state/profile.sealed" ] && [ ! -e "$T/run/profile.json" ] && out_has '^Removed the keys of user ' &&
                ok "factory-reset, a TPM that does not answer: not asked, everything removed" ||
                not_ok "factory-reset, a TPM that does not answer: not removed"
fi

# ---- check as an unprivileged user ----
# The configuration and the Kpm are U's; the state directory and the TPM's node root's alone.
mkdir -m 0700 "$T/u" "$T/rootstate"
cp "$T/kpm.hex" "$T/u/kpm.hex"
: > "$T/tpm-node"
chmod 0600 "$T/tpm-node"
sealed "$T/rootstate"
conf "$T/u/agent.conf" "device:$T/tpm-node" "$T/rootstate" "$T/u/kpm.hex"
chown -R "$U:" "$T/u"
ONLY=--dont-run=config-files,credentials,clock,state-dir,runtime-dir,preflight,leds,agent,profile
unpriv() { # WANT ARGS...
        lib_want=$1
        shift
        timeout 60 setpriv --reuid="$U" --regid="$U" --init-groups "$CTL" --config "$T/u/agent.conf" check --no-network \
                --agent-user "$U" "$ONLY" "$@" > "$T/out" 2> "$T/err"
        RC=$?
        [ $RC -eq "$lib_want" ] || { not_ok "check as $U $*: exit $RC, expected $lib_want"; return 1; }
}
if unpriv 0; then
        out_has '^WARN  keys: not checked \(needs root\)$' &&
        out_has "^WARN  TPM: device:$T/tpm-node not checked \(needs root\)$" &&
        out_has '^WARN  sealed profile: not checked \(needs root\)$' &&
        [ "$(grep -c '^      fix: run mscectl check as root$' "$T/out")" = 3 ] && ! out_has '^FAIL' &&
                ok "check as an unprivileged user: keys, TPM and sealed profile not checked (needs root): WARN, exit 0" ||
                not_ok "check as an unprivileged user: findings"
fi
unpriv 1 --warnings-as-errors && { out_has '^WARN  sealed profile: not checked' && ! out_has '^FAIL' &&
        ok "check as an unprivileged user --warnings-as-errors: exit 1" || not_ok "check --warnings-as-errors: findings"; }

tap_done

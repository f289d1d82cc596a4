#!/bin/bash
# SPDX-License-Identifier: MIT
# The gateway side for operators (issue 15) against the real msce-mef on loopback (TAP output),
# as root:
#   - everything local is checked before anything is sent: for a [consumer] user that is root,
#     missing or the agent's own user, a state or runtime directory that is a file, not
#     writable or writable by others, and [seal] backend = tpm2 without the TPM device,
#     --check-config exits 78 and msce-agent --once exits 78 without one enrolment reaching the
#     MEF (msce-mef enrolments --json counted before and after);
#   - the MEF's refusals say what they mean: a node ID not registered with the credential, a
#     revoked node (m2m:dbg hints), a wrong base path is a configuration error (78), not
#     "rejected";
#   - the Kpm from a systemd credential ($CREDENTIALS_DIRECTORY/msce.kpm, psk_credential).
# Usage: tests/integration/operator.sh BUILDDIR. Users of this run's own (msce-t<PID>-opscse and
# msce-t<PID>-opsagent). Skipped (TAP) without root, keyctl, jq or setpriv.
set -u

[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
AGENT=$B/msce-agent
MEF=$B/msce-mef
CTL=$B/ctl/mscectl
. "$(dirname "$0")/lib.sh"
need_exec "$AGENT" "$MEF" "$CTL"
need_root "msce-agent --once files keys in another user's keyring"
need_cmds keyctl jq setpriv
own_session "$@"
CSE_USER=$(test_user opscse) || skip_all "cannot create a test user"
test_user_cleanup $CSE_USER
AGENT_USER=$(test_user opsagent) || skip_all "cannot create a test user"
test_user_cleanup $AGENT_USER
CSE_UID=$(id -u $CSE_USER)

tmpdir msce-test-ops
chmod 0755 "$T"

umask 077
mef_conf
mefctl init || bail "msce-mef init failed"
CSE_BASE=https://in.example.net:8443/~/in-cse/in-name
for i in 1 2; do
        mefctl node add node-$i --cse-id /mn-cse-$i --cse-base $CSE_BASE --psk-id kpm-$i \
                --generate-psk "$T/kpm-$i.hex" || bail "node add failed"
done
mefctl node revoke node-2 || bail "node revoke failed"

mef_start "$T/mef.conf.in" || bail "msce-mef did not start" "$T/mef.err"

enrolments() { "$MEF" --config "$T/mef.conf" enrolments --json | jq length; }

# conf NAME NODE KPMID [LINES...]: a configuration whose custody lines can be replaced by LINES
# ([consumer] and [seal] sections given in full).
conf() {
        local name=$1 node=$2 kpmid=$3
        shift 3
        {
                printf '[node]\nid = %s\n' "$node"
                printf '[mef]\nuri = https://127.0.0.1:%s/msce\npsk_identity = %s\npsk_file = %s\n' \
                        "$PORT" "$kpmid" "$T/$kpmid.hex"
                printf '[timing]\nconnect_timeout = 10s\nexchange_timeout = 30s\n'
                if [ $# -gt 0 ]; then
                        for l in "$@"; do printf '%s\n' "$l"; done
                else
                        agent_custody $CSE_USER "$T/$name/state" "$T/$name/run"
                fi
        } > "$T/$name.conf"
}

# refused NAME GREP WHAT: --check-config and --once both exit 78 naming GREP, and no enrolment
# reaches the MEF.
refused() {
        local name=$1 pattern=$2 what=$3 before after rc1 rc2
        before=$(enrolments)
        "$AGENT" --check-config --config "$T/$name.conf" > "$T/out" 2> "$T/err"
        rc1=$?
        if [ $rc1 -ne 78 ] || ! grep -q -- "$pattern" "$T/err"; then
                not_ok "$what: --check-config exit $rc1, expected 78 naming '$pattern'"
                return
        fi
        "$AGENT" --once --config "$T/$name.conf" > "$T/out" 2> "$T/err"
        rc2=$?
        after=$(enrolments)
        if [ $rc2 -ne 78 ] || ! grep -q -- "$pattern" "$T/err"; then
                not_ok "$what: --once exit $rc2, expected 78 naming '$pattern'"
        elif [ "$before" != "$after" ]; then
                not_ok "$what: --once exit 78, but $((after - before)) enrolment(s) reached the MEF"
        else
                ok "$what: --check-config and --once exit 78 ($(head -n1 "$T/err" | cut -c1-120)), no enrolment at the MEF"
        fi
}

custody_of() { # NAME USER: custody lines with another [consumer] user
        agent_custody "$2" \
                "$T/$1/state" "$T/$1/run"
}

# ---- 1. everything local is checked before anything is sent ----
conf root node-1 kpm-1 "$(custody_of root root)"
refused root "\[consumer\] user: 'root' is root" "[consumer] user = root"
conf nouser node-1 kpm-1 "$(custody_of nouser msce-test-ops-no-such-user)"
refused nouser "\[consumer\] user: no such user 'msce-test-ops-no-such-user'" "[consumer] user that does not exist"

mkdir -p "$T/statefile"
: > "$T/statefile/state"
conf statefile node-1 kpm-1 "$(custody_of statefile $CSE_USER)"
refused statefile "\[seal\] state_dir: .*is not a directory" "state_dir is a file"

mkdir -p "$T/runfile"
: > "$T/runfile/run"
conf runfile node-1 kpm-1 "$(custody_of runfile $CSE_USER)"
refused runfile "\[seal\] runtime_dir: .*is not a directory" "runtime_dir is a file"

mkdir -p "$T/openstate/state"
chmod 0777 "$T/openstate/state"
conf openstate node-1 kpm-1 "$(custody_of openstate $CSE_USER)"
refused openstate "\[seal\] state_dir: .*writable by group or others" "state_dir writable by others"

mkdir -p "$T/cseowned/state"
chown $CSE_USER "$T/cseowned/state"
conf cseowned node-1 kpm-1 "$(custody_of cseowned $CSE_USER)"
refused cseowned "\[seal\] state_dir: .*belongs to uid $CSE_UID" "state_dir owned by the CSE's user"

conf notpm node-1 kpm-1 "[consumer]
user = $CSE_USER
[seal]
backend = tpm2
tcti = device:$T/no-such-tpm
state_dir = $T/notpm/state
runtime_dir = $T/notpm/run"
# a build without TPM support refuses backend = tpm2 as such, before any device is looked at
if grep -q '^#define HAVE_TPM2 1$' "$B/msce-config.h"; then
        no_tpm="the TPM $T/no-such-tpm is missing" no_answer="no TPM answers at swtpm:host=127.0.0.1,port=1"
        once_err="not enrolling: .*backend = tpm2, but $no_answer"
else
        no_tpm="this build has no TPM support" no_answer=$no_tpm once_err="backend = tpm2, but $no_tpm"
fi
refused notpm "backend = tpm2, but $no_tpm" "backend = tpm2 without the TPM device"

# A TPM behind a socket TCTI that does not answer (port 1 is closed): found out before the
# enrolment, as --once must seal what it gets.
conf swtpm node-1 kpm-1 "[consumer]
user = $CSE_USER
[seal]
backend = tpm2
tcti = swtpm:host=127.0.0.1,port=1
state_dir = $T/swtpm/state
runtime_dir = $T/swtpm/run"
before=$(enrolments)
"$AGENT" --once --config "$T/swtpm.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 78 ] && grep -q "$once_err" "$T/err" &&
        [ "$(enrolments)" = "$before" ] && ok "backend = tpm2, no TPM answering a socket TCTI: --once exits 78, no enrolment" ||
        not_ok "tpm2 swtpm not answering: exit $rc, $(($(enrolments) - before)) enrolment(s)"

# The same for the daemon: the worker probes the TPM before the enrolment; the daemon stops in
# configuration-error (78) with no enrolment at the MEF.
before=$(enrolments)
"$AGENT" --config "$T/swtpm.conf" > "$T/out" 2> "$T/err" &
wait $!
rc=$?
st=$(jq -r '.state + " " + (.last_error // "")' "$T/swtpm/run/state.json" 2> /dev/null)
[ $rc -eq 78 ] && [ "$(enrolments)" = "$before" ] && case $st in
        "configuration-error "*"$no_answer"*) true ;; *) false ;; esac &&
        ok "daemon, backend = tpm2, no TPM answering: exit 78, state.json configuration-error, no enrolment" ||
        not_ok "daemon tpm2 swtpm not answering: exit $rc, state '$st', $(($(enrolments) - before)) enrolment(s)"

# The agent's own user as the CSE's: --check-config as that user (it reads its own copy of the Kpm).
mkdir -m 0700 "$T/own" && cp "$T/kpm-1.hex" "$T/own/kpm.hex" && chown -R $AGENT_USER "$T/own"
conf own node-1 kpm-1 "$(custody_of own $AGENT_USER)"
sed -i "s|^psk_file = .*|psk_file = $T/own/kpm.hex|" "$T/own.conf"
chmod 0644 "$T/own.conf"
setpriv --reuid=$AGENT_USER --regid="$(id -g $AGENT_USER)" --clear-groups "$AGENT" --check-config \
        --config "$T/own.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 78 ] && grep -q "\[consumer\] user: '$AGENT_USER' is the agent's own user" "$T/err" &&
        ok "[consumer] user = the agent's own user: --check-config exits 78" ||
        not_ok "[consumer] user = the agent's own user: exit $rc"

# A full state directory: no enrolment is made whose profile could not be written (75).
mkdir -p "$T/full/state"
conf full node-1 kpm-1
before=$(enrolments)
unshare -m --propagation private sh -c 'mount -t tmpfs -o size=16k,mode=0700 tmpfs "$1" &&
        dd if=/dev/zero of="$1/filler" bs=1k count=64 2> /dev/null; "$2" --once --config "$3"' sh \
        "$T/full/state" "$AGENT" "$T/full.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 75 ] && grep -q "not enrolling: no space left in $T/full/state" "$T/err" && [ "$(enrolments)" = "$before" ] &&
        ok "state directory full: --once exits 75 before enrolling, no enrolment at the MEF" ||
        not_ok "state directory full: exit $rc, $(($(enrolments) - before)) enrolment(s)"

# --syntax-only takes a configuration for another machine.
"$AGENT" --check-config --syntax-only --config "$T/nouser.conf" > "$T/out" 2> "$T/err" &&
        ok "--check-config --syntax-only does not look up the user" || not_ok "--syntax-only: exit $?"

# A good configuration still enrols (once).
conf good node-1 kpm-1
before=$(enrolments)
"$AGENT" --once --config "$T/good.conf" > "$T/out" 2> "$T/err"
rc=$?
after=$(enrolments)
[ $rc -eq 0 ] && [ $((after - before)) -eq 1 ] && ok "a good configuration: --once enrols, one enrolment at the MEF" ||
        not_ok "good: exit $rc, $((after - before)) enrolments"

# ---- 4. truthful MEF answers ----
conf unregistered node-9 kpm-1
"$AGENT" --once --config "$T/unregistered.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 77 ] && grep -q "node node-9 is not registered at this MEF with this credential (check \[node\] id and psk_identity)" "$T/err" &&
        grep -q "RSC 4103" "$T/err" && ok "unregistered node ID: exit 77, 'node node-9 is not registered at this MEF'" ||
        not_ok "unregistered: exit $rc"

conf revoked node-2 kpm-2
"$AGENT" --once --config "$T/revoked.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 77 ] && grep -q "node node-2 is revoked at this MEF" "$T/err" && grep -q "RSC 4103" "$T/err" &&
        ok "revoked node: exit 77, 'node node-2 is revoked at this MEF'" || not_ok "revoked: exit $rc"

conf basepath node-1 kpm-1
sed -i "s|/msce$|/wrong|" "$T/basepath.conf"
"$AGENT" --once --config "$T/basepath.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 78 ] && grep -q "(configuration)" "$T/err" && grep -q "\[mef\] uri: .*has no enrolment resource" "$T/err" &&
        ok "wrong base path: exit 78 (configuration), not rejected" || not_ok "basepath: exit $rc"

# ---- 3. the Kpm through systemd credentials ----
CRED=$T/credentials
mkdir -m 0700 "$CRED"
cp "$T/kpm-1.hex" "$CRED/msce.kpm"
chmod 0400 "$CRED/msce.kpm"
# A wrong Kpm in psk_file: the credential comes first.
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/wrong.hex"
chmod 0600 "$T/wrong.hex"
conf cred node-1 kpm-1
sed -i "s|^psk_file = .*|psk_file = $T/wrong.hex|" "$T/cred.conf"
CREDENTIALS_DIRECTORY=$CRED "$AGENT" --once --config "$T/cred.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 0 ] && ok "\$CREDENTIALS_DIRECTORY/msce.kpm comes before psk_file: enrolled" || not_ok "credential first: exit $rc"
# Without psk_file at all.
conf credonly node-1 kpm-1
sed -i "/^psk_file = /d" "$T/credonly.conf"
CREDENTIALS_DIRECTORY=$CRED "$AGENT" --check-config --config "$T/credonly.conf" > "$T/out" 2> "$T/err" &&
        grep -qx "psk_credential = msce.kpm" "$T/out" && grep -qx "psk_file =" "$T/out" &&
        ok "--check-config with the Kpm only as a credential" || not_ok "credential only: --check-config"
# The blank fallback of msce-agent.service (SetCredential=msce.kpm:\n): psk_file then, or 78.
printf '\n' > "$T/blank"
mkdir -m 0700 "$T/blankcred" && cp "$T/blank" "$T/blankcred/msce.kpm" && chmod 0400 "$T/blankcred/msce.kpm"
conf blankcred node-1 kpm-1
CREDENTIALS_DIRECTORY=$T/blankcred "$AGENT" --once --config "$T/blankcred.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 0 ] && ok "a blank credential (the unit's fallback): psk_file is used" || not_ok "blank credential: exit $rc"
before=$(enrolments)
CREDENTIALS_DIRECTORY=$T/blankcred "$AGENT" --once --config "$T/credonly.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 78 ] && grep -q "\[mef\] psk_file: required (mode = psk) when systemd passes no credential msce.kpm" "$T/err" &&
        [ "$(enrolments)" = "$before" ] &&
        ok "no credential and no psk_file: exit 78, nothing sent" || not_ok "no credential, no psk_file: exit $rc"
# A credential that does not hold a Kpm: 78 naming psk_credential.
mkdir -m 0700 "$T/badcred" && echo "not hex" > "$T/badcred/msce.kpm" && chmod 0400 "$T/badcred/msce.kpm"
CREDENTIALS_DIRECTORY=$T/badcred "$AGENT" --check-config --config "$T/credonly.conf" > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 78 ] && grep -q "\[mef\] psk_credential: $T/badcred/msce.kpm does not hold the Kpm as hex" "$T/err" &&
        ok "a credential without a Kpm: --check-config exits 78 naming psk_credential" || not_ok "bad credential: exit $rc"

# ---- 2. mscectl on par with aziotctl ----
RT=$T/rt
mkdir -m 0755 "$RT"
fake_agent
# state STATE EXP: state.json of the fake agent, profile expiring at EXP
state() {
        printf '{"state":"%s","status":"x","since":"20261127T203000","last_error":"why","next_attempt":null,"backend":"host","keID":"00112233445566778899aabbccddeeff@mef","exp":"%s","pid":%s}\n' \
                "$1" "$2" "$FAKE_PID" > "$RT/state.json"
        chmod 0644 "$RT/state.json"
}
FUTURE=20991127T203000
PAST=20201127T203000
for c in "ready $FUTURE 0 READY" "backoff $FUTURE 6 BACKOFF" "rejected $FUTURE 7 REJECTED" "revoked $FUTURE 8 REVOKED" \
         "incompatible $FUTURE 9 INCOMPATIBLE" "ready $PAST 10 EXPIRED" "backoff $PAST 10 EXPIRED" \
         "configuration-error $FUTURE 11 CONFIGURATION ERROR" "enrol $FUTURE 5 ENROLLING"; do
        set -- $c
        st=$1 exp=$2 code=$3
        shift 3
        state "$st" "$exp"
        ctl_run "$code" --runtime-dir "$RT" status && { out_has "^msce-agent: $*\$" &&
                ok "status: state $st, expiry $exp: '$*', exit $code" || not_ok "status $st: output"; }
done
state backoff $PAST
ctl_run 10 --runtime-dir "$RT" status --json && { jq -e '.health == "EXPIRED" and .exit == 10' "$T/out" > /dev/null &&
        ok "status --json: health EXPIRED, exit 10" || not_ok "status --json health"; }

# As any user, with a configuration whose Kpm that user may not read (root's 0600), and one that
# does not load at all: status reads the runtime directory.
state ready $FUTURE
printf '[node]\nid = node-1\n[mef]\nuri = https://127.0.0.1/msce\npsk_identity = kpm-1\npsk_file = %s\n[seal]\nruntime_dir = %s\n' \
        "$T/kpm-1.hex" "$RT" > "$T/user.conf"
chmod 0644 "$T/user.conf"
as_user() { setpriv --reuid=$CSE_USER --regid="$(id -g $CSE_USER)" --clear-groups "$@"; }
as_user "$CTL" --config "$T/user.conf" status > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 0 ] && out_has '^msce-agent: READY$' && ok "status as an unprivileged user, Kpm unreadable to it: READY, exit 0" ||
        not_ok "status as a user: exit $rc"
printf '[node]\nid = node-1\n[mef]\nuri = ftp://x\n' > "$T/broken.conf"
chmod 0644 "$T/broken.conf"
as_user "$CTL" --config "$T/broken.conf" --runtime-dir "$RT" status > "$T/out" 2> "$T/err"
rc=$?
[ $rc -eq 0 ] && out_has '^msce-agent: READY$' && ok "status with a configuration that does not load and --runtime-dir: exit 0" ||
        not_ok "status broken configuration: exit $rc"

# profile --env refuses an expired profile.
printf '{"cseID":"/mn-cse-1","cseBase":"https://in.example.net/~/in-cse","keID":"k@mef","exp":"%s","targets":[],"poll":60}\n' \
        $PAST > "$RT/profile.json"
ctl_run 10 --runtime-dir "$RT" profile --env && { [ ! -s "$T/out" ] && grep -q "expired" "$T/err" &&
        ok "profile --env: an expired profile is refused, exit 10, nothing exported" || not_ok "profile --env expired: output"; }

# check: JSON findings, the list, fails on an expired profile, --warnings-as-errors, --dont-run.
ctl_run 1 --config "$T/good.conf" --runtime-dir "$RT" check --no-network --agent-user root --output json && {
        jq -e '(.checks | length > 5) and all(.checks[]; (.id | type == "string") and (.result | IN("ok", "warning", "failed"))
                and (.message | type == "string") and (if .result == "ok" then .fix == null else true end))
                and any(.checks[]; .id == "profile" and .result == "failed" and (.message | test("expired")) and (.fix | type == "string"))
                and .passed == false' "$T/out" > /dev/null &&
        ok "check --output json: id, result, message, fix each; an expired profile.json fails (exit 1)" ||
        not_ok "check --output json: $(head -c 2000 "$T/out")"; }
ctl_run 0 check-list && { out_has '^preflight ' && out_has '^profile ' && out_has '^mef ' &&
        ok "check-list: the checks by id" || not_ok "check-list: output"; }
ctl_run 0 check-list --output json && { jq -e 'map(.id) | index("profile") != null' "$T/out" > /dev/null &&
        ok "check-list --output json" || not_ok "check-list json"; }
printf '{"cseID":"/mn-cse-1","cseBase":"https://in.example.net/~/in-cse","keID":"k@mef","exp":"%s","targets":[],"poll":60}\n' \
        $FUTURE > "$RT/profile.json"
# what remains after --dont-run of the failing and warning checks of this machine
ctl_run 0 --config "$T/good.conf" --runtime-dir "$RT" check --no-network --agent-user root --output json \
        --dont-run clock,consumer,sealed-profile,tpm,config-files,credentials,state-dir,runtime-dir,agent,leds && {
        jq -e '(.checks | map(.id) | index("clock") == null) and .summary.failed == 0' "$T/out" > /dev/null &&
                ok "check --dont-run skips the checks named" || not_ok "check --dont-run: $(cat "$T/out")"; }
state backoff $FUTURE # the agent finding: WARN
ctl_run 0 --config "$T/good.conf" --runtime-dir "$RT" check --no-network --agent-user root \
        --dont-run clock,consumer,tpm,config-files,credentials,state-dir,runtime-dir,leds && out_has '^WARN +agent: ' &&
        ! out_has '^FAIL' && ctl_run 1 --config "$T/good.conf" --runtime-dir "$RT" check --no-network --agent-user root \
        --warnings-as-errors --dont-run clock,consumer,tpm,config-files,credentials,state-dir,runtime-dir,leds &&
        ok "check --warnings-as-errors: the same findings fail on a warning" || not_ok "check --warnings-as-errors"
ctl_run 2 check --dont-run nosuchcheck && ok "check --dont-run of an unknown id: usage error"
ctl_run 2 check --dont-run clock,config && { grep -q "'config' always runs" "$T/err" &&
        ctl_run 2 check --dont-run agent-user && ok "check --dont-run of config or agent-user (which always run): usage error" ||
        not_ok "check --dont-run config: $(cat "$T/err")"; }

# logs: the journalctl command line.
ctl_run 0 logs --dry-run -n 50 --since today && {
        [ "$(cat "$T/out")" = "journalctl --unit=msce-agent.service --catalog --no-pager --lines 50 --since today" ] &&
        ok "logs: journalctl -u msce-agent.service with the catalog's explanations" || not_ok "logs --dry-run: $(cat "$T/out")"; }

# setup: the Kpm and a drop-in with the right owners and modes; refused like --check-config.
SETUP=$T/setup
mkdir -p "$SETUP"
: > "$SETUP/agent.conf"
chmod 0644 "$SETUP/agent.conf" "$T/kpm-1.hex"   # any mode on the way in
setup_args() {
        printf '%s\n' --config "$SETUP/agent.conf" setup --node-id node-1 --mef-uri "https://127.0.0.1:$PORT/msce" \
                --psk-identity kpm-1 --kpm-file "$T/kpm-1.hex" --agent-user $AGENT_USER
}
mapfile -t ARGS < <(setup_args)
# the state and runtime directories the installed configuration names
printf '[seal]\nbackend = host\nstate_dir = %s\nruntime_dir = %s\n' "$SETUP/state" "$SETUP/run" > "$SETUP/agent.conf"
ctl_run 11 "${ARGS[@]}" --user root && {
        [ ! -e "$SETUP/agent.conf.d" ] && [ ! -e "$SETUP/msce.kpm" ] && grep -q "'root' is root" "$T/err" &&
        ok "setup --user root: refused as --check-config would, nothing left behind" || not_ok "setup root: files left"; }
if ctl_run 0 "${ARGS[@]}" --user $CSE_USER; then
        cp "$T/out" "$T/ctl.out"
        if [ "$(stat -c '%U %a' "$SETUP/msce.kpm")" = "$AGENT_USER 400" ] &&
           [ "$(stat -c '%U %a' "$SETUP/agent.conf.d/50-setup.conf")" = "root 644" ] &&
           "$AGENT" --check-config --config "$SETUP/agent.conf" > "$T/out" 2> "$T/err" &&
           grep -qx "id = node-1" "$T/out" && grep -qx "psk_file = $SETUP/msce.kpm" "$T/out" &&
           grep -qx "user = $CSE_USER" "$T/out"; then
                ok "setup: msce.kpm 0400 for the agent's user, the drop-in 0644 root; --check-config accepts it"
        else
                not_ok "setup: owners, modes or configuration"
        fi
        # this test's umask is 077: the drop-in directory setup made must still be 0755
        [ "$(stat -c '%a' "$SETUP/agent.conf.d")" = 755 ] &&
                ok "setup: agent.conf.d 0755 whatever the umask (the agent lists it as its user)" ||
                not_ok "setup: agent.conf.d has mode $(stat -c '%a' "$SETUP/agent.conf.d")"
        # a running agent keeps its configuration: what it prints must restart it, which
        # "systemctl enable --now" does not
        if grep -q 'systemctl restart msce-agent' "$T/ctl.out" && ! grep -q 'enable --now' "$T/ctl.out"; then
                ok "setup: tells to restart the agent, which a running one needs to take the new setup"
        else
                not_ok "setup: the next step printed: $(cat "$T/ctl.out")"
        fi
fi
echo 0123 > "$T/short.hex"
ctl_run 11 "${ARGS[@]}" --kpm-file "$T/short.hex" && { grep -q "does not hold a 16..64 byte Kpm" "$T/err" &&
        cmp -s "$SETUP/msce.kpm" <(tr -d '\n' < "$T/kpm-1.hex"; echo) &&
        ok "setup with a short Kpm: refused, the previous setup stays" || not_ok "setup short Kpm"; }
# an identity one character too long for its line ("psk_identity = " and 2033 fill the 2048 a
# line may hold): refused naming the option before anything is written, the previous setup stays
LONG=$(printf '%2034s' '' | tr ' ' x)
ctl_run 11 "${ARGS[@]}" --psk-identity "$LONG" && {
        grep -q -- "--psk-identity: not a value for the configuration (.*at most 2033 characters)" "$T/err" &&
        cmp -s "$SETUP/msce.kpm" <(tr -d '\n' < "$T/kpm-1.hex"; echo) && grep -qx "psk_identity = kpm-1" "$SETUP/agent.conf.d/50-setup.conf" &&
        ok "setup with a value too long for its line: refused naming the option, the previous setup stays" ||
        not_ok "setup long value: $(cat "$T/err")"; }
# a later drop-in that sets a key of the setup's: the agent would not use the setup; refused,
# the previous setup stays
cp "$SETUP/agent.conf.d/50-setup.conf" "$T/setup-before"
printf '[mef]\npsk_identity = someone-else\n' > "$SETUP/agent.conf.d/60-local.conf"
ctl_run 11 "${ARGS[@]}" --psk-identity kpm-1b && {
        grep -q "the agent would not use it: \[mef\] psk_identity would be someone-else" "$T/err" &&
        cmp -s "$SETUP/agent.conf.d/50-setup.conf" "$T/setup-before" &&
        ok "setup overridden by a later drop-in: refused, naming the key, the previous setup stays" ||
        not_ok "setup overridden: $(cat "$T/err")"; }
# the MEF's URI too, compared in its canonical form: another MEF refused, the same one written
# otherwise (upper case, a trailing slash) taken
printf '[mef]\nuri = https://127.0.0.2:%s/msce\n' "$PORT" > "$SETUP/agent.conf.d/60-local.conf"
ctl_run 11 "${ARGS[@]}" --user $CSE_USER && {
        grep -q "\[mef\] uri would be https://127.0.0.2:$PORT/msce" "$T/err" &&
        cmp -s "$SETUP/agent.conf.d/50-setup.conf" "$T/setup-before" &&
        ok "setup whose MEF URI a later drop-in overrides: refused, naming the key, the previous setup stays" ||
        not_ok "setup overridden URI: $(cat "$T/err")"; }
printf '[mef]\nuri = HTTPS://127.0.0.1:%s/msce/\n' "$PORT" > "$SETUP/agent.conf.d/60-local.conf"
ctl_run 0 "${ARGS[@]}" --user $CSE_USER && ok "setup with a drop-in naming the same MEF URI otherwise written: taken"
rm "$SETUP/agent.conf.d/60-local.conf"
# a drop-in msce-agent --check-config refuses for its size (-EFBIG, past the 1 MiB a file may
# have): refused as any other refusal, exit 11 (not 1), the previous setup stays
cp "$SETUP/agent.conf.d/50-setup.conf" "$T/setup-before"
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' '#' > "$SETUP/agent.conf.d/60-large.conf"
ctl_run 11 "${ARGS[@]}" --user $CSE_USER --psk-identity kpm-1c && {
        grep -q "refused, as msce-agent --check-config would: .*60-large.conf.*too large" "$T/err" &&
        cmp -s "$SETUP/agent.conf.d/50-setup.conf" "$T/setup-before" &&
        ok "setup refused for a drop-in too large: exit 11, the previous setup stays" || not_ok "setup large drop-in: $(cat "$T/err")"; }
rm "$SETUP/agent.conf.d/60-large.conf"
# a 64-byte Kpm as upper-case hex with CR LF (130 bytes) is read whole and written normalised
KPM64=$(printf '%0128X' 0 | tr 0 A)
printf '%s\r\n' "$KPM64" > "$T/kpm-64.hex"
ctl_run 0 "${ARGS[@]}" --user $CSE_USER --kpm-file "$T/kpm-64.hex" && {
        cmp -s "$SETUP/msce.kpm" <(echo "$KPM64" | tr A a) &&
        ok "setup with a 64-byte Kpm in 130 bytes (CR LF): taken, written as lower-case hex" ||
        not_ok "setup 64-byte Kpm: $(head -c 200 "$SETUP/msce.kpm")"; }
# a Kpm file past the 130 bytes setup and the agent read (a newline after the key's CR LF, 131
# bytes; more of them, which the hex parser would strip) and an empty one are refused as
# msce-agent --check-config refuses them (its exit 78): exit 11, the previous setup stays
printf '%s\r\n\n' "$KPM64" > "$T/kpm-131.hex"
printf '%s\r\n\n\n' "$KPM64" > "$T/kpm-long.hex"
: > "$T/kpm-empty.hex"
for f in 131:"does not hold a 16..64 byte Kpm" long:"does not hold a 16..64 byte Kpm" empty:"is empty"; do
        ctl_run 11 "${ARGS[@]}" --user $CSE_USER --kpm-file "$T/kpm-${f%%:*}.hex" && {
                grep -q "${f#*:}" "$T/err" && cmp -s "$SETUP/msce.kpm" <(echo "$KPM64" | tr A a) &&
                ok "setup with a Kpm file ${f%%:*}: refused with exit 11 (${f#*:}), the previous setup stays" ||
                not_ok "setup Kpm file ${f%%:*}: $(cat "$T/err")"; }
done
chmod 0600 "$T/kpm-1.hex"
# msce-agent reads a Kpm file as setup does: the same 130 bytes taken, 131 refused
conf kpmlen node-1 kpm-1
chmod 0600 "$T/kpm-64.hex" "$T/kpm-131.hex"
for f in 64:0 131:78; do
        sed -i "s|^psk_file = .*|psk_file = $T/kpm-${f%%:*}.hex|" "$T/kpmlen.conf"
        "$AGENT" --check-config --config "$T/kpmlen.conf" > "$T/out" 2> "$T/err"
        rc=$?
        [ $rc -eq "${f#*:}" ] && ok "msce-agent --check-config with the $(wc -c < "$T/kpm-${f%%:*}.hex")-byte Kpm file: exit $rc, as setup" ||
                not_ok "msce-agent --check-config with kpm-${f%%:*}.hex: exit $rc, expected ${f#*:}: $(cat "$T/err")"
done

kill $FAKE_PID 2> /dev/null; wait $FAKE_PID 2> /dev/null

tap_done

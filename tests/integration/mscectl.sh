#!/bin/bash
# SPDX-License-Identifier: MIT
# mscectl against a fake runtime directory and a real msce-mef on loopback (TAP output).
# Usage: tests/integration/mscectl.sh BUILDDIR
# Covers: status (ready, not running, no state, malformed, --json, /proc with hidepid, an expired
# profile no agent renews, a configuration that does not load: agent stopped, none, running, its
# reason said once), profile (JSON, --env read back by sh and by systemd's EnvironmentFile=
# parser, a kpsaID with a quote; none),
# reprovision (SIGUSR1 reaches a process named msce-agent, never another one), reload (while
# another operator's completes: waits for its own; --pid with a configuration that does not load), check (all OK
# against the MEF; wrong Kpm, MEF down, unresolvable MEF, no common TLS suite (openssl
# s_server), Kpm file 0644, a secret the agent's user cannot read, a drop-in directory it cannot
# list, a directory above the configuration it cannot enter), and as root after a real
# enrolment: the keys check reads the key as the CSE user, factory-reset (refused without --yes,
# removes keys, sealed profile, profile.json and the enrolling mark, --deregister with the MEF,
# also of a KeID the MEF has retired).
set -u

[ $# -eq 1 ] || { echo "usage: $0 BUILDDIR" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
CTL=$B/ctl/mscectl
AGENT=$B/msce-agent
MEF=$B/msce-mef
. "$(dirname "$0")/lib.sh"
need_exec "$CTL" "$AGENT" "$MEF"
need_cmds jq sleep

# As root, two users of this run's own (msce-t<PID>-ctl, msce-t<PID>-ctlagent): CSE_USER, and
# AGENT_USER_TEST that the daemon runs as, as msce-agent.service runs it as msce.
CSE_USER=
AGENT_USER_TEST=
ROOT=0
if [ "$(id -u)" = 0 ] && command -v keyctl > /dev/null 2>&1; then
        ROOT=1
        own_session "$@" # the agent --once links keyrings into it
        if CSE_USER=$(test_user ctl); then test_user_cleanup $CSE_USER; else ROOT=0; fi
        if AGENT_USER_TEST=$(test_user ctlagent); then test_user_cleanup $AGENT_USER_TEST; else ROOT=0; fi
        command -v setpriv > /dev/null 2>&1 || ROOT=0
fi

tmpdir test-mscectl
chmod 0755 "$T"
FAKE_PID=
DAEMON_PID=
at_exit 'stop_pid "$FAKE_PID"; stop_pid "$DAEMON_PID"'

umask 077

# ---- status, profile, reprovision against a fake runtime directory ----
RT=$T/run
mkdir -m 0755 "$RT"
fake_agent
PROFILE='{
  "cseID": "/mn-cse-1",
  "cseBase": "https://in.example.net:8443/~/in-cse/in-name",
  "keID": "00112233445566778899aabbccddeeff@mef.example.net",
  "exp": "20991127T203000",
  "targets": [{"id": "/in-cse", "kpsaID": "k1@mef.example.net"}, {"id": "/maf-1", "kpsaID": "it'"'"'s@mef"}],
  "poll": 3600
}'
printf '%s\n' "$PROFILE" > "$RT/profile.json"
state() { # STATE PID
        printf '{"state":"%s","since":"20261127T203000","last_error":null,"next_attempt":null,"backend":"host","keID":"00112233445566778899aabbccddeeff@mef.example.net","exp":"20991127T203000","pid":%s}\n' \
                "$1" "$2" > "$RT/state.json"
}

rm -f "$RT/state.json"
if ctl_run 4 --runtime-dir "$RT" status; then
        out_has '^msce-agent: NO STATE' && ok "status without state.json: exit 4" || not_ok "status no state: output"
fi

state ready $FAKE_PID
if ctl_run 0 --runtime-dir "$RT" status; then
        if out_has '^msce-agent: READY$' && out_has "Process: $FAKE_PID \(running\)" &&
           out_has 'State: since 2026-11-27 20:30:00 UTC' && out_has 'CSE-ID: /mn-cse-1$' &&
           out_has "Targets: /in-cse \(kpsaID k1@mef.example.net\)" && out_has "/maf-1 \(kpsaID it's@mef\)" &&
           out_has 'Expires: 2099-11-27 20:30:00 UTC \(in '; then
                ok "status: running and ready: exit 0, state and profile shown"
        else
                not_ok "status ready: output"
        fi
fi

if ctl_run 0 --runtime-dir "$RT" status --json; then
        if jq -e --argjson pid $FAKE_PID '.running == true and .state.pid == $pid and
                .profile.targets[1].kpsaID == "it'"'"'s@mef"' "$T/out" > /dev/null; then
                ok "status --json: state, profile and running"
        else
                not_ok "status --json: content"
        fi
fi

state enrolling $FAKE_PID
ctl_run 5 --runtime-dir "$RT" status && { out_has '^msce-agent: ENROLLING$' && ok "status: running, enrolling: exit 5" || not_ok "status enrolling: output"; }

# A pid that is not msce-agent (this shell) counts as not running.
state ready $$
if ctl_run 3 --runtime-dir "$RT" status; then
        out_has '^msce-agent: NOT RUNNING \(last state ready\)$' && out_has "Process: $$ \(gone\)" &&
                ok "status: pid of another program: not running, exit 3" || not_ok "status other pid: output"
fi
ctl_run 3 --runtime-dir "$RT" status --json && { jq -e '.running == false' "$T/out" > /dev/null &&
        ok "status --json: running false" || not_ok "status --json not running"; }

# An expired profile that no agent renews is EXPIRED, whether state.json names a stopped agent or
# there is none (msce-agent --once only). The old code said NOT RUNNING (3) and NO STATE (4).
printf '%s\n' "$PROFILE" | sed 's/"exp": "20991127T203000"/"exp": "20201127T203000"/' > "$RT/profile.json"
sed 's/"exp":"20991127T203000"/"exp":"20201127T203000"/' "$RT/state.json" > "$RT/state.json.new" &&
        mv "$RT/state.json.new" "$RT/state.json"
ctl_run 10 --runtime-dir "$RT" status && { out_has '^msce-agent: EXPIRED \(last state ready\)$' &&
        out_has 'Expires: EXPIRED 2020-11-27' && ok "status: expired profile, agent not running: EXPIRED, exit 10" ||
        not_ok "status expired, not running: output"; }
rm -f "$RT/state.json"
ctl_run 10 --runtime-dir "$RT" status && { out_has '^msce-agent: EXPIRED \(no .*state\.json' &&
        ok "status: expired profile.json, no state.json: EXPIRED, exit 10" || not_ok "status expired, no state: output"; }
printf '%s\n' "$PROFILE" > "$RT/profile.json"

# /proc mounted with hidepid=2 (in a mount namespace of its own): a user other than the agent's
# sees no /proc entry for it. A live agent is running, its name unread; a gone pid stays gone.
# The old code said NOT RUNNING for the live one.
hidden_status() { # WANT PID
        state ready "$2"
        chmod 0644 "$RT/state.json" "$RT/profile.json"
        unshare -m sh -c 'mount -n -t proc -o hidepid=2 proc /proc || exit 99
                exec setpriv --reuid="$2" --regid="$2" --clear-groups "$3" --runtime-dir "$4" status' \
                sh "$2" "$CSE_USER" "$CTL" "$RT" > "$T/out" 2> "$T/err"
        RC=$?
        [ $RC = 99 ] && return 2
        [ $RC = "$1" ] || { not_ok "status under hidepid, pid $2: exit $RC, expected $1: $(cat "$T/err")"; return 1; }
}
if [ $ROOT = 1 ] && command -v unshare > /dev/null; then
        if hidden_status 0 $FAKE_PID; then
                out_has '^msce-agent: READY$' && out_has "Process: $FAKE_PID \(running; its name hidden by /proc's hidepid\)" &&
                        ok "status under hidepid: the agent runs, its name hidden: exit 0" || not_ok "status hidepid: output"
        elif [ $? = 2 ]; then
                skip "status under hidepid: cannot mount /proc with hidepid in a namespace"
        fi
        sh -c 'exit 0' &
        GONE=$!
        wait $GONE
        hidden_status 3 $GONE && { out_has "Process: $GONE \(gone\)" &&
                ok "status under hidepid: a gone pid is not running: exit 3" || not_ok "status hidepid gone: output"; }
        # A process of the same user that is not dumpable (as msce-agent, prctl PR_SET_DUMPABLE 0)
        # is hidden too: mscectl reload, the unit's ExecReload= as user msce under
        # ProtectProc=invisible. The old code took it for gone (kill() succeeded: "not running").
        setpriv --reuid="$CSE_USER" --regid="$CSE_USER" --clear-groups /usr/bin/python3 -c '
import ctypes, time
ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
print("ready", flush=True)
time.sleep(600)' > "$T/nodump.out" 2>&1 &
        NODUMP=$!
        at_exit 'stop_pid "$NODUMP"'
        if ! wait_line 30 "$T/nodump.out" '^ready$' $NODUMP; then
                not_ok "a non-dumpable process of $CSE_USER: did not start: $(cat "$T/nodump.out")"
        elif hidden_status 0 $NODUMP; then
                out_has "Process: $NODUMP \(running; its name hidden by /proc's hidepid\)" &&
                        ok "status under hidepid: a non-dumpable agent of the same user runs: exit 0" ||
                        not_ok "status hidepid same user: output"
        fi
        stop_pid "$NODUMP"
else
        skip "status under hidepid: needs root and unshare"
fi

printf '{"state": 42}\n' > "$RT/state.json"
ctl_run 1 --runtime-dir "$RT" status && { grep -q 'state.json: "state" is not a string' "$T/err" &&
        ok "status: malformed state.json: exit 1 naming the problem" || not_ok "status malformed: message"; }

if ctl_run 0 --runtime-dir "$RT" profile; then
        if [ "$(jq -S . "$T/out")" = "$(printf '%s\n' "$PROFILE" | jq -S .)" ]; then
                ok "profile: the JSON of profile.json"
        else
                not_ok "profile: JSON differs"
        fi
fi

if ctl_run 0 --runtime-dir "$RT" profile --env; then
        # Read the lines back as sh and as EnvironmentFile= would, and compare with the JSON.
        got=$(sh -c '. "$1"; printf "%s|%s|%s|%s|%s|%s|%s" "$MSCE_CSE_ID" "$MSCE_CSE_BASE" "$MSCE_KEID" \
                "$MSCE_EXP" "$MSCE_POLL" "$MSCE_TARGET_IDS" "$MSCE_KPSA_IDS"' sh "$T/out")
        want=$(printf '%s\n' "$PROFILE" | jq -r '[.cseID, .cseBase, .keID, .exp, (.poll | tostring),
                ([.targets[].id] | join(" ")), ([.targets[].kpsaID] | join(" "))] | join("|")')
        if [ "$got" = "$want" ] && [ "$(wc -l < "$T/out")" -eq 7 ]; then
                ok "profile --env: 7 lines that sh reads back to the profile's values"
        else
                not_ok "profile --env: got '$got', want '$want'"
        fi
        # systemd's own parser of EnvironmentFile= (env-file.c), as the environment.d generator
        # runs it on a directory of ours; it prints the variables double-quoted, for sh. The
        # profile has no '$', which environment.d (not EnvironmentFile=) would expand.
        GEN=$(ls /usr/lib/systemd/user-environment-generators/*systemd-environment-d-generator 2> /dev/null | head -n1)
        if [ -n "$GEN" ]; then
                mkdir -p "$T/envd/environment.d"
                cp "$T/out" "$T/envd/environment.d/50-msce.conf"
                env -i XDG_CONFIG_HOME="$T/envd" XDG_CONFIG_DIRS="$T/envd/none" "$GEN" 2> /dev/null |
                        grep '^MSCE_' > "$T/envd/out"
                got=$(sh -c '. "$1"; printf "%s|%s|%s|%s|%s|%s|%s" "$MSCE_CSE_ID" "$MSCE_CSE_BASE" "$MSCE_KEID" \
                        "$MSCE_EXP" "$MSCE_POLL" "$MSCE_TARGET_IDS" "$MSCE_KPSA_IDS"' sh "$T/envd/out")
                [ "$got" = "$want" ] && ok "profile --env: systemd's EnvironmentFile= parser reads the same values" ||
                        not_ok "profile --env as systemd reads it: got '$got', want '$want'"
        else
                skip "profile --env as systemd reads it: no systemd-environment-d-generator"
        fi
fi

rm -f "$RT/profile.json"
ctl_run 4 --runtime-dir "$RT" profile && ok "profile without profile.json: exit 4"
ctl_run 4 --runtime-dir "$RT" profile --env && ok "profile --env without profile.json: exit 4"

# reprovision: SIGUSR1 to the agent named in state.json, never to another program.
sleep 600 &
OTHER=$!
state ready $OTHER
ctl_run 3 --runtime-dir "$RT" reprovision && { kill -0 $OTHER 2> /dev/null &&
        ok "reprovision: pid of another program: exit 3, not signalled" || not_ok "reprovision signalled another program"; }
kill $OTHER 2> /dev/null; wait $OTHER 2> /dev/null
state ready $FAKE_PID
exec 3>&2 2> /dev/null # bash reports the job killed by the signal: not an error here
if ctl_run 0 --runtime-dir "$RT" reprovision; then
        wait $FAKE_PID
        st=$?
        exec 2>&3
        FAKE_PID=
        [ $st -eq $((128 + $(kill -l USR1))) ] && ok "reprovision: msce-agent got SIGUSR1" ||
                not_ok "reprovision: fake agent ended with $st"
fi
exec 2>&3 3>&-
ctl_run 3 --runtime-dir "$RT" reprovision && ok "reprovision: agent gone: exit 3"
cp "$RT/state.json" "$T/state.saved"
echo '{"state":' > "$RT/state.json"
ctl_run 1 --runtime-dir "$RT" reprovision && { ! grep -q "not running" "$T/err" &&
        ok "reprovision with a state.json that does not parse: exit 1, not 'not running'" ||
        not_ok "reprovision, state.json broken: $(cat "$T/err")"; }
mv "$T/state.saved" "$RT/state.json"
ctl_run 2 --runtime-dir "$RT" frobnicate && ok "unknown command: exit 2"
ctl_run 2 --runtime-dir "$RT" status --bogus && ok "unknown option: exit 2"

# reload, two operators at once: A's reload completes between B's look at state.json and the
# agent taking B's SIGHUP (reload-race-agent.py). B waits for the reload begun after its look
# (refused: B's edit). The old code took A's for its own (reloads 4 -> 5) and said reloaded.
RACE_PID=
if [ -x /usr/bin/python3 ]; then
        /usr/bin/python3 "$(dirname "$0")/reload-race-agent.py" "$RT" > "$T/race.out" 2>&1 &
        RACE_PID=$!
        at_exit 'stop_pid "$RACE_PID"'
fi
if [ -z "$RACE_PID" ]; then
        skip "reload while another completes: no /usr/bin/python3"
elif ! wait_line 10 "$T/race.out" '^ready$' $RACE_PID; then
        not_ok "reload race: the stand-in agent did not start: $(cat "$T/race.out")"
elif ctl_run 1 --runtime-dir "$RT" reload --timeout 20; then
        grep -q "reload refused, previous configuration kept: .*operator B's edit" "$T/err" &&
                ok "reload while another completes: waits for the one begun after it looked (exit 1, B's refusal)" ||
                not_ok "reload race: not B's refusal: $(cat "$T/err")"
fi
stop_pid "$RACE_PID"

# mscectl as a user other than root drops what capabilities it is given, as the unit's
# AmbientCapabilities= give them to its ExecReload= (mscectl reload): a journalctl of the test's
# own, run by mscectl logs, shows what mscectl had left (ambient ones survive exec). The old code
# passed CAP_SETUID and CAP_SYS_ADMIN on.
if [ $ROOT = 1 ]; then
        mkdir -m 0755 "$T/capbin"
        printf '#!/bin/sh\ngrep "^Cap\\(Prm\\|Eff\\|Amb\\):" /proc/self/status\n' > "$T/capbin/journalctl"
        chmod 0755 "$T/capbin/journalctl"
        CAPS=-all,+setuid,+sys_admin
        if setpriv --reuid=$AGENT_USER_TEST --regid=$AGENT_USER_TEST --init-groups --inh-caps=$CAPS --ambient-caps=$CAPS \
                --bounding-set=$CAPS env PATH="$T/capbin:$PATH" "$CTL" --runtime-dir "$RT" logs -n 1 > "$T/caps.out" 2>&1 &&
                [ "$(grep -c '^Cap\(Prm\|Eff\|Amb\):' "$T/caps.out")" = 3 ]; then
                ! grep -v ':[[:space:]]*0*$' "$T/caps.out" | grep -q . &&
                        ok "mscectl as the agent's user with CAP_SETUID and CAP_SYS_ADMIN: none left (nor passed on)" ||
                        not_ok "mscectl kept capabilities: $(tr '\n' ' ' < "$T/caps.out")"
        else
                not_ok "mscectl logs with a journalctl of the test's own: $(cat "$T/caps.out")"
        fi
else
        skip "mscectl drops capabilities: needs root, keyctl and setpriv"
fi

# ---- check against a real msce-mef ----
# Every check below must leave the caller's session keyring as it was (compared further down).
[ $ROOT = 1 ] && keyctl show @s > "$T/session.before" 2>&1
mef_conf
mefctl init || bail "msce-mef init failed"
mefctl node add node-1 --cse-id /mn-cse-1 --cse-base https://in.example.net/~/in-cse/in-name --psk-id kpm-1 \
        --generate-psk "$T/kpm-1.hex" --target /in-cse || bail "node add failed"
mef_start "$T/mef.conf.in" || bail "msce-mef did not start" "$T/mef.err"

if [ $ROOT = 1 ]; then AGENT_USER=root; SERVICE_USER=$CSE_USER; else AGENT_USER=$(id -un); SERVICE_USER=$(id -un); fi
# conf NAME URI KPMFILE
conf() {
        cat > "$T/$1.conf" <<EOF
[node]
id = node-1
[mef]
uri = $2
psk_identity = kpm-1
psk_file = $3
$(agent_custody "$SERVICE_USER" "$T/state" "$RT")
[timing]
connect_timeout = 2s
exchange_timeout = 30s
EOF
}
conf good "https://127.0.0.1:$PORT/msce" "$T/kpm-1.hex"
if ctl_run 0 --config "$T/good.conf" check --agent-user $AGENT_USER; then
        if out_has '^OK    configuration: ' && out_has '^OK    MEF connection: 127\.0\.0\.1 port' &&
           out_has '^OK    MEF TLS: TLSv1\.[23] .* \(psk mode\)$' && out_has '^WARN  \[mef\] psk_file: .* hidden from msce-agent.service \(PrivateTmp=yes\)' &&
           out_has '^OK    \[seal\] backend: host' && ! out_has '^FAIL'; then
                ok "check: configuration, credential, MEF reachable, TLS handshake with the Kpm: exit 0"
        else
                not_ok "check good: findings"
        fi
fi

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/wrong.hex"
conf wrong "https://127.0.0.1:$PORT/msce" "$T/wrong.hex"
ctl_run 1 --config "$T/wrong.conf" check --agent-user $AGENT_USER && {
        out_has '^FAIL  MEF TLS: authentication failed \(psk mode\)$' && out_has '^      fix: psk_identity and psk_file' &&
                ok "check: wrong Kpm: FAIL with a fix, exit 1" || not_ok "check wrong Kpm: findings"; }
ctl_run 0 --config "$T/wrong.conf" check --no-network --agent-user $AGENT_USER && { ! out_has '^[A-Z]+ +MEF' &&
        ok "check --no-network: no MEF findings" || not_ok "check --no-network: output"; }

conf unresolvable "https://mef.msce-test.invalid/msce" "$T/kpm-1.hex"
ctl_run 1 --config "$T/unresolvable.conf" check --agent-user $AGENT_USER && {
        out_has '^FAIL  MEF name: mef\.msce-test\.invalid does not resolve' && ! out_has 'MEF connection' &&
                ok "check: unresolvable MEF name: FAIL, no connection attempted" || not_ok "check unresolvable: findings"; }

cp "$T/kpm-1.hex" "$T/open.hex"
chmod 0644 "$T/open.hex"
conf open "https://127.0.0.1:$PORT/msce" "$T/open.hex"
ctl_run 1 --config "$T/open.conf" check --agent-user $AGENT_USER && {
        out_has '^FAIL  configuration: .*psk_file: .*readable by group or others' &&
                ok "check: Kpm file 0644: configuration FAIL, exit 1" || not_ok "check 0644: findings"; }

# status with that configuration: msce-agent exits 78 as it loads its files, before it writes
# state.json, so its refusal is what the next start finds: CONFIGURATION ERROR, exit 11 with the
# reason. The old code said NOT RUNNING (3) for a stopped agent's state.json, NO STATE (4) without.
state stopping $$
ctl_run 3 --config "$T/good.conf" status && { ! out_has 'Config error' &&
        ok "status, agent stopped, configuration loads: NOT RUNNING, exit 3" || not_ok "status good conf: output"; }
if ctl_run 11 --config "$T/open.conf" status; then
        out_has '^msce-agent: CONFIGURATION ERROR \(last state stopping\)$' &&
                out_has 'Config error: .*psk_file: .*readable by group or others' && out_has '^ +msce-agent does not start with them$' &&
                ok "status, agent stopped, Kpm file 0644: CONFIGURATION ERROR with the reason, exit 11" ||
                not_ok "status 0644 stopped: output"
fi
ctl_run 11 --config "$T/open.conf" status --json && { jq -e '.health == "CONFIGURATION ERROR" and .exit == 11 and
        (.config_error | test("readable by group or others"))' "$T/out" > /dev/null &&
        ok "status --json: config_error with the reason" || not_ok "status --json config_error"; }
rm -f "$RT/state.json"
ctl_run 11 --config "$T/open.conf" status && { out_has '^msce-agent: CONFIGURATION ERROR \(no ' &&
        ok "status, no state.json, Kpm file 0644: CONFIGURATION ERROR, exit 11" || not_ok "status 0644 no state: output"; }
# A running agent keeps its state; the line says that a reload or restart would refuse the files.
fake_agent
state ready $FAKE_PID
ctl_run 0 --config "$T/open.conf" status && { out_has '^msce-agent: READY$' &&
        out_has 'Config error: .*readable by group or others' &&
        out_has '^ +the files as they are now: a reload or a restart refuses them$' &&
        ok "status, agent running, Kpm file 0644 now: READY, exit 0, the refusal said" || not_ok "status 0644 running: output"; }
# status with a configuration that does not parse (so /run/msce is read, whatever is there): its
# reason once, in Config error (the old code also said it on stderr, loading the files twice).
{ cat "$T/good.conf"; printf '[timing]\nbackoff_min = soon\n'; } > "$T/badtime.conf"
"$CTL" --config "$T/badtime.conf" status > "$T/out" 2> "$T/err"
out_has 'Config error: .*backoff_min' && [ "$(cat "$T/out" "$T/err" | grep -c 'backoff_min')" = 1 ] &&
        ok "status, configuration does not parse: the reason said once" ||
        not_ok "status badtime: $(cat "$T/out" "$T/err")"
# mscectl reload --pid (ExecReload=) with a configuration that does not load reads /run/msce: it
# says so and why, not the runtime_dir hint. The old code hinted at a changed runtime_dir.
ctl_run 1 --config "$T/badtime.conf" reload --pid $FAKE_PID && {
        grep -q 'not signalled (the configuration does not load (.*backoff_min.*), so /run/msce was read: give the agent.s runtime directory with --runtime-dir' "$T/err" &&
        kill -0 $FAKE_PID && ok "reload --pid, configuration does not load: not signalled, the reason and --runtime-dir said" ||
        not_ok "reload broken conf: $(cat "$T/err")"; }
stop_pid "$FAKE_PID"
FAKE_PID=

# Hardware findings (this machine may have neither a TPM nor GPIO at /dev/*9); a build without TPM
# support says that instead of looking for one.
if grep -q '^#define HAVE_TPM2 1$' "$B/msce-config.h"; then
        tpm_fail='^FAIL  TPM: none answers on device:/dev/tpmrm9'
        tpm_auto='^WARN  TPM: none answers on device:/dev/tpmrm9: the profile is sealed with the host key'
else
        tpm_fail='^FAIL  \[seal\] backend: tpm2, but this build has no TPM support'
        tpm_auto='^OK    \[seal\] backend: auto, but this build has no TPM support: the host key is used'
fi
{ cat "$T/good.conf"; printf '[leds]\nstatus = gpiochip9:3\nerror = bogus\n'; } |
        sed 's/^backend = host$/backend = tpm2\ntcti = device:\/dev\/tpmrm9/' > "$T/hw.conf"
if ctl_run 1 --config "$T/hw.conf" check --no-network --agent-user $AGENT_USER; then
        if out_has "$tpm_fail" && out_has '^FAIL  \[leds\] error: bogus: ' &&
           out_has '^      fix: write gpiochipN:OFFSET' && out_has '^FAIL  \[leds\] status: (/dev/gpiochip9: No such file|.*no LED support)'; then
                ok "check: backend tpm2 without a TPM, a missing GPIO chip and a bad LED spec: FAIL each"
        else
                not_ok "check hardware: findings"
        fi
fi
sed -i 's/^backend = tpm2$/backend = auto/' "$T/hw.conf"
ctl_run 1 --config "$T/hw.conf" check --no-network --agent-user $AGENT_USER && {
        out_has "$tpm_auto" &&
                ok "check: backend auto without a TPM: WARN, host key" || not_ok "check auto: findings"; }

# [seal] pcrs of a bank the TPM has not active (sha1 deallocated on a swtpm of this run's own): the
# agent's enrolment stops with a configuration error, so check FAILs; an active bank is OK.
SW=$T/swtpm-pcrs
swtpm_up() { [ -S "$SW/tpm" ] && [ -S "$SW/tpm.ctrl" ] && [ -s "$SW/pid" ]; }
if ! grep -q '^#define HAVE_TPM2 1$' "$B/msce-config.h"; then
        skip "check: pcrs of an inactive bank: built without TPM support"
elif ! command -v swtpm > /dev/null || ! command -v swtpm_ioctl > /dev/null || ! command -v tpm2_pcrallocate > /dev/null ||
     ! command -v tpm2_startup > /dev/null; then
        skip "check: pcrs of an inactive bank: swtpm, swtpm_ioctl or tpm2-tools not installed"
else
        mkdir -m 0700 "$SW"
        swtpm socket --tpm2 --server type=unixio,path="$SW/tpm" --ctrl type=unixio,path="$SW/tpm.ctrl" --tpmstate dir="$SW" \
                --flags not-need-init,startup-clear --daemon --pid file="$SW/pid" && wait_for 30 swtpm_up &&
                SWTPM_PID=$(cat "$SW/pid") || bail "swtpm did not start"
        at_exit 'stop_pid "$SWTPM_PID"'
        TCTI=swtpm:path=$SW/tpm
        tpm2_pcrallocate -T "$TCTI" sha1:none+sha256:all > /dev/null 2>&1 && swtpm_ioctl --unix "$SW/tpm.ctrl" -i &&
                tpm2_startup -T "$TCTI" -c || bail "swtpm: sha1 bank not deallocated"
        sed "s|^backend = host\$|backend = tpm2\ntcti = $TCTI\npcrs = sha1:7|" "$T/good.conf" > "$T/pcrs.conf"
        if ctl_run 1 --config "$T/pcrs.conf" check --no-network --agent-user $AGENT_USER; then
                out_has "^FAIL  \[seal\] pcrs = sha1:7: the TPM at $TCTI has not all of them active" &&
                        out_has '^      fix: set \[seal\] pcrs to PCRs of an active bank' &&
                        ok "check: [seal] pcrs of a bank the TPM has not active: FAIL" || not_ok "check inactive bank: findings"
        fi
        sed -i 's/^pcrs = sha1:7$/pcrs = sha256:7/' "$T/pcrs.conf"
        if ctl_run 0 --config "$T/pcrs.conf" check --no-network --agent-user $AGENT_USER; then
                out_has "^OK    TPM: answers on $TCTI, pcrs sha256:7\$" &&
                        ok "check: [seal] pcrs of an active bank: OK" || not_ok "check active bank: findings"
        fi
        # reset and not started: every command answers TPM_RC_INITIALIZE. Under auto the agent
        # does not enrol then (and does not seal with the host key): a FAIL, not "no TPM".
        swtpm_ioctl --unix "$SW/tpm.ctrl" -i || bail "swtpm_ioctl -i failed"
        sed -i 's/^backend = tpm2$/backend = auto/' "$T/pcrs.conf"
        if ctl_run 1 --config "$T/pcrs.conf" check --no-network --agent-user $AGENT_USER; then
                out_has "^FAIL  TPM: $TCTI fails: " && ! out_has 'host key' &&
                        ok "check: backend auto, a TPM that fails: FAIL, not the host key" || not_ok "check failing TPM: findings"
        fi
fi

if [ $ROOT = 1 ]; then
        # The agent's user (here: the CSE test user) cannot read a root-owned 0600 Kpm.
        ctl_run 1 --config "$T/good.conf" check --no-network --agent-user $CSE_USER && {
                out_has "^FAIL  \[mef\] psk_file: .* not readable by the agent's user $CSE_USER \(owner root" &&
                out_has "^      fix: chown $CSE_USER: $T/kpm-1.hex" &&
                        ok "check: secret not readable by the agent's user: FAIL with chown fix" ||
                        not_ok "check agent user: findings"; }
else
        skip "secret not readable by the agent's user: needs root"
fi

# The default configuration (/etc/msce/agent.conf) that does not load: status says why, once, as
# with --config (it said nothing, then twice: on stderr and in Config error). /etc is an overlay
# in a mount namespace of its own, so the machine's /etc is not touched.
if [ $ROOT = 1 ] && command -v unshare > /dev/null; then
        mkdir -p "$T/etc-ovl"
        unshare -m sh -c 'mount -n -t tmpfs tmpfs "$1" && mkdir "$1/u" "$1/w" &&
                mount -n -t overlay overlay -o "lowerdir=/etc,upperdir=$1/u,workdir=$1/w" /etc || exit 77
                rm -rf /etc/msce && mkdir /etc/msce && printf "[timing]\nbackoff_min = banana\n" > /etc/msce/agent.conf
                exec "$2" status' sh "$T/etc-ovl" "$CTL" > "$T/out" 2> "$T/err"
        RC=$?
        if [ $RC = 77 ]; then
                skip "the default configuration broken: no overlay mount in a namespace"
        else
                grep -q 'Config error: /etc/msce/agent.conf:2: \[timing\] backoff_min: ' "$T/out" &&
                        [ "$(cat "$T/out" "$T/err" | grep -c 'backoff_min')" = 1 ] &&
                        ok "status with the default configuration broken: says why, once" ||
                        not_ok "status with the default configuration broken: exit $RC, $(cat "$T/err")"
        fi
else
        skip "the default configuration broken: needs root and unshare"
fi

# ---- as root: keys, factory-reset ----
if [ $ROOT = 1 ]; then
        mkdir -m 0700 "$T/state"
        keyctl session - "$AGENT" --once --config "$T/good.conf" > "$T/agent.out" 2>&1 || { sed 's/^/# /' "$T/agent.out"; echo "Bail out! enrolment failed"; exit 1; }
        KEID=$(jq -r .keID "$RT/profile.json")
        if ctl_run 0 --config "$T/good.conf" check --no-network --agent-user root; then
                out_has "^OK    keys: 2 filed; $CSE_USER reads msce:ltk \(32 bytes\)$" &&
                out_has "^OK    sealed profile: KeID $KEID, expires .*host backend$" &&
                        ok "check after enrolment: the CSE user reads its key; the sealed profile opens" ||
                        not_ok "check keys: findings"
        fi
        # A key its user may not read (read and search taken from possessor and user, as a
        # possessed key stays readable while searchable), behind the agent's back: check reads
        # it as the CSE would and fails.
        keyctl session - sh -c 'r=$(keyctl get_persistent @s "$1") && r=$(keyctl search "$r" keyring msce) &&
                k=$(keyctl search "$r" user msce:ltk) && p=$(keyctl rdescribe "$k" | cut -d";" -f4) &&
                keyctl setperm "$k" $((0x$p & ~0x0a0a0000))' sh "$(id -u $CSE_USER)" ||
                not_ok "cannot take the read permission of msce:ltk"
        if ctl_run 1 --config "$T/good.conf" check --no-network --agent-user root; then
                out_has "^FAIL  keys: [0-9]+ filed, but $CSE_USER cannot read msce:ltk: Permission denied$" &&
                        ok "check: a key its user may not read: FAIL" || not_ok "check unreadable key: findings"
        fi
        # the fix it gives: the agent files the keys again
        keyctl session - "$AGENT" --once --config "$T/good.conf" > "$T/agent.out" 2>&1 &&
                ctl_run 0 --config "$T/good.conf" check --no-network --agent-user root &&
                out_has "^OK    keys: 2 filed; $CSE_USER reads msce:ltk \(32 bytes\)$" &&
                ok "check: after the agent ran again, the CSE user reads its key" ||
                not_ok "the agent run again did not give the CSE user its key back ($(tail -n 3 "$T/agent.out"))"
        # mscectl check must not leave the CSE's keyring linked into the caller's session (the
        # agent ran in sessions of its own).
        keyctl show @s > "$T/session.after" 2>&1
        cmp -s "$T/session.before" "$T/session.after" && ok "check: nothing linked into the caller's session keyring" ||
                not_ok "check changed the caller's session keyring"

        ctl_run 0 --config "$T/good.conf" profile && { jq -e --arg k "$KEID" '.keID == $k' "$T/out" > /dev/null &&
                ok "profile: written by the agent, read by mscectl" || not_ok "profile after enrolment"; }

        ctl_run 2 --config "$T/good.conf" factory-reset < /dev/null && {
                grep -q 'refusing without --yes' "$T/err" && [ -f "$RT/profile.json" ] &&
                        ok "factory-reset without --yes, no terminal: exit 2, nothing removed" ||
                        not_ok "factory-reset without --yes"; }

        [ -e "$RT/state.json" ] || not_ok "no state.json from the agent's run before factory-reset"
        # A previous [consumer] user with keys (as an agent started for it left them), which
        # keyring.owner names: AGENT_USER_TEST serves, its own keys planted in its keyring.
        PREV_UID=$(id -u "$AGENT_USER_TEST")
        prev_ring() { keyctl session - sh -c "keyctl search \$(keyctl get_persistent @s $PREV_UID) keyring msce" > /dev/null 2>&1; }
        keyctl session - sh -c "r=\$(keyctl newring msce \$(keyctl get_persistent @s $PREV_UID)) &&
                keyctl add user msce:ltk 0123456789abcdef0123456789abcdef \$r" > /dev/null
        echo "$PREV_UID" > "$T/state/keyring.owner"
        date +%s > "$T/state/enrolling" # as an agent stopped mid-enrolment leaves it
        prev_ring || not_ok "no msce keyring planted for $AGENT_USER_TEST"
        if ctl_run 0 --config "$T/good.conf" factory-reset --yes; then
                grep -qx "Removed the keys of the previous \[consumer\] user $AGENT_USER_TEST." "$T/out" && ! prev_ring &&
                        ok "factory-reset --yes: the keys of the previous [consumer] user keyring.owner names gone too" ||
                        not_ok "factory-reset left the previous [consumer] user's keys ($(cat "$T/out"))"
                ls "$T/state" > "$T/state.ls"
                if [ ! -e "$RT/profile.json" ] && [ ! -e "$RT/state.json" ] && [ ! -s "$T/state.ls" ] &&
                   "$CTL" --config "$T/good.conf" check --no-network --agent-user root | grep -q "^WARN  keys: none filed for $CSE_USER"; then
                        ok "factory-reset --yes: keys, sealed profile, host key, enrolling mark, profile.json and the stopped agent's state.json gone"
                else
                        not_ok "factory-reset: something is left ($(cat "$T/state.ls"))"
                fi
        fi

        keyctl session - "$AGENT" --once --config "$T/good.conf" > "$T/agent.out" 2>&1 || { sed 's/^/# /' "$T/agent.out"; echo "Bail out! enrolment failed"; exit 1; }
        KEID=$(jq -r .keID "$RT/profile.json")
        if ctl_run 0 --config "$T/good.conf" factory-reset --deregister --yes; then
                if out_has "^Deregistered KeID $KEID with MEF https://127\.0\.0\.1:$PORT/msce\.$" && [ ! -e "$RT/profile.json" ] &&
                   "$MEF" --config "$T/mef.conf" audit | grep -q deregister; then
                        ok "factory-reset --deregister: the MEF saw the deregistration, the profile is gone"
                else
                        not_ok "factory-reset --deregister: output or MEF audit"
                fi
        fi
        ctl_run 0 --config "$T/good.conf" factory-reset --deregister --yes && { out_has '^Nothing to deregister' &&
                ok "factory-reset --deregister without a profile: nothing to deregister, exit 0" ||
                not_ok "factory-reset twice: output"; }
        # A KeID the MEF no longer knows (another enrolment of the node retired it, as a reprovision
        # from a copy of this gateway would; so do an expiry and a deregistration): 404, the goal of
        # --deregister reached already. The reset goes on and says so. The old mscectl refused
        # ("nothing was removed; retry"), and so every retry.
        keyctl session - "$AGENT" --once --config "$T/good.conf" > "$T/agent.out" 2>&1 || { sed 's/^/# /' "$T/agent.out"; echo "Bail out! enrolment failed"; exit 1; }
        KEID=$(jq -r .keID "$RT/profile.json")
        mkdir -m 0700 "$T/state-other"
        sed "s|^state_dir = .*|state_dir = $T/state-other|; s|^runtime_dir = .*|runtime_dir = $T/run-other|" \
                "$T/good.conf" > "$T/other.conf"
        keyctl session - "$AGENT" --once --config "$T/other.conf" > "$T/agent.out" 2>&1 || { sed 's/^/# /' "$T/agent.out"; echo "Bail out! enrolment failed"; exit 1; }
        if ctl_run 0 --config "$T/good.conf" factory-reset --deregister --yes; then
                out_has "^MEF https://127\.0\.0\.1:$PORT/msce no longer knows KeID $KEID: nothing to deregister \(MEF answered 404 .*unknown KeID \(retired\)\)\.$" &&
                        ! out_has '^Deregistered' && [ ! -e "$RT/profile.json" ] && [ ! -e "$T/state/profile.sealed" ] &&
                        ok "factory-reset --deregister of a KeID the MEF retired: 404 is done already, the reset goes on, exit 0" ||
                        not_ok "factory-reset --deregister of a retired KeID: output or files left"
        fi

        # The real daemon, run as msce-agent.service runs it: an unprivileged user with exactly
        # CAP_SETUID and CAP_SYS_ADMIN, owning its state and runtime directories and its Kpm.
        # Then status, reprovision and factory-reset while it runs, and SIGTERM.
        install -o $AGENT_USER_TEST -m 0600 "$T/kpm-1.hex" "$T/kpm-agent.hex"
        sed "s|^psk_file = .*|psk_file = $T/kpm-agent.hex|" "$T/good.conf" > "$T/daemon.conf"
        chown -R $AGENT_USER_TEST: "$T/state" "$RT"
        # The configuration itself must be readable by the agent's user.
        ctl_run 1 --config "$T/daemon.conf" check --no-network --agent-user $AGENT_USER_TEST && {
                out_has "^FAIL  configuration: $T/daemon.conf is not readable by the agent's user $AGENT_USER_TEST" &&
                        ok "check: configuration file not readable by the agent's user: FAIL" ||
                        not_ok "check unreadable configuration: findings"; }
        chmod 0644 "$T/daemon.conf"
        if ctl_run 0 --config "$T/daemon.conf" check --no-network --agent-user $AGENT_USER_TEST; then
                ! out_has '^FAIL' && out_has "^OK    \[seal\] state_dir: $T/state \(owner $AGENT_USER_TEST, mode 0700\)" &&
                        ok "check for an unprivileged agent user: its files are in order" || not_ok "check agent user: findings"
        fi
        # A state directory to be created (not systemd's) where the agent's user may not: it cannot
        # (msce-agent --check-config as that user says so); one where it may is OK.
        mkdir -m 0755 "$T/rootonly"
        sed "s|^state_dir = .*|state_dir = $T/rootonly/new/state|" "$T/daemon.conf" > "$T/rootonly.conf"
        chmod 0644 "$T/rootonly.conf"
        ctl_run 1 --config "$T/rootonly.conf" check --no-network --agent-user $AGENT_USER_TEST && {
                out_has "^FAIL  \[seal\] state_dir: cannot create $T/rootonly/new/state: $T/rootonly is not writable by the agent's user $AGENT_USER_TEST \(owner root, mode 0755\)" &&
                        out_has "^      fix: install -d -o $AGENT_USER_TEST -m 0700 $T/rootonly/new/state" &&
                        setpriv --reuid=$AGENT_USER_TEST --regid=$AGENT_USER_TEST --init-groups "$AGENT" --check-config \
                                --config "$T/rootonly.conf" 2>&1 | grep -q "cannot create $T/rootonly/new/state" &&
                        ok "check: a state directory the agent's user cannot create: FAIL, as msce-agent says" ||
                        not_ok "check uncreatable state directory: findings"; }
        chown $AGENT_USER_TEST: "$T/rootonly"
        ctl_run 0 --config "$T/rootonly.conf" check --no-network --agent-user $AGENT_USER_TEST && {
                out_has "^OK    \[seal\] state_dir: $T/rootonly/new/state does not exist yet \(the agent creates it\)" &&
                        ok "check: a state directory the agent's user can create: OK" || not_ok "check creatable state directory: findings"; }
        rm -rf "$T/rootonly" "$T/rootonly.conf"
        # Out of the agent's reach whatever the files' own modes: a drop-in directory it may not
        # list (msce-agent then refuses to start), a directory above the configuration it may not
        # enter.
        mkdir -m 0700 "$T/daemon.conf.d"
        ctl_run 1 --config "$T/daemon.conf" check --no-network --agent-user $AGENT_USER_TEST && {
                out_has "^FAIL  configuration: the drop-in directory $T/daemon.conf.d is not readable by the agent's user $AGENT_USER_TEST" &&
                        ! setpriv --reuid=$AGENT_USER_TEST --regid=$AGENT_USER_TEST --init-groups "$AGENT" --check-config \
                                --syntax-only --config "$T/daemon.conf" > /dev/null 2>&1 &&
                        ok "check: a drop-in directory the agent's user cannot list (msce-agent refuses it): FAIL" ||
                        not_ok "check unlistable drop-in directory: findings"; }
        rmdir "$T/daemon.conf.d"
        mkdir -m 0700 "$T/closed"
        install -m 0644 "$T/daemon.conf" "$T/closed/daemon.conf"
        ctl_run 1 --config "$T/closed/daemon.conf" check --no-network --agent-user $AGENT_USER_TEST && {
                out_has "^FAIL  configuration: $T/closed/daemon.conf is out of reach of the agent's user $AGENT_USER_TEST: it may not enter $T/closed " &&
                        ok "check: a configuration in a directory the agent's user cannot enter: FAIL" ||
                        not_ok "check closed directory: findings"; }
        rm -rf "$T/closed"
        CAPS=-all,+setuid,+sys_admin
        keyctl session - setpriv --reuid=$AGENT_USER_TEST --regid=$AGENT_USER_TEST --init-groups --inh-caps=$CAPS \
                --ambient-caps=$CAPS --bounding-set=$CAPS "$AGENT" --config "$T/daemon.conf" > "$T/daemon.out" 2>&1 &
        DAEMON_PID=$!
        wait_state() { # JQ-FILTER over state.json and profile.json (as .s and .p)
                for _ in $(seq 300); do # 30 s: a deadline for a hang
                        jq -en --slurpfile s "$RT/state.json" --slurpfile p "$RT/profile.json" \
                                "\$s[0] as \$s | \$p[0] as \$p | $1" > /dev/null 2>&1 && return 0
                        sleep 0.1
                done
                sed 's/^/# daemon: /' "$T/daemon.out"
                return 1
        }
        if wait_state "\$s.state == \"ready\" and \$s.pid == $DAEMON_PID"; then
                ctl_run 0 --config "$T/daemon.conf" status && {
                        out_has '^msce-agent: READY$' && out_has "Process: $DAEMON_PID \(running\)" && out_has '^ +Node: node-1$' &&
                        out_has '^ +Status: ' && out_has '^ +CSE-ID: /mn-cse-1$' &&
                                ok "daemon as an unprivileged user with CAP_SETUID and CAP_SYS_ADMIN: ready; status exit 0" || not_ok "status daemon: output"; }
                KEID=$(jq -r .keID "$RT/profile.json")
                if ctl_run 0 --config "$T/daemon.conf" reprovision; then
                        wait_state "\$s.state == \"ready\" and \$p.keID != \"$KEID\" and \$s.keID == \$p.keID" &&
                                ok "reprovision: the daemon enrolled again (new KeID)" || not_ok "reprovision: no new KeID"
                fi
                KEID=$(jq -r .keID "$RT/profile.json")
                if ctl_run 0 --config "$T/daemon.conf" factory-reset --yes; then
                        out_has "^Asked msce-agent \(pid $DAEMON_PID\) to enrol again\.$" &&
                        wait_state "\$s.state == \"ready\" and \$p.keID != \"$KEID\" and \$s.keID == \$p.keID" &&
                                ok "factory-reset while the daemon runs: removed, and it enrolled again" ||
                                not_ok "factory-reset while running"
                fi
                kill -TERM $DAEMON_PID
                wait $DAEMON_PID
                st=$?
                DAEMON_PID=
                ctl_run 3 --config "$T/daemon.conf" status && { [ $st -eq 0 ] && out_has '^msce-agent: NOT RUNNING \(last state stopping\)$' &&
                        ok "status after SIGTERM: not running, last state stopping, exit 3" ||
                        not_ok "status after SIGTERM (daemon exit $st)"; }
        else
                not_ok "the daemon did not become ready"
                kill $DAEMON_PID 2> /dev/null; wait $DAEMON_PID 2> /dev/null; DAEMON_PID=
        fi
else
        for t in "check reads the key as the CSE user" "check leaves the session keyring alone" "profile after enrolment" \
                 "factory-reset without --yes" "factory-reset --yes" "factory-reset --deregister" "factory-reset twice" "factory-reset --deregister retired" \
                 "check configuration readable" "check for the agent user" "status of the daemon" "reprovision of the daemon" "factory-reset of the daemon" "status after SIGTERM"; do
                skip "$t: needs root and keyctl"
        done
fi

# A MEF with no suite in common (OpenSSL, TLS 1.2 with TLS_PSK_WITH_AES_128_CBC_SHA256 only): not
# the credential, and the finding lists what the agent offers.
if command -v openssl > /dev/null; then
        mkfifo "$T/s_in"
        exec 4<> "$T/s_in"
        openssl s_server -accept 127.0.0.1:0 -nocert -psk "$(cat "$T/kpm-1.hex")" -psk_identity kpm-1 -tls1_2 \
                -cipher PSK-AES128-CBC-SHA256 < "$T/s_in" > "$T/s_server.out" 2>&1 &
        S_PID=$!
        SPORT=
        for _ in $(seq 100); do
                SPORT=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$T/s_server.out")
                [ -n "$SPORT" ] && break
                kill -0 $S_PID 2> /dev/null || break
                sleep 0.1
        done
        conf nosuite "https://127.0.0.1:$SPORT/msce" "$T/kpm-1.hex"
        ctl_run 1 --config "$T/nosuite.conf" check --agent-user $AGENT_USER && {
                out_has '^FAIL  MEF TLS: incompatible: the MEF accepted none of TLS 1\.2-1\.3 .*suites TLS_AES_128_GCM_SHA256, TLS_ECDHE_PSK_WITH_AES_128_CBC_SHA256; groups X25519, P-256, or does not know the PSK identity$' &&
                        ! out_has 'authentication failed' &&
                        ok "check: a MEF without a common suite: FAIL incompatible, with what the agent offers" ||
                        not_ok "check incompatible: findings"; }
        kill $S_PID 2> /dev/null; wait $S_PID 2> /dev/null
        exec 4>&-
else
        skip "check incompatible: no openssl"
fi

mef_stop
ctl_run 1 --config "$T/good.conf" check --agent-user $AGENT_USER && {
        out_has '^FAIL  MEF connection: 127\.0\.0\.1 port [0-9]+: Connection refused' &&
                ok "check: MEF down: FAIL connection refused" || not_ok "check MEF down: findings"; }

tap_done

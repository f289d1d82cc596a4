#!/bin/bash
# SPDX-License-Identifier: MIT
# Fault matrix (issue 4): the msce-agent daemon (started directly, NOTIFY_SOCKET served by
# fm-notify.py, which also gives the sender's PID) against the real msce-mef in its own network
# namespace (a veth pair on a /30 of 192.0.2.0/24, or of 198.51.100.0/24 or 203.0.113.0/24 when
# the host itself uses 192.0.2.0/24: HOST_IP on the host, MEF_IP, also the MEF's FQDN, in the
# namespace; each run at once takes another /30). Faults: MEF down, MEF killed
# mid-handshake, 20% loss both ways (nft numgen), 300 ms one-way delay, reset after the
# handshake, black hole (delay-relay), malformed responses (fake-mef), 503 + Retry-After
# (max_connections = 1 held by a client that authenticated and sends nothing), revocation and
# re-enrolment by the operator.
# Each scenario ends in the documented state (state.json), with the keyring (read as the CSE
# user, fm-keys.py) and profile.sealed as they must be; READY=1 only once msce:ltk is readable;
# no moment without msce:ltk during a re-enrolment (a reader loop as the CSE user); WATCHDOG=1
# in time, STOPPING=1 and exit 0 on SIGTERM.
# Scenarios 1-3 and 8 run one after another, then 4-7, 9 and 10, which mostly wait, at the same
# time (alongside in fm-lib.sh), each with a CSE user of its own.
# Output is TAP (tests/integration/lib.sh); a whole-run skip is "1..0 # SKIP". The framework
# (namespace, MEF, relay, agent and the checks on them) is in fm-lib.sh.
#   usage: fault-matrix.sh BUILDDIR [SCENARIO...]     (SCENARIO: 1..10; default all)
#          fault-matrix.sh --once BUILDDIR            (framework smoke test with msce-agent --once)
# FM_KEEP=1 keeps the work directory.
set -u

ONCE=0
if [ "${1:-}" = --once ]; then
        ONCE=1
        shift
fi
[ $# -ge 1 ] || { echo "usage: $0 [--once] BUILDDIR [SCENARIO...]" >&2; exit 2; }
B=$(cd "$1" && pwd) || exit 2
shift
ONLY=" $* "
[ $# -eq 0 ] && ONLY=" 1 2 3 4 5 6 7 8 9 10 "
HERE=$(cd "$(dirname "$0")" && pwd)
AGENT=$B/msce-agent
MEF=$B/msce-mef
RELAY=$B/tests/integration/delay-relay
FAKE_MEF=$B/tests/integration/fake-mef
# The CSE user whose keyring the agent fills: one of this run's own (test-user.sh:
# msce-t<PID>-fm), so that other tests, or this one run from another build directory or
# worktree at the same time, cannot change what this one finds. FM_CSE_USER=an-existing-user
# uses that one instead.
PY=/usr/bin/python3

. "$HERE/lib.sh"
need_root "network namespaces, nft, keyring of another user"
need_exec "$AGENT" "$MEF" "$RELAY"
command -v ip > /dev/null 2>&1 || skip_all "no ip (iproute2)"
command -v nft > /dev/null 2>&1 || skip_all "no nft (nftables)"
command -v openssl > /dev/null 2>&1 || skip_all "no openssl (the client holding the MEF's only slot in 8)"
need_cmds keyctl jq
[ -x $PY ] || skip_all "$PY is missing"
if [ $ONCE = 0 ]; then
        # The daemon is msce-agent without --once (ExecStart= in msce-agent.service).
        "$AGENT" --help 2>&1 | grep -qiE 'daemon|NOTIFY_SOCKET|sd_notify|READY=1' ||
                skip_all "msce-agent has no daemon mode yet (its --help mentions none)"
fi
own_session $([ $ONCE = 1 ] && echo --once) "$B" "$@"
if [ -n "${FM_CSE_USER:-}" ]; then
        CSE_USER=$FM_CSE_USER
        id -u $CSE_USER > /dev/null 2>&1 || skip_all "no user $CSE_USER"
        at_exit 'keyring_clear $CSE_UID'
        for n in 4 5 6 7 9; do eval CSE_USER_$n=\$CSE_USER; done
else
        CSE_USER=$(test_user fm) || skip_all "cannot create a test user"
        test_user_cleanup $CSE_USER
        # the scenarios that run beside scenario 10 (alongside in fm-lib.sh), a user each
        for n in 4 5 6 7 9; do
                u=$(test_user fm$n) || skip_all "cannot create a test user"
                test_user_cleanup $u
                eval CSE_USER_$n=\$u
        done
fi
CSE_UID=$(id -u $CSE_USER)

START=$(date +%s)
# Seconds for the whole matrix, a deadline for hangs (meson's timeout is 600 s, 1800 s in the
# ASan build): ~50 s on an idle machine (the waiting scenarios run at once), three times that
# under ASan and load.
BUDGET=${FM_BUDGET:-540}
NS=msce-fm-$$
VH=fmh$$        # veth, host side (HOST_IP)
VM=fmm$$        # veth, MEF side (MEF_IP)
# The documentation networks, the first one this machine does not use itself (on some hosts
# 192.0.2.0/24 is the real uplink, with the default gateway at 192.0.2.1).
# The host side of the veth is on the host: two runs at once (the gcc and ASan builds, two
# worktrees) must not pick the same network. Choosing and configuring it is done under a lock,
# so the next run sees the address this one took; each run takes a /30 of its own (a /24 each
# allowed three runs at once: a fourth skipped). The lock is in /run/lock/msce, which
# scripts/chroot.sh shares with the host, whose network namespace a run in there uses too.
mkdir -p /run/lock/msce
exec 9> /run/lock/msce/fault-matrix.lock
flock -w 300 9 || skip_all "another fault-matrix run holds /run/lock/msce/fault-matrix.lock"
# The namespace and veths of runs killed before their cleanup (meson's timeout), known by their
# PID being gone (one of our own PID is of a process gone before us); a veth pair goes with
# either end, and the MEF's end with the namespace.
fm_gone() { [ "$1" = $$ ] || [ ! -d "/proc/$1" ]; }
for p in $(ip netns list | sed -n 's/^msce-fm-\([0-9][0-9]*\)\( .*\)\?$/\1/p'); do
        fm_gone "$p" && ip netns del "msce-fm-$p"
done
for p in $(ip -o link show | sed -n 's/^[0-9]*: fm[hm]\([0-9][0-9]*\)[@:].*/\1/p' | sort -u); do
        fm_gone "$p" || continue
        ip link del "fmh$p" 2> /dev/null || ip link del "fmm$p" 2> /dev/null || :
done
HOST_IP=
MEF_IP=
for n in 192.0.2 198.51.100 203.0.113; do
        # the host's own use of the network (not the veths, fmh*, of fault-matrix runs)
        ip -4 -o addr show | grep -v '^[0-9]*: fmh[0-9]* ' | grep -q " inet $n\." && continue
        ip -4 route show | grep -v ' dev fmh[0-9]* ' | grep -q "^$n\.\| via $n\." && continue
        for o in $(seq 0 4 252); do
                ip -4 -o addr show | grep -q " inet $n\.$((o + 1))/\| inet $n\.$((o + 2))/" && continue
                HOST_IP=$n.$((o + 1))
                MEF_IP=$n.$((o + 2))
                break 2
        done
done
[ -n "$MEF_IP" ] || skip_all "no free /30 in 192.0.2.0/24, 198.51.100.0/24 or 203.0.113.0/24 on this host"
PORT=8443       # what the agent connects to: the MEF, or the relay in front of it
MEF_DIRECT=8443 # the MEF's port without a relay in front (topology direct)
MEF_BEHIND=8444 # the MEF's port when the relay is in front
KEEP=${FM_KEEP:-0}
tmpdir fault-matrix
chmod 0755 "$T"
PIDS_MEF= PID_RELAY= PID_AGENT= PID_NOTIFY= PID_WATCH= PID_HOLD= PID_FAKE=
at_exit 'ip link del "$VH" 2> /dev/null; ip netns del "$NS" 2> /dev/null'
at_exit 'for p in $PIDS_ALONGSIDE $PID_AGENT $PID_WATCH $PID_NOTIFY $PID_HOLD $PID_FAKE $PID_RELAY $PIDS_MEF; do stop_pid "$p"; done'

. "$HERE/fm-lib.sh"

# ---- network namespace ----
ip netns add "$NS" || skip_all "cannot create a network namespace"
if ! { ip link add "$VH" type veth peer name "$VM" &&
       ip link set "$VM" netns "$NS" &&
       ip addr add $HOST_IP/30 dev "$VH" && ip link set "$VH" up &&
       ip -n "$NS" addr add $MEF_IP/30 dev "$VM" && ip -n "$NS" link set "$VM" up &&
       ip -n "$NS" link set lo up; }; then
        echo "Bail out! cannot set up the veth pair"
        exit 1
fi
flock -u 9
exec 9>&-

umask 077
mef_conf $PORT
mefctl init || { echo "Bail out! msce-mef init failed"; exit 1; }
CSE_BASE=https://in.example.net:8443/~/in-cse/in-name
for n in 1 2 3 4 5 6 7 8 9 10 11; do
        mefctl node add node-$n --cse-id /mn-cse-$n --cse-base $CSE_BASE --psk-id kpm-$n \
                --generate-psk "$T/kpm-$n.hex" --target /in-cse --poll 10 || { echo "Bail out! node add failed"; exit 1; }
done

# ================= --once: the framework against msce-agent --once =================
if [ $ONCE = 1 ]; then
        once() { # once N WANT_EXIT DESCRIPTION
                "$AGENT" --once --config "$CUR/agent.conf" > "$CUR/agent.log" 2>&1
                local rc=$?
                [ $rc -eq "$2" ] && ok "--once s$1: $3 (exit $rc)" || not_ok "--once s$1: $3: exit $rc, want $2"
        }
        topology direct && mef_stop
        scenario_begin 1 "MEF down"
        once 1 75 "MEF down: transient"
        mef_start $PORT
        once 1 0 "MEF up: enrolled"
        keys_present && sealed && ok "--once s1: key readable by $CSE_USER, profile sealed" || not_ok "--once s1: keys/sealed"
        scenario_begin 3 "20% loss"
        loss_on 20
        for _ in 1 2 3 4 5; do "$AGENT" --once --config "$CUR/agent.conf" > "$CUR/agent.log" 2>&1 && break; done
        [ $? -eq 0 ] && ok "--once s3: enrolled through 20% loss within 5 tries ($(loss_dropped) packets dropped)" ||
                not_ok "--once s3: loss"
        loss_off
        topology relay
        scenario_begin 4 "300 ms delay"
        relay_mode delay 300
        t0=$(date +%s%N)
        once 4 0 "300 ms each way"
        ms=$((($(date +%s%N) - t0) / 1000000))
        [ $ms -ge 1200 ] && ok "--once s4: took ${ms} ms (>= 4 x 300 ms)" || not_ok "--once s4: took only ${ms} ms"
        scenario_begin 5 "reset after the handshake"
        relay_mode reset-flight 2
        once 5 75 "reset after the handshake: transient"
        grep -q 'reset after [0-9]* server bytes (flight 2)' "$RELAY_LOG.err" && ok "--once s5: the relay reset at flight 2" ||
                not_ok "--once s5: no reset in the relay log"
        scenario_begin 6 "black hole" "exchange_timeout = 2s"
        relay_mode blackhole
        once 6 75 "black hole: transient"
        grep -qi 'tim' "$CUR/agent.log" && ok "--once s6: the error says timeout" || not_ok "--once s6: error text"
        expect_nothing_stored "--once black hole" && ok "--once s6: nothing stored"
        relay_mode pass
        topology relay "max_connections = 1
retry_after = 3
request_timeout = 30000"
        scenario_begin 8 "503"
        hold_slot
        once 8 75 "503 while max_connections is held"
        grep -q 'Retry-After 3 s' "$CUR/agent.log" && ok "--once s8: Retry-After 3 reported" || not_ok "--once s8: Retry-After"
        stop_pid "$PID_HOLD"
        PID_HOLD=
        once 8 0 "slot free again: enrolled"
        tap_done
fi

# ================= the daemon =================

# 1. MEF down at start, then up.
if run 1; then
        topology direct && mef_stop
        scenario_begin 1 "MEF down at start, then up"
        agent_start watch
        if expect_within 30 "s1: BACKOFF while the MEF is down" state_is BACKOFF; then
                # a few more attempts: three failed ones (not a fixed 1.5 s)
                expect_within 30 "s1: three attempts while the MEF is down" retries_at_least 3 &&
                        ok "s1: BACKOFF, STATUS= says retrying"
                expect_within 30 "s1: state.json in BACKOFF with last_error and next_attempt" backoff_complete &&
                        ok "s1: state.json has last_error ($(last_field last_error)) and next_attempt"
                expect_nothing_stored "MEF down" && ok "s1: nothing stored, no READY=1 while the MEF is down"
        fi
        mef_start $PORT
        expect_ready 15 "MEF up" && ok "s1: READY after the MEF came up, msce:ltk readable by $CSE_USER, profile sealed"
        agent_stop
        check "s1: READY=1 only after msce:ltk was readable" ready_after_key
fi

# 2. MEF killed -9 while the agent is in a handshake held open by the relay, then restarted.
if run 2; then
        topology relay
        scenario_begin 2 "MEF kill -9 mid-handshake, restarted" "exchange_timeout = 10s"
        relay_mode delay 1000
        first=$(relay_count "s2c first data")
        agent_start
        if expect_within 10 "s2: the MEF answered the ClientHello (relay holding it)" \
                sh -c '[ $(grep -c " s2c first data" "$0") -gt "$1" ]' "$RELAY_LOG.err" "$first"; then
                mef_stop KILL
                ok "s2: msce-mef killed -9 while its ServerHello was held in the relay"
                # the interrupted attempt has failed (instead of a fixed 0.5 s)
                expect_within 30 "s2: the interrupted attempt failed" retries_at_least 1
                relay_mode pass
                mef_start $MEF_BEHIND || not_ok "s2: msce-mef did not restart"
                expect_ready 20 "after the MEF restart" && ok "s2: READY after the MEF restart"
                status_matches 'retry' && ok "s2: the interrupted handshake was retried (STATUS= says retrying)" ||
                        not_ok "s2: no retry in STATUS="
        fi
        agent_stop
fi

# 3. 20% loss both ways.
if run 3; then
        topology direct
        scenario_begin 3 "20% packet loss both ways"
        loss_on 20
        agent_start watch
        expect_ready 60 "through 20% loss" && ok "s3: READY through 20% loss both ways ($(loss_dropped) packets dropped)"
        loss_off
        agent_stop
        check "s3: READY=1 only after msce:ltk was readable" ready_after_key
fi

# 8. 503 with Retry-After: 3 (max_connections = 1, held by an authenticated client).
if run 8; then
        topology relay "max_connections = 1
retry_after = 3
request_timeout = 30000"
        scenario_begin 8 "503 with Retry-After: 3"
        # The authenticated client that sends nothing takes the only slot (request deadline 30 s).
        hold_slot
        a0=$(relay_count accepted)
        agent_start
        if expect_within 10 "s8: BACKOFF after the 503" state_is BACKOFF; then
                wait_s=$(state_json | jq -r '(.next_attempt | fromdateiso8601) - (.since | fromdateiso8601)' 2> /dev/null)
                na=$(field next_attempt)
                since=$(field since)
                stop_pid "$PID_HOLD"
                PID_HOLD=
                if expect_ready 15 "after the 503"; then
                        # The attempts as the relay saw them: the second not before 3 s after the
                        # first (backoff_max is 2 s, so only Retry-After can explain the wait).
                        gap=$(awk -v n="$a0" '/ accepted / { if (++c == n + 1) a = $1; if (c == n + 2) { print $1 - a; exit } }' "$RELAY_LOG.err")
                        awk -v g="${gap:-0}" 'BEGIN { exit !(g >= 2.95) }' &&
                                ok "s8: next attempt ${gap}s after the 503 (Retry-After: 3, backoff_max 2s), then READY" ||
                                not_ok "s8: next attempt ${gap:-never}s after the 503 (want >= 3)"
                        # >= 2: next_attempt and since are two time(NULL) calls a moment apart,
                        # a second boundary may fall between them (the relay's gap is exact)
                        [ "${wait_s:-0}" -ge 2 ] 2> /dev/null &&
                                ok "s8: state.json in BACKOFF: next_attempt $na, ${wait_s}s after since $since" ||
                                not_ok "s8: state.json next_attempt $na is ${wait_s:-?}s after since $since (want >= 2)"
                fi
        fi
        stop_pid "$PID_HOLD"
        PID_HOLD=
        agent_stop
fi

# 4. 300 ms one-way delay.
scenario_4() {
        beside 4 8447
        scenario_begin 4 "300 ms one-way delay"
        relay_start $MEF_IP:$MEF_DIRECT || { not_ok "s4: the relay did not start"; return; }
        relay_mode delay 300
        agent_start
        if expect_ready 20 "through 300 ms delay"; then
                t=$(awk -v t0="$(agent_t0)" '$3 == "READY=1" { printf "%.2f", $1 - t0; exit }' "$CUR/notify.log")
                awk -v t="$t" 'BEGIN { exit !(t >= 1.2) }' && ok "s4: READY through 300 ms each way (READY=1 after ${t}s)" ||
                        not_ok "s4: READY=1 after ${t}s: too fast for 4 x 300 ms, was the delay in effect?"
        fi
        relay_mode pass
        agent_stop
        relay_stop
}

# 5. Reset after the handshake: transient until the relay passes traffic again.
scenario_5() {
        beside 5 8448
        scenario_begin 5 "connection reset after the handshake"
        relay_start $MEF_IP:$MEF_DIRECT || { not_ok "s5: the relay did not start"; return; }
        relay_mode reset-flight 2
        r0=$(relay_count "reset after")
        agent_start
        if expect_within 15 "s5: two resets after the handshake" \
                sh -c '[ $(grep -c " reset after [0-9]* server bytes (flight 2)" "$0") -ge $(($1 + 2)) ]' "$RELAY_LOG.err" "$r0"; then
                expect_within 5 "s5: BACKOFF after a reset" state_is BACKOFF ENROL &&
                        expect_nothing_stored "reset" &&
                        ok "s5: resets after the handshake: transient ($(field state), last_error: $(field last_error)), nothing stored"
        fi
        relay_mode pass
        expect_ready 15 "after the relay passes traffic again" && ok "s5: READY once the relay passes traffic again"
        agent_stop
        relay_stop
}

# 6. An MEF that never answers.
scenario_6() {
        beside 6 8449
        scenario_begin 6 "MEF never answers (black hole)" "exchange_timeout = 3s"
        relay_start $MEF_IP:$MEF_DIRECT || { not_ok "s6: the relay did not start"; return; }
        relay_mode blackhole
        agent_start
        if expect_within 15 "s6: BACKOFF with last_error saying timeout" sh -c '
                jq -e "((.state | ascii_upcase) == \"BACKOFF\") and (.last_error | test(\"tim\"; \"i\"))" "$0/run/state.json" > /dev/null 2>&1' "$CUR"; then
                ok "s6: exchange timed out: BACKOFF, last_error: $(field last_error)"
                expect_nothing_stored "black hole" && ok "s6: nothing stored"
                # TCP is accepted (by the relay), the handshake gets no answer: STATUS= names the
                # TLS handshake, not "MEF unreachable".
                st=$(grep ' STATUS=' "$CUR/notify.log" | grep -v 'STATUS=Enrolling\|STATUS=Starting\|STATUS=Restoring' | tail -n 1)
                case $st in
                *"STATUS=TLS handshake with the MEF failed (TLS handshake timed out); retrying in "*)
                        ok "s6: STATUS= says the TLS handshake failed: ${st#*STATUS=}" ;;
                *) not_ok "s6: STATUS= for a black hole after connect: ${st#*STATUS=}" ;;
                esac
        fi
        relay_mode pass
        agent_stop
        relay_stop
}

# 7. Malformed responses (fake-mef, on the namespace's loopback behind the relay, its KeIDs for
# MEF_IP): every one is transient (protocol section 5), BACKOFF, nothing stored; then a valid
# answer is enrolled.
FAKE_PORT=8445
fake_start() { # fake_start SCENARIO COUNT
        ip netns exec "$NS" "$FAKE_MEF" "$1" --psk-identity kpm-7 --psk-hex-file "$T/kpm-7.hex" --fqdn $MEF_IP \
                --base /msce --port $FAKE_PORT -n "$2" > "$CUR/fake.out" 2>> "$CUR/extra.log" &
        PID_FAKE=$!
        for _ in $(seq 600); do # 30 s: a deadline for a hang
                grep -qs "^port=$FAKE_PORT\$" "$CUR/fake.out" && return 0
                kill -0 $PID_FAKE 2> /dev/null || break
                sleep 0.05
        done
        return 1
}
# The backoff is short (100 ms .. 1 s): each fake-mef waits for two attempts, and nothing here
# times one (the Retry-After of busy-503-huge is capped at 2 s, which the backoff does not reach).
scenario_7() {
        beside 7 8446
        scenario_begin 7 "malformed responses (fake-mef)" "backoff_min = 100ms
backoff_max = 1s
retry_after_max = 2s"
        if [ ! -x "$FAKE_MEF" ]; then
                skip "s7: $FAKE_MEF not built"
        elif relay_start 127.0.0.1:$FAKE_PORT; then
                agent_start
                for scen in bad-json wrong-keid truncated garbage no-rsc rsc-mismatch error-500; do
                        over_budget && break
                        failed0=$(grep -c ' STATUS=Enrolment failed: ' "$CUR/notify.log")
                        if ! fake_start $scen 2; then
                                not_ok "s7: fake-mef $scen did not start"
                                continue
                        fi
                        # fake-mef exits once it has answered two attempts.
                        expect_within 15 "s7: fake-mef $scen answered two attempts" sh -c '! kill -0 $0 2> /dev/null' $PID_FAKE
                        stop_pid "$PID_FAKE"
                        PID_FAKE=
                        expect_within 5 "s7: $scen: two failed enrolments in STATUS=" sh -c \
                                '[ $(grep -c " STATUS=Enrolment failed: " "$0") -ge $(($1 + 2)) ]' "$CUR/notify.log" "$failed0" ||
                                continue
                        why=$(grep ' STATUS=Enrolment failed: ' "$CUR/notify.log" | tail -n 1 | sed 's/.*STATUS=Enrolment failed: //; s/; retrying in .*//')
                        state_is BACKOFF ENROL && expect_nothing_stored "$scen" &&
                                ok "s7: $scen: transient, $(field state), nothing stored ($why)" ||
                                { state_is BACKOFF ENROL || not_ok "s7: $scen: state $(field state), want BACKOFF"; }
                done
                # A Retry-After of 12 digits is clamped to retry_after_max, and STATUS= says both.
                if ! over_budget && fake_start busy-503-huge 1; then
                        expect_within 15 "s7: busy-503-huge: STATUS= says what the MEF sent and what the agent does" sh -c \
                                'grep -qE " STATUS=MEF busy \(503, Retry-After 999999999999 s, capped at 2 ?s\); retrying in 2 ?s$" "$0"' \
                                "$CUR/notify.log" &&
                                ok "s7: busy-503-huge: $(grep ' STATUS=MEF busy' "$CUR/notify.log" | tail -n 1 | sed 's/.*STATUS=//')"
                        stop_pid "$PID_FAKE"
                        PID_FAKE=
                fi
                # TCP and TLS up, the request sent, no answer: STATUS= and state.json say "no
                # response in time", not "MEF unreachable" (exchange_timeout = 5s). Silent to the
                # next attempt too: what is read here is not replaced by that attempt's failure
                # for another 5 s, however soon after the backoff it comes.
                if ! over_budget && fake_start silent 2; then
                        if expect_within 15 "s7: silent: STATUS= says no response in time" sh -c \
                                'grep -q " STATUS=No response from the MEF in time (timed out waiting for the response); retrying in " "$0"' \
                                "$CUR/notify.log"; then
                                le=$(field last_error)
                                if grep ' STATUS=' "$CUR/notify.log" | tail -n 1 | grep -q 'MEF unreachable'; then
                                        not_ok "s7: silent: STATUS= says unreachable"
                                elif [ "$le" != "timed out waiting for the response" ]; then
                                        not_ok "s7: silent: state.json last_error: $le"
                                else
                                        ok "s7: silent MEF: STATUS= 'No response from the MEF in time', last_error '$le'"
                                fi
                        fi
                        stop_pid "$PID_FAKE"
                        PID_FAKE=
                fi
                if fake_start valid 1; then
                        expect_ready 15 "fake-mef valid after the malformed ones" &&
                                ok "s7: a valid answer after the malformed ones: READY"
                        stop_pid "$PID_FAKE"
                        PID_FAKE=
                else
                        not_ok "s7: fake-mef valid did not start"
                fi
                agent_stop
        else
                not_ok "s7: the relay did not start"
        fi
        relay_stop
}

# 9. Revoked while READY.
scenario_9() {
        beside 9
        scenario_begin 9 "revoked by the operator while READY (poll 10 s)"
        agent_start
        if expect_ready 15 "first enrolment"; then
                mefctl node revoke node-9 || not_ok "s9: msce-mef node revoke"
                if expect_within 30 "s9: REVOKED after the next status check" state_is REVOKED; then
                        keys_absent && ! sealed && ok "s9: REVOKED: keys removed from the keyring, profile.sealed removed" ||
                                not_ok "s9: REVOKED but keys ($(tr '\n' ' ' < "$CUR/keys.out")) or profile.sealed remain"
                        status_matches 'revoked' && ok "s9: STATUS= says revoked" || not_ok "s9: STATUS= does not say revoked"
                        scenario_9_restart
                fi
        fi
        agent_stop
}

# 9, continued: the node allowed again at the MEF, the agent restarted (a power cut, the
# watchdog): that is no operator's act, it starts REVOKED; SIGUSR1 (mscectl reprovision) enrols,
# with the only enrolment request of node-9 the MEF has had since the restart.
enrolments_9() { grep -c 'kpm-9 .*POST /msce/enrolments ' "$MEF_ERR"; }
scenario_9_restart() {
        local before
        mefctl node activate node-9 || not_ok "s9: msce-mef node activate"
        agent_stop
        before=$(enrolments_9)
        agent_start
        if expect_within 15 "s9: REVOKED again after a restart, STATUS= says since before it" sh -c '
                jq -e ".pid == $1 and .state == \"revoked\" and .keID == null" "$0/run/state.json" > /dev/null 2>&1 &&
                grep -q " STATUS=Revoked by MEF .* before this start" "$0/notify.log"' "$CUR" "$PID_AGENT"; then
                keys_absent && ! sealed && ok "s9: restarted: REVOKED, no keys, nothing sealed" ||
                        not_ok "s9: restarted: REVOKED but keys ($(tr '\n' ' ' < "$CUR/keys.out")) or profile.sealed"
                kill -USR1 "$PID_AGENT"
                if expect_ready 15 "SIGUSR1 after the restart"; then
                        [ "$(enrolments_9)" -eq $((before + 1)) ] &&
                                ok "s9: one enrolment request since the restart: SIGUSR1's" ||
                                not_ok "s9: $(($(enrolments_9) - before)) enrolment requests since the restart (want 1, SIGUSR1's)"
                fi
        fi
}

# 10. Re-enrolment asked by the MEF: new KeID, no moment without a key.
scenario_10() {
        scenario_begin 10 "re-enrolment asked by the MEF while READY"
        agent_start watch
        if expect_ready 15 "first enrolment"; then
                keid1=$(field keID)
                ltk1=$(awk '$2 == "msce:ltk" { print $1 }' "$CUR/keys.out")
                mefctl node reenrol node-10 || not_ok "s10: msce-mef node reenrol"
                if expect_within 30 "s10: a new KeID after the next status check" sh -c '
                        jq -e "(.state | ascii_upcase) == \"READY\" and .keID != \"$1\"" "$0/run/state.json" > /dev/null 2>&1' "$CUR" "$keid1"; then
                        keys_present
                        ltk2=$(awk '$2 == "msce:ltk" { print $1 }' "$CUR/keys.out")
                        [ -n "$ltk2" ] && [ "$ltk2" != "$ltk1" ] && [ "$(grep -c ' msce:ltk$' "$CUR/keys.out")" = 1 ] &&
                                ok "s10: READY with KeID $(field keID) (was $keid1): msce:ltk $ltk2 replaced $ltk1" ||
                                not_ok "s10: keyring after re-enrolment: $(tr '\n' ' ' < "$CUR/keys.out") (old ltk $ltk1)"
                fi
        fi
        agent_stop
        s=$(grep '^summary ' "$CUR/watch.log")
        case "$s" in
        *" absent_after_present=0 "*" read_failures=0 "*) ok "s10: the CSE user's reader never missed msce:ltk during the swap ($s)" ;;
        *) not_ok "s10: the CSE user's reader missed msce:ltk: $s" ;;
        esac
}

# Scenarios 4-7, 9 and 10 spend most of their time waiting (for the agent's next attempt, for
# its next status check with the MEF, 10 s after the last, for a timeout): they run at the same
# time, against the one MEF (direct, MEF_IP:MEF_DIRECT), 4-6 through a relay of their own each, 7
# with its fake-mef behind a relay of its own; each with a CSE user of its own, unless
# FM_CSE_USER names the one user for all (then one after another).
together=
for n in 4 5 6 7 9 10; do
        run $n && together="$together scenario_$n"
done
topology direct
[ -z "$together" ] || alongside $([ "$CSE_USER_7" = "$CSE_USER" ] && echo --serial) $together

# No Kpm in anything the agents printed.
if cat "$T"/kpm-*.hex | tr -d '\r' | sed '/^$/d' | grep -qiF -f - "$T"/s*/agent.log "$T"/s*/notify.log 2> /dev/null; then
        not_ok "a Kpm appears in the agent's output"
else
        ok "no Kpm in any agent output or notification"
fi

# Under a sanitizer build: no report from any agent.
if grep -lE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$T"/s*/agent.log "$T"/mef-*.err "$T"/relay*.err \
        "$T"/s*/extra.log > "$T/san.out" 2> /dev/null; then
        not_ok "sanitizer reports in: $(tr '\n' ' ' < "$T/san.out")"
else
        ok "no sanitizer report from the agents, msce-mef, fake-mef or the relay"
fi

echo "# matrix took $(($(date +%s) - START)) s"
tap_done

# SPDX-License-Identifier: MIT
# The fault matrix's framework (sourced by fault-matrix.sh after its setup, lib.sh before it):
# TAP with the current scenario's logs, the network namespace's loss, the MEF, the relay, the
# agent under a notify socket and what its state, notifications and the keyring say.
CUR=     # the current scenario's directory, for the logs a failure shows
not_ok() { # lib.sh's, with the current scenario's logs (f local: alongside's loop has one)
        local f
        N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $1"
        if [ -n "$CUR" ]; then
                for f in "$CUR"/agent.log "$CUR"/notify.log "$CUR"/state.last "$RELAY_LOG.err" "$CUR"/extra.log; do
                        [ -s "$f" ] && { echo "#   --- $f (last 25 lines)"; tail -n 25 "$f" | sed 's/^/#   /'; }
                done
        fi
        return 0
}
over_budget() { [ $(($(date +%s) - START)) -gt $BUDGET ]; }

# expect_within SECONDS DESCRIPTION COMMAND...: poll every 0.1 s; on timeout not_ok naming what
# did not happen, and return 1.
expect_within() {
        local limit=$1 d=$2 i=0
        shift 2
        while [ $i -lt $((limit * 10)) ]; do
                "$@" && return 0
                if over_budget; then
                        not_ok "$d: the matrix ran out of its ${BUDGET}s budget while waiting"
                        return 1
                fi
                sleep 0.1
                i=$((i + 1))
        done
        not_ok "$d: not within ${limit}s"
        return 1
}

in_ns() { ip netns exec "$NS" "$@"; } # not for &: $! would be a subshell

# Loss on the veth only (not on the namespace's loopback).
loss_on() {
        in_ns nft -f - <<EOF
table inet fm {
        chain in { type filter hook input priority 0; iifname "$VM" numgen random mod 100 < $1 counter drop; }
        chain out { type filter hook output priority 0; oifname "$VM" numgen random mod 100 < $1 counter drop; }
}
EOF
}
loss_off() { in_ns nft delete table inet fm 2> /dev/null; return 0; }
loss_dropped() { in_ns nft list table inet fm 2> /dev/null | sed -n 's/.*counter packets \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { print s + 0 }'; }
# ---- MEF ----
mef_conf() { # mef_conf PORT [EXTRA LINES for [limits]]
        {
                printf '[server]\nlisten = %s:%s\nfqdn = %s\nbase = /msce\n' "$MEF_IP" "$1" "$MEF_IP"
                mef_store "$T"
                printf '[limits]\nhandshake_timeout = 30000\n%s\n' "${2:-}"
        } > "$T/mef.conf"
}
# (its output in the current scenario's directory: scenarios that run alongside each other
# call it at the same time)
mefctl() { "$MEF" --config "$T/mef.conf" "$@" > "${CUR:-$T}/mefctl.out" 2>&1 || { sed 's/^/# /' "${CUR:-$T}/mefctl.out"; return 1; }; }

# hold_slot: a client that authenticates (node-11's PSK) and then sends nothing holds the MEF's
# only service slot until request_timeout; a silent TCP client cannot, connections without a
# credential being kept apart. Sets PID_HOLD.
# mef_start PORT [EXTRA [limits] LINES]: the MEF in the namespace on MEF_IP:PORT.
MEF_PID=
MEF_STARTS=0
mef_start() {
        mef_conf "$@"
        MEF_STARTS=$((MEF_STARTS + 1))
        MEF_ERR=$T/mef-$MEF_STARTS.err
        ip netns exec "$NS" "$MEF" --config "$T/mef.conf" serve > /dev/null 2> "$MEF_ERR" &
        MEF_PID=$!
        PIDS_MEF="$PIDS_MEF $MEF_PID"
        for _ in $(seq 600); do # 30 s: a deadline for a hang
                grep -qs "listening on $MEF_IP:$1 " "$MEF_ERR" && return 0
                kill -0 $MEF_PID 2> /dev/null || break
                sleep 0.05
        done
        echo "# msce-mef did not start:"
        tail -n 5 "$MEF_ERR" | sed 's/^/#   /'
        return 1
}
mef_stop() { # mef_stop [SIGNAL]
        stop_pid "$MEF_PID" "${1:-TERM}"
        MEF_PID=
}

# ---- relay (in the namespace: the agent must reach MEF_IP for the KeID to match) ----
# RELAY_MODE, RELAY_LOG (.out, .err): a scenario with a relay of its own (on a port of its own)
# sets both.
RELAY_MODE=$T/relay.mode
RELAY_LOG=$T/relay
relay_mode() { echo "$*" > "$RELAY_MODE.tmp" && mv "$RELAY_MODE.tmp" "$RELAY_MODE"; }
relay_start() { # relay_start [TARGET HOST:PORT]
        relay_mode pass
        : > "$RELAY_LOG.out"
        ip netns exec "$NS" "$RELAY" --listen $MEF_IP:$PORT --connect "${1:-$MEF_IP:$MEF_BEHIND}" --mode-file "$RELAY_MODE" \
                > "$RELAY_LOG.out" 2>> "$RELAY_LOG.err" &
        PID_RELAY=$!
        for _ in $(seq 600); do # 30 s: a deadline for a hang
                grep -qs "^listening on $MEF_IP:$PORT\$" "$RELAY_LOG.out" && return 0
                sleep 0.05
        done
        return 1
}
relay_stop() { stop_pid "$PID_RELAY"; PID_RELAY=; }
relay_count() { grep -c " $1" "$RELAY_LOG.err" 2> /dev/null; } # relay_count EVENT: how many so far

# topology direct|relay [EXTRA MEF LINES]: the agent's port is the MEF itself, or the relay.
topology() {
        mef_stop
        relay_stop
        if [ "$1" = direct ]; then
                mef_start $PORT "${2:-}"
        else
                mef_start $MEF_BEHIND "${2:-}" && relay_start
        fi
}

# ---- agent ----
# scenario_begin N TITLE [EXTRA [timing] LINES]: a fresh state and runtime directory, config
# with short timeouts, empty keyring.
scenario_begin() {
        SN=$1
        CUR=$T/s$1
        mkdir -p "$CUR/state" "$CUR/run"
        chmod 0755 "$CUR/run"
        echo "# --- scenario $1: $2"
        cat > "$CUR/agent.conf" <<EOF
[node]
id = node-$1
[mef]
uri = https://$MEF_IP:$PORT/msce
psk_identity = kpm-$1
psk_file = $T/kpm-$1.hex
$(agent_custody "$CSE_USER" "$CUR/state" "$CUR/run")
[timing]
connect_timeout = 2s
exchange_timeout = 5s
backoff_min = 300ms
backoff_max = 2s
initial_delay_max = 0
${3:-}
EOF
        keyring_clear $CSE_UID
        SCEN_START=$(date +%s)
}

WATCHDOG_SEC=5 # as strict as the unit's ratio: WatchdogSec=30s = the default exchange_timeout

# agent_start [watch]: the agent under its notify socket; with watch, the CSE user's key reader
# (fm-keys.py watch: a search every millisecond, busy) beside it, for the scenarios that judge
# its log (ready_after_key, s10's summary).
agent_start() {
        : > "$CUR/notify.log"
        rm -f "$CUR/notify.sock" # a previous start's: the wait below is for this listener's
        $PY "$HERE/fm-notify.py" "$CUR/notify.sock" "$CUR/notify.log" 2>> "$CUR/extra.log" &
        PID_NOTIFY=$!
        if [ "${1:-}" = watch ]; then
                $PY "$HERE/fm-keys.py" $CSE_USER watch > "$CUR/watch.log" 2>> "$CUR/extra.log" &
                PID_WATCH=$!
        fi
        # Both listening, the key watcher with its first observation ("T0 T1 absent|present ..."),
        # before the agent starts. (The pattern had "[0-9]*" for T1, which never matched the
        # seconds.micro of fm-keys.py: every start waited out the whole loop, 2.5 s.)
        for _ in $(seq 600); do # 30 s: a deadline for a hang
                [ -S "$CUR/notify.sock" ] &&
                        { [ -z "$PID_WATCH" ] || grep -qs '^[0-9.]* [0-9.]* \(absent\|present\)' "$CUR/watch.log"; } && break
                sleep 0.05
        done
        NOTIFY_SOCKET=$CUR/notify.sock WATCHDOG_USEC=$((WATCHDOG_SEC * 1000000)) \
                "$AGENT" --config "$CUR/agent.conf" > "$CUR/agent.log" 2>&1 &
        PID_AGENT=$!
}
# CLOCK_MONOTONIC of the agent's first notification (its start).
agent_t0() { awk -v p="$PID_AGENT" '$2 == p { print $1; exit }' "$CUR/notify.log"; }

# agent_stop: SIGTERM, expect exit 0 and STOPPING=1; WATCHDOG=1 never further apart than
# WATCHDOG_USEC (from READY=1, when systemd starts counting).
agent_stop() {
        local rc gap
        if [ -z "$PID_AGENT" ]; then return 0; fi
        if ! kill -0 "$PID_AGENT" 2> /dev/null; then
                wait "$PID_AGENT"
                rc=$?
                not_ok "s$SN: the agent was not running any more at the end (exit $rc)"
        else
                kill -TERM "$PID_AGENT"
                for _ in $(seq 600); do kill -0 "$PID_AGENT" 2> /dev/null || break; sleep 0.05; done
                if kill -0 "$PID_AGENT" 2> /dev/null; then
                        not_ok "s$SN: the agent did not stop within 30 s of SIGTERM"
                        kill -KILL "$PID_AGENT"
                fi
                wait "$PID_AGENT"
                rc=$?
                # fm-notify.py writes what the agent sent when it gets round to reading it: on a
                # loaded machine, after the agent has exited. The datagrams are queued by now:
                # wait until STOPPING=1 is in the log (30 s for a listener that hangs).
                for _ in $(seq 600); do notified STOPPING=1 && break; sleep 0.05; done
                # the longest silence from READY=1 to STOPPING=1, and the pings in it
                gap=$(awk '$3 == "READY=1" && !t { t = $1; next }
                           ($3 == "WATCHDOG=1" || $3 == "STOPPING=1") && t { if ($1 - t > g) g = $1 - t; t = $1; n += $3 == "WATCHDOG=1" }
                           $3 == "STOPPING=1" { exit } END { printf "%.1f %d", g, n }' "$CUR/notify.log")
                pings=${gap#* }
                gap=${gap% *}
                if [ $rc -ne 0 ] || ! notified STOPPING=1; then
                        not_ok "s$SN: SIGTERM: exit $rc (want 0), STOPPING=1 $(grep -c ' STOPPING=1$' "$CUR/notify.log") times"
                elif ! awk -v g="$gap" -v w=$WATCHDOG_SEC 'BEGIN { exit !(g < w) }'; then
                        not_ok "s$SN: ${gap}s without WATCHDOG=1 after READY=1 (WATCHDOG_USEC=${WATCHDOG_SEC}s)"
                elif notified READY=1; then
                        ok "s$SN: SIGTERM: STOPPING=1, exit 0; from READY=1 on: $pings WATCHDOG=1, longest silence ${gap}s (< WATCHDOG_USEC ${WATCHDOG_SEC}s)"
                else
                        ok "s$SN: SIGTERM: STOPPING=1, exit 0 (never READY: the watchdog was not armed)"
                fi
        fi
        PID_AGENT=
        stop_pid "$PID_WATCH"
        PID_WATCH=
        stop_pid "$PID_NOTIFY"
        PID_NOTIFY=
}

state_json() { cat "$CUR/run/state.json" 2> /dev/null; }
field() { state_json | jq -r ".$1 // empty" 2> /dev/null; }
last_field() { jq -r ".$1 // empty" "$CUR/state.last" 2> /dev/null; } # from state_is's snapshot
state_is() { # state_is STATE...: state.json says one of them (one read, kept for the logs)
        local s
        state_json > "$CUR/state.last" 2> /dev/null
        s=$(last_field state)
        for w in "$@"; do [ "${s,,}" = "${w,,}" ] && return 0; done
        return 1
}
# In BACKOFF with last_error and next_attempt, in one snapshot (between attempts the agent is in
# ENROL, where next_attempt is null: never judge a state.json read at some other moment).
backoff_complete() { state_is BACKOFF && [ -n "$(last_field last_error)" ] && [ -n "$(last_field next_attempt)" ]; }
retries_at_least() { [ "$(grep -c ' STATUS=.*retrying' "$CUR/notify.log" 2> /dev/null)" -ge "$1" ]; }
notified() { grep -q " $1\$" "$CUR/notify.log" 2> /dev/null; }          # notified FIELD=VALUE
status_matches() { grep -E ' STATUS=' "$CUR/notify.log" 2> /dev/null | grep -qiE "$1"; }
sealed() { [ -s "$CUR/state/profile.sealed" ]; }
keys_list() { $PY "$HERE/fm-keys.py" $CSE_USER list > "$CUR/keys.out" 2>&1; } # 0 keys, 1 none, 2 bad
keys_present() { keys_list && grep -q ' msce:ltk$' "$CUR/keys.out"; }
# hold_slot: a silent client connected to the MEF (not through the relay) in PID_HOLD; returns
# once it is connected (instead of a fixed 0.3 s), so any later client queues behind it.
# An authenticated client (node-11's PSK) that sends no request holds the MEF's one service
# slot (max_connections = 1); unauthenticated connections have a pool of their own and would not.
hold_slot() {
        openssl s_client -connect $MEF_IP:$MEF_BEHIND -psk "$(tr -d '\n' < "$T/kpm-11.hex")" -psk_identity kpm-11 \
                -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 -brief -ign_eof < /dev/null > "$CUR/hold.out" 2>&1 &
        PID_HOLD=$!
        expect_within 30 "s8: the holding client completed its handshake" grep -qs "CONNECTION ESTABLISHED" "$CUR/hold.out"
}
keys_absent() { keys_list; [ $? -eq 1 ]; }

# The documented READY: state.json READY, READY=1 sent by the agent's PID, the key readable by
# the CSE user, profile.sealed in place; and READY=1 was not sent while the key was missing.
expect_ready() { # expect_ready TIMEOUT WHAT
        expect_within "$1" "s$SN: $2: state READY and READY=1" sh -c '
                jq -e "(.state | ascii_upcase) == \"READY\"" "$0/run/state.json" > /dev/null 2>&1 && grep -q " READY=1\$" "$0/notify.log"' \
                "$CUR" || return 1
        local pid
        pid=$(awk '$3 == "READY=1" { print $2; exit }' "$CUR/notify.log")
        if [ "$pid" != "$PID_AGENT" ]; then
                not_ok "s$SN: READY=1 came from PID $pid, not the agent ($PID_AGENT)"
                return 1
        fi
        if ! keys_present; then
                not_ok "s$SN: READY but $CSE_USER cannot read msce:ltk ($(head -n 3 "$CUR/keys.out" | tr '\n' ' '))"
                return 1
        fi
        if ! sealed; then
                not_ok "s$SN: READY but no profile.sealed"
                return 1
        fi
        if [ "$(field pid)" != "$PID_AGENT" ] || [ -z "$(field keID)" ] || [ -z "$(field exp)" ]; then
                not_ok "s$SN: READY but state.json lacks pid/keID/exp: $(state_json | tr -d '\n')"
                return 1
        fi
        return 0
}

# After the watcher stopped: READY=1 was not received before a check that still found no key.
ready_after_key() {
        local ready last_absent
        ready=$(awk '$3 == "READY=1" { print $1; exit }' "$CUR/notify.log")
        last_absent=$(sed -n 's/^last_absent_before_present //p' "$CUR/watch.log")
        [ -n "$ready" ] && [ -n "$last_absent" ] || { echo "#   no READY=1 ($ready) or watcher summary ($last_absent)"; return 1; }
        awk -v r="$ready" -v a="$last_absent" 'BEGIN { exit !(a <= r) }' && return 0
        echo "#   READY=1 received at $ready, msce:ltk still missing in a check started at $last_absent"
        return 1
}

# Nothing of an enrolment stored: no key, no sealed profile.
expect_nothing_stored() { # WHAT
        if sealed; then not_ok "s$SN: $1: profile.sealed exists"; return 1; fi
        if ! keys_absent; then not_ok "s$SN: $1: keys in the keyring: $(tr '\n' ' ' < "$CUR/keys.out")"; return 1; fi
        if notified READY=1; then not_ok "s$SN: $1: READY=1 was sent"; return 1; fi
        return 0
}

run() { case "$ONLY" in *" $1 "*) return 0 ;; esac; return 1; }
# beside N [PORT]: scenario N as it runs beside others: its CSE user (CSE_USER_N); with PORT,
# the agent's port for a relay of its own (relay_start) on MEF_IP:PORT, its mode and logs in
# $T/relay-sN.*. Before scenario_begin, which writes the agent's configuration.
beside() {
        eval CSE_USER=\$CSE_USER_$1
        CSE_UID=$(id -u $CSE_USER)
        [ -z "${2:-}" ] || { PORT=$2; RELAY_MODE=$T/relay-s$1.mode; RELAY_LOG=$T/relay-s$1; }
}

# alongside [--serial] FUNCTION...: the scenarios in these functions at the same time, each in a
# subshell of its own (its own CUR, PID_AGENT, ... and whatever it sets: CSE_USER, PORT, a relay
# of its own), its TAP (and stderr) into a file; then their TAP in the order given, numbered on
# from here.
# --serial: one after another all the same (when they would share a CSE user). A scenario that
# does not get to its end is a failure.
PIDS_ALONGSIDE=
alongside() {
        local serial=0 f pid l
        [ "$1" = --serial ] && { serial=1; shift; }
        for f in "$@"; do
                (
                        N=0 FAILED=0 PID_AGENT= PID_WATCH= PID_NOTIFY= PID_HOLD= PID_FAKE= PID_RELAY=
                        trap 'for p in $PID_AGENT $PID_WATCH $PID_NOTIFY $PID_HOLD $PID_FAKE $PID_RELAY; do stop_pid "$p"; done' EXIT
                        trap 'exit 1' INT TERM HUP
                        t0=$(date +%s)
                        "$f"
                        echo "# alongside: $f ran to its end ($(($(date +%s) - t0)) s)"
                ) > "$T/alongside-$f.tap" 2>&1 &
                pid=$!
                PIDS_ALONGSIDE="$PIDS_ALONGSIDE $pid"
                [ $serial = 0 ] || wait $pid
        done
        wait $PIDS_ALONGSIDE
        PIDS_ALONGSIDE=
        for f in "$@"; do
                while IFS= read -r l; do
                        if [[ $l =~ ^(not\ )?ok\ [0-9]+\ (.*)$ ]]; then
                                N=$((N + 1))
                                [ -z "${BASH_REMATCH[1]}" ] || FAILED=$((FAILED + 1))
                                echo "${BASH_REMATCH[1]}ok $N ${BASH_REMATCH[2]}"
                        elif [[ $l == "#"* ]]; then
                                echo "$l"
                        else # what went to stderr: a comment in TAP
                                echo "# $l"
                        fi
                done < "$T/alongside-$f.tap"
                grep -q "^# alongside: $f ran to its end" "$T/alongside-$f.tap" ||
                        { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $f did not run to its end"; }
        done
}

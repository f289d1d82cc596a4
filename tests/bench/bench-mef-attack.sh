#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# msce-mef at its default limits under attack by clients without credentials (issue 12): for
# each row, how long a legitimate msce-agent --once enrolment takes meanwhile (connect 10 s and
# exchange 30 s timeouts, the agent's defaults), whether it succeeds, and how many log lines
# the MEF writes per minute. The attacker is tests/integration/mef-attack.c, from 127.0.2.x;
# the agent connects from 127.0.0.1.
# Goal: every enrolment succeeds, none above 1 s; no row above 100 log lines per minute.
#   meson test -C BUILD --benchmark --suite bench -v mef-attack
#   or: tests/bench/bench-mef-attack.sh BUILD [ROW_SECONDS]   (default 15, or $BENCH_ROW_SECONDS)
#   $BENCH_MEF: another msce-mef binary to measure (e.g. one built before issue 12);
#   $BENCH_ENROLS: enrolments per row (default 4); $BENCH_SOURCES: attacker addresses for every
#   row instead of the rows' own (8, 16, 3, 4, 4).
# Needs root (the agent puts keys into the keyring of a user of the run's own, msce-t<PID>-cse).
. "$(dirname "$0")/bench-session.sh"

B=$(cd "$1" && pwd)
row_s=${2:-${BENCH_ROW_SECONDS:-15}}
enrols=${BENCH_ENROLS:-4}
bench_need_root "keyring of another user"
ATTACK=$B/tests/integration/mef-attack

W=$(mktemp -d /var/tmp/msce-bench-attack-XXXXXX)
. "$(dirname "$0")/bench-lib.sh"
MEF=${BENCH_MEF:-$MEF}
APID=
cleanup() {
        [ -n "$APID" ] && kill "$APID" 2>/dev/null || true
        bench_cleanup
}
trap cleanup EXIT

bench_one_node "$W/agent.conf"
sed -i 's/^connect_timeout = .*/connect_timeout = 10s/; s/^exchange_timeout = .*/exchange_timeout = 30s/' "$W/agent.conf"

# one enrolment: "MS RC"
enrol() {
        rm -f "$W/state/profile.sealed"
        local t0 t1 rc=0
        t0=$(date +%s%N)
        "$AGENT" --once -c "$W/agent.conf" >"$W/agent.log" 2>&1 || rc=$?
        t1=$(date +%s%N)
        echo "$(((t1 - t0) / 1000000)) $rc"
}

# measure NAME: $enrols enrolments, 1 s apart; prints the latencies, marks failures
measure() {
        local i out ms rc list=() failed=0 worst=0
        for ((i = 0; i < enrols; i++)); do
                out=$(enrol)
                ms=${out% *} rc=${out#* }
                if [ "$rc" = 0 ]; then
                        list+=("${ms}")
                else
                        list+=("${ms}(exit $rc)")
                        failed=$((failed + 1))
                fi
                [ "$ms" -gt "$worst" ] && worst=$ms
                sleep 1
        done
        echo "${list[*]} ms; $failed of $enrols failed; worst ${worst} ms"
}

echo "machine: $(nproc) cores, $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "msce-mef: $MEF; $row_s s per row, $enrols enrolments per row (msce-agent --once)"
bench_agent_warm=$(enrol)
printf '  %-44s %s\n' "quiet" "$(measure)"

# row NAME MODE N SOURCES
row() {
        local name=$1 mode=$2 n=$3 sources=${BENCH_SOURCES:-$4} l0 l1 res
        l0=$(wc -l <"$W/mef.err")
        "$ATTACK" "$mode" "$MEF_PORT" "$n" "$row_s" "$sources" >"$W/attack.out" 2>&1 &
        APID=$!
        sleep 2
        res=$(measure)
        wait "$APID" || true
        APID=
        # the summaries of the last window come up to 10 s later
        sleep 11
        l1=$(wc -l <"$W/mef.err")
        printf '  %-44s %s; log: %d lines (%d per minute)\n' "$name ($sources sources)" "$res" $((l1 - l0)) \
                $(((l1 - l0) * 60 / (row_s + 11)))
        printf '  %-44s attacker: %s\n' "" "$(cat "$W/attack.out")"
        kill -0 "$MEF_PID" || { echo "msce-mef died"; tail -n 20 "$W/mef.err"; exit 1; }
}
MEF_PORT=$PORT
row "1000 idle TCP connections held" hold 1000 8
row "1000 connections at 1 byte/s, reconnecting" dribble 1000 16
row "90 silent reconnecting sockets" silent 90 3
row "200 clients sending garbage" garbage 200 4
row "wrong PSK identity in a loop, 4 processes" wrongpsk 4 4
printf '  %-44s %s\n' "quiet again" "$(measure)"
echo "msce-mef: $(sed -n 's/^VmRSS:[[:space:]]*//p' "/proc/$MEF_PID/status") RSS, $(find "/proc/$MEF_PID/fd" -mindepth 1 | wc -l) fds;" \
        "$(wc -l <"$W/mef.err") log lines in all; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# SPDX-License-Identifier: MIT
# Shared setup of the bench scripts (sourced, not run): a private msce-mef
# on 127.0.0.1 port 0 with N psk nodes, and agent configurations for them. The store lives in
# a directory on the root file system (not tmpfs) so SQLite pays for its syncs as in service.
# Needs: B (build dir), W (work dir), both absolute. Sets MEF_PID and PORT.
# Users: bench_user TAG makes one of this run's own (msce-t<PID>-TAG, tests/integration/
# test-user.sh, so two runs or a test beside never share a user or its keyring), bench_cse_user
# the one the agent configurations name (CSE_USER); bench_drop_users (the script's EXIT trap)
# empties their keyrings and removes them.

MEF=$B/msce-mef
AGENT=$B/msce-agent
MEF_PID=
PORT=
CSE_USER=
BENCH_USERS=
TEST_USER_SH=$(cd "$(dirname "${BASH_SOURCE[0]}")/../integration" && pwd)/test-user.sh

# bench_stop PIDVAR: stops the process whose pid the variable PIDVAR holds (if any), empties it.
bench_stop() {
        local pid=${!1}
        if [ -n "$pid" ]; then
                kill "$pid" 2>/dev/null || true
                wait "$pid" 2>/dev/null || true
        fi
        printf -v "$1" ''
}
bench_stop_mef() { bench_stop MEF_PID; }

# bench_mef_init NODES [EXTRA_CONF_LINES]: configuration, store and NODES nodes named node-I
# with KpmID kpm-I and a 32-byte Kpm in $W/kpm-I.hex (0600), one target each. $BENCH_SYNC:
# [store] synchronous (default: the MEF's own, full).
bench_mef_init() {
        local nodes=$1 extra=${2:-} i
        # a bench enrols one node back to back: the per-node rate limit would answer 429
        {
                printf '[server]\nlisten = 127.0.0.1:0\nfqdn = 127.0.0.1\nbase = /msce\n'
                printf '[store]\npath = %s/mef.db\nmaster_key = %s/master.key\n' "$W" "$W"
                [ -z "${BENCH_SYNC:-}" ] || printf 'synchronous = %s\n' "$BENCH_SYNC"
                printf '[limits]\nenrolments_per_node = 0\n%s\n' "$extra"
        } >"$W/mef.conf"
        "$MEF" --config "$W/mef.conf" init >"$W/mefctl.log" 2>&1 || { cat "$W/mefctl.log" >&2; return 1; }
        for ((i = 1; i <= nodes; i++)); do
                "$MEF" --config "$W/mef.conf" node add "node-$i" --cse-id "/mn-cse-$i" \
                        --cse-base https://in.example.net:8443/~/in-cse/in-name --psk-id "kpm-$i" \
                        --generate-psk "$W/kpm-$i.hex" --target /in-cse >>"$W/mefctl.log" 2>&1 ||
                        { cat "$W/mefctl.log" >&2; return 1; }
        done
}

# bench_port FILE PID: in REPLY the port of the "listening on 127.0.0.1:PORT" line that PID
# writes to FILE, once it is there (up to 10 s, and not after PID is gone).
bench_port() {
        local i
        for ((i = 0; i < 200; i++)); do
                REPLY=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$1")
                [ -n "$REPLY" ] && return 0
                kill -0 "$2" 2>/dev/null || break
                sleep 0.05
        done
        return 1
}

# bench_serve PIDVAR NAME LOG COMMAND...: COMMAND in the background, its pid in the variable
# PIDVAR, its output in LOG.out and LOG.err; REPLY the port it says it listens on (bench_port).
# NAME says which server did not start.
bench_serve() {
        local pidvar=$1 name=$2 log=$3
        shift 3
        : >"$log.out"
        "$@" >"$log.out" 2>"$log.err" &
        printf -v "$pidvar" %s "$!"
        bench_port "$log.out" "$!" && return 0
        echo "$name did not start:" >&2
        cat "$log.err" >&2
        return 1
}

# bench_mef_start [WRAPPER...]: start serve (optionally under e.g. taskset), wait for its port.
bench_mef_start() {
        bench_serve MEF_PID msce-mef "$W/mef" "$@" "$MEF" --config "$W/mef.conf" serve && PORT=$REPLY
}

# The raw wolfSSL PSK server of bench-mef-load.c (handshake, request, fixed answer, nothing
# stored) beside the MEF: bench_nodes_file N writes $W/nodes, msce-loadgen's lines for nodes
# 1..N of bench_mef_init (0600); bench_raw_start [WRAPPER...] starts the server on them and sets
# RAW_PID and RAW_PORT; bench_stop_raw stops it.
RAW_PID=
RAW_PORT=
bench_nodes_file() {
        (
                umask 077
                for ((i = 1; i <= $1; i++)); do
                        printf 'node-%s kpm-%s %s\n' "$i" "$i" "$(tr -d '\n' <"$W/kpm-$i.hex")"
                done >"$W/nodes"
        )
}
bench_raw_start() {
        bench_serve RAW_PID "raw server" "$W/raw" "$@" "$B/tests/bench/bench-mef-load" server "$W/nodes" 3600 &&
                RAW_PORT=$REPLY
}
bench_stop_raw() { bench_stop RAW_PID; }

# bench_agent_conf FILE NODE_NUMBER STATE_DIR [EXTRA [mef] LINES...]: psk, host-sealed profile
# for $CSE_USER.
bench_agent_conf() {
        local f=$1 n=$2 state=$3 l
        shift 3
        {
                printf '[node]\nid = node-%s\n' "$n"
                printf '[mef]\nuri = https://127.0.0.1:%s/msce\npsk_identity = kpm-%s\npsk_file = %s\n' \
                        "$PORT" "$n" "$W/kpm-$n.hex"
                for l in "$@"; do printf '%s\n' "$l"; done
                printf '[consumer]\nuser = %s\n' "$CSE_USER"
                printf '[seal]\nbackend = host\nstate_dir = %s\nruntime_dir = %s\n' "$state" "$W/run"
                printf '[timing]\nconnect_timeout = 2s\nexchange_timeout = 10s\n'
        } >"$f"
}

# bench_cleanup: what an EXIT trap undoes (msce-mef, the raw server, the users, the work
# directory).
bench_cleanup() {
        bench_stop_mef
        bench_stop_raw
        bench_drop_users
        rm -rf "$W"
}

# bench_one_node CONF: CSE_USER, msce-mef serving one node (node-1), and CONF, that node's agent
# configuration with its state in $W/state.
bench_one_node() {
        bench_cse_user
        bench_mef_init 1
        bench_mef_start
        bench_agent_conf "$1" 1 "$W/state"
}

# bench_user TAG: sets REPLY to a new user of this run's own
bench_user() {
        REPLY=$(sh "$TEST_USER_SH" add $$ "$1") || { echo "cannot create a test user (root?)" >&2; return 1; }
        BENCH_USERS="$BENCH_USERS $REPLY"
}
bench_cse_user() { bench_user cse && CSE_USER=$REPLY; }
bench_drop_users() {
        # shellcheck disable=SC2086
        [ -z "$BENCH_USERS" ] || sh "$TEST_USER_SH" del $BENCH_USERS
        BENCH_USERS=
}

# ---- fleet scale (bench-mef-fleet.sh, bench-mef-pg.sh): msce-loadgen against a store made by
# bench-nodes. bench_fleet_begin NAME makes the work directory W (removed at exit, after
# msce-mef is stopped) and reads the shared parameters from the environment (defaults:
# $BENCH_SECONDS 10, $BENCH_STORM_GATEWAYS 10000 within $BENCH_STORM_SPREAD 10 s, at most
# $BENCH_STORM_CONCURRENCY 256 connections in flight, backoff capped at $BENCH_BACKOFF_MAX
# 30000 ms).
bench_fleet_begin() {
        W=$(mktemp -d "/var/tmp/msce-bench-$1-XXXXXX")
        trap 'bench_stop_mef; rm -rf "$W"' EXIT
        secs=${BENCH_SECONDS:-10}
        storm_n=${BENCH_STORM_GATEWAYS:-10000}
        spread=${BENCH_STORM_SPREAD:-10}
        storm_conc=${BENCH_STORM_CONCURRENCY:-256}
        backoff_max=${BENCH_BACKOFF_MAX:-30000}
        LOADGEN=$B/msce-loadgen
        NODES=$B/tests/bench/bench-nodes
}

# bench_seconds_since T0: whole seconds since T0 (date +%s.%N)
bench_seconds_since() {
        awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }'
}

# bench_fleet_target: the target /in-cse in the store of $W/mef.conf, and $W/targets for
# msce-loadgen (the target fetching the Kpsa).
bench_fleet_target() {
        (umask 077 && rm -f "$W/in.hex" &&
                "$MEF" --config "$W/mef.conf" target add /in-cse --psk-id in-cse-psk --generate-psk "$W/in.hex" >/dev/null &&
                printf '/in-cse in-cse-psk %s\n' "$(cat "$W/in.hex")" >"$W/targets")
}

# bench_storm GATEWAYS_FILE: the power-on storm against the running msce-mef, and its 503s.
bench_storm() {
        local rc=0
        "$LOADGEN" --gateways "$1" --targets "$W/targets" --spread "$spread" --concurrency "$storm_conc" \
                --procs 2 --backoff-max "$backoff_max" --timeout 1800 "https://127.0.0.1:$PORT/msce" | sed 's/^/  /' || rc=$?
        echo "  msce-loadgen exit $rc; 503 answers logged by the MEF: $(grep -c ' -> 503' "$W/mef.err" || true)"
}

# bench_rate GATEWAYS_FILE [--server-pid PID...]: msce-loadgen's first line (enrolments/s is
# its second field) after $secs s of 64 connections.
bench_rate() {
        local gateways=$1
        shift
        "$LOADGEN" --gateways "$gateways" --count 64 --duration "$secs" --concurrency 64 \
                --procs 2 --exchange-timeout 10 "$@" "https://127.0.0.1:$PORT/msce" | head -1
}

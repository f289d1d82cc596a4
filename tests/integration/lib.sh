# SPDX-License-Identifier: MIT
# The harness the integration scripts share (POSIX sh; bash sources it too). A script starts
#         . "$(dirname "$0")/lib.sh"
# and then has:
#   TAP        ok, not_ok, skip (one test), check DESCRIPTION COMMAND..., bail, skip_all (the
#              whole script: "1..0 # SKIP", exit 0), tap_done (the plan, exit 1 on a failure),
#              fail MESSAGE (not_ok and tap_done: for scripts that stop at the first failure).
#              meson runs every script with protocol: 'tap'.
#   needs      need_root WHY, need_cmds CMD..., need_exec PATH...: skip_all when missing.
#   cleanup    at_exit COMMAND: run at exit, last registered first, whatever ended the script
#              (also INT, TERM, HUP). The commands are evaluated then, with the values of then.
#   names      tmpdir NAME: T, a fresh mktemp directory (removed at exit unless KEEP=1);
#              test_user TAG: a system user of this run's own, msce-t<PID>-TAG (test-user.sh),
#              removed at exit with its persistent keyring; own_session "$@": re-run the script
#              in a session keyring of its own; keyring_clear UID: our keys out of that user's
#              persistent keyring; read_key USER NAME: msce:NAME as that user reads it (hex).
#   waiting    wait_for SECONDS COMMAND...: poll every 0.1 s until the command succeeds, false
#              after SECONDS (a deadline for a hang, never a speed requirement); wait_line
#              SECONDS FILE ERE [PID]: until FILE has such a line (or PID is gone).
#   MEF        mef_start CONF_IN [LOGDIR]: msce-mef serve with CONF_IN's @PORT@ set to PORT (0 the
#              first time: the MEF binds, then prints the port it got; later the same port
#              again), sets PORT and MEF_PID, the logs in LOGDIR/mef.{out,err}; mef_stop;
#              mef_configure CONF_IN writes MEF_CONF (CONF_IN without .in) before a start;
#              mef_conf [LINES...] writes the usual $T/mef.conf.in and configures it;
#              mefctl ARGS...: msce-mef ARGS with MEF_CONF, its output in $T/mefctl.out,
#              shown as comments on failure; mef_psk_setup NODE KPM_ID CSE_ID: init, a
#              target and a psk node (kpm, tpsk). No port is chosen before it is bound: a free
#              port looked up first could be taken by another process meanwhile. Several
#              instances: PORT= mef_start CONF_IN LOGDIR again, keeping each MEF_PID and PORT;
#              every one started is stopped at exit; MEF_WRAP: a function the MEF is run
#              through (ending in exec "$@"). mef_term: SIGTERM, true on exit status 0;
#              mef_term_clean: that, and no sanitizer report in its log;
#              mef_store DIR: the [store] section, SQLite in DIR, or the PostgreSQL of
#              tests/pg-run.sh (need_pg) when MEF_BACKEND=postgresql; sanitizer_clean FILE...
#   HTTP       request METHOD TARGET ORIGIN [BODY]: a oneM2M request to $FQDN on stdout;
#              psk_exchange PSK IDENTITY [1.2|1.3 [S_CLIENT_OPTIONS...]] < REQUEST: openssl s_client
#              to 127.0.0.1:$PORT, the transcript on stdout (never fails); http_status, json_str
#              KEY: read a transcript on stdin; answers CODE COMMAND...: the command's
#              transcript in $T/out has HTTP status CODE.
#   agent      agent_custody USER STATE_DIR RUNTIME_DIR: an agent configuration's [consumer]
#              and [seal] sections (host backend); mscectl: ctl_run WANT ARGS...: $CTL with
#              its output in $T/out and $T/err, RC its status, not_ok unless WANT; out_has ERE:
#              $T/out has such a line; fake_agent: FAKE_PID, a process whose comm is msce-agent
#              standing in for the agent (the caller stops it).
# not_ok shows the files named in LIB_SHOW (default "$T/out $T/err") as TAP comments.

LIB_HERE=$(cd "$(dirname "$0")" && pwd)
TEST_USER_SH=$LIB_HERE/test-user.sh
N=0
FAILED=0
LIB_AT_EXIT=
LIB_USERS=
LIB_LOCK_PID=

# ---- TAP ----

ok() { N=$((N + 1)); echo "ok $N - $1"; }
not_ok() {
        N=$((N + 1))
        FAILED=$((FAILED + 1))
        echo "not ok $N - $1"
        for f in ${LIB_SHOW-${T:+$T/out $T/err}}; do
                [ -s "$f" ] && sed "s|^|#   $(basename "$f"): |" "$f"
        done
        return 0
}
skip() { N=$((N + 1)); echo "ok $N # SKIP $1"; }
check() { # check DESCRIPTION COMMAND...: ok when the command succeeds
        lib_d=$1
        shift
        if "$@"; then ok "$lib_d"; else not_ok "$lib_d"; fi
}
bail() { # bail REASON [FILE...]: stop here; the files are shown as comments
        echo "Bail out! $1"
        shift
        for f in "$@"; do [ -s "$f" ] && sed 's/^/# /' "$f"; done
        exit 1
}
skip_all() { echo "1..0 # SKIP $1"; exit 0; }
fail() { not_ok "$*"; tap_done; } # a fail-fast script's failed check: stop there
tap_done() {
        echo "1..$N"
        [ "$FAILED" = 0 ] && exit 0
        exit 1
}

# ---- needs ----

need_root() { [ "$(id -u)" = 0 ] || skip_all "needs root ($1)"; }
need_cmds() { for c in "$@"; do command -v "$c" > /dev/null 2>&1 || skip_all "$c is missing"; done; }
need_exec() { for p in "$@"; do [ -x "$p" ] || skip_all "$p not built"; done; }
need_pg() { [ -n "${MSCE_TEST_PG_URI:-}" ] || skip_all "no PostgreSQL: run under tests/pg-run.sh"; }
# need_psql (after tmpdir): psql beside PostgreSQL's server binaries, and the password as it takes
# it ($T/pgpass, not the environment or argv); then pg_sql SQL runs SQL on the test's database
# (rows as a|b; without SQL, what stdin holds: a secret stays out of argv) and pg_restart_with 'NAME = VALUE'... sets each (ALTER SYSTEM) and restarts it.
need_psql() {
        need_pg
        PSQL=${MSCE_TEST_PG_BINDIR:-}/psql
        [ -x "$PSQL" ] || skip_all "psql not found beside PostgreSQL's server binaries"
        (umask 077 && printf '*:*:*:msce:%s\n' "$(cat "$MSCE_TEST_PG_PASSWORD_FILE")" > "$T/pgpass")
}
pg_sql() { PGPASSFILE="$T/pgpass" "$PSQL" -X -qAt -v ON_ERROR_STOP=1 "$MSCE_TEST_PG_URI" ${1+-c "$1"}; }
pg_restart_with() {
        for lib_s in "$@"; do pg_sql "ALTER SYSTEM SET $lib_s" || return 1; done
        "$MSCE_TEST_PG_CTL" stop > "$T/pg-ctl.out" 2>&1 && "$MSCE_TEST_PG_CTL" start >> "$T/pg-ctl.out" 2>&1
}

# ---- cleanup ----

at_exit() {
        LIB_AT_EXIT="$1
$LIB_AT_EXIT"
}
lib_exit() {
        lib_rc=$?
        trap - EXIT
        set +e
        while IFS= read -r lib_cmd; do
                [ -n "$lib_cmd" ] && eval "$lib_cmd"
        done << EOF
$LIB_AT_EXIT
EOF
        exit $lib_rc
}
trap lib_exit EXIT
trap 'exit 1' INT TERM HUP

# stop_pid PID [SIGNAL]: signal it, wait at most 5 s, then SIGKILL; reaped. Empty PID: nothing.
stop_pid() {
        [ -n "${1:-}" ] || return 0
        kill -"${2:-TERM}" "$1" 2> /dev/null || { wait "$1" 2> /dev/null || :; return 0; }
        wait_for 5 lib_gone "$1" || kill -KILL "$1" 2> /dev/null
        wait "$1" 2> /dev/null || : # its status: a signal, as asked
        return 0
}
lib_gone() { ! kill -0 "$1" 2> /dev/null; }
# gone_or_older PID SECONDS: PID has ended, or has run for SECONDS (for wait_for: a process that
# must outwait a timeout of SECONDS, and ends when it gives up instead)
gone_or_older() { lib_gone "$1" || [ "$(ps -o etimes= -p "$1" | tr -d ' ')" -ge "$2" ]; }
# lib_comm_is PID NAME: PID runs NAME (/proc/PID/comm; a fork says its parent's name until it execs)
lib_comm_is() { [ "$(cat "/proc/$1/comm" 2> /dev/null)" = "$2" ]; }

# ---- names of this run's own ----

tmpdir() {
        T=$(mktemp -d "/tmp/$1-XXXXXX") || exit 2
        at_exit 'if [ "${KEEP:-0}" = 1 ]; then echo "# kept $T"; else rm -rf "$T"; fi'
}

# A session keyring of our own: nothing leaks into or from the caller's (keyctl's "Joined
# session keyring" on stderr is dropped). Call before anything else is set up, with "$@".
own_session() {
        [ -n "${MSCE_TEST_SESSION:-}" ] && return 0
        lib_sh=/bin/sh
        [ -n "${BASH_VERSION:-}" ] && lib_sh=/bin/bash
        MSCE_TEST_SESSION=1 exec keyctl session - "$lib_sh" -c 'exec 2>&3 3>&-; exec "$0" "$@"' \
                "$lib_sh" "$0" "$@" 3>&2 2> /dev/null
}

keyring_clear() { # keyring_clear UID: take our keys out of that user's persistent keyring
        keyctl session - sh -c "p=\$(keyctl get_persistent @s $1) &&
                r=\$(keyctl search @s keyring msce 2> /dev/null) && keyctl revoke \$r && keyctl unlink \$r \$p" \
                > /dev/null 2>&1
        return 0
}

# test_user TAG: prints the name; false when it cannot be made. Call as U=$(test_user TAG) ||
# ...; then at_exit is registered by test_user_cleanup U (a subshell cannot register it).
test_user() { sh "$TEST_USER_SH" add $$ "$1"; }
test_user_cleanup() { # keys out of its keyring, then the user
        at_exit "keyring_clear \$(id -u $1 2> /dev/null || echo none); sh \"\$TEST_USER_SH\" del $1"
}

# read_key USER NAME: what a CSE does (docs/cse-integration.md), as USER in a session keyring
# of its own: msce:NAME from USER's persistent keyring, as lowercase hex on stdout. keyctl's
# errors go to $T/keyctl.err.
read_key() {
        su -s /bin/sh "$1" -c 'keyctl session - /bin/sh -s' 2> "$T/keyctl.err" << KEYCTL
set -e
keyctl get_persistent @s > /dev/null
ring=\$(keyctl search @s keyring msce)
key=\$(keyctl search "\$ring" user "msce:$2")
keyctl pipe "\$key" | od -An -tx1 -v | tr -d ' \n'
KEYCTL
}

# ---- waiting ----

# ms: the wall clock in milliseconds, for durations
ms() { date +%s%3N; }
# wait_for SECONDS CMD...: until CMD succeeds; false after SECONDS (in ms: whole seconds gave
# anything from SECONDS - 1 on)
wait_for() {
        lib_end=$(($(ms) + $1 * 1000))
        shift
        while ! "$@"; do
                [ "$(ms)" -lt $lib_end ] || return 1
                sleep 0.1
        done
}

# wait_line SECONDS FILE ERE [PID]: until FILE has a line matching ERE; false after SECONDS or
# as soon as PID (a server writing FILE) is gone without writing it.
wait_line() {
        lib_s=$1
        shift
        wait_for "$lib_s" lib_line_or_gone "$@" || :
        grep -qaE -- "$2" "$1" 2> /dev/null
}
lib_line_or_gone() { grep -qaE -- "$2" "$1" 2> /dev/null || { [ -n "${3:-}" ] && ! kill -0 "$3" 2> /dev/null; }; }

# sqlite_lock DB: another process (python3) holds DB's write lock (BEGIN EXCLUSIVE) until
# sqlite_unlock; false when it could not take it. Its stdin is a FIFO on fd 3: closing it
# lets go.
sqlite_lock() {
        rm -f "$T/lock.fifo"
        mkfifo "$T/lock.fifo"
        python3 -c '
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
' "$1" < "$T/lock.fifo" > "$T/lock.out" &
        LIB_LOCK_PID=$!
        at_exit '[ -z "$LIB_LOCK_PID" ] || stop_pid "$LIB_LOCK_PID"'
        exec 3> "$T/lock.fifo"
        wait_line 30 "$T/lock.out" '^locked$' "$LIB_LOCK_PID"
}
# sqlite_unlock: the lock let go; false when its holder failed.
sqlite_unlock() {
        exec 3>&-
        local pid=$LIB_LOCK_PID
        LIB_LOCK_PID=
        wait "$pid"
}

# ---- the MEF ----

MEF_PID=
PORT=
LIB_MEF_PIDS=
mef_started() { # true once it listens (lib_got: the port) or is gone (lib_got empty)
        lib_got=$(sed -n 's/^listening on [0-9.]*:\([0-9][0-9]*\)$/\1/p' "$MEF_LOGS/mef.out" 2> /dev/null)
        if [ -z "$lib_got" ] && [ "$lib_want" != 0 ] && grep -qs 'listening on' "$MEF_LOGS/mef.err"; then
                lib_got=$lib_want
        fi
        [ -n "$lib_got" ] || ! kill -0 "$MEF_PID" 2> /dev/null
}
# mef_dir_conf DIR: DIR/mef.conf of a MEF that only the CLI uses (loopback, port 0), its SQLite
# store and master key in DIR.
mef_dir_conf() {
        mkdir -p "$1"
        printf '[server]\nlisten = 127.0.0.1:0\nfqdn = mef.test\nbase = /msce\n[store]\npath = %s/mef.db\nmaster_key = %s/master.key\n' \
                "$1" "$1" > "$1/mef.conf"
}
# mef_key_id FILE: the master key ID in msce-mef's output FILE (init, backup, rekey, restore)
mef_key_id() { sed -n 's/^Master key ID \([0-9a-f]\{32\}\)[ .:].*/\1/p' "$1"; }
# mef_store DIR: the [store] section of a MEF whose files are in DIR: its SQLite database there,
# or with MEF_BACKEND=postgresql the database of tests/pg-run.sh.
mef_store() {
        printf '[store]\n'
        if [ "${MEF_BACKEND:-sqlite}" = postgresql ]; then
                printf 'backend = postgresql\nuri = %s\npassword_file = %s\n' "$MSCE_TEST_PG_URI" \
                        "$MSCE_TEST_PG_PASSWORD_FILE"
        else
                printf 'path = %s/mef.db\n' "$1"
        fi
        printf 'master_key = %s/master.key\n' "$1"
}
# mef_conf [LINES...]: $T/mef.conf.in as most tests want it (loopback, port @PORT@, FQDN
# ${FQDN:-127.0.0.1}, base /msce, the store in $T), the LINES after it; then mef_configure.
mef_conf() {
        {
                printf '[server]\nlisten = 127.0.0.1:@PORT@\nfqdn = %s\nbase = /msce\n' "${FQDN:-127.0.0.1}"
                mef_store "$T"
                for l in "$@"; do printf '%s\n' "$l"; done
        } > "$T/mef.conf.in"
        mef_configure "$T/mef.conf.in"
}
mef_configure() { # mef_configure CONF_IN: MEF_CONF (CONF_IN without .in), @PORT@ as PORT or 0
        MEF_CONF_IN=$1
        MEF_CONF=${MEF_CONF_IN%.in}
        sed "s/@PORT@/${PORT:-0}/" "$MEF_CONF_IN" > "$MEF_CONF"
}
mef_start() { # mef_start CONF_IN [LOGDIR]
        MEF_LOGS=${2:-$T}
        lib_want=${PORT:-0}
        [ -n "$LIB_MEF_PIDS" ] || at_exit 'for lib_p in $LIB_MEF_PIDS; do stop_pid "$lib_p"; done'
        for lib_attempt in 1 2 3; do
                mef_configure "$1"
                # emptied here, not by the job's redirections: those happen only once it runs,
                # and a previous MEF's "listening on" must not be read for this one's
                : > "$MEF_LOGS/mef.out"
                : > "$MEF_LOGS/mef.err"
                # MEF_WRAP: a function to run it through, which ends in exec "$@" (so that MEF_PID
                # is the MEF's), e.g. to set its environment
                "${MEF_WRAP:-exec}" "$MEF" --config "$MEF_CONF" serve >> "$MEF_LOGS/mef.out" 2>> "$MEF_LOGS/mef.err" &
                MEF_PID=$!
                LIB_MEF_PIDS="$LIB_MEF_PIDS $MEF_PID"
                wait_for 30 mef_started || :
                if [ -n "$lib_got" ]; then
                        PORT=$lib_got
                        return 0
                fi
                echo "# msce-mef did not start on port $lib_want (attempt $lib_attempt):"
                sed 's/^/#   /' "$MEF_LOGS/mef.err"
                stop_pid "$MEF_PID"
                MEF_PID=
                # a fixed port that another process took meanwhile may be free again
                [ "$lib_want" != 0 ] || return 1
                sleep 1
        done
        return 1
}
mef_stop() { # mef_stop [SIGNAL]
        stop_pid "$MEF_PID" "${1:-TERM}"
        MEF_PID=
}
# mef_term: SIGTERM to MEF_PID; true when it exits with status 0 (within 30 s, then SIGKILL).
mef_term() {
        lib_p=$MEF_PID
        MEF_PID=
        kill -TERM "$lib_p" 2> /dev/null || :
        wait_for 30 lib_gone "$lib_p" || kill -KILL "$lib_p" 2> /dev/null
        wait "$lib_p"
}
# mef_term_clean: mef_term, and no sanitizer report in its log; false otherwise, saying why
mef_term_clean() {
        lib_rc=0
        mef_term || lib_rc=$?
        [ "$lib_rc" = 0 ] || { echo "# msce-mef exited $lib_rc on SIGTERM"; return 1; }
        sanitizer_clean "$MEF_LOGS/mef.err" || { echo "# a sanitizer report in $MEF_LOGS/mef.err"; return 1; }
}
mefctl() {
        "$MEF" --config "$MEF_CONF" "$@" > "$T/mefctl.out" 2>&1 || { sed 's/^/# /' "$T/mefctl.out"; return 1; }
}
# mef_psk_setup NODE KPM_ID CSE_ID: mefctl init, the target $TARGET (PSK identity in-cse-psk)
# and the psk node NODE naming it; kpm and tpsk their keys (hex). False at the first failure.
mef_psk_setup() {
        mefctl init &&
                mefctl target add "$TARGET" --psk-id in-cse-psk --generate-psk "$T/tpsk.hex" &&
                mefctl node add "$1" --cse-id "$3" --cse-base https://in.example.net:8443/~/in-cse/in-name \
                        --psk-id "$2" --generate-psk "$T/kpm.hex" --target "$TARGET" || return 1
        kpm=$(tr -d '\n' < "$T/kpm.hex")
        tpsk=$(tr -d '\n' < "$T/tpsk.hex")
}
# sanitizer_clean FILE...: false when a server's log holds a sanitizer report (the ASan build)
sanitizer_clean() { ! grep -qsE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$@"; }

# ---- certificates: P-256 (TS-0003 10.2.3 mandates ECDSA suites), valid for two days ----

# pki_ca DIR: a CA, DIR/ca.key and DIR/ca.pem. pki_cert DIR NAME [SAN]: DIR/NAME.key and
# DIR/NAME.pem (CN=NAME) signed by that CA, with the subjectAltName SAN when given (e.g.
# DNS:mef.test,IP:127.0.0.1, for a server). An openssl that fails fails the test.
lib_pki() { openssl "$@" 2> /dev/null || fail "openssl $1 failed"; }
pki_ca() {
        lib_pki ecparam -name prime256v1 -genkey -noout -out "$1/ca.key"
        lib_pki req -x509 -new -key "$1/ca.key" -subj /CN=msce-test-ca -days 2 -out "$1/ca.pem"
}
pki_cert() {
        lib_pki ecparam -name prime256v1 -genkey -noout -out "$1/$2.key"
        lib_pki req -new -key "$1/$2.key" -subj "/CN=$2" -out "$1/$2.csr"
        if [ -n "${3:-}" ]; then
                printf 'subjectAltName=%s\n' "$3" > "$1/$2.ext"
                lib_pki x509 -req -in "$1/$2.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 2 \
                        -extfile "$1/$2.ext" -out "$1/$2.pem"
        else
                lib_pki x509 -req -in "$1/$2.csr" -CA "$1/ca.pem" -CAkey "$1/ca.key" -CAcreateserial -days 2 \
                        -out "$1/$2.pem"
        fi
}

# ---- HTTP over TLS with openssl s_client ----

# request METHOD TARGET ORIGIN [BODY]: the request on stdout (Host: $FQDN, a fresh X-M2M-RI)
request() {
        printf '%s %s HTTP/1.1\r\nHost: %s\r\nX-M2M-Origin: %s\r\nX-M2M-RI: ri-%s\r\nX-M2M-RVI: 3\r\nAccept: application/json\r\n' \
                "$1" "$2" "${FQDN:-127.0.0.1}" "$3" "$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
        if [ -n "${4:-}" ]; then
                printf 'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' "${#4}" "$4"
        else
                printf '\r\n'
        fi
}
# psk_exchange PSK IDENTITY [VERSION [S_CLIENT_OPTIONS...]] < REQUEST: the whole s_client
# transcript (the session summary, then the HTTP response) with 127.0.0.1:$PORT over TLS VERSION
# 1.3 (default: TLS_AES_128_GCM_SHA256) or 1.2 (ECDHE-PSK-AES128-CBC-SHA256); 20 s at most.
# Never fails: the caller judges the transcript.
psk_exchange() {
        lib_psk=$1 lib_id=$2
        lib_v=${3:-1.3}
        [ $# -lt 3 ] || shift
        shift 2
        if [ "$lib_v" = 1.2 ]; then
                set -- -tls1_2 -cipher ECDHE-PSK-AES128-CBC-SHA256 "$@"
        else
                set -- -tls1_3 -ciphersuites TLS_AES_128_GCM_SHA256 "$@"
        fi
        timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -psk "$lib_psk" -psk_identity "$lib_id" \
                -ign_eof "$@" 2>&1 || :
}
# The s_client options that print the session's exported keying material (docs/protocol.md:
# label EXPORTER-oneM2M-Bootstrap, no context, 48 bytes; words, for an unquoted $EKM_OPTS: this
# file is sourced by sh scripts too), and s_client_ekm FILE: that output of the transcript FILE
# as lowercase hex ("" when none).
EKM_OPTS="-keymatexport EXPORTER-oneM2M-Bootstrap -keymatexportlen 48"
s_client_ekm() { sed -n 's/^ *Keying material: \([0-9A-Fa-f]*\)$/\1/p' "$1" | tr 'A-F' 'a-f'; }
# kpsa_of EKM TARGET: the Kpsa a target fetches, by openssl dgst from the exporter output:
# HMAC-SHA-256(EKM[16..48), "oneM2M Enrolment Key to ... derivation" || TARGET), hex.
kpsa_of() {
        printf '%s%s' "oneM2M Enrolment Key to Provisioned Secure Connection Key derivation" "$2" |
                openssl dgst -sha256 -mac HMAC -macopt "hexkey:$(printf '%s' "$1" | cut -c33-96)" | sed 's/^.*= *//'
}
# scrape [METHOD [PATH]]: the raw HTTP answer of the metrics listener on $mport (bash's
# /dev/tcp).
scrape() {
        exec 3<>"/dev/tcp/127.0.0.1/$mport" || fail "cannot connect to the metrics port"
        printf '%s %s HTTP/1.1\r\nHost: localhost\r\n\r\n' "${1:-GET}" "${2:-/metrics}" >&3
        timeout 10 cat <&3 || fail "metrics answer did not end"
        exec 3<&-
}
# metric FILE 'NAME{LABELS}': its value (fails when absent)
metric() {
        local v
        v=$(grep -v "^#" "$1" | grep -F "$2 " | head -n1 | awk '{print $NF}')
        [ -n "$v" ] || fail "metric $2 is missing: $(cat "$1")"
        echo "$v"
}
http_status() { sed -n 's/^HTTP\/1.1 \([0-9]*\) .*/\1/p' | head -n1; }
# answers CODE COMMAND...: the command's transcript (in $T/out) answers HTTP status CODE
answers() {
        lib_code=$1
        shift
        "$@" > "$T/out"
        [ "$(http_status < "$T/out")" = "$lib_code" ]
}
json_str() { grep -o "\"$1\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4; } # json_str KEY < TRANSCRIPT

# ---- agent ----
agent_custody() {
        printf '[consumer]\nuser = %s\n[seal]\nbackend = host\nstate_dir = %s\nruntime_dir = %s\n' "$1" "$2" "$3"
}
ctl_run() {
        lib_want=$1
        shift
        "$CTL" "$@" > "$T/out" 2> "$T/err"
        RC=$?
        [ $RC -eq "$lib_want" ] || { not_ok "mscectl $*: exit $RC, expected $lib_want"; return 1; }
}
out_has() { grep -qE -- "$1" "$T/out"; }
fake_agent() {
        cp "$(command -v sleep)" "$T/msce-agent"
        "$T/msce-agent" 600 &
        FAKE_PID=$!
        # mscectl knows the agent by its comm, which is bash's until the fork has exec'd
        wait_for 10 lib_comm_is "$FAKE_PID" msce-agent || { not_ok "the stand-in agent did not start"; tap_done; }
}

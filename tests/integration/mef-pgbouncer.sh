#!/usr/bin/env bash
# msce-mef on PostgreSQL through PgBouncer in session mode, as docs/operations.md says it may
# run (under tests/pg-run.sh, which starts a server of this test's own; PgBouncer listens on a
# unix socket in this test's directory only, as a user of this run's own when run as root):
#  - the store made, a target and a node added through it; enrol, status and fetchCredentials
#    answered, and the MEF's URI names PgBouncer's socket only;
#  - PgBouncer stopped under the MEF: 503 + Retry-After; started again: the same MEF process
#    serves again by itself, and the enrolment made before is still served;
#  - a PgBouncer in transaction mode (unsupported) that does not track prepared statements (as
#    before 1.21, or max_prepared_statements = 0): the CLI and serve refuse with an error that
#    names it, not "Input/output error".
# Usage: pg-run.sh --tap bash mef-pgbouncer.sh PATH/TO/msce-mef (TAP). Skipped without openssl,
# pgbouncer or PostgreSQL.
set -euo pipefail

MEF=${1:?usage: mef-pgbouncer.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl pgbouncer
need_pg

FQDN=mef.test
NODE=urn:dev:ops:pgb-1
TARGET=/in-cse
tmpdir mef-pgbouncer
LIB_SHOW="$T/out $T/mef.err $T/pgb/6432.log"

# PgBouncer: no TCP (listen_addr empty), its socket .s.PGSQL.6432 in $T/pgb; the server side is
# the test's PostgreSQL (host = its socket directory), with the password the MEF sends.
pg_host=${MSCE_TEST_PG_URI#*host=}
pg_host=${pg_host%%&*}
P=$T/pgb
mkdir "$P"
pgb_as=()
if [ "$(id -u)" = 0 ]; then
        # PgBouncer refuses to run as root
        PGB_USER=$(test_user pgb) || skip_all "cannot create a test user"
        test_user_cleanup "$PGB_USER"
        pgb_as=(-u "$PGB_USER")
        chown "$PGB_USER" "$P"
fi
chmod 0711 "$T" "$P" # PgBouncer's user and the MEF reach the socket through both
(umask 077 && printf '"msce" "%s"\n' "$(cat "$MSCE_TEST_PG_PASSWORD_FILE")" > "$P/users")
[ -z "${PGB_USER:-}" ] || chown "$PGB_USER" "$P/users"
# PgBouncer 1.21 and later track protocol-level prepared statements in transaction mode
# (max_prepared_statements, on by default since 1.22: Debian 13's 1.24), so the refusal below only
# shows with that off; the session state msce-mef keeps (its lock_timeout) is lost there anyway.
pgb_version=$(pgbouncer --version | sed -n 's/^PgBouncer \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
read -r pgb_major pgb_minor <<< "$pgb_version"
[ -n "${pgb_minor:-}" ] || fail "pgbouncer --version: cannot read the version in '$(pgbouncer --version | head -n1)'"
pgb_tracks=$(( pgb_major > 1 || (pgb_major == 1 && pgb_minor >= 21) ))
# pgb_start PORT MODE: a PgBouncer with pool_mode MODE on socket .s.PGSQL.PORT; REPLY its PID
pgb_start() {
        cat > "$P/$1.ini" << EOF
[databases]
msce = host=$pg_host port=${MSCE_TEST_PG_PORT:-5432} dbname=msce user=msce
[pgbouncer]
listen_addr =
listen_port = $1
unix_socket_dir = $P
auth_type = scram-sha-256
auth_file = $P/users
pool_mode = $2
logfile = $P/$1.log
pidfile = $P/$1.pid
EOF
        [ "$pgb_tracks" = 0 ] || [ "$2" != transaction ] || echo "max_prepared_statements = 0" >> "$P/$1.ini"
        rm -f "$P/.s.PGSQL.$1" # one a killed PgBouncer left: the wait below is for this one's
        pgbouncer "${pgb_as[@]}" "$P/$1.ini" > /dev/null 2>&1 &
        REPLY=$!
        LIB_PGB_PIDS="${LIB_PGB_PIDS:-} $REPLY"
        wait_for 20 test -S "$P/.s.PGSQL.$1" || fail "PgBouncer ($2) did not start"
}
at_exit 'for p in ${LIB_PGB_PIDS:-}; do stop_pid "$p"; done'
pgb_start 6432 session
PGB_PID=$REPLY

MEF_BACKEND=postgresql
MSCE_TEST_PG_URI="postgresql:///msce?host=$P&port=6432&user=msce"
mef_conf "busy_timeout = 1000" "[limits]" "retry_after = 2"
grep -q "^uri = postgresql:///msce?host=$P&port=6432&user=msce$" "$MEF_CONF" || fail "the MEF's URI is not PgBouncer's"
mef_psk_setup "$NODE" kpm-pgb-1 /mn-cse-pgb || fail "init, target add, node add through PgBouncer"
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"

enrol() { request POST /msce/enrolments "$NODE" "{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}" | psk_exchange "$kpm" kpm-pgb-1; }
status() { request GET "/msce/enrolments/$1" "$1" | psk_exchange "$kpm" kpm-pgb-1; }
fetch() { request GET "/msce/fetchCredentials/$1/tls" "$TARGET" | psk_exchange "$tpsk" in-cse-psk; }

answers 201 enrol || fail "enrol through PgBouncer"
keid=$(json_str keID < "$T/out")
answers 200 status "$keid" || fail "status through PgBouncer"
grep -q '"state":"active"' "$T/out" || fail "status through PgBouncer: not active"
answers 200 fetch "$keid" || fail "fetch through PgBouncer"
ok "through PgBouncer (session mode): init, target and node added, enrol, status and fetchCredentials"

stop_pid "$PGB_PID"
answers 503 status "$keid" || fail "status with PgBouncer stopped: not 503"
grep -qi '^Retry-After: 2' "$T/out" || fail "503 without Retry-After"
pgb_start 6432 session
wait_for 30 answers 200 status "$keid" || fail "the MEF did not serve again after PgBouncer came back"
kill -0 "$MEF_PID" || fail "msce-mef is gone"
answers 200 fetch "$keid" || fail "fetch after PgBouncer came back"
ok "PgBouncer stopped: 503 + Retry-After; started again: the same msce-mef serves the enrolment again"

mef_term_clean || fail "msce-mef did not stop cleanly"
ok "msce-mef stopped cleanly"

# Transaction pooling: a client after the first gets the first's server connection, with the
# first's prepared statements still there. msce-mef says so rather than "Input/output error".
pgb_start 6433 transaction
sed 's/port=6432/port=6433/' "$MEF_CONF" > "$T/mef-tx.conf"
"$MEF" --config "$T/mef-tx.conf" node list > "$T/out" 2>&1 || : # the first client may pass
"$MEF" --config "$T/mef-tx.conf" node list > "$T/out" 2>&1 && fail "node list through transaction pooling passed twice"
grep -q 'a connection pooler in transaction mode' "$T/out" || fail "node list: no word of the pooler"
rc=0
timeout 30 "$MEF" --config "$T/mef-tx.conf" serve > "$T/out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "serve through transaction pooling: exit $rc, expected 1"
grep -q 'a connection pooler in transaction mode' "$T/out" || fail "serve: no word of the pooler"
ok "through PgBouncer in transaction mode: the CLI and serve refuse, naming the pooler's mode"
tap_done

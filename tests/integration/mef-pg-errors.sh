#!/usr/bin/env bash
# What msce-mef says when PostgreSQL refuses a statement for a reason that does not pass: the
# server's SQLSTATE and primary message beside the error, not a bare "Input/output error" that
# leaves the operator to the server's log. A column of another type (42804: from the CLI, and in
# serve's log line of a 500), a privilege revoked from msce-mef's role (42501), a column dropped
# (42703: the schema is not the one msce-mef knows). The other places a store failure is told: a
# TLS 1.3 handshake's PSK lookup in a store thread, retention, an import's comparison of a node's
# Kpm (the CLI, and the admin API's line of its 500: not a row that "exists with another kpm"),
# and opening the store, where there is no store yet (a connection refused: no CONNECT on the
# database; the schema check refused), from the CLI and from serve, and serve reconnecting (refused:
# no CONNECT on the database any more; a thread that does not try again yet repeats why); a
# server that never answers, given up after the URI's connect_timeout, and, as the first of two
# hosts, passed over for the second (when the CLI opens the store, and when serve reconnects). No
# key reaches the message.
# Usage: tests/pg-run.sh --tap bash mef-pg-errors.sh PATH/TO/msce-mef (TAP).
set -euo pipefail
MEF=${1:?usage: mef-pg-errors.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_exec "$MEF"
need_pg
need_cmds openssl od
MEF_BACKEND=postgresql
tmpdir mef-pg-errors
need_psql
umask 077

mef_conf
mefctl init || fail "init"
mefctl target add /in-pge --psk-id in-pge-psk --generate-psk "$T/in.hex" || fail "target add"
KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
printf '%s\n' "$KEY" > "$T/kpm.hex"

# node_add N [CONF]: msce-mef node add of node pge-N with the key above, its output in $T/out
# and $T/err; true when it succeeded
node_add() {
        "$MEF" --config "${2:-$MEF_CONF}" node add "urn:dev:ops:pge-$1" --cse-id "/mn-pge-$1" \
                --cse-base https://in.example.net/base --psk-id "kpm-pge-$1" --psk-file "$T/kpm.hex" \
                --target /in-pge > "$T/out" 2> "$T/err"
}
# said WHAT ERE: the failure's message names the server's reason (ERE), not only strerror
said() {
        grep -qE -- "$2" "$T/err" || fail "$1: the message does not give the server's reason: $(cat "$T/err")"
        ! grep -qi -- "$KEY" "$T/err" || fail "$1: the message holds the key"
        ok "$1: $(head -n1 "$T/err")"
}

# a column of another type than msce-mef binds (a schema altered by hand; no node yet)
pg_sql "ALTER TABLE nodes ALTER COLUMN kpm_enc TYPE bigint USING NULL" || fail "ALTER TYPE bigint"
! node_add 1 || fail "node add into a bigint kpm_enc succeeded"
said "a type error" 'refused, PostgreSQL said 42804: column "kpm_enc" is of type bigint but expression is of type bytea'
pg_sql "ALTER TABLE nodes ALTER COLUMN kpm_enc TYPE bytea USING NULL" || fail "ALTER TYPE bytea"
node_add 1 || fail "node add after the type is back: $(cat "$T/err")"

# serve: an enrolment into a key_enc of another type is answered 500, and the log line says why
# (no enrolment yet)
mef_start "$T/mef.conf.in" || fail "msce-mef serve did not start"
pg_sql "ALTER TABLE enrolments ALTER COLUMN key_enc TYPE bigint USING NULL" || fail "ALTER TYPE bigint"
request POST /msce/enrolments urn:dev:ops:pge-1 '{"msce:enrolReq": {"nodeID": "urn:dev:ops:pge-1"}}' |
        psk_exchange "$KEY" kpm-pge-1 > "$T/out"
[ "$(http_status < "$T/out")" = 500 ] || fail "enrolment into a bigint key_enc: not 500"
wait_line 10 "$T/mef.err" ' -> 500 ' || fail "no log line of the 500"
grep -a ' -> 500 ' "$T/mef.err" > "$T/err" || :
said "serve's log of an enrolment refused" 'PostgreSQL said 42804: column "key_enc" is of type bigint but expression is of type bytea'
mef_term || fail "msce-mef serve did not stop cleanly"
pg_sql "ALTER TABLE enrolments ALTER COLUMN key_enc TYPE bytea USING NULL" || fail "ALTER TYPE bytea"

# msce-mef's own role without INSERT on nodes (a role of this test: the server's msce is a
# superuser, which no privilege stops)
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$T/app-password"
echo "CREATE ROLE msce_pge LOGIN PASSWORD '$(cat "$T/app-password")'" | pg_sql || fail "CREATE ROLE"
pg_sql "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO msce_pge;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO msce_pge;
        REVOKE INSERT ON nodes FROM msce_pge" || fail "GRANT, REVOKE"
sed -e "s|^uri = \(.*\)user=msce\$|uri = \1user=msce_pge|" -e "s|^password_file = .*|password_file = $T/app-password|" \
        "$MEF_CONF" > "$T/app.conf"
grep -q 'user=msce_pge$' "$T/app.conf" || fail "no uri for msce_pge in $(cat "$T/app.conf")"
"$MEF" --config "$T/app.conf" node list > "$T/out" 2> "$T/err" || fail "node list as msce_pge: $(cat "$T/err")"
! node_add 2 "$T/app.conf" || fail "node add without INSERT on nodes succeeded"
said "a privilege revoked" 'Permission denied, PostgreSQL said 42501: permission denied for table nodes'

# msce_pge without SELECT on nodes.kpm_enc (the Kpm: a handshake's PSK lookup and the import's
# comparison of a node's key read it) and without DELETE on audit (retention)
cols=$(pg_sql "SELECT string_agg(quote_ident(column_name), ', ') FROM information_schema.columns
               WHERE table_schema = 'public' AND table_name = 'nodes' AND column_name <> 'kpm_enc'")
pg_sql "REVOKE SELECT ON nodes FROM msce_pge; GRANT SELECT ($cols) ON nodes TO msce_pge;
        REVOKE DELETE ON audit FROM msce_pge" || fail "REVOKE SELECT (kpm_enc), DELETE"
# an import of the row node pge-1 already is: its Kpm is compared, and that read is refused (not
# "exists with another kpm")
printf 'nodeID,kpmID,kpm,cseID,cseBase,targets\nurn:dev:ops:pge-1,kpm-pge-1,%s,/mn-pge-1,%s,/in-pge\n' "$KEY" \
        https://in.example.net/base > "$T/same.csv"
! "$MEF" --config "$T/app.conf" node import "$T/same.csv" > "$T/out" 2> "$T/err" || fail "import without kpm_enc succeeded"
said "an import's comparison of a Kpm refused" \
        "same.csv:2: Permission denied, PostgreSQL said 42501: permission denied for table nodes \(nothing imported\)"

# serve as msce_pge, with retention and the admin API: retention's log line, a TLS 1.3 handshake's
# PSK lookup in a store thread, the admin API's import of that row
mkdir -p "$T/pki"
pki_ca "$T/pki"
pki_cert "$T/pki" admin IP:127.0.0.1
pki_cert "$T/pki" alice
{
        sed -e "s|^uri = \(.*\)user=msce\$|uri = \1user=msce_pge|" -e "s|^password_file = .*|password_file = $T/app-password|" \
                "$T/mef.conf.in"
        printf '[audit]\nkeep = 1d\n[admin]\nlisten = 127.0.0.1:0\ncertificate = %s\nkey = %s\nca = %s\n' \
                "$T/pki/admin.pem" "$T/pki/admin.key" "$T/pki/ca.pem"
} > "$T/app.conf.in"
mef_start "$T/app.conf.in" || fail "msce-mef serve as msce_pge did not start"
wait_line 10 "$T/mef.err" 'retention: ' || fail "no retention line"
grep -a 'retention: ' "$T/mef.err" > "$T/err" || :
said "retention refused" 'Permission denied, PostgreSQL said 42501: permission denied for table audit'
request GET /msce/status urn:dev:ops:pge-1 | psk_exchange "$KEY" kpm-pge-1 > "$T/out"
# a fault of the store's, not of the gateway's credential: internal_error (80), not decrypt_error
[ -z "$(http_status < "$T/out")" ] && grep -q "alert number 80" "$T/out" ||
        fail "the PSK lookup refused by PostgreSQL: not internal_error: $(grep -a alert "$T/out")"
wait_line 10 "$T/mef.err" 'TLS handshake refused, identity kpm-pge-1: looking up the PSK identity' ||
        fail "no log line of the handshake's lookup: $(cat "$T/mef.err")"
grep -a 'looking up the PSK identity' "$T/mef.err" > "$T/err" || :
said "a handshake's PSK lookup ahead refused" 'Permission denied, PostgreSQL said 42501: permission denied for table nodes'
aport=$(sed -n 's/^admin on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/mef.out")
[ -n "$aport" ] || fail "no admin port in $(cat "$T/mef.out")"
printf '{"nodeID":"urn:dev:ops:pge-1","kpmID":"kpm-pge-1","kpm":"%s","cseID":"/mn-pge-1","cseBase":"%s","targets":["/in-pge"]}\n' \
        "$KEY" https://in.example.net/base > "$T/same.jsonl"
# admin [SOURCE [OUT]] < REQUEST: the admin API's answer in $T/out or OUT (from address SOURCE)
admin() {
        timeout 20 openssl s_client -connect "127.0.0.1:$aport" ${1:+-bind "$1:0"} -cert "$T/pki/alice.pem" -key "$T/pki/alice.key" \
                -CAfile "$T/pki/ca.pem" -quiet -ign_eof > "${2:-$T/out}" 2> /dev/null || :
}
{
        printf 'POST /admin/v1/import HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/jsonl\r\n'
        printf 'Content-Length: %d\r\n\r\n' "$(wc -c < "$T/same.jsonl")"
        cat "$T/same.jsonl"
} | admin
[ "$(http_status < "$T/out")" = 500 ] || fail "the admin API's import with its Kpm read refused: $(cat "$T/out")"
wait_line 10 "$T/mef.err" 'POST /admin/v1/import -> 500' || fail "no log line of the import's 500"
grep -a 'POST /admin/v1/import -> 500' "$T/mef.err" > "$T/err" || :
said "the admin API's import refused" 'store: Permission denied, PostgreSQL said 42501: permission denied for table nodes'

# the reconnect after the database went away, refused (no CONNECT on the database any more): the
# log line of the admin API's 503 gives the server's reason, not only "Connection refused". A
# store thread's first statement after its backend ended finds it gone (Connection reset): a few
# requests, until one comes to a thread that reconnects (a thread that tried less than 500 ms
# ago answers without trying, with that attempt's reason, below: so requests go on for up to 20 s, not a
# fixed number of them, which fast requests landing on the same throttled threads exhausted);
# each from an address of its own, whose first 503 is logged at once (the logbook counts a
# source's next ones into a summary).
pg_sql "REVOKE CONNECT ON DATABASE msce FROM PUBLIC" || fail "REVOKE CONNECT"
# (pg_terminate_backend() only signals, unless given a timeout: a request could still be served
# by a backend that has not yet ended; each is waited for, 10 s at most)
[ "$(pg_sql "SELECT bool_and(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE usename = 'msce_pge'")" = t ] ||
        fail "pg_terminate_backend"
refused='GET /admin/v1/nodes -> 503 .*store: Connection refused, PostgreSQL said 42501: permission denied for database "?msce"?$'
until=$((SECONDS + 20))
for i in $(seq 11 250); do
        [ "$SECONDS" -lt "$until" ] || break
        printf 'GET /admin/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' | admin "127.0.0.$i"
        [ "$(http_status < "$T/out")" = 503 ] || fail "the admin API's request with the store away: $(cat "$T/out")"
        ! grep -qaE -- "$refused" "$T/mef.err" || break
done
wait_line 5 "$T/mef.err" "$refused" || :
grep -aE -- "$refused" "$T/mef.err" > "$T/err" || grep -a 'GET /admin/v1/nodes -> 503' "$T/mef.err" > "$T/err" || :
said "the reconnect refused" "$refused"
# a store thread within its reconnect throttle tries nothing, and says the last attempt's reason
# (the old code's line was a bare "Connection refused"): more requests at once than there are
# store threads (5), so that one takes two of them, each from an address of its own, until such
# a line comes
again='GET /admin/v1/nodes -> 503 .*store: Connection refused, PostgreSQL said 42501: permission denied for database "?msce"? \(at the last attempt, [0-9]+ ms ago\)$'
until=$((SECONDS + 20))
for i in $(seq 1 8 240); do
        [ "$SECONDS" -lt "$until" ] || break
        pids=()
        for j in $(seq "$i" $((i + 7))); do
                printf 'GET /admin/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' | admin "127.0.1.$j" "$T/burst" &
                pids+=($!)
        done
        wait "${pids[@]}"
        ! grep -qaE -- "$again" "$T/mef.err" || break
done
wait_line 5 "$T/mef.err" "$again" || :
grep -aE -- "$again" "$T/mef.err" > "$T/err" || grep -a 'GET /admin/v1/nodes -> 503' "$T/mef.err" > "$T/err" || :
said "a reconnect not tried again yet" "$again"
! grep -aE 'GET /admin/v1/nodes -> 503 .*store: Connection refused$' "$T/mef.err" ||
        fail "a 503's line without the reason: $(grep -aE 'store: Connection refused$' "$T/mef.err" | head -n1)"
mef_term || fail "msce-mef serve as msce_pge did not stop cleanly"
mef_configure "$T/mef.conf.in"

# at open, before there is a store: the connection refused (no CONNECT on the database), from the
# CLI and from serve; the schema check refused (no SELECT on msce_schema)
! "$MEF" --config "$T/app.conf" node list > "$T/out" 2> "$T/err" || fail "node list without CONNECT succeeded"
said "the CLI's connection refused" 'open store .*: Permission denied, PostgreSQL said 42501: permission denied for database "?msce"?$'
! timeout 30 "$MEF" --config "$T/app.conf" serve > "$T/out" 2> "$T/err" || fail "serve without CONNECT started"
said "serve's connection refused" 'store .*: Permission denied, PostgreSQL said 42501: permission denied for database "?msce"?$'
pg_sql "GRANT CONNECT ON DATABASE msce TO PUBLIC; REVOKE SELECT ON msce_schema FROM msce_pge" || fail "GRANT, REVOKE"
! "$MEF" --config "$T/app.conf" node list > "$T/out" 2> "$T/err" || fail "node list without msce_schema succeeded"
said "the schema check at open refused" \
        'open store .*: Permission denied, PostgreSQL said 42501: permission denied for table msce_schema$'

# A server that takes the connection and never answers (a host gone silent behind a proxy), on
# 127.0.0.1: a relay to this test's PostgreSQL that holds each connection it accepts while
# $T/silent exists, and prints a line for each it relays.
pgdir=$(sed -n 's/.*[?&]host=\([^&]*\).*/\1/p' <<< "$MSCE_TEST_PG_URI")
[ -S "$pgdir/.s.PGSQL.$MSCE_TEST_PG_PORT" ] || fail "no PostgreSQL socket in $pgdir"
touch "$T/silent"
python3 -c '
import os, socket, sys, threading
flag, target = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for x in (a, b):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
while True:
    c = s.accept()[0]
    if os.path.exists(flag):
        held.append(c)
        continue
    u = socket.socket(socket.AF_UNIX)
    u.connect(target)
    print("relayed", flush=True)
    for a, b in ((c, u), (u, c)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
' "$T/silent" "$pgdir/.s.PGSQL.$MSCE_TEST_PG_PORT" > "$T/silent.port" &
SILENT_PID=$!
at_exit 'stop_pid "$SILENT_PID"'
wait_line 10 "$T/silent.port" '^[0-9]+$' "$SILENT_PID" || fail "no port from the silent server"
sport=$(head -n1 "$T/silent.port")
# alone, it is given up after the URI's connect_timeout (2 s, not msce-mef's 5), and the CLI
# gives up with the error of a store that is away
sed "s|^uri = .*|uri = postgresql://msce@127.0.0.1:$sport/msce?sslmode=disable\&connect_timeout=2|" \
        "$MEF_CONF" > "$T/silent.conf"
grep -q 'connect_timeout=2$' "$T/silent.conf" || fail "no silent uri in $(cat "$T/silent.conf")"
! timeout 30 "$MEF" --config "$T/silent.conf" node list > "$T/out" 2> "$T/err" || fail "node list against a silent server succeeded"
said "a server that never answers, connect_timeout=2" \
        "open store postgresql://msce@127\\.0\\.0\\.1:$sport/msce\\?sslmode=disable&connect_timeout=2: Connection refused: no answer from 127\\.0\\.0\\.1 port $sport within 2 s \\(connect_timeout\\)\$"
# two hosts (names for libpq's hostaddr, both the relay), neither answering: each named, once
sed "s|^uri = .*|uri = postgresql:///msce?host=pge-a,pge-b\&hostaddr=127.0.0.1,127.0.0.1\&port=$sport\&user=msce\&connect_timeout=2|" \
        "$MEF_CONF" > "$T/silent2.conf"
! timeout 30 "$MEF" --config "$T/silent2.conf" node list > "$T/out" 2> "$T/err" || fail "node list against two silent hosts succeeded"
said "two hosts that never answer" ": Connection refused: no answer from pge-a port $sport, pge-b port $sport within 2 s \(connect_timeout\)\$"
# the first of two hosts (the HA layout's): after its connect_timeout msce-mef goes on to the
# second, this test's PostgreSQL (libpq itself leaves a host only when it refuses)
two="postgresql:///msce?host=127.0.0.1,$pgdir\&port=$sport,$MSCE_TEST_PG_PORT\&user=msce\&sslmode=disable\&connect_timeout=2"
sed "s|^uri = .*|uri = $two|" "$MEF_CONF" > "$T/two.conf"
grep -q 'connect_timeout=2$' "$T/two.conf" || fail "no two-host uri in $(cat "$T/two.conf")"
timeout 30 "$MEF" --config "$T/two.conf" node list > "$T/out" 2> "$T/err" ||
        fail "node list with a silent first host: $(cat "$T/err")"
grep -q 'urn:dev:ops:pge-1' "$T/out" || fail "node list with a silent first host: no pge-1 in $(cat "$T/out")"
ok "a silent first host: the CLI goes on to the second"
# serve, connected through the first host (relaying), which then goes silent: its reconnect goes on
# to the second after the first's connect_timeout (each request a 503 meanwhile; the old code
# began every attempt at the first host again)
rm -f "$T/silent"
{
        # one store thread: each reconnects on its own, and pays the silent host's time once.
        # No retention (keep = forever): its first run, at start, could come after the
        # termination below and make the reconnect itself, no request's 503 naming the host
        # (seen: retention met the terminated connection first, its line said 57P01)
        sed -e "s|^uri = .*|uri = $two|" -e 's|^\[store\]$|&\nthreads = 1|' "$T/mef.conf.in"
        printf '[audit]\nkeep = forever\n[admin]\nlisten = 127.0.0.1:0\ncertificate = %s\nkey = %s\nca = %s\n' \
                "$T/pki/admin.pem" "$T/pki/admin.key" "$T/pki/ca.pem"
} > "$T/two.conf.in"
mef_start "$T/two.conf.in" || fail "msce-mef serve with two hosts did not start"
grep -q '^relayed$' "$T/silent.port" || fail "serve did not connect through the first host"
aport=$(sed -n 's/^admin on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$T/mef.out")
[ -n "$aport" ] || fail "no admin port in $(cat "$T/mef.out")"
touch "$T/silent"
[ "$(pg_sql "SELECT bool_and(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity WHERE application_name = 'msce-mef'")" = t ] ||
        fail "pg_terminate_backend"
# nodes_answered: the admin API lists the nodes (each request from an address of its own)
from=20
nodes_answered() {
        from=$((from + 1))
        printf 'GET /admin/v1/nodes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' | admin "127.0.0.$from"
        [ "$(http_status < "$T/out")" = 200 ]
}
wait_for 40 nodes_answered || fail "serve's reconnect did not go on to the second host: $(tail -n3 "$T/mef.err")"
grep -q 'urn:dev:ops:pge-1' "$T/out" || fail "the admin API's nodes after the reconnect: $(cat "$T/out")"
ok "a first host gone silent: serve's reconnect goes on to the second"
# the 503 of the request whose reconnect gave the first host up names it
grep -aE "GET /admin/v1/nodes -> 503 .*store: Connection refused: no answer from 127\.0\.0\.1 port $sport within 2 s \(connect_timeout\)$" \
        "$T/mef.err" > "$T/err" || :
said "a first host gone silent: the 503's reason" "no answer from 127\.0\.0\.1 port $sport within 2 s"
mef_term || fail "msce-mef serve with two hosts did not stop cleanly"
stop_pid "$SILENT_PID"
mef_configure "$T/mef.conf.in"

# a column dropped: not the schema this msce-mef knows
pg_sql "ALTER TABLE nodes DROP COLUMN cse_base" || fail "DROP COLUMN"
! "$MEF" --config "$MEF_CONF" node list > "$T/out" 2> "$T/err" || fail "node list without cse_base succeeded"
said "a column dropped" "schema is not the one this msce-mef knows .*PostgreSQL said 42703: column \"?(nodes\\.)?cse_base\"? does not exist"
tap_done

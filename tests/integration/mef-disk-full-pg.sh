#!/usr/bin/env bash
# msce-mef on a PostgreSQL whose tablespace fills up (a tmpfs of this test's own in a mount
# namespace of its own, the database's tables and indexes on it; the WAL stays in the data
# directory, so PostgreSQL answers "could not extend file" with disk_full, 53100):
#  - enrolments go on while the relations' pages have room, then one is answered 503 with
#    Retry-After and the log gives the cause; the node's active enrolment stays as it was;
#  - a status check is answered all the same;
#  - once space is freed the next enrolment and a target's fetch succeed, same process, without
#    reconnecting anything by hand.
# Usage: mef-disk-full-pg.sh PATH/TO/pg-run.sh PATH/TO/msce-mef (TAP). Needs root (mount);
# skipped without PostgreSQL, openssl or unshare.
set -euo pipefail
PG_RUN=${1:?usage: mef-disk-full-pg.sh PATH/TO/pg-run.sh PATH/TO/msce-mef}
MEF=${2:?usage: mef-disk-full-pg.sh PATH/TO/pg-run.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"

if [ -z "${MSCE_TEST_PG_URI:-}" ]; then
        # Outside: a mount namespace of its own with the tmpfs, and PostgreSQL started inside it
        # (pg-run.sh), so that the server sees the mount; gone with the namespace whatever happens.
        need_root "mounts a tmpfs"
        need_cmds openssl unshare mount
        if [ -z "${MSCE_TEST_DISK_FULL_NS:-}" ]; then
                unshare --mount true 2> /dev/null || skip_all "cannot make a mount namespace here"
                MSCE_TEST_DISK_FULL_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
        fi
        D=$(mktemp -d /tmp/mef-disk-full-pg-mnt-XXXXXX)
        chmod 0711 "$D"
        mount -t tmpfs -o size=4m,mode=0711 msce-test-disk-full-pg "$D" 2> "$D.err" ||
                { rm -f "$D.err"; rmdir "$D"; skip_all "cannot mount a tmpfs here"; }
        rm -f "$D.err"
        rc=0
        MSCE_TEST_PG_TABLESPACE=$D bash "$PG_RUN" --tap bash "$0" "$@" || rc=$?
        umount "$D" && rmdir "$D"
        exit "$rc"
fi

need_pg
FQDN=mef.test
TARGET=/in-cse
N1=urn:dev:ops:dfp-1
MEF_BACKEND=postgresql
TS=${MSCE_TEST_PG_TABLESPACE:?}
tmpdir mef-disk-full-pg
LIB_SHOW="$T/out $T/mef.err"
need_psql

# the tablespace's directory belongs to the server's user (pg-run.sh's, as root)
mkdir -m 0700 "$TS/space"
chown "$(stat -c %U "$(dirname "$MSCE_TEST_PG_CTL")/data")" "$TS/space"
pg_sql "CREATE TABLESPACE msce_small LOCATION '$TS/space'" || fail "CREATE TABLESPACE"
pg_sql "ALTER DATABASE msce SET default_tablespace = msce_small" || fail "ALTER DATABASE"

mef_conf "threads = 1" "[limits]" "retry_after = 9" "enrolments_per_node = 0"
mef_psk_setup "$N1" kpm-dfp-1 /mn-cse-dfp1 || fail "init, target add, node add"
[ "$(pg_sql "SELECT count(*) FROM pg_tables WHERE tablename = 'enrolments' AND tablespace = 'msce_small'")" = 1 ] ||
        fail "the store's tables are not on the small tablespace"
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"

enrol() { request POST /msce/enrolments "$N1" "{\"msce:enrolReq\": {\"nodeID\": \"$N1\"}}" | psk_exchange "$kpm" kpm-dfp-1; }
status() { request GET "/msce/enrolments/$1" "$1" | psk_exchange "$kpm" kpm-dfp-1; }
fetch() { request GET "/msce/fetchCredentials/$1/tls" "$TARGET" | psk_exchange "$tpsk" in-cse-psk; }
active() { pg_sql "SELECT ke_id FROM enrolments WHERE state = 'active'"; }

answers 201 enrol || fail "enrol with space left"
ok "enrolment with space left: 201"

# Fill the file system: dd stops at ENOSPC.
dd if=/dev/zero of="$TS/filler" bs=64k 2> "$T/dd.err" || :
grep -q 'No space left on device' "$T/dd.err" || fail "could not fill the tmpfs: $(cat "$T/dd.err")"

# Each enrolment adds rows (the new one, the old one retired, an audit row); the relations'
# pages take them until one must grow: that one fails. Bounded: a page holds a few dozen.
got=201 n=0
while [ "$got" = 201 ] && [ "$n" -lt 400 ]; do
        held=$(active)
        enrol > "$T/out"
        got=$(http_status < "$T/out")
        n=$((n + 1))
done
[ "$got" = 503 ] || fail "after $n enrolments on a full tablespace: $got, not 503"
grep -qi '^Retry-After: 9' "$T/out" || fail "503 without Retry-After: 9"
wait_line 10 "$T/mef.err" "POST /msce/enrolments -> 503 .*: .*No space left on device" ||
        fail "the log does not give the cause of the 503"
[ "$(active)" = "$held" ] || fail "the active enrolment changed with the refused one: $held -> $(active)"
ok "enrolment $n on a full tablespace: 503 + Retry-After, the cause in the log, the active enrolment as it was"

answers 200 status "$held" || fail "status of $held on a full tablespace"
grep -q '"state":"active"' "$T/out" || fail "$held is not active"
ok "status check on a full tablespace: 200, active"

rm -f "$TS/filler"
answers 201 enrol || fail "enrol once space is freed"
keid=$(json_str keID < "$T/out")
[ "$(active)" = "$keid" ] || fail "active enrolment after the freed space: $(active), want $keid"
answers 200 fetch "$keid" || fail "fetch once space is freed"
ok "space freed: the next enrolment and fetch succeed (same process)"

mef_term_clean || fail "clean stop"
ok "clean stop"
tap_done

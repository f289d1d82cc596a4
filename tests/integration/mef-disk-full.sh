#!/usr/bin/env bash
# msce-mef with its SQLite store on a file system that fills up (a tmpfs of its own, in a mount
# namespace of this test's own):
#  - an enrolment is answered 503 with Retry-After (the gateway retries later), and the log
#    says why ("No space left on device"), which no audit row can;
#  - a re-enrolment leaves the node's active enrolment as it was (the retirement rolled back
#    with the rest), and a target's credential fetch is refused: no key goes out unaudited;
#  - a status check is answered; its tally (last seen) is not recorded, and the log says so;
#  - once space is freed the next enrolment succeeds, with the same process, and the database
#    passes SQLite's integrity check.
# Usage: mef-disk-full.sh PATH/TO/msce-mef (TAP). Needs root (mount); skipped without
# openssl, python3 or unshare.
set -euo pipefail

MEF=${1:?usage: mef-disk-full.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_root "mounts a tmpfs"
need_cmds openssl python3 unshare mount
# The mount is this test's own, gone with it whatever happens.
if [ -z "${MSCE_TEST_DISK_FULL_NS:-}" ]; then
        unshare --mount true 2> /dev/null || skip_all "cannot make a mount namespace here"
        MSCE_TEST_DISK_FULL_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

FQDN=mef.test
TARGET=/in-cse
N1=urn:dev:ops:df-1
N2=urn:dev:ops:df-2
tmpdir mef-disk-full
LIB_SHOW="$T/out $T/mef.err"
mkdir -m 0700 "$T/store"
mount -t tmpfs -o size=4m,mode=0700 msce-test-disk-full "$T/store" 2> "$T/mount.err" ||
        skip_all "cannot mount a tmpfs here: $(cat "$T/mount.err")"
at_exit 'umount "$T/store" 2> /dev/null || :'

mef_store() { printf '[store]\npath = %s/store/mef.db\nmaster_key = %s/master.key\n' "$1" "$1"; }
mef_conf "threads = 1" "[limits]" "retry_after = 9"
mef_psk_setup "$N1" kpm-df-1 /mn-cse-df1 || fail "init, target add, node add"
mefctl node add "$N2" --cse-id /mn-cse-df2 --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --psk-id kpm-df-2 --generate-psk "$T/kpm2.hex" || fail "node add $N2"
kpm2=$(tr -d '\n' < "$T/kpm2.hex")
mef_start "$T/mef.conf.in" || fail "msce-mef did not start"

enrol1() { request POST /msce/enrolments "$N1" "{\"msce:enrolReq\": {\"nodeID\": \"$N1\"}}" | psk_exchange "$kpm" kpm-df-1; }
enrol2() { request POST /msce/enrolments "$N2" "{\"msce:enrolReq\": {\"nodeID\": \"$N2\"}}" | psk_exchange "$kpm2" kpm-df-2; }
status1() { request GET "/msce/enrolments/$1" "$1" | psk_exchange "$kpm" kpm-df-1; }
fetch() { request GET "/msce/fetchCredentials/$1/tls" "$TARGET" | psk_exchange "$tpsk" in-cse-psk; }
sql() { python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall())' "$T/store/mef.db" "$1"; }
# what the store holds that an exchange could change
held() { sql "SELECT (SELECT group_concat(ke_id || ' ' || state, ', ') FROM enrolments), (SELECT count(*) FROM audit)"; }
unavailable() { # unavailable WHAT: 503 with Retry-After 9, and the log gave the cause
        [ "$(http_status < "$T/out")" = 503 ] || fail "$1: not 503"
        grep -qi '^Retry-After: 9' "$T/out" || fail "$1: 503 without Retry-After: 9"
}

answers 201 enrol1 || fail "enrol $N1"
keid1=$(json_str keID < "$T/out")
[ -n "$keid1" ] || fail "no KeID in the profile"
ok "enrolment with space left: 201"

# Fill the file system: dd stops at ENOSPC.
dd if=/dev/zero of="$T/store/filler" bs=64k 2> "$T/dd.err" || :
grep -q 'No space left on device' "$T/dd.err" || fail "could not fill the tmpfs: $(cat "$T/dd.err")"
before=$(held)

enrol2 > "$T/out"
unavailable "enrolment on a full store"
wait_line 10 "$T/mef.err" "POST /msce/enrolments -> 503 .*: storing the enrolment: No space left on device" ||
        fail "the log does not give the cause of the 503"
ok "enrolment on a full store: 503 + Retry-After, the log says: storing the enrolment: No space left on device"

enrol1 > "$T/out"
unavailable "re-enrolment on a full store"
answers 200 status1 "$keid1" || fail "status of $keid1 on a full store"
grep -q '"state":"active"' "$T/out" || fail "$keid1 is not active after the refused re-enrolment"
wait_line 10 "$T/mef.err" "GET /msce/enrolments/[^ ]* -> 200 .*: recording the status check: No space left on device$" ||
        fail "the log does not say the status check was not recorded"
ok "re-enrolment on a full store: 503; the status check is answered (its tally not recorded, as the log says), the enrolment still active"

fetch "$keid1" > "$T/out"
unavailable "credential fetch on a full store (its audit row cannot be written)"
grep -q 'kpsa\|"key"' "$T/out" && fail "a key went out with the 503"
ok "credential fetch on a full store: 503, no key without its audit row"

after=$(held)
[ "$after" = "$before" ] || fail "the store changed: $before -> $after"
ok "the refused exchanges stored nothing"

rm -f "$T/store/filler"
answers 201 enrol2 || fail "enrol $N2 once space is freed"
answers 200 fetch "$keid1" || fail "fetch once space is freed"
[ "$(sql 'PRAGMA integrity_check')" = "[('ok',)]" ] || fail "integrity check: $(sql 'PRAGMA integrity_check')"
[ "$(sql "SELECT count(*) FROM enrolments WHERE state = 'active'")" = "[(2,)]" ] || fail "active enrolments: $(held)"
ok "space freed: the next enrolment and fetch succeed (same process), the database is intact"

mef_term_clean || fail "clean stop"
ok "clean stop"
tap_done

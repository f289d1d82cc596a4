#!/usr/bin/env bash
# Backups that restore, and master key rotation, on a serving msce-mef (issue 14 part 2):
#  - "msce-mef backup" while the MEF serves and a client keeps checking status: files 0600 in a
#    0700 directory, neither the node's Kpm, the target's PSK nor the master key in it (as hex
#    or as raw bytes), a manifest;
#  - a wrong passphrase is refused with a clear message and changes nothing;
#  - "msce-mef rekey" on the serving MEF (same process, traffic going on): the key file
#    becomes the one "rekey --prepare" wrote, and enrolments, status checks and credential fetches keep being served;
#  - "msce-mef restore" into a fresh MEF, which then enrols the same gateway with its Kpm and
#    serves the backed-up enrolment's credentials to the same target (the same key), and is
#    rekeyed while serving too. Under tests/pg-run.sh that MEF is on PostgreSQL (SQLite -> PG);
#  - a node and a target that authenticate with a certificate (no secret: NULL columns) are
#    restored too, listed the same, and on the restored MEF the node enrols with its certificate
#    and the target fetches that enrolment's key with its own;
#  - "msce-mef init" (text and --json) names the master key ID a backup made now carries, after
#    "rekey --prepare" (the key file's, and the prepared key's) and during a rekey that stopped
#    after its new key took over (the new key's, and the old one's);
#  - with two hosts of one store, the second host's rekey says the rotation was done and renames.
# Usage: mef-backup.sh PATH/TO/msce-mef (TAP). Skipped without openssl.
set -euo pipefail
mef=${1:?usage: mef-backup.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl od
tmpdir mef-backup
tmp=$T
MEF=$mef
LIB_SHOW="$T/mef.err"
FQDN=mef.test
NODE=urn:dev:ops:backup-1
TARGET=/in-cse
CNODE=urn:dev:ops:backup-cert
CTARGET=/maf-cert

# Certificates: a CA, the MEF's (for the certificate node and target; PSK peers need none), a
# device's and a target's.
pki_ca "$tmp"
pki_cert "$tmp" mef "DNS:$FQDN,IP:127.0.0.1"
pki_cert "$tmp" dev
pki_cert "$tmp" tgt

conf() { # DIR [postgresql]: a MEF with its store in DIR, or on the PostgreSQL of tests/pg-run.sh
        mkdir -p "$1"
        {
                printf '[server]\nlisten = 127.0.0.1:@PORT@\nfqdn = %s\nbase = /msce\n\n' "$FQDN"
                printf '[tls]\ncertificate = %s\nkey = %s\nclient_ca = %s\n\n' "$tmp/mef.pem" "$tmp/mef.key" "$tmp/ca.pem"
                MEF_BACKEND=${2:-sqlite} mef_store "$1" # last: the lines added after it are [store]'s
        } > "$1/mef.conf.in"
        PORT= mef_configure "$1/mef.conf.in"
}
# Under tests/pg-run.sh (MSCE_TEST_PG_URI) the backup of the SQLite MEF is restored into one on
# PostgreSQL: the move from one engine to the other.
b_backend=sqlite
[ -z "${MSCE_TEST_PG_URI:-}" ] || b_backend=postgresql
a() { "$mef" --config "$tmp/a/mef.conf" "$@"; }
b() { "$mef" --config "$tmp/b/mef.conf" "$@"; }

conf "$tmp/a"
a init > /dev/null
a target add "$TARGET" --psk-id in-cse-psk --generate-psk "$tmp/tpsk.hex" > /dev/null
a node add "$NODE" --cse-id /mn-backup-1 --cse-base https://in.example.net/base \
        --psk-id kpm-backup-1 --generate-psk "$tmp/kpm.hex" --target "$TARGET" > /dev/null
a target add "$CTARGET" --cert "$tmp/tgt.pem" > /dev/null
a node add "$CNODE" --cse-id /mn-backup-cert --cse-base https://in.example.net/base --cert "$tmp/dev.pem" \
        --target "$CTARGET" > /dev/null
kpm=$(tr -d '\n' < "$tmp/kpm.hex")
tpsk=$(tr -d '\n' < "$tmp/tpsk.hex")
printf 'a long backup passphrase\n' > "$tmp/pass"
printf 'not the passphrase\n' > "$tmp/wrong"
chmod 0600 "$tmp/pass" "$tmp/wrong"

exchange() { psk_exchange "$1" "$2" < "$3"; } # PSK IDENTITY REQUEST-FILE: the s_client transcript
request POST /msce/enrolments "$NODE" "{\"msce:enrolReq\": {\"nodeID\": \"$NODE\"}}" > "$tmp/enrol.req"
# (not in $(...): a fail there would only leave the subshell)
enrol() { # OUT: a 201; its keID in $got
        exchange "$kpm" kpm-backup-1 "$tmp/enrol.req" > "$1"
        grep -q '^HTTP/1.1 201 ' "$1" || fail "enrol not 201: $(cat "$1")"
        got=$(json_str keID < "$1")
}
fetch() { # KEID: the key the target fetches, as hex in $got
        request GET "/msce/fetchCredentials/$1/tls" "$TARGET" > "$tmp/fetch.req"
        exchange "$tpsk" in-cse-psk "$tmp/fetch.req" > "$tmp/fetch.out"
        grep -q '^HTTP/1.1 200 ' "$tmp/fetch.out" || fail "fetch of $1 not 200: $(cat "$tmp/fetch.out")"
        got=$(json_str key < "$tmp/fetch.out" | base64 -d | od -An -tx1 -v | tr -d ' \n')
}
status_active() { # KEID
        request GET "/msce/enrolments/$1" "$1" > "$tmp/status.req"
        exchange "$kpm" kpm-backup-1 "$tmp/status.req" > "$tmp/status.out"
        grep -q '"state":"active"' "$tmp/status.out"
}

mef_start "$tmp/a/mef.conf.in" || fail "msce-mef did not start"
port=$PORT
pid_a=$MEF_PID
enrol "$tmp/enrol1.out"
keid=$got
fetch "$keid"
key1=$got
[ ${#key1} -eq 64 ] || fail "fetched key: $key1"
ok "serving MEF: enrolled $keid, the target fetched its key"

# Traffic while the backup and the rekey run: status checks in a loop, each line "ok"/"bad".
traffic() {
        local req="$tmp/traffic.req"
        request GET "/msce/enrolments/$keid" "$keid" > "$req"
        while [ ! -e "$tmp/traffic.stop" ]; do
                if exchange "$kpm" kpm-backup-1 "$req" | grep -q '"state":"active"'; then echo ok; else echo bad; fi
        done > "$tmp/traffic.log"
}
traffic &
traffic_pid=$!
at_exit 'touch "$tmp/traffic.stop"; stop_pid "$traffic_pid"'
traffic_seen() { # (grep -c prints 0 for an empty file, and fails)
        local n
        n=$(grep -c . "$tmp/traffic.log" 2> /dev/null) || :
        [ "${n:-0}" -ge "$1" ]
}
wait_for 30 traffic_seen 2 || fail "no traffic"

a backup "$tmp/bk" --passphrase-file "$tmp/pass" --kdf-iterations 100000 > "$tmp/backup.out" ||
        fail "backup failed: $(cat "$tmp/backup.out")"
grep -q '^Backed up .* 2 nodes, 2 targets, 1 enrolments' "$tmp/backup.out" || fail "backup: $(cat "$tmp/backup.out")"
[ "$(stat -c %a "$tmp/bk")" = 700 ] || fail "backup directory mode $(stat -c %a "$tmp/bk")"
for f in manifest.json master-key.json store.jsonl; do
        [ "$(stat -c %a "$tmp/bk/$f")" = 600 ] || fail "$f mode $(stat -c %a "$tmp/bk/$f")"
done
[ "$(ls "$tmp/bk" | wc -l)" = 3 ] || fail "backup files: $(ls "$tmp/bk")"
ok "backup while serving under traffic: 3 files, 0600, directory 0700"

hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; }
init_json() { # FILE: init --json's masterKeyId, rekey, nextMasterKeyId, previousMasterKeyId ("-": null)
        python3 -c 'import json, sys
o = json.load(open(sys.argv[1]))
print(*(o[k] or "-" for k in ("masterKeyId", "rekey", "nextMasterKeyId", "previousMasterKeyId")))' "$1"
}
mkey=$(hexof "$tmp/a/master.key")
for f in "$tmp"/bk/*; do
        dump=$(hexof "$f")
        for secret in "$kpm" "$tpsk" "$mkey"; do
                grep -qiF "$secret" "$f" && fail "a secret as hex in $f"
                case $dump in *"$secret"*) fail "a secret as raw bytes in $f" ;; esac
        done
done
ok "no Kpm, PSK or master key bytes in the backup, neither as hex nor raw"
cp "$tmp/bk/manifest.json" "$tmp/manifest.before"
if a backup "$tmp/bk" --passphrase-file "$tmp/pass" > "$tmp/again.out" 2>&1; then fail "backup over a backup succeeded"; fi
cmp -s "$tmp/bk/manifest.json" "$tmp/manifest.before" && [ -s "$tmp/bk/store.jsonl" ] || fail "the existing backup was damaged"
ok "a second backup into the same directory is refused (files never overwritten)"

conf "$tmp/b" "$b_backend"
# one store thread, whose handle sees the rekey below only through what it runs (the
# handshakes' lookups of TLS 1.2 run on the loop's own)
printf 'threads = 1\n' >> "$tmp/b/mef.conf.in"
PORT= mef_configure "$tmp/b/mef.conf.in"
if b restore "$tmp/bk" --passphrase-file "$tmp/wrong" > "$tmp/wrong.out" 2>&1; then fail "restore with a wrong passphrase"; fi
grep -q 'wrong passphrase' "$tmp/wrong.out" || fail "wrong passphrase message: $(cat "$tmp/wrong.out")"
[ ! -e "$tmp/b/master.key" ] && [ ! -e "$tmp/b/mef.db" ] || fail "a refused restore wrote files"
ok "wrong passphrase refused with a clear message, nothing written"

cp "$tmp/bk/manifest.json" "$tmp/manifest.ok"
sed -i 's/"enrolments": 1/"enrolments": 2/' "$tmp/bk/manifest.json"
if b restore "$tmp/bk" --passphrase-file "$tmp/pass" > "$tmp/bad.out" 2>&1; then fail "restore with a wrong manifest"; fi
cp "$tmp/manifest.ok" "$tmp/bk/manifest.json"
grep -q 'manifest.json does not hold under the backup.s master key' "$tmp/bad.out" ||
        fail "bad manifest: $(cat "$tmp/bad.out")"
[ ! -e "$tmp/b/master.key" ] && [ ! -e "$tmp/b/mef.db" ] || fail "a refused restore wrote files"
ok "a manifest changed after the backup: refused (its MAC), nothing written"

old_key=$mkey
a rekey --prepare > "$tmp/prepare.out" || fail "rekey --prepare: $(cat "$tmp/prepare.out")"
[ "$(stat -c %a "$tmp/a/master.key.new" 2>&1)" = 400 ] || fail "rekey --prepare: $(cat "$tmp/prepare.out")"
prepared=$(hexof "$tmp/a/master.key.new")
[ "$(hexof "$tmp/a/master.key")" = "$old_key" ] || fail "rekey --prepare changed the key file"
# prepared, not the store's yet: init names the key backups carry now and the prepared one
a init > "$tmp/init-prepared.out" || fail "init after rekey --prepare: $(cat "$tmp/init-prepared.out")"
a --json init > "$tmp/init-prepared.json" || fail "init --json after rekey --prepare"
prepared_id=$(sed -n 's/^A rekey to master key ID \([0-9a-f]\{32\}\) is prepared .*/\1/p' "$tmp/init-prepared.out")
[ -n "$prepared_id" ] && [ "$(mef_key_id "$tmp/init-prepared.out")" = "$(mef_key_id "$tmp/backup.out")" ] &&
        [ "$(init_json "$tmp/init-prepared.json")" = "$(mef_key_id "$tmp/backup.out") prepared $prepared_id -" ] ||
        fail "init after rekey --prepare: $(cat "$tmp/init-prepared.out" "$tmp/init-prepared.json")"
a rekey > "$tmp/rekey.out" || fail "rekey: $(cat "$tmp/rekey.out")"
grep -q '3 secrets re-encrypted' "$tmp/rekey.out" || fail "rekey: $(cat "$tmp/rekey.out")"
[ "$(hexof "$tmp/a/master.key")" = "$prepared" ] || fail "rekey: the key file is not the prepared key"
[ "$(stat -c %a "$tmp/a/master.key")" = 400 ] || fail "rekey: key file mode $(stat -c %a "$tmp/a/master.key")"
[ ! -e "$tmp/a/master.key.new" ] || fail "rekey left master.key.new"
ok "rekey: the key rekey --prepare wrote (0400) took over, 3 secrets re-encrypted"
n=$(grep -c . "$tmp/traffic.log")
wait_for 30 traffic_seen $((n + 2)) || fail "traffic stopped after the rekey"
fetch "$keid"
[ "$got" = "$key1" ] || fail "after rekey: fetched another key"
touch "$tmp/traffic.stop"
wait "$traffic_pid" || :
grep -q bad "$tmp/traffic.log" && fail "status checks failed during backup/rekey: $(sort "$tmp/traffic.log" | uniq -c)"
# a new enrolment retires $keid: the status traffic on it has stopped
enrol "$tmp/enrol2.out"
keid2=$got
status_active "$keid2" || fail "after rekey: status of $keid2: $(cat "$tmp/status.out")"
[ "$MEF_PID" = "$pid_a" ] && kill -0 "$pid_a" || fail "the MEF restarted"
ok "the same MEF process served through backup and rekey: $(grep -c ok "$tmp/traffic.log") status checks, fetch and enrol after"
a --json audit --limit 5 | grep -q '"action": *"rekey"' || fail "rekey not audited"
mef_stop

# a store whose own key is lost: the backup's key does not open it, and is not left beside it
conf "$tmp/c"
"$mef" --config "$tmp/c/mef.conf" init > /dev/null
rm -f "$tmp/c/master.key"
if "$mef" --config "$tmp/c/mef.conf" restore "$tmp/bk" --passphrase-file "$tmp/pass" > "$tmp/c.out" 2>&1; then
        fail "restore into a store of another key"
fi
grep -q 'does not open store' "$tmp/c.out" || fail "restore into a store of another key: $(cat "$tmp/c.out")"
[ ! -e "$tmp/c/master.key" ] || fail "restore left the backup's key beside a store it does not open"
ok "restore into a store of another key: refused, no key file left behind"

# the backup was made before the rekey: under the old key, whose ID the backup printed
bk_id=$(mef_key_id "$tmp/backup.out")
new_id=$(mef_key_id "$tmp/rekey.out")
[ -n "$bk_id" ] && [ -n "$new_id" ] && [ "$bk_id" != "$new_id" ] || fail "master key IDs: backup '$bk_id', rekey '$new_id'"
[ "$prepared_id" = "$new_id" ] || fail "init named the prepared key $prepared_id, the rekey made $new_id the store's"
[ "$(mef_key_id "$tmp/prepare.out")" = "$new_id" ] ||
        fail "rekey --prepare named the next key $(mef_key_id "$tmp/prepare.out"), the rekey made $new_id the store's"
ok "rekey --prepare and init after it: the ID backups carry until the rekey, and the prepared key's, which it then made the store's"
if b restore "$tmp/bk" --passphrase-file "$tmp/pass" --expect-master-key "$new_id" > "$tmp/expect.out" 2>&1; then
        fail "restore with the rekeyed key's ID"
fi
grep -q "its master key is ID $bk_id, not ID $new_id" "$tmp/expect.out" || fail "--expect-master-key: $(cat "$tmp/expect.out")"
[ ! -e "$tmp/b/master.key" ] || fail "a refused restore wrote the key file"
b restore "$tmp/bk" --passphrase-file "$tmp/pass" --expect-master-key "$bk_id" > "$tmp/restore.out" 2>&1 || fail "restore: $(cat "$tmp/restore.out")"
[ "$(mef_key_id "$tmp/restore.out")" = "$bk_id" ] || fail "restore's master key ID: $(cat "$tmp/restore.out")"
grep -q '^Restored .* 2 nodes, 2 targets, 1 enrolments' "$tmp/restore.out" || fail "restore: $(cat "$tmp/restore.out")"
[ "$(stat -c %a "$tmp/b/master.key")" = 400 ] || fail "restored key file mode"
if b restore "$tmp/bk" --passphrase-file "$tmp/pass" > "$tmp/twice.out" 2>&1; then fail "restore into a non-empty store"; fi
grep -q 'not empty' "$tmp/twice.out" || fail "restore twice: $(cat "$tmp/twice.out")"
b restore "$tmp/bk" --passphrase-file "$tmp/pass" --force > /dev/null || fail "restore --force"
ok "restore into a fresh MEF ($b_backend); a non-empty store needs --force"
# the certificate node and target as they were (neither has been seen since the backup)
same_listing() { # COMMAND...: its --json output the same on stores a and b
        if ! a --json "$@" > "$tmp/list-a.json" || ! b --json "$@" > "$tmp/list-b.json"; then fail "$* failed"; fi
        cmp -s "$tmp/list-a.json" "$tmp/list-b.json" || fail "restored $* differs: $(diff "$tmp/list-a.json" "$tmp/list-b.json")"
}
same_listing node show "$CNODE"
same_listing target list
grep -q '"auth": *"cert"' "$tmp/list-b.json" && grep -q "\"$CTARGET\"" "$tmp/list-b.json" ||
        fail "no certificate target restored: $(cat "$tmp/list-b.json")"
ok "a node and a target by certificate restored ($b_backend) and listed as they were"

# a fresh host where [store] master_key's directory does not exist yet: made 0700, as init does
conf "$tmp/d"
sed -i "s|^master_key = .*|master_key = $tmp/d/keys/sub/master.key|" "$tmp/d/mef.conf"
"$mef" --config "$tmp/d/mef.conf" restore "$tmp/bk" --passphrase-file "$tmp/pass" > "$tmp/d.out" 2>&1 ||
        fail "restore with the key's directory missing: $(cat "$tmp/d.out")"
[ "$(stat -c %a "$tmp/d/keys/sub")" = 700 ] && [ "$(stat -c %a "$tmp/d/keys/sub/master.key")" = 400 ] ||
        fail "restore: key directory $(stat -c %a "$tmp/d/keys/sub"), key $(stat -c %a "$tmp/d/keys/sub/master.key")"
ok "restore where the master key's directory does not exist: made 0700, the key 0400"

PORT=
mef_start "$tmp/b/mef.conf.in" || fail "restored msce-mef did not start"
port=$PORT
fetch "$keid"
[ "$got" = "$key1" ] || fail "restored MEF: the enrolment's key differs: '$got', not $key1: $(cat "$tmp/fetch.out")"
status_active "$keid" || fail "restored MEF: status: $(cat "$tmp/status.out")"
enrol "$tmp/enrol3.out"
keid3=$got
status_active "$keid3" || fail "restored MEF: status of the new enrolment"
ok "restored MEF serves the same gateway: status, the target's fetch (same key), a new enrolment"
# cert_exchange REQUEST-FILE NAME: over TLS 1.3 with the certificate NAME.pem, the transcript
cert_exchange() {
        timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername "$FQDN" -CAfile "$tmp/ca.pem" \
                -verify_return_error -tls1_3 $EKM_OPTS -cert "$tmp/$2.pem" -key "$tmp/$2.key" -ign_eof \
                < "$1" 2>&1 || :
}
request POST /msce/enrolments "$CNODE" "{\"msce:enrolReq\": {\"nodeID\": \"$CNODE\"}}" > "$tmp/cert-enrol.req"
cert_exchange "$tmp/cert-enrol.req" dev > "$tmp/cert-enrol.out"
grep -q '^HTTP/1.1 201 ' "$tmp/cert-enrol.out" || fail "restored MEF, certificate enrol: $(cat "$tmp/cert-enrol.out")"
ckeid=$(json_str keID < "$tmp/cert-enrol.out")
ekm=$(s_client_ekm "$tmp/cert-enrol.out")
[ ${#ekm} -eq 96 ] || fail "OpenSSL printed no 48-byte keying material"
request GET "/msce/fetchCredentials/$ckeid/tls" "$CTARGET" > "$tmp/cert-fetch.req"
cert_exchange "$tmp/cert-fetch.req" tgt > "$tmp/cert-fetch.out"
grep -q '^HTTP/1.1 200 ' "$tmp/cert-fetch.out" || fail "restored MEF, certificate fetch: $(cat "$tmp/cert-fetch.out")"
got=$(json_str key < "$tmp/cert-fetch.out" | base64 -d | od -An -tx1 -v | tr -d ' \n')
want=$(kpsa_of "$ekm" "$CTARGET")
[ ${#want} -eq 64 ] && [ "$got" = "$want" ] ||
        fail "restored MEF: the certificate target fetched $got, not HMAC-SHA-256(Ke, label || target) $want"
ok "restored MEF ($b_backend): the certificate node enrols, the certificate target fetches its key"
b rekey > "$tmp/rekey-b.out" || fail "rekey of the restored MEF: $(cat "$tmp/rekey-b.out")"
# First an enrolment over TLS 1.2: the store thread still holds the old key when it seals the
# new one. On PostgreSQL its transaction fails on the check value and runs again under the new
# key (mef/handlers-enrol.c); the gateway sees a 201 either way.
# The key the target then fetches is checked against OpenSSL's exporter output, as
# mef-openssl.sh does: HMAC-SHA-256(EKM[16..48), label || target ID).
psk_exchange "$kpm" kpm-backup-1 1.2 $EKM_OPTS < "$tmp/enrol.req" > "$tmp/enrol4.out"
grep -q '^HTTP/1.1 201 ' "$tmp/enrol4.out" || fail "restored MEF, enrol after its rekey: $(cat "$tmp/enrol4.out")"
keid4=$(json_str keID < "$tmp/enrol4.out")
ekm=$(s_client_ekm "$tmp/enrol4.out")
[ ${#ekm} -eq 96 ] || fail "OpenSSL printed no 48-byte keying material"
fetch "$keid4"
want=$(kpsa_of "$ekm" "$TARGET")
[ ${#want} -eq 64 ] && [ "$got" = "$want" ] ||
        fail "restored MEF after its rekey: fetched key $got, not HMAC-SHA-256(Ke, label || target) $want"
status_active "$keid4" || fail "restored MEF after its rekey: status of the new enrolment"
ok "rekey on the restored MEF ($b_backend) while it serves: an enrolment sealed by a thread that held the old key, its key fetched, status"
mef_stop

# a damaged row (a node's sealed Kpm copied into its enrolment) stops a backup, named; the store
# still opens and the row is where it was
python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
open(sys.argv[3], "w").write(db.execute("SELECT hex(key_enc) FROM enrolments WHERE ke_id = ?", (sys.argv[2],)).fetchone()[0])
db.execute("UPDATE enrolments SET key_enc = (SELECT kpm_enc FROM nodes) WHERE ke_id = ?", (sys.argv[2],))
db.commit()' "$tmp/a/mef.db" "$keid" "$tmp/key_enc.hex" || fail "damaging a row of store a"
rc=0
a backup --passphrase-file "$tmp/pass" --kdf-iterations 100000 "$tmp/bk-damaged" > "$tmp/out" 2> "$tmp/err" || rc=$?
[ "$rc" = 1 ] || fail "backup of a store with a damaged row exited $rc"
grep -qF "the key of enrolments row $keid opens under no master key of this store" "$tmp/err" ||
        fail "backup of a damaged row: $(cat "$tmp/err")"
[ "$(a --json enrolments "$NODE" | grep -c "$keid")" = 1 ] || fail "the damaged row after the failed backup"
ok "a row whose key opens under no master key stops a backup, named (it would fail the restore)"

# The damaged row stops a rekey after its new key took over; the row put back, the store is
# under the new key (master.key.new) and the old one: init names the new key, which a backup
# made now carries, and the old one.
rc=0
a rekey > "$tmp/out" 2> "$tmp/err" || rc=$?
[ "$rc" = 1 ] && grep -q 'stopped after the new key .* took over' "$tmp/err" || fail "rekey at a damaged row: $(cat "$tmp/err")"
python3 -c 'import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("UPDATE enrolments SET key_enc = ? WHERE ke_id = ?", (bytes.fromhex(open(sys.argv[3]).read()), sys.argv[2]))
db.commit()' "$tmp/a/mef.db" "$keid" "$tmp/key_enc.hex" || fail "repairing the row of store a"
a init > "$tmp/init-underway.out" || fail "init during a rekey: $(cat "$tmp/init-underway.out")"
a --json init > "$tmp/init-underway.json" || fail "init --json during a rekey"
a backup --passphrase-file "$tmp/pass" --kdf-iterations 100000 "$tmp/bk-underway" > "$tmp/out" ||
        fail "backup during a rekey: $(cat "$tmp/out")"
underway_id=$(mef_key_id "$tmp/out")
[ -n "$underway_id" ] && [ "$underway_id" != "$new_id" ] || fail "backup during a rekey: $(cat "$tmp/out")"
[ "$(mef_key_id "$tmp/init-underway.out")" = "$underway_id" ] ||
        fail "init during a rekey: not the ID $underway_id the backup carries: $(cat "$tmp/init-underway.out")"
grep -q "^A rekey from master key ID $new_id (.*) to this key (.*master.key.new) is under way: run msce-mef rekey" \
        "$tmp/init-underway.out" || fail "init during a rekey: $(cat "$tmp/init-underway.out")"
[ "$(init_json "$tmp/init-underway.json")" = "$underway_id underway - $new_id" ] ||
        fail "init --json during a rekey: $(cat "$tmp/init-underway.json")"
conf "$tmp/e"
"$mef" --config "$tmp/e/mef.conf" restore "$tmp/bk-underway" --passphrase-file "$tmp/pass" \
        --expect-master-key "$(mef_key_id "$tmp/init-underway.out")" > "$tmp/out" 2>&1 ||
        fail "restore with the ID init printed during the rekey: $(cat "$tmp/out")"
a rekey > "$tmp/out" || fail "rekey after the row was repaired: $(cat "$tmp/out")"
[ "$(mef_key_id "$tmp/out")" = "$underway_id" ] || fail "the finished rekey's key: $(cat "$tmp/out")"
grep -q "^Rotated the master key $tmp/a/master.key (finishing the rekey that had stopped): [1-9][0-9]* secrets re-encrypted" \
        "$tmp/out" || fail "the finished rekey's line: $(cat "$tmp/out")"
a --json init > "$tmp/init-done.json" || fail "init --json after the rekey"
[ "$(init_json "$tmp/init-done.json")" = "$underway_id - - -" ] || fail "init --json after the rekey: $(cat "$tmp/init-done.json")"
ok "init during a stopped rekey names the new key (the backup's, restored with --expect-master-key) and the old one"

# Two hosts of one store, each with its own copy of the key file (d's beside a's): the next key
# prepared on a and copied to d, the rekey made on a; d's rekey, the normal next step, says the
# rotation was done and that it renamed its key file, not that it finished a stopped rekey.
mkdir -p "$tmp/d"
sed "s|^master_key = .*|master_key = $tmp/d/master.key|" "$tmp/a/mef.conf" > "$tmp/d/mef.conf"
cp -p "$tmp/a/master.key" "$tmp/d/master.key"
a rekey --prepare > "$tmp/out" || fail "rekey --prepare for two hosts: $(cat "$tmp/out")"
cp -p "$tmp/a/master.key.new" "$tmp/d/master.key.new"
a rekey > "$tmp/out" || fail "rekey on a, the first host: $(cat "$tmp/out")"
"$mef" --config "$tmp/d/mef.conf" rekey > "$tmp/out" 2>&1 || fail "rekey on d, the second host: $(cat "$tmp/out")"
grep -qF "The master key rotation was done already (by a rekey on another host of this store, or one here that stopped just before its end): $tmp/d/master.key.new renamed over $tmp/d/master.key" \
        "$tmp/out" || fail "rekey on d, the second host: $(cat "$tmp/out")"
! grep -q "finishing the rekey that had stopped" "$tmp/out" || fail "rekey on d, the second host: $(cat "$tmp/out")"
cmp -s "$tmp/a/master.key" "$tmp/d/master.key" && [ ! -e "$tmp/d/master.key.new" ] || fail "d's key file is not a's new key"
ok "the second host's rekey of a rotation made on the first: said done there, its key file renamed"
tap_done

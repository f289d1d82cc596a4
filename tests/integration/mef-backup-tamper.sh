#!/usr/bin/env bash
# A backup changed after it was written is refused by restore, and nothing is written:
#  - store.jsonl with a revoked certificate node made active under another certificate's
#    fingerprint, its size and SHA-256 put right in the manifest (what anyone who can write the
#    backup directory, but knows neither passphrase nor master key, can do);
#  - an audit row taken out, its row count and the file's SHA-256 put right;
#  - a manifest of format 1 (no MAC);
#  - while the backup as written restores, with the node still revoked;
#  - a backup of schema 3 or 4, whose rows are those of schema 5 (its manifest's MAC made anew with
#    the master key, as docs/operations.md says it is made), restores into a store of this
#    schema; one of schema 2 or of a newer schema is refused, and nothing is written;
#  - a restore that fails part-way (a row the store refuses, after the key file is installed and
#    the store created) removes what it made, and another backup then restores there.
# Usage: mef-backup-tamper.sh PATH/TO/msce-mef (TAP). Skipped without python3.
set -euo pipefail
MEF=${1:?usage: mef-backup-tamper.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds python3
tmpdir mef-backup-tamper
LIB_SHOW="$T/out"
NODE=urn:dev:ops:tamper-1
FP_NODE=$(printf '%064d' 2)
FP_EVIL=$(printf 'e%.0s' {1..64})

a() { "$MEF" --config "$T/a/mef.conf" "$@"; }
b() { "$MEF" --config "$T/b/mef.conf" "$@"; }

mef_dir_conf "$T/a"
a init > /dev/null
a target add /in-cse --cert-fp "$(printf '%064d' 1)" > /dev/null
a node add "$NODE" --cse-id /mn-tamper-1 --cse-base https://in.example.net/base --cert-fp "$FP_NODE" \
        --target /in-cse > /dev/null
a node revoke "$NODE" > /dev/null
printf 'a long backup passphrase\n' > "$T/pass"
chmod 0600 "$T/pass"
a backup "$T/bk" --passphrase-file "$T/pass" --kdf-iterations 100000 > "$T/out" 2>&1 || fail "backup: $(cat "$T/out")"
grep -q '"state":"revoked"' "$T/bk/store.jsonl" || fail "no revoked node in the backup"

# fix_manifest DIR: the manifest's size and SHA-256 of store.jsonl, and its row counts, made to
# match the file again
fix_manifest() {
        python3 - "$1" << 'EOF'
import hashlib, json, sys
d = sys.argv[1]
m = json.load(open(d + "/manifest.json"))
data = open(d + "/store.jsonl", "rb").read()
m["files"]["store.jsonl"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
rows = dict.fromkeys(m["rows"], 0)
for line in data.splitlines():
    rows[json.loads(line)["table"]] += 1
m["rows"] = rows
open(d + "/manifest.json", "w").write(json.dumps(m, indent=2))
EOF
}
# refused DIR PATTERN: restore of DIR fails, says PATTERN, and writes neither key nor store
refused() {
        rm -rf "$T/b"
        mef_dir_conf "$T/b"
        if b restore "$1" --passphrase-file "$T/pass" > "$T/out" 2>&1; then
                return 1
        fi
        grep -q "$2" "$T/out" && [ ! -e "$T/b/master.key" ] && [ ! -e "$T/b/mef.db" ]
}

cp -r "$T/bk" "$T/bk-active"
sed -i "s/\"state\":\"revoked\"/\"state\":\"active\"/; s/$FP_NODE/$FP_EVIL/" "$T/bk-active/store.jsonl"
fix_manifest "$T/bk-active"
check "a revoked node made active under another certificate, manifest put right: refused, nothing written" \
        refused "$T/bk-active" "manifest.json does not hold under the backup's master key"

cp -r "$T/bk" "$T/bk-fewer"
grep -v '"table":"audit".*"action":"node-revoke"' "$T/bk/store.jsonl" > "$T/bk-fewer/store.jsonl" || :
cmp -s "$T/bk/store.jsonl" "$T/bk-fewer/store.jsonl" && fail "no audit row of the revoke to take out"
fix_manifest "$T/bk-fewer"
check "an audit row taken out, counts and SHA-256 put right: refused, nothing written" \
        refused "$T/bk-fewer" "manifest.json does not hold under the backup's master key"

cp -r "$T/bk" "$T/bk-v1"
python3 - "$T/bk-v1/manifest.json" << 'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["version"] = 1
del m["mac"]
open(sys.argv[1], "w").write(json.dumps(m, indent=2))
EOF
check "a manifest of format 1 (no MAC): refused, nothing written" refused "$T/bk-v1" "backup format 1"

restored_revoked() { # DIR: restores into a fresh MEF, whose node is revoked with its own certificate
        rm -rf "$T/b"
        mef_dir_conf "$T/b"
        b restore "$1" --passphrase-file "$T/pass" > "$T/out" 2>&1 || return 1
        b node show "$NODE" > "$T/out" 2>&1 && grep -q 'State: *revoked' "$T/out" && grep -q "$FP_NODE" "$T/out"
}
check "the backup as written restores: the node is revoked, with its own certificate" restored_revoked "$T/bk"

# remac DIR [SCHEMA]: DIR's manifest as MEF a would write it for DIR's store.jsonl (its size and
# SHA-256), with SCHEMA when given, the MAC made anew under a's master key: HMAC-SHA256, keyed by
# HKDF-SHA256 (no salt, info "msce-mef backup manifest v2") of the master key, over the members
# one a line. The MAC found there first must be the one so made (docs/operations.md).
remac() {
        python3 - "$1" "$T/a/master.key" "${2:-}" << 'EOF'
import hashlib, hmac, json, sys
d, key_path, schema = sys.argv[1], sys.argv[2], sys.argv[3]
m = json.load(open(d + "/manifest.json"))
key = open(key_path, "rb").read()
prk = hmac.new(b"\0" * 32, key, hashlib.sha256).digest()
mac_key = hmac.new(prk, b"msce-mef backup manifest v2\x01", hashlib.sha256).digest()
def text(m):
    t = "msce-mef-backup\nversion %d\nschema %d\ncreated %d\nbackend %s\n" % (m["version"], m["schema"], m["created"], m["backend"])
    for table in ["nodes", "targets", "enrolments", "audit", "meta"]:
        t += "rows %s %d\n" % (table, m["rows"][table])
    for name in ["store.jsonl", "master-key.json"]:
        t += "file %s %d %s\n" % (name, m["files"][name]["size"], m["files"][name]["sha256"])
    return t.encode()
if hmac.new(mac_key, text(m), hashlib.sha256).hexdigest() != m["mac"]:
    sys.exit("the MAC of the backup as written is not the one docs/operations.md describes")
data = open(d + "/store.jsonl", "rb").read()
m["files"]["store.jsonl"] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
if schema:
    m["schema"] = int(schema)
m["mac"] = hmac.new(mac_key, text(m), hashlib.sha256).hexdigest()
open(d + "/manifest.json", "w").write(json.dumps(m, indent=2))
EOF
}
# with_schema N: $T/bk-sN, the backup with schema N in its manifest, the MAC made anew
with_schema() {
        rm -rf "$T/bk-s$1"
        cp -r "$T/bk" "$T/bk-s$1"
        remac "$T/bk-s$1" "$1"
}
schema=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["schema"])' "$T/bk/manifest.json")
with_schema 3 || fail "manifest of schema 3"
check "a backup of schema 3 (the same rows) restores into a store of schema $schema" restored_revoked "$T/bk-s3"
with_schema 4 || fail "manifest of schema 4"
check "a backup of schema 4 (the same rows; 5 rewrote a check) restores into a store of schema $schema" \
        restored_revoked "$T/bk-s4"
with_schema 2 || fail "manifest of schema 2"
check "a backup of schema 2 is refused, nothing written" refused "$T/bk-s2" "reads backups of 3 and later"
with_schema $((schema + 1)) || fail "manifest of schema $((schema + 1))"
check "a backup of a newer schema is refused, nothing written" refused "$T/bk-s$((schema + 1))" "newer than this msce-mef"

# A restore that fails part-way, after it installed the key file and created the store: a row
# the store refuses, in a backup whose manifest holds (what a MEF's own damaged row would give).
# It takes away what it made, so that another backup (another key) restores next; a store file
# that was there empty stays, empty.
cp -r "$T/bk" "$T/bk-row"
sed -i 's/\("table":"audit","row":{"id":2,"ts":\)[0-9]*/\1"later"/' "$T/bk-row/store.jsonl"
cmp -s "$T/bk/store.jsonl" "$T/bk-row/store.jsonl" && fail "no audit row 2 to damage"
remac "$T/bk-row" || fail "manifest of the damaged row"
mef_dir_conf "$T/c"
"$MEF" --config "$T/c/mef.conf" init > /dev/null
"$MEF" --config "$T/c/mef.conf" backup "$T/bk-c" --passphrase-file "$T/pass" --kdf-iterations 100000 > "$T/out" 2>&1 ||
        fail "backup of MEF c: $(cat "$T/out")"
# failed_part_way [EMPTY]: the restore of bk-row fails at the row and leaves b as it found it:
# nothing, or (EMPTY) the empty mef.db alone; then bk-c, of another key, restores there
failed_part_way() {
        rm -rf "$T/b"
        mef_dir_conf "$T/b"
        if [ -n "${1:-}" ]; then
                : > "$T/b/mef.db"
                chmod 0600 "$T/b/mef.db"
        fi
        if b restore "$T/bk-row" --passphrase-file "$T/pass" > "$T/out" 2>&1; then
                return 1
        fi
        grep -q "store.jsonl line 4: not a row of this schema" "$T/out" || return 1
        [ ! -e "$T/b/master.key" ] && [ ! -e "$T/b/mef.db-wal" ] && [ ! -e "$T/b/mef.db-shm" ] || return 1
        if [ -n "${1:-}" ]; then
                [ -f "$T/b/mef.db" ] && [ ! -s "$T/b/mef.db" ] || return 1
        else
                [ ! -e "$T/b/mef.db" ] || return 1
        fi
        b restore "$T/bk-c" --passphrase-file "$T/pass" >> "$T/out" 2>&1 && b audit >> "$T/out" 2>&1
}
check "a restore failing at a row removes the key file and store it made; another backup restores next" \
        failed_part_way
check "... into an empty mef.db: left empty, no key; another backup restores next" failed_part_way empty
tap_done

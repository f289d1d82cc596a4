#!/usr/bin/env bash
# A backup changed after it was written is refused by restore, and nothing is written:
#  - store.jsonl with a revoked certificate node made active under another certificate's
#    fingerprint, its size and SHA-256 put right in the manifest (what anyone who can write the
#    backup directory, but knows neither passphrase nor master key, can do);
#  - an audit row taken out, its row count and the file's SHA-256 put right;
#  - a manifest of format 1 (no MAC);
#  - while the backup as written restores, with the node still revoked.
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

rm -rf "$T/b"
mef_dir_conf "$T/b"
b restore "$T/bk" --passphrase-file "$T/pass" > "$T/out" 2>&1 || fail "restore of the backup as written: $(cat "$T/out")"
check "the backup as written restores: the node is revoked, with its own certificate" \
        sh -c "'$MEF' --config '$T/b/mef.conf' node show '$NODE' > '$T/out' 2>&1 && grep -q 'State: *revoked' '$T/out' && grep -q '$FP_NODE' '$T/out'"
tap_done

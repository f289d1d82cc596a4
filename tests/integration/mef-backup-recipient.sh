#!/usr/bin/env bash
# Backups wrapped for a recipient's public key (issue 14 part 2), with keys made by OpenSSL:
#  - "msce-mef backup --recipient PUB" needs no secret on the backup host; it names the key by
#    the SHA-256 of its SubjectPublicKeyInfo, as `openssl pkey -pubin -outform DER | sha256sum`;
#    the wrapped key file holds neither the master key nor the node's Kpm;
#  - "msce-mef restore" without --identity names the recipient it needs; with another P-256
#    key, or with the right key readable by others, it is refused and writes nothing;
#  - with the private key (SEC1 or PKCS#8) it restores the same master key into a fresh MEF,
#    whose store opens (the node is there);
#  - init, backup and restore print the master key's ID, and --expect-master-key with it tells
#    a forged backup (another store's, wrapped for the same public key and put in the backup
#    directory: without the flag it restores) and refuses it before writing anything.
# Usage: mef-backup-recipient.sh PATH/TO/msce-mef (TAP). Skipped without openssl.
set -euo pipefail
MEF=${1:?usage: mef-backup-recipient.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_cmds openssl od sha256sum
tmpdir mef-backup-recipient
LIB_SHOW="$T/out"
NODE=urn:dev:ops:recipient-1

a() { "$MEF" --config "$T/a/mef.conf" "$@"; }
b() { "$MEF" --config "$T/b/mef.conf" "$@"; }

mef_dir_conf "$T/a"
a init > "$T/out" || fail "init: $(cat "$T/out")"
id=$(mef_key_id "$T/out")
[ -n "$id" ] || fail "init printed no master key ID: $(cat "$T/out")"
a node add "$NODE" --cse-id /mn-recipient-1 --cse-base https://in.example.net/base --psk-id kpm-recipient-1 \
        --generate-psk "$T/kpm.hex" > /dev/null

openssl ecparam -name prime256v1 -genkey -noout -out "$T/id-sec1.pem" 2> /dev/null
openssl pkcs8 -topk8 -nocrypt -in "$T/id-sec1.pem" -out "$T/id-pkcs8.pem"
openssl pkey -in "$T/id-sec1.pem" -pubout -out "$T/id.pub"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/other.pem" 2> /dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/rsa.pem" 2> /dev/null
openssl pkey -in "$T/rsa.pem" -pubout -out "$T/rsa.pub"
chmod 0600 "$T"/*.pem
fpr=$(openssl pkey -pubin -in "$T/id.pub" -outform DER | sha256sum | cut -d' ' -f1)

check "an RSA recipient key is refused" sh -c "! '$MEF' --config '$T/a/mef.conf' backup --recipient '$T/rsa.pub' '$T/bk-rsa' > '$T/out' 2>&1 && grep -q 'not a P-256 public key' '$T/out' && [ ! -e '$T/bk-rsa/master-key.json' ]"
check "--recipient with --passphrase-file is a usage error" sh -c "! '$MEF' --config '$T/a/mef.conf' backup --recipient '$T/id.pub' --passphrase-file '$T/id-sec1.pem' '$T/bk-x' > '$T/out' 2>&1"

a backup --recipient "$T/id.pub" "$T/bk" < /dev/null > "$T/out" 2>&1 || fail "backup --recipient: $(cat "$T/out")"
check "backup names the recipient by OpenSSL's SPKI SHA-256" grep -q "for recipient key SHA256:$fpr" "$T/out"
check "backup prints the master key ID init printed" [ "$(mef_key_id "$T/out")" = "$id" ]
hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; }
mk=$(hexof "$T/a/master.key")
kpm=$(tr -d '\n' < "$T/kpm.hex")
leak=
for f in "$T"/bk/*; do
        dump=$(hexof "$f")
        for secret in "$kpm" "$mk"; do
                grep -qiF "$secret" "$f" && leak="$leak $f(hex)"
                case $dump in *"$secret"*) leak="$leak $f(raw)" ;; esac
        done
done
check "no master key nor Kpm in the backup, as hex or raw bytes" [ -z "$leak" ]
check "the wrapped key says its recipient" grep -q "\"recipient\": \"$fpr\"" "$T/bk/master-key.json"

mef_dir_conf "$T/b"
b restore "$T/bk" < /dev/null > "$T/out" 2>&1 && fail "restore without --identity succeeded"
check "without --identity: the recipient it needs is named" grep -q "wrapped for recipient key SHA256:$fpr: give its private key with --identity" "$T/out"
b restore --identity "$T/other.pem" "$T/bk" < /dev/null > "$T/out" 2>&1 && fail "restore with another key succeeded"
check "another P-256 key is refused, nothing written" sh -c "grep -q 'is not recipient key SHA256:$fpr (nothing was changed)' '$T/out' && [ ! -e '$T/b/master.key' ] && [ ! -e '$T/b/mef.db' ]"
cp "$T/id-sec1.pem" "$T/id-open.pem"
chmod 0644 "$T/id-open.pem"
b restore --identity "$T/id-open.pem" "$T/bk" < /dev/null > "$T/out" 2>&1 && fail "restore with a world-readable identity succeeded"
check "an identity readable by others is refused" sh -c "grep -q 'readable by group or others' '$T/out' && [ ! -e '$T/b/master.key' ]"

rc=0
b restore --identity "$T/id-sec1.pem" --expect-master-key "${id^^}" "$T/bk" < /dev/null > "$T/out" 2>&1 || rc=$?
check "--expect-master-key takes 32 lowercase hex digits, else a usage error" sh -c "[ $rc = 2 ] && grep -q 'expect-master-key: expected a master key ID' '$T/out' && [ ! -e '$T/b/master.key' ]"

for form in sec1 pkcs8; do
        rm -rf "$T/b"
        mef_dir_conf "$T/b"
        b restore --identity "$T/id-$form.pem" --expect-master-key "$id" "$T/bk" < /dev/null > "$T/out" 2>&1 || fail "restore --identity ($form): $(cat "$T/out")"
        check "restored with the $form private key: the same master key" cmp -s "$T/a/master.key" "$T/b/master.key"
        check "restore prints the master key ID it restored" [ "$(mef_key_id "$T/out")" = "$id" ]
        check "the restored store opens: the node is there" sh -c "'$MEF' --config '$T/b/mef.conf' node show '$NODE' > '$T/out' 2>&1 && grep -q kpm-recipient-1 '$T/out'"
done

# A forged backup: a store of its own (its own master key, its own node), backed up for the same
# public key, put in the backup directory by whoever can write there. Its MAC holds (under its
# own key); only the master key ID tells it from the MEF's.
f() { "$MEF" --config "$T/f/mef.conf" "$@"; }
mef_dir_conf "$T/f"
f init > "$T/out" || fail "init of the forger's store: $(cat "$T/out")"
fid=$(mef_key_id "$T/out")
f node add urn:dev:ops:forged-1 --cse-id /mn-forged-1 --cse-base https://in.example.net/base --psk-id kpm-forged-1 \
        --generate-psk "$T/kpm-forged.hex" > /dev/null
f backup --recipient "$T/id.pub" "$T/bk-forged" < /dev/null > "$T/out" 2>&1 || fail "forged backup: $(cat "$T/out")"
rm -f "$T"/bk/*
cp "$T"/bk-forged/* "$T/bk/"
mef_dir_conf "$T/c"
"$MEF" --config "$T/c/mef.conf" restore --identity "$T/id-sec1.pem" "$T/bk" < /dev/null > "$T/out" 2>&1 ||
        fail "the forged backup without --expect-master-key: $(cat "$T/out")"
check "without --expect-master-key the forged backup restores (the forger's node)" sh -c "'$MEF' --config '$T/c/mef.conf' node show urn:dev:ops:forged-1 > /dev/null 2>&1"
rm -rf "$T/c"
mef_dir_conf "$T/c"
rc=0
"$MEF" --config "$T/c/mef.conf" restore --identity "$T/id-sec1.pem" --expect-master-key "$id" "$T/bk" < /dev/null > "$T/out" 2>&1 || rc=$?
check "with --expect-master-key it is refused, naming both IDs, nothing written" sh -c "[ $rc = 1 ] && grep -q 'its master key is ID $fid, not ID $id (--expect-master-key): refused' '$T/out' && [ ! -e '$T/c/master.key' ] && [ ! -e '$T/c/mef.db' ]"
b node list > "$T/before" 2>&1 || fail "node list: $(cat "$T/before")"
b restore --identity "$T/id-sec1.pem" --expect-master-key "$id" --force "$T/bk" < /dev/null > "$T/out" 2>&1 && fail "forged restore --force succeeded"
check "with --force too: refused, the restored store and its key unchanged" sh -c "grep -q 'not ID $id' '$T/out' && '$MEF' --config '$T/b/mef.conf' node list > '$T/after' 2>&1 && cmp -s '$T/before' '$T/after' && grep -q '$NODE' '$T/after' && cmp -s '$T/a/master.key' '$T/b/master.key'"
tap_done

#!/usr/bin/env bash
# The bulk lifecycle of msce-mef (issue 14 part 1): node import of CSV and JSON Lines in one
# transaction (--dry-run changes nothing, bad rows named by line and rule, re-import changes
# nothing), node export without keys and its round trip into a fresh store, node revoke --from,
# keyset paging (--limit/--after walk every row once) on node list, enrolments and audit, the
# field a duplicate collided on, and the lost-master-key message.
# Usage: mef-import.sh PATH/TO/msce-mef (TAP; stops at the first failure).
set -euo pipefail
MEF=${1:?usage: mef-import.sh PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_exec "$MEF"
need_cmds jq
tmpdir mef-import
umask 077

conf() { # NAME: a store of that name
        cat > "$T/$1.conf" <<EOC
[server]
listen = 127.0.0.1:0
[store]
path = $T/$1/mef.db
master_key = $T/$1/master.key
[defaults]
poll = 3600
lifetime = 86400
EOC
}
# run WANT_RC STORE ARGS...: output in $T/out, $T/err
run() {
        local want=$1 store=$2 rc=0
        shift 2
        "$MEF" --config "$T/$store.conf" "$@" > "$T/out" 2> "$T/err" || rc=$?
        [ "$rc" = "$want" ] || fail "msce-mef $* exited $rc, want $want"
}
has_err() { grep -qF -- "$1" "$T/err" || fail "stderr lacks '$1'"; }
nodes() { "$MEF" --config "$T/$1.conf" --json node list | jq -r '.[].nodeID' | sort | tr '\n' ' '; }

conf a
conf b
run 0 a init
run 0 b init

KPM1=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
printf '%s\n' 8899aabbccddeeff0011223344556677 > "$T/kpm-2.hex"
FP3=$(printf 'ab%.0s' $(seq 32))
cat > "$T/nodes.csv" <<EOF
# the factory's file: a comment line is skipped
nodeID,kpmID,kpm,kpmFile,certFingerprint,cseID,cseBase,targets,poll,lifetime,ltkTransported
urn:dev:ops:imp-1,kpm-imp-1,$KPM1,,,/mn-imp-1,https://in.example.net:8443/~/in-cse/in-name,/in-cse /in-cse/Cmaf01,600,7200,false
urn:dev:ops:imp-2,kpm-imp-2,,$T/kpm-2.hex,,/mn-imp-2,"https://in.example.net/a,b",,,,true
urn:dev:ops:imp-3,,,,$FP3,/mn-imp-3,https://in.example.net/base,/in-cse,60,600,
EOF
cat > "$T/nodes.jsonl" <<EOF
{"nodeID":"urn:dev:ops:imp-4","kpmID":"kpm-imp-4","kpm":"$KPM1","cseID":"/mn-imp-4","cseBase":"https://in.example.net/base","targets":["/in-cse"],"poll":900,"lifetime":3600}
{"nodeID":"urn:dev:ops:imp-5","certFingerprint":"$(printf 'CD:%.0s' $(seq 31))CD","cseID":"/mn-imp-5","cseBase":"coaps://[2001:db8::1]:5684/base","ltkTransported":true,"state":"reenrol"}
EOF

# ---- dry run, import, re-import ----
run 0 a node import --dry-run "$T/nodes.csv"
grep -q "3 would be added" "$T/out" || fail "dry run summary: $(cat "$T/out")"
[ -z "$(nodes a)" ] || fail "a dry run added nodes: $(nodes a)"
ok "node import --dry-run checks every row and changes nothing"

run 0 a node import "$T/nodes.csv"
run 0 a --json node import "$T/nodes.jsonl"
[ "$(jq -c '[.added, .unchanged, .imported]' "$T/out")" = '[2,0,true]' ] || fail "jsonl import: $(cat "$T/out")"
[ "$(nodes a)" = "urn:dev:ops:imp-1 urn:dev:ops:imp-2 urn:dev:ops:imp-3 urn:dev:ops:imp-4 urn:dev:ops:imp-5 " ] ||
        fail "imported: $(nodes a)"
run 0 a --json node show urn:dev:ops:imp-1
[ "$(jq -c '[.kpmID, .cseID, .targets, .poll, .lifetime]' "$T/out")" = \
  '["kpm-imp-1","/mn-imp-1",["/in-cse","/in-cse/Cmaf01"],600,7200]' ] || fail "imp-1: $(cat "$T/out")"
run 0 a --json node show urn:dev:ops:imp-2
[ "$(jq -c '[.cseBase, .poll, .lifetime, .ltkTransported]' "$T/out")" = '["https://in.example.net/a,b",3600,86400,true]' ] ||
        fail "imp-2 (quoted field, defaults): $(cat "$T/out")"
run 0 a --json node show urn:dev:ops:imp-5
[ "$(jq -r '.certFingerprint + " " + .state' "$T/out")" = "$(printf 'cd%.0s' $(seq 32)) reenrol" ] ||
        fail "imp-5: $(cat "$T/out")"
ok "CSV (header, quoting, Kpm as hex or a path, defaults) and JSON Lines import"

cp "$T/a/mef.db" "$T/before.db"
run 0 a node import "$T/nodes.csv"
grep -q "0 added, 3 unchanged" "$T/out" || fail "re-import: $(cat "$T/out")"
run 0 a --json audit --action node-import
[ "$(jq length "$T/out")" = 2 ] || fail "re-import wrote an audit row: $(cat "$T/out")"
ok "importing the same file again changes nothing"

# ---- bad rows ----
cat > "$T/bad.csv" <<EOF
nodeID,kpmID,kpm,certFingerprint,cseID,cseBase,poll
urn:dev:ops:new-1,kpm-new-1,$KPM1,,/mn-new-1,https://in.example.net/base,600
bad id,kpm-x,$KPM1,,/mn-x,https://in.example.net/base,600
urn:dev:ops:new-2,kpm-imp-1,$KPM1,,/mn-new-2,https://in.example.net/base,600
urn:dev:ops:new-3,kpm-new-3,$KPM1,,mn-new-3,https://in.example.net/base,600
urn:dev:ops:new-4,kpm-new-4,abc,,/mn-new-4,https://in.example.net/base,600
urn:dev:ops:new-5,kpm-new-5,$KPM1,,/mn-imp-1,https://in.example.net/base,600
urn:dev:ops:imp-1,kpm-imp-1,$KPM1,,/mn-imp-1,https://in.example.net:8443/~/in-cse/in-name,601
urn:dev:ops:new-6,kpm-new-6,$KPM1,,/mn-new-6,ftp://in.example.net/base,600
urn:dev:ops:new-7,kpm-new-7,$KPM1,,/mn-new-7,https://in.example.net/base,5
urn:dev:ops:new-8,kpm-new-8,$KPM1,$FP3,/mn-new-8,https://in.example.net/base,600
urn:dev:ops:new-9,kpm-new-9
urn:dev:ops:new-1,kpm-new-10,$KPM1,,/mn-new-10,https://in.example.net/base,600
urn:dev:ops:new-11,$(head -c 128 /dev/zero | tr '\0' k),$KPM1,,/mn-new-11,https://in.example.net/base,600
EOF
run 1 a node import "$T/bad.csv"
for want in "bad.csv:3: nodeID: contains a space" "bad.csv:4: KpmID already in use" \
            "bad.csv:5: cseID: " "bad.csv:6: kpm: expected 16..64 bytes as hex" "bad.csv:7: CSE-ID already in use" \
            "bad.csv:8: node urn:dev:ops:imp-1 exists with another targets" "bad.csv:9: cseBase: " \
            "bad.csv:10: poll: expected seconds" "bad.csv:11: give exactly one of kpmID, certFingerprint" \
            "bad.csv:12: not as many fields as the header" "bad.csv:13: node urn:dev:ops:new-1 exists with another kpmID" \
            "bad.csv:14: kpmID: expected 1..127 printable ASCII characters without spaces (the TLS PSK identity limit)" \
            "12 of 13 rows are bad: nothing imported"; do
        has_err "$want"
done
grep -q "bad.csv:2:" "$T/err" && fail "a good row reported: $(cat "$T/err")"
run 0 a node show urn:dev:ops:imp-1
run 1 a node show urn:dev:ops:new-1
ok "every bad row named by line and rule; one bad row imports nothing"

{
        printf 'nodeID,kpmID,kpm,cseID,cseBase\n'
        for i in 1 2 3; do
                printf 'urn:dev:ops:open-%s,kpm-open-%s,%s,/mn-open-%s,https://x.example/b\n' "$i" "$i" "$KPM1" "$i"
        done
} > "$T/open.csv"
chmod 0644 "$T/open.csv"
run 1 a node import "$T/open.csv"
has_err "open.csv: mode 0644: the file holds keys and is readable by group or others (chmod 0600 it)"
has_err "3 of 3 rows are bad (3 for the file's mode): nothing imported"
[ "$(grep -c "holds keys" "$T/err")" = 1 ] || fail "the file's mode said more than once: $(cat "$T/err")"
run 1 a --json node import "$T/open.csv"
[ "$(jq -r '[.errors[].line] | join(" ")' "$T/out")" = "2 3 4" ] || fail "--json: not every row in errors: $(cat "$T/out")"
ok "a file with Kpm values readable by others is refused, its mode said once for its 3 rows"

# a spreadsheet's UTF-8 CSV: a byte order mark before the header, CRLF line ends
printf '\xef\xbb\xbfnodeID,certFingerprint,cseID,cseBase\r\nurn:dev:ops:bom-1,%s,/mn-bom-1,https://x.example/b\r\n' \
        "$(printf 'e1%.0s' $(seq 32))" > "$T/bom.csv"
run 0 a node import "$T/bom.csv"
run 0 a node show urn:dev:ops:bom-1
run 0 a node remove urn:dev:ops:bom-1
ok "a CSV file with a byte order mark imports (the mark is not part of the first column's name)"

# ---- duplicates name the field (node add) ----
run 1 a node add urn:dev:ops:dup-1 --cse-id /mn-dup-1 --cse-base https://x.example/b --psk-id kpm-imp-1 --psk-file "$T/kpm-2.hex"
has_err "KpmID already in use"
run 1 a node add urn:dev:ops:dup-2 --cse-id /mn-dup-2 --cse-base https://x.example/b --cert-fp "$FP3"
has_err "certificate already in use"
ok "node add names the field a duplicate collided on"

# ---- export, round trip ----
run 0 a node export
cp "$T/out" "$T/export.jsonl"
[ "$(wc -l < "$T/export.jsonl")" = 5 ] || fail "export: $(cat "$T/export.jsonl")"
grep -qi -e "$KPM1" -e 8899aabbccddeeff0011223344556677 -e '"kpm"' "$T/export.jsonl" && fail "a key in the export"
run 0 a node export --format csv
cp "$T/out" "$T/export.csv"
grep -qi -e "$KPM1" -e 8899aabbccddeeff "$T/export.csv" && fail "a key in the CSV export"
ok "node export (JSON Lines, CSV) holds no key"

# the Kpm stays with the factory's files: the operator adds the path to each psk row
printf '%s\n' "$KPM1" > "$T/kpm-1.hex"
jq -c --arg d "$T" 'if .kpmID == "kpm-imp-2" then . + {kpmFile: ($d + "/kpm-2.hex")}
                    elif .kpmID then . + {kpmFile: ($d + "/kpm-1.hex")} else . end' "$T/export.jsonl" > "$T/with-keys.jsonl"
run 0 b node import "$T/with-keys.jsonl"
norm() { "$MEF" --config "$T/$1.conf" --json node list | jq -c 'map(del(.created, .lastSeen, .statusChecks))'; }
[ "$(norm a)" = "$(norm b)" ] || fail "round trip: $(norm a) vs $(norm b)"
run 0 b node import "$T/with-keys.jsonl"
grep -q "0 added, 5 unchanged" "$T/out" || fail "the Kpm compares equal after the round trip: $(cat "$T/out")"
sed 's/,active$/,active/' "$T/export.csv" | awk -F, -v OFS=, 'NR == 1 { print; next } $2 == "" { print }' > "$T/certs.csv"
run 0 b node import "$T/certs.csv"
grep -q "0 added, 2 unchanged" "$T/out" || fail "CSV export re-imported: $(cat "$T/out")"
ok "export, then import into a fresh store: the same nodes, the same Kpm"

# ---- revoke --from ----
printf '# gateways returned\nurn:dev:ops:imp-1\nurn:dev:ops:imp-3\n' > "$T/revoke.txt"
run 0 a node revoke --from "$T/revoke.txt"
grep -q "Revoked 2 nodes" "$T/out" || fail "revoke --from: $(cat "$T/out")"
run 0 a --json node list --state revoked
[ "$(jq -r '[.[].nodeID] | join(" ")' "$T/out")" = "urn:dev:ops:imp-1 urn:dev:ops:imp-3" ] || fail "revoked: $(cat "$T/out")"
printf 'urn:dev:ops:imp-4\nurn:dev:ops:nope\n' > "$T/revoke-bad.txt"
run 1 a node revoke --from "$T/revoke-bad.txt"
has_err "revoke-bad.txt:2: no such node"
run 0 a --json node show urn:dev:ops:imp-4
[ "$(jq -r .state "$T/out")" = active ] || fail "a failed revoke --from revoked some"
run 0 a node revoke --from "$T/export.jsonl"
grep -q "Revoked 3 nodes.*(2 were revoked already)" "$T/out" || fail "revoke --from an export: $(cat "$T/out")"
ok "node revoke --from FILE: one transaction, node IDs or an import/export file"

# ---- paging ----
{
        echo "nodeID,certFingerprint,cseID,cseBase"
        for i in $(seq 1 47); do printf 'urn:dev:ops:page-%03d,%064x,/mn-page-%03d,https://in.example.net/b\n' "$i" "$i" "$i"; done
} > "$T/page.csv"
run 0 b node import "$T/page.csv"
walk() { # CMD...: every page of 10 through --after, the keys in order
        local after="" page
        : > "$T/walk"
        while :; do
                "$MEF" --config "$T/b.conf" --json "$@" --limit 10 ${after:+--after "$after"} > "$T/page" 2> /dev/null
                jq -r ".[] | $KEY" "$T/page" >> "$T/walk"
                [ "$(jq length "$T/page")" = 10 ] || break
                after=$(jq -r ".[-1] | $KEY" "$T/page")
        done
}
KEY=.nodeID walk node list
"$MEF" --config "$T/b.conf" --json node list | jq -r '.[].nodeID' > "$T/all"
cmp -s "$T/walk" "$T/all" || fail "node list pages differ from the full list"
[ "$(sort -u "$T/walk" | wc -l)" = 52 ] || fail "node list pages: $(wc -l < "$T/walk") rows"
"$MEF" --config "$T/b.conf" node list --limit 10 > /dev/null 2> "$T/err"
has_err "more may follow: --after urn:dev:ops:page-005"
KEY='.id|tostring' walk audit
"$MEF" --config "$T/b.conf" --json audit | jq -r '.[].id|tostring' > "$T/all"
cmp -s "$T/walk" "$T/all" || fail "audit pages differ from the full trail"
run 0 b --json audit --since 1970-01-02 --action node-import
[ "$(jq length "$T/out")" = 2 ] || fail "audit filters: $(cat "$T/out")"
run 0 b --json node list --since "$(date -u -d tomorrow +%Y-%m-%d)"
[ "$(jq length "$T/out")" = 0 ] || fail "node list --since tomorrow"
run 2 b node list --state gone
run 2 b node list --limit 0
ok "node list and audit: --limit/--after walk every row exactly once; --state/--since/--action filter"

if command -v sqlite3 > /dev/null; then
        now=$(date +%s)
        for i in $(seq 1 23); do
                sqlite3 "$T/b/mef.db" "INSERT INTO enrolments (ke_id, node_id, state, created, exp, ltk_transported, key_enc)
                        VALUES (printf('%032x@mef.test', $i), 'urn:dev:ops:page-001', CASE WHEN $i = 23 THEN 'active' ELSE 'retired' END,
                                $now - 100 + $i / 3, $now + CASE WHEN $i = 23 THEN -1 ELSE 100 END, 0, x'00')"
        done
        KEY=.keID walk enrolments
        "$MEF" --config "$T/b.conf" --json enrolments | jq -r '.[].keID' > "$T/all"
        cmp -s "$T/walk" "$T/all" || fail "enrolment pages differ from the full list"
        [ "$(wc -l < "$T/all")" = 23 ] || fail "enrolments: $(wc -l < "$T/all")"
        run 0 b --json enrolments --state expired
        [ "$(jq -r '.[].state' "$T/out")" = expired ] || fail "--state expired: $(cat "$T/out")"
        run 0 b --json enrolments --state active
        [ "$(jq length "$T/out")" = 0 ] || fail "--state active lists an expired one"
        run 1 b enrolments --after ffff@mef.test
        has_err "no such enrolment"
        ok "enrolments: --limit/--after walk every row once, newest first; --state expired"
else
        skip "enrolment paging: sqlite3 is missing (rows are written with it)"
fi

# ---- the lost master key ----
mv "$T/a/master.key" "$T/a/master.key.away"
run 1 a node list
has_err "master key $T/a/master.key is missing, but store $T/a/mef.db exists"
run 1 a init
has_err "does not replace the key of an existing store"
ok "a lost master key: what happened and what to do, from init too"
tap_done

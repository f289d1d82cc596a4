#!/bin/bash
# SPDX-License-Identifier: MIT
# The operator CLI of msce-mef end to end: a temporary configuration and store, every command,
# table and --json output, exit codes, and no key bytes in any output or in the database.
# Usage: mef-cli.sh PATH/TO/msce-mef     (TAP; stops at the first failure)
set -euo pipefail

MEF=${1:?usage: $0 PATH/TO/msce-mef}
. "$(dirname "$0")/lib.sh"
need_exec "$MEF"
need_cmds jq
HAVE_SQLITE=0; command -v sqlite3 >/dev/null && HAVE_SQLITE=1
HAVE_OPENSSL=0; command -v openssl >/dev/null && HAVE_OPENSSL=1

tmpdir mef-cli
ALL_OUT=$T/all-output   # everything any command printed, scanned for key bytes at the end
: >"$ALL_OUT"

# run WANT_RC ARGS...: runs msce-mef with the test config; output in $OUT, $ERR.
run() {
        local want=$1; shift
        local rc=0
        "$MEF" --config "$T/mef.conf" "$@" >"$T/out" 2>"$T/err" || rc=$?
        OUT=$(cat "$T/out"); ERR=$(cat "$T/err")
        cat "$T/out" "$T/err" >>"$ALL_OUT"
        if [[ $rc != "$want" ]]; then
                { echo "--- stdout"; echo "$OUT"; echo "--- stderr"; echo "$ERR"; } | sed "s|^|# |"
                fail "msce-mef $* exited $rc, want $want"
        fi
}

mode_of() { stat -c %a "$1"; }

cat >"$T/mef.conf" <<EOF
[server]
listen = 127.0.0.1:0
[store]
path = $T/state/mef.db
master_key = $T/keys/master.key
[defaults]
poll = 3600
EOF

# ---- init ----
run 1 node list
[[ $ERR == *"msce-mef: open store"*"init"* ]] || fail "node list before init: $ERR"
ok "commands before init fail and point at init"

run 0 init
[[ $(mode_of "$T/keys/master.key") == 400 ]] || fail "master key mode $(mode_of "$T/keys/master.key")"
[[ $(stat -c %s "$T/keys/master.key") == 32 ]] || fail "master key size"
[[ $(mode_of "$T/keys") == 700 ]] || fail "key directory mode"
[[ $(mode_of "$T/state/mef.db") == 600 ]] || fail "database mode $(mode_of "$T/state/mef.db")"
ok "init creates the store 0600 and the master key 0400"
run 0 --json init
[[ $(jq -r .created <<<"$OUT") == false ]] || fail "second init: $OUT"
ok "init is idempotent"

# ---- node add ----
run 0 node add urn:dev:ops:gw-1 --cse-id /mn-cse-1 --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --psk-id kpm-gw-1 --generate-psk "$T/gw-1.hex" --target /in-cse --target /maf-01 --lifetime 7200
[[ $(mode_of "$T/gw-1.hex") == 600 ]] || fail "generated psk file mode"
KPM_HEX=$(head -n1 "$T/gw-1.hex")
[[ $KPM_HEX =~ ^[0-9a-f]{64}$ ]] || fail "generated psk file is not 32 bytes of hex"
[[ $(wc -l <"$T/gw-1.hex") == 1 ]] || fail "generated psk file is not one line"
[[ $ERR == *"warning: target /in-cse is not registered"* ]] || fail "no warning about unknown target: $ERR"
ok "node add --generate-psk writes a 0600 hex file"

run 1 node add urn:dev:ops:gw-9 --cse-id /x --cse-base https://x --psk-id kpm-9 --generate-psk "$T/gw-1.hex"
[[ $ERR == *"exists already"* ]] || fail "overwrote a psk file: $ERR"
[[ $(head -n1 "$T/gw-1.hex") == "$KPM_HEX" ]] || fail "psk file changed"
ok "--generate-psk refuses an existing file"

printf '%s\n' "00112233445566778899aabbccddeeff" >"$T/gw-2.hex"; chmod 0644 "$T/gw-2.hex"
run 1 node add urn:dev:ops:gw-2 --cse-id /mn-cse-2 --cse-base https://x --psk-id kpm-gw-2 --psk-file "$T/gw-2.hex"
[[ $ERR == *"readable by group or others"* ]] || fail "group-readable psk file: $ERR"
chmod 0600 "$T/gw-2.hex"
run 0 --json node add urn:dev:ops:gw-2 --cse-id /mn-cse-2 --cse-base https://x --psk-id kpm-gw-2 \
        --psk-file "$T/gw-2.hex" --ltk-transported
[[ $(jq -r '.nodeID + " " + .kpmID + " " + (.ltkTransported|tostring)' <<<"$OUT") == "urn:dev:ops:gw-2 kpm-gw-2 true" ]] ||
        fail "node add --json: $OUT"
ok "node add --psk-file (owner-only files only)"

run 1 node add urn:dev:ops:gw-3 --cse-id /mn-cse-3 --cse-base https://x --psk-id kpm-gw-1 --psk-file "$T/gw-2.hex"
[[ $ERR == *"already in use"* ]] || fail "duplicate KpmID: $ERR"
run 1 node add urn:dev:ops:gw-1 --cse-id /mn-cse-3 --cse-base https://x --psk-id kpm-new --generate-psk "$T/new.hex"
[[ ! -e $T/new.hex ]] || fail "a psk file was left for a node that was refused"
ok "duplicates are refused (exit 1) and leave no key file behind"

if ((HAVE_OPENSSL)); then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/dev.key" \
                -out "$T/dev.pem" -subj /CN=gw-c -days 2 2>/dev/null
        FP=$(openssl x509 -in "$T/dev.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
        run 0 --json node add urn:dev:ops:gw-c --cse-id /mn-cse-c --cse-base https://x --cert "$T/dev.pem"
        [[ $(jq -r .certFingerprint <<<"$OUT") == "$FP" ]] || fail "fingerprint $(jq -r .certFingerprint <<<"$OUT") != $FP"
        run 1 node add urn:dev:ops:gw-d --cse-id /mn-cse-d --cse-base https://x \
                --cert-fp "$(openssl x509 -in "$T/dev.pem" -noout -fingerprint -sha256 | cut -d= -f2)"
        [[ $ERR == *"already in use"* ]] || fail "same certificate twice: $ERR"
        ok "node add --cert stores the SHA-256 of the DER, as openssl computes it"
fi

# ---- node list / show ----
run 0 node list
head -n1 <<<"$OUT" | grep -Eq '^NODE_ID +AUTH +IDENTITY +CSE_ID +STATE +POLL +LIFETIME +TARGETS$' ||
        fail "table header: $(head -n1 <<<"$OUT")"
grep -Eq '^urn:dev:ops:gw-1 +psk +kpm-gw-1 +/mn-cse-1 +active +3600 +7200 +/in-cse,/maf-01$' <<<"$OUT" ||
        fail "table row: $OUT"
ok "node list prints an aligned table with a header"

run 0 --json node list
jq -e 'length >= 2' <<<"$OUT" >/dev/null || fail "node list --json: $OUT"
jq -e '.[] | select(.nodeID == "urn:dev:ops:gw-1")
        | .auth == "psk" and .kpmID == "kpm-gw-1" and .cseID == "/mn-cse-1"
          and .cseBase == "https://in.example.net:8443/~/in-cse/in-name" and .targets == ["/in-cse", "/maf-01"]
          and .poll == 3600 and .lifetime == 7200 and .ltkTransported == false and .state == "active"
          and (.created | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$"))' <<<"$OUT" >/dev/null ||
        fail "node list --json fields: $OUT"
run 0 node list --json
jq -e 'type == "array"' <<<"$OUT" >/dev/null || fail "--json after the command"
ok "node list --json has every field"

run 0 node show urn:dev:ops:gw-1
[[ $OUT == *"KpmID kpm-gw-1"* && $OUT != *"cert"* && $OUT != *"Warning"* && $OUT == *"State:           active"* ]] || fail "node show: $OUT"
run 0 --json node show urn:dev:ops:gw-1
jq -e '.nodeID == "urn:dev:ops:gw-1" and .enrolments == [] and .enrolmentsNext == null' <<<"$OUT" >/dev/null || fail "node show --json: $OUT"
run 1 node show urn:dev:ops:nobody
[[ $ERR == "msce-mef: node show urn:dev:ops:nobody: no such node" ]] || fail "unknown node: $ERR"
ok "node show"

# ---- enrolments (rows written as the server would; the CLI has no command to add them) ----
if ((HAVE_SQLITE)); then
        sqlite3 "$T/state/mef.db" "INSERT INTO enrolments (ke_id, node_id, key_enc, ltk_transported, state, created, exp)
                VALUES ('00aa@mef', 'urn:dev:ops:gw-1', x'00', 0, 'retired', 1000, 90000),
                       ('00bb@mef', 'urn:dev:ops:gw-1', x'00', 0, 'active', 2000, 90000),
                       ('00cc@mef', 'urn:dev:ops:gw-2', x'00', 1, 'active', 3000, 90000);"
        run 0 enrolments
        head -n1 <<<"$OUT" | grep -Eq '^KE_ID +NODE_ID +STATE +CREATED +EXPIRES +LTK$' || fail "enrolments header: $OUT"
        [[ $(sed -n '2p' <<<"$OUT" | cut -d' ' -f1) == 00cc@mef ]] || fail "enrolments not newest first: $OUT"
        run 0 --json enrolments urn:dev:ops:gw-1
        [[ $(jq -r 'map(.keID) | join(",")' <<<"$OUT") == "00bb@mef,00aa@mef" ]] || fail "enrolments NODE: $OUT"
        # active but past exp (1970 here): shown as expired, not active
        [[ $(jq -r 'map(.state) | join(",")' <<<"$OUT") == "expired,retired" ]] || fail "expired enrolment state: $OUT"
        run 0 enrolments urn:dev:ops:gw-1
        grep -Eq '^00bb@mef +urn:dev:ops:gw-1 +expired ' <<<"$OUT" || fail "expired not in the table: $OUT"
        run 1 enrolments urn:dev:ops:nobody
        ok "enrolments lists newest first, all or one node's, an expired one as expired"
else
        echo "# sqlite3 CLI missing: enrolment listing with rows not checked"
fi

# ---- state changes ----
# node_to COMMAND STATE: node COMMAND on gw-1 leaves it in STATE ($OUT: node show --json)
node_to() {
        run 0 node "$1" urn:dev:ops:gw-1
        run 0 --json node show urn:dev:ops:gw-1
        [[ $(jq -r .state <<<"$OUT") == "$2" ]] || fail "$1: $OUT"
}
node_to reenrol reenrol
ok "node reenrol"

node_to revoke revoked
if ((HAVE_SQLITE)); then
        [[ $(jq -r '.enrolments | map(.keID + "=" + .state) | join(",")' <<<"$OUT") == "00bb@mef=revoked,00aa@mef=retired" ]] ||
                fail "revoke did not revoke (only) the active enrolments: $OUT"
fi
ok "node revoke revokes the node and its active enrolments"

# reenrol would let a revoked node enrol again (an enrolment sets it active): refused
run 1 node reenrol urn:dev:ops:gw-1
[[ $ERR == "msce-mef: node reenrol: node urn:dev:ops:gw-1 is revoked: node activate first" ]] || fail "reenrol of a revoked node: $ERR"
run 0 --json node show urn:dev:ops:gw-1
[[ $(jq -r .state <<<"$OUT") == revoked ]] || fail "reenrol lifted the revocation: $OUT"
ok "node reenrol of a revoked node is refused, the node stays revoked"

node_to activate active
ok "node activate"

run 0 node remove urn:dev:ops:gw-1
run 1 node show urn:dev:ops:gw-1
run 1 node remove urn:dev:ops:gw-1
if ((HAVE_SQLITE)); then
        [[ $(sqlite3 "$T/state/mef.db" "SELECT count(*) FROM enrolments WHERE node_id = 'urn:dev:ops:gw-1'") == 0 ]] ||
                fail "enrolments survived their node"
fi
ok "node remove (and its enrolments)"

# ---- identifiers: each kind by its grammar (docs/protocol.md), the rule named, nothing stored ----
# idcheck WANT_RC RULE ARGS...: the command fails with RULE in its message and writes no PSK file.
idcheck() {
        local want=$1 rule=$2; shift 2
        rm -f "$T/id.hex"
        run "$want" "$@" --psk-id kpm-id-check --generate-psk "$T/id.hex"
        [[ $ERR == *"$rule"* ]] || fail "$*: '$ERR' does not name '$rule'"
        [[ ! -e $T/id.hex ]] || fail "$*: wrote a PSK file"
}
B=https://in.example.net:8443/~/in-cse/in-name
idcheck 2 "--cse-id: not an SP-relative CSE-ID (must start with '/')" node add urn:dev:ops:gw-x --cse-id mn-781 --cse-base $B
idcheck 2 "--cse-id: not a CSE-ID ('/' and A-Z a-z 0-9 - . _ ~)" \
        node add urn:dev:ops:gw-x --cse-id '/mn-$(id)`id`;reboot' --cse-base $B
idcheck 2 "--cse-id: not a CSE-ID ('/' inside)" node add urn:dev:ops:gw-x --cse-id /in-cse/../../x --cse-base $B
idcheck 2 "--cse-id: contains a space" node add urn:dev:ops:gw-x --cse-id '/mn 1' --cse-base $B
idcheck 2 "--cse-base: not an absolute URI with scheme http, https" \
        node add urn:dev:ops:gw-x --cse-id /mn-cse-x --cse-base in.example.net
idcheck 2 "--cse-base: user information not allowed" \
        node add urn:dev:ops:gw-x --cse-id /mn-cse-x --cse-base https://u:p@in.example.net/x
idcheck 2 "NODE_ID: contains a space" node add 'gw 1' --cse-id /mn-cse-x --cse-base $B
idcheck 2 "NODE_ID: not an M2M-Node-ID (contains '/')" node add ../../etc/passwd --cse-id /mn-cse-x --cse-base $B
idcheck 2 "NODE_ID: not a URN" node add urn:x:1 --cse-id /mn-cse-x --cse-base $B
idcheck 2 "--target: '.' or '..' segment" \
        node add urn:dev:ops:gw-x --cse-id /mn-cse-x --cse-base $B --target /in-cse/../../x
idcheck 2 "--target: not an SP-relative target ID (must start with '/')" \
        node add urn:dev:ops:gw-x --cse-id /mn-cse-x --cse-base $B --target in-cse
idcheck 2 "TARGET_ID: not an SP-relative target ID (must start with '/')" target add in-cse
idcheck 2 "TARGET_ID: more than two segments" target add /in-cse/a/b
# a CSE-ID names one CSE: another node's is refused, naming that node (the operator's own data)
idcheck 1 "--cse-id: CSE-ID already assigned to node urn:dev:ops:gw-2" \
        node add urn:dev:ops:gw-x --cse-id /mn-cse-2 --cse-base $B
run 0 --json node list
jq -e 'all(.[]; .nodeID != "urn:dev:ops:gw-x") and ([.[] | select(.cseID == "/mn-cse-2")] | length) == 1' \
        <<<"$OUT" >/dev/null || fail "a refused node was stored: $OUT"
run 0 --json target list
jq -e 'length == 0' <<<"$OUT" >/dev/null || fail "a refused target was stored: $OUT"
ok "malformed identifiers and a CSE-ID already assigned are refused with the rule named"

# ---- a PSK identity is at most what a TLS handshake carries (127 bytes, proto/tls.h) ----
K127=$(head -c 127 /dev/zero | tr '\0' k)
rm -f "$T/long.hex"
run 2 node add urn:dev:ops:gw-long --cse-id /mn-cse-long --cse-base $B --psk-id "${K127}k" --generate-psk "$T/long.hex"
[[ $ERR == *"--psk-id (the KpmID): expected 1..127 printable ASCII characters without spaces (the TLS PSK identity limit)"* ]] ||
        fail "128-character KpmID: '$ERR'"
[[ ! -e $T/long.hex ]] || fail "128-character KpmID: wrote a PSK file"
run 1 node show urn:dev:ops:gw-long
run 2 target add /maf-long --psk-id "${K127}k" --generate-psk "$T/long.hex"
[[ $ERR == *"--psk-id (the PSK identity): expected 1..127 "*"(the TLS PSK identity limit)"* && ! -e $T/long.hex ]] ||
        fail "128-character target PSK identity: '$ERR'"
run 0 node add urn:dev:ops:gw-long --cse-id /mn-cse-long --cse-base $B --psk-id "$K127" --generate-psk "$T/long.hex"
run 0 --json node show urn:dev:ops:gw-long
jq -e --arg k "$K127" '.kpmID == $k' <<<"$OUT" >/dev/null || fail "127-character KpmID not stored: $OUT"
run 0 node remove urn:dev:ops:gw-long
rm -f "$T/long.hex"
ok "a KpmID or target PSK identity of 128 characters is refused naming the TLS limit, 127 accepted"

# ---- a KpmID over 127 characters from a store older than that limit: said, nothing else changes ----
if [[ $HAVE_SQLITE == 1 ]]; then
        run 0 node add urn:dev:ops:gw-old --cse-id /mn-cse-old --cse-base $B --psk-id kpm-old --generate-psk "$T/old.hex"
        sqlite3 "$T/state/mef.db" "UPDATE nodes SET kpm_id = '${K127}o' WHERE node_id = 'urn:dev:ops:gw-old'"
        run 0 node show urn:dev:ops:gw-old
        [[ $OUT == *"Warning:         the KpmID is longer than 127 characters"*"this node can never enrol"* ]] ||
                fail "node show of a 128-character KpmID: $OUT"
        run 0 --json node show urn:dev:ops:gw-old
        [[ $ERR == *"warning: node urn:dev:ops:gw-old: its KpmID is longer than 127 characters"* ]] ||
                fail "node show --json of a 128-character KpmID: $ERR"
        jq -e --arg k "${K127}o" '.kpmID == $k' <<<"$OUT" >/dev/null || fail "node show --json: $OUT"
        # serve says it once at start, naming the node, and serves
        sed 's/^\[server\]$/[server]\nfqdn = mef.test/' "$T/mef.conf" >"$T/old.conf"
        "$MEF" --config "$T/old.conf" serve >"$T/serve.out" 2>"$T/serve.err" &
        old_pid=$!
        serve_said() { grep -q "listening on" "$T/serve.out" "$T/serve.err" || ! kill -0 "$old_pid" 2>/dev/null; }
        wait_for 30 serve_said || :
        kill -TERM "$old_pid" 2>/dev/null || :
        wait "$old_pid" || :
        cat "$T/serve.err" >>"$ALL_OUT"
        grep -q "1 node with a KpmID longer than 127 characters (added before that limit), which no TLS handshake can offer, can never enrol: urn:dev:ops:gw-old; give it a shorter one (node remove, node add --psk-id, and the agent's psk_identity)$" \
                "$T/serve.err" || fail "serve did not warn of the 128-character KpmID: $(cat "$T/serve.err")"
        grep -q "listening on" "$T/serve.out" "$T/serve.err" || fail "serve did not start: $(cat "$T/serve.err")"
        run 0 node remove urn:dev:ops:gw-old
        rm -f "$T/old.hex"
        ok "a node whose KpmID is over 127 characters (an older store): node show and serve say it can never enrol"
else
        skip "sqlite3 is missing: a KpmID over 127 characters written behind the store's back"
fi

# ---- targets ----
run 0 target add /in-cse --psk-id in-cse-psk --generate-psk "$T/in-cse.hex"
TPSK_HEX=$(head -n1 "$T/in-cse.hex")
run 1 target add /maf-01 --psk-id kpm-gw-2 --generate-psk "$T/maf.hex"
[[ $ERR == *"already in use"* && ! -e $T/maf.hex ]] || fail "target with a node's KpmID: $ERR"
run 0 target list
head -n1 <<<"$OUT" | grep -Eq '^TARGET_ID +AUTH +IDENTITY +CREATED$' || fail "target header: $OUT"
grep -Eq '^/in-cse +psk +in-cse-psk +' <<<"$OUT" || fail "target row: $OUT"
run 0 --json target list
jq -e '.[0].id == "/in-cse" and .[0].auth == "psk" and .[0].pskID == "in-cse-psk"' <<<"$OUT" >/dev/null ||
        fail "target list --json: $OUT"
run 0 target remove /in-cse
run 1 target remove /in-cse
ok "target add/list/remove"

# ---- audit ----
run 0 audit
head -n1 <<<"$OUT" | grep -Eq '^ID +TIME +ACTOR +ACTION +SUBJECT +DETAIL$' || fail "audit header: $OUT"
run 0 --json audit
# the actor is the Unix user who ran the command (SUDO_USER's when run through sudo)
me=$(id -un)
[ "$(id -u)" = 0 ] && [ -n "${SUDO_USER:-}" ] && me="$SUDO_USER (sudo)"
for a in init node-add node-reenrol node-revoke node-activate node-remove target-add target-remove; do
        jq -e --arg a "$a" --arg u "cli:$me" 'any(.[]; .action == $a and .actor == $u)' <<<"$OUT" >/dev/null ||
                fail "no audit row for $a by cli:$me: $OUT"
done
[[ $(jq -r '.[0].action' <<<"$OUT") == target-remove ]] || fail "audit not newest first"
run 0 --json audit --limit 2
[[ $(jq length <<<"$OUT") == 2 ]] || fail "audit --limit 2: $OUT"
ok "every change is in the audit trail, with the Unix user as actor"

# ---- output that cannot be written: exit 1, not 0 with the list lost ----
if [ -w /dev/full ]; then
        for args in "node list" "--json node list" "target list" "--json audit" "enrolments" "node show urn:dev:ops:gw-2"; do
                rc=0
                # shellcheck disable=SC2086
                "$MEF" --config "$T/mef.conf" $args >/dev/full 2>"$T/err" || rc=$?
                [[ $rc == 1 ]] || fail "msce-mef $args >/dev/full exited $rc, want 1: $(cat "$T/err")"
                grep -q "writing to stdout: No space left on device" "$T/err" || fail "msce-mef $args >/dev/full: $(cat "$T/err")"
        done
        ok "a list or result that cannot be written to stdout (full disk) exits 1, saying so"
else
        skip "no writable /dev/full"
fi

# ---- restore into a store that holds audit rows only: refused like a non-empty one ----
# Its own audit rows would collide with the backup's ids half-way through the restore.
mkdir -p "$T/rs"
sed -e "s|$T/state/|$T/rs/state/|" -e "s|$T/keys/|$T/rs/keys/|" "$T/mef.conf" >"$T/rs/mef.conf"
(umask 077 && printf 'restore-audit-only-passphrase\n' >"$T/rs/pass")
rs() { "$MEF" --config "$T/rs/mef.conf" "$@" >"$T/out" 2>"$T/err"; }
rs init || fail "init of the restore store: $(cat "$T/err")"
rs node add urn:dev:ops:rs-1 --cse-id /mn-rs-1 --cse-base https://x --cert-fp "$(printf 'ab%.0s' $(seq 32))" ||
        fail "node add in the restore store: $(cat "$T/err")"
# a file name that is not UTF-8 goes into the audit trail ('?' for the byte): backups go on
latin1=$T/rs/imp$'\xe9'.csv
printf 'nodeID,cseID,cseBase,certFingerprint\nurn:dev:ops:rs-2,/mn-rs-2,https://x,%s\n' "$(printf 'cd%.0s' $(seq 32))" >"$latin1"
rs node import "$latin1" || fail "import of a file named in Latin-1: $(cat "$T/err")"
rs backup "$T/rs/bk" --passphrase-file "$T/rs/pass" --kdf-iterations 100000 || fail "backup: $(cat "$T/err")"
grep -q '"subject":"[^"]*/rs/imp?.csv"' "$T/rs/bk/store.jsonl" || fail "the import's audit row in the backup"
rs node remove urn:dev:ops:rs-2 || fail "node remove: $(cat "$T/err")"
rs node remove urn:dev:ops:rs-1 || fail "node remove: $(cat "$T/err")"
rc=0; rs restore "$T/rs/bk" --passphrase-file "$T/rs/pass" || rc=$?
[[ $rc == 1 ]] || fail "restore into a store with audit rows only: exit $rc, want 1: $(cat "$T/err")"
grep -q "is not empty (.* audit rows): --force replaces them" "$T/err" ||
        fail "restore into a store with audit rows only: $(cat "$T/err")"
rs restore "$T/rs/bk" --passphrase-file "$T/rs/pass" --force || fail "restore --force: $(cat "$T/err")"
rs --json node show urn:dev:ops:rs-1 || fail "the restored node: $(cat "$T/err")"
cat "$T/out" "$T/err" >>"$ALL_OUT"
ok "restore into a store with audit rows only is refused as not empty; --force replaces them"
ok "an audit row naming a file that is not UTF-8 does not stop backups"

# ---- usage errors: exit 2 ----
for args in "bogus" "node" "node bogus" "node add" "node add x --cse-id /a" \
        "node add x --cse-id /a --cse-base b --psk-id k" \
        "node add x --cse-id /a --cse-base b --psk-id k --psk-file f --cert c" \
        "node add x --cse-id /a --cse-base b --cert-fp 1234" "node add x --cse-id /a --cse-base b --cert c --poll 5" \
        "node show" "node show a b" "audit --limit 0" "target add" "--bogus" "node list --bogus" "--config"; do
        # shellcheck disable=SC2086
        run 2 $args
        [[ $ERR == msce-mef:* ]] || fail "usage error message for '$args': $ERR"
done
ok "usage errors exit 2"

run 0 node add --help
[[ $OUT == Usage:*"--psk-file"* ]] || fail "node add --help: $OUT"
# every option of backup and restore in its help
run 0 backup --help
for o in --passphrase-file --recipient --kdf-iterations; do [[ $OUT == *"$o"* ]] || fail "backup --help lacks $o"; done
run 0 restore --help
for o in --passphrase-file --identity --expect-master-key --force; do [[ $OUT == *"$o"* ]] || fail "restore --help lacks $o"; done
run 0 --help
[[ $OUT == Usage:* ]] || fail "--help"
ok "--help"

# ---- configuration errors: exit 78 naming file and line ----
printf '[server]\nlisten = 127.0.0.1:1\n[limits]\nmax_connections = 0\n' >"$T/bad.conf"
rc=0; "$MEF" --config "$T/bad.conf" node list >"$T/out" 2>"$T/err" || rc=$?
[[ $rc == 78 ]] || fail "bad config exit $rc"
grep -q "$T/bad.conf:4: \[limits\] max_connections" "$T/err" || fail "bad config message: $(cat "$T/err")"
printf '[store]\nunknown_key = 1\n' >"$T/bad.conf"
rc=0; "$MEF" --config "$T/bad.conf" node list 2>"$T/err" || rc=$?
[[ $rc == 78 ]] || fail "unknown key exit $rc"
grep -q "$T/bad.conf:2: \[store\] unknown_key" "$T/err" || fail "unknown key: $(cat "$T/err")"
rc=0; "$MEF" --config "$T/missing.conf" node list 2>"$T/err" || rc=$?
[[ $rc == 78 ]] || fail "missing config exit $rc"
grep -q "$T/missing.conf" "$T/err" || fail "missing config: $(cat "$T/err")"
cat "$T/err" >>"$ALL_OUT"
ok "configuration errors exit 78 with file:line and key"

# ---- [store] path at a file that is not a database, or a damaged one ----
mkdir "$T/notdb"
printf '[store]\npath = %s/notdb/mef.db\nmaster_key = %s/keys/master.key\n' "$T" "$T" >"$T/notdb.conf"
head -c 8192 /dev/urandom >"$T/notdb/mef.db"
printf 'SQLite format 3\0' >"$T/notdb/damaged.db"
head -c 8176 /dev/urandom >>"$T/notdb/damaged.db"
chmod 0600 "$T/notdb/mef.db" "$T/notdb/damaged.db" # owner-only, or refused for that first
for f in mef.db damaged.db; do
        sed -i "s|/notdb/[a-z]*\.db|/notdb/$f|" "$T/notdb.conf"
        cp "$T/notdb/$f" "$T/notdb/before"
        for cmd in "node list" serve; do
                rc=0; timeout 30 "$MEF" --config "$T/notdb.conf" $cmd >/dev/null 2>"$T/err" || rc=$?
                [[ $rc == 1 ]] || fail "$f, $cmd: exit $rc, want 1: $(cat "$T/err")"
                grep -q "store $T/notdb/$f: not an SQLite database, or a damaged one: is \[store\] path right" \
                        "$T/err" || fail "$f, $cmd: $(cat "$T/err")"
        done
        cmp -s "$T/notdb/$f" "$T/notdb/before" || fail "$f was changed"
done
cat "$T/err" >>"$ALL_OUT"
ok "a store path at a file that is not a database, or a damaged one: exit 1 saying so, the file untouched"

# ---- a store directory the MEF's user cannot write (SQLite makes -wal and -shm there) ----
as_user=() as_uid=$(id -u)
if [ "$as_uid" = 0 ]; then
        # root passes every permission check: uid 65534 (nobody) runs these
        as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups) as_uid=65534
        chmod 0711 "$T"
fi
mkdir -p "$T/rodir/st" "$T/rodir/k"
printf '[store]\npath = %s/rodir/st/mef.db\nmaster_key = %s/rodir/k/master.key\n' "$T" "$T" >"$T/rodir/mef.conf"
[ ${#as_user[@]} = 0 ] || chown -R 65534:65534 "$T/rodir"
"${as_user[@]}" "$MEF" --config "$T/rodir/mef.conf" init >"$T/out" 2>&1 || fail "init as uid $as_uid: $(cat "$T/out")"
chmod 0555 "$T/rodir/st"
for cmd in "node list" serve; do
        rc=0; timeout 30 "${as_user[@]}" "$MEF" --config "$T/rodir/mef.conf" $cmd >/dev/null 2>"$T/err" || rc=$?
        [[ $rc == 1 ]] || fail "read-only store directory, $cmd: exit $rc, want 1: $(cat "$T/err")"
        grep -q "directory $T/rodir/st is not writable by uid $as_uid: SQLite makes its -wal" \
                "$T/err" || fail "read-only store directory, $cmd: $(cat "$T/err")"
done
cat "$T/err" >>"$ALL_OUT"
chmod 0755 "$T/rodir/st"
"${as_user[@]}" "$MEF" --config "$T/rodir/mef.conf" node list >"$T/out" 2>&1 || fail "node list once writable: $(cat "$T/out")"
ok "a store directory its user cannot write: exit 1 naming the directory and the uid"

# ---- long listings are read and printed page by page: memory stays one page ----
# 150,000 audit rows written as the server would; a listing held them all (about 2 KB a row,
# 300 MB and more) before it printed any. Peak RSS from getrusage() of the child. Nodes and
# enrolments over several pages: every row once, in the list's order.
if [[ $HAVE_SQLITE == 0 ]] || ! command -v python3 >/dev/null; then
        skip "no sqlite3 or python3: long listings"
        skip "no sqlite3 or python3: peak memory of a listing"
else
        sqlite3 "$T/state/mef.db" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 150000)
                INSERT INTO audit (ts, actor, action, subject, detail)
                SELECT 1700000000 + x, 'mef', 'enrol', 'urn:dev:ops:bulk-' || x, 'row ' || x FROM c;"
        want=$(sqlite3 "$T/state/mef.db" "SELECT count(*) FROM audit")
        # not through run: the listing would go into $ALL_OUT (no key is in these rows)
        "$MEF" --config "$T/mef.conf" --json audit >"$T/audit.json" 2>"$T/err" || fail "--json audit: $(cat "$T/err")"
        jq -e --argjson n "$want" '[.[].id] | length == $n and . == (unique | reverse)' "$T/audit.json" >/dev/null ||
                fail "--json audit over $want rows: not every row once, newest first"
        rm "$T/audit.json"
        # nodes by node ID, enrolments newest first (three to a second: ties broken by insertion)
        sqlite3 "$T/state/mef.db" "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500)
                INSERT INTO nodes (node_id, cert_fp, cse_id, cse_base, poll, lifetime, created)
                SELECT 'urn:dev:ops:bulk-' || x, printf('%064x', x), '/mn-bulk-' || x, 'https://x', 3600, 86400, 1
                FROM c;
                WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500)
                INSERT INTO enrolments (ke_id, node_id, key_enc, state, created, exp)
                SELECT printf('%032x', x) || '@mef.test', 'urn:dev:ops:bulk-1', X'00', 'retired', 1700000000 + x / 3,
                       1700000000 + x / 3 + 60 FROM c;"
        run 0 --json node list
        jq -e --argjson n "$(sqlite3 "$T/state/mef.db" "SELECT count(*) FROM nodes")" \
                '[.[].nodeID] | length == $n and . == (unique)' <<<"$OUT" >/dev/null ||
                fail "--json node list over 2,500 nodes: not every node once, by node ID"
        run 0 --json enrolments urn:dev:ops:bulk-1
        [[ $(jq -r '.[].keID' <<<"$OUT") == "$(sqlite3 "$T/state/mef.db" \
                "SELECT ke_id FROM enrolments WHERE node_id = 'urn:dev:ops:bulk-1' ORDER BY rowid DESC")" ]] ||
                fail "--json enrolments over 2,500 rows: not every row once, newest first"
        run 0 audit --limit 2500 --action enrol
        [[ $(wc -l <<<"$OUT") == 2501 && $ERR == *"more may follow: --after "* ]] || fail "audit --limit 2500: $ERR"
        next=${ERR##*--after }
        [[ $(tail -n1 <<<"$OUT" | cut -d' ' -f1) == "$next" ]] || fail "audit --limit 2500: --after $next is not the last row"
        ok "listings of 2,500 nodes, 2,500 enrolments and $want audit rows, page by page: every row once, in order"
        if grep -qa __asan_init "$MEF"; then
                skip "peak memory of a listing: a sanitizer build (its quarantine keeps freed pages)"
        else
                for args in "audit" "--json audit"; do
                        # shellcheck disable=SC2086
                        kb=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)' "$MEF" --config "$T/mef.conf" $args)
                        ((kb < 100000)) || fail "msce-mef $args over $want audit rows: peak RSS $kb KiB"
                done
                ok "a listing of $want audit rows (table and --json): peak RSS under 100 MB"
        fi
fi

# ---- the master key guards the store ----
chmod 0440 "$T/keys/master.key"
run 1 node list
[[ $ERR == *"master key $T/keys/master.key is mode 0440, not owner-only"* ]] || fail "group-readable master key: $ERR"
chmod 0400 "$T/keys/master.key"
cp "$T/keys/master.key" "$T/master.key.bak"
chmod 0600 "$T/keys/master.key"; head -c 32 /dev/urandom >"$T/keys/master.key"; chmod 0400 "$T/keys/master.key"
run 1 node list
[[ $ERR == *"does not open store"* ]] || fail "wrong master key: $ERR"
ok "a wrong or exposed master key is refused"

# ---- no key bytes anywhere ----
for hex in "$KPM_HEX" "$TPSK_HEX" 00112233445566778899aabbccddeeff; do
        ! grep -qi "$hex" "$ALL_OUT" || fail "key $hex appears in the output"
        for f in "$T/state"/*; do
                ! grep -qi "$hex" "$f" || fail "key $hex appears as hex in $f"
        done
done
ok "no key bytes in any output or in the database"

tap_done

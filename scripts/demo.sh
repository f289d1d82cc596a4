#!/usr/bin/env bash
# The main job end to end (README command 1), as root on a fresh Debian 12 machine:
# install the build dependencies, build, start a local msce-mef on 127.0.0.1 with its default
# SQLite store layout and a generated bootstrap PSK, run `msce-agent --once` against it and
# show the non-secret result; then show the Long Term Key in the kernel keyring, readable by the
# CSE service's user and refused to another user. Everything but the two demo users
# (msce-demo-cse, msce-demo-other) lives under .demo/ (re-runnable; removed on a rerun).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bash scripts/deps.sh

if [ -f build/release/build.ninja ]; then meson setup --reconfigure build/release >/dev/null
else meson setup build/release -Dbuildtype=release >/dev/null; fi
ninja -C build/release >/dev/null
mef=$root/build/release/msce-mef
agent=$root/build/release/msce-agent

demo=$root/.demo
rm -rf "$demo"
mkdir -p "$demo"/{etc,mef,agent,state,run}
chmod 0700 "$demo"/mef "$demo"/agent "$demo"/state
# A system user NAME, made again while another process holds the user database: useradd waits
# about 15 s for its locks, then exits 1 or 10 ("cannot lock /etc/passwd; try again later").
# Each try is a new attempt at the lock, for 60 s (tests/integration/test-user.sh does the same
# for the tests; not used here, demo.sh needs nothing of tests/).
demo_user() {
        local end=$((SECONDS + 60)) rc
        while ! id "$1" >/dev/null 2>&1; do
                rc=0
                useradd --system --no-create-home --shell /usr/sbin/nologin "$1" || rc=$?
                case $rc in
                0) return 0 ;;
                1 | 10) [ "$SECONDS" -lt "$end" ] || return "$rc" ;;
                *) id "$1" >/dev/null 2>&1 || return "$rc" ;; # 9: made meanwhile by another
                esac
                sleep 0.2
        done
}
for u in msce-demo-cse msce-demo-other; do demo_user "$u"; done

cat > "$demo/etc/mef.conf" <<CONF
[server]
listen = 127.0.0.1:0
fqdn = 127.0.0.1
base = /msce

[store]
path = $demo/mef/mef.db
master_key = $demo/mef/master.key
CONF

echo "== MEF: create the store and provision one gateway (its factory PSK is generated into a 0600 file)"
"$mef" --config "$demo/etc/mef.conf" init
"$mef" --config "$demo/etc/mef.conf" node add urn:dev:ops:0004A3-MNGW-000123 \
        --cse-id /mn-cse-000123 --cse-base https://in.example.net:8443/~/in-cse/in-name \
        --psk-id gw-000123 --generate-psk "$demo/agent/kpm.hex" --target /in-cse
"$mef" --config "$demo/etc/mef.conf" node list

echo "== MEF: serving"
"$mef" --config "$demo/etc/mef.conf" serve > "$demo/mef/stdout" 2> "$demo/mef/log" &
mef_pid=$!
trap 'kill $mef_pid 2>/dev/null || true; wait $mef_pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do
        grep -q '^listening on' "$demo/mef/stdout" 2>/dev/null && break
        sleep 0.05
done
port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$demo/mef/stdout")
[ -n "$port" ] || { echo "msce-mef did not start:"; cat "$demo/mef/log"; exit 1; }
echo "msce-mef listening on 127.0.0.1:$port"

cat > "$demo/etc/agent.conf" <<CONF
[node]
id = urn:dev:ops:0004A3-MNGW-000123

[mef]
uri = https://127.0.0.1:$port/msce
mode = psk
psk_identity = gw-000123
psk_file = $demo/agent/kpm.hex

[consumer]
user = msce-demo-cse

[seal]
backend = auto
state_dir = $demo/state
runtime_dir = $demo/run
CONF

echo "== agent: effective configuration"
"$agent" --check-config --config "$demo/etc/agent.conf"
echo "== agent: enrol once"
"$agent" --once --config "$demo/etc/agent.conf"
echo "== MEF: enrolments"
"$mef" --config "$demo/etc/mef.conf" enrolments

# What a CSE service does to get its key (docs/cse-integration.md); only the length is shown.
read_ltk='keyctl get_persistent @s >/dev/null && ring=$(keyctl search @s keyring msce) &&
          keyctl pipe "$(keyctl search "$ring" user msce:ltk)" | wc -c'
echo "== keyring: msce-demo-cse reads msce:ltk"
n=$(su -s /bin/sh msce-demo-cse -c "keyctl session - /bin/sh -c '$read_ltk'" 2>/dev/null)
echo "msce-demo-cse read a ${n}-byte Long Term Key"
[ "${n:-0}" -ge 16 ]
echo "== keyring: msce-demo-other is refused"
if out=$(su -s /bin/sh msce-demo-other -c "keyctl session - /bin/sh -c '$read_ltk'" 2>&1); then
        echo "msce-demo-other could read the key: this must not happen"; exit 1
fi
echo "msce-demo-other: ${out##*: }"

echo "== agent again, MEF stopped: the profile is restored from the sealed file, no network"
kill $mef_pid; wait $mef_pid 2>/dev/null || true
"$agent" --once --config "$demo/etc/agent.conf"
echo "== state: the sealed profile, and the host key that seals it when no TPM answers (0400)"
ls -l "$demo/state"

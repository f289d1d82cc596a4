#!/usr/bin/env bash
# The main job end to end (README command 1), as root on a fresh Debian 12 machine:
# install the build dependencies, build, start a local msce-mef on 127.0.0.1 with its default
# SQLite store layout and a generated bootstrap PSK, run `msce-agent --once` against it and
# show the non-secret result. Everything lives under .demo/ (re-runnable; removed on a rerun).
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
mkdir -p "$demo"/{etc,mef,agent}
chmod 0700 "$demo"/mef "$demo"/agent

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
CONF

echo "== agent: effective configuration"
"$agent" --check-config --config "$demo/etc/agent.conf"
echo "== agent: enrol once"
"$agent" --once --config "$demo/etc/agent.conf"
echo "== MEF: enrolments"
"$mef" --config "$demo/etc/mef.conf" enrolments

# SPDX-License-Identifier: MIT
# Sourced by the packaging tests: skip(), and the .debs under test in $agent and $mef (from
# MSCE_DEBS_DIR), or a skip that says why there are none.
skip() { echo "SKIP: $1"; exit 77; }
debs=${MSCE_DEBS_DIR:-}
[ -n "$debs" ] || skip "MSCE_DEBS_DIR is not set (scripts/test.sh sets it; packaging/build-deb.sh DIR builds them)"
agent=$(ls "$debs"/msce-agent_*.deb 2> /dev/null | head -n1)
mef=$(ls "$debs"/msce-mef_*.deb 2> /dev/null | head -n1)
[ -n "$agent" ] && [ -n "$mef" ] || skip "no msce-agent or msce-mef .deb in $debs"

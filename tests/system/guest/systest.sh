#!/bin/bash
# Guest side of the msce system test, run by msce-systest.service after multi-user.target on
# each boot (the host ships this file through the 9p share /mnt/in). The phase lives on the
# guest's own disk, so the second boot of the same disk knows it is the reboot:
#   boot 1: install the .debs, set up a MEF, a stand-in CSE and a gpio-sim LED, enrol, check;
#   boot 2: MEF disabled: the agent must restore the TPM-sealed profile offline; factory-reset;
#           then, when the host asks for it, the integration suite (integration.sh).
# Results: "PASS name", "FAIL name: why", "SKIP name: why" lines in OUT/results-<boot>.txt,
# then "END". Never exits early: a failed check is recorded and the next one runs.
set -u
IN=${1:-/mnt/in}
OUT=${2:-/mnt/out}
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

STATE=/var/lib/msce-systest
mkdir -p "$STATE"
phase=$(cat "$STATE/phase" 2> /dev/null || echo 1)
case $phase in
1 | 2) ;;
*) echo "FAIL boot: unexpected phase '$phase' (a third boot?)" >> "$OUT/results-extra.txt"; exit 0 ;;
esac
RESULTS=$OUT/results-$phase.txt
: > "$RESULTS"
exec > >(tee -a "$OUT/guest-$phase.log") 2>&1
echo "== msce system test, boot $phase, uptime $(cut -d' ' -f1 /proc/uptime) s"

# no TPM device from the host (the aarch64 guest): swtpm in the guest (vtpm.sh); from boot 2 on
# its unit starts before msce-agent
if [ "$phase" = 1 ] && [ ! -e /dev/tpmrm0 ]; then
        . "$here/vtpm.sh"
        setup_vtpm
fi
. "$here/phase$phase.sh"
run_phase
# the aarch64 guest (scripts/test-emulated.sh arm64 --guest): the integration suite last
if [ "$phase" = 2 ] && [ -f "$IN/integration" ]; then
        . "$here/integration.sh"
        run_integration
fi

echo "== boot $phase done, uptime $(cut -d' ' -f1 /proc/uptime) s"
journalctl -b --no-pager -o short-monotonic > "$OUT/journal-$phase.txt" 2>&1
echo END >> "$RESULTS"
sync
exit 0

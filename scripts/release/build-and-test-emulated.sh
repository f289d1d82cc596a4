#!/bin/bash
# Inside an emulated root filesystem (scripts/test-emulated.sh runs it through scripts/chroot.sh,
# checkout at /src): a native gcc build with -Werror in build/emulated-ARCH and the unit and
# fuzz-replay suites (no integration suite: it needs swtpm, network namespaces and the host's
# keyring in ways qemu-user does not emulate faithfully). Prints the peak RSS of the test run:
# under qemu-user it includes the emulator, and timings mean nothing, so none are printed.
# Usage: build-and-test-emulated.sh ARCH
set -euo pipefail
arch=${1:?usage: build-and-test-emulated.sh ARCH}
cd /src
b=build/emulated-$arch
echo "[emulated-$arch] $(uname -m) userland: $(dpkg --print-architecture); $(dpkg-query -W -f '${Package} ${Version}, ' libwolfssl-dev libgpiod-dev gcc | sed 's/, $//')"
log=$(mktemp)
# no --reconfigure when configured: it rewrites msce-config.h (MSCE_BUILD_TIME) and so rebuilds
# everything, which takes long under emulation; ninja re-runs meson when a meson.build changed
if [ ! -f "$b/build.ninja" ]; then
        meson setup "$b" -Dwerror=true > "$log" 2>&1 || { cat "$log"; exit 1; }
fi
ninja -C "$b" > "$log" 2>&1 || { cat "$log"; exit 1; }
grep -i warning "$log" || true
rm -f "$log"
# timeouts scaled for emulation (a slow CPU, not a different result)
python3 - "$b" "$arch" <<'PY'
import resource, subprocess, sys
b, arch = sys.argv[1:]
r = subprocess.run(["meson", "test", "-C", b, "--suite", "unit", "--suite", "fuzz", "--print-errorlogs",
                    "--num-processes", "2", "--timeout-multiplier", "10"])
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(f"[emulated-{arch}] peak RSS of one process in the test run (qemu-user included): {peak} KiB")
sys.exit(r.returncode)
PY

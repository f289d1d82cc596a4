#!/bin/bash
# Inside the cross-build root filesystem (scripts/release/cross-ARCH.txt; scripts/test-emulated.sh
# ARCH --guest runs it through scripts/chroot.sh, checkout at /src): the whole tree, tests
# included, built for ARCH with Debian's cross toolchain (gcc 12, -Werror, the ARCH libraries)
# in build/cross-ARCH-tests, with what the tests need beyond the default targets. Nothing runs
# here: an ARCH guest runs the integration suite from this directory with meson test
# --no-rebuild. Cross-built, as the .debs are: a native build under qemu-user takes about an
# hour on this machine, and the guest runs the programs natively either way.
# Usage: build-tests-cross.sh ARCH
set -euo pipefail
arch=${1:?usage: build-tests-cross.sh ARCH}
cd /src
b=build/cross-$arch-tests
# beside the build directory, not a temporary file: build.ninja depends on it, and a missing
# one made every later ninja run regenerate and fail
cross=$b.ini
log=$(mktemp)
# a tree configured with a cross file that is gone (older versions of this script): set up anew
[ -f "$cross" ] || rm -rf "$b"
if [ ! -f "$b/build.ninja" ]; then
        meson env2mfile --cross --debarch "$arch" -o "$cross" > "$log" 2>&1 || { cat "$log"; exit 1; }
        # the tests run natively in the guest: no exe wrapper (else meson test skips them all)
        sed -i 's/^\[properties\]$/&\nneeds_exe_wrapper = false/' "$cross"
        grep -q '^needs_exe_wrapper = false' "$cross" || printf '[properties]\nneeds_exe_wrapper = false\n' >> "$cross"
        meson setup "$b" --cross-file "$cross" -Dwerror=true > "$log" 2>&1 || { cat "$log"; exit 1; }
fi
ninja -C "$b" > "$log" 2>&1 || { cat "$log"; exit 1; }
grep -i warning "$log" || true
ninja -C "$b" meson-test-prereq > "$log" 2>&1 || { cat "$log"; exit 1; }
rm -f "$log"
echo "[cross-$arch] test tree built in $b (msce-agent: $(readelf -h "$b/msce-agent" | sed -n "s/^ *Machine: *//p"))"
